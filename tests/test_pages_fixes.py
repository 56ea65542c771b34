"""Defects of the counter, report and admin pages found by an exploratory test (December 2026): a share
above 100 % rated "Tốt", searches by phone or name in the address, no cancel on the order page,
untranslated labels, a dossier sent again whose different data was silently dropped, an appointment
date kept for dossiers taken to the agency, and smaller ones."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import unicodedata

import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login
from PIL import Image
from test_courier_api import courier, delivered_with_proof  # noqa: F401  (courier: a fixture)
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_imports import row, to_csv, upload
from test_reports import ADMIN, WEEK, book  # noqa: F401  (book: the data set's fixture)
from test_reports_dashboard import rows_by_code
from web_helpers import field_error, field_value, form_data, make_order, make_user, order_count

from delivery_service.accounts.models import AuditEvent, User
from delivery_service.accounts.services import SYSTEM
from delivery_service.admin import user_services
from delivery_service.courier.models import ProofFile
from delivery_service.extensions import db
from delivery_service.imports.services import ADDRESS_HINT
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Direction, Status
from delivery_service.reports.figures import Level, figures
from delivery_service.reports.models import CounterDailyTotal
from delivery_service.web import views as web_views


def _order(item_id: str) -> DeliveryOrder:
    db.session.expire_all()
    return db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item_id))


# --- 1. a share sent by post above 100 % -----------------------------------------------------------

def test_a_share_above_100_percent_is_flagged_with_its_figures_never_rated(client, book):  # noqa: F811
    # 7 results of the week went by post from QNG-TTHCC (test_reports); the counter reported 3.
    db.session.add(CounterDailyTotal(counter_id=book.counter.id, day=dt.date(2026, 3, 3), results_total=3))
    db.session.commit()
    row_ = {r.code: r for r in figures(ADMIN, *WEEK, Level.COUNTER).rows}["QNG-TTHCC"]
    assert (row_.received_results, row_.results_total) == (7, 3)
    assert row_.share_inconsistent and row_.post_share is None  # no share, hence no band anywhere

    login(client, "district")
    html = client.get("/reports/?start=2026-03-02&end=2026-03-08&level=counter").get_data(as_text=True)
    rows = rows_by_code(html)
    share = rows["QNG-TTHCC"]["cells"][-1]
    assert share.startswith("> 100%") and "kiểm tra tổng số hồ sơ của quầy" in share
    assert "7 kết quả gửi qua bưu chính" in share and "quầy báo tổng 3" in share
    assert "Tốt" not in share and "233" not in share
    assert "band" not in rows["QNG-TTHCC"]["classes"][-1]
    assert "Tốt" not in rows["total"]["cells"][-1]


def test_a_consistent_share_keeps_its_rate_and_band(client, book):  # noqa: F811
    db.session.add(CounterDailyTotal(counter_id=book.counter.id, day=dt.date(2026, 3, 3), results_total=20))
    db.session.commit()
    login(client, "district")
    rows = rows_by_code(client.get("/reports/?start=2026-03-02&end=2026-03-08&level=counter")
                        .get_data(as_text=True))
    assert rows["QNG-TTHCC"]["cells"][-1] == "35,0% Khá"


# --- 3. searches by phone or name stay out of the address --------------------------------------------

def test_the_search_box_posts_and_the_results_of_a_phone_search_have_no_address(client):
    order = make_order(recipient={"name": "Phạm Văn Tìm", "phone": "0987654321"})
    login(client, "counter")
    desk = client.get("/counter").get_data(as_text=True)
    form = re.search(r'<form class="search"[^>]*>', desk).group(0)
    assert 'method="post"' in form and 'action="/counter/search"' in form
    token = csrf_token(client, "/counter")

    resp = client.post("/counter/search", data={"csrf_token": token, "q": "0987 654 321"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Location" not in resp.headers
    assert order.item_id in html
    assert not re.search(r'href="[^"]*(0987|Ph%E1|Tìm)', html)  # no link carries what was typed

    # a scanned item id still opens its order at once (an item id in the address is fine)
    resp = client.post("/counter/search", data={"csrf_token": token, "q": order.item_id.lower()})
    assert resp.status_code == 303 and resp.headers["Location"] == f"/counter/orders/{order.item_id}"
    # without the form's token nothing is searched
    assert client.post("/counter/search", data={"q": "0987654321"}).status_code == 400


def test_search_pages_are_posted_too(client, monkeypatch):
    monkeypatch.setattr(web_views, "SEARCH_PAGE_SIZE", 1)
    first = make_order(recipient={"name": "Lê Thị Trang", "phone": "0905111001"})
    second = make_order(recipient={"name": "Lê Thị Trang", "phone": "0905111002"})
    login(client, "counter")
    token = csrf_token(client, "/counter")
    html = client.post("/counter/search", data={"csrf_token": token, "q": "le thi trang"}).get_data(as_text=True)
    assert "?q=" not in html and "Trang&" not in html
    nav = re.search(r'<nav class="actions".*?</nav>', html, re.S).group(0)
    assert 'method="post"' in nav and 'name="page" value="2"' in nav and 'value="le thi trang"' in nav
    page2 = client.post("/counter/search", data={"csrf_token": token, "q": "le thi trang", "page": "2"})
    shown = {first.item_id, second.item_id} & set(re.findall(r"RH\d{9}VN", page2.get_data(as_text=True)))
    assert len(shown) == 1 and shown != {o for o in (first.item_id, second.item_id) if o in html}


# --- 2. cancelling on the order page ------------------------------------------------------------------

def test_counter_staff_cancel_an_order_on_its_page_with_a_reason(client):
    order = make_order()
    login(client, "counter")
    page = f"/counter/orders/{order.item_id}"
    html = client.get(page).get_data(as_text=True)
    assert f'action="/counter/orders/{order.item_id}/cancel"' in html and "Hủy đơn này…" in html
    token = csrf_token(client, page)

    refused = client.post(f"{page}/cancel", data={"csrf_token": token, "note": "   "})
    assert refused.status_code == 422
    assert "Hãy ghi lý do hủy đơn." in refused.get_data(as_text=True)
    assert _order(order.item_id).status is not Status.CANCELLED
    assert client.post(f"{page}/cancel", data={"note": "x"}).status_code == 400  # no CSRF token

    resp = client.post(f"{page}/cancel", data={"csrf_token": token, "note": "Công dân đến nhận trực tiếp"})
    assert resp.status_code == 303 and resp.headers["Location"] == page
    assert _order(order.item_id).status is Status.CANCELLED
    html = client.get(page).get_data(as_text=True)
    assert f"Đã hủy đơn {order.item_id}." in html and "badge-bad\">Đã hủy" in html.replace("badge badge-", "badge-")
    assert "Công dân đến nhận trực tiếp" in html  # the reason, in the history
    assert f"{order.item_id}/cancel" not in html and "print-form" not in html  # nothing to cancel, no label
    assert "In biên nhận (đơn đã hủy)" in html

    again = client.post(f"{page}/cancel", data={"csrf_token": token, "note": "lần nữa"}, follow_redirects=True)
    assert "Không hủy được đơn" in again.get_data(as_text=True)


def test_an_order_with_a_courier_offers_no_cancel_and_refuses_one(client):
    order = make_order()
    change_status(SYSTEM, order.item_id, Status.HANDED_TO_COURIER)
    login(client, "counter")
    page = f"/counter/orders/{order.item_id}"
    html = client.get(page).get_data(as_text=True)
    assert f"{order.item_id}/cancel" not in html
    resp = client.post(f"{page}/cancel", data={"csrf_token": csrf_token(client, page), "note": "thử"},
                       follow_redirects=True)
    assert "Không hủy được đơn" in resp.get_data(as_text=True)
    assert _order(order.item_id).status is Status.HANDED_TO_COURIER


def test_another_counter_cannot_cancel(client):
    order = make_order()
    make_user("ductho")
    login(client, "ductho")
    token = csrf_token(client, "/counter")
    resp = client.post(f"/counter/orders/{order.item_id}/cancel", data={"csrf_token": token, "note": "x"})
    assert resp.status_code == 404 and _order(order.item_id).status is not Status.CANCELLED


# --- 5. labels of the order form in the catalog ---------------------------------------------------------

def test_the_order_form_speaks_one_language_at_a_time(client):
    login(client, "counter")
    vi = client.get("/counter/orders/new").get_data(as_text=True)
    for text in ("Khung giờ giao", "Từ giờ", "Dán địa chỉ", ">Điền<", "Không hẹn giờ",
                 'data-sure="Đã điền tỉnh, xã và địa chỉ chi tiết từ dòng đã dán: hãy kiểm tra lại."'):
        assert text in vi, text
    for text in ("Delivery window", "/ From", "Paste an address", "Fill in", "No window", "could not be reached",
                 "Former address"):
        assert text not in vi, text
    en = client.get("/counter/orders/new?lang=en").get_data(as_text=True)
    for text in ("Delivery window", "From (time)", "Paste an address", ">Fill in<", "No window",
                 'data-failed="The address reader could not be reached: choose by hand."'):
        assert text in en, text
    assert "Khung giờ giao" not in en and "Dán địa chỉ" not in en

    client.get("/counter?lang=vi")
    resp = client.post("/counter/orders/new", data=form_data(client, delivery_window="custom",
                                                             window_from="25:99", window_to="10:00"))
    assert field_error(resp.get_data(as_text=True), "window_from") == "Nhập giờ dạng HH:MM."


# --- 4. a dossier sent again with other data ------------------------------------------------------------

def test_a_dossier_sent_again_with_other_data_says_what_was_not_saved(client):
    login(client, "counter")
    first = client.post("/counter/orders/new", data=form_data(client, dossier_code="H55-AGAIN-1"))
    assert first.status_code == 303
    before = order_count()
    same = client.post("/counter/orders/new", data=form_data(client, dossier_code="H55-AGAIN-1"),
                       follow_redirects=True).get_data(as_text=True)
    assert "Hồ sơ này đã có đơn" in same and "KHÔNG được lưu" not in same

    other = client.post("/counter/orders/new", data=form_data(
        client, dossier_code="H55-AGAIN-1", recipient_name="Trần Văn Khác", recipient_phone="0912 000 111",
        address_detail="99 Quang Trung"), follow_redirects=True).get_data(as_text=True)
    assert order_count() == before
    message = re.search(r'<p class="flash flash-error"[^>]*>([^<]*)</p>', other).group(1)
    assert "KHÔNG được lưu" in message
    assert "Họ và tên, Số điện thoại, Địa chỉ" in message and "Tên thủ tục" not in message
    stored = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.dossier_code == "H55-AGAIN-1"))
    assert stored.recipient_name == "Nguyễn Thị Hoa"


# --- 6. no appointment date for a dossier taken to the agency ----------------------------------------

def test_a_dossier_to_the_agency_keeps_no_appointment_date(client):
    login(client, "counter")
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    resp = client.post("/counter/orders/new", data=form_data(
        client, dossier_code="H55-DOSSIER-1", direction="dossier_to_agency", appointment_date=tomorrow))
    assert resp.status_code == 303
    stored = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.dossier_code == "H55-DOSSIER-1"))
    assert stored.direction is Direction.DOSSIER_TO_AGENCY and stored.appointment_date is None
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Ngày hẹn trả kết quả</dt><dd>—" in html.replace("\n", "") or "—</dd>" in html

    # a result keeps its date, and a refused dossier form shows none
    both = client.post("/counter/orders/new", data=form_data(
        client, dossier_code="H55-BOTH-1", direction="both", appointment_date=tomorrow))
    assert both.status_code == 303
    assert db.session.scalar(sa.select(DeliveryOrder.appointment_date).where(
        DeliveryOrder.dossier_code == "H55-BOTH-1")) == dt.date.fromisoformat(tomorrow)
    refused = client.post("/counter/orders/new", data=form_data(
        client, direction="dossier_to_agency", appointment_date=tomorrow, recipient_phone="12"))
    assert refused.status_code == 422 and field_value(refused.get_data(as_text=True), "appointment_date") == ""


# --- 7. smaller ones ---------------------------------------------------------------------------------

def test_a_long_name_typed_in_nfd_is_not_cut_by_the_browser_and_stored_whole(client):
    login(client, "counter")
    name = ("Nguyễn Thị Hồng Nhung " * 9)[:190].strip()
    typed = unicodedata.normalize("NFD", name)
    html = client.get("/counter/orders/new").get_data(as_text=True)
    maxlength = int(re.search(r'id="f-recipient_name"[^>]*maxlength="(\d+)"', html).group(1))
    assert len(typed) > 200 and maxlength >= len(typed)  # the browser lets it all through
    resp = client.post("/counter/orders/new", data=form_data(client, dossier_code="H55-NFD-1", recipient_name=typed))
    assert resp.status_code == 303
    stored = db.session.scalar(sa.select(DeliveryOrder.recipient_name).where(
        DeliveryOrder.dossier_code == "H55-NFD-1"))
    assert stored == unicodedata.normalize("NFC", name)
    too_long = client.post("/counter/orders/new", data=form_data(client, recipient_name="a" * 201))
    assert field_error(too_long.get_data(as_text=True), "recipient_name") == "Tối đa 200 ký tự."


def test_a_wrong_direction_lists_the_accepted_values(client, app):
    login(client, "counter")
    resp = client.post("/counter/orders/new", data=form_data(client, direction="sideways"))
    message = field_error(resp.get_data(as_text=True), "direction")
    assert message.startswith("Hãy chọn một trong các giá trị: Trả kết quả; Gửi hồ sơ;"), message
    from delivery_service.web.messages import translate_message

    with app.test_request_context("/?lang=vi"):
        assert translate_message("Must be one of: result_to_citizen, dossier_to_agency, both.") == (
            "Hãy chọn một trong các giá trị: result_to_citizen, dossier_to_agency, both.")
        # an import's missing address columns and the one-column hint (it was appended to the first,
        # which then matched no pattern and stayed English)
        assert translate_message("Missing required columns: commune_code.") == (
            "Thiếu các cột bắt buộc: commune_code.")
        assert translate_message(ADDRESS_HINT) == "Hoặc ghi địa chỉ trong một cột: address_text / dia_chi_day_du."


def test_unlock_is_offered_only_for_a_locked_account_and_a_no_op_is_not_audited(client):
    login(client, "admin")
    user = db.session.scalar(sa.select(User).where(User.username == "counter"))
    assert not user_services.is_locked(user)
    html = client.get(f"/admin/users/{user.id}").get_data(as_text=True)
    assert 'id="unlock"' not in html
    token = csrf_token(client, f"/admin/users/{user.id}")
    resp = client.post(f"/admin/users/{user.id}/unlock", data={"csrf_token": token}, follow_redirects=True)
    assert "không bị khóa đăng nhập" in resp.get_data(as_text=True)
    assert not db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "user.unlock")).all()


def test_an_import_row_with_an_impossible_date_gets_that_error_only(client, auth):
    resp = upload(client, auth, to_csv([row(appointment_date="31/02/2030")]))
    assert resp.status_code == 202, resp.json
    (result,) = resp.json["results"]
    assert result["errors"] == {"appointment_date": ["Not a valid date."]}


def test_the_proof_signature_fits_the_order_page_at_360_px(app, client, auth, courier, live_server,  # noqa: F811
                                                           browser):  # noqa: F811
    body, _ev, _photo, _sign = delivered_with_proof(client, auth, courier)
    wide = io.BytesIO()
    Image.new("RGB", (640, 240), "white").save(wide, "PNG")  # a signature pad's size, wider than a phone
    png = wide.getvalue()
    db.session.execute(sa.update(ProofFile).values(content=png, mime="image/png", size=len(png),
                                                   sha256=hashlib.sha256(png).hexdigest()))
    db.session.commit()
    db.session.remove()
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="vi-VN")
    try:
        page = context.new_page()
        page.goto(live_server + "/login")
        page.fill("#username", "counter")
        page.fill("#password", DEMO_PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        page.goto(f"{live_server}/counter/orders/{body['item_id']}", wait_until="load")
        # loaded lazily: load and decode them now (a function, not a polled string: the CSP has no eval)
        page.evaluate("""() => Promise.all([...document.querySelectorAll('.proof-file img')]
                                  .map((i) => { i.loading = 'eager'; return i.decode(); }))""")
        images = page.evaluate("""() => [...document.querySelectorAll('.proof-file img')].map((i) => {
            const card = i.closest('.card').getBoundingClientRect(), box = i.getBoundingClientRect();
            return [box.left >= card.left, box.right <= card.right, box.width > 100, i.complete && i.naturalWidth];
        })""")
        assert len(images) == 2 and all(image[:3] == [True, True, True] and image[3] == 640 for image in images)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    finally:
        context.close()
