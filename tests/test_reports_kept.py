"""Figures kept across a change: the year rollup, the fold's record of the days each batch changed,
and the figures and trends a process keeps (``memo``) brought up to date from that record — always
equal to the same computed from scratch, on SQLite and PostgreSQL.

The data set is test_reports' hand-computed week of March 2026 (and two orders across the 2025
reform); the changes below are written as the services would, then folded as the fold job would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from test_reports import ADMIN, TODAY, S, at, book, route, unit  # noqa: F401  (book)

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor
from delivery_service.extensions import db
from delivery_service.orders.models import OrderEvent
from delivery_service.reports import figures as figuring
from delivery_service.reports import fold as folding
from delivery_service.reports.figures import (
    CHART_MEASURES,
    Filters,
    Level,
    figures,
    period_parts,
    weekly_trend,
)
from delivery_service.reports.models import (
    COUNTS,
    KEYS,
    ReportChange,
    ReportCursor,
    ReportOrder,
    report_days,
    report_months,
    report_weeks,
    report_years,
)
from delivery_service.reports.units import rebuild_unit_map
from delivery_service.units.models import UnitLevel

D = dt.date


@pytest.fixture
def data(request, app):
    """test_reports' data set (its ``book`` fixture), folded, to add orders to."""
    written = request.getfixturevalue("book")
    folding.fold()
    return written


def every_figure(report) -> list[tuple]:
    def one(r):
        return (r.key, r.label, r.code, r.received, r.received_results, r.delivered, r.on_time,
                r.failed_attempts, r.returned, r.cancelled, r.abandoned, r.open, r.overdue, r.results_total,
                tuple(r.histogram))
    return [one(r) for r in report.rows] + [one(report.total)]


def every_week(weeks) -> list[tuple]:
    return [(w, r.received, r.received_results, r.delivered, r.on_time, r.failed_attempts, r.returned,
             r.cancelled, r.abandoned, tuple(r.histogram)) for w, r in weeks]


@contextmanager
def tables_read() -> Iterator[list[str]]:
    """The rollups each statement run inside the block reads."""
    found: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        found.extend(t for t in ("report_days", "report_weeks", "report_months", "report_years")
                     if t in statement)
    sa.event.listen(db.engine, "before_cursor_execute", before)
    try:
        yield found
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)


def deliver(data, commune: str, received: str, delivered: str) -> None:
    """One more order of commune ``commune`` on QNG-01, received and delivered on those days."""
    o = data.order(unit(commune), at(received), "2026-12-31")
    data.event(o, S.CREATED, S.ASSIGNED, at(received, "09:01"), by=None, route_id=route("QNG-01").id)
    data.event(o, S.ASSIGNED, S.HANDED_TO_COURIER, at(delivered, "08:00"))
    data.event(o, S.HANDED_TO_COURIER, S.OUT_FOR_DELIVERY, at(delivered, "08:30"))
    data.event(o, S.OUT_FOR_DELIVERY, S.DELIVERED, at(delivered, "10:00"))
    db.session.commit()
    assert folding.fold() == 5


# --- the parts of a period ------------------------------------------------------------------------

def test_a_period_is_read_by_years_then_months_then_days():
    def shape(start, end):
        return [(p.table.name, p.first.isoformat(), p.last.isoformat()) for p in period_parts(start, end)]

    assert shape(D(2026, 1, 1), D(2026, 12, 31)) == [("report_years", "2026-01-01", "2026-01-01")]
    assert shape(D(2025, 1, 1), D(2026, 12, 31)) == [("report_years", "2025-01-01", "2026-01-01")]
    assert shape(D(2025, 12, 15), D(2027, 2, 10)) == [
        ("report_days", "2025-12-15", "2025-12-31"), ("report_years", "2026-01-01", "2026-01-01"),
        ("report_months", "2027-01-01", "2027-01-01"), ("report_days", "2027-02-01", "2027-02-10")]
    assert shape(D(2026, 1, 15), D(2026, 12, 14)) == [
        ("report_days", "2026-01-15", "2026-01-31"), ("report_months", "2026-02-01", "2026-11-01"),
        ("report_days", "2026-12-01", "2026-12-14")]
    assert shape(D(2026, 3, 3), D(2026, 3, 5)) == [("report_days", "2026-03-03", "2026-03-05")]


@given(st.dates(D(2024, 1, 1), D(2028, 12, 31)), st.integers(0, 1500))
def test_the_parts_cover_each_day_once(start, length):
    end = start + dt.timedelta(days=length)
    parts = period_parts(start, end)
    assert parts[0].start == start and parts[-1].end == end
    for a, b in zip(parts, parts[1:], strict=False):
        assert b.start == a.end + dt.timedelta(days=1)
    for p in parts:
        assert p.first <= p.last and p.start <= p.end
        if p.table.name == "report_years":
            assert (p.start.month, p.start.day, p.end.month, p.end.day) == (1, 1, 12, 31)
        elif p.table.name == "report_months":
            assert p.start.day == 1 and (p.end + dt.timedelta(days=1)).day == 1


# --- the year rollup and the record of changes ------------------------------------------------------

def test_the_fold_keeps_years_and_records_the_days_each_batch_changed(data):
    by_months, years = _years_from_months(), _years()
    assert years == by_months and {k[0] for k in years} == {"2025", "2026"}
    # The data set was folded in one batch: from 30 Jun 2025 to 6 March 2026 (o3 returned, o7
    # received; o7's handover on the 7th changes no figure).
    changes = db.session.scalars(sa.select(ReportChange)).all()
    assert [(c.from_event_id, c.first_day, c.last_day) for c in changes] == [
        (0, D(2025, 6, 30), D(2026, 3, 6))]
    assert changes[0].event_id == folding.pending()[0]
    # A courier's offline delivery of 4 March, folded today: that day.
    deliver(data, "21025", "2026-03-03", "2026-03-04")
    last = db.session.scalars(sa.select(ReportChange).order_by(ReportChange.event_id.desc())).first()
    assert (last.from_event_id, last.first_day, last.last_day) == (changes[0].event_id, D(2026, 3, 3),
                                                                   D(2026, 3, 4))
    assert folding.fold() == 0  # nothing new: no batch, no record


# --- kept figures brought up to date -----------------------------------------------------------------

@pytest.mark.parametrize("level", [Level.DISTRICT, Level.COMMUNE, Level.PROVINCE])
def test_kept_figures_are_brought_up_to_date_for_the_days_changed(data, level):
    period = (D(2026, 2, 20), D(2026, 12, 31))  # days 20-28 Feb, then months March..December
    kept = figures(ADMIN, *period, level, today=TODAY, memo=True)
    assert figures(ADMIN, *period, level, today=TODAY, memo=True) is kept  # nothing changed

    deliver(data, "21028", "2026-03-06", "2026-03-07")
    with tables_read() as read:
        now = figures(ADMIN, *period, level, today=TODAY, memo=True)
    assert read == ["report_months"]  # February's days were kept
    assert every_figure(now) == every_figure(figures(ADMIN, *period, level, today=TODAY))
    assert now.total.received == kept.total.received + 1 and now.total.delivered == kept.total.delivered + 1

    deliver(data, "21172", "2026-02-24", "2026-02-25")  # February's days only
    with tables_read() as read:
        now = figures(ADMIN, *period, level, today=TODAY, memo=True)
    assert read == ["report_days"]
    assert every_figure(now) == every_figure(figures(ADMIN, *period, level, today=TODAY))

    # An event folded that changes no figure (a handover, counted only when the order closes):
    # nothing is read again, and the open orders are counted anew.
    o = data.order(unit("21025"), at("2026-03-05"), "2026-03-09")
    data.event(o, S.CREATED, S.ASSIGNED, at("2026-03-05", "10:00"), by=None, route_id=route("QNG-01").id)
    db.session.commit()
    folding.fold()
    now = figures(ADMIN, *period, level, today=TODAY, memo=True)
    data.event(o, S.ASSIGNED, S.HANDED_TO_COURIER, at("2026-03-06", "08:00"))
    db.session.commit()
    assert folding.fold() == 1
    assert db.session.scalars(sa.select(ReportChange.first_day).order_by(
        ReportChange.event_id.desc())).first() is None
    with tables_read() as read:
        again = figures(ADMIN, *period, level, today=TODAY, memo=True)
    assert read == [] and every_figure(again) == every_figure(figures(ADMIN, *period, level, today=TODAY))
    assert again.total.open == now.total.open


def test_the_year_and_the_day_that_decides_overdue(data):
    year = (D(2026, 1, 1), D(2026, 12, 31))
    before = figures(ADMIN, *year, Level.DISTRICT, today=TODAY, memo=True)
    with tables_read() as read:
        assert [r.overdue for r in before.rows] == [1]  # o6, due 6 March
        later = figures(ADMIN, *year, Level.DISTRICT, today=D(2026, 3, 25), memo=True)
    assert read == []  # the sums kept: only the open orders counted again, for the new day
    assert [(r.open, r.overdue) for r in later.rows] == [(2, 2)]  # o7 was due on 20 March
    assert every_figure(later) == every_figure(figures(ADMIN, *year, Level.DISTRICT, today=D(2026, 3, 25)))
    deliver(data, "21025", "2026-03-02", "2026-03-02")
    with tables_read() as read:
        now = figures(ADMIN, *year, Level.DISTRICT, today=TODAY, memo=True)
    assert read == ["report_years"]
    assert every_figure(now) == every_figure(figures(ADMIN, *year, Level.DISTRICT, today=TODAY))


def test_what_another_process_folded_or_rebuilt_is_seen(data, app):
    """Nothing tells a process about a change but the database: a fold by another process (here the
    direct call, as the job makes it), deleted records, a rebuilt unit map."""
    period = (D(2026, 3, 1), D(2026, 3, 31))
    figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)
    deliver(data, "21025", "2026-03-04", "2026-03-04")
    deliver(data, "21028", "2026-03-05", "2026-03-05")  # two batches since the figures were kept
    now = figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)
    assert every_figure(now) == every_figure(figures(ADMIN, *period, Level.DISTRICT, today=TODAY))

    # The records of the changes since were deleted as old: everything is read again.
    deliver(data, "21172", "2026-03-06", "2026-03-06")
    db.session.execute(sa.delete(ReportChange))
    db.session.commit()
    with tables_read() as read:
        now = figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)
    assert read == ["report_months"]
    assert every_figure(now) == every_figure(figures(ADMIN, *period, Level.DISTRICT, today=TODAY))

    # A rebuilt unit map may group the same rows otherwise: everything is read again.
    rebuild_unit_map()
    with tables_read() as read:
        figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)
    assert read == ["report_months"]


def test_kept_trends_are_brought_up_to_date_for_the_weeks_changed(data):
    period = (D(2026, 2, 18), D(2026, 3, 29))  # Wednesday 18 Feb .. Sunday 29 March
    for measures in (CHART_MEASURES, None):
        weekly_trend(ADMIN, *period, memo=True, measures=measures)
    deliver(data, "21028", "2026-03-17", "2026-03-18")
    bounds: set = set()  # the dates the statements were given

    def before(conn, cursor, statement, parameters, context, executemany):
        values = parameters.values() if isinstance(parameters, dict) else parameters
        bounds.update(str(v)[:10] for v in values if isinstance(v, dt.date | str))
    sa.event.listen(db.engine, "before_cursor_execute", before)
    try:
        kept = weekly_trend(ADMIN, *period, memo=True, measures=CHART_MEASURES)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", before)
    assert "2026-03-16" in bounds  # the week changed
    assert not bounds & {"2026-02-18", "2026-02-23", "2026-03-02", "2026-03-23"}  # the others kept
    for measures in (CHART_MEASURES, None):
        kept = weekly_trend(ADMIN, *period, memo=True, measures=measures)
        assert every_week(kept) == every_week(weekly_trend(ADMIN, *period, measures=measures))
    assert [(w.isoformat(), r.received, r.delivered) for w, r in kept] == [
        ("2026-03-02", 7, 3), ("2026-03-16", 1, 1)]
    # A change in the first, partial week: the whole period again.
    deliver(data, "21025", "2026-02-19", "2026-02-20")
    kept = weekly_trend(ADMIN, *period, memo=True)
    assert every_week(kept) == every_week(weekly_trend(ADMIN, *period))
    assert kept[0][0] == D(2026, 2, 16) and kept[0][1].received == 1


def test_an_officer_and_filters_keep_their_own_figures(data):
    officer = Actor(label="officer", role=Role.DISTRICT_OFFICER,
                    area_unit_id=unit("51", level=UnitLevel.PROVINCE).id)
    district = Filters(district=unit("522", legacy=True, level=UnitLevel.DISTRICT).id)
    period = (D(2026, 1, 1), D(2026, 12, 31))
    for actor, filters in ((officer, Filters()), (ADMIN, district)):
        figures(actor, *period, Level.COMMUNE, filters, today=TODAY, memo=True)
        deliver(data, "21028", "2026-03-10", "2026-03-11")
        now = figures(actor, *period, Level.COMMUNE, filters, today=TODAY, memo=True)
        assert every_figure(now) == every_figure(figures(actor, *period, Level.COMMUNE, filters, today=TODAY))
        assert now.total.received > 0


def _years_from_months() -> dict:
    months = sa.select(sa.func.substr(sa.cast(report_months.c.month, sa.String), 1, 4).label("y"),
                       *[report_months.c[k] for k in KEYS],
                       *[sa.func.sum(report_months.c[c]).label(c) for c in COUNTS]).group_by(
        sa.text("1"), *[report_months.c[k] for k in KEYS])
    return {(str(r[0]), *r[1:5]): tuple(r[5:]) for r in db.session.execute(months) if any(r[5:])}


def _years() -> dict:
    return {(str(r[0])[:4], *r[1:5]): tuple(r[5:]) for r in db.session.execute(
        sa.select(report_years.c.year, *[report_years.c[k] for k in KEYS], *[report_years.c[c] for c in COUNTS]))}


def test_migration_0025_fills_the_years_from_the_months(data):
    from flask_migrate import downgrade, upgrade

    expected = _years_from_months()
    assert expected and _years() == expected
    db.session.remove()
    downgrade(revision="0024")
    upgrade()
    assert _years() == expected
    assert folding.state()[2] == 0  # the unit map's version starts at 0
    # The cursor as the fold of this revision would have left it: nothing to make up for.
    cursor, recorded = db.session.execute(sa.select(ReportCursor.event_id, ReportCursor.recorded_event_id)).one()
    assert cursor == recorded and cursor > 0
    assert every_figure(figures(ADMIN, D(2026, 1, 1), D(2026, 12, 31), Level.DISTRICT, today=TODAY)) == \
        every_figure(figures(ADMIN, D(2026, 1, 1), D(2026, 12, 30), Level.DISTRICT, today=TODAY))


# --- a broken record of changes, a fold by older code, a refold from scratch ------------------------

def test_a_record_missing_in_the_middle_reads_everything(data):
    """The batches form one chain: a row missing between the kept cursor and the current one (pruned
    by a node whose clock is ahead, a batch of older code) is seen, not only one missing at the start."""
    period = (D(2026, 2, 20), D(2026, 12, 31))  # days 20-28 Feb, then months
    figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)
    deliver(data, "21025", "2026-03-10", "2026-03-10")
    deliver(data, "21028", "2026-02-24", "2026-02-24")  # February's days: this record goes
    middle = folding.pending()[0]
    deliver(data, "21172", "2026-03-11", "2026-03-11")
    db.session.execute(sa.delete(ReportChange).where(ReportChange.event_id == middle))
    db.session.commit()
    with tables_read() as read:
        now = figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)
    assert sorted(read) == ["report_days", "report_months"]
    assert every_figure(now) == every_figure(figures(ADMIN, *period, Level.DISTRICT, today=TODAY))


def _refold_from_scratch(how: str) -> None:
    """Every rollup emptied and the cursor back to 0: its row deleted (and made again by the fold), or
    moved back by hand."""
    for table in (report_days, report_weeks, report_months, report_years, ReportOrder.__table__):
        db.session.execute(sa.delete(table))
    if how == "row deleted":
        db.session.execute(sa.delete(ReportChange))
        db.session.execute(sa.delete(ReportCursor))
    else:
        db.session.execute(sa.update(ReportCursor).values(event_id=0))
    db.session.commit()


@pytest.mark.parametrize("how", ["row deleted", "moved back"])
def test_a_refold_from_scratch_past_the_kept_cursor_reads_everything(data, how):
    """A refold (after a fix in how events count, say) that passes the kept cursor again, with a
    batch ending right there: the chain of records looks whole, the cursor's generation tells."""
    period = (D(2026, 2, 20), D(2026, 12, 31))
    # What the refold corrects: a February day counted wrong.
    row = db.session.execute(sa.select(report_days).where(report_days.c.day == D(2026, 3, 2))).mappings().first()
    db.session.execute(sa.insert(report_days).values({**row, "day": D(2026, 2, 23), "received": 5}))
    db.session.commit()
    wrong = figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)
    kept_cursor, _, units, _ = folding.state()
    _refold_from_scratch(how)
    assert folding.fold(db.session.scalar(sa.select(sa.func.count()).where(OrderEvent.id <= kept_cursor)))
    # A row made again starts the unit map's version at 0: it may well be the kept one again.
    db.session.execute(sa.update(ReportCursor).values(units_version=units))
    db.session.commit()
    assert folding.pending()[0] == kept_cursor
    deliver(data, "21025", "2026-03-10", "2026-03-10")
    assert {(c.from_event_id, c.event_id) for c in db.session.scalars(sa.select(ReportChange))} == {
        (0, kept_cursor), (kept_cursor, folding.pending()[0])}
    now = figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)
    assert every_figure(now) == every_figure(figures(ADMIN, *period, Level.DISTRICT, today=TODAY))
    assert now.total.received == wrong.total.received - 5 + 1


def _fold_as_old_code() -> None:
    """What a fold by code older than migration 0025 leaves (a node not yet upgraded): the cursor
    moved, the days, weeks and months added to; report_years, report_changes and the cursor's
    recorded_event_id as they were."""
    years = [dict(r) for r in db.session.execute(sa.select(report_years)).mappings()]
    before = folding.pending()[0]
    assert folding.fold()
    db.session.execute(sa.delete(report_years))
    if years:
        db.session.execute(sa.insert(report_years), years)
    db.session.execute(sa.delete(ReportChange).where(ReportChange.from_event_id == before))
    db.session.execute(sa.update(ReportCursor).values(recorded_event_id=before))
    db.session.commit()


def test_a_fold_by_older_code_during_an_upgrade_is_made_up_for(data):
    year = (D(2026, 1, 1), D(2026, 12, 31))
    kept = figures(ADMIN, *year, Level.DISTRICT, today=TODAY, memo=True)
    o = data.order(unit("21025"), at("2026-03-03"), "2026-12-31")
    data.event(o, S.CREATED, S.ASSIGNED, at("2026-03-03", "09:01"), by=None, route_id=route("QNG-01").id)
    db.session.commit()
    old, _ = folding.pending()
    _fold_as_old_code()
    assert _years() != _years_from_months()  # the old fold's event is not in the year yet
    # Nothing new to fold: the next fold (every report read makes one) makes the years again from the
    # months, and records a change of every day.
    assert folding.fold() == 0
    assert _years() == _years_from_months()
    cursor, recorded = db.session.execute(sa.select(ReportCursor.event_id, ReportCursor.recorded_event_id)).one()
    assert cursor == recorded
    change = db.session.get(ReportChange, cursor)
    assert (change.from_event_id, change.first_day, change.last_day) == (old, dt.date.min, dt.date.max)
    now = figures(ADMIN, *year, Level.DISTRICT, today=TODAY, memo=True)
    assert now.total.received == kept.total.received + 1
    assert every_figure(now) == every_figure(figures(ADMIN, *year, Level.DISTRICT, today=TODAY))
    # ...the same without the days, from the months and days (no year part)
    by_days = every_figure(figures(ADMIN, D(2026, 1, 1), D(2026, 12, 30), Level.DISTRICT, today=TODAY))
    assert every_figure(now) == by_days
    # A fold by the old code with events after it: made up for first, then the new events folded.
    deliver(data, "21028", "2026-03-05", "2026-03-05")  # folded by the new code
    o = data.order(unit("21028"), at("2026-03-06"), "2026-12-31")
    data.event(o, S.CREATED, S.ASSIGNED, at("2026-03-06", "09:01"), by=None, route_id=route("QNG-01").id)
    db.session.commit()
    _fold_as_old_code()
    deliver(data, "21172", "2026-03-07", "2026-03-07")
    assert _years() == _years_from_months()
    now = figures(ADMIN, *year, Level.DISTRICT, today=TODAY, memo=True)
    assert every_figure(now) == every_figure(figures(ADMIN, *year, Level.DISTRICT, today=TODAY))
    assert now.total.received == kept.total.received + 4


# --- what a process keeps is bounded -----------------------------------------------------------------

def test_the_memo_keeps_the_most_recently_used(data, monkeypatch):
    monkeypatch.setattr(figuring, "MEMO_ENTRIES", 2)
    a, b, c = (D(2026, 3, 1), D(2026, 3, 31)), (D(2026, 1, 1), D(2026, 12, 31)), (D(2026, 3, 2), D(2026, 3, 8))
    first = figures(ADMIN, *a, Level.DISTRICT, today=TODAY, memo=True)
    second = figures(ADMIN, *b, Level.DISTRICT, today=TODAY, memo=True)
    assert figures(ADMIN, *a, Level.DISTRICT, today=TODAY, memo=True) is first  # used: the most recent
    figures(ADMIN, *c, Level.DISTRICT, today=TODAY, memo=True)  # b, the least recently used, goes
    assert figures(ADMIN, *a, Level.DISTRICT, today=TODAY, memo=True) is first
    assert figures(ADMIN, *b, Level.DISTRICT, today=TODAY, memo=True) is not second


def test_the_memo_is_bounded_by_the_rows_it_keeps(data, monkeypatch, app):
    period = (D(2026, 2, 20), D(2026, 12, 31))
    figures(ADMIN, *period, Level.COMMUNE, today=TODAY, memo=True)
    (_, rows), = app.extensions["report_memo"].values()
    assert rows >= 4  # the rows and each part's sums
    monkeypatch.setattr(figuring, "MEMO_ROWS", rows)
    figures(ADMIN, *period, Level.DISTRICT, today=TODAY, memo=True)  # the commune report goes
    assert sum(n for _, n in app.extensions["report_memo"].values()) <= rows
    assert len(app.extensions["report_memo"]) == 1
    monkeypatch.setattr(figuring, "MEMO_ROWS", 0)  # nothing kept
    kept = figures(ADMIN, *period, Level.COMMUNE, today=TODAY, memo=True)
    assert figures(ADMIN, *period, Level.COMMUNE, today=TODAY, memo=True) is not kept
    assert not app.extensions["report_memo"]


def test_old_records_are_pruned_by_an_index(data):
    """The fold prunes report_changes after each run by folded_at: read through an index."""
    stmt = sa.delete(ReportChange).where(ReportChange.folded_at < dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    sql = str(stmt.compile(db.engine, compile_kwargs={"literal_binds": True}))
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = " ".join(r[0] for r in db.session.execute(sa.text(f"EXPLAIN {sql}")))
    else:
        plan = " ".join(str(r[-1]) for r in db.session.execute(sa.text(f"EXPLAIN QUERY PLAN {sql}")))
    db.session.rollback()
    assert "ix_report_changes_folded_at" in plan
