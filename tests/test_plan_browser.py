"""The supervisor's day plan in a real browser (Playwright on Debian's chromium, under the app's
Content-Security-Policy): found from the routes page, read at a phone's width and at a desk's, one
move kept on its route and planned again, then accepted; the runs follow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from test_pages_browser import CSP_LISTENER, INLINE_CODE, Watch, _log_in
from test_routing_plan import _two_couriers  # noqa: F401  (an autouse fixture: QNG-02 has a courier)
from web_helpers import make_order

from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import local_today
from delivery_service.orgs.models import PostalRoute
from delivery_service.routing.models import RouteRun

SHOTS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
# QNG-01 covers 21025 and 21028; QNG-02 covers 21172 and 21211 (both of BC-QNG)
ADDRESSES = [("21025", "12 Hùng Vương"), ("21025", "3 Quang Trung"), ("21028", "45 Phan Đình Phùng"),
             ("21172", "Thôn 3"), ("21211", "Thôn Khê Thủy"), ("21211", "Thôn Cổ Lũy")]


def _route_id(code: str) -> int:
    return db.session.scalar(sa.select(PostalRoute.id).where(PostalRoute.code == code))


def _orders_on_one_full_route() -> dict[str, int]:
    """Six of today's orders all on QNG-01, which takes three a day: the plan must move some."""
    today = local_today().isoformat()
    made = [make_order(address={"province_code": "51", "commune_code": commune, "detail": detail},
                       dossier_code=f"H55.22-PLANB-{n:03d}", appointment_date=today)
            for n, (commune, detail) in enumerate(ADDRESSES)]
    db.session.commit()
    ids = {o.item_id: o.id for o in made}
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id.in_(list(ids.values())))
                       .values(route_id=_route_id("QNG-01")))
    db.session.execute(sa.update(PostalRoute).where(PostalRoute.code == "QNG-01").values(capacity_per_day=3))
    db.session.commit()
    db.session.remove()
    return ids


def _moves(page: Any) -> dict[str, tuple[str, str]]:
    """The page's table of moves: item id -> (from route, to route)."""
    rows = page.locator("table.plan-moves tbody tr")
    found = {}
    for n in range(rows.count()):
        cells = rows.nth(n).locator("td")
        found[cells.nth(0).inner_text().strip()] = (cells.nth(2).inner_text().strip(),
                                                    cells.nth(3).inner_text().strip())
    return found


def _clean(page: Any, watch: Watch, width: int) -> None:
    problems = watch.take() + page.evaluate(INLINE_CODE)
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"{scroll} px wide at {width} px"
    assert not problems, problems


@pytest.mark.config(PLAN_SECONDS=0.3)
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_supervisor_plans_keeps_a_move_and_accepts_the_day_in_a_browser(app, live_server, browser):  # noqa: F811
    ids = _orders_on_one_full_route()
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="vi-VN",
                                  timezone_id="Asia/Ho_Chi_Minh", service_workers="block")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, live_server)
    try:
        _log_in(page, live_server, "supervisor")
        watch.take()
        # Found from the routes page, without typing an address.
        page.goto(live_server + "/routes")
        link = page.locator('a[href*="/routing/plan/"]')
        assert link.count() == 1 and "BC-QNG" in link.inner_text()
        link.click()
        page.wait_for_selector("table.plan-proposed")
        assert f"/{local_today().isoformat()}" in page.url
        assert page.locator("table.plan-current").count() == 1
        current = page.locator("table.plan-current").inner_text()
        assert "QNG-01" in current and "quá tải" in current
        _clean(page, watch, 360)  # the tables scroll inside their frames, never the page
        moves = _moves(page)
        assert len(moves) >= 3 and all(source == "QNG-01" for source, _ in moves.values())
        # Keep one order on its route and plan again: it is no longer a move, and stays kept.
        kept = sorted(moves)[0]
        page.set_viewport_size({"width": 1280, "height": 900})
        page.locator("table.plan-moves tbody tr", has_text=kept).locator('input[name="lock"]').check()
        page.click("text=Tính lại với các bưu gửi đã giữ")
        page.wait_for_selector("table.plan-proposed")
        assert kept not in _moves(page)
        assert str(ids[kept]) in page.locator('input[type=hidden][name="kept"]').input_value().split(",")
        assert "lock=" not in page.url  # a POST: the kept ids are not in the address
        _clean(page, watch, 1280)
        moving = _moves(page)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "routing-plan.png"), full_page=True)
        # Accept: the orders move as shown, the runs are re-sequenced, the page says so.
        page.click("form.plan-accept button[type=submit]")
        page.wait_for_selector(".flash")
        assert "Đã nhận kế hoạch" in page.locator("main").inner_text()
        _clean(page, watch, 1280)
    finally:
        context.close()
    db.session.remove()
    routes = dict(db.session.execute(sa.select(PostalRoute.id, PostalRoute.code)).all())
    placed = {item: routes[route_id] for item, route_id in db.session.execute(
        sa.select(DeliveryOrder.item_id, DeliveryOrder.route_id).where(DeliveryOrder.item_id.in_(list(ids))))}
    assert placed[kept] == "QNG-01"
    assert all(placed[item] == target for item, (_, target) in moving.items())
    moved = db.session.scalar(sa.select(sa.func.count()).select_from(OrderEvent).where(
        OrderEvent.reason == "moved", OrderEvent.order_id.in_(list(ids.values()))))
    assert moved == len(moving)
    runs = {routes[r.route_id]: r.orders for r in db.session.scalars(sa.select(RouteRun))}
    assert runs["QNG-01"] + runs.get("QNG-02", 0) == len(ids)
