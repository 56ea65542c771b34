"""Assignment of orders to delivery routes: by commune, refined by hamlet or street, within capacity.

A route covers whole communes and/or parts of communes named by hamlet (thôn, xóm, tổ) or street
phrases. An order goes to the route whose most specific rule matches its address; a full route
passes it to its backup; an order nothing matches is left for a person to dispatch, with the reason.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field

from routes.errors import InvalidRoute
from routes.text import fold


class RuleKind(enum.StrEnum):
    COMMUNE = "commune"
    HAMLET = "hamlet"
    STREET = "street"


class Outcome(enum.StrEnum):
    """How an order was placed, or why it was not."""

    COMMUNE = "commune"  # the route covering the whole commune
    HAMLET = "hamlet"  # a hamlet rule matched
    STREET = "street"  # a street rule matched
    OVERFLOW = "overflow"  # the matching route was full: its backup took the order
    UNKNOWN_COMMUNE = "unknown_commune"  # no route covers any part of the commune
    NO_RULE = "no_rule"  # routes cover parts of the commune, but none matches this address
    OVER_CAPACITY = "over_capacity"  # the matching route and its backups are full

    @property
    def needs_dispatch(self) -> bool:
        return self in (Outcome.UNKNOWN_COMMUNE, Outcome.NO_RULE, Outcome.OVER_CAPACITY)


@dataclass(frozen=True, slots=True)
class Rule:
    """Part of a route's coverage: a whole commune, or the addresses in it naming ``phrase``."""

    commune: str
    kind: RuleKind = RuleKind.COMMUNE
    phrase: str = ""

    def __post_init__(self) -> None:
        if not self.commune:
            raise InvalidRoute("A coverage rule needs a commune code.")
        if self.kind is not RuleKind.COMMUNE and not fold(self.phrase):
            raise InvalidRoute(f"A {self.kind.value} rule in commune {self.commune} needs a name to match.")


@dataclass(frozen=True, slots=True)
class RouteDef:
    """A route as assignment sees it. ``capacity``: orders per day (None: no limit)."""

    code: str
    rules: tuple[Rule, ...]
    capacity: int | None = None
    backup: str | None = None


@dataclass(frozen=True, slots=True)
class OrderAddress:
    """What assignment needs of an order: its id (any hashable), commune code and address detail."""

    key: Hashable
    commune: str
    detail: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """Where one order went. ``route`` is None when a person must dispatch it (see ``outcome``)."""

    key: Hashable
    route: str | None
    outcome: Outcome
    matched: str | None = None  # the route whose rule matched (differs from ``route`` on overflow)

    @property
    def needs_dispatch(self) -> bool:
        return self.outcome.needs_dispatch


@dataclass(frozen=True, slots=True)
class _Specific:
    words: str  # " folded phrase " with surrounding spaces, for whole-word matching
    route: str
    kind: RuleKind


@dataclass
class RouteTable:
    """Routes compiled for fast look-up. Build with :meth:`build`; ``warnings`` lists routes skipped."""

    routes: dict[str, RouteDef]
    whole: dict[str, list[str]] = field(default_factory=dict)  # commune -> routes covering all of it
    specific: dict[str, list[_Specific]] = field(default_factory=dict)  # longest phrases first
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, routes: Iterable[RouteDef], *, strict: bool = False) -> RouteTable:
        """Compile ``routes``. A route that cannot be used (it covers no commune, or names a backup
        that does not exist or itself) is left out with a warning, or raises InvalidRoute if ``strict``."""
        table = cls(routes={})
        defs = list(routes)
        codes = [r.code for r in defs]
        problems: list[str] = []
        if len(set(codes)) != len(codes):
            dupes = sorted({c for c in codes if codes.count(c) > 1})
            problems.append(f"Route codes used twice: {', '.join(dupes)}.")
        for route in defs:
            problem = _problem(route, set(codes))
            if problem:
                problems.append(problem)
                continue
            table.routes[route.code] = route
        if strict and problems:
            raise InvalidRoute(" ".join(problems))
        table.warnings = problems
        for route in table.routes.values():
            for rule in route.rules:
                if rule.kind is RuleKind.COMMUNE:
                    table.whole.setdefault(rule.commune, []).append(route.code)
                else:
                    table.specific.setdefault(rule.commune, []).append(
                        _Specific(f" {fold(rule.phrase)} ", route.code, rule.kind))
        for rules in table.specific.values():
            rules.sort(key=lambda s: (-len(s.words), s.route))
        for codes_ in table.whole.values():
            codes_.sort()
        return table

    def chain(self, code: str) -> list[str]:
        """A route and its backups, in the order they take overflow, each once (loops end)."""
        out: list[str] = []
        seen: set[str] = set()
        current: str | None = code
        while current is not None and current not in seen and current in self.routes:
            out.append(current)
            seen.add(current)
            current = self.routes[current].backup
        return out

    def covers(self, commune: str) -> bool:
        """Whether any route covers any part of ``commune``."""
        return commune in self.whole or commune in self.specific

    def match(self, commune: str, detail: str) -> tuple[list[str], Outcome]:
        """The candidate routes for an address, best first, and how they matched."""
        specific = self.specific.get(commune)
        if specific:
            text = f" {fold(detail)} "
            for rule in specific:
                if rule.words in text:
                    same = [s.route for s in specific if s.words == rule.words]
                    return sorted(set(same)), Outcome(rule.kind.value)
        whole = self.whole.get(commune)
        if whole:
            return whole, Outcome.COMMUNE
        return [], (Outcome.NO_RULE if specific else Outcome.UNKNOWN_COMMUNE)


def _problem(route: RouteDef, codes: set[str]) -> str | None:
    if not route.rules:
        return f"Route {route.code} covers no commune: it gets no orders until its coverage is set."
    if route.capacity is not None and route.capacity < 0:
        return f"Route {route.code} has a negative capacity."
    if route.backup is not None and (route.backup == route.code or route.backup not in codes):
        return f"Route {route.code} names backup route {route.backup}, which cannot be used."
    return None


def assign(table: RouteTable, orders: Sequence[OrderAddress],
           load: MutableMapping[str, int] | None = None) -> list[Assignment]:
    """Place each order on a route for one day, in the order given.

    ``load`` holds the orders each route already has that day; it is updated as orders are placed,
    so that capacity holds across calls. Among several routes covering the same part of a commune,
    the least loaded one takes the order (ties by code), which spreads a shared area evenly.
    """
    load = load if load is not None else defaultdict(int)
    backups = _Backups(table, load)
    return [_place(table, order, load, backups) for order in orders]


def _place(table: RouteTable, order: OrderAddress, load: MutableMapping[str, int],
           backups: _Backups) -> Assignment:
    candidates, how = table.match(order.commune, order.detail)
    if not candidates:
        return Assignment(order.key, None, how)
    primary = min(candidates, key=lambda code: (load.get(code, 0), code)) if len(candidates) > 1 \
        else candidates[0]
    route = backups.with_room(primary)
    if route is None:
        return Assignment(order.key, None, Outcome.OVER_CAPACITY, matched=primary)
    load[route] = load.get(route, 0) + 1
    return Assignment(order.key, route, how if route == primary else Outcome.OVERFLOW, matched=primary)


class _Backups:
    """The first route with room down a backup chain, for one call of :func:`assign`.

    Loads only grow during a call, so a full route stays full: each walk leaves, on the full routes
    it passed, a pointer to where it found room (``skip``), and marks routes whose whole chain is
    full (``dead``). A walk therefore steps over each full route about once per call, however long
    or cyclic the chains are, instead of rebuilding the chain for every order.
    """

    __slots__ = ("dead", "load", "routes", "skip")

    def __init__(self, table: RouteTable, load: Mapping[str, int]) -> None:
        self.routes = table.routes
        self.load = load
        self.skip: dict[str, str] = {}
        self.dead: set[str] = set()

    def with_room(self, code: str) -> str | None:
        """``code`` if it has room, else the first backup down its chain that has (None: all full)."""
        routes, load, skip, dead = self.routes, self.load, self.skip, self.dead
        full: list[str] = []
        seen: set[str] = set()
        current: str | None = code
        while current is not None and current in routes and current not in seen and current not in dead:
            capacity = routes[current].capacity
            if capacity is None or load.get(current, 0) < capacity:
                for passed in full:  # everything between them and ``current`` is full
                    skip[passed] = current
                return current
            full.append(current)
            seen.add(current)
            current = skip.get(current) or routes[current].backup
        dead.update(full)  # every route reachable from these is full
        return None
