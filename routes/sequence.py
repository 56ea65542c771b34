"""Stop sequencing for one courier's run: the order of the stops that makes the run short.

The search is fast-tsp's (MIT; Or-opt and Lin-Kernighan style local search with perturbation, in
Rust), chosen by measurement (docs/sequencing.md): on the published GEO instances it reaches the
proven optimum of gr96 and gr202 in 0.05 s, where OR-Tools' guided local search is still 1–6 % above
it after 5 s. Around it this module adds what fast-tsp does not do:

- any numbers: fast-tsp takes only symmetric integer matrices with entries up to 65,535, so the matrix
  is scaled to that range for the search and every decision after it is taken on the caller's floats;
- open runs (``return_to_start=False``): a dummy node at distance 0 from the start and a constant
  C > every entry from all other stops; an optimal closed tour then always passes start–dummy, and
  cutting it there gives an optimal open run from the start (see ``_open_matrix``);
- asymmetric matrices (road distances with one-way streets): fast-tsp searches the symmetrised matrix,
  then a local search on the true costs (2-opt with exact reversal costs, Or-opt in both orientations)
  polishes its tour, and a nearest-neighbour tour polished the same way is the floor it must beat;
- exact answers for tiny runs (Held–Karp on the floats) and a deterministic result: fast-tsp seeds
  its random generator from the clock and has no seed parameter, so results are memoised per process
  and put in one canonical form (see ``sequence_stops``).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import fast_tsp
import numpy as np

from routes.errors import InvalidMatrix, RoutesError

EXACT_MAX_N = 10  # Held–Karp on floats up to here: 2^9 · 9 · 9 steps, a few milliseconds
_FAST_TSP_MAX = 65_535  # fast-tsp stores distances as uint16
_NEIGHBOURS = 12  # candidate list length for the polish: the usual 8–16 of 2-opt / Or-opt codes
_CACHE_SIZE = 64

_cache: OrderedDict[tuple[Any, ...], list[int]] = OrderedDict()
_cache_lock = threading.Lock()


# --- validation -------------------------------------------------------------------------------

def _as_matrix(matrix: Any) -> np.ndarray:
    """The matrix as a square float array; InvalidMatrix with the reason otherwise."""
    if isinstance(matrix, np.ndarray):
        arr = matrix
    else:
        try:
            arr = np.array(matrix)
        except ValueError:  # numpy refuses rows of different lengths ("inhomogeneous shape")
            raise InvalidMatrix("the distance matrix is ragged: its rows have different lengths") from None
        except TypeError as exc:
            raise InvalidMatrix(f"the distance matrix must be rows of numbers ({exc})") from None
    if arr.size == 0 and arr.ndim in (1, 2) and arr.shape[0] == 0:
        return np.zeros((0, 0))
    if arr.dtype.kind == "O":
        raise InvalidMatrix("the distance matrix is ragged or holds something other than numbers")
    if arr.dtype.kind not in "iuf":
        what = {"U": "text", "S": "bytes", "b": "booleans"}.get(arr.dtype.kind, arr.dtype.name)
        raise InvalidMatrix(f"the distance matrix must hold numbers, not {what}")
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise InvalidMatrix(f"the distance matrix must be square (n × n), got shape {arr.shape}")
    arr = arr.astype(float, copy=False)
    if not np.isfinite(arr).all():
        raise InvalidMatrix("the distance matrix has NaN or infinite entries")
    if (arr < 0).any():
        raise InvalidMatrix("the distance matrix has negative entries")
    return arr


def _check_start(start: Any, n: int) -> int:
    if isinstance(start, bool) or not isinstance(start, int | np.integer):
        raise InvalidMatrix(f"start must be a stop index (an integer), not {start!r}")
    if not 0 <= int(start) < n:
        raise InvalidMatrix(f"start {start} is out of range for {n} stops (0..{n - 1})")
    return int(start)


def _check_time_limit(time_limit_s: Any) -> float | None:
    if time_limit_s is None:
        return None
    if isinstance(time_limit_s, bool) or not isinstance(time_limit_s, int | float):
        raise RoutesError(f"time_limit_s must be a number of seconds, not {time_limit_s!r}")
    if not math.isfinite(time_limit_s) or time_limit_s <= 0:
        raise RoutesError(f"time_limit_s must be a positive number of seconds, not {time_limit_s!r}")
    return float(time_limit_s)


# --- lengths ----------------------------------------------------------------------------------

def _length(m: np.ndarray, order: Sequence[int], closed: bool) -> float:
    idx = np.asarray(order, dtype=np.intp)
    if idx.size < 2:
        return 0.0
    total = math.fsum(m[idx[:-1], idx[1:]].tolist())
    return total + (float(m[idx[-1], idx[0]]) if closed else 0.0)


def tour_length(matrix: Any, order: Sequence[int], return_to_start: bool = True) -> float:
    """Length of visiting ``order`` on ``matrix``; with ``return_to_start`` the leg back home counts."""
    m = _as_matrix(matrix)
    n = m.shape[0]
    for i in order:
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < n:
            raise InvalidMatrix(f"order has {i!r}, not a stop index in 0..{n - 1}")
    return _length(m, list(order), return_to_start)


def default_time_limit(n: int) -> float:
    """The search budget for ``n`` stops: ≤ 0.6 s up to 200 stops (1 s target), 6.6 s at 1,000 (10 s)."""
    if n <= 200:
        return max(0.05, 0.003 * n)
    return 0.6 + 0.0075 * (n - 200)


# --- exact solution of tiny runs --------------------------------------------------------------

def _held_karp(m: np.ndarray, start: int, closed: bool) -> list[int]:
    """Optimal order from ``start`` by dynamic programming over subsets (exact on floats)."""
    n = m.shape[0]
    others = [i for i in range(n) if i != start]
    k = len(others)
    c = m.tolist()
    # best[mask][j]: shortest path from start through the set mask, ending at others[j]
    best: list[list[float]] = [[math.inf] * k for _ in range(1 << k)]
    parent: list[list[int]] = [[-1] * k for _ in range(1 << k)]
    for j, node in enumerate(others):
        best[1 << j][j] = c[start][node]
    for mask in range(1, 1 << k):
        row = best[mask]
        for j in range(k):
            cur = row[j]
            if cur == math.inf or not mask >> j & 1:
                continue
            cj = c[others[j]]
            for nxt in range(k):
                if mask >> nxt & 1:
                    continue
                nm = mask | 1 << nxt
                cand = cur + cj[others[nxt]]
                if cand < best[nm][nxt]:
                    best[nm][nxt] = cand
                    parent[nm][nxt] = j
    full = (1 << k) - 1
    ends = [best[full][j] + (c[others[j]][start] if closed else 0.0) for j in range(k)]
    j = min(range(k), key=ends.__getitem__)
    rev: list[int] = []
    mask = full
    while j != -1:
        rev.append(others[j])
        j, mask = parent[mask][j], mask & ~(1 << j)
    return [start, *reversed(rev)]


# --- fast-tsp on scaled integers --------------------------------------------------------------

def _open_matrix(s: np.ndarray, start: int) -> np.ndarray:
    """``s`` plus a dummy node: 0 to ``start``, C > max(s) to every other stop.

    Why it is exact: a closed tour with the dummy between two other stops j, k costs 2C + P, where P is
    a path j…k through all stops; cutting that path at the start and joining its ends with one edge
    (≤ max(s) < C) gives a path from the start of length ≤ P + C, so the tour start–dummy–… of cost
    C + that path is cheaper. Hence an optimal tour keeps start–dummy, and the rest is an optimal open
    run from the start (tests/test_routes_sequence.py checks this against brute force).
    """
    n = s.shape[0]
    big = float(s.max()) + 1.0
    out = np.full((n + 1, n + 1), big)
    out[:n, :n] = s
    out[n, n] = 0.0
    out[n, start] = out[start, n] = 0.0
    return out


def _fast_tsp_tour(s: np.ndarray, duration: float) -> list[int]:
    """fast-tsp's closed tour of the symmetric float matrix ``s`` scaled into its uint16 range."""
    top = float(s.max())
    if top <= 0:
        return list(range(s.shape[0]))
    # the largest entry maps to 65,535; the float polish afterwards undoes the rounding's small damage
    ints = np.rint(s * (_FAST_TSP_MAX / top)).astype(np.int64)
    np.fill_diagonal(ints, 0)
    return [int(v) for v in fast_tsp.find_tour(ints, duration_seconds=max(duration, 0.01))]


def _cycle_to_order(tour: list[int], start: int, n: int, closed: bool) -> list[int]:
    """A fast-tsp cycle (maybe with the dummy node ``n``) as an order of the ``n`` stops from ``start``."""
    i = tour.index(start)
    cyc = tour[i:] + tour[:i]
    if closed:
        return cyc
    # the dummy sits next to the start: walk away from it
    if cyc[1] == n:
        cyc = [cyc[0], *reversed(cyc[1:])]
    return [v for v in cyc if v != n]


# --- local search on the true costs -----------------------------------------------------------

def _augmented(m: np.ndarray, start: int, closed: bool) -> np.ndarray:
    """Costs of a closed cycle whose best tour is the best run: for an open run, a dummy end node."""
    if closed:
        return m
    n = m.shape[0]
    # after the dummy only the start may follow; "big" outweighs any whole run so the polish never
    # chooses another successor, and stays finite so that deltas never become inf − inf
    big = (float(m.max()) + 1.0) * (n + 1) * 4
    out = np.full((n + 1, n + 1), big)
    out[:n, :n] = m
    out[:n, n] = 0.0
    out[n, start] = 0.0
    out[n, n] = 0.0
    return out


def _neighbours(c: np.ndarray, k: int) -> np.ndarray:
    """The k nearest other nodes of each node, by the shorter of the two directions."""
    n = c.shape[0]
    k = min(k, n - 1)
    sym = np.minimum(c, c.T).copy()
    np.fill_diagonal(sym, np.inf)
    # stable argsort: ties (duplicate points) ranked by index, so the result is deterministic
    return np.argsort(sym, axis=1, kind="stable")[:, :k]


def _polish(c: np.ndarray, tour: np.ndarray, neigh: np.ndarray, deadline: float,
            or_opt: bool = True) -> np.ndarray:
    """Best-improvement 2-opt and Or-opt on the cycle ``tour`` (position 0 fixed) under costs ``c``.

    Asymmetric costs are handled exactly: a reversed segment is charged its reversed edges (prefix
    sums of forward and backward edge costs), and Or-opt tries segments of 1–3 stops both ways round.
    """
    t = tour.copy()
    n = t.size
    if n < 4:
        return t
    eps = 1e-9 * max(1.0, float(np.abs(c).max()))
    while time.monotonic() < deadline:
        pos = np.empty(n, dtype=np.intp)
        pos[t] = np.arange(n)
        nxt = np.roll(t, -1)
        fw = c[t, nxt]  # fw[k]: edge t[k] → t[k+1] (wrapping)
        bw = c[nxt, t]  # bw[k]: edge t[k+1] → t[k]
        pf = np.concatenate(([0.0], np.cumsum(fw)))
        pb = np.concatenate(([0.0], np.cumsum(bw)))
        best_delta, best_move = -eps, None

        # 2-opt: reverse t[i+1..j] (0 ≤ i, i+1 < j ≤ n-1); new edges t[i]→t[j], t[i+1]→t[j+1]
        x = np.repeat(t, neigh.shape[1])
        y = neigh[t].ravel()
        px, py = pos[x], pos[y]
        ii = np.concatenate((px, px - 1))
        # second form: y = t[j+1]; y at position 0 means the closing edge, j = n - 1
        jj = np.concatenate((py, (py - 1) % n))
        ok = (ii >= 0) & (jj > ii + 1) & (jj <= n - 1)
        ii, jj = ii[ok], jj[ok]
        if ii.size:
            a, b, e, f = t[ii], t[ii + 1], t[jj], t[(jj + 1) % n]
            rev = (pb[jj] - pb[ii + 1]) - (pf[jj] - pf[ii + 1])
            d = c[a, e] + c[b, f] - c[a, b] - c[e, f] + rev
            k = int(np.argmin(d))
            if d[k] < best_delta:
                best_delta, best_move = float(d[k]), ("2opt", int(ii[k]), int(jj[k]), 0, False)

        # Or-opt: move t[i..i+L-1] (i ≥ 1) between t[j] and t[j+1], forwards or reversed
        for seg in (1, 2, 3) if or_opt else ():
            if n - 1 < seg + 2:
                break
            for reverse in (False, True):
                # candidate insertion points next to a neighbour of the segment's first/last stop
                ii_list, jj_list = [], []
                for end_is_first in (True, False):
                    for side in (0, 1):
                        starts = np.arange(1, n - seg + 1)
                        anchor = t[starts] if end_is_first else t[starts + seg - 1]
                        cand = neigh[anchor]
                        jpos = pos[cand] - side
                        ii_list.append(np.repeat(starts, cand.shape[1]))
                        jj_list.append(jpos.ravel())
                ii = np.concatenate(ii_list)
                jj = np.concatenate(jj_list) % n
                last = ii + seg - 1
                ok = (jj < ii - 1) | (jj > last)
                ii, jj = ii[ok], jj[ok]
                if not ii.size:
                    continue
                p, s1, sl, q = t[ii - 1], t[ii], t[ii + seg - 1], t[(ii + seg) % n]
                a, b = t[jj], t[(jj + 1) % n]
                remove = c[p, q] - c[p, s1] - c[sl, q]
                if reverse:
                    inner = (pb[ii + seg - 1] - pb[ii]) - (pf[ii + seg - 1] - pf[ii])
                    insert = c[a, sl] + c[s1, b] - c[a, b] + inner
                else:
                    insert = c[a, s1] + c[sl, b] - c[a, b]
                d = remove + insert
                k = int(np.argmin(d))
                if d[k] < best_delta:
                    best_delta, best_move = float(d[k]), ("or", int(ii[k]), int(jj[k]), seg, reverse)

        if best_move is None:
            break
        kind, i, j, seg, reverse = best_move
        if kind == "2opt":
            t[i + 1:j + 1] = t[i + 1:j + 1][::-1].copy()
        else:
            block = t[i:i + seg].copy()
            if reverse:
                block = block[::-1]
            rest = np.concatenate((t[:i], t[i + seg:]))
            a_node = t[j]
            at = int(np.nonzero(rest == a_node)[0][0]) + 1
            t = np.concatenate((rest[:at], block, rest[at:]))
    return t


def _nearest_neighbour(m: np.ndarray, start: int) -> list[int]:
    n = m.shape[0]
    seen = np.zeros(n, dtype=bool)
    order = [start]
    seen[start] = True
    cur = start
    for _ in range(n - 1):
        row = np.where(seen, np.inf, m[cur])
        cur = int(np.argmin(row))  # first minimum: ties go to the lowest index, deterministically
        seen[cur] = True
        order.append(cur)
    return order


def local_search(m: np.ndarray, order: list[int], closed: bool, deadline: float,
                 or_opt: bool = True, neighbours: int = _NEIGHBOURS) -> list[int]:
    """``order`` (from its first stop) improved by 2-opt and Or-opt on the true, maybe asymmetric, costs."""
    n = m.shape[0]
    start = order[0]
    c = _augmented(m, start, closed)
    cyc = np.asarray(order if closed else [*order, n], dtype=np.intp)
    out = _polish(c, cyc, _neighbours(c, neighbours), deadline, or_opt)
    res = [int(v) for v in out]
    i = res.index(start)
    res = res[i:] + res[:i]
    if not closed:
        if res[-1] != n:  # the polish never leaves the dummy elsewhere (its costs forbid it): be safe
            return order
        res = res[:-1]
    return res


def nn_two_opt(matrix: Any, start: int = 0, return_to_start: bool = True,
               time_limit_s: float = 60.0, or_opt: bool = True, neighbours: int = 40) -> list[int]:
    """The floor: a nearest-neighbour tour improved by 2-opt (and Or-opt), for benchmarks and tests."""
    m = _as_matrix(matrix)
    if m.shape[0] == 0:
        return []
    start = _check_start(start, m.shape[0])
    return local_search(m, _nearest_neighbour(m, start), return_to_start, time.monotonic() + time_limit_s,
                        or_opt, neighbours)


# --- the public function ----------------------------------------------------------------------

def _canonical(m: np.ndarray, order: list[int], closed: bool) -> list[int]:
    """Of a closed run and its reverse, the shorter; when equal, the one whose second stop is lower."""
    if not closed or len(order) < 3:
        return order
    back = [order[0], *reversed(order[1:])]
    lf, lb = _length(m, order, True), _length(m, back, True)
    if lb < lf or (lb == lf and back[1] < order[1]):
        return back
    return order


def _solve(m: np.ndarray, start: int, closed: bool, budget: float | None) -> list[int]:
    n = m.shape[0]
    if n <= EXACT_MAX_N:
        return _held_karp(m, start, closed)
    t0 = time.monotonic()
    limit = default_time_limit(n) if budget is None else budget
    symmetric = np.allclose(m, m.T, rtol=1e-12, atol=0.0)
    s = m if symmetric else (m + m.T) / 2.0
    if not closed:
        s = _open_matrix(s, start)
    # fast-tsp gets most of the budget; the float polish usually needs a few ms (symmetric input),
    # more for an asymmetric matrix, where it does real work and a floor is polished too
    share = 0.8 if symmetric else 0.5
    fast_budget = limit * share  # fast-tsp ignores it up to 20 nodes, which it solves exactly
    order = _cycle_to_order(_fast_tsp_tour(s, fast_budget), start, n, closed)
    deadline = t0 + max(limit, 0.05) if budget is not None else t0 + max(limit * 1.2, 0.2)
    candidates = [local_search(m, order, closed, deadline)]
    if not symmetric:
        if closed:  # on true costs the other direction of fast-tsp's tour may be the better start
            candidates.append(local_search(m, [order[0], *reversed(order[1:])], closed, deadline))
        candidates.append(local_search(m, _nearest_neighbour(m, start), closed,
                                       max(deadline, time.monotonic() + 0.05)))
    lengths = [_length(m, o, closed) for o in candidates]
    return candidates[int(np.argmin(lengths))]


def sequence_stops(matrix: Any, start: int = 0, return_to_start: bool = True,
                   time_limit_s: float | None = None) -> list[int]:
    """A short order of all stops from ``start``: a permutation of range(n) beginning with ``start``.

    ``matrix[i][j]`` is the cost of going from stop i to stop j (metres, seconds, any unit; floats;
    asymmetric allowed). ``return_to_start=False`` sequences an open run that ends anywhere.
    ``time_limit_s`` caps the search (default: by size, see ``default_time_limit``). The same input
    gives the same order within a process (memoised; fast-tsp cannot be seeded), and in practice
    across processes up to a few hundred stops, where the search converges well within its budget.
    """
    m = _as_matrix(matrix)
    n = m.shape[0]
    if n == 0:
        return []
    start = _check_start(start, n)
    budget = _check_time_limit(time_limit_s)
    if n == 1:
        return [0]
    if n == 2:
        return [start, 1 - start]
    closed = bool(return_to_start)
    digest = hashlib.blake2b(np.ascontiguousarray(m).tobytes(), digest_size=16).hexdigest()
    key = (digest, n, start, closed, budget)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return list(_cache[key])
    order = _canonical(m, _solve(m, start, closed, budget), closed)
    with _cache_lock:
        _cache[key] = list(order)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return order


def clear_cache() -> None:
    """Forget memoised orders (tests use it to see what a fresh process would return)."""
    with _cache_lock:
        _cache.clear()
