"""Distances between stops: a vectorised haversine matrix for sequencing, geodesic for people."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from geopy.distance import geodesic

from routes.errors import InvalidMatrix, RoutesError

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius: the sphere closest to WGS84 on average


def _coords(points: Sequence[tuple[float, float]]) -> np.ndarray:
    try:
        arr = np.asarray(points, dtype=float)
    except (TypeError, ValueError) as exc:
        raise RoutesError(f"points must be (latitude, longitude) pairs of numbers: {exc}") from None
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise RoutesError(f"points must be (latitude, longitude) pairs, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise RoutesError("points must be finite numbers")
    if (np.abs(arr[:, 0]) > 90).any() or (np.abs(arr[:, 1]) > 180).any():
        raise RoutesError("latitude must be within ±90° and longitude within ±180°")
    return arr


def haversine_matrix(points: Sequence[tuple[float, float]]) -> np.ndarray:
    """Great-circle distances in metres between all (lat, lon) points in degrees, as an n × n array."""
    arr = _coords(points)
    lat = np.radians(arr[:, 0])
    lon = np.radians(arr[:, 1])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    a = np.sin(dlat / 2) ** 2 + np.cos(lat)[:, None] * np.cos(lat)[None, :] * np.sin(dlon / 2) ** 2
    # clip: rounding can push a hair above 1 for antipodal points
    out = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    np.fill_diagonal(out, 0.0)
    return out


def geodesic_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """WGS84 geodesic distance in metres between two (lat, lon) points: for a distance shown to a person."""
    _coords([a, b])
    return float(geodesic(a, b).meters)


def leg_distances(matrix: Sequence[Sequence[float]] | np.ndarray, order: Sequence[int],
                  return_to_start: bool = True) -> list[float]:
    """The length of each leg of ``order`` on ``matrix``; with ``return_to_start`` the last leg goes home."""
    m = np.asarray(matrix, dtype=float)
    idx = list(order)
    n = m.shape[0] if m.ndim == 2 else 0
    if any(not 0 <= i < n for i in idx):
        raise InvalidMatrix(f"order has a stop outside 0..{n - 1}")
    legs = [float(m[a, b]) for a, b in zip(idx, idx[1:], strict=False)]
    if return_to_start and len(idx) > 1:
        legs.append(float(m[idx[-1], idx[0]]))
    return legs
