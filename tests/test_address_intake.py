"""Addresses as text on intake (POST /api/v1/orders, address.text) and in imports (one address
column, or the units' names), read by the offline parser; both database kinds."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from conftest import login, order_payload
from test_imports import row, to_csv, upload

from delivery_service.addresses.api import address_parser
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder
from delivery_service.units.succession import split_successors, successors

CLEAR = "Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi"
AMBIGUOUS = "thôn 3, Cẩm Thành"  # Phường Cẩm Thành (Quảng Ngãi) or Xã Cẩm Thành (Hà Tĩnh)
CODES = {"province_code": "51", "commune_code": "21025"}


def stored(item_id: str) -> DeliveryOrder:
    db.session.expire_all()
    return db.session.scalars(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item_id)).one()


def units(order: DeliveryOrder) -> tuple[Any, ...]:
    return order.province_id, order.district_id, order.commune_id, order.address_detail


# --- the intake API ------------------------------------------------------------------------------

def test_text_stores_the_same_order_as_the_codes(client, auth):
    coded = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={**CODES, "detail": "Số 12 Hùng Vương"}))
    assert coded.status_code == 201, coded.json
    written = client.post("/api/v1/orders", headers=auth, json=order_payload(address={"text": CLEAR}))
    assert written.status_code == 201, written.json
    assert written.json["address"] == coded.json["address"]
    assert written.json["address"]["commune"]["code"] == "21025"
    assert units(stored(written.json["item_id"])) == units(stored(coded.json["item_id"]))
    # a detail given with the text wins over what remains of the text
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={"text": "p cam thanh, quang ngai", "detail": "Tổ 3, 12 Hùng Vương"}))
    assert resp.status_code == 201, resp.json
    assert resp.json["address"]["detail"] == "Tổ 3, 12 Hùng Vương"
    assert resp.json["address"]["commune"]["code"] == "21025"


def test_a_former_commune_is_stored_as_its_2025_successor(client, auth):
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={"text": "thôn Phú Thọ, xã Nghĩa Kỳ, huyện Tư Nghĩa"}))  # the district ended in 2025
    assert resp.status_code == 201, resp.json
    address = resp.json["address"]
    assert address["province"]["code"] == "51" and address["district"] is None
    assert address["commune"]["code"] == successors()[address_parser().parse(
        "xã Nghĩa Kỳ, huyện Tư Nghĩa", dt.date(2025, 6, 1)).commune.code]
    assert address["detail"] == "thôn Phú Thọ"


def test_ambiguous_text_is_refused_with_the_candidates(client, auth):
    before = db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder))
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(address={"text": AMBIGUOUS}))
    assert resp.status_code == 422, resp.json
    body = resp.json
    assert list(body["errors"]["json"]) == ["address"] and list(body["errors"]["json"]["address"]) == ["text"]
    [detail] = body["details"]
    assert (detail["location"], detail["field"], detail["code"]) == ("json", "address.text", "ambiguous_address")
    assert detail["message"].startswith("Không rõ địa chỉ") and "Ambiguous address: did you mean" in detail["message"]
    assert len(detail["candidates"]) >= 2
    assert {c["commune"]["name"] for c in detail["candidates"][:2]} == {"Phường Cẩm Thành", "Xã Cẩm Thành"}
    for candidate in detail["candidates"]:
        assert set(candidate) == {"province", "district", "commune", "score", "legacy", "successor"}
        if candidate["legacy"]:  # a former commune: the 2025 commune that succeeded it, to send instead
            assert candidate["district"]["code"] and candidate["successor"]["code"]
            assert f"→ {candidate['successor']['name']} {candidate['successor']['code']}" in detail["message"]
        else:
            assert candidate["successor"] is None
        assert candidate["province"]["code"] and candidate["commune"]["code"]
        assert candidate["commune"]["name"] in detail["message"]
        assert 0 < candidate["score"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder)) == before

    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(address={"text": "đâu đó"}))
    assert resp.status_code == 422
    assert resp.json["details"][0]["code"] == "unknown_address"
    assert resp.json["details"][0]["candidates"] == []


def test_a_commune_split_in_2025_is_refused_with_its_parts(client, auth):
    """Xã Kỳ Lợi went to three 2025 wards: the caller chooses, the package's default is not stored."""
    before = db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder))
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={"text": "Thôn 2, xã Kỳ Lợi, TX Kỳ Anh, Hà Tĩnh"}))
    assert resp.status_code == 422, resp.json
    [detail] = resp.json["details"]
    assert (detail["field"], detail["code"]) == ("address.text", "ambiguous_address")
    parts = split_successors()["18796"]
    assert [c["commune"]["code"] for c in detail["candidates"][:3]] == list(parts)
    assert all(c["province"]["code"] == "42" and not c["legacy"] for c in detail["candidates"][:3])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder)) == before


def test_a_district_the_commune_is_not_in_is_refused(client, auth):
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={"text": "Thôn 2, xã Hoa Mai, H. Đức Thọ, Hà Tĩnh"}))
    assert resp.status_code == 422, resp.json
    assert resp.json["details"][0]["code"] == "ambiguous_address"


def test_both_forms_or_neither_are_refused_at_the_address(client, auth):
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={**CODES, "detail": "12 Hùng Vương", "text": CLEAR}))
    assert resp.status_code == 422
    assert resp.json["details"] == [{"location": "json", "field": "address", "code": "address_forms",
                                     "message": resp.json["details"][0]["message"]}]
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(address={"detail": "12 Hùng Vương"}))
    assert resp.status_code == 422
    fields = {(d["field"], d["code"]) for d in resp.json["details"]}
    assert ("address", "address_forms") in fields and ("address.commune_code", "required") in fields
    for bad in ({"text": ""}, {"text": "x" * 501}, {"text": 12}):
        resp = client.post("/api/v1/orders", headers=auth, json=order_payload(address=bad))
        assert resp.status_code == 422 and resp.json["details"][0]["field"] == "address.text", resp.json
    # an empty text next to the codes counts as missing, like any empty text
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={**CODES, "detail": "12 Hùng Vương", "text": "  "}))
    assert resp.status_code == 201, resp.json


def test_a_replay_with_the_same_text_is_the_same_order(client, auth):
    key = uuid.uuid4().hex
    payload = order_payload(address={"text": CLEAR})
    first = client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": key}, json=payload)
    assert first.status_code == 201, first.json
    again = client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": key}, json=payload)
    assert again.status_code == 200 and again.json["item_id"] == first.json["item_id"]
    other = client.post("/api/v1/orders", headers={**auth, "Idempotency-Key": key},
                        json={**payload, "address": {"text": "Số 14 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi"}})
    assert other.status_code == 422 and other.json["error"] == "idempotency_key_reused"


def test_a_corrected_address_may_come_as_text(client, auth):
    created = client.post("/api/v1/orders", headers=auth, json=order_payload())
    item_id = created.json["item_id"]
    moved = client.put(f"/api/v1/orders/{item_id}/address", headers=auth,
                       json={"address": {"text": "Số 7 Lê Lợi, P. Cẩm Thành, Quảng Ngãi"}})
    assert moved.status_code == 200, moved.json
    assert (moved.json["address"]["commune"]["code"], moved.json["address"]["detail"]) == ("21025", "Số 7 Lê Lợi")
    unclear = client.put(f"/api/v1/orders/{item_id}/address", headers=auth, json={"address": {"text": AMBIGUOUS}})
    assert unclear.status_code == 422 and unclear.json["details"][0]["candidates"]
    assert stored(item_id).address_detail == "Số 7 Lê Lợi"


def test_the_codes_never_reach_the_parser(client, auth, app):
    app.extensions.pop("address_parser", None)
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload())
    assert resp.status_code == 201
    assert "address_parser" not in app.extensions
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(address={"text": CLEAR}))
    assert resp.status_code == 201 and "address_parser" in app.extensions


def test_the_openapi_document_shows_the_text_form(client):
    spec = client.get("/api/v1/openapi.json").json
    address = spec["components"]["schemas"]["AddressIn"]["properties"]
    assert address["text"]["example"] == CLEAR
    assert "required" not in spec["components"]["schemas"]["AddressIn"]


# --- imports -------------------------------------------------------------------------------------

TEXT_COLUMNS = ("direction", "dossier_code", "procedure_name", "issuing_agency", "recipient_name",
                "recipient_phone", "dia_chi_day_du", "appointment_date")


def text_row(address: str, **changes: Any) -> dict[str, Any]:
    values = {k: v for k, v in row(**changes).items() if k not in ("province_code", "commune_code",
                                                                  "address_detail")}
    return {**values, "dia_chi_day_du": address}


def test_import_with_one_address_column(client, auth):
    rows = [text_row(CLEAR), text_row(AMBIGUOUS), text_row("12 hung vuong p cam thanh quang ngai"),
            text_row(""), text_row("thôn 3, Cẩm Thành", recipient_phone="12")]
    resp = upload(client, auth, to_csv(rows, TEXT_COLUMNS))
    assert resp.status_code in (201, 202), resp.json
    body = client.get(f"/api/v1/imports/{resp.json['id']}", headers=auth).json
    assert (body["state"], body["created_rows"], body["error_rows"]) == ("done", 2, 3), body["results"]
    results = {r["line"]: r for r in body["results"]}
    order = stored(results[2]["item_id"])
    assert (order.address_detail, stored(results[4]["item_id"]).commune_id) == ("Số 12 Hùng Vương",
                                                                              order.commune_id)
    assert list(results[3]["errors"]) == ["dia_chi_day_du"]
    [message] = results[3]["errors"]["dia_chi_day_du"]
    assert message.startswith("Không rõ địa chỉ") and "Ambiguous address: did you mean Phường Cẩm Thành" in message
    assert "dia_chi_day_du" in results[5]["errors"]  # a blank address, under the file's column
    # an unclear address is reported along with the row's other errors
    assert set(results[6]["errors"]) == {"recipient_phone", "dia_chi_day_du"}
    # the counter's page shows the API's two-language message in the reader's language only
    login(client, "counter")
    for lang, shown, hidden in (("vi", "Không rõ địa chỉ, có phải: Phường Cẩm Thành", "Ambiguous address"),
                                ("en", "Ambiguous address: did you mean Phường Cẩm Thành", "Không rõ địa chỉ")):
        page = client.get(f"/counter/imports/{resp.json['id']}?lang={lang}").get_data(as_text=True)
        assert shown in page and hidden not in page, lang


def test_import_with_dia_chi_as_the_whole_address(client, auth):
    columns = tuple("dia_chi" if c == "dia_chi_day_du" else c for c in TEXT_COLUMNS)
    rows = [{("dia_chi" if k == "dia_chi_day_du" else k): v for k, v in r.items()}
            for r in (text_row(CLEAR), text_row("Xã Cẩm"))]
    resp = upload(client, auth, to_csv(rows, columns))
    body = client.get(f"/api/v1/imports/{resp.json['id']}", headers=auth).json
    assert (body["created_rows"], body["error_rows"]) == (1, 1), body["results"]
    assert stored(body["results"][0]["item_id"]).address_detail == "Số 12 Hùng Vương"
    assert "Address not recognised" in body["results"][1]["errors"]["dia_chi"][0]


def test_import_with_unit_names(client, auth):
    columns = ("direction", "dossier_code", "procedure_name", "issuing_agency", "recipient_name",
               "recipient_phone", "Tên tỉnh", "Tên xã", "address_detail", "appointment_date")

    def named(province: str, commune: str) -> dict[str, Any]:
        return {**row(), "Tên tỉnh": province, "Tên xã": commune}

    rows = [named("Quảng Ngãi", "Phường Cẩm Thành"), named("Quảng Ngãi", "Xã Cẩm"), row()]
    resp = upload(client, auth, to_csv(rows, columns))
    body = client.get(f"/api/v1/imports/{resp.json['id']}", headers=auth).json
    assert (body["created_rows"], body["error_rows"]) == (1, 2), body["results"]
    order = stored(body["results"][0]["item_id"])
    coded = client.post("/api/v1/orders", headers=auth, json=order_payload(
        address={**CODES, "detail": "12 Hùng Vương"}))
    assert units(order) == units(stored(coded.json["item_id"]))
    assert list(body["results"][1]["errors"]) == ["Tên xã"]
    # the third row has no names: the province and commune are missing, under the file's names
    assert body["results"][2]["status"] == "error"
    assert {"Tên tỉnh", "Tên xã"} <= set(body["results"][2]["errors"]), body["results"][2]


def test_import_with_neither_codes_nor_an_address_is_refused(client, auth):
    columns = ("direction", "dossier_code", "procedure_name", "issuing_agency", "recipient_name",
               "recipient_phone", "appointment_date")
    resp = upload(client, auth, to_csv([row()], columns))
    assert resp.status_code == 422
    missing, hint = resp.json["errors"]["files"]["file"]  # the one-column address: a message of its own
    assert {d["code"] for d in resp.json["details"]} == {"invalid_columns"}
    assert "province_code, commune_code, address_detail" in missing and "address_text" in hint
