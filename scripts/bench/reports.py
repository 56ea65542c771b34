"""Reports at scale: the district report and the dashboard page over 1 M and 10 M orders, next to the
bare GROUP BY over the same rows, measured in the same run.

For each backend and size:

1. setup (skipped with ``--keep`` when a complete database of that size, layout and schema exists): a
   fresh database migrated by the app, every unit imported (2025 and legacy) and the report unit map
   rebuilt, synthetic organisations (a post office per former district, one route per 2025 commune
   with a courier each, a counter per province, an admin and a supervisor), then N orders written by
   set-based SQL: 90 % over 2026 on 2025 communes, 10 % over the first half of 2025 on legacy
   communes (so the reform is crossed), communes drawn with a strong skew (u³ over a shuffled list:
   the busiest 1 % of communes get about a fifth of the orders), ~93 % delivered, 3 % returned,
   3 % cancelled, ~1 % open (``--layout``: see ``generate_sql``); due dates, routes, run dates,
   closing times. The secondary indexes are dropped for the load and rebuilt from the models (the
   trigram index of migration 0002 from its saved definition), and checked equal to the migrated
   ones. The rollups (``report_days``, then every coarser one the models declare: weeks, months,
   years) are filled by INSERT … SELECT … GROUP BY from the orders: what ``reports.fold`` would have produced
   from their simple histories (created, assigned, handed over, out for delivery, a failed attempt
   for 7 % of the delivered and every returned order, delivered / returned / cancelled), without
   writing the event log;
2. a check of that shortcut (once per backend, in a small database of its own): ``--check-orders``
   (20,000) orders generated the same way, their events written into order_events as
   tests/test_reports.py writes them (sorted by time, across all orders), ``fold()`` timed (events
   per second), and every rollup it produced compared row by row with the shortcut's for the same
   orders (all-zero rows left aside: the fold may leave one where a creation and the assignment that
   moved its count fell into different batches); a difference, an event left unfolded or a rollup
   left empty stops the run there (exit status 1), before anything is measured;
3. measure, warm, best and median of ``--rounds`` (round robin over the cases): the district report
   for 2026 (``figures(admin, 2026-01-01, 2026-12-31, Level.DISTRICT, catch_up=False)``), the same
   for one province's districts and for the communes of one district (the busiest), a period with
   days at both ends, the dashboard page and its two charts through the Flask test client logged in
   as an admin (when the app has the route), and the baselines: the bare ``GROUP BY district_id,
   status`` with a covering index created for it (as ../shared/docs/BASELINES.md), ``GROUP BY
   province_id, status`` (district_id is NULL after the reform), and the report's counts computed
   straight from the orders table by one GROUP BY (no rollups; it cannot give failed attempts or the
   histogram, which need the event log). The figures are checked equal to that direct GROUP BY. The
   page with both charts is measured three ways: figures unchanged since the last view (a reload);
   right after a change (before each run, not timed: an order delivered now, its event written and
   folded, as the fold job would: the kept figures are brought up to date from the fold's
   ``report_changes``); and with nothing kept (a new process). One more pass times each case's SQL
   statements; ``--explain`` shows the plan of the slowest. Then the kept figures are checked equal
   to the same computed from scratch: what the page showed after the last change, and after three
   more changes (deliveries now, 40 and 200 days ago) the year's and the 15 Jan – 14 Dec report and
   trend; a difference makes the exit status 1.

Prints a markdown table (backend | orders | case | best ms | median ms | ratio to the bare GROUP BY)
and the set-up figures. Progress goes to stderr; the exit status is 1 if a check fails. Sizes default
to 1 M and 10 M orders on PostgreSQL, 1 M on SQLite; ``--sizes`` sets them for every backend.

    .venv/bin/python scripts/bench/reports.py --backends postgresql --sizes 1000000,10000000 --keep
    .venv/bin/python scripts/bench/reports.py --backends sqlite --sizes 1000000

PostgreSQL databases are named ``bench_reports_<size>[_shuffled]`` and SQLite files go to
``--sqlite-dir``; ``--keep`` keeps them for re-runs (10 M orders take about 7.5 GB on PostgreSQL and
about 6 minutes to generate) and generates again when the migrations have changed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
GEN_VERSION = 6  # bump when the generated data or their set-up change: --keep then rebuilds (4: report_weeks
#                 vacuumed and analyzed too; PostgreSQL's autovacuum is off here, so it had no statistics;
#                 5: orders get recipient_search_key, NOT NULL since migration 0015; 6: report_years)
SEED = 2026
PASSWORD = "bench-password"
YEAR = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))
PARTIAL = (dt.date(2026, 1, 15), dt.date(2026, 12, 14))  # days at both ends, months between
LEGACY_SHARE = 0.10
RETRIED = 7  # % of the delivered orders (by id) that had a failed attempt first
DEFAULT_SIZES = {"postgresql": "1000000,10000000", "sqlite": "1000000"}
EPOCH = dt.date(1970, 1, 1)
D26 = (dt.date(2026, 1, 1) - EPOCH).days
D25 = (dt.date(2025, 1, 1) - EPOCH).days
ORDER_COLUMNS = (
    "id", "item_id", "counter_id", "direction", "status", "dossier_code", "procedure_name",
    "issuing_agency", "recipient_name", "recipient_name_key", "recipient_search_key", "recipient_phone",
    "province_id",
    "district_id", "commune_id", "address_detail", "postage_vnd", "payer", "exemption",
    "postage_due_vnd", "collect_vnd", "appointment_date", "due_date", "route_id", "run_date", "dispatch",
    "created_at", "updated_at")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- SQL that differs between the backends ---------------------------------------------------------

class Dialect:
    """The few expressions the generator and the shortcut write differently per backend."""

    def __init__(self, name: str, tz_offset_s: int, tz_name: str) -> None:
        self.pg = name == "postgresql"
        self.offset = tz_offset_s
        self.tz = tz_name

    def rand(self) -> str:
        return "random()" if self.pg else "((random() & 4294967295) / 4294967296.0)"

    def floor(self, x: str) -> str:
        return f"CAST(floor({x}) AS bigint)" if self.pg else f"CAST({x} AS INTEGER)"

    def ts(self, sec: str) -> str:
        """A UTC datetime from epoch seconds, as the app stores it (SQLite: its text format)."""
        if self.pg:
            return f"to_timestamp({sec})"
        return f"(strftime('%Y-%m-%d %H:%M:%S', {sec}, 'unixepoch') || '.000000')"

    def date(self, day: str) -> str:
        """A date from a day number since 1970-01-01."""
        if self.pg:
            return f"(DATE '1970-01-01' + CAST({day} AS integer))"
        return f"date(({day}) * 86400, 'unixepoch')"

    def epoch(self, ts: str) -> str:
        if self.pg:
            return f"CAST(EXTRACT(EPOCH FROM {ts}) AS bigint)"
        return f"CAST(strftime('%s', {ts}) AS INTEGER)"

    def day_seconds(self, date: str) -> str:
        """Epoch seconds of a date's UTC midnight (= 07:00 local in Asia/Ho_Chi_Minh)."""
        return (f"CAST(({date} - DATE '1970-01-01') AS bigint) * 86400" if self.pg
                else f"CAST(strftime('%s', {date}) AS INTEGER)")

    def local_day(self, ts: str) -> str:
        if self.pg:
            return f"CAST(({ts} AT TIME ZONE '{self.tz}') AS date)"
        return f"date({ts}, '{self.offset:+d} seconds')"

    def month(self, date: str) -> str:
        return f"CAST(date_trunc('month', {date}) AS date)" if self.pg else f"date({date}, 'start of month')"

    def year(self, date: str) -> str:
        return f"CAST(date_trunc('year', {date}) AS date)" if self.pg else f"date({date}, 'start of year')"

    def week(self, date: str) -> str:
        """The Monday of a date's week."""
        if self.pg:
            return f"CAST(date_trunc('week', {date}) AS date)"
        return f"date({date}, 'weekday 0', '-6 days')"

    def pad(self, x: str, n: int) -> str:
        return f"lpad(CAST({x} AS text), {n}, '0')" if self.pg else f"substr('{'0' * n}' || ({x}), -{n})"

    def series(self) -> str:
        if self.pg:
            return "s(i) AS (SELECT generate_series(CAST(:a AS bigint), CAST(:b AS bigint)))"
        return "s(i) AS (SELECT :a UNION ALL SELECT i + 1 FROM s WHERE i < :b)"


def generate_sql(d: Dialect, n_communes: int, n_legacy_communes: int, n: int, n_legacy_orders: int,
                 layout: str) -> str:
    """INSERT … SELECT of the orders with ids :a..:b (the first ``n_legacy_orders`` ids are the
    2025 orders on legacy communes).

    ``chronological`` (as a service writes them): ids follow the day of creation, and the orders
    still open are the recent ones (created in the last days of 2026: 60 % of the last 3 days'
    orders, 15 % up to a week, 5 % up to two weeks) plus 0.3 % stuck anywhere in the year: about
    1.1 % open in all. ``shuffled`` (the pessimistic case): days drawn at random for each id, and
    4 % open drawn at random over the whole year, so that open orders lie all over the table.

    Every time below is derived so that the events, and the shortcut, can be recomputed from the
    stored columns and the id:
    handover = run_date 07:00 local + id % 90 min; failed attempt = handover + 3 h + id % 120 min;
    assigned = created + 1 min; out for delivery = handover + 10 min; retry after a failed attempt
    = handover + 1 day."""
    r = d.rand()
    f = d.floor
    if layout == "shuffled":
        cday = f"CASE WHEN grp = 1 THEN {D25} + {f('r2 * 181')} ELSE {D26} + {f('r2 * 365')} END"
        status = """CASE WHEN r3 < 0.90 OR (grp = 1 AND r3 >= 0.96) THEN 'delivered'
         WHEN r3 < 0.93 THEN 'returned_to_agency' WHEN r3 < 0.96 THEN 'cancelled'
         WHEN r3 < 0.965 THEN 'created' WHEN r3 < 0.98 THEN 'assigned'
         WHEN r3 < 0.995 THEN 'handed_to_courier' ELSE 'failed_attempt' END"""
    else:
        legacy, recent = max(n_legacy_orders, 1), max(n - n_legacy_orders, 1)
        cday = (f"CASE WHEN grp = 1 THEN {D25} + (i - 1) * 181 / {legacy} "
                f"ELSE {D26} + (i - {n_legacy_orders} - 1) * 365 / {recent} END")
        age = f"({D26 + 364} - ({cday}))"
        status = f"""CASE WHEN grp = 0 AND r6 < CASE WHEN {age} <= 2 THEN 0.6 WHEN {age} <= 7 THEN 0.15
                                         WHEN {age} <= 14 THEN 0.05 ELSE 0.003 END
         THEN CASE WHEN r3 < 0.10 THEN 'created' WHEN r3 < 0.45 THEN 'assigned'
                   WHEN r3 < 0.85 THEN 'handed_to_courier' ELSE 'failed_attempt' END
         WHEN r3 < 0.94 THEN 'delivered' WHEN r3 < 0.97 THEN 'returned_to_agency' ELSE 'cancelled' END"""
    return f"""
WITH RECURSIVE {d.series()},
g AS MATERIALIZED (
  SELECT i, CASE WHEN i <= {n_legacy_orders} THEN 1 ELSE 0 END AS grp,
         {r} AS r1, {r} AS r2, {r} AS r3, {r} AS r4, {r} AS r5, {r} AS r6 FROM s),
h AS (
  SELECT g.*,
    {cday} AS cday,
    {f(f'r1 * r1 * r1 * CASE WHEN grp = 1 THEN {n_legacy_communes} ELSE {n_communes} END')} AS idx,
    {status} AS status
  FROM g),
k AS (
  SELECT h.*,
    cday * 86400 + 1800 + {f('r4 * 540')} * 60 AS created_sec,
    (cday + 1) * 86400 + (i % 90) * 60 AS handed_sec,
    CASE WHEN status IN ('returned_to_agency', 'failed_attempt')
              OR (status = 'delivered' AND i % 100 < {RETRIED}) THEN 1 ELSE 0 END AS failed
  FROM h),
m AS (
  SELECT k.*,
    handed_sec + 10800 + (i % 120) * 60 AS failed_sec,
    handed_sec + failed * 86400 + 1800 + {f('r5 * r5 * r5 * 900000')} AS delivered_sec
  FROM k)
INSERT INTO delivery_orders ({', '.join(ORDER_COLUMNS)})
SELECT i, 'BR' || {d.pad('i', 9)} || 'VN', p.counter_id, 'result_to_citizen', status,
  'BENCH-' || i,
  CASE i % 3 WHEN 0 THEN 'Cấp đổi giấy phép lái xe' WHEN 1 THEN 'Cấp phiếu lý lịch tư pháp'
             ELSE 'Đăng ký khai sinh' END,
  CASE i % 3 WHEN 0 THEN 'Sở Xây dựng' WHEN 1 THEN 'Sở Tư pháp' ELSE 'UBND xã' END,
  'Người nhận thử ' || (i % 5000), 'người nhận thử ' || (i % 5000), 'nguoi nhan thu ' || (i % 5000),
  '09' || {d.pad('(i * 7919) % 100000000', 8)},
  p.province_id, p.district_id, p.commune_id, 'Số ' || (1 + i % 200) || ' đường Thử Nghiệm',
  26000, 'citizen', 'none', 26000, 0,
  {d.date('cday + 3 + i % 4')}, {d.date('cday + 3 + i % 4')},
  CASE WHEN status = 'created' THEN NULL ELSE p.route_id END,
  CASE WHEN status = 'created' THEN NULL ELSE {d.date('cday + 1')} END,
  CASE WHEN status = 'created' THEN 'no_rule' END,
  {d.ts('created_sec')},
  {d.ts('''CASE status WHEN 'delivered' THEN delivered_sec
        WHEN 'returned_to_agency' THEN failed_sec + (3 + i % 5) * 86400
        WHEN 'cancelled' THEN created_sec + 3600 * (1 + i % 6)
        WHEN 'created' THEN created_sec WHEN 'assigned' THEN created_sec + 60
        WHEN 'handed_to_courier' THEN handed_sec ELSE failed_sec END''')}
FROM m JOIN bench_pick p ON p.grp = m.grp AND p.idx = m.idx
"""


def rollup_sql(d: Dialect, days_table: str) -> str:
    """INSERT … SELECT … GROUP BY: the day rows the fold would have produced for these orders, written
    in day order as the fold appends them (a period's rows lie together, as they would in service).

    As reports.fold counts them: received on the local day of creation, on the order's last route (it
    follows the route until handover; courier 0); delivered (on time when that local day is on or
    before the due date, with the hours from handover in the bins of HOUR_EDGES), returned and
    cancelled on the local day of closing, the courier for a delivery and for a return (the generator
    returns only after a failed attempt, which counts the return for that attempt's courier: the
    route's); a cancellation is staff's; a failed attempt on the run date, by the route's courier.
    Abandoned (cancelled after a failed attempt) stays 0: the generator cancels only orders not yet
    handed over."""
    from delivery_service.reports.models import HOUR_EDGES, MEASURES

    secs = f"({d.epoch('o.updated_at')} - ({d.day_seconds('o.run_date')} + (o.id % 90) * 60))"
    bin_expr = "CASE " + " ".join(f"WHEN {secs} >= {edge * 3600} THEN {i + 1}"
                                  for i, edge in reversed(list(enumerate(HOUR_EDGES)))) + " ELSE 0 END"
    zero = dict.fromkeys(MEASURES, "0")

    def part(day: str, courier: str, measures: dict[str, str], bin_: str, source: str, where: str) -> str:
        values = ", ".join(f"{measures.get(m, '0')} AS {m}" for m in MEASURES)
        return (f"SELECT {day} AS d, o.commune_id, COALESCE(o.route_id, 0) AS route_id, o.counter_id, "
                f"{courier} AS courier_id, {values}, {bin_} AS bin FROM {source} {where}")

    joined = "delivery_orders o LEFT JOIN postal_routes r ON r.id = o.route_id"
    failed = ("o.status IN ('returned_to_agency', 'failed_attempt') "
              f"OR (o.status = 'delivered' AND o.id % 100 < {RETRIED})")
    parts = [
        part(d.local_day("o.created_at"), "0",
             {**zero, "received": "1",
              "received_results": "CASE WHEN o.direction <> 'dossier_to_agency' THEN 1 ELSE 0 END"},
             "CAST(NULL AS INTEGER)", "delivery_orders o", ""),
        part(d.local_day("o.updated_at"),
             # a return follows a failed attempt here: it counts for that attempt's courier (the route's)
             "CASE WHEN o.status IN ('delivered', 'returned_to_agency') THEN COALESCE(r.courier_id, 0) "
             "ELSE 0 END",
             {**zero, "delivered": "CASE WHEN o.status = 'delivered' THEN 1 ELSE 0 END",
              "on_time": f"CASE WHEN o.status = 'delivered' AND {d.local_day('o.updated_at')} <= o.due_date "
                         "THEN 1 ELSE 0 END",
              "returned": "CASE WHEN o.status = 'returned_to_agency' THEN 1 ELSE 0 END",
              "cancelled": "CASE WHEN o.status = 'cancelled' THEN 1 ELSE 0 END"},
             f"CASE WHEN o.status = 'delivered' THEN {bin_expr} END", joined,
             "WHERE o.status IN ('delivered', 'returned_to_agency', 'cancelled')"),
        # a failed attempt happens on the run date (10:00-13:30 local), by the route's courier
        part("o.run_date", "COALESCE(r.courier_id, 0)", {**zero, "failed_attempts": "1"},
             "CAST(NULL AS INTEGER)", joined, f"WHERE {failed}"),
    ]
    keys = "commune_id, route_id, counter_id, courier_id"
    sums = ", ".join(f"SUM({m})" for m in MEASURES)
    hist = ", ".join(f"SUM(CASE WHEN bin = {i} THEN 1 ELSE 0 END)" for i in range(len(HOUR_EDGES) + 1))
    cols = ", ".join(["day", keys, *MEASURES, *[f"h{i}" for i in range(len(HOUR_EDGES) + 1)]])
    return (f"INSERT INTO {days_table} ({cols}) SELECT d, {keys}, {sums}, {hist} FROM ("
            + " UNION ALL ".join(parts) + f") c GROUP BY d, {keys} ORDER BY d, {keys}")


def rollup_tables() -> list[tuple[str, str]]:
    """The rollups the fold keeps besides report_days (table, period column), as the models declare
    them; the shortcut fills each from the days and refuses a period it does not know."""
    from delivery_service.extensions import db
    from delivery_service.reports.models import COUNTS

    found = []
    for table in db.metadata.sorted_tables:
        if table.name != "report_days" and set(COUNTS) <= set(table.c.keys()) and "courier_id" in table.c:
            period = next(iter(table.primary_key.columns)).name
            if period not in ("week", "month", "year"):
                raise SystemExit(f"the shortcut does not know how to fill {table.name} ({period})")
            found.append((table.name, period))
    return found


def period_sql(d: Dialect, days_table: str, table: str, period: str) -> str:
    """INSERT … SELECT of a coarser rollup from the day rows (weeks start on Monday)."""
    from delivery_service.reports.models import COUNTS

    keys = "commune_id, route_id, counter_id, courier_id"
    start = {"month": d.month, "year": d.year, "week": d.week}[period]("day")
    return (f"INSERT INTO {table} ({period}, {keys}, {', '.join(COUNTS)}) "
            f"SELECT {start}, {keys}, {', '.join(f'SUM({c})' for c in COUNTS)} "
            f"FROM {days_table} GROUP BY {start}, {keys} ORDER BY {start}, {keys}")


# --- databases ------------------------------------------------------------------------------------

def make_app(url: str):  # noqa: ANN201
    from delivery_service import create_app

    return create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-reports", "REDIS_URL": None})


def dialect_for(app) -> Dialect:  # noqa: ANN001
    from zoneinfo import ZoneInfo

    from delivery_service.extensions import db

    tz = ZoneInfo(app.config["SERVICE_TIMEZONE"])
    offsets = {dt.datetime(y, m, 1, tzinfo=tz).utcoffset() for y in (2025, 2026) for m in range(1, 13)}
    assert len(offsets) == 1, "the generator assumes a zone without daylight saving time"
    offset = int(offsets.pop().total_seconds())
    assert offset == 7 * 3600, "the generator's local times assume UTC+7"
    with app.app_context():
        return Dialect(db.engine.dialect.name, offset, app.config["SERVICE_TIMEZONE"])


class Target:
    """One database: its URL, whether it holds a complete data set of ``n`` orders, how to drop it."""

    def __init__(self, backend: str, name: str, sqlite_dir: Path, pg_admin: str) -> None:
        self.backend, self.name, self.pg_admin = backend, name, pg_admin
        if backend == "sqlite":
            self.path = sqlite_dir / f"{name}.sqlite3"
            self.url = f"sqlite:///{self.path}"
        else:
            self.url = pg_admin.rsplit("/", 1)[0] + "/" + name

    def _admin(self, statement: str, params: dict[str, Any] | None = None) -> Any:
        """Run one statement on the PostgreSQL server's admin database; its scalar, if any."""
        engine = sa.create_engine(self.pg_admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text(statement), params or {})
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()

    def _done(self) -> Path:
        return self.path.with_suffix(".done.json")

    def marker(self) -> dict[str, Any] | None:
        if self.backend == "sqlite":
            done = self._done()
            return json.loads(done.read_text()) if done.exists() and self.path.exists() else None
        text = self._admin("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = :n",
                           {"n": self.name})
        return json.loads(text.split(":", 1)[1]) if text and text.startswith("bench-reports:") else None

    def mark(self, info: dict[str, Any]) -> None:
        if self.backend == "sqlite":
            self._done().write_text(json.dumps(info))
        else:
            text = ("bench-reports:" + json.dumps(info)).replace("'", "''")
            self._admin(f"COMMENT ON DATABASE \"{self.name}\" IS '{text}'")

    def create(self) -> None:
        self.drop()
        if self.backend == "sqlite":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        else:
            self._admin(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            self._done().unlink(missing_ok=True)
        else:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# --- setup ------------------------------------------------------------------------------------------

def prepare_schema(app) -> None:  # noqa: ANN001
    """Migrate, import every unit, build the report unit map."""
    from flask_migrate import upgrade

    from delivery_service.reports.units import rebuild_unit_map
    from delivery_service.units.services import import_units

    with app.app_context():
        upgrade()
        import_units("2025")
        import_units("legacy")
        rebuild_unit_map()


def create_orgs(app) -> dict[str, int]:  # noqa: ANN001
    """Post offices (one per former district), a route and a courier per 2025 commune, a counter per
    province, an admin and a supervisor; all names synthetic. Returns counts."""
    from delivery_service.accounts.models import User
    from delivery_service.accounts.services import hash_password
    from delivery_service.extensions import db
    from delivery_service.orgs.models import Counter, PostalRoute, PostOffice, route_communes
    from delivery_service.units.models import REFORM_DATE

    with app.app_context():
        conn = db.session.connection()
        communes = conn.execute(sa.text(
            "SELECT a.id, a.code, u.province_id, u.district_id FROM admin_units a "
            "JOIN report_units u ON u.unit_id = a.id WHERE a.level = 'commune' AND a.valid_from >= :reform "
            "ORDER BY a.code"), {"reform": REFORM_DATE}).all()
        password = hash_password(PASSWORD)
        office_keys = sorted({c.district_id or c.province_id for c in communes})
        conn.execute(sa.insert(PostOffice), [
            {"code": f"BC-BENCH-{k}", "name": f"Bưu cục thử nghiệm {i + 1}", "unit_id": k}
            for i, k in enumerate(office_keys)])
        offices = dict(conn.execute(sa.text(
            "SELECT code, id FROM post_offices WHERE code LIKE 'BC-BENCH-%'")).all())
        conn.execute(sa.insert(User), [
            {"username": f"bench.courier.{c.code}", "full_name": f"Bưu tá thử nghiệm {c.code}",
             "password_hash": password, "role": "courier"} for c in communes])
        first_office = offices[f"BC-BENCH-{office_keys[0]}"]
        conn.execute(sa.insert(User), [
            {"username": "bench.admin", "full_name": "Quản trị thử nghiệm", "password_hash": password,
             "role": "admin", "post_office_id": None},
            {"username": "bench.supervisor", "full_name": "Trưởng bưu cục thử nghiệm",
             "password_hash": password, "role": "supervisor", "post_office_id": first_office}])
        users = dict(conn.execute(sa.text(
            "SELECT username, id FROM users WHERE username LIKE 'bench.%'")).all())
        conn.execute(sa.insert(PostalRoute), [
            {"code": f"BT-{c.code}", "name": f"Tuyến thử nghiệm {c.code}",
             "post_office_id": offices[f"BC-BENCH-{c.district_id or c.province_id}"],
             "courier_id": users[f"bench.courier.{c.code}"]} for c in communes])
        routes = dict(conn.execute(sa.text(
            "SELECT code, id FROM postal_routes WHERE code LIKE 'BT-%'")).all())
        conn.execute(sa.insert(route_communes), [{"route_id": routes[f"BT-{c.code}"], "unit_id": c.id}
                                                 for c in communes])
        provinces: dict[int, int] = {}
        for c in communes:
            provinces.setdefault(c.province_id, offices[f"BC-BENCH-{c.district_id or c.province_id}"])
        codes = dict(conn.execute(sa.text("SELECT id, code FROM admin_units WHERE level = 'province'")).all())
        conn.execute(sa.insert(Counter), [
            {"code": f"BQ-{codes[p]}", "name": f"Trung tâm phục vụ hành chính công thử nghiệm {codes[p]}",
             "level": "province_centre", "unit_id": p, "post_office_id": office}
            for p, office in provinces.items()])
        db.session.commit()
        return {"post offices": len(office_keys), "routes": len(communes), "counters": len(provinces),
                "users": len(users)}


def pick_table(conn: sa.Connection) -> tuple[int, int]:
    """The temporary look-up of communes by draw: group 0 the 2025 communes, group 1 the legacy ones,
    each shuffled (so the busy ones are spread over the country); with each commune's province,
    district, route (its 2025 commune's) and counter (its 2025 province's)."""
    from delivery_service.units.models import REFORM_DATE

    units = {u.id: u for u in conn.execute(sa.text(
        "SELECT id, level, parent_id, valid_from FROM admin_units")).all()}
    mapped = conn.execute(sa.text(
        "SELECT unit_id, commune_id, province_id, district_id FROM report_units")).all()
    routes = dict(conn.execute(sa.text("SELECT unit_id, route_id FROM route_communes")).all())
    counters = dict(conn.execute(sa.text("SELECT unit_id, id FROM counters WHERE code LIKE 'BQ-%'")).all())

    def own_province(unit_id: int) -> int:
        u = units[unit_id]
        while u.parent_id is not None:
            u = units[u.parent_id]
        return u.id

    groups: list[list[dict[str, Any]]] = [[], []]
    for m in sorted(mapped, key=lambda m: m.unit_id):
        u = units[m.unit_id]
        legacy = dt.date.fromisoformat(str(u.valid_from)) < REFORM_DATE
        parent = units.get(u.parent_id) if u.parent_id else None
        district = parent.id if legacy and parent is not None and parent.level == "district" else None
        groups[int(legacy)].append({
            "commune_id": m.unit_id, "province_id": own_province(m.unit_id) if legacy else m.province_id,
            "district_id": district,
            "route_id": routes[m.commune_id], "counter_id": counters[m.province_id]})
    rng = random.Random(SEED)
    conn.execute(sa.text("DROP TABLE IF EXISTS bench_pick"))
    conn.execute(sa.text("CREATE TEMP TABLE bench_pick (grp INTEGER NOT NULL, idx INTEGER NOT NULL, "
                         "commune_id BIGINT, province_id BIGINT, district_id BIGINT, route_id BIGINT, "
                         "counter_id BIGINT, PRIMARY KEY (grp, idx))"))
    for grp, rows in enumerate(groups):
        rng.shuffle(rows)
        conn.execute(sa.text("INSERT INTO bench_pick VALUES (:grp, :idx, :commune_id, :province_id, "
                             ":district_id, :route_id, :counter_id)"),
                     [{"grp": grp, "idx": i, **r} for i, r in enumerate(rows)])
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("ANALYZE bench_pick"))
    return len(groups[0]), len(groups[1])


def _saved_indexes(conn: sa.Connection) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(unique constraints, other secondary indexes) of delivery_orders: name and definition."""
    if conn.dialect.name == "postgresql":
        constraints = conn.execute(sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'delivery_orders'::regclass AND contype = 'u' ORDER BY conname")).all()
        indexes = conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'delivery_orders' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = "
            "'delivery_orders'::regclass) ORDER BY indexname")).all()
        return [tuple(c) for c in constraints], [tuple(i) for i in indexes]
    indexes = conn.execute(sa.text(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'delivery_orders' "
        "AND sql IS NOT NULL ORDER BY name")).all()
    return [], [tuple(i) for i in indexes]


def _index_snapshot(conn: sa.Connection) -> list[tuple[str, str]]:
    if conn.dialect.name == "postgresql":
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'delivery_orders' ORDER BY 1"))]
    return [tuple(r) for r in conn.execute(sa.text(
        "SELECT name, COALESCE(sql, '') FROM sqlite_master WHERE type = 'index' "
        "AND tbl_name = 'delivery_orders' ORDER BY 1"))]


def load_orders(app, n: int, layout: str, *, chunk: int | None = None,  # noqa: ANN001
                drop_indexes: bool = True) -> dict[str, float]:
    """Generate ``n`` orders with set-based SQL; returns the seconds of each step."""
    from delivery_service.extensions import db
    from delivery_service.orders.models import DeliveryOrder

    d = dialect_for(app)
    timings: dict[str, float] = {}
    with app.app_context():
        engine = db.engine
        with engine.connect() as conn:
            if d.pg:
                conn.execute(sa.text("SET session_replication_role = replica"))  # no FK triggers during load
                conn.execute(sa.text("SET work_mem = '256MB'"))
                conn.execute(sa.text("SET maintenance_work_mem = '1GB'"))
            else:
                conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
                conn.exec_driver_sql("PRAGMA synchronous = OFF")
                conn.exec_driver_sql("PRAGMA cache_size = -262144")
            n_communes, n_legacy = pick_table(conn)
            conn.commit()
            before = _index_snapshot(conn)
            constraints, indexes = _saved_indexes(conn) if drop_indexes else ([], [])
            for name, _ in constraints:
                conn.execute(sa.text(f"ALTER TABLE delivery_orders DROP CONSTRAINT {name}"))
            for name, _ in indexes:
                conn.execute(sa.text(f"DROP INDEX {name}"))
            conn.commit()
            sql = sa.text(generate_sql(d, n_communes, n_legacy, n, round(n * LEGACY_SHARE), layout))
            chunk = chunk or (1_000_000 if d.pg else 100_000)
            started = time.perf_counter()
            for a in range(1, n + 1, chunk):
                b = min(n, a + chunk - 1)
                conn.execute(sql, {"a": a, "b": b})
                conn.commit()
                if n >= 1_000_000:
                    log(f"  orders {b:,}/{n:,} ({time.perf_counter() - started:.0f} s)")
            timings["orders"] = time.perf_counter() - started
            started = time.perf_counter()
            for name, definition in constraints:
                conn.execute(sa.text(f"ALTER TABLE delivery_orders ADD CONSTRAINT {name} {definition}"))
                conn.commit()
            # from the models' metadata where they are declared (PostgreSQL's own definition of a
            # partial index reads back in another form), else as saved (the trigram index of 0002)
            declared = {i.name: i for i in DeliveryOrder.__table__.indexes}
            for name, definition in indexes:
                ddl = sa.schema.CreateIndex(declared[name]) if name in declared else sa.text(definition)
                conn.execute(ddl)
                conn.commit()
            timings["indexes"] = time.perf_counter() - started
            after = _index_snapshot(conn)
            assert after == before, f"indexes differ after the load:\n{before}\n{after}"
            if d.pg:
                conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('delivery_orders', 'id'), :n)"),
                             {"n": n})
                conn.execute(sa.text("RESET session_replication_role"))
            else:
                conn.exec_driver_sql("PRAGMA foreign_keys = ON")
            conn.execute(sa.text("DROP TABLE bench_pick"))
            conn.commit()
    return timings


def write_rollups(conn: sa.Connection, d: Dialect, prefix: str = "") -> None:
    """The shortcut, in the connection's transaction: report_days by INSERT … SELECT … GROUP BY from
    the orders, then every coarser rollup from the days (into ``prefix`` + the table names: the
    check writes temporary copies)."""
    if d.pg:
        conn.execute(sa.text("SET LOCAL work_mem = '512MB'"))
    conn.execute(sa.text(rollup_sql(d, prefix + "report_days")))
    for table, period in rollup_tables():
        conn.execute(sa.text(period_sql(d, prefix + "report_days", prefix + table, period)))


def fill_rollups(app) -> float:  # noqa: ANN001
    """The shortcut into the rollups themselves. Returns seconds."""
    from delivery_service.extensions import db

    d = dialect_for(app)
    with app.app_context():
        started = time.perf_counter()
        write_rollups(db.session.connection(), d)
        db.session.commit()
        return time.perf_counter() - started


def vacuum(app) -> float:  # noqa: ANN001
    from delivery_service.extensions import db

    with app.app_context():
        started = time.perf_counter()
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.dialect.name == "postgresql":  # every table the cases read (autovacuum may be off)
                for table in ("delivery_orders", "report_units", "report_days",
                              *[t for t, _ in rollup_tables()]):
                    conn.execute(sa.text(f"VACUUM (ANALYZE) {table}"))
            else:
                conn.exec_driver_sql("ANALYZE")
        return time.perf_counter() - started


def setup(target: Target, n: int, layout: str) -> dict[str, Any]:
    log(f"{target.backend} {n:,}: creating {target.name}")
    target.create()
    app = make_app(target.url)
    started = time.perf_counter()
    prepare_schema(app)
    orgs = create_orgs(app)
    info: dict[str, Any] = {"version": GEN_VERSION, "n": n, "orgs": orgs,
                            "units_s": time.perf_counter() - started}
    log(f"  units and orgs {info['units_s']:.0f} s ({orgs})")
    info["layout"] = layout
    info["schema"] = schema_fingerprint()
    info.update({f"{k}_s": v for k, v in load_orders(app, n, layout).items()})
    log(f"  orders {info['orders_s']:.0f} s, indexes {info['indexes_s']:.0f} s")
    info["rollups_s"] = fill_rollups(app)
    log(f"  rollups {info['rollups_s']:.0f} s")
    info["vacuum_s"] = vacuum(app)
    log(f"  vacuum/analyze {info['vacuum_s']:.0f} s")
    info["created"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    _dispose(app)
    target.mark(info)
    return info


def schema_fingerprint() -> str:
    """A digest of the migrations: a kept database made by other migrations (a table or an index
    changed since, even in place) is generated again."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "delivery_service" / "migrations" / "versions").glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _dispose(app) -> None:  # noqa: ANN001
    from delivery_service.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()


# --- the shortcut's check against the fold ----------------------------------------------------------

def _history(row: Any) -> list[tuple[str | None, str, dt.datetime, str, int | None]]:
    """(status from, status to, time, actor: system / staff / courier, route) of one generated
    order's events, with the generator's derived times."""
    steps: list[tuple[str | None, str, dt.datetime, str, int | None]] = [
        (None, "created", row.created_at, "system", None)]
    if row.status == "created":
        return steps
    steps.append(("created", "assigned", row.created_at + dt.timedelta(minutes=1), "system", row.route_id))
    if row.status == "assigned":
        return steps
    if row.status == "cancelled":
        return [*steps, ("assigned", "cancelled", row.updated_at, "staff", None)]
    handed = dt.datetime.combine(row.run_date, dt.time(), dt.UTC) + dt.timedelta(minutes=row.id % 90)
    steps.append(("assigned", "handed_to_courier", handed, "courier", None))
    if row.status == "handed_to_courier":
        return steps
    steps.append(("handed_to_courier", "out_for_delivery", handed + dt.timedelta(minutes=10), "courier",
                  None))
    if row.status in ("returned_to_agency", "failed_attempt") or row.id % 100 < RETRIED:
        steps.append(("out_for_delivery", "failed_attempt",
                      handed + dt.timedelta(hours=3, minutes=row.id % 120), "courier", None))
        if row.status == "returned_to_agency":
            steps.append(("failed_attempt", "returned_to_agency", row.updated_at, "staff", None))
        elif row.status == "delivered":
            steps.append(("failed_attempt", "out_for_delivery", handed + dt.timedelta(days=1), "courier",
                          None))
    if row.status == "delivered":
        steps.append(("out_for_delivery", "delivered", row.updated_at, "courier", None))
    return steps


def write_events(app) -> int:  # noqa: ANN001
    """The order_events of every generated order, as the services would have written them (the same
    derived times as the generator), inserted in time order across all orders. Returns the count."""
    from delivery_service.extensions import db
    from delivery_service.orders.models import DeliveryOrder, OrderEvent
    from delivery_service.orgs.models import PostalRoute

    o, r = DeliveryOrder.__table__, PostalRoute.__table__
    with app.app_context():
        staff = db.session.execute(sa.text(
            "SELECT id, username FROM users WHERE username = 'bench.supervisor'")).one()
        names = dict(db.session.execute(sa.text(
            "SELECT id, username FROM users WHERE role = 'courier'")).all())
        actors = {"system": (None, "system"), "staff": (staff.id, staff.username)}
        rows = db.session.execute(sa.select(o.c.id, o.c.status, o.c.created_at, o.c.updated_at, o.c.run_date,
                                            o.c.route_id, r.c.courier_id)
                                  .select_from(o.outerjoin(r, r.c.id == o.c.route_id))).all()
        events: list[tuple[dt.datetime, int, int, dict[str, Any]]] = []
        for row in rows:
            for seq, (frm, to, when, who, route) in enumerate(_history(row)):
                user, label = (row.courier_id, names[row.courier_id]) if who == "courier" else actors[who]
                events.append((when, row.id, seq, {
                    "order_id": row.id, "status_from": frm, "status_to": to, "server_time": when,
                    "actor_user_id": user, "actor_label": label, "route_id": route}))
        events.sort(key=lambda e: e[:3])
        table = OrderEvent.__table__
        for i in range(0, len(events), 5000):
            db.session.execute(table.insert(), [e[3] for e in events[i:i + 5000]])
        db.session.commit()
        return len(events)


def _table_rows(conn: sa.Connection, table: str, grain: str) -> dict[tuple, tuple]:
    """A rollup's rows that are not all zero: (period as text, keys) -> counts."""
    from delivery_service.reports.models import COUNTS, KEYS

    result = {}
    for row in conn.execute(sa.text(f"SELECT {grain}, {', '.join(KEYS)}, {', '.join(COUNTS)} FROM {table}")):
        key, values = (str(row[0]), *row[1:1 + len(KEYS)]), tuple(row[1 + len(KEYS):])
        if any(values):
            result[key] = values
    return result


def fold_check(target: Target, n: int, layout: str) -> dict[str, Any]:
    """Generate ``n`` orders with their events, fold them, and compare the rollups with the shortcut's.
    ``problems`` lists what failed: an event not folded, a rollup empty, rows that differ."""
    from delivery_service.extensions import db
    from delivery_service.reports.fold import fold

    log(f"{target.backend}: shortcut check on {n:,} orders ({target.name})")
    target.create()
    app = make_app(target.url)
    try:
        prepare_schema(app)
        create_orgs(app)
        load_orders(app, n, layout, chunk=n, drop_indexes=False)
        events = write_events(app)
        d = dialect_for(app)
        with app.app_context():
            started = time.perf_counter()
            folded = fold()
            seconds = time.perf_counter() - started
        log(f"  folded {folded:,} of {events:,} events in {seconds:.1f} s")
        result: dict[str, Any] = {"orders": n, "events": events, "folded": folded, "seconds": seconds,
                                  "tables": {}, "problems": []}
        if folded != events:
            result["problems"].append(f"the fold folded {folded:,} of {events:,} events")
        with app.app_context():
            conn = db.session.connection()
            tables = [("report_days", "day"), *rollup_tables()]
            for table, _ in tables:  # the shortcut into temporary copies, in this transaction
                conn.execute(sa.text(f"DROP TABLE IF EXISTS bench_{table}"))
                conn.execute(sa.text(f"CREATE TEMP TABLE bench_{table} AS SELECT * FROM {table} WHERE 1 = 0"))
            write_rollups(conn, d, "bench_")
            for table, period in tables:
                folded_rows = _table_rows(conn, table, period)
                short_rows = _table_rows(conn, f"bench_{table}", period)
                diff = sorted(k for k in folded_rows.keys() | short_rows.keys()
                              if folded_rows.get(k) != short_rows.get(k))
                zero = conn.scalar(sa.text(f"SELECT count(*) FROM {table}")) - len(folded_rows)
                sample = [(k, folded_rows.get(k), short_rows.get(k)) for k in diff[:3]]
                result["tables"][table] = {"rows": len(short_rows), "differ": len(diff), "zero_rows": zero,
                                           "sample": sample}
                if not folded_rows or not short_rows:
                    result["problems"].append(f"{table}: nothing to compare ({len(folded_rows)} rows from "
                                              f"the fold, {len(short_rows)} from the shortcut)")
                if diff:
                    result["problems"].append(f"{table}: {len(diff)} rows differ (key, fold, shortcut): "
                                              f"{sample}")
                log(f"  {table}: {len(short_rows):,} rows, {len(diff)} differ, "
                    f"{zero} all-zero rows from the fold")
            db.session.rollback()
        return result
    finally:
        _dispose(app)
        target.drop()


# --- measuring ------------------------------------------------------------------------------------------

def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def _direct_sql(d: Dialect) -> str:
    """The report's counts per district straight from the orders (no rollups)."""
    closed_in = "o.updated_at >= :since AND o.updated_at < :until"
    created_in = "o.created_at >= :since AND o.created_at < :until"
    open_ = "o.status IN ('created', 'assigned', 'handed_to_courier', 'out_for_delivery', 'failed_attempt')"
    return f"""
SELECT u.district_id,
  SUM(CASE WHEN {created_in} THEN 1 ELSE 0 END) AS received,
  SUM(CASE WHEN o.status = 'delivered' AND {closed_in} THEN 1 ELSE 0 END) AS delivered,
  SUM(CASE WHEN o.status = 'delivered' AND {closed_in} AND {d.local_day('o.updated_at')} <= o.due_date
      THEN 1 ELSE 0 END) AS on_time,
  SUM(CASE WHEN o.status = 'returned_to_agency' AND {closed_in} THEN 1 ELSE 0 END) AS returned,
  SUM(CASE WHEN o.status = 'cancelled' AND {closed_in} THEN 1 ELSE 0 END) AS cancelled,
  SUM(CASE WHEN {open_} AND {created_in} THEN 1 ELSE 0 END) AS open,
  SUM(CASE WHEN {open_} AND {created_in} AND o.due_date < :today THEN 1 ELSE 0 END) AS overdue
FROM delivery_orders o JOIN report_units u ON u.unit_id = o.commune_id
WHERE o.updated_at >= :since AND o.created_at < :until
GROUP BY u.district_id"""


def logged_in(app):  # noqa: ANN001, ANN201
    """A test client logged in as the bench's admin through the log-in form."""
    client = app.test_client()
    with app.app_context():
        login_page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page)
    form = {"username": "bench.admin", "password": PASSWORD}
    if token:
        form["csrf_token"] = token.group(1)
    with app.app_context():
        resp = client.post("/login", data=form)
    assert resp.status_code in (302, 303), resp.status_code
    return client


def forget(app) -> None:  # noqa: ANN001
    """Drop what the service keeps of figures it computed and charts it drew (as a new event does)."""
    from delivery_service.reports import charts

    app.extensions.pop("report_memo", None)
    for name in ("_trend_svg", "_units_svg"):
        cached = getattr(charts, name, None)
        if cached is not None:
            cached.cache_clear()


def deliver_one(app, when: dt.datetime | None = None) -> int:  # noqa: ANN001
    """A change, as a courier's sync makes one: an order out with a courier delivered (now, or at
    ``when`` from an offline phone: its device time), its event written and folded (as the fold job
    would, before anyone reads the figures). The order's updated_at is the delivery's time, so that
    the direct GROUP BY of a later run still agrees. Returns the order's id."""
    from delivery_service.extensions import db
    from delivery_service.orders.models import OrderEvent
    from delivery_service.reports.fold import fold

    now = dt.datetime.now(dt.UTC)
    with app.app_context():
        row = db.session.execute(sa.text(
            "SELECT o.id, r.courier_id, u.username FROM delivery_orders o "
            "JOIN postal_routes r ON r.id = o.route_id JOIN users u ON u.id = r.courier_id "
            "WHERE o.status = 'handed_to_courier' AND o.created_at < :before ORDER BY o.id LIMIT 1"),
            {"before": when or now}).one()
        db.session.execute(OrderEvent.__table__.insert(), [{
            "order_id": row.id, "status_from": "handed_to_courier", "status_to": "delivered",
            "actor_user_id": row.courier_id, "actor_label": row.username, "device_time": when,
            "server_time": now}])
        db.session.execute(sa.text("UPDATE delivery_orders SET status = 'delivered', updated_at = :t "
                                   "WHERE id = :i"), {"t": when or now, "i": row.id})
        db.session.commit()
        folded = fold()
        assert folded >= 1, folded
        db.session.remove()
        return row.id


def report_figures(report: Any) -> list[tuple[Any, ...]]:
    """Every figure of a report, row by row and the total, to compare two computations."""
    def one(r: Any) -> tuple[Any, ...]:
        return (r.key, r.label, r.code, r.received, r.received_results, r.delivered, r.on_time,
                r.failed_attempts, r.returned, r.cancelled, r.abandoned, r.open, r.overdue, r.results_total,
                tuple(r.histogram))
    return [one(r) for r in report.rows] + [one(report.total)]


def trend_figures(weeks: list[Any]) -> list[tuple[Any, ...]]:
    return [(w, r.received, r.delivered, r.returned, r.abandoned, tuple(r.histogram)) for w, r in weeks]


def check_incremental(app, actor: Any, today: dt.date, periods: list[tuple[dt.date, dt.date]]) -> list[str]:  # noqa: ANN001
    """The figures and trends a process kept and brought up to date after changes (``memo``) equal
    the same computed from scratch: after a delivery now, one 40 days ago and one 200 days ago
    (offline phones), for each period. Returns the differences found."""
    from delivery_service.extensions import db
    from delivery_service.reports.figures import CHART_MEASURES, Level, figures, weekly_trend

    problems = []
    with app.app_context():
        for start, end in periods:  # kept before the changes
            figures(actor, start, end, Level.DISTRICT, today=today, memo=True)
            weekly_trend(actor, start, end, memo=True, measures=CHART_MEASURES)
        db.session.remove()
    now = dt.datetime.now(dt.UTC)
    for when in (None, now - dt.timedelta(days=40), now - dt.timedelta(days=200)):
        order = deliver_one(app, when)
        with app.app_context():
            for start, end in periods:
                kept = figures(actor, start, end, Level.DISTRICT, today=today, memo=True)
                full = figures(actor, start, end, Level.DISTRICT, today=today)
                if report_figures(kept) != report_figures(full):
                    problems.append(f"figures {start}..{end} after order {order} delivered {when or 'now'}")
                kept_t = weekly_trend(actor, start, end, memo=True, measures=CHART_MEASURES)
                full_t = weekly_trend(actor, start, end, measures=CHART_MEASURES)
                if trend_figures(kept_t) != trend_figures(full_t):
                    problems.append(f"trend {start}..{end} after order {order} delivered {when or 'now'}")
            db.session.remove()
    return problems


def get(app, client, path: str) -> Callable[[], Any]:  # noqa: ANN001
    """GET ``path``, each request in an app context of its own (as tests/conftest.py's client does)."""
    def run() -> int:
        with app.app_context():
            resp = client.get(path)
        assert resp.status_code == 200, (path, resp.status_code, resp.get_data(as_text=True)[:300])
        return len(resp.get_data())
    return run


class StatementLog:
    """Times each statement run on an engine (to say where a case's time goes)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine, self.items, self.on = engine, [], False
        sa.event.listen(engine, "before_cursor_execute", self._before)
        sa.event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        conn.info["bench_t"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        if self.on:
            self.items.append((time.perf_counter() - conn.info.pop("bench_t"), statement, parameters))


def measure(target: Target, n: int, rounds: int,
            explain: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    from zoneinfo import ZoneInfo

    from delivery_service.accounts.models import Role
    from delivery_service.accounts.services import Actor
    from delivery_service.db import UTCDateTime
    from delivery_service.extensions import db
    from delivery_service.reports.figures import Filters, Level, figures

    app = make_app(target.url)
    d = dialect_for(app)
    admin = Actor(label="bench.admin", role=Role.ADMIN)
    tz = ZoneInfo(app.config["SERVICE_TIMEZONE"])
    today = dt.datetime.now(tz).date()
    info: dict[str, Any] = {}
    with app.app_context():
        conn = db.session.connection()
        log(f"{target.backend} {n:,}: baseline indexes")
        for name, cols in (("ix_bench_district_status", "district_id, status"),
                           ("ix_bench_province_status", "province_id, status")):
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
            conn.execute(sa.text(f"CREATE INDEX {name} ON delivery_orders ({cols})"))
        if not d.pg:  # PostgreSQL's planner knows a new index without statistics; SQLite's asks
            db.session.execute(sa.text("ANALYZE delivery_orders"))
        db.session.commit()
        busiest = db.session.execute(sa.text(
            "SELECT u.province_id, u.district_id, SUM(m.received) FROM report_months m "
            "JOIN report_units u ON u.unit_id = m.commune_id WHERE m.month BETWEEN :a AND :b "
            "GROUP BY u.province_id, u.district_id ORDER BY 3 DESC LIMIT 1"),
            {"a": YEAR[0], "b": YEAR[1]}).one()
        province, district = busiest[0], busiest[1]
        info["province"] = db.session.execute(sa.text("SELECT name FROM admin_units WHERE id = :i"),
                                              {"i": province}).scalar()
        info["district"] = db.session.execute(sa.text("SELECT name FROM admin_units WHERE id = :i"),
                                              {"i": district}).scalar()
        info["statuses"] = dict(db.session.execute(sa.text(
            "SELECT status, count(*) FROM delivery_orders GROUP BY status ORDER BY 2 DESC")).all())
        tables = ("delivery_orders", "report_days", *[t for t, _ in rollup_tables()])
        info["rows"] = {t: db.session.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar() for t in tables}
        if d.pg:
            info["size"] = db.session.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
            info["sizes"] = {t: db.session.execute(sa.text(f"SELECT pg_total_relation_size('{t}')")).scalar()
                             for t in tables}
        else:
            info["size"] = sum(Path(str(target.path) + s).stat().st_size for s in ("", "-wal")
                               if Path(str(target.path) + s).exists())
        db.session.commit()

    since = dt.datetime.combine(YEAR[0], dt.time(), tz)
    until = dt.datetime.combine(YEAR[1] + dt.timedelta(days=1), dt.time(), tz)
    direct = sa.text(_direct_sql(d)).bindparams(sa.bindparam("since", type_=UTCDateTime()),
                                                sa.bindparam("until", type_=UTCDateTime()),
                                                sa.bindparam("today", type_=sa.Date()))

    def sql(text: str, **params: Any) -> Callable[[], Any]:
        stmt = direct if text == "direct" else sa.text(text)

        def run() -> Any:
            return db.session.execute(stmt, params).all()
        return run

    def fig(start: dt.date, end: dt.date, level: Any, filters: Any = None) -> Callable[[], Any]:
        def run() -> Any:
            return figures(admin, start, end, level, filters or Filters(), today=today, catch_up=False)
        return run

    baselines: list[tuple[str, Callable[[], Any]]] = [
        ("bare GROUP BY district_id, status (covering index) = 1", sql(
            "SELECT district_id, status, count(*) FROM delivery_orders GROUP BY 1, 2")),
        ("bare GROUP BY province_id, status (covering index)", sql(
            "SELECT province_id, status, count(*) FROM delivery_orders GROUP BY 1, 2")),
        ("report counts by district straight from the orders (one GROUP BY, no rollups)",
         sql("direct", since=since, until=until, today=today)),
    ]
    report_cases: list[tuple[str, Callable[[], Any]]] = [
        ("district report, year 2026 (figures)", fig(*YEAR, Level.DISTRICT)),
        (f"district report, year, one province ({info['province']})",
         fig(*YEAR, Level.DISTRICT, Filters(province=province))),
        (f"commune report, year, one district ({info['district']})",
         fig(*YEAR, Level.COMMUNE, Filters(district=district))),
        ("district report, 15 Jan – 14 Dec (days at both ends)", fig(*PARTIAL, Level.DISTRICT)),
    ]
    before: dict[str, Callable[[], Any]] = {}  # per case: a change made (and folded) before each run
    query = f"level=district&start={YEAR[0]}&end={YEAR[1]}"
    page_path = f"/reports/?{query}"
    page_exists = any(rule.rule == "/reports/" for rule in app.url_map.iter_rules())
    if page_exists:
        client = logged_in(app)
        report_cases.append(("dashboard page GET " + page_path, get(app, client, page_path)))
        for chart in ("units", "trend"):
            report_cases.append((f"its {chart} chart GET /reports/chart/{chart}.svg?…",
                                 get(app, client, f"/reports/chart/{chart}.svg?{query}")))
        visit = [get(app, client, p) for p in (page_path, f"/reports/chart/units.svg?{query}",
                                               f"/reports/chart/trend.svg?{query}")]

        def page_and_charts(cold: bool) -> Callable[[], Any]:
            def run() -> int:
                if cold:  # as after a new event: nothing computed or drawn for these figures yet
                    forget(app)
                return sum(fn() for fn in visit)
            return run

        report_cases.append(("page + both charts as a browser loads them, figures unchanged since the "
                             "last view", page_and_charts(False)))
        changed = ("page + both charts right after a delivery today was folded (kept figures brought up "
                   "to date)")
        report_cases.append((changed, page_and_charts(False)))
        before[changed] = lambda: deliver_one(app)
        report_cases.append(("page + both charts, nothing kept (a new process: everything computed)",
                             page_and_charts(True)))
    cases = baselines + report_cases

    def run(label: str, fn: Callable[[], Any]) -> float:
        """One case, after what must happen before it (not timed); returns seconds."""
        if label in before:
            before[label]()
        seconds, _ = timed(fn)
        db.session.remove()
        return seconds

    samples: dict[str, list[float]] = defaultdict(list)
    with app.app_context():
        # the figures must equal the direct GROUP BY (the counts it can give)
        report = fig(*YEAR, Level.DISTRICT)()
        direct_rows = {r[0]: r[1:] for r in sql("direct", since=since, until=until, today=today)()}
        mismatch = []
        for row in report.rows:
            got = (row.received, row.delivered, row.on_time, row.returned, row.cancelled, row.open,
                   row.overdue)
            if tuple(direct_rows.get(row.key, ())) != got:
                mismatch.append((row.key, got, direct_rows.get(row.key)))
        info["figures_equal_direct"] = not mismatch and len(direct_rows) == len(report.rows)
        info["mismatch"] = mismatch[:3]
        info["report_rows"] = len(report.rows)
        info["total"] = {k: getattr(report.total, k) for k in (
            "received", "delivered", "on_time", "failed_attempts", "returned", "cancelled", "open",
            "overdue")}
        db.session.remove()
        log(f"  figures = direct GROUP BY: {info['figures_equal_direct']} ({len(report.rows)} districts)")
        for label, fn in cases:  # warm-up
            run(label, fn)
        for r in range(rounds):
            for label, fn in cases:
                samples[label].append(run(label, fn))
            log(f"  round {r + 1}/{rounds}")
        # where each case's time goes: its statements, timed in one more pass
        stmts = StatementLog(db.engine)
        info["statements"] = {}
        for label, fn in report_cases:
            if label in before:
                before[label]()
            stmts.items, stmts.on = [], True
            fn()
            stmts.on = False
            db.session.remove()
            info["statements"][label] = sorted(stmts.items, key=lambda s: -s[0])
        if page_exists:
            # what the page showed after the last change equals the figures computed from scratch;
            # then the same for more changes, on older days too, and a period with days at both ends
            from delivery_service.accounts.models import User
            from delivery_service.accounts.services import Actor as Reader
            from delivery_service.reports.figures import CHART_MEASURES, weekly_trend

            reader = Reader.of_user(db.session.execute(sa.select(User).where(
                User.username == "bench.admin")).scalar_one())
            problems = []
            kept = figures(reader, *YEAR, Level.DISTRICT, today=today, memo=True)
            if report_figures(kept) != report_figures(fig(*YEAR, Level.DISTRICT)()):
                problems.append("the page's figures after the last change")
            trend_start = YEAR[0]  # the page's trend: its period (longer than TREND_WEEKS)
            kept_t = weekly_trend(reader, trend_start, YEAR[1], memo=True, measures=CHART_MEASURES)
            if trend_figures(kept_t) != trend_figures(weekly_trend(reader, trend_start, YEAR[1],
                                                                   measures=CHART_MEASURES)):
                problems.append("the page's trend after the last change")
            db.session.remove()
            problems += check_incremental(app, reader, today, [YEAR, PARTIAL])
            info["incremental_problems"] = problems
            log(f"  kept figures = recomputed: {not problems} {problems}")
        if explain and d.pg:
            label, (seconds, statement, params) = max(
                ((label, items[0]) for label, items in info["statements"].items() if items),
                key=lambda x: x[1][0])
            with db.engine.connect() as c:
                # in the report's own settings (figures turns PostgreSQL's JIT off for its transaction)
                for _, other, _ in info["statements"][label]:
                    if other.lstrip().upper().startswith("SET LOCAL"):
                        c.exec_driver_sql(other)
                plan = c.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).all()
                info["explain"] = (label, seconds, "\n".join(p[0] for p in plan))
                c.rollback()
        with db.engine.begin() as c:
            for name in ("ix_bench_district_status", "ix_bench_province_status"):
                c.execute(sa.text(f"DROP INDEX {name}"))
    info["page"] = page_exists
    _dispose(app)
    base = statistics.median(samples[baselines[0][0]])
    rows = [{"backend": target.backend, "orders": n, "case": label, "best": min(s) * 1000,
             "median": statistics.median(s) * 1000, "ratio": statistics.median(s) / base}
            for label, s in samples.items()]
    if not page_exists:
        rows.append({"backend": target.backend, "orders": n, "case": "dashboard page GET " + page_path,
                     "best": None, "median": None, "ratio": None})
    return rows, info


# --- output -------------------------------------------------------------------------------------------------

def conditions() -> str:
    import importlib.metadata as md
    import sqlite3
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = (" (with uncommitted changes in delivery_service/ or this script)"
             if git("status", "--porcelain", "delivery_service", "scripts/bench/reports.py") else "")
    parts = [f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"commit: {git('rev-parse', '--short', 'HEAD')}{dirty}",
             f"cpus: {os.cpu_count()}", f"load average: {[f'{x:.2f}' for x in os.getloadavg()]}",
             f"python: {platform.python_version()}"]
    versions = []
    for pkg in ("flask", "sqlalchemy", "psycopg"):
        try:
            versions.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    parts.append("packages: " + ", ".join(versions))
    parts.append(f"SQLite {sqlite3.sqlite_version}")
    return "; ".join(parts)


def pg_conditions(pg_admin: str) -> str:
    engine = sa.create_engine(pg_admin)
    try:
        with engine.connect() as conn:
            version = conn.scalar(sa.text("SHOW server_version"))
            settings = conn.execute(sa.text(
                "SELECT name, setting, unit FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', "
                "'max_parallel_workers_per_gather', 'jit', 'effective_cache_size') ORDER BY name")).all()
    finally:
        engine.dispose()

    def fmt(name: str, setting: str, unit: str | None) -> str:
        if unit == "8kB":
            return f"{name} {int(setting) * 8 // 1024} MB"
        if unit == "kB":
            return f"{name} {int(setting) // 1024} MB"
        return f"{name} {setting}"
    return f"PostgreSQL {version} ({', '.join(fmt(*s) for s in settings)})"


def _mb(n: int) -> str:
    return f"{n / 1024 ** 2:,.0f} MB" if n < 10 * 1024 ** 3 else f"{n / 1024 ** 3:,.1f} GB"


def _check_line(backend: str, c: dict[str, Any]) -> str:
    compared = ", ".join(f"{name} {v['rows']:,} rows ({v['differ']} differ, {v['zero_rows']} all-zero "
                         "rows left by the fold)" for name, v in c["tables"].items())
    verdict = "; ".join(c["problems"]) if c["problems"] else "shortcut = fold"
    return (f"- shortcut check ({backend}, {c['orders']:,} orders, {c['events']:,} events): fold "
            f"{c['seconds']:.1f} s = **{c['folded'] / max(c['seconds'], 1e-9):,.0f} events/s**; {compared}: "
            f"**{verdict}**")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="postgresql,sqlite")
    parser.add_argument("--sizes", help="orders per database, comma-separated, for every backend (default: "
                                         + "; ".join(f"{b} {v}" for b, v in DEFAULT_SIZES.items()) + ")")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--layout", choices=("chronological", "shuffled"), default="chronological",
                        help="ids by day and recent open orders (as in service), or days and open orders "
                             "drawn at random all over the table (pessimistic)")
    parser.add_argument("--keep", action="store_true",
                        help="reuse a complete generated database of that size, and keep it afterwards")
    parser.add_argument("--check-orders", type=int, default=20_000,
                        help="orders of the shortcut's check against the fold (0: skip)")
    parser.add_argument("--explain", action="store_true",
                        help="EXPLAIN ANALYZE the slowest statement of all the report cases (PostgreSQL)")
    parser.add_argument("--sqlite-dir", type=Path, default=Path("/tmp/bench-reports"))
    parser.add_argument("--pg-admin-url", default=PG_ADMIN)
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    if unknown := [b for b in backends if b not in DEFAULT_SIZES]:
        parser.error(f"unknown backend(s) {unknown}: use postgresql and/or sqlite")

    start_conditions = conditions()
    table, notes, checks = [], [], []
    for backend in backends:
        if args.check_orders:
            check_target = Target(backend, f"bench_reports_check_{uuid.uuid4().hex[:6]}", args.sqlite_dir,
                                  args.pg_admin_url)
            check = fold_check(check_target, args.check_orders, args.layout)
            checks.append((backend, check))
            if check["problems"]:  # the rollups measured below would not be what the fold makes
                log(f"{backend}: SHORTCUT CHECK FAILED: " + "; ".join(check["problems"]))
                print(_check_line(backend, check))
                return 1
        for n in [int(s) for s in (args.sizes or DEFAULT_SIZES[backend]).split(",")]:
            suffix = "" if args.layout == "chronological" else f"_{args.layout}"
            target = Target(backend, f"bench_reports_{n}{suffix}", args.sqlite_dir, args.pg_admin_url)
            marker = target.marker() if args.keep else None
            wanted = (GEN_VERSION, n, args.layout, schema_fingerprint())
            if not marker or tuple(marker.get(k) for k in ("version", "n", "layout", "schema")) != wanted:
                marker = setup(target, n, args.layout)
            else:
                log(f"{backend} {n:,}: reusing {target.name} (generated {marker.get('created')})")
            rows, info = measure(target, n, args.rounds, args.explain)
            table.extend(rows)
            notes.append((backend, n, marker, info))
            if not args.keep:
                target.drop()

    out = ["| backend | orders | case | best ms | median ms | ratio to bare GROUP BY (median) |",
           "|---|---|---|---|---|---|"]
    for r in table:
        if r["best"] is None:
            out.append(f"| {r['backend']} | {r['orders']:,} | {r['case']} | not measured: no such route "
                       "| | |")
        else:
            out.append(f"| {r['backend']} | {r['orders']:,} | {r['case']} | {r['best']:,.1f} | "
                       f"{r['median']:,.1f} | {r['ratio']:.2f} |")
    out.append("")
    for backend, n, marker, info in notes:
        sizes_txt = (", ".join(f"{t} {_mb(s)}" for t, s in info["sizes"].items()) if "sizes" in info else "")
        out.append(f"- {backend} {n:,}: " + ", ".join(f"{t} {k:,} rows" for t, k in info["rows"].items())
                   + f"; database {_mb(info['size'])}"
                   + (f" ({sizes_txt})" if sizes_txt else "")
                   + f". Set-up (generated {marker.get('created')}): units + orgs {marker['units_s']:.0f} s, "
                   f"orders {marker['orders_s']:.0f} s, indexes {marker['indexes_s']:.0f} s, "
                   f"rollups {marker['rollups_s']:.0f} s, vacuum/analyze {marker['vacuum_s']:.0f} s"
                   + f". Layout {marker.get('layout')}; statuses {info['statuses']}.")
        top = "; ".join(f"{s * 1000:.1f} ms `{' '.join(q.split())[:70]}…`"
                        for s, q, _ in info["statements"]["district report, year 2026 (figures)"][:3])
        out.append(f"  - year district report: {info['report_rows']} rows; figures = direct GROUP BY for "
                   f"received, delivered, on time, returned, cancelled, open, overdue: "
                   f"**{'yes' if info['figures_equal_direct'] else 'NO ' + str(info['mismatch'])}**; "
                   f"total {info['total']}; slowest statements: {top}")
        if "incremental_problems" in info:
            problems = info["incremental_problems"]
            out.append("  - kept figures brought up to date after changes (deliveries now, 40 and 200 days "
                       "ago; the year and 15 Jan – 14 Dec; report and trend) = the same computed from "
                       "scratch: "
                       + (f"**NO: {'; '.join(problems)}**" if problems else "**yes**"))
        for label, items in info["statements"].items():
            if items:
                total = sum(i[0] for i in items) * 1000
                out.append(f"  - {label}: {len(items)} statements, {total:.1f} ms in the database; slowest "
                           f"{items[0][0] * 1000:.1f} ms `{' '.join(items[0][1].split())[:80]}…`")
        if info.get("explain"):
            label, seconds, plan = info["explain"]
            out.append(f"\n  The slowest statement ({label}, {seconds * 1000:.0f} ms), "
                       "EXPLAIN (ANALYZE, BUFFERS):\n\n```\n" + plan + "\n```")
    out.extend(_check_line(backend, c) for backend, c in checks)
    out.append("")
    out.append(f"Conditions at start: {start_conditions}")
    if "postgresql" in backends:
        out.append(pg_conditions(args.pg_admin_url))
    out.append(f"At the end: {conditions()}")
    print("\n".join(out))
    return 1 if any(not info["figures_equal_direct"] or info.get("incremental_problems")
                    for *_, info in notes) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
