"""Benchmark: courier events through POST /api/v1/courier/sync under gunicorn, next to the intake
ceiling (the bare app of scripts/bench/bare_app.py) measured in the same run.

For each backend (SQLite file with WAL in a temporary folder; a throwaway PostgreSQL database):

1. prepare the service's database like scripts/bench/intake.py (``db upgrade``, units, ``demo load``;
   route QNG-01 without a capacity, so that every order lands on the demo courier's route) and the
   bare app's; serve both with gunicorn (2 sync workers by default);
2. create the orders through the intake API and have the courier confirm their pickup (sync batches
   of 200, not measured), then log in as the courier (session cookie + CSRF token, as the app does);
3. measure ``delivered`` events (receiver, last-4 ID check, position, amount: the full path with the
   implied out_for_delivery, proof row and learnt position) in batches of 1 and of 20 events, each
   event a different order, from N keep-alive connections (8) of a Python load generator (threads
   and http.client: every request carries new event ids and a new order, which wrk would need a
   stateful Lua script for); after a warm-up of 100 events;
   Each order has an address of its own (house numbers), as on a real run. Each case's clock runs
   until the job outbox has nothing owed, so that work deferred to the background would not be
   left out of the rate;
4. one event a request at half load: an open loop at half the batches-of-1 rate (each request due
   at its slot, latency from the slot, as intake.py's half-load rows);
5. in the same run, the service's own intake (``POST /api/v1/orders``) with the same Python
   generator and with wrk (as intake.py measures it): the targets are sync events/s ≥ intake
   orders/s for batches of 1 and ≥ 2× for batches of 20, against the same generator's figure;
6. the ceiling: the bare app's one-row POST with wrk, and with the same Python generator (so that
   the generator's own cost shows);
7. checks: every event answered ``applied``, and the delivered events in the database equal the
   events sent; orders added equal the 201s; otherwise the figures are marked INVALID and the exit
   status is 1.

Prints one markdown table (backend | case | events/s | requests/s | p50 ms | p99 ms | against intake
| share of the bare ceiling | CPU ms per event or order). The CPU column is where the ratio comes from:
the user + system CPU of the server's gunicorn processes (on SQLite the database's work is done in
them) and, on PostgreSQL, + that of PostgreSQL's processes, read from /proc before and after the case
(its jobs drained), divided by the events stored or the orders created; the load generator's own CPU
is not in it. On a 2-core machine the rates follow these costs.

    .venv/bin/python scripts/bench/sync.py                         # both backends, about 3 minutes
    .venv/bin/python scripts/bench/sync.py --backends sqlite --events 1000
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import intake  # noqa: E402  (servers, databases and wrk, shared with the intake benchmark)
import openloop  # noqa: E402

HOST = intake.HOST
SYNC_PATH = "/api/v1/courier/sync"


def log(msg: str) -> None:
    intake.log(msg)


# --- a small keep-alive load generator ----------------------------------------------------------

@dataclass
class Load:
    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float:
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


def drive(port: int, path: str, bodies: list[bytes], headers: dict[str, str], connections: int,
          count_results: bool = False) -> Load:
    """POST every body once, from ``connections`` keep-alive connections; closed loop."""
    load = Load()
    lock = threading.Lock()
    queue = iter(bodies)

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        lat: list[float] = []
        statuses: dict[int, int] = {}
        results: dict[str, int] = {}
        while True:
            with lock:
                body = next(queue, None)
            if body is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                with lock:
                    load.errors.append(repr(exc))
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=30)
                continue
            lat.append((time.perf_counter() - t0) * 1000)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            if count_results and resp.status == 200:
                for r in json.loads(data)["results"]:
                    results[r["result"]] = results.get(r["result"], 0) + 1
        conn.close()
        with lock:
            load.latencies_ms.extend(lat)
            for k, v in statuses.items():
                load.statuses[k] = load.statuses.get(k, 0) + v
            for k2, v in results.items():
                load.results[k2] = load.results.get(k2, 0) + v

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load.seconds = time.perf_counter() - start
    load.requests = len(load.latencies_ms)
    return load


# --- the courier's session ----------------------------------------------------------------------

def _request(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
             ) -> tuple[int, dict[str, str], bytes, list[str]]:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read(), resp.headers.get_all("Set-Cookie") or []
    finally:
        conn.close()


def courier_session(port: int, password: str) -> dict[str, str]:
    """Log in as the demo courier; the headers a page's script sends (cookie and CSRF token). The
    cookie is handled by hand: ENV=production marks it Secure, which cookie jars keep off http."""
    from urllib.parse import urlencode

    def cookie_of(set_cookies: list[str], jar: dict[str, str]) -> None:
        for c in set_cookies:
            name, _, rest = c.partition("=")
            jar[name.strip()] = rest.split(";", 1)[0]

    jar: dict[str, str] = {}
    _, _, page, cookies = _request(port, "GET", "/login")
    cookie_of(cookies, jar)
    token = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', page).group(1).decode()
    form = urlencode({"username": "courier", "password": password, "csrf_token": token}).encode()
    status, _, _, cookies = _request(port, "POST", "/login", form, {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())})
    if status not in (302, 303):
        raise RuntimeError(f"courier log-in answered {status}")
    cookie_of(cookies, jar)
    for path in ("/", "/courier/"):
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
        _, _, page, cookies = _request(port, "GET", path, headers=headers)
        cookie_of(cookies, jar)  # the page's CSRF token lives in the session it sets
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items())}
        m = re.search(rb'name="csrf-token" content="([^"]+)"', page) or re.search(
            rb'name="csrf_token"[^>]*value="([^"]+)"', page)
        if m:
            return {**headers, "X-CSRFToken": m.group(1).decode(), "Content-Type": "application/json"}
    raise RuntimeError("no CSRF token on the courier's pages")


# --- events -------------------------------------------------------------------------------------

def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def delivered(item_id: str) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "item_id": item_id, "action": "delivered", "device_time": _now(),
            "latitude": 15.1205, "longitude": 108.8044, "accuracy_m": 12.0,
            "receiver": {"kind": "recipient"}, "id_check": {"kind": "id_last4", "value": "1234"},
            "amount_collected_vnd": 26000}


def batches(events: list[dict[str, Any]], size: int) -> list[bytes]:
    return [json.dumps({"events": events[i:i + size]}).encode() for i in range(0, len(events), size)]


def create_orders(port: int, token: str, n: int, tag: str, connections: int) -> list[str]:
    appt = intake.appointment_date()
    # Each order at an address of its own, as on a real run: the learnt place of one address is a row
    # that every delivery there updates (one hot row for all the events would measure its lock).
    street = "12 Hùng Vương".encode()
    bodies = [intake.order_body(f"{tag}-{i}", appt).replace(street, f"{i} Hùng Vương".encode())
              for i in range(n)]
    ids: list[str] = []
    lock = threading.Lock()
    queue = iter(bodies)

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while True:
            with lock:
                body = next(queue, None)
            if body is None:
                break
            conn.request("POST", "/api/v1/orders", body=body, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            data = json.loads(resp.read())
            if resp.status != 201:
                raise RuntimeError(f"intake answered {resp.status}: {data}")
            with lock:
                ids.append(data["item_id"])
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if len(ids) != n:
        raise RuntimeError(f"created {len(ids)} orders of {n}")
    return ids


def pick_up(port: int, headers: dict[str, str], item_ids: list[str]) -> None:
    events = [{"event_id": str(uuid.uuid4()), "item_id": i, "action": "pickup_confirmed",
               "device_time": _now()} for i in item_ids]
    load = drive(port, SYNC_PATH, batches(events, 200), headers, 2, count_results=True)
    if load.results.get("applied") != len(item_ids):
        raise RuntimeError(f"pickup confirmations: {load.results} (statuses {load.statuses})")


def prepare_courier_demo(env: dict[str, str], password: str) -> str:
    """``intake.prepare_demo`` (an empty database), then route QNG-01 without a capacity or a backup, so
    that every order lands on the demo courier's route; the demo counter's API token."""
    token = intake.prepare_demo(env, password)
    if token is None:
        raise RuntimeError("demo load printed no API token (use an empty database)")
    engine = intake.sa.create_engine(env["DATABASE_URL"], poolclass=intake.sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(intake.sa.text("UPDATE postal_routes SET capacity_per_day = NULL, "
                                    "backup_route_id = NULL WHERE code = 'QNG-01'"))
    engine.dispose()
    return token


# --- CPU per request -----------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _processes() -> list[tuple[int, str, int, float]]:
    """(pid, command name, process group, user + system CPU seconds) of every process (/proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2:].split()
        found.append((int(entry.name), name, int(rest[2]), (int(rest[11]) + int(rest[12])) / _TICK))
    return found


@dataclass
class Cpu:
    """CPU seconds spent by a server's process group (gunicorn's master and workers: on SQLite the
    database's work too) and by PostgreSQL's processes, between two readings."""

    service_s: float
    database_s: float | None

    @staticmethod
    def read(pgid: int, backend: str) -> Cpu:
        procs = _processes()
        return Cpu(sum(cpu for _, _, group, cpu in procs if group == pgid),
                   sum(cpu for _, name, _, cpu in procs if name == "postgres") if backend == "postgresql"
                   else None)

    def since(self, before: Cpu) -> Cpu:
        return Cpu(self.service_s - before.service_s,
                   None if self.database_s is None or before.database_s is None
                   else self.database_s - before.database_s)

    def per_unit_ms(self, units: int) -> str:
        """Milliseconds per event or order: the service's, + PostgreSQL's."""
        units = max(units, 1)
        service = f"{self.service_s / units * 1000:.2f}"
        return service if self.database_s is None else f"{service} + {self.database_s / units * 1000:.2f}"


# --- one backend --------------------------------------------------------------------------------

@dataclass
class Row:
    case: str
    events_per_s: float | None
    rps: float
    p50_ms: float
    p99_ms: float
    problems: list[str] = field(default_factory=list)
    note: str = ""
    cpu_ms: str | None = None  # CPU ms per event (sync) or order: service (+ PostgreSQL)


def open_jobs(url: str) -> int:
    return intake.count_rows(url, "job_outbox WHERE state IN ('pending', 'handed', 'running')")


def wait_for_jobs(url: str, timeout: float = 120.0) -> float:
    """Seconds until the job outbox has nothing owed or running (the background half of the events)."""
    start = time.perf_counter()
    while open_jobs(url) and time.perf_counter() - start < timeout:
        time.sleep(0.1)
    return time.perf_counter() - start


def bench_backend(backend: str, args: argparse.Namespace, tmp: Path,
                  control_flag: list[str]) -> dict[str, Any]:
    tag = f"s{os.getpid()}"
    rows: list[Row] = []
    with contextlib.ExitStack() as cleanup:
        dbs = intake.make_databases(backend, tmp, args.pg_admin_url, tag, cleanup)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(SECRET_KEY="bench-secret-not-for-production", ENV="production", PYTHONUNBUFFERED="1")
        senv = {**env, "DATABASE_URL": dbs.service_url}
        benv = {**env, "DATABASE_URL": dbs.bare_url}
        log(f"{backend}: preparing the databases")
        token = prepare_courier_demo(senv, args.password)
        subprocess.run([sys.executable, str(HERE / "bare_app.py"), "init"], env=benv, check=True, timeout=120)
        version = intake.db_version(dbs.service_url)

        ports = (openloop.free_port(), openloop.free_port())
        svc = intake.Server(f"{backend}-service", "delivery_service:create_app()", senv, ports[0],
                            args.workers, intake.ROOT, tmp, control_flag)
        cleanup.callback(svc.stop)
        bare = intake.Server(f"{backend}-bare", "bare_app:create_app()", benv, ports[1], args.workers, HERE,
                             tmp, control_flag)
        cleanup.callback(bare.stop)
        svc.wait_ready()
        bare.wait_ready()

        sizes = [int(s) for s in args.batch_sizes.split(",")]
        n_orders = args.warmup_events + args.events * len(sizes) + args.half_events
        log(f"{backend}: creating {n_orders} orders and confirming their pickup (not measured)")
        item_ids = create_orders(ports[0], token, n_orders, tag, args.connections)
        headers = courier_session(ports[0], args.password)
        pick_up(ports[0], headers, item_ids)

        warm, rest = item_ids[:args.warmup_events], item_ids[args.warmup_events:]
        drive(ports[0], SYNC_PATH, batches([delivered(i) for i in warm], 1), headers, args.connections)
        wait_for_jobs(dbs.service_url)
        before = intake.count_rows(dbs.service_url, "order_events WHERE status_to = 'delivered'")
        sent = 0
        single_rate = None
        for k, size in enumerate(sizes):
            chunk = rest[k * args.events:(k + 1) * args.events]
            events = [delivered(i) for i in chunk]
            log(f"{backend}: sync, batches of {size}, {len(events)} events, {args.connections} connections")
            cpu0 = Cpu.read(svc.proc.pid, backend)
            load = drive(ports[0], SYNC_PATH, batches(events, size), headers, args.connections,
                         count_results=True)
            drain = wait_for_jobs(dbs.service_url)
            cpu = Cpu.read(svc.proc.pid, backend).since(cpu0)
            sent += len(events)
            problems = []
            if load.results.get("applied", 0) != len(events):
                problems.append(f"results {load.results}")
            if set(load.statuses) != {200} or load.errors:
                problems.append(f"statuses {load.statuses}, errors {load.errors[:3]}")
            if open_jobs(dbs.service_url):
                problems.append("background jobs still owed after 120 s")
            seconds = load.seconds + drain
            row = Row(f"sync, batches of {size}", len(events) / seconds, load.requests / seconds,
                      load.pct(50), load.pct(99), problems,
                      f"requests {load.seconds:.1f} s + background {drain:.1f} s",
                      cpu.per_unit_ms(len(events)))
            log(f"  {row.events_per_s:.0f} events/s, {row.rps:.0f} req/s, p50 {row.p50_ms:.1f} ms, "
                f"p99 {row.p99_ms:.1f} ms, {row.note}" + (f"  PROBLEM: {problems}" if problems else ""))
            rows.append(row)
            if size == 1:
                single_rate = row.events_per_s
        half_ids = rest[len(sizes) * args.events:]
        if single_rate and half_ids:
            rate = min(round(single_rate / 2, 1), len(half_ids) / args.half_duration)
            log(f"{backend}: sync, one event a request, open loop at {rate:g} req/s, {args.half_duration:g}s")
            port = ports[0]
            half_events = [delivered(i) for i in half_ids]
            cpu0 = Cpu.read(svc.proc.pid, backend)
            res = openloop.run(port, rate, args.half_duration, lambda i: openloop.http_request(
                "POST", SYNC_PATH, port, batches([half_events[i]], 1)[0], headers))
            drain = wait_for_jobs(dbs.service_url)
            cpu = Cpu.read(svc.proc.pid, backend).since(cpu0)
            answered = res.statuses.get(200, 0)
            sent += answered
            problems = [] if set(res.statuses) == {200} and not res.errors and not res.dropped else [
                f"statuses {dict(res.statuses)}, errors {dict(res.errors)}, dropped {res.dropped}"]
            rows.append(Row(f"sync, batches of 1, half load (open loop at {rate:g} req/s)", res.achieved_rate,
                            res.achieved_rate, res.pct_ms(50), res.pct_ms(99), problems,
                            f"generator lag p99 {res.lag_ms(99):.1f} ms; background {drain:.1f} s after",
                            cpu.per_unit_ms(answered)))
            log(f"  p50 {res.pct_ms(50):.1f} ms, p99 {res.pct_ms(99):.1f} ms")
        stored = intake.count_rows(dbs.service_url, "order_events WHERE status_to = 'delivered'") - before
        if stored != sent:
            rows[-1].problems.append(f"delivered events stored {stored} != answered {sent}")

        log(f"{backend}: intake in the same run: the Python generator ({args.events} orders), then wrk "
            f"{args.duration:g} s")
        orders_before = intake.count_rows(dbs.service_url, "delivery_orders")
        appt = intake.appointment_date()
        bodies = [intake.order_body(f"{tag}-in-{i}", appt) for i in range(args.events)]
        cpu0 = Cpu.read(svc.proc.pid, backend)
        load = drive(ports[0], intake.SERVICE_PATH, bodies, {"Content-Type": "application/json",
                                                              "Authorization": f"Bearer {token}"},
                     args.connections)
        cpu = Cpu.read(svc.proc.pid, backend).since(cpu0)
        added = intake.count_rows(dbs.service_url, "delivery_orders") - orders_before
        problems = [] if set(load.statuses) == {201} and added == args.events else [
            f"statuses {load.statuses}, orders added {added}"]
        rows.append(Row("intake (POST /api/v1/orders), Python generator", None, load.requests / load.seconds,
                        load.pct(50), load.pct(99), problems, cpu_ms=cpu.per_unit_ms(load.requests)))
        orders_before = intake.count_rows(dbs.service_url, "delivery_orders")
        w = intake.wrk(ports[0], intake.SERVICE_PATH, token, f"i{tag}", args.duration, args.connections,
                       min(2, args.connections))
        added = intake.count_rows(dbs.service_url, "delivery_orders") - orders_before
        non2xx = w["s4xx"] + w["s5xx"] + w["sother"]
        problems = [f"{non2xx} non-2xx"] if non2xx else []
        if not w["s201"] <= added <= w["s201"] + args.connections:
            problems.append(f"orders added {added} != 201s {w['s201']}")
        rows.append(Row("intake (POST /api/v1/orders), wrk", None, w["requests"] / (w["duration_us"] / 1e6),
                        w["p50_us"] / 1000, w["p99_us"] / 1000, problems))

        log(f"{backend}: the ceiling, bare app: wrk {args.duration:g} s, then the Python generator")
        w = intake.wrk(ports[1], intake.BARE_PATH, "", f"b{tag}", args.duration, args.connections,
                       min(2, args.connections))
        non2xx = w["s4xx"] + w["s5xx"] + w["sother"]
        wrk_problems = [f"{non2xx} non-2xx"] if non2xx else []
        rows.append(Row("bare ceiling (one-row POST), wrk", None, w["requests"] / (w["duration_us"] / 1e6),
                        w["p50_us"] / 1000, w["p99_us"] / 1000, wrk_problems))
        appt = intake.appointment_date()
        bodies = [intake.order_body(f"{tag}-bare-{i}", appt) for i in range(args.events)]
        cpu0 = Cpu.read(bare.proc.pid, backend)
        load = drive(ports[1], intake.BARE_PATH, bodies, {"Content-Type": "application/json"},
                     args.connections)
        cpu = Cpu.read(bare.proc.pid, backend).since(cpu0)
        rows.append(Row("bare ceiling (one-row POST), Python generator", None, load.requests / load.seconds,
                        load.pct(50), load.pct(99),
                        [] if set(load.statuses) <= {200, 201} else [f"statuses {load.statuses}"],
                        cpu_ms=cpu.per_unit_ms(load.requests)))
        for s in (svc, bare):
            if s.proc.poll() is not None:
                raise RuntimeError(f"{s.name} died during the run:\n{s.log_tail()}")
    return {"backend": backend, "db_version": version, "rows": rows}


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> tuple[str, bool]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=intake.ROOT, capture_output=True,
                            text=True).stdout.strip()
    lines = [f"Result, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}, "
             f"{os.cpu_count()} CPUs, Python {platform.python_version()}, "
             f"gunicorn {args.workers} sync workers, "
             f"{args.connections} connections, {args.events} events per case:", "",
             "| backend | case | events/s | requests/s | p50 ms | p99 ms | events/s ÷ intake orders/s "
             "(Python generator / wrk) | share of the bare ceiling (wrk) | CPU ms per event or order "
             "(service + PostgreSQL) |",
             "|---|---|---|---|---|---|---|---|---|"]
    ok = True
    verdicts = []
    for res in results:
        by_case = {r.case: r for r in res["rows"]}
        ceiling = by_case["bare ceiling (one-row POST), wrk"].rps
        intake_py = by_case["intake (POST /api/v1/orders), Python generator"].rps
        intake_wrk = by_case["intake (POST /api/v1/orders), wrk"].rps
        for r in res["rows"]:
            ok = ok and not r.problems
            events = f"{r.events_per_s:,.0f}" if r.events_per_s is not None else "–"
            share = (f"{r.rps / ceiling:.0%} of requests" + (f", {r.events_per_s / ceiling:.0%} in events"
                                                               if r.events_per_s is not None else "")
                     if r.case != "bare ceiling (one-row POST), wrk" else "1 (ceiling)")
            against = (f"{r.events_per_s / intake_py:.2f} / {r.events_per_s / intake_wrk:.2f}"
                       if r.events_per_s is not None and "half load" not in r.case else "–")
            flag = f" INVALID: {'; '.join(r.problems)}" if r.problems else ""
            note = f" ({r.note})" if r.note else ""
            lines.append(f"| {res['backend']} | {r.case}{note}{flag} | {events} | {r.rps:,.0f} | "
                         f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {against} | {share} | {r.cpu_ms or '–'} |")
        for size, target in (("1", 1.0), ("20", 2.0)):
            r = by_case.get(f"sync, batches of {size}")
            if r is not None:
                ratio = r.events_per_s / intake_py
                verdicts.append(f"- {res['backend']}: batches of {size}: {r.events_per_s:,.0f} events/s, "
                                f"{ratio:.2f}× intake's {intake_py:,.0f} orders/s (same generator; target ≥ "
                                f"{target:g}×): **{'PASS' if ratio >= target else 'FAIL'}**")
        half = next((r for r in res["rows"] if "half load" in r.case), None)
        if half is not None:
            verdicts.append(f"- {res['backend']}: one event a request at half load: p50 {half.p50_ms:.1f} ms "
                            f"(target ≤ 10 ms): **{'PASS' if half.p50_ms <= 10 else 'FAIL'}**")
    lines.append("")
    lines.extend(verdicts)
    lines.append("")
    lines.append("Databases: " + "; ".join(f"{r['backend']}: {r['db_version']}" for r in results))
    return "\n".join(lines), ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    ap.add_argument("--events", type=int, default=2000, help="events per case (default 2000)")
    ap.add_argument("--batch-sizes", default="1,20", help="events per request, comma-separated (default 1,20)"
                    )
    ap.add_argument("--warmup-events", type=int, default=100)
    ap.add_argument("--half-events", type=int, default=1000,
                    help="orders kept for the half-load case (default 1000)")
    ap.add_argument("--half-duration", type=float, default=6.0,
                    help="seconds of the half-load case (default 6)")
    ap.add_argument("--duration", type=float, default=8.0, help="seconds of wrk on the bare app (default 8)")
    ap.add_argument("--connections", type=int, default=8, help="keep-alive connections (default 8)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn sync workers, both apps (default 2)")
    ap.add_argument("--password", default="bench-courier-password")
    ap.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", intake.DEFAULT_PG_ADMIN))
    args = ap.parse_args()
    if not intake.shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install -y wrk)")
    import signal

    signal.signal(signal.SIGTERM, intake._on_term)
    control_flag = intake.gunicorn_control_flag()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        for backend in args.backends.split(","):
            results.append(bench_backend(backend.strip(), args, Path(tmp), control_flag))
    table, ok = report(results, args)
    print(table)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
