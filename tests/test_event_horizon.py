"""The event log's horizon on PostgreSQL (``webhooks.services.committed_horizon``, taken by the
webhooks, the report fold, the geocoding scan and the notifications): it waits for the transactions
inserting events, and the writers that arrive meanwhile queue behind its lock, so it waits one short
try at a time: a new order is never held until the horizon gives up (it was, up to 2 s, while a
long transaction such as an import's chunk kept inserting events)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import sqlalchemy as sa

from delivery_service.extensions import db
from delivery_service.webhooks import services

pytestmark = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)  # SQLite: no lock to take

_QUEUED = sa.text("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                  "WHERE c.relname = 'order_events' AND l.mode = 'ShareLock' AND NOT l.granted")


def _horizon_in_thread(app: Any, result: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        with app.app_context():
            try:
                result["horizon"] = services.committed_horizon()
            finally:
                db.session.remove()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _until_queued(engine: sa.Engine) -> None:
    """Until the horizon's lock is waiting behind the writer."""
    deadline = time.monotonic() + 10
    while True:
        with engine.connect() as conn:
            if conn.scalar(_QUEUED):
                return
        assert time.monotonic() < deadline, "the horizon never queued for its lock"
        time.sleep(0.002)


def test_a_new_writer_is_not_held_behind_a_horizon_waiting_for_an_open_one(app, monkeypatch):
    monkeypatch.setattr(services, "HORIZON_TRIES", 200, raising=False)  # the horizon keeps trying while the test runs
    engine = db.engine
    holder = engine.connect()
    open_tx = holder.begin()
    holder.execute(sa.text("LOCK TABLE order_events IN ROW EXCLUSIVE MODE"))  # as an INSERT takes it
    result: dict[str, Any] = {}
    thread = _horizon_in_thread(app, result)
    try:
        _until_queued(engine)
        # A second writer (an order's event) while the horizon is queued behind the first: it waits
        # for one try of the horizon at most (HORIZON_LOCK_MS), not until the horizon gives up.
        with engine.connect() as writer:
            writer.execute(sa.text("SET lock_timeout = '1s'"))
            writer.execute(sa.text("LOCK TABLE order_events IN ROW EXCLUSIVE MODE"))
            writer.rollback()
        assert thread.is_alive() and "horizon" not in result  # still trying, the first writer still open
    finally:
        open_tx.rollback()
        holder.close()
        thread.join(15)
    newest = db.session.scalar(sa.text("SELECT coalesce(max(id), 0) FROM order_events"))
    assert result == {"horizon": newest}  # once the writer ended, the next try took it


def test_the_horizon_gives_up_after_its_tries_while_a_writer_stays_open(app, monkeypatch):
    monkeypatch.setattr(services, "HORIZON_TRIES", 3)
    holder = db.engine.connect()
    open_tx = holder.begin()
    holder.execute(sa.text("LOCK TABLE order_events IN ROW EXCLUSIVE MODE"))
    result: dict[str, Any] = {}
    try:
        _horizon_in_thread(app, result).join(15)
    finally:
        open_tx.rollback()
        holder.close()
    assert result == {"horizon": None}  # try again later (the callers' "busy")
