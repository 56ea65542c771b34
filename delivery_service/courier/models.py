"""Proof of delivery and pickup, photos and signatures, and corrections of couriers' events.

The event log (order_events) stays append-only: these tables hang off its rows and are written in
the same transaction as the event they belong to (files may come earlier or later, see ProofFile).
"""

from __future__ import annotations

import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import ID, created_at, fk, intpk, str_enum
from delivery_service.extensions import db


class ProofKind(enum.StrEnum):
    DELIVERED = "delivered"  # a result handed over to the citizen or an authorised person
    PICKED_UP = "picked_up"  # a dossier collected from the citizen


class ReceiverKind(enum.StrEnum):
    RECIPIENT = "recipient"
    AUTHORISED = "authorised"


class IdCheckKind(enum.StrEnum):
    ID_LAST4 = "id_last4"  # the last 4 digits of the receiver's ID card, compared with the order's
    OTP = "otp"  # the one-time code the citizen received (see courier.services.delivery_code)
    NONE = "none"


class IdCheckResult(enum.StrEnum):
    OK = "ok"
    NOT_VERIFIABLE = "not_verifiable"  # the order holds no ID number to compare with
    NOT_CHECKED = "not_checked"


class FileKind(enum.StrEnum):
    PHOTO = "photo"
    SIGNATURE = "signature"


class DeliveryProof(db.Model):
    """What the courier recorded with a delivered or picked-up event. Never a full ID number: only
    the last 4 digits the courier typed, or the marker that a one-time code was checked."""

    __tablename__ = "delivery_proofs"
    __table_args__ = (
        sa.CheckConstraint("amount_collected_vnd IS NULL OR amount_collected_vnd >= 0",
                           name="amount_positive"),
        sa.CheckConstraint("fees_collected_vnd IS NULL OR fees_collected_vnd >= 0", name="fees_positive"),
        sa.CheckConstraint("id_last4 IS NULL OR length(id_last4) = 4", name="only_last4"),
    )

    id: Mapped[intpk]
    event_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("order_events.id", ondelete="RESTRICT"),
                                          unique=True)
    order_id: Mapped[int] = mapped_column(fk("delivery_orders.id"), index=True)
    kind: Mapped[ProofKind] = mapped_column(str_enum(ProofKind, 16, "proof_kind"))
    receiver_kind: Mapped[ReceiverKind | None] = mapped_column(str_enum(ReceiverKind, 16, "receiver_kind"))
    receiver_name: Mapped[str | None] = mapped_column(sa.String(200))
    receiver_relation: Mapped[str | None] = mapped_column(sa.String(100))
    id_check_kind: Mapped[IdCheckKind] = mapped_column(str_enum(IdCheckKind, 16, "id_check_kind"))
    id_check_result: Mapped[IdCheckResult] = mapped_column(str_enum(IdCheckResult, 16, "id_check_result"))
    id_last4: Mapped[str | None] = mapped_column(sa.String(4))
    amount_collected_vnd: Mapped[int | None]
    documents: Mapped[list[str] | None] = mapped_column(sa.JSON)
    sealed: Mapped[bool | None]
    fees_collected_vnd: Mapped[int | None]
    created_at: Mapped[created_at]


class ProofFile(db.Model):
    """A photo or signature, identified by the phone's own uuid. It may arrive before its event (kept,
    attached when the event comes) or after it (attached at once).

    The image is stored in the database (a few hundred KB at most): simple, transactional with the
    event, the same on SQLite and PostgreSQL, and readable by any worker on any host.
    """

    __tablename__ = "proof_files"
    __table_args__ = (
        sa.CheckConstraint("size > 0", name="size_positive"),
        sa.Index("ix_proof_files_order_event", "order_id", "client_event_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    order_id: Mapped[int] = mapped_column(fk("delivery_orders.id"))
    client_event_id: Mapped[str] = mapped_column(sa.String(64))
    kind: Mapped[FileKind] = mapped_column(str_enum(FileKind, 16, "proof_file_kind"))
    mime: Mapped[str] = mapped_column(sa.String(32))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    content: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    uploaded_at: Mapped[created_at]
    attached_event_id: Mapped[int | None] = mapped_column(
        ID, sa.ForeignKey("order_events.id", ondelete="RESTRICT"), index=True)


class EventCorrection(db.Model):
    """A courier's correction: the new event that took the order back, and the event it undid.
    An event is corrected at most once."""

    __tablename__ = "event_corrections"

    event_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("order_events.id", ondelete="RESTRICT"),
                                          primary_key=True)
    corrected_event_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("order_events.id", ondelete="RESTRICT"), unique=True)
    order_id: Mapped[int] = mapped_column(fk("delivery_orders.id"), index=True)
    created_at: Mapped[created_at]
