"""Citizen notifications: the message outbox, the scanner's cursor, opt-outs and editable templates.

No table here holds a phone number or a name: a message names its order (the phone is read from the
order when it is sent, so an erased order has none), an opt-out keeps a keyed hash of the number.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import ID, UTCDateTime, created_at, fk, intpk
from delivery_service.extensions import db


class NotificationMessage(db.Model):
    """One message to the citizen of an order for one event kind (and round: a second attempt's
    "out for delivery" is a new message). The unique key makes a repeated or concurrent scan
    harmless."""

    __tablename__ = "notification_messages"
    __table_args__ = (
        sa.UniqueConstraint("order_id", "kind", "round", name="uq_notification_messages_order_kind"),
        sa.Index("ix_notification_messages_due", "state", "due_at"),
    )

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("delivery_orders.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ID)
    kind: Mapped[str] = mapped_column(sa.String(24))
    round: Mapped[int] = mapped_column(default=0)
    # pending | deferred (quiet hours) | sent | failed | opted_out | skipped (erased, no phone, out of
    # date: last_error says why)
    state: Mapped[str] = mapped_column(sa.String(12), default="pending")
    text: Mapped[str] = mapped_column(sa.String(1000))  # rendered (item id, dates, reason: no name, no phone)
    params: Mapped[dict | None] = mapped_column(sa.JSON)  # the template's values (ZNS template_data)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    provider: Mapped[str | None] = mapped_column(sa.String(8))
    provider_ref: Mapped[str | None] = mapped_column(sa.String(64))
    last_error: Mapped[str | None] = mapped_column(sa.String(200))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[created_at]


class NotificationCursor(db.Model):
    """The scanner's place in the event log (one row) and its lease."""

    __tablename__ = "notification_cursor"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    cursor_event_id: Mapped[int] = mapped_column(ID, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class NotificationOptOut(db.Model):
    """A number that wants no messages, as HMAC-SHA256 of its E.164 form (never the number)."""

    __tablename__ = "notification_optouts"

    phone_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    source: Mapped[str] = mapped_column(sa.String(12))  # keyword | link
    created_at: Mapped[created_at]


class NotificationTemplate(db.Model):
    """An admin's text for one event kind (no row: the default of services.DEFAULT_TEMPLATES)."""

    __tablename__ = "notification_templates"

    id: Mapped[intpk]
    kind: Mapped[str] = mapped_column(sa.String(24), unique=True)
    text: Mapped[str] = mapped_column(sa.String(500))
    zns_template_id: Mapped[str | None] = mapped_column(sa.String(64))
    updated_by_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"))
    updated_at: Mapped[created_at]
