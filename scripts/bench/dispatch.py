"""Benchmark: several couriers at once (``routes.vrp``, PyVRP) against OR-Tools and VROOM, same run.

1. Published instances (tests/data/vrp/bench): Solomon VRPTW, 100 customers (DIMACS 2021 convention:
   distances and times truncated to one decimal, the file's fleet and capacity, total distance as the
   objective) and CVRPLIB X (rounded Euclidean, fleet unlimited). Each solver gets the same wall time;
   the gap is to the best known solution (BKS) of that convention; every answer is checked (each
   customer once, capacity, windows, fleet) before it is scored.
2. A post office's day: 500 orders and 8 couriers (a synthetic day shaped like a Quảng Ngãi office: 24
   communes in 8 routes of 3, busy and quiet communes, 10 % of orders with a morning or afternoon
   window), the commune-rule assignment (each order to its commune's route, the overflow to the next
   route as a backup would take it, each run sequenced by ``routes.sequence_stops``) against the joint
   plan (territory kept as a soft preference, the same bag limits, shift and service time).

    .venv/bin/python scripts/bench/dispatch.py                        # all instances, 10 s, office day
    .venv/bin/python scripts/bench/dispatch.py --seconds 10,60 --only C101,X-n101-k25
    .venv/bin/python scripts/bench/dispatch.py --skip-instances       # the office day only

The competitors come from the ``bench`` extra (``pip install -e '.[bench]'``); a missing one is skipped.
Configuration of the competitors: OR-Tools, PATH_CHEAPEST_ARC (Solomon: PARALLEL_CHEAPEST_INSERTION)
then guided local search, capacity and time dimensions (transit = travel + service at the origin),
fleet: the file's (Solomon) or k + 25 % (X); VROOM, exploration level 5, 2 threads, the same integer
matrix as durations (VROOM minimises travel time), timeout = the budget.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]  # routes.py here shadows routes
sys.path.insert(0, str(ROOT))

from routes import sequence  # noqa: E402
from routes.distance import haversine_matrix  # noqa: E402
from routes.vrp import Instance, Problem, Vehicle, VrpClient, read_instance, solve  # noqa: E402

DATA = ROOT / "tests" / "data" / "vrp" / "bench"
# name -> best known cost in the instance's convention. Solomon: DIMACS 2021 VRPTW challenge BKS
# (distance only, one-decimal truncation); X: proven optima (Uchoa et al. 2017, CVRPLIB).
BKS = {"C101": 827.3, "R101": 1637.7, "RC101": 1619.8, "C201": 589.1, "R201": 1143.2, "RC201": 1261.8,
       "X-n101-k25": 27591.0, "X-n125-k30": 55539.0}
FILES = {**{name: f"{name}.txt" for name in ("C101", "R101", "RC101", "C201", "R201", "RC201")},
         "X-n101-k25": "X-n101-k25.vrp", "X-n125-k30": "X-n125-k30.vrp"}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Answer:
    cost: float | None  # in the instance's convention; None: no valid answer
    routes: int
    seconds: float
    note: str = ""


# --- checking and scoring an answer -----------------------------------------------------------------

def check(inst: Instance, routes: list[list[int]]) -> str:
    """Empty if ``routes`` (client indices) is a valid answer to ``inst``, else what is wrong."""
    p = inst.problem
    n = len(p.clients)
    seen = sorted(c for r in routes for c in r)
    if seen != list(range(n)):
        return f"{n - len(set(seen))} customers missing" if len(set(seen)) < n else "a customer twice"
    if len([r for r in routes if r]) > len(p.vehicles):
        return "more routes than vehicles"
    cap = p.vehicles[0].capacity
    dur = np.asarray(p.duration)
    for r in routes:
        if cap is not None and sum(p.clients[c].demand for c in r) > cap:
            return "over capacity"
        t, prev = (p.depot_window or (0, 0))[0], 0
        for c in r:
            cl = p.clients[c]
            t += int(dur[prev, c + 1])
            if cl.window is not None:
                t = max(t, cl.window[0])
                if t > cl.window[1]:
                    return "a window broken"
            t += cl.service_s
            prev = c + 1
        if p.depot_window is not None and t + int(dur[prev, 0]) > p.depot_window[1]:
            return "back after the depot closes"
    return ""


def cost_of(inst: Instance, routes: list[list[int]]) -> float:
    d = np.asarray(inst.problem.distance)
    total = 0
    for r in routes:
        path = [0] + [c + 1 for c in r] + [0]
        total += int(sum(int(d[a, b]) for a, b in zip(path, path[1:], strict=False)))
    return total / inst.scale


def score(inst: Instance, routes: list[list[int]], seconds: float) -> Answer:
    problem = check(inst, routes)
    used = len([r for r in routes if r])
    if problem:
        return Answer(None, used, seconds, problem)
    return Answer(cost_of(inst, routes), used, seconds)


# --- the three solvers on the same instance ---------------------------------------------------------

def run_pyvrp(inst: Instance, seconds: float) -> Answer:
    t0 = time.perf_counter()
    plan = solve(inst.problem, seconds=seconds, seed=0)
    return score(inst, [[v.client for v in r.visits] for r in plan.routes], time.perf_counter() - t0)


def _fleet(inst: Instance) -> int:
    if inst.kind == "solomon":
        return len(inst.problem.vehicles)
    k = int(inst.name.rsplit("-k", 1)[1])  # X instances: k is the minimum number of routes
    return max(k + 5, math.ceil(1.25 * k))


def run_ortools(inst: Instance, seconds: float) -> Answer:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    p = inst.problem
    n = len(p.clients) + 1
    nveh = _fleet(inst)
    t0 = time.perf_counter()
    manager = pywrapcp.RoutingIndexManager(n, nveh, 0)
    routing = pywrapcp.RoutingModel(manager)
    dist = np.asarray(p.distance).astype(np.int64)
    arc = routing.RegisterTransitMatrix(dist.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(arc)
    demand = [0] + [c.demand for c in p.clients]
    dem = routing.RegisterUnaryTransitVector(demand)
    cap = p.vehicles[0].capacity or sum(demand)
    routing.AddDimensionWithVehicleCapacity(dem, 0, [cap] * nveh, True, "Capacity")
    if inst.kind == "solomon":
        service = np.array([0] + [c.service_s for c in p.clients], dtype=np.int64)
        transit = np.asarray(p.duration).astype(np.int64) + service[:, None]
        tcb = routing.RegisterTransitMatrix(transit.tolist())
        horizon = (p.depot_window or (0, 10**7))[1]
        routing.AddDimension(tcb, horizon, horizon, False, "Time")
        tdim = routing.GetDimensionOrDie("Time")
        for i, c in enumerate(p.clients, start=1):
            if c.window is not None:
                tdim.CumulVar(manager.NodeToIndex(i)).SetRange(c.window[0], c.window[1])
        for v in range(nveh):
            tdim.CumulVar(routing.Start(v)).SetRange(0, horizon)
            tdim.CumulVar(routing.End(v)).SetRange(0, horizon)
    params = pywrapcp.DefaultRoutingSearchParameters()
    first = routing_enums_pb2.FirstSolutionStrategy
    # path-cheapest-arc finds no first solution of R101 (tight windows): insertion does
    params.first_solution_strategy = (first.PARALLEL_CHEAPEST_INSERTION if inst.kind == "solomon"
                                      else first.PATH_CHEAPEST_ARC)
    params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    params.time_limit.FromMilliseconds(int(seconds * 1000))
    sol = routing.SolveWithParameters(params)
    elapsed = time.perf_counter() - t0
    if sol is None:
        return Answer(None, 0, elapsed, "no solution found")
    routes = []
    for v in range(nveh):
        idx, r = sol.Value(routing.NextVar(routing.Start(v))), []
        while not routing.IsEnd(idx):
            r.append(manager.IndexToNode(idx) - 1)
            idx = sol.Value(routing.NextVar(idx))
        routes.append(r)
    return score(inst, routes, elapsed)


def run_vroom(inst: Instance, seconds: float) -> Answer:
    import vroom

    p = inst.problem
    nveh = _fleet(inst)
    t0 = time.perf_counter()
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car",
                                 matrix_input=np.asarray(p.duration).astype(np.uint32))
    cap = p.vehicles[0].capacity or sum(c.demand for c in p.clients)
    tw = vroom.TimeWindow(*p.depot_window) if p.depot_window else None
    for v in range(nveh):
        kwargs = {"time_window": tw} if tw is not None else {}
        problem.add_vehicle(vroom.Vehicle(v, start=0, end=0, capacity=[cap], **kwargs))
    jobs = []
    for i, c in enumerate(p.clients, start=1):
        windows = [vroom.TimeWindow(*c.window)] if c.window is not None else []
        jobs.append(vroom.Job(i, location=i, delivery=[c.demand], default_service=c.service_s,
                              time_windows=windows))
    problem.add_job(jobs)
    sol = problem.solve(exploration_level=5, nb_threads=2, timeout=dt.timedelta(seconds=seconds))
    elapsed = time.perf_counter() - t0
    steps = sol.routes
    routes: dict[int, list[int]] = {}
    for vid, kind, loc in zip(steps["vehicle_id"], steps["type"], steps["location_index"], strict=True):
        if kind == "job":
            routes.setdefault(int(vid), []).append(int(loc) - 1)
    return score(inst, list(routes.values()), elapsed)


SOLVERS = [("ours (PyVRP)", run_pyvrp), ("OR-Tools GLS", run_ortools), ("VROOM x5", run_vroom)]


def available() -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = [SOLVERS[0]]
    for (name, fn), module in zip(SOLVERS[1:], ["ortools", "vroom"], strict=True):
        try:
            __import__(module)
            out.append((name, fn))
        except ImportError:
            log(f"{module} is not installed: {name} skipped")
    return out


def gap(a: Answer, bks: float) -> str:
    if a.cost is None:
        return f"invalid ({a.note})"
    return f"{100 * (a.cost / bks - 1):+.2f} % ({a.cost:g}, {a.routes} routes)"


def instances_table(names: list[str], budgets: list[float]) -> list[str]:
    solvers = available()
    lines = []
    header = "| instance | BKS | budget | " + " | ".join(n for n, _ in solvers) + " |"
    lines += [header, "|" + "---|" * (3 + len(solvers))]
    gaps: dict[tuple[str, float, str], list[float]] = {}
    for name in names:
        inst = read_instance(DATA / FILES[name])
        family = "Solomon" if inst.kind == "solomon" else "X"
        for budget in budgets:
            cells = []
            for sname, fn in solvers:
                log(f"{name} {sname} {budget:g} s")
                a = fn(inst, budget)  # type: ignore[operator]
                cells.append(gap(a, BKS[name]))
                g = 100 * (a.cost / BKS[name] - 1) if a.cost is not None else float("nan")
                gaps.setdefault((family, budget, sname), []).append(g)
            lines.append(f"| {name} | {BKS[name]:g} | {budget:g} s | " + " | ".join(cells) + " |")
    for family in ("Solomon", "X"):
        for budget in budgets:
            row = [gaps.get((family, budget, s)) for s, _ in solvers]
            if row[0] is None:
                continue
            cells = [f"{statistics.fmean(g):+.2f} %" if g and all(x == x for x in g)
                     else "n/a (invalid answers)" for g in row]
            lines.append(f"| **mean {family}** | | {budget:g} s | " + " | ".join(cells) + " |")
    return lines


# --- a post office's day -----------------------------------------------------------------------------

OFFICE = (15.12, 108.80)
DETOUR = 1.3  # roads over straight lines, as delivery_service.routing.plan uses by default
SPEED_MPS = 25 / 3.6  # a motorbike in a rural district, on the road distance
SERVICE_S = 180
SHIFT = (8 * 3600, 17 * 3600)
BAG = 80
TERRITORY_M = 2000  # a stop leaves its courier only if that saves more than 2 km


@dataclass
class Day:
    points: list[tuple[float, float]]  # the office first, then one point per order
    commune: list[int]  # order -> commune
    window: list[tuple[int, int] | None]
    route_of_commune: dict[int, int]


def office_day(orders: int = 500, couriers: int = 8, seed: int = 1) -> Day:
    rng = np.random.default_rng(seed)
    ncomm = couriers * 3
    angle = np.sort(rng.uniform(0, 2 * np.pi, ncomm))  # routes take neighbouring communes
    radius = rng.uniform(0.03, 0.14, ncomm)  # 3-15 km from the office
    centres = np.column_stack([OFFICE[0] + radius * np.sin(angle), OFFICE[1] + radius * np.cos(angle)])
    weight = rng.gamma(1.5, 1.0, ncomm)  # busy towns and quiet hamlets
    commune = rng.choice(ncomm, size=orders, p=weight / weight.sum())
    pts = [OFFICE] + [(float(centres[c][0] + rng.normal(0, 0.012)),
                       float(centres[c][1] + rng.normal(0, 0.012))) for c in commune]
    windows: list[tuple[int, int] | None] = []
    for _ in range(orders):
        u = rng.uniform()
        windows.append((8 * 3600, 12 * 3600) if u < 0.05 else (13 * 3600, 17 * 3600) if u < 0.10 else None)
    return Day(pts, [int(c) for c in commune], windows, {c: c // 3 for c in range(ncomm)})


def _run_stats(order: list[int], dist: np.ndarray, dur: np.ndarray, windows: list[tuple[int, int] | None]
               ) -> tuple[float, int, int, int]:
    """distance (m), duration (s), late stops, overtime (s) of one closed run starting at shift start."""
    t, prev, late, d = SHIFT[0], 0, 0, 0.0
    for node in order:
        d += dist[prev, node]
        t += int(dur[prev, node])
        w = windows[node - 1]
        if w is not None:
            t = max(t, w[0])
            late += t > w[1]
        t += SERVICE_S
        prev = node
    d += dist[prev, 0]
    t += int(dur[prev, 0])
    return d, t - SHIFT[0], late, max(0, t - SHIFT[1])


def office_table(seconds: float, couriers: int = 8, orders: int = 500) -> list[str]:
    day = office_day(orders, couriers)
    dist = haversine_matrix(day.points) * DETOUR
    dur = np.rint(dist / SPEED_MPS)
    # commune rule: each order to its commune's route; beyond the bag limit, to the next route (backup)
    load = [0] * couriers
    assigned: list[list[int]] = [[] for _ in range(couriers)]
    for i, c in enumerate(day.commune, start=1):
        r = day.route_of_commune[c]
        for step in range(couriers):
            rr = (r + step) % couriers
            if load[rr] < BAG:
                load[rr] += 1
                assigned[rr].append(i)
                break
    base = []
    for r in range(couriers):
        nodes = [0] + assigned[r]
        sub = dist[np.ix_(nodes, nodes)]
        seq = sequence.sequence_stops(sub) if len(nodes) > 1 else [0]
        base.append(_run_stats([nodes[k] for k in seq[1:]], dist, dur, day.window))
    clients = [VrpClient(key=i, demand=1, service_s=SERVICE_S, window=day.window[i - 1],
                         territory=frozenset({day.route_of_commune[day.commune[i - 1]]}))
               for i in range(1, orders + 1)]
    vehicles = [Vehicle(key=r, capacity=BAG, shift=SHIFT, max_overtime_s=3 * 3600, overtime_cost=20)
                for r in range(couriers)]
    t_build = time.perf_counter()  # what the service does: the matrix, the problem, the search
    dist2 = haversine_matrix(day.points) * DETOUR
    problem = Problem(clients, vehicles, dist2, np.rint(dist2 / SPEED_MPS), territory_cost=TERRITORY_M)
    plan = solve(problem, seconds=seconds, seed=0)
    wall = time.perf_counter() - t_build
    ours = [_run_stats([v.client + 1 for v in r.visits], dist, dur, day.window) for r in plan.routes]
    lines = [f"{orders} orders, {couriers} couriers, bag {BAG}, shift 08:00-17:00, {SERVICE_S // 60} min a "
             f"stop, {DETOUR} × straight line at {SPEED_MPS * 3.6:g} km/h, territory cost {TERRITORY_M} m; "
             f"plan in {wall:.1f} s wall (matrix + search, budget {seconds:g} s); "
             f"{plan.outside_territory} orders planned outside their route's communes", "",
             "| courier | commune rule: orders | km | hours | late | overtime "
             "| plan: orders | km | hours | late | overtime |", "|" + "---|" * 11]
    tot = [0.0] * 10
    for r in range(couriers):
        b, o = base[r], ours[r]
        row = [len(assigned[r]), b[0] / 1000, b[1] / 3600, b[2], b[3] / 60,
               len(plan.routes[r].visits), o[0] / 1000, o[1] / 3600, o[2], o[3] / 60]
        tot = [a + x for a, x in zip(tot, row, strict=True)]
        lines.append(f"| {r + 1} | {row[0]} | {row[1]:.1f} | {row[2]:.2f} | {row[3]} | {row[4]:.0f} min | "
                     f"{row[5]} | {row[6]:.1f} | {row[7]:.2f} | {row[8]} | {row[9]:.0f} min |")
    lines.append(f"| **total** | {tot[0]:.0f} | {tot[1]:.1f} | {tot[2]:.2f} | {tot[3]:.0f} "
                 f"| {tot[4]:.0f} min | {tot[5]:.0f} | {tot[6]:.1f} | {tot[7]:.2f} | {tot[8]:.0f} "
                 f"| {tot[9]:.0f} min |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", default="10", help="budgets, comma-separated (default 10)")
    ap.add_argument("--only", default="", help="instance names, comma-separated (default all)")
    ap.add_argument("--skip-instances", action="store_true")
    ap.add_argument("--skip-office", action="store_true")
    ap.add_argument("--office-seconds", type=float, default=8.0,
                    help="search budget of the office day (the target is ≤ 10 s in all)")
    args = ap.parse_args(argv)
    budgets = [float(x) for x in args.seconds.split(",") if x]
    names = [n for n in args.only.split(",") if n] or list(BKS)
    from importlib.metadata import version

    print(f"# dispatch benchmark, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, Python "
          f"{platform.python_version()}, PyVRP {version('pyvrp')}\n")
    if not args.skip_instances:
        print("\n".join(instances_table(names, budgets)) + "\n")
    if not args.skip_office:
        print("\n".join(office_table(args.office_seconds)) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
