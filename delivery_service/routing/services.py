"""Orders onto routes: automatic assignment within capacity, moves by supervisors, route coverage,
and the sequenced run of a route for a day."""

from __future__ import annotations

import datetime as dt
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

import routes
from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import Actor, record
from delivery_service.db import utcnow
from delivery_service.errors import Conflict, Forbidden, InvalidInput, Message, NotFound, coded
from delivery_service.extensions import db
from delivery_service.localtime import day_start
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.status import TERMINAL, Status
from delivery_service.orgs.models import MAX_CAPACITY_PER_DAY, PostalRoute, PostOffice, route_communes
from delivery_service.routing.models import PartKind, RouteDayLoad, RouteRule, RouteRun, RunStop
from delivery_service.units.models import REFORM_DATE, AdminUnit, UnitLevel
from delivery_service.units.services import province_code_2025, unit_index
from delivery_service.vietnamese import sort_key
from routes.text import fold

_TABLE_TTL = 30.0  # other processes see coverage edits within this many seconds
MOVABLE = {Status.CREATED, Status.ASSIGNED, Status.FAILED_ATTEMPT, Status.PICKUP_SCHEDULED}
OPEN = {Status.CREATED, Status.ASSIGNED, Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY,
        Status.FAILED_ATTEMPT, Status.PICKUP_SCHEDULED, Status.PICKED_UP}


# --- the compiled route table, cached per process -------------------------------------------------

@dataclass(frozen=True)
class CompiledRoutes:
    table: routes.RouteTable
    ids: dict[str, int]  # route code -> id
    codes: dict[int, str]
    capacity: dict[int, int | None]


def compiled_routes() -> CompiledRoutes:
    """The active routes as the assignment library sees them (communes by unit id)."""
    cache = current_app.extensions.get("route_table")
    if cache is not None and cache[0] > time.monotonic():
        return cache[1]
    rows = db.session.execute(sa.select(PostalRoute.id, PostalRoute.code, PostalRoute.capacity_per_day,
                                        PostalRoute.backup_route_id).where(PostalRoute.active)).all()
    codes = {r.id: r.code for r in rows}
    rules: dict[int, list[routes.Rule]] = defaultdict(list)
    whole = sa.select(route_communes.c.route_id, route_communes.c.unit_id)
    for route_id, unit_id in db.session.execute(whole):
        rules[route_id].append(routes.Rule(str(unit_id)))
    for rule in db.session.scalars(sa.select(RouteRule)):
        rules[rule.route_id].append(routes.Rule(str(rule.commune_id), routes.RuleKind(rule.kind.value),
                                                rule.phrase))
    defs = [routes.RouteDef(r.code, tuple(rules.get(r.id, ())), r.capacity_per_day,
                            codes.get(r.backup_route_id) if r.backup_route_id else None) for r in rows]
    compiled = CompiledRoutes(routes.RouteTable.build(defs), {c: i for i, c in codes.items()}, codes,
                              {r.id: r.capacity_per_day for r in rows})
    current_app.extensions["route_table"] = (time.monotonic() + _TABLE_TTL, compiled)
    return compiled


def invalidate_routes() -> None:
    """Forget the compiled routes of this process (after a coverage edit)."""
    current_app.extensions.pop("route_table", None)


# --- capacity: per route and day, reserved atomically --------------------------------------------

_RESERVE: dict[tuple[str, bool], Any] = {}


def _reserve_statement(dialect: str, force: bool) -> Any:
    """The reservation upsert, built once per dialect (bound values only, so compiled once)."""
    key = (dialect, force)
    if key not in _RESERVE:
        loads = RouteDayLoad.__table__
        n = sa.bindparam("n", type_=sa.Integer)
        limit = (sa.select(PostalRoute.capacity_per_day)
                 .where(PostalRoute.id == sa.bindparam("route_id", type_=sa.Integer)).scalar_subquery())
        insert = (postgresql.insert(loads) if dialect == "postgresql" else sqlite.insert(loads)).values(
            route_id=sa.bindparam("route_id"), day=sa.bindparam("day"), orders=n)
        _RESERVE[key] = insert.on_conflict_do_update(
            index_elements=[loads.c.route_id, loads.c.day], set_={"orders": loads.c.orders + n},
            where=None if force else sa.or_(limit.is_(None), loads.c.orders + n <= limit),
        ).returning(loads.c.orders)
    return _RESERVE[key]


_FULL_FOR = 10.0  # seconds this process skips a route it found full (places only free up rarely)


def reserve(route_id: int, day: dt.date, n: int = 1, *, force: bool = False) -> bool:
    """Take ``n`` places on a route's day if it has room; False (nothing taken) if it has not.

    A route without a capacity needs no reservation (its load is counted from its orders). For one
    with a capacity: one statement (an upsert whose update is conditional), so that of two
    concurrent intakes only one can take the last place. ``force``: count them whatever the
    capacity (a supervisor's move).
    """
    capacity = compiled_routes().capacity.get(route_id)
    if capacity is None:
        return True
    full: dict[tuple[int, dt.date], float] = current_app.extensions.setdefault("routes_full", {})
    if not force and (n > capacity or full.get((route_id, day), 0.0) > time.monotonic()):
        return False
    conn = db.session.connection()
    stmt = _reserve_statement(conn.dialect.name, force)
    # A row comes back only when it was written (rowcount is not reliable for upserts everywhere).
    taken = conn.execute(stmt, {"route_id": route_id, "day": day, "n": n}).first() is not None
    if not taken and n == 1:
        full[(route_id, day)] = time.monotonic() + _FULL_FOR
    return taken


def release(route_id: int | None, day: dt.date | None, n: int = 1) -> None:
    """Give back places an order no longer takes (moved, cancelled)."""
    if route_id is None or day is None:
        return
    current_app.extensions.get("routes_full", {}).pop((route_id, day), None)
    loads = RouteDayLoad.__table__
    db.session.execute(sa.update(loads).where(loads.c.route_id == route_id, loads.c.day == day)
                       .values(orders=sa.func.max(loads.c.orders - n, 0) if _is_sqlite()
                               else sa.func.greatest(loads.c.orders - n, 0)))


def _is_sqlite() -> bool:
    return db.session.get_bind().dialect.name == "sqlite"


NOT_COUNTED = (Status.CANCELLED, Status.RETURNED_TO_AGENCY)


def day_loads(route_ids: Iterable[int], day: dt.date) -> dict[int, int]:
    """How many orders each route has on ``day``, counted from the orders."""
    ids = list(route_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(DeliveryOrder.route_id, sa.func.count())
        .where(DeliveryOrder.route_id.in_(ids), DeliveryOrder.run_date == day,
               DeliveryOrder.status.not_in(NOT_COUNTED))
        .group_by(DeliveryOrder.route_id))
    return {route_id: n for route_id, n in rows}


def hand_runs_to(route_id: int, courier_id: int | None, from_day: dt.date) -> None:
    """The route's courier changed: its runs from ``from_day`` on are the new courier's (the runs of
    the days before stay with the courier who worked them)."""
    db.session.execute(sa.update(RouteRun).where(RouteRun.route_id == route_id, RouteRun.run_date >= from_day)
                       .values(courier_id=courier_id).execution_options(synchronize_session=False))


def recount(route_id: int, from_day: dt.date) -> None:
    """Rebuild a route's reservations from its orders (when its capacity is set or changed)."""
    loads = RouteDayLoad.__table__
    db.session.execute(sa.delete(loads).where(loads.c.route_id == route_id, loads.c.day >= from_day))
    counts = db.session.execute(
        sa.select(DeliveryOrder.run_date, sa.func.count())
        .where(DeliveryOrder.route_id == route_id, DeliveryOrder.run_date >= from_day,
               DeliveryOrder.status.not_in(NOT_COUNTED))
        .group_by(DeliveryOrder.run_date)).all()
    if counts:
        db.session.execute(sa.insert(loads), [{"route_id": route_id, "day": day, "orders": n}
                                              for day, n in counts])
    for key in [k for k in current_app.extensions.get("routes_full", {}) if k[0] == route_id]:
        current_app.extensions["routes_full"].pop(key, None)


# --- automatic assignment ----------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    route_id: int | None
    outcome: routes.Outcome


def plan_day(order_day: dt.date | None, today: dt.date) -> dt.date:
    """The day an order goes on its route's run: its appointment day, never before today."""
    return max(order_day or today, today)


def place(commune_id: int, detail: str, day: dt.date) -> Placement:
    """Choose a route for one address on ``day`` and reserve its place (current transaction)."""
    compiled = compiled_routes()
    candidates, how = compiled.table.match(str(commune_id), detail)
    if not candidates:
        return Placement(None, how)
    if len(candidates) == 1:
        # The usual case: try the route, then its backups; each try is one atomic statement.
        for code in compiled.table.chain(candidates[0]):
            if reserve(compiled.ids[code], day):
                outcome = how if code == candidates[0] else routes.Outcome.OVERFLOW
                return Placement(compiled.ids[code], outcome)
        return Placement(None, routes.Outcome.OVER_CAPACITY)
    for _attempt in range(5):  # several routes share the area: the least loaded takes the order
        ids = _chain_ids(compiled, candidates)
        load = {compiled.codes[i]: n for i, n in day_loads(ids, day).items()}
        got = routes.assign(compiled.table, [routes.OrderAddress(0, str(commune_id), detail)], load)[0]
        if got.route is None:
            return Placement(None, got.outcome)
        if reserve(compiled.ids[got.route], day):
            return Placement(compiled.ids[got.route], got.outcome)
        # Someone took the last place meanwhile: look again with fresh loads.
    return Placement(None, routes.Outcome.OVER_CAPACITY)


def _chain_ids(compiled: CompiledRoutes, codes: Iterable[str]) -> set[int]:
    return {compiled.ids[c] for code in codes for c in compiled.table.chain(code)}


def assign_pending(actor: Actor, day: dt.date | None = None, *, order_ids: Sequence[int] | None = None,
                   batch: int = 5000) -> dict[str, int]:
    """Assign every order waiting for a route (or those of ``order_ids``) in bulk; commits per batch.

    Returns counts per outcome. Orders nothing matches stay flagged for manual dispatch.
    """
    _require_dispatcher(actor)
    from delivery_service.orders.services import local_today

    today = local_today()
    stmt = (sa.select(DeliveryOrder.id, DeliveryOrder.commune_id, DeliveryOrder.address_detail,
                      DeliveryOrder.appointment_date, DeliveryOrder.status)
            .where(DeliveryOrder.route_id.is_(None), DeliveryOrder.status.in_([Status.CREATED]))
            .order_by(DeliveryOrder.id))
    stmt = scope_orders(stmt, actor)
    if order_ids is not None:
        stmt = stmt.where(DeliveryOrder.id.in_(list(order_ids)))
    rows = db.session.execute(stmt).all()
    counts: dict[str, int] = defaultdict(int)
    for start in range(0, len(rows), batch):
        for outcome, n in _assign_rows(actor, rows[start:start + batch], day, today).items():
            counts[outcome] += n
        db.session.commit()
    return dict(counts)


def _assign_rows(actor: Actor, rows: Sequence[Any], day: dt.date | None, today: dt.date) -> dict[str, int]:
    compiled = compiled_routes()
    by_day: dict[dt.date, list[Any]] = defaultdict(list)
    for row in rows:
        by_day[day or plan_day(row.appointment_date, today)].append(row)
    placements: list[tuple[Any, dt.date, Placement]] = []
    for run_day, day_rows in by_day.items():
        load = {compiled.codes[i]: n for i, n in day_loads(compiled.codes, run_day).items()}
        before = dict(load)
        placed = routes.assign(compiled.table, [routes.OrderAddress(r.id, str(r.commune_id), r.address_detail)
                                                for r in day_rows], load)
        taken = [(compiled.ids[code], load[code] - before.get(code, 0)) for code in load]
        reserved: list[tuple[int, int]] = []
        for route_id, n in taken:
            if n and not reserve(route_id, run_day, n):
                # Loads changed under us (a concurrent intake): give back what this day took and
                # place its orders one at a time.
                for got_id, got_n in reserved:
                    release(got_id, run_day, got_n)
                placements += [(r, run_day, place(r.commune_id, r.address_detail, run_day)) for r in day_rows]
                break
            reserved.append((route_id, n))
        else:
            placements += [(r, run_day, Placement(compiled.ids[g.route] if g.route else None, g.outcome))
                           for r, g in zip(day_rows, placed, strict=True)]
    return _write_placements(actor, placements)


def _write_placements(actor: Actor, placements: Sequence[tuple[Any, dt.date, Placement]]) -> dict[str, int]:
    """Write each order's route (or why it waits) and, for the placed ones, their assignment event."""
    now = utcnow()
    counts: dict[str, int] = defaultdict(int)
    updates, events = [], []
    for row, run_day, got in placements:
        counts[got.outcome.value] += 1
        updates.append({"b_id": row.id, "b_route": got.route_id, "b_day": run_day if got.route_id else None,
                        "b_dispatch": None if got.route_id else got.outcome.value,
                        "b_status": Status.ASSIGNED if got.route_id else row.status, "b_now": now})
        if got.route_id:
            events.append(_event(row.id, Status.CREATED, Status.ASSIGNED, actor, got.outcome.value,
                                 got.route_id, now))
    _write_assignments(updates, events)
    return dict(counts)


_ASSIGN = (sa.update(DeliveryOrder.__table__)
           .where(DeliveryOrder.__table__.c.id == sa.bindparam("b_id"),
                  DeliveryOrder.__table__.c.route_id.is_(None))
           .values(route_id=sa.bindparam("b_route"), run_date=sa.bindparam("b_day"),
                   dispatch=sa.bindparam("b_dispatch"), status=sa.bindparam("b_status"),
                   updated_at=sa.bindparam("b_now")))


# PostgreSQL: one statement per batch (arrays unnested) instead of a round trip per order.
_ASSIGN_PG = sa.text("""
    UPDATE delivery_orders AS o
       SET route_id = v.route_id, run_date = v.run_date, dispatch = v.dispatch, status = v.status,
           updated_at = :now
      FROM unnest(CAST(:ids AS bigint[]), CAST(:routes AS bigint[]), CAST(:days AS date[]),
                  CAST(:dispatch AS varchar[]), CAST(:status AS varchar[]))
           AS v(id, route_id, run_date, dispatch, status)
     WHERE o.id = v.id AND o.route_id IS NULL""")


def _write_assignments(updates: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:
    conn = db.session.connection()
    if updates and conn.dialect.name == "postgresql":
        conn.execute(_ASSIGN_PG, {
            "ids": [u["b_id"] for u in updates], "routes": [u["b_route"] for u in updates],
            "days": [u["b_day"] for u in updates], "dispatch": [u["b_dispatch"] for u in updates],
            "status": [u["b_status"].value for u in updates], "now": updates[0]["b_now"]})
    elif updates:
        conn.execute(_ASSIGN, updates)
    if events:
        conn.execute(sa.insert(OrderEvent.__table__), events)


def _event(order_id: int, status_from: Status | None, status_to: Status, actor: Actor, reason: str | None,
           route_id: int | None, now: dt.datetime, note: str | None = None) -> dict[str, Any]:
    return {"order_id": order_id, "status_from": status_from, "status_to": status_to, "server_time": now,
            "reason": reason, "route_id": route_id, "note": note, "actor_user_id": actor.user_id,
            "actor_client_id": actor.client_id, "actor_label": actor.label}


# --- scope ---------------------------------------------------------------------------------------

def route_scope(stmt: sa.Select, actor: Actor) -> sa.Select:
    """Routes whose runs (with recipients' data) ``actor`` may see and work on."""
    if actor.role is Role.ADMIN:
        return stmt if actor.area_unit_id is None else stmt.where(PostalRoute.id.in_(_area_routes(actor)))
    if actor.role is Role.SUPERVISOR and actor.post_office_id is not None:
        return stmt.where(PostalRoute.post_office_id == actor.post_office_id)
    if actor.role is Role.COURIER:
        return stmt.where(PostalRoute.courier_id == actor.user_id)
    return stmt.where(sa.false())


def admin_area(actor: Actor) -> AdminUnit | None:
    """The province an administrator is limited to (a province admin on the administration pages),
    None when not limited to one (a national admin; other roles have their own scopes)."""
    if actor.role is not Role.ADMIN or actor.area_unit_id is None:
        return None
    area = db.session.get(AdminUnit, actor.area_unit_id)
    if area is None:  # fail closed: an area that is gone is no licence for the whole country
        raise Forbidden("Your administrative area no longer exists.")
    return area


def _area_routes(actor: Actor) -> sa.Select[tuple[int]]:
    """Ids of the routes an administrator limited to a province administers: the administration's
    own query (admin.org_services.routes_query), so that both sides scope routes alike."""
    from delivery_service.admin.org_services import routes_query  # the admin's pages import routing

    user = db.session.get(User, actor.user_id) if actor.user_id is not None else None
    if user is None or user.area_unit_id != actor.area_unit_id:
        return sa.select(PostalRoute.id).where(sa.false())
    return sa.select(routes_query(user).subquery().c.id)


def office_province(office: PostOffice) -> str | None:
    """The code of the 2025 province a post office lies in (its unit may be a commune or a province,
    of either structure): its routes cover communes of that province only (``set_coverage``)."""
    return province_code_2025(office.unit_id)


def office_provinces() -> dict[int, str | None]:
    """Every post office's 2025 province by ``office_province``'s rule, {office id: province code},
    from one query of the offices' units: for the choices that keep to one province (backup routes
    here, a route's couriers in admin.org_services)."""
    rows = db.session.execute(sa.select(PostOffice.id, PostOffice.unit_id))
    return {office_id: province_code_2025(unit_id) for office_id, unit_id in rows}


def move_choices(orders: Sequence[DeliveryOrder],
                 routes: Sequence[PostalRoute]) -> dict[int, list[PostalRoute]]:
    """{order id: the routes of ``routes`` that ``move_order`` accepts for it}: those of its address's
    province (a route's post office's, as of 2025, as ``move_order`` compares them), in the order
    given. For a page of orders at once: one query of the offices' provinces, the orders' from the
    unit index."""
    provinces = office_provinces() if orders and routes else {}
    by_province: dict[str | None, list[PostalRoute]] = defaultdict(list)
    for route in routes:
        if (home := provinces.get(route.post_office_id)) is not None:
            by_province[home].append(route)
    out: dict[int, list[PostalRoute]] = {}
    for order in orders:
        lies_in = province_code_2025(order.commune_id)
        out[order.id] = list(by_province.get(lies_in, [])) if lies_in is not None else []
    return out


def _outside(actor: Actor, office: PostOffice, home: str | None, what: str) -> str:
    """The refusal of ``what`` (communes' names, a route's code) lying outside the province of the
    route's post office. A province admin is told "your province": it is the same one, since their
    routes are those of their province's post offices (route_scope)."""
    if admin_area(actor) is not None:
        return coded("unit_mismatch", f"Outside your province: {what}.")
    return coded("unit_mismatch", f"Outside {_province_name(home)}, the province of "
                                  f"post office {office.code}: {what}.")


def _province_name(code: str | None) -> str:
    """A 2025 province's name ("Tỉnh Quảng Ngãi"), for the messages; its code if unknown."""
    province = unit_index().find(UnitLevel.PROVINCE, code or "", REFORM_DATE)
    return province.name if province else code or "?"


def _unit_names(unit_ids: Iterable[int]) -> str:
    index = unit_index()
    return ", ".join(u.name if (u := index.by_id.get(i)) else str(i) for i in unit_ids)


def office_area(office_id: int) -> sa.ColumnElement[bool]:
    """Orders without a route that a post office's supervisors may dispatch: those of its province
    (an order no route matches needs someone in the province to decide), and of any commune one of
    its routes covers."""
    office = db.session.get(PostOffice, office_id)
    conds: list[sa.ColumnElement[bool]] = []
    index = unit_index()
    unit = index.by_id.get(office.unit_id) if office else None
    while unit is not None and unit.parent_id is not None:
        unit = index.by_id.get(unit.parent_id)
    if unit is not None:
        conds.append(DeliveryOrder.province_id == unit.id)
    office_routes = sa.select(PostalRoute.id).where(PostalRoute.post_office_id == office_id)
    conds.append(DeliveryOrder.commune_id.in_(
        sa.select(route_communes.c.unit_id).where(route_communes.c.route_id.in_(office_routes))))
    return sa.or_(*conds)


def scope_orders(stmt: sa.Select, actor: Actor) -> sa.Select:
    """Orders a dispatcher may place: admins all; supervisors their office's routes and area."""
    if actor.role is Role.ADMIN:
        return stmt
    if actor.role is Role.SUPERVISOR and actor.post_office_id is not None:
        office_routes = sa.select(PostalRoute.id).where(PostalRoute.post_office_id == actor.post_office_id)
        unrouted = sa.and_(DeliveryOrder.route_id.is_(None), office_area(actor.post_office_id))
        return stmt.where(sa.or_(DeliveryOrder.route_id.in_(office_routes), unrouted))
    return stmt.where(sa.false())


def _require_dispatcher(actor: Actor) -> None:
    if actor.role not in (Role.ADMIN, Role.SUPERVISOR):
        raise Forbidden("Only a post office's supervisor or an administrator can dispatch orders.")


def get_route(actor: Actor, code: str, *, for_run: bool = True) -> PostalRoute:
    """A route by code; for runs and changes, only within the actor's scope (NotFound otherwise)."""
    stmt = sa.select(PostalRoute).where(PostalRoute.code == code.strip().upper())
    if for_run:
        stmt = route_scope(stmt, actor)
    elif actor.role is Role.DISTRICT_OFFICER:
        stmt = stmt.where(PostalRoute.id.in_(_officer_routes(actor)))
    route = db.session.scalar(stmt)
    if route is None:
        raise NotFound(f"No route {code}")
    return route


def list_routes(actor: Actor, *, mine: bool = False) -> list[PostalRoute]:
    """Routes with their coverage; ``mine``: only those whose runs the actor works on. Scoped for
    couriers, supervisors and province admins (route_scope) and district officers (their area's);
    counters' software reads every route's coverage (no personal data)."""
    stmt = sa.select(PostalRoute).order_by(PostalRoute.code)
    if mine or actor.role in (Role.COURIER, Role.SUPERVISOR) or admin_area(actor) is not None:
        stmt = route_scope(stmt, actor)
    elif actor.role is Role.DISTRICT_OFFICER:
        stmt = stmt.where(PostalRoute.id.in_(_officer_routes(actor)))
    return list(db.session.scalars(stmt))


def _officer_routes(actor: Actor) -> sa.Select[tuple[int]]:
    """Ids of the routes a district officer's area reaches (a province admin outside the
    administration pages is one: Actor.of_user), by the reports' rule (reports.figures_api.in_scope):
    a commune the route serves, whole or in part, or its post office's unit, lies in the area as the
    figures place units (report_units, across the 2025 reform). No area: none."""
    from delivery_service.reports.figures import Cols, scope_conditions
    from delivery_service.reports.models import ReportUnit
    from delivery_service.reports.units import ensure_unit_map

    if actor.area_unit_id is None:
        return sa.select(PostalRoute.id).where(sa.false())
    ensure_unit_map()
    u = sa.orm.aliased(ReportUnit, name="u")
    conditions = scope_conditions(actor, Cols(commune=u.unit_id, route=sa.null(), counter=sa.null(),
                                              courier=sa.null(), unit=u, office=sa.null()))
    served = sa.union_all(
        sa.select(route_communes.c.route_id.label("route_id"), route_communes.c.unit_id.label("unit_id")),
        sa.select(RouteRule.route_id, RouteRule.commune_id),
        sa.select(PostalRoute.id, PostOffice.unit_id)
        .join(PostOffice, PostOffice.id == PostalRoute.post_office_id),
    ).subquery()
    # a unit is placed in the area as a commune there, or as the district or province of one
    return sa.select(served.c.route_id).where(sa.or_(*(
        served.c.unit_id.in_(sa.select(column).where(*conditions))
        for column in (u.unit_id, u.district_id, u.province_id))))


def backup_choices(actor: Actor, route: PostalRoute) -> list[PostalRoute]:
    """The routes ``set_coverage`` accepts as ``route``'s backup from ``actor``: another route of its
    post office; for an administrator another route of a post office in the same province."""
    home = office_province(route.post_office)
    provinces = office_provinces()
    return [r for r in list_routes(actor) if r.id != route.id and provinces.get(r.post_office_id) == home
            and (actor.role is Role.ADMIN or r.post_office_id == route.post_office_id)]


def coverage(route_ids: Sequence[int]) -> dict[int, dict[str, list]]:
    """Each route's whole communes and hamlet/street rules, for display."""
    out: dict[int, dict[str, list]] = {i: {"communes": [], "rules": []} for i in route_ids}
    index = unit_index()
    for route_id, unit_id in db.session.execute(
            sa.select(route_communes.c.route_id, route_communes.c.unit_id)
            .where(route_communes.c.route_id.in_(route_ids))):
        unit = index.by_id.get(unit_id)
        if unit is not None:
            out[route_id]["communes"].append(unit)
    for rule in db.session.scalars(sa.select(RouteRule).where(RouteRule.route_id.in_(route_ids))
                                   .order_by(RouteRule.id)):
        out[rule.route_id]["rules"].append(rule)
    for value in out.values():
        value["communes"].sort(key=lambda u: sort_key(u.name))
    return out


# --- moves and coverage edits by supervisors ------------------------------------------------------

def move_order(actor: Actor, item_id: str, route_code: str, *, day: dt.date | None = None,
               note: str | None = None) -> OrderEvent:
    """Put an order on another route (or on one for the first time); an event records it. Commits.

    A supervisor may override capacity: moving by hand is how a full day is handled. The route must be
    active and of the order's province (its post office's, as of 2025, as coverage is compared).
    """
    _require_dispatcher(actor)
    from delivery_service.orders.services import local_today
    from labels import s10

    order = db.session.scalar(scope_orders(sa.select(DeliveryOrder), actor)
                              .where(DeliveryOrder.item_id == s10.normalize(item_id))
                              .execution_options(populate_existing=True))
    if order is None:
        raise NotFound(f"No order {item_id}")
    target = get_route(actor, route_code)
    if not target.active:
        raise InvalidInput({"route": [f"Route {target.code} is not active."]})
    serves, lies_in = office_province(target.post_office), province_code_2025(order.commune_id)
    if serves is None or serves != lies_in:  # its courier would be sent to another province
        raise InvalidInput({"route": [coded("unit_mismatch", (
            f"Route {target.code} serves {_province_name(serves)}; "
            f"the order's address is in {_province_name(lies_in)}."))]})
    if order.status not in MOVABLE:
        raise Conflict(f"The order is {order.status.value}: it is with a courier or closed, so it cannot "
                       "change route now.", current_status=order.status.value)
    run_day = day or plan_day(order.run_date or order.appointment_date, local_today())
    if order.route_id == target.id and order.run_date == run_day:
        raise Conflict(f"The order is already on route {target.code} for {run_day.isoformat()}.")
    release(order.route_id, order.run_date)
    reserve(target.id, run_day, force=True)  # a supervisor's move may go beyond capacity
    new_status = Status.ASSIGNED if order.status is Status.CREATED else order.status
    now = utcnow()
    old = order.route_id
    moved = db.session.execute(
        sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id, DeliveryOrder.status == order.status,
                                       _same(DeliveryOrder.route_id, old))
        .values(route_id=target.id, run_date=run_day, dispatch=None, status=new_status, updated_at=now)
        .execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        db.session.rollback()
        raise Conflict("The order changed meanwhile; reload it and try again.")
    from delivery_service.orgs.services import route_code as code_of

    text = f"{code_of(old) or '-'} → {target.code}" + (f": {note}" if note else "")
    event = OrderEvent(**_event(order.id, order.status, new_status, actor, "moved", target.id, now,
                                note=text[:500]))
    db.session.add(event)
    db.session.commit()
    return event


def _same(column: Any, value: int | None) -> sa.ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def place_new_order(order: DeliveryOrder, today: dt.date) -> Placement:
    """Assign a new order (not yet written) in the current transaction: sets route, day, status."""
    day = plan_day(order.appointment_date, today)
    got = place(order.commune_id, order.address_detail, day)
    order.route_id = got.route_id
    order.run_date = day if got.route_id else None
    order.dispatch = None if got.route_id else got.outcome.value
    if got.route_id:
        order.status = Status.ASSIGNED
    return got


def readdress(order: DeliveryOrder, actor: Actor) -> Placement | None:
    """After an order's address changed (current transaction): place it again if it may move
    (``MOVABLE``: not yet with a courier). A new or assigned order becomes assigned or waits for
    dispatch; one after a failed attempt or with a pickup scheduled keeps its status and goes to the
    route covering the new address (a wrong address is a common reason the attempt failed), or off its
    route to wait for dispatch."""
    if order.status not in MOVABLE:
        return None
    from delivery_service.orders.services import local_today

    release(order.route_id, order.run_date)
    day = plan_day(order.run_date or order.appointment_date, local_today())
    got = place(order.commune_id, order.address_detail, day)
    old_status, old_route = order.status, order.route_id
    order.route_id, order.run_date = got.route_id, (day if got.route_id else None)
    order.dispatch = None if got.route_id else got.outcome.value
    if old_status in (Status.CREATED, Status.ASSIGNED):
        order.status = Status.ASSIGNED if got.route_id else Status.CREATED
    if order.status is not old_status or got.route_id is not None or old_route is not None:
        reason = "unassigned" if old_route is not None and got.route_id is None else got.outcome.value
        db.session.add(OrderEvent(**_event(order.id, old_status, order.status, actor, reason, got.route_id,
                                           utcnow())))
    return got


def _clean_phrase(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def set_coverage(actor: Actor, code: str, *, communes: Sequence[int] | None = None,
                 rules: Sequence[dict[str, Any]] | None = None, capacity: int | None | type = ...,
                 backup: str | None | type = ..., return_to_office: bool | None = None,
                 ip: str | None = None) -> PostalRoute:
    """Replace a route's coverage and settings (what is passed); commits; the audit event carries
    ``ip``, the address the change came from. Refuses a route left
    covering nothing, a backup outside the office (an administrator's: outside its province) or
    itself, unknown communes, a rule that repeats another (at the repeat's name, saying which:
    ``repeated_rule``); from anyone, a commune (whole or of a rule) or a backup route of another
    province than the route's post office (compared as of 2025: a unit of before the reform counts
    for the province its own became); from a province admin, another province's route (not found)."""
    _require_dispatcher(actor)
    route = get_route(actor, code)  # a province admin's: of their province (route_scope)
    office = route.post_office
    home = office_province(office)

    def outside(unit_id: int) -> bool:  # an office whose province is unknown has none inside it
        return home is None or province_code_2025(unit_id) != home

    errors: dict[str, list[str]] = {}
    index = unit_index()
    today = _today()
    if communes is not None:
        bad = [c for c in communes if (u := index.by_id.get(c)) is None or u.level is not UnitLevel.COMMUNE
               or not u.valid_on(today)]
        if bad:
            errors["communes"] = [f"Not a commune in force today: {', '.join(map(str, bad))}."]
        elif away := sorted({c for c in communes if outside(c)}):
            errors["communes"] = [_outside(actor, office, home, _unit_names(away[:10]))]
    parsed: list[tuple[int, PartKind, str]] = []
    first: dict[tuple[int, PartKind, str], int] = {}  # a rule's sameness key -> its first index
    for i, rule in enumerate(rules or []):
        unit = index.by_id.get(rule.get("commune_id"))
        phrase = _clean_phrase(str(rule.get("phrase") or ""))
        if unit is None or unit.level is not UnitLevel.COMMUNE:
            errors.setdefault(f"rules.{i}.commune_id", []).append("Unknown commune.")
        elif outside(unit.id):
            errors.setdefault(f"rules.{i}.commune_id", []).append(_outside(actor, office, home, unit.name))
        if rule.get("kind") not in {k.value for k in PartKind}:
            errors.setdefault(f"rules.{i}.kind", []).append("Must be hamlet or street.")
        if not fold(phrase) or len(phrase) > 120:
            errors.setdefault(f"rules.{i}.phrase", []).append(
                "Give the hamlet or street name (1-120 characters).")
        if unit is not None and rule.get("kind") in {k.value for k in PartKind} and fold(phrase):
            parsed.append((unit.id, PartKind(rule["kind"]), phrase))
            key = (unit.id, PartKind(rule["kind"]), fold(phrase))
            if key in first:
                errors.setdefault(f"rules.{i}.phrase", []).append(repeated_rule(first[key]))
            else:
                first[key] = i
    if capacity is not ... and capacity is not None and (
            not isinstance(capacity, int) or not 0 <= capacity <= MAX_CAPACITY_PER_DAY):
        errors["capacity_per_day"] = [
            f"Must be a whole number of orders, 0 to {MAX_CAPACITY_PER_DAY}, or empty for no limit."]
    backup_route: PostalRoute | None = None
    if backup is not ... and backup:
        backup_route = db.session.scalar(
            sa.select(PostalRoute).where(PostalRoute.code == str(backup).strip().upper()))
        if backup_route is None or backup_route.id == route.id:
            errors["backup"] = ["The backup must be another existing route."]
        elif backup_route.post_office_id != route.post_office_id and actor.role is not Role.ADMIN:
            errors["backup"] = ["The backup must be a route of the same post office."]
        elif outside(backup_route.post_office.unit_id):
            errors["backup"] = [_outside(actor, office, home, backup_route.code)]
    final_communes = communes if communes is not None else [u.id for u in route.communes]
    final_rules = parsed if rules is not None else list(db.session.execute(
        sa.select(RouteRule.commune_id, RouteRule.kind, RouteRule.phrase)
        .where(RouteRule.route_id == route.id)))
    if not final_communes and not final_rules and "communes" not in errors:
        errors["communes"] = ["A route must cover at least one commune, in whole or in part."]
    if errors:
        db.session.rollback()
        raise InvalidInput(errors)
    before = _coverage_state(route)
    if communes is not None:
        db.session.execute(sa.delete(route_communes).where(route_communes.c.route_id == route.id))
        if communes:
            db.session.execute(sa.insert(route_communes), [{"route_id": route.id, "unit_id": c}
                                                           for c in dict.fromkeys(communes)])
    if rules is not None:
        db.session.execute(sa.delete(RouteRule).where(RouteRule.route_id == route.id))
        for commune_id, kind, phrase in parsed:
            db.session.add(RouteRule(route_id=route.id, commune_id=commune_id, kind=kind, phrase=phrase,
                                     phrase_key=fold(phrase)))
    if capacity is not ... and capacity != route.capacity_per_day:
        route.capacity_per_day = capacity  # type: ignore[assignment]
        db.session.flush()
        recount(route.id, today)
    if backup is not ...:
        route.backup_route_id = backup_route.id if backup_route else None
    if return_to_office is not None:
        route.return_to_office = return_to_office
    db.session.flush()
    db.session.expire(route)
    after = _coverage_state(route)
    changed = [k for k in after if after[k] != before[k]]
    if changed:
        record("route.coverage", actor=actor, object_type="route", object_id=route.id,
               before={k: before[k] for k in changed}, after={k: after[k] for k in changed}, ip=ip)
    db.session.commit()
    invalidate_routes()
    return route


def repeated_rule(first: int) -> Message:
    """The refusal of a rule (at its ``rules.<i>.phrase``) that repeats rule ``first`` (0-based): the
    same commune, kind and name once folded. The text counts rules from 1, as people do; ``same_as``
    (in the API's ``details`` entry) is the first rule's path, as the fields' paths are written."""
    message = coded("repeated_rule", f"The same hamlet or street as rule {first + 1}.")
    message.extra = {"same_as": f"rules.{first}"}  # type: ignore[attr-defined]
    return message


def _coverage_state(route: PostalRoute) -> dict[str, Any]:
    """What the coverage editor changes, as the audit log keeps it (codes, not ids)."""
    from delivery_service.orgs.services import route_code as code_of

    index = unit_index()
    communes = db.session.scalars(sa.select(route_communes.c.unit_id)
                                  .where(route_communes.c.route_id == route.id))
    rules = db.session.execute(sa.select(RouteRule.commune_id, RouteRule.kind, RouteRule.phrase)
                               .where(RouteRule.route_id == route.id))
    return {
        "communes": sorted(u.code if (u := index.by_id.get(i)) else str(i) for i in communes),
        "rules": sorted(f"{u.code if (u := index.by_id.get(c)) else c} | {PartKind(k).value} | {p}"
                        for c, k, p in rules),
        "capacity_per_day": route.capacity_per_day,
        "backup": code_of(route.backup_route_id) if route.backup_route_id else None,
        "return_to_office": route.return_to_office,
    }


def _today() -> dt.date:
    from delivery_service.orders.services import local_today

    return local_today()


def dispatch_queue(actor: Actor, limit: int = 500) -> list[DeliveryOrder]:
    """Orders waiting for a person to choose their route, oldest first."""
    _require_dispatcher(actor)
    stmt = scope_orders(sa.select(DeliveryOrder), actor).where(
        DeliveryOrder.dispatch.is_not(None), DeliveryOrder.route_id.is_(None),
        DeliveryOrder.status.not_in([Status.CANCELLED]))
    return list(db.session.scalars(stmt.order_by(DeliveryOrder.id).limit(limit)))


# --- runs ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunView:
    """A route's run for a day as people see it: stops in order, each with its orders."""

    route: PostalRoute
    day: dt.date
    run: RouteRun | None
    stops: list[dict[str, Any]]  # {"number", "orders": [DeliveryOrder], "leg_m", "cumulative_m", ...}
    unsequenced: list[DeliveryOrder]  # due on this day but added after the last sequencing
    # The done orders by their status, non-zero counts only, in the order of ``Status``: delivered,
    # failed attempt, returned, cancelled, dossier picked up, dossier delivered to the agency.
    outcomes: tuple[tuple[Status, int], ...]
    total: int
    distances: str | None = None  # the stored run's: "road" or "straight_line" (run_distances)
    finished_ids: frozenset[int] = frozenset()  # of ``unsequenced``: the orders already done that day
    courier: User | None = None  # who works the run (``run_courier_id``)
    # A day gone by: how each order done that day ended it (``day_outcomes``); None for today and after.
    ended: dict[int, Status] | None = None

    @property
    def courier_id(self) -> int | None:
        return self.courier.id if self.courier else None

    def status_that_day(self, order: DeliveryOrder) -> Status:
        """The order's status as the day shown ended (a day gone by), else as it stands."""
        return _status_that_day(order, self.ended)

    @property
    def done(self) -> int:
        """The orders done: the sum of ``outcomes``, so that the breakdown always adds up."""
        return sum(n for _, n in self.outcomes)

    @property
    def to_place(self) -> list[DeliveryOrder]:
        """The unsequenced orders still to deliver: re-sequencing places them among the stops."""
        return [o for o in self.unsequenced if o.id not in self.finished_ids]

    @property
    def finished_unplaced(self) -> list[DeliveryOrder]:
        """The unsequenced orders already done that day (re-sequencing leaves them out)."""
        return [o for o in self.unsequenced if o.id in self.finished_ids]

    @property
    def on_roads(self) -> bool:
        return self.distances == "road"


def _status_that_day(order: DeliveryOrder, ended: dict[int, Status] | None) -> Status:
    return ended.get(order.id, order.status) if ended is not None else order.status


def run_orders(route: PostalRoute, day: dt.date) -> list[DeliveryOrder]:
    """The orders a route's courier visits on ``day``: open orders planned for it or earlier."""
    return list(db.session.scalars(
        sa.select(DeliveryOrder).where(DeliveryOrder.route_id == route.id, DeliveryOrder.run_date <= day,
                                       DeliveryOrder.status.in_(OPEN - {Status.CREATED}))
        .order_by(DeliveryOrder.id)))


# What a courier's visit ends in: the order is done for the day once it reached one of these on it.
COURIER_OUTCOMES = frozenset({Status.DELIVERED, Status.FAILED_ATTEMPT, Status.PICKED_UP})
DONE_FOR_THE_DAY = COURIER_OUTCOMES | {Status.DELIVERED_TO_AGENCY, Status.RETURNED_TO_AGENCY,
                                      Status.CANCELLED}


def run_courier_id(route: PostalRoute, run: RouteRun | None, day: dt.date) -> int | None:
    """Who works the route's run of ``day``: the courier kept on the run for a day gone by (the one
    who worked it, whoever has the route since), else the route's courier."""
    if run is not None and day < _today():
        return run.courier_id
    return route.courier_id


def finished_orders(route: PostalRoute, day: dt.date, courier_id: int | None) -> list[DeliveryOrder]:
    """The route's orders finished on ``day`` (local) by its courier that day (``run_courier_id``): a
    delivery, a dossier pickup or a failed attempt recorded that day (the device's time, else the
    server's), not undone since (the order is still on the route, in a status that ends the day's
    visit). They stay on the day's run, as done."""
    from delivery_service.courier.models import EventCorrection
    from delivery_service.courier.services import standing

    if courier_id is None:
        return []
    start, end = day_start(day), day_start(day + dt.timedelta(days=1))
    moment = sa.func.coalesce(OrderEvent.device_time, OrderEvent.server_time)
    # The event that set the order's present status, recorded that day by this route's courier
    # (not an order moved here from another route after another courier's attempt), neither a
    # correction nor corrected since (a delivery undone by its correction is still to deliver).
    that_day = (sa.select(OrderEvent.id)
                .where(OrderEvent.order_id == DeliveryOrder.id, OrderEvent.status_to.in_(COURIER_OUTCOMES),
                       OrderEvent.status_to == DeliveryOrder.status,
                       OrderEvent.actor_user_id == courier_id,
                       standing(EventCorrection.order_id == DeliveryOrder.id),
                       moment >= start, moment < end).exists())
    return list(db.session.scalars(
        sa.select(DeliveryOrder).where(
            DeliveryOrder.route_id == route.id, DeliveryOrder.status.in_(DONE_FOR_THE_DAY),
            DeliveryOrder.updated_at >= start - dt.timedelta(days=1),  # changed since (the device's clock
            that_day)                                                  # may run ahead of the server's)
        .order_by(DeliveryOrder.id)))


def day_outcomes(route: PostalRoute, day: dt.date,
                 courier_id: int | None) -> dict[int, tuple[DeliveryOrder, Status]]:
    """How each of the route's orders ended a day gone by (local): the status set by its last event of
    that day that ends a visit, neither a correction nor corrected since: a delivery, a dossier pickup
    or a failed attempt recorded by the run's courier (``run_courier_id``), or a return, a cancellation
    or a dossier handed to the agency, by anyone. What happened to the order after that day does not
    change it (a failed attempt delivered the next day stays a failed attempt on its day's run)."""
    from delivery_service.courier.models import EventCorrection
    from delivery_service.courier.services import standing

    start, end = day_start(day), day_start(day + dt.timedelta(days=1))
    moment = sa.func.coalesce(OrderEvent.device_time, OrderEvent.server_time)
    by_whom = OrderEvent.status_to.not_in(COURIER_OUTCOMES)
    if courier_id is not None:
        by_whom = sa.or_(by_whom, OrderEvent.actor_user_id == courier_id)
    rows = db.session.execute(
        sa.select(DeliveryOrder, OrderEvent.status_to)
        .join(DeliveryOrder, DeliveryOrder.id == OrderEvent.order_id)
        .where(DeliveryOrder.route_id == route.id,
               DeliveryOrder.updated_at >= start - dt.timedelta(days=1),  # changed since (the device's clock
               OrderEvent.status_to.in_(DONE_FOR_THE_DAY), by_whom,      # may run ahead of the server's)
               moment >= start, moment < end, standing(EventCorrection.order_id == OrderEvent.order_id))
        .order_by(OrderEvent.id))
    return {order.id: (order, status) for order, status in rows}  # the day's last one, with its order


def office_point(office: PostOffice) -> tuple[float, float]:
    """Where a post office's runs start: its own position, else the centroid of its unit or above."""
    if office.latitude is not None and office.longitude is not None:
        return office.latitude, office.longitude
    unit_id: int | None = office.unit_id
    while unit_id is not None:
        unit = db.session.get(AdminUnit, unit_id)
        if unit is None:
            break
        if unit.latitude is not None and unit.longitude is not None:
            return unit.latitude, unit.longitude
        unit_id = unit.parent_id
    raise Conflict(f"Post office {office.code} has no position: set its latitude and longitude.")


def sequence_run(actor: Actor, code: str, day: dt.date) -> RouteRun:
    """(Re)compute the order of a route's stops for ``day`` and store it; commits.

    On the run's own day, once the courier has synced a position (an event with a GPS fix), the run
    starts from their last known position instead of the post office: what is left is sequenced from
    where they are (and back to the office when the route returns there), and its ETAs count from then.
    """
    from delivery_service.geo.services import address_key, locations_for

    route = get_route(actor, code)
    if actor.role is Role.COURIER and route.courier_id != actor.user_id:
        raise Forbidden("You can only re-sequence your own route.")
    orders = run_orders(route, day)
    office = route.post_office
    depot = office_point(office)
    locations = locations_for([o.id for o in orders])
    index = unit_index()
    inputs = []
    for o in orders:
        loc = locations.get(o.id)
        commune = index.by_id.get(o.commune_id)
        key = address_key(commune.code if commune else str(o.commune_id), o.address_detail)
        window = (o.window_from_min * 60, o.window_to_min * 60) if o.window_from_min is not None else None
        # orders at one address with different appointment windows are different stops
        inputs.append(routes.StopInput(o.id, (key, window), (loc.latitude, loc.longitude) if loc else None,
                                       estimated=bool(loc is None or loc.is_centroid), window=window,
                                       address=key.partition("|")[2]))
    limit = current_app.config.get("ROUTE_SEQUENCE_TIME_LIMIT_S")
    position = courier_position(route, day) if day == _today() else None
    start = position[0] if position else None
    plan, source = _plan_run(depot, inputs, route.return_to_office, limit, start=start,
                             started=position[1] if position else None)
    now = utcnow()
    run = _stored_run(route.id, day)
    origin = start or depot
    values = {"sequenced_at": now, "sequenced_by_id": actor.user_id,
              "return_to_office": route.return_to_office,
              "start_latitude": origin[0], "start_longitude": origin[1], "stops": len(plan.stops),
              "orders": plan.orders, "total_m": plan.total_m, "return_m": plan.return_m,
              "distances": source, "start_at": position[1] if position else None}
    if run is None or day >= _today():  # a day gone by keeps the courier who worked it
        values["courier_id"] = route.courier_id
    if run is None:
        run = RouteRun(route_id=route.id, run_date=day, version=1, **values)
        db.session.add(run)
        db.session.flush()
    else:
        for key, value in values.items():
            setattr(run, key, value)
        run.version += 1
        db.session.execute(sa.delete(RunStop).where(RunStop.run_id == run.id))
    rows = [{"run_id": run.id, "order_id": key, "stop_no": stop.number, "latitude": stop.point[0],
             "longitude": stop.point[1], "estimated": stop.estimated, "located": stop.located,
             "leg_m": stop.leg_m, "cumulative_m": stop.cumulative_m}
            for stop in plan.stops for key in stop.keys]
    if rows:
        db.session.execute(sa.insert(RunStop), rows)
    db.session.commit()
    return run


def courier_position(route: PostalRoute, day: dt.date) -> tuple[tuple[float, float], dt.datetime] | None:
    """Where the route's courier was last seen on ``day`` (local): the GPS fix of the latest event of
    the route's orders that carries one, and when (the device's time, else the server's)."""
    moment = sa.func.coalesce(OrderEvent.device_time, OrderEvent.server_time)
    row = db.session.execute(
        sa.select(OrderEvent.latitude, OrderEvent.longitude, OrderEvent.device_time, OrderEvent.server_time)
        .join(DeliveryOrder, DeliveryOrder.id == OrderEvent.order_id)
        .where(DeliveryOrder.route_id == route.id, OrderEvent.latitude.is_not(None),
               OrderEvent.longitude.is_not(None),
               OrderEvent.server_time >= day_start(day) - dt.timedelta(days=1),  # (its index) the device's
               moment >= day_start(day), moment < day_start(day + dt.timedelta(days=1)))  # clock may lag
        .order_by(moment.desc(), OrderEvent.id.desc()).limit(1)).first()
    if row is None:
        return None
    return (row.latitude, row.longitude), row.device_time or row.server_time


def _plan_run(depot: tuple[float, float], inputs: Sequence[routes.StopInput], closed: bool,
              limit: float | None, *, start: tuple[float, float] | None = None,
              started: dt.datetime | None = None) -> tuple[routes.RunPlan, str]:
    """``routes.plan_run`` on road distances where the road graph covers the run (legs along the roads,
    one-way streets making them differ each way), else on straight lines (geodesic legs); and which.
    Appointment windows are kept on the day plan's clock (shift, pace, service time), from ``started``
    (local) when the courier is already out."""
    from delivery_service import roads
    from delivery_service.localtime import service_timezone
    from delivery_service.routing import plan as day_plan

    used = [roads.STRAIGHT_LINE]

    def measure(points: list[tuple[float, float]]) -> Any:
        found = roads.matrix(points)
        if found.source != roads.ROAD:
            return None
        used[0] = roads.ROAD
        return found.distances

    def timing() -> routes.Timing:
        shift = day_plan.shift()
        if started is not None:
            local = started.astimezone(service_timezone())
            shift = (max(shift[0], local.hour * 3600 + local.minute * 60 + local.second), shift[1])
        detour = 1.0 if used[0] == roads.ROAD else float(current_app.config["ROADS_DETOUR_FACTOR"])
        return routes.Timing(shift[0], shift[1], int(day_plan.setting("PLAN_SERVICE_S")),
                             detour / (float(day_plan.setting("PLAN_SPEED_KMH")) / 3.6))

    plan = routes.plan_run(depot, inputs, return_to_start=closed, time_limit_s=limit, start=start,
                           measure=measure, timing=timing)
    return plan, used[0]


def run_distances(run: RouteRun | None, points: Sequence[tuple[float, float]]) -> str | None:
    """Where a stored run's distances come from: as it was sequenced ("road" or "straight_line"); for a
    run from before that was recorded, "road" when the road graph covers its start and stops; None
    without a run."""
    from delivery_service import roads

    if run is None:
        return None
    if run.distances is not None:
        return run.distances
    covered = roads.covers([(run.start_latitude, run.start_longitude), *points])
    return roads.ROAD if covered else roads.STRAIGHT_LINE


def sequenced_stops(orders: Sequence[DeliveryOrder]) -> dict[int, tuple[dt.date, int]]:
    """Each order's place on its route's latest sequenced run, {order id: (run day, stop number)},
    in one query whatever the number of orders (a label batch asks for hundreds)."""
    routed = {o.id: o.route_id for o in orders if o.route_id is not None}
    if not routed:
        return {}
    rows = db.session.execute(
        sa.select(RunStop.order_id, RouteRun.route_id, RouteRun.run_date, RunStop.stop_no)
        .join(RouteRun, RouteRun.id == RunStop.run_id).where(RunStop.order_id.in_(list(routed)))
        .order_by(RouteRun.run_date))
    # Later days come last and win; a run of a route the order has left does not count.
    return {order_id: (day, stop) for order_id, route_id, day, stop in rows if routed[order_id] == route_id}


def _stored_run(route_id: int, day: dt.date) -> RouteRun | None:
    stmt = sa.select(RouteRun).where(RouteRun.route_id == route_id, RouteRun.run_date == day)
    return db.session.scalar(stmt)


def get_run(actor: Actor, code: str, day: dt.date) -> RunView:
    """A route's run for a day: the stored sequence, plus orders due that came after it, plus the
    orders its courier finished that day that the sequence does not hold (they stay, as done)."""
    route = get_route(actor, code)
    run = _stored_run(route.id, day)
    courier_id = run_courier_id(route, run, day)
    due = {o.id: o for o in run_orders(route, day)}
    # A day gone by, as it ended (day_outcomes); today and the days ahead, as things stand now.
    ended: dict[int, Status] | None = None
    if day < _today():
        outcomes_that_day = day_outcomes(route, day, courier_id)
        finished = {key: order for key, (order, _) in outcomes_that_day.items()}
        ended = {key: status for key, (_, status) in outcomes_that_day.items()}
    else:
        finished = {o.id: o for o in finished_orders(route, day, courier_id)}
    for key, order in finished.items():
        due.setdefault(key, order)

    def is_done(order: DeliveryOrder) -> bool:
        if ended is not None:
            return order.id in ended
        return order.status in TERMINAL[order.direction] or order.id in finished

    stops: dict[int, dict[str, Any]] = {}
    sequenced: set[int] = set()
    outcomes: Counter[Status] = Counter()
    if run is not None:
        rows = db.session.execute(
            sa.select(RunStop, DeliveryOrder).join(DeliveryOrder, DeliveryOrder.id == RunStop.order_id)
            .where(RunStop.run_id == run.id).order_by(RunStop.stop_no, RunStop.order_id)).all()
        for stop, order in rows:
            if order.route_id != route.id:
                continue  # moved to another route since
            sequenced.add(order.id)
            entry = stops.setdefault(stop.stop_no, {
                "number": stop.stop_no, "orders": [], "leg_m": stop.leg_m, "cumulative_m": stop.cumulative_m,
                "latitude": stop.latitude, "longitude": stop.longitude, "estimated": stop.estimated,
                "located": stop.located})
            entry["orders"].append(order)
    unsequenced = sorted((o for i, o in due.items() if i not in sequenced), key=lambda o: o.id)
    done_orders = [o for s in stops.values() for o in s["orders"]] + unsequenced
    outcomes.update(_status_that_day(o, ended) for o in done_orders if is_done(o))
    total = sum(len(s["orders"]) for s in stops.values()) + len(unsequenced)
    ordered = [stops[k] for k in sorted(stops)]
    source = run_distances(run, [(s["latitude"], s["longitude"]) for s in ordered])
    return RunView(route, day, run, ordered, unsequenced,
                   tuple((status, outcomes[status]) for status in Status if outcomes[status]), total, source,
                   frozenset(o.id for o in unsequenced if is_done(o)),
                   db.session.get(User, courier_id) if courier_id else None, ended)
