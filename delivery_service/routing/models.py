"""Coverage rules finer than a commune, per-day route loads, and sequenced daily runs."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from delivery_service.db import ID, UTCDateTime, created_at, fk, intpk, str_enum
from delivery_service.extensions import db
from delivery_service.orgs.models import PostalRoute
from delivery_service.units.models import AdminUnit


class PartKind(enum.StrEnum):
    HAMLET = "hamlet"  # thôn, xóm, tổ dân phố, khu phố…
    STREET = "street"


class RouteRule(db.Model):
    """Part of a commune a route covers: the addresses naming a hamlet or a street."""

    __tablename__ = "route_rules"
    __table_args__ = (
        sa.UniqueConstraint("route_id", "commune_id", "kind", "phrase_key"),
        sa.Index("ix_route_rules_commune_id", "commune_id"),
    )

    id: Mapped[intpk]
    route_id: Mapped[int] = mapped_column(fk("postal_routes.id", ondelete="CASCADE"))
    commune_id: Mapped[int] = mapped_column(fk("admin_units.id"))
    kind: Mapped[PartKind] = mapped_column(str_enum(PartKind, 16, "part_kind"))
    phrase: Mapped[str] = mapped_column(sa.String(120))  # as typed (NFC), shown to people
    phrase_key: Mapped[str] = mapped_column(sa.String(120))  # routes.text.fold(phrase), matched
    created_at: Mapped[created_at]

    route: Mapped[PostalRoute] = relationship()
    commune: Mapped[AdminUnit] = relationship()


class RouteDayLoad(db.Model):
    """How many orders a route has on one day: reserved with a conditional UPDATE, so that two
    concurrent intakes can never both take the last place."""

    __tablename__ = "route_day_loads"
    __table_args__ = (sa.CheckConstraint("orders >= 0", name="orders_positive"),)

    route_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("postal_routes.id", ondelete="CASCADE"),
                                          primary_key=True)
    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    orders: Mapped[int] = mapped_column(default=0)


class RouteRun(db.Model):
    """The sequenced run of a route on a day."""

    __tablename__ = "route_runs"
    __table_args__ = (sa.UniqueConstraint("route_id", "run_date"),)

    id: Mapped[intpk]
    route_id: Mapped[int] = mapped_column(fk("postal_routes.id", ondelete="CASCADE"))
    run_date: Mapped[dt.date] = mapped_column(sa.Date)
    sequenced_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sequenced_by_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    return_to_office: Mapped[bool]
    start_latitude: Mapped[float]
    start_longitude: Mapped[float]
    stops: Mapped[int]
    orders: Mapped[int]
    total_m: Mapped[float]
    return_m: Mapped[float]
    version: Mapped[int] = mapped_column(default=1)  # counts re-sequencings
    # "road" or "straight_line": what the legs were measured on (None: a run from before migration 0024)
    distances: Mapped[str | None] = mapped_column(sa.String(16))
    # Re-sequenced during its day from the courier's last known position: when they were there (the
    # start of the ETAs); None: the run starts at the post office at the start of the shift.
    start_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The courier who works it: the route's courier when the run was made, kept up to date by a change
    # of the route's courier until the run's day and no longer after it, so that the run of a past day
    # names and counts the one who worked it (migration 0034). None: the route had no courier.
    courier_id: Mapped[int | None] = mapped_column(fk("users.id"))

    route: Mapped[PostalRoute] = relationship()


class RunStop(db.Model):
    """One order's place in a run; orders at the same address share a stop number."""

    __tablename__ = "run_stops"
    __table_args__ = (sa.Index("ix_run_stops_order_id", "order_id"),)

    run_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("route_runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    order_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("delivery_orders.id", ondelete="CASCADE"),
                                          primary_key=True)
    stop_no: Mapped[int]
    latitude: Mapped[float]
    longitude: Mapped[float]
    estimated: Mapped[bool]  # placed by a stand-in (commune centroid), not the address
    located: Mapped[bool]  # False: no coordinate at all, placed at the post office
    leg_m: Mapped[float]
    cumulative_m: Mapped[float]
