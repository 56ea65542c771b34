"""Webhooks to counter systems (a real HTTP receiver on loopback) and polling with updated_since."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import order_payload
from flask import Flask
from test_jobs import BurstWorker

from delivery_service import outbox
from delivery_service.accounts.services import actor_for_token
from delivery_service.cli import main
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.webhooks import services
from delivery_service.webhooks.models import WebhookDelivery, WebhookEndpoint


class Receiver:
    """A counter system's webhook receiver on loopback: records every request; answers 204, or 503
    for the next ``fail`` ones, or ``status`` when set, or never (``hang``: it holds the connection
    open without a word until the test ends); ``on_request`` runs after the request is read."""

    def __init__(self, *, status: int | None = None, hang: bool = False) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = 0
        self.status = status
        self.hang = hang
        self.on_request: Callable[[], None] | None = None
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hang:
                    receiver.requests.append({"headers": dict(self.headers), "body": body, "ok": False})
                    receiver.released.wait(30)
                    return
                failing = receiver.fail > 0
                receiver.fail -= 1 if failing else 0
                status = receiver.status or (503 if failing else 204)
                ok = 200 <= status < 300
                receiver.requests.append({"headers": dict(self.headers), "body": body, "ok": ok})
                if receiver.on_request is not None:
                    receiver.on_request()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/delivery"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        """The events of the successful requests, in arrival order."""
        return [e for r in self.requests if r["ok"] for e in json.loads(r["body"])["events"]]

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def endpoint(app, token, receiver) -> tuple[int, str]:
    """The demo client's endpoint at the receiver: (client id, secret)."""
    client_id = actor_for_token(token).client_id
    _endpoint, secret = services.set_endpoint(client_id, receiver.url)
    db.session.commit()
    return client_id, secret


def refused_url() -> str:
    """An address where nothing listens (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"


def run_due(**kwargs: Any) -> list[services.Report]:
    """What the background runner does every few seconds (the trigger after a commit may have sent
    some of it already: either way the receiver ends up with everything owed, once)."""
    reports = services.dispatch_due(**kwargs)
    db.session.remove()
    return reports


def later(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


def from_the_start(client_id: int) -> None:
    """Owe the client's endpoint the whole event log (orders made before it was set)."""
    db.session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.api_client_id == client_id)
                       .values(cursor_event_id=0))
    db.session.commit()


def new_order(client, auth) -> str:
    resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert resp.status_code == 201, resp.json
    return resp.json["item_id"]


def cancel(client, auth, item_id: str) -> None:
    resp = client.post(f"/api/v1/orders/{item_id}/events", json={"status": "cancelled"}, headers=auth)
    assert resp.status_code == 201, resp.json


def the_endpoint() -> WebhookEndpoint:
    db.session.rollback()
    db.session.expire_all()  # the app's sessions keep objects loaded across commits
    return db.session.scalars(sa.select(WebhookEndpoint)).one()


def test_events_arrive_signed_and_in_order(client, auth, endpoint, receiver):
    _client_id, secret = endpoint
    item_id = new_order(client, auth)
    cancel(client, auth, item_id)
    run_due()
    events = receiver.events()
    assert [e["status_to"] for e in events] == ["created", "assigned", "cancelled"]
    assert all(e["item_id"] == item_id for e in events)
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)
    assert events[1]["route_code"] and events[2]["status_from"] == "assigned"
    assert set(events[0]) == {"event_id", "item_id", "dossier_code", "status_from", "status_to", "reason",
                              "server_time", "device_time", "route_code"}
    keys = set()
    for req in receiver.requests:
        ts = req["headers"]["X-Webhook-Timestamp"]
        assert abs(time.time() - int(ts)) < 60
        assert services.verify(secret, ts, req["body"], req["headers"]["X-Webhook-Signature"])
        assert not services.verify("wrong", ts, req["body"], req["headers"]["X-Webhook-Signature"])
        assert not services.verify(secret, str(int(ts) - 301), req["body"],
                                   req["headers"]["X-Webhook-Signature"])
        assert b"Nguy" not in req["body"] and b"0905123456" not in req["body"]  # no personal data
        assert req["headers"]["X-Webhook-Attempt"] == "1"
        batch = json.loads(req["body"])["events"]
        ep_id, first, last = req["headers"]["X-Webhook-Delivery"].split(".")
        assert (int(first), int(last)) == (batch[0]["event_id"], batch[-1]["event_id"])
        keys.add(req["headers"]["X-Webhook-Delivery"])
    assert len(keys) == len(receiver.requests)
    assert the_endpoint().cursor_event_id == events[-1]["event_id"]
    assert run_due(now=later(7 * 86400)) == []  # nothing owed: nothing run, nothing sent again
    assert len(receiver.events()) == 3


def test_an_endpoint_starts_after_the_past(client, auth, token, receiver):
    new_order(client, auth)  # before the endpoint exists: not sent
    services.set_endpoint(actor_for_token(token).client_id, receiver.url)
    db.session.commit()
    item_id = new_order(client, auth)
    run_due()
    assert {e["item_id"] for e in receiver.events()} == {item_id}


def test_the_retry_schedule_is_a_setting(app, monkeypatch):
    from delivery_service import config

    delays = [services.backoff(n).total_seconds() for n in range(1, services.max_failures())]
    assert delays[:5] == [60, 300, 1800, 7200, 21600] and delays[5:] == [21600] * (len(delays) - 5)
    assert services.max_failures() == 9 and sum(delays) >= 24 * 3600  # more than a day of trying
    monkeypatch.setitem(app.config, "WEBHOOK_RETRY_SCHEDULE", (10, 3600, 43200))
    assert [services.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 3600, 43200, 43200]
    assert services.max_failures() == 5  # the fifth: after 10 s + 1 h + 12 h + 12 h (> a day)
    monkeypatch.setenv("WEBHOOK_RETRY_SCHEDULE", "5, 60,600")
    monkeypatch.setenv("WEBHOOK_READ_TIMEOUT_S", "2.5")
    cfg = config.load("/tmp/nowhere")
    assert cfg["WEBHOOK_RETRY_SCHEDULE"] == (5, 60, 600) and cfg["WEBHOOK_READ_TIMEOUT_S"] == 2.5
    for key, bad in [("WEBHOOK_RETRY_SCHEDULE", "60,x"), ("WEBHOOK_RETRY_SCHEDULE", "300,60"),
                     ("WEBHOOK_RETRY_SCHEDULE", "0"), ("WEBHOOK_RETRY_SCHEDULE", " , "),
                     ("WEBHOOK_CONNECT_TIMEOUT_S", "0"), ("WEBHOOK_READ_TIMEOUT_S", "120"),
                     ("WEBHOOK_READ_TIMEOUT_S", "soon")]:
        with monkeypatch.context() as env:
            env.setenv(key, bad)
            with pytest.raises(config.ConfigError, match=key):
                config.load("/tmp/nowhere")


def test_failure_backs_off_and_blocks_later_events(client, auth, endpoint, receiver, caplog, monkeypatch):
    _client_id, secret = endpoint
    monkeypatch.setattr(services.log, "disabled", False)
    caplog.set_level(logging.DEBUG)
    receiver.fail = 2
    before = utcnow()
    item_id = new_order(client, auth)
    run_due()
    ep = the_endpoint()
    assert ep.consecutive_failures == 1 and ep.paused_at is None
    assert before + dt.timedelta(seconds=59) <= ep.next_attempt_at <= utcnow() + dt.timedelta(seconds=61)
    cancel(client, auth, item_id)  # not due yet: waits behind the failed batch
    assert run_due() == []
    assert len(receiver.requests) == 1 and receiver.events() == []
    assert services.deliver(ep.id).outcome == "not_due"
    report = services.deliver(ep.id, force=True)  # the retry, early
    assert (report.outcome, report.reason) == ("failed", "HTTP 503")
    ep = the_endpoint()
    assert ep.consecutive_failures == 2
    assert ep.next_attempt_at >= utcnow() + dt.timedelta(seconds=290)
    report = services.deliver(ep.id, force=True)
    assert (report.outcome, report.events, report.requests) == ("sent", 3, 2)
    assert [e["status_to"] for e in receiver.events()] == ["created", "assigned", "cancelled"]
    ep = the_endpoint()
    assert ep.consecutive_failures == 0 and ep.next_attempt_at is None
    log = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    # the failed batch is re-sent as it was (same events, same delivery id, the next attempt number);
    # the event logged meanwhile follows in a batch of its own
    assert [(d.attempt, d.status_code, d.event_count) for d in log] == [
        (1, 503, 2), (2, 503, 2), (3, 204, 2), (1, 204, 1)]
    assert log[0].error == "HTTP 503" and log[2].error is None
    headers = [r["headers"] for r in receiver.requests]
    assert [h["X-Webhook-Attempt"] for h in headers] == ["1", "2", "3", "1"]
    assert len({h["X-Webhook-Delivery"] for h in headers[:3]}) == 1
    assert headers[3]["X-Webhook-Delivery"] != headers[0]["X-Webhook-Delivery"]
    assert secret not in caplog.text and "0905123456" not in caplog.text and "Hoa" not in caplog.text


def test_a_due_retry_is_sent_with_no_other_traffic(client, auth, endpoint, receiver):
    receiver.fail = 1
    new_order(client, auth)
    run_due()
    assert len(receiver.requests) == 1 and receiver.events() == []
    assert run_due(now=later(30)) == []  # not due yet
    reports = run_due(now=later(61))  # what the background runner sees a minute later
    assert [(r.outcome, r.events, r.requests) for r in reports] == [("sent", 2, 1)]
    assert [r["headers"]["X-Webhook-Attempt"] for r in receiver.requests] == ["1", "2"]
    assert len(receiver.events()) == 2


def test_retries_survive_a_redis_that_is_down(app, client, auth, endpoint, receiver, monkeypatch, caplog):
    from redis import Redis
    from rq import Queue

    monkeypatch.setattr(services.log, "disabled", False)  # alembic's fileConfig disables existing loggers
    caplog.set_level(logging.INFO, logger=services.log.name)
    receiver.status = 503
    new_order(client, auth)
    down = Redis.from_url(refused_url().replace("http", "redis").rsplit("/", 1)[0], socket_connect_timeout=0.2)
    monkeypatch.setitem(app.extensions, "rq_queue", Queue("down", connection=down))
    report = services.deliver(the_endpoint().id, force=True)
    assert report.outcome == "failed"  # and scheduling its retry in Redis failed without a word to the run
    assert "retry not scheduled in Redis" in caplog.text
    monkeypatch.delitem(app.extensions, "rq_queue")
    receiver.status = None
    reports = run_due(now=later(400))  # the sweep finds the retry in the database (after 1 or 2 failures)
    assert [r.outcome for r in reports] == ["sent"]
    assert len(receiver.events()) == 2
    down.close()


def test_paused_after_repeated_failures_then_resume_delivers_everything_once(client, auth, endpoint,
                                                                            receiver):
    client_id, _secret = endpoint
    receiver.fail = 10**6
    item_id = new_order(client, auth)
    run_due()
    ep_id = the_endpoint().id
    while the_endpoint().paused_at is None:
        assert services.deliver(ep_id, force=True).outcome == "failed"
    ep = the_endpoint()
    assert ep.consecutive_failures == services.max_failures() == 9
    assert services.state(ep) == "paused"
    cancel(client, auth, item_id)
    assert services.deliver(ep_id, force=True).outcome == "paused"
    assert run_due(now=later(7 * 86400)) == []
    assert len(receiver.requests) == services.max_failures()
    attempts = [int(r["headers"]["X-Webhook-Attempt"]) for r in receiver.requests]
    assert attempts == list(range(1, 10))
    receiver.fail = 0
    services.resume(client_id)
    db.session.commit()  # the dispatch is queued after the commit
    run_due()
    events = receiver.events()
    assert [e["status_to"] for e in events] == ["created", "assigned", "cancelled"]
    assert len({e["event_id"] for e in events}) == 3
    assert services.state(the_endpoint()) == "ok"
    services.deliver(ep_id, force=True)
    assert len(receiver.events()) == 3


def owe_from_the_start(token: str, url: str) -> int:
    """The demo client's endpoint at ``url``, owed every event logged so far (logged before it was
    set, so no commit's trigger has sent any of them: the test's own run_due is the only sender)."""
    client_id = actor_for_token(token).client_id
    services.set_endpoint(client_id, url)
    db.session.commit()
    from_the_start(client_id)
    return client_id


def test_an_answer_whose_recording_fails_is_recorded_on_a_fresh_connection(app, backend, client, auth, token,
                                                                           receiver, monkeypatch):
    """The receiver answers 204, then the database connection that would move the cursor breaks
    (PostgreSQL: every connection of the service terminated by pg_terminate_backend; SQLite: the
    first commit of the answer fails): the answer is recorded anyway, and nothing is sent again."""
    cancel(client, auth, new_order(client, auth))
    owe_from_the_start(token, receiver.url)
    if backend == "postgresql":
        admin = sa.create_engine(app.config["DATABASE_URL"], poolclass=sa.pool.NullPool)
        killed = []

        def terminate() -> None:
            with admin.connect() as conn:
                killed.append(conn.scalar(sa.text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")))

        receiver.on_request = terminate
    else:
        real = services._record
        calls = []

        def flaky(*args: Any) -> None:
            calls.append(args)
            if len(calls) == 1:
                raise sa.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))
            real(*args)

        monkeypatch.setattr(services, "_record", flaky)
    reports = run_due()
    assert [(r.outcome, r.events, r.requests) for r in reports] == [("sent", 3, 1)]
    if backend == "postgresql":
        assert killed and killed[0] >= 1  # the pooled connection the answer was recorded on was gone
        admin.dispose()
    assert len(receiver.requests) == 1 and receiver.requests[0]["ok"]
    assert run_due(now=later(7 * 86400)) == []
    assert len(receiver.requests) == 1  # the 204 was recorded: never sent again
    log = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.attempt, d.status_code, d.event_count) for d in log] == [(1, 204, 3)]
    assert the_endpoint().cursor_event_id == log[-1].last_event_id


def test_an_answer_never_recorded_is_sent_once_more_as_attempt_2(client, auth, token, receiver, monkeypatch):
    """Recording the 204 fails every time (the database is gone after the answer): the batch is sent
    again once, as attempt 2 with the same delivery id, after the back-off; then never again."""
    cancel(client, auth, new_order(client, auth))
    owe_from_the_start(token, receiver.url)

    def broken(*args: Any) -> None:
        raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(services, "_record", broken)
    monkeypatch.setattr(services, "RECORD_TRIES", 2)
    reports = run_due()
    assert [(r.outcome, r.reason) for r in reports] == [("error", "OperationalError")]
    assert len(receiver.requests) == 1
    first = receiver.requests[0]
    assert first["headers"]["X-Webhook-Attempt"] == "1"
    monkeypatch.undo()
    assert run_due(now=later(30)) == []  # the unrecorded attempt counts for the back-off
    reports = run_due(now=later(61))
    assert [(r.outcome, r.events) for r in reports] == [("sent", 3)]
    assert len(receiver.requests) == 2
    again = receiver.requests[1]
    assert json.loads(again["body"]) == json.loads(first["body"])
    assert again["headers"]["X-Webhook-Attempt"] == "2"
    assert again["headers"]["X-Webhook-Delivery"] == first["headers"]["X-Webhook-Delivery"]
    log = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.attempt, d.status_code, d.error) for d in log] == [(1, None, services.NO_OUTCOME), (2, 204, None)]
    assert run_due(now=later(7 * 86400)) == [] and len(receiver.requests) == 2


def test_through_redis_and_an_rq_worker(rq_app, endpoint, receiver, token):
    from delivery_service import jobs

    auth = {"Authorization": f"Bearer {token}"}
    with rq_app.app_context():
        resp = rq_app.test_client().post("/api/v1/orders", json=order_payload(), headers=auth)
        assert resp.status_code == 201
        jobs.drain(rq_app)  # the outbox's rows handed to rq (the runner thread does this in a server)
        assert receiver.requests == []  # queued, not sent in the request
        queues = list(rq_app.extensions["rq_queues"].values())
        BurstWorker(queues, connection=queues[0].connection).work(burst=True)
        db.session.remove()
    assert [e["status_to"] for e in receiver.events()] == ["created", "assigned"]


def test_a_run_takes_one_horizon_and_hands_a_backlog_to_a_run_queued_at_once(app, backend, client, auth,
                                                                            endpoint, receiver, monkeypatch):
    """A run sends batch after batch up to the horizon it took when it started (on PostgreSQL taking
    it locks the log's writers out: once a run, not once a batch); after MAX_BATCHES_PER_RUN it
    hands over to a run queued at once, without Redis too (it waited for the next trigger or the
    maintenance pass: a backlog went out 20 batches per slot, far behind intake)."""
    client_id, _secret = endpoint
    services.set_endpoint(client_id, receiver.url)  # (a fresh cursor: the past is not owed)
    db.session.commit()
    app.config["JOBS_INLINE"] = False  # the orders' commits queue runs; nothing runs them yet
    app.extensions["jobs_no_runner"] = True
    try:
        items = [new_order(client, auth) for _ in range(5)]  # 10 events
    finally:
        app.config["JOBS_INLINE"] = True
        app.extensions.pop("jobs_no_runner", None)
    db.session.execute(outbox.T.delete())  # the runs those commits queued: only the follow-ups run here
    from_the_start(client_id)
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    monkeypatch.setattr(services, "MAX_BATCHES_PER_RUN", 2)
    locks: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        if statement.startswith("LOCK TABLE order_events"):
            locks.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        first = services.deliver(the_endpoint().id)
        db.session.remove()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    # The first run: 2 batches of 2, one horizon; then the follow-up run queued at once (JOBS_INLINE
    # runs it at that commit) and the ones after it sent the rest, each once, in order.
    assert (first.outcome, first.requests, first.events) == ("more", 2, 4)
    assert len(locks) == (3 if backend == "postgresql" else 0)  # 10 events: 3 runs of at most 4
    events = receiver.events()
    assert len(events) == 10 and {e["item_id"] for e in events} == set(items)
    assert [e["event_id"] for e in events] == sorted({e["event_id"] for e in events})
    assert the_endpoint().cursor_event_id == events[-1]["event_id"]
    followed = db.session.scalar(sa.select(sa.func.count()).select_from(outbox.T).where(
        outbox.T.c.func_path == "delivery_service.webhooks.jobs:dispatch"))
    assert followed == 2


def test_polling_with_updated_since_and_a_cursor(client, auth):
    since = (utcnow() - dt.timedelta(seconds=1)).isoformat()
    items = [new_order(client, auth) for _ in range(3)]
    first = client.get("/api/v1/orders", query_string={"updated_since": since, "page_size": 2}, headers=auth)
    assert first.status_code == 200, first.json
    assert [o["item_id"] for o in first.json] == items[:2]
    cursor = first.headers["X-Next-Cursor"]
    assert f"cursor={cursor}" in first.headers["Link"] and 'rel="next"' in first.headers["Link"]
    second = client.get("/api/v1/orders", query_string={"cursor": cursor, "page_size": 2}, headers=auth)
    assert [o["item_id"] for o in second.json] == items[2:]
    cursor = second.headers["X-Next-Cursor"]
    empty = client.get("/api/v1/orders", query_string={"cursor": cursor}, headers=auth)
    assert empty.json == [] and empty.headers["X-Next-Cursor"] == cursor
    cancel(client, auth, items[0])
    again = client.get("/api/v1/orders", query_string={"cursor": cursor}, headers=auth)
    assert [(o["item_id"], o["status"]) for o in again.json] == [(items[0], "cancelled")]
    later = client.get("/api/v1/orders", query_string={"updated_since": utcnow().isoformat()}, headers=auth)
    assert later.json == []
    bad = client.get("/api/v1/orders", query_string={"cursor": "nonsense"}, headers=auth)
    assert bad.status_code == 422
    paged = client.get("/api/v1/orders", query_string={"updated_since": since, "page": 2}, headers=auth)
    assert paged.status_code == 422
    assert client.get("/api/v1/orders", headers=auth).status_code == 200  # the ordinary list as before


def test_polling_sees_only_the_callers_orders(client, auth):
    from delivery_service.accounts.services import create_api_client

    since = (utcnow() - dt.timedelta(seconds=1)).isoformat()
    new_order(client, auth)
    _c, other = create_api_client(counter_code="HTI-DUCTHO", name="other system")
    db.session.commit()
    resp = client.get("/api/v1/orders", query_string={"updated_since": since},
                      headers={"Authorization": f"Bearer {other}"})
    assert resp.status_code == 200 and resp.json == []


def test_cli_sets_resumes_and_disables(app, client, auth, token, receiver):
    client_id = actor_for_token(token).client_id
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["api-clients", "webhook", str(client_id), "--url", receiver.url])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("whsec_") and the_endpoint().secret == secret
    bad = runner.invoke(main, ["api-clients", "webhook", str(client_id), "--url", "ftp://x"])
    assert bad.exit_code != 0
    receiver.fail = 1
    new_order(client, auth)
    run_due()
    assert services.state(the_endpoint()) == "retrying"
    result = runner.invoke(main, ["api-clients", "webhook", str(client_id), "--resume"])
    assert result.exit_code == 0 and services.state(the_endpoint()) == "ok"
    run_due()
    assert len(receiver.events()) == 2
    result = runner.invoke(main, ["api-clients", "webhook", str(client_id), "--disable"])
    assert result.exit_code == 0 and services.state(the_endpoint()) == "disabled"


@pytest.mark.config(WEBHOOK_CONNECT_TIMEOUT_S=0.5, WEBHOOK_READ_TIMEOUT_S=0.5)
def test_dispatch_says_what_it_did_per_endpoint(app, client, auth):
    """Four counter systems: one answers 204, one 500, one never answers, one refuses connections."""
    from delivery_service.accounts.services import create_api_client

    receivers = {"ok": Receiver(), "500": Receiver(status=500), "hang": Receiver(hang=True)}
    try:
        new_order(client, auth)  # before the endpoints: then owed to each of them from the start
        urls = {**{name: r.url for name, r in receivers.items()}, "refused": refused_url()}
        clients = {}
        for name, url in urls.items():
            api_client, _token = create_api_client(counter_code="QNG-TTHCC", name=f"system {name}")
            db.session.flush()
            services.set_endpoint(api_client.id, url)
            clients[name] = api_client.id
        db.session.commit()
        for client_id in clients.values():
            from_the_start(client_id)
        runner = app.test_cli_runner()
        started = time.monotonic()
        result = runner.invoke(main, ["webhooks", "dispatch"])
        took = time.monotonic() - started
        lines = {name: next(ln for ln in result.output.splitlines() if f"API client {cid} " in ln)
                 for name, cid in clients.items()}
        assert result.exit_code == 1, result.output
        assert "3 of 4 webhook deliveries failed" in result.output
        assert lines["ok"].endswith("sent 2 events in 1 request")
        assert "failed: HTTP 500; next attempt at " in lines["500"]
        assert "failed: timeout; next attempt at " in lines["hang"]
        assert "failed: connection refused; next attempt at " in lines["refused"]
        assert took < 5  # the hanging receiver held the sender ~0.5 s (the read timeout), not 10 s
        assert len(receivers["hang"].requests) == 1

        result = runner.invoke(main, ["webhooks", "dispatch"])
        assert result.exit_code == 0, result.output
        assert "nothing to send" in result.output and result.output.count("not due until ") == 3
        receivers["500"].status = None
        services.disable(clients["refused"])
        db.session.commit()
        result = runner.invoke(main, ["webhooks", "dispatch", "--all"])
        assert result.exit_code == 1, result.output  # the hanging one still fails
        lines = {name: next(ln for ln in result.output.splitlines() if f"API client {cid} " in ln)
                 for name, cid in clients.items()}
        assert lines["500"].endswith("sent 2 events in 1 request")
        assert lines["ok"].endswith("nothing to send") and lines["refused"].endswith("disabled")
        assert "failed: timeout" in lines["hang"]
        sent = receivers["500"].requests
        assert [r["headers"]["X-Webhook-Attempt"] for r in sent] == ["1", "2"]
        assert len(receivers["ok"].events()) == 2
    finally:
        for r in receivers.values():
            r.close()


def test_admin_page_shows_state_and_resumes(app, client):
    import re

    from conftest import login

    from delivery_service.accounts.models import ApiClient

    def token(path: str) -> str:
        html = client.get(path).get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)

    client_id = db.session.scalar(sa.select(ApiClient.id).order_by(ApiClient.id).limit(1))
    endpoint, _secret = services.set_endpoint(client_id, "http://127.0.0.1:9/hooks")
    endpoint.paused_at, endpoint.consecutive_failures = utcnow(), 9
    db.session.commit()
    login(client, "counter")
    assert client.get("/admin/webhooks").status_code == 403
    client.post("/logout", data={"csrf_token": token("/counter")})
    login(client, "admin")
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert "Tạm dừng" in page and "http://127.0.0.1:9/hooks" in page and "whsec_" not in page
    assert client.post(f"/admin/webhooks/{client_id}/resume").status_code == 400  # no CSRF token
    resumed = client.post(f"/admin/webhooks/{client_id}/resume", data={"csrf_token": token("/admin/webhooks")})
    assert resumed.status_code == 303
    db.session.expire_all()
    again = db.session.get(WebhookEndpoint, endpoint.id)
    assert again.paused_at is None and again.consecutive_failures == 0


def test_a_rotation_overlap_out_of_range_is_refused_in_both_languages_for_the_page(endpoint):
    from delivery_service.errors import InvalidInput, Text

    client_id, secret = endpoint
    with pytest.raises(InvalidInput) as refused:
        services.rotate_secret(client_id, dt.timedelta(hours=721))
    # a pair the admin page shows in the reader's language, not one "tiếng Việt / English" string
    assert refused.value.errors == {"overlap_hours": [Text("Từ 0 đến 720 giờ.", "From 0 to 720 hours.")]}
    assert the_endpoint().secret == secret  # nothing changed


@pytest.mark.config(JOBS_INLINE=False, JOBS_POLL_S=0.2, JOBS_MAINTENANCE_S=1, WEBHOOK_RETRY_SCHEDULE="1")
def test_the_background_runner_sends_a_due_retry_by_itself(app, client, auth, endpoint, receiver):
    """Without Redis and with no other traffic, the process's runner (its maintenance pass) sends the
    retry when it is due; the request that wrote the event never waited for the receiver."""
    from delivery_service import jobs

    receiver.fail = 1
    try:
        new_order(client, auth)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(receiver.events()) < 2:
            time.sleep(0.1)
    finally:
        jobs.stop_runner(app)
    assert [r["headers"]["X-Webhook-Attempt"] for r in receiver.requests] == ["1", "2"]
    assert len(receiver.events()) == 2


@contextlib.contextmanager
def _what_a_stall_waits_for(app: Flask, after_s: float, seen: list[str]) -> Iterator[None]:
    """When the block takes longer than ``after_s``: what every thread of this process was doing and,
    on PostgreSQL, every session of the test database and the locks not granted (into ``seen``), so
    that a stall says what it waited for."""
    import sys
    import traceback

    done = threading.Event()
    caller = threading.get_ident()

    def watch() -> None:
        if done.wait(after_s):
            return
        out = [f"a stall of over {after_s} s; the threads:"]
        for ident, frame in sys._current_frames().items():
            out.append(f"-- thread {ident}{' (the stalled one)' if ident == caller else ''}")
            out.extend(line.rstrip() for line in traceback.format_stack(frame)[-10:])
        if app.config["DATABASE_URL"].startswith("postgresql"):
            engine = sa.create_engine(app.config["DATABASE_URL"], poolclass=sa.pool.NullPool)
            with engine.connect() as conn:
                out.append("-- sessions (pid, state, wait, transaction age, query):")
                out.extend(repr(tuple(row)) for row in conn.execute(sa.text(
                    "SELECT pid, state, wait_event_type || ':' || wait_event, now() - xact_start, left(query, 160) "
                    "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")))
                out.append("-- locks waited for (pid, type, relation, mode, blocked by):")
                out.extend(repr(tuple(row)) for row in conn.execute(sa.text(
                    "SELECT pid, locktype, relation::regclass::text, mode, pg_blocking_pids(pid) "
                    "FROM pg_locks WHERE NOT granted")))
            engine.dispose()
        seen.append("\n".join(out))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


@pytest.mark.config(JOBS_INLINE=False, JOBS_POLL_S=0.2, WEBHOOK_CONNECT_TIMEOUT_S=1, WEBHOOK_READ_TIMEOUT_S=3)
def test_without_redis_a_hanging_receiver_slows_no_order_post(app, client, auth, token, monkeypatch):
    """The embedded default: a receiver that accepts the connection and never answers. The first
    order's delivery hangs in the background runner; orders posted meanwhile answer at once."""
    from delivery_service import jobs

    senders: list[str] = []  # the thread of every webhook POST
    original = services.HttpTransport.post

    def recorded(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        senders.append(threading.current_thread().name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(services.HttpTransport, "post", recorded)
    hanging = Receiver(hang=True)
    services.set_endpoint(actor_for_token(token).client_id, hanging.url)
    db.session.commit()
    times: list[float] = []
    stalls: list[str] = []
    try:
        new_order(client, auth)  # its delivery hangs (this app's first request also sets things up)
        deadline = time.monotonic() + 10
        while not hanging.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert hanging.requests, "the background runner never tried the receiver"
        for _ in range(5):  # while that delivery hangs
            started = time.monotonic()
            with _what_a_stall_waits_for(app, after_s=1.0, seen=stalls):
                new_order(client, auth)
            times.append(time.monotonic() - started)
    finally:
        hanging.close()
        jobs.stop_runner(app)
    me = threading.current_thread().name  # the test client's requests run in this thread
    print(f"\nhanging receiver, no Redis: 5 order POSTs while a delivery hangs: "
          f"{', '.join(f'{t:.3f}' for t in times)} s; "
          f"receiver requests {len(hanging.requests)} (none answered); webhook POSTs from {senders}")
    # No request sends a webhook (the proof: none from this thread; the runner's thread did), so none
    # waits for the receiver's read timeout (3 s), which the bound below would catch whatever the load.
    assert senders and me not in senders
    assert max(times) < app.config["WEBHOOK_READ_TIMEOUT_S"], f"{times}\n" + "\n".join(stalls)
