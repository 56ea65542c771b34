"""Road distances and times for runs and day plans: the road graph built from an OpenStreetMap extract
(``delivery-service roads build FILE.osm.pbf``) where it covers the points, else straight lines times
a detour factor. How to get an extract and what the fallback means: docs/routing.md.

``matrix(points)`` is the one entry point: every point within ``ROADS_SNAP_M`` of a road of the graph
gives road distances (one-way streets, bridges and all) and the engine's travel times; otherwise the
haversine matrix times ``ROADS_DETOUR_FACTOR``, at ``PLAN_SPEED_KMH``. The answer says which it is.
The graph is loaded once per process and reloaded when a new build replaces it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
from flask import current_app

from delivery_service.roads.engine import (
    GRAPH,
    META,
    Graph,
    GraphInfo,
    Point,
    RoadsError,
    build_graph,
    read_info,
    straight_line,
)

__all__ = ["ROAD", "STRAIGHT_LINE", "RoadMatrix", "RoadsError", "build", "covers", "loaded_graph", "matrix",
           "roads_dir", "status"]

log = logging.getLogger(__name__)

ROAD = "road"
STRAIGHT_LINE = "straight_line"


class RoadMatrix(NamedTuple):
    distances: np.ndarray  # metres, n × n, maybe asymmetric (one-way streets)
    durations: np.ndarray  # seconds
    source: str  # ROAD or STRAIGHT_LINE


_graphs: dict[Path, tuple[tuple[int, int], Graph]] = {}
_graphs_lock = threading.Lock()
_covers: OrderedDict[tuple, bool] = OrderedDict()  # (graph stamp, snap, points) -> answer
_COVERS_SIZE = 512


def roads_dir() -> Path:
    return Path(current_app.config["ROADS_DIR"])


def _stamp(directory: Path) -> tuple[int, int] | None:
    try:
        st = (directory / META).stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_ino


def loaded_graph() -> Graph | None:
    """This process's graph, loaded on first use and again after a new build; None without one."""
    directory = roads_dir() / GRAPH
    stamp = _stamp(directory)
    if stamp is None:
        return None
    with _graphs_lock:
        hit = _graphs.get(directory)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        try:
            graph = Graph(directory)
        except (RoadsError, RuntimeError) as exc:  # ValhallaError is a RuntimeError
            log.warning("road graph in %s not loaded: %s", directory, exc)
            return None
        _graphs[directory] = (stamp, graph)
        log.info("road graph loaded: %s built %s", graph.info.source, graph.info.built_at)
        return graph


def _settings(speed_kmh: float | None) -> tuple[float, float, float]:
    from delivery_service.routing import plan

    factor = float(current_app.config["ROADS_DETOUR_FACTOR"])
    snap = float(current_app.config["ROADS_SNAP_M"])
    speed = float(speed_kmh if speed_kmh is not None else plan.setting("PLAN_SPEED_KMH"))
    return factor, snap, speed


def matrix(points: Sequence[Point], *, speed_kmh: float | None = None) -> RoadMatrix:
    """Distances (m) and times (s) between all ``points`` (lat, lon), and where they come from."""
    factor, snap, speed = _settings(speed_kmh)
    graph = loaded_graph()
    if graph is not None and len(points) > 0:
        found = graph.matrix(points, snap)
        if found is not None:
            distances, durations = found
            gaps = np.isnan(distances) | np.isnan(durations)
            if gaps.any():  # no road leads from one to the other (a road cut off in the extract)
                line_m, line_s = straight_line(points, factor, speed)
                distances = np.where(gaps, line_m, distances)
                durations = np.where(gaps, line_s, durations)
                log.info("road matrix: %d of %d pairs without a road, straight line used for them",
                         int(gaps.sum()), gaps.size)
            return RoadMatrix(distances, durations, ROAD)
    distances, durations = straight_line(points, factor, speed)
    return RoadMatrix(distances, durations, STRAIGHT_LINE)


def covers(points: Sequence[Point]) -> bool:
    """Whether the loaded graph gives road distances between all ``points`` (what ``matrix`` would
    use), remembered per graph: the run page asks it of a stored run's stops."""
    graph = loaded_graph()
    if graph is None or not points:
        return False
    snap = float(current_app.config["ROADS_SNAP_M"])
    key = (_stamp(graph.dir), snap, tuple((round(lat, 6), round(lon, 6)) for lat, lon in points))
    with _graphs_lock:
        if key in _covers:
            _covers.move_to_end(key)
            return _covers[key]
    answer = graph.snaps(points, snap)
    with _graphs_lock:
        _covers[key] = answer
        while len(_covers) > _COVERS_SIZE:
            _covers.popitem(last=False)
    return answer


def build(pbf: Path) -> GraphInfo:
    """Build the graph of an extract into ROADS_DIR; every process switches to it at its next matrix."""
    return build_graph(pbf, roads_dir())


def status() -> dict[str, object]:
    """What graph there is and whether this process could load it."""
    directory = roads_dir() / GRAPH
    info = read_info(directory)
    return {"dir": str(directory), "info": info, "loaded": info is not None and loaded_graph() is not None}
