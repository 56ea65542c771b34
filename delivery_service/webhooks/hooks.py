"""The trigger: a commit that wrote order events queues a dispatch run.

It watches the statements themselves (an engine ``after_execute`` listener), so that every path that
logs events is covered, the ORM's flushes and the Core inserts of order intake and routing alike,
without each of them having to remember webhooks. Missing a trigger would only delay a delivery: the
cursor, not the trigger, decides what is sent, and ``delivery-service webhooks dispatch`` sweeps.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

_FLAG = "webhook_events_written"
_CONNS = "webhook_connections"


def _after_execute(conn: sa.Connection, clause: Any, *args: Any) -> None:
    if isinstance(clause, sa.Insert) and getattr(clause.table, "name", None) == "order_events":
        conn.info[_FLAG] = True


def _after_begin(session: Session, transaction: Any, connection: sa.Connection) -> None:
    connection.info.pop(_FLAG, None)  # info lives with the pooled connection: start clean
    session.info.setdefault(_CONNS, []).append(connection)


def _before_commit(session: Session) -> None:
    session.flush()  # the commit would flush next anyway; the events it holds must be seen here
    conns = session.info.pop(_CONNS, [])
    if not any([c.info.pop(_FLAG, False) for c in conns if not c.closed]):
        return
    from delivery_service.jobs import enqueue_after_commit
    from delivery_service.webhooks.models import WebhookEndpoint

    if session.scalar(sa.select(WebhookEndpoint.id).where(
            WebhookEndpoint.active, WebhookEndpoint.paused_at.is_(None)).limit(1)) is None:
        return
    enqueue_after_commit("delivery_service.webhooks.jobs:dispatch_due", timeout=300)


def _after_rollback(session: Session) -> None:
    session.info.pop(_CONNS, None)


def install() -> None:
    """Register the listeners once per process (idempotent)."""
    if sa.event.contains(sa.Engine, "after_execute", _after_execute):
        return
    sa.event.listen(sa.Engine, "after_execute", _after_execute)
    sa.event.listen(Session, "after_begin", _after_begin)
    sa.event.listen(Session, "before_commit", _before_commit)
    sa.event.listen(Session, "after_rollback", _after_rollback)
