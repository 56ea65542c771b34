"""The counter desk corrects an order's address on the order's page (orders.services.change_address, as
``PUT /api/v1/orders/<item_id>/address``): the form with the new-order form's address fields, prefilled;
the order placed again and the route it is on now said after the redirect; the correction in the
history; refusals (a status that no longer allows it, another counter's order, no CSRF token, bad
input) change nothing."""

from __future__ import annotations

import re
import unicodedata

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_pages_browser import CSP_LISTENER, INLINE_CODE, WIDTH, Watch, _log_in
from test_routing import uncovered_commune
from web_helpers import HTI, field_error, field_value, make_order, make_user

from delivery_service.accounts.services import SYSTEM
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status
from delivery_service.printing import services as printing


def _order(item_id: str) -> DeliveryOrder:
    db.session.expire_all()
    return db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item_id))


def _state(item_id: str) -> tuple:
    """What a correction changes: the address, the route, the status, the events."""
    order = _order(item_id)
    events = db.session.scalar(sa.select(sa.func.count()).select_from(OrderEvent)
                               .where(OrderEvent.order_id == order.id))
    return (order.province_id, order.district_id, order.commune_id, order.address_detail, order.route_id,
            order.run_date, order.dispatch, order.status, events)


def _flash(html: str) -> str:
    return " ".join(re.findall(r'<p class="flash flash-\w+" role="status">([^<]*)</p>', html))


def _form(client, item_id: str, **changes: str) -> dict[str, str]:
    data = {"csrf_token": csrf_token(client, f"/counter/orders/{item_id}"), "province_code": "51",
            "district_code": "", "commune_code": "21172", "address_detail": "Tổ 3, đường Trương Quang Trọng",
            "note": "Công dân gọi điện báo chuyển nhà"}
    data.update(changes)
    return data


def test_counter_staff_correct_the_address_and_the_order_moves_to_the_route_covering_it(client):
    order = make_order()
    assert _order(order.item_id).route.code == "QNG-01"
    login(client, "counter")
    page = f"/counter/orders/{order.item_id}"
    html = client.get(page).get_data(as_text=True)
    assert f'href="{page}/address"' in html and ">Sửa địa chỉ</a>" in html

    form = client.get(f"{page}/address")
    html = form.get_data(as_text=True)
    assert form.status_code == 200
    assert "Sửa địa chỉ đơn " + order.item_id in html and "Địa chỉ hiện tại" in html
    # the new-order form's fields, prefilled with the order's address
    assert 'data-units data-units-url="/api/v1/units"' in html and "data-address-paste" in html
    assert re.search(r'<option value="51" data-id="\d+" selected>', html)
    assert re.search(r'<option value="21025" data-id="\d+" selected>Phường Cẩm Thành', html)
    assert field_value(html, "address_detail") == "12 Hùng Vương" and field_value(html, "note") == ""
    assert "Lý do sửa địa chỉ" in html and "units.js" in html and "address-paste.js" in html

    resp = client.post(f"{page}/address", data=_form(client, order.item_id))
    assert resp.status_code == 303 and resp.headers["Location"] == page
    changed = _order(order.item_id)
    assert (changed.commune_id, changed.address_detail) != (order.commune_id, order.address_detail)
    assert changed.address_detail == "Tổ 3, đường Trương Quang Trọng" and changed.route.code == "QNG-02"
    assert changed.status is Status.ASSIGNED

    html = client.get(page).get_data(as_text=True)
    assert _flash(html) == (f"Đã sửa địa chỉ đơn {order.item_id}. Đơn hiện thuộc tuyến phát QNG-02 · "
                            f"{changed.route.name}.")
    assert "Phường Trương Quang Trọng" in html and "Tổ 3, đường Trương Quang Trọng" in html
    assert "Đã sửa địa chỉ · Công dân gọi điện báo chuyển nhà" in html  # the history, with the reason
    assert "Trần Thị Quầy" in html.split("Đã sửa địa chỉ ·")[0].rsplit("<tr>", 1)[1]  # by whom
    english = client.get(page + "?lang=en").get_data(as_text=True)
    assert "Address changed · Công dân gọi điện báo chuyển nhà" in english and "Đã sửa địa chỉ" not in english


def test_an_address_no_route_covers_leaves_the_order_waiting_for_dispatch(client):
    order = make_order()
    printing.print_label(SYSTEM, order.item_id)
    db.session.commit()
    unit = uncovered_commune()
    login(client, "counter")
    page = f"/counter/orders/{order.item_id}"
    resp = client.post(f"{page}/address", data=_form(client, order.item_id, commune_code=unit.code, note=""),
                       follow_redirects=True)
    html = resp.get_data(as_text=True)
    changed = _order(order.item_id)
    assert changed.commune_id == unit.id and changed.route_id is None and changed.status is Status.CREATED
    assert _flash(html) == (f"Đã sửa địa chỉ đơn {order.item_id}. Chưa có tuyến phát nào nhận đơn (Không có "
                            "tuyến nào phủ xã này): đơn chờ bưu cục phân tuyến. Nhãn của đơn đã in với địa "
                            "chỉ cũ: hãy in lại nhãn.")
    assert "Chờ phân tuyến" in html


def test_a_status_that_no_longer_allows_it_is_refused_in_words_and_changes_nothing(client):
    order = make_order()
    login(client, "counter")
    page = f"/counter/orders/{order.item_id}"
    data = _form(client, order.item_id)  # the form was opened while the order was at the counter
    change_status(SYSTEM, order.item_id, Status.HANDED_TO_COURIER)
    before = _state(order.item_id)

    resp = client.post(f"{page}/address", data=data)
    assert resp.status_code == 303 and resp.headers["Location"] == page
    assert _state(order.item_id) == before
    html = client.get(page).get_data(as_text=True)
    assert _flash(html) == (f"Không sửa được địa chỉ đơn {order.item_id}: trạng thái của đơn nay là “Đã giao "
                            "bưu tá”, và đơn đã giao cho bưu tá hoặc đã kết thúc thì không sửa địa chỉ được "
                            "nữa. Không có gì thay đổi. Nếu địa chỉ sai, hãy liên hệ bưu cục.")
    assert f"{page}/address" not in html  # no longer offered
    opened = client.get(f"{page}/address?lang=en", follow_redirects=True).get_data(as_text=True)
    assert "was not corrected: its status is now “Handed to the courier”" in opened
    assert _state(order.item_id) == before


def test_another_counters_order_is_not_found(client):
    order = make_order()
    own = make_order("HTI-DUCTHO", address=HTI)
    make_user("ductho")
    login(client, "ductho")
    before = _state(order.item_id)
    assert client.get(f"/counter/orders/{own.item_id}/address").status_code == 200  # their own: the form
    assert client.get(f"/counter/orders/{order.item_id}/address").status_code == 404
    token = csrf_token(client, "/counter")
    resp = client.post(f"/counter/orders/{order.item_id}/address",
                       data={"csrf_token": token, "province_code": "42", "commune_code": "18229",
                             "address_detail": "Xóm 4"})
    assert resp.status_code == 404 and _state(order.item_id) == before


def test_a_post_without_the_csrf_token_is_refused(client):
    order = make_order()
    login(client, "counter")
    before = _state(order.item_id)
    data = _form(client, order.item_id)
    del data["csrf_token"]
    assert client.post(f"/counter/orders/{order.item_id}/address", data=data).status_code == 400
    assert _state(order.item_id) == before


def test_bad_input_comes_back_beside_each_field_and_changes_nothing(client):
    order = make_order()
    login(client, "counter")
    page = f"/counter/orders/{order.item_id}"
    before = _state(order.item_id)
    resp = client.post(f"{page}/address", data=_form(client, order.item_id, commune_code="",
                                                     address_detail="Số " + "9" * 260, note="lý do " * 60))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and _state(order.item_id) == before
    assert field_error(html, "commune_code") == "Vui lòng chọn một mục trong danh sách."
    assert field_error(html, "address_detail") == "Tối đa 255 ký tự."
    assert field_error(html, "note") == "Tối đa 300 ký tự."
    assert "Chưa sửa được địa chỉ: hãy sửa 3 mục được đánh dấu bên dưới." in html
    assert field_value(html, "address_detail") == "Số " + "9" * 260  # what was typed, kept
    assert 'id="f-commune_code"' in html.split("autofocus")[0].rsplit("<select", 1)[1]  # the first error

    outside = client.post(f"{page}/address", data=_form(client, order.item_id, commune_code=HTI["commune_code"]))
    html = outside.get_data(as_text=True)
    assert outside.status_code == 422 and _state(order.item_id) == before
    assert "không thuộc tỉnh / thành phố đã chọn" in field_error(html, "commune_code")
    assert f'<option value="{HTI["commune_code"]}" selected>' in html

    english = client.post(f"{page}/address?lang=en", data=_form(client, order.item_id, address_detail=" "))
    html = english.get_data(as_text=True)
    assert english.status_code == 422 and _state(order.item_id) == before
    assert field_error(html, "address_detail") == "This field is required."
    assert "The address was not corrected: correct the field marked below." in html


def test_text_typed_decomposed_is_stored_in_nfc(client):
    order = make_order()
    login(client, "counter")
    nfd = unicodedata.normalize("NFD", "Thôn Phú Lộc, xóm Đồng")
    resp = client.post(f"/counter/orders/{order.item_id}/address",
                       data=_form(client, order.item_id, address_detail=nfd, note=unicodedata.normalize("NFD", "Sửa")))
    assert resp.status_code == 303
    changed = _order(order.item_id)
    assert changed.address_detail == "Thôn Phú Lộc, xóm Đồng"
    note = db.session.scalar(sa.select(OrderEvent.note).where(OrderEvent.order_id == changed.id,
                                                              OrderEvent.reason == "address_changed"))
    assert note == "Sửa" and unicodedata.is_normalized("NFC", note)


def test_the_roles_of_the_api_that_have_the_desk_correct_addresses(client):
    """The service takes an address from admins, supervisors and counter staff; the desk's pages are the
    counter staff's and the admins': an admin corrects any counter's order there, the others see none."""
    order = make_order("HTI-DUCTHO", address=HTI)
    login(client, "admin")
    page = f"/counter/orders/{order.item_id}"
    assert f'href="{page}/address"' in client.get(page).get_data(as_text=True)
    resp = client.post(f"{page}/address", data=_form(client, order.item_id, province_code="42",
                                                     commune_code="18229", address_detail="Xóm 5"))
    assert resp.status_code == 303 and _order(order.item_id).address_detail == "Xóm 5"
    for username in ("supervisor", "courier", "district"):
        other = client.application.test_client()
        login(other, username)
        assert other.get(f"{page}/address").status_code == 403, username


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_correcting_an_address_in_the_browser(app, live_server, browser):  # noqa: F811
    """At a phone's width, under the app's Content-Security-Policy: the link, the commune picked from the
    list units.js loads, the flash and the history."""
    order = make_order()
    db.session.remove()
    context = browser.new_context(viewport={"width": WIDTH, "height": 740}, locale="vi-VN")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, live_server)
    try:
        _log_in(page, live_server, "counter")
        page.goto(f"{live_server}/counter/orders/{order.item_id}", wait_until="load")
        page.click("#correct-address")
        page.wait_for_load_state("load")
        assert page.url.endswith(f"/counter/orders/{order.item_id}/address")
        assert page.input_value("#f-commune_code") == "21025"
        assert not page.evaluate(INLINE_CODE)
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        page.select_option("#f-commune_code", "21172")
        page.fill("#f-address_detail", "Tổ 3")
        page.fill("#f-note", "Công dân báo")
        page.click("form.order-form button[type=submit]")
        page.wait_for_load_state("load")
        assert page.url.endswith(f"/counter/orders/{order.item_id}")
        assert "Đơn hiện thuộc tuyến phát QNG-02" in page.inner_text(".flash-success")
        assert "Đã sửa địa chỉ · Công dân báo" in page.content()
        assert not watch.take()
    finally:
        context.close()
