"""A courier's run for a day: stops grouped by address, sequenced from the post office, with legs."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from routes.distance import geodesic_m, haversine_matrix
from routes.sequence import sequence_stops

Point = tuple[float, float]  # latitude, longitude in degrees


@dataclass(frozen=True, slots=True)
class StopInput:
    """One order to visit. Orders with the same ``group`` (their normalised address) form one stop.

    ``point`` None: the order has no coordinate at all; it is placed at the post office and marked.
    ``estimated``: the point is a stand-in (a commune centroid), not the address itself.
    """

    key: Hashable
    group: Hashable
    point: Point | None
    estimated: bool = False


@dataclass(frozen=True, slots=True)
class PlannedStop:
    number: int  # 1-based, the order the courier visits stops in
    keys: tuple[Hashable, ...]  # the orders delivered at this stop
    point: Point
    estimated: bool  # placed by a stand-in point: the courier should check the address
    located: bool  # False: no coordinate at all (placed at the post office)
    leg_m: float  # from the previous stop (the post office for the first)
    cumulative_m: float


@dataclass(frozen=True, slots=True)
class RunPlan:
    stops: tuple[PlannedStop, ...]
    return_m: float  # from the last stop back to the post office (0 for an open run)
    total_m: float

    @property
    def orders(self) -> int:
        return sum(len(s.keys) for s in self.stops)


def plan_run(depot: Point, orders: Sequence[StopInput], *, return_to_start: bool = True,
             time_limit_s: float | None = None) -> RunPlan:
    """Group ``orders`` into stops and sequence them from ``depot``; an empty run is an empty plan.

    The order is chosen on a haversine matrix (at most 0.5 % off within a province); the distances
    shown to people are WGS84 geodesics.
    """
    groups: dict[Hashable, list[StopInput]] = {}
    for order in orders:
        groups.setdefault(order.group, []).append(order)
    members = list(groups.values())
    if not members:
        return RunPlan((), 0.0, 0.0)
    points = [depot] + [_point(depot, group) for group in members]
    sequence = sequence_stops(haversine_matrix(points), start=0, return_to_start=return_to_start,
                              time_limit_s=time_limit_s)
    stops: list[PlannedStop] = []
    previous, total = depot, 0.0
    for number, index in enumerate(sequence[1:], start=1):
        group, point = members[index - 1], points[index]
        leg = geodesic_m(previous, point)
        total += leg
        stops.append(PlannedStop(
            number=number, keys=tuple(o.key for o in group), point=point,
            estimated=any(o.estimated or o.point is None for o in group),
            located=any(o.point is not None for o in group), leg_m=leg, cumulative_m=total))
        previous = point
    back = geodesic_m(previous, depot) if return_to_start else 0.0
    return RunPlan(tuple(stops), back, total + back)


def _point(depot: Point, group: list[StopInput]) -> Point:
    """The stop's point: the most precise member's (a real position beats an estimate)."""
    located = [o for o in group if o.point is not None]
    best = sorted(located, key=lambda o: o.estimated)
    return best[0].point if best else depot  # type: ignore[return-value]
