"""The administration's destructive buttons ask first, in a real browser (Playwright on Debian's
chromium, under the pages' Content-Security-Policy): revoking an API token, removing a webhook,
rotating its signing secret, deactivating an account and deleting a failed job show a question naming what they act on
(in the page's language); "Cancel" changes nothing and posts nothing, "OK" does it."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD
from flask import Flask
from test_admin_jobs import _job
from test_admin_jobs import _state as _job_state
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_pages_browser import CSP_LISTENER, INLINE_CODE, Watch, _log_in

from delivery_service.accounts.models import ApiClient, AuditEvent, Role, User
from delivery_service.accounts.services import create_user
from delivery_service.admin import org_services
from delivery_service.extensions import db
from delivery_service.webhooks.models import WebhookEndpoint


def _setup() -> tuple[int, int]:
    """An API client with a webhook, and a clerk to deactivate."""
    admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
    client, _token = org_services.create_client(admin, {"name": "iGate Quảng Ngãi", "counter": "QNG-TTHCC"})
    org_services.set_webhook(admin, client, "https://93.184.216.34/hooks/delivery")
    clerk = create_user(username="nv.hoa", full_name="Nguyễn Thị Hoa", password=DEMO_PASSWORD,
                        role=Role.COUNTER_STAFF, counter_code="QNG-TTHCC")
    db.session.commit()
    ids = client.id, clerk.id
    db.session.remove()
    return ids


def _state(client_id: int, user_id: int) -> dict[str, Any]:
    db.session.remove()
    state = {
        "revoked": db.session.get(ApiClient, client_id).revoked_at is not None,
        "webhook": db.session.scalar(sa.select(WebhookEndpoint.id)
                                     .where(WebhookEndpoint.api_client_id == client_id)) is not None,
        "rotations": db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                                       .where(AuditEvent.action == "webhook.rotate_secret")),
        "active": db.session.get(User, user_id).active,
    }
    db.session.remove()
    return state


class Dialogs:
    """Answers the page's confirm() dialogs as told, and keeps their questions."""

    def __init__(self, page: Any) -> None:
        self.questions: list[str] = []
        self.accept = False
        page.on("dialog", self._answer)

    def _answer(self, dialog: Any) -> None:
        self.questions.append(dialog.message)
        dialog.accept() if self.accept else dialog.dismiss()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_destructive_admin_actions_ask_first_and_cancel_changes_nothing(app: Flask, live_server, browser):  # noqa: F811
    client_id, user_id = _setup()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh", service_workers="block")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, live_server)
    dialogs = Dialogs(page)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url.removeprefix(live_server)) if r.method == "POST" else None)
    card = f'section[data-client="{client_id}"]'
    # (button, the question, what "OK" changes, the path it posts to)
    actions = [
        (f"{card} button:text('Đổi khóa ký')",
         "Đổi khóa ký webhook của «iGate Quảng Ngãi»? Khóa ký cũ chỉ còn hiệu lực trong thời gian chồng lấn; "
         "phần mềm một cửa phải dùng khóa mới.", {"rotations": 1}, f"/admin/clients/{client_id}/webhook/rotate"),
        (f"{card} button:text('Xóa webhook')",
         "Xóa webhook của «iGate Quảng Ngãi»? Phần mềm một cửa sẽ không còn nhận thông báo trạng thái.",
         {"webhook": False}, f"/admin/clients/{client_id}/webhook/clear"),
        (f"{card} button:text('Thu hồi khóa API')",
         "Thu hồi khóa API của «iGate Quảng Ngãi»? Không thể hoàn tác.", {"revoked": True},
         f"/admin/clients/{client_id}/revoke"),
    ]
    try:
        _log_in(page, live_server, "admin")
        for button, question, change, path in actions:
            page.goto(live_server + "/admin/clients")
            before = _state(client_id, user_id)
            dialogs.accept, posts[:] = False, []
            page.evaluate("window.stayed = true")  # gone if the page is left
            page.click(button)
            assert dialogs.questions[-1] == question
            assert page.evaluate("window.stayed") is True and posts == []
            assert _state(client_id, user_id) == before, question
            dialogs.accept = True
            with page.expect_navigation():
                page.click(button)
            assert dialogs.questions[-1] == question and posts == [path]
            assert _state(client_id, user_id) == {**before, **change}, question
            problems = watch.take() + page.evaluate(INLINE_CODE)
            assert not problems, problems
        # An account, on its page, in English this time.
        page.goto(f"{live_server}/admin/users/{user_id}?lang=en")
        dialogs.accept, posts[:] = False, []
        page.click("#deactivate")
        assert dialogs.questions[-1] == ("Deactivate the account «nv.hoa» (Nguyễn Thị Hoa)? They can no longer "
                                         "log in, and their open sessions end.")
        assert posts == [] and _state(client_id, user_id)["active"] is True
        dialogs.accept = True
        with page.expect_navigation():
            page.click("#deactivate")
        assert posts == [f"/admin/users/{user_id}/deactivate"] and _state(client_id, user_id)["active"] is False
        problems = watch.take() + page.evaluate(INLINE_CODE)
        assert not problems, problems
    finally:
        context.close()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_deleting_a_failed_job_asks_first(app: Flask, live_server, browser):  # noqa: F811
    doomed = _job("failed", "delivery_service.reports.jobs:fold", error="OperationalError")
    db.session.commit()
    db.session.remove()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh", service_workers="block")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, live_server)
    dialogs = Dialogs(page)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url.removeprefix(live_server)) if r.method == "POST" else None)
    button = f"form[action='/admin/jobs/{doomed}/delete'] button"
    try:
        _log_in(page, live_server, "admin")
        page.goto(live_server + "/admin/jobs")
        posts.clear()
        page.click(button)
        assert dialogs.questions == [f"Xóa tác vụ #{doomed} (delivery_service.reports.jobs:fold)? "
                                     "Tác vụ sẽ không chạy lại; không thể hoàn tác."]
        assert posts == [] and _job_state(doomed) == ("failed", 3)
        dialogs.accept = True
        with page.expect_navigation():
            page.click(button)
        assert posts == [f"/admin/jobs/{doomed}/delete"] and _job_state(doomed) is None
        problems = watch.take() + page.evaluate(INLINE_CODE)
        assert not problems, problems
    finally:
        context.close()
