"""Background jobs: enqueued only after the transaction that asked for them commits.

With ``REDIS_URL`` set they go to rq and a ``delivery-service worker`` runs them; without it they run
in-process right after the commit, each in its own app context and transaction.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.orm import Session

from delivery_service.extensions import db

log = logging.getLogger(__name__)
_PENDING = "pending_jobs"
_worker_app: Flask | None = None


def enqueue_after_commit(func_path: str, *args: Any, timeout: int = 600,
                         on_failure: str | None = None) -> None:
    """Run ``module:function`` with primitive ``args`` once the current transaction commits.

    If that transaction rolls back instead, the job is dropped. ``on_failure`` (``module:function``,
    called with the same ``args``) runs when rq gives the job up without the job having handled it:
    a timeout, or a worker killed mid-job (reported when rq cleans up its abandoned jobs).
    """
    session = db.session()
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_PENDING, []).append((func_path, args, timeout, on_failure))


def _after_commit(session: Session) -> None:
    jobs = session.info.pop(_PENDING, None)
    if not jobs:
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    for func_path, args, timeout, on_failure in jobs:
        queue = app.extensions.get("rq_queue")
        if queue is not None:
            from rq import Callback

            queue.enqueue(execute, func_path, *args, job_timeout=timeout, result_ttl=3600,
                          failure_ttl=7 * 86400, meta={"on_failure": on_failure},
                          on_failure=Callback(failed) if on_failure else None)
        else:
            _run_in_app(app, func_path, args, on_failure)


def _after_transaction_end(session: Session, transaction) -> None:  # noqa: ANN001
    # Runs after after_commit on a commit (jobs already taken), and on every rollback.
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def _call(app: Flask, func_path: str, args: tuple[Any, ...]) -> Any:
    """Run ``module:function`` in a fresh app context of ``app``: its own session and transaction."""
    module, _, name = func_path.partition(":")
    func = getattr(importlib.import_module(module), name)
    with app.app_context():
        try:
            result = func(*args)
            db.session.commit()
            return result
        except Exception:
            db.session.rollback()
            raise


def _run_in_app(app: Flask, func_path: str, args: tuple[Any, ...], on_failure: str | None) -> Any:
    try:
        return _call(app, func_path, args)
    except Exception as exc:
        # The exception's class only: its text may quote the job's data (names, phones).
        log.error("job %s failed: %s", func_path, exc.__class__.__name__)
        if on_failure:
            _call(app, on_failure, args)
        if app.testing:
            raise
        return None


def execute(func_path: str, *args: Any) -> Any:
    """The rq entry point: runs a job function inside the worker's app."""
    global _worker_app
    if _worker_app is None:
        from delivery_service import create_app

        _worker_app = create_app()
    return _call(_worker_app, func_path, args)


def failed(job, connection, exc_type, exc_value, traceback) -> None:  # noqa: ANN001
    """rq's failure callback: runs the job's ``on_failure`` function in the worker's app."""
    on_failure = (job.meta or {}).get("on_failure")
    if not on_failure:
        return
    _func_path, *args = job.args
    log.error("job %s failed (%s); running %s", job.id, getattr(exc_type, "__name__", exc_type), on_failure)
    execute(on_failure, *args)


def use_app_for_worker(app: Flask) -> None:
    """Make rq jobs of this process run in ``app`` (the worker command and tests call this)."""
    global _worker_app
    _worker_app = app


def init_app(app: Flask) -> None:
    if app.config.get("REDIS_URL"):
        from redis import Redis
        from rq import Queue

        connection = Redis.from_url(app.config["REDIS_URL"])
        app.extensions["redis"] = connection
        app.extensions["rq_queue"] = Queue(app.config["RQ_QUEUE"], connection=connection)
    if not sa.event.contains(Session, "after_commit", _after_commit):
        sa.event.listen(Session, "after_commit", _after_commit)
        sa.event.listen(Session, "after_transaction_end", _after_transaction_end)
