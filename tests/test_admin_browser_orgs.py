"""The administration pages of counters, routes, API clients and business rules in a real browser
(Playwright on Debian's chromium, 1280 px wide, under the app's Content-Security-Policy), as a
national admin and as a province admin. Saves the screenshots in docs/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_pages_browser import CSP_LISTENER, INLINE_CODE, Watch, _log_in

from delivery_service import rules
from delivery_service.accounts.models import ApiClient, Role
from delivery_service.accounts.services import create_user
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orgs.models import Counter, PostalRoute
from delivery_service.units.models import AdminUnit, UnitLevel

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
WIDTH = 1280


def _page(browser: Any, origin: str, username: str) -> tuple[Any, Any, Watch]:  # noqa: F811
    context = browser.new_context(viewport={"width": WIDTH, "height": 900}, locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh", service_workers="block")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, origin)
    _log_in(page, origin, username)
    watch.take()
    return context, page, watch


def _clean(page: Any, watch: Watch) -> None:
    problems = watch.take() + page.evaluate(INLINE_CODE)
    assert not problems, problems


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_admin_creates_a_counter_a_route_an_api_client_and_changes_a_failure_reason(app, live_server, browser):  # noqa: F811
    SHOTS.mkdir(parents=True, exist_ok=True)
    db.session.remove()
    context, page, watch = _page(browser, live_server, "admin")
    try:
        # A counter.
        page.goto(live_server + "/admin/counters/new")
        page.fill("#f-code", "QNG-XA07")
        page.fill("#f-name", "Bộ phận một cửa phường Cẩm Thành")
        page.select_option("#f-level", "commune")
        page.fill("#f-unit", "21025")
        page.select_option("#f-post_office", "BC-QNG")
        page.fill("#f-hotline", "0255 3711 711")
        page.select_option("#f-label_format", "zpl")
        page.select_option("#f-label_size", "100x100")
        page.check("#f-label_requires_route")
        page.click("main form.order-form button[type=submit]")
        page.wait_for_url("**/admin/counters")
        assert page.locator('tr[data-code="QNG-XA07"]').count() == 1
        _clean(page, watch)
        page.screenshot(path=str(SHOTS / "admin-counters.png"), full_page=True)
        # A route with the demo courier and a backup.
        page.goto(live_server + "/admin/routes/new")
        page.fill("#f-code", "QNG-07")
        page.fill("#f-name", "Tuyến phát Cẩm Thành 7")
        page.select_option("#f-post_office", "BC-QNG")
        page.select_option("#f-courier", "courier")
        page.fill("#f-capacity_per_day", "45")
        page.select_option("#f-backup", "QNG-02")
        page.click("main form.order-form button[type=submit]")
        # a new route covers nothing yet: its coverage page comes next, on the administration's side
        page.wait_for_url("**/admin/routes/*/coverage")
        _clean(page, watch)
        page.locator('input[name="communes"]').first.check()
        page.click("main form.order-form button.btn-primary[type=submit]")  # Save (the commune filter has its own)
        page.wait_for_url("**/admin/routes")
        row = page.locator('tr[data-code="QNG-07"]')
        assert row.count() == 1 and "QNG-02" in row.inner_text() and "45" in row.inner_text()
        _clean(page, watch)
        page.screenshot(path=str(SHOTS / "admin-routes.png"), full_page=True)
        # An API client: the token once.
        page.goto(live_server + "/admin/clients")
        page.select_option("#f-counter", "QNG-XA07")
        page.fill("#f-name", "iGate Cẩm Thành")
        page.click("text=Tạo và hiện khóa một lần")
        token = page.locator("#token").inner_text().strip()
        assert token.startswith("dsk_")
        _clean(page, watch)
        page.reload()  # F5: the page after the redirect, without the token; no second client
        assert token not in page.content() and page.locator("#secret-gone").count() == 1
        db.session.remove()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiClient)
                                 .where(ApiClient.name == "iGate Cẩm Thành")) == 1
        db.session.remove()
        page.click("text=Quay lại danh sách")
        page.wait_for_url("**/admin/clients")
        assert token not in page.content() and "iGate Cẩm Thành" in page.content()
        _clean(page, watch)
        # Its webhook: the signing secret once, then pause and rotation offered.
        card = page.locator("section.card", has_text="iGate Cẩm Thành")
        card.locator('input[name="url"]').fill("https://93.184.216.34/hooks/delivery")
        card.locator("button", has_text="Lưu webhook").click()
        assert page.locator("#secret").inner_text().startswith("whsec_")
        page.click("text=Đã sao chép, quay lại")
        page.wait_for_url("**/admin/clients")
        card = page.locator("section.card", has_text="iGate Cẩm Thành")
        assert card.locator("button", has_text="Đổi khóa ký").count() == 1
        _clean(page, watch)
        page.screenshot(path=str(SHOTS / "admin-clients.png"), full_page=True)
        # A failure reason's Vietnamese label.
        page.goto(live_server + "/admin/settings")
        field = page.locator('input[name="reasons-0-label"]')
        code = page.locator('input[name="reasons-0-code"]').input_value()
        field.fill("Không có người nhận ở nhà")
        page.click("main form.order-form button[type=submit]")
        page.wait_for_url("**/admin/settings")
        assert "Đã lưu quy tắc nghiệp vụ" in page.content()
        _clean(page, watch)
        page.screenshot(path=str(SHOTS / "admin-settings.png"), full_page=True)
    finally:
        context.close()
    db.session.remove()
    assert db.session.scalar(sa.select(Counter.label_format).where(Counter.code == "QNG-XA07")) == "zpl"
    assert db.session.scalar(sa.select(PostalRoute.capacity_per_day).where(PostalRoute.code == "QNG-07")) == 45
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiClient).where(
        ApiClient.name == "iGate Cẩm Thành")) == 1
    rules.invalidate()
    assert rules.current().reason(code).label == "Không có người nhận ở nhà"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_province_admin_sees_only_their_province_and_reads_the_rules(app, live_server, browser):  # noqa: F811
    today = local_today()
    user = create_user(username="qt.hti", full_name="Quản trị Hà Tĩnh", password=DEMO_PASSWORD, role=Role.ADMIN)
    user.area_unit_id = db.session.scalar(sa.select(AdminUnit.id).where(
        AdminUnit.level == UnitLevel.PROVINCE, AdminUnit.code == "42", AdminUnit.valid_from <= today,
        sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today)))
    db.session.commit()
    db.session.remove()
    context, page, watch = _page(browser, live_server, "qt.hti")
    try:
        page.goto(live_server + "/admin/counters")
        assert page.locator('tr[data-code="HTI-DUCTHO"]').count() == 1
        assert page.locator('tr[data-code="QNG-TTHCC"]').count() == 0
        assert page.locator('tr[data-code="QNM-TAMKY"]').count() == 0
        _clean(page, watch)
        page.goto(live_server + "/admin/routes")
        assert page.locator('tr[data-code="HTI-01"]').count() == 1
        assert page.locator('tr[data-code="QNG-01"]').count() == 0
        page.goto(live_server + "/admin/settings")
        assert page.locator("main button[type=submit]", has_text="Lưu").count() == 0
        assert page.locator('input[name="max_failed_attempts"]').is_disabled()
        _clean(page, watch)
    finally:
        context.close()
