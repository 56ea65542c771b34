"""Erasure of personal data after the retention period (PERSONAL_DATA_RETENTION_DAYS).

An order is erasable when it is closed (TERMINAL for its direction), its last event is older than
the retention period, and it is not erased yet. Erasing replaces or removes, in one transaction per
batch, every copy of the person's data that belongs to the order (docs/privacy.md lists each place
and what happens there) and stamps ``personal_data_erased_at``. Figures, statuses, times, units,
amounts and the reports' tables stay as they are.

Batches are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two nodes running at once
share the work; on SQLite one writer at a time does. Each batch commits: a run that stops is
resumed by the next, and a second run finds nothing left (idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from delivery_service.courier.models import DeliveryProof, ProofFile
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.geo.models import OrderLocation
from delivery_service.imports.models import ImportBatch, ImportState
from delivery_service.orders.models import CLOSED_STATUSES, DeliveryOrder, OrderEvent
from delivery_service.orders.services import name_key
from delivery_service.orders.status import TERMINAL
from delivery_service.printing.models import LabelPrint, PrintJob
from delivery_service.privacy import PHONE_PLACEHOLDER, PLACEHOLDER
from delivery_service.vietnamese import search_key

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class Counts:
    """What a run erased (or, with dry_run, would erase)."""

    orders: int = 0
    proof_files: int = 0
    events_redacted: int = 0
    print_files: int = 0
    import_files: int = 0
    batches: int = 0
    order_ids: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {"orders": self.orders, "proof_files": self.proof_files,
                "events_redacted": self.events_redacted, "print_files": self.print_files,
                "import_files": self.import_files}


def closed_condition() -> sa.ColumnElement[bool]:
    """The order is closed for its direction (orders.status.TERMINAL)."""
    o = DeliveryOrder
    return sa.or_(*(sa.and_(o.direction == direction, o.status.in_(sorted(statuses)))
                    for direction, statuses in TERMINAL.items()))


def cutoff(now: dt.datetime | None = None, days: int | None = None) -> dt.datetime:
    """Orders whose last event is before this moment are past the retention period."""
    days = days if days is not None else int(current_app.config["PERSONAL_DATA_RETENTION_DAYS"])
    return (now or utcnow()) - dt.timedelta(days=days)


# The statuses of any closed order, in the words of the index ix_orders_erasable's condition: implied by
# closed_condition(), and written as the index has it so that SQLite's planner, which matches a partial
# index's condition term by term, can use the index (PostgreSQL's could prove it either way).
_CLOSED_STATUS = sa.text(CLOSED_STATUSES.replace("status", "delivery_orders.status", 1))


def erasable(limit_before: dt.datetime) -> sa.Select:
    """A select of the ids of orders to erase (closed, last event before ``limit_before``)."""
    o, e = DeliveryOrder, OrderEvent
    later = sa.select(e.id).where(e.order_id == o.id, e.server_time >= limit_before).exists()
    return (sa.select(o.id).where(o.personal_data_erased_at.is_(None), _CLOSED_STATUS,
                                  o.updated_at < limit_before, closed_condition(), ~later)
            .order_by(o.updated_at, o.id))


def erase_due(now: dt.datetime | None = None, *, dry_run: bool = False, batch_size: int = BATCH,
              max_batches: int | None = None) -> Counts:
    """Erase every order past the retention period, ``batch_size`` at a time, committing each
    batch; with ``dry_run`` only count. Also clears old import files. Returns the counts."""
    now = now or utcnow()
    limit_before = cutoff(now)
    counts = Counts()
    if dry_run:  # counted in the database: the candidates may be many
        ids = erasable(limit_before).order_by(None)
        counts.orders = _count(sa.select(sa.func.count()).select_from(ids.subquery()))
        counts.proof_files = _count(sa.select(sa.func.count()).select_from(ProofFile)
                                    .where(ProofFile.order_id.in_(ids)))
        counts.events_redacted = _count(sa.select(sa.func.count()).select_from(OrderEvent)
                                        .where(OrderEvent.order_id.in_(ids), _event_holds_data()))
        jobs = sa.select(LabelPrint.print_job_id).where(LabelPrint.order_id.in_(ids))
        counts.print_files = _count(sa.select(sa.func.count()).select_from(PrintJob)
                                    .where(PrintJob.id.in_(jobs), PrintJob.file_name.is_not(None)))
        counts.import_files = _count(sa.select(sa.func.count()).select_from(ImportBatch)
                                     .where(_old_import(limit_before)))
        db.session.rollback()
        return counts
    while max_batches is None or counts.batches < max_batches:
        stmt = erasable(limit_before).limit(batch_size)
        if db.engine.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True, of=DeliveryOrder)
        ids = list(db.session.scalars(stmt))
        if not ids:
            db.session.rollback()
            break
        files = erase_orders(ids, now, counts)
        db.session.commit()
        counts.print_files += _remove_files(files)
        counts.batches += 1
        log.info("personal data erased: batch of %d orders", len(ids))
    counts.import_files = _erase_import_files(limit_before)
    return counts


def _count(stmt: sa.Select) -> int:
    return int(db.session.scalar(stmt) or 0)


def _event_holds_data() -> sa.ColumnElement[bool]:
    e = OrderEvent
    return sa.or_(e.note.is_not(None) & (e.note != PLACEHOLDER), e.latitude.is_not(None),
                  e.longitude.is_not(None), e.accuracy_m.is_not(None))


def _nullable(column: sa.ColumnElement, value: str) -> sa.ColumnElement:
    """``value`` where the column holds something, NULL stays NULL."""
    return sa.case((column.is_(None), sa.null()), else_=sa.literal(value))


def erase_orders(ids: list[int], now: dt.datetime, counts: Counts | None = None) -> list[Path]:
    """Erase these orders' personal data in the current transaction (the caller commits); returns
    the print files holding their labels, to remove once committed."""
    counts = counts if counts is not None else Counts()
    o = DeliveryOrder
    done = db.session.execute(
        sa.update(o).where(o.id.in_(ids), o.personal_data_erased_at.is_(None))
        .values(recipient_name=PLACEHOLDER, recipient_name_key=name_key(PLACEHOLDER),
                recipient_search_key=search_key(PLACEHOLDER), recipient_phone=PHONE_PLACEHOLDER,
                recipient_id_number=None, authorised_name=_nullable(o.authorised_name, PLACEHOLDER),
                authorised_phone=_nullable(o.authorised_phone, PHONE_PLACEHOLDER), authorised_id_number=None,
                address_detail=PLACEHOLDER, note=_nullable(o.note, PLACEHOLDER), request_digest=None,
                personal_data_erased_at=now, updated_at=o.updated_at)  # not a change counter systems poll
        .execution_options(synchronize_session=False))
    counts.orders += done.rowcount
    counts.order_ids.extend(ids)
    # The event log: statuses, times, actors and reasons stay; a free-text note and the courier's
    # position at the door go (the database allows exactly this update, and only for erased orders).
    e = OrderEvent
    redacted = db.session.execute(
        sa.update(e).where(e.order_id.in_(ids), _event_holds_data())
        .values(note=_nullable(e.note, PLACEHOLDER), latitude=None, longitude=None, accuracy_m=None)
        .execution_options(synchronize_session=False))
    counts.events_redacted += redacted.rowcount
    p = DeliveryProof
    db.session.execute(sa.update(p).where(p.order_id.in_(ids)).values(
        receiver_name=_nullable(p.receiver_name, PLACEHOLDER), receiver_relation=None, id_last4=None)
        .execution_options(synchronize_session=False))
    removed = db.session.execute(sa.delete(ProofFile).where(ProofFile.order_id.in_(ids))
                                 .execution_options(synchronize_session=False))
    counts.proof_files += removed.rowcount
    db.session.execute(sa.delete(OrderLocation).where(OrderLocation.order_id.in_(ids))
                       .execution_options(synchronize_session=False))
    db.session.execute(sa.update(LabelPrint).where(LabelPrint.order_id.in_(ids))
                       .values(address=PLACEHOLDER).execution_options(synchronize_session=False))
    jobs = sa.select(LabelPrint.print_job_id).where(LabelPrint.order_id.in_(ids),
                                                    LabelPrint.print_job_id.is_not(None)).distinct()
    names = db.session.scalars(sa.select(PrintJob.file_name).where(PrintJob.id.in_(jobs),
                                                                    PrintJob.file_name.is_not(None)))
    folder = Path(current_app.config["PRINT_FILES_DIR"])
    return [folder / name for name in names]


def _remove_files(paths: list[Path]) -> int:
    """Remove label batch files (a batch printed again makes a new one); returns how many went."""
    gone = 0
    for path in paths:
        try:
            path.unlink()
            gone += 1
        except FileNotFoundError:
            pass
    return gone


def _old_import(limit_before: dt.datetime) -> sa.ColumnElement[bool]:
    b = ImportBatch
    return sa.and_(b.state.in_([ImportState.DONE, ImportState.FAILED]), b.finished_at < limit_before,
                   sa.func.length(b.content) > 0)


def _erase_import_files(limit_before: dt.datetime) -> int:
    """Empty the stored files of imports finished before the retention period (their per-row
    results, which hold line numbers, item ids and error messages, stay)."""
    done = db.session.execute(sa.update(ImportBatch).where(_old_import(limit_before))
                              .values(content=b"").execution_options(synchronize_session=False))
    db.session.commit()
    return done.rowcount


def is_erased(order: DeliveryOrder) -> bool:
    return order.personal_data_erased_at is not None

