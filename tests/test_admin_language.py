"""The administration pages of counters, post offices, routes, API clients, business rules, citizen
notifications and personal data in the reader's language: Vietnamese by default, English with
``?lang=en`` (no "Tiếng Việt / English" pairs), with their flash and form error messages, on SQLite and
PostgreSQL."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login
from test_admin_orgs import _province_admin

from delivery_service.accounts.models import ApiClient
from delivery_service.extensions import db
from delivery_service.orgs.models import Counter, PostalRoute, PostOffice


def _id(model, code: str) -> int:  # noqa: ANN001
    return db.session.scalar(sa.select(model.id).where(model.code == code))


def _h1(page: str) -> str:
    """The page's heading as read: tags dropped, entities decoded, spaces folded."""
    match = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    assert match, page[:2000]
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def _title(page: str) -> str:
    match = re.search(r"<title>(.*?)</title>", page, re.S)
    assert match
    return html_lib.unescape(match.group(1)).split(" · ")[0].strip()


def _text(page: str) -> str:
    return html_lib.unescape(page)


def _path(fixed: str) -> Callable[[], str]:
    return lambda: fixed


# (path, Vietnamese heading, English heading, fixed texts of the page in Vietnamese, their English)
PAGES = [
    (_path("/admin/counters"), "Bộ phận một cửa", "Counters",
     ["Thêm bộ phận một cửa", "Đường dây nóng", "Trạng thái"], ["New counter", "Hotline", "State"]),
    (_path("/admin/counters/new"), "Thêm bộ phận một cửa", "New counter",
     ["Mặc định in nhãn", "Mã đơn vị hành chính", "Bộ phận một cửa cấp xã", "Hủy"],
     ["Label defaults", "Administrative unit code", "Commune", "Cancel"]),
    (lambda: f"/admin/counters/{_id(Counter, 'QNG-TTHCC')}", "Bộ phận một cửa QNG-TTHCC", "Counter QNG-TTHCC",
     ["Chỉ in nhãn cho đơn đã có tuyến", "Đang hoạt động", "Định dạng nhãn"],
     ["Print labels only for orders on a route", "Active", "Label format"]),
    (_path("/admin/offices"), "Bưu cục", "Post offices",
     ["Thêm bưu cục", "Tọa độ"], ["New post office", "Coordinates"]),
    (_path("/admin/offices/new"), "Thêm bưu cục", "New post office",
     ["Không đổi được sau khi tạo.", "Vĩ độ", "Kinh độ"], ["Cannot change later.", "Latitude", "Longitude"]),
    (lambda: f"/admin/offices/{_id(PostOffice, 'BC-QNG')}", "Bưu cục BC-QNG", "Post office BC-QNG",
     ["Nơi các chuyến phát bắt đầu; trống: tâm xã"], ["Where runs start; empty: the unit's centre"]),
    (_path("/admin/routes"), "Tuyến phát", "Postal routes",
     ["Thêm tuyến phát", "Số đơn/ngày", "Xã, thôn"], ["New route", "Capacity", "Communes"]),
    (_path("/admin/routes/new"), "Thêm tuyến phát", "New route",
     ["Sau khi lưu, thêm các xã của tuyến ở trang phạm vi.", "Tuyến dự phòng"],
     ["After saving, add its communes on the coverage page.", "Backup route"]),
    (lambda: f"/admin/routes/{_id(PostalRoute, 'QNG-01')}", "Tuyến phát QNG-01", "Route QNG-01",
     ["Bưu tá quay về bưu cục cuối chuyến", "Sửa các xã, thôn, đường phố của tuyến"],
     ["The courier returns to the post office", "Edit the route's communes, hamlets and streets"]),
    (_path("/admin/clients"), "Khóa API và webhook", "API clients and webhooks",
     ["Tạo và hiện khóa một lần", "Tên hệ thống", "trang Webhook", "Thu hồi khóa API"],
     ["Create and show the token once", "System name", "Webhooks page", "Revoke the token"]),
    (_path("/admin/settings"), "Quy tắc nghiệp vụ", "Business rules",
     ["Lý do phát không thành công", "mặc định từ môi trường", "Tỷ lệ đúng hạn", "Không kiểm tra"],
     ["Failure reasons", "environment default", "On-time rate", "No check"]),
    (_path("/admin/notifications"), "Tin nhắn cho công dân", "Citizen notifications",
     ["Biến được dùng", "Mã bưu gửi", "Tin nhắn gần đây", "Xem trước"],
     ["Placeholders", "Item id", "Recent messages", "Preview"]),
    (_path("/admin/privacy"), "Dữ liệu cá nhân", "Personal data",
     ["Nhật ký truy cập dữ liệu cá nhân"], ["Personal data access log"]),
]
NAV_VI, NAV_EN = ["Quy tắc nghiệp vụ", "Khóa API"], ["Business rules", "API clients"]


@pytest.mark.parametrize(("path", "vi_h1", "en_h1", "vi_texts", "en_texts"), PAGES,
                         ids=[p[2] for p in PAGES])
def test_page_is_vietnamese_by_default_and_english_when_chosen(client, path, vi_h1, en_h1, vi_texts, en_texts):  # noqa: ANN001
    login(client, "admin")
    url = path()
    vi = client.get(url)
    assert vi.status_code == 200, url
    page = vi.get_data(as_text=True)
    assert _h1(page) == vi_h1 and en_h1 not in _h1(page), (url, _h1(page))
    assert " / " not in _title(page)
    text = _text(page)
    for vi_text, en_text in zip(vi_texts, en_texts, strict=True):
        assert vi_text in text, (url, vi_text)
        assert en_text not in text, (url, en_text)
    en = client.get(url + "?lang=en")
    assert en.status_code == 200, url
    page = en.get_data(as_text=True)
    assert _h1(page) == en_h1 and vi_h1 not in _h1(page), (url, _h1(page))
    text = _text(page)
    for vi_text, en_text in zip(vi_texts, en_texts, strict=True):
        assert en_text in text, (url, en_text)
        assert vi_text not in text, (url, vi_text)
    assert " / " not in _title(page)


def test_titles_and_the_administration_bar_follow_the_language(client):
    login(client, "admin")
    page = client.get("/admin/counters").get_data(as_text=True)
    assert _title(page) == "Bộ phận một cửa"
    nav = re.search(r'<nav class="toolbar".*?</nav>', page, re.S).group(0)
    assert all(t in nav for t in NAV_VI) and not any(t in nav for t in NAV_EN)
    page = client.get("/admin/counters?lang=en").get_data(as_text=True)
    assert _title(page) == "Counters"
    nav = re.search(r'<nav class="toolbar".*?</nav>', page, re.S).group(0)
    assert all(t in nav for t in NAV_EN) and not any(t in nav for t in NAV_VI)
    assert 'aria-label="Administration"' in nav


def test_api_token_and_signing_secret_pages_in_english(client):
    login(client, "admin")
    token = csrf_token(client, "/admin/clients")
    resp = client.post("/admin/clients?lang=en", data={"csrf_token": token, "name": "iGate Thử", "counter": "QNG-TTHCC"})
    assert resp.status_code == 303
    resp = client.get(resp.headers["Location"])
    page = _text(resp.get_data(as_text=True))
    assert resp.status_code == 200 and _h1(resp.get_data(as_text=True)) == "API token of iGate Thử"
    assert "The token is shown this once" in page and "Khóa chỉ hiện một lần này" not in page
    assert "Copied, back to the list" in page and "Đã sao chép, quay lại" not in page
    client_id = db.session.scalar(sa.select(sa.func.max(ApiClient.id)))
    resp = client.post(f"/admin/clients/{client_id}/webhook?lang=vi",
                       data={"csrf_token": token, "url": "https://93.184.216.34/hooks"})
    assert resp.status_code == 303
    resp = client.get(resp.headers["Location"])
    assert resp.status_code == 200 and _h1(resp.get_data(as_text=True)) == "Khóa ký webhook của iGate Thử"
    assert "The signing secret is shown this once" not in _text(resp.get_data(as_text=True))
    listing = _text(client.get("/admin/clients?lang=en").get_data(as_text=True))
    assert "Rotate the signing secret" in listing and "Đổi khóa ký" not in listing
    assert "Working" in listing and "Hoạt động" not in listing


def test_flash_and_form_errors_in_the_readers_language(client):
    login(client, "admin")
    edit = f"/admin/counters/{_id(Counter, 'QNG-TTHCC')}"
    form = {"csrf_token": csrf_token(client, edit), "name": "Trung tâm Phục vụ hành chính công tỉnh Quảng Ngãi",
            "level": "province_centre", "unit": "51", "post_office": "BC-QNG", "label_format": "pdf",
            "label_size": "100x150", "active": "1"}
    resp = client.post(edit + "?lang=en", data=form)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    page = _text(client.get(resp.headers["Location"]).get_data(as_text=True))
    assert "Counter QNG-TTHCC saved." in page and "Đã lưu bộ phận một cửa" not in page
    # a refused form: the fields' names, the banner and the messages in English
    resp = client.post("/admin/counters/new", data={**form, "code": "QNG-TTHCC", "hotline": "call me"})
    assert resp.status_code == 422
    page = _text(resp.get_data(as_text=True))
    assert "This code is already used." in page and "Mã này đã được dùng." not in page
    assert "Please correct the marked fields." in page and "Vui lòng sửa các ô được đánh dấu." not in page
    assert '<label for="f-hotline">Hotline' in page and " / " not in _h1(page)
    # and in Vietnamese once chosen again
    resp = client.post("/admin/counters/new?lang=vi", data={**form, "code": "QNG-TTHCC"})
    page = _text(resp.get_data(as_text=True))
    assert "Mã này đã được dùng." in page and "This code is already used." not in page
    assert '<label for="f-code">Mã' in page


def test_a_province_admin_reads_their_scope_in_english(client):
    _province_admin(client)
    page = _text(client.get("/admin/offices").get_data(as_text=True))
    assert "Phạm vi: " in page and "Scope: this province only" not in page
    page = _text(client.get("/admin/offices?lang=en").get_data(as_text=True))
    assert "Scope: this province only" in page and "Phạm vi: " not in page
    assert "Only a national admin changes them" in _text(client.get("/admin/settings").get_data(as_text=True))


def _field_errors(page: str) -> dict[str, str]:
    """Each field's error message as read, by the field's name (``id="e-<name>"``)."""
    return {name: html_lib.unescape(text) for name, text in
            re.findall(r'<p class="field-error" id="e-([^"]+)">([^<]*)</p>', page)}


def _only_one_language(page: str, shown: dict[str, str], hidden: dict[str, str]) -> None:
    """Every field of ``shown`` carries its message, and none of ``hidden``'s messages is anywhere."""
    errors, text = _field_errors(page), _text(page)
    for field, message in shown.items():
        assert errors.get(field) == message, (field, errors.get(field))
    for message in hidden.values():
        assert message not in text, message
    assert not any(" / " in m for m in errors.values()), errors


# A refused save of the business rules: the field, its message in Vietnamese, in English.
RULES_REFUSED = {
    "max_failed_attempts": ("nhiều", "Nhập một số nguyên.", "Enter a whole number."),
    "correction_window_min": ("5000", "Từ 0 đến 1440.", "Must be from 0 to 1440."),
    "delivery_id_check": ("face", "Chọn một trong: id_last4, otp, none.", "Choose one of: id_last4, otp, none."),
    "bands_delivery_rate": ("0.50, 0.90", "Ba ngưỡng giảm dần từ 0 đến 1, ví dụ 0.95, 0.90, 0.80.",
                            "Three falling thresholds between 0 and 1, e.g. 0.95, 0.90, 0.80."),
}


def test_a_refused_rules_save_speaks_the_readers_language(client):
    from test_admin_orgs import _rules_form

    from delivery_service.rules import services as rule_services

    login(client, "admin")
    changes = {field: typed for field, (typed, _vi, _en) in RULES_REFUSED.items()}
    html = client.get("/admin/settings").get_data(as_text=True)
    new_row = max(int(i) for i in re.findall(r'name="reasons-(\d+)-code"', html))
    changes |= {f"reasons-{new_row}-code": "có dấu", f"reasons-{new_row}-label": "Chó dữ"}
    vi = {field: m for field, (_typed, m, _en) in RULES_REFUSED.items()}
    en = {field: m for field, (_typed, _vi, m) in RULES_REFUSED.items()}
    vi[f"reasons-{new_row}"] = "Mã gồm 1-64 chữ, số hoặc _; cần nhãn tiếng Việt và tiếng Anh."
    en[f"reasons-{new_row}"] = "The code is 1-64 letters, digits or _; give a Vietnamese and an English label."

    resp = client.post("/admin/settings", data=_rules_form(client, **changes))
    assert resp.status_code == 422, resp.get_data(as_text=True)[:2000]
    _only_one_language(resp.get_data(as_text=True), vi, en)
    assert "Vui lòng sửa các ô được đánh dấu." in _text(resp.get_data(as_text=True))
    resp = client.post("/admin/settings?lang=en", data=_rules_form(client, **changes))
    assert resp.status_code == 422
    _only_one_language(resp.get_data(as_text=True), en, vi)
    assert "Please correct the marked fields." in _text(resp.get_data(as_text=True))
    # the list's own messages too: a code listed twice, no reason left in use
    html = client.get("/admin/settings").get_data(as_text=True)
    rows = re.findall(r'name="reasons-(\d+)-code" aria-label="[^"]*" value="([^"]+)"', html)
    twice = {f"reasons-{new_row}-code": rows[0][1], f"reasons-{new_row}-label": "Lặp",
             f"reasons-{new_row}-label_en": "Twice"}
    retired = {f"reasons-{i}-retired": "1" for i, _code in rows} | {f"reasons-{new_row}-retired": "1"}
    resp = client.post("/admin/settings?lang=en", data=_rules_form(client, **twice, **retired))
    assert resp.status_code == 422
    _only_one_language(resp.get_data(as_text=True),
                       {"reasons": "A code is listed twice. At least one reason must stay in use."},
                       {"r": "Một mã bị lặp.", "s": "Cần ít nhất một lý do đang dùng."})
    resp = client.post("/admin/settings?lang=vi", data=_rules_form(client, **twice, **retired))
    _only_one_language(resp.get_data(as_text=True),
                       {"reasons": "Một mã bị lặp. Cần ít nhất một lý do đang dùng."},
                       {"r": "A code is listed twice.", "s": "At least one reason must stay in use."})
    assert rule_services.stored_values() == {}  # nothing was saved


def test_a_refused_notification_template_speaks_the_readers_language(client):
    from delivery_service.notifications import services, texts

    login(client, "admin")
    placeholders = ", ".join("{" + p + "}" for p in texts.PLACEHOLDERS)
    vi = {"delivered-text": f"Không có biến {{ten}}. Được dùng: {placeholders}",
          "delivered-zns": "Chỉ chữ, số, - và _ (tối đa 64)."}
    en = {"delivered-text": "Unknown placeholder.", "delivered-zns": "Letters, digits, - and _ only."}
    token = csrf_token(client, "/admin/notifications")
    refused = {"csrf_token": token, "text": "Đã phát {ten}", "zns_template_id": "mã có dấu", "action": "save"}
    resp = client.post("/admin/notifications/delivered", data=refused)
    assert resp.status_code == 422, resp.get_data(as_text=True)[:2000]
    _only_one_language(resp.get_data(as_text=True), vi, en)
    resp = client.post("/admin/notifications/delivered?lang=en", data=refused)
    assert resp.status_code == 422
    _only_one_language(resp.get_data(as_text=True), en, vi)
    # the preview's message too
    preview = {"csrf_token": token, "text": "Đã phát {item_id", "action": "preview"}
    resp = client.post("/admin/notifications/delivered?lang=en", data=preview)
    assert resp.status_code == 422
    _only_one_language(resp.get_data(as_text=True), {"delivered-text": "Unbalanced { } braces."},
                       {"t": "Dấu { } không khớp."})
    resp = client.post("/admin/notifications/delivered?lang=vi", data={**preview, "text": " "})
    _only_one_language(resp.get_data(as_text=True), {"delivered-text": "Không được để trống."},
                       {"t": "Must not be empty."})
    assert services.template_text("delivered")[0] == texts.DEFAULT_TEMPLATES["delivered"]  # nothing saved


def test_the_access_log_names_what_was_opened_in_the_readers_language(client, auth):
    from conftest import order_payload

    created = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert created.status_code == 201
    assert client.get(f"/api/v1/orders/{created.json['item_id']}", headers=auth).status_code == 200
    login(client, "admin")
    row = r'<tr data-what="api_order">.*?</tr>'
    page = _text(re.search(row, client.get("/admin/privacy").get_data(as_text=True), re.S).group(0))
    assert "<td>API: đơn</td>" in page and "API: order" not in page
    page = _text(re.search(row, client.get("/admin/privacy?lang=en").get_data(as_text=True), re.S).group(0))
    assert "<td>API: order</td>" in page and "API: đơn" not in page
