"""Vietnamese first, English second: the catalog is complete and compiled, the switch works."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from conftest import login
from flask_babel import force_locale
from web_helpers import make_user

from delivery_service.accounts.models import Role
from delivery_service.imports.models import ImportState
from delivery_service.orders.models import Exemption, Payer
from delivery_service.orders.status import Direction, Status
from delivery_service.web import display, forms

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "delivery_service" / "translations" / "vi" / "LC_MESSAGES"
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None}

STATUS_VI = {
    "created": "Mới tạo", "assigned": "Đã phân tuyến", "handed_to_courier": "Đã giao bưu tá",
    "out_for_delivery": "Đang phát", "delivered": "Đã phát", "failed_attempt": "Phát không thành công",
    "returned_to_agency": "Đã chuyển hoàn cơ quan", "cancelled": "Đã hủy",
    "pickup_scheduled": "Đã hẹn lấy hồ sơ", "picked_up": "Đã lấy hồ sơ",
    "delivered_to_agency": "Đã giao cơ quan",
}
DIRECTION_VI = {"result_to_citizen": "Trả kết quả", "dossier_to_agency": "Gửi hồ sơ",
                "both": "Gửi hồ sơ và nhận kết quả"}


def _extracted() -> set[str | tuple[str, ...]]:
    with open(ROOT / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = extract_from_dir(ROOT, method_map, options_map, keywords=KEYWORDS)
    return {msg for _file, _line, msg, _comments, _context in found}


def _key(msgid: str | tuple[str, ...] | list[str]) -> str | tuple[str, ...]:
    return msgid if isinstance(msgid, str) else tuple(msgid)


def test_every_string_has_a_vietnamese_translation_in_nfc():
    with open(CATALOG / "messages.po", "rb") as f:
        po = read_po(f, locale="vi")
    translated = {_key(m.id): m.string for m in po if m.id and not m.fuzzy}
    missing = [msg for msg in _extracted() if not translated.get(_key(msg))]
    assert not missing, f"msgids without a Vietnamese translation (see babel.cfg): {missing}"
    for msgid, text in translated.items():
        for s in [text] if isinstance(text, str) else text:
            assert s and unicodedata.is_normalized("NFC", s), msgid
    problems = [(m.id, errs) for m, errs in po.check()]
    assert not problems, problems


def test_compiled_catalog_matches_the_po_file():
    with open(CATALOG / "messages.po", "rb") as f:
        po = {_key(m.id): _key(m.string) for m in read_po(f, locale="vi") if m.id}
    with open(CATALOG / "messages.mo", "rb") as f:
        mo = {_key(m.id): _key(m.string) for m in read_mo(f) if m.id}
    assert mo == po, "run: pybabel compile -d delivery_service/translations -l vi"


def test_every_value_shown_to_people_has_a_label():
    assert set(display.STATUS) == set(Status)
    assert set(display.DIRECTION) == set(Direction)
    assert set(display.PAYER) == set(Payer)
    assert set(display.EXEMPTION) == set(Exemption)
    assert set(display.ROLE) == set(Role)
    assert set(display.IMPORT_STATE) == set(ImportState)


def test_labels_in_both_languages(app):
    with app.test_request_context(), force_locale("vi"):
        assert {s.value: str(label) for s, label in display.STATUS.items()} == STATUS_VI
        assert {d.value: str(label) for d, label in display.DIRECTION.items()} == DIRECTION_VI
        assert str(display.EXEMPTION[Exemption.HEROIC_MOTHER]) == "Bà mẹ Việt Nam anh hùng (miễn cước)"
    with app.test_request_context(), force_locale("en"):
        assert str(display.STATUS[Status.FAILED_ATTEMPT]) == "Delivery attempt failed"
        assert str(display.DIRECTION[Direction.BOTH]) == "Send the dossier and receive the result"


@pytest.mark.parametrize("english, vietnamese", [
    ("Missing data for required field.", "Vui lòng nhập mục này."),
    ("Not a valid Vietnamese phone number.", "Số điện thoại Việt Nam không hợp lệ."),
    ("Longer than 64 characters.", "Tối đa 64 ký tự."),
    ("Commune 18229 is not in province 51.",
     "Xã / phường này (18229) không thuộc tỉnh / thành phố đã chọn (51)."),
    ("Unknown commune code '99999' on 2026-01-01.", "Không có xã / phường mã 99999."),
    ("Something nobody translated.", "Something nobody translated."),
])
def test_validation_messages_are_translated(app, english, vietnamese):
    with app.test_request_context(), force_locale("vi"):
        assert forms.translate_message(english) == vietnamese


def test_vietnamese_is_the_default(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="vi">' in html and "Đăng nhập" in html and "Log in" not in html


def test_english_switch_is_remembered_and_can_be_undone(client):
    html = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in html and "Log in" in html and "Đăng nhập" not in html
    assert "Log in" in client.get("/login").get_data(as_text=True)
    login(client, "counter")
    html = client.get("/counter").get_data(as_text=True)
    assert "Today's orders" in html and "Counter staff" in html
    assert "Đơn hôm nay" in client.get("/counter?lang=vi").get_data(as_text=True)
    assert "Đơn hôm nay" in client.get("/counter").get_data(as_text=True)


def test_a_users_own_language_applies_until_they_switch(client):
    make_user("english", counter_code="QNG-TTHCC", locale="en")  # a new user: demo users are shared
    login(client, "english")
    assert "Today's orders" in client.get("/counter").get_data(as_text=True)
    assert "Đơn hôm nay" in client.get("/counter?lang=vi").get_data(as_text=True)


def test_every_page_has_the_language_switch(client):
    login(client, "counter")
    for path in ("/counter", "/counter/orders/new", "/counter/imports/new", "/counter/search?q=An",
                 "/counter/orders/RH999999995VN"):
        html = client.get(path).get_data(as_text=True)
        links = re.findall(r'<a href="([^"]+)" lang="(vi|en)"', html)
        assert [lang for _url, lang in links] == ["vi", "en"], path
        assert "Tiếng Việt" in html and "English" in html
        assert all("lang=" in url for url, _lang in links)
