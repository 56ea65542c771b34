"""Background jobs run after commit: in-process without Redis, through rq with it."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import sqlalchemy as sa
from rq import SimpleWorker

from delivery_service import jobs, outbox
from delivery_service.db import utcnow
from delivery_service.extensions import db

CALLS: list[str] = []


class BurstWorker(SimpleWorker):
    """An in-process rq worker without rq's command channel: its pub/sub thread only serves `rq`
    commands (stop a job), and waiting for it to notice the end of a burst once took a minute."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


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
        BurstWorker([queue], connection=queue.connection).work(burst=True)
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
        BurstWorker([queue], connection=queue.connection).work(burst=True)
        assert CALLS == ["an import"]  # record() got the failed job's arguments
        assert db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials")) == 1


def broken(text: str) -> None:
    """A job that fails with an ordinary error."""
    raise RuntimeError(f"no luck with {text}")


def test_in_process_failure_runs_on_failure(app):
    CALLS.clear()
    jobs.enqueue_after_commit("test_jobs:broken", "a batch", on_failure="test_jobs:record")
    with pytest.raises(RuntimeError):  # re-raised under TESTING, after on_failure ran
        db.session.commit()
    db.session.remove()  # the error surfaced inside commit(); start a new session
    assert CALLS == ["a batch"]
    assert db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials")) == 1


# The outbox ----------------------------------------------------------------------------------------



def rows() -> list[dict]:
    return [dict(r) for r in db.session.execute(sa.select(outbox.T).order_by(outbox.T.c.id)).mappings()]


def test_a_job_is_an_outbox_row_of_the_same_transaction(app):
    CALLS.clear()
    jobs.enqueue_after_commit("test_jobs:record", "kept")
    db.session.rollback()
    assert rows() == []  # rolled back with the work that asked for it
    jobs.enqueue_after_commit("test_jobs:record", "kept")
    db.session.commit()
    [row] = rows()
    assert (row["state"], row["attempt"], row["queue"], row["args"]) == ("done", 1, "interactive", ["kept"])
    assert CALLS == ["kept"]


def test_coalesced_jobs_queue_one_run_per_burst(app):
    # 50 commits asking for the same cursor job (not yet due, so nothing runs meanwhile): one row.
    for _ in range(50):
        jobs.enqueue_after_commit("test_jobs:record", "fold", dedupe_key="test:fold", delay_s=3600)
        db.session.commit()
    jobs.enqueue_after_commit("test_jobs:record", "other", dedupe_key="test:other", delay_s=3600)
    db.session.commit()
    waiting = rows()
    assert [(r["dedupe_key"], r["requests"], r["state"]) for r in waiting] == [
        ("test:fold", 50, "pending"), ("test:other", 1, "pending")]
    # An earlier due time wins, so the run is not delayed by the first request's delay.
    jobs.enqueue_after_commit("test_jobs:record", "fold", dedupe_key="test:fold")
    db.session.commit()
    assert rows()[0]["state"] == "done" and rows()[0]["requests"] == 51


def test_an_abandoned_job_is_retried_then_failed_with_its_reason(app):
    """A lapsed lease means the process running the job died: run again, then give up."""
    CALLS.clear()
    app.config["JOBS_MAX_ATTEMPTS"] = 2
    past = utcnow() - dt.timedelta(seconds=5)
    with db.engine.begin() as conn:
        for text in ("retry me", "give up"):
            conn.execute(outbox.T.insert().values(
                func_path="test_jobs:record", args=[text], queue="interactive", state="running",
                timeout_s=60, on_failure="test_jobs:record", attempt=1 if text == "retry me" else 2,
                requests=1, created_at=past, due_at=past, claimed_until=past))
    assert jobs.run_due(app) == 1
    db.session.remove()
    done, failed = rows()
    assert (done["state"], done["attempt"], done["error"]) == ("done", 2, None)
    assert failed["state"] == "failed" and failed["error"].startswith("abandoned")
    assert sorted(CALLS) == ["give up", "retry me"]  # the retry ran; the given-up one's on_failure ran


def test_a_live_lease_is_not_taken_by_another_process(app):
    future = utcnow() + dt.timedelta(seconds=60)
    with db.engine.begin() as conn:
        conn.execute(outbox.T.insert().values(
            func_path="test_jobs:record", args=["busy"], queue="interactive", state="running", timeout_s=60,
            attempt=1, requests=1, created_at=utcnow(), due_at=utcnow(), claimed_until=future))
        row_id = conn.scalar(sa.select(sa.func.max(outbox.T.c.id)))
        assert outbox.claim(conn, row_id, None, utcnow(), 30) is None
        assert outbox.claim(conn, row_id, 1, utcnow(), 30) is None
    assert jobs.run_due(app) == 0


@pytest.mark.config(JOBS_INLINE=False, JOBS_POLL_S=0.2)
def test_without_redis_a_background_thread_runs_jobs_not_the_request(app, client, auth):
    """The embedded default: the request commits and answers; the process's runner runs the job."""
    from conftest import order_payload

    CALLS.clear()
    jobs.enqueue_after_commit("test_jobs:slow", "after the answer")
    db.session.commit()
    assert CALLS == []  # not in the committing thread (the job records after a 0.5 s sleep)
    try:
        assert jobs.wait_idle(app, 20)
        assert CALLS == ["after the answer"]
        resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
        assert resp.status_code == 201
        assert jobs.wait_idle(app, 20)
        assert {r["state"] for r in rows()} == {"done"}
    finally:
        jobs.stop_runner(app)


def slow(text: str) -> None:
    time.sleep(0.5)
    record(text)



def test_ready_reports_database_migrations_and_backlog(app, client):
    resp = client.get("/ready")
    assert resp.status_code == 200, resp.json
    assert resp.json["database"] == "ok" and resp.json["outbox"] == {"due": 0, "oldest_due_s": 0.0}
    assert resp.json["migrations"]["current"] == resp.json["migrations"]["head"]
    long_ago = utcnow() - dt.timedelta(hours=1)
    with db.engine.begin() as conn:
        conn.execute(outbox.T.insert().values(
            func_path="test_jobs:record", args=["stuck"], queue="background", state="pending", timeout_s=60,
            attempt=1, requests=1, created_at=long_ago, due_at=long_ago))
    resp = client.get("/ready")
    assert resp.status_code == 503
    assert resp.json["reasons"] == ["background jobs are waiting too long"]
    assert resp.json["outbox"]["due"] == 1 and resp.json["outbox"]["oldest_due_s"] >= 3600
    node = client.get("/ready?scope=node")  # a backlog is every node's: no reason to take this one out
    assert node.status_code == 200 and node.json["warnings"] == ["background jobs are waiting too long"]
    assert client.get("/health").status_code == 200


def test_ready_says_when_redis_is_down(app, client):
    app.config["REDIS_URL"] = "redis://127.0.0.1:1/0"  # nothing listens there
    started = time.monotonic()
    resp = client.get("/ready")
    assert time.monotonic() - started < 2
    assert resp.status_code == 503 and resp.json["reasons"] == ["redis unreachable"]
    node = client.get("/ready?scope=node")
    assert node.status_code == 200 and node.json["reasons"] == [] and node.json["warnings"] == ["redis unreachable"]


def test_background_jobs_have_their_own_rq_queue(rq_app):
    CALLS.clear()
    with rq_app.app_context():
        queues = rq_app.extensions["rq_queues"]
        jobs.enqueue_after_commit("test_jobs:record", "a label batch")
        jobs.enqueue_after_commit("test_jobs:record", "a webhook run", queue="background")
        db.session.commit()
        assert (queues["interactive"].count, queues["background"].count) == (1, 1)
        assert queues["background"].name == queues["interactive"].name + "-background"
        # Handing a row again (Redis lost it, or a relay raced) runs nothing twice.
        job = queues["interactive"].jobs[0]
        queues["interactive"].enqueue_job(job)
        BurstWorker([queues["interactive"], queues["background"]], connection=queues["interactive"].connection
                    ).work(burst=True)
        assert CALLS == ["a label batch", "a webhook run"]  # interactive first, each once
        assert {r["state"] for r in rows()} == {"done"}


def test_a_burst_of_coalesced_jobs_starts_about_one_run_per_coalesce_period(app):
    """JOBS_COALESCE_S: the first request after a quiet spell runs at once; while that run may be
    going, the next waits for the next slot and every request meanwhile joins it."""
    clock, delays = 1000.0, []
    for step in (0, 0.1, 0.1, 5, 4.7, 0.3, 0.1, 30):  # seconds between requests
        clock += step
        delays.append(round(jobs._coalesce_delay(app, "test:burst", 10.0, clock), 1))
    # run at 0; slot 10 (joined until then); at 10.0 the slot may run: slot 20; after a quiet spell: now
    assert delays == [0.0, 9.9, 9.8, 4.8, 0.1, 9.8, 9.7, 0.0]
    assert jobs._coalesce_delay(app, "test:other", 10.0, clock) == 0.0  # each key its own slots
    assert jobs._coalesce_delay(app, "test:burst", 0) == 0.0


@pytest.mark.config(JOBS_INLINE=False, JOBS_COALESCE_S=10)
def test_coalesced_background_jobs_wait_for_their_slot_and_a_due_retry_does_not(app):
    app.extensions["jobs_no_runner"] = True  # the rows are only looked at
    try:
        for _ in range(3):
            jobs.enqueue_after_commit("test_jobs:record", "run", queue="background", dedupe_key="test:slot")
            db.session.commit()
        [row] = rows()
        assert row["requests"] == 3 and row["due_at"] <= utcnow()  # the first request's: at once
        with db.engine.begin() as conn:  # that run starts; the next commits wait for the next slot
            conn.execute(outbox.T.update().values(state="running"))
        jobs.enqueue_after_commit("test_jobs:record", "run", queue="background", dedupe_key="test:slot")
        db.session.commit()
        waiting = rows()[1]
        assert waiting["state"] == "pending" and 8 < (waiting["due_at"] - utcnow()).total_seconds() <= 10
        # coalesce_s=0 asks for a run now: the waiting run goes at once.
        jobs.enqueue_after_commit("test_jobs:record", "run", queue="background", dedupe_key="test:slot",
                                  coalesce_s=0)
        db.session.commit()
        assert rows()[1]["due_at"] <= utcnow() and rows()[1]["requests"] == 2
    finally:
        app.extensions.pop("jobs_no_runner", None)


def test_the_default_settings_end_a_dead_job_within_a_minute():
    """A label batch or an import whose process died is requeued or failed by the first maintenance
    pass after JOBS_STALL_S without a heartbeat; web processes pass every JOBS_MAINTENANCE_S, workers
    every JOBS_WORKER_MAINTENANCE_S (idle too): under a minute either way. A heartbeat comes with
    each chunk (200 labels, 250 rows: seconds), far inside JOBS_STALL_S. An outbox job's process
    death shows when its lease (JOBS_LEASE_S, renewed every third of it) lapses, at the next relay
    or runner poll (JOBS_POLL_S)."""
    from delivery_service.config import DEFAULTS

    sweep = max(DEFAULTS["JOBS_MAINTENANCE_S"], DEFAULTS["JOBS_WORKER_MAINTENANCE_S"])
    assert DEFAULTS["JOBS_STALL_S"] + sweep < 60
    assert DEFAULTS["JOBS_LEASE_S"] + DEFAULTS["JOBS_POLL_S"] < 60


def test_maintenance_passes_the_stall_setting_and_queues_webhook_runs(app, monkeypatch):
    """maintain(): the heartbeat sweepers get JOBS_STALL_S; due webhook retries become one queued
    background run (never sent in the maintenance thread itself, where a slow receiver would hold
    up the next sweeps)."""
    from delivery_service.imports import services as imports
    from delivery_service.printing import services as printing
    from delivery_service.webhooks import services as webhooks

    seen = []
    for module in (printing, imports):
        monkeypatch.setattr(module, "sweep_stalled", lambda now, **kw: seen.append(kw) or {"requeued": []})
    monkeypatch.setattr(webhooks, "due_endpoints", lambda now: [1])
    monkeypatch.setattr(webhooks, "dispatch_due", lambda *a, **kw: pytest.fail("sent in the maintenance pass"))
    app.config["JOBS_STALL_S"] = 7
    app.extensions["jobs_no_runner"] = True
    app.config["JOBS_INLINE"] = False
    try:
        done = jobs.maintain(app)
    finally:
        app.config["JOBS_INLINE"] = True
        app.extensions.pop("jobs_no_runner", None)
    assert seen == [{"stale_after": dt.timedelta(seconds=7)}] * 2
    assert done["webhooks"] == "queued"
    assert [(r["func_path"], r["queue"], r["state"]) for r in rows()
            if r["dedupe_key"] == "webhooks:dispatch_due"] == [
        ("delivery_service.webhooks.jobs:dispatch_due", "background", "pending")]


@pytest.mark.config(JOBS_INLINE=False, JOBS_COALESCE_S=10)
def test_a_commit_joins_its_process_waiting_run_without_writing(app):
    """``join_waiting`` (the webhooks' trigger): while the run this process queued and committed waits
    for its slot, a commit writes nothing (no statement: on PostgreSQL a burst queued on the waiting
    row's lock); a rolled-back request is not taken for a written one."""
    app.extensions["jobs_no_runner"] = True

    def ask(rollback: bool = False) -> None:
        jobs.enqueue_after_commit("test_jobs:record", "run", queue="background", dedupe_key="test:join",
                                  join_waiting=True)
        db.session.rollback() if rollback else db.session.commit()

    try:
        ask()  # a quiet spell: a run now
        with db.engine.begin() as conn:  # it starts; the next commit takes the next slot
            conn.execute(outbox.T.update().values(state="running"))
        ask(rollback=True)  # the next slot's row, rolled back: nothing written, nothing remembered
        assert len(rows()) == 1
        ask()
        assert [r["requests"] for r in rows()] == [1, 1]
        for _ in range(5):  # joined in memory: no row touched
            ask()
        assert [r["requests"] for r in rows()] == [1, 1]
        # Without join_waiting the same commits join the waiting row in the database.
        jobs.enqueue_after_commit("test_jobs:record", "run", queue="background", dedupe_key="test:join")
        db.session.commit()
        assert [r["requests"] for r in rows()] == [1, 2]
    finally:
        app.extensions.pop("jobs_no_runner", None)


@pytest.mark.config(JOBS_INLINE=False, JOBS_COALESCE_S=10)
def test_a_commit_skips_writing_only_when_the_waiting_run_starts_after_it(app, monkeypatch):
    """A run that was queued to start sooner (here the quiet spell's, due at once, not claimed yet:
    as one handed to rq waiting for a busy worker) covers nothing committed after it starts: commits
    while it waits write to it again every JOIN_RECHECK_S (not each commit: on PostgreSQL they would
    all queue on its lock). A savepoint's release is not the commit: a slot written in a transaction
    that then rolls back does not count."""
    app.extensions["jobs_no_runner"] = True
    monkeypatch.setattr(jobs, "JOIN_RECHECK_S", 0.3)

    def ask() -> None:
        jobs.enqueue_after_commit("test_jobs:record", "run", queue="background", dedupe_key="test:soon",
                                  join_waiting=True)

    try:
        ask()
        db.session.commit()  # due at once; nothing claims it here
        for _ in range(3):
            ask()
            db.session.commit()
        [row] = rows()
        assert row["requests"] == 2 and row["due_at"] <= utcnow()  # joined once, then skipped
        time.sleep(0.35)
        ask()
        db.session.commit()
        assert rows()[0]["requests"] == 3  # rechecked: written again (it might have started)
        with db.engine.begin() as conn:  # it starts: the next commit queues the next slot's run
            conn.execute(outbox.T.update().values(state="running"))
        time.sleep(0.35)
        before = app.extensions[jobs._WRITTEN]["test:soon"]
        with db.session.begin_nested():
            ask()
        # not marked written at the savepoint's release (its row starts at the slot: it would be for good)
        assert app.extensions[jobs._WRITTEN]["test:soon"] == before
        db.session.rollback()  # (pysqlite commits a savepoint released outside a transaction: the row stays)
        asked = sum(r["requests"] for r in rows())
        ask()
        db.session.commit()
        assert sum(r["requests"] for r in rows()) == asked + 1  # written, not skipped
        time.sleep(0.35)
        ask()
        db.session.commit()
        assert sum(r["requests"] for r in rows()) == asked + 1  # its row starts at its slot: joined in memory
    finally:
        app.extensions.pop("jobs_no_runner", None)
