"""Inputs that once gave 500s or slipped through: each must be a clear 4xx now, and change nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import login, order_payload

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import create_user
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db


def _count() -> int:
    db.session.rollback()
    return db.session.scalar(sa.text("SELECT COUNT(*) FROM delivery_orders"))


def test_deeply_nested_json_is_422(client, auth):
    body = "[" * 30000 + "]" * 30000
    resp = client.post("/api/v1/orders", data=body, content_type="application/json", headers=auth)
    assert resp.status_code == 422 and _count() == 0


@pytest.mark.parametrize("query", [{"created_on": "9999-12-31"}, {"created_on": "0001-01-01"},
                                   {"page": "99999999999999999999"}, {"q": "ab\x00c"}])
def test_odd_list_queries_are_422(client, auth, query):
    assert client.get("/api/v1/orders", query_string=query, headers=auth).status_code == 422


@pytest.mark.parametrize("event", [
    {"status": "cancelled", "device_time": "0001-01-01T00:00:00+14:00"},
    {"status": "cancelled", "device_time": "9999-12-31T23:59:59-14:00"},
    {"status": "cancelled", "reason": "a\x00b"},
    {"status": "cancelled", "event_id": "evt\x00-00000001"},
])
def test_odd_events_are_422_and_change_nothing(client, auth, event):
    item = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    assert client.post(f"/api/v1/orders/{item}/events", json=event, headers=auth).status_code == 422
    assert client.get(f"/api/v1/orders/{item}", headers=auth).json["status"] == "assigned"


def test_huge_import_id_is_404(client, auth):
    assert client.get("/api/v1/imports/1230592157249778272545275904", headers=auth).status_code == 404


def test_idempotency_key_with_control_characters_is_422(client, auth):
    resp = client.post("/api/v1/orders", json=order_payload(), headers={**auth, "Idempotency-Key": "a\tb"})
    assert resp.status_code == 422 and _count() == 0


@pytest.mark.parametrize("digits", ["١٢٣٤٥٦٧٨٩", "²²²²²²²²²"])
def test_id_numbers_take_ascii_digits_only(client, auth, digits):
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        recipient={"name": "An", "phone": "0905123456", "id_number": digits}))
    assert resp.status_code == 422 and "id_number" in resp.json["errors"]["json"]["recipient"]


def test_search_and_day_listing_page_in_sql(client, auth):
    import datetime as dt

    items = [client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"] for _ in range(3)]
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=7))).date().isoformat()
    for query in ({"q": "Nguyễn Thị Hoa"}, {"created_on": today}):
        pages = [client.get("/api/v1/orders", query_string={**query, "page": p, "page_size": 2}, headers=auth)
                 for p in (1, 2)]
        got = [o["item_id"] for page in pages for o in page.json]
        assert got == items[::-1], query
        assert '"total": 3' in pages[0].headers["X-Pagination"]


def test_query_keys_of_url_for_do_not_break_pages(client):
    login(client, "counter")
    for query in ("_method=FOO", "_anchor=zz", "_external=1"):
        page = client.get(f"/counter?{query}")
        assert page.status_code == 200, query
        assert "#zz" not in page.get_data(as_text=True)


def test_officers_need_a_current_area(app):
    with pytest.raises(InvalidInput) as exc:
        create_user(username="old", full_name="Former district", password="a-long-password",
                    role=Role.DISTRICT_OFFICER, area_code="49")  # Quảng Nam, gone since 1 Jul 2025
    assert "no longer exists" in exc.value.errors["area"][0]
    user = create_user(username="qng", full_name="Province", password="a-long-password",
                       role=Role.DISTRICT_OFFICER, area_code="51")
    assert user.area_unit_id is not None
