"""Postal delivery routes: assignment of orders to routes and stop sequencing.

A library: plain data in, plain data out; no Flask, no database. Its errors derive from
:class:`routes.errors.RoutesError` (a ValueError).
"""

from routes.assign import (
    Assignment,
    OrderAddress,
    Outcome,
    RouteDef,
    RouteTable,
    Rule,
    RuleKind,
    assign,
)
from routes.distance import geodesic_m, haversine_matrix
from routes.errors import InvalidMatrix, InvalidRoute, RoutesError
from routes.runs import PlannedStop, RunPlan, StopInput, Timing, plan_run
from routes.sequence import sequence_stops, tour_length

__all__ = [
    "Assignment", "InvalidMatrix", "InvalidRoute", "OrderAddress", "Outcome", "PlannedStop", "RouteDef",
    "RouteTable", "RoutesError", "Rule", "RuleKind", "RunPlan", "StopInput", "Timing", "assign", "geodesic_m",
    "haversine_matrix", "plan_run", "sequence_stops", "tour_length",
]
