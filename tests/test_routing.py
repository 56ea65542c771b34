"""Routing on the real databases: automatic assignment at intake, capacity, dispatch, moves,
coverage edits, runs and their API."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa
from conftest import login, order_payload

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import Actor
from delivery_service.errors import Conflict, InvalidInput
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import change_status, local_today
from delivery_service.orders.status import Status
from delivery_service.orgs.models import PostalRoute, route_communes
from delivery_service.routing import services
from delivery_service.routing.models import RouteDayLoad
from delivery_service.units.models import AdminUnit, UnitLevel


def actor(username: str) -> Actor:
    return Actor.of_user(db.session.scalar(sa.select(User).where(User.username == username)))


def admin() -> Actor:
    return actor("admin")


def supervisor_of(route_code: str) -> Actor:
    office = db.session.scalar(sa.select(PostalRoute.post_office_id).where(PostalRoute.code == route_code))
    return Actor(label="sup", role=Role.SUPERVISOR, user_id=None, post_office_id=office)


def order(client, auth, **changes) -> dict:
    resp = client.post("/api/v1/orders", json=order_payload(**changes), headers=auth)
    assert resp.status_code == 201, resp.json
    return resp.json


def uncovered_commune() -> AdminUnit:
    """A commune of Quảng Ngãi (2025 structure) that no demo route covers."""
    covered = sa.select(route_communes.c.unit_id)
    province = sa.select(AdminUnit.id).where(AdminUnit.level == UnitLevel.PROVINCE, AdminUnit.code == "51",
                                             AdminUnit.valid_to.is_(None)).scalar_subquery()
    return db.session.scalars(sa.select(AdminUnit).where(
        AdminUnit.level == UnitLevel.COMMUNE, AdminUnit.parent_id == province, AdminUnit.valid_to.is_(None),
        AdminUnit.id.not_in(covered)).order_by(AdminUnit.code)).first()


def address(unit: AdminUnit, detail: str = "Thôn 1") -> dict:
    return {"province_code": "51", "commune_code": unit.code, "detail": detail}


def events_of(item_id: str) -> list[OrderEvent]:
    return list(db.session.scalars(sa.select(OrderEvent).join(DeliveryOrder)
                                   .where(DeliveryOrder.item_id == item_id).order_by(OrderEvent.id)))


def test_intake_places_the_order_on_the_commune_route(client, auth):
    body = order(client, auth)
    assert body["status"] == "assigned" and body["route_code"] == "QNG-01" and body["dispatch"] is None
    assert body["run_date"] == max(dt.date.fromisoformat(body["appointment_date"]), local_today()).isoformat()
    events = client.get(f"/api/v1/orders/{body['item_id']}/events", headers=auth).json
    assert [(e["status_to"], e["actor"], e["reason"], e["route_code"]) for e in events[1:]] == [
        ("assigned", "system", "commune", "QNG-01")]


def test_unknown_commune_waits_for_dispatch_and_a_move_is_an_event(client, auth):
    unit = uncovered_commune()
    body = order(client, auth, address=address(unit))
    assert body["status"] == "created" and body["route_code"] is None
    assert body["dispatch"] == "unknown_commune"
    queue = services.dispatch_queue(supervisor_of("QNG-01"))  # the province post office's area
    assert [o.item_id for o in queue] == [body["item_id"]]
    assert services.dispatch_queue(supervisor_of("HTI-01")) == []  # another province's office
    event = services.move_order(admin(), body["item_id"], "qng-02", note="Gần tuyến 2")
    assert (event.status_from, event.status_to, event.reason) == (Status.CREATED, Status.ASSIGNED, "moved")
    assert event.note == "- → QNG-02: Gần tuyến 2"
    moved = client.get(f"/api/v1/orders/{body['item_id']}", headers=auth).json
    assert moved["route_code"] == "QNG-02" and moved["dispatch"] is None and moved["status"] == "assigned"
    assert services.dispatch_queue(admin()) == []
    again = services.move_order(admin(), body["item_id"], "QNG-01")
    assert again.status_from is Status.ASSIGNED and again.note == "QNG-02 → QNG-01"
    with pytest.raises(Conflict, match="already on route QNG-01"):
        services.move_order(admin(), body["item_id"], "QNG-01")


def test_capacity_overflows_to_the_backup_then_to_dispatch(client, auth):
    services.set_coverage(admin(), "QNG-01", capacity=2, backup="QNG-02")
    services.set_coverage(admin(), "QNG-02", capacity=1)
    got = [order(client, auth) for _ in range(5)]
    assert [(o["route_code"], o["dispatch"]) for o in got] == [
        ("QNG-01", None), ("QNG-01", None), ("QNG-02", None), (None, "over_capacity"), (None, "over_capacity")]
    assert events_of(got[2]["item_id"])[-1].reason == "overflow"
    # Cancelling frees a place for the next order.
    change_status(admin(), got[0]["item_id"], Status.CANCELLED)
    assert order(client, auth)["route_code"] == "QNG-01"
    loads = dict(db.session.execute(sa.select(PostalRoute.code, RouteDayLoad.orders).join(
        RouteDayLoad, RouteDayLoad.route_id == PostalRoute.id)).all())
    assert loads == {"QNG-01": 2, "QNG-02": 1}


def test_concurrent_intakes_never_exceed_capacity(app):
    services.set_coverage(admin(), "QNG-01", capacity=3)
    route_id = db.session.scalar(sa.select(PostalRoute.id).where(PostalRoute.code == "QNG-01"))
    day = local_today()
    results: list[bool] = []
    start = threading.Barrier(8)

    def take() -> None:
        with app.app_context():
            start.wait()
            ok = services.reserve(route_id, day)
            db.session.commit()
            results.append(ok)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True] * 3
    stored = db.session.scalar(sa.select(RouteDayLoad.orders).where(RouteDayLoad.route_id == route_id))
    assert stored == 3


def test_hamlet_rules_refine_a_commune(client, auth):
    commune = db.session.scalar(sa.select(AdminUnit).where(AdminUnit.code == "21025", AdminUnit.valid_to.is_(None)))
    services.set_coverage(admin(), "QNG-02", rules=[{"commune_id": commune.id, "kind": "street",
                                                     "phrase": "Đường  Trần Hưng Đạo"}])
    on_street = order(client, auth, address=address(commune, "45 đường Trần Hưng Đạo"))
    elsewhere = order(client, auth, address=address(commune, "12 Hùng Vương"))
    assert (on_street["route_code"], elsewhere["route_code"]) == ("QNG-02", "QNG-01")
    assert events_of(on_street["item_id"])[-1].reason == "street"


def test_coverage_edits_are_checked_and_change_nothing_when_refused(client, auth):
    with pytest.raises(InvalidInput) as refused:
        services.set_coverage(admin(), "QNG-01", communes=[], rules=[])
    assert "at least one commune" in refused.value.errors["communes"][0]
    with pytest.raises(InvalidInput) as bad:
        services.set_coverage(admin(), "QNG-01", backup="QNG-01", capacity=-1,
                              rules=[{"commune_id": -5, "kind": "lane", "phrase": ""}])
    assert set(bad.value.errors) >= {"backup", "capacity_per_day", "rules.0.commune_id", "rules.0.kind",
                                     "rules.0.phrase"}
    assert order(client, auth)["route_code"] == "QNG-01"  # coverage unchanged


def test_assign_pending_places_waiting_orders_in_bulk(client, auth):
    unit = uncovered_commune()
    waiting = [order(client, auth, address=address(unit, f"Thôn {i}"))["item_id"] for i in range(6)]
    assert services.assign_pending(admin()) == {"unknown_commune": 6}
    services.set_coverage(admin(), "QNG-02", communes=[*_communes_of("QNG-02"), unit.id], capacity=4)
    assert services.assign_pending(admin()) == {"commune": 4, "over_capacity": 2}
    routed = db.session.scalars(sa.select(DeliveryOrder.route_id).where(DeliveryOrder.item_id.in_(waiting)))
    assert sum(r is not None for r in routed) == 4
    assert services.assign_pending(admin()) == {"over_capacity": 2}  # idempotent: no doubles


def _communes_of(code: str) -> list[int]:
    route = db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == code))
    return [u.id for u in route.communes]


def test_run_groups_one_address_and_marks_estimated_positions(client, auth):
    a = order(client, auth, address=address(_unit("21025"), "12 Hùng Vương"))
    b = order(client, auth, address=address(_unit("21025"), "12  hùng vương"))  # same address, typed apart
    c = order(client, auth, address=address(_unit("21028"), "45 Phan Đình Phùng"))
    day = dt.date.fromisoformat(a["run_date"])
    courier = actor("courier")
    empty = services.get_run(courier, "QNG-01", day - dt.timedelta(days=400))
    assert empty.stops == [] and empty.unsequenced == [] and empty.total == 0
    before = services.get_run(courier, "QNG-01", day)
    assert before.run is None and {o.item_id for o in before.unsequenced} == {a["item_id"], b["item_id"], c["item_id"]}
    run = services.sequence_run(courier, "QNG-01", day)
    assert (run.stops, run.orders, run.version) == (2, 3, 1) and run.total_m > 0
    view = services.get_run(courier, "QNG-01", day)
    groups = [sorted(o.item_id for o in s["orders"]) for s in view.stops]
    assert sorted(groups, key=len) == [[c["item_id"]], sorted([a["item_id"], b["item_id"]])]
    assert all(s["estimated"] and s["located"] for s in view.stops)  # offline: commune centroids
    assert [s["number"] for s in view.stops] == [1, 2] and view.unsequenced == []
    late = order(client, auth)
    assert [o.item_id for o in services.get_run(courier, "QNG-01", day).unsequenced] == [late["item_id"]]
    assert services.sequence_run(courier, "QNG-01", day).version == 2


def _unit(code: str) -> AdminUnit:
    return db.session.scalar(sa.select(AdminUnit).where(AdminUnit.code == code, AdminUnit.valid_to.is_(None)))


def test_api_routes_runs_and_scope(client, auth):
    body = order(client, auth)
    day = body["run_date"]
    routes = client.get("/api/v1/routes", headers=auth)
    assert routes.status_code == 200
    qng1 = next(r for r in routes.json if r["code"] == "QNG-01")
    assert {c["code"] for c in qng1["communes"]} == {"21025", "21028"} and qng1["return_to_office"] is True
    # A counter's software reads coverage, never a run (recipients of other counters).
    assert client.get(f"/api/v1/routes/QNG-01/run?date={day}", headers=auth).status_code == 404
    login(client, "courier")
    mine = client.get("/api/v1/routes").json
    assert [r["code"] for r in mine] == ["QNG-01"]
    assert client.get(f"/api/v1/routes/QNG-02/run?date={day}").status_code == 404
    assert client.post(f"/api/v1/routes/QNG-01/run/sequence?date={day}").status_code == 403  # no CSRF token
    token = _page_csrf(client)
    run = client.post(f"/api/v1/routes/QNG-01/run/sequence?date={day}", headers={"X-CSRFToken": token})
    assert run.status_code == 200, run.json
    stop = run.json["stops"][0]
    assert run.json["total"] == 1 and stop["number"] == 1 and stop["estimated"] is True
    assert stop["orders"][0]["item_id"] == body["item_id"] and stop["orders"][0]["recipient"]["phone"]
    assert client.get(f"/api/v1/routes/QNG-01/run?date={day}").json["version"] == 1
    # A courier cannot move orders.
    moved = client.post(f"/api/v1/orders/{body['item_id']}/route", json={"route": "QNG-02"},
                        headers={"X-CSRFToken": token})
    assert moved.status_code == 403
    spec = client.get("/api/v1/openapi.json").json
    assert {"/api/v1/routes", "/api/v1/routes/{code}/run", "/api/v1/routes/{code}/run/sequence",
            "/api/v1/routes/{code}/coverage", "/api/v1/orders/{item_id}/route"} <= set(spec["paths"])


def _page_csrf(client) -> str:
    import re

    html = client.get("/").get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the home page"
    return match.group(1)


def test_api_coverage_and_moves_by_an_admin(client, auth):
    login(client, "admin")
    token = {"X-CSRFToken": _page_csrf(client)}
    bad = client.put("/api/v1/routes/QNG-01/coverage", json={"communes": ["99999"], "capacity_per_day": -2},
                     headers=token)
    assert bad.status_code == 422 and {"communes", "capacity_per_day"} & set(bad.json["errors"]["json"])
    empty = client.put("/api/v1/routes/QNG-01/coverage", json={"communes": [], "rules": []}, headers=token)
    assert empty.status_code == 422 and "at least one commune" in str(empty.json)
    ok = client.put("/api/v1/routes/QNG-01/coverage", headers=token, json={
        "rules": [{"commune_code": "21172", "kind": "hamlet", "phrase": "Tổ 5"}], "capacity_per_day": 80})
    assert ok.status_code == 200, ok.json
    assert ok.json["rules"] == [{"commune": {"code": "21172", "name": ok.json["rules"][0]["commune"]["name"]},
                                 "kind": "hamlet", "phrase": "Tổ 5"}] and ok.json["capacity_per_day"] == 80
    body = order(client, auth)
    moved = client.post(f"/api/v1/orders/{body['item_id']}/route", json={"route": "QNG-02", "note": "Gộp"},
                        headers=token)
    assert moved.status_code == 201 and moved.json["route_code"] == "QNG-02" and moved.json["reason"] == "moved"
    unknown = client.post(f"/api/v1/orders/{body['item_id']}/route", json={"route": "NOPE"}, headers=token)
    assert unknown.status_code == 404
    change_status(admin(), body["item_id"], Status.HANDED_TO_COURIER)
    busy = client.post(f"/api/v1/orders/{body['item_id']}/route", json={"route": "QNG-01"}, headers=token)
    assert busy.status_code == 409 and "with a courier" in busy.json["message"]


def test_address_change_places_the_order_again(client, auth):
    body = order(client, auth)
    assert body["route_code"] == "QNG-01"
    moved = client.put(f"/api/v1/orders/{body['item_id']}/address", headers=auth, json={
        "address": {"province_code": "51", "commune_code": "21172", "detail": "Tổ 3"}, "note": "Công dân báo"})
    assert moved.status_code == 200, moved.json
    assert moved.json["route_code"] == "QNG-02" and moved.json["address"]["commune"]["code"] == "21172"
    reasons = [(e.status_from, e.status_to, e.reason) for e in events_of(body["item_id"])][2:]
    assert reasons == [(Status.ASSIGNED, Status.ASSIGNED, "address_changed"), (Status.ASSIGNED, Status.ASSIGNED, "commune")]
    unit = uncovered_commune()
    lost = client.put(f"/api/v1/orders/{body['item_id']}/address", headers=auth,
                      json={"address": address(unit)}).json
    assert lost["route_code"] is None and lost["dispatch"] == "unknown_commune" and lost["status"] == "created"
    bad = client.put(f"/api/v1/orders/{body['item_id']}/address", headers=auth,
                     json={"address": {"province_code": "51", "commune_code": "00000", "detail": "x"}})
    assert bad.status_code == 422
    assert client.get(f"/api/v1/orders/{body['item_id']}", headers=auth).json["dispatch"] == "unknown_commune"
    loads = dict(db.session.execute(sa.select(PostalRoute.code, RouteDayLoad.orders).join(
        RouteDayLoad, RouteDayLoad.route_id == PostalRoute.id)).all())
    assert loads == {"QNG-01": 0}  # every place taken was given back (QNG-02 has no capacity to count)


def test_address_corrected_after_a_failed_attempt_moves_the_order_to_the_route_covering_it(client, auth):
    """A wrong address is a common reason an attempt fails: once the counter corrects it, the next
    attempt is on the route covering the new address (the status stays), or the order waits for
    dispatch; it does not stay on a route that does not cover where it goes."""
    body = order(client, auth)
    item_id = body["item_id"]
    for status in (Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT):
        change_status(admin(), item_id, status)
    moved = client.put(f"/api/v1/orders/{item_id}/address", headers=auth, json={
        "address": {"province_code": "51", "commune_code": "21172", "detail": "Tổ 3"}})
    assert moved.status_code == 200, moved.json
    assert (moved.json["route_code"], moved.json["status"]) == ("QNG-02", "failed_attempt")
    last = events_of(item_id)[-1]
    assert (last.status_from, last.status_to, last.reason) == (Status.FAILED_ATTEMPT, Status.FAILED_ATTEMPT,
                                                                "commune")
    lost = client.put(f"/api/v1/orders/{item_id}/address", headers=auth,
                      json={"address": address(uncovered_commune())}).json
    assert (lost["route_code"], lost["dispatch"], lost["status"]) == (None, "unknown_commune", "failed_attempt")
    assert events_of(item_id)[-1].reason == "unassigned"
    assert item_id in [o.item_id for o in services.dispatch_queue(admin())]
    loads = dict(db.session.execute(sa.select(PostalRoute.code, RouteDayLoad.orders).join(
        RouteDayLoad, RouteDayLoad.route_id == PostalRoute.id)).all())
    assert loads == {"QNG-01": 0}  # the first route's place was given back


def test_cli_assigns_waiting_orders_and_prints_a_run_without_personal_data(app, client, auth):
    body = order(client, auth, address=address(uncovered_commune()))
    from delivery_service.cli import main

    runner = app.test_cli_runner()
    result = runner.invoke(main, ["routes", "assign"])
    assert result.exit_code == 0 and "1 orders looked at: 1 unknown_commune" in result.output
    day = order(client, auth)["run_date"]
    result = runner.invoke(main, ["routes", "sequence", "QNG-01", "--date", day])
    assert result.exit_code == 0, result.output
    assert "QNG-01" in result.output and "1 stops, 1 orders" in result.output
    assert "Nguyễn Thị Hoa" not in result.output and "0905123456" not in result.output
    assert body["item_id"] not in result.output
    missing = runner.invoke(main, ["routes", "sequence", "NOPE"])
    assert missing.exit_code != 0 and "No route NOPE" in missing.output


def test_setting_a_capacity_counts_the_orders_already_there(client, auth):
    services.set_coverage(admin(), "QNG-01", capacity=None)
    first = [order(client, auth) for _ in range(3)]
    assert {o["route_code"] for o in first} == {"QNG-01"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RouteDayLoad)) == 0  # no limit, no counter
    services.set_coverage(admin(), "QNG-01", capacity=4, backup="QNG-02")
    assert [order(client, auth)["route_code"] for _ in range(2)] == ["QNG-01", "QNG-02"]
    route_id = db.session.scalar(sa.select(PostalRoute.id).where(PostalRoute.code == "QNG-01"))
    assert services.day_loads([route_id], dt.date.fromisoformat(first[0]["run_date"])) == {route_id: 4}


def test_bulk_assignment_that_loses_a_race_gives_back_what_it_took(client, auth):
    unit_a, unit_b = _uncovered_communes(2)
    waiting = [order(client, auth, address=address(u, f"Thôn {i}")) for i, u in enumerate([unit_a] * 3 + [unit_b] * 2)]
    assert all(o["dispatch"] == "unknown_commune" for o in waiting)
    services.set_coverage(admin(), "QNG-01", communes=[*_communes_of("QNG-01"), unit_a.id], capacity=10)
    services.set_coverage(admin(), "QNG-02", communes=[*_communes_of("QNG-02"), unit_b.id], capacity=2)
    day = dt.date.fromisoformat(waiting[0]["appointment_date"])
    q2 = db.session.scalar(sa.select(PostalRoute.id).where(PostalRoute.code == "QNG-02"))
    # Another intake took QNG-02's places after the loads were counted: its reservation fails.
    db.session.add(RouteDayLoad(route_id=q2, day=max(day, local_today()), orders=2))
    db.session.commit()
    counts = services.assign_pending(admin())
    assert counts == {"commune": 3, "over_capacity": 2}
    q1 = db.session.scalar(sa.select(PostalRoute.id).where(PostalRoute.code == "QNG-01"))
    taken = db.session.scalar(sa.select(RouteDayLoad.orders).where(RouteDayLoad.route_id == q1))
    assert taken == 3  # reserved once, not twice


def _uncovered_communes(n: int) -> list[AdminUnit]:
    covered = sa.select(route_communes.c.unit_id)
    province = sa.select(AdminUnit.id).where(AdminUnit.level == UnitLevel.PROVINCE, AdminUnit.code == "51",
                                             AdminUnit.valid_to.is_(None)).scalar_subquery()
    return list(db.session.scalars(sa.select(AdminUnit).where(
        AdminUnit.level == UnitLevel.COMMUNE, AdminUnit.parent_id == province, AdminUnit.valid_to.is_(None),
        AdminUnit.id.not_in(covered)).order_by(AdminUnit.code).limit(n)))


def test_an_order_is_not_moved_onto_another_provinces_route(client, auth):
    """move_order took any active route the actor sees: a national admin could put an order of Quảng
    Ngãi on Hà Tĩnh's HTI-01, whose courier would be sent to another province. Refused at ``route``,
    naming both provinces (as of 2025), and nothing changes; a route of the order's province still
    takes it."""
    login(client, "admin")
    token = {"X-CSRFToken": _page_csrf(client)}
    body = order(client, auth)
    assert body["route_code"] == "QNG-01"
    before = events_of(body["item_id"])
    refused = client.post(f"/api/v1/orders/{body['item_id']}/route", json={"route": "HTI-01"}, headers=token)
    assert refused.status_code == 422, refused.json
    message = "Route HTI-01 serves Tỉnh Hà Tĩnh; the order's address is in Tỉnh Quảng Ngãi."
    assert refused.json["errors"]["json"] == {"route": [message]}
    assert refused.json["details"] == [{"location": "json", "field": "route", "code": "unit_mismatch",
                                        "message": message}]
    db.session.rollback()
    stored = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == body["item_id"]))
    assert stored.route_id == db.session.scalar(sa.select(PostalRoute.id).where(PostalRoute.code == "QNG-01"))
    assert len(events_of(body["item_id"])) == len(before)
    with pytest.raises(InvalidInput) as direct:
        services.move_order(admin(), body["item_id"], "HTI-01")
    assert direct.value.errors == {"route": [message]}
    moved = client.post(f"/api/v1/orders/{body['item_id']}/route", json={"route": "QNG-02"}, headers=token)
    assert moved.status_code == 201 and moved.json["route_code"] == "QNG-02"
