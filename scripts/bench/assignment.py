"""Assignment throughput: orders placed on routes per second, by the library and through the database.

Library: ``routes.assign`` on 100,000 orders over a province-sized table (the communes of the 2025
structure as 1,000 routes, a third of them refined by hamlet rules, capacities and backups), next to
a bare dictionary look-up of commune → route for the same orders (the least work any assignment does).

Database: ``routing.services.assign_pending`` placing 100,000 waiting orders (reading them, the
library, reserving capacity, the UPDATE of each order and its event), next to the bare write of the
same pattern in the same run: the UPDATE of the orders (executemany on SQLite, one statement over
unnested arrays per batch on PostgreSQL, as the service does) and the INSERT of their events.

    .venv/bin/python scripts/bench/assignment.py [--orders 100000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import routes  # noqa: E402

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BARE_PG = sa.text("UPDATE delivery_orders AS o SET route_id = :route, status = 'assigned' "
                  "FROM unnest(CAST(:ids AS bigint[])) AS v(id) WHERE o.id = v.id")
HAMLETS = ("Thôn 1", "Thôn 2", "Thôn Phú Lộc", "Xóm Đông", "Tổ 5", "Khu phố 3")


def run_line() -> str:
    """When and on what this ran: the UTC time, the commit (and whether the tree had uncommitted
    changes), the load average. Printed above the table, and copied with it into docs/benchmarks.md."""
    import os
    import subprocess

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    dirty = " with uncommitted changes" if git("diff-index", "--quiet", "HEAD", "--").returncode else ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}{dirty}, "
            f"{os.cpu_count()} CPUs, load average {load}.")


def _median_time(fn, repeat: int) -> tuple[float, object]:  # noqa: ANN001
    """Median seconds of ``repeat`` calls of ``fn()``, and the last result."""
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def library_cases(n: int, seed: int = 1, repeat: int = 3) -> list[tuple[str, float, float, str]]:
    """(case, seconds for routes.assign on ``n`` orders, seconds for the bare dictionary look-up of the
    same orders, what was checked) for three tables; medians of ``repeat`` runs each."""
    rng = random.Random(seed)
    communes = [str(10_000 + i) for i in range(3_321)]
    defs, whole = [], {}
    for r in range(1_000):
        mine = communes[r * 3:(r + 1) * 3 + (1 if r == 999 else 0)] or [communes[r % len(communes)]]
        rules = [routes.Rule(c) for c in mine]
        if r % 3 == 0:
            rules.append(routes.Rule(mine[0], routes.RuleKind.HAMLET, HAMLETS[r % len(HAMLETS)]))
        defs.append(routes.RouteDef(f"R{r:04d}", tuple(rules), capacity=rng.choice([None, 150, 300]),
                                    backup=f"R{(r + 1) % 1000:04d}"))
        for c in mine:
            whole.setdefault(c, f"R{r:04d}")
    province = routes.RouteTable.build(defs)
    orders = [routes.OrderAddress(i, rng.choice(communes), f"{i} {rng.choice(HAMLETS)}, xã X")
              for i in range(n)]
    # one commune whose route heads a 1,000-route chain (no loop), every route room for n / 1,000
    cap = max(1, n // 1000)
    chain = routes.RouteTable.build([
        routes.RouteDef(f"L{r:04d}", (routes.Rule(communes[r]),), capacity=cap,
                        backup=f"L{r + 1:04d}" if r < 999 else None) for r in range(1000)])
    # a 1,000-route backup cycle with room for half the orders: the second half walks the whole loop
    cycle = routes.RouteTable.build([
        routes.RouteDef(f"C{r:04d}", (routes.Rule(communes[r]),), capacity=max(1, cap // 2),
                        backup=f"C{(r + 1) % 1000:04d}") for r in range(1000)])
    one_commune = [routes.OrderAddress(i, communes[0], "") for i in range(n)]
    first = {communes[0]: "X"}

    out = []
    for case, table, batch, bare_map, check in (
            ("province table: 1,000 routes, a third with hamlet rules, one backup cycle", province, orders,
             whole, lambda placed: len(placed) == n),
            ("one 1,000-route backup chain, every order to its head, all placed", chain, one_commune, first,
             lambda placed: sum(a.route is not None for a in placed) == min(n, cap * 1000)
             and placed[-1].route == f"L{(min(n, cap * 1000) - 1) // cap:04d}"),
            ("a 1,000-route backup cycle with room for half: the rest go round it", cycle, one_commune, first,
             lambda placed: sum(a.route is None for a in placed) == n - min(n, max(1, cap // 2) * 1000))):
        lib, placed = _median_time(lambda t=table, b=batch: routes.assign(t, b, defaultdict(int)), repeat)
        assert check(placed), case
        base, looked = _median_time(lambda m=bare_map, b=batch: [m.get(o.commune) for o in b], repeat)
        assert len(looked) == n
        done = sum(a.route is not None for a in placed)
        out.append((case, lib, base, f"{done:,} placed, {n - done:,} to dispatch"))
    return out


def prepare(url: str):  # noqa: ANN201
    from flask_migrate import upgrade

    from delivery_service import create_app
    from delivery_service.demo.seed import load
    from delivery_service.units.services import import_units

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        import_units("2025", ["51", "42", "48"])  # the demo's provinces
        list(load("bench-password", with_orders=False))
    return app


def _fill(app, n: int) -> None:  # noqa: ANN001
    """``n`` orders waiting for a route, spread over every commune in force, and routes covering them
    all (about 3 communes each, with hamlet rules on some)."""
    from delivery_service.extensions import db
    from delivery_service.orders.models import DeliveryOrder
    from delivery_service.orgs.models import PostalRoute, PostOffice, route_communes
    from delivery_service.routing.models import RouteRule
    from delivery_service.units.models import AdminUnit, UnitLevel

    with app.app_context():
        communes = db.session.scalars(sa.select(AdminUnit).where(
            AdminUnit.level == UnitLevel.COMMUNE, AdminUnit.valid_to.is_(None))).all()
        office = db.session.scalar(sa.select(PostOffice).where(PostOffice.code == "BC-QNG"))
        db.session.execute(sa.delete(route_communes))
        for i in range(0, len(communes), 3):
            route = PostalRoute(code=f"BM-{i:04d}", name=f"Bench {i}", post_office_id=office.id)
            db.session.add(route)
            db.session.flush()
            db.session.execute(sa.insert(route_communes), [{"route_id": route.id, "unit_id": u.id}
                                                           for u in communes[i:i + 3]])
            if i % 9 == 0:
                db.session.add(RouteRule(route_id=route.id, commune_id=communes[i].id, kind="hamlet",
                                         phrase="Thôn Phú Lộc", phrase_key="thon phu loc"))
        counter_id = db.session.execute(sa.text("SELECT id FROM counters ORDER BY id LIMIT 1")).scalar()
        province = db.session.execute(sa.text(
            "SELECT id FROM admin_units WHERE level = 'province' AND valid_to IS NULL")).scalar()
        now = dt.datetime.now(dt.UTC)
        day = dt.date.today() + dt.timedelta(days=1)
        rows = []
        for i in range(n):
            c = communes[i % len(communes)]
            rows.append({
                "item_id": f"BM{i:09d}VN", "counter_id": counter_id, "direction": "result_to_citizen",
                "status": "created", "dossier_code": f"BM-{uuid.uuid4().hex[:12]}",
                "procedure_name": "Cấp đổi giấy phép lái xe", "issuing_agency": "Sở Xây dựng",
                "recipient_name": "Nguyễn Văn Bình", "recipient_name_key": "nguyễn văn bình",
                "recipient_phone": "0905123456", "province_id": province, "commune_id": c.id,
                "address_detail": f"{i} {HAMLETS[i % len(HAMLETS)]}", "postage_vnd": 26000,
                "payer": "citizen", "exemption": "none", "postage_due_vnd": 26000, "collect_vnd": 0,
                "appointment_date": day, "due_date": day, "created_at": now, "updated_at": now,
                "dispatch": "unknown_commune"})
        table = DeliveryOrder.__table__
        for i in range(0, n, 5000):
            db.session.execute(table.insert(), rows[i:i + 5000])
        db.session.commit()


def main(argv: list[str] | None = None) -> int:
    print(run_line())
    print()
    print(run_assignment_bench(argv))
    return 0


def run_assignment_bench(argv: list[str] | None = None) -> str:
    """The assignment tables as markdown (called by scripts/bench/routes.py too)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql", help="'' for the library cases only")
    args = parser.parse_args(argv or [])
    out = ["| case | orders | seconds | orders/s | baseline (same run) | baseline orders/s |",
           "|---|---|---|---|---|---|"]
    for case, lib, base, done in library_cases(args.orders):
        out.append(f"| routes.assign, {case} ({done}) | {args.orders:,} | {lib:.3f} | "
                   f"{args.orders / lib:,.0f} | dict look-up commune → route | {args.orders / base:,.0f} |")
    for backend in filter(None, args.backends.split(",")):
        seconds, bare, counts = _database(backend, args.orders)
        placed = sum(v for k, v in counts.items() if k not in ("unknown_commune", "no_rule", "over_capacity"))
        out.append(f"| assign_pending ({backend}) | {args.orders:,} ({placed:,} placed) | {seconds:.2f} "
                   f"| {args.orders / seconds:,.0f} | bare UPDATE + event INSERT "
                   f"| {args.orders / bare:,.0f} |")
    return "\n".join(out)


def _database(backend: str, n: int) -> tuple[float, float, dict[str, int]]:
    """(seconds for assign_pending, seconds for the bare write, outcome counts) on a fresh database each."""
    from delivery_service.accounts.services import SYSTEM
    from delivery_service.extensions import db
    from delivery_service.orders.models import DeliveryOrder, OrderEvent
    from delivery_service.routing.services import assign_pending

    timings: dict[str, float] = {}
    counts: dict[str, int] = {}
    for case in ("bare", "service"):
        url, drop = _fresh(backend)
        try:
            app = prepare(url)
            _fill(app, n)
            with app.app_context():
                if case == "service":
                    started = time.perf_counter()
                    counts = assign_pending(SYSTEM)
                    timings[case] = time.perf_counter() - started
                else:
                    ids = db.session.scalars(sa.select(DeliveryOrder.id)).all()
                    route_id = db.session.execute(sa.text("SELECT MIN(id) FROM postal_routes")).scalar()
                    now = dt.datetime.now(dt.UTC)
                    orders, events = DeliveryOrder.__table__, OrderEvent.__table__
                    update = (sa.update(orders).where(orders.c.id == sa.bindparam("b_id"))
                              .values(route_id=sa.bindparam("b_route"), status="assigned"))
                    started = time.perf_counter()
                    conn = db.session.connection()
                    for i in range(0, n, 5000):
                        chunk = ids[i:i + 5000]
                        if backend == "postgresql":  # the same one-statement form the service uses
                            conn.execute(BARE_PG, {"ids": chunk, "route": route_id})
                        else:
                            conn.execute(update, [{"b_id": x, "b_route": route_id} for x in chunk])
                        conn.execute(events.insert(), [
                            {"order_id": x, "status_from": "created", "status_to": "assigned",
                             "server_time": now, "actor_label": "system"} for x in chunk])
                        db.session.commit()
                        conn = db.session.connection()
                    timings[case] = time.perf_counter() - started
                db.session.remove()
            with app.app_context():
                db.engine.dispose()
        finally:
            drop()
    return timings["service"], timings["bare"], counts


def _fresh(backend: str):  # noqa: ANN202
    if backend == "sqlite":
        tmp = Path(tempfile.mkdtemp(prefix="bench-assign-"))
        return f"sqlite:///{tmp / 'bench.sqlite3'}", lambda: None
    name = f"ds_bench_assign_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, drop


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
