"""Faults around background jobs (issue 12): Redis stopped and frozen under load, the rq worker and its
job process killed mid-job, the database's connections terminated. Each test prints and asserts its
figures: requests, errors, jobs owed, jobs done, duplicates. Redis is a private server of the test's
own (redis_server.py), never the shared one."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import _base_config, order_payload
from flask import Flask
from pypdf import PdfReader
from redis_server import RedisServer, redis_server  # noqa: F401 (the fixture)
from rq import Queue, SimpleWorker
from test_webhooks import Receiver

from delivery_service import create_app, jobs, outbox
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder
from delivery_service.privacy import jobs as privacy_jobs

TESTS = Path(__file__).parent
CLI = Path(sys.executable).parent / "delivery-service"


@pytest.fixture
def fault_app(app: Flask, redis_server: RedisServer, tmp_path: Path) -> Iterator[Flask]:  # noqa: F811
    """An app on the test database whose jobs go through the private Redis, in the real mode: a runner
    thread relays them after commit (JOBS_INLINE off); leases of 2 s so that deaths show quickly."""
    from conftest import IsolatedClient

    faulty = create_app({**_base_config(app.config["DATABASE_URL"], tmp_path), "REDIS_URL": redis_server.url,
                         "RQ_QUEUE": f"fault-{uuid.uuid4().hex[:8]}", "JOBS_INLINE": False, "JOBS_POLL_S": 0.2,
                         "JOBS_LEASE_S": 2, "LABEL_ASYNC_THRESHOLD": 2})
    faulty.config["DEMO_TOKEN"] = app.config["DEMO_TOKEN"]
    faulty.test_client_class = IsolatedClient
    yield faulty
    _kill_leftovers(faulty.config["RQ_QUEUE"])
    jobs.stop_runner(faulty)
    faulty.extensions["redis"].close()
    with faulty.app_context():
        db.session.remove()
        db.engine.dispose()


def _kill_leftovers(queue: str) -> None:
    """Kill every process of this test's queue still alive: rq's work-horses start sessions of their
    own, so killing a worker's process group can leave one behind."""
    mark = f"RQ_QUEUE={queue}".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if mark in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            continue


def figures(app: Flask) -> dict[str, int]:
    """The outbox by state, leaving out the day's personal-data erasure (queued by the first maintenance
    pass of the day, whatever the test does)."""
    mine = outbox.T.c.func_path != privacy_jobs.JOB
    with app.app_context():
        states = dict(db.session.execute(sa.select(outbox.T.c.state, sa.func.count()).where(mine)
                                         .group_by(outbox.T.c.state)).all())
        retried = db.session.scalar(sa.select(sa.func.count()).where(mine, outbox.T.c.attempt > 1))
        db.session.remove()
    return {**states, "owed": sum(states.values()), "retried": retried}


def wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def post_orders(app: Flask, n: int) -> tuple[list[float], int, list[str]]:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {app.config['DEMO_TOKEN']}"}
    times, errors, codes = [], 0, []
    for _ in range(n):
        body = order_payload()
        started = time.monotonic()
        resp = client.post("/api/v1/orders", json=body, headers=headers)
        times.append(time.monotonic() - started)
        errors += resp.status_code != 201
        codes.append(body["dossier_code"])
    return times, errors, codes


def stored(app: Flask, codes: list[str]) -> int:
    with app.app_context():
        n = db.session.scalar(sa.select(sa.func.count()).where(DeliveryOrder.dossier_code.in_(codes)))
        db.session.remove()
    return n


class BurstWorker(SimpleWorker):
    """An in-process worker without rq's command channel: its pub/sub thread only serves
    `rq` commands (stop a job), and waiting for it to notice the end of a burst took a minute."""

    def subscribe(self) -> None:
        pass

    def unsubscribe(self) -> None:
        pass


def drain_with_worker(app: Flask) -> None:
    """Wait until the relay handed everything, then run the queues with an in-process worker."""
    wait_for(lambda: figures(app).get("pending", 0) == 0, 20, "the relay to hand the waiting jobs")
    jobs.use_app_for_worker(app)
    queues = [Queue(name, connection=app.extensions["redis"]) for name in jobs.queue_names(app).values()]
    BurstWorker(queues, connection=app.extensions["redis"]).work(burst=True)


def test_redis_stopped_under_load_answers_every_write_and_runs_every_job_once(fault_app, redis_server):  # noqa: F811
    from test_imports import row, to_csv

    redis_server.stop()
    times, errors, codes = post_orders(fault_app, 40)
    waiting = figures(fault_app)
    print(f"\nRedis stopped: 40 requests, {errors} errors, max {max(times):.3f} s, "
          f"total {sum(times):.1f} s; owed {waiting}")
    assert errors == 0 and max(times) < 1.0
    assert stored(fault_app, codes) == 40 and len(set(codes)) == 40
    assert waiting["owed"] == waiting.get("pending", 0) > 0  # nothing lost, nothing handed meanwhile
    assert waiting["owed"] <= 3  # batched: one geocoding job for the 40 orders, one fold
    # ... and what people start meanwhile: a cancel, a label batch, an import (all answered at once)
    client = fault_app.test_client()
    auth = {"Authorization": f"Bearer {fault_app.config['DEMO_TOKEN']}"}
    item_id = client.get("/api/v1/orders?page_size=1", headers=auth).json[0]["item_id"]
    cancel = client.post(f"/api/v1/orders/{item_id}/events", json={"status": "cancelled"}, headers=auth)
    batch = client.post("/api/v1/labels/batches", json={}, headers=auth)
    upload = client.post("/api/v1/imports", headers=auth, data={
        "file": (io.BytesIO(to_csv([row() for _ in range(30)])), "orders.csv")})
    assert (cancel.status_code, batch.status_code, upload.status_code) == (201, 202, 202)
    owed = figures(fault_app)
    assert owed["owed"] == owed.get("pending", 0) <= waiting["owed"] + 2  # + the batch and the import
    redis_server.start()
    drain_with_worker(fault_app)
    done = figures(fault_app)
    print(f"after Redis came back: {done}")
    assert done["owed"] == done.get("done") and done["retried"] == 0
    batch_now = client.get(f"/api/v1/labels/batches/{batch.json['id']}", headers=auth).json
    import_now = client.get(f"/api/v1/imports/{upload.json['id']}", headers=auth).json
    assert (batch_now["state"], batch_now["done"], batch_now["total"]) == ("done", 39, 39)
    assert (import_now["state"], import_now["created_rows"]) == ("done", 30)
    assert stored(fault_app, codes) == 40


def test_redis_frozen_costs_no_request_a_wait(fault_app, redis_server):  # noqa: F811
    with redis_server.frozen():
        times, errors, codes = post_orders(fault_app, 20)
        time.sleep(1)  # the relay meets the frozen server meanwhile
    print(f"\nRedis frozen: 20 requests, {errors} errors, max {max(times):.3f} s")
    assert errors == 0 and max(times) < 1.0 and stored(fault_app, codes) == 20
    drain_with_worker(fault_app)
    done = figures(fault_app)
    print(f"after Redis thawed: {done}")
    assert done["owed"] == done.get("done") and done["retried"] == 0


# A real `delivery-service worker` killed mid-job -----------------------------------------------------

def slow_job(marker_dir: str) -> None:
    """A job that says where it runs, takes its time, then writes once (a kill before that writes
    nothing, so the item_serials rows count the completed runs)."""
    Path(marker_dir, f"horse-{os.getpid()}").write_text(str(os.getpid()))
    time.sleep(3)
    db.session.execute(sa.text("INSERT INTO item_serials (allocated_at) VALUES (CURRENT_TIMESTAMP)"))


def start_worker(app: Flask, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "DATABASE_URL": app.config["DATABASE_URL"], "REDIS_URL": app.config["REDIS_URL"],
           "RQ_QUEUE": app.config["RQ_QUEUE"], "SECRET_KEY": "test-secret", "JOBS_LEASE_S": "2",
           "JOBS_POLL_S": "0.2", "JOBS_HAND_LEASE_S": "1", "JOBS_WORKER_MAINTENANCE_S": "3",
           "PYTHONPATH": str(TESTS)}
    with log.open("ab") as out:  # read when a test fails
        return subprocess.Popen([str(CLI), "worker"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def horses(marker_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in marker_dir.glob("horse-*")]


@pytest.fixture
def receiver(fault_app: Flask) -> Iterator[Receiver]:
    """A counter system's webhook receiver, set as the demo client's endpoint."""
    from delivery_service.accounts.services import actor_for_token
    from delivery_service.webhooks import services

    server = Receiver()
    with fault_app.app_context():
        services.set_endpoint(actor_for_token(fault_app.config["DEMO_TOKEN"]).client_id, server.url)
        db.session.commit()
    yield server
    server.close()


@pytest.mark.parametrize("kill", ["worker_and_job", "job_only"])
def test_a_job_whose_process_dies_is_run_again_once(fault_app, tmp_path, kill, receiver):
    marker = tmp_path / "markers"
    marker.mkdir()
    with fault_app.app_context():
        jobs.enqueue_after_commit("test_faults_jobs:slow_job", str(marker))
        db.session.commit()
    log = tmp_path / "worker.log"
    print(f"\nworker log: {log}")
    first = start_worker(fault_app, log)
    second = None
    try:
        wait_for(lambda: horses(marker), 30, "the job to start in a work-horse")
        [horse] = horses(marker)
        os.kill(horse, signal.SIGKILL)  # what the out-of-memory killer does
        if kill == "worker_and_job":
            os.killpg(first.pid, signal.SIGKILL)
            first.wait(10)
            second = start_worker(fault_app, log)
        # The lease lapses (2 s); a relay retries the job and a worker runs it to the end.
        wait_for(lambda: figures(fault_app).get("done", 0) == 1, 45, "the retried job to finish")
        with fault_app.app_context():
            completed = db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials"))
            db.session.remove()
        # Forked job processes after the clean-up: intake's follow-up jobs (geocoding, the fold,
        # webhooks) run, and the webhook's cursor moves: every event is delivered once.
        times, errors, codes = post_orders(fault_app, 5)
        wait_for(lambda: figures(fault_app).get("done", 0) == figures(fault_app)["owed"], 60, "every job")
        wait_for(lambda: len(receiver.events()) >= 10, 30, "the webhook deliveries")
        # ... and a label batch (a job a person waits for) of the 5 orders renders in a forked job
        client = fault_app.test_client()
        auth = {"Authorization": f"Bearer {fault_app.config['DEMO_TOKEN']}"}
        batch = client.post("/api/v1/labels/batches", json={}, headers=auth)
        assert batch.status_code == 202, batch.json
        job_url = f"/api/v1/labels/batches/{batch.json['id']}"
        wait_for(lambda: client.get(job_url, headers=auth).json["state"] == "done", 60, "the label batch")
        printed = client.get(job_url, headers=auth).json
        pdf = client.get(printed["file"], headers=auth)
        time.sleep(1)  # a duplicate would come now
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)  # its leftovers are the next test's clean-up
                proc.wait(15)
    result = figures(fault_app)
    events = [e["event_id"] for e in receiver.events()]
    print(f"\n{kill} killed: job runs started {len(horses(marker))}, completed {completed}; "
          f"then 5 requests, {errors} errors; outbox {result}; webhook events {len(events)}, "
          f"duplicates {len(events) - len(set(events))}")
    assert len(events) == 10 and len(set(events)) == 10  # created + assigned of 5 orders, each once
    assert (printed["total"], printed["done"], pdf.status_code) == (5, 5, 200)
    assert len(PdfReader(io.BytesIO(pdf.data)).pages) == 5  # one label per order, once
    assert completed == 1  # once: the killed run wrote nothing, the retry wrote once
    assert len(horses(marker)) == 2 and errors == 0 and stored(fault_app, codes) == 5
    assert result.get("failed", 0) == 0 and result["retried"] == 1 and result["done"] == result["owed"]


def test_the_worker_rides_out_redis_restarts_idle_and_mid_job(fault_app, redis_server, tmp_path):  # noqa: F811
    """Redis restarted (its data lost) while the worker idles, then while a job runs: the worker stays
    up, the job ends once, jobs lost with Redis are handed again, rq's scheduler is back."""
    from redis import Redis
    from rq.scheduler import RQScheduler

    fault_app.config["JOBS_HAND_LEASE_S"] = 1
    marker = tmp_path / "markers"
    marker.mkdir()
    log = tmp_path / "worker.log"
    print(f"\nworker log: {log}")
    worker = start_worker(fault_app, log)
    lock = RQScheduler.get_locking_key(jobs.queue_names(fault_app)["interactive"])
    probe = Redis.from_url(redis_server.url, socket_timeout=1)
    try:
        wait_for(lambda: probe.exists(lock), 30, "rq's scheduler")
        redis_server.restart()  # idle
        with fault_app.app_context():
            jobs.enqueue_after_commit("test_faults_jobs:slow_job", str(marker))
            db.session.commit()
        wait_for(lambda: horses(marker), 30, "the job to start after the idle restart")
        redis_server.stop()  # mid-job
        time.sleep(2)
        redis_server.start()
        wait_for(lambda: figures(fault_app).get("done", 0) == 1, 45, "the job to end")
        with fault_app.app_context():
            jobs.enqueue_after_commit("test_jobs:record", "after the restarts")
            db.session.commit()
        wait_for(lambda: figures(fault_app).get("done", 0) == 2, 30, "a job queued after the restarts")
        wait_for(lambda: probe.exists(lock), 30, "rq's scheduler to come back")
        alive = worker.poll() is None
    finally:
        probe.close()
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(15)
    result = figures(fault_app)
    with fault_app.app_context():
        completed = db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials"))
        db.session.remove()
    print(f"Redis restarted twice: worker alive {alive}; slow job runs started {len(horses(marker))}; "
          f"rows written {completed}; outbox {result}")
    assert alive and result["done"] == result["owed"] == 2 and result.get("failed", 0) == 0
    assert completed == 2  # the slow job once, the later job once


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # pg_terminate_backend is PostgreSQL's
def test_terminated_database_connections_then_jobs_still_run(app, backend, tmp_path):
    """Without Redis (the embedded default): the runner thread's and the requests' pooled connections
    are killed by the server; the next requests and jobs reconnect."""
    from conftest import IsolatedClient

    embedded = create_app({**_base_config(app.config["DATABASE_URL"], tmp_path), "JOBS_INLINE": False,
                           "JOBS_POLL_S": 0.2})
    embedded.config["DEMO_TOKEN"] = app.config["DEMO_TOKEN"]
    embedded.test_client_class = IsolatedClient
    try:
        _, errors_before, codes = post_orders(embedded, 5)
        with embedded.app_context():
            jobs.enqueue_after_commit("test_jobs:record", "before")
            db.session.commit()
        assert jobs.wait_idle(embedded, 20)
        admin = sa.create_engine(app.config["DATABASE_URL"], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            killed = conn.scalar(sa.text(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        admin.dispose()
        _, errors_after, more = post_orders(embedded, 10)
        with embedded.app_context():
            jobs.enqueue_after_commit("test_jobs:record", "after")
            db.session.commit()
        assert jobs.wait_idle(embedded, 20)
        result = figures(embedded)
        print(f"\n{killed} connections terminated; 15 requests, {errors_before + errors_after} errors; "
              f"outbox {result}")
        assert killed > 0 and errors_before == errors_after == 0 and stored(embedded, codes + more) == 15
        assert result.get("failed", 0) == 0 and result["done"] == result["owed"]
    finally:
        jobs.stop_runner(embedded)
        with embedded.app_context():
            db.session.remove()
            db.engine.dispose()
