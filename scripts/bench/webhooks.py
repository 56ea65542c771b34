"""Benchmark: does a webhook receiver slow order intake? POST /api/v1/orders p99 with no webhook, with
one whose receiver answers at once, and with one whose receiver accepts the connection and never
answers, in the same run.

The service runs under gunicorn (2 workers, SQLite file or a throwaway PostgreSQL database, no Redis:
the embedded default, where the background work runs in the web process). Both receivers are
threaded HTTP servers in this process on loopback. The service is configured so that the hanging
receiver is tried as often as possible: WEBHOOK_RETRY_SCHEDULE=1 (a retry every second instead of
1 min, 5 min, ...) and the default timeouts (WEBHOOK_CONNECT_TIMEOUT_S 3, WEBHOOK_READ_TIMEOUT_S 5).
After a warm-up, cases alternate in short segments (``--rounds`` × 3 × ``--segment`` s) at a fixed
open-loop rate (scripts/bench/openloop.py), switched by pointing the endpoint at the case's receiver
(or disabling it) in the database; each case's segments are pooled. The orders added must match the
201s seen; the receivers' counts are shown (requests answered, requests left hanging).

Prints one markdown table (backend | case | req/s | p50 ms | p99 ms | max ms | receiver) and the
verdict: intake p99 with a hanging receiver within 2× the p99 without a webhook (and under 1 s).

    .venv/bin/python scripts/bench/webhooks.py                          # SQLite, about a minute
    .venv/bin/python scripts/bench/webhooks.py --backends sqlite postgresql

Everything listens on 127.0.0.1 only; the server, databases and temporary files are removed on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import intake  # noqa: E402
import openloop  # noqa: E402
import sqlalchemy as sa  # noqa: E402

CASES = ("none", "answers", "hangs")
CASE_NAMES = {"none": "no webhook", "answers": "webhook, receiver answers 204 at once",
              "hangs": "webhook, receiver accepts and never answers"}
log = intake.log


class Receiver:
    """A counter system's receiver on loopback: answers 204 at once, or holds every request open."""

    def __init__(self, hang: bool) -> None:
        self.answered = self.hanging = self.events = 0
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hang:
                    receiver.hanging += 1
                    receiver.release.wait(600)
                    return
                receiver.answered += 1
                with contextlib.suppress(ValueError, KeyError):
                    receiver.events += len(json.loads(body)["events"])
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((intake.HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{intake.HOST}:{self.server.server_port}/hooks/delivery"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def segment(target: intake.Target, tag: str, rate: float,
            duration: float) -> tuple[openloop.OpenLoopResult, int]:
    """One open-loop segment (requests may take up to 30 s: a request held by a webhook shows its real
    time instead of a timeout); returns the result and the orders it added."""
    before = target.rows()
    appt, port, headers = intake.appointment_date(), target.server.port, target.headers()
    res = openloop.run(port, rate, duration, lambda i: openloop.http_request(
        "POST", target.path, port, intake.order_body(f"{tag}-{i}", appt), headers), timeout=30.0)
    return res, target.rows() - before


def bench_backend(backend: str, args: argparse.Namespace, tmp: Path, control: list[str]) -> dict[str, Any]:
    tag = f"wh{os.getpid()}"
    with contextlib.ExitStack() as cleanup:
        dbs = intake.make_databases(backend, tmp, args.pg_admin_url, tag, cleanup)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(SECRET_KEY="bench-secret-not-for-production", ENV="production", PYTHONUNBUFFERED="1",
                   DATABASE_URL=dbs.service_url, WEBHOOK_RETRY_SCHEDULE="1")
        log(f"{backend}: preparing the database (migrations, units 51/42/48, demo)")
        intake.cli(["db", "upgrade"], env)
        intake.cli(["units", "import", "--province", "51", "--province", "42", "--province", "48"], env)
        out = intake.cli(["demo", "load"], env)
        m = re.search(r"API token for counter QNG-TTHCC \(shown once\): (\S+)", out)
        if not m:
            raise RuntimeError(f"no demo token in:\n{out[-2000:]}")
        token = m.group(1)
        engine = sa.create_engine(dbs.service_url, poolclass=sa.pool.NullPool)
        cleanup.callback(engine.dispose)
        with engine.connect() as conn:
            client_id = conn.scalar(sa.text("SELECT id FROM api_clients ORDER BY id LIMIT 1"))
        receivers = {"answers": Receiver(hang=False), "hangs": Receiver(hang=True)}
        for r in receivers.values():
            cleanup.callback(r.close)
        port = openloop.free_port()
        server = intake.Server(f"{backend}-webhooks", "delivery_service:create_app()", env, port,
                               args.workers, intake.ROOT, tmp, control)
        cleanup.callback(server.stop)
        server.wait_ready()
        target = intake.Target("service", server, intake.SERVICE_PATH, token, dbs.service_url,
                               "delivery_orders")
        target.probe(f"{tag}-probe")

        intake.cli(["api-clients", "webhook", str(client_id), "--url", receivers["answers"].url], env)

        def switch(case: str) -> None:
            """Point the endpoint at the case's receiver, as `api-clients webhook` does (--url, --disable)
            but without starting a process each time: the failures and back-off of the last case go."""
            with engine.begin() as conn:
                if case == "none":
                    conn.execute(sa.text("UPDATE webhook_endpoints SET active = false"))
                else:
                    conn.execute(sa.text(
                        "UPDATE webhook_endpoints SET url = :url, active = true, paused_at = NULL, "
                        "next_attempt_at = NULL, consecutive_failures = 0"), {"url": receivers[case].url})

        switch("none")
        log(f"{backend}: warm-up, {args.warmup:g} s")
        segment(target, f"{tag}-warm", args.rate, args.warmup)
        parts: dict[str, list[tuple[openloop.OpenLoopResult, int]]] = {c: [] for c in CASES}
        log(f"{backend}: {args.rounds} rounds × {len(CASES)} cases × {args.segment:g} s "
            f"at {args.rate:g} req/s")
        for rnd in range(args.rounds):
            for case in CASES:
                switch(case)
                time.sleep(args.settle)
                res, rows = segment(target, f"{tag}-{rnd}-{case}", args.rate, args.segment)
                log(f"  round {rnd + 1} {case}: p50 {res.pct_ms(50):.1f} ms, p99 {res.pct_ms(99):.1f} ms, "
                    f"max {res.pct_ms(100):.1f} ms, 201s {res.statuses.get(201, 0)}, rows +{rows}")
                parts[case].append((res, rows))
        switch("none")
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server died during the run:\n{server.log_tail()}")
        version = intake.db_version(dbs.service_url)
        rows = {}
        for case in CASES:
            pooled = openloop.OpenLoopResult.merge([p for p, _ in parts[case]])
            rows[case] = {"res": pooled, "rows": sum(n for _, n in parts[case])}
        counts = {name: (r.answered, r.hanging, r.events) for name, r in receivers.items()}
    return {"backend": backend, "db_version": version, "rows": rows, "receivers": counts}


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> tuple[str, bool]:
    lines = ["| backend | case | req/s | p50 ms | p99 ms | max ms | receiver |",
             "|---|---|---|---|---|---|---|"]
    verdicts, valid = [], True
    for result in results:
        b = result["backend"]
        answered, _h, events = result["receivers"]["answers"]
        _a, hung, _e = result["receivers"]["hangs"]
        notes = {"none": "–", "answers": f"{answered} requests answered, {events} events",
                 "hangs": f"{hung} requests left hanging"}
        for case in CASES:
            res, added = result["rows"][case]["res"], result["rows"][case]["rows"]
            ok = res.statuses.get(201, 0)
            problems = []
            if res.count(300, 1000) or res.count(0, 200) or sum(res.errors.values()) or res.dropped:
                problems.append(f"non-201 {dict(res.statuses)}, errors {dict(res.errors)}, "
                                f"dropped {res.dropped}")
            if added != ok:
                problems.append(f"rows added {added} != 201s {ok}")
            valid &= not problems
            lines.append(f"| {b} | {CASE_NAMES[case]} | {res.achieved_rate:.0f} | {res.pct_ms(50):.1f} | "
                         f"{res.pct_ms(99):.1f} | {res.pct_ms(100):.1f} | {notes[case]} |"
                         + (f" INVALID: {'; '.join(problems)}" if problems else ""))
        base, hang = result["rows"]["none"]["res"].pct_ms(99), result["rows"]["hangs"]["res"].pct_ms(99)
        errors = sum(sum(result["rows"][c]["res"].errors.values()) for c in CASES)
        ok = hang <= max(2 * base, base + 20) and hang < 1000 and not errors
        verdicts.append(f"- {b}: intake p99 with a hanging receiver {hang:.1f} ms vs {base:.1f} ms without a "
                        f"webhook (target: within 2× or +20 ms, under 1 s): **{'PASS' if ok else 'FAIL'}**")
    cond = (f"{args.rate:g} req/s open loop, {args.rounds} × {args.segment:g} s per case interleaved, "
            f"gunicorn {args.workers} workers, no Redis, WEBHOOK_RETRY_SCHEDULE=1, default timeouts "
            f"(3 s connect, 5 s read); " + "; ".join(f"{r['backend']}: {r['db_version']}" for r in results))
    return "\n".join(lines) + "\n\n" + "\n".join(verdicts) + f"\n\nConditions: {cond}\n", valid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite"])
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second (open loop)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--segment", type=float, default=5.0, help="seconds per case and round")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds after switching the webhook")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load first")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pg-admin-url", default=intake.DEFAULT_PG_ADMIN)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, intake._on_term)
    control = intake.gunicorn_control_flag()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        for backend in args.backends:
            results.append(bench_backend(backend, args, Path(tmp), control))
    text, valid = report(results, args)
    print(text)
    sys.exit(0 if valid else 1)


if __name__ == "__main__":
    main()
