"""The trigger: a commit that wrote order events queues a dispatch run.

It watches the statements themselves (an engine ``after_execute`` listener), so that every path that
logs events is covered, the ORM's flushes and the Core inserts of order intake and routing alike,
without each of them having to remember webhooks. Missing a trigger would only delay a delivery: the
cursor, not the trigger, decides what is sent, and ``delivery-service webhooks dispatch`` sweeps.
"""

from __future__ import annotations

import time
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
    from delivery_service.reports.fold import events_written

    events_written()  # the report figures fold the same events, in the background with Redis
    if not _any_active():
        return
    from delivery_service.jobs import enqueue_after_commit

    enqueue_after_commit("delivery_service.webhooks.jobs:dispatch_due", timeout=300)


_ACTIVE_TTL = 10.0  # seconds; a webhook set up meanwhile is reached by the next trigger or the sweep


def _any_active() -> bool:
    """Whether any webhook is active, looked up at most every few seconds per process (intake
    commits should not pay a query for a feature most installations use on few counters)."""
    from flask import current_app

    from delivery_service.webhooks.services import any_endpoint

    cache = current_app.extensions.setdefault("webhooks_active", [0.0, False])
    if cache[0] > time.monotonic():
        return cache[1]
    active = any_endpoint()
    cache[:] = [time.monotonic() + _ACTIVE_TTL, active]
    return active


def forget_active() -> None:
    """Drop this process's cached answer (after a webhook is set up, resumed or disabled here)."""
    from flask import current_app

    current_app.extensions.pop("webhooks_active", None)


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
