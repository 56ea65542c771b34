"""Jobs that keep their own heartbeat (label batches, imports): the sweep that finds a run that died.

A RUNNING row whose heartbeat is older than ``stale_after`` lost its process (killed, out of memory).
It is queued again while it has been queued fewer than ``max_attempts`` times, and failed with its
reason otherwise. With ``pending_after``, a PENDING row untouched that long (its queue entry lost) is
queued again too. Each row moves by one conditional UPDATE, so several processes may sweep at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from delivery_service.db import utcnow
from delivery_service.extensions import db

log = logging.getLogger(__name__)


def times(n: int) -> str:
    """ "1 time", "3 times": how often a process stopped, in the API's English messages."""
    return f"{n} time" if n == 1 else f"{n} times"


def stall_after() -> dt.timedelta:
    """How long a running label batch or import may go without a heartbeat before its process is taken
    for dead (``JOBS_STALL_S``): by the sweep, by a run claiming it, and by its page."""
    from flask import current_app, has_app_context

    from delivery_service.config import DEFAULTS

    seconds = current_app.config["JOBS_STALL_S"] if has_app_context() else DEFAULTS["JOBS_STALL_S"]
    return dt.timedelta(seconds=int(seconds))


def job_stalled(active: bool, last_sign: dt.datetime | None, now: dt.datetime | None = None) -> bool:
    """Whether a job in the state in question (``active``: running, for a dead run; pending, for one
    no process has taken) has shown no sign of life (heartbeat, else creation; a run beats at each
    chunk, about a second apart) for longer than ``stall_after()``: the one test of a label batch's and
    an import's ``stalled`` and ``waiting``."""
    if not active:
        return False
    return last_sign is None or last_sign < (now or utcnow()) - stall_after()


def runs_counted(model: Any, states: Any) -> Any:
    """The ``attempts`` a run claiming ``model``'s row writes: one more when it takes over a RUNNING
    row whose run died. That run was not queued again by ``sweep`` (which counts its own requeues):
    the job outbox's lease handed the same attempt again (outbox.give_up_or_retry). Without this, a
    batch that stopped 4 times was failed as "stopped 3 times", and the dead run's retry came free of
    ``max_attempts``. So ``attempts`` counts the runs started, and a batch failed by ``sweep`` stopped
    exactly ``attempts`` times."""
    return sa.case((model.state == states.RUNNING, model.attempts + 1), else_=model.attempts)


def sweep(model: Any, states: Any, now: dt.datetime, *, stale_after: dt.timedelta, max_attempts: int,
          pending_after: dt.timedelta | None, requeue: Callable[[int, int], None],
          failed_error: Callable[[int, int], str],
          reset: dict[str, Any] | None = None) -> dict[str, list[int]]:
    """Requeue or fail ``model``'s stalled rows; commits one row at a time (without Redis a requeued
    job runs right after its commit). ``states`` is the model's state enum (PENDING, RUNNING, FAILED);
    ``requeue(id, attempt)`` queues the next attempt; ``failed_error(id, attempts)`` is the reason
    stored; ``reset``: more columns to set when requeuing. Returns ``{"requeued": [...], "failed": [...]}``.
    """
    beat = sa.func.coalesce(model.heartbeat_at, model.created_at)
    stale = sa.and_(model.state == states.RUNNING, beat < now - stale_after)
    if pending_after is not None:
        stale = sa.or_(stale, sa.and_(model.state == states.PENDING, beat < now - pending_after))
    found = db.session.execute(sa.select(model.id, model.attempts, model.state, model.runner)
                               .where(stale).order_by(model.id)).all()
    db.session.rollback()
    outcome: dict[str, list[int]] = {"requeued": [], "failed": []}
    for row_id, attempts, state, runner in found:
        same = [model.id == row_id, model.state == state, model.attempts == attempts,
                model.runner.is_(None) if runner is None else model.runner == runner, stale]
        # PostgreSQL: a row locked by a run in the middle of a chunk belongs to a live process; skip
        # it rather than wait (SQLite has no row locks and ignores this).
        if db.session.scalar(sa.select(model.id).where(*same).with_for_update(skip_locked=True)) is None:
            db.session.rollback()
            continue
        again = attempts < max_attempts
        if again:
            values = dict(state=states.PENDING, attempts=attempts + 1, runner=None, heartbeat_at=now,
                          **(reset or {}))
        else:
            values = dict(state=states.FAILED, finished_at=now, error=failed_error(row_id, attempts))
        moved = db.session.execute(sa.update(model).where(*same).values(**values)
                                   .execution_options(synchronize_session=False)).rowcount == 1
        if moved and again:
            requeue(row_id, attempts + 1)
        db.session.commit()
        if moved:
            outcome["requeued" if again else "failed"].append(row_id)
            log.warning("%s %d stalled (attempt %d): %s", model.__tablename__, row_id, attempts,
                        "requeued" if again else "failed")
    return outcome
