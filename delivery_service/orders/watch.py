"""Who wants to know that a commit wrote order events: webhooks, the report figures.

It watches the statements themselves (an engine ``after_execute`` listener), so that every path that
logs events is covered, the ORM's flushes and the Core inserts of order intake and routing alike,
without each of them having to remember who listens. Just before such a commit, every subscriber is
called in the committing app and session (they queue their jobs with ``enqueue_after_commit``).
Missing a call only delays the subscriber's work: each one keeps its own cursor in the event log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

_FLAG = "order_events_written"
_CONNS = "order_event_connections"
_subscribers: list[Callable[[], None]] = []


def subscribe(callback: Callable[[], None]) -> None:
    """Call ``callback`` before each commit that wrote order events (once per callback)."""
    install()
    if callback not in _subscribers:
        _subscribers.append(callback)


def _after_execute(conn: sa.Connection, clause: Any, *args: Any) -> None:
    if isinstance(clause, sa.Insert) and getattr(clause.table, "name", None) == "order_events":
        conn.info[_FLAG] = True


def note_written(conn: sa.Connection) -> None:
    """Tell the watch that ``conn`` wrote order events by a path it cannot see (a driver's bulk
    insert: ``orders.services.insert_many``)."""
    conn.info[_FLAG] = True


def _after_begin(session: Session, transaction: Any, connection: sa.Connection) -> None:
    connection.info.pop(_FLAG, None)  # info lives with the pooled connection: start clean
    session.info.setdefault(_CONNS, []).append(connection)


def _before_commit(session: Session) -> None:
    session.flush()  # the commit would flush next anyway; the events it holds must be seen here
    conns = session.info.pop(_CONNS, [])
    if any([c.info.pop(_FLAG, False) for c in conns if not c.closed]):
        for callback in _subscribers:
            callback()


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
