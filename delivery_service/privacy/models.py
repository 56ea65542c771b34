"""The access log of personal data, and the daily erasure runs (migration 0019)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import ID, UTCDateTime, created_at, fk, intpk
from delivery_service.extensions import db


class PersonalDataAccess(db.Model):
    """One opening of one order's personal data: who (a user or an API client), what, when, from where.

    ``what``: see access.WHAT. No foreign key to the order: the log is history (an erased order's
    log is kept: it says who saw the data while it was held).
    """

    __tablename__ = "personal_data_access"
    __table_args__ = (sa.Index("ix_personal_data_access_order", "order_id", "at"),
                      sa.Index("ix_personal_data_access_user", "user_id", "at"),
                      sa.Index("ix_personal_data_access_at", "at"))

    id: Mapped[intpk]
    at: Mapped[created_at]
    user_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(fk("api_clients.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(sa.String(100))
    order_id: Mapped[int] = mapped_column(ID)
    what: Mapped[str] = mapped_column(sa.String(24))
    ip: Mapped[str | None] = mapped_column(sa.String(45))


class PrivacyRun(db.Model):
    """One day's erasure run: the row is the claim (a second node finds it and does not queue another)."""

    __tablename__ = "privacy_runs"

    day: Mapped[dt.date] = mapped_column(sa.Date, primary_key=True)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    erased: Mapped[int] = mapped_column(default=0, server_default="0")
