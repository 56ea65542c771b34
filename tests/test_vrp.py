"""routes.vrp: several couriers at once (PyVRP), and the `python -m routes.vrp` benchmark command."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from routes.errors import InvalidMatrix, RoutesError
from routes.vrp import LOCK_COST, Problem, Vehicle, VrpClient, read_instance, solve

DATA = Path(__file__).parent / "data" / "vrp"
ROOT = Path(__file__).parent.parent


def _run(path: Path, seconds: str = "0.5") -> dict:
    out = subprocess.run([sys.executable, "-m", "routes.vrp", str(path), "--seconds", seconds],
                         capture_output=True, text=True, cwd=ROOT, check=True, timeout=120)
    return json.loads(out.stdout)


def _solomon(path: Path) -> tuple[dict[int, tuple[float, ...]], int, int]:
    """CUST NO. -> (x, y, demand, ready, due, service), the fleet size and the capacity, read by hand."""
    lines = path.read_text().splitlines()
    number, capacity = (int(x) for x in lines[4].split())
    rows = {}
    for line in lines[9:]:
        if line.strip():
            f = line.split()
            rows[int(f[0])] = tuple(float(x) for x in f[1:])
    return rows, number, capacity


def _d(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return math.floor(math.hypot(a[0] - b[0], a[1] - b[1]) * 10) / 10  # DIMACS: truncated to 0.1


def test_command_on_a_solomon_instance_keeps_capacity_windows_and_fleet() -> None:
    path = DATA / "tiny_solomon.txt"
    rows, fleet, capacity = _solomon(path)
    out = _run(path)
    routes = out["routes"]
    assert sorted(c for r in routes for c in r) == sorted(k for k in rows if k != 0)  # each once
    assert len(routes) <= fleet
    cost = 0.0
    for route in routes:
        assert sum(rows[c][2] for c in route) <= capacity
        t, prev = 0.0, 0
        for c in route:
            t = max(t + rows[prev][5] + _d(rows[prev], rows[c]), rows[c][3])
            assert t <= rows[c][4], f"customer {c} served at {t}, after its window {rows[c][3:5]}"
            cost += _d(rows[prev], rows[c])
            prev = c
        assert t + rows[prev][5] + _d(rows[prev], rows[0]) <= rows[0][4]  # back before the depot closes
        cost += _d(rows[prev], rows[0])
    assert out["cost"] == pytest.approx(round(cost, 1))
    # the two customers far north open late: nobody can serve them on the way out, one van does both
    assert [8, 7] in routes or [7, 8] in routes
    assert out["cost"] == pytest.approx(164.6)  # the optimum (three routes of 52.3, 52.3 and 60)


def test_command_on_a_cvrplib_instance_numbers_customers_as_the_file() -> None:
    out = _run(DATA / "tiny_cvrp.vrp")
    assert sorted(c for r in out["routes"] for c in r) == [2, 3, 4, 5, 6, 7]  # node 1 is the depot
    assert sorted(sorted(r) for r in out["routes"]) == [[2, 3, 4], [5, 6, 7]]
    assert out["cost"] == 104  # 10 + 10 + 10 + nint(22.36) each side: TSPLIB rounding
    assert isinstance(out["cost"], int)


def test_command_refuses_what_it_cannot_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.vrp"
    bad.write_text("NAME : bad\nTYPE : CVRP\nDIMENSION : 3\nEDGE_WEIGHT_TYPE : GEO\nCAPACITY : 5\n"
                   "NODE_COORD_SECTION\n1 0 0\n2 1 1\n3 2 2\nDEMAND_SECTION\n1 0\n2 1\n3 1\n"
                   "DEPOT_SECTION\n1\n-1\nEOF\n")
    out = subprocess.run([sys.executable, "-m", "routes.vrp", str(bad)], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert out.returncode == 2 and "GEO" in out.stderr and out.stdout == ""
    with pytest.raises(RoutesError):
        read_instance(bad)


def _line(n: int, step: int = 1000) -> np.ndarray:
    """The depot at 0 and clients at 1..n on a line, ``step`` apart (metres and seconds alike)."""
    x = np.arange(n + 1) * step
    return np.abs(x[:, None] - x[None, :]).astype(float)


def _two_sides() -> np.ndarray:
    """Depot at 0; clients 1-3 to the east (1, 2, 3 km), clients 4-6 to the west (1, 2, 3 km)."""
    x = np.array([0, 1, 2, 3, -1, -2, -3]) * 1000
    return np.abs(x[:, None] - x[None, :]).astype(float)


def test_capacity_and_shift_are_kept_and_reported() -> None:
    m = _two_sides()
    clients = [VrpClient(key=f"c{i}", demand=2, service_s=60) for i in range(1, 7)]
    vehicles = [Vehicle("a", capacity=6, shift=(0, 10_000)), Vehicle("b", capacity=6, shift=(0, 10_000))]
    plan = solve(Problem(clients, vehicles, m, m), seconds=0.3)
    assert plan.feasible and plan.locks_kept
    assert [r.key for r in plan.routes] == ["a", "b"]  # one route per vehicle, in the order given
    assert all(r.load <= 6 for r in plan.routes)
    assert sorted(v.key for r in plan.routes for v in r.visits) == sorted(c.key for c in clients)
    assert plan.distance == 12_000  # east and back, west and back
    for r in plan.routes:
        assert r.overtime == 0 and r.late == 0
        arrivals = [v.arrival for v in r.visits]
        assert arrivals == sorted(arrivals)
        assert r.duration == 6_000 + 3 * 60


def test_a_window_nobody_can_keep_is_reported_late_not_hidden() -> None:
    m = _line(2)
    clients = [VrpClient("near", window=(0, 5_000)), VrpClient("far", window=(0, 500))]  # 2 km away by 500 s: no
    plan = solve(Problem(clients, [Vehicle("a")], m, m), seconds=0.2)
    assert not plan.feasible
    late = {v.key: v.late_s for r in plan.routes for v in r.visits}
    assert late["far"] > 0 and plan.late >= 1
    assert sorted(late) == ["far", "near"]  # served anyway


def test_overtime_is_allowed_up_to_the_limit_and_reported() -> None:
    m = _line(3)
    clients = [VrpClient(f"c{i}", service_s=1_000) for i in range(3)]
    shift = (0, 6_000)  # 6 km out and back plus 3 × 1,000 s of service = 9,000 s: 3,000 s overtime
    plan = solve(Problem(clients, [Vehicle("a", shift=shift, max_overtime_s=3_600, overtime_cost=1)], m, m),
                 seconds=0.2)
    assert plan.feasible
    assert plan.routes[0].overtime == 3_000 and plan.overtime == 3_000


def test_locked_clients_stay_with_their_vehicle() -> None:
    m = _two_sides()
    clients = [VrpClient(f"c{i}", demand=1) for i in range(1, 7)]
    vehicles = [Vehicle("v0", capacity=4), Vehicle("v1", capacity=4)]
    free = solve(Problem(clients, vehicles, m, m), seconds=0.3)
    assert free.distance == 12_000  # one goes east, the other west
    # the far east and the far west stop locked to the same courier: it has to cross the depot
    locked = list(clients)
    locked[2] = VrpClient("c3", demand=1, locked_to=1)
    locked[5] = VrpClient("c6", demand=1, locked_to=1)
    plan = solve(Problem(locked, vehicles, m, m), seconds=0.3)
    assert plan.locks_kept
    served_by = {v.key: r.vehicle for r in plan.routes for v in r.visits}
    assert served_by["c3"] == served_by["c6"] == 1
    assert plan.distance > free.distance
    assert plan.distance < LOCK_COST  # the reported distance is the true one, never the penalty


def test_territory_is_kept_unless_leaving_it_saves_more_than_the_set_cost() -> None:
    # west's territory includes the stop 1 km east; east serves the east side anyway
    m = _two_sides()
    west, east = 0, 1
    clients = [VrpClient("e1", territory=frozenset({west})), VrpClient("e2", territory=frozenset({east})),
               VrpClient("e3", territory=frozenset({east})), VrpClient("w1", territory=frozenset({west})),
               VrpClient("w2", territory=frozenset({west})), VrpClient("w3", territory=frozenset({west}))]
    vehicles = [Vehicle("west"), Vehicle("east")]

    def owner(cost: int) -> tuple[int, int]:
        plan = solve(Problem(clients, vehicles, m, m, territory_cost=cost), seconds=0.3)
        return {v.key: r.vehicle for r in plan.routes for v in r.visits}["e1"], plan.outside_territory

    # West fetching e1 costs 2 km more (out 1 km east and back) than east picking it up on its way.
    assert owner(5_000) == (west, 0)  # a set cost above the saving: e1 stays in its territory
    assert owner(500) == (east, 1)  # the saving beats the set cost: e1 moves, and it is counted


def test_bad_input_is_refused_with_a_message() -> None:
    m = _line(1)
    with pytest.raises(InvalidMatrix):
        solve(Problem([VrpClient("a")], [Vehicle("v")], _line(2), _line(2)))
    with pytest.raises(RoutesError, match="locked"):
        solve(Problem([VrpClient("a", locked_to=3)], [Vehicle("v")], m, m))
    with pytest.raises(RoutesError, match="vehicle"):
        solve(Problem([VrpClient("a")], [], m, m))
    with pytest.raises(RoutesError, match="window"):
        solve(Problem([VrpClient("a", window=(10, 5))], [Vehicle("v")], m, m))


def test_no_clients_is_an_empty_plan() -> None:
    m = _line(0)
    plan = solve(Problem([], [Vehicle("a", shift=(100, 200))], m, m))
    assert plan.distance == 0 and plan.feasible and [r.visits for r in plan.routes] == [()]
