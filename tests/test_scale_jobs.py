"""Follow-up work batched at scale (issue 12, point 5): a burst of orders and a 5,000-row import, with
a webhook active, Redis up and a real `delivery-service worker`, queue a handful of jobs, and every
webhook event is delivered once.

Coalesced jobs (geocoding, the report fold; webhook runs) start at most one run per kind every
JOBS_COALESCE_S (the default here, 10 s; WEBHOOK_COALESCE_S, 1 s, for webhook runs), each covering
every commit before it: the count follows the burst's length in time, not its number of orders. 300 orders show the same property as the issue's
1,000 in a third of the time. The import's floor is its size: geocoding takes up to 1,000 orders a
job, so 5,000 rows need 5 of them.
"""

from __future__ import annotations

import io
import math
import os
import signal
import time

import sqlalchemy as sa
from redis_server import redis_server  # noqa: F401 (the fixture)
from test_faults_jobs import fault_app, figures, post_orders, receiver, start_worker, wait_for  # noqa: F401

from delivery_service import outbox
from delivery_service.config import DEFAULTS
from delivery_service.extensions import db
from delivery_service.privacy import jobs as privacy_jobs

ORDERS = 300
ROWS = 5000
COALESCED = ("delivery_service.webhooks.jobs:dispatch_due", "delivery_service.geo.services:locate_new",
             "delivery_service.reports.fold:fold_job")


def by_func(app) -> dict[str, int]:  # noqa: ANN001
    with app.app_context():
        found = dict(db.session.execute(
            sa.select(outbox.T.c.func_path, sa.func.count()).where(outbox.T.c.func_path != privacy_jobs.JOB)
            .group_by(outbox.T.c.func_path)).all())
        db.session.remove()
    return found


def settled(app) -> bool:  # noqa: ANN001
    now = figures(app)
    return now.get("done", 0) + now.get("failed", 0) + now.get("superseded", 0) == now["owed"]


def test_a_burst_of_orders_and_a_big_import_queue_a_handful_of_jobs(fault_app, receiver, tmp_path):  # noqa: F811
    from test_imports import row, to_csv

    every_s = fault_app.config["JOBS_COALESCE_S"] = DEFAULTS["JOBS_COALESCE_S"]
    webhook_every_s = fault_app.config["WEBHOOK_COALESCE_S"] = DEFAULTS["WEBHOOK_COALESCE_S"]
    log = tmp_path / "worker.log"
    print(f"\nworker log: {log}")
    # The worker's maintenance pass at its default period too (it queues a webhook run whenever
    # events are owed and no run holds the endpoint).
    worker = start_worker(fault_app, log, JOBS_WORKER_MAINTENANCE_S=str(DEFAULTS["JOBS_WORKER_MAINTENANCE_S"]))
    client = fault_app.test_client()
    auth = {"Authorization": f"Bearer {fault_app.config['DEMO_TOKEN']}"}
    try:
        time.sleep(2)  # the worker is up
        started = time.monotonic()
        times, errors, _codes = post_orders(fault_app, ORDERS)
        burst_s = time.monotonic() - started
        wait_for(lambda: settled(fault_app), 120, "the burst's jobs")
        burst = by_func(fault_app)
        burst_jobs = sum(burst.values())

        content = to_csv([row() for _ in range(ROWS)])
        started = time.monotonic()
        upload = client.post("/api/v1/imports", headers=auth, data={"file": (io.BytesIO(content), "big.csv")})
        assert upload.status_code == 202, upload.json
        # Werkzeug's test client spooled the 1 MB body to a temporary file it never closes (left to
        # the garbage collector, it fails a later test as an unraisable ResourceWarning).
        upload.request.environ["wsgi.input"].close()
        url = f"/api/v1/imports/{upload.json['id']}"
        wait_for(lambda: client.get(url, headers=auth).json["state"] in ("done", "failed"), 300, "the import")
        imported = client.get(url, headers=auth).json
        import_s = time.monotonic() - started
        wait_for(lambda: settled(fault_app), 120, "the import's jobs")
        with fault_app.app_context():
            owed_events = db.session.scalar(sa.text("SELECT COUNT(*) FROM order_events"))
            db.session.remove()
        wait_for(lambda: len(receiver.events()) >= owed_events, 60, "every webhook event")
        time.sleep(1)  # a duplicate would come now
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(15)
    total = by_func(fault_app)
    import_jobs = sum(total.values()) - burst_jobs
    result = figures(fault_app)
    events = [e["event_id"] for e in receiver.events()]
    times.sort()
    print(f"burst: {ORDERS} orders in {burst_s:.1f} s, {errors} errors, p99 {times[int(ORDERS * .99)] * 1000:.0f} ms; "
          f"{burst_jobs} jobs {burst}")
    print(f"import: {ROWS} rows {imported['state']} ({imported.get('created_rows')} created) in {import_s:.1f} s; "
          f"{import_jobs} jobs with itself; all {total}")
    print(f"outbox {result}; webhook events {len(events)} of {owed_events} owed, "
          f"duplicates {len(events) - len(set(events))}")
    assert errors == 0
    # A handful, and bounded by the burst's length in time: about one run per kind per period.
    periods = (webhook_every_s, every_s, every_s)  # COALESCED's order
    assert burst_jobs <= sum(1 + math.ceil(burst_s / s) for s in periods)
    assert burst.get(COALESCED[0], 0) <= 1 + math.ceil(burst_s / webhook_every_s)
    assert (imported["state"], imported["created_rows"]) == ("done", ROWS)
    # The import itself, the geocoding scan and the fold each about once per 10 s (and a maintenance
    # pass's), webhook runs every second (and a follow-up run for each 2,000 events one run leaves owed).
    webhook_runs = sum(n for f, n in total.items() if f.startswith("delivery_service.webhooks.jobs:"))
    webhook_runs -= sum(n for f, n in burst.items() if f.startswith("delivery_service.webhooks.jobs:"))
    assert webhook_runs <= 2 * (1 + math.ceil(import_s / webhook_every_s)) + math.ceil(2 * ROWS / 2000)
    passes = 1 + math.ceil(import_s / DEFAULTS["JOBS_WORKER_MAINTENANCE_S"])
    assert import_jobs - webhook_runs <= 1 + 2 * (1 + math.ceil(import_s / every_s)) + passes
    assert result.get("failed", 0) == 0
    assert len(events) == len(set(events)) == owed_events  # every event once
