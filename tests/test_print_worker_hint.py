"""A label batch waiting for a print worker that is not running says so at once (outside review: with
every rq worker killed, the batch page said "preparing" for 25 s, until JOBS_STALL_S): on its page and
in the API's batch status, when no live worker listens to its queue and when Redis does not answer,
never without Redis. A real Redis and real `delivery-service worker` processes, started and killed here;
the workers are read as /ready and /admin/jobs read them (jobs.worker_status)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import IsolatedClient, _base_config, login, order_payload
from flask import Flask
from test_faults_jobs import _kill_leftovers, start_worker

from delivery_service import create_app, jobs
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.printing.models import JobState, PrintJob

HINT_VI = "Chưa có tiến trình in nào đang chạy: báo cho quản trị viên."
HINT_EN = "No print worker is running: tell the administrator."
PREPARING_VI = "Đang chuẩn bị nhãn"


def hold(marker_dir: str) -> None:
    """A job that keeps its worker busy until the test lets it go (a file ``release``)."""
    Path(marker_dir, "started").write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not Path(marker_dir, "release").exists() and time.monotonic() < deadline:
        time.sleep(0.1)


def _wait(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"waited {timeout} s for {what}")


def _app(app: Flask, tmp_path: Path, **config) -> Flask:  # noqa: ANN003
    """An app on the test database with Redis settings of its own; batches of 3 labels go to a job."""
    other = create_app({**_base_config(app.config["DATABASE_URL"], tmp_path), "LABEL_ASYNC_THRESHOLD": 2,
                        "PRINT_FILES_DIR": str(tmp_path / "prints"), **config})
    other.test_client_class = IsolatedClient
    return other


def _close(other: Flask) -> None:
    for key in ("redis", "ready_redis", "relay_redis"):
        if key in other.extensions:
            other.extensions[key].close()
    with other.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def queued_app(app: Flask, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """Jobs go to the test Redis, on queues of this test's own; workers beat every 2 s."""
    queued = _app(app, tmp_path, REDIS_URL=redis_url, RQ_QUEUE=f"hint-{uuid.uuid4().hex[:8]}",
                  JOBS_WORKER_MAINTENANCE_S=2)
    yield queued
    _kill_leftovers(queued.config["RQ_QUEUE"])
    _close(queued)


def _batch(client, auth) -> int:  # noqa: ANN001
    """A batch of 3 new orders' labels, prepared in the background: its id."""
    items = [client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"] for _ in range(3)]
    resp = client.post("/api/v1/labels/batches", json={"format": "zpl", "item_ids": items}, headers=auth)
    assert resp.status_code == 202, resp.json
    return resp.json["id"]


def _state(app: Flask, job_id: int) -> JobState:
    with app.app_context():
        return db.session.get(PrintJob, job_id).state


def test_a_batch_says_at_once_that_no_print_worker_runs_until_one_does(queued_app, auth, tmp_path):
    api, page = queued_app.test_client(), queued_app.test_client()
    marker = tmp_path / "markers"
    marker.mkdir()
    with queued_app.app_context():  # first in the queue: keeps the interactive worker busy, later
        jobs.enqueue_after_commit("test_print_worker_hint:hold", str(marker), queue="interactive")
        db.session.commit()
    api_batch = api.post("/api/v1/labels/batches", json={"format": "zpl", "item_ids": [
        api.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"] for _ in range(3)]},
        headers=auth)
    assert api_batch.status_code == 202 and api_batch.json["state"] == "pending"
    # No worker at all: the answer to the batch, and its status, say so at once
    assert (api_batch.json["no_worker"], api_batch.json["notice"]) == (True, HINT_EN)
    job_id = api_batch.json["id"]
    status = api.get(f"/api/v1/labels/batches/{job_id}", headers=auth)
    assert status.json["no_worker"] is True and status.json["notice"] == HINT_EN
    login(page, "counter")
    shown = page.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
    assert HINT_VI in shown and PREPARING_VI not in shown
    assert '<meta http-equiv="refresh"' in shown  # it keeps looking
    english = queued_app.test_client()  # ?lang=en stays with the session
    login(english, "counter")
    assert HINT_EN in english.get(f"/counter/labels/jobs/{job_id}?lang=en").get_data(as_text=True)
    # After JOBS_STALL_S the existing message of a batch no process took comes as well
    with queued_app.app_context():
        db.session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(
            created_at=utcnow() - dt.timedelta(seconds=queued_app.config["JOBS_STALL_S"] + 5)))
        db.session.commit()
    late = page.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
    assert HINT_VI in late and "Lô nhãn đã chờ hơn 30 giây" in late

    log = tmp_path / "worker.log"
    workers = [start_worker(queued_app, log, "--queues", "background", JOBS_WORKER_MAINTENANCE_S="2")]
    try:
        # A live worker, but on the other queue: the batch's queue still has none
        _wait(lambda: [w for w in jobs.workers(queued_app) if w["alive"]], 30, "the background worker to beat")
        assert HINT_VI in page.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
        assert api.get(f"/api/v1/labels/batches/{job_id}", headers=auth).json["no_worker"] is True

        workers.append(start_worker(queued_app, log, "--queues", "interactive", JOBS_WORKER_MAINTENANCE_S="2"))
        _wait(lambda: (marker / "started").exists(), 30, "the interactive worker to take the first job")
        # A live worker on the batch's queue, busy: the batch waits its turn, and says nothing of workers
        assert _state(queued_app, job_id) is JobState.PENDING
        busy = page.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
        assert HINT_VI not in busy and 'id="no-worker"' not in busy
        assert api.get(f"/api/v1/labels/batches/{job_id}", headers=auth).json["notice"] is None
        assert _state(queued_app, job_id) is JobState.PENDING  # the answers above were about a waiting batch

        (marker / "release").write_text("")
        _wait(lambda: _state(queued_app, job_id) is JobState.DONE, 60, "the worker to print the batch")
        done = api.get(f"/api/v1/labels/batches/{job_id}", headers=auth).json
        assert (done["no_worker"], done["notice"], done["done"]) == (False, None, 3)
    finally:
        (marker / "release").write_text("")
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait(15)


def test_a_batch_says_so_when_redis_does_not_answer(app, auth, tmp_path):
    closed = _app(app, tmp_path, REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    try:
        client = closed.test_client()
        job_id = _batch(client, auth)
        assert _state(closed, job_id) is JobState.PENDING  # waiting in the outbox for Redis
        status = client.get(f"/api/v1/labels/batches/{job_id}", headers=auth).json
        assert status["no_worker"] is True and status["notice"] == HINT_EN
        login(client, "counter")
        shown = client.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
        assert HINT_VI in shown and PREPARING_VI not in shown
    finally:
        _close(closed)


def test_without_redis_a_waiting_batch_says_nothing_of_workers(app, client, auth):
    """The embedded default runs batches in the web processes: a batch no thread took yet (here one
    left pending an hour ago) shows the message of JOBS_STALL_S, never the hint."""
    from delivery_service.printing.models import LabelFormat

    job = PrintJob(counter_id=None, actor_label="test", format=LabelFormat.ZPL, size="100x150", order_ids=[],
                   total=3, created_at=utcnow() - dt.timedelta(hours=1))
    db.session.add(job)
    db.session.commit()
    login(client, "admin")
    shown = client.get(f"/counter/labels/jobs/{job.id}").get_data(as_text=True)
    assert "Lô nhãn đã chờ hơn 30 giây" in shown
    assert HINT_VI not in shown and 'id="no-worker"' not in shown
    assert jobs.no_worker_for(app, "interactive") is False
