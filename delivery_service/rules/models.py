"""The business rules an admin has saved (one row): what overrides the environment's defaults."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import UTCDateTime, fk
from delivery_service.extensions import db


class BusinessRules(db.Model):
    """Row 1 holds every saved rule (``values``: config key -> value, as the config parsers take it)
    and ``version``, bumped by every save: each process compares it at most once a second."""

    __tablename__ = "business_rules"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    version: Mapped[int] = mapped_column(default=0)
    values: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_by_user_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
