"""Background work as operators and counter staff see it: one test of a batch's silence for label
batches and imports, "print all" past MAX_BATCH saying what remains, an import's count of its
stops when the same attempt is handed again, and the rq workers on /ready and /admin/jobs (a real
Redis and a real `delivery-service worker` process, started and killed here)."""

from __future__ import annotations

import copy
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
from test_faults_printing_imports import Child, batch, import_file, pending_import

from delivery_service import create_app, jobs, outbox, stalled
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.imports import services as imports
from delivery_service.imports.models import ImportBatch, ImportState
from delivery_service.printing import services as printing
from delivery_service.printing.models import JobState, PrintJob

# --- one definition of a batch's silence ----------------------------------------------------------


def test_label_batches_and_imports_share_one_test_of_silence(app):
    """PrintJob and ImportBatch answer ``stalled`` and ``waiting`` with stalled.job_stalled, on both
    sides of JOBS_STALL_S, and alike for a batch with no time yet (the import's own copy raised)."""
    app.config["JOBS_STALL_S"] = 30
    now = utcnow()
    for age, expected in ((29, False), (31, True)):
        at = now - dt.timedelta(seconds=age)
        assert stalled.job_stalled(True, at) is expected and stalled.job_stalled(False, at) is False
        running = (PrintJob(state=JobState.RUNNING, created_at=at, heartbeat_at=at),
                   ImportBatch(state=ImportState.RUNNING, created_at=at, heartbeat_at=at))
        pending = (PrintJob(state=JobState.PENDING, created_at=at),
                   ImportBatch(state=ImportState.PENDING, created_at=at))
        assert [b.stalled for b in running] == [expected, expected]
        assert [b.waiting for b in pending] == [expected, expected]
        assert [b.waiting for b in running] == [False, False] and [b.stalled for b in pending] == [False, False]
    unsaved = (PrintJob(state=JobState.PENDING), ImportBatch(state=ImportState.PENDING))
    assert [b.waiting for b in unsaved] == [True, True]


# --- "print all" past MAX_BATCH --------------------------------------------------------------------

def _many_orders(token: str, n: int) -> None:
    """``n`` unprinted orders of the demo counter, stored as an import stores them (one statement a
    table)."""
    from delivery_service.accounts.services import actor_for_token
    from delivery_service.orders.schemas import OrderIn
    from delivery_service.orders.services import add_orders

    actor = actor_for_token(token)
    data = OrderIn().load(order_payload())
    items = []
    for i in range(n):
        one = copy.deepcopy(data)
        one["dossier_code"] = f"H55.22-{uuid.uuid4().hex[:8]}-{i}"
        items.append((one, None))
    stored = add_orders(actor, items, counter_id=actor.counter_id)
    assert all(isinstance(s, str) for s in stored)
    db.session.commit()


def test_print_all_past_max_batch_says_how_many_remain_for_a_next_batch(app, client, auth, token):
    _many_orders(token, printing.MAX_BATCH + 3)
    login(client, "counter")
    page = client.get("/counter/labels").get_data(as_text=True)
    most = f"{printing.MAX_BATCH:,}".replace(",", ".")  # 5.000: Vietnamese digit grouping
    assert f"“In tất cả nhãn chưa in” lấy {most} nhãn đầu tiên" in page

    resp = client.post("/api/v1/labels/batches", json={"format": "zpl"}, headers=auth)
    assert resp.status_code == 202, resp.json
    assert (resp.json["total"], resp.json["remaining"], resp.headers["X-Remaining"]) == (
        printing.MAX_BATCH, 3, "3")
    job_page = client.get(f"/counter/labels/jobs/{resp.json['id']}").get_data(as_text=True)
    assert f"Lô này gồm {most} nhãn: mỗi lô in tối đa {most} nhãn. Quầy còn 3 nhãn chưa in" in job_page
    english = client.get(f"/counter/labels/jobs/{resp.json['id']}?lang=en").get_data(as_text=True)
    assert "3 more labels of the counter remain to print: print them in a next batch" in english

    # The next "print all" takes those 3 (a small batch: the file at once), and nothing remains.
    nxt = client.post("/api/v1/labels/batches", json={"format": "zpl"}, headers=auth)
    assert nxt.status_code == 200 and nxt.headers["X-Remaining"] == "0"
    assert nxt.data.count(b"^XA") == 3
    assert 'id="remaining"' not in client.get(f"/counter/labels/jobs/{resp.json['id']}").get_data(as_text=True)


@pytest.mark.config(LABEL_ASYNC_THRESHOLD=2)
def test_a_batch_of_ticked_orders_says_nothing_of_the_counters_other_labels(client, auth):
    """Only a "print all" batch cut at MAX_BATCH says what remains: a batch of ticked orders (here 3 of
    5 unprinted, prepared in the background) leaves the other 2 unsaid, as the API's remaining does."""
    items = [client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"] for _ in range(5)]
    resp = client.post("/api/v1/labels/batches", json={"format": "zpl", "item_ids": items[:3]}, headers=auth)
    assert resp.status_code == 202 and resp.json["remaining"] == 0, resp.json
    login(client, "counter")
    assert 'id="remaining"' not in client.get(f"/counter/labels/jobs/{resp.json['id']}").get_data(as_text=True)


# --- an import's stops, when the lease hands the same attempt again --------------------------------

@pytest.mark.config(IMPORT_CHUNK_ROWS=4)
def test_an_import_whose_same_attempt_is_handed_again_counts_every_stop(app, client, auth, monkeypatch,
                                                                          tmp_path):
    """Attempt 1 is killed in its 3rd chunk; the job outbox's lease lapses and hands attempt 1 again
    (outbox.give_up_or_retry: run_import(id, 1) once more), which takes the dead run's batch over and
    is killed too. Two stops: the batch counts two runs, and failed it says "stopped 2 times" (it said
    1, and the retry came free of the sweep's limit)."""
    content, _expected = import_file(client, auth)
    import_id = pending_import(client, auth, monkeypatch, content)
    first = Child(app, "import", import_id, stop_at=3, folder=tmp_path / "first")
    first.wait_stopped()
    first.kill()
    # JOBS_STALL_S passes (the lease lapsed meanwhile): the same attempt, handed again, takes it over
    long_ago = utcnow() - dt.timedelta(hours=1)
    db.session.execute(sa.update(ImportBatch).where(ImportBatch.id == import_id).values(heartbeat_at=long_ago))
    db.session.commit()
    again = Child(app, "import", import_id, stop_at=1, folder=tmp_path / "again")  # chunk 3 once more
    again.wait_stopped()
    again.kill()
    assert batch(import_id).attempts == 2

    beat = batch(import_id).heartbeat_at
    assert imports.sweep_stalled(beat + dt.timedelta(seconds=61), max_attempts=2) == {
        "requeued": [], "failed": [import_id]}
    failed = batch(import_id)
    assert failed.state is ImportState.FAILED
    assert failed.error.startswith("The import's process stopped 2 times (killed or out of memory) after 8 of "
                                   "12 rows")
    login(client, "counter")
    page = client.get(f"/counter/imports/{import_id}").get_data(as_text=True)
    assert "Tiến trình nhập tệp này đã dừng 2 lần" in page


# --- workers on /ready and /admin/jobs --------------------------------------------------------------

@pytest.fixture
def queued_app(app: Flask, redis_url: str, tmp_path: Path) -> Iterator[Flask]:
    """An app on the test database whose jobs go to the test Redis, on queues of its own; workers beat
    every 2 s (so one is taken for dead 9 s after its last beat)."""
    queued = create_app({**_base_config(app.config["DATABASE_URL"], tmp_path), "REDIS_URL": redis_url,
                         "RQ_QUEUE": f"ready-{uuid.uuid4().hex[:8]}", "JOBS_WORKER_MAINTENANCE_S": 2,
                         "PRINT_FILES_DIR": str(tmp_path / "prints")})
    queued.test_client_class = IsolatedClient
    yield queued
    _kill_leftovers(queued.config["RQ_QUEUE"])
    for key in ("redis", "ready_redis"):
        if key in queued.extensions:
            queued.extensions[key].close()
    with queued.app_context():
        db.session.remove()
        db.engine.dispose()


def _owe(queue: str, waited_s: float, **values) -> int:  # noqa: ANN003
    """A job owed on ``queue``, due ``waited_s`` ago."""
    due = utcnow() - dt.timedelta(seconds=waited_s)
    with db.engine.begin() as conn:
        return conn.execute(outbox.T.insert().values(
            **{"func_path": "delivery_service.geo.hooks:sweep", "args": [], "queue": queue, "state": "pending",
               "timeout_s": 60, "attempt": 1, "requests": 1, "created_at": due, "due_at": due, **values})
            .returning(outbox.T.c.id)).scalar_one()


def _wait(predicate, timeout: float, what: str):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        time.sleep(0.3)
    pytest.fail(f"waited {timeout} s for {what}")


def test_ready_and_the_jobs_page_follow_a_real_worker(queued_app, tmp_path):
    client = queued_app.test_client()
    with queued_app.app_context():
        fresh = _owe("background", 3)
    ok = client.get("/ready")  # a job younger than the grace: workers may still be starting
    assert ok.status_code == 200 and "workers" not in ok.json, ok.json
    with queued_app.app_context():
        db.session.execute(outbox.T.delete().where(outbox.T.c.id == fresh))
        db.session.commit()
        _owe("background", 60)
        # handed to rq an hour ago and still in its queue (the relay checks it again later)
        _owe("interactive", 60, state="handed", claimed_until=utcnow() + dt.timedelta(hours=1))
    down = client.get("/ready")
    assert down.status_code == 503, down.json
    assert down.json["reasons"] == ["no background worker alive for the waiting jobs"]
    assert down.json["workers"]["alive"] == []
    assert down.json["workers"]["queues_without_worker"] == ["interactive", "background"]
    node = client.get("/ready?scope=node")  # the workers are every node's: no reason to take this one out
    assert node.status_code == 200 and node.json["warnings"] == ["no background worker alive for the waiting jobs"]
    login(client, "admin")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "Redis đang trả lời." in page and "Không có tiến trình nền nào đang chạy" in page

    worker = start_worker(queued_app, tmp_path / "worker.log", "--queues", "interactive",
                          JOBS_WORKER_MAINTENANCE_S="2")
    try:
        alive = _wait(lambda: [w for w in jobs.workers(queued_app) if w["alive"]], 30, "the worker to beat")
        assert [w["queues"] for w in alive] == [["interactive"]]
        # Alive on the interactive queue: only the background job lacks a worker
        half = client.get("/ready")
        assert half.status_code == 503 and half.json["workers"]["queues_without_worker"] == ["background"]
        assert half.json["workers"]["alive"] == [alive[0]["name"]]
        with queued_app.app_context():
            db.session.execute(outbox.T.delete().where(outbox.T.c.queue == "background"))
            db.session.commit()
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json["workers"]["queues_without_worker"] == [], ready.json
        page = client.get("/admin/jobs").get_data(as_text=True)
        assert f'data-worker="{alive[0]["name"]}" data-alive="1"' in page
        row = page[page.index(f'data-worker="{alive[0]["name"]}"'):].split("</tr>")[0]
        assert any(state in row for state in ("Rảnh, đang chờ tác vụ", "Đang chạy một tác vụ", "Đang khởi động")), row
        assert "Có người đang chờ" in row
        assert "Lần báo hiệu gần nhất (giờ Việt Nam)" in page
        local = alive[0]["last_heartbeat"].astimezone(dt.timezone(dt.timedelta(hours=7)))
        assert local.strftime("%d/%m/%Y %H:%M") in page
        assert "Không có tiến trình nền nào đang chạy" not in page

        os.killpg(worker.pid, signal.SIGKILL)  # no goodbye: it stays in rq's registry, silent
        worker.wait(15)
        killed = time.monotonic()
        _wait(lambda: client.get("/ready").status_code == 503, 30, "/ready to see the worker dead")
        print(f"\nworker killed: /ready 503 after {time.monotonic() - killed:.1f} s")
        page = client.get("/admin/jobs").get_data(as_text=True)
        assert f'data-worker="{alive[0]["name"]}" data-alive="0"' in page
        assert "Không có tiến trình nền nào đang chạy" in page
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(15)


def test_the_jobs_page_says_when_redis_does_not_answer(app, client, tmp_path):
    closed = create_app({**_base_config(app.config["DATABASE_URL"], tmp_path),
                         "REDIS_URL": "redis://127.0.0.1:1/0"})  # nothing listens there
    closed.test_client_class = IsolatedClient
    other = closed.test_client()
    login(other, "admin")
    page = other.get("/admin/jobs").get_data(as_text=True)
    assert "Redis không trả lời (ConnectionError)" in page
    assert "Không có tiến trình nền nào đang chạy" not in page  # unknown, not "none"
    with closed.app_context():
        db.session.remove()
        db.engine.dispose()


def test_without_redis_the_jobs_page_says_jobs_run_in_the_web_processes(client):
    login(client, "admin")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "Chưa cấu hình Redis (REDIS_URL)" in page
    english = client.get("/admin/jobs?lang=en").get_data(as_text=True)
    assert "Redis is not configured (REDIS_URL): each web process runs the jobs itself" in english
