"""What an outside review of 6 Dec 2026 found using the product as each role: every test here failed on
the code before its fix."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from conftest import login, order_payload
from test_imports import row, to_csv, upload
from web_helpers import field_error, form_data, order_count

# --- a phone number with letters is refused, not read as a keypad's digits ------------------------

KEYPAD = "090abc1234"  # phonenumbers.parse reads it as 0902221234: someone else's phone


@pytest.mark.parametrize("phone", [KEYPAD, "0905 abc 456", "0905-123-4S6"])
def test_the_api_refuses_letters_in_a_phone(client, auth, phone):
    resp = client.post("/api/v1/orders", headers=auth,
                       json=order_payload(recipient={"name": "Nguyễn Văn An", "phone": phone}))
    assert resp.status_code == 422, resp.json
    assert "phone" in resp.json["errors"]["json"]["recipient"]
    assert order_count() == 0


def test_the_counter_form_refuses_letters_in_a_phone(client):
    login(client, "counter")
    resp = client.post("/counter/orders/new", data=form_data(client, recipient_phone=KEYPAD))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and order_count() == 0
    assert field_error(html, "recipient_phone"), html[:2000]


def test_an_import_refuses_letters_in_a_phone_on_that_row(client, auth):
    resp = upload(client, auth, to_csv([row(recipient_phone=KEYPAD), row()]))
    assert resp.status_code in (201, 202), resp.json
    body = client.get(f"/api/v1/imports/{resp.json['id']}", headers=auth).json
    assert (body["created_rows"], body["error_rows"]) == (1, 1), body["results"]
    assert list(body["results"][0]["errors"]) == ["recipient_phone"]


def test_the_written_forms_of_a_number_are_still_read():
    from delivery_service.fields import normalise_phone

    written_forms = ("0905 123 456", "+84 905 123 456", "(0905) 123-456", "0905.123.456", "0905\u00a0123\u00a0456",
                     "'0905123456",  # a spreadsheet's number kept as text
                     "0905\u2013123\u2013456", "0905\u2011123\u2011456",  # dashes a word processor puts in
                     "0905/123/456", "\uff10\uff19\uff10\uff15\uff11\uff12\uff13\uff14\uff15\uff16",  # full-width
                     "\u200b0905123456", "\ufeff0905123456",  # invisible characters copied along
                     "SĐT: 0905123456", "Tel: 0905 123 456")  # a label before the number
    for written in written_forms:
        assert normalise_phone(written) == "0905123456", written


# --- a route's capacity past any courier's day is refused on its field, not a server error -----------

def test_the_coverage_page_refuses_a_capacity_too_large_beside_the_field(client):
    from test_web_routing import coverage_form, coverage_state, text_of

    from delivery_service.extensions import db

    before = coverage_state("QNG-02")
    login(client, "supervisor")
    communes = [str(c) for c in before[0]]
    for too_many in ("99999999999999999999", "100001"):
        resp = client.post("/routes/QNG-02/coverage", data=coverage_form(
            client, "QNG-02", communes=communes, capacity_per_day=too_many))
        html = text_of(resp.get_data(as_text=True))
        assert resp.status_code == 422, html[:2000]
        assert "từ 0 đến 100.000" in html, html[:3000]
        db.session.rollback()
        assert coverage_state("QNG-02") == before
    english = client.post("/routes/QNG-02/coverage?lang=en", data=coverage_form(
        client, "QNG-02", communes=communes, capacity_per_day="100001"))
    assert "from 0 to 100,000" in text_of(english.get_data(as_text=True))
    saved = client.post("/routes/QNG-02/coverage", data=coverage_form(
        client, "QNG-02", communes=communes, capacity_per_day="100000"))
    assert saved.status_code == 303
    assert db.session.scalar(sa.text("SELECT capacity_per_day FROM postal_routes WHERE code = 'QNG-02'")) == 100_000


# --- a database error shows the service's error page, in the reader's language ----------------------

@pytest.mark.config(PROPAGATE_EXCEPTIONS=False)
def test_a_failed_write_shows_the_error_page_not_the_servers_bare_one(app, client):
    from delivery_service.extensions import db
    from delivery_service.orgs.models import PostalRoute

    def broken_write():  # a write the database refuses, as a bug would make one
        route = db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == "QNG-02"))
        route.capacity_per_day = -1  # the table's CHECK refuses it at the flush
        db.session.flush()
        return "not reached"

    app.add_url_rule("/test-broken-write", view_func=broken_write)
    login(client, "supervisor")
    resp = client.get("/test-broken-write")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 500
    assert "Lỗi 500" in html and 'lang="vi"' in html and "Võ Thị Trưởng" in html, html[:2000]  # the layout, the user
    assert client.get("/routes").status_code == 200  # the next request is served as usual


# --- an import's results page: each refused cell's message in the reader's language, about that cell -------

def test_the_import_results_page_explains_a_bad_window_or_weight_in_the_readers_language(client, auth):
    from test_web_routing import text_of

    rows = [row(delivery_window="tối"), row(delivery_window="05:00-07:00"), row(delivery_window="08:00-08:10"),
            row(weight_g="99999"), row(weight_g="nặng"), row(postage_vnd="2000000000")]
    resp = upload(client, auth, to_csv(rows))
    assert resp.status_code in (201, 202), resp.json
    login(client, "counter")
    vi = text_of(client.get(f"/counter/imports/{resp.json['id']}?lang=vi").get_data(as_text=True))
    for shown in ("Ghi “sáng” (08:00–12:00), “chiều” (13:30–17:00) hoặc một khoảng giờ như 08:00-10:00",
                  "Khung giờ giao phải nằm trong khoảng 06:00–21:00.",
                  "Khung giờ giao phải kết thúc ít nhất 30 phút sau khi bắt đầu.",
                  "Nhập khối lượng bằng số gam nguyên, từ 1 đến 30.000.", "Hãy nhập một số nguyên.",
                  "Số tiền phải từ 0 đến 1.000.000.000 đồng."):
        assert shown in vi, (shown, vi[-3000:])
    assert '{"from"' not in vi and "The window" not in vi and "Must be" not in vi
    assert vi.count("Số tiền") == 1  # the weight's messages speak of grams, not of đồng
    en = text_of(client.get(f"/counter/imports/{resp.json['id']}?lang=en").get_data(as_text=True))
    assert "Write “morning” or “sáng” (08:00–12:00)" in en and "Enter the weight in whole grams" in en
    assert "Khung giờ" not in en


# --- the background jobs page names its states and queues in the reader's language --------------------

def test_the_jobs_page_names_states_and_queues_in_the_readers_language(client):
    from test_web_routing import text_of

    login(client, "admin")
    vi = text_of(client.get("/admin/jobs?lang=vi").get_data(as_text=True))
    for shown in ("Đang chờ", "Đang chạy", "Đã xong", "Thất bại", "Có người đang chờ", "Chạy nền"):
        assert shown in vi, shown
    en = text_of(client.get("/admin/jobs?lang=en").get_data(as_text=True))
    assert "Waiting" in en and "Background" in en and "Đang chờ" not in en


# --- a report file asked for a wrong period says what is wrong ---------------------------------------

@pytest.mark.parametrize("path", ["/reports/export.csv", "/reports/export.xlsx", "/reports/orders.csv"])
def test_a_report_file_for_a_wrong_period_says_why(client, path):
    from test_web_routing import text_of

    login(client, "district")
    resp = client.get(f"{path}?start=2026-12-10&end=2026-12-01")
    assert resp.status_code == 400
    page = text_of(resp.get_data(as_text=True))
    assert "10/12/2026" in page and "01/12/2026" in page, page[-1500:]  # the dashboard's own sentence


# --- the API names every mistake of a body in one answer, the address's units included ---------------------

def test_the_api_reports_a_wrong_commune_with_the_other_mistakes(client, auth):
    body = order_payload(address={"province_code": "51", "commune_code": "99999", "detail": "12 Hùng Vương"},
                         appointment_date="2020-12-09")
    body["recipient"]["foo"] = 1
    resp = client.post("/api/v1/orders", headers=auth, json=body)
    assert resp.status_code == 422, resp.json
    errors = resp.json["errors"]["json"]
    assert set(errors) == {"recipient", "appointment_date", "address"}, errors
    assert list(errors["address"]) == ["commune_code"]
    mismatch = order_payload(address={"province_code": "42", "commune_code": "21025", "detail": "12 Hùng Vương"})
    mismatch["extra"] = 1
    errors = client.post("/api/v1/orders", headers=auth, json=mismatch).json["errors"]["json"]
    assert set(errors) == {"extra", "address"}, errors
    # an address given as text, unclear, is named with the rest too
    unclear = order_payload(address={"text": "thôn 3, Cẩm Thành"}, appointment_date="2020-12-09")
    errors = client.post("/api/v1/orders", headers=auth, json=unclear).json["errors"]["json"]
    assert set(errors) == {"appointment_date", "address"} and list(errors["address"]) == ["text"], errors
    assert order_count() == 0


# --- an id past what the database holds is "not found", not a server error ------------------------------

@pytest.mark.parametrize("counter_id", ["99999999999999999999", "-1", "abc"])
def test_an_admins_counter_choice_past_any_id_is_not_found(client, counter_id):
    login(client, "admin")
    for path in ("/counter/labels", "/counter/returns"):
        assert client.get(f"{path}?counter_id={counter_id}").status_code == 404, path


def test_a_day_out_of_the_services_range_is_explained_as_a_date(client):
    from conftest import csrf_token
    from test_web_routing import text_of

    login(client, "counter")
    resp = client.post("/counter/totals", data={"csrf_token": csrf_token(client, "/counter/totals"),
                                                "day": "01/12/2205", "results_total": "5"})
    page = text_of(resp.get_data(as_text=True))
    assert resp.status_code == 422 and "Must be" not in page, page[-2000:]
    from delivery_service.fields import EARLIEST, LATEST  # the bounds, as the pages write dates
    assert f"Hãy nhập ngày từ {EARLIEST:%d/%m/%Y} đến {LATEST:%d/%m/%Y}" in page, page[-2000:]


# --- a courier's delivery needs its proof, through every door ----------------------------------------

def test_a_courier_cannot_deliver_without_proof_through_the_general_events_api(client, auth):
    from conftest import csrf_token

    from delivery_service.extensions import db
    from delivery_service.orders.models import DeliveryOrder

    item = client.post("/api/v1/orders", headers=auth, json=order_payload()).json["item_id"]
    login(client, "courier")
    headers = {"X-CSRFToken": csrf_token(client, "/courier/")}
    for status in ("handed_to_courier", "out_for_delivery"):  # no proof needed: still here
        assert client.post(f"/api/v1/orders/{item}/events", headers=headers, json={"status": status}).status_code == 201
    for status in ("delivered", "failed_attempt", "picked_up"):
        resp = client.post(f"/api/v1/orders/{item}/events", headers=headers, json={"status": status})
        assert resp.status_code == 403 and "/api/v1/courier/sync" in resp.json["message"], resp.json
    assert db.session.scalar(sa.select(DeliveryOrder.status).where(DeliveryOrder.item_id == item)).value \
        == "out_for_delivery"


def test_a_failed_attempts_reason_is_a_listed_one_and_the_tracking_page_names_only_those(client, auth):
    login(client, "admin")  # an administrator may set any status, with a listed reason only
    from conftest import csrf_token

    headers = {"X-CSRFToken": csrf_token(client, "/counter/")}
    item = client.post("/api/v1/orders", headers=auth, json=order_payload()).json["item_id"]
    for status in ("handed_to_courier", "out_for_delivery"):
        assert client.post(f"/api/v1/orders/{item}/events", headers=headers, json={"status": status}).status_code == 201
    free = client.post(f"/api/v1/orders/{item}/events", headers=headers,
                       json={"status": "failed_attempt", "reason": "<b>Khách hàng chửi bới</b>"})
    assert free.status_code == 422 and "reason" in free.json["errors"]["json"], free.json
    # a reason stored before this rule (any text) is not shown to whoever has the item id
    from delivery_service import rules
    from delivery_service.orders.models import OrderEvent
    from delivery_service.orders.status import Status
    from delivery_service.tracking.services import _event

    listed = rules.current().reasons[0]["code"]
    for reason, shown in (("<b>Khách hàng chửi bới</b>", None), (listed, listed)):
        event = OrderEvent(status_from=Status.OUT_FOR_DELIVERY, status_to=Status.FAILED_ATTEMPT, reason=reason,
                           server_time=dt.datetime.now(dt.UTC))
        assert _event(event).reason == shown



# --- a list left on "— Choose —" asks to choose, not to type ------------------------------------------

def test_a_list_left_unchosen_asks_to_choose_one(client):
    login(client, "counter")
    before = order_count()
    resp = client.post("/counter/orders/new", data=form_data(client, commune_code="", recipient_name=""))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and order_count() == before
    assert field_error(html, "commune_code") == "Vui lòng chọn một mục trong danh sách."
    assert field_error(html, "recipient_name") == "Vui lòng nhập mục này."  # a box to type in
    resp = client.post("/counter/orders/new?lang=en", data=form_data(client, commune_code=""))
    assert field_error(resp.get_data(as_text=True), "commune_code") == "Choose one from the list."
