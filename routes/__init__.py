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
from routes.errors import InvalidMatrix, InvalidRoute, RoutesError

__all__ = [
    "Assignment", "InvalidMatrix", "InvalidRoute", "OrderAddress", "Outcome", "RouteDef", "RouteTable",
    "RoutesError", "Rule", "RuleKind", "assign",
]
