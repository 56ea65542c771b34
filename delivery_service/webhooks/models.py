"""Webhooks to counter systems: one endpoint per API client (with its cursor in the event log) and
the log of every delivery attempt."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from delivery_service.accounts.models import ApiClient
from delivery_service.db import ID, UTCDateTime, created_at, fk, intpk
from delivery_service.extensions import db


class WebhookEndpoint(db.Model):
    """Where a counter's software wants its orders' status changes, and how far it has got.

    ``secret`` signs the requests, so it is kept as is (a hash could not sign); it is shown once when
    set and never logged. ``cursor_event_id``: the last order_events.id delivered (or skipped when
    the endpoint was created); everything after it for the client's counter is still owed.
    """

    __tablename__ = "webhook_endpoints"
    __table_args__ = (
        sa.CheckConstraint("consecutive_failures >= 0", name="failures_positive"),
    )

    id: Mapped[intpk]
    api_client_id: Mapped[int] = mapped_column(fk("api_clients.id"), unique=True)
    url: Mapped[str] = mapped_column(sa.String(500))
    secret: Mapped[str] = mapped_column(sa.String(128))
    active: Mapped[bool] = mapped_column(default=True)
    # Set when the endpoint was paused after repeated failures; an admin resumes it.
    paused_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    cursor_event_id: Mapped[int] = mapped_column(ID, default=0)
    # While failing: not before this time (the back-off); NULL: whenever there is something to send.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # A dispatcher holds the endpoint until this time, so that two never send the same events.
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[created_at]
    # A rotation's overlap: until ``previous_secret_until`` requests are signed with both secrets
    # (docs/webhooks.md, Rotating the secret), so that the receiver can switch without a miss.
    previous_secret: Mapped[str | None] = mapped_column(sa.String(128))
    previous_secret_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    api_client: Mapped[ApiClient] = relationship()


class WebhookDelivery(db.Model):
    """One request to an endpoint: which events it carried and how it went (no body, no secret)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),)

    id: Mapped[intpk]
    endpoint_id: Mapped[int] = mapped_column(fk("webhook_endpoints.id", ondelete="CASCADE"))
    first_event_id: Mapped[int] = mapped_column(ID)
    last_event_id: Mapped[int] = mapped_column(ID)
    event_count: Mapped[int]
    attempt: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(sa.String(200))
    duration_ms: Mapped[int]
    created_at: Mapped[created_at]

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# The commit hook that queues deliveries: subscribed with the models, which every app imports.
from delivery_service.orders import watch  # noqa: E402
from delivery_service.webhooks import hooks  # noqa: E402

watch.subscribe(hooks.events_written)
