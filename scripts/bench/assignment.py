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


def library_case(n: int, seed: int = 1) -> tuple[float, float]:
    """Seconds for routes.assign on ``n`` orders, and for the bare dictionary look-up."""
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
    table = routes.RouteTable.build(defs)
    orders = [routes.OrderAddress(i, rng.choice(communes), f"{i} {rng.choice(HAMLETS)}, xã X")
              for i in range(n)]
    started = time.perf_counter()
    placed = routes.assign(table, orders, defaultdict(int))
    lib = time.perf_counter() - started
    assert len(placed) == n
    started = time.perf_counter()
    bare = [whole.get(o.commune) for o in orders]
    base = time.perf_counter() - started
    assert len(bare) == n
    return lib, base


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
    print(run_assignment_bench(argv))
    return 0


def run_assignment_bench(argv: list[str] | None = None) -> str:
    """The assignment tables as markdown (called by scripts/bench/routes.py too)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv or [])
    lib, base = library_case(args.orders)
    out = ["| case | orders | seconds | orders/s | baseline (same run) | baseline orders/s |",
           "|---|---|---|---|---|---|",
           f"| routes.assign (library) | {args.orders:,} | {lib:.2f} | {args.orders / lib:,.0f} "
           f"| dict look-up commune → route | {args.orders / base:,.0f} |"]
    for backend in args.backends.split(","):
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
