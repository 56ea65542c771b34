"""Report tables: rollups kept exact by folding the event log, the unit map across the 2025 reform,
reporting areas, counters' daily totals and the stored weekly reports.

How the figures stay exact (docs/reports.md): ``reports.fold`` reads order_events after its cursor,
in id order and never past the committed horizon, and adds each event's contribution to the day and
month rows of ``report_days`` / ``report_months`` in the same transaction that moves the cursor. A
correction (an order taken back out of a closed status, or a failed attempt undone) subtracts exactly
what the undone event added, from what ``report_orders`` remembers of it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from delivery_service.db import ID, UTCDateTime, created_at, fk, intpk
from delivery_service.extensions import db
from delivery_service.orgs.models import Counter
from delivery_service.units.models import AdminUnit

# Hours from handover to delivery: the histogram's upper bin edges (the last bin is open).
HOUR_EDGES = (2, 4, 8, 12, 24, 36, 48, 72, 96, 120, 168, 240, 336, 720)
BINS = len(HOUR_EDGES) + 1
MEASURES = ("received", "received_results", "delivered", "on_time", "failed_attempts", "returned",
            "cancelled", "abandoned")
HISTOGRAM = tuple(f"h{i}" for i in range(BINS))
COUNTS = MEASURES + HISTOGRAM
KEYS = ("commune_id", "route_id", "counter_id", "courier_id")


def _rollup_columns() -> list[sa.Column]:
    # Keys are never NULL (0: no route / no courier), so that the primary key can take upserts.
    return ([sa.Column(k, ID, primary_key=True) for k in KEYS]
            + [sa.Column(m, sa.Integer, nullable=False, default=0, server_default="0") for m in COUNTS])


# One row per local day (Asia/Ho_Chi_Minh) and per commune, route, counter and courier.
report_days = sa.Table("report_days", db.metadata, sa.Column("day", sa.Date, primary_key=True),
                       *_rollup_columns())
# The same by week (``week`` is its Monday), for the weekly trend.
report_weeks = sa.Table("report_weeks", db.metadata, sa.Column("week", sa.Date, primary_key=True),
                        *_rollup_columns())
# The same by month (``month`` is its first day): a report of whole months reads one of these per
# month and key.
report_months = sa.Table("report_months", db.metadata, sa.Column("month", sa.Date, primary_key=True),
                         *_rollup_columns())
# The same by calendar year (``year`` is its 1 January): a year's report reads one row per key.
report_years = sa.Table("report_years", db.metadata, sa.Column("year", sa.Date, primary_key=True),
                        *_rollup_columns())


class ReportOrder(db.Model):
    """What the fold remembers of one order, to attribute its later events and undo corrected ones."""

    __tablename__ = "report_orders"

    order_id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)
    route_id: Mapped[int] = mapped_column(ID, default=0)  # the route its events count for (0: none)
    # The day it was received: its "received" count follows its route until a courier has it.
    received_day: Mapped[dt.date | None] = mapped_column(sa.Date)
    received_commune_id: Mapped[int] = mapped_column(ID, default=0)  # where it counts as received
    handed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # start of the delivery leg
    handed_result: Mapped[bool] = mapped_column(default=False)  # handed_at is the result leg's
    # The closing event's contribution (delivered, returned, cancelled or abandoned), to undo it.
    closed_kind: Mapped[str | None] = mapped_column(sa.String(16))
    closed_day: Mapped[dt.date | None] = mapped_column(sa.Date)
    closed_commune_id: Mapped[int] = mapped_column(ID, default=0)
    closed_route_id: Mapped[int] = mapped_column(ID, default=0)
    closed_counter_id: Mapped[int] = mapped_column(ID, default=0)
    closed_courier_id: Mapped[int] = mapped_column(ID, default=0)
    closed_on_time: Mapped[bool] = mapped_column(default=False)
    closed_bin: Mapped[int | None]
    # The latest failed attempt's contribution, to undo it.
    failed_day: Mapped[dt.date | None] = mapped_column(sa.Date)
    failed_commune_id: Mapped[int] = mapped_column(ID, default=0)
    failed_route_id: Mapped[int] = mapped_column(ID, default=0)
    failed_counter_id: Mapped[int] = mapped_column(ID, default=0)
    failed_courier_id: Mapped[int] = mapped_column(ID, default=0)


class ReportCursor(db.Model):
    """The last order_events.id folded into the rollups (one row), and how many times the unit map
    was rebuilt (a figure kept by a process is regrouped after a rebuild).

    ``generation`` changes whenever the cursor's history breaks: the row made (again), the cursor
    found moved back. ``recorded_event_id`` is the cursor as the last fold that writes
    ``report_years`` and ``report_changes`` left it (moved with it by compare-and-set): when it
    differs from ``event_id``, code older than migration 0025 (a node not yet upgraded) or a hand
    moved the cursor, and the next fold makes the year rollup again from the months."""

    __tablename__ = "report_cursor"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    event_id: Mapped[int] = mapped_column(ID, default=0)
    folded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    units_version: Mapped[int] = mapped_column(default=0, server_default="0")
    generation: Mapped[int] = mapped_column(default=0, server_default="0")
    recorded_event_id: Mapped[int] = mapped_column(ID, default=0, server_default="0")


class ReportChange(db.Model):
    """One fold batch: the cursor before and after it, and the earliest and latest local days whose
    rollup rows it changed (None: none). Written in the batch's transaction, so every process can
    tell which days changed since the figures it kept (``figures`` recomputes only those); kept a
    day (``fold.CHANGES_KEPT``). The batches form one chain (each row's ``from_event_id`` is the
    previous row's ``event_id``): a link missing (pruned, or a fold by older code) is seen."""

    __tablename__ = "report_changes"
    __table_args__ = (sa.Index("ix_report_changes_folded_at", "folded_at"),)  # the pruning's

    event_id: Mapped[int] = mapped_column(ID, primary_key=True, autoincrement=False)  # cursor after
    from_event_id: Mapped[int] = mapped_column(ID)  # cursor before
    first_day: Mapped[dt.date | None] = mapped_column(sa.Date)
    last_day: Mapped[dt.date | None] = mapped_column(sa.Date)
    folded_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The cursor these batches moved: emptying it (a refold from scratch) empties them too.
    cursor_id: Mapped[int] = mapped_column(sa.ForeignKey("report_cursor.id", ondelete="CASCADE"),
                                           default=1)


class ReportUnit(db.Model):
    """Every commune ever valid (legacy or 2025), with where it counts in reports: its 2025 commune
    and province, and its district (its own before the reform; for a 2025 commune, the former
    district most of it came from)."""

    __tablename__ = "report_units"
    __table_args__ = (sa.Index("ix_report_units_district", "district_id"),
                      sa.Index("ix_report_units_province", "province_id"))

    unit_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("admin_units.id", ondelete="CASCADE"),
                                         primary_key=True, autoincrement=False)
    commune_id: Mapped[int] = mapped_column(fk("admin_units.id"), index=True)
    province_id: Mapped[int] = mapped_column(fk("admin_units.id"))
    district_id: Mapped[int | None] = mapped_column(fk("admin_units.id"))


class ReportArea(db.Model):
    """A reporting area an office defines as a set of communes (a former district, a postal delivery
    area…): every figure is available for it."""

    __tablename__ = "report_areas"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    # The unit whose officers own it (None: the whole service's).
    owner_unit_id: Mapped[int | None] = mapped_column(fk("admin_units.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    created_at: Mapped[created_at]

    communes: Mapped[list[AdminUnit]] = relationship(secondary="report_area_communes",
                                                     order_by="AdminUnit.name")


report_area_communes = sa.Table(
    "report_area_communes",
    db.metadata,
    sa.Column("area_id", ID, sa.ForeignKey("report_areas.id", ondelete="CASCADE"), primary_key=True),
    # 2025 communes (report_units.commune_id): legacy ones are stored as their successors.
    sa.Column("unit_id", ID, sa.ForeignKey("admin_units.id", ondelete="RESTRICT"), primary_key=True),
    sa.Index("ix_report_area_communes_unit_id", "unit_id"),
)


class CounterDailyTotal(db.Model):
    """All the results a counter handed out on a day (by post or not), as the counter reports it:
    the denominator of the share sent by post."""

    __tablename__ = "counter_daily_totals"
    __table_args__ = (sa.CheckConstraint("results_total >= 0", name="total_positive"),)

    counter_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("counters.id", ondelete="CASCADE"),
                                            primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    results_total: Mapped[int]
    reported_by_user_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    reported_by_client_id: Mapped[int | None] = mapped_column(fk("api_clients.id", ondelete="SET NULL"))
    updated_at: Mapped[created_at]

    counter: Mapped[Counter] = relationship()


class WeeklyReport(db.Model):
    """A stored weekly PDF report for one district, province or area (or the whole service)."""

    __tablename__ = "weekly_reports"
    __table_args__ = (sa.UniqueConstraint("period_start", "scope", name="uq_weekly_reports_period_scope"),)

    id: Mapped[intpk]
    period_start: Mapped[dt.date] = mapped_column(sa.Date)
    period_end: Mapped[dt.date] = mapped_column(sa.Date)
    # "all", "province:<unit id>", "district:<unit id>" or "area:<area id>"
    scope: Mapped[str] = mapped_column(sa.String(48))
    title: Mapped[str] = mapped_column(sa.String(300))
    file_name: Mapped[str] = mapped_column(sa.String(255))  # under REPORT_FILES_DIR
    size_bytes: Mapped[int]
    created_at: Mapped[created_at]


def _events_written() -> None:
    from delivery_service.reports.fold import events_written

    events_written()  # with Redis, a background fold of the new events


# Subscribed with the models, which every app imports (as webhooks do).
from delivery_service.orders import watch  # noqa: E402

watch.subscribe(_events_written)
