"""The courier app's API on the real databases: the run, offline sync (de-duplication, device-time
order, the status machine, proof of delivery, failed attempts and the return flow, corrections),
photo and signature uploads, and the back office's proof of delivery."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import login, order_payload

from delivery_service import config, localtime
from delivery_service.courier.models import DeliveryProof, EventCorrection, ProofFile
from delivery_service.courier.services import delivery_code, next_working_day
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent

HTI = {"province_code": "42", "commune_code": "18229", "detail": "Xóm 4"}
QNG = {"province_code": "51", "commune_code": "21025"}  # the demo route's commune
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 200 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 100
ID_NUMBER = "051090001234"


def new_order(client, auth, **changes) -> dict:
    resp = client.post("/api/v1/orders", json=order_payload(**changes), headers=auth)
    assert resp.status_code == 201, resp.json
    return resp.json


def page_csrf(client) -> dict[str, str]:
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the home page"
    return {"X-CSRFToken": match.group(1)}


@pytest.fixture
def courier(client) -> dict[str, str]:
    """The demo courier (drives QNG-01), logged in; returns the write headers."""
    login(client, "courier")
    return page_csrf(client)


def now(offset_s: float = 0) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)).isoformat()


def event(item_id: str, action: str, offset_s: float = 0, **fields) -> dict:
    return {"event_id": str(uuid.uuid4()), "item_id": item_id, "action": action,
            "device_time": now(offset_s), **fields}


def delivered(item_id: str, offset_s: float = 0, **fields) -> dict:
    fields.setdefault("receiver", {"kind": "recipient"})
    fields.setdefault("id_check", {"kind": "id_last4", "value": ID_NUMBER[-4:]})
    return event(item_id, "delivered", offset_s, **fields)


def sync(client, headers, *events, status=200) -> list[dict]:
    resp = client.post("/api/v1/courier/sync", json={"events": list(events)}, headers=headers)
    assert resp.status_code == status, resp.json
    return resp.json.get("results", resp.json)


def handed(client, auth, courier, **changes) -> dict:
    """An order on QNG-01 that the courier has picked up at the office."""
    body = new_order(client, auth, **changes)
    [result] = sync(client, courier, event(body["item_id"], "pickup_confirmed", -60))
    assert result["result"] == "applied" and result["status"] == "handed_to_courier", result
    return body


def events_of(item_id: str) -> list[OrderEvent]:
    return list(db.session.scalars(sa.select(OrderEvent).join(DeliveryOrder)
                                   .where(DeliveryOrder.item_id == item_id).order_by(OrderEvent.id)))


def status_of(item_id: str) -> str:
    return db.session.scalar(sa.select(DeliveryOrder.status).where(DeliveryOrder.item_id == item_id)).value


# --- reading -----------------------------------------------------------------------------------

def test_run_has_the_contracts_shape(client, auth, courier):
    a = new_order(client, auth, recipient={"name": "Trần Văn Bình", "phone": "0905123456"},
                  authorised_person={"name": "Trần Thị Cúc", "phone": "0905999888"}, collect_vnd=15000)
    b = new_order(client, auth, address={"province_code": "51", "commune_code": "21028", "detail": "45 Phan Đình Phùng"})
    day = a["run_date"]
    run = client.get(f"/api/v1/courier/run?date={day}")
    assert run.status_code == 200, run.json
    body = run.json
    assert body["route"]["code"] == "QNG-01" and body["date"] == day and body["sequenced"] is False
    assert (body["done"], body["total"], body["stops"]) == (0, 2, [])
    assert {r["code"] for r in body["failure_reasons"]} >= {"not_home", "wrong_address", "refused", "moved",
                                                          "unreachable_by_phone", "other"}
    assert all(r["label"] and r["label_en"] for r in body["failure_reasons"])
    assert body["settings"] == {"max_failed_attempts": 3, "correction_window_min": 30, "max_file_bytes": 2097152}
    order = next(o for o in body["unsequenced"] if o["item_id"] == a["item_id"])
    assert set(order) == {"item_id", "status", "direction", "leg", "dossier_code", "procedure_name", "issuing_agency",
                          "recipient", "authorised", "address", "latitude", "longitude", "position_estimated",
                          "collect_vnd", "postage_due_vnd", "payer", "to_collect_vnd", "collected_vnd",
                          "failed_attempts", "id_check", "actions", "last_event", "delivery_window"}
    assert order["status"] == "assigned" and order["actions"] == ["pickup_confirmed"]
    assert order["leg"] == "result" and body["timezone"] == "Asia/Ho_Chi_Minh"
    assert order["authorised"] == {"name": "Trần Thị Cúc", "phone": "0905999888"}
    assert order["address"]["detail"] == "12 Hùng Vương" and order["address"]["commune"]
    assert order["to_collect_vnd"] == 15000 + 26000 and order["payer"] == "citizen"
    assert order["collected_vnd"] is None  # not delivered
    assert order["latitude"] and order["position_estimated"] is True and order["id_check"] == "id_last4"
    assert order["delivery_window"] is None  # none chosen
    # Sequenced: the stops carry the orders.
    token = courier
    assert client.post(f"/api/v1/routes/QNG-01/run/sequence?date={day}", headers=token).status_code == 200
    body = client.get(f"/api/v1/courier/run?date={day}").json
    assert body["sequenced"] is True and body["unsequenced"] == []
    assert sorted(o["item_id"] for s in body["stops"] for o in s["orders"]) == sorted([a["item_id"], b["item_id"]])
    assert {"number", "leg_m", "estimated", "eta", "orders"} == set(body["stops"][0])
    # One order by its item id; another route's label says so.
    one = client.get(f"/api/v1/courier/orders/{a['item_id'].lower()}")
    assert one.status_code == 200 and one.json["item_id"] == a["item_id"]
    other = new_order(client, auth, address=HTI)
    miss = client.get(f"/api/v1/courier/orders/{other['item_id']}")
    assert miss.status_code == 404 and miss.json["message"] == f"{other['item_id']} is not on your route"


def test_the_run_carries_the_delivery_window(client, auth, courier):
    """The window the citizen chose at intake reaches the phone, as the orders API gives it."""
    timed = new_order(client, auth, delivery_window="afternoon")
    plain = new_order(client, auth)
    run = client.get(f"/api/v1/courier/run?date={timed['run_date']}").json
    orders = {o["item_id"]: o for o in run["unsequenced"]}
    assert orders[timed["item_id"]]["delivery_window"] == {"from": "13:30", "to": "17:00"} == timed["delivery_window"]
    assert orders[plain["item_id"]]["delivery_window"] is None
    one = client.get(f"/api/v1/courier/orders/{timed['item_id']}").json
    assert one["delivery_window"] == {"from": "13:30", "to": "17:00"}


def test_only_couriers_use_the_app(client, auth):
    assert client.get("/api/v1/courier/run").status_code == 401
    assert client.get("/api/v1/courier/run", headers=auth).status_code == 403  # a counter's software
    login(client, "counter")
    assert client.get("/api/v1/courier/run").status_code == 403
    spec = client.get("/api/v1/openapi.json").json
    assert {"/api/v1/courier/run", "/api/v1/courier/orders/{item_id}", "/api/v1/courier/sync",
            "/api/v1/courier/files/{file_id}", "/api/v1/orders/{item_id}/proof",
            "/api/v1/orders/{item_id}/proof/files/{file_id}"} <= set(spec["paths"])


def test_writes_need_the_csrf_token(client, auth, courier):
    body = new_order(client, auth)
    resp = client.post("/api/v1/courier/sync", json={"events": [event(body["item_id"], "pickup_confirmed")]})
    assert resp.status_code == 403 and status_of(body["item_id"]) == "assigned"


# --- sync: deliveries ----------------------------------------------------------------------------

def test_delivery_to_the_recipient_with_id_check_amount_and_position(client, auth, courier):
    body = handed(client, auth, courier, recipient={"name": "Nguyễn Thị Hoa", "phone": "0905123456",
                                                    "id_number": ID_NUMBER})
    ev = delivered(body["item_id"], amount_collected_vnd=26000, latitude=15.12, longitude=108.8, accuracy_m=12.5)
    [result] = sync(client, courier, ev)
    assert result == {"event_id": ev["event_id"], "result": "applied", "status": "delivered"}
    log = events_of(body["item_id"])
    # Out for delivery is implied before delivered; the courier's event keeps device time and position.
    assert [e.status_to.value for e in log[-3:]] == ["handed_to_courier", "out_for_delivery", "delivered"]
    last = log[-1]
    assert last.client_event_id == ev["event_id"] and last.accuracy_m == 12.5 and last.latitude == 15.12
    assert abs((last.device_time - dt.datetime.fromisoformat(ev["device_time"])).total_seconds()) < 1
    proof = db.session.scalar(sa.select(DeliveryProof).where(DeliveryProof.event_id == last.id))
    assert proof.receiver_kind.value == "recipient" and proof.receiver_name == "Nguyễn Thị Hoa"
    assert (proof.id_check_kind.value, proof.id_check_result.value, proof.id_last4) == ("id_last4", "ok", "1234")
    assert proof.amount_collected_vnd == 26000


def test_delivery_to_an_authorised_person_and_id_mismatch(client, auth, courier):
    body = handed(client, auth, courier,
                  authorised_person={"name": "Lê Văn Tâm", "phone": "0905111222", "id_number": "051090005678"})
    wrong = delivered(body["item_id"], receiver={"kind": "authorised", "name": "Lê Văn Tâm", "relation": "con trai"},
                      id_check={"kind": "id_last4", "value": "1234"})
    no_relation = delivered(body["item_id"], receiver={"kind": "authorised", "name": "Lê Văn Tâm"})
    first, second = sync(client, courier, wrong, no_relation)
    assert first["result"] == "rejected" and first["error"]["code"] == "invalid"
    assert "does not match" in first["error"]["message"] and "id_check" in first["error"]["fields"]
    assert first["status"] == "handed_to_courier"
    assert second["result"] == "rejected" and "relation" in second["error"]["fields"]["receiver"]
    right = delivered(body["item_id"], receiver={"kind": "authorised", "name": "Lê Văn Tâm", "relation": "con trai"},
                      id_check={"kind": "id_last4", "value": "5678"})
    assert sync(client, courier, right)[0]["result"] == "applied"
    proof = db.session.scalar(sa.select(DeliveryProof).join(OrderEvent, OrderEvent.id == DeliveryProof.event_id)
                              .where(OrderEvent.client_event_id == right["event_id"]))
    assert (proof.receiver_kind.value, proof.receiver_relation, proof.id_check_result.value) == (
        "authorised", "con trai", "ok")


def test_unknown_id_number_is_recorded_as_not_verifiable_and_otp_is_checked(client, auth, courier):
    a = handed(client, auth, courier)  # no ID number on the order
    [result] = sync(client, courier, delivered(a["item_id"], id_check={"kind": "id_last4", "value": "9999"}))
    assert result["result"] == "applied"
    assert db.session.scalar(sa.select(DeliveryProof.id_check_result)).value == "not_verifiable"
    b = handed(client, auth, courier)
    code = delivery_code(b["item_id"])
    wrong = "000000" if code != "000000" else "111111"
    bad, missing, good = sync(client, courier, delivered(b["item_id"], 0, id_check={"kind": "otp", "value": wrong}),
                              delivered(b["item_id"], 1, id_check=None),
                              delivered(b["item_id"], 2, id_check={"kind": "otp", "value": code}))
    assert bad["result"] == "rejected" and "one-time code" in bad["error"]["message"]
    assert missing["result"] == "rejected" and "id_check" in missing["error"]["fields"]
    assert good["result"] == "applied" and good["status"] == "delivered"


@pytest.mark.config(DELIVERY_ID_CHECK="none")
def test_no_identity_check_when_configured_so(client, auth, courier):
    body = handed(client, auth, courier)
    [result] = sync(client, courier, delivered(body["item_id"], id_check=None))
    assert result["result"] == "applied"
    assert db.session.scalar(sa.select(DeliveryProof.id_check_result)).value == "not_checked"


# --- sync: failed attempts and the return flow ---------------------------------------------------

def test_failed_attempt_moves_the_order_to_the_next_attempts_run(client, auth, courier):
    body = handed(client, auth, courier)
    day = dt.date.fromisoformat(body["run_date"])
    next_day = day + dt.timedelta(days=2)
    ev = event(body["item_id"], "failed_attempt", reason="not_home", note="Gọi 2 lần không nghe máy",
               next_attempt_date=next_day.isoformat(), latitude=15.1, longitude=108.8)
    [result] = sync(client, courier, ev)
    assert result["result"] == "applied" and result["status"] == "failed_attempt"
    last = events_of(body["item_id"])[-1]
    assert (last.reason, last.note, last.status_to.value) == ("not_home", "Gọi 2 lần không nghe máy", "failed_attempt")
    on = client.get(f"/api/v1/courier/run?date={next_day}").json
    off = client.get(f"/api/v1/courier/run?date={day}").json
    order = next(o for o in on["unsequenced"] if o["item_id"] == body["item_id"])
    # no other failed attempt before its day (docs/courier-api.md), a delivery still
    assert order["failed_attempts"] == 1 and order["actions"][:2] == ["delivered", "correction"]
    assert body["item_id"] not in [o["item_id"] for o in off["unsequenced"]]
    bad = event(body["item_id"], "failed_attempt", reason="aliens")
    [refused] = sync(client, courier, bad)
    assert refused["error"]["code"] == "invalid" and "reason" in refused["error"]["fields"]


def last_at(clock: str) -> dt.datetime:
    """The latest moment at ``clock`` (HH:MM) in Vietnam that is not in the future."""
    real = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
    hour, minute = map(int, clock.split(":"))
    moment = real.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment if moment <= real - dt.timedelta(seconds=30) else moment - dt.timedelta(days=1)


@pytest.mark.parametrize("clock", ["00:30", "06:59"])
def test_days_are_the_services_days_between_midnight_and_seven(client, auth, courier, monkeypatch, clock):
    """At 00:30 and 06:59 in Vietnam (17:30 and 23:59 UTC the day before) every day is Vietnam's."""
    moment = last_at(clock)
    day = moment.date()
    monkeypatch.setattr(localtime, "local_now", lambda: moment)  # the service's clock
    body = handed(client, auth, courier)
    # the order as if created before that moment (the server refuses an event before its order existed)
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id == body["item_id"])
                       .values(created_at=moment - dt.timedelta(hours=1)))
    db.session.commit()
    ev = event(body["item_id"], "failed_attempt", reason="not_home")
    ev["device_time"] = moment.astimezone(dt.UTC).isoformat()  # a phone may send any offset
    [result] = sync(client, courier, ev)
    assert result["result"] == "applied", result
    run = client.get("/api/v1/courier/run").json
    assert (run["date"], run["timezone"]) == (day.isoformat(), "Asia/Ho_Chi_Minh")
    order = client.get(f"/api/v1/courier/orders/{body['item_id']}").json
    assert order["last_event"]["device_time"] == f"{day.isoformat()}T{clock}:00+07:00"
    assert order["last_event"]["status_from"] == "out_for_delivery"
    assert order["last_event"]["correctable_until"].endswith("+07:00")
    assert order["leg"] == "result"
    # no next attempt given: the next working day after the day of the attempt, in Vietnam
    run_date = db.session.scalar(sa.select(DeliveryOrder.run_date).where(DeliveryOrder.item_id == body["item_id"]))
    assert run_date == next_working_day(day)


def test_the_last_allowed_failed_attempt_returns_the_order_to_the_agency(client, auth, courier):
    body = handed(client, auth, courier)
    # one attempt a day (a failed attempt counts once per planned run day): two days ago, yesterday, now
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id == body["item_id"])
                       .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=3)))
    db.session.commit()
    attempts = [event(body["item_id"], "failed_attempt", -86400 * (2 - i) - 10, reason="not_home")
                for i in range(3)]
    results = sync(client, courier, *attempts)
    assert [r["status"] for r in results] == ["failed_attempt", "failed_attempt", "returned_to_agency"]
    log = events_of(body["item_id"])
    assert (log[-1].status_to.value, log[-1].actor_label, log[-1].reason) == (
        "returned_to_agency", "system", "max_failed_attempts")
    [late] = sync(client, courier, delivered(body["item_id"], 10))
    assert late["result"] == "rejected" and late["error"]["code"] == "transition"
    assert "closed" in late["error"]["message"]


# --- sync: dossier pickups ----------------------------------------------------------------------

def test_dossier_pickup_with_documents_seal_and_fees(client, auth, courier):
    body = new_order(client, auth, direction="dossier_to_agency", appointment_date=None)
    assert body["status"] == "assigned"
    # the app is told this stop is a pickup (shown as "Lấy hồ sơ"), what it may record, what to collect
    order = client.get(f"/api/v1/courier/orders/{body['item_id']}").json
    assert (order["leg"], order["direction"]) == ("dossier", "dossier_to_agency")
    assert order["actions"] == ["pickup_confirmed", "dossier_picked_up", "failed_attempt"]
    assert order["to_collect_vnd"] == 26000 and order["payer"] == "citizen"
    run = client.get(f"/api/v1/courier/run?date={body['run_date']}").json
    listed = [o for s in run["stops"] for o in s["orders"]] + run["unsequenced"]
    assert [o["leg"] for o in listed if o["item_id"] == body["item_id"]] == ["dossier"]
    ev = event(body["item_id"], "dossier_picked_up", documents=["Tờ khai", "CCCD bản sao"], sealed=True,
               fees_collected_vnd=30000)
    incomplete = event(body["item_id"], "dossier_picked_up", 1, documents=[])
    first, second = sync(client, courier, ev, incomplete)
    assert first["result"] == "applied" and first["status"] == "picked_up"
    assert second["result"] == "rejected" and {"documents", "sealed"} <= set(second["error"]["fields"])
    assert [e.status_to.value for e in events_of(body["item_id"])[-2:]] == ["pickup_scheduled", "picked_up"]
    proof = db.session.scalar(sa.select(DeliveryProof))
    assert (proof.kind.value, proof.documents, proof.sealed, proof.fees_collected_vnd) == (
        "picked_up", ["Tờ khai", "CCCD bản sao"], True, 30000)
    assert client.get(f"/api/v1/courier/orders/{body['item_id']}").json["leg"] == "dossier"  # on its way to the agency


# --- sync: batches -------------------------------------------------------------------------------

def test_replayed_batch_is_all_duplicates_with_one_event_each(client, auth, courier):
    a, b = handed(client, auth, courier), handed(client, auth, courier)
    batch = [delivered(a["item_id"]), event(b["item_id"], "failed_attempt", reason="moved")]
    assert [r["result"] for r in sync(client, courier, *batch)] == ["applied", "applied"]
    again = sync(client, courier, *batch, batch[0])
    assert [r["result"] for r in again] == ["duplicate", "duplicate", "duplicate"]
    assert [r["status"] for r in again] == ["delivered", "failed_attempt", "delivered"]
    for ev in batch:
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderEvent)
                                 .where(OrderEvent.client_event_id == ev["event_id"])) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryProof)) == 1


def test_events_are_applied_in_device_time_order(client, auth, courier):
    body = new_order(client, auth)
    later = delivered(body["item_id"], -10)
    earlier = event(body["item_id"], "pickup_confirmed", -100)
    results = sync(client, courier, later, earlier)  # sent newest first, as an outbox may
    assert [r["result"] for r in results] == ["applied", "applied"]
    assert [r["event_id"] for r in results] == [later["event_id"], earlier["event_id"]]
    assert [e.status_to.value for e in events_of(body["item_id"])[-3:]] == [
        "handed_to_courier", "out_for_delivery", "delivered"]


def test_a_batch_stores_every_event_with_its_proof_and_learns_the_positions(client, auth, courier):
    from delivery_service.geo.models import OrderLocation

    a, b = new_order(client, auth), handed(client, auth, courier)
    batch = [delivered(a["item_id"], -10, latitude=15.1205, longitude=108.8044, accuracy_m=12.0),
             event(a["item_id"], "pickup_confirmed", -100), delivered(b["item_id"], -50)]
    assert [r["status"] for r in sync(client, courier, *batch)] == ["delivered", "handed_to_courier", "delivered"]
    assert [e.status_to.value for e in events_of(a["item_id"])[-3:]] == [
        "handed_to_courier", "out_for_delivery", "delivered"]
    proofs = db.session.execute(sa.select(DeliveryProof.event_id, DeliveryProof.order_id)).all()
    assert {p.event_id for p in proofs} == {events_of(a["item_id"])[-1].id, events_of(b["item_id"])[-1].id}
    # The position of a's delivery became its location; b sent none.
    spot = db.session.scalar(sa.select(OrderLocation).join(DeliveryOrder, DeliveryOrder.id == OrderLocation.order_id)
                             .where(DeliveryOrder.item_id == a["item_id"]))
    assert spot is not None and spot.source.value == "courier" and (spot.latitude, spot.longitude) == (15.1205, 108.8044)


def test_a_refused_event_is_reported_and_the_others_applied(client, auth, courier):
    a, b = new_order(client, auth), handed(client, auth, courier)
    too_early = delivered(a["item_id"])  # not picked up at the office yet
    fine = delivered(b["item_id"])
    other = new_order(client, auth, address=HTI)
    foreign = event(other["item_id"], "pickup_confirmed")
    skewed = event(b["item_id"], "failed_attempt", 3600, reason="not_home")
    broken = {"event_id": str(uuid.uuid4()), "item_id": a["item_id"], "action": "teleported"}
    results = sync(client, courier, too_early, fine, foreign, skewed, broken, "not an object")
    assert [r["result"] for r in results] == ["rejected", "applied", "rejected", "rejected", "rejected", "rejected"]
    assert results[0]["error"]["code"] == "transition" and "handed_to_courier" in results[0]["error"]["message"]
    assert results[0]["status"] == "assigned"
    assert results[2]["error"] == {"code": "not_your_route", "reason": "not_your_route",
                                   "message": f"{other['item_id']} is not on your route", "fields": {}}
    assert results[2]["status"] is None  # nothing said about another route's order
    assert results[3]["error"]["code"] == "clock_skew" and "ahead" in results[3]["error"]["message"]
    assert results[4]["error"]["code"] == "invalid" and {"action", "device_time"} <= set(results[4]["error"]["fields"])
    assert results[5]["event_id"] is None and results[5]["error"]["code"] == "invalid"
    assert status_of(a["item_id"]) == "assigned" and status_of(other["item_id"]) != "handed_to_courier"


def test_malformed_batches_are_refused_whole(client, auth, courier):
    body = new_order(client, auth)
    ok = event(body["item_id"], "pickup_confirmed")
    for bad in ([ok], {"event": [ok]}, {"events": []}, {"events": ok}, {"events": [ok] * 201}):
        resp = client.post("/api/v1/courier/sync", json=bad, headers=courier)
        assert resp.status_code == 422, (bad, resp.json)
    for raw in (b"{not json", b'{"events": [' + b"9" * 5000 + b"]}"):  # the second: too many digits for int()
        resp = client.post("/api/v1/courier/sync", data=raw, headers={**courier, "Content-Type": "application/json"})
        assert resp.status_code == 422 and resp.json["errors"], resp.get_data(as_text=True)[:200]
    assert status_of(body["item_id"]) == "assigned" and len(events_of(body["item_id"])) == 2


# --- corrections --------------------------------------------------------------------------------

def test_correction_within_the_window_is_a_new_event(client, auth, courier):
    body = handed(client, auth, courier)
    wrong = delivered(body["item_id"])
    sync(client, courier, wrong)
    fix = event(body["item_id"], "correction", 5, corrects=wrong["event_id"], note="Giao nhầm người")
    [result] = sync(client, courier, fix)
    assert result["result"] == "applied" and result["status"] == "out_for_delivery"
    log = events_of(body["item_id"])
    assert [(e.status_from.value, e.status_to.value) for e in log[-2:]] == [
        ("out_for_delivery", "delivered"), ("delivered", "out_for_delivery")]
    assert log[-1].reason == "correction" and log[-1].note == "Giao nhầm người"  # the link: EventCorrection
    assert db.session.scalar(sa.select(EventCorrection.corrected_event_id)) == log[-2].id
    # Nothing overwritten: the delivered event and its proof stay; delivering again works.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryProof)) == 1
    again = sync(client, courier, event(body["item_id"], "correction", 6, corrects=wrong["event_id"]),
                 delivered(body["item_id"], 7))
    assert again[0]["result"] == "rejected" and again[1]["result"] == "applied"
    order = client.get(f"/api/v1/courier/orders/{body['item_id']}").json
    assert order["actions"] == ["correction"] and order["last_event"]["correctable_until"]


@pytest.mark.config(CORRECTION_WINDOW_MIN=0)
def test_correction_after_the_window_is_refused(client, auth, courier):
    body = handed(client, auth, courier)
    done = delivered(body["item_id"])
    sync(client, courier, done)
    [result] = sync(client, courier, event(body["item_id"], "correction", 1, corrects=done["event_id"]))
    assert result["result"] == "rejected" and result["error"]["code"] == "window_closed"
    assert status_of(body["item_id"]) == "delivered"


# --- files ---------------------------------------------------------------------------------------

def put_file(client, headers, item_id, event_id, body, kind="photo", file_id=None, mime="image/jpeg"):
    file_id = file_id or str(uuid.uuid4())
    return client.put(f"/api/v1/courier/files/{file_id}?item_id={item_id}&event_id={event_id}&kind={kind}",
                      data=body, headers={**headers, "Content-Type": mime}), file_id


def test_files_attach_whichever_arrives_first(client, auth, courier):
    body = handed(client, auth, courier)
    ev = delivered(body["item_id"])
    early, early_id = put_file(client, courier, body["item_id"], ev["event_id"], JPEG)
    assert early.status_code == 201 and early.json == {"id": early_id, "attached": False}
    replay, _ = put_file(client, courier, body["item_id"], ev["event_id"], JPEG, file_id=early_id)
    assert replay.status_code == 200 and replay.json == {"id": early_id, "attached": False}
    sync(client, courier, ev)
    late, late_id = put_file(client, courier, body["item_id"], ev["event_id"], PNG, kind="signature",
                             mime="image/png")
    assert late.status_code == 201 and late.json == {"id": late_id, "attached": True}
    event_pk = events_of(body["item_id"])[-1].id
    files = db.session.execute(sa.select(ProofFile.id, ProofFile.attached_event_id, ProofFile.mime)).all()
    assert {(f.id, f.attached_event_id, f.mime) for f in files} == {
        (early_id, event_pk, "image/jpeg"), (late_id, event_pk, "image/png")}
    clash, _ = put_file(client, courier, body["item_id"], ev["event_id"], PNG, file_id=early_id)
    assert clash.status_code == 409


@pytest.mark.parametrize("per_request", [1, 3])
def test_files_waiting_or_listed_find_their_events_and_others_keep_waiting(client, auth, courier, per_request):
    """A sync looks files up only for orders with files waiting and for events that list files: a
    file sent before its event, and one sent under another event id but listed by the event, are
    attached; a file waiting for an event not sent yet keeps waiting (one event a request, or a batch)."""
    a, b, c = (handed(client, auth, courier)["item_id"] for _ in range(3))
    ev_a, ev_b, ev_c = (delivered(item, offset, latitude=15.12, longitude=108.8, accuracy_m=8.0)
                        for item, offset in ((a, -30), (b, -20), (c, -10)))
    early, early_id = put_file(client, courier, a, ev_a["event_id"], JPEG)
    listed, listed_id = put_file(client, courier, b, str(uuid.uuid4()), JPEG)
    later, later_id = put_file(client, courier, c, str(uuid.uuid4()), PNG, kind="signature", mime="image/png")
    assert {early.status_code, listed.status_code, later.status_code} == {201}
    ev_b["files"] = [listed_id]
    events = [ev_a, ev_b, ev_c]
    results = [r for k in range(0, 3, per_request) for r in sync(client, courier, *events[k:k + per_request])]
    assert [(r["result"], r["status"]) for r in results] == [("applied", "delivered")] * 3
    delivered_pk = {item: events_of(item)[-1].id for item in (a, b, c)}
    attached = dict(db.session.execute(sa.select(ProofFile.id, ProofFile.attached_event_id)).all())
    assert attached == {early_id: delivered_pk[a], listed_id: delivered_pk[b], later_id: None}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryProof)) == 3


@pytest.mark.config(MAX_PROOF_BYTES=4096)
def test_bad_uploads_are_refused_with_a_message(client, auth, courier):
    body = handed(client, auth, courier)
    eid = str(uuid.uuid4())
    big, _ = put_file(client, courier, body["item_id"], eid, JPEG + b"\x00" * 5000)
    assert big.status_code == 413 and "4096" in big.json["message"]
    pdf, _ = put_file(client, courier, body["item_id"], eid, b"%PDF-1.4\n" + b"x" * 100)
    text, _ = put_file(client, courier, body["item_id"], eid, b"just text renamed to .jpg")
    empty, _ = put_file(client, courier, body["item_id"], eid, b"")
    for resp in (pdf, text, empty):
        assert resp.status_code == 422, resp.json
    assert "JPEG, PNG or WebP" in pdf.json["message"]
    other = new_order(client, auth, address=HTI)
    foreign, _ = put_file(client, courier, other["item_id"], eid, JPEG)
    assert foreign.status_code == 404 and "not on your route" in foreign.json["message"]
    bad_id = client.put(f"/api/v1/courier/files/not-a-uuid?item_id={body['item_id']}&event_id={eid}&kind=photo",
                        data=JPEG, headers=courier)
    bad_kind, _ = put_file(client, courier, body["item_id"], eid, JPEG, kind="video")
    assert bad_id.status_code == 422 and bad_kind.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProofFile)) == 0


# --- the back office ------------------------------------------------------------------------------

def delivered_with_proof(client, auth, courier) -> tuple[dict, dict, str, str]:
    """An order delivered to an authorised person after a failed attempt, with a photo and a signature."""
    body = handed(client, auth, courier, recipient={"name": "Nguyễn Thị Hoa", "phone": "0905123456",
                                                    "id_number": ID_NUMBER})
    item = body["item_id"]
    failed = event(item, "failed_attempt", -30, reason="not_home", note="Vắng nhà")
    ev = delivered(item, receiver={"kind": "authorised", "name": "Phạm Văn Đức", "relation": "chồng"},
                   id_check={"kind": "otp", "value": delivery_code(item)}, amount_collected_vnd=26000,
                   latitude=15.12, longitude=108.8, accuracy_m=8.0)
    _, photo_id = put_file(client, courier, item, ev["event_id"], JPEG)
    _, sign_id = put_file(client, courier, item, ev["event_id"], PNG, kind="signature", mime="image/png")
    assert [r["result"] for r in sync(client, courier, failed, ev)] == ["applied", "applied"]
    return body, ev, photo_id, sign_id


def test_back_office_sees_the_proof_of_delivery(client, auth, courier):
    body, ev, photo_id, sign_id = delivered_with_proof(client, auth, courier)
    item = body["item_id"]
    assert client.get(f"/api/v1/orders/{item}/proof").status_code == 200  # the courier, on their route
    proof = client.get(f"/api/v1/orders/{item}/proof", headers=auth)  # the counter's software
    assert proof.status_code == 200, proof.json
    [delivery] = proof.json["deliveries"]
    assert delivery["receiver"] == {"kind": "authorised", "name": "Phạm Văn Đức", "relation": "chồng"}
    assert delivery["id_check"] == {"kind": "otp", "result": "ok"} and delivery["amount_collected_vnd"] == 26000
    assert delivery["location"] == {"latitude": 15.12, "longitude": 108.8, "accuracy_m": 8.0}
    assert delivery["device_time"] and delivery["server_time"] and delivery["event_id"] == ev["event_id"]
    assert {f["id"]: f["kind"] for f in delivery["files"]} == {photo_id: "photo", sign_id: "signature"}
    [attempt] = proof.json["failed_attempts"]
    assert (attempt["reason"], attempt["note"], attempt["reason_label"]) == (
        "not_home", "Vắng nhà", "Không có người nhận tại nhà")
    assert ID_NUMBER not in proof.get_data(as_text=True)
    image = client.get(next(f["url"] for f in delivery["files"] if f["id"] == photo_id), headers=auth)
    assert image.status_code == 200 and image.data == JPEG and image.mimetype == "image/jpeg"
    other = new_order(client, auth, address=HTI)
    assert client.get(f"/api/v1/orders/{other['item_id']}/proof/files/{photo_id}", headers=auth).status_code == 404


def test_no_personal_data_in_the_logs(client, auth, courier, caplog):
    caplog.set_level(logging.DEBUG)
    body = handed(client, auth, courier, recipient={"name": "Võ Thị Riêng", "phone": "0905777666",
                                                    "id_number": ID_NUMBER})
    put_file(client, courier, body["item_id"], "evt-12345678", JPEG)
    sync(client, courier, delivered(body["item_id"], receiver={"kind": "authorised", "name": "Đặng Văn Kín",
                                                               "relation": "em"},
                                    id_check={"kind": "id_last4", "value": "0000"}),
         delivered(body["item_id"], 1, latitude=15.1, longitude=108.8))
    for private in ("Võ Thị Riêng", "0905777666", ID_NUMBER, "Đặng Văn Kín"):
        assert private not in caplog.text


def test_failure_reasons_are_configurable(tmp_path):
    cfg = config.load(str(tmp_path), {"DATABASE_URL": "sqlite://", "SECRET_KEY": "x",
                                      "FAILURE_REASONS": "dog:Chó dữ:Dangerous dog;flood:Ngập:Flooded"})
    assert [r["code"] for r in cfg["FAILURE_REASONS"]] == ["dog", "flood"]
    # (correction and address_changed are the event log's own reasons: read back as such)
    for bad in ("dog:Chó dữ", "dog:a:b;dog:c:d", "bad code:a:b", "", "correction:a:b", "address_changed:a:b"):
        with pytest.raises(config.ConfigError):
            config.load(str(tmp_path), {"DATABASE_URL": "sqlite://", "SECRET_KEY": "x", "FAILURE_REASONS": bad})
    with pytest.raises(config.ConfigError):
        config.load(str(tmp_path), {"DATABASE_URL": "sqlite://", "SECRET_KEY": "x", "DELIVERY_ID_CHECK": "face"})


def test_order_page_shows_the_proof(app, client, auth, courier):
    body, _, photo_id, sign_id = delivered_with_proof(client, auth, courier)
    item = body["item_id"]
    staff = app.test_client()  # the counter's staff, on the order page
    login(staff, "counter")
    page = staff.get(f"/counter/orders/{item}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Phạm Văn Đức" in html and "chồng" in html and "Không có người nhận tại nhà" in html
    assert f"/counter/orders/{item}/proof/{sign_id}" in html and "± 8 m" in html
    img = staff.get(f"/counter/orders/{item}/proof/{photo_id}")
    assert img.status_code == 200 and img.data == JPEG and img.headers["Cache-Control"].startswith("private")
    other = new_order(client, auth, address=HTI)
    assert staff.get(f"/counter/orders/{other['item_id']}/proof/{photo_id}").status_code == 404
    assert client.get(f"/counter/orders/{item}/proof/{photo_id}").status_code == 403  # the courier


def test_a_batch_learns_the_same_positions_as_the_same_events_one_by_one(client, auth, courier):
    from delivery_service.geo.models import KnownPlace, OrderLocation

    # Per address: the fixes (latitude offset, accuracy; None: no position sent). "Thôn 1" is known
    # before (one delivery earlier) and gets 16 more fixes: only the newest 15 are kept.
    plan = {"Thôn 1": [(0.0001 * (n % 5), 10.0 + n) for n in range(16)],
            "Thôn 2": [(0.0, 12.0), (0.03, 8.0), (-0.0002, 20.0)],  # the 3.3 km fix loses the median
            "Thôn 3": [(0.0003, None)],  # no accuracy: counted as 100 m
            "Thôn 4": [(0.0, 350.0), None]}  # a cell-tower guess (ignored), then no position at all

    def scenario(prefix: str, one_by_one: bool) -> tuple[dict, list]:
        first = new_order(client, auth, address={**QNG, "detail": f"{prefix} Thôn 1"})
        sync(client, courier, event(first["item_id"], "pickup_confirmed", -550),
             delivered(first["item_id"], -500, latitude=15.1205, longitude=108.8044, accuracy_m=14.0))
        bodies, events = [], []
        for detail, fixes in plan.items():
            for fix in fixes:
                body = new_order(client, auth, address={**QNG, "detail": f"{prefix} {detail}"})
                bodies.append(body)
                where = {} if fix is None else {"latitude": 15.1205 + fix[0], "longitude": 108.8044,
                                                **({} if fix[1] is None else {"accuracy_m": fix[1]})}
                events.append(delivered(body["item_id"], -400 + len(events), **where))
        sync(client, courier, *[event(b["item_id"], "pickup_confirmed", -600) for b in bodies])
        if one_by_one:
            results = [r for ev in events for r in sync(client, courier, ev)]
        else:
            results = sync(client, courier, *reversed(events))  # applied in device-time order all the same
        assert {r["result"] for r in results} == {"applied"}, results
        places = {p.address_key.split("|", 1)[1].removeprefix(prefix.lower() + " "):
                  (p.latitude, p.longitude, p.accuracy_m, p.samples, p.fixes)
                  for p in db.session.scalars(sa.select(KnownPlace).where(
                      KnownPlace.address_key.like(f"%|{prefix.lower()} %")))}
        located = []
        for body in bodies:
            loc = db.session.scalar(sa.select(OrderLocation).join(
                DeliveryOrder, DeliveryOrder.id == OrderLocation.order_id)
                .where(DeliveryOrder.item_id == body["item_id"]))
            located.append(loc and (loc.latitude, loc.longitude, loc.source.value, loc.precision_m,
                                    loc.address_key.split("|", 1)[1].removeprefix(prefix.lower() + " ")))
        return places, located

    db.session.execute(sa.delete(KnownPlace).where(  # PostgreSQL keeps this table between tests
        sa.or_(KnownPlace.address_key.like("%|aa %"), KnownPlace.address_key.like("%|bb %"))))
    db.session.commit()
    single = scenario("Aa", one_by_one=True)
    batch = scenario("Bb", one_by_one=False)
    assert batch == single
    places, located = batch
    assert set(places) == {"thon 1", "thon 2", "thon 3"}
    assert places["thon 1"][3] == 17 and len(places["thon 1"][4]) == 15  # samples; the newest 15 fixes
    assert places["thon 2"][3] == 3 and abs(places["thon 2"][0] - 15.1205) < 0.001  # the median
    assert places["thon 3"][2:4] == (100.0, 1)
    assert {loc and loc[2] for loc in located[-2:]} <= {None, "commune_centroid"}  # nothing learnt


def test_an_event_id_used_for_another_action_or_order_is_rejected_not_a_duplicate(client, auth, courier):
    a, b = handed(client, auth, courier), handed(client, auth, courier)
    failed = event(a["item_id"], "failed_attempt", -30, reason="moved")
    assert sync(client, courier, failed)[0]["result"] == "applied"
    # The same id for the delivery of that order: answering "duplicate" would tell the phone its
    # delivery was stored. Also one at a time (the usual sync) and in a batch.
    reused = delivered(a["item_id"], event_id=failed["event_id"])
    for answer in (sync(client, courier, reused)[0], sync(client, courier, reused, delivered(b["item_id"]))[0]):
        assert answer["result"] == "rejected" and answer["error"]["code"] == "invalid", answer
        assert answer["error"]["fields"] == {"event_id": ["Already used for another action."]}
    assert sync(client, courier, failed)[0]["result"] == "duplicate"  # the real replay still is
    other = delivered(b["item_id"], event_id=failed["event_id"])
    assert sync(client, courier, other)[0]["error"]["fields"] == {"event_id": ["Already used for another order."]}
    # Twice in one batch: the first one has the id, the other event is rejected.
    fresh = str(uuid.uuid4())
    first, second = sync(client, courier, delivered(a["item_id"], event_id=fresh),
                         event(a["item_id"], "failed_attempt", event_id=fresh, reason="moved"))
    assert first["result"] == "applied" and first["status"] == "delivered"
    assert second["result"] == "rejected" and second["error"]["fields"] == {
        "event_id": ["Already used for another action."]}
    assert [e.status_to.value for e in events_of(a["item_id"]) if e.client_event_id == fresh] == ["delivered"]
    assert [e.status_to.value for e in events_of(a["item_id"]) if e.client_event_id == failed["event_id"]] == [
        "failed_attempt"]
