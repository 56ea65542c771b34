"""For counter systems that poll instead of receiving webhooks: the orders changed since a cursor.

The cursor is a position in the event log (like a webhook endpoint's), so polling is exact: an order
comes back each time it has a new event, and nothing committed late is skipped (see
services.committed_horizon).
"""

from __future__ import annotations

import base64
import datetime as dt

import sqlalchemy as sa

from delivery_service.accounts.services import Actor
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import find_orders, scope
from delivery_service.orders.status import Status
from delivery_service.webhooks.services import committed_horizon


def encode_cursor(event_id: int) -> str:
    """The opaque polling cursor for a position in the event log."""
    return base64.urlsafe_b64encode(f"e1:{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if kind == "e1" and value.isdigit() and len(value) < 19:
            return int(value)
    except (ValueError, UnicodeDecodeError):
        pass
    raise InvalidInput({"cursor": ["Not a cursor this service gave out."]}, location="query")


def changed_orders(actor: Actor, *, after: int | None, since: dt.datetime | None, q: str | None = None,
                   created_on: dt.date | None = None, status: Status | None = None,
                   limit: int = 100) -> tuple[list[DeliveryOrder], int]:
    """The actor's orders with an event after the event id ``after`` (or, without it, at or after
    ``since``), ordered by their latest such event; and the position to continue from.

    Reads only up to the committed horizon. Ends the current transaction (the horizon's).
    """
    start = after or 0
    horizon = committed_horizon()
    if horizon is None:  # writers held the log for long: nothing this time, the same cursor again
        return [], start
    events = sa.select(OrderEvent.order_id, sa.func.max(OrderEvent.id).label("last")).where(
        OrderEvent.id > start, OrderEvent.id <= horizon)
    if after is None and since is not None:
        events = events.where(OrderEvent.server_time >= since)
    latest = events.group_by(OrderEvent.order_id).subquery()
    stmt = scope(sa.select(DeliveryOrder, latest.c.last)
                 .join(latest, latest.c.order_id == DeliveryOrder.id), actor)
    if q is not None or created_on is not None or status is not None:
        matching = find_orders(actor, q=q, created_on=created_on, status=status).order_by(None)
        stmt = stmt.where(DeliveryOrder.id.in_(matching.with_only_columns(DeliveryOrder.id)))
    rows = db.session.execute(stmt.order_by(latest.c.last).limit(limit)).all()
    if len(rows) < limit:  # everything up to the horizon has been seen
        return [r[0] for r in rows], max(start, horizon)
    return [r[0] for r in rows], rows[-1][1]
