"""Free-text addresses: the offline parser (delivery_service/addresses/parser.py) on the whole
country's units, and POST /api/v1/addresses/parse on the test database (both database kinds)."""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import pytest
from conftest import login
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)

from delivery_service.addresses.parser import AddressParser, fold
from delivery_service.units.succession import split_successors, successors

AFTER = dt.date(2025, 12, 1)  # the two-level structure
BEFORE = dt.date(2024, 6, 1)  # the three-level one
DATA = Path(__file__).parent / "data/addresses/addresses.csv"


@pytest.fixture(scope="module")
def parser() -> AddressParser:
    return AddressParser.from_package()


def codes(result) -> tuple[str | None, str | None, str | None]:
    return tuple(u.code if u is not None else None for u in (result.province, result.district, result.commune))


# --- the examples ------------------------------------------------------------------------

def test_street_ward_and_city(parser: AddressParser) -> None:
    r = parser.parse("Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi", AFTER)
    assert codes(r) == ("51", None, "21025")
    assert r.commune.name == "Phường Cẩm Thành"
    assert r.detail == "Số 12 Hùng Vương"
    assert r.sure and r.confidence >= 0.75 and r.candidates == []
    assert r.written is None


def test_former_district_gives_the_2025_successor(parser: AddressParser) -> None:
    text = "thôn Phú Thọ, xã Nghĩa Phú, huyện Tư Nghĩa"  # Huyện Tư Nghĩa ended on 30 Jun 2025
    after = parser.parse(text, AFTER)
    assert after.province.code == "51" and after.district is None
    assert after.written is not None and after.written.legacy
    former = after.written.commune
    assert former.valid_to == dt.date(2025, 6, 30) and after.written.province.code == "51"
    assert after.commune.code == successors()[former.code]  # the 2025 commune it became
    assert after.commune.valid_from == dt.date(2025, 7, 1)
    assert after.detail == "thôn Phú Thọ"  # not the province Phú Thọ: it follows "thôn"
    before = parser.parse(text, BEFORE)
    assert before.commune.code == former.code and before.district is not None
    assert before.successor.code == after.commune.code and before.written is None


def test_pre_reform_date_answers_districts(parser: AddressParser) -> None:
    r = parser.parse("X. Cẩm Thành, H. Cẩm Xuyên, T. Hà Tĩnh", BEFORE)
    assert codes(r) == ("42", "446", "18694")
    assert r.successor is not None and r.successor.valid_from == dt.date(2025, 7, 1)


# --- the forms people write ------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "so 12 hung vuong p cam thanh tp quang ngai",
    "SỐ 12 HÙNG VƯƠNG, PHƯỜNG CẨM THÀNH, TỈNH QUẢNG NGÃI",
    "12 Hung Vuong,P.Cam Thanh,Quang Ngai",
    "Tỉnh Quảng Ngãi, Phường Cẩm Thành, 12 Hùng Vương",  # swapped order
    "Phường Cẩm Thành, 12 Hùng Vương, Quảng Ngãi",  # the street after the ward
    "12 Hùng Vương, P. Cẩm Thành, Quảng Ngãi, Việt Nam 55000 SĐT: 0905 123 456",
])
def test_forms_of_one_address(parser: AddressParser, text: str) -> None:
    r = parser.parse(text, AFTER)
    assert codes(r) == ("51", None, "21025"), text
    assert fold(r.detail) == "so 12 hung vuong" or fold(r.detail) == "12 hung vuong", r.detail


@pytest.mark.parametrize(("text", "detail"), [
    # a note in brackets is for the courier: it stays (phone, postcode and "Việt Nam" go)
    ("12 Hùng Vương, P. Cẩm Thành, Quảng Ngãi, Việt Nam 55000 SĐT: 0905 123 456 (gọi trước khi giao)",
     "12 Hùng Vương (gọi trước khi giao)"),
    ("Số 12 Hùng Vương (gần chợ, cạnh trường), P.Cẩm Thành, Quảng Ngãi", "Số 12 Hùng Vương (gần chợ, cạnh trường)"),
    # kind words whose name was read elsewhere or is missing, and punctuation alone, go
    ("thon an ky, huyen son tinh", "thon an ky"),
    ("Số 12, Hùng Vương, !!!", "Số 12, Hùng Vương"),
    ("Số 12 Hùng Vương, Phường, Cẩm Thành, Quảng Ngãi", "Số 12 Hùng Vương"),
    ("Số 12 Hùng Vương -- P. Cẩm Thành -- Quảng Ngãi ???", "Số 12 Hùng Vương"),
])
def test_detail_keeps_notes_and_drops_leftovers(parser: AddressParser, text: str, detail: str) -> None:
    assert parser.parse(text, AFTER).detail == detail


@pytest.mark.parametrize("text", ["P.12, Q.Gò Vấp, TP.HCM", "phuong 12 quan go vap tp ho chi minh",
                                  "F12 Q. Gò Vấp Sài Gòn"])
def test_numbered_units_and_abbreviations(parser: AddressParser, text: str) -> None:
    assert codes(parser.parse(text, BEFORE)) == ("79", "764", "26881")


def test_house_number_is_not_a_numbered_ward(parser: AddressParser) -> None:
    r = parser.parse("12 Lê Lợi, Thành phố Hồ Chí Minh", AFTER)
    assert r.commune is None and r.province.code == "79" and not r.sure


@pytest.mark.parametrize(("text", "commune"), [
    ("P. Cẩm Thàn, Quảng Ngãi", "21025"),  # a letter missing
    ("Phường Cẩm Thànhh, Quảng Ngãi", "21025"),  # a letter doubled
    ("Xã Bcắ Thụy Anh, Hưng Yên", "12859"),  # two letters swapped: not the real Xã Thụy Anh
])
def test_one_letter_typos(parser: AddressParser, text: str, commune: str) -> None:
    assert parser.parse(text, AFTER).commune.code == commune


def test_old_province_name_after_the_reform(parser: AddressParser) -> None:
    r = parser.parse("Xã Điện Hồng, TX. Điện Bàn, Quảng Nam", AFTER)
    assert r.written.commune.code == "20566" and r.written.province.code == "49"
    assert r.province.code == "48" and r.commune.code == successors()["20566"]  # now in Đà Nẵng


def test_former_commune_names(parser: AddressParser) -> None:
    """Names a commune had before a merger (the package's aliases) still find it."""
    r = parser.parse("P. Nguyễn Trung Trực, Q. Ba Đình, Hà Nội", BEFORE)
    assert codes(r) == ("01", "001", "00004") and r.commune.name == "Phường Trúc Bạch"


def test_structures_mixed_in_one_line(parser: AddressParser) -> None:
    """A 2025 ward with its former province, a former commune with its 2025 province."""
    r = parser.parse("Phường Hội An, Quảng Nam", AFTER)
    assert codes(r) == ("48", None, "20410") and r.written is None
    r = parser.parse("Xã Điện Hồng, Đà Nẵng", AFTER)
    assert r.written.commune.code == "20566" and r.commune.code == successors()["20566"]


# --- traps -------------------------------------------------------------------------------------------

def test_short_alias_never_fires_inside_a_word(parser: AddressParser) -> None:
    r = parser.parse("xóm Thanh-Nghe, Phường Thành Sen, Hà Tĩnh", AFTER)
    assert r.province.code == "42" and r.commune.code == "18073"  # not Hà Nội ("hn" in "thanh-nghe")
    assert parser.parse("P. Phương Liệt, HN", AFTER).province.code == "01"  # "HN" alone is Hà Nội


def test_street_is_not_read_as_a_commune(parser: AddressParser) -> None:
    r = parser.parse("Số 5 Đinh Tiên Hoàng, Hưng Yên", AFTER)
    assert r.province.code == "33" and r.commune is None  # not Xã Tiên Hoa (12361) of Hưng Yên
    r = parser.parse("Số 5 Đinh Tiên Hoàng, Xã Bắc Thụy Anh, Hưng Yên", AFTER)
    assert r.commune.code == "12859" and r.detail == "Số 5 Đinh Tiên Hoàng"
    for text in ("Số 12, Hùng Vương, P. Cẩm Thành, Quảng Ngãi", "87/25 Hùng Vương, Cẩm Thành, Quảng Ngãi"):
        r = parser.parse(text, AFTER)
        assert r.sure and r.commune.code == "21025" and fold(r.detail).endswith("hung vuong"), r.detail
    # with its kind, a ward called after a street is that ward
    r = parser.parse("Phường Phố Huế, Q. Hai Bà Trưng, Hà Nội", BEFORE)
    assert r.sure and r.commune.code == "00262" and r.detail == ""


@pytest.mark.parametrize(("text", "province", "commune", "detail"), [
    # not Phường Phố Huế: the 2025 Phường Hai Bà Trưng, written alone
    ("Số 3 ngõ 12 phố Huế, Hai Bà Trưng, Hà Nội", "01", "00256", "Số 3 ngõ 12 phố Huế"),
    ("phố Huế, Hai Bà Trưng, Hà Nội", "01", "00256", "phố Huế"),
    ("Số 3 phố Huế, Hà Nội", "01", None, "Số 3 phố Huế"),
    ("45 Lê Lợi, TP Quảng Ngãi", "51", None, "45 Lê Lợi"),  # not Phường Lê Lợi of Kon Tum (Đăk Bla)
    ("12 đường Trần Phú, Quảng Ngãi", "51", None, "12 đường Trần Phú"),  # not Phường Trần Phú
    ("12 Hùng Vương", None, None, "12 Hùng Vương"),  # not Phường Hùng Vương (Phú Thọ), nor Thị trấn Vương
    ("12 Lê Hồng Phong, Quảng Ngãi", "51", None, "12 Lê Hồng Phong"),  # not Xã Hồng Phong
])
def test_a_street_named_like_a_unit_stays_in_the_detail(parser: AddressParser, text: str, province: str | None,
                                                         commune: str | None, detail: str) -> None:
    """A name after a street word or a house number is the street's, not a unit to cut out."""
    r = parser.parse(text, AFTER)
    assert r.detail == detail
    assert (r.commune.code if r.commune else None) == commune and r.sure == (commune is not None)
    if province:
        assert r.province.code == province
    street = fold(detail.split(maxsplit=1)[1]).split()[-2:]  # "hue", "le loi", "tran phu", …
    for c in r.candidates:  # nothing the counter's form would offer for the street's name
        assert c.commune is None or not set(fold(c.commune.name).split()) & set(street), c.commune.name


@pytest.mark.parametrize(("text", "province"), [
    ("45 Lê Lợi, TP Quảng Ngãi", "51"),  # the former city (a district) alone: its province now
    ("12 đường Trần Phú, Quảng Ngãi", "51"),
    ("Thôn 2, xã Kỳ Lợi, TX Kỳ Anh, Hà Tĩnh", "42"),  # which part of Kỳ Lợi is unsure, not Hà Tĩnh
    ("xã Sơn Tây", None),  # of Hà Tĩnh or of Quảng Ngãi
    ("thôn 3, Cẩm Thành", None),
])
def test_a_province_may_be_sure_when_the_commune_is_not(parser: AddressParser, text: str,
                                                        province: str | None) -> None:
    r = parser.parse(text, AFTER)
    assert not r.sure
    assert r.province_sure == (province is not None)
    if province:
        assert r.province.code == province and r.province.valid_from == dt.date(2025, 7, 1)


def test_ambiguous_text_gives_ranked_candidates(parser: AddressParser) -> None:
    r = parser.parse("xã An Phú", AFTER)
    assert not r.sure and r.confidence < 0.75
    assert len(r.candidates) >= 3
    assert all(c.commune is not None and fold(c.commune.name).endswith("an phu") for c in r.candidates[:3])
    scores = [c.score for c in r.candidates]
    assert scores == sorted(scores, reverse=True)
    provinces = {c.province.code for c in r.candidates}
    assert len(provinces) >= 3
    # naming the province settles it
    assert parser.parse("xã An Phú, Quảng Ngãi", AFTER).commune.code == "21034"


@pytest.mark.parametrize("on", [AFTER, BEFORE])
def test_a_district_the_commune_is_not_in_is_never_sure(parser: AddressParser, on: dt.date) -> None:
    """"Hoa Mai" is one letter from Xã Hòa Hải, which lies in Huyện Hương Khê, not in the Đức Thọ
    written: a guess to offer, not an answer to store."""
    r = parser.parse("Thôn 2, xã Hoa Mai, H. Đức Thọ, Hà Tĩnh", on)
    assert not r.sure and r.confidence < 0.75 and r.candidates
    assert r.province.code == "42" and r.detail == "Thôn 2"
    # the same commune with its own district is sure
    r = parser.parse("Thôn 2, xã Hòa Hải, H. Hương Khê, Hà Tĩnh", on)
    assert r.sure and (r.written or r).commune.code == "18508"


def test_a_district_written_next_to_a_2025_commune_must_have_held_it(parser: AddressParser) -> None:
    # Xã Đức Thọ of 2025 was made of communes of Huyện Đức Thọ, none of Huyện Hương Khê
    assert not parser.parse("Xã Đức Thọ, H. Hương Khê, Hà Tĩnh", AFTER).sure
    assert parser.parse("Xã Đức Thọ, H. Đức Thọ, Hà Tĩnh", AFTER).sure
    # a district's words that are also the province's name contradict nothing
    assert parser.parse("Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi", AFTER).sure


@pytest.mark.parametrize(("text", "former"), [
    ("Thôn 2, xã Kỳ Lợi, TX Kỳ Anh, Hà Tĩnh", "18796"),  # Hoành Sơn, Sông Trí and Vũng Áng
    ("Xã Đại Nài, TP Hà Tĩnh", "18082"),
    ("Xã Trà Bùi, H. Trà Bồng, Quảng Ngãi", "21142"),
])
def test_a_commune_split_in_2025_offers_its_parts(parser: AddressParser, text: str, former: str) -> None:
    parts = split_successors()[former]
    r = parser.parse(text, AFTER)
    assert r.written.commune.code == former
    assert not r.sure and r.confidence < 0.75
    assert [c.commune.code for c in r.candidates[:len(parts)]] == list(parts)  # the package's default first
    assert all(not c.legacy and c.district is None and c.province.code == r.province.code
               for c in r.candidates[:len(parts)])
    # before the reform the commune was one: that reading is sure
    before = parser.parse(text, BEFORE)
    assert before.sure and before.commune.code == former


def test_nothing_to_read(parser: AddressParser) -> None:
    r = parser.parse("giao giờ hành chính", AFTER)
    assert (r.province, r.commune, r.sure, r.confidence) == (None, None, False, 0.0)


def test_default_date_is_today_in_vietnam(parser: AddressParser) -> None:
    from zoneinfo import ZoneInfo

    r = parser.parse("Phường Cẩm Thành, Quảng Ngãi")
    assert r.on == dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


def test_labelled_set_clean_kinds(parser: AddressParser) -> None:
    """The benchmark's set (scripts/bench/addresses.py): every clean kind at least 99.5 %."""
    with DATA.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 2000
    right: dict[str, list[bool]] = {}
    for row in rows:
        r = parser.parse(row["text"], dt.date.fromisoformat(row["on"]))
        got = codes(r)
        ok = got[0] == row["province"] and got[2] == row["commune"] and (got[1] or "") == row["district"]
        right.setdefault(row["kind"], []).append(ok)
    rates = {kind: sum(v) / len(v) for kind, v in right.items()}
    for kind in ("clean_full", "abbreviated", "no_diacritics", "legacy", "legacy_2025"):
        assert rates[kind] >= 0.995, rates
    for kind in ("swapped", "typo", "noisy"):
        assert rates[kind] >= 0.95, rates


# --- the API -------------------------------------------------------------------------------------------

def test_api_parses_on_the_database(client, auth) -> None:
    resp = client.post("/api/v1/addresses/parse", headers=auth,
                       json={"text": "Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi", "on": "2025-12-01"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["province"]["code"] == "51" and body["commune"]["code"] == "21025"
    assert body["commune"]["name"] == "Phường Cẩm Thành" and body["district"] is None
    assert body["detail"] == "Số 12 Hùng Vương" and body["sure"] is True and body["candidates"] == []
    assert body["on"] == "2025-12-01"

    resp = client.post("/api/v1/addresses/parse", headers=auth,
                       json={"text": "thôn Phú Thọ, xã Nghĩa Phú, huyện Tư Nghĩa", "on": "2025-12-01"})
    body = resp.get_json()
    assert resp.status_code == 200 and body["province"]["code"] == "51"
    assert body["written"]["legacy"] is True and body["written"]["province"]["code"] == "51"
    assert body["commune"]["code"] == successors()[body["written"]["commune"]["code"]]

    resp = client.post("/api/v1/addresses/parse", headers=auth,
                       json={"text": "xa cam thanh huyen cam xuyen ha tinh", "on": "2024-06-01"})
    body = resp.get_json()
    assert (body["province"]["code"], body["district"]["code"], body["commune"]["code"]) == ("42", "446", "18694")
    assert body["successor"]["code"] == successors()["18694"]


def test_api_mixed_structures_on_the_database(client, auth) -> None:
    resp = client.post("/api/v1/addresses/parse", headers=auth,
                       json={"text": "36 Trần Phú, Phường Hội An, tỉnh Quảng Nam", "on": "2026-01-05"})
    body = resp.get_json()
    assert resp.status_code == 200, body
    assert (body["province"]["code"], body["commune"]["code"]) == ("48", "20410")
    assert body["detail"] == "36 Trần Phú" and body["sure"] is True


def test_api_ambiguous_and_default_day(client, auth) -> None:
    resp = client.post("/api/v1/addresses/parse", headers=auth, json={"text": "Xã Cẩm"})
    body = resp.get_json()
    assert resp.status_code == 200 and body["sure"] is False
    resp = client.post("/api/v1/addresses/parse", headers=auth, json={"text": "Phường Cẩm Thành"})
    body = resp.get_json()
    assert resp.status_code == 200
    assert body["commune"]["code"] == "21025"  # the test database has one Cẩm Thành in 2025


def test_api_says_when_the_province_is_sure(client, auth) -> None:
    resp = client.post("/api/v1/addresses/parse", headers=auth,
                       json={"text": "45 Lê Lợi, TP Quảng Ngãi", "on": "2025-12-01"})
    body = resp.get_json()
    assert resp.status_code == 200 and body["sure"] is False and body["province_sure"] is True, body
    assert body["province"]["code"] == "51" and body["commune"] is None and body["detail"] == "45 Lê Lợi"
    resp = client.post("/api/v1/addresses/parse", headers=auth, json={"text": "xã Sơn Tây", "on": "2025-12-01"})
    assert resp.get_json()["province_sure"] is False


def test_api_split_commune_is_unsure_with_its_parts(client, auth) -> None:
    resp = client.post("/api/v1/addresses/parse", headers=auth,
                       json={"text": "Thôn 2, xã Kỳ Lợi, TX Kỳ Anh, Hà Tĩnh", "on": "2025-12-01"})
    body = resp.get_json()
    assert resp.status_code == 200 and body["sure"] is False, body
    assert body["written"]["commune"]["code"] == "18796"
    assert [c["commune"]["code"] for c in body["candidates"][:3]] == list(split_successors()["18796"])


@pytest.mark.parametrize(("payload", "field"), [
    ({}, "text"),
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"text": 12}, "text"),
    ({"text": "x" * 501}, "text"),
    ({"text": "a\x00b"}, "text"),
    ({"text": "Quảng Ngãi", "on": "2025-13-01"}, "on"),
    ({"text": "Quảng Ngãi", "on": "tomorrow"}, "on"),
])
def test_api_refuses_bad_input(client, auth, payload, field) -> None:
    resp = client.post("/api/v1/addresses/parse", headers=auth, json=payload)
    assert resp.status_code == 422, resp.get_json()
    assert field in str(resp.get_json()["errors"])


def test_api_needs_a_caller(client) -> None:
    resp = client.post("/api/v1/addresses/parse", json={"text": "Quảng Ngãi"})
    assert resp.status_code == 401


def test_api_with_a_staff_session(client) -> None:
    login(client, "counter")
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match
    token = match.group(1)
    resp = client.post("/api/v1/addresses/parse", json={"text": "P. Cẩm Thành, Quảng Ngãi"},
                       headers={"X-CSRFToken": token})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["commune"]["code"] == "21025"
    resp = client.post("/api/v1/addresses/parse", json={"text": "P. Cẩm Thành, Quảng Ngãi"})
    assert resp.status_code == 403  # a session's write without the page's CSRF token


def test_api_is_documented(client) -> None:
    spec = client.get("/api/v1/openapi.json").get_json()
    op = spec["paths"]["/api/v1/addresses/parse"]["post"]
    assert "422" in op["responses"] and "200" in op["responses"]


# --- the counter's order form ----------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_counter_form_fills_the_address_from_a_pasted_line(app, live_server, browser):  # noqa: F811
    """A sure line selects the province and commune and fills the detail; an unsure one asks."""
    from playwright.sync_api import expect
    from test_pages_browser import CSP_LISTENER, Watch, _log_in

    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="vi-VN")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, live_server)
    try:
        _log_in(page, live_server, "counter")
        page.goto(live_server + "/counter/orders/new", wait_until="load")
        page.fill("#f-address_text", "Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi")
        with page.expect_response(lambda r: r.url.endswith("/api/v1/addresses/parse")):
            page.click("[data-address-read]")
        expect(page.locator("#f-commune_code")).to_have_value("21025")  # (no wait_for_function: the CSP)
        assert page.input_value("#f-province_code") == "51"
        expect(page.locator("[data-address-status]")).to_contain_text("kiểm tra")
        assert page.input_value("#f-address_detail") == "Số 12 Hùng Vương"
        assert page.locator("[data-address-choices]").is_hidden()

        # "Sơn Tây" is a commune of Hà Tĩnh and of Quảng Ngãi: the clerk picks one
        page.fill("#f-address_text", "xã Sơn Tây")
        with page.expect_response(lambda r: r.url.endswith("/api/v1/addresses/parse")):
            page.press("#f-address_text", "Enter")
        choices = page.locator("[data-address-choices] button")
        choices.first.wait_for()
        assert choices.count() == 2 and "Chưa chắc chắn" in page.text_content("[data-address-status]")
        # what the first line filled is gone: this is another address
        assert page.input_value("#f-commune_code") == "" and page.input_value("#f-address_detail") == ""
        names = choices.all_text_contents()
        assert all("Sơn Tây" in name for name in names)
        wanted = "51" if "Quảng Ngãi" in names[1] else "42"
        choices.nth(1).click()
        expect(page.locator("#f-province_code")).to_have_value(wanted)
        expect(page.locator("#f-commune_code")).not_to_have_value("")
        expect(page.locator("[data-address-choices]")).to_be_hidden()
        assert "Sơn Tây" in page.locator("#f-commune_code option:checked").text_content()

        # a detail the clerk typed stays; a line that reads as nothing takes back the commune and
        # the province the chosen reading selected
        page.fill("#f-address_detail", "Thôn 4")
        page.fill("#f-address_text", "asdfgh")
        with page.expect_response(lambda r: r.url.endswith("/api/v1/addresses/parse")):
            page.click("[data-address-read]")
        expect(page.locator("#f-province_code")).to_have_value("")
        assert page.input_value("#f-commune_code") == ""
        assert page.input_value("#f-address_detail") == "Thôn 4"
        # a province and commune the clerk chose in the lists stay through a line that reads as nothing
        page.select_option("#f-province_code", "51")
        expect(page.locator("#f-commune_code option")).not_to_have_count(1)
        page.select_option("#f-commune_code", index=1)
        chosen = page.input_value("#f-commune_code")
        page.fill("#f-address_text", "qwerty")
        with page.expect_response(lambda r: r.url.endswith("/api/v1/addresses/parse")):
            page.click("[data-address-read]")
        expect(page.locator("[data-address-read]")).to_be_enabled()  # the answer is handled
        assert chosen and page.input_value("#f-commune_code") == chosen
        assert page.input_value("#f-province_code") == "51"
        assert watch.take() == []
        assert page.url.endswith("/counter/orders/new")  # Enter did not submit the form
    finally:
        context.close()


def _read_line(page, line: str) -> None:
    from playwright.sync_api import expect

    page.fill("#f-address_text", line)
    with page.expect_response(lambda r: r.url.endswith("/api/v1/addresses/parse")):
        page.click("[data-address-read]")
    expect(page.locator("[data-address-read]")).to_be_enabled()  # the answer is handled


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_counter_form_unsure_line_leaves_nothing_of_the_last_one(app, live_server, browser):  # noqa: F811
    """After a Hà Tĩnh line, "45 Lê Lợi, TP Quảng Ngãi" (sure of the province only) selects Quảng Ngãi
    with its communes to choose from, writes the whole detail and offers no commune named after the
    street; a line that is sure of no province takes back the one the last line selected."""
    from playwright.sync_api import expect
    from test_pages_browser import CSP_LISTENER, Watch, _log_in

    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="vi-VN")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, live_server)
    try:
        _log_in(page, live_server, "counter")
        page.goto(live_server + "/counter/orders/new", wait_until="load")
        _read_line(page, "Số 5 Trần Phú, Phường Thành Sen, Hà Tĩnh")
        expect(page.locator("#f-commune_code")).to_have_value("18073")
        assert page.input_value("#f-province_code") == "42"
        assert page.input_value("#f-address_detail") == "Số 5 Trần Phú"

        _read_line(page, "45 Lê Lợi, TP Quảng Ngãi")
        expect(page.locator("#f-province_code")).to_have_value("51")  # not Hà Tĩnh's any more
        assert page.input_value("#f-commune_code") == ""
        communes = page.locator("#f-commune_code option").all_text_contents()
        assert "Phường Cẩm Thành" in communes and "Phường Thành Sen" not in communes  # Quảng Ngãi's, to choose
        assert page.input_value("#f-address_detail") == "45 Lê Lợi"
        assert page.locator("[data-address-choices]").is_hidden()  # no Phường Đăk Bla for "Lê Lợi"
        assert "Đã điền tỉnh" in page.text_content("[data-address-status]")

        # not sure of the province (Sơn Tây of Hà Tĩnh or of Quảng Ngãi): Quảng Ngãi goes, with the detail
        _read_line(page, "xã Sơn Tây")
        expect(page.locator("#f-province_code")).to_have_value("")
        assert page.input_value("#f-commune_code") == "" and page.input_value("#f-address_detail") == ""
        assert page.locator("[data-address-choices] button").count() == 2
        assert watch.take() == []
    finally:
        context.close()
