"""The new route's courier list in a real browser (Playwright on Debian's chromium, under the app's
Content-Security-Policy): with JavaScript it offers, for the post office chosen, exactly the couriers
the save accepts (admin.org_services.couriers_for, the one rule), and choosing another office clears a
courier who no longer fits; a form the server sends back keeps the courier sent; without JavaScript
every group is offered, as before."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD
from test_admin_route_couriers import _couriers_elsewhere
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_pages_browser import CSP_LISTENER, INLINE_CODE, Watch, _log_in

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import create_user
from delivery_service.admin import org_services
from delivery_service.extensions import db
from delivery_service.orgs.models import PostalRoute

SAVE = "main form.order-form button[type=submit]"
# the couriers the list offers: not in a disabled or hidden group
OFFERED = """() => [...document.querySelectorAll('#f-courier option')]
  .filter((o) => o.value && !o.matches(':disabled') && !o.closest('optgroup')?.hidden).map((o) => o.value)"""


def _context(browser: Any, *, javascript: bool) -> Any:  # noqa: F811
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh", service_workers="block",
                                  java_script_enabled=javascript)
    context.add_init_script(CSP_LISTENER)
    return context


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_new_routes_couriers_narrow_to_the_office_chosen(app, live_server, browser):  # noqa: F811
    _couriers_elsewhere()  # c.ductho of BC-DUCTHO; c.hatinh of no office, driving HTI-01 (Hà Tĩnh)
    create_user(username="c.free", full_name="Hồ Văn Tự Do", password=DEMO_PASSWORD, role=Role.COURIER)
    db.session.commit()  # c.free: no office, no route, fits any office
    admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
    fitting = {o.code: sorted(u.username for u in org_services.couriers_for(admin, o))
               for o in db.session.scalars(org_services.offices_query(admin))}
    everyone = sorted({name for names in fitting.values() for name in names})
    assert {"BC-QNG", "BC-DUCTHO", "BC-TAMKY"} <= fitting.keys()
    assert "c.ductho" in fitting["BC-DUCTHO"] and "c.ductho" not in fitting["BC-QNG"]
    assert "c.hatinh" in fitting["BC-DUCTHO"] and "courier" in fitting["BC-QNG"]
    db.session.remove()

    context = _context(browser, javascript=True)
    page = context.new_page()
    watch = Watch(page, live_server)
    try:
        _log_in(page, live_server, "admin")
        page.goto(live_server + "/admin/routes/new")
        assert sorted(page.evaluate(OFFERED)) == everyone  # no office chosen yet
        for code, names in fitting.items():
            page.select_option("#f-post_office", code)
            assert sorted(page.evaluate(OFFERED)) == names, code
        # a courier who no longer fits the office chosen is cleared; one who still fits stays
        page.select_option("#f-post_office", "BC-DUCTHO")
        page.select_option("#f-courier", "c.ductho")
        page.select_option("#f-post_office", "BC-QNG")
        assert page.input_value("#f-courier") == ""
        page.select_option("#f-courier", "c.free")
        page.select_option("#f-post_office", "BC-TAMKY")
        assert page.input_value("#f-courier") == "c.free"
        # a form sent back by the server shows the courier it was sent with, and says why it does not fit
        page.select_option("#f-post_office", "BC-DUCTHO")
        page.select_option("#f-courier", "c.ductho")
        page.fill("#f-code", "QNG-09")
        page.fill("#f-name", "Tuyến thử")
        page.evaluate("document.getElementById('f-post_office').value = 'BC-QNG'")  # no change event
        problems = watch.take() + page.evaluate(INLINE_CODE)
        assert not problems, problems
        with page.expect_navigation():
            page.click(SAVE)
        assert all("422" in problem for problem in watch.take())  # the refusal, and only it
        text = re.sub(r"\s+", " ", page.inner_text("main"))
        assert "Bưu tá này không nhận được tuyến của bưu cục BC-QNG" in text
        assert page.input_value("#f-post_office") == "BC-QNG" and page.input_value("#f-courier") == "c.ductho"
        assert "c.ductho" in page.evaluate(OFFERED)
        # a courier who fits is saved with the route
        page.select_option("#f-courier", "courier")
        page.click(SAVE)
        page.wait_for_url("**/admin/routes/*/coverage")
        problems = watch.take() + page.evaluate(INLINE_CODE)
        assert not problems, problems
    finally:
        context.close()
    db.session.remove()
    route = db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == "QNG-09"))
    assert route.courier_id == db.session.scalar(sa.select(User.id).where(User.username == "courier"))

    context = _context(browser, javascript=False)
    page = context.new_page()
    try:  # without JavaScript: every group, whatever the office, as before
        _log_in(page, live_server, "admin")
        page.goto(live_server + "/admin/routes/new")
        page.select_option("#f-post_office", "BC-QNG")
        options = page.locator("#f-courier option")
        offered = [options.nth(i).get_attribute("value") for i in range(options.count())]
        assert sorted(v for v in offered if v) == everyone
        assert page.locator("#f-courier optgroup[disabled], #f-courier optgroup[hidden]").count() == 0
    finally:
        context.close()
