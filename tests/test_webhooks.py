"""Webhooks to counter systems (a real HTTP receiver on loopback) and polling with updated_since."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import order_payload
from rq import SimpleWorker

from delivery_service.accounts.services import actor_for_token
from delivery_service.cli import main
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.webhooks import services
from delivery_service.webhooks.models import WebhookDelivery, WebhookEndpoint


class Receiver:
    """A counter system's webhook receiver: records every request, fails the next ``fail`` ones."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                failing = receiver.fail > 0
                receiver.fail -= 1 if failing else 0
                receiver.requests.append({"headers": dict(self.headers), "body": body, "ok": not failing})
                self.send_response(503 if failing else 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/delivery"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict[str, Any]]:
        """The events of the successful requests, in arrival order."""
        return [e for r in self.requests if r["ok"] for e in json.loads(r["body"])["events"]]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def endpoint(app, token, receiver) -> tuple[int, str]:
    """The demo client's endpoint at the receiver: (client id, secret)."""
    client_id = actor_for_token(token).client_id
    _endpoint, secret = services.set_endpoint(client_id, receiver.url)
    db.session.commit()
    return client_id, secret


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
    events = receiver.events()
    assert [e["status_to"] for e in events] == ["created", "assigned", "cancelled"]
    assert all(e["item_id"] == item_id for e in events)
    assert [e["event_id"] for e in events] == sorted(e["event_id"] for e in events)
    assert events[1]["route_code"] and events[2]["status_from"] == "assigned"
    assert set(events[0]) == {"event_id", "item_id", "dossier_code", "status_from", "status_to", "reason",
                              "server_time", "device_time", "route_code"}
    for req in receiver.requests:
        ts = req["headers"]["X-Webhook-Timestamp"]
        assert abs(time.time() - int(ts)) < 60
        assert services.verify(secret, ts, req["body"], req["headers"]["X-Webhook-Signature"])
        assert not services.verify("wrong", ts, req["body"], req["headers"]["X-Webhook-Signature"])
        assert not services.verify(secret, str(int(ts) - 301), req["body"],
                                   req["headers"]["X-Webhook-Signature"])
        assert b"Nguy" not in req["body"] and b"0905123456" not in req["body"]  # no personal data
    assert the_endpoint().cursor_event_id == events[-1]["event_id"]


def test_an_endpoint_starts_after_the_past(client, auth, token, receiver):
    new_order(client, auth)  # before the endpoint exists: not sent
    services.set_endpoint(actor_for_token(token).client_id, receiver.url)
    db.session.commit()
    item_id = new_order(client, auth)
    assert {e["item_id"] for e in receiver.events()} == {item_id}


def test_backoff_schedule_tries_for_more_than_a_day():
    delays = [services.backoff(n).total_seconds() for n in range(1, services.MAX_FAILURES)]
    assert delays[:5] == [60, 300, 1800, 7200, 21600] and delays[5:] == [21600] * (len(delays) - 5)
    assert sum(delays) >= 24 * 3600


def test_failure_backs_off_and_blocks_later_events(client, auth, endpoint, receiver, caplog):
    _client_id, secret = endpoint
    caplog.set_level(logging.DEBUG)
    receiver.fail = 2
    before = utcnow()
    item_id = new_order(client, auth)
    ep = the_endpoint()
    assert ep.consecutive_failures == 1 and ep.paused_at is None
    assert before + dt.timedelta(seconds=59) <= ep.next_attempt_at <= utcnow() + dt.timedelta(seconds=61)
    cancel(client, auth, item_id)  # not due yet: waits behind the failed batch
    assert len(receiver.requests) == 1 and receiver.events() == []
    assert services.deliver(ep.id).outcome == "skipped"
    assert services.deliver(ep.id, force=True).outcome == "failed"  # the retry, early
    ep = the_endpoint()
    assert ep.consecutive_failures == 2
    assert ep.next_attempt_at >= utcnow() + dt.timedelta(seconds=290)
    assert services.deliver(ep.id, force=True).outcome == "delivered"
    assert [e["status_to"] for e in receiver.events()] == ["created", "assigned", "cancelled"]
    ep = the_endpoint()
    assert ep.consecutive_failures == 0 and ep.next_attempt_at is None
    log = db.session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    assert [(d.attempt, d.status_code) for d in log] == [(1, 503), (2, 503), (3, 204)]
    assert log[0].error == "HTTP 503" and log[2].event_count == 3
    assert secret not in caplog.text and "0905123456" not in caplog.text and "Hoa" not in caplog.text


def test_paused_after_repeated_failures_then_resume_delivers_everything_once(client, auth, endpoint,
                                                                            receiver):
    client_id, _secret = endpoint
    receiver.fail = 10**6
    item_id = new_order(client, auth)
    ep_id = the_endpoint().id
    for _ in range(services.MAX_FAILURES - 1):
        services.deliver(ep_id, force=True)
    ep = the_endpoint()
    assert ep.paused_at is not None and ep.consecutive_failures == services.MAX_FAILURES
    assert services.state(ep) == "paused"
    cancel(client, auth, item_id)
    assert services.deliver(ep_id, force=True).outcome == "skipped"
    assert len(receiver.requests) == services.MAX_FAILURES
    receiver.fail = 0
    services.resume(client_id)
    db.session.commit()  # the dispatch runs after the commit
    events = receiver.events()
    assert [e["status_to"] for e in events] == ["created", "assigned", "cancelled"]
    assert len({e["event_id"] for e in events}) == 3
    assert services.state(the_endpoint()) == "ok"
    services.deliver(ep_id, force=True)
    assert len(receiver.events()) == 3


def test_through_redis_and_an_rq_worker(rq_app, endpoint, receiver, token):
    auth = {"Authorization": f"Bearer {token}"}
    with rq_app.app_context():
        queue = rq_app.extensions["rq_queue"]
        resp = rq_app.test_client().post("/api/v1/orders", json=order_payload(), headers=auth)
        assert resp.status_code == 201
        assert receiver.requests == []  # queued, not sent in the request
        assert "delivery_service.webhooks.jobs:dispatch_due" in [job.args[0] for job in queue.jobs]
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        db.session.remove()
    assert [e["status_to"] for e in receiver.events()] == ["created", "assigned"]


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


def test_cli_sets_resumes_and_dispatches(app, client, auth, token, receiver):
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
    assert services.state(the_endpoint()) == "retrying"
    result = runner.invoke(main, ["webhooks", "dispatch"])
    assert result.exit_code == 0 and "0 events sent" in result.output  # backing off
    result = runner.invoke(main, ["webhooks", "dispatch", "--all"])
    assert "2 events sent" in result.output
    result = runner.invoke(main, ["api-clients", "webhook", str(client_id), "--resume"])
    assert result.exit_code == 0 and services.state(the_endpoint()) == "ok"
    assert len(receiver.events()) == 2


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
