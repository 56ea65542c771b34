"""Benchmark: distance/time matrices from the road graph (Valhalla in-process) next to straight lines.

Builds the graph of a synthetic grid town written by scripts/make_test_roads.py (default 60 × 60
streets about 100 m apart, 6 km × 6 km, a river crossed by one bridge, a one-way street: one post
office's area) and of the committed test town, then times matrices of random points (seeded; each
point a few metres off a street, so all snap and all are distinct) through
``delivery_service.roads.matrix``, the service's entry point, and the straight-line fallback of the
same points in the same run. Target: 200 stops in under 1 s.

    .venv/bin/python scripts/bench/roads.py                   # 50, 100, 200 stops, 3 repeats
    .venv/bin/python scripts/bench/roads.py --sizes 200,500 --grid 80
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import make_test_roads as town  # noqa: E402
from flask import Flask  # noqa: E402

from delivery_service import roads  # noqa: E402
from delivery_service.roads.engine import build_graph, engine_version, straight_line  # noqa: E402

T = TypeVar("T")


def random_points(n: int, cols: int, rows: int, seed: int) -> list[tuple[float, float]]:
    """``n`` distinct points along the town's streets, up to 20 m off them."""
    rng = np.random.default_rng(seed)
    points = []
    for _ in range(n):
        if rng.random() < 0.5:  # on a row street, anywhere along it
            row, col = float(rng.integers(0, rows)), float(rng.uniform(0, cols - 1))
        else:  # on a column street, within its half of the town
            half = rows // 2
            south = rng.random() < 0.5
            row = float(rng.uniform(0, half - 1) if south else rng.uniform(half, rows - 1))
            col = float(rng.integers(0, cols))
        lat, lon = town.point(row, col, rows)
        points.append((lat + rng.uniform(-1.8e-4, 1.8e-4), lon + rng.uniform(-1.8e-4, 1.8e-4)))
    return points


def timed(fn: Callable[[], T], repeats: int) -> tuple[float, float, T]:
    """Median wall-clock and CPU seconds of ``repeats`` calls (CPU time: what an idle core would take,
    on a machine whose other work slows the wall clock), and the last result."""
    wall: list[float] = []
    cpu: list[float] = []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu), result  # repeats >= 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="50,100,200")
    parser.add_argument("--grid", type=int, default=60, help="streets each way of the synthetic town")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    load = os.getloadavg()
    print(f"{engine_version()}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    rows: list[tuple[str, int, str, float, float, float, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        grid = args.grid + args.grid % 2
        cases = [(f"grid {grid}×{grid}", grid, grid, town.write(work / "grid", grid, grid, "grid")[1]),
                 ("test town 10×8", 10, 8, ROOT / "tests" / "data" / "roads" / "town.osm.pbf")]
        for label, cols, nrows, pbf in cases:
            out = work / label.split()[0]
            start = time.perf_counter()
            info = build_graph(pbf, out)
            built = time.perf_counter() - start
            print(f"{label}: {info.roads} roads, graph built in {built:.2f} s")
            app = Flask(__name__)
            app.config.update(ROADS_DIR=str(out), ROADS_DETOUR_FACTOR=1.3, ROADS_SNAP_M=500.0)
            with app.app_context():
                roads.matrix([town.point(0, 0, nrows), town.point(0, 1, nrows)])  # load the graph once
                for n in sizes if label.startswith("grid") else [max(sizes)]:
                    points = random_points(n, cols, nrows, args.seed)
                    road_s, road_cpu, found = timed(partial(roads.matrix, points), args.repeats)
                    line_s, line_cpu, _ = timed(partial(straight_line, points, 1.3, 25.0), args.repeats)
                    assert found.source == roads.ROAD, "every point should snap"
                    dist = found.distances
                    pairs = ~np.eye(n, dtype=bool)
                    off = dist[pairs] / straight_line(points, 1.0, 25.0)[0][pairs]
                    # pairs whose two directions differ by more than 5 % (one-way street, snapping)
                    asym = float(np.mean(np.abs(dist - dist.T) > 0.05 * np.maximum(dist, dist.T)))
                    rows.append((label, n, "road", road_s, road_cpu, float(np.median(off)), asym,
                                 "yes" if road_s < 1 else "no"))
                    rows.append((label, n, "straight line", line_s, line_cpu, 1.3, 0.0,
                                 "yes" if line_s < 1 else "no"))
    print()
    print(f"| graph | stops | matrix | seconds (median of {args.repeats}) | CPU seconds | road / straight "
          "(median) | pairs differing > 5 % each way | < 1 s |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for label, n, kind, seconds, cpu, ratio, asym, ok in rows:
        print(f"| {label} | {n} | {kind} | {seconds:.3f} | {cpu:.3f} | {ratio:.2f} | {asym:.1%} | {ok} |")
    load = os.getloadavg()
    print(f"\nload average at end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
