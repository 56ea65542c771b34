"""When the courier is expected at each stop of a sequenced run: the one ETA rule.

The plan: the shift starts at ``PLAN_SHIFT_START`` (local time, the run's day), or, for a run
re-sequenced during its day from the courier's last known position, when they were there; the courier
drives the run's cumulative distance at ``PLAN_SPEED_KMH`` (a road distance when the road graph
covers the run, else the straight-line distance times ``ROADS_DETOUR_FACTOR``) and spends
``PLAN_SERVICE_S`` at every stop before. As the day goes, the courier's synced visits (delivered, failed
attempt, picked up: the device's time, else the server's) replace the plan: every stop after
a visited one is estimated from the time of that visit, so a late courier moves the later stops
later (and an early one earlier). The window shown to people is the estimate rounded to the nearest
half hour, ± 30 minutes ("09:00–10:00").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from delivery_service.extensions import db
from delivery_service.localtime import day_start, service_timezone
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.status import Status
from delivery_service.roads import ROAD
from delivery_service.routing import plan
from delivery_service.routing.models import RouteRun, RunStop
from delivery_service.routing.services import run_distances

WINDOW = dt.timedelta(minutes=30)  # each side of the rounded estimate
ROUNDING_S = 1800

# A courier's visit to a stop: the moves made at the door.
VISITS = {(Status.OUT_FOR_DELIVERY, Status.DELIVERED), (Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT),
          (Status.PICKUP_SCHEDULED, Status.PICKED_UP), (Status.PICKUP_SCHEDULED, Status.FAILED_ATTEMPT)}


@dataclass(frozen=True)
class Eta:
    """A stop's estimated arrival (local, aware) and the window people are given."""

    estimate: dt.datetime
    start: dt.datetime
    end: dt.datetime
    visited: bool  # the courier has been there: ``estimate`` is the time of the visit

    def label(self, dash: str = "–", pad: bool = False) -> str:
        """"9:00–10:00"; ``pad`` and ``dash="-"`` give the SMS form "09:00-10:00"."""
        def clock(moment: dt.datetime) -> str:
            return f"{moment.hour:02d}:{moment.minute:02d}" if pad else f"{moment.hour}:{moment.minute:02d}"
        return f"{clock(self.start)}{dash}{clock(self.end)}"

    def as_json(self) -> dict[str, object]:
        return {"estimate": self.estimate.isoformat(timespec="minutes"), "from": self.start.strftime("%H:%M"),
                "to": self.end.strftime("%H:%M"), "visited": self.visited, "label": self.label()}


def window(estimate: dt.datetime, visited: bool = False) -> Eta:
    """The window around an estimate: rounded to the nearest half hour, ± 30 minutes."""
    midnight = estimate.replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = (estimate - midnight).total_seconds()
    centre = midnight + dt.timedelta(seconds=round(seconds / ROUNDING_S) * ROUNDING_S)
    return Eta(estimate, centre - WINDOW, centre + WINDOW, visited)


def _visits(order_ids: list[int], day: dt.date) -> dict[int, dt.datetime]:
    """The last visit on ``day`` (local) of each order that had one."""
    if not order_ids:
        return {}
    first, after = day_start(day), day_start(day + dt.timedelta(days=1))
    rows = db.session.execute(
        sa.select(OrderEvent.order_id, OrderEvent.status_from, OrderEvent.status_to, OrderEvent.device_time,
                  OrderEvent.server_time)
        .where(OrderEvent.order_id.in_(order_ids), OrderEvent.server_time >= first - dt.timedelta(days=1),
               OrderEvent.status_to.in_({to for _, to in VISITS})))
    found: dict[int, dt.datetime] = {}
    for order_id, status_from, status_to, device_time, server_time in rows:
        at = device_time or server_time
        if (status_from, status_to) in VISITS and first <= at < after:
            found[order_id] = max(at, found.get(order_id, at))
    return found


def stop_etas(run: RouteRun) -> dict[int, Eta]:
    """{stop number: Eta} for every stop of a sequenced run, recomputed from the visits synced so far."""
    rows = db.session.execute(
        sa.select(RunStop.stop_no, RunStop.cumulative_m, RunStop.order_id, RunStop.latitude,
                  RunStop.longitude).where(RunStop.run_id == run.id).order_by(RunStop.stop_no)).all()
    visits = _visits([r.order_id for r in rows], run.run_date)
    stops: dict[int, float] = {}
    visited: dict[int, dt.datetime] = {}
    for stop_no, metres, order_id, _lat, _lon in rows:
        stops[stop_no] = metres
        if order_id in visits:
            visited[stop_no] = max(visits[order_id], visited.get(stop_no, visits[order_id]))
    speed = float(plan.setting("PLAN_SPEED_KMH")) / 3.6
    # a run sequenced on the road graph stores road distances; otherwise geodesics, made roads here
    on_roads = run_distances(run, [(r.latitude, r.longitude) for r in rows]) == ROAD
    detour = 1.0 if on_roads else float(current_app.config["ROADS_DETOUR_FACTOR"])
    service = int(plan.setting("PLAN_SERVICE_S"))
    tz = service_timezone()
    # The anchor: (moment, metres, stop number) the next stops are counted from; first the shift start.
    shift_start = day_start(run.run_date) + dt.timedelta(
        seconds=plan.shift()[0])
    # a run re-sequenced during the day starts where the courier was last seen, when they were there
    anchor = (max(shift_start, run.start_at) if run.start_at else shift_start, 0.0, 0)
    etas: dict[int, Eta] = {}
    for number in sorted(stops):
        if number in visited:
            at = visited[number].astimezone(tz)
            etas[number] = window(at, visited=True)
            anchor = (at, stops[number], number)
            continue
        moment, metres, after = anchor
        # service time at the stops between the anchor and this one (the anchor's own is behind it,
        # except the shift start, which has none)
        between = number - after - 1
        seconds = max(stops[number] - metres, 0.0) * detour / speed + max(between, 0) * service
        etas[number] = window((moment + dt.timedelta(seconds=seconds)).astimezone(tz))
    return etas


def order_eta(order: DeliveryOrder) -> Eta | None:
    """The window of the order's stop on its run day's sequenced run; None when there is none."""
    if order.route_id is None or order.run_date is None:
        return None
    run = db.session.scalar(sa.select(RouteRun).where(RouteRun.route_id == order.route_id,
                                                      RouteRun.run_date == order.run_date))
    if run is None:
        return None
    stop_no = db.session.scalar(sa.select(RunStop.stop_no).where(RunStop.run_id == run.id,
                                                                 RunStop.order_id == order.id))
    return None if stop_no is None else stop_etas(run).get(stop_no)
