"""The counter desk: today's orders, the scanner search, the new-order form and the order page."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login
from web_helpers import HTI, field_error, field_value, form_data, make_order, make_user, order_count

from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, Exemption


def test_desk_lists_only_the_counters_own_orders(client):
    own = make_order(recipient={"name": "Trần Văn Quầy", "phone": "0905111222"})
    other = make_order("HTI-DUCTHO", address=HTI, recipient={"name": "Lê Thị Hà Tĩnh", "phone": "0912000111"})
    login(client, "counter")
    html = client.get("/counter").get_data(as_text=True)
    assert own.item_id in html and "Trần Văn Quầy" in html and "Phường Cẩm Thành" in html
    assert "Đã phân tuyến" in html and own.dossier_code in html
    assert other.item_id not in html and "Lê Thị Hà Tĩnh" not in html
    assert client.get(f"/counter/orders/{other.item_id}").status_code == 404
    assert client.get(f"/counter/orders/{own.item_id}").status_code == 200


def test_staff_of_another_counter_see_their_orders_and_not_ours(client):
    own = make_order()
    other = make_order("HTI-DUCTHO", address=HTI)
    make_user("ductho")
    login(client, "ductho")
    html = client.get("/counter").get_data(as_text=True)
    assert other.item_id in html and own.item_id not in html
    assert client.get(f"/counter/orders/{own.item_id}").status_code == 404
    resp = client.get(f"/counter/search?q={own.item_id}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and f"/counter/orders/{own.item_id}" not in html
    assert "Không có đơn nào phù hợp" in html


def test_empty_desk_says_so(client):
    login(client, "counter")
    html = client.get("/counter").get_data(as_text=True)
    assert "Hôm nay chưa có đơn nào" in html
    assert 'id="q" name="q"' in html and "autofocus" in html


def test_new_order_form_offers_defaults(client):
    login(client, "counter")
    html = client.get("/counter/orders/new").get_data(as_text=True)
    tomorrow = (dt.date.today() + dt.timedelta(days=1)).isoformat()
    assert field_value(html, "appointment_date") in {
        tomorrow, (dt.date.today() + dt.timedelta(days=2)).isoformat()}  # the service's date is in Vietnam
    assert '<option value="51" data-id=' in html and 'selected>Tỉnh Quảng Ngãi' in html.replace("\n", "")
    assert '<option value="21025" data-id=' in html  # the communes of the counter's province
    assert "Người hoạt động cách mạng trước ngày 01/01/1945" in html
    assert "Trả kết quả" in html and "Gửi hồ sơ và nhận kết quả" in html
    assert 'type="module"' in html and "units.js" in html


def test_create_order_through_the_form(client):
    login(client, "counter")
    before = order_count()
    resp = client.post("/counter/orders/new", data=form_data(
        client, authorised_name="Nguyễn Văn Nhận", authorised_phone="+84 912 345 678",
        exemption="war_invalid", recipient_id_number="051 123 456 789"))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    assert order_count() == before + 1
    order = db.session.scalar(sa.select(DeliveryOrder).order_by(DeliveryOrder.id.desc()))
    assert resp.headers["Location"] == f"/counter/orders/{order.item_id}"
    assert order.recipient_phone == "0905123456" and order.postage_vnd == 26000
    assert order.exemption is Exemption.WAR_INVALID and order.postage_due_vnd == 13000
    assert order.authorised_name == "Nguyễn Văn Nhận" and order.authorised_phone == "0912345678"
    assert order.recipient_id_number == "051123456789"
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert f"Đã tạo đơn {order.item_id}." in page
    assert 'class="item-id-large">' + order.item_id in page
    assert "Nguyễn Văn Nhận" in page and "Thương binh" in page and "13.000 ₫" in page


def test_invalid_form_comes_back_with_messages_and_nothing_is_stored(client):
    login(client, "counter")
    before = order_count()
    yesterday = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    resp = client.post("/counter/orders/new", data=form_data(
        client, recipient_phone="12345", commune_code="18229", appointment_date=yesterday,
        recipient_name="Nguyễn Thị Giữ Lại"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert order_count() == before
    assert field_error(html, "recipient_phone") == "Số điện thoại Việt Nam không hợp lệ."
    assert field_error(html, "appointment_date") == "Ngày hẹn trả đã qua."
    assert "không thuộc tỉnh / thành phố đã chọn" in field_error(html, "commune_code")
    assert field_value(html, "recipient_name") == "Nguyễn Thị Giữ Lại"
    assert field_value(html, "recipient_phone") == "12345"
    assert field_value(html, "appointment_date") == yesterday
    assert '<option value="18229" selected>' in html  # the typed commune is still chosen
    assert "Chưa tạo được đơn: hãy sửa 3 mục" in html


def test_commune_outside_the_province_alone_is_refused_by_the_service(client):
    login(client, "counter")
    before = order_count()
    resp = client.post("/counter/orders/new", data=form_data(client, commune_code="18229"))
    assert resp.status_code == 422
    assert "18229" in field_error(resp.get_data(as_text=True), "commune_code")
    assert order_count() == before


def test_missing_required_fields_are_named(client):
    login(client, "counter")
    resp = client.post("/counter/orders/new", data=form_data(
        client, dossier_code="", recipient_name="  ", address_detail="", appointment_date="",
        postage_vnd="hai mươi"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    for name in ("dossier_code", "recipient_name", "address_detail"):
        assert field_error(html, name) == "Vui lòng nhập mục này.", name
    assert field_error(html, "appointment_date") == "Bắt buộc khi trả kết quả."
    assert field_error(html, "postage_vnd") == "Hãy nhập số tiền nguyên (đồng)."


@pytest.mark.parametrize("typed", ["-5", "-26.000", "− 1", "2.000.000.000", "99999999999999999"])
def test_postage_out_of_range_says_the_range_not_whole_number(client, typed):
    login(client, "counter")
    before = order_count()
    resp = client.post("/counter/orders/new", data=form_data(client, postage_vnd=typed))
    assert resp.status_code == 422
    assert field_error(resp.get_data(as_text=True), "postage_vnd") == "Số tiền phải từ 0 đến 1.000.000.000 đồng."
    assert order_count() == before


def test_the_weight_is_taken_from_the_form_and_checked_in_grams(client):
    login(client, "counter")
    before = order_count()
    for typed in ("0", "30001", "1,5kg"):
        resp = client.post("/counter/orders/new", data=form_data(client, weight_g=typed))
        assert resp.status_code == 422
        assert field_error(resp.get_data(as_text=True), "weight_g") == (
            "Nhập khối lượng bằng số gam nguyên, từ 1 đến 30.000.")
    assert order_count() == before
    resp = client.post("/counter/orders/new", data=form_data(client, weight_g="1.250"))
    assert resp.status_code == 303
    db.session.rollback()
    assert db.session.scalar(sa.select(DeliveryOrder.weight_g).order_by(DeliveryOrder.id.desc()).limit(1)) == 1250


def test_authorised_person_needs_a_name_when_any_of_it_is_given(client):
    login(client, "counter")
    resp = client.post("/counter/orders/new", data=form_data(client, authorised_phone="0912345678"))
    assert resp.status_code == 422
    assert field_error(resp.get_data(as_text=True), "authorised_name") == "Vui lòng nhập mục này."


def test_same_dossier_twice_opens_the_existing_order(client):
    login(client, "counter")
    first = client.post("/counter/orders/new", data=form_data(client, dossier_code="H55-DUP-1"))
    again = client.post("/counter/orders/new", data=form_data(client, dossier_code="H55-DUP-1"))
    assert again.status_code == 303 and again.headers["Location"] == first.headers["Location"]
    assert "Không tạo thêm đơn mới" in client.get(again.headers["Location"]).get_data(as_text=True)


def test_admin_chooses_the_counter(client):
    login(client, "admin")
    html = client.get("/counter/orders/new").get_data(as_text=True)
    assert 'name="counter_id"' in html and "HTI-DUCTHO" in html
    before = order_count()
    resp = client.post("/counter/orders/new",
                       data=form_data(client, province_code="42", commune_code="18229"))
    assert resp.status_code == 422 and order_count() == before
    assert field_error(resp.get_data(as_text=True), "counter_id") == "Hãy chọn quầy tiếp nhận đơn này."
    hti = db.session.scalar(sa.text("SELECT id FROM counters WHERE code = 'HTI-DUCTHO'"))
    resp = client.post("/counter/orders/new", data=form_data(
        client, counter_id=str(hti), province_code="42", commune_code="18229"))
    assert resp.status_code == 303
    order = db.session.scalar(sa.select(DeliveryOrder).order_by(DeliveryOrder.id.desc()))
    assert order.counter_id == hti


def test_scanned_item_id_opens_the_order(client):
    order = make_order()
    login(client, "counter")
    for typed in (order.item_id, order.item_id.lower(), f" {order.item_id[:2]} {order.item_id[2:]} "):
        resp = client.get(f"/counter/search?q={quote(typed)}")
        assert resp.status_code == 303, typed
        assert resp.headers["Location"] == f"/counter/orders/{order.item_id}"


def test_search_finds_by_dossier_code_and_phone(client):
    order = make_order(recipient={"name": "Phạm Văn Tìm", "phone": "0987654321"})
    make_order(recipient={"name": "Người Khác", "phone": "0905999888"})
    login(client, "counter")
    for query in (order.dossier_code, "0987 654 321"):
        html = client.get(f"/counter/search?q={quote(query)}").get_data(as_text=True)
        assert order.item_id in html and "Người Khác" not in html, query


def test_name_typed_in_nfd_finds_the_order_stored_in_nfc(client):
    order = make_order(recipient={"name": "Nguyễn Thị Hoa", "phone": "0905123456"})
    login(client, "counter")
    typed = unicodedata.normalize("NFD", "nguyễn thị hoa")
    assert typed != unicodedata.normalize("NFC", typed)
    html = client.get(f"/counter/search?q={quote(typed)}").get_data(as_text=True)
    assert order.item_id in html


def test_search_without_matches_says_so(client):
    login(client, "counter")
    html = client.get("/counter/search?q=RH999999995VN").get_data(as_text=True)
    assert "Không có đơn nào phù hợp" in html


def test_order_page_shows_every_field_and_the_history(client):
    order = make_order(note="Gọi trước khi phát", collect_vnd=50000)
    login(client, "counter")
    resp = client.get(f"/counter/orders/{order.item_id.lower()}", follow_redirects=True)
    html = resp.get_data(as_text=True)
    for text in (order.item_id, order.dossier_code, "Cấp đổi giấy phép lái xe", "Sở Xây dựng tỉnh Quảng Ngãi",
                 "Nguyễn Thị Hoa", "0905123456", "12 Hùng Vương", "Phường Cẩm Thành", "Tỉnh Quảng Ngãi",
                 "26.000 ₫", "50.000 ₫", "Người dân", "Không miễn, giảm", "Gọi trước khi phát",
                 "QNG-TTHCC", "QNG-01", "Lịch sử xử lý", "Hệ thống (tự động)", "Trả kết quả",
                 order.due_date.strftime("%d/%m/%Y")):
        assert text in html, text


def test_csrf_token_and_login_helpers_work_on_the_form(client):
    login(client, "counter")
    assert csrf_token(client, "/counter/orders/new")


def test_after_a_scan_the_search_box_is_empty_and_focused_for_the_next_one(client):
    order = make_order()
    login(client, "counter")
    for path in (f"/counter/orders/{order.item_id}", "/counter/search?q=RH999999995VN"):
        html = client.get(path).get_data(as_text=True)
        box = re.search(r'<input id="q" name="q"[^>]*>', html).group(0)
        assert 'value=""' in box and "autofocus" in box, path
