"""A courier's run for a day: stops grouped by address, sequenced from the post office, with legs."""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    window: tuple[int, int] | None = None  # the appointment, seconds after local midnight (see Timing)
    address: str = ""  # the street or hamlet and house number: stops at one point are walked in its order


@dataclass(frozen=True, slots=True)
class Timing:
    """The clock of a run with appointment windows: the courier sets out at ``start_s`` (seconds after
    local midnight), works until ``end_s``, spends ``service_s`` at each stop and covers a metre of the
    matrix in ``s_per_m`` seconds."""

    start_s: int
    end_s: int
    service_s: int
    s_per_m: float


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
             time_limit_s: float | None = None, start: Point | None = None,
             measure: Callable[[list[Point]], Any] | None = None,
             timing: Timing | Callable[[], Timing] | None = None) -> RunPlan:
    """Group ``orders`` into stops and sequence them; an empty run is an empty plan.

    The run starts at ``start`` (a courier re-sequenced during the day: their last known position),
    by default at ``depot``, and, when ``return_to_start``, ends at ``depot`` (the post office) either
    way. ``measure(points)`` gives the distances between points (an n × n matrix in metres, e.g. along
    the roads) or None; without one, or when it gives None, the order is chosen on a haversine matrix
    (at most 0.5 % off within a province) and the distances shown to people are WGS84 geodesics.
    With ``timing`` and appointment windows on some stops (orders of one stop share a window: give
    orders with different windows different groups), the order keeps the windows where it can: a
    one-courier vehicle routing problem (``routes.vrp``) instead of the shortest tour. ``timing`` may
    be a function, called after ``measure`` (the pace may depend on what the matrix was measured on).
    """
    groups: dict[Hashable, list[StopInput]] = {}
    for order in orders:
        groups.setdefault(order.group, []).append(order)
    members = list(groups.values())
    if not members:
        return RunPlan((), 0.0, 0.0)
    points = [start or depot] + [_point(depot, group) for group in members]
    away = start is not None and return_to_start  # ends elsewhere than it starts: the office is a point more
    full = points + [depot] if away else points
    measured = measure(full) if measure is not None else None
    matrix = np.asarray(measured if measured is not None else haversine_matrix(full), dtype=float)
    cost = matrix
    if away:  # "back to the start" costs the way to the office: the closed tour of the solver is the run
        cost = matrix[:-1, :-1].copy()
        cost[:, 0] = matrix[:-1, -1]
        cost[0, 0] = 0.0  # the start to itself is no leg (the solver of windows wants a zero diagonal)
    windows = [next((o.window for o in group if o.window is not None), None) for group in members]
    if timing is not None and any(windows):
        clock = timing() if callable(timing) else timing
        sequence = _keeping_windows(cost, windows, clock, return_to_start, time_limit_s)
    else:
        sequence = sequence_stops(cost, start=0, return_to_start=return_to_start, time_limit_s=time_limit_s)
        sequence = _walk_each_point(sequence, points, members)

    def leg(i: int, j: int) -> float:
        return float(matrix[i, j]) if measured is not None else geodesic_m(full[i], full[j])

    stops: list[PlannedStop] = []
    previous, total = 0, 0.0
    for number, index in enumerate(sequence[1:], start=1):
        group = members[index - 1]
        length = leg(previous, index)
        total += length
        stops.append(PlannedStop(
            number=number, keys=tuple(o.key for o in group), point=points[index],
            estimated=any(o.estimated or o.point is None for o in group),
            located=any(o.point is not None for o in group), leg_m=length, cumulative_m=total))
        previous = index
    back = leg(previous, len(full) - 1 if away else 0) if return_to_start else 0.0
    return RunPlan(tuple(stops), back, total + back)


def _walk_each_point(sequence: list[int], points: list[Point], members: list[list[StopInput]]) -> list[int]:
    """``sequence`` with each block of consecutive stops at one point (a commune's centre standing in
    for addresses not located yet: 0 m apart, in no order of their own) put in the order a courier
    walks them: by street or hamlet, then house number. The tour's length does not change."""
    out = sequence[:1]
    block: list[int] = []
    for index in [*sequence[1:], -1]:
        if block and (index == -1 or points[index] != points[block[0]]):
            out += sorted(block, key=lambda i: _walk_key(members[i - 1][0].address))
            block = []
        if index != -1:
            block.append(index)
    return out


def _walk_key(address: str) -> tuple[str, tuple[int, ...]]:
    """"85/21 nguyen tu tan" -> ("nguyen tu tan", (85, 21)): the street, then the numbers in it."""
    numbers = tuple(int(n) for n in re.findall(r"\d+", address))
    return " ".join(re.sub(r"[\d/,.\-]+", " ", address.casefold()).split()), numbers


def _keeping_windows(cost: np.ndarray, windows: list[tuple[int, int] | None], timing: Timing, closed: bool,
                     time_limit_s: float | None) -> list[int]:
    """The stops' order (0 first) of one courier with windows: PyVRP on the distances, durations at the
    courier's pace. An open run ends at its last stop: the way back costs nothing."""
    from routes.vrp import Problem, Vehicle, VrpClient, solve

    dist = np.rint(cost).astype(np.int64)
    if not closed:
        dist[:, 0] = 0
    dur = np.rint(dist * timing.s_per_m).astype(np.int64)
    clients = [VrpClient(key=i, service_s=timing.service_s, window=w) for i, w in enumerate(windows)]
    vehicle = Vehicle(key=0, shift=(timing.start_s, max(timing.end_s, timing.start_s)),
                      max_overtime_s=24 * 3600)  # the run is never refused for a long day: it is shown
    budget = time_limit_s if time_limit_s is not None else min(5.0, 0.2 + 0.01 * len(clients))
    plan = solve(Problem(clients, [vehicle], dist, dur), seconds=budget, seed=0)
    order = [0] + [v.client + 1 for v in plan.routes[0].visits]
    missing = [i for i in range(1, len(windows) + 1) if i not in set(order)]
    return order + missing  # (every client is served by the one vehicle; kept whole whatever happens)


def _point(depot: Point, group: list[StopInput]) -> Point:
    """The stop's point: the most precise member's (a real position beats an estimate)."""
    located = [o for o in group if o.point is not None]
    best = sorted(located, key=lambda o: o.estimated)
    return best[0].point if best else depot  # type: ignore[return-value]
