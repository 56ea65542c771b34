"""The road graph and its matrices, on Valhalla (``pyvalhalla``: MIT, in-process, its tile builder
shipped in the wheel). Framework-free: no Flask, no database; ``delivery_service.roads`` feeds it the
settings and caches one loaded graph per process.

A graph directory holds ``tiles/`` (Valhalla's routing tiles), ``valhalla.json`` (the engine's
configuration, pointing at those tiles) and ``graph.json`` (what it was built from, when, its bounds).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from routes.distance import haversine_matrix

Point = tuple[float, float]  # latitude, longitude in degrees
# couriers ride motorbikes: Valhalla's two-wheeler profile (it keeps to one-way streets)
COSTING = "motor_scooter"
GRAPH = "graph"  # the live graph's directory under ROADS_DIR
META = "graph.json"
CONFIG = "valhalla.json"
MAX_LOCATIONS = 2000  # a matrix of up to 2000 × 2000 (a day's stops of a whole office fit)


class RoadsError(RuntimeError):
    """The graph cannot be built or read."""


@dataclass(frozen=True)
class GraphInfo:
    source: str  # the extract's file name
    source_bytes: int
    built_at: str  # ISO 8601, UTC
    bounds: tuple[float, float, float, float]  # min lat, min lon, max lat, max lon of the extract
    roads: int  # OSM ways tagged highway=*
    engine: str  # "valhalla 3.9.1"
    build_s: float

    def covers(self, point: Point, margin_m: float = 0.0) -> bool:
        """Whether ``point`` lies within the bounds grown by ``margin_m``."""
        lat, lon = point
        dlat = margin_m / 111_320.0
        dlon = margin_m / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))
        south, west, north, east = self.bounds
        return south - dlat <= lat <= north + dlat and west - dlon <= lon <= east + dlon


def _valhalla() -> Any:
    try:
        import valhalla
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise RoadsError(f"the routing engine is not installed (pip install pyvalhalla): {exc}") from None
    return valhalla


def engine_version() -> str:
    return f"valhalla {_valhalla().__version__}"


def valhalla_config(tile_dir: Path) -> dict[str, Any]:
    """Valhalla's defaults for a graph in ``tile_dir``, without the databases we do not build (admin
    areas, time zones, elevation, transit) and with matrix limits fit for a day's stops."""
    # a deep copy: get_config shares nested dicts with the module's defaults
    config: dict[str, Any] = copy.deepcopy(_valhalla().get_config(tile_extract="", tile_dir=""))
    mjolnir = config["mjolnir"]
    mjolnir["tile_dir"] = str(Path(tile_dir).absolute())
    for key in ("admin", "timezone", "landmarks", "traffic_extract", "transit_dir", "transit_feeds_dir"):
        mjolnir[key] = ""
    mjolnir["data_processing"]["use_admin_db"] = False
    mjolnir["concurrency"] = max(1, min(4, os.cpu_count() or 1))
    config["additional_data"]["elevation"] = ""
    # one Dijkstra per source: on a town's streets about 50 times faster than the bidirectional
    # CostMatrix Valhalla picks by default (200 × 200 stops: about 1 s against 45 s, same answers)
    config["thor"]["source_to_target_algorithm"] = "timedistancematrix"
    limits = config["service_limits"][COSTING]
    limits["max_matrix_location_pairs"] = MAX_LOCATIONS * MAX_LOCATIONS
    limits["max_matrix_distance"] = 500_000.0  # a province is smaller
    config["logging"]["type"] = ""
    return config


def _scan(pbf: Path) -> tuple[tuple[float, float, float, float], int]:
    """The extract's bounds (its header's box, else its nodes') and its number of roads."""
    import osmium

    box = osmium.io.Reader(str(pbf), osmium.osm.osm_entity_bits.NOTHING).header().box()
    roads = 0
    ways = osmium.FileProcessor(str(pbf), osmium.osm.WAY).with_filter(osmium.filter.KeyFilter("highway"))
    for _way in ways:
        roads += 1
    if box.valid():
        return (box.bottom_left.lat, box.bottom_left.lon, box.top_right.lat, box.top_right.lon), roads
    south = west = math.inf
    north = east = -math.inf
    for node in osmium.FileProcessor(str(pbf), osmium.osm.NODE):
        if not isinstance(node, osmium.osm.Node):
            continue
        lat, lon = node.location.lat, node.location.lon
        south, north, west, east = min(south, lat), max(north, lat), min(west, lon), max(east, lon)
    if south == math.inf:
        raise RoadsError(f"{pbf.name} holds no nodes")
    return (south, west, north, east), roads


def build_graph(pbf: Path, roads_dir: Path) -> GraphInfo:
    """Build the road graph of an OpenStreetMap extract (.osm.pbf) into ``roads_dir``/graph.

    Built beside the live graph and swapped in when complete, so a process reading the old one never
    sees half a graph; processes load the new one at their next matrix.
    """
    pbf = Path(pbf)
    if not pbf.is_file():
        raise RoadsError(f"{pbf}: no such file")
    if not pbf.name.endswith(".pbf"):
        raise RoadsError(f"{pbf.name}: an OpenStreetMap extract in PBF (.osm.pbf) is needed; "
                         "convert XML with `osmium cat FILE.osm -o FILE.osm.pbf`")
    started = dt.datetime.now(dt.UTC)
    try:
        bounds, roads = _scan(pbf)
    except RuntimeError as exc:  # osmium's reading errors
        raise RoadsError(f"{pbf.name} cannot be read as OpenStreetMap data: {exc}") from None
    if not roads:
        raise RoadsError(f"{pbf.name} holds no roads (no way tagged highway=*)")
    roads_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{GRAPH}.new-", dir=roads_dir))
    work.chmod(0o755)  # mkdtemp makes it private; the service may run as another user
    live = roads_dir / GRAPH
    try:
        (work / "tiles").mkdir()
        build_config = work / "build.json"
        config = valhalla_config(work / "tiles")
        config["logging"]["type"] = "std_out"  # so that a failure says why
        build_config.write_text(json.dumps(config), encoding="utf-8")
        tool = Path(_valhalla().PYVALHALLA_DIR) / "bin" / "valhalla_build_tiles"
        done = subprocess.run([str(tool), "-c", str(build_config), str(pbf.resolve())], cwd=work,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0 or not any((work / "tiles").rglob("*.gph")):
            tail = ((done.stderr or "") + (done.stdout or "")).strip().splitlines()[-5:]
            raise RoadsError(f"valhalla_build_tiles failed ({done.returncode}): " + " | ".join(tail))
        build_config.unlink()
        info = GraphInfo(source=pbf.name, source_bytes=pbf.stat().st_size,
                         built_at=started.isoformat(timespec="seconds"), bounds=bounds, roads=roads,
                         engine=engine_version(),
                         build_s=round((dt.datetime.now(dt.UTC) - started).total_seconds(), 2))
        (work / CONFIG).write_text(json.dumps(valhalla_config(live / "tiles")), encoding="utf-8")
        (work / META).write_text(json.dumps(asdict(info), indent=1), encoding="utf-8")
        old = roads_dir / f".{GRAPH}.old-{os.getpid()}-{time.monotonic_ns()}"
        if live.exists():
            live.rename(old)
        work.rename(live)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return info


def read_info(graph_dir: Path) -> GraphInfo | None:
    """The graph's description, None when there is no (complete) graph there."""
    try:
        raw = json.loads((graph_dir / META).read_text(encoding="utf-8"))
        raw["bounds"] = tuple(raw["bounds"])
        return GraphInfo(**raw)
    except (OSError, ValueError, TypeError, KeyError):
        return None


class Graph:
    """A loaded road graph: one Valhalla actor, used by one thread at a time."""

    def __init__(self, graph_dir: Path) -> None:
        info = read_info(graph_dir)
        if info is None:
            raise RoadsError(f"no road graph in {graph_dir} (delivery-service roads build FILE.osm.pbf)")
        self.dir = graph_dir
        self.info = info
        self._lock = threading.Lock()
        config = graph_dir / CONFIG
        wanted = valhalla_config(graph_dir / "tiles")
        try:  # the directory may have moved since the build: the tiles' path is absolute
            current = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            current = None
        if current != wanted:
            try:
                config.write_text(json.dumps(wanted), encoding="utf-8")
            except OSError:  # read-only: a passing copy for the engine to read
                handle, name = tempfile.mkstemp(suffix=".json", prefix="valhalla-")
                with os.fdopen(handle, "w") as out:
                    json.dump(wanted, out)
                try:
                    self._actor = _valhalla().Actor(name)
                finally:
                    os.unlink(name)
                return
        self._actor = _valhalla().Actor(str(config))

    def matrix(self, points: Sequence[Point], snap_m: float) -> tuple[np.ndarray, np.ndarray] | None:
        """(metres, seconds) between all points along the roads, n × n, NaN where no road leads; None
        when a point lies more than ``snap_m`` from every road of the graph (or outside it)."""
        n = len(points)
        if n == 0:
            return np.zeros((0, 0)), np.zeros((0, 0))
        if any(not self.info.covers(p, snap_m) for p in points):
            return None
        if n == 1:
            return (np.zeros((1, 1)), np.zeros((1, 1))) if self.snaps(points, snap_m) else None
        locations = _locations(points, snap_m)
        request = {"sources": locations, "targets": locations, "costing": COSTING, "verbose": False,
                   "units": "kilometers"}
        valhalla = _valhalla()
        with self._lock:
            try:
                answer = self._actor.matrix(json.dumps(request))
            except valhalla.ValhallaError:  # a point without a road within snap_m, or out of the tiles
                return None
        table = json.loads(answer)["sources_to_targets"]
        distances = _array(table["distances"], 1000.0)  # km
        durations = _array(table["durations"], 1.0)
        np.fill_diagonal(distances, 0.0)
        np.fill_diagonal(durations, 0.0)
        return distances, durations


    def snaps(self, points: Sequence[Point], snap_m: float) -> bool:
        """Whether every point lies within ``snap_m`` of a road of the graph."""
        if not points or any(not self.info.covers(p, snap_m) for p in points):
            return False
        locations = _locations(points, snap_m)
        request = {"locations": locations, "costing": COSTING, "verbose": False}
        with self._lock:
            try:
                answer = json.loads(self._actor.locate(json.dumps(request)))
            except _valhalla().ValhallaError:
                return False
        return len(answer) == len(points) and all(found.get("edges") for found in answer)


def _locations(points: Sequence[Point], snap_m: float) -> list[dict[str, float]]:
    return [{"lat": float(lat), "lon": float(lon), "search_cutoff": float(snap_m)} for lat, lon in points]


def _array(rows: list[list[float | None]], scale: float) -> np.ndarray:
    """Valhalla's table as floats, NaN where no road leads (null)."""
    return np.array([[np.nan if v is None else v * scale for v in row] for row in rows], dtype=float)


def straight_line(points: Sequence[Point], factor: float, speed_kmh: float) -> tuple[np.ndarray, np.ndarray]:
    """The fallback: the haversine matrix times ``factor`` (metres) and that at ``speed_kmh`` (seconds)."""
    distances = haversine_matrix(points) * factor
    return distances, distances / (speed_kmh / 3.6)
