"""Every label printed, batches rendered in the background, and handover manifests."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from delivery_service.db import ID, UTCDateTime, created_at, fk, intpk, str_enum
from delivery_service.extensions import db
from delivery_service.stalled import job_stalled


class LabelFormat(enum.StrEnum):
    PDF = "pdf"
    ZPL = "zpl"


class LabelPrint(db.Model):
    """One print of one order's label: what was on it (route, stop), by whom, in which format."""

    __tablename__ = "label_prints"
    __table_args__ = (sa.Index("ix_label_prints_order", "order_id", "id"),
                      sa.Index("uq_label_prints_job_order", "print_job_id", "order_id", unique=True))

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("delivery_orders.id", ondelete="CASCADE"))
    printed_at: Mapped[created_at]
    actor_label: Mapped[str] = mapped_column(sa.String(200))
    user_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(fk("api_clients.id", ondelete="SET NULL"))
    format: Mapped[LabelFormat] = mapped_column(str_enum(LabelFormat, 8, "label_format"))
    size: Mapped[str] = mapped_column(sa.String(16))
    copy_no: Mapped[int]  # 1 for the first print, 2 for the first reprint…
    route_id: Mapped[int | None] = mapped_column(ID)  # as printed (no key: history)
    stop_no: Mapped[int | None]
    address: Mapped[str] = mapped_column(sa.String(400))  # the address as printed, to show what changed
    # The batch it was printed in (no key: history); written with the batch's file, once per order.
    print_job_id: Mapped[int | None] = mapped_column(ID)


class JobState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class PrintJob(db.Model):
    """A big batch of labels rendered by a worker; the file is kept for download."""

    __tablename__ = "print_jobs"

    id: Mapped[intpk]
    counter_id: Mapped[int | None] = mapped_column(fk("counters.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    client_id: Mapped[int | None] = mapped_column(fk("api_clients.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(sa.String(200))
    format: Mapped[LabelFormat] = mapped_column(str_enum(LabelFormat, 8, "print_job_format"))
    size: Mapped[str] = mapped_column(sa.String(16))
    order_ids: Mapped[list[int]] = mapped_column(sa.JSON)
    state: Mapped[JobState] = mapped_column(str_enum(JobState, 16, "print_job_state"),
                                            default=JobState.PENDING)
    total: Mapped[int]
    done: Mapped[int] = mapped_column(default=0)
    file_name: Mapped[str | None] = mapped_column(sa.String(255))
    error: Mapped[str | None] = mapped_column(sa.String(500))
    created_at: Mapped[created_at]
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The run holding the job writes heartbeat_at at each chunk; a RUNNING job whose heartbeat is
    # older than a minute lost its process (killed, out of memory) and is requeued or failed by
    # printing.services.sweep_stalled. ``runner`` is that run's token, ``attempts`` the runs started
    # (stalled.runs_counted).
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    runner: Mapped[str | None] = mapped_column(sa.String(32))
    attempts: Mapped[int] = mapped_column(default=1, server_default="1")
    # The address the asking request reached the service at: the labels' tracking links when
    # PUBLIC_BASE_URL is not set (tracking.links; migration 0015)
    public_base_url: Mapped[str | None] = mapped_column(sa.String(255))

    @property
    def stalled(self) -> bool:
        """Running, but no sign of life for longer than the sweeper waits: its process has died."""
        return job_stalled(self.state is JobState.RUNNING, self.heartbeat_at or self.created_at)

    @property
    def waiting(self) -> bool:
        """Not started yet, for longer than a running job may go without a heartbeat: no background
        process has taken it (Redis or every worker down); it starts when one does."""
        return job_stalled(self.state is JobState.PENDING, self.created_at)

    @property
    def failure_kind(self) -> str | None:
        """Why a failed job stopped, for the page: "stalled" (its process died and the retries ran
        out) or "stopped" (rendering ended early: an error, a timeout, a killed worker)."""
        if self.state is not JobState.FAILED:
            return None
        return "stalled" if (self.error or "").startswith(STALLED_PREFIX) else "stopped"


# The beginning of the English reason sweep_stalled writes into ``error`` (the API shows it as is).
STALLED_PREFIX = "The batch's process stopped"


class ManifestKind(enum.StrEnum):
    COUNTER_TO_COURIER = "counter_to_courier"
    COURIER_TO_AGENCY = "courier_to_agency"
    COURIER_TO_COUNTER = "courier_to_counter"


manifest_items = sa.Table(
    "manifest_items",
    db.metadata,
    sa.Column("manifest_id", ID, sa.ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("order_id", ID, sa.ForeignKey("delivery_orders.id", ondelete="RESTRICT"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)


class HandoverStep(enum.StrEnum):
    """Which handover of an item a manifest records (``manifest_handovers.step``), each once per item
    and route: the counter's result to the route's courier (counter_to_courier), the dossier the
    courier picked up handed to the agency or to the counter for it, a result returned after the last
    failed attempt handed back (courier_to_agency or courier_to_counter: either, once)."""

    TO_COURIER = "to_courier"
    DOSSIER = "dossier"
    RETURN = "return"


# Each handover of an order, once: the manifest that records it. A second manifest listing the item
# for the same step and route is refused, and the same manifest asked for again (a double click, a
# retry, two staff printing the bag's manifest) is that manifest, printed again. Its key holds when
# two requests race. The route is in it because a supervisor may move an item not yet handed over to
# another route, whose courier then takes it on a manifest of their own (the first one no longer
# matches the item's route); a dossier picked up or a returned result can no longer change route, so
# it is handed back once. Migration 0031 (counter to courier), 0032 (the step, and the handovers back).
manifest_handovers = sa.Table(
    "manifest_handovers",
    db.metadata,
    sa.Column("order_id", ID, sa.ForeignKey("delivery_orders.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("step", sa.String(16), primary_key=True),  # HandoverStep
    sa.Column("route_id", ID, primary_key=True),  # as handed over (no key: history)
    sa.Column("manifest_id", ID, sa.ForeignKey("manifests.id", ondelete="CASCADE"), nullable=False,
              index=True),
)


class Manifest(db.Model):
    """A handover manifest (biên bản giao nhận) of a batch of items, with its own code."""

    __tablename__ = "manifests"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(sa.String(40), unique=True)
    kind: Mapped[ManifestKind] = mapped_column(str_enum(ManifestKind, 24, "manifest_kind"))
    counter_id: Mapped[int | None] = mapped_column(fk("counters.id"), index=True)
    route_id: Mapped[int | None] = mapped_column(fk("postal_routes.id", ondelete="SET NULL"))
    created_by_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    # The courier who signs it, as it was made: its maker if a courier, else the route's courier then
    # (None: the route had none, the name is written by hand). Kept, not read from the route, so that
    # a reprint after the route changed couriers names the one who signed for the bag (migration 0033).
    # RESTRICT: a signed record keeps its signer; accounts are deactivated, never deleted.
    courier_id: Mapped[int | None] = mapped_column(fk("users.id"))
    client_id: Mapped[int | None] = mapped_column(fk("api_clients.id", ondelete="SET NULL"))
    actor_label: Mapped[str] = mapped_column(sa.String(200))
    note: Mapped[str | None] = mapped_column(sa.String(300))
    created_at: Mapped[created_at]

    route = relationship("PostalRoute")
