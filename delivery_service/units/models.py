"""Administrative units with validity dates, so that the three-level structure (until 30 Jun 2025)
and the two-level one (from 1 Jul 2025) live side by side."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from delivery_service.db import fk, intpk, str_enum
from delivery_service.extensions import db

REFORM_DATE = dt.date(2025, 7, 1)


class UnitLevel(enum.StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


class AdminUnit(db.Model):
    """One unit as it was valid between ``valid_from`` and ``valid_to`` (inclusive; open if NULL)."""

    __tablename__ = "admin_units"
    __table_args__ = (
        sa.UniqueConstraint("level", "code", "valid_from"),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="validity"),
        sa.CheckConstraint("(level = 'province') = (parent_id IS NULL)", name="parent_by_level"),
        sa.Index("ix_admin_units_parent_level", "parent_id", "level"),
    )

    id: Mapped[intpk]
    level: Mapped[UnitLevel] = mapped_column(str_enum(UnitLevel, 16))
    code: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(128))
    kind: Mapped[str] = mapped_column(sa.String(32))  # tỉnh, thành phố, quận, huyện, xã, phường…
    parent_id: Mapped[int | None] = mapped_column(fk("admin_units.id"))
    valid_from: Mapped[dt.date] = mapped_column(sa.Date)
    valid_to: Mapped[dt.date | None] = mapped_column(sa.Date)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]

    parent: Mapped[AdminUnit | None] = relationship(remote_side="AdminUnit.id")

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def __repr__(self) -> str:
        return f"<AdminUnit {self.level} {self.code} {self.name}>"
