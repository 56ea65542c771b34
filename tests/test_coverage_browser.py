"""The coverage editor's commune filter in a real browser (Playwright on Debian's chromium, under the
app's Content-Security-Policy): with JavaScript the list narrows as one types, without it the filter
button posts the form and gets it back narrowed, with the unsaved ticks and fields as they were and
nothing saved; either way the communes it hides stay ticked and are saved."""

from __future__ import annotations

from typing import Any

import pytest
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_pages_browser import CSP_LISTENER, INLINE_CODE, Watch, _log_in
from test_web_routing import coverage_state

from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.units.models import UnitLevel
from delivery_service.units.services import unit_index

SAVE = "main form.order-form button[type=submit].btn-primary"


def _visible(page: Any) -> list[str]:
    return page.locator("#commune-list label.check:visible").all_inner_texts()


def _context(browser: Any, *, javascript: bool) -> Any:  # noqa: F811
    return browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                               timezone_id="Asia/Ho_Chi_Minh", service_workers="block",
                               java_script_enabled=javascript)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_commune_filter_with_and_without_javascript(app, live_server, browser):  # noqa: F811
    db.session.remove()
    before = coverage_state("QNG-02")[0]
    assert len(before) == 2
    today = local_today()
    dak_cam, dak_bla = (unit_index().find(UnitLevel.COMMUNE, code, today).id for code in ("23284", "23302"))

    context = _context(browser, javascript=True)
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, live_server)
    try:
        _log_in(page, live_server, "supervisor")
        page.goto(live_server + "/routes/QNG-02/coverage")
        everything = page.locator("#commune-list label.check").count()
        assert len(_visible(page)) == everything > 50
        page.fill("#f-commune-q", "PHUONG dak")  # no accents, upper case
        assert [t.split("\n")[0].strip() for t in _visible(page)] == ["Phường Đăk Bla", "Phường Đăk Cấm"]
        assert page.inner_text("#commune-shown") == "2"
        page.evaluate("window.stayed = true")  # gone if the page is loaded again
        page.press("#f-commune-q", "Enter")  # no round trip, nothing saved
        page.click("#commune-filter-button")
        assert page.evaluate("window.stayed") is True and len(_visible(page)) == 2
        page.check(f'input[name="communes"][value="{dak_cam}"]')
        page.fill("#f-commune-q", "không có xã này")
        assert _visible(page) == [] and page.is_visible("#commune-none")
        problems = watch.take() + page.evaluate(INLINE_CODE)
        assert not problems, problems
        page.press("#f-capacity_per_day", "Enter")  # Enter in another field still saves
        page.wait_for_url("**/routes")
    finally:
        context.close()
    db.session.remove()
    saved = coverage_state("QNG-02")
    assert saved[0] == sorted([*before, dak_cam])

    context = _context(browser, javascript=False)
    page = context.new_page()
    rules = "\n21025 | phố | Hùng Vương"  # a blank first line, kept as typed
    try:
        _log_in(page, live_server, "supervisor")
        page.goto(live_server + "/routes/QNG-02/coverage")
        page.fill("#f-commune-q", "phuong dak")
        with page.expect_navigation():
            page.click("#commune-filter-button")
        # (Đăk Cấm first: ticked communes come first)
        assert [t.split("\n")[0].strip() for t in _visible(page)] == ["Phường Đăk Cấm", "Phường Đăk Bla"]
        assert page.input_value("#f-commune-q") == "phuong dak"
        page.check(f'input[name="communes"][value="{dak_bla}"]')
        page.fill("#f-rules", rules)
        page.fill("#f-capacity_per_day", "45")
        page.fill("#f-commune-q", "tra cau")
        with page.expect_navigation():
            page.press("#f-commune-q", "Enter")  # the filter's button too: filters, does not save
        assert "/routes/QNG-02/coverage" in page.url
        visible = [t.split("\n")[0].strip() for t in _visible(page)]
        assert visible and all("Trà Câu" in name for name in visible), visible
        db.session.remove()
        assert coverage_state("QNG-02") == saved  # nothing saved yet
        # the unsaved edits came back: Đăk Bla ticked though hidden, the rules, the capacity
        assert page.is_checked(f'input[name="communes"][value="{dak_bla}"]')
        assert page.is_checked(f'input[name="communes"][value="{dak_cam}"]')
        assert page.input_value("#f-rules") == rules and page.input_value("#f-capacity_per_day") == "45"
        page.click(SAVE)
        page.wait_for_url("**/routes")
    finally:
        context.close()
    db.session.remove()
    # the communes the filter hid were sent as they were: still covered
    after = coverage_state("QNG-02")
    assert after[0] == sorted([*before, dak_cam, dak_bla]) and after[2] == 45
    assert "Hùng Vương" in after[1]
