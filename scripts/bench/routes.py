"""Benchmark: routes — assignment throughput, and stop sequencing against the other solvers, same run.

Sequencing: for seeded courier-like instances of 25 … 1,000 stops (a few hamlet clusters around
commune centres plus scattered stops in a Quảng Ngãi-sized box, the post office as node 0, haversine
metres) every method sequences the same closed run; the table gives the tour length as +x % over the
best of the row and the wall time, medians over the seeds. Then the published TSPLIB GEO instances
(tests/data/tsplib) with the gap to the proven optimum. Methods:

- ``routes.sequence_stops`` with its default budget (what the service runs);
- NN + 2-opt: nearest neighbour improved by 2-opt to a local optimum (the floor to leave behind);
- OR-Tools guided local search, 1 s and 5 s (RegisterTransitMatrix on int metres, as in BASELINES.md);
- VROOM (pyvroom, exploration level 5, 2 threads, 10 s timeout; not run at 1,000 stops);
- PyVRP (iterated local search, seed 0, 1 s);
- fast-tsp alone (the scaled matrix, 1 s, no polish).

Targets (the issue): within 0.5 % of the optimum on the TSPLIB instances in ≤ 1 s; on 50–200 stops at
least as short as OR-Tools GLS 5 s in ≤ 1 s; 1,000 stops in ≤ 10 s.

    .venv/bin/python scripts/bench/routes.py              # 3 seeds, all sizes: 7 min + assignment 2 min
    .venv/bin/python scripts/bench/routes.py --quick          # 1 seed, 25–200 stops, no 5 s runs
    .venv/bin/python scripts/bench/routes.py --sizes 50,200 --seeds 2

The competitors come from the ``bench`` extra: ``pip install -e '.[bench]'``; a missing one is
reported and skipped.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# this file is itself called routes.py: its folder must not shadow the routes package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from routes import sequence, tsplib  # noqa: E402
from routes.distance import haversine_matrix  # noqa: E402

TSPLIB_DIR = ROOT / "tests" / "data" / "tsplib"
TSPLIB = {"ulysses22": 7013, "gr96": 55209, "gr202": 40160}
BOX = (14.55, 15.45, 108.35, 109.05)  # lat, lat, lon, lon: Quảng Ngãi, about 100 × 75 km
POST_OFFICE = (15.12, 108.80)
VROOM_MAX_N = 500  # level 5 takes minutes beyond this (BASELINES: 170 s at 500 without a timeout)

Solver = Callable[[np.ndarray], list[int]]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- instances --------------------------------------------------------------------------------

def clustered_points(n: int, seed: int) -> list[tuple[float, float]]:
    """The post office, hamlets (σ ≈ 400 m) around commune centres (σ ≈ 2 km), 20 % scattered stops."""
    rng = np.random.default_rng(seed)
    lat0, lat1, lon0, lon1 = BOX
    k = max(3, n // 30)
    centres = np.column_stack([rng.uniform(lat0, lat1, k), rng.uniform(lon0, lon1, k)])
    pts = [POST_OFFICE]
    n_scattered = (n - 1) // 5
    for _ in range(n - 1 - n_scattered):
        hamlet = centres[rng.integers(k)] + rng.normal(0, 0.02, 2)
        pts.append((float(hamlet[0] + rng.normal(0, 0.004)), float(hamlet[1] + rng.normal(0, 0.004))))
    pts += [(float(rng.uniform(lat0, lat1)), float(rng.uniform(lon0, lon1))) for _ in range(n_scattered)]
    return pts


# --- methods ----------------------------------------------------------------------------------

def ours(m: np.ndarray) -> list[int]:
    sequence.clear_cache()  # a cached answer would time nothing
    return sequence.sequence_stops(m)


def nn_two_opt(m: np.ndarray) -> list[int]:
    return sequence.nn_two_opt(m, or_opt=False)


def ortools_gls(seconds: float) -> Solver:
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    def solve(m: np.ndarray) -> list[int]:
        n = len(m)
        manager = pywrapcp.RoutingIndexManager(n, 1, 0)
        routing = pywrapcp.RoutingModel(manager)
        transit = routing.RegisterTransitMatrix(np.rint(m).astype(int).tolist())
        routing.SetArcCostEvaluatorOfAllVehicles(transit)
        params = pywrapcp.DefaultRoutingSearchParameters()
        params.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
        params.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
        params.time_limit.FromMilliseconds(int(seconds * 1000))
        sol = routing.SolveWithParameters(params)
        order, idx = [], routing.Start(0)
        while not routing.IsEnd(idx):
            order.append(manager.IndexToNode(idx))
            idx = sol.Value(routing.NextVar(idx))
        return order

    return solve


def vroom_x5(m: np.ndarray) -> list[int]:
    import vroom

    n = len(m)
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=np.rint(m).astype(np.uint32))
    problem.add_vehicle(vroom.Vehicle(0, start=0, end=0))
    problem.add_job([vroom.Job(i, location=i) for i in range(1, n)])
    sol = problem.solve(exploration_level=5, nb_threads=2, timeout=datetime.timedelta(seconds=10))
    steps = sol.routes
    jobs = [int(v) for v, t in zip(steps["location_index"], steps["type"], strict=True) if t == "job"]
    return [0, *jobs]


def pyvrp_ils(seconds: float) -> Solver:
    from pyvrp import Client, Depot, ProblemData, VehicleType, solve
    from pyvrp.stop import MaxRuntime

    def run(m: np.ndarray) -> list[int]:
        n = len(m)
        dist = np.rint(m).astype(np.int64)
        try:
            from pyvrp import Location
            locations = [Location(0, 0) for _ in range(n)]
        except ImportError:  # before PyVRP 0.12 clients and depots carried their own coordinates
            locations = None
        if locations is not None:
            data = ProblemData(locations=locations, clients=[Client(location=i) for i in range(1, n)],
                               depots=[Depot(location=0)], vehicle_types=[VehicleType(1)],
                               distance_matrices=[dist], duration_matrices=[np.zeros_like(dist)])
        else:  # pragma: no cover
            data = ProblemData(clients=[Client(x=0, y=0) for _ in range(1, n)], depots=[Depot(x=0, y=0)],
                               vehicle_types=[VehicleType(1)], distance_matrices=[dist],
                               duration_matrices=[np.zeros_like(dist)])
        res = solve(data, stop=MaxRuntime(seconds), seed=0, display=False)
        route = res.best.routes()[0]
        return [0, *(int(a.idx) + 1 for a in route if a.is_client())]

    return run


def fast_tsp_raw(seconds: float) -> Solver:
    import fast_tsp

    def run(m: np.ndarray) -> list[int]:
        ints = np.rint(m * (65_535 / m.max())).astype(np.int64)
        tour = fast_tsp.find_tour(ints, duration_seconds=seconds)
        i = tour.index(0)
        return tour[i:] + tour[:i]

    return run


def methods(quick: bool) -> list[tuple[str, Solver | None, int]]:
    """(column, solver or None when not installed, largest n it runs at)."""
    out: list[tuple[str, Solver | None, int]] = [("ours (default budget)", ours, 10**9),
                                                 ("NN + 2-opt", nn_two_opt, 10**9)]
    try:
        import ortools  # noqa: F401
        out.append(("OR-Tools GLS 1 s", ortools_gls(1.0), 10**9))
        if not quick:
            out.append(("OR-Tools GLS 5 s", ortools_gls(5.0), 10**9))
    except ImportError:
        out.append(("OR-Tools", None, 0))
    try:
        import vroom  # noqa: F401
        out.append(("VROOM x5 (≤10 s)", vroom_x5, VROOM_MAX_N if not quick else 200))
    except ImportError:
        out.append(("VROOM", None, 0))
    try:
        import pyvrp  # noqa: F401
        out.append(("PyVRP 1 s", pyvrp_ils(1.0), 10**9))
    except ImportError:
        out.append(("PyVRP", None, 0))
    try:
        import fast_tsp  # noqa: F401
        out.append(("fast-tsp alone 1 s", fast_tsp_raw(1.0), 10**9))
    except ImportError:
        out.append(("fast-tsp", None, 0))
    return out


def run_one(solver: Solver, m: np.ndarray) -> tuple[float, float]:
    """(tour length on the float matrix, wall seconds); checks the answer is a closed run from 0."""
    t0 = time.perf_counter()
    order = solver(m)
    dt = time.perf_counter() - t0
    if sorted(order) != list(range(len(m))) or order[0] != 0:
        raise RuntimeError("not a permutation starting at the post office")
    return sequence.tour_length(m, order), dt


# --- tables -----------------------------------------------------------------------------------

def sequencing_table(sizes: list[int], seeds: int, quick: bool, seeds_1000: int) -> str:
    ms = methods(quick)
    names = [name for name, _, _ in ms]
    lines = ["| stops | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for n in sizes:
        n_seeds = min(seeds, seeds_1000) if n >= 1000 else seeds
        gaps: dict[str, list[float]] = {name: [] for name in names}
        times: dict[str, list[float]] = {name: [] for name in names}
        for seed in range(n_seeds):
            m = haversine_matrix(clustered_points(n, seed))
            lengths: dict[str, float] = {}
            for name, solver, max_n in ms:
                if solver is None or n > max_n:
                    continue
                log(f"n={n} seed={seed} {name}")
                lengths[name], dt = run_one(solver, m)
                times[name].append(dt)
            best = min(lengths.values())
            for name, length in lengths.items():
                gaps[name].append(100.0 * (length / best - 1.0))
        cells = []
        for name, solver, _ in ms:
            if solver is None:
                cells.append("not installed")
            elif not gaps[name]:
                cells.append("not run (minutes)")
            else:
                g, t = statistics.median(gaps[name]), statistics.median(times[name])
                cells.append(f"{'best' if g < 0.005 else f'+{g:.2f} %'}, {t:.2f} s")
        label = f"{n}" + (f" ({n_seeds} seed{'s' if n_seeds > 1 else ''})" if n_seeds != seeds else "")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def tsplib_table(quick: bool) -> str:
    ms = [(name, s, mx) for name, s, mx in methods(quick) if s is not None]
    lines = ["| instance | " + " | ".join(name for name, _, _ in ms) + " |", "|---" * (len(ms) + 1) + "|"]
    for inst_name, published in TSPLIB.items():
        inst = tsplib.load(TSPLIB_DIR / f"{inst_name}.tsp")
        if tsplib.optimum(inst) != published:
            raise RuntimeError(f"{inst_name}: GEO metric gives {tsplib.optimum(inst)}, published {published}")
        m = np.asarray(inst.matrix, dtype=float)
        cells = []
        for name, solver, _ in ms:
            log(f"{inst_name} {name}")
            length, dt = run_one(solver, m)
            gap = 100.0 * (length / published - 1.0)
            cells.append(f"{'0' if gap < 0.005 else f'+{gap:.2f} %'}, {dt:.2f} s")
        lines.append(f"| {inst_name} (opt {published}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# --- assignment throughput ----------------------------------------------------------------------

def assignment_section() -> str:
    """The assignment benchmark lives in scripts/bench/assignment.py (its own engineer's file)."""
    path = HERE / "assignment.py"
    spec = importlib.util.spec_from_file_location("bench_assignment", path)
    if not path.exists() or spec is None or spec.loader is None:
        return "assignment benchmark: scripts/bench/assignment.py missing"
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        run_assignment_bench = module.run_assignment_bench
    except (ImportError, AttributeError) as exc:
        return f"assignment benchmark: scripts/bench/assignment.py missing or unusable ({exc})"
    result = run_assignment_bench()
    return result if isinstance(result, str) else str(result)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, up to 200 stops, no OR-Tools 5 s")
    ap.add_argument("--sizes", help="comma-separated stop counts (default 25,50,100,200,500,1000)")
    ap.add_argument("--seeds", type=int, help="seeds per size (default 3, 1 with --quick)")
    ap.add_argument("--seeds-1000", type=int, default=3, help="seeds at 1,000 stops and more (default 3)")
    ap.add_argument("--skip-assignment", action="store_true")
    args = ap.parse_args(argv)
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [25, 50, 100, 200] if args.quick else [25, 50, 100, 200, 500, 1000])
    seeds = args.seeds or (1 if args.quick else 3)

    print(f"# routes benchmark ({platform.node() or 'this machine'}, {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')})\n")
    print("## Assignment throughput\n")
    if args.skip_assignment:
        print("skipped (--skip-assignment)\n")
    else:
        print(assignment_section() + "\n")
    print("## Stop sequencing: clustered runs, haversine metres, closed run from the post office\n")
    print(f"+x % over the best of the row, then wall time; medians over {seeds} seed(s).\n")
    print(sequencing_table(sizes, seeds, args.quick, args.seeds_1000) + "\n")
    print("## Stop sequencing: TSPLIB GEO instances, gap to the proven optimum\n")
    print(tsplib_table(args.quick))
    return 0


if __name__ == "__main__":
    sys.exit(main())
