"""A post office's day as one plan (routing.plan) and the supervisor's page /routing/plan/<office>/<day>."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login
from web_helpers import make_order

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import Actor, create_user
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import local_today
from delivery_service.orgs.models import PostalRoute, PostOffice
from delivery_service.routing import plan as planning
from delivery_service.routing.models import RouteRun

FAST = {"PLAN_SECONDS": 0.3}
# QNG-01 covers 21025 and 21028; QNG-02 covers 21172 and 21211 (both of BC-QNG)
ADDRESSES = [("21025", "12 Hùng Vương"), ("21025", "3 Quang Trung"), ("21028", "45 Phan Đình Phùng"),
             ("21172", "Thôn 3"), ("21211", "Thôn Khê Thủy"), ("21211", "Thôn Cổ Lũy")]


def give_qng02_a_courier() -> None:
    """QNG-02 driven too (the demo gives only QNG-01 a courier): a plan may give stops to either (a
    route without a courier is given none)."""
    create_user(username="courier2", full_name="Trần Văn Hai", password=DEMO_PASSWORD, role=Role.COURIER,
                post_office_code="BC-QNG")
    db.session.flush()
    _route("QNG-02").courier_id = db.session.scalar(sa.select(User.id).where(User.username == "courier2"))
    db.session.commit()


@pytest.fixture(autouse=True)
def _two_couriers(app) -> None:
    give_qng02_a_courier()


def _office_id(code: str = "BC-QNG") -> int:
    return db.session.scalar(sa.select(PostOffice.id).where(PostOffice.code == code))


def _route(code: str) -> PostalRoute:
    return db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == code))


def _actor(role: Role = Role.ADMIN, office: int | None = None) -> Actor:
    return Actor(label="test", role=role, user_id=None, post_office_id=office)


def _orders() -> list[DeliveryOrder]:
    today = local_today().isoformat()
    made = [make_order(address={"province_code": "51", "commune_code": commune, "detail": detail},
                       dossier_code=f"H55.22-PLAN-{n:03d}", appointment_date=today)
            for n, (commune, detail) in enumerate(ADDRESSES)]
    db.session.commit()
    return made


def _route_of(order_id: int) -> str:
    db.session.expire_all()
    order = db.session.get(DeliveryOrder, order_id)
    return _route_code(order.route_id)


def _route_code(route_id: int | None) -> str:
    return db.session.scalar(sa.select(PostalRoute.code).where(PostalRoute.id == route_id))


@pytest.mark.config(**FAST, PLAN_TERRITORY_COST_M=100_000)
def test_the_plan_covers_every_order_of_the_day_once_next_to_the_commune_rule(app):
    orders = _orders()
    assert [_route_of(o.id) for o in orders] == ["QNG-01"] * 3 + ["QNG-02"] * 3  # the commune rule
    result = planning.build_plan(_actor(), _office_id(), local_today())
    assert sorted(result.assignment) == sorted(o.id for o in orders)
    assert [d.route.code for d in result.current] == [d.route.code for d in result.proposed] == ["QNG-01", "QNG-02"]
    assert [d.orders for d in result.current] == [3, 3]
    assert sum(d.orders for d in result.proposed) == 6
    assert all(d.distance_m > 0 and d.hours > 0 for d in result.current)
    # a territory cost above any saving keeps each stop with its commune's courier
    assert result.outside_territory == 0 and result.moves == []


@pytest.mark.config(**FAST, PLAN_TERRITORY_COST_M=0)
def test_without_territory_the_plan_is_never_longer_than_the_commune_rule(app):
    _orders()
    result = planning.build_plan(_actor(), _office_id(), local_today())
    assert result.totals("proposed")["distance_m"] <= result.totals("current")["distance_m"] + 1
    assert result.outside_territory > 0 and result.moves  # here a stop is better served by the other


@pytest.mark.config(**FAST)
def test_bag_limits_are_kept_and_locked_orders_stay(app):
    orders = _orders()
    # everything on QNG-01 today (as if QNG-02's courier were away), QNG-01's bag limited to 2
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id.in_([o.id for o in orders]))
                       .values(route_id=_route("QNG-01").id))
    db.session.execute(sa.update(PostalRoute).where(PostalRoute.code == "QNG-01").values(capacity_per_day=2))
    db.session.commit()
    keep = orders[5].id  # in QNG-02's commune, locked on QNG-01 by the supervisor
    result = planning.build_plan(_actor(), _office_id(), local_today(), locked=[keep])
    current = {d.route.code: d for d in result.current}
    assert current["QNG-01"].orders == 6 and current["QNG-01"].over_capacity
    proposed = {d.route.code: d for d in result.proposed}
    assert proposed["QNG-01"].orders <= 2 and not proposed["QNG-01"].over_capacity
    assert proposed["QNG-02"].orders >= 4
    assert _route_code(result.assignment[keep]) == "QNG-01" and keep in result.locked
    assert keep not in {m.order.id for m in result.moves}
    assert len(result.moves) >= 4


@pytest.mark.config(**FAST, PLAN_TERRITORY_COST_M=0)
def test_a_route_without_a_courier_is_given_no_stops(app):
    """Outside review: the plan moved QNG-01's orders to QNG-02, which had no courier ("chưa có bưu
    tá"): nobody would have delivered them. Such a route keeps only what the supervisor kept on it."""
    orders = _orders()
    _route("QNG-02").courier_id = None
    db.session.commit()
    result = planning.build_plan(_actor(), _office_id(), local_today())
    assert [d.route.code for d in result.current] == ["QNG-01", "QNG-02"]  # today's, as it is
    assert [d.route.code for d in result.proposed] == ["QNG-01"]
    assert {_route_code(r) for r in result.assignment.values()} == {"QNG-01"}
    assert sorted(result.assignment) == sorted(o.id for o in orders)
    assert all(m.target.code == "QNG-01" for m in result.moves) and len(result.moves) == 3
    kept = orders[5].id  # kept on QNG-02 by the supervisor: it stays there
    result = planning.build_plan(_actor(), _office_id(), local_today(), locked=[kept])
    assert _route_code(result.assignment[kept]) == "QNG-02"
    _route("QNG-01").courier_id = None
    db.session.commit()
    nobody = planning.build_plan(_actor(), _office_id(), local_today())
    assert nobody.proposed == [] and nobody.assignment == {} and len(nobody.current) == 2


@pytest.mark.config(**FAST)
def test_a_supervisor_plans_only_their_own_office(app):
    _orders()
    mine = _office_id()
    other = _office_id("BC-DUCTHO")
    planning.build_plan(_actor(Role.SUPERVISOR, mine), mine, local_today())
    with pytest.raises(NotFound):
        planning.build_plan(_actor(Role.SUPERVISOR, other), mine, local_today())
    with pytest.raises(NotFound):
        planning.accept_plan(_actor(Role.SUPERVISOR, other), mine, local_today(), {1: 1})


@pytest.mark.config(**FAST)
def test_accept_refuses_a_plan_naming_another_offices_route_and_changes_nothing(app):
    orders = _orders()
    foreign = _route("HTI-01").id
    with pytest.raises(InvalidInput):
        planning.accept_plan(_actor(), _office_id(), local_today(), {orders[0].id: foreign})
    assert _route_of(orders[0].id) == "QNG-01"
    with pytest.raises(InvalidInput):
        planning.parse_assignment("12:x,")
    with pytest.raises(InvalidInput):
        planning.parse_assignment("")


def _page(client, office: int) -> str:
    return f"/routing/plan/{office}/{local_today().isoformat()}"


@pytest.mark.config(**FAST)
def test_the_page_shows_both_assignments_and_accepting_moves_and_resequences(client):
    orders = _orders()
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id.in_([o.id for o in orders]))
                       .values(route_id=_route("QNG-01").id))
    db.session.execute(sa.update(PostalRoute).where(PostalRoute.code == "QNG-01").values(capacity_per_day=3))
    db.session.commit()
    login(client, "supervisor")
    path = _page(client, _office_id())
    resp = client.get(path)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "Kế hoạch đề xuất" in html and "Theo địa bàn xã" in html and "Proposed plan" not in html
    assert "QNG-01" in html and "QNG-02" in html and "quá tải" in html
    assert re.search(r"Tìm trong \d+,\d giây\.", html)  # a decimal comma in Vietnamese
    assignment = re.search(r'name="assignment" value="([^"]*)"', html).group(1)
    planned = planning.parse_assignment(assignment)
    assert sorted(planned) == sorted(o.id for o in orders)
    moving = [o for o in orders if _route_code(planned[o.id]) != "QNG-01"]
    assert len(moving) >= 3
    # "keep" a moving order: planned again (a POST) with it locked, it stays on QNG-01, no longer a move
    assert 'class="plan-again"' in html and 'name="kept" value=""' in html
    token = csrf_token(client, path)
    assert client.post(path, data={"lock": str(moving[0].id)}).status_code == 400  # no CSRF token
    kept = client.post(path, data={"csrf_token": token, "lock": str(moving[0].id), "kept": ""})
    assert kept.status_code == 200
    kept = kept.get_data(as_text=True)
    again = planning.parse_assignment(re.search(r'name="assignment" value="([^"]*)"', kept).group(1))
    assert _route_code(again[moving[0].id]) == "QNG-01"
    carried = re.search(r'name="kept" value="([^"]*)"', kept).group(1)  # to the next "plan again"
    assert str(moving[0].id) in carried.split(",")
    # a second "plan again" keeps it without the box; thousands of kept ids (one form part) and
    # mangled values are no error, and a short link (GET ?lock=) still works
    many = ",".join([carried, *map(str, range(10**6, 10**6 + 3000)), "x", "²", "9" * 5000])
    resp = client.post(path, data={"csrf_token": token, "lock": "1" * 30, "kept": many})
    assert resp.status_code == 200
    again = planning.parse_assignment(re.search(r'name="assignment" value="([^"]*)"', resp.get_data(
        as_text=True)).group(1))
    assert _route_code(again[moving[0].id]) == "QNG-01"
    linked = client.get(path, query_string={"lock": str(moving[0].id)}).get_data(as_text=True)
    assert str(moving[0].id) in re.search(r'name="kept" value="([^"]*)"', linked).group(1).split(",")
    # without the CSRF token nothing happens
    assert client.post(path + "/accept", data={"assignment": assignment}).status_code == 400
    assert all(_route_of(o.id) == "QNG-01" for o in orders)
    resp = client.post(path + "/accept", data={"csrf_token": token, "assignment": assignment})
    assert resp.status_code == 303
    assert all(_route_of(o.id) == _route_code(planned[o.id]) for o in orders)
    moved_events = db.session.scalar(sa.select(sa.func.count()).select_from(OrderEvent).where(
        OrderEvent.reason == "moved", OrderEvent.order_id.in_([o.id for o in moving])))
    assert moved_events == len(moving)
    runs = {_route_code(r.route_id): r for r in db.session.scalars(sa.select(RouteRun))}
    assert set(runs) == {"QNG-01", "QNG-02"}
    assert runs["QNG-02"].orders == len(moving)
    followed = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Đã nhận kế hoạch" in followed


@pytest.mark.config(**FAST)
def test_the_page_is_scoped_and_checks_its_input(client, app):
    _orders()
    create_user(username="truong2", full_name="Nguyễn Văn Trưởng", password=DEMO_PASSWORD,
                role=Role.SUPERVISOR, post_office_code="BC-DUCTHO")
    db.session.commit()
    office = _office_id()
    login(client, "truong2")
    assert client.get(_page(client, office)).status_code == 404  # another office's day
    assert client.get(_page(client, _office_id("BC-DUCTHO"))).status_code == 200  # their own (empty)
    courier = app.test_client()
    login(courier, "courier")
    assert courier.get(_page(courier, office)).status_code == 403
    client = app.test_client()
    login(client, "supervisor")
    assert client.get(f"/routing/plan/{office}/not-a-day").status_code == 404
    token = csrf_token(client, _page(client, office))
    resp = client.post(_page(client, office) + "/accept", data={"csrf_token": token, "assignment": "1:x"})
    assert resp.status_code == 303
    assert "Không nhận được kế hoạch" in client.get(resp.headers["Location"]).get_data(as_text=True)
