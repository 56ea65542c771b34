"""The courier app's texts and touch targets after the outside review of a courier on a 390x844 touch
phone (Vietnamese page), in Debian's chromium through Playwright against the service on the test
database (SQLite and PostgreSQL), and the sync API's stable refusal names they rest on:

1. a refused record says why in the page's language, never the server's English in brackets on the
   Vietnamese page: the sync answer names each refusal (``error.reason``) and the app words it;
2. the order sheet's call link is a button of at least 44x44 px; its radio choices are whole rows;
3. "Ghi nhận gần nhất" says what the last record was and when (Vietnam's time), with its deadline;
4. offline, the form warns before saving that the ID card's last 4 digits are checked only at sync."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import test_courier_browser
from conftest import DEMO_PASSWORD, login
from test_courier_api import ID_NUMBER, delivered, event, handed, new_order, page_csrf, sync
from test_courier_browser import PEOPLE, _open, _order_box, _sign, _todays_run, _wait

from delivery_service.accounts.models import User
from delivery_service.accounts.services import Actor
from delivery_service.courier.schemas import REFUSAL_REASONS
from delivery_service.extensions import db
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status

browser = test_courier_browser.browser  # the fixtures: Playwright's chromium, the service in a thread
live_server = test_courier_browser.live_server
VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
# English words of the server's messages that must never reach the Vietnamese page
ENGLISH = re.compile(r"\b(the|does not|do not|order|route|status|cannot|must|event)\b", re.I)


@pytest.fixture
def courier(client) -> dict[str, str]:
    login(client, "courier")
    return page_csrf(client)


# --- the API: every refusal has a stable name ---------------------------------------------------

def test_every_refusal_has_a_stable_reason(client, auth, courier):
    a = new_order(client, auth)
    b = handed(client, auth, courier, recipient={"name": "Nguyễn Thị Hoa", "phone": "0905123456",
                                                 "id_number": ID_NUMBER})
    c = handed(client, auth, courier)
    wrong_id = delivered(b["item_id"], id_check={"kind": "id_last4", "value": "0000"})
    wrong_otp = delivered(c["item_id"], -5, id_check={"kind": "otp", "value": "000000"})
    too_early = delivered(a["item_id"])  # not picked up at the office yet
    skewed = event(b["item_id"], "failed_attempt", 3600, reason="not_home")
    broken = {"event_id": str(uuid.uuid4()), "item_id": a["item_id"], "action": "teleported"}
    results = sync(client, courier, wrong_id, wrong_otp, too_early, skewed, broken)
    reasons = [(r["error"]["code"], r["error"]["reason"]) for r in results]
    assert reasons == [("invalid", "id_mismatch"), ("invalid", "otp_mismatch"), ("transition", "status_not_allowed"),
                       ("clock_skew", "clock_skew"), ("invalid", "malformed")], reasons
    assert results[2]["status"] == "assigned"  # where the order is: the app names it
    done = delivered(c["item_id"])
    sync(client, courier, done)
    no_note = event(c["item_id"], "correction", 5, corrects=done["event_id"])
    nothing = event(c["item_id"], "correction", 6, corrects=str(uuid.uuid4()), note="x")
    [r1, r2] = sync(client, courier, no_note, nothing)
    assert (r1["error"]["reason"], r2["error"]["reason"]) == ("note_required", "nothing_to_correct")
    assert {r["error"]["reason"] for r in results + [r1, r2]} <= set(REFUSAL_REASONS)
    # the OpenAPI document lists them
    spec = client.get("/api/v1/openapi.json").json
    assert spec["components"]["schemas"]["CourierSyncError"]["properties"]["reason"]["enum"] == list(REFUSAL_REASONS)


# --- the phone ---------------------------------------------------------------------------------

def _phone(browser: Any, timezone_id: str = "Asia/Ho_Chi_Minh", **options: Any) -> Any:
    """The reviewer's phone: 390x844, touch, Vietnamese, a GPS fix."""
    return browser.new_context(**options,
        viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True, has_touch=True,
        locale="vi-VN", timezone_id=timezone_id, permissions=["geolocation"],
        geolocation={"latitude": 15.1205, "longitude": 108.7923, "accuracy": 12})


def _start(browser: Any, live_server: str, *, lang: str = "vi", timezone_id: str = "Asia/Ho_Chi_Minh",
           **options: Any) -> tuple[Any, Any, list[str], list[str]]:
    items = _todays_run()
    context = _phone(browser, timezone_id, **options)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server + "/courier/")
    page.fill("#username", "courier")
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server + "/courier/")
    if lang != "vi":
        page.goto(live_server + f"/courier/?lang={lang}")
    page.wait_for_selector(f'.c-order[data-item="{items[-1]}"]')
    return context, page, errors, items


def _settled(page: Any) -> None:
    page.wait_for_selector('#outbox-badge[data-pending="0"]', timeout=20000)


def _fill_delivery(page: Any, item_id: str, last4: str) -> None:
    _open(page, item_id)
    page.locator('#sheet-actions [data-action="delivered"]').tap()
    form = page.locator("#form-delivered")
    form.wait_for(state="visible")
    form.locator("#d-id4").fill(last4)
    form.locator("#d-sign").scroll_into_view_if_needed()
    _sign(page)


def _submit_delivery(page: Any) -> None:
    page.locator('#form-delivered button[type="submit"]').tap()
    page.wait_for_selector("#sheet[open]", state="detached")


def _send_back(item_id: str) -> None:
    """The office sends the order back to the agency meanwhile."""
    admin = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "admin")))
    change_status(admin, item_id, Status.RETURNED_TO_AGENCY)
    db.session.remove()


def test_refusals_read_in_vietnamese_without_the_servers_english(app, live_server, browser):
    context, page, errors, (_a, b, c, _d) = _start(browser, live_server)
    try:
        # wrong ID digits, and a delivery of an order sent back meanwhile by the office
        _wait(page, "navigator.serviceWorker.controller !== null")
        context.set_offline(True)
        _fill_delivery(page, c, "0000")
        _submit_delivery(page)
        _fill_delivery(page, b, PEOPLE[1][2][-4:])
        _submit_delivery(page)
        _send_back(b)
        context.set_offline(False)
        page.wait_for_selector('#outbox-badge[data-parked="2"]', timeout=20000)
        page.wait_for_selector("#parked-list li >> nth=1")
        # the first refused order opens again (the courier is likely still there), saying why
        page.wait_for_selector("#sheet[open]")
        assert page.locator("#sheet-title").text_content() == c
        sheet = page.locator("#sheet-body").text_content()
        assert "KHÔNG giao kết quả" in sheet and not ENGLISH.search(sheet), sheet
        page.locator("#sheet-close").tap()
        id_flag = page.locator(f'#parked-list li:has-text("{c}") .c-flag-rejected')
        state_flag = page.locator(f'#parked-list li:has-text("{b}") .c-flag-rejected')
        assert id_flag.get_attribute("data-reason") == "id_mismatch"
        assert state_flag.get_attribute("data-reason") == "status_not_allowed"
        assert "KHÔNG giao kết quả" in id_flag.text_content()
        assert state_flag.text_content().startswith("Đơn hiện ở trạng thái “Đã chuyển hoàn cơ quan”"), state_flag.text_content()
        listed = page.locator("#parked").text_content()
        assert not ENGLISH.search(listed), listed
        assert page.locator("#parked [title]").count() == 0  # no English tooltip either
        _open(page, b)
        sheet = page.locator("#sheet-body").text_content()
        assert "Đơn hiện ở trạng thái “Đã chuyển hoàn cơ quan”" in sheet and not ENGLISH.search(sheet), sheet
        page.locator("#sheet-close").tap()
        flash = page.locator("#scan-msg")
        assert flash.is_hidden() or not ENGLISH.search(flash.text_content())

        # the same records on the English page: in English
        page.goto(live_server + "/courier/?lang=en")
        page.wait_for_selector("#parked-list li >> nth=1")
        assert "do NOT hand the result over" in page.locator(f'#parked-list li:has-text("{c}")').text_content()
        assert page.locator(f'#parked-list li:has-text("{b}") .c-flag-rejected').text_content().startswith(
            "The order is now “Returned to the agency”")
        assert not errors, errors
    finally:
        context.close()


def test_a_batch_or_photo_refused_whole_is_said_in_vietnamese(app, live_server, browser):
    # no service worker: Playwright's routes see the page's own requests
    context, page, errors, (a, _b, _c, _d) = _start(browser, live_server, service_workers="block")
    try:
        context.route("**/api/v1/courier/files/**", lambda route: route.fulfill(
            status=413, content_type="application/json",
            body='{"code": 413, "status": "Payload Too Large", "message": "The body is larger than 2097152 bytes."}'))
        context.route("**/api/v1/courier/sync", lambda route: route.fulfill(
            status=422, content_type="application/json",
            body='{"code": 422, "status": "Unprocessable Entity", "message": "Send 1 to 200 events per batch."}'))
        _fill_delivery(page, a, PEOPLE[0][2][-4:])
        _submit_delivery(page)
        page.wait_for_selector("#parked-list li >> nth=1", timeout=20000)
        listed = page.locator("#parked").text_content()
        assert "Tệp quá lớn" in listed and "Một số dữ liệu không hợp lệ" in listed, listed
        assert "larger than" not in listed and "Send 1 to" not in listed, listed
        # refused with no reason: no data-reason at all (it was data-reason="null")
        flags = page.locator("#parked-list .c-flag-rejected")
        assert [flags.nth(i).get_attribute("data-reason") for i in range(flags.count())] == [None] * flags.count()
        assert not errors, errors
    finally:
        context.close()


def _box(locator: Any) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None
    return box


def test_touch_targets_of_the_order_sheet(app, live_server, browser):
    context, page, errors, (a, _b, _c, _d) = _start(browser, live_server)
    try:
        _open(page, a)
        call = page.locator('#sheet-body a[href="tel:0905123456"]')
        size = _box(call)
        assert size["width"] >= 44 and size["height"] >= 44, size
        assert call.evaluate("a => getComputedStyle(a).display") != "inline"
        page.locator('#sheet-actions [data-action="delivered"]').tap()
        form = page.locator("#form-delivered")
        form.wait_for(state="visible")
        radios = form.locator("input[type=radio]:visible")
        assert radios.count() == 4
        for i in range(radios.count()):
            radio = radios.nth(i)
            dot = _box(radio)
            row = _box(radio.locator("xpath=.."))
            assert dot["width"] >= 24 and dot["height"] >= 24, dot
            assert row["height"] >= 44 and row["width"] >= 300, row
        # a tap on the far end of a choice's row chooses it
        authorised = form.locator('label:has(input[value="authorised"])')
        row = _box(authorised)
        page.touchscreen.tap(row["x"] + row["width"] - 6, row["y"] + row["height"] / 2)
        assert form.locator('input[value="authorised"]').is_checked()
        page.wait_for_selector("#d-name:visible")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not errors, errors
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_the_last_record_says_what_it_was_and_until_when(app, live_server, browser, lang):
    # the phone set to Paris: the times are Vietnam's all the same
    context, page, errors, (a, _b, _c, _d) = _start(browser, live_server, lang=lang, timezone_id="Europe/Paris")
    try:
        _fill_delivery(page, a, PEOPLE[0][2][-4:])
        _submit_delivery(page)
        _settled(page)
        page.wait_for_selector(f'.c-order[data-item="{a}"][data-status="delivered"]')
        last = page.evaluate("""async (item) => {
            const r = await fetch('/api/v1/courier/orders/' + item);
            return (await r.json()).last_event;
        }""", a)
        clock = "%H:%M" if lang == "vi" else "%I:%M %p"
        when = dt.datetime.fromisoformat(last["device_time"]).astimezone(VIETNAM).strftime(clock)
        until = dt.datetime.fromisoformat(last["correctable_until"]).astimezone(VIETNAM).strftime(clock)
        page.goto(page.url)  # the run as the server has it now
        page.wait_for_selector(f'.c-order[data-item="{a}"][data-status="delivered"]')
        _open(page, a)
        what_box = page.locator("#sheet-body .c-last-what")
        assert what_box.evaluate("w => w.closest('dd').previousElementSibling.textContent") == (
            "Ghi nhận gần nhất" if lang == "vi" else "Last record")
        what = what_box.text_content()
        deadline = page.locator("#sheet-body .c-last-until").text_content()
        if lang == "vi":
            assert (what, deadline) == (f"Đã phát lúc {when}", f"Có thể sửa đến {until}"), (what, deadline)
        else:
            assert (what, deadline) == (f"Delivered at {when}", f"Can be corrected until {until}"), (what, deadline)
        # the correction form says which record it cancels
        page.locator('#sheet-actions [data-action="correction"]').tap()
        assert page.locator("#c-what").text_content().endswith(what)
        assert not errors, errors
    finally:
        context.close()


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_offline_the_id_digits_are_said_unchecked_before_saving(app, live_server, browser, lang):
    context, page, errors, (a, _b, _c, _d) = _start(browser, live_server, lang=lang)
    try:
        _open(page, a)
        page.locator('#sheet-actions [data-action="delivered"]').tap()
        warning = page.locator("#d-id4-offline")
        assert warning.is_hidden()  # online: the server checks the digits at once
        context.set_offline(True)
        page.wait_for_selector("#d-id4-offline:visible")
        text = warning.text_content()
        if lang == "vi":
            assert "Không có mạng" in text and "CCCD" in text and "sau khi đã giao kết quả" in text, text
        else:
            assert "cannot be checked" in text and "ID card" in text, text
        # above the digits, on the screen when they are typed
        assert _box(warning)["y"] < _box(page.locator("#d-id4"))["y"]
        page.locator("#d-id4").tap()
        page.locator("#d-id4").fill("1234")
        assert warning.is_visible()
        # the one-time code chosen instead: no warning about the digits
        page.locator('#form-delivered label:has(input[value="otp"])').tap()
        assert warning.is_hidden()
        page.locator('#form-delivered label:has(input[value="id_last4"])').tap()
        assert warning.is_visible()
        context.set_offline(False)
        page.wait_for_selector("#d-id4-offline", state="hidden")
        assert _order_box(page, a).count() == 1
        assert not errors, errors
    finally:
        context.close()
