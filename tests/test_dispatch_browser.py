"""The dispatch page on a desktop screen (outside review: the reason's badge did not wrap, the table
grew to 1,575 px inside 1,246 and the move form started off screen at 1,280 px)."""

from __future__ import annotations

import pytest
from conftest import order_payload
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_pages_browser import _log_in
from web_helpers import make_order

from delivery_service.extensions import db

UNCOVERED = "21034"  # Xã An Phú (Quảng Ngãi): no demo route covers it
PART_COVERED = "21220"  # Xã Sơn Tịnh: only QNG-02's hamlet rule (Thôn Trường Thọ): the longest reason


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_move_form_is_on_screen_at_1280_px(app, live_server, browser):  # noqa: F811
    for commune, detail in ((UNCOVERED, "Thôn Phú Hòa"), (PART_COVERED, "Thôn Hà Tây"),
                            (UNCOVERED, "Số 123 đường Nguyễn Công Phương, tổ dân phố 4, gần chợ An Phú")):
        make_order(address={**order_payload()["address"], "commune_code": commune, "detail": detail})
    db.session.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    page = context.new_page()
    try:
        _log_in(page, live_server, "supervisor")
        page.goto(live_server + "/routes/dispatch")
        assert page.locator("select[name=route]").count() == 3
        assert page.evaluate("document.documentElement.scrollWidth") <= 1280
        for box in (page.locator("select[name=route]").nth(i).bounding_box() for i in range(3)):
            assert box is not None and box["x"] + box["width"] <= 1280, box
    finally:
        context.close()
