"""Background jobs run after commit: in-process without Redis, through rq with it."""

from __future__ import annotations

import sqlalchemy as sa
from rq import SimpleWorker

from delivery_service import jobs
from delivery_service.extensions import db

CALLS: list[str] = []


def record(text: str) -> None:
    """A job: writes a row, so the test sees it ran in its own committed transaction."""
    db.session.execute(sa.text("INSERT INTO item_serials (allocated_at) VALUES (CURRENT_TIMESTAMP)"))
    CALLS.append(text)


def test_in_process_job_runs_only_after_commit(app):
    CALLS.clear()
    jobs.enqueue_after_commit("test_jobs:record", "rolled back")
    db.session.rollback()
    jobs.enqueue_after_commit("test_jobs:record", "committed")
    assert CALLS == []
    db.session.commit()
    assert CALLS == ["committed"]
    assert db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials")) == 1


def test_rq_job_goes_through_redis_and_a_worker(rq_app):
    CALLS.clear()
    with rq_app.app_context():
        queue = rq_app.extensions["rq_queue"]
        jobs.enqueue_after_commit("test_jobs:record", "via redis")
        db.session.commit()
        assert CALLS == [] and queue.count == 1
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        assert CALLS == ["via redis"] and queue.count == 0
        assert db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials")) == 1


def explode(text: str) -> None:
    """A job that dies without handling its own failure."""
    raise SystemExit(f"killed while doing {text}")


def test_rq_runs_on_failure_when_a_job_dies(rq_app):
    CALLS.clear()
    with rq_app.app_context():
        queue = rq_app.extensions["rq_queue"]
        jobs.enqueue_after_commit("test_jobs:explode", "an import", on_failure="test_jobs:record")
        db.session.commit()
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        assert CALLS == ["an import"]  # record() got the failed job's arguments
        assert db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials")) == 1


def broken(text: str) -> None:
    """A job that fails with an ordinary error."""
    raise RuntimeError(f"no luck with {text}")


def test_in_process_failure_runs_on_failure(app):
    import pytest

    CALLS.clear()
    jobs.enqueue_after_commit("test_jobs:broken", "a batch", on_failure="test_jobs:record")
    with pytest.raises(RuntimeError):  # re-raised under TESTING, after on_failure ran
        db.session.commit()
    db.session.remove()  # the error surfaced inside commit(); start a new session
    assert CALLS == ["a batch"]
    assert db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials")) == 1
