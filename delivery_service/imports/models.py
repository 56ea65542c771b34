"""An uploaded batch file and the per-row result of importing it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import UTCDateTime, created_at, fk, intpk, str_enum
from delivery_service.extensions import db


class ImportState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ImportBatch(db.Model):
    """The file is kept in the row so that any worker on any machine can process it."""

    __tablename__ = "import_batches"

    id: Mapped[intpk]
    counter_id: Mapped[int] = mapped_column(fk("counters.id"), index=True)
    api_client_id: Mapped[int | None] = mapped_column(fk("api_clients.id"))
    created_by_id: Mapped[int | None] = mapped_column(fk("users.id"))
    filename: Mapped[str] = mapped_column(sa.String(255))
    content_type: Mapped[str] = mapped_column(sa.String(16))  # csv | xlsx
    content: Mapped[bytes] = mapped_column(sa.LargeBinary)
    state: Mapped[ImportState] = mapped_column(str_enum(ImportState, 16), default=ImportState.PENDING)
    total_rows: Mapped[int] = mapped_column(default=0)
    created_rows: Mapped[int] = mapped_column(default=0)
    existing_rows: Mapped[int] = mapped_column(default=0)
    error_rows: Mapped[int] = mapped_column(default=0)
    results: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[created_at]
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
