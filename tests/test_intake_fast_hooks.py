"""The cheaper request path of intake: one hook on each side of a request for its id, access line and
latency metric; the limiter's and the session's after-request work skipped where it has nothing to do;
on PostgreSQL the order and its first events in one statement. What a client and an operator see must
be as before: headers, log line fields, metric names, the rows written."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from conftest import csrf_token, order_payload

from delivery_service.extensions import db
from delivery_service.orders import services
from delivery_service.orders.models import DeliveryOrder, OrderEvent


def _scrape(client) -> str:
    return client.get("/metrics").get_data(as_text=True)


def _count(text: str, **labels: str) -> float:
    """delivery_http_request_duration_seconds_count of these labels in a scrape (0 before the first)."""
    for line in text.splitlines():
        if line.startswith("delivery_http_request_duration_seconds_count{") and all(
                f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


API_HEADERS = [("Content-Type", "application/json"), ("X-Content-Type-Options", "nosniff"),
               ("X-Frame-Options", "DENY"), ("Referrer-Policy", "same-origin"), ("Cache-Control", "no-store"),
               ("X-Request-ID", "abc-1"), ("Vary", "Cookie")]


def test_an_api_call_answers_the_same_headers_and_no_cookie(client, auth):
    """The headers the service sent before the hooks were merged (captured then), in the same order."""
    for body, status in ((order_payload(dossier_code="HK-1"), 201), (order_payload(dossier_code="HK-1"), 200),
                         (order_payload(recipient={"name": "x", "phone": "1"}), 422)):
        r = client.post("/api/v1/orders", json=body, headers={**auth, "X-Request-ID": "abc-1"})
        assert r.status_code == status
        got = [(k, v) for k, v in r.headers.items() if k not in ("Date", "Location", "Content-Length")]
        assert got == API_HEADERS, got
        assert "Set-Cookie" not in r.headers
    r = client.post("/api/v1/orders", json=order_payload(), headers={"X-Request-ID": "abc-2"})
    assert r.status_code == 401 and r.headers["X-Request-ID"] == "abc-2" and r.headers["Vary"] == "Cookie"
    assert "X-RateLimit-Limit" not in r.headers


def test_pages_keep_their_headers_and_rate_limit_headers(client):
    r = client.get("/login", headers={"X-Request-ID": "abc-3"})
    assert r.headers["X-Request-ID"] == "abc-3" and r.headers["Vary"] == "Cookie"
    assert r.headers["X-Frame-Options"] == "DENY" and "Content-Security-Policy" in r.headers
    token = csrf_token(client, "/t")  # a limited page: the limiter's headers are still added
    r = client.post("/t", data={"code": "RH000000014VN", "phone_last4": "1234", "csrf_token": token})
    assert r.status_code in (200, 429) and "X-RateLimit-Limit" in r.headers, (r.status_code, dict(r.headers))


def test_the_access_line_and_the_latency_metric_of_a_request(client, auth, json_log):
    before = _scrape(client)
    r = client.post("/api/v1/orders", json=order_payload(), headers={**auth, "X-Request-ID": "req-1"})
    assert r.status_code == 201
    lines = [x for x in json_log() if x["logger"] == "delivery_service.requests" and x["method"] == "POST"]
    line = lines[0]
    assert list(line) == ["asctime", "level", "logger", "message", "request_id", "endpoint", "method",
                          "status", "duration_ms"]
    assert (line["level"], line["message"], line["request_id"], line["endpoint"], line["method"],
            line["status"]) == ("INFO", "request POST orders.create_order 201", "req-1",
                                "orders.create_order", "POST", 201)
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 60_000
    after = _scrape(client)
    labels = {"endpoint": "orders.create_order", "method": "POST", "status": "2xx"}
    assert _count(after, **labels) - _count(before, **labels) == 1
    client.get("/no-such-page")
    unmatched = [x for x in json_log() if x["logger"] == "delivery_service.requests"][-1]
    assert unmatched["message"] == "request GET unmatched 404" and unmatched["endpoint"] is None
    assert _count(_scrape(client), endpoint="unmatched", method="GET", status="4xx") >= 1


def test_a_request_refused_before_the_bracket_opens_is_neither_logged_nor_timed(app, client, auth, json_log):
    """The body limit runs first (as before): its 413 carries no request id and logs no line."""
    big = b"{" + b" " * (app.config["MAX_JSON_BYTES"] + 10) + b"}"
    r = client.post("/api/v1/orders", data=big, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 413 and "X-Request-ID" not in r.headers
    assert not [x for x in json_log() if x["logger"] == "delivery_service.requests"]


def test_a_new_request_id_when_the_clients_is_unusable(client):
    made = client.get("/health", headers={"X-Request-ID": "bad id"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)


# --- PostgreSQL: the order and its events in one statement -----------------------------------------

_SKIP_ORDER = {"id", "item_id", "dossier_code", "created_at", "updated_at", "request_digest"}
_SKIP_EVENT = {"id", "order_id", "server_time"}


def _rows(item_id: str) -> tuple[dict, list[dict]]:
    orders, events = DeliveryOrder.__table__, OrderEvent.__table__
    order = dict(db.session.execute(sa.select(orders).where(orders.c.item_id == item_id)).mappings().one())
    rows = [dict(r) for r in db.session.execute(
        sa.select(events).where(events.c.order_id == order["id"]).order_by(events.c.id)).mappings()]
    for row in rows:
        assert row["server_time"] == order["created_at"]
    return ({k: v for k, v in order.items() if k not in _SKIP_ORDER},
            [{k: v for k, v in r.items() if k not in _SKIP_EVENT} for r in rows])


@pytest.mark.parametrize("route", [True, False])
def test_one_statement_writes_the_rows_the_two_statements_write(app, client, auth, monkeypatch, route):
    """Bodies of two shapes (placed on a route: two events; not placed: one), each written once by the
    one-statement path and once by the two inserts: the same order and events, but for ids and times.
    On SQLite both are the two inserts."""
    address = {"province_code": "51", "commune_code": "21025", "detail": "12 Hùng Vương"}
    if not route:  # a commune of Quảng Ngãi no route covers: the order waits for dispatch
        from delivery_service.units.models import AdminUnit, UnitLevel

        with app.app_context():
            codes = db.session.scalars(sa.select(AdminUnit.code).where(
                AdminUnit.level == UnitLevel.COMMUNE, AdminUnit.code.like("21%")).order_by(AdminUnit.code)
                .limit(40)).all()
        for code in reversed(codes):
            address = {"province_code": "51", "commune_code": code, "detail": "Thôn 1"}
            probe = client.post("/api/v1/orders", json=order_payload(address=address), headers=auth)
            if probe.status_code == 201 and probe.json["route_code"] is None:
                break
        else:
            pytest.fail("no commune without a route")
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        if statement.lstrip().upper().startswith(("INSERT", "WITH")):
            statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        got = []
        for one in (True, False):
            monkeypatch.setattr(services, "ONE_STATEMENT", one)
            statements.clear()
            body = order_payload(address=address, weight_g=300, delivery_window="morning",
                                 authorised_person={"name": "Trần Văn Bình", "phone": "0912345678"})
            r = client.post("/api/v1/orders", json=body, headers=auth)
            assert r.status_code == 201, r.json
            writes = [s for s in statements if "order_events" in s or "delivery_orders" in s]
            one_statement = one and app.config["DATABASE_URL"].startswith("postgresql")
            assert len(writes) == (1 if one_statement else 2), writes
            with app.app_context():
                got.append(_rows(r.json["item_id"]))
            again = client.post("/api/v1/orders", json=body, headers=auth)  # a retry: the stored order
            assert again.status_code == 200 and again.json["item_id"] == r.json["item_id"]
            other = client.post("/api/v1/orders", json={**body, "note": "khác"}, headers=auth)
            assert other.status_code == 409 and other.json["error"] == "dossier_exists"
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert got[0] == got[1]
    assert len(got[0][1]) == (2 if route else 1)


def test_the_sessions_save_answers_as_flasks_own(app):
    """The shortcut for an empty session left empty gives the headers Flask's own save gives, for
    every combination (read or not, a Vary header already there or not); other sessions are Flask's."""
    from flask import Response
    from flask.sessions import SecureCookieSessionInterface

    ours, flasks = app.session_interface, SecureCookieSessionInterface()
    with app.test_request_context("/api/v1/orders"):
        for contents in ({}, {"lang": "en"}):
            for accessed in (False, True):
                for modified in (False, True):
                    for vary in (None, "Accept-Encoding", "Cookie"):
                        got = []
                        for interface in (ours, flasks):
                            session = interface.session_class(contents)
                            session.accessed, session.modified = accessed, modified
                            response = Response("{}")
                            if vary:
                                response.headers["Vary"] = vary
                            interface.save_session(app, session, response)
                            got.append([(k, v.split("=")[0] if k == "Set-Cookie" else v)  # the name: values are signed
                                        for k, v in response.headers.items()])
                        assert got[0] == got[1], (contents, accessed, modified, vary)
