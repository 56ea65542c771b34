"""The user administration in a real browser: Playwright driving Debian's chromium at a desk's width
(1280 px) against the service in a thread on the SQLite test database.

As the national admin: create a counter clerk (the password is generated and shown once), reset
their password, log in as them and be made to change it before anything else, then find those
events in the audit log. As a province admin: only the province's users are listed, another
province's user is not there (404). Screenshots of the main pages go to docs/screenshots/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD
from flask import Flask
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_pages_browser import CSP_LISTENER, INLINE_CODE, Watch
from web_helpers import make_user

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import create_user
from delivery_service.extensions import db
from delivery_service.units.models import AdminUnit, UnitLevel

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
WIDTH = 1280
NEW_PASSWORD = "Mat-khau-cua-Trinh-26"


def _context(browser: Any, origin: str) -> tuple[Any, Any, Watch]:  # noqa: F811
    context = browser.new_context(viewport={"width": WIDTH, "height": 900}, locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh", service_workers="block")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    return context, page, Watch(page, origin)


def _log_in(page: Any, origin: str, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto(origin + "/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    assert "/login" not in page.url, f"{username} could not log in"


def _clean(page: Any, watch: Watch) -> None:
    problems = watch.take() + page.evaluate(INLINE_CODE)
    assert not problems, problems


def _demo_people() -> dict[str, int]:
    """A few more accounts, so that the list looks like an office's; and a Hà Tĩnh clerk."""
    for username, name, role, counter in (("nv.hoa", "Nguyễn Thị Hoa", Role.COUNTER_STAFF, "QNG-TTHCC"),
                                          ("bt.duc", "Phạm Minh Đức", Role.COURIER, None),
                                          ("nv.anh", "Đỗ Ngọc Ánh", Role.COUNTER_STAFF, "QNG-TTHCC")):
        create_user(username=username, full_name=name, password=DEMO_PASSWORD, role=role,
                    counter_code=counter, post_office_code=None if counter else "BC-QNG")
    make_user("hti.staff", counter_code="HTI-DUCTHO")
    admin = create_user(username="qt.qng", full_name="Quản trị tỉnh Quảng Ngãi", password=DEMO_PASSWORD,
                        role=Role.ADMIN)
    admin.area_unit_id = db.session.scalar(sa.select(AdminUnit.id).where(
        AdminUnit.level == UnitLevel.PROVINCE, AdminUnit.code == "51", AdminUnit.valid_to.is_(None)))
    db.session.commit()
    ids = {u.username: u.id for u in db.session.scalars(sa.select(User))}
    db.session.remove()
    return ids


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_admin_creates_resets_and_the_user_must_change_password(app: Flask, live_server, browser):  # noqa: F811
    ids = _demo_people()
    SHOTS.mkdir(parents=True, exist_ok=True)
    context, page, watch = _context(browser, live_server)
    try:
        _log_in(page, live_server, "admin")
        page.click("nav.mainnav >> text=Quản trị")
        page.click(".admin-sections >> text=Người dùng")
        assert page.url.endswith("/admin/users")
        page.click("#new-user")
        page.fill("#f-username", "nv.trinh")
        page.fill("#f-full_name", "Lê Thị Trinh")
        page.select_option("#f-role", "counter_staff")
        page.select_option("#f-counter_id", label="QNG-TTHCC · Trung tâm Phục vụ hành chính công tỉnh Quảng Ngãi")
        page.screenshot(path=str(SHOTS / "admin-user-form.png"), full_page=True)
        page.click("#user-form button[type=submit]")
        first = page.inner_text("#temporary-password").strip()
        assert len(first) >= 10
        _clean(page, watch)
        page.click("text=Xong")
        assert "Chờ đổi mật khẩu" in page.inner_text("#user-status")
        # the admin resets it again (lost slip of paper): a new generated password, shown once
        page.click("#reset-form button[type=submit]")
        temporary = page.inner_text("#temporary-password").strip()
        assert temporary != first
        page.goto(live_server + "/admin/users?role=counter_staff")
        rows = page.locator("#users tbody tr")
        assert rows.count() >= 4 and page.locator('tr[data-username="nv.trinh"]').count() == 1
        page.goto(live_server + "/admin/users")
        _clean(page, watch)
        page.screenshot(path=str(SHOTS / "admin-users.png"), full_page=True)

        clerk_context, clerk, clerk_watch = _context(browser, live_server)
        try:
            _log_in(clerk, live_server, "nv.trinh", temporary)
            assert clerk.url.endswith("/account/password"), clerk.url
            clerk.goto(live_server + "/counter")  # any page leads back until the password changes
            assert clerk.url.endswith("/account/password")
            clerk.fill("#f-current_password", temporary)
            clerk.fill("#f-new_password", NEW_PASSWORD)
            clerk.fill("#f-repeat_password", NEW_PASSWORD)
            clerk.click("main button[type=submit]")
            clerk.wait_for_load_state("load")
            clerk.goto(live_server + "/counter")
            assert clerk.url.endswith("/counter"), clerk.url
            _clean(clerk, clerk_watch)
        finally:
            clerk_context.close()

        page.goto(live_server + "/admin/audit")
        page.select_option("#f-action", "user.password_reset")
        page.click("#audit-search button[type=submit]")
        user_id = ids.get("nv.trinh") or db.session.scalar(sa.select(User.id).where(User.username == "nv.trinh"))
        assert page.locator(f'tr[data-action="user.password_reset"][data-object="user:{user_id}"]').count() == 1
        page.fill("#f-actor", "nv.trinh")
        page.select_option("#f-action", "")
        page.click("#audit-search button[type=submit]")
        actions = page.locator("#audit-events tbody tr").evaluate_all("rows => rows.map(r => r.dataset.action)")
        assert actions[:2] == ["password_change", "login"], actions
        page.goto(live_server + "/admin/audit")
        assert page.locator(f'tr[data-action="user.create"][data-object="user:{user_id}"]').count() == 1
        _clean(page, watch)
        page.screenshot(path=str(SHOTS / "admin-audit.png"), full_page=False)
    finally:
        context.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_province_admin_sees_only_their_province(app: Flask, live_server, browser):  # noqa: F811
    ids = _demo_people()
    context, page, watch = _context(browser, live_server)
    try:
        _log_in(page, live_server, "qt.qng")
        page.goto(live_server + "/admin/")
        sections = page.inner_text(".admin-sections")
        assert "Người dùng" in sections and "Tác vụ nền" not in sections
        page.click(".admin-sections >> text=Người dùng")
        listed = set(page.locator("#users tbody tr").evaluate_all("rows => rows.map(r => r.dataset.username)"))
        assert {"counter", "supervisor", "district", "courier", "nv.hoa", "bt.duc"} <= listed
        assert not listed & {"hti.staff", "admin"}
        page.fill("#f-q", "hti")
        page.click("form[role=search] button[type=submit]")
        assert page.locator("#users").count() == 0
        _clean(page, watch)
        response = page.goto(live_server + f"/admin/users/{ids['hti.staff']}")
        assert response is not None and response.status == 404
        watch.take()
        # the province's own clerk opens, and the counter list offers only the province's counters
        page.goto(live_server + f"/admin/users/{ids['counter']}/edit")
        options = page.locator("#f-counter_id option").all_inner_texts()
        assert any("QNG-TTHCC" in o for o in options) and not any("HTI-" in o for o in options)
        assert page.locator("#f-province_id option").all_inner_texts() == ["51 · Tỉnh Quảng Ngãi"]
        _clean(page, watch)
    finally:
        context.close()
