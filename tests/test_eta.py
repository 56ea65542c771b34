"""ETAs (issue 16 point 4) on the real databases: the windows of a sequenced run from the plan, a late
visit moving the later stops, the citizen's tracking page on the run's day only, the courier's feed."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from conftest import csrf_token, login, order_payload
from test_courier_api import page_csrf
from test_courier_browser import _log_in, _phone, _todays_run, browser, live_server  # noqa: F401  (fixtures)
from web_helpers import make_order

from delivery_service.accounts.services import SYSTEM
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.localtime import day_start, local_today
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status as S
from delivery_service.routing.eta import order_eta, stop_etas, window
from delivery_service.routing.models import RouteRun, RunStop

# Defaults: shift 07:30, 25 km/h on 1.3 × the distance (1 km takes 187.2 s), 180 s at each stop.
KM_S = 1000 * 1.3 / (25 / 3.6)


def order_on_route(day: dt.date, status: S = S.OUT_FOR_DELIVERY) -> DeliveryOrder:
    order = make_order()
    for target in (S.ASSIGNED, S.HANDED_TO_COURIER, S.OUT_FOR_DELIVERY):
        current = db.session.get(DeliveryOrder, order.id, populate_existing=True).status
        if current is not target and (target is not S.OUT_FOR_DELIVERY or status is S.OUT_FOR_DELIVERY):
            change_status(SYSTEM, order.item_id, target)
    order = db.session.get(DeliveryOrder, order.id, populate_existing=True)
    route_id = order.route_id or db.session.scalar(sa.text("SELECT id FROM postal_routes ORDER BY id LIMIT 1"))
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id)
                       .values(route_id=route_id, run_date=day))
    db.session.commit()
    return db.session.get(DeliveryOrder, order.id, populate_existing=True)


def sequenced(day: dt.date, stops: list[tuple[DeliveryOrder, float]]) -> RouteRun:
    """A stored run of ``day``: the orders as stops 1, 2, ... at the given cumulative metres."""
    run = RouteRun(route_id=stops[0][0].route_id, run_date=day, sequenced_at=utcnow(), return_to_office=True,
                   start_latitude=15.1, start_longitude=108.8, stops=len(stops), orders=len(stops),
                   total_m=stops[-1][1], return_m=0.0)
    db.session.add(run)
    db.session.flush()
    before = 0.0
    for number, (order, metres) in enumerate(stops, 1):
        db.session.add(RunStop(run_id=run.id, order_id=order.id, stop_no=number, latitude=15.1, longitude=108.8,
                               estimated=False, located=True, leg_m=metres - before, cumulative_m=metres))
        before = metres
    db.session.commit()
    return run


def at(day: dt.date, hours: int, minutes: int, seconds: float = 0) -> dt.datetime:
    return day_start(day) + dt.timedelta(hours=hours, minutes=minutes, seconds=seconds)


def test_windows_of_a_sequenced_run_follow_the_plan(app):
    day = local_today() - dt.timedelta(days=3)
    a, b, c = (order_on_route(day) for _ in range(3))
    run = sequenced(day, [(a, 5000.0), (b, 20000.0), (c, 38000.0)])
    etas = stop_etas(run)
    assert sorted(etas) == [1, 2, 3]
    # stop 1: 07:30 + 5 km (15.6 min) = 07:45:36 → 07:30–08:30 (nearest half hour ± 30 min)
    assert etas[1].estimate == at(day, 7, 30, 5 * KM_S)
    assert (etas[1].start, etas[1].end) == (at(day, 7, 30), at(day, 8, 30))
    # stop 3: 07:30 + 38 km (118.56 min) + 2 stops × 3 min = 09:34:34 → 09:00–10:00
    assert etas[3].estimate == at(day, 7, 30, 38 * KM_S + 2 * 180)
    assert etas[3].label() == "9:00–10:00" and etas[3].label(dash="-", pad=True) == "09:00-10:00"
    assert not any(e.visited for e in etas.values())
    assert order_eta(db.session.get(DeliveryOrder, c.id)) == etas[3]
    # the window rule on its own
    assert window(at(day, 9, 14)).label() == "8:30–9:30" and window(at(day, 9, 16)).label() == "9:00–10:00"


def test_a_late_visit_moves_the_later_stops_later(app):
    day = local_today() - dt.timedelta(days=2)
    a, b, c = (order_on_route(day) for _ in range(3))
    run = sequenced(day, [(a, 5000.0), (b, 20000.0), (c, 38000.0)])
    planned = stop_etas(run)
    # Stop 1 planned at 07:45; the courier delivers it at 10:00 (device time).
    change_status(SYSTEM, a.item_id, S.DELIVERED, device_time=at(day, 10, 0))
    late = stop_etas(run)
    assert late[1].visited and late[1].estimate == at(day, 10, 0)
    # stop 2: 15 km after stop 1, no stop between → 10:00 + 46.8 min = 10:46:48
    assert late[2].estimate == at(day, 10, 0, 15 * KM_S) and late[2].label() == "10:30–11:30"
    assert late[3].estimate == at(day, 10, 0, 33 * KM_S + 180)
    assert late[2].estimate > planned[2].estimate and late[3].estimate > planned[3].estimate
    # A failed attempt at stop 2 is a visit too: stop 3 counts from it.
    change_status(SYSTEM, b.item_id, S.FAILED_ATTEMPT, reason="not_home", device_time=at(day, 11, 30))
    again = stop_etas(run)
    assert again[2].visited and again[3].estimate == at(day, 11, 30, 18 * KM_S)
    # Visits of another day do not count for this run.
    other = sequenced(day - dt.timedelta(days=1), [(c, 5000.0)])
    assert not stop_etas(other)[1].visited


def track(client, item_id: str) -> str:
    token = csrf_token(client, "/t")
    resp = client.post("/t", data={"code": item_id, "phone_last4": "3456", "csrf_token": token})
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def test_tracking_shows_the_window_on_the_runs_day_only(app, client):
    today = local_today()
    order = order_on_route(today)
    other = order_on_route(today, status=S.HANDED_TO_COURIER)
    sequenced(today, [(order, 38000.0), (other, 39000.0)])
    html = track(client, order.item_id)
    assert "Dự kiến giao hôm nay 9:00–10:00" in html and "Expected today" not in html  # the reader's language
    assert "Expected today 9:00–10:00" in client.get("/t/result?lang=en").get_data(as_text=True)
    client.get("/t?lang=vi")
    # assigned to today's sequenced run but not yet out: shown too
    assert "Dự kiến giao hôm nay 9:00–10:00" in track(client, other.item_id)
    # a run on another day: nothing
    tomorrow = order_on_route(today + dt.timedelta(days=1))
    sequenced(today + dt.timedelta(days=1), [(tomorrow, 38000.0)])
    assert "Dự kiến giao" not in track(client, tomorrow.item_id)
    # delivered: nothing any more
    change_status(SYSTEM, order.item_id, S.DELIVERED)
    html = track(client, order.item_id)
    assert "Dự kiến giao" not in html and "Expected today" not in html


def test_the_courier_feed_carries_each_stops_window(app, client, auth):
    resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert resp.status_code == 201, resp.json
    day = resp.json["run_date"]
    login(client, "courier")
    headers = page_csrf(client)
    assert client.get(f"/api/v1/courier/run?date={day}").json["stops"] == []
    assert client.post(f"/api/v1/routes/QNG-01/run/sequence?date={day}", headers=headers).status_code == 200
    body = client.get(f"/api/v1/courier/run?date={day}").json
    stop = body["stops"][0]
    expected = window(day_start(dt.date.fromisoformat(day))
                      + dt.timedelta(hours=7, minutes=30, seconds=stop["leg_m"] / 1000 * KM_S))
    assert stop["eta"] == expected.as_json()
    assert stop["eta"]["from"] == expected.start.strftime("%H:%M") and stop["eta"]["visited"] is False


# --- in a real browser: the citizen's tracking page and the courier's app (fixtures of the courier app's
# browser tests; they skip only when chromium is missing and REQUIRE is off) ------------------------

def test_the_window_in_a_browser_on_the_tracking_page_and_the_courier_app(app, live_server, browser):  # noqa: F811
    items = _todays_run()
    order = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == items[0]))
    eta = order_eta(order)
    assert eta is not None
    db.session.remove()
    context = _phone(browser)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_server + "/t")
        page.fill("#f-code", items[0])
        page.fill("#f-phone_last4", "3456")
        page.click("button[type=submit]")
        shown = page.locator(".tracking-eta").text_content()
        assert f"Dự kiến giao hôm nay {eta.label()}" in shown and "Expected" not in shown
        _log_in(page, live_server)
        page.wait_for_selector(f'.c-order[data-item="{items[0]}"]')
        line = page.locator(".stop .c-eta").first
        assert line.text_content() == f"Dự kiến {stop_etas_of_today()[1].label()}"
        assert errors == []
    finally:
        context.close()


def stop_etas_of_today() -> dict:
    run = db.session.scalar(sa.select(RouteRun).where(RouteRun.run_date == local_today()))
    etas = stop_etas(run)
    db.session.remove()
    return etas


def _placed(order: DeliveryOrder, lat: float, lon: float) -> None:
    from delivery_service.geo.models import LocationSource, OrderLocation

    db.session.merge(OrderLocation(order_id=order.id, latitude=lat, longitude=lon, source=LocationSource.MANUAL,
                                   precision_m=10, address_key=f"test-{order.id}"))
    db.session.commit()


def test_resequencing_during_the_day_starts_from_the_couriers_last_position(app):
    from delivery_service.accounts.models import User
    from delivery_service.accounts.services import Actor
    from delivery_service.orgs.models import PostalRoute
    from delivery_service.routing.services import office_point, sequence_run

    today = local_today()
    route = db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == "QNG-01"))
    office = office_point(route.post_office)
    # Four stops due east of the office, 2, 4, 6 and 8 km away (0.018° of longitude is about 2 km here).
    orders = []
    for n in range(1, 5):
        order = order_on_route(today)
        db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id)
                           .values(route_id=route.id, address_detail=f"Số {n} đường thử"))
        db.session.commit()
        _placed(order, office[0], office[1] + 0.018 * n)
        orders.append(order)
    admin = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "admin")))
    run = sequence_run(admin, "QNG-01", today)

    def first_stop() -> int:
        return db.session.scalar(sa.select(RunStop.order_id).where(RunStop.run_id == run.id, RunStop.stop_no == 1))

    assert first_stop() == orders[0].id and run.start_at is None  # from the office: the nearest first
    assert (run.start_latitude, run.start_longitude) == office
    assert run.distances == "straight_line"
    # The courier, 9 km east (1 km past the last stop), fails the last order at 10:00 with a GPS fix.
    there = at(today, 10, 0)
    change_status(SYSTEM, orders[3].item_id, S.FAILED_ATTEMPT, reason="not_home", device_time=there,
                  latitude=office[0], longitude=office[1] + 0.081)
    run = sequence_run(admin, "QNG-01", today)
    # What is left starts from where they are: the 8 km stop (the failed order is still open), then back west.
    assert (run.start_latitude, run.start_longitude) == (office[0], office[1] + 0.081)
    assert run.start_at == there
    stops = db.session.execute(sa.select(RunStop.stop_no, RunStop.order_id, RunStop.leg_m)
                               .where(RunStop.run_id == run.id).order_by(RunStop.stop_no)).all()
    assert [s.order_id for s in stops] == [o.id for o in reversed(orders)]
    assert 900 < stops[0].leg_m < 1100  # from the fix, not from the office (8 km)
    assert run.return_m > 1500  # and back to the office from the 2 km stop
    # The ETAs count from the fix, not from the start of the shift.
    etas = stop_etas(run)
    assert etas[1].visited and etas[1].estimate == there
    assert etas[2].estimate > there
    # Another day's run is never started from today's position.
    tomorrow_run = sequence_run(admin, "QNG-01", today + dt.timedelta(days=1))
    assert tomorrow_run.start_at is None and (tomorrow_run.start_latitude, tomorrow_run.start_longitude) == office


def test_a_run_keeps_its_appointment_windows_where_the_shortest_order_would_break_one(app):
    """Sequencing a run (and so accepting a day plan, which re-sequences the runs it touched) keeps the
    appointment windows: the stop due first is visited first even though a shorter order exists."""
    from delivery_service.accounts.models import User
    from delivery_service.accounts.services import Actor
    from delivery_service.orgs.models import PostalRoute
    from delivery_service.routing.services import office_point, sequence_run

    day = local_today() + dt.timedelta(days=1)
    route = db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == "QNG-01"))
    route.return_to_office = False  # an open run: the shortest order is not the same both ways
    db.session.commit()
    office = office_point(route.post_office)
    places = {"C": -0.027, "A": 0.018, "B": 0.036}  # C 3 km west, A 2 km and B 4 km east
    orders = {}
    for name, east in places.items():
        order = order_on_route(day)
        db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id)
                           .values(route_id=route.id, address_detail=f"Nhà {name}"))
        db.session.commit()
        _placed(order, office[0], office[1] + east)
        orders[name] = order
    admin = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "admin")))

    def visit_order() -> list[str]:
        run = db.session.scalar(sa.select(RouteRun).where(RouteRun.route_id == route.id, RouteRun.run_date == day))
        ids = db.session.scalars(sa.select(RunStop.order_id).where(RunStop.run_id == run.id)
                                 .order_by(RunStop.stop_no)).all()
        return [next(n for n, o in orders.items() if o.id == i) for i in ids]

    sequence_run(admin, "QNG-01", day)
    assert visit_order() == ["C", "A", "B"]  # shortest: 3 + 5 + 2 km
    # B is due 07:30–08:00 (shift 07:30; 4 km ≈ 12.5 min): last, it would be reached at 08:07.
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == orders["B"].id)
                       .values(window_from_min=7 * 60 + 30, window_to_min=8 * 60))
    db.session.commit()
    run = sequence_run(admin, "QNG-01", day)
    visits = visit_order()
    assert visits in (["B", "A", "C"], ["A", "B", "C"])  # 11 km either way, B by 07:45
    assert stop_etas(run)[visits.index("B") + 1].estimate <= at(day, 8, 0)
