"""The API's edges, tried as careless and hostile clients would (issue 11): bodies over the limit however
they are sized, idempotency keys bound to their request, one error shape with codes, 415, the Bearer
scheme in any case, and the OpenAPI document saying which fields each direction requires."""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from conftest import order_payload
from werkzeug.serving import make_server

from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder


def count_orders() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder))


# --- bodies over the limit, sized by Content-Length or chunked (through a real HTTP server) -----------

@pytest.fixture
def server(app) -> Iterator[int]:
    """The app behind Werkzeug's HTTP server (which de-chunks bodies as gunicorn does); yields its port."""
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_port
    srv.shutdown()
    thread.join(timeout=10)


def raw_post(port: int, path: str, body: bytes, headers: dict[str, str], *, chunked: bool) -> tuple[int, bytes]:
    """POST ``body`` over a socket, chunked (4 KiB chunks, no Content-Length) or with Content-Length."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        head += "Transfer-Encoding: chunked\r\n\r\n"
        payload = b"".join(f"{len(body[i:i + 4096]):x}\r\n".encode() + body[i:i + 4096] + b"\r\n"
                           for i in range(0, len(body), 4096)) + b"0\r\n\r\n"
    else:
        head += f"Content-Length: {len(body)}\r\n\r\n"
        payload = body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(head.encode() + payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer 413 and close before reading it all
        answer = b""  # read the answer by its Content-Length (the server may keep the socket open)
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


def _length(answer: bytes) -> int:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    return next((int(line.split(":", 1)[1]) for line in head.split("\r\n") if line.startswith("content-length:")),
                0)


def padded_order(size: int) -> bytes:
    """A valid order padded with spaces to exactly ``size`` bytes, then garbage: cut at ``size``, it would
    be a valid order (as the body was stored before)."""
    text = json.dumps(order_payload()).encode()
    return text[:-1] + b" " * (size - len(text)) + b"}" + b"garbage" * 300


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_body_over_the_limit_is_413_however_it_is_sized_and_nothing_is_stored(app, server, token, chunked):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, body = raw_post(server, "/api/v1/orders", padded_order(app.config["MAX_JSON_BYTES"]), headers,
                            chunked=chunked)
    assert status == 413, body
    assert json.loads(body)["error"] == "payload_too_large"
    assert count_orders() == 0


def test_a_chunked_body_within_the_limit_is_read_whole(server, token):
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    payload = order_payload(note="ghi chú")
    text = json.dumps(payload).encode()
    status, body = raw_post(server, "/api/v1/orders", text[:-1] + b" " * 30_000 + b"}", headers,
                            chunked=True)  # ~30 KB in 4 KiB chunks
    assert status == 201, body
    assert json.loads(body)["note"] == "ghi chú"
    assert count_orders() == 1


def test_a_chunked_page_form_over_the_limit_is_413(app, server):
    size = app.config["MAX_IMPORT_BYTES"] + 64 * 1024 + 10
    status, _ = raw_post(server, "/login", b"username=" + b"a" * size,
                         {"Content-Type": "application/x-www-form-urlencoded"}, chunked=True)
    assert status == 413


# --- idempotency bound to the request -------------------------------------------------------------

@pytest.mark.parametrize("change", [
    {"recipient": {"name": "Trần Văn Bình", "phone": "0905123456"}},
    {"address": {"province_code": "51", "commune_code": "21025", "detail": "99 Lê Lợi"}},
    {"postage_vnd": 30000},
], ids=["recipient", "address", "postage"])
def test_an_idempotency_key_reused_with_another_body_is_refused_naming_the_order(client, auth, change):
    headers = {"Idempotency-Key": "igate-2611-0042", **auth}
    payload = order_payload()
    first = client.post("/api/v1/orders", json=payload, headers=headers)
    assert first.status_code == 201
    again = client.post("/api/v1/orders", json=payload, headers=headers)
    assert again.status_code == 200 and again.json["item_id"] == first.json["item_id"]
    other = client.post("/api/v1/orders", json={**payload, **change}, headers=headers)
    assert other.status_code == 422, other.json
    assert other.json["error"] == "idempotency_key_reused" and other.json["item_id"] == first.json["item_id"]
    assert other.json["details"] == [{"location": "headers", "field": "Idempotency-Key",
                                      "code": "idempotency_key_reused", "message": other.json["message"]}]
    assert count_orders() == 1
    stored = client.get(f"/api/v1/orders/{first.json['item_id']}", headers=auth).json
    assert stored == first.json  # nothing of the second body was applied


def test_the_same_dossier_sent_again_with_another_body_is_409_naming_the_order(client, auth):
    payload = order_payload()
    first = client.post("/api/v1/orders", json=payload, headers=auth)
    same = client.post("/api/v1/orders", json=payload, headers=auth)
    assert same.status_code == 200 and same.json["item_id"] == first.json["item_id"]
    other = client.post("/api/v1/orders", json={**payload, "postage_vnd": 0}, headers=auth)
    assert other.status_code == 409 and other.json["error"] == "dossier_exists"
    assert other.json["item_id"] == first.json["item_id"]
    assert count_orders() == 1


def test_a_retry_equal_after_normalisation_is_the_same_request(client, auth):
    payload = order_payload()
    first = client.post("/api/v1/orders", json=payload, headers={"Idempotency-Key": "k-1", **auth})
    spaced = {**payload, "recipient": {"name": "  Nguyễn  Thị Hoa ", "phone": "+84 905 123 456"}}
    again = client.post("/api/v1/orders", json=spaced, headers={"Idempotency-Key": "k-1", **auth})
    assert (first.status_code, again.status_code) == (201, 200)


def test_racing_copies_with_one_key_and_different_bodies_store_one_order(app, auth):
    """Four clients send one key at once, two bodies: one order; its body's copies get it, the others 422."""
    payload = order_payload()
    bodies = [payload, payload, {**payload, "postage_vnd": 1000}, {**payload, "postage_vnd": 1000}]
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, int, dict]] = []

    def send(i: int) -> None:
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            resp = client.post("/api/v1/orders", json=bodies[i], headers={"Idempotency-Key": "race-1", **auth})
            results.append((i, resp.status_code, resp.json))
            db.session.remove()

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count_orders() == 1
    winner = next(i for i, code, _ in results if code == 201)
    item_id = results[0][2]["item_id"]
    for i, code, body in results:
        same = bodies[i] == bodies[winner]
        assert code == (201 if i == winner else 200 if same else 422), results
        assert body["item_id"] == item_id


# --- one error shape ------------------------------------------------------------------------------

def test_field_errors_are_at_the_fields_path_with_codes(client, auth):
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={"province_code": "51", "commune_code": "99999", "detail": "x"},
        recipient={"name": "", "phone": "0123"}, procedure_name=None, unexpected=1))
    assert resp.status_code == 422
    body = resp.json
    assert set(body) >= {"code", "status", "error", "errors", "details"} and body["error"] == "invalid_input"
    codes = {(d["location"], d["field"]): d["code"] for d in body["details"]}
    # every mistake at once, the address's units included (at address.commune_code, not at the top level)
    assert codes == {("json", "recipient.name"): "required", ("json", "recipient.phone"): "invalid_phone",
                     ("json", "procedure_name"): "required", ("json", "unexpected"): "unknown_field",
                     ("json", "address.commune_code"): "unknown_unit"}
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={"province_code": "51", "commune_code": "99999", "detail": "x"}))
    assert resp.json["errors"] == {"json": {"address": {"commune_code": [
        resp.json["details"][0]["message"]]}}}
    assert resp.json["details"][0] | {"message": ""} == {"location": "json", "field": "address.commune_code",
                                                         "code": "unknown_unit", "message": ""}


def _days_from_today(days: int) -> str:
    from delivery_service.localtime import local_today

    return (local_today() + dt.timedelta(days=days)).isoformat()


@pytest.mark.parametrize(("changes", "field", "code"), [
    ({"appointment_date": None}, "appointment_date", "required"),
    ({"appointment_date": "past"}, "appointment_date", "date_in_past"),
    ({"appointment_date": "far"}, "appointment_date", "out_of_range"),
    ({"appointment_date": "2026-02-30"}, "appointment_date", "invalid_date"),
])
def test_each_date_rule_has_its_own_code(client, auth, changes, field, code):
    """Counter software acts on the code, never on the English text: each rule has one of its own."""
    value = {"past": _days_from_today(-1), "far": _days_from_today(400)}.get(changes[field], changes[field])
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(**{field: value}))
    assert resp.status_code == 422, resp.json
    assert [(d["field"], d["code"]) for d in resp.json["details"]] == [(field, code)]


def test_a_blank_event_id_has_the_required_code(client, auth):
    item = client.post("/api/v1/orders", headers=auth, json=order_payload()).json["item_id"]
    resp = client.post(f"/api/v1/orders/{item}/events", json={"status": "cancelled", "event_id": " "},
                       headers=auth)
    assert resp.status_code == 422
    assert [(d["field"], d["code"]) for d in resp.json["details"]] == [("event_id", "required")]


def test_every_error_has_the_same_shape(client, auth):
    answers = {
        401: client.get("/api/v1/orders"),
        404: client.get("/api/v1/orders/RH000000000VN", headers=auth),
        405: client.delete("/api/v1/orders", headers=auth),
        415: client.post("/api/v1/orders", data="x", content_type="text/plain", headers=auth),
        422: client.get("/api/v1/orders?created_on=yesterday", headers=auth),
    }
    for status, resp in answers.items():
        assert resp.status_code == status, (status, resp.json)
        assert resp.json["code"] == status and isinstance(resp.json["error"], str), resp.json
        assert isinstance(resp.json["status"], str)
    assert answers[422].json["details"][0]["code"] == "invalid_date"


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_a_body_in_another_content_type_is_415_and_stores_nothing(client, auth, ctype):
    data = json.dumps(order_payload())
    headers = {**auth, **({"Content-Type": ctype} if ctype else {})}
    resp = client.post("/api/v1/orders", data=data, headers=headers)
    assert resp.status_code == 415, resp.json
    assert resp.json["error"] == "unsupported_media_type" and "application/json" in resp.json["message"]
    assert count_orders() == 0


def test_json_with_charset_or_a_json_suffix_is_taken(client, auth):
    for ctype in ("application/json; charset=utf-8", "application/vnd.igate+json"):
        resp = client.post("/api/v1/orders", data=json.dumps(order_payload()), content_type=ctype,
                           headers=auth)
        assert resp.status_code == 201, resp.json


def test_no_body_is_422_with_the_missing_fields(client, auth):
    resp = client.post("/api/v1/orders", headers=auth)
    assert resp.status_code == 422
    assert {d["code"] for d in resp.json["details"]} == {"required"}


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(client, token, scheme):
    resp = client.get("/api/v1/orders", headers={"Authorization": f"{scheme} {token}"})
    assert resp.status_code == 200


def test_openapi_says_which_fields_each_direction_requires_and_documents_errors(client):
    spec = client.get("/api/v1/openapi.json").json
    order_in = spec["components"]["schemas"]["OrderIn"]
    variants = {v["title"]: v for v in order_in["oneOf"]}
    assert variants["result_to_citizen"]["required"] == ["appointment_date"]
    assert variants["result_to_citizen"]["properties"]["direction"]["enum"] == ["result_to_citizen"]
    # null is refused for a result order (422), so the document must not allow it there
    assert variants["result_to_citizen"]["properties"]["appointment_date"] == {"type": "string", "format": "date"}
    assert "required" not in variants["dossier_to_agency or both"]
    error = spec["components"]["schemas"]["ErrorOut"]
    assert {"code", "status", "error", "errors", "details"} <= set(error["properties"])
    post = spec["paths"]["/api/v1/orders"]["post"]
    assert {"200", "201", "409", "422"} <= set(post["responses"])


def test_each_conflict_has_its_own_error_name(client, auth):
    """Counter software tells refusals apart by ``error``, never by the English message."""
    first, second = (client.post("/api/v1/orders", headers=auth, json=order_payload()).json["item_id"]
                     for _ in range(2))
    event = {"status": "cancelled", "event_id": "evt-conflict-names-1"}
    assert client.post(f"/api/v1/orders/{first}/events", json=event, headers=auth).status_code in (200, 201)
    # the same event id for a change of another order
    reused = client.post(f"/api/v1/orders/{second}/events", headers=auth, json=event)
    # a change the status machine refuses (a cancelled order goes nowhere)
    refused = client.post(f"/api/v1/orders/{first}/events", headers=auth,
                          json={"status": "cancelled", "event_id": "evt-conflict-names-2"})
    # the address of a closed order
    locked = client.put(f"/api/v1/orders/{first}/address", headers=auth,
                        json={"address": {"province_code": "51", "commune_code": "21025", "detail": "1 Lê Lợi"}})
    assert [(r.status_code, r.json["error"]) for r in (reused, refused, locked)] == [
        (409, "event_id_reused"), (409, "transition_refused"), (409, "address_locked")]
