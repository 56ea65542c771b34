"""Order intake through /api/v1/orders: creation, validation, idempotency, scope, status changes."""

from __future__ import annotations

import datetime as dt
import threading
import unicodedata
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import order_payload

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor, create_api_client
from delivery_service.errors import Conflict
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status
from labels import s10


def count_orders() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder))


def other_counter_auth() -> dict[str, str]:
    _client, token = create_api_client(counter_code="HTI-DUCTHO", name="other system")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def test_create_returns_201_with_valid_s10_item_id(client, auth):
    resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert s10.is_valid(body["item_id"]) and body["item_id"].startswith("RH")
    assert body["status"] == "assigned"  # placed on the route covering the commune at once
    assert body["address"]["commune"] == {"code": "21025", "name": "Phường Cẩm Thành"}
    assert body["address"]["district"] is None
    assert resp.headers["Location"] == f"/api/v1/orders/{body['item_id']}"
    got = client.get(f"/api/v1/orders/{body['item_id']}", headers=auth)
    assert got.status_code == 200 and got.json["dossier_code"] == body["dossier_code"]
    events = client.get(f"/api/v1/orders/{body['item_id']}/events", headers=auth).json
    assert [e["status_to"] for e in events] == ["created", "assigned"] and events[0]["actor"].startswith("api:")
    assert events[1]["actor"] == "system" and events[1]["reason"] == "commune"


def test_due_date_follows_the_service_level(client, auth, app):
    monday = dt.date.today() + dt.timedelta(days=7 - dt.date.today().weekday())  # next Monday
    friday = monday + dt.timedelta(days=4)
    body = client.post("/api/v1/orders", json=order_payload(appointment_date=friday.isoformat()),
                       headers=auth).json
    # two working days after a Friday is the Tuesday after
    assert body["due_date"] == (friday + dt.timedelta(days=4)).isoformat()


def test_exemption_halves_the_postage_due(client, auth):
    body = client.post("/api/v1/orders", json=order_payload(postage_vnd=26000, exemption="war_invalid"),
                       headers=auth).json
    assert body["postage_vnd"] == 26000 and body["postage_due_vnd"] == 13000


def test_retry_with_same_dossier_returns_the_existing_order(client, auth):
    payload = order_payload()
    first = client.post("/api/v1/orders", json=payload, headers=auth)
    again = client.post("/api/v1/orders", json=payload, headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["item_id"] == first.json["item_id"]
    assert count_orders() == 1


def test_idempotency_key_returns_existing_and_refuses_reuse_for_another_order(client, auth):
    key = {"Idempotency-Key": "req-7f3a", **auth}
    first = client.post("/api/v1/orders", json=order_payload(), headers=key)
    retry = client.post("/api/v1/orders", json=order_payload(), headers=key)  # new dossier, same key
    assert first.status_code == 201
    assert retry.status_code == 422 and retry.json["item_id"] == first.json["item_id"]
    assert retry.json["error"] == "idempotency_key_reused"
    assert count_orders() == 1


def test_same_dossier_other_direction_is_another_order(client, auth):
    payload = order_payload()
    client.post("/api/v1/orders", json=payload, headers=auth)
    other = client.post("/api/v1/orders", json={**payload, "direction": "dossier_to_agency"}, headers=auth)
    assert other.status_code == 201
    assert count_orders() == 2


def test_racing_retries_create_one_order(app, auth):
    """Eight clients send the same order at once; exactly one is created, all get its item id."""
    payload = order_payload()
    barrier = threading.Barrier(8)
    results: list[tuple[int, str]] = []

    def send() -> None:
        with app.app_context():
            client = app.test_client()
            barrier.wait()
            resp = client.post("/api/v1/orders", json=payload, headers=auth)
            results.append((resp.status_code, resp.json.get("item_id")))
            db.session.remove()

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(code for code, _ in results)
    assert codes == [200] * 7 + [201], results
    assert len({item for _, item in results}) == 1
    assert count_orders() == 1


@pytest.mark.parametrize("change,field", [
    ({"recipient": {"name": "An", "phone": "0123"}}, ("recipient", "phone")),
    ({"recipient": {"name": "An", "phone": "+1 202 555 0100"}}, ("recipient", "phone")),
    ({"recipient": {"phone": "0905123456"}}, ("recipient", "name")),
    ({"dossier_code": "x" * 65}, ("dossier_code",)),
    ({"dossier_code": "   "}, ("dossier_code",)),
    ({"direction": "teleport"}, ("direction",)),
    ({"appointment_date": "2020-01-01"}, ("appointment_date",)),
    ({"appointment_date": "31/12/2030"}, ("appointment_date",)),
    ({"postage_vnd": -1}, ("postage_vnd",)),
    ({"postage_vnd": "26000"}, ("postage_vnd",)),
    ({"procedure_name": None}, ("procedure_name",)),
    ({"unexpected": 1}, ("unexpected",)),
    ({"address": {"province_code": "51", "commune_code": "18229", "detail": "x"}}, ("address", "commune_code")),
    ({"address": {"province_code": "99", "commune_code": "21025", "detail": "x"}}, ("address", "province_code")),
    ({"address": {"province_code": "51", "district_code": "522", "commune_code": "21025", "detail": "x"}},
     ("address", "district_code")),
    ({"recipient": {"name": "An\x00", "phone": "0905123456"}}, ("recipient", "name")),
])
def test_bad_input_gets_422_per_field_and_stores_nothing(client, auth, change, field):
    resp = client.post("/api/v1/orders", json=order_payload(**change), headers=auth)
    assert resp.status_code == 422, resp.json
    errors = resp.json["errors"]["json"]
    for key in field:
        assert key in errors, errors
        errors = errors[key]
    assert count_orders() == 0


def test_phone_numbers_are_normalised(client, auth):
    body = client.post("/api/v1/orders", json=order_payload(recipient={"name": "An", "phone": "+84 905 123 456"}),
                       headers=auth).json
    assert body["recipient"]["phone"] == "0905123456"


@pytest.mark.parametrize("data,ctype", [
    (b'{"direction": "result_to_citizen",', "application/json"),
    ('{"dossier_code": "Hồ sơ"}'.encode("utf-16"), "application/json"),
    (b"\xff\xfe\x00garbage", "application/json"),
    # valid JSON syntax, but an integer longer than Python's int conversion allows (4,300 digits)
    (b'{"weight_g": ' + b"9" * 5000 + b"}", "application/json"),
])
def test_malformed_or_misencoded_json_is_422(client, auth, data, ctype):
    resp = client.post("/api/v1/orders", data=data, content_type=ctype, headers=auth)
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert "errors" in resp.json
    assert count_orders() == 0


def test_oversized_body_is_413(client, auth):
    body = order_payload(note="x" * 100_000)
    resp = client.post("/api/v1/orders", json=body, headers=auth)
    assert resp.status_code == 413 and resp.is_json
    assert count_orders() == 0


def test_text_is_stored_nfc_and_nfd_search_finds_it(client, auth):
    nfd_name = unicodedata.normalize("NFD", "Nguyễn Thị Ánh Tuyết")
    assert nfd_name != unicodedata.normalize("NFC", nfd_name)
    body = client.post("/api/v1/orders", json=order_payload(recipient={"name": nfd_name, "phone": "0905123456"}),
                       headers=auth).json
    stored = db.session.scalar(sa.select(DeliveryOrder.recipient_name).where(DeliveryOrder.item_id == body["item_id"]))
    assert stored == unicodedata.normalize("NFC", nfd_name)
    for query in (nfd_name, "ánh tuyết", unicodedata.normalize("NFD", "ÁNH TUYẾT")):
        found = client.get("/api/v1/orders", query_string={"q": query}, headers=auth).json
        assert [o["item_id"] for o in found] == [body["item_id"]], query


def test_search_by_phone_dossier_and_item_id(client, auth):
    body = client.post("/api/v1/orders", json=order_payload(), headers=auth).json
    for query in ("0905 123 456", "+84905123456", body["dossier_code"], body["item_id"].lower()):
        found = client.get("/api/v1/orders", query_string={"q": query}, headers=auth).json
        assert body["item_id"] in [o["item_id"] for o in found], query


def test_counters_see_only_their_own_orders(client, auth):
    mine = client.post("/api/v1/orders", json=order_payload(), headers=auth).json
    other = other_counter_auth()
    theirs = client.post("/api/v1/orders", json=order_payload(
        address={"province_code": "42", "commune_code": "18229", "detail": "Thôn 1"}), headers=other).json
    assert client.get(f"/api/v1/orders/{theirs['item_id']}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/orders/{mine['item_id']}", headers=other).status_code == 404
    listed = client.get("/api/v1/orders", headers=auth).json
    assert [o["item_id"] for o in listed] == [mine["item_id"]]
    assert client.get("/api/v1/orders", query_string={"q": theirs["dossier_code"]}, headers=auth).json == []
    assert client.post(f"/api/v1/orders/{theirs['item_id']}/events", json={"status": "cancelled"},
                       headers=auth).status_code == 404


def test_bad_and_revoked_tokens_are_401(client, auth, app):
    assert client.post("/api/v1/orders", json=order_payload()).status_code == 401
    assert client.post("/api/v1/orders", json=order_payload(),
                       headers={"Authorization": "Bearer dsk_0000_nope"}).status_code == 401
    from delivery_service.accounts.services import revoke_api_client

    client_row, token = create_api_client(counter_code="QNG-TTHCC", name="to revoke")
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/orders", json=order_payload(), headers=headers).status_code == 201
    revoke_api_client(client_row.id)
    db.session.commit()
    assert client.post("/api/v1/orders", json=order_payload(), headers=headers).status_code == 401
    assert count_orders() == 1


def test_status_change_and_impossible_transition(client, auth):
    item = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    refused = client.post(f"/api/v1/orders/{item}/events", json={"status": "delivered"}, headers=auth)
    assert refused.status_code in (403, 409)  # a counter cannot deliver; nor can anyone from created
    when = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).replace(microsecond=0) - dt.timedelta(minutes=5)
    cancel = {"status": "cancelled", "event_id": "4b1c2f9e-0001", "device_time": when.isoformat(),
              "latitude": 15.12, "longitude": 108.8, "note": "Công dân hủy yêu cầu"}
    done = client.post(f"/api/v1/orders/{item}/events", json=cancel, headers=auth)
    assert done.status_code == 201, done.json
    assert done.json["status_from"] == "assigned"
    assert dt.datetime.fromisoformat(done.json["device_time"]) == when  # kept as the same moment (in UTC)
    replay = client.post(f"/api/v1/orders/{item}/events", json=cancel, headers=auth)
    assert replay.status_code == 200
    again = client.post(f"/api/v1/orders/{item}/events", json={"status": "cancelled"}, headers=auth)
    assert again.status_code == 409 and "closed" in again.json["message"]
    assert again.json["current_status"] == "cancelled"
    db.session.rollback()
    statuses = db.session.scalars(sa.select(OrderEvent.status_to).join(DeliveryOrder)
                                  .where(DeliveryOrder.item_id == item).order_by(OrderEvent.id)).all()
    assert [s.value for s in statuses] == ["created", "assigned", "cancelled"]


def test_admin_can_walk_the_whole_result_leg(client, auth):
    item = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    for st in ["assigned", "handed_to_courier", "out_for_delivery", "failed_attempt", "out_for_delivery",
               "delivered"]:
        change_status(_admin(), item, Status(st))
    assert client.get(f"/api/v1/orders/{item}", headers=auth).json["status"] == "delivered"


def test_event_log_is_append_only_in_the_database(client, auth):
    client.post("/api/v1/orders", json=order_payload(), headers=auth)
    db.session.rollback()
    for stmt in ("UPDATE order_events SET note = 'x'", "DELETE FROM order_events"):
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            db.session.execute(sa.text(stmt))
        db.session.rollback()


def test_openapi_documents_every_endpoint_and_field(client):
    spec = client.get("/api/v1/openapi.json").json
    paths = spec["paths"]
    for path in ("/api/v1/orders", "/api/v1/orders/{item_id}", "/api/v1/orders/{item_id}/events",
                 "/api/v1/units", "/api/v1/imports"):
        assert path in paths, sorted(paths)
    order_in = spec["components"]["schemas"]["OrderIn"]["properties"]
    for field in ("direction", "dossier_code", "procedure_name", "issuing_agency", "recipient", "address",
                  "postage_vnd", "payer", "exemption", "collect_vnd", "appointment_date"):
        assert field in order_in
    assert "item_id" in spec["components"]["schemas"]["OrderOut"]["properties"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"swagger" in page.data.lower()
    with client.get("/api/v1/docs/assets/swagger-ui-bundle.js") as asset:
        assert asset.status_code == 200


def test_a_past_date_is_reported_together_with_other_field_errors(client, auth):
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        appointment_date="2020-01-01", recipient={"name": "An", "phone": "12345"}))
    errors = resp.json["errors"]["json"]
    assert resp.status_code == 422 and set(errors) == {"appointment_date", "recipient"}
    assert errors["appointment_date"] == ["The appointment date is in the past."]
    bad_format = client.post("/api/v1/orders", headers=auth, json=order_payload(appointment_date="31/12/2030"))
    assert bad_format.json["errors"]["json"]["appointment_date"] == ["Not a valid date."]


def _admin() -> Actor:
    uid = db.session.scalar(sa.text("SELECT id FROM users WHERE username = 'admin'"))
    return Actor(label="admin", role=Role.ADMIN, user_id=uid)


def test_an_order_in_both_directions_runs_both_legs_to_delivered(client, auth):

    item = client.post("/api/v1/orders", json=order_payload(direction="both"), headers=auth).json["item_id"]
    for st in ["pickup_scheduled", "picked_up", "delivered_to_agency", "assigned", "handed_to_courier",
               "out_for_delivery", "delivered"]:
        change_status(_admin(), item, Status(st))
    body = client.get(f"/api/v1/orders/{item}", headers=auth).json
    assert body["status"] == "delivered"
    # once on the result leg, the dossier statuses are gone
    item2 = client.post("/api/v1/orders", json=order_payload(direction="both"), headers=auth).json["item_id"]
    for st in ["pickup_scheduled", "picked_up", "delivered_to_agency", "assigned"]:
        change_status(_admin(), item2, Status(st))

    with pytest.raises(Conflict):
        change_status(_admin(), item2, Status.PICKUP_SCHEDULED)


def test_event_ids_are_scoped_and_never_reused_for_another_change(client, auth):
    mine = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    other = other_counter_auth()
    theirs = client.post("/api/v1/orders", json=order_payload(
        address={"province_code": "42", "commune_code": "18229", "detail": "Thôn 1"}), headers=other).json["item_id"]
    secret = {"status": "cancelled", "event_id": "evt-secret-0001", "note": "Lý do riêng"}
    assert client.post(f"/api/v1/orders/{theirs}/events", json=secret, headers=other).status_code == 201
    # another counter replaying that event id learns nothing, on its own order or a made-up one
    assert client.post("/api/v1/orders/RH000000000VN/events", json=secret, headers=auth).status_code == 404
    reused = client.post(f"/api/v1/orders/{mine}/events", json=secret, headers=auth)
    assert reused.status_code == 409 and "Lý do" not in reused.get_data(as_text=True)
    assert client.get(f"/api/v1/orders/{mine}", headers=auth).json["status"] == "assigned"


def test_concurrent_status_changes_let_exactly_one_win(app, client, auth):

    item = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    for st in ["assigned", "handed_to_courier", "out_for_delivery"]:
        change_status(_admin(), item, Status(st))
    db.session.remove()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    import delivery_service.orders.status as machine_module

    real_check = machine_module.check

    def check_then_wait(*args, **kwargs):  # both requests pass the check before either writes
        real_check(*args, **kwargs)
        barrier.wait(timeout=10)

    def change(target: Status) -> None:
        with app.app_context():
            try:
                change_status(_admin(), item, target)
                outcomes.append("ok")
            except Conflict:
                outcomes.append("conflict")
            finally:
                db.session.remove()

    machine_module.check = check_then_wait
    try:
        threads = [threading.Thread(target=change, args=(t,)) for t in (Status.DELIVERED, Status.FAILED_ATTEMPT)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        machine_module.check = real_check
    assert sorted(outcomes) == ["conflict", "ok"]
    froms = db.session.scalars(sa.select(OrderEvent.status_from).join(DeliveryOrder).where(
        DeliveryOrder.item_id == item, OrderEvent.status_from == "out_for_delivery")).all()
    assert len(froms) == 1


def test_answers_are_utf8_json_with_readable_vietnamese(client, auth):
    resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert "Phường Cẩm Thành".encode() in resp.data and b"\\u" not in resp.data
    assert resp.mimetype == "application/json"


def test_weight_is_optional_whole_grams_up_to_30_kg(client, auth):
    """Issue 13: the label shows the weight when the counter weighed the item (migration 0014)."""
    made = client.post("/api/v1/orders", json=order_payload(weight_g=250), headers=auth)
    assert made.status_code == 201 and made.json["weight_g"] == 250
    none = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert none.status_code == 201 and none.json["weight_g"] is None
    for bad in (0, 30_001, 1.5, "250"):
        resp = client.post("/api/v1/orders", json=order_payload(weight_g=bad), headers=auth)
        assert resp.status_code == 422 and "weight_g" in str(resp.json), bad
