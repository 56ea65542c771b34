"""The figures, computed in the database: sums over the rollups, open and overdue orders counted in
the orders table, grouped by any unit, and scoped to what the actor may see.

A period is a span of local days, both ends included. Whole calendar years inside it are read from
``report_years``, whole months of the rest from ``report_months`` and the days at its ends from
``report_days``: a year's report reads one row per key instead of 365.

With ``memo``, a process keeps the figures it computed, per part of the period (and the trend per
week), with the fold's cursor they were read at; after the fold has moved, the ``report_changes``
rows every fold batch writes say which days' figures changed (the earliest and the latest), and only
the parts (weeks) holding such days are read again. Open and overdue orders are counted again
whenever an event was written or the day changed.
"""

from __future__ import annotations

import datetime as dt
import enum
import threading
from dataclasses import dataclass, field, fields
from typing import Any

import sqlalchemy as sa
from flask import current_app

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import Actor
from delivery_service.errors import Forbidden
from delivery_service.extensions import db
from delivery_service.localtime import day_start, local_today
from delivery_service.orders.models import OPEN_WHERE, DeliveryOrder
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.models import Counter, PostalRoute, PostOffice
from delivery_service.reports.models import (
    BINS,
    HISTOGRAM,
    HOUR_EDGES,
    MEASURES,
    CounterDailyTotal,
    ReportChange,
    ReportUnit,
    report_area_communes,
    report_days,
    report_months,
    report_weeks,
    report_years,
)
from delivery_service.units.models import AdminUnit, UnitLevel
from delivery_service.vietnamese import sort_key

READERS = (Role.ADMIN, Role.DISTRICT_OFFICER, Role.SUPERVISOR, Role.COUNTER_STAFF)


class Level(enum.StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"
    AREA = "area"
    POST_OFFICE = "post_office"
    ROUTE = "route"
    COUNTER = "counter"
    COURIER = "courier"


@dataclass(frozen=True)
class Filters:
    """Narrow a report to one unit, area, post office, route, counter or courier (ids; None: all)."""

    province: int | None = None
    district: int | None = None
    commune: int | None = None
    area: int | None = None
    post_office: int | None = None
    route: int | None = None
    counter: int | None = None
    courier: int | None = None

    def items(self) -> list[tuple[str, int]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]


@dataclass
class Row:
    """The figures of one unit (``key`` None: not on any route / no courier / no district)."""

    key: int | None = None
    label: str = ""
    code: str | None = None
    received: int = 0
    received_results: int = 0
    delivered: int = 0
    on_time: int = 0
    failed_attempts: int = 0
    returned: int = 0
    cancelled: int = 0
    abandoned: int = 0
    open: int = 0
    overdue: int = 0
    results_total: int | None = None  # results the counters handed out in all (their daily totals)
    histogram: list[int] = field(default_factory=lambda: [0] * BINS)

    @property
    def closed(self) -> int:
        """Orders whose delivery ended: delivered, returned, or given up after failed attempts.
        Cancellations before any attempt are withdrawals, not deliveries that failed."""
        return self.delivered + self.returned + self.abandoned

    @property
    def delivery_rate(self) -> float | None:
        return self.delivered / self.closed if self.closed else None

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.delivered if self.delivered else None

    @property
    def post_share(self) -> float | None:
        """Results sent by post ÷ all results handed out, where the counters reported their totals;
        None where that cannot be a share (more sent by post than the total: see share_inconsistent)."""
        if not self.results_total or self.share_inconsistent:
            return None
        return self.received_results / self.results_total

    @property
    def share_inconsistent(self) -> bool:
        """More results went by post than the counters' reported total: the total is wrong (or
        missing days), and no share or band can be given."""
        return self.results_total is not None and self.received_results > self.results_total

    @property
    def median_hours(self) -> float | None:
        return percentile(self.histogram, 0.5)

    @property
    def p90_hours(self) -> float | None:
        return percentile(self.histogram, 0.9)


@dataclass
class Report:
    level: Level
    start: dt.date
    end: dt.date
    rows: list[Row]
    total: Row
    as_of_event: int = 0
    pending_events: int = 0
    # HTML the pages rendered from this report, by what else it depends on (views.index)
    rendered: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)


def percentile(histogram: list[int], p: float) -> float | None:
    """The p-quantile of handover-to-delivery hours, interpolated inside its histogram bin (exact to
    the bin: 2 h wide up to 12 h, 12 h up to 2 days, then 1–14 days); None without deliveries. In
    the open last bin (30 days and more) the bin's lower edge."""
    n = sum(histogram)
    if n == 0:
        return None
    rank = p * n
    seen = 0
    lower = 0.0
    for i, count in enumerate(histogram):
        upper = float(HOUR_EDGES[i]) if i < len(HOUR_EDGES) else None
        if count and seen + count >= rank:
            if upper is None:
                return lower
            return round(lower + (upper - lower) * (rank - seen) / count, 1)
        seen += count
        lower = upper if upper is not None else lower
    return lower


# --- periods --------------------------------------------------------------------------------------

Span = tuple[dt.date, dt.date]


def split_period(start: dt.date, end: dt.date) -> tuple[list[Span], list[Span]]:
    """(month ranges, day ranges) covering start..end: whole months as their first days."""
    if end < start:
        raise ValueError("end before start")
    first_full = start if start.day == 1 else _next_month(start)
    after_last = _next_month(end) if _next_month(end) - dt.timedelta(days=1) == end else end.replace(day=1)
    if first_full >= after_last:
        return [], [(start, end)]
    months = [(first_full, _prev_month(after_last))]
    days = []
    if start < first_full:
        days.append((start, first_full - dt.timedelta(days=1)))
    if after_last <= end:
        days.append((after_last, end))
    return months, days


@dataclass(frozen=True)
class Part:
    """A piece of a period read from one rollup: its period column between ``first`` and ``last``,
    covering the local days ``start``..``end``."""

    table: sa.Table
    first: dt.date
    last: dt.date
    start: dt.date
    end: dt.date

    def rows(self) -> sa.ColumnElement[bool]:
        return self.table.c[0].between(self.first, self.last)


def period_parts(start: dt.date, end: dt.date) -> list[Part]:
    """The parts covering start..end: whole calendar years from ``report_years``, whole months of
    the rest from ``report_months``, the days left at either end from ``report_days``."""
    if end < start:
        raise ValueError("end before start")
    one = dt.timedelta(days=1)
    first_year = start if (start.month, start.day) == (1, 1) else dt.date(start.year + 1, 1, 1)
    after_years = dt.date(end.year + 1, 1, 1) if (end.month, end.day) == (12, 31) else dt.date(end.year, 1, 1)
    parts, rest = [], [(start, end)]
    if first_year < after_years:
        parts.append(Part(report_years, first_year, dt.date(after_years.year - 1, 1, 1), first_year,
                          after_years - one))
        rest = [(start, first_year - one), (after_years, end)]
    for a, b in rest:
        if a > b:
            continue
        months, days = split_period(a, b)
        parts += [Part(report_months, m, n, m, _next_month(n) - one) for m, n in months]
        parts += [Part(report_days, m, n, m, n) for m, n in days]
    return sorted(parts, key=lambda p: p.start)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _prev_month(first: dt.date) -> dt.date:
    return (first - dt.timedelta(days=1)).replace(day=1)


# --- the query ------------------------------------------------------------------------------------

KEY_COLUMNS = ("commune_id", "route_id", "counter_id", "courier_id")
ROLLUP_COLUMNS = (*KEY_COLUMNS, *MEASURES, *HISTOGRAM)
# The partial index of open orders' own predicate, written as it is (with the table named: the
# queries join other tables), so that the planner can use the index.
_OPEN = sa.text(OPEN_WHERE.replace("status", "delivery_orders.status"))
# Levels whose key 0 (no route, no courier) is shown as "none".
_ZERO_IS_NONE = (Level.ROUTE, Level.COURIER, Level.POST_OFFICE)


def _select(table: sa.Table, when: sa.ColumnElement[bool], *extra: Any,
            columns: tuple[str, ...] = ROLLUP_COLUMNS) -> sa.Select:
    return sa.select(*extra, *[table.c[c] for c in columns]).where(when)


def _union(parts: list[sa.Select]) -> sa.Subquery:
    return (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery("r")


def _sum_columns(r: sa.Subquery | sa.Table, counts: tuple[str, ...] = (*MEASURES, *HISTOGRAM)) -> list[Any]:
    return [sa.func.sum(r.c[m]).label(m) for m in counts]


@dataclass
class Cols:
    """The columns a level, a filter or the scope read, for the rollups or the orders table."""

    commune: Any
    route: Any
    counter: Any
    courier: Any
    unit: Any  # report_units joined on the commune
    office: Any  # postal_routes.post_office_id of the route

    @classmethod
    def of_rollup(cls, r: sa.Subquery | sa.Table) -> Cols:
        office = (sa.select(PostalRoute.post_office_id).where(PostalRoute.id == r.c.route_id)
                  .scalar_subquery())
        return cls(r.c.commune_id, r.c.route_id, r.c.counter_id, r.c.courier_id,
                   sa.orm.aliased(ReportUnit, name="u"), office)


def _order_columns() -> tuple[Cols, Any]:
    """Cols over the orders table, and the route they join (for its courier and post office)."""
    o = DeliveryOrder
    route = sa.orm.aliased(PostalRoute, name="pr")
    return Cols(o.commune_id, sa.func.coalesce(o.route_id, 0), o.counter_id,
                sa.func.coalesce(route.courier_id, 0), sa.orm.aliased(ReportUnit, name="u"),
                route.post_office_id), route


def _received_between(start: dt.date, end: dt.date) -> list[sa.ColumnElement[bool]]:
    return [DeliveryOrder.created_at >= day_start(start),
            DeliveryOrder.created_at < day_start(end + dt.timedelta(days=1))]


def _condition(name: str, value: int, c: Cols) -> sa.ColumnElement[bool]:
    if name == "area":
        return c.unit.commune_id.in_(sa.select(report_area_communes.c.unit_id)
                                     .where(report_area_communes.c.area_id == value))
    column = {"province": c.unit.province_id, "district": c.unit.district_id, "commune": c.unit.commune_id,
              "post_office": c.office, "route": c.route, "counter": c.counter, "courier": c.courier}[name]
    return column == value


def _where(actor: Actor, filters: Filters, c: Cols) -> list[sa.ColumnElement[bool]]:
    return [*scope_conditions(actor, c), *[_condition(n, v, c) for n, v in filters.items()]]


def _key(level: Level, c: Cols) -> Any:
    return {Level.PROVINCE: c.unit.province_id, Level.DISTRICT: c.unit.district_id,
            Level.COMMUNE: c.unit.commune_id, Level.AREA: report_area_communes.c.area_id,
            Level.POST_OFFICE: c.office, Level.ROUTE: c.route, Level.COUNTER: c.counter,
            Level.COURIER: c.courier}[level]


def _shown_key(level: Level, key: Any) -> Any:
    return None if key in (0, None) and level in _ZERO_IS_NONE else key


def scope_conditions(actor: Actor, c: Cols) -> list[sa.ColumnElement[bool]]:
    """What the actor may see, as conditions on the rollups or the orders."""
    if actor.role is Role.ADMIN:
        return []
    if actor.role is Role.COUNTER_STAFF:
        return [c.counter == actor.counter_id]
    if actor.role is Role.SUPERVISOR:
        return [c.office == actor.post_office_id]
    if actor.role is Role.DISTRICT_OFFICER and actor.area_unit_id is not None:
        area = db.session.get(AdminUnit, actor.area_unit_id)
        if area is None:
            return [sa.false()]
        if area.level is UnitLevel.DISTRICT:
            return [c.unit.district_id == area.id]
        if area.level is UnitLevel.PROVINCE and area.valid_to is None:
            return [c.unit.province_id == area.id]
        from delivery_service.reports.units import successor_communes

        return [c.unit.commune_id.in_(successor_communes([area.id]))]
    raise Forbidden("Your role cannot read reports.")


def _joined(source: Any, c: Cols, level: Level) -> Any:
    stmt = source.join(c.unit, c.unit.unit_id == c.commune)
    if level is Level.AREA:
        stmt = stmt.join(report_area_communes, report_area_communes.c.unit_id == c.unit.commune_id)
    return stmt


# --- the figures a process keeps, and what changed since --------------------------------------------

MEMO_ENTRIES = 32  # reports (and trends) kept per process, at most
# ...and the rows they keep, at most, all together (a report's rows and its parts' sums, a trend's
# weeks): an admin's report by commune keeps some 3,300 rows and as many sums per part (about 40
# bytes a count, 23 counts), so some 200 bytes a row: about 40 MB per process.
MEMO_ROWS = 200_000
COUNTS = (*MEASURES, *HISTOGRAM)


@dataclass(frozen=True)
class State:
    """What the figures depend on besides their arguments and the day: the fold's cursor (the
    rollups), the newest event id (open and overdue orders), the unit map's version and the
    cursor's generation (a new one when the cursor went back or its row was made again)."""

    cursor: int
    last: int
    units: int
    generation: int = 0


def _memo_key(kind: str, actor: Actor, *args: Any) -> tuple[Any, ...]:
    """A kept result's key: the database, the actor's scope and the arguments."""
    scope = (actor.role, actor.user_id, actor.client_id, actor.counter_id, actor.area_unit_id,
             actor.post_office_id)
    return (kind, str(db.engine.url), scope, *args)


_MEMO_LEVELS = frozenset({Level.PROVINCE, Level.DISTRICT, Level.COMMUNE})


def _memo_allowed(actor: Actor, filters: Filters, level: Level | None = None) -> bool:
    """Only reports that administrative units alone group and scope: routes, couriers, post offices,
    areas and a supervisor's scope can change in the settings without an event, and the counters'
    daily totals are typed in without one."""
    unit_filters = filters.area is None and filters.post_office is None and filters.route is None \
        and filters.counter is None and filters.courier is None
    return unit_filters and actor.role in (Role.ADMIN, Role.DISTRICT_OFFICER) \
        and (level is None or level in _MEMO_LEVELS)


def _memo() -> dict[tuple[Any, ...], tuple[Any, int]]:
    """Kept results by key, each with how many rows it keeps; the least recently used first."""
    return current_app.extensions.setdefault("report_memo", {})


_MEMO_LOCK = threading.Lock()  # a process's request threads share its memo


def _recall(key: tuple[Any, ...]) -> Any:
    """The result kept under ``key`` (None: none), now the most recently used."""
    with _MEMO_LOCK:
        memo = _memo()
        found = memo.pop(key, None)
        if found is None:
            return None
        memo[key] = found  # the most recently used last
        return found[0]


def _remember(key: tuple[Any, ...], value: Any, rows: int) -> None:
    """Keep ``value`` (holding ``rows`` rows); the least recently used go while more than
    ``MEMO_ENTRIES`` results or ``MEMO_ROWS`` rows are kept (a result larger than that alone is not
    kept)."""
    with _MEMO_LOCK:
        memo = _memo()
        memo.pop(key, None)
        memo[key] = (value, rows)  # the most recently used last
        total = sum(n for _, n in memo.values())
        while memo and (len(memo) > MEMO_ENTRIES or total > MEMO_ROWS):
            _, n = memo.pop(next(iter(memo)))  # the least recently used first
            total -= n


EVERYTHING: Span = (dt.date.min, dt.date.max)  # changed_since: any day may have changed


def changed_since(kept: State, now: State) -> Span | None:
    """The earliest and latest local days whose rollup rows changed between two states (None: none
    changed; ``EVERYTHING``: cannot tell, read everything again). Every fold batch writes its
    ``report_changes`` row in the transaction that moves the cursor, and the batches form one chain
    (each row's ``from_event_id`` is the previous row's ``event_id``): the rows between the two
    cursors must start at the kept cursor and cover every event id up to the current one exactly
    once. A link missing anywhere (deleted as old, by a node whose clock is ahead; a batch folded by
    code older than the table) or a new generation of the cursor (it went back: a refold from
    scratch, even one that has since passed the kept cursor again) reads everything again."""
    if kept.units != now.units or kept.generation != now.generation or now.cursor < kept.cursor:
        return EVERYTHING
    if now.cursor == kept.cursor:
        return None
    c = ReportChange
    first_from, covered, first_day, last_day, n = db.session.execute(
        sa.select(sa.func.min(c.from_event_id), sa.func.sum(c.event_id - c.from_event_id),
                  sa.func.min(c.first_day), sa.func.max(c.last_day), sa.func.count())
        .where(c.event_id > kept.cursor, c.event_id <= now.cursor)).one()
    if not n or first_from != kept.cursor or int(covered) != now.cursor - kept.cursor:
        return EVERYTHING
    return None if first_day is None else (first_day, last_day)


@dataclass(frozen=True)
class _KeptFigures:
    state: State
    today: dt.date
    report: Report
    parts: tuple[Part, ...]
    sums: tuple[dict[Any, tuple[int, ...]], ...]  # per part: shown key -> COUNTS


def figures(actor: Actor, start: dt.date, end: dt.date, level: Level, filters: Filters = Filters(),
            *, today: dt.date | None = None, catch_up: bool = True, memo: bool = False) -> Report:
    """The figures of every unit of ``level`` the actor may see, for the local days start..end.

    ``memo``: keep this report in the process (the dashboard page and its units chart ask for the
    same report one after the other; a reader reloads). It is returned as it is while no event has
    been written or folded and the day is the same; after a change only the parts of the period
    (year, months, days) between the earliest and the latest day changed are summed again (see
    ``changed_since``), and the open and overdue orders counted again. The report returned may be
    shared: read it, do not change it. Only reports by administrative unit are kept (see
    ``_memo_allowed``)."""
    state = _prepare(actor, catch_up)
    today = today or local_today()
    if not memo or not _memo_allowed(actor, filters, level):
        return _figures(actor, start, end, level, filters, today, state, None)[0]
    key = _memo_key("figures", actor, start, end, level, filters)
    kept = _recall(key)
    if kept is not None and kept.state == state and kept.today == today:
        return kept.report
    report, sums = _figures(actor, start, end, level, filters, today, state, kept, memo=True)
    _remember(key, _KeptFigures(state, today, report, tuple(period_parts(start, end)), sums),
              len(report.rows) + sum(len(part) for part in sums))
    return report


def _figures(actor: Actor, start: dt.date, end: dt.date, level: Level, filters: Filters, today: dt.date,
             state: State, kept: _KeptFigures | None, *, memo: bool = False,
             ) -> tuple[Report, tuple[dict[Any, tuple[int, ...]], ...]]:
    """The report, and (``memo``) the sums of each part of the period, computed or taken from
    ``kept`` where nothing changed since."""
    parts = period_parts(start, end)
    sums: list[dict[Any, tuple[int, ...]] | None]
    if not memo:  # all the parts in one statement
        sums = [_sums(actor, parts, level, filters)]
    else:  # each part's sums apart, kept for later; those before the earliest change reused
        sums = [None] * len(parts)
        if kept is not None and kept.parts == tuple(parts):
            changed = changed_since(kept.state, state)
            sums = [old if changed is None or part.end < changed[0] or part.start > changed[1] else None
                    for part, old in zip(parts, kept.sums, strict=True)]
        sums = [_sums(actor, [part], level, filters) if found is None else found
                for part, found in zip(parts, sums, strict=True)]
    combined: dict[Any, tuple[int, ...]] = {}
    for part in sums:
        assert part is not None
        if not combined:
            combined = dict(part)
            continue
        for key, values in part.items():
            old = combined.get(key)
            combined[key] = values if old is None else tuple(a + b for a, b in zip(old, values, strict=True))
    rows = {key: _row(key, values) for key, values in combined.items()}
    total = _row(None, tuple(sum(column) for column in zip(*combined.values(), strict=True))
                 if combined else (0,) * len(COUNTS))
    total.label = ""
    for key, n_open, n_overdue in _open(actor, start, end, level, filters, today):
        row = rows.setdefault(key, Row(key=key))
        row.open, row.overdue = n_open, n_overdue
        total.open += n_open
        total.overdue += n_overdue
    if level is Level.COUNTER or actor.role is Role.COUNTER_STAFF or filters.counter is not None:
        totals = _results_totals(actor, start, end, filters)
        for row in rows.values():
            row.results_total = totals.get(row.key) if level is Level.COUNTER else None
        total.results_total = sum(totals.values()) if totals else None
    _label(level, list(rows.values()), state.units)
    ordered = sorted(rows.values(), key=row_order)
    report = Report(level, start, end, ordered, total, state.cursor, max(state.last - state.cursor, 0))
    return report, tuple(s for s in sums if s is not None)


def row_order(row: Row) -> tuple[Any, ...]:
    """A report's rows by name in Vietnamese order, the row of no unit last; rows of one name (the
    "Huyện Châu Thành" of several provinces, a "Phường 1" in many towns) by their code, then key: one
    order whichever way the figures were gathered (kept and brought up to date, or computed afresh)."""
    return (row.key is None, sort_key(str(row.label)), row.code or "", str(row.key))


def _prepare(actor: Actor, catch_up: bool) -> State:
    """Check the actor may read reports, fold what the log holds (within the time budget);
    returns the state the figures are read in."""
    from delivery_service.reports.fold import fold, state

    _check(actor)
    if catch_up:
        fold(time_budget_s=current_app.config["REPORT_CATCH_UP_S"])
    if db.engine.dialect.name == "postgresql":
        # PostgreSQL's JIT compiles the report's many sums for longer than they take to run (the
        # bench: 1.85 s with it, 1.31 s without, at 10 M orders); for this transaction only.
        db.session.execute(sa.text("SET LOCAL jit = off"))
    return State(*state())


def _check(actor: Actor) -> None:
    """The actor may read reports, and the unit map is there to read them by."""
    from delivery_service.reports.units import ensure_unit_map

    if actor.role not in READERS:
        raise Forbidden("Your role cannot read reports.")
    ensure_unit_map()


def _add(row: Row, values: Any, counts: tuple[str, ...] | None = None) -> None:
    """Add ``values`` (a result row of sums) to ``row``: every count, or only ``counts``."""
    for m in MEASURES:
        if counts is None or m in counts:
            setattr(row, m, getattr(row, m) + (values[m] or 0))
    for i, h in enumerate(HISTOGRAM):
        if counts is None or h in counts:
            row.histogram[i] += values[h] or 0


_N_MEASURES = len(MEASURES)


def _row(key: Any, values: tuple[int, ...]) -> Row:
    """A row of every count (in ``COUNTS`` order)."""
    return Row(key=key, **dict(zip(MEASURES, values, strict=False)), histogram=list(values[_N_MEASURES:]))


def _sums(actor: Actor, parts: list[Part], level: Level, filters: Filters) -> dict[Any, tuple[int, ...]]:
    """The sums of every count (``COUNTS``) over the parts, by the level's key (as shown)."""
    r = _union([_select(p.table, p.rows()) for p in parts])
    c = Cols.of_rollup(r)
    key = _key(level, c)
    stmt = (sa.select(key.label("k"), *_sum_columns(r)).select_from(_joined(r, c, level))
            .where(*_where(actor, filters, c)).group_by(key))
    found: dict[Any, tuple[int, ...]] = {}
    for k, *values in db.session.execute(stmt):
        counts = tuple(int(v or 0) for v in values)
        shown = _shown_key(level, k)
        old = found.get(shown)
        found[shown] = counts if old is None else tuple(a + b for a, b in zip(old, counts, strict=True))
    return found


def _open(actor: Actor, start: dt.date, end: dt.date, level: Level, filters: Filters,
          today: dt.date) -> list[tuple[Any, int, int]]:
    """Orders received in the period and still open now; overdue: past their due date."""
    o = DeliveryOrder
    still_open = [_OPEN, sa.not_(sa.and_(o.direction == Direction.DOSSIER_TO_AGENCY,
                                         o.status == Status.DELIVERED_TO_AGENCY)),
                  *_received_between(start, end)]
    late = sa.func.sum(sa.case((o.due_date < today, 1), else_=0))
    if level in _MEMO_LEVELS and _memo_allowed(actor, filters, level):
        # Grouped and scoped by administrative unit only: counted per commune first, straight from
        # the index of open orders, and the communes' few thousand counts then grouped by the level
        # (at 10 M orders 30 ms instead of 40 for 97,000 open orders).
        per_commune = (sa.select(o.commune_id, sa.func.count().label("n"), late.label("late"))
                       .where(*still_open).group_by(o.commune_id).subquery("o"))
        unit = sa.orm.aliased(ReportUnit, name="u")
        c = Cols(per_commune.c.commune_id, None, None, None, unit, None)
        key = _key(level, c)
        stmt = (sa.select(key.label("k"), sa.func.sum(per_commune.c.n), sa.func.sum(per_commune.c.late))
                .select_from(_joined(per_commune, c, level)).where(*_where(actor, filters, c)).group_by(key))
    else:
        c, route = _order_columns()
        key = _key(level, c)
        stmt = (sa.select(key.label("k"), sa.func.count().label("n"), late.label("late"))
                .select_from(_joined(o.__table__, c, level).outerjoin(route, route.id == o.route_id))
                .where(*still_open, *_where(actor, filters, c)).group_by(key))
    return [(_shown_key(level, k), int(n), int(late or 0)) for k, n, late in db.session.execute(stmt).all()]


def _results_totals(actor: Actor, start: dt.date, end: dt.date, filters: Filters) -> dict[int, int]:
    t = CounterDailyTotal
    stmt = (sa.select(t.counter_id, sa.func.sum(t.results_total)).where(t.day.between(start, end))
            .group_by(t.counter_id))
    if actor.role is Role.COUNTER_STAFF:
        stmt = stmt.where(t.counter_id == actor.counter_id)
    if filters.counter is not None:
        stmt = stmt.where(t.counter_id == filters.counter)
    if actor.role is Role.SUPERVISOR:
        stmt = stmt.where(t.counter_id.in_(
            sa.select(Counter.id).where(Counter.post_office_id == actor.post_office_id)))
    if actor.role is Role.DISTRICT_OFFICER:
        stmt = stmt.where(t.counter_id.in_(_counters_in_area(actor)))
    return {k: int(v) for k, v in db.session.execute(stmt).all()}


def _counters_in_area(actor: Actor) -> sa.Select:
    """The counters placed in the officer's area: their own unit is the area, or a commune that
    counts for it (one query, where each counter used to cost one)."""
    from delivery_service.reports.units import successor_communes

    communes = successor_communes([actor.area_unit_id]) if actor.area_unit_id else []
    inside = sa.select(ReportUnit.unit_id).where(ReportUnit.commune_id.in_(communes))
    return sa.select(Counter.id).where(sa.or_(Counter.unit_id == actor.area_unit_id,
                                              Counter.unit_id.in_(inside)))


def _label(level: Level, rows: list[Row], units: int = -1) -> None:
    """Each row's name and code, read in one query per report. The names of administrative units
    are kept by the process for the unit map's version ``units`` (units change only by an import,
    which rebuilds the map)."""
    from delivery_service.reports.models import ReportArea

    ids = [r.key for r in rows if r.key is not None]
    if not ids:
        return
    if level in (Level.PROVINCE, Level.DISTRICT, Level.COMMUNE):
        names = _unit_names(ids, units)
    else:
        model, name, code = {Level.AREA: (ReportArea, ReportArea.name, ReportArea.code),
                             Level.POST_OFFICE: (PostOffice, PostOffice.name, PostOffice.code),
                             Level.ROUTE: (PostalRoute, PostalRoute.name, PostalRoute.code),
                             Level.COUNTER: (Counter, Counter.name, Counter.code),
                             Level.COURIER: (User, User.full_name, User.username)}[level]
        q = sa.select(model.id, name, code).where(model.id.in_(ids))
        names = {i: (n, c) for i, n, c in db.session.execute(q)}
    for row in rows:
        if row.key is not None:
            row.label, row.code = names.get(row.key, (f"#{row.key}", None))


def _unit_names(ids: list[int], units: int) -> dict[int, tuple[str, str | None]]:
    """{unit id: (name as shown, code)}, read for the ids this process has not read at this version
    of the unit map (-1: read them all)."""
    kept = current_app.extensions.get("report_unit_names")
    if kept is None or kept[0] != (str(db.engine.url), units) or units < 0:
        kept = ((str(db.engine.url), units), {})
        if units >= 0:
            current_app.extensions["report_unit_names"] = kept
    names: dict[int, tuple[str, str | None]] = kept[1]
    missing = [i for i in ids if i not in names]
    if missing:
        q = (sa.select(AdminUnit.id, AdminUnit.kind, AdminUnit.name, AdminUnit.code)
             .where(AdminUnit.id.in_(missing)))
        names.update({i: (unit_name(kind, name), code) for i, kind, name, code in db.session.execute(q)})
    return names


def unit_name(kind: str, name: str) -> str:
    return name if name.lower().startswith(kind.lower()) else f"{kind.capitalize()} {name}"


def orders_query(actor: Actor, start: dt.date, end: dt.date, filters: Filters) -> sa.Select:
    """The orders received in the period within the actor's scope and the filters (drill-down's last
    step), newest first."""
    _check(actor)
    o = DeliveryOrder
    c, route = _order_columns()
    return (sa.select(o).join(c.unit, c.unit.unit_id == o.commune_id).outerjoin(route, route.id == o.route_id)
            .where(*_received_between(start, end), *_where(actor, filters, c))
            .order_by(o.id.desc()))


CHART_MEASURES = ("received", "delivered", "returned", "abandoned")  # the trend chart's: counts and rate


def weekly_trend(actor: Actor, start: dt.date, end: dt.date, filters: Filters = Filters(), *,
                 catch_up: bool = True, memo: bool = False,
                 measures: tuple[str, ...] | None = None) -> list[tuple[dt.date, Row]]:
    """Per week (Monday first) of the period: the same figures, summed in the database. Whole weeks
    are read from ``report_weeks``, the days at either end from ``report_days``. ``measures``: only
    these are summed (the others stay 0, the histogram empty); all when None. ``memo`` as for
    :func:`figures`: the trend reads only the rollups, so it is returned as kept while the fold has not
    moved, and after it has, the weeks from the earliest to the latest day changed are summed again."""
    state = _prepare(actor, catch_up)
    counts = (*MEASURES, *HISTOGRAM) if measures is None else tuple(measures)
    if not memo or not _memo_allowed(actor, filters):
        return _weekly_trend(actor, start, end, filters, counts)
    key = _memo_key("trend", actor, start, end, filters, counts)
    kept: tuple[State, list[tuple[dt.date, Row]]] | None = _recall(key)
    if kept is None:
        weeks = _weekly_trend(actor, start, end, filters, counts)
    else:
        changed = changed_since(kept[0], state)
        weeks = kept[1]
        if changed is not None and changed[0] <= end and changed[1] >= start:
            # the weeks of the days changed, whole (cut to the period)
            first = start if changed[0] <= start else max(
                start, changed[0] - dt.timedelta(days=changed[0].weekday()))
            last = end if changed[1] >= end else min(
                end, changed[1] + dt.timedelta(days=6 - changed[1].weekday()))
            lo, hi = (d - dt.timedelta(days=d.weekday()) for d in (first, last))
            weeks = [*(w for w in weeks if w[0] < lo), *_weekly_trend(actor, first, last, filters, counts),
                     *(w for w in weeks if w[0] > hi)]
    _remember(key, (state, weeks), len(weeks))
    return weeks


def _weekly_trend(actor: Actor, start: dt.date, end: dt.date, filters: Filters,
                  counts: tuple[str, ...]) -> list[tuple[dt.date, Row]]:
    first_monday = start + dt.timedelta(days=-start.weekday() % 7)
    last_monday = end - dt.timedelta(days=(end.weekday() + 1) % 7 + 6)  # of the last whole week
    d = report_days
    pg = db.engine.dialect.name == "postgresql"
    monday = sa.cast(sa.func.date_trunc("week", d.c.day), sa.Date) if pg else sa.func.date(
        d.c.day, "weekday 0", "-6 days")
    spans: list[tuple[sa.Table, Any, sa.ColumnElement[bool]]] = []
    edges = [(start, end)]
    if first_monday <= last_monday:
        w = report_weeks
        spans.append((w, w.c.week, w.c.week.between(first_monday, last_monday)))
        edges = [(start, first_monday - dt.timedelta(days=1)), (last_monday + dt.timedelta(days=7), end)]
    spans += [(d, monday, d.c.day.between(a, b)) for a, b in edges if a <= b]
    if pg:
        # One union of the rows, joined and summed once: PostgreSQL scans it in parallel.
        columns = (*KEY_COLUMNS, *counts)
        r = _union([_select(table, when, week.label("week"), columns=columns) for table, week, when in spans])
        c = Cols.of_rollup(r)
        stmt = (sa.select(r.c.week, *_sum_columns(r, counts))
                .select_from(r.join(c.unit, c.unit.unit_id == r.c.commune_id))
                .where(*_where(actor, filters, c)).group_by(r.c.week).order_by(r.c.week))
    else:
        # SQLite would materialise that union (hundreds of thousands of rows) before joining it:
        # each part sums its own rows per week instead, in its primary key's order, and the weeks
        # that straddle two parts are added up here.
        r = _union([_weekly_part(actor, filters, counts, *span) for span in spans])
        sums = [sa.cast(sa.func.sum(r.c[m]), sa.BigInteger).label(m) for m in counts]
        stmt = sa.select(r.c.week, *sums).group_by(r.c.week).order_by(r.c.week)
    result = []
    for values in db.session.execute(stmt).mappings():
        week = values["week"]
        week = dt.date.fromisoformat(week) if isinstance(week, str) else week
        row = Row(key=None, label=week.isoformat())
        _add(row, values, counts)
        result.append((week, row))
    return result


def _weekly_part(actor: Actor, filters: Filters, counts: tuple[str, ...], table: sa.Table, week: Any,
                 when: sa.ColumnElement[bool]) -> sa.Select:
    """One rollup's sums per week within the actor's scope and the filters."""
    c = Cols.of_rollup(table)
    return (sa.select(week.label("week"), *_sum_columns(table, counts))
            .select_from(table.join(c.unit, c.unit.unit_id == table.c.commune_id))
            .where(when, *_where(actor, filters, c)).group_by(week))
