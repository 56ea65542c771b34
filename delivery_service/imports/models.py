"""An uploaded batch file and the per-row result of importing it."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import UTCDateTime, created_at, fk, intpk, str_enum
from delivery_service.extensions import db
from delivery_service.stalled import job_stalled


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
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)  # read only by the job
    state: Mapped[ImportState] = mapped_column(str_enum(ImportState, 16), default=ImportState.PENDING)
    total_rows: Mapped[int] = mapped_column(default=0)
    created_rows: Mapped[int] = mapped_column(default=0)
    existing_rows: Mapped[int] = mapped_column(default=0)
    error_rows: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[created_at]
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # As print_jobs: the run holding the batch writes heartbeat_at at each chunk; ``runner`` is its
    # token, ``attempts`` the runs started (imports.services.sweep_stalled, stalled.runs_counted).
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    runner: Mapped[str | None] = mapped_column(sa.String(32))
    attempts: Mapped[int] = mapped_column(default=1, server_default="1")

    @property
    def results(self) -> list[dict[str, Any]]:
        """Every row's result so far, in the file's order (read from import_rows; see result_rows)."""
        return result_page(self.id)

    def result_rows(self, *, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """``limit`` of the rows' results from the ``offset``-th, in the file's order."""
        return result_page(self.id, offset=offset, limit=limit)

    @property
    def stalled(self) -> bool:
        """Running, but no sign of life for longer than the sweeper waits: its process has died."""
        return job_stalled(self.state is ImportState.RUNNING, self.last_sign)

    @property
    def waiting(self) -> bool:
        """Not started yet, for longer than a running import may go without a heartbeat: no background
        process has taken it (Redis or every worker down); it starts when one does."""
        return job_stalled(self.state is ImportState.PENDING, self.created_at)

    @property
    def last_sign(self) -> dt.datetime:
        """The last sign of life of the batch's run: its heartbeat, else its creation."""
        return self.heartbeat_at or self.created_at

    @property
    def failure_kind(self) -> str | None:
        """Why a failed batch stopped, for the page: "stalled" (its process died, given up after
        retries), "stopped" (the job ended early on an error), "file" (the file could not be read)."""
        if self.state is not ImportState.FAILED:
            return None
        error = self.error or ""
        if error.startswith(STALLED_PREFIX):
            return "stalled"
        if error.startswith(STOPPED_PREFIX):
            return "stopped"
        return "file"


class ImportRow(db.Model):
    """The result of one row of a batch, written with the chunk that handled it (one insert per
    chunk: the work stays linear in the rows, and memory flat, however long the file)."""

    __tablename__ = "import_rows"

    batch_id: Mapped[int] = mapped_column(fk("import_batches.id", ondelete="CASCADE"), primary_key=True)
    line: Mapped[int] = mapped_column(primary_key=True)  # the file's line (Excel row); the header is 1
    status: Mapped[str] = mapped_column(sa.String(16))  # created | existing | error
    item_id: Mapped[str | None] = mapped_column(sa.String(13))
    errors: Mapped[dict[str, list[str]] | None] = mapped_column(sa.JSON)  # by the file's column name


def result_page(batch_id: int, *, offset: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """A batch's row results in line order (``limit`` of them from the ``offset``-th)."""
    rows = ImportRow.__table__
    stmt = (sa.select(rows.c.line, rows.c.status, rows.c.item_id, rows.c.errors)
            .where(rows.c.batch_id == batch_id).order_by(rows.c.line))
    if offset:
        stmt = stmt.offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [{"line": line, "status": st, "item_id": item_id, "errors": errors or {}}
            for line, st, item_id, errors in db.session.execute(stmt)]


# The beginnings of the English reasons services write into ``error`` (the API shows them as they are).
STALLED_PREFIX = "The import's process stopped"
STOPPED_PREFIX = "The import stopped"
