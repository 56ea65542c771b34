"""The job outbox: follow-up work recorded in the same transaction as the write that asks for it.

A row is the durable promise that a job will run once. Its ``state`` moves
``pending`` (waiting, or waiting for Redis) → ``handed`` (given to rq) → ``running`` (claimed by
the process that runs it, under a lease that process keeps renewing) → ``done`` / ``failed``, or
``superseded`` (an abandoned coalesced job whose work another waiting row already covers).

Every move is a compare-and-set UPDATE, so on SQLite and PostgreSQL alike two processes (two gunicorn
workers, a web process and an rq worker, a stale rq message and a fresh one) never run one row twice.
A row whose lease ran out belongs to a process that died: it is retried (``attempt`` + 1) or, after
``JOBS_MAX_ATTEMPTS``, failed with its reason and its ``on_failure`` called.

Coalesced jobs (a cursor: webhook dispatch, the report fold) carry a ``dedupe_key``: at most one row
per key waits (``pending`` or ``handed``, a partial unique index), so a burst of commits queues one
run, not one per commit. A row that started running no longer counts: a commit after that start
queues the next run, so nothing committed is left behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import UTCDateTime, created_at, intpk, utcnow
from delivery_service.extensions import db

QUEUES = ("interactive", "background")
STATES = ("pending", "handed", "running", "done", "failed", "superseded")
WAITING = ("pending", "handed")
_WAITING_SQL = "state IN ('pending', 'handed')"


class OutboxJob(db.Model):
    """One job owed: ``module:function`` with JSON ``args``, run once after its transaction commits."""

    __tablename__ = "job_outbox"
    __table_args__ = (
        sa.CheckConstraint(f"state IN ({', '.join(repr(s) for s in STATES)})", name="state"),
        sa.CheckConstraint(f"queue IN ({', '.join(repr(q) for q in QUEUES)})", name="queue"),
        sa.CheckConstraint("attempt >= 1", name="attempt_positive"),
        # At most one waiting row per coalesced job (see the module docstring).
        sa.Index("uq_job_outbox_waiting_key", "dedupe_key", unique=True,
                 sqlite_where=sa.text(_WAITING_SQL), postgresql_where=sa.text(_WAITING_SQL)),
        # The relay's and the runner's scan: rows not finished, by due time.
        sa.Index("ix_job_outbox_open", "state", "due_at",
                 sqlite_where=sa.text("state IN ('pending', 'handed', 'running')"),
                 postgresql_where=sa.text("state IN ('pending', 'handed', 'running')")),
    )

    id: Mapped[intpk]
    func_path: Mapped[str] = mapped_column(sa.String(200))
    args: Mapped[list[Any]] = mapped_column(sa.JSON)
    queue: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(16), default="pending")
    dedupe_key: Mapped[str | None] = mapped_column(sa.String(200))
    timeout_s: Mapped[int]
    on_failure: Mapped[str | None] = mapped_column(sa.String(200))
    attempt: Mapped[int] = mapped_column(default=1)
    # How many commits asked for this row (more than one: coalesced).
    requests: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[created_at]
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # handed: re-hand after this (Redis lost it); running: the runner's lease.
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The exception's class or why the row was given up; never the job's data (personal data).
    error: Mapped[str | None] = mapped_column(sa.String(200))


T = OutboxJob.__table__


@dataclass(frozen=True)
class Row:
    """A row as the relay and the runners see it (plain data: used outside any session)."""

    id: int
    func_path: str
    args: tuple[Any, ...]
    queue: str
    state: str
    dedupe_key: str | None
    timeout_s: int
    on_failure: str | None
    attempt: int


def _row(r: Any) -> Row:
    return Row(r.id, r.func_path, tuple(r.args or ()), r.queue, r.state, r.dedupe_key, r.timeout_s,
               r.on_failure, r.attempt)


_COLUMNS = (T.c.id, T.c.func_path, T.c.args, T.c.queue, T.c.state, T.c.dedupe_key, T.c.timeout_s,
            T.c.on_failure, T.c.attempt)


def add(conn: sa.Connection, func_path: str, args: list[Any], *, queue: str, timeout_s: int,
        on_failure: str | None, dedupe_key: str | None, due_at: dt.datetime) -> dt.datetime | None:
    """Insert a row in the caller's transaction; a coalesced one joins the row already waiting.

    Returns, for a coalesced row, when the row it joined or started is due
    (the earlier of the two: a row joined may run before ``due_at``); otherwise None.
    """
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    values = {"func_path": func_path, "args": list(args), "queue": queue, "state": "pending",
              "dedupe_key": dedupe_key, "timeout_s": timeout_s, "on_failure": on_failure, "attempt": 1,
              "requests": 1, "created_at": utcnow(), "due_at": due_at}
    if dedupe_key is None:
        conn.execute(T.insert().values(values))
        return None
    stmt = _insert(conn).values(values)
    # DO UPDATE rather than DO NOTHING: on PostgreSQL it locks the waiting row until this
    # transaction commits, so a runner cannot claim it in between and start before this commit's
    # work is visible (which would leave that work to the next trigger).
    stmt = stmt.on_conflict_do_update(
        index_elements=[T.c.dedupe_key], index_where=sa.text(_WAITING_SQL),
        set_={"requests": T.c.requests + 1,
              "due_at": sa.case((stmt.excluded.due_at < T.c.due_at, stmt.excluded.due_at), else_=T.c.due_at)})
    return conn.execute(stmt.returning(T.c.due_at)).scalar_one()


def _insert(conn: sa.Connection) -> Any:
    """INSERT with ON CONFLICT, in the connection's dialect (both have it)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(T)


def due(conn: sa.Connection, now: dt.datetime, *, states: tuple[str, ...], queue: str | None = None,
        limit: int = 100) -> list[Row]:
    """Rows that something should act on now: pending and due, or whose claim has run out."""
    conds = []
    if "pending" in states:
        conds.append(sa.and_(T.c.state == "pending", T.c.due_at <= now))
    for state in ("handed", "running"):
        if state in states:
            conds.append(sa.and_(T.c.state == state, T.c.claimed_until < now))
    query = sa.select(*_COLUMNS).where(sa.or_(*conds))
    if queue is not None:
        query = query.where(T.c.queue == queue)
    # Interactive first: people wait for those.
    query = query.order_by(sa.case((T.c.queue == "interactive", 0), else_=1), T.c.id).limit(limit)
    return [_row(r) for r in conn.execute(query)]


def mark_handed(conn: sa.Connection, row: Row, now: dt.datetime, hand_lease_s: int) -> bool:
    """Record that rq holds the row (only if nothing else moved it meanwhile)."""
    result = conn.execute(T.update().where(
        T.c.id == row.id, T.c.attempt == row.attempt,
        sa.or_(T.c.state == "pending", sa.and_(T.c.state == "handed", T.c.claimed_until < now)),
    ).values(state="handed", claimed_until=now + dt.timedelta(seconds=hand_lease_s)))
    return result.rowcount == 1


def claim(conn: sa.Connection, row_id: int, attempt: int | None, now: dt.datetime,
          lease_s: int) -> Row | None:
    """Take the row to run it (compare-and-set); None when it is not ours to run: done, running
    elsewhere under a live lease, or a stale message of an earlier attempt."""
    conds = [T.c.id == row_id, T.c.state.in_(WAITING)]
    if attempt is not None:
        conds.append(T.c.attempt == attempt)
    else:  # the in-process runner only takes rows that are due
        conds.append(T.c.due_at <= now)
    result = conn.execute(T.update().where(*conds).values(
        state="running", claimed_until=now + dt.timedelta(seconds=lease_s)))
    if result.rowcount != 1:
        return None
    return _row(conn.execute(sa.select(*_COLUMNS).where(T.c.id == row_id)).one())


def _held(row: Row) -> sa.ColumnElement[bool]:
    return sa.and_(T.c.id == row.id, T.c.attempt == row.attempt, T.c.state == "running")


def renew(conn: sa.Connection, row: Row, now: dt.datetime, lease_s: int) -> bool:
    """Extend the running row's lease (the heartbeat); False when it is no longer ours."""
    until = now + dt.timedelta(seconds=lease_s)
    result = conn.execute(T.update().where(_held(row)).values(claimed_until=until))
    return result.rowcount == 1


def finish(conn: sa.Connection, row: Row, now: dt.datetime, error: str | None = None) -> bool:
    """done (``error`` None) or failed; only the attempt that holds the row may finish it."""
    result = conn.execute(T.update().where(_held(row))
                          .values(state="failed" if error else "done", finished_at=now, claimed_until=None,
                                  error=error[:200] if error else None))
    return result.rowcount == 1


def give_up_or_retry(conn: sa.Connection, row: Row, now: dt.datetime, max_attempts: int) -> str | None:
    """A running row whose lease ran out: its process died. Returns "retried", "failed",
    "superseded" or None (someone else got there first)."""
    expired = sa.and_(T.c.id == row.id, T.c.attempt == row.attempt, T.c.state == "running",
                      T.c.claimed_until < now)
    reason = f"abandoned: the process running attempt {row.attempt} died"
    if row.attempt >= max_attempts:
        result = conn.execute(T.update().where(expired).values(
            state="failed", finished_at=now, claimed_until=None, error=reason[:200]))
        return "failed" if result.rowcount == 1 else None
    if row.dedupe_key is not None:
        waiting = conn.scalar(sa.select(T.c.id).where(T.c.dedupe_key == row.dedupe_key,
                                                      T.c.state.in_(WAITING)))
        if waiting is not None:  # a later run is already owed; it covers this one's work
            result = conn.execute(T.update().where(expired).values(
                state="superseded", finished_at=now, claimed_until=None,
                error=f"{reason}; run {waiting} covers it"[:200]))
            return "superseded" if result.rowcount == 1 else None
    result = conn.execute(T.update().where(expired).values(
        state="pending", attempt=row.attempt + 1, due_at=now, claimed_until=None, error=reason[:200]))
    return "retried" if result.rowcount == 1 else None


def backlog(conn: sa.Connection, now: dt.datetime) -> dict[str, Any]:
    """Rows owed and not started, and the age in seconds of the oldest due one (for /ready)."""
    row = conn.execute(sa.select(sa.func.count(), sa.func.min(T.c.due_at))
                       .where(T.c.state.in_(WAITING), T.c.due_at <= now)).one()
    oldest = row[1]
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=dt.UTC)
    return {"due": row[0], "oldest_due_s": round((now - oldest).total_seconds(), 1) if oldest else 0.0}


def backlog_by_queue(conn: sa.Connection, now: dt.datetime) -> dict[str, dict[str, Any]]:
    """``backlog`` for each queue that has rows owed and due (for /ready: is a worker there for them)."""
    found: dict[str, dict[str, Any]] = {}
    for queue, due, oldest in conn.execute(
            sa.select(T.c.queue, sa.func.count(), sa.func.min(T.c.due_at))
            .where(T.c.state.in_(WAITING), T.c.due_at <= now).group_by(T.c.queue)):
        if oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=dt.UTC)
        found[queue] = {"due": due, "oldest_due_s": round((now - oldest).total_seconds(), 1)}
    return found


# --- the administrators' page (/admin/jobs) ----------------------------------------------------------

def overview(conn: sa.Connection, now: dt.datetime, limit: int = 200) -> dict[str, Any]:
    """Rows by state and queue, the oldest due, and the latest failed rows (newest first)."""
    counts = {(state, queue): n for state, queue, n in conn.execute(
        sa.select(T.c.state, T.c.queue, sa.func.count()).group_by(T.c.state, T.c.queue))}
    failed = conn.execute(sa.select(T.c.id, T.c.func_path, T.c.args, T.c.queue, T.c.error, T.c.attempt,
                                    T.c.created_at, T.c.finished_at)
                          .where(T.c.state == "failed").order_by(T.c.id.desc()).limit(limit)).mappings().all()
    return {"counts": counts, "backlog": backlog(conn, now), "failed": failed}


def retry_failed(conn: sa.Connection, row_id: int, now: dt.datetime) -> str | None:
    """A failed row owed again from its first attempt: "retried", "covered" (a waiting row with its
    dedupe key already covers it; it is superseded) or None (no such failed row)."""
    key = conn.scalar(sa.select(T.c.dedupe_key).where(T.c.id == row_id, T.c.state == "failed"))
    failed_row = sa.and_(T.c.id == row_id, T.c.state == "failed")
    waiting = sa.select(T.c.id).where(T.c.dedupe_key == key, T.c.state.in_(WAITING))
    if key is not None and conn.scalar(waiting) is not None:
        result = conn.execute(T.update().where(failed_row).values(state="superseded"))
        return "covered" if result.rowcount == 1 else None
    result = conn.execute(T.update().where(failed_row).values(
        state="pending", attempt=1, due_at=now, claimed_until=None, finished_at=None, error=None))
    return "retried" if result.rowcount == 1 else None


def delete_failed(conn: sa.Connection, row_id: int) -> bool:
    """Remove a failed row (given up for good)."""
    return conn.execute(T.delete().where(T.c.id == row_id, T.c.state == "failed")).rowcount == 1
