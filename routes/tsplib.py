"""A small reader for TSPLIB95 instances with latitude/longitude coordinates (EDGE_WEIGHT_TYPE GEO).

Published instances with proven optima are how a sequencer is scored exactly: gap = length / optimum − 1.
Only what those instances need is read: NODE_COORD_SECTION with the GEO metric, and TOUR_SECTION of
``.opt.tour`` files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from routes.errors import RoutesError

_PI = 3.141592  # TSPLIB95 fixes pi to these digits; using math.pi changes some distances by 1
_RRR = 6378.388  # the TSPLIB95 "idealised sphere" radius, km


@dataclass(frozen=True)
class Instance:
    """A TSPLIB instance: its name, the GEO distance matrix (0-based nodes) and an optimal tour if known."""

    name: str
    matrix: list[list[int]]
    optimal_tour: list[int] | None


def _geo_radians(x: float) -> float:
    # DDD.MM: whole degrees, then minutes written after the point (12.30 is 12° 30')
    deg = int(x)
    minutes = x - deg
    return _PI * (deg + 5.0 * minutes / 3.0) / 180.0


def geo_matrix(coords: list[tuple[float, float]]) -> list[list[int]]:
    """The TSPLIB95 GEO distance matrix (integer km) of (latitude, longitude) pairs in DDD.MM form."""
    rad = [(_geo_radians(lat), _geo_radians(lon)) for lat, lon in coords]
    n = len(rad)
    out = [[0] * n for _ in range(n)]
    for i in range(n):
        lat_i, lon_i = rad[i]
        for j in range(i + 1, n):
            lat_j, lon_j = rad[j]
            q1 = math.cos(lon_i - lon_j)
            q2 = math.cos(lat_i - lat_j)
            q3 = math.cos(lat_i + lat_j)
            arg = 0.5 * ((1.0 + q1) * q2 - (1.0 - q1) * q3)
            d = int(_RRR * math.acos(max(-1.0, min(1.0, arg))) + 1.0)
            out[i][j] = out[j][i] = d
    return out


def _sections(path: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Header fields (KEY: value) and the data lines of each *_SECTION of a TSPLIB file."""
    header: dict[str, str] = {}
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in path.read_text(encoding="ascii", errors="replace").splitlines():
        line = raw.strip()
        if not line:
            continue
        if line == "EOF":
            break
        if line.endswith("_SECTION"):
            current = sections.setdefault(line, [])
            continue
        if ":" in line and not line[0].isdigit() and not line[0] == "-":
            key, _, value = line.partition(":")
            header[key.strip().upper()] = value.strip()
            current = None
            continue
        if current is not None:
            current.append(line)
    return header, sections


def read_tour(path: str | Path) -> list[int]:
    """The 0-based node order of a TSPLIB ``.tour`` / ``.opt.tour`` file."""
    _, sections = _sections(Path(path))
    tour: list[int] = []
    for line in sections.get("TOUR_SECTION", []):
        for tok in line.split():
            node = int(tok)
            if node == -1:
                return tour
            tour.append(node - 1)
    return tour


def load(path: str | Path) -> Instance:
    """Read ``NAME.tsp`` (GEO only) and, when it sits beside it, ``NAME.opt.tour``."""
    path = Path(path)
    header, sections = _sections(path)
    kind = header.get("EDGE_WEIGHT_TYPE", "")
    if kind != "GEO":
        raise RoutesError(f"{path.name}: EDGE_WEIGHT_TYPE {kind or '(none)'} is not supported, only GEO")
    coords: dict[int, tuple[float, float]] = {}
    for line in sections.get("NODE_COORD_SECTION", []):
        num, lat, lon = line.split()[:3]
        coords[int(num)] = (float(lat), float(lon))
    dim = int(header.get("DIMENSION", len(coords)))
    if sorted(coords) != list(range(1, dim + 1)):
        raise RoutesError(f"{path.name}: expected nodes 1..{dim} in NODE_COORD_SECTION")
    matrix = geo_matrix([coords[i] for i in range(1, dim + 1)])
    tour_path = path.with_name(path.name.removesuffix(".tsp") + ".opt.tour")
    tour = read_tour(tour_path) if tour_path.exists() else None
    if tour is not None and sorted(tour) != list(range(dim)):
        raise RoutesError(f"{tour_path.name}: not a permutation of the {dim} nodes")
    name = header.get("NAME", path.stem)
    return Instance(name=name, matrix=matrix, optimal_tour=tour)


def tour_cost(matrix: list[list[int]], tour: list[int]) -> int:
    """Length of the closed tour ``tour`` on ``matrix``."""
    return sum(matrix[a][b] for a, b in zip(tour, tour[1:] + tour[:1], strict=True))


def optimum(instance: Instance) -> int:
    """Length of the instance's optimal tour (from its ``.opt.tour``) under its own metric."""
    if instance.optimal_tour is None:
        raise RoutesError(f"{instance.name}: no optimal tour known")
    return tour_cost(instance.matrix, instance.optimal_tour)
