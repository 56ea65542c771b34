"""Benchmark: order intake (POST /api/v1/orders) against the bare ceiling, measured in the same run.

For each backend (SQLite file with WAL in a temporary folder; a throwaway PostgreSQL database):

1. prepare the service's database (``db upgrade``, ``units import``, ``demo load``, an API token) and
   the baseline's (scripts/bench/bare_app.py: Flask + Flask-SQLAlchemy + marshmallow, one row per
   POST, the same SQLite pragmas / PostgreSQL pool), and serve both with the same gunicorn settings;
2. max throughput: wrk, N connections (8), after a warm-up; service and baseline alternate for
   ``--rounds`` rounds (3); the table shows the median req/s of each and the median of the
   rounds' service/baseline ratios (adjacent runs, so drift of the machine's load mostly cancels);
3. half load: an open-loop run (scripts/bench/openloop.py; Debian has no wrk2) at 50 % of the
   service's measured max throughput, for the service and for the baseline at the same rate, in
   interleaved segments of ~4 s pooled per target; plus the generator's own floor (a trivial
   server at that rate, in the same rotation);
4. after every run: the rows the run added must match the 201s it saw (wrk may miss the answers of
   requests still in flight when it stops: at most one per connection), with no non-2xx answers
   and no socket errors; otherwise the figures are marked INVALID and the exit status is 1.

Prints one markdown table (backend | case | req/s | p50 ms | p99 ms | ratio to baseline) and the
verdicts for the targets (issue 15): intake throughput >= 60 % of the bare ceiling on SQLite and
>= 65 % on PostgreSQL (THROUGHPUT_TARGETS); p99 < 50 ms at half load.

    .venv/bin/python scripts/bench/intake.py                       # both backends, about 4 minutes
    .venv/bin/python scripts/bench/intake.py --backends sqlite --duration 10 --rounds 1
    .venv/bin/python scripts/bench/intake.py --redis-url redis://127.0.0.1:6379/7   # the service with Redis

``--redis-url``: the service runs with that Redis (the production set-up: its follow-up jobs, such as
geocoding the new orders, are queued for rq; no worker runs them here, they wait in that Redis
database, which the script neither reads nor empties: give it one of its own). The bare app has no
background work either way.

Needs wrk (``apt-get install -y wrk``) and, for PostgreSQL, a server reachable as
``--pg-admin-url`` (default postgresql+psycopg://postgres@127.0.0.1:5432/postgres) that may create
databases. Everything listens on 127.0.0.1 only; servers, databases and temporary files are removed
on exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import openloop  # noqa: E402

try:
    import sqlalchemy as sa
except ImportError:  # pragma: no cover
    sys.exit("sqlalchemy is not importable: run this with the project's venv, "
             "e.g. .venv/bin/python scripts/bench/intake.py")

HOST = "127.0.0.1"
SERVICE_PATH = "/api/v1/orders"
BARE_PATH = "/orders"
LUA = HERE / "orders.lua"
# intake throughput / bare ceiling, per backend (issue 15): with routing, the event log, webhooks and the
# report fold on
THROUGHPUT_TARGETS = {"sqlite": 0.60, "postgresql": 0.65}
P99_TARGET_MS = 50.0  # p99 at half load
DEFAULT_PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _on_term(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- processes ---------------------------------------------------------------------------------

class Server:
    """A gunicorn master in its own session; stop() ends it and its workers by its process group."""

    def __init__(self, name: str, app_spec: str, env: dict[str, str], port: int, workers: int,
                 chdir: Path, logdir: Path, control_flag: list[str]) -> None:
        self.name, self.port = name, port
        self.logpath = logdir / f"{name}.log"
        cmd = [sys.executable, "-m", "gunicorn", "-w", str(workers), "-b", f"{HOST}:{port}",
               "--chdir", str(chdir), *control_flag, app_spec]
        self._log = open(self.logpath, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}/health", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.logpath.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # workers left behind by a killed master share its process group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._log.close()


def gunicorn_control_flag() -> list[str]:
    """gunicorn >= 24 opens a control socket in ~/.gunicorn; two servers at once must not share it."""
    out = subprocess.run([sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True,
                         timeout=60).stdout
    return ["--no-control-socket"] if "--no-control-socket" in out else []


def cli(args: list[str], env: dict[str, str]) -> str:
    exe = Path(sys.executable).parent / "delivery-service"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c",
                                           "from delivery_service.cli import main; main()"]
    res = subprocess.run(cmd + args, env=env, capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise RuntimeError(f"delivery-service {' '.join(args)} failed ({res.returncode}):\n"
                           f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return res.stdout


def prepare_demo(env: dict[str, str], password: str | None = None) -> str | None:
    """The service's database as every benchmark prepares it: migrated, the units of provinces 51, 42
    and 48, the demo data (its users' password ``password``, if given); the demo counter's API token,
    or None when the demo data was loaded before (``demo load`` shows a token only once)."""
    cli(["db", "upgrade"], env)
    cli(["units", "import", "--province", "51", "--province", "42", "--province", "48"], env)
    out = cli(["demo", "load", *(["--password", password] if password else [])], env)
    found = re.search(r"API token for counter QNG-TTHCC \(shown once\): (\S+)", out)
    return found.group(1) if found else None


# --- databases ---------------------------------------------------------------------------------

@dataclass
class Databases:
    backend: str
    service_url: str
    bare_url: str
    drop: list[str] = field(default_factory=list)  # PostgreSQL databases to drop at the end


def make_databases(backend: str, tmp: Path, pg_admin: str, tag: str,
                   cleanup: contextlib.ExitStack) -> Databases:
    if backend == "sqlite":
        return Databases(backend, f"sqlite:///{tmp / 'service.sqlite3'}", f"sqlite:///{tmp / 'bare.sqlite3'}")
    names = [f"ds_bench_{tag}", f"ds_bench_bare_{tag}"]
    admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def drop() -> None:
        with admin.connect() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        log(f"dropped PostgreSQL databases {', '.join(names)}")

    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        cleanup.callback(drop)
        for name in names:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    base = pg_admin.rsplit("/", 1)[0]
    return Databases(backend, f"{base}/{names[0]}", f"{base}/{names[1]}", names)


def count_rows(url: str, table: str) -> int:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(sa.text(f"SELECT count(*) FROM {table}")))
    finally:
        engine.dispose()


def db_version(url: str) -> str:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if url.startswith("sqlite"):
                return "SQLite " + conn.scalar(sa.text("select sqlite_version()"))
            return conn.scalar(sa.text("select version()")).split(" on ")[0]
    finally:
        engine.dispose()


# --- load ---------------------------------------------------------------------------------------

@dataclass
class Run:
    """One measured run and its correctness check."""
    target: str  # "service" | "bare"
    kind: str  # "max" | "half" | "floor"
    rps: float
    p50_ms: float
    p99_ms: float
    ok201: int
    non2xx: int
    socket_errors: int
    rows_added: int | None
    in_flight_slack: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        out = []
        if self.non2xx:
            out.append(f"{self.non2xx} non-2xx answers")
        if self.socket_errors:
            out.append(f"{self.socket_errors} socket errors/timeouts/dropped")
        if self.extra.get("s200"):
            out.append(f"{self.extra['s200']} answers were 200 (a repeated dossier code)")
        if self.rows_added is not None and not (
                self.ok201 <= self.rows_added <= self.ok201 + self.in_flight_slack):
            out.append(f"rows added {self.rows_added} != 201s seen {self.ok201}"
                       + (f" (+ up to {self.in_flight_slack} in flight)" if self.in_flight_slack else ""))
        if self.ok201 == 0 and self.kind != "floor":
            out.append("no request succeeded")
        return out


def wrk(port: int, path: str, token: str, tag: str, duration: float, connections: int,
        threads: int) -> dict[str, Any]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s",
           "-s", str(LUA), f"http://{HOST}:{port}", "--", path, token or "-", tag]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, stdin=subprocess.DEVNULL)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if res.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return json.loads(line[len("WRKJSON "):])


def order_body(dossier_code: str, appointment: str) -> bytes:
    return json.dumps({
        "direction": "result_to_citizen", "dossier_code": dossier_code,
        "procedure_code": "1.011442.000.00.00.H55", "procedure_name": "Cấp đổi giấy phép lái xe",
        "issuing_agency": "Sở Xây dựng tỉnh Quảng Ngãi",
        "recipient": {"name": "Nguyễn Thị Hoa", "phone": "0905123456"},
        "address": {"province_code": "51", "commune_code": "21025", "detail": "12 Hùng Vương"},
        "postage_vnd": 26000, "appointment_date": appointment,
    }, ensure_ascii=False).encode()


def appointment_date() -> str:
    import datetime as dt
    return (dt.date.today() + dt.timedelta(days=3)).isoformat()


@dataclass
class Target:
    name: str  # "service" | "bare"
    server: Server
    path: str
    token: str
    url: str
    table: str

    def rows(self) -> int:
        return count_rows(self.url, self.table)

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        return h

    def probe(self, tag: str) -> None:
        """One request by hand: fail early and clearly (a bad token, a missing unit, ...)."""
        req = urllib.request.Request(f"http://{HOST}:{self.server.port}{self.path}", method="POST",
                                     data=order_body(f"{tag}-probe", appointment_date()),
                                     headers=self.headers())
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"{self.name}: probe answered {resp.status}: {resp.read()[:500]!r}")
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{self.name}: probe answered {exc.code}: {exc.read()[:1000]!r}") from None


def max_run(t: Target, tag: str, args: argparse.Namespace, settle: float = 0.5) -> Run:
    before = t.rows()
    w = wrk(t.server.port, t.path, t.token, tag, args.duration, args.connections, args.threads)
    time.sleep(settle)  # let requests still in flight when wrk stopped finish
    added = t.rows() - before
    socket_errors = w["err_connect"] + w["err_read"] + w["err_write"] + w["err_timeout"]
    return Run(t.name, "max", w["requests"] / (w["duration_us"] / 1e6), w["p50_us"] / 1000,
               w["p99_us"] / 1000, w["s201"], w["s4xx"] + w["s5xx"] + w["sother"], socket_errors, added,
               args.connections, {"s200": w["s200"], "p90_ms": w["p90_us"] / 1000,
                                  "max_ms": w["max_us"] / 1000, "requests": w["requests"],
                                  "s4xx": w["s4xx"], "s5xx": w["s5xx"]})


def half_segment(t: Target, tag: str, rate: float, duration: float) -> tuple[openloop.OpenLoopResult, int]:
    """One open-loop segment; returns the result and the rows it added."""
    before = t.rows()
    appt, port, headers = appointment_date(), t.server.port, t.headers()
    res = openloop.run(port, rate, duration, lambda i: openloop.http_request(
        "POST", t.path, port, order_body(f"{tag}-{i}", appt), headers))
    return res, t.rows() - before


def half_run(name: str, parts: list[tuple[openloop.OpenLoopResult, int]], rate: float) -> Run:
    """The segments of one target pooled into one run (percentiles over all their requests)."""
    res = openloop.OpenLoopResult.merge([p for p, _ in parts])
    s = res.summary()
    return Run(name, "half", res.achieved_rate, res.pct_ms(50), res.pct_ms(99), res.statuses.get(201, 0),
               res.count(300, 1000) + res.count(0, 200), sum(res.errors.values()) + res.dropped,
               sum(rows for _, rows in parts), 0,
               {"s200": res.statuses.get(200, 0), "rate": rate, "segments": len(parts), **s})


def floor_run(parts: list[openloop.OpenLoopResult], rate: float) -> Run:
    res = openloop.OpenLoopResult.merge(parts)
    return Run("generator", "floor", res.achieved_rate, res.pct_ms(50), res.pct_ms(99),
               res.statuses.get(201, 0), res.count(300, 1000), sum(res.errors.values()) + res.dropped,
               None, 0, {"rate": rate, **res.summary()})


# --- one backend --------------------------------------------------------------------------------

def bench_backend(backend: str, args: argparse.Namespace, tmp: Path,
                  control_flag: list[str]) -> dict[str, Any]:
    tag = f"{os.getpid()}"
    with contextlib.ExitStack() as cleanup:
        dbs = make_databases(backend, tmp, args.pg_admin_url, tag, cleanup)
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        env.update(SECRET_KEY="bench-secret-not-for-production", ENV="production", PYTHONUNBUFFERED="1")
        senv = {**env, "DATABASE_URL": dbs.service_url}
        if args.redis_url:
            senv["REDIS_URL"] = args.redis_url
        benv = {**env, "DATABASE_URL": dbs.bare_url}

        log(f"{backend}: preparing the service's database (migrations, units 51/42/48, demo)")
        token = prepare_demo(senv)
        if token is None:  # demo data loaded before: a token of its own
            out = cli(["api-clients", "create", "--counter", "QNG-TTHCC", "--name", "bench"], senv)
            token = out.strip().splitlines()[-1]
        subprocess.run([sys.executable, str(HERE / "bare_app.py"), "init"], env=benv, check=True, timeout=120)
        version = db_version(dbs.service_url)

        ports = (openloop.free_port(), openloop.free_port())
        svc = Server(f"{backend}-service", "delivery_service:create_app()", senv, ports[0], args.workers,
                     ROOT, tmp, control_flag)
        cleanup.callback(svc.stop)
        bare = Server(f"{backend}-bare", "bare_app:create_app()", benv, ports[1], args.workers, HERE, tmp,
                      control_flag)
        cleanup.callback(bare.stop)
        svc.wait_ready()
        bare.wait_ready()
        targets = {"service": Target("service", svc, SERVICE_PATH, token, dbs.service_url, "delivery_orders"),
                   "bare": Target("bare", bare, BARE_PATH, "", dbs.bare_url, "bare_orders")}
        for t in targets.values():
            t.probe(f"{backend}-{tag}-{t.name}")
        if args.warmup > 0:
            log(f"{backend}: warm-up, {args.warmup:g} s each")
            for t in targets.values():
                wrk(t.server.port, t.path, t.token, f"w{backend[0]}{tag}", args.warmup, args.connections,
                    args.threads)

        runs: list[Run] = []
        for r in range(args.rounds):
            for name in ("service", "bare"):
                log(f"{backend}: max throughput, {name}, round {r + 1}/{args.rounds}, "
                    f"{args.connections} connections, {args.duration:g} s")
                run = max_run(targets[name], f"m{backend[0]}{tag}r{r}{name[0]}", args)
                run.extra["round"] = r
                log(f"  {run.rps:.0f} req/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, "
                    f"201s {run.ok201}, rows +{run.rows_added}"
                    + (f"  PROBLEM: {run.problems}" if run.problems else ""))
                runs.append(run)

        svc_max = statistics.median(r.rps for r in runs if r.target == "service")
        rate = max(1.0, round(svc_max * 0.5, 1))
        # Interleaved segments, pooled: noise from the rest of the machine hits both targets alike;
        # the generator's floor (a trivial server) gets shorter segments in the same rotation.
        nseg = max(1, round(args.half_duration / args.segment))
        seg = args.half_duration / nseg
        parts: dict[str, list] = {"service": [], "bare": [], "floor": []}
        log(f"{backend}: half load, open loop at {rate:g} req/s, {nseg} × {seg:g} s per target, interleaved "
            "with the generator's floor (a trivial server)")
        with openloop.TrivialServer(max_seconds=3 * args.half_duration + 60) as trivial:
            for i in range(nseg):
                for name in ("service", "bare"):
                    seg_tag = f"h{backend[0]}{tag}s{i}{name[0]}"
                    parts[name].append(half_segment(targets[name], seg_tag, rate, seg))
                parts["floor"].append(trivial.run(rate, max(1.0, seg / 2)))
        for name in ("service", "bare"):
            run = half_run(name, parts[name], rate)
            log(f"  {name}: {run.rps:.0f} req/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, "
                f"generator lag p99 {run.extra['lag_p99_ms']:.2f} ms, CPU {run.extra['cpu_share']:.0%}"
                + (f"  PROBLEM: {run.problems}" if run.problems else ""))
            runs.append(run)
        runs.append(floor_run(parts["floor"], rate))
        log(f"  floor: p50 {runs[-1].p50_ms:.1f} ms, p99 {runs[-1].p99_ms:.1f} ms")
        for s in (svc, bare):
            if s.proc.poll() is not None:
                raise RuntimeError(f"{s.name} died during the run:\n{s.log_tail()}")
        log(f"{backend}: stopping servers, cleaning up")
    return {"backend": backend, "db_version": version, "half_rate": rate, "runs": runs}


# --- report -------------------------------------------------------------------------------------

def _med(runs: list[Run], attr: str) -> float:
    return statistics.median(getattr(r, attr) for r in runs)


def _spread(runs: list[Run]) -> str:
    return f" ({min(r.rps for r in runs):.0f}–{max(r.rps for r in runs):.0f})" if len(runs) > 1 else ""


def report(results: list[dict[str, Any]], args: argparse.Namespace,
           conditions: dict[str, str]) -> tuple[str, bool]:
    lines = ["| backend | case | req/s | p50 ms | p99 ms | ratio to baseline |", "|---|---|---|---|---|---|"]
    verdicts, valid = [], True
    for res in results:
        b, runs = res["backend"], res["runs"]
        pick = {(t, k): [r for r in runs if r.target == t and r.kind == k]
                for t in ("service", "bare", "generator") for k in ("max", "half", "floor")}
        sm, bm = pick[("service", "max")], pick[("bare", "max")]
        sh, bh, fl = pick[("service", "half")][0], pick[("bare", "half")][0], pick[("generator", "floor")][0]
        s_rps, b_rps = _med(sm, "rps"), _med(bm, "rps")
        rounds = f", median of {len(sm)}" if len(sm) > 1 else ""
        # the ratio of each round's adjacent pair, then the median: drift between rounds cancels out
        ratios = [s.rps / b_.rps for s, b_ in zip(sm, bm, strict=True) if b_.rps]
        ratio = statistics.median(ratios) if ratios else float("nan")
        rspread = f" ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else ""
        conns = f"{args.connections} conn{rounds}"
        lines.append(f"| {b} | intake (service), max, {conns} | {s_rps:.0f}{_spread(sm)} | "
                     f"{_med(sm, 'p50_ms'):.1f} | {_med(sm, 'p99_ms'):.1f} | {ratio:.2f}{rspread} × req/s |")
        lines.append(f"| {b} | bare baseline, max, {conns} | {b_rps:.0f}{_spread(bm)} | "
                     f"{_med(bm, 'p50_ms'):.1f} | {_med(bm, 'p99_ms'):.1f} | 1 (ceiling) |")
        rate = res["half_rate"]
        p99r = sh.p99_ms / bh.p99_ms if bh.p99_ms else float("nan")
        lines.append(f"| {b} | intake (service), half load, open loop at {rate:g} req/s | {sh.rps:.0f} | "
                     f"{sh.p50_ms:.1f} | {sh.p99_ms:.1f} | {p99r:.2f} × p99 |")
        lines.append(f"| {b} | bare baseline, same rate | {bh.rps:.0f} | {bh.p50_ms:.1f} | {bh.p99_ms:.1f} | "
                     f"1 |")
        lines.append(f"| {b} | load generator floor (trivial server, same rate) | {fl.rps:.0f} | "
                     f"{fl.p50_ms:.1f} | {fl.p99_ms:.1f} | – |")
        target = THROUGHPUT_TARGETS.get(b, 0.60)
        ok_t, ok_l = ratio >= target, sh.p99_ms < P99_TARGET_MS
        problems = [f"{r.target} {r.kind}: {', '.join(r.problems)}" for r in runs if r.problems]
        valid &= not problems
        verdicts.append(f"- {b}: intake throughput {ratio:.0%} of the bare ceiling (median of the rounds' "
                        f"ratios; {s_rps:.0f} vs {b_rps:.0f} req/s; target ≥ {target:.0%}): "
                        f"**{'PASS' if ok_t else 'FAIL'}**")
        verdicts.append(f"- {b}: p99 at half load ({rate:g} req/s) {sh.p99_ms:.1f} ms (target < "
                        f"{P99_TARGET_MS:g} ms): **{'PASS' if ok_l else 'FAIL'}**")
        # the generator's own lateness matters only if it is a large part of what it measured
        starved = [r.target for r in (sh, bh) if r.extra["lag_p99_ms"] > max(2.0, 0.25 * r.p99_ms)]
        # open loop: a target that answers slower than the offered rate was saturated
        behind = [f"{r.target} answered {r.rps:.0f} of {rate:g} req/s offered" for r in (sh, bh)
                  if r.rps < 0.95 * rate]
        verdicts.append(
            f"- {b}: checks: " + ("; ".join(problems) + " — **INVALID**" if problems else
                                  "every run: 0 non-2xx, 0 socket errors, rows added = 201s seen "
                                  f"(wrk: + at most {args.connections} in flight)")
            + f"; generator lag p99 {sh.extra['lag_p99_ms']:.2f}/{bh.extra['lag_p99_ms']:.2f} ms, CPU "
            f"{sh.extra['cpu_share']:.0%}/{bh.extra['cpu_share']:.0%} of a core (service/baseline)"
            + (f" — the generator's lag is a large part of the {'/'.join(starved)} p99, which is overstated"
               if starved else "")
            + (f" — saturated at half load ({'; '.join(behind)}): the machine was busier than during "
               "the max runs" if behind else ""))
    cond = "; ".join(f"{k}: {v}" for k, v in conditions.items())
    text = "\n".join(lines) + "\n\n" + "\n".join(verdicts) + f"\n\nConditions: {cond}\n"
    return text, valid


def conditions(args: argparse.Namespace) -> dict[str, str]:
    import importlib.metadata as md

    cpu = "?"
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?")
    vers = []
    for pkg in ("flask", "flask-sqlalchemy", "sqlalchemy", "marshmallow", "gunicorn", "psycopg"):
        with contextlib.suppress(md.PackageNotFoundError):
            vers.append(f"{pkg} {md.version(pkg)}")
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].split(" [")[0]
    return {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "cpus": f"{os.cpu_count()} × {cpu}",
            "load average at start": open("/proc/loadavg").read().split()[0:3].__str__(),
            "python": platform.python_version(), "packages": ", ".join(vers), "wrk": wrk_v,
            "gunicorn": f"{args.workers} sync workers", "wrk threads": str(args.threads),
            "service's Redis": "yes (REDIS_URL given; no rq worker)" if args.redis_url else "none"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    ap.add_argument("--duration", type=float, default=10.0,
                    help="seconds per max-throughput run (default 10)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of max-throughput runs, service and baseline alternating (default 3)")
    ap.add_argument("--half-duration", type=float, default=None,
                    help="seconds of half-load per target (default: --duration), in interleaved segments")
    ap.add_argument("--segment", type=float, default=4.0,
                    help="about this many seconds per half-load segment (default 4)")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per server (default 3)")
    ap.add_argument("--connections", type=int, default=8, help="wrk connections (default 8)")
    ap.add_argument("--threads", type=int, default=None, help="wrk threads (default min(2, connections))")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn sync workers, both apps (default 2)")
    ap.add_argument("--pg-admin-url", default=os.environ.get("BENCH_PG_ADMIN_URL", DEFAULT_PG_ADMIN))
    ap.add_argument("--json", type=Path, help="also write the raw figures here")
    ap.add_argument("--redis-url", default=None,
                    help="run the service with this Redis (a database of its own), as in production")
    args = ap.parse_args()
    args.half_duration = args.half_duration or args.duration
    args.threads = args.threads or min(2, args.connections)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    bad = [b for b in backends if b not in ("sqlite", "postgresql")]
    if bad or not backends:
        ap.error(f"unknown backend(s) {bad}: use sqlite and/or postgresql")
    if (not (1 <= args.threads <= args.connections) or args.workers < 1 or args.rounds < 1
            or min(args.duration, args.segment, args.half_duration) < 1):
        ap.error("need 1 <= threads <= connections, workers >= 1, rounds >= 1, durations >= 1")
    if shutil.which("wrk") is None:
        print("wrk is not on PATH. Install it (Debian/Ubuntu): apt-get install -y wrk", file=sys.stderr)
        return 2

    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGHUP, _on_term)
    est = len(backends) * (2 * args.warmup + 2 * args.rounds * (args.duration + 1.5)
                           + 2.5 * args.half_duration + 15)
    log(f"backends {backends}, about {est / 60:.1f} minutes")
    cond = conditions(args)
    control_flag = gunicorn_control_flag()
    results = []
    tmp = Path(tempfile.mkdtemp(prefix="ds_bench_"))
    try:
        for b in backends:
            sub = tmp / b
            sub.mkdir()
            results.append(bench_backend(b, args, sub, control_flag))
            cond[f"{b} server"] = results[-1]["db_version"]
    except KeyboardInterrupt:
        log("interrupted (servers stopped, databases dropped); removing temporary files")
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish cleaning up even on a second Ctrl-C
        shutil.rmtree(tmp, ignore_errors=True)
    cond["load average at end"] = str(open("/proc/loadavg").read().split()[0:3])
    text, valid = report(results, args, cond)
    print(text)
    if args.json:
        args.json.write_text(json.dumps([{**r, "runs": [vars(x) for x in r["runs"]]} for r in results],
                                        indent=1, default=str))
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
