"""The coverage editor's commune filter in a real browser (Playwright on Debian's chromium, under the
app's Content-Security-Policy): with JavaScript the list narrows as one types, without it the filter
button reloads the page narrowed; either way the communes it hides stay ticked and are saved."""

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
        page.press("#f-commune-q", "Enter")  # no reload, nothing saved
        assert "?q=" not in page.url and len(_visible(page)) == 2
        page.check(f'input[name="communes"][value="{dak_cam}"]')
        page.fill("#f-commune-q", "không có xã này")
        assert _visible(page) == [] and page.is_visible("#commune-none")
        problems = watch.take() + page.evaluate(INLINE_CODE)
        assert not problems, problems
        page.click(SAVE)
        page.wait_for_url("**/routes")
    finally:
        context.close()
    db.session.remove()
    assert coverage_state("QNG-02")[0] == sorted([*before, dak_cam])

    context = _context(browser, javascript=False)
    page = context.new_page()
    try:
        _log_in(page, live_server, "supervisor")
        page.goto(live_server + "/routes/QNG-02/coverage")
        page.fill("#f-commune-q", "đăk bla")
        page.click("#commune-filter-button")
        page.wait_for_url("**/routes/QNG-02/coverage?q=*")
        assert [t.split("\n")[0].strip() for t in _visible(page)] == ["Phường Đăk Bla"]
        assert page.input_value("#f-commune-q") == "đăk bla"
        page.check(f'input[name="communes"][value="{dak_bla}"]')
        page.click(SAVE)
        page.wait_for_url("**/routes")
    finally:
        context.close()
    db.session.remove()
    # the communes the filter hid were sent as they were: still covered
    assert coverage_state("QNG-02")[0] == sorted([*before, dak_cam, dak_bla])
