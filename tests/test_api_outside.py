"""What an exploratory test from outside found in the API (5 Dec 2026): a refused JSON body must never
pass for an empty one (an empty label batch prints every label waiting), every malformed body is
422 ``malformed_body``, every error has a ``message``, a query's errors are located in the query, and a
write without credentials is 401 with the Bearer scheme before its body is read."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from conftest import order_payload

from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.printing.models import LabelPrint

HUGE = b"9" * 5000  # valid JSON syntax; Python refuses to convert more than 4,300 digits


def _count(model) -> int:  # noqa: ANN001
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _malformed(resp) -> None:  # noqa: ANN001
    assert resp.status_code == 422, resp.get_data(as_text=True)
    body = resp.json
    assert body["error"] == "invalid_input" and body["message"] == "The body is not valid JSON in UTF-8."
    assert [(d["location"], d["field"], d["code"]) for d in body["details"]] == [("json", "", "malformed_body")]


def test_a_refused_body_never_passes_for_an_empty_one(client, auth):
    """The label batch of an empty body prints every label waiting: one with a 5,000-digit number printed
    them all as a PDF (webargs took the refused body for none)."""
    for _ in range(3):
        assert client.post("/api/v1/orders", json=order_payload(), headers=auth).status_code == 201
    item_id = client.get("/api/v1/orders?page_size=1", headers=auth).json[0]["item_id"]
    body = b'{"item_ids": ["' + item_id.encode() + b'"], "format": "zpl", "copies": ' + HUGE + b"}"
    _malformed(client.post("/api/v1/labels/batches", data=body, content_type="application/json", headers=auth))
    assert _count(LabelPrint) == 0
    # ... and in an order, an event, a courier sync: the same answer, not "missing field" everywhere
    _malformed(client.post("/api/v1/orders", data=b'{"weight_g": ' + HUGE + b"}", content_type="application/json",
                           headers=auth))
    _malformed(client.post(f"/api/v1/orders/{item_id}/events", data=b'{"status": "cancelled", "x": ' + HUGE + b"}",
                           content_type="application/json", headers=auth))
    assert _count(DeliveryOrder) == 3


@pytest.mark.parametrize("data", [b'{"direction": "result_to_citizen",', b"{", b'{"a": 1,}',
                                  '{"dossier_code": "Hồ sơ"}'.encode("utf-16"), "{}".encode("utf-8-sig"),
                                  '{"dossier_code": "Hà"}'.encode("cp1258")])
def test_every_malformed_body_is_malformed_body(client, auth, data):
    _malformed(client.post("/api/v1/orders", data=data, content_type="application/json", headers=auth))
    assert _count(DeliveryOrder) == 0


def test_every_error_says_what_went_wrong(client, auth):
    resp = client.get("/api/v1/orders?page=0", headers=auth)
    assert resp.status_code == 422 and resp.json["message"] == "Invalid input"
    assert resp.json["details"][0]["location"] == "query" and resp.json["details"][0]["field"] == "page"
    resp = client.post("/api/v1/addresses/parse", json={"text": ""}, headers=auth)
    assert resp.status_code == 422 and resp.json["message"] == "Invalid input"


def test_a_query_error_is_located_in_the_query(client, auth):
    resp = client.get("/api/v1/reports/counter-totals?from=2025-01-01", headers=auth)
    assert resp.status_code == 422, resp.json
    assert [(d["location"], d["field"]) for d in resp.json["details"]] == [("query", "to")]


@pytest.mark.parametrize("method,path,body", [
    ("post", "/api/v1/orders", {"direction": "x"}),
    ("put", "/api/v1/reports/counter-totals/2000-01-01", {"results_total": 120}),
    ("post", "/api/v1/courier/sync", {"events": []}),
    ("post", "/api/v1/labels/batches", {}),
])
def test_a_write_without_credentials_is_401_before_its_body_is_read(client, method, path, body):
    for extra in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}):  # none, and another scheme
        resp = getattr(client, method)(path, json=body, headers=extra)
        assert resp.status_code == 401, resp.json
        assert resp.www_authenticate.type == "bearer"
        assert "errors" not in resp.json and "Authorization: Bearer <token>" in resp.json["message"]
    resp = getattr(client, method)(path, data=b"not json", content_type="text/plain")  # 401 before 415
    assert resp.status_code == 401
    resp = getattr(client, method)(path, json=body, headers={"Authorization": "Bearer not-a-token"})
    assert resp.status_code == 401 and resp.json["message"] == "Invalid or revoked token."
    assert resp.www_authenticate.type == "bearer"


def test_a_read_without_credentials_is_401_with_the_scheme(client):
    resp = client.get("/api/v1/orders")
    assert resp.status_code == 401 and resp.www_authenticate.type == "bearer"
    assert "Authorization: Bearer <token>" in resp.json["message"]


def _moment(**delta: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(**delta)).isoformat()


@pytest.mark.parametrize("when,why", [(dict(days=3_000), "ahead"), (dict(hours=2), "ahead"),
                                      (dict(days=-365), "Before the order was created")])
def test_a_counters_event_at_an_implausible_time_is_refused(client, auth, when, why):
    """An event dated 2099 was stored and counted on that day by the reports."""
    item_id = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    resp = client.post(f"/api/v1/orders/{item_id}/events", headers=auth,
                       json={"status": "cancelled", "device_time": _moment(**when)})
    assert resp.status_code == 422, resp.json
    [detail] = resp.json["details"]
    assert (detail["field"], detail["code"]) == ("device_time", "implausible_time") and why in detail["message"]
    assert client.get(f"/api/v1/orders/{item_id}", headers=auth).json["status"] == "assigned"
    ok = client.post(f"/api/v1/orders/{item_id}/events", headers=auth,
                     json={"status": "cancelled", "device_time": _moment(minutes=-5)})
    assert ok.status_code == 201, ok.json


def test_a_courier_event_before_its_order_existed_is_refused(client, auth):
    """A phone's clock set back to 2001: the pickup and the delivery were applied and the reports
    counted a delivery, on time, on 2001-06-01."""
    from conftest import login
    from test_courier_api import delivered, event, page_csrf

    item_id = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    login(client, "courier")
    headers = page_csrf(client)
    old = "2001-06-01T00:00:00+07:00"
    results = client.post("/api/v1/courier/sync", headers=headers, json={"events": [
        {**event(item_id, "pickup_confirmed"), "device_time": old},
        {**delivered(item_id), "device_time": old}]}).json["results"]
    assert [r["result"] for r in results] == ["rejected", "rejected"]
    assert results[0]["error"]["code"] == "invalid" and "device_time" in results[0]["error"]["fields"]
    [ok] = client.post("/api/v1/courier/sync", headers=headers,
                       json={"events": [event(item_id, "pickup_confirmed", -60)]}).json["results"]
    assert ok["result"] == "applied"


def test_a_correction_says_what_was_wrong(client, auth):
    from conftest import login
    from test_courier_api import delivered, event, page_csrf

    item_id = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    login(client, "courier")
    headers = page_csrf(client)

    def sync(*events):  # noqa: ANN002, ANN202
        return client.post("/api/v1/courier/sync", headers=headers, json={"events": list(events)}).json["results"]

    sync(event(item_id, "pickup_confirmed", -60))
    wrong = delivered(item_id, -30)
    sync(wrong)
    for note in (None, "", "   "):
        fields = {} if note is None else {"note": note}
        [refused] = sync(event(item_id, "correction", corrects=wrong["event_id"], **fields))
        assert refused["result"] == "rejected" and refused["error"]["fields"] == {"note": ["Required for a correction."]}
    [fixed] = sync(event(item_id, "correction", corrects=wrong["event_id"], note="Giao nhầm người"))
    assert fixed["result"] == "applied" and fixed["status"] == "out_for_delivery"
    db.session.rollback()
    notes = db.session.scalars(sa.select(OrderEvent.note).join(DeliveryOrder)
                               .where(DeliveryOrder.item_id == item_id).order_by(OrderEvent.id)).all()
    assert notes[-1] == "Giao nhầm người"  # the courier's words (the corrected event: event_corrections)


def test_a_mistyped_item_id_is_said_to_be_one(client, auth):
    item_id = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    wrong = item_id[:10] + str((int(item_id[10]) + 1) % 10) + item_id[11:]  # another check digit
    resp = client.get(f"/api/v1/orders/{wrong}", headers=auth)
    assert resp.status_code == 404 and "not a valid item id" in resp.json["message"]
    other = client.get("/api/v1/orders/RR000000014VN", headers=auth)  # valid, but no such order
    assert other.status_code == 404 and "not a valid" not in other.json["message"]


def test_a_too_deep_body_says_so_in_its_message(client, auth):
    resp = client.post("/api/v1/orders", data=b"[" * 20_000 + b"]" * 20_000, content_type="application/json",
                       headers=auth)
    assert resp.status_code == 422 and resp.json["message"] == "The body is nested too deeply."
    assert resp.json["details"][0]["code"] == "malformed_body"
