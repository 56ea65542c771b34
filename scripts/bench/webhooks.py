"""Benchmark: do webhooks keep up with order intake, and does a webhook receiver slow it? Events
delivered per second to a receiver on loopback (every request's signature checked, events in the log's
order, each once) next to the intake rate of the same run; and POST /api/v1/orders p99 with no
webhook, with one whose receiver answers at once, and with one whose receiver accepts the connection
and never answers.

The service runs under gunicorn (2 workers, SQLite file or a throwaway PostgreSQL database, no Redis:
the embedded default, where the background work runs in the web process). Both receivers are
threaded HTTP servers in this process on loopback. The service is configured so that the hanging
receiver is tried as often as possible: WEBHOOK_RETRY_SCHEDULE=1 (a retry every second instead of
1 min, 5 min, ...) and the default timeouts (WEBHOOK_CONNECT_TIMEOUT_S 3, WEBHOOK_READ_TIMEOUT_S 5).
After a warm-up, cases alternate in short segments (``--rounds`` × 3 × ``--segment`` s) at a fixed
open-loop rate (scripts/bench/openloop.py), switched by pointing the endpoint at the case's receiver
(or disabling it) in the database; each case's segments are pooled. The orders added must match the
201s seen; the receivers' counts are shown (requests answered, requests left hanging).

Delivery throughput (first): the endpoint points at the answering receiver, which checks every
request as docs/webhooks.md tells a receiver to (``X-Webhook-Signature``: HMAC-SHA256 with the secret
``api-clients webhook`` printed, over ``timestamp + "." + body``; the timestamp within 5 minutes),
skips a delivery id it has processed, and records each event's id and arrival time. Intake runs at its
maximum with wrk (``--duration`` s, as intake.py measures it); the clock of the delivery runs until
the receiver has every event the log holds past the phase's start (the database's count), at most
60 s after intake. Checked: every signature valid; the events arrive in the log's order (ids only
grow), none twice, none missing (their ids equal the log's). Target: delivery keeps up with intake:
the events that reached the receiver per second in the second half of the intake (when the runs'
fixed delay, WEBHOOK_COALESCE_S plus the runner's poll, is behind it) ≥ 0.9 × the events logged per
second during intake (each order logs two: created and assigned). The lag after intake (until the
last event arrived) and the rate to the last event are shown too.

Prints two markdown tables (delivery throughput: backend | intake orders/s | events logged/s |
events delivered/s in the second half | ratio | to the last event | lag after intake | requests |
checked; then backend | case | req/s | p50 ms |
p99 ms | max ms | receiver) and the verdicts: delivery keeps up; intake p99 with a hanging receiver
within 2× the p99 without a webhook (and under 1 s).

    .venv/bin/python scripts/bench/webhooks.py                          # SQLite, about a minute
    .venv/bin/python scripts/bench/webhooks.py --backends sqlite postgresql
    .venv/bin/python scripts/bench/webhooks.py --redis-url redis://127.0.0.1:6379/7   # Redis + worker

``--redis-url``: the production set-up instead of the embedded one: the service queues its jobs in
that Redis database (emptied at the start: give the bench one of its own) and ``--rq-workers``
(default 1) ``delivery-service worker`` processes run them, webhook runs included.

Everything listens on 127.0.0.1 only; the server, databases and temporary files are removed on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
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
    """A counter system's receiver on loopback: answers 204 at once, or holds every request open.

    The answering one checks each request as docs/webhooks.md says a receiver should (once it knows
    the ``secret``): the signature over ``timestamp + "." + body``, a timestamp within 5 minutes; it
    skips a delivery id already processed, and records every event's id and arrival time in order."""

    def __init__(self, hang: bool) -> None:
        self.answered = self.hanging = self.events = 0
        self.secret: str | None = None
        self.bad_signatures = self.replays = 0
        self.received: list[tuple[int, float]] = []  # (event id, perf_counter) in arrival order
        self.deliveries: set[str] = set()
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if hang:
                    receiver.hanging += 1
                    receiver.release.wait(600)
                    return
                receiver.take(body, self.headers)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((intake.HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{intake.HOST}:{self.server.server_port}/hooks/delivery"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self, body: bytes, headers: Any) -> None:
        now = time.perf_counter()
        with self.lock:
            self.answered += 1
            if self.secret is not None:
                stamp = headers.get("X-Webhook-Timestamp") or ""
                expected = "sha256=" + hmac.new(self.secret.encode(), stamp.encode() + b"." + body,
                                                hashlib.sha256).hexdigest()
                fresh = stamp.isdigit() and abs(time.time() - int(stamp)) <= 300
                if not fresh or not hmac.compare_digest(expected, headers.get("X-Webhook-Signature") or ""):
                    self.bad_signatures += 1
                    return
            delivery = headers.get("X-Webhook-Delivery") or ""
            if delivery in self.deliveries:  # sent again after a lost answer: processed already
                self.replays += 1
                return
            self.deliveries.add(delivery)
            with contextlib.suppress(ValueError, KeyError, TypeError):
                ids = [int(e["event_id"]) for e in json.loads(body)["events"]]
                self.events += len(ids)
                self.received.extend((i, now) for i in ids)

    def since(self, event_id: int) -> list[tuple[int, float]]:
        with self.lock:
            return [(i, t) for i, t in self.received if i > event_id]

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


def _scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(sql)) or 0)


def throughput(backend: str, target: intake.Target, engine: sa.Engine, receiver: Receiver,
               args: argparse.Namespace, tag: str) -> dict[str, Any]:
    """Intake at its maximum (wrk) with the webhook on, then until every event logged meanwhile has
    reached the receiver: the rates, the lag and the checks."""
    log(f"{backend}: delivery throughput: intake with wrk for {args.duration:g} s, webhook on")
    segment(target, f"{tag}-flow-warm", args.rate, 1.0)  # the endpoint's cursor starts at the log's end
    start_id = _scalar(engine, "SELECT coalesce(max(id), 0) FROM order_events")
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline and _scalar(
            engine, "SELECT count(*) FROM webhook_endpoints WHERE active AND cursor_event_id < "
            "(SELECT coalesce(max(id), 0) FROM order_events)"):
        time.sleep(0.1)  # what the warm-up logged is delivered before the clock starts
    orders_before, requests_before = target.rows(), len(receiver.deliveries)
    t0 = time.perf_counter()
    w = intake.wrk(target.server.port, target.path, target.token, f"{tag}f", args.duration, args.connections,
                   min(2, args.connections))
    t_intake = time.perf_counter()
    added = target.rows() - orders_before

    def logged_ids() -> list[int]:
        with engine.connect() as conn:
            return [int(i) for i in conn.scalars(sa.text(
                f"SELECT id FROM order_events WHERE id > {start_id} ORDER BY id"))]

    # Until the receiver has every event of the log, read again each time: requests still in flight
    # when wrk stopped log theirs a moment later.
    log_ids = logged_ids()
    while time.perf_counter() - t_intake < 60:
        if {i for i, _ in receiver.since(start_id)} >= set(log_ids := logged_ids()):
            break
        time.sleep(0.05)
    got = receiver.since(start_id)
    ids = [i for i, _ in got]
    problems = []
    if w["s4xx"] + w["s5xx"] + w["sother"]:
        problems.append(f"{w['s4xx'] + w['s5xx'] + w['sother']} non-2xx")
    if not w["s201"] <= added <= w["s201"] + args.connections:
        problems.append(f"orders added {added} != 201s {w['s201']}")
    if receiver.bad_signatures:
        problems.append(f"{receiver.bad_signatures} requests with a bad signature")
    if any(b <= a for a, b in zip(ids, ids[1:], strict=False)):
        problems.append("events out of the log's order or twice")
    if ids != log_ids:
        problems.append(f"received {len(ids)} events, the log holds {len(log_ids)} "
                        f"({len(set(log_ids) - set(ids))} missing)")
    last = got[-1][1] if got else t_intake
    wrk_s = w["duration_us"] / 1e6
    half = t0 + (t_intake - t0) / 2
    return {"orders_per_s": w["requests"] / wrk_s, "logged_per_s": len(log_ids) / wrk_s,
            "second_half_per_s": sum(half <= t <= t_intake for _, t in got) / max(t_intake - half, 1e-9),
            "delivered_per_s": len(ids) / max(last - t0, 1e-9), "lag_s": max(0.0, last - t_intake),
            "requests": len(receiver.deliveries) - requests_before, "events": len(ids), "problems": problems}


class Worker(intake.Server):
    """``delivery-service worker`` (both queues) in its own session; stop() ends it by its group."""

    def __init__(self, name: str, env: dict[str, str], logdir: Path) -> None:  # noqa: D107
        self.name, self.port = name, 0
        self.logpath = logdir / f"{name}.log"
        exe = Path(sys.executable).parent / "delivery-service"
        self._log = open(self.logpath, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen([str(exe), "worker"], env=env, stdout=self._log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)


def bench_backend(backend: str, args: argparse.Namespace, tmp: Path, control: list[str]) -> dict[str, Any]:
    tag = f"wh{os.getpid()}"
    with contextlib.ExitStack() as cleanup:
        dbs = intake.make_databases(backend, tmp, args.pg_admin_url, tag, cleanup)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(SECRET_KEY="bench-secret-not-for-production", ENV="production", PYTHONUNBUFFERED="1",
                   DATABASE_URL=dbs.service_url, WEBHOOK_RETRY_SCHEDULE="1",
                   WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")  # the receivers listen on loopback
        if args.redis_url:  # production: jobs queued in Redis, run by `delivery-service worker`s
            from redis import Redis

            with contextlib.closing(Redis.from_url(args.redis_url)) as redis:
                redis.flushdb()  # a database of its own (the docs say so): no stale jobs of other runs
            env["REDIS_URL"] = args.redis_url
        log(f"{backend}: preparing the database (migrations, units 51/42/48, demo)")
        token = intake.prepare_demo(env)
        if token is None:
            raise RuntimeError("demo load printed no API token (use an empty database)")
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
        for n in range(args.rq_workers if args.redis_url else 0):
            worker = Worker(f"{backend}-worker-{n}", env, tmp)
            cleanup.callback(worker.stop)
        target = intake.Target("service", server, intake.SERVICE_PATH, token, dbs.service_url,
                               "delivery_orders")
        target.probe(f"{tag}-probe")

        out = intake.cli(["api-clients", "webhook", str(client_id), "--url", receivers["answers"].url], env)
        secret = re.search(r"whsec_\S+", out)
        if not secret:
            raise RuntimeError("api-clients webhook printed no secret")
        receivers["answers"].secret = secret.group(0)
        flow = throughput(backend, target, engine, receivers["answers"], args, tag)

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
    return {"backend": backend, "db_version": version, "rows": rows, "receivers": counts, "flow": flow}


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> tuple[str, bool]:
    lines = ["| backend | intake orders/s (wrk) | events logged/s | events delivered/s, second half of "
             "intake | ÷ logged | events/s to the last one | lag after intake | webhook requests | checked |",
             "|---|---|---|---|---|---|---|---|---|"]
    verdicts, valid = [], True
    for result in results:
        f = result["flow"]
        ratio = f["second_half_per_s"] / f["logged_per_s"] if f["logged_per_s"] else 0.0
        checked = (f"INVALID: {'; '.join(f['problems'])}" if f["problems"] else
                   f"{f['events']:,} events, all signatures valid, in the log's order, none twice or missing")
        valid &= not f["problems"]
        lines.append(f"| {result['backend']} | {f['orders_per_s']:,.0f} | {f['logged_per_s']:,.0f} | "
                     f"{f['second_half_per_s']:,.0f} | {ratio:.2f} | {f['delivered_per_s']:,.0f} | "
                     f"{f['lag_s']:.2f} s | {f['requests']:,} | "
                     f"{checked} |")
        verdicts.append(f"- {result['backend']}: webhooks delivered {f['second_half_per_s']:,.0f} events/s "
                        f"in the second half of intake, which logged {f['logged_per_s']:,.0f} "
                        f"({f['orders_per_s']:,.0f} orders/s): {ratio:.2f} (target ≥ 0.9, keeps up): "
                        f"**{'PASS' if ratio >= 0.9 and not f['problems'] else 'FAIL'}**")
    lines += ["", "| backend | case | req/s | p50 ms | p99 ms | max ms | receiver |",
              "|---|---|---|---|---|---|---|"]
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
    cond = (f"throughput: wrk {args.duration:g} s, {args.connections} connections; p99: "
            f"{args.rate:g} req/s open loop, {args.rounds} × {args.segment:g} s per case interleaved, "
            f"gunicorn {args.workers} workers, "
            + (f"Redis with {args.rq_workers} rq worker(s), " if args.redis_url else "no Redis, ")
            + "WEBHOOK_RETRY_SCHEDULE=1, default timeouts "
            "(3 s connect, 5 s read); " + "; ".join(f"{r['backend']}: {r['db_version']}" for r in results))
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
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of intake at its maximum (wrk)")
    parser.add_argument("--connections", type=int, default=8, help="wrk's connections")
    parser.add_argument("--pg-admin-url", default=intake.DEFAULT_PG_ADMIN)
    parser.add_argument("--redis-url", default=None,
                        help="run the service with this Redis (emptied first: give it a database of its "
                             "own) and --rq-workers `delivery-service worker` processes, as in production")
    parser.add_argument("--rq-workers", type=int, default=1, help="rq workers with --redis-url (default 1)")
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
