"""A post office's day planned as one vehicle routing problem (routes.vrp), next to the commune rule.

The day's orders of the office's active routes are grouped into stops (one normalised address, one
stop, as on a run), each route is a courier with its bag limit (the route's ``capacity_per_day``), a
shift from the settings, starting and ending at the office; orders a courier already carries, and
orders the supervisor locks, stay on their route; a route's communes (whole, or in part through a
hamlet/street rule) are its territory, which a stop leaves only when that saves more than
``PLAN_TERRITORY_COST_M`` metres. Distances and times come from ``delivery_service.roads.matrix``: the
road graph where it covers every stop, else straight lines (haversine) times ``ROADS_DETOUR_FACTOR``
at ``PLAN_SPEED_KMH``; the page says which. How it works and how to read the numbers: docs/dispatch.md.

Accepting a plan moves orders with :func:`delivery_service.routing.services.move_order` (an event per
order) and re-sequences the runs of the routes that changed with ``services.sequence_run``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa
from flask import current_app

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import Actor
from delivery_service.errors import Conflict, Forbidden, InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.fields import whole_number
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orgs.models import PostalRoute, PostOffice, route_communes
from delivery_service.roads import ROAD, matrix
from delivery_service.routing import services
from delivery_service.routing.models import RouteRule
from delivery_service.units.services import unit_index
from routes.sequence import sequence_stops
from routes.vrp import Problem, Vehicle, VrpClient, VrpPlan, solve

# Settings (app config) and their defaults: a rural district's motorbike courier.
DEFAULTS: dict[str, Any] = {
    "PLAN_SPEED_KMH": 25.0,  # on straight lines × ROADS_DETOUR_FACTOR (the road graph has its own times)
    "PLAN_SERVICE_S": 180,  # at each stop (hand over, sign, collect)
    "PLAN_SHIFT_START": "07:30",
    "PLAN_SHIFT_END": "16:30",
    "PLAN_MAX_OVERTIME_MIN": 120,
    "PLAN_OVERTIME_COST_M_PER_MIN": 1000,  # one minute of overtime weighs as much as one more km
    "PLAN_TERRITORY_COST_M": 2000,
    "PLAN_SECONDS": 5.0,  # search budget
}


def setting(name: str) -> Any:
    return current_app.config.get(name, DEFAULTS[name])


def _clock(text: str) -> int:
    hours, _, minutes = str(text).partition(":")
    return int(hours) * 3600 + int(minutes or 0) * 60


def shift() -> tuple[int, int]:
    """The couriers' shift (PLAN_SHIFT_START, PLAN_SHIFT_END) in seconds after local midnight."""
    return _clock(setting("PLAN_SHIFT_START")), _clock(setting("PLAN_SHIFT_END"))


@dataclass
class LateStop:
    """A stop whose delivery window the run cannot keep: its orders, the window and the arrival."""

    orders: list[DeliveryOrder]
    window: tuple[int, int]  # seconds after local midnight
    arrival_s: int  # when the courier gets there on this run

    @property
    def window_text(self) -> str:
        return f"{_hhmm(self.window[0])}–{_hhmm(self.window[1])}"

    @property
    def arrival_text(self) -> str:
        return _hhmm(self.arrival_s)

    @property
    def late_min(self) -> int:
        return -(-(self.arrival_s - self.window[1]) // 60)


def _hhmm(seconds: int) -> str:
    minutes = seconds // 60
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass
class CourierDay:
    """One courier's day under one assignment: what the supervisor compares."""

    route: PostalRoute
    courier: User | None
    orders: int = 0
    stops: int = 0
    distance_m: float = 0.0
    hours: float = 0.0
    late: int = 0
    overtime_min: float = 0.0
    capacity: int | None = None
    late_stops: list[LateStop] = field(default_factory=list)
    arrivals: dict[int, int] = field(default_factory=dict)  # order id -> start of service (s after midnight)

    @property
    def over_capacity(self) -> bool:
        return self.capacity is not None and self.orders > self.capacity


@dataclass
class Move:
    order: DeliveryOrder
    source: PostalRoute | None
    target: PostalRoute


@dataclass
class DayPlan:
    office: PostOffice
    day: dt.date
    current: list[CourierDay]
    proposed: list[CourierDay]
    moves: list[Move]
    assignment: dict[int, int]  # order id -> route id, as proposed
    locked: set[int]  # order ids kept on their route (carried by the courier, or locked)
    outside_territory: int
    seconds: float
    detour: float
    distances: str = "straight_line"  # where distances and times came from: "road" or "straight_line"

    @property
    def on_roads(self) -> bool:
        return self.distances == ROAD

    def totals(self, which: str) -> dict[str, float]:
        rows = self.current if which == "current" else self.proposed
        return {"orders": sum(r.orders for r in rows), "distance_m": sum(r.distance_m for r in rows),
                "hours": sum(r.hours for r in rows), "late": sum(r.late for r in rows),
                "overtime_min": sum(r.overtime_min for r in rows)}

    @property
    def late_stops(self) -> list[tuple[CourierDay, LateStop]]:
        """The proposed plan's stops whose window cannot be kept, by courier: shown, never hidden."""
        return [(r, stop) for r in self.proposed for stop in r.late_stops]

    @property
    def assignment_text(self) -> str:
        return ",".join(f"{o}:{r}" for o, r in sorted(self.assignment.items()))


def office_for(actor: Actor, office_id: int) -> PostOffice:
    """The post office whose day ``actor`` may plan: admins any, a supervisor their own (else 404)."""
    if actor.role not in (Role.ADMIN, Role.SUPERVISOR):
        raise Forbidden("Only a post office's supervisor or an administrator can plan its day.")
    office = db.session.get(PostOffice, office_id)
    if office is None or (actor.role is Role.SUPERVISOR and actor.post_office_id != office_id):
        raise NotFound(f"No post office {office_id}")
    return office


def _office_routes(office: PostOffice) -> list[PostalRoute]:
    return list(db.session.scalars(sa.select(PostalRoute).where(
        PostalRoute.post_office_id == office.id, PostalRoute.active.is_(True)).order_by(PostalRoute.code)))


def _territories(route_ids: Sequence[int]) -> dict[int, set[int]]:
    """commune id -> the routes covering it, whole or in part."""
    out: dict[int, set[int]] = {}
    for route_id, unit_id in db.session.execute(
            sa.select(route_communes.c.route_id, route_communes.c.unit_id)
            .where(route_communes.c.route_id.in_(route_ids))):
        out.setdefault(unit_id, set()).add(route_id)
    for route_id, unit_id in db.session.execute(
            sa.select(RouteRule.route_id, RouteRule.commune_id).where(RouteRule.route_id.in_(route_ids))):
        out.setdefault(unit_id, set()).add(route_id)
    return out


@dataclass
class _Stop:
    orders: list[DeliveryOrder]
    point: tuple[float, float]
    route_id: int  # the route it is on today
    lock: int | None  # the route it must stay on
    window: tuple[int, int] | None = None  # the orders' delivery window, seconds after local midnight


def _window(order: DeliveryOrder) -> tuple[int, int] | None:
    """An order's delivery window in seconds after local midnight (the clock of the shift), or None."""
    if order.window_from_min is None or order.window_to_min is None:
        return None
    return order.window_from_min * 60, order.window_to_min * 60


def _stops(orders: Sequence[DeliveryOrder], depot: tuple[float, float], locked: set[int]) -> list[_Stop]:
    from delivery_service.geo.services import address_key, locations_for

    locations = locations_for([o.id for o in orders])
    index = unit_index()
    groups: dict[tuple[str, int | None, int], _Stop] = {}
    for o in orders:
        assert o.route_id is not None
        commune = index.by_id.get(o.commune_id)
        key = address_key(commune.code if commune else str(o.commune_id), o.address_detail)
        lock = o.route_id if (o.id in locked or o.status not in services.MOVABLE) else None
        window = _window(o)
        # orders at one address move together, except that a lock never drags another order along,
        # and orders with other delivery windows are other stops (at the same place)
        gkey = (key, lock, o.route_id if lock is not None else 0, window)
        loc = locations.get(o.id)
        point = (loc.latitude, loc.longitude) if loc else depot
        stop = groups.setdefault(gkey, _Stop([], point, o.route_id, lock, window))
        stop.orders.append(o)
    return list(groups.values())


def _stats(order: Sequence[int], dist: np.ndarray, dur: np.ndarray, shift: tuple[int, int], service: int,
           windows: Sequence[tuple[int, int] | None] = ()
           ) -> tuple[float, float, list[tuple[int, int]], float, list[int]]:
    """Distance (m), hours, late stops (node, arrival), overtime (min) and each node's service start of a
    closed run visiting ``order`` (indices into the matrices, 0 is the office) from the start of the
    shift. ``windows``: per node (0 the office), the delivery window; the courier waits for a window's
    start and is late after its end."""
    t, prev, d = shift[0], 0, 0.0
    late: list[tuple[int, int]] = []
    arrivals: list[int] = []
    for node in order:
        d += float(dist[prev, node])
        t += int(dur[prev, node])
        window = windows[node] if node < len(windows) else None
        if window is not None:
            if t > window[1]:
                late.append((node, t))
            t = max(t, window[0])
        arrivals.append(t)  # the start of service, after any wait for the window
        t += service
        prev = node
    if order:
        d += float(dist[prev, 0])
        t += int(dur[prev, 0])
    return d, (t - shift[0]) / 3600, late, max(0, t - shift[1]) / 60, arrivals


def build_plan(actor: Actor, office_id: int, day: dt.date, *, locked: Iterable[int] = (),
               seconds: float | None = None) -> DayPlan:
    """The proposed plan of ``office_id``'s day next to today's commune-rule assignment. Reads only."""
    office = office_for(actor, office_id)
    routes = _office_routes(office)
    by_id = {r.id: r for r in routes}
    couriers = {u.id: u for u in db.session.scalars(
        sa.select(User).where(User.id.in_([r.courier_id for r in routes if r.courier_id])))}
    orders = [o for r in routes for o in services.run_orders(r, day)]
    locked_ids = {int(i) for i in locked}
    depot = services.office_point(office)
    stops = _stops(orders, depot, locked_ids)
    detour = float(current_app.config["ROADS_DETOUR_FACTOR"])
    service = int(setting("PLAN_SERVICE_S"))
    shift_s = shift()
    points = [depot] + [s.point for s in stops]
    roads = matrix(points)  # the road graph's, else straight lines × detour at PLAN_SPEED_KMH
    dist = roads.distances
    dur = np.rint(roads.durations)
    windows: list[tuple[int, int] | None] = [None] + [s.window for s in stops]

    def day_of(route: PostalRoute, members: list[int], *, in_order: bool = False) -> CourierDay:
        """``members`` (stop indices) as one run: in that order, or sequenced as sequence_run would."""
        nodes = [0] + [i + 1 for i in members]
        if in_order or len(nodes) == 1:
            visit = nodes[1:]
        else:
            visit = [nodes[k] for k in sequence_stops(dist[np.ix_(nodes, nodes)])[1:]]
        d, hours, late, over, arrived = _stats(visit, dist, dur, shift_s, service, windows)
        count = sum(len(stops[i].orders) for i in members)
        late_stops = [LateStop(stops[node - 1].orders, windows[node] or (0, 0), arrival)
                      for node, arrival in late]
        arrivals = {o.id: when for node, when in zip(visit, arrived, strict=True)
                    for o in stops[node - 1].orders}
        return CourierDay(route, couriers.get(route.courier_id or 0), count, len(members), d, hours,
                          len(late), over, route.capacity_per_day, late_stops, arrivals)

    current = [day_of(r, [i for i, s in enumerate(stops) if s.route_id == r.id]) for r in routes]
    # Only a route with a courier can be given stops (one without runs nobody's day), unless the
    # supervisor kept a stop on it.
    kept_on = {s.lock for s in stops if s.lock is not None}
    runnable = [r for r in routes if r.courier_id is not None or r.id in kept_on]
    if not runnable:
        return DayPlan(office, day, current, [], [], {}, set(), 0, 0.0, detour, roads.source)
    routes = runnable
    territory = _territories([r.id for r in routes])
    vindex = {r.id: k for k, r in enumerate(routes)}
    clients = [VrpClient(key=i, demand=len(s.orders), service_s=service, window=s.window,
                         locked_to=vindex[s.lock] if s.lock is not None else None,
                         territory=frozenset(vindex[r] for r in territory.get(s.orders[0].commune_id, ())
                                             if r in vindex))
               for i, s in enumerate(stops)]
    overtime = int(setting("PLAN_MAX_OVERTIME_MIN")) * 60
    per_s = max(1, round(float(setting("PLAN_OVERTIME_COST_M_PER_MIN")) / 60))
    vehicles = [Vehicle(key=r.id, capacity=r.capacity_per_day, shift=shift_s, max_overtime_s=overtime,
                        overtime_cost=per_s) for r in routes]
    problem = Problem(clients, vehicles, dist, dur, territory_cost=int(setting("PLAN_TERRITORY_COST_M")))
    # a small day is solved long before the budget: 10 ms a stop, at least 0.2 s, at most PLAN_SECONDS
    budget = float(seconds if seconds is not None
                   else min(float(setting("PLAN_SECONDS")), max(0.2, 0.01 * len(stops))))
    plan: VrpPlan = solve(problem, seconds=budget, seed=0)
    proposed, assignment, moves = [], {}, []
    for vr in plan.routes:
        route = routes[vr.vehicle]
        members = [v.client for v in vr.visits]
        proposed.append(day_of(route, members, in_order=True))
        for i in members:
            for o in stops[i].orders:
                assignment[o.id] = route.id
                if o.route_id != route.id:
                    moves.append(Move(o, by_id.get(o.route_id or 0), route))
    locked_now = {o.id for s in stops if s.lock is not None for o in s.orders}
    return DayPlan(office, day, current, proposed, moves, assignment, locked_now, plan.outside_territory,
                   plan.seconds, detour, roads.source)


def parse_assignment(text: str) -> dict[int, int]:
    """``"order:route,order:route"`` as the page sends it back; InvalidInput when it is not that."""
    out: dict[int, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        order, sep, route = part.partition(":")
        order_id, route_id = whole_number(order), whole_number(route)
        if not sep or order_id is None or route_id is None:
            raise InvalidInput({"assignment": ["The plan sent back is not readable; compute it again."]})
        out[order_id] = route_id
    if not out:
        raise InvalidInput({"assignment": ["The plan is empty: nothing to accept."]})
    return out


@dataclass
class Accepted:
    moved: int
    resequenced: list[str]
    skipped: list[str]  # item ids that could not move (changed meanwhile), with nothing else undone


def accept_plan(actor: Actor, office_id: int, day: dt.date, assignment: Mapping[int, int]) -> Accepted:
    """Move each order to the route the plan gave it, then re-sequence the runs of the routes it touched.

    Everything is checked first (every order on one of the office's routes for the day, every route
    the office's): a plan naming anything else is refused whole, nothing changed. Each move then goes
    through ``services.move_order`` (its own event and commit); an order that changed meanwhile is
    reported and skipped.
    """
    office = office_for(actor, office_id)
    routes = {r.id: r for r in _office_routes(office)}
    orders = {o.id: o for r in routes.values() for o in services.run_orders(r, day)}
    errors = []
    if any(route_id not in routes for route_id in assignment.values()):
        errors.append("The plan names a route that is not one of this post office's active routes.")
    if any(order_id not in orders for order_id in assignment):
        errors.append("The plan names an order that is not on this post office's routes for the day; "
                      "compute it again.")
    if errors:
        raise InvalidInput({"assignment": errors})
    touched: set[int] = set()
    moved, skipped = 0, []
    for order_id, route_id in sorted(assignment.items()):
        order = orders[order_id]
        if order.route_id == route_id:
            continue
        source = order.route_id
        try:
            services.move_order(actor, order.item_id, routes[route_id].code, day=day,
                                note="kế hoạch ngày / day plan")
        except (Conflict, NotFound, InvalidInput):
            db.session.rollback()
            skipped.append(order.item_id)
            continue
        moved += 1
        touched.update({route_id, source or route_id})
    codes = sorted(routes[r].code for r in touched if r in routes)
    for code in codes:
        services.sequence_run(actor, code, day)
    return Accepted(moved, codes, skipped)
