"""The citizen's delivery window in the courier app, in a real browser (Debian's chromium at 390x844, as
in test_courier_browser.py) against the service on the test database (SQLite and PostgreSQL).

On the run each order with a window carries a small badge ("08:00–12:00"), marked "đã qua" once the
window is over for today on Vietnam's clock, whatever the phone's zone; the order's sheet says
"Khung giờ giao 08:00–12:00"; orders without one show nothing; nothing is wider than the screen; and
offline the badges come from the saved run."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import test_courier_browser
from conftest import order_payload
from test_courier_browser import PEOPLE, _log_in, _open, _wait
from web_helpers import make_order

from delivery_service.accounts.models import User
from delivery_service.accounts.services import Actor
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status
from delivery_service.routing.services import sequence_run

browser = test_courier_browser.browser  # the fixtures: Playwright's chromium, the service in a thread
live_server = test_courier_browser.live_server

WIDTH = 390
WINDOWS = {"morning": {"from": "08:00", "to": "12:00"}, "none": None, "early": {"from": "06:00", "to": "06:30"}}


def _run_with_windows() -> dict[str, str]:
    """Three orders on route QNG-01 for today, handed to its courier and sequenced: one with the
    morning window, one without, one whose window ends at 06:30; their item ids by that name."""
    today = local_today()
    admin = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "admin")))
    items = {}
    for (key, window), (name, detail, _id_number) in zip(WINDOWS.items(), PEOPLE, strict=False):
        order = make_order(recipient={"name": name, "phone": "0905123456"},
                           address={**order_payload()["address"], "detail": detail},
                           appointment_date=today.isoformat(), delivery_window=window)
        change_status(admin, order.item_id, Status.HANDED_TO_COURIER)
        items[key] = order.item_id
    sequence_run(admin, "QNG-01", today)
    db.session.remove()
    return items


def _phone(browser: Any, timezone_id: str) -> Any:
    """A courier's phone at 390x844: touch, Vietnamese, the given zone, a GPS fix."""
    return browser.new_context(
        viewport={"width": WIDTH, "height": 844}, device_scale_factor=2, is_mobile=True, has_touch=True,
        locale="vi-VN", timezone_id=timezone_id, permissions=["geolocation"],
        geolocation={"latitude": 15.1205, "longitude": 108.7923, "accuracy": 12})


def _badges(page: Any, items: dict[str, str]) -> dict[str, Any]:
    """Per order: None without a badge, else its time, whether it is marked passed (and visibly), and
    whether it lies within the screen."""
    return page.evaluate("""(items) => Object.fromEntries(Object.entries(items).map(([key, item]) => {
        const badge = document.querySelector(`.c-order[data-item="${item}"] .c-window`);
        if (!badge) return [key, null];
        const mark = badge.querySelector('.c-window-passed');
        const box = badge.getBoundingClientRect();
        return [key, {time: badge.querySelector('.c-window-time').textContent, passed: badge.dataset.passed,
                      mark: mark.checkVisibility() ? mark.textContent : null,
                      inside: box.left >= 0 && box.right <= innerWidth && box.width > 0}];
    }))""", items)


def _no_sideways_scroll(page: Any) -> bool:
    return page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")


def _sheet_window(page: Any) -> str | None:
    """What the open sheet says of the window: "caption time[ mark]", or None when it says nothing."""
    return page.evaluate("""() => {
        const dt = [...document.querySelectorAll('#sheet-body dt')]
            .find((x) => x.nextElementSibling?.querySelector('.c-window'));
        if (!dt) return null;
        const badge = dt.nextElementSibling.querySelector('.c-window');
        const mark = badge.querySelector('.c-window-passed');
        return [dt.textContent, badge.querySelector('.c-window-time').textContent,
                mark.checkVisibility() ? mark.textContent : ''].join(' ').trim();
    }""")


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "UTC"])
def test_the_delivery_window_on_the_run_and_the_sheet(app, live_server, browser, zone):
    items = _run_with_windows()
    # 10:00 in Vietnam (03:00 in UTC): the morning window is on, the one that ended at 06:30 is over
    # (on a phone set to UTC its own clock says 03:00, before both)
    moment = dt.datetime.combine(local_today(), dt.time(10, 0), tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    context = _phone(browser, zone)
    page = context.new_page()
    page.clock.set_fixed_time(moment)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    expected = {
        "morning": {"time": "08:00–12:00", "passed": "false", "mark": None, "inside": True},
        "none": None,
        "early": {"time": "06:00–06:30", "passed": "true", "mark": "đã qua", "inside": True},
    }
    try:
        _log_in(page, live_server)
        page.wait_for_selector(f'.c-order[data-item="{items["early"]}"]')
        assert page.locator(".c-order").count() == 3
        assert _badges(page, items) == expected
        assert _no_sideways_scroll(page)
        # a window belongs to its run's day: a past run's are over, a later run's are not (at 10:00 today)
        assert page.evaluate("""() => [['2000-01-01', '12:00'], [null, '12:00'], [null, '06:30'],
            ['2999-01-01', '06:30']].map(([day, to]) => window.courierApp.windowPassed(to, day))""") == [
            True, False, True, False]

        _open(page, items["morning"])
        assert _sheet_window(page) == "Khung giờ giao 08:00–12:00"
        assert _no_sideways_scroll(page)
        page.click("#sheet-close")
        _open(page, items["early"])
        assert _sheet_window(page) == "Khung giờ giao 06:00–06:30 đã qua"
        page.click("#sheet-close")
        _open(page, items["none"])
        assert _sheet_window(page) is None
        assert "Khung giờ giao" not in page.locator("#sheet-body").text_content()
        page.click("#sheet-close")

        # offline: the app opens from the saved run, windows included, and asks nothing more
        _wait(page, "navigator.serviceWorker.controller !== null")
        context.set_offline(True)
        page.reload()
        page.wait_for_selector(f'.c-order[data-item="{items["early"]}"] .c-window')
        assert _badges(page, items) == expected
        assert _no_sideways_scroll(page)
        assert not errors, errors
    finally:
        context.close()
