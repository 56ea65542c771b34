"""Several couriers at once: a vehicle routing problem with capacities, shifts and time windows.

A typed wrapper around PyVRP (MIT; hybrid genetic search / iterated local search, the winner of the
DIMACS VRPTW challenge). Plain data in, plain data out; no Flask, no database.

- :class:`Problem`: the depot (matrix index 0), the clients (index ``i + 1`` for ``clients[i]``), the
  vehicles, integer distance and duration matrices, and two preferences the solver does not know by
  itself: **locks** (a client that only one vehicle may serve) and **territory** (a client its own
  vehicles should keep unless moving it saves more than ``territory_cost``).
- :func:`solve`: the plan, per vehicle in the order given: the visits with arrival times, late stops,
  overtime, distance.

How locks and territory are modelled: every vehicle gets its own routing *profile* (PyVRP's per-vehicle
distance matrices). In vehicle ``k``'s matrix every edge *into* a client locked to another vehicle
costs :data:`LOCK_COST` more (prohibitive: more than any plan's distance), and every edge into a client
whose territory does not include ``k`` costs ``territory_cost`` more. A client therefore leaves its
territory only when that saves more than the set cost, and a locked client stays with its vehicle as
long as a plan exists that keeps it there. Durations are never penalised; the distances reported are
always those of the true matrix. Without locks or territory, identical vehicles share one type (as in
the benchmark instances), which is what PyVRP is fastest with.

Time windows are hard in PyVRP's search but may remain broken when no plan keeps them all: such a
visit is reported late (``late_s``), never hidden. A vehicle may work past its shift up to
``max_overtime_s`` at ``overtime_cost`` per second.

``python -m routes.vrp FILE [--seconds S] [--seed N]`` solves a VRPLIB (CVRPLIB, e.g. the X set) or a
Solomon VRPTW instance and prints ``{"cost": ..., "routes": [[customer numbers], ...]}`` with the
customers numbered as in the file (VRPLIB: the NODE_COORD_SECTION ids, the depot being node 1, so
CVRPLIB's ``.sol`` files number the same customers one lower; Solomon: CUST NO., the depot being 0)
and the cost by the instance's convention: CVRPLIB X, Euclidean
distances rounded to the nearest integer (TSPLIB ``nint``); Solomon, Euclidean distances (and times)
truncated to one decimal, the DIMACS 2021 convention, with the fleet size and capacity of the file and
the total distance as the objective.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from routes.errors import InvalidMatrix, RoutesError

INF = 2**62  # PyVRP's "unconstrained" is int64 max; stay below it so that sums cannot overflow
LOCK_COST = 10**9  # added to every edge into a client locked to another vehicle (1,000,000 km)


@dataclass(frozen=True, slots=True)
class VrpClient:
    """One stop: ``demand`` units (orders) in the bag, ``service_s`` at the stop, an optional window.

    ``locked_to``: the index of the only vehicle that may serve it. ``territory``: the indices of the
    vehicles whose territory it is (empty: nobody's, any vehicle is as good).
    """

    key: Hashable
    demand: int = 1
    service_s: int = 0
    window: tuple[int, int] | None = None
    locked_to: int | None = None
    territory: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A courier (or a truck): ``capacity`` None is unlimited; ``shift`` (start, end), None is all day."""

    key: Hashable
    capacity: int | None = None
    shift: tuple[int, int] | None = None
    max_overtime_s: int = 0
    overtime_cost: int = 0  # per second of overtime, in distance units


@dataclass(frozen=True)
class Problem:
    """Matrices are (n + 1) × (n + 1) for n clients: index 0 is the depot, ``clients[i]`` is ``i + 1``."""

    clients: Sequence[VrpClient]
    vehicles: Sequence[Vehicle]
    distance: np.ndarray
    duration: np.ndarray
    territory_cost: int = 0
    depot_window: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Visit:
    client: int  # index into Problem.clients
    key: Hashable
    arrival: int  # start of service (after any wait), in the duration unit
    late_s: int  # how far past the window's end service starts (0: on time)


@dataclass(frozen=True, slots=True)
class VehicleRoute:
    vehicle: int  # index into Problem.vehicles
    key: Hashable
    visits: tuple[Visit, ...]
    distance: int
    duration: int
    start: int
    end: int
    overtime: int
    load: int

    @property
    def late(self) -> int:
        return sum(1 for v in self.visits if v.late_s > 0)


@dataclass(frozen=True)
class VrpPlan:
    routes: tuple[VehicleRoute, ...]  # one per vehicle, in Problem.vehicles order (empty routes too)
    distance: int
    feasible: bool  # capacity, windows and shifts all kept
    locks_kept: bool
    outside_territory: int  # clients served by a vehicle outside their territory
    seconds: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def late(self) -> int:
        return sum(r.late for r in self.routes)

    @property
    def overtime(self) -> int:
        return sum(r.overtime for r in self.routes)


def _matrix(m: np.ndarray, n: int, name: str) -> np.ndarray:
    arr = np.asarray(m)
    if arr.shape != (n, n):
        raise InvalidMatrix(f"{name} matrix must be {n} × {n} (the depot and {n - 1} clients), "
                            f"got {arr.shape}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InvalidMatrix(f"{name} matrix must hold finite non-negative numbers")
    return np.rint(arr).astype(np.int64)


def _check(problem: Problem) -> None:
    nv = len(problem.vehicles)
    if nv == 0:
        raise RoutesError("at least one vehicle is needed")
    for i, c in enumerate(problem.clients):
        if c.demand < 0 or c.service_s < 0:
            raise RoutesError(f"client {i}: demand and service time must be non-negative")
        if c.window is not None and c.window[0] > c.window[1]:
            raise RoutesError(f"client {i}: its window ends before it starts")
        if c.locked_to is not None and not 0 <= c.locked_to < nv:
            raise RoutesError(f"client {i}: locked to vehicle {c.locked_to}, which does not exist")
        if any(not 0 <= k < nv for k in c.territory):
            raise RoutesError(f"client {i}: its territory names a vehicle that does not exist")
    for k, v in enumerate(problem.vehicles):
        if v.capacity is not None and v.capacity < 0:
            raise RoutesError(f"vehicle {k}: capacity must be non-negative")
        if v.shift is not None and v.shift[0] > v.shift[1]:
            raise RoutesError(f"vehicle {k}: its shift ends before it starts")


def _vehicle_type(v: Vehicle, num: int, profile: int, vt: Any) -> Any:
    capacity = v.capacity if v.capacity is not None else INF
    kwargs: dict[str, Any] = {"num_available": num, "capacity": [capacity], "profile": profile}
    if v.shift is not None:
        start, end = v.shift
        # leaves at the start of the shift (start_late): the duration, hence overtime, counts from there
        kwargs.update(tw_early=start, start_late=start, tw_late=end + v.max_overtime_s,
                      shift_duration=end - start,
                      max_overtime=v.max_overtime_s, unit_overtime_cost=v.overtime_cost)
    return vt(**kwargs)


def solve(problem: Problem, seconds: float = 1.0, seed: int = 0) -> VrpPlan:
    """Plan ``problem`` within ``seconds`` of search (PyVRP, deterministic for a seed and a budget)."""
    import time

    from pyvrp import Client, Depot, Location, ProblemData, VehicleType
    from pyvrp import solve as pyvrp_solve
    from pyvrp.exceptions import PenaltyBoundWarning
    from pyvrp.stop import MaxRuntime

    _check(problem)
    n = len(problem.clients) + 1
    dist = _matrix(problem.distance, n, "distance")
    dur = _matrix(problem.duration, n, "duration")
    vehicles = list(problem.vehicles)
    clients = list(problem.clients)
    if not clients:
        empty = tuple(VehicleRoute(k, v.key, (), 0, 0, v.shift[0] if v.shift else 0,
                                   v.shift[0] if v.shift else 0, 0, 0) for k, v in enumerate(vehicles))
        return VrpPlan(empty, 0, True, True, 0)

    personal = any(c.locked_to is not None or c.territory for c in clients)
    type_of: list[int] = []  # vehicle index -> vehicle type index
    types: list[Any] = []
    dist_mats: list[Any] = []  # PyVRP's stubs want ndarray[int], which numpy's own types never are
    dur_mats: list[Any] = []
    members: list[list[int]] = []  # vehicle type -> vehicle indices
    if personal:
        # one type and one profile per vehicle: its own penalised distances
        for k, v in enumerate(vehicles):
            mat = dist.copy()
            extra = np.zeros(n, dtype=np.int64)
            for i, c in enumerate(clients):
                if c.locked_to is not None and c.locked_to != k:
                    extra[i + 1] += LOCK_COST
                if c.territory and k not in c.territory:
                    extra[i + 1] += int(problem.territory_cost)
            mat += extra[None, :]
            np.fill_diagonal(mat, 0)
            dist_mats.append(mat)
            dur_mats.append(dur)
            types.append(_vehicle_type(v, 1, k, VehicleType))
            type_of.append(k)
            members.append([k])
    else:
        dist_mats, dur_mats = [dist], [dur]
        keys: dict[tuple[Any, ...], int] = {}
        for k, v in enumerate(vehicles):
            sig = (v.capacity, v.shift, v.max_overtime_s, v.overtime_cost)
            if sig not in keys:
                keys[sig] = len(members)
                members.append([])
            members[keys[sig]].append(k)
            type_of.append(keys[sig])
        types = [_vehicle_type(vehicles[ks[0]], len(ks), 0, VehicleType) for ks in members]

    depot_tw = problem.depot_window or (0, INF)
    pv_clients = []
    for i, c in enumerate(clients):
        early, late = c.window if c.window is not None else (0, INF)
        pv_clients.append(Client(location=i + 1, delivery=[c.demand], service_duration=c.service_s,
                                 tw_early=early, tw_late=late))
    data = ProblemData(
        locations=[Location(0, 0) for _ in range(n)], clients=pv_clients,
        depots=[Depot(0, tw_early=depot_tw[0], tw_late=depot_tw[1])], vehicle_types=types,
        distance_matrices=dist_mats, duration_matrices=dur_mats)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # raised when no plan keeps every window: expected here, the late visits are reported instead
        warnings.simplefilter("ignore", PenaltyBoundWarning)
        result = pyvrp_solve(data, MaxRuntime(seconds), seed=seed, collect_stats=False, display=False)
    elapsed = time.perf_counter() - t0
    best = result.best

    free = {t: list(ks) for t, ks in enumerate(members)}
    by_vehicle: dict[int, VehicleRoute] = {}
    for route in best.routes():
        t = int(route.vehicle_type())
        k = free[t].pop(0)
        visits: list[Visit] = []
        idx: list[int] = []
        for act in route.schedule():
            if not act.is_client():
                continue
            ci = int(act.idx)
            idx.append(ci)
            visits.append(Visit(ci, clients[ci].key, int(act.start_time), int(act.time_warp)))
        path = [0] + [ci + 1 for ci in idx] + [0]
        d = int(sum(int(dist[a, b]) for a, b in zip(path, path[1:], strict=False)))
        by_vehicle[k] = VehicleRoute(
            vehicle=k, key=vehicles[k].key, visits=tuple(visits), distance=d, duration=int(route.duration()),
            start=int(route.start_time()), end=int(route.end_time()), overtime=int(route.overtime()),
            load=sum(clients[ci].demand for ci in idx))
    routes = []
    for k, v in enumerate(vehicles):
        if k in by_vehicle:
            routes.append(by_vehicle[k])
        else:
            s = v.shift[0] if v.shift else 0
            routes.append(VehicleRoute(k, v.key, (), 0, 0, s, s, 0, 0))
    locks_kept = all(clients[vi.client].locked_to in (None, r.vehicle) for r in routes for vi in r.visits)
    outside = sum(1 for r in routes for vi in r.visits
                  if clients[vi.client].territory and r.vehicle not in clients[vi.client].territory)
    total = sum(r.distance for r in routes)
    return VrpPlan(tuple(routes), total, bool(best.is_feasible()) and best.is_complete(), locks_kept, outside,
                   elapsed, {"cost": int(result.cost()) if result.is_feasible() else None})


# --- benchmark instances -------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """A benchmark instance as a :class:`Problem`, with how to turn its integer costs back into the file's."""

    name: str
    kind: str  # "cvrp" (VRPLIB, rounded Euclidean) or "solomon" (VRPTW, one-decimal truncation)
    problem: Problem
    numbers: list[int]  # client index -> customer number in the file
    scale: int  # integer cost / scale = the instance's cost


def _euclid(coords: np.ndarray) -> np.ndarray:
    diff = coords[:, None, :] - coords[None, :, :]
    out: np.ndarray = np.sqrt((diff**2).sum(axis=2))
    return out


def read_instance(path: str | Path) -> Instance:
    """Read a VRPLIB CVRP (EUC_2D, e.g. CVRPLIB's X set) or a Solomon VRPTW text file."""
    import vrplib

    path = Path(path)
    text = path.read_text(encoding="ascii", errors="replace")
    solomon = "CUSTOMER" in text.upper() and "VEHICLE" in text.upper() and "_SECTION" not in text.upper()
    try:
        raw = vrplib.read_instance(path, instance_format="solomon" if solomon else "vrplib",
                                   compute_edge_weights=False)
    except Exception as exc:  # vrplib raises bare ValueError/IndexError on malformed files
        raise RoutesError(f"{path.name}: not a VRPLIB or Solomon instance: {exc}") from None
    name = str(raw.get("name", path.stem))
    coords = np.asarray(raw["node_coord"], dtype=float)
    demand = [int(x) for x in np.asarray(raw["demand"]).ravel()]
    capacity = int(np.asarray(raw["capacity"]).ravel()[0])
    if solomon:
        # DIMACS 2021: distances and times truncated to one decimal; integers are tenths
        scale = 10
        mat = np.floor(_euclid(coords) * 10 + 1e-9)
        tw = np.asarray(raw["time_window"], dtype=float)
        service = np.asarray(raw["service_time"], dtype=float)
        nveh = int(raw.get("vehicles", len(demand) - 1))
        clients = [VrpClient(key=i, demand=demand[i], service_s=int(round(service[i] * 10)),
                             window=(int(round(tw[i][0] * 10)), int(round(tw[i][1] * 10))))
                   for i in range(1, len(demand))]
        depot_window = (int(round(tw[0][0] * 10)), int(round(tw[0][1] * 10)))
        vehicles = [Vehicle(key=k, capacity=capacity, shift=depot_window) for k in range(nveh)]
        problem = Problem(clients, vehicles, mat, mat, depot_window=depot_window)
        return Instance(name, "solomon", problem, list(range(1, len(demand))), scale)
    kind = str(raw.get("edge_weight_type", "EUC_2D")).upper()
    if kind != "EUC_2D":
        raise RoutesError(f"{path.name}: EDGE_WEIGHT_TYPE {kind} is not supported, only EUC_2D")
    depots = [int(d) for d in np.asarray(raw.get("depot", [0])).ravel()]
    if depots != [0]:
        raise RoutesError(f"{path.name}: one depot, the first node, is supported")
    mat = np.floor(_euclid(coords) + 0.5)  # TSPLIB nint
    n = len(demand)
    nveh = int(raw.get("vehicles", n - 1))
    clients = [VrpClient(key=i, demand=demand[i]) for i in range(1, n)]
    vehicles = [Vehicle(key=k, capacity=capacity) for k in range(nveh)]
    # customers keep their NODE_COORD_SECTION numbers (the depot is node 1; CVRPLIB's .sol files
    # write them one lower)
    return Instance(name, "cvrp", Problem(clients, vehicles, mat, mat), list(range(2, n + 1)), 1)


def instance_cost(instance: Instance, plan: VrpPlan) -> float:
    """The plan's cost by the instance's convention (rounded to the convention's precision)."""
    value = plan.distance / instance.scale
    return round(value, 1) if instance.scale == 10 else float(value)


def plan_json(instance: Instance, plan: VrpPlan) -> dict[str, Any]:
    routes = [[instance.numbers[v.client] for v in r.visits] for r in plan.routes if r.visits]
    cost = instance_cost(instance, plan)
    return {"name": instance.name, "cost": int(cost) if instance.scale == 1 else cost, "routes": routes,
            "vehicles": len(routes), "feasible": plan.feasible, "seconds": round(plan.seconds, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m routes.vrp", description=__doc__.split("\n")[0])
    parser.add_argument("file", help="a VRPLIB (.vrp) or Solomon (.txt) instance")
    parser.add_argument("--seconds", type=float, default=10.0, help="search time (default 10)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not math.isfinite(args.seconds) or args.seconds <= 0:
        parser.error("--seconds must be a positive number")
    try:
        instance = read_instance(args.file)
    except (OSError, RoutesError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    plan = solve(instance.problem, seconds=args.seconds, seed=args.seed)
    json.dump(plan_json(instance, plan), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
