"""Placing a batch of new orders on routes at once (imports), with the same outcome as placing them
one by one with ``routing.services.place_new_order`` in the same order.

One by one, each order costs a capacity upsert (routes with a capacity) and, where several routes
share its area, a count of their loads. Here the loads are read once per day and route set, every
order of the batch is placed against them in memory (the loads growing as orders are placed), and
the places taken are reserved at the end with one conditional upsert per route and day. Should one of
them fail (another process took places meanwhile: PostgreSQL only, SQLite's write lock keeps the
batch alone), ``PlacementRaced`` is raised: the caller undoes its savepoint and places the orders one
by one.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from flask import current_app

import routes
from delivery_service.extensions import db
from delivery_service.orders.status import Status
from delivery_service.routing.models import RouteDayLoad
from delivery_service.routing.services import Placement, compiled_routes, day_loads, plan_day, reserve


class PlacementRaced(Exception):
    """A route's capacity changed under the batch: nothing of the batch may be kept."""


class _Loads:
    """The loads of one batch: reserved (route_day_loads, for capacities) and counted (from the
    orders, for choosing among routes sharing an area), each read once, plus what the batch took."""

    def __init__(self, compiled: Any) -> None:
        self.compiled = compiled
        self.full = current_app.extensions.get("routes_full", {})
        self.now = time.monotonic()
        self.reserved: dict[dt.date, dict[int, int]] = {}
        self.counted: dict[dt.date, dict[int, int]] = {}
        self.taken: dict[tuple[int, dt.date], int] = defaultdict(int)  # capacity routes: to reserve
        self.placed: dict[tuple[int, dt.date], int] = defaultdict(int)  # every route: added to counts

    def _reserved(self, day: dt.date) -> dict[int, int]:
        if day not in self.reserved:
            ids = [i for i, cap in self.compiled.capacity.items() if cap is not None]
            loads = RouteDayLoad.__table__
            stmt = sa.select(loads.c.route_id, loads.c.orders).where(loads.c.day == day,
                                                                     loads.c.route_id.in_(ids))
            self.reserved[day] = dict(db.session.execute(stmt).all()) if ids else {}
        return self.reserved[day]

    def room(self, route_id: int, day: dt.date) -> bool:
        """Whether ``reserve(route_id, day)`` would take a place now, given what the batch took."""
        capacity = self.compiled.capacity.get(route_id)
        if capacity is None:
            return True
        if self.full.get((route_id, day), 0.0) > self.now:
            return False
        return self._reserved(day).get(route_id, 0) + self.taken[(route_id, day)] + 1 <= capacity

    def take(self, route_id: int, day: dt.date) -> None:
        if self.compiled.capacity.get(route_id) is not None:
            self.taken[(route_id, day)] += 1
        self.placed[(route_id, day)] += 1

    def counts(self, ids: set[int], day: dt.date) -> dict[str, int]:
        """The routes' loads on ``day`` counted from the orders, the batch's placed ones included."""
        if day not in self.counted:
            self.counted[day] = day_loads(self.compiled.codes, day)
        counted = self.counted[day]
        return {self.compiled.codes[i]: n for i in ids
                if (n := counted.get(i, 0) + self.placed.get((i, day), 0))}


def place_new_orders(orders: Sequence[dict[str, Any]], today: dt.date) -> list[Placement]:
    """Place new orders (dicts of their columns, not yet written) in the current transaction: sets each
    one's route_id, run_date, dispatch and status as ``place_new_order`` would, and reserves their
    places. Raises PlacementRaced (the transaction must then be rolled back to before the call)."""
    compiled = compiled_routes()
    loads = _Loads(compiled)
    table = compiled.table
    out: list[Placement] = []
    for order in orders:
        day = plan_day(order["appointment_date"], today)
        got = _place(compiled, table, loads, order["commune_id"], order["address_detail"], day)
        order["route_id"] = got.route_id
        order["run_date"] = day if got.route_id else None
        order["dispatch"] = None if got.route_id else got.outcome.value
        if got.route_id:
            order["status"] = Status.ASSIGNED
            loads.take(got.route_id, day)
        out.append(got)
    for (route_id, day), n in loads.taken.items():
        if n and not reserve(route_id, day, n):
            raise PlacementRaced
    return out


def _place(compiled: Any, table: routes.RouteTable, loads: _Loads, commune_id: int, detail: str,
           day: dt.date) -> Placement:
    """``routing.services.place`` against the batch's loads."""
    candidates, how = table.match(str(commune_id), detail)
    if not candidates:
        return Placement(None, how)
    if len(candidates) == 1:
        for code in table.chain(candidates[0]):
            if loads.room(compiled.ids[code], day):
                outcome = how if code == candidates[0] else routes.Outcome.OVERFLOW
                return Placement(compiled.ids[code], outcome)
        return Placement(None, routes.Outcome.OVER_CAPACITY)
    ids = {compiled.ids[c] for code in candidates for c in table.chain(code)}
    got = routes.assign(table, [routes.OrderAddress(0, str(commune_id), detail)], loads.counts(ids, day))[0]
    if got.route is None:
        return Placement(None, got.outcome)
    if loads.room(compiled.ids[got.route], day):
        return Placement(compiled.ids[got.route], got.outcome)
    return Placement(None, routes.Outcome.OVER_CAPACITY)
