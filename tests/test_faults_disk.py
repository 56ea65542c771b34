"""Fault: the embedded database's disk fills up (issue 12, point 7).

SQLite's ``max_page_count`` caps the file's size: past it every write fails with the very error a full
disk gives ("database or disk is full", SQLITE_FULL), without needing a small file system. Orders sent
meanwhile are answered 503 with Retry-After and nothing half-stored; once there is room again the
counters' retries (same Idempotency-Key) store each order once, and the jobs owed by those that were
stored all run.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import order_payload

from delivery_service import jobs
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.outbox import OutboxJob


def _cap_pages(engine: sa.Engine, extra_pages: int | None) -> None:
    """Cap the database at its current size plus ``extra_pages`` (None: lift the cap), on every new
    connection of the pool."""
    engine.dispose()
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
    limit = 2**31 - 2 if extra_pages is None else pages + extra_pages

    @sa.event.listens_for(engine, "connect")
    def _cap(dbapi_conn, _record):  # noqa: ANN001, ANN202
        dbapi_conn.execute(f"PRAGMA max_page_count = {limit}")

    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_full_disk_answers_503_and_loses_or_duplicates_nothing(app, client, auth):
    engine = db.engine
    bodies = [order_payload() for _ in range(40)]

    def send(i: int):
        return client.post("/api/v1/orders", json=bodies[i], headers={**auth, "Idempotency-Key": f"disk-{i}"})

    first = [send(i) for i in range(5)]  # room enough: stored
    assert [r.status_code for r in first] == [201] * 5
    _cap_pages(engine, 2)  # a few pages left: the disk fills during the burst
    answers = {i: send(i) for i in range(5, 40)}
    codes = [r.status_code for r in answers.values()]
    assert set(codes) <= {201, 503} and 503 in codes, codes
    full = [i for i, r in answers.items() if r.status_code == 503]
    print(f"disk full: {len(answers)} requests, {len(full)} answered 503, {len(answers) - len(full)} stored")
    for i in full:
        body = answers[i].json
        assert body["error"] == "storage_full" and answers[i].headers["Retry-After"] == "60"
    db.session.rollback()
    stored = db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder))
    assert stored == 40 - len(full)  # every 201 is stored, no 503 left anything behind
    orphans = db.session.scalar(sa.select(sa.func.count()).select_from(OrderEvent).where(
        ~OrderEvent.order_id.in_(sa.select(DeliveryOrder.id))))
    assert orphans == 0

    _cap_pages(engine, None)  # the operator frees space; the counters' software retries
    retried = [send(i).status_code for i in full]
    assert retried == [201] * len(full)
    again = [send(i).status_code for i in range(40)]
    assert again == [200] * 40  # replays: nothing duplicated
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder)) == 40
    keys = db.session.scalars(sa.select(DeliveryOrder.idempotency_key)).all()
    assert sorted(keys) == sorted(f"disk-{i}" for i in range(40))

    jobs.drain(app)  # what the runner does next: every job owed by a stored order has run
    db.session.rollback()
    waiting = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxJob).where(
        OutboxJob.state.in_(("pending", "handed", "running"))))
    assert waiting == 0
