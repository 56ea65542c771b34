"""Post offices, one-stop counters and the postal routes that cover communes."""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from delivery_service.db import ID, created_at, fk, intpk, str_enum
from delivery_service.extensions import db
from delivery_service.units.models import AdminUnit


class CounterLevel(enum.StrEnum):
    PROVINCE_CENTRE = "province_centre"  # Trung tâm Phục vụ hành chính công tỉnh
    DISTRICT = "district"  # bộ phận một cửa cấp huyện (until 30 Jun 2025)
    COMMUNE = "commune"  # bộ phận một cửa cấp xã


class PostOffice(db.Model):
    """A post office (bưu cục) that receives items and runs delivery routes."""

    __tablename__ = "post_offices"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    unit_id: Mapped[int] = mapped_column(fk("admin_units.id"), index=True)
    address: Mapped[str | None] = mapped_column(sa.String(255))
    # Where runs start and end; the centroid of its unit when not set.
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    created_at: Mapped[created_at]

    unit: Mapped[AdminUnit] = relationship()


class Counter(db.Model):
    """A one-stop counter (bộ phận một cửa) that sends orders."""

    __tablename__ = "counters"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    level: Mapped[CounterLevel] = mapped_column(str_enum(CounterLevel))
    unit_id: Mapped[int] = mapped_column(fk("admin_units.id"), index=True)
    post_office_id: Mapped[int | None] = mapped_column(fk("post_offices.id"), index=True)
    hotline: Mapped[str | None] = mapped_column(sa.String(32))
    # How this counter prints labels by default (each request may override): pdf or zpl, a size
    # (100x150, 100x100, a6, a4), and whether an order must be on a route before its label prints.
    label_format: Mapped[str] = mapped_column(sa.String(8), default="pdf", server_default="pdf")
    label_size: Mapped[str] = mapped_column(sa.String(16), default="100x150", server_default="100x150")
    label_requires_route: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[created_at]

    unit: Mapped[AdminUnit] = relationship()
    post_office: Mapped[PostOffice | None] = relationship()


route_communes = sa.Table(
    "route_communes",
    db.metadata,
    sa.Column("route_id", ID, sa.ForeignKey("postal_routes.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("unit_id", ID, sa.ForeignKey("admin_units.id", ondelete="RESTRICT"),
              primary_key=True),
    sa.Index("ix_route_communes_unit_id", "unit_id"),
)


# The most orders a route may take a day (the coverage page, the admin's route form and the API): a
# courier delivers a few hundred; a bigger figure is a typo (and past SQLite's INTEGER an error).
MAX_CAPACITY_PER_DAY = 100_000


class PostalRoute(db.Model):
    """A postal delivery route (tuyến phát) of a post office: the communes it covers, its courier.

    Whole communes are in ``route_communes``; parts of communes (hamlets, streets) in ``route_rules``.
    """

    __tablename__ = "postal_routes"
    __table_args__ = (
        sa.CheckConstraint("capacity_per_day IS NULL OR capacity_per_day >= 0", name="capacity"),
        sa.CheckConstraint("backup_route_id IS NULL OR backup_route_id <> id", name="backup_not_self"),
    )

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    post_office_id: Mapped[int] = mapped_column(fk("post_offices.id"), index=True)
    courier_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Orders a day (None: no limit); beyond it orders overflow to the backup route.
    capacity_per_day: Mapped[int | None]
    backup_route_id: Mapped[int | None] = mapped_column(fk("postal_routes.id", ondelete="SET NULL"))
    # False: an open run, which ends at the last stop instead of back at the post office.
    return_to_office: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    created_at: Mapped[created_at]

    post_office: Mapped[PostOffice] = relationship()
    communes: Mapped[list[AdminUnit]] = relationship(secondary=route_communes)
    backup: Mapped[PostalRoute | None] = relationship(remote_side="PostalRoute.id")
