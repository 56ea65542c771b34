"""Where one courier event's request spends its time, next to one order's: py-spy on a gunicorn worker.

Serves the service with ONE gunicorn worker on a fresh database (SQLite file, or a throwaway
PostgreSQL database), prepared as ``sync.py`` prepares it; creates the orders and confirms their
pickup (not measured); then samples the worker with ``py-spy record`` while 2 connections send N
one-event syncs (``delivered``, the bench's body), and again while they send N orders (intake). Prints
the sampled milliseconds per request of every function (inclusive), both columns side by side,
largest first, and writes py-spy's raw stacks next to the table (``--out``) for a flame graph.
The totals leave out time the worker spends waiting in the kernel; their ratio follows the two
request rates, which are printed too. docs/benchmarks.md ("Point 1: why one event a request…")
shows a table made from its output.

Needs py-spy (not a dependency of the service: ``pip install py-spy`` anywhere; ``--py-spy`` names
the binary) and permission to attach to a process (root, or ptrace allowed).

    .venv/bin/python scripts/bench/profile_sync.py                       # SQLite, 3,000 requests each
    .venv/bin/python scripts/bench/profile_sync.py --backend postgresql --requests 4000 --top 60
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import intake  # noqa: E402
import openloop  # noqa: E402
import sync  # noqa: E402

RATE_HZ = 500


def inclusive(path: Path) -> tuple[collections.Counter[str], int]:
    """Samples per function (file and name, without line numbers), each counted once per stack."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack:
            continue
        total += int(n)
        for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")}:
            counts[frame] += int(n)
    return counts, total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "py-spy")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "profile_sync")
    parser.add_argument("--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if shutil.which(args.py_spy) is None and not Path(args.py_spy).exists():
        sys.exit("py-spy not found: pip install py-spy, or --py-spy PATH")
    args.out.mkdir(parents=True, exist_ok=True)
    password = "bench-pass-123"
    with tempfile.TemporaryDirectory() as t, contextlib.ExitStack() as cleanup:
        tmp = Path(t)
        dbs = intake.make_databases(args.backend, tmp, args.pg_admin_url, f"p{os.getpid()}", cleanup)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(SECRET_KEY="bench-secret-not-for-production", ENV="production", PYTHONUNBUFFERED="1",
                   DATABASE_URL=dbs.service_url)
        token = sync.prepare_courier_demo(env, password)
        port = openloop.free_port()
        server = intake.Server("profiled", "delivery_service:create_app()", env, port, 1, intake.ROOT, tmp,
                               intake.gunicorn_control_flag())
        cleanup.callback(server.stop)
        server.wait_ready()
        warm = 200
        ids = sync.create_orders(port, token, args.requests + warm, "prof", 4)
        headers = sync.courier_session(port, password)
        sync.pick_up(port, headers, ids)
        sync.drive(port, sync.SYNC_PATH, sync.batches([sync.delivered(i) for i in ids[:warm]], 1), headers, 2)
        worker = int(subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True,
                                    check=True).stdout.split()[0])

        def sampled(name: str, send: Callable[[], sync.Load], status: int) -> tuple[Path, int, float]:
            raw = args.out / f"{args.backend}_{name}.txt"
            spy = subprocess.Popen([args.py_spy, "record", "-p", str(worker), "-r", str(RATE_HZ), "-f", "raw",
                                    "-o", str(raw), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached
            load = send()
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
            if load.errors or set(load.statuses) != {status} or (
                    status == 200 and load.results.get("applied") != load.requests):  # all applied, all new
                sys.exit(f"{name}: statuses {load.statuses}, errors {load.errors[:3]}")
            return raw, load.requests, load.requests / load.seconds

        events = [sync.delivered(i) for i in ids[warm:]]
        runs = {"sync": sampled("sync", lambda: sync.drive(port, sync.SYNC_PATH, sync.batches(events, 1),
                                                           headers, 2, count_results=True), 200)}
        appt = intake.appointment_date()
        street = "12 Hùng Vương".encode()
        # dossiers of their own (not the synced orders'): new orders, not replays
        bodies = [intake.order_body(f"intake-{i}", appt).replace(street, f"{i} Hùng Vương".encode())
                  for i in range(args.requests)]
        runs["intake"] = sampled("intake", lambda: sync.drive(port, "/api/v1/orders", bodies, {
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"}, 2), 201)
    ms = 1000 / RATE_HZ
    (a, ta), (b, tb) = inclusive(runs["sync"][0]), inclusive(runs["intake"][0])
    na, nb = runs["sync"][1], runs["intake"][1]
    print(f"{args.backend}, 1 gunicorn worker, 2 connections, py-spy at {RATE_HZ} Hz; "
          f"sync {na} requests at {runs['sync'][2]:.0f}/s, intake {nb} at {runs['intake'][2]:.0f}/s; "
          f"raw stacks in {args.out}\n")
    print("| function | sync, 1 event: ms a request | intake, 1 order: ms a request | difference |")
    print("|---|---|---|---|")
    print(f"| all samples | {ta / na * ms:.3f} | {tb / nb * ms:.3f} | {ta / na * ms - tb / nb * ms:+.3f} |")
    wrappers = ("<frozen runpy>", "gunicorn/arbiter.py", "gunicorn/app/", "gunicorn/__main__.py")
    names = [k for k in set(a) | set(b) if not any(w in k for w in wrappers)]  # the worker's own start-up
    for name in sorted(names, key=lambda k: -max(a[k] / na, b[k] / nb))[:args.top]:
        x, y = a[name] / na * ms, b[name] / nb * ms
        print(f"| `{name[:110]}` | {x:.3f} | {y:.3f} | {x - y:+.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
