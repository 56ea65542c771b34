"""Appointment windows (issue 16, point 3): an optional delivery window on orders, taken by the API,
imports and the counter page, kept by the day plan or shown late."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import order_payload

from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder


def stored(item_id: str) -> tuple[int | None, int | None]:
    db.session.rollback()
    order = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item_id))
    assert order is not None
    return order.window_from_min, order.window_to_min


@pytest.mark.parametrize(("window", "minutes", "shown"), [
    ("morning", (480, 720), {"from": "08:00", "to": "12:00"}),
    ("afternoon", (810, 1020), {"from": "13:30", "to": "17:00"}),
    ({"from": "09:15", "to": "10:00"}, (555, 600), {"from": "09:15", "to": "10:00"}),
    (None, (None, None), None),
])
def test_api_stores_and_returns_the_window(client, auth, window, minutes, shown):
    payload = order_payload() if window is None else order_payload(delivery_window=window)
    resp = client.post("/api/v1/orders", json=payload, headers=auth)
    assert resp.status_code == 201, resp.json
    assert resp.json["delivery_window"] == shown
    assert stored(resp.json["item_id"]) == minutes
    got = client.get(f"/api/v1/orders/{resp.json['item_id']}", headers=auth).json
    assert got["delivery_window"] == shown


@pytest.mark.parametrize(("window", "field"), [
    ("evening", ("delivery_window",)),
    ({"from": "12:00", "to": "11:00"}, ("delivery_window",)),
    ({"from": "09:00", "to": "09:20"}, ("delivery_window",)),  # shorter than 30 minutes
    ({"from": "05:30", "to": "09:00"}, ("delivery_window",)),  # before 06:00
    ({"from": "19:00", "to": "21:30"}, ("delivery_window",)),  # after 21:00
    ({"from": "9h", "to": "25:00"}, ("delivery_window", "to")),
    ({"from": "09:00"}, ("delivery_window", "to")),
    ({"from": "09:00", "to": "10:00", "at": "x"}, ("delivery_window", "at")),
    (42, ("delivery_window",)),
])
def test_api_refuses_a_bad_window_per_field(client, auth, window, field):
    resp = client.post("/api/v1/orders", json=order_payload(delivery_window=window), headers=auth)
    assert resp.status_code == 422, resp.json
    errors = resp.json["errors"]["json"]
    for key in field:
        assert key in errors, errors
        errors = errors[key]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder)) == 0


def test_the_window_is_part_of_the_request_digest(client, auth):
    key = {"Idempotency-Key": "req-window-1", **auth}
    payload = order_payload(delivery_window="morning")
    first = client.post("/api/v1/orders", json=payload, headers=key)
    same = client.post("/api/v1/orders", json={**payload, "delivery_window": {"from": "08:00", "to": "12:00"}},
                       headers=key)
    other = client.post("/api/v1/orders", json={**payload, "delivery_window": "afternoon"}, headers=key)
    assert (first.status_code, same.status_code) == (201, 200)
    assert other.status_code == 422 and other.json["error"] == "idempotency_key_reused"
    # without a window, the digest is what it was before windows existed (no key at all)
    plain = order_payload()
    a = client.post("/api/v1/orders", json=plain, headers={"Idempotency-Key": "req-window-2", **auth})
    b = client.post("/api/v1/orders", json={**plain, "delivery_window": None},
                    headers={"Idempotency-Key": "req-window-2", **auth})
    assert (a.status_code, b.status_code) == (201, 200)
    db.session.rollback()
    digest = db.session.scalar(sa.select(DeliveryOrder.request_digest)
                               .where(DeliveryOrder.item_id == a.json["item_id"]))
    from delivery_service.orders.schemas import OrderIn
    from delivery_service.orders.services import request_digest
    without = OrderIn().load(plain)
    assert "delivery_window" not in without and digest == request_digest(without)


def test_import_reads_the_window_column(client, auth):
    from test_imports import by_line, row, to_csv, upload

    columns = ("direction", "dossier_code", "procedure_name", "issuing_agency", "recipient_name",
               "recipient_phone", "province_code", "commune_code", "address_detail", "appointment_date",
               "khung_gio")
    rows = [row(khung_gio="Sáng"), row(khung_gio="chiều"), row(khung_gio="08:00-10:00"), row(khung_gio=""),
            row(khung_gio="tối"), row(khung_gio="10:00-09:00")]
    body = upload(client, auth, to_csv(rows, columns)).json
    results = by_line(body)
    assert [results[n]["status"] for n in range(2, 8)] == ["created"] * 4 + ["error"] * 2, body
    assert set(results[6]["errors"]) == set(results[7]["errors"]) == {"khung_gio"}  # as the file names it
    assert [stored(results[n]["item_id"]) for n in range(2, 6)] == [
        (480, 720), (810, 1020), (480, 600), (None, None)]
    english = to_csv([row(delivery_window="afternoon")], (*columns[:-1], "delivery_window"))
    item = by_line(upload(client, auth, english).json)[2]["item_id"]
    assert stored(item) == (810, 1020)


@pytest.mark.parametrize(("fields", "minutes"), [
    ({"delivery_window": "afternoon"}, (810, 1020)),
    ({"delivery_window": "custom", "window_from": "09:30", "window_to": "11:00"}, (570, 660)),
    ({"delivery_window": "", "window_from": "09:30", "window_to": "11:00"}, (None, None)),  # not chosen
])
def test_counter_form_stores_the_window(client, fields, minutes):
    from conftest import login
    from web_helpers import form_data

    login(client, "counter")
    html = client.get("/counter/orders/new").get_data(as_text=True)
    assert 'id="f-delivery_window"' in html and "Khung giờ giao" in html
    assert 'name="window_from" type="time"' in html
    resp = client.post("/counter/orders/new", data=form_data(client, **fields))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:3000]
    item_id = resp.headers["Location"].rsplit("/", 1)[1]
    assert stored(item_id) == minutes
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    if minutes[0] is not None:
        assert "09:30–11:00" in page or "13:30–17:00" in page


@pytest.mark.parametrize(("fields", "bad"), [
    ({"delivery_window": "custom", "window_from": "11:00", "window_to": "10:00"}, "delivery_window"),
    ({"delivery_window": "custom", "window_from": "", "window_to": "10:00"}, "window_from"),
    ({"delivery_window": "custom", "window_from": "09:00", "window_to": "9 giờ"}, "window_to"),
    ({"delivery_window": "evening"}, "delivery_window"),
])
def test_counter_form_refuses_a_bad_window_on_its_field(client, fields, bad):
    from conftest import login
    from web_helpers import field_error, form_data, order_count

    login(client, "counter")
    resp = client.post("/counter/orders/new", data=form_data(client, recipient_name="Nguyễn Thị Giữ", **fields))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and order_count() == 0
    assert field_error(html, bad), html[:3000]
    assert "Nguyễn Thị Giữ" in html  # what was typed stays
    if fields.get("window_from"):
        assert f'value="{fields["window_from"]}"' in html


# --- the day plan ---------------------------------------------------------------------------------

PLAN = {"PLAN_SECONDS": 0.3, "PLAN_TERRITORY_COST_M": 100_000}


def _plan_orders(window_of: dict[int, object]) -> list[DeliveryOrder]:
    from test_routing_plan import ADDRESSES
    from web_helpers import make_order

    from delivery_service.orders.services import local_today

    today = local_today().isoformat()
    made = []
    for n, (commune, detail) in enumerate(ADDRESSES):
        extra = {"delivery_window": window_of[n]} if n in window_of else {}
        made.append(make_order(address={"province_code": "51", "commune_code": commune, "detail": detail},
                               dossier_code=f"H55.22-WIN-{n:03d}", appointment_date=today, **extra))
    db.session.commit()
    return made


# The shift starts at 11:00 and each stop takes 40 minutes: a courier's third stop is reached after
# 12:20 whatever the distances, so a morning window (ends 12:00) is kept only if the plan puts it early.
@pytest.mark.config(**PLAN, PLAN_SHIFT_START="11:00", PLAN_SERVICE_S=2400)
def test_the_plan_visits_a_morning_stop_in_the_morning(app):
    from test_routing_plan import _actor, _office_id, give_qng02_a_courier

    from delivery_service.orders.services import local_today
    from delivery_service.routing import plan as planning

    give_qng02_a_courier()  # two couriers: each route's three stops stay its own
    orders = _plan_orders({2: "morning", 5: "morning"})  # the last stop of each route's three
    result = planning.build_plan(_actor(), _office_id(), local_today())
    arrivals = {k: v for day in result.proposed for k, v in day.arrivals.items()}
    assert sorted(arrivals) == sorted(o.id for o in orders)
    for o in (orders[2], orders[5]):
        assert 11 * 3600 <= arrivals[o.id] <= 12 * 3600, arrivals
    assert result.totals("proposed")["late"] == 0 and result.late_stops == []
    # a stop without a window may come after 12:00: the windows, not luck, kept these two early
    assert max(arrivals.values()) > 12 * 3600


@pytest.mark.config(**PLAN)
def test_a_window_the_plan_cannot_keep_is_reported_late_on_the_page(app, client):
    from conftest import login
    from test_routing_plan import _actor, _office_id

    from delivery_service.orders.services import local_today
    from delivery_service.routing import plan as planning

    # the shift starts at 07:30: nobody can be there between 06:00 and 07:00
    orders = _plan_orders({1: {"from": "06:00", "to": "07:00"}, 4: "afternoon"})
    result = planning.build_plan(_actor(), _office_id(), local_today())
    late = [(day.route.code, stop) for day, stop in result.late_stops]
    assert [(code, [o.id for o in stop.orders]) for code, stop in late] == [("QNG-01", [orders[1].id])]
    _code, stop = late[0]
    assert stop.window_text == "06:00–07:00" and stop.arrival_s >= 7 * 3600 + 1800 and stop.late_min >= 30
    assert result.totals("proposed")["late"] == 1 and result.totals("current")["late"] == 1
    arrivals = {k: v for day in result.proposed for k, v in day.arrivals.items()}
    assert 13 * 3600 + 1800 <= arrivals[orders[4].id] <= 17 * 3600  # the afternoon one waits for its window
    db.session.rollback()  # end the test's read, as a request would
    login(client, "admin")
    html = client.get(f"/routing/plan/{_office_id()}/{local_today().isoformat()}").get_data(as_text=True)
    assert "Trễ hẹn (1)" in html
    section = html.split('class="data plan-late"', 1)[1].split("</table>", 1)[0]
    assert orders[1].item_id in section and "06:00–07:00" in section and "trễ hẹn" in section
    assert orders[4].item_id not in section
