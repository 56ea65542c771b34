"""Route pages: the office's routes, a route's run, the dispatch queue and the coverage editor."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login, order_payload

from delivery_service.accounts.models import User
from delivery_service.accounts.services import Actor
from delivery_service.courier import services as courier_services
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import local_today
from delivery_service.orgs.models import PostalRoute, route_communes
from delivery_service.routing.models import RouteRule, RunStop

UNCOVERED = "21034"  # Xã An Phú (Quảng Ngãi): no demo route covers any part of it
PART_COVERED = "21220"  # Xã Sơn Tịnh: only the demo hamlet rule of QNG-02 (Thôn Trường Thọ)


def new_order(client, auth, commune: str = "21025", detail: str = "12 Hùng Vương", *, name: str = "Nguyễn Thị Hoa",
              phone: str = "0905123456", **changes) -> DeliveryOrder:
    """An order through the API, due today, so that it is on today's run of its route."""
    payload = order_payload(address={"province_code": "51", "commune_code": commune, "detail": detail},
                            recipient={"name": name, "phone": phone},
                            appointment_date=local_today().isoformat(), **changes)
    resp = client.post("/api/v1/orders", json=payload, headers=auth)
    assert resp.status_code == 201, resp.json
    db.session.rollback()
    return db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == resp.json["item_id"]))


def route_id(code: str) -> int:
    return db.session.scalar(sa.select(PostalRoute.id).where(PostalRoute.code == code))


def resequence(client, code: str, day=None):  # noqa: ANN001, ANN201
    token = csrf_token(client, f"/routes/{code}/run")
    return client.post(f"/routes/{code}/run/sequence",
                       data={"csrf_token": token, "date": (day or local_today()).isoformat()})


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- who sees what --------------------------------------------------------------------------------

def test_supervisor_sees_the_routes_of_their_post_office(client):
    login(client, "supervisor")
    resp = client.get("/routes")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "QNG-01" in html and "QNG-02" in html and "HTI-01" not in html and "QNM-01" not in html
    text = text_of(html)
    assert "Lê Văn Phát" in text  # QNG-01's courier
    assert "60 đơn" in text and "Thôn Trường Thọ" in text and "Thôn/xóm/tổ" in text
    assert "Phường Cẩm Thành" in text and "Xã Sơn Tịnh" in text
    assert "Trưởng bưu cục" in text and "Tuyến phát" in text and "Chờ phân tuyến" in text
    assert 'href="/routes/QNG-01/run"' in html and 'href="/routes/QNG-02/coverage"' in html
    # what the day's count counts, since the run also lists orders carried over (outside review)
    assert "Đã xếp cho hôm nay" in text and "các đơn chuyển từ những ngày trước" in text
    english = text_of(client.get("/routes?lang=en").get_data(as_text=True))
    assert "Post-office supervisor" in english and "Capacity per day" in english and "Waiting for dispatch" in english


def test_admin_sees_every_route(client):
    login(client, "admin")
    html = client.get("/routes").get_data(as_text=True)
    assert all(code in html for code in ("QNG-01", "QNG-02", "HTI-01", "QNM-01"))


def test_a_route_covering_nothing_is_flagged(client):
    db.session.execute(sa.delete(route_communes).where(route_communes.c.route_id == route_id("HTI-01")))
    db.session.commit()
    login(client, "admin")
    html = text_of(client.get("/routes").get_data(as_text=True))
    assert "Tuyến này không phủ địa bàn nào" in html


def test_courier_goes_to_their_own_run_only(client):
    login(client, "courier")
    resp = client.get("/routes")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/routes/QNG-01/run")
    html = client.get("/routes/QNG-01/run").get_data(as_text=True)
    assert "Lộ trình hôm nay" in html and "QNG-01" in html
    assert client.get("/routes/QNG-02/run").status_code == 404
    token = csrf_token(client, "/routes/QNG-01/run")
    assert client.post("/routes/QNG-02/run/sequence", data={"csrf_token": token}).status_code == 404
    assert client.get("/routes/dispatch").status_code == 403
    assert client.get("/routes/QNG-01/coverage").status_code == 403


@pytest.mark.parametrize("path", ["/routes", "/routes/QNG-01/run", "/routes/dispatch", "/routes/QNG-01/coverage"])
def test_counter_staff_have_no_route_pages(client, path):
    assert client.get(path).status_code == 302  # not logged in: the log-in page
    login(client, "counter")
    assert client.get(path).status_code == 403
    assert "/routes" not in client.get("/counter").get_data(as_text=True)  # nor links to them


# --- the run ------------------------------------------------------------------------------------

def test_run_shows_the_sequenced_stops_in_order(client, auth):
    a = new_order(client, auth, "21025", "12 Hùng Vương", name="Trần Văn An", phone="0905111222", collect_vnd=50000)
    b = new_order(client, auth, "21028", "45 Phan Đình Phùng", name="Lê Thị Bình", phone="0912345678")
    c = new_order(client, auth, "21025", "12 Hùng Vương", name="Phạm Văn Cường", phone="0987654321",
                  dossier_code="H55.22-same-house")
    login(client, "supervisor")
    before = text_of(client.get("/routes/QNG-01/run").get_data(as_text=True))
    assert "Chưa sắp xếp lộ trình" in before and "Trần Văn An" in before and "0 / 3" in before

    resp = resequence(client, "QNG-01")
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/routes/QNG-01/run?date=")
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    text = text_of(html)
    assert "Đã sắp xếp lộ trình: 2 điểm dừng, 3 đơn." in text
    assert "Chưa sắp xếp lộ trình" not in text and "0 / 3" in text
    stops = {o: n for o, n in db.session.execute(sa.select(RunStop.order_id, RunStop.stop_no))}
    assert stops[a.id] == stops[c.id] != stops[b.id]  # one house, one stop
    first, second = (a, b) if stops[a.id] == 1 else (b, a)
    assert text.index(first.recipient_name) < text.index(second.recipient_name)
    for o in (a, b, c):
        assert f'href="tel:{o.recipient_phone}"' in html
    assert re.search(r"\d+,\d km", text)  # total and legs, Vietnamese decimal comma
    assert "từ bưu cục" in text and "từ điểm dừng trước" in text
    assert "Cần thu: 76.000 ₫" in text  # 50,000 fees for the agency + 26,000 postage paid by the citizen
    assert "Đã phân tuyến" in text and "bởi Võ Thị Trưởng" in text
    assert 'class="stop-no"' in html and "Sắp xếp lại lộ trình" in html
    assert "Vị trí ước lượng theo trung tâm xã" in text  # offline: commune centroids
    english = text_of(client.get("/routes/QNG-01/run?lang=en").get_data(as_text=True))
    assert "Re-sequence the run" in english and "from the post office" in english
    assert re.search(r"\d+\.\d km", english) and "To collect: 76,000 ₫" in english

    # the counter sees the route and the stop on the order page
    client.post("/logout", data={"csrf_token": csrf_token(client, "/routes/QNG-01/run")})
    login(client, "counter")
    page = text_of(client.get(f"/counter/orders/{b.item_id}?lang=vi").get_data(as_text=True))
    assert f"Điểm dừng {stops[b.id]}" in page and "QNG-01" in page


def test_an_empty_run_says_so(client):
    login(client, "supervisor")
    html = text_of(client.get("/routes/QNG-02/run").get_data(as_text=True))
    assert "Không có đơn nào trên tuyến này trong ngày." in html and "0 / 0" in html
    english = text_of(client.get("/routes/QNG-02/run?lang=en").get_data(as_text=True))
    assert "No orders on this route on this day." in english
    assert client.get("/routes/QNG-02/run?date=not-a-date").status_code == 200


def test_an_order_added_after_sequencing_waits_in_its_own_box(client, auth):
    new_order(client, auth, name="Trần Văn An")
    login(client, "courier")
    assert resequence(client, "QNG-01").status_code == 303
    later = new_order(client, auth, "21028", "7 Quang Trung", name="Đỗ Thị Muộn")
    html = client.get("/routes/QNG-01/run").get_data(as_text=True)
    box = html.split('class="card run-new"', 1)[1].split("</section>", 1)[0]
    assert "Thêm sau lần sắp xếp cuối" in text_of(box) and "Đỗ Thị Muộn" in box and later.item_id in box
    assert "Trần Văn An" not in box
    assert "Sắp xếp lại lộ trình" in box
    # Once the courier has finished it (here a failed attempt), it is no longer one to place: it is
    # listed as finished, and re-sequencing is not asked for it.
    courier = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "courier")))
    now = dt.datetime.now(dt.UTC)
    results = courier_services.sync(courier, [
        {"event_id": str(uuid.uuid4()), "item_id": later.item_id, "action": action,
         "device_time": (now + dt.timedelta(seconds=n)).isoformat(), **extra}
        for n, (action, extra) in enumerate([("pickup_confirmed", {}),
                                            ("failed_attempt", {"reason": "not_home", "note": "Vắng nhà"})])])
    assert [r["result"] for r in results] == ["applied", "applied"], results
    db.session.commit()
    html = client.get("/routes/QNG-01/run").get_data(as_text=True)
    assert 'class="card run-new"' not in html
    finished = html.split('class="card run-finished"', 1)[1].split("</section>", 1)[0]
    assert "Hoàn tất" in text_of(finished) and later.item_id in finished


def test_the_done_count_says_what_it_is_made_of(client, auth):
    """Outside review: "Đã xong 3 / 4" alone does not say how many were delivered, failed or returned.
    The run page breaks the done count down by outcome (non-zero ones only) and the parts add up."""
    from delivery_service.orders.services import change_status
    from delivery_service.orders.status import Status
    from delivery_service.routing.services import get_run

    delivered, failed, returned, waiting = (
        new_order(client, auth, detail=f"{n} Hùng Vương", name=name)
        for n, name in [(1, "Trần Văn Phát"), (2, "Lê Thị Vắng"), (3, "Phạm Văn Hoàn"), (4, "Đỗ Thị Chờ")])
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == delivered.id)
                       .values(recipient_id_number="051090001234"))  # checked at the door
    db.session.commit()
    login(client, "supervisor")
    assert resequence(client, "QNG-01").status_code == 303
    courier = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "courier")))
    now = dt.datetime.now(dt.UTC)
    steps = [(o.item_id, "pickup_confirmed", {}) for o in (delivered, failed, returned)] + [
        (delivered.item_id, "delivered", {"receiver": {"kind": "recipient"},
                                          "id_check": {"kind": "id_last4", "value": "1234"}}),
        (failed.item_id, "failed_attempt", {"reason": "not_home", "note": "Vắng nhà"})]
    results = courier_services.sync(courier, [
        {"event_id": str(uuid.uuid4()), "item_id": item_id, "action": action,
         "device_time": (now + dt.timedelta(seconds=n)).isoformat(), **extra}
        for n, (item_id, action, extra) in enumerate(steps)])
    assert [r["result"] for r in results] == ["applied"] * 5, results
    db.session.commit()
    db.session.expire_all()  # the orders as the courier's events left them
    supervisor = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "supervisor")))
    change_status(supervisor, returned.item_id, Status.RETURNED_TO_AGENCY)

    view = get_run(supervisor, "QNG-01", local_today())
    assert view.outcomes == ((Status.DELIVERED, 1), (Status.FAILED_ATTEMPT, 1), (Status.RETURNED_TO_AGENCY, 1))
    assert (view.done, view.total) == (3, 4) == (sum(n for _, n in view.outcomes), view.total)

    html = client.get("/routes/QNG-01/run").get_data(as_text=True)
    done = text_of(html.split('class="total total-done"', 1)[1].split('class="total total-new"', 1)[0])
    assert "Đã xong 3 / 4" in done
    assert "Đã phát: 1" in done and "Phát không thành công: 1" in done and "Đã chuyển hoàn cơ quan: 1" in done
    assert "Đã hủy" not in done and "Đã lấy hồ sơ" not in done  # no zero counts
    assert '<progress max="4" value="3">' in html
    english = client.get("/routes/QNG-01/run?lang=en").get_data(as_text=True)
    done = text_of(english.split('class="total total-done"', 1)[1].split('class="total total-new"', 1)[0])
    assert "Delivered: 1" in done and "Delivery attempt failed: 1" in done and "Returned to the agency: 1" in done
    run = client.get("/api/v1/routes/QNG-01/run").get_json()  # the API's run says the same
    assert (run["done"], run["total"]) == (3, 4)
    assert run["outcomes"] == {"delivered": 1, "failed_attempt": 1, "returned_to_agency": 1}


# --- dispatch -----------------------------------------------------------------------------------

def test_dispatch_lists_an_uncovered_order_and_moving_it_is_recorded(client, auth):
    order = new_order(client, auth, UNCOVERED, "Thôn Phú Hòa", name="Ngô Văn Xa")
    assert order.route_id is None and order.dispatch == "unknown_commune"
    login(client, "admin")
    html = client.get("/routes/dispatch").get_data(as_text=True)
    assert order.item_id in html and "Ngô Văn Xa" in html and "Xã An Phú" in html
    assert "Không có tuyến nào phủ xã này" in text_of(html)
    token = csrf_token(client, "/routes/dispatch")
    resp = client.post("/routes/dispatch/move", data={"csrf_token": token, "item_id": order.item_id,
                                                      "route": "QNG-02", "note": "gần Tịnh Khê"})
    assert resp.status_code == 303
    page = text_of(client.get(resp.headers["Location"]).get_data(as_text=True))
    assert f"Đơn {order.item_id} đã được chuyển sang tuyến QNG-02." in page
    assert "Không có đơn nào chờ phân tuyến." in page
    db.session.rollback()
    moved = db.session.get(DeliveryOrder, order.id)
    assert moved.route_id == route_id("QNG-02") and moved.dispatch is None
    event = db.session.scalar(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)
                              .order_by(OrderEvent.id.desc()))
    assert event.reason == "moved" and event.route_id == route_id("QNG-02")
    assert event.actor_label == "admin" and "QNG-02" in event.note and "gần Tịnh Khê" in event.note
    # moving it again to the same place is refused in words
    again = client.post("/routes/dispatch/move", data={"csrf_token": token, "item_id": order.item_id,
                                                       "route": "QNG-02"})
    assert "Đơn đã ở tuyến QNG-02 ngày" in text_of(client.get(again.headers["Location"]).get_data(as_text=True))


def test_the_dispatch_page_refuses_another_provinces_route_in_words(client, auth):
    """A national admin's dispatch page lists every route; moving an order of Quảng Ngãi onto Hà
    Tĩnh's HTI-01 went through. Now refused in Vietnamese, naming both provinces, and the order waits."""
    order = new_order(client, auth, UNCOVERED, "Thôn Phú Hòa", name="Ngô Văn Xa")
    login(client, "admin")
    token = csrf_token(client, "/routes/dispatch")
    resp = client.post("/routes/dispatch/move", data={"csrf_token": token, "item_id": order.item_id,
                                                      "route": "HTI-01"})
    assert resp.status_code == 303
    page = text_of(client.get(resp.headers["Location"]).get_data(as_text=True))
    assert ("Tuyến HTI-01 phát ở Tỉnh Hà Tĩnh, còn địa chỉ của đơn ở Tỉnh Quảng Ngãi: hãy chọn một tuyến "
            "của Tỉnh Quảng Ngãi.") in page, page[:3000]
    assert "đã được chuyển sang tuyến" not in page and order.item_id in page  # still waiting
    db.session.rollback()
    waiting = db.session.get(DeliveryOrder, order.id)
    assert waiting.route_id is None and waiting.dispatch == "unknown_commune"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderEvent)
                             .where(OrderEvent.order_id == order.id, OrderEvent.reason == "moved")) == 0


def test_supervisor_dispatches_a_part_covered_commune(client, auth):
    on_rule = new_order(client, auth, PART_COVERED, "Thôn Trường Thọ, xã Sơn Tịnh")
    assert on_rule.route_id == route_id("QNG-02")  # the demo hamlet rule
    waiting = new_order(client, auth, PART_COVERED, "Thôn Cổ Lũy", name="Võ Thị Chờ")
    assert waiting.dispatch == "no_rule"
    login(client, "supervisor")
    html = client.get("/routes/dispatch").get_data(as_text=True)
    assert waiting.item_id in html and on_rule.item_id not in html
    assert "không có quy tắc thôn/xóm hay đường phố nào khớp" in text_of(html)
    assert '<option value="QNG-01">' in html and '<option value="HTI-01">' not in html
    english = text_of(client.get("/routes/dispatch?lang=en").get_data(as_text=True))
    assert "no hamlet or street rule matches the address" in english and "Auto-assign again" in english


# --- coverage -------------------------------------------------------------------------------------

def coverage_form(client, code: str, **changes) -> dict:
    data = {"csrf_token": csrf_token(client, f"/routes/{code}/coverage"), "communes": [], "rules": "",
            "capacity_per_day": "", "backup": ""}
    data.update(changes)
    return data


def coverage_state(code: str) -> tuple:
    rid = route_id(code)
    communes = sorted(db.session.scalars(sa.select(route_communes.c.unit_id).where(route_communes.c.route_id == rid)))
    rules = sorted(db.session.scalars(sa.select(RouteRule.phrase).where(RouteRule.route_id == rid)))
    route = db.session.get(PostalRoute, rid)
    return communes, rules, route.capacity_per_day, route.backup_route_id, route.return_to_office


def test_coverage_editor_shows_the_route(client):
    login(client, "supervisor")
    html = client.get("/routes/QNG-01/coverage").get_data(as_text=True)
    assert 'name="capacity_per_day" type="text" inputmode="numeric" value="60"' in html
    assert '<option value="QNG-02" selected>' in html and "HTI-01" not in html
    assert "Phường Cẩm Thành" in html and "Xã An Phú" in html  # communes of the province
    assert len(re.findall(r'name="communes" value="\d+" checked', html)) == 2
    rules = client.get("/routes/QNG-02/coverage").get_data(as_text=True)
    assert "21220 | thôn/ấp/xóm | Thôn Trường Thọ" in rules  # stored "hamlet", written in the reader's words


def test_saving_a_route_covering_nothing_is_refused_and_changes_nothing(client):
    before = coverage_state("QNG-02")
    login(client, "supervisor")
    resp = client.post("/routes/QNG-02/coverage", data=coverage_form(client, "QNG-02", capacity_per_day="5"))
    html = text_of(resp.get_data(as_text=True))
    assert resp.status_code == 422
    assert "Không lưu gì." in html and "Tuyến phải phủ ít nhất một xã, toàn bộ hoặc một phần." in html
    db.session.rollback()
    assert coverage_state("QNG-02") == before
    english = client.post("/routes/QNG-02/coverage?lang=en", data=coverage_form(client, "QNG-02"))
    assert "A route must cover at least one commune, in whole or in part." in english.get_data(as_text=True)


def test_mistakes_in_rules_capacity_and_backup_are_shown_beside_them(client):
    before = coverage_state("QNG-02")
    login(client, "supervisor")
    communes = [str(c) for c in before[0]]
    resp = client.post("/routes/QNG-02/coverage", data=coverage_form(
        client, "QNG-02", communes=communes, rules="21220 | hamlet | Thôn Trường Thọ\n99999 | thôn | Thôn Ma\n"
        "21220 | river | Sông Trà", capacity_per_day="nhiều", backup="QNG-02"))
    html = text_of(resp.get_data(as_text=True))
    assert resp.status_code == 422
    assert "Dòng 2: Không có xã / phường này." in html
    assert "Dòng 3: Loại phải là “thôn/ấp/xóm” hoặc “đường/phố”." in html
    assert "Nhập số đơn là số nguyên" in html and "Tuyến dự phòng phải là một tuyến khác đã có." in html
    assert "Thôn Ma" in html  # what was typed stays in the form
    broken = client.post("/routes/QNG-02/coverage", data=coverage_form(
        client, "QNG-02", communes=communes, rules="21220 | hamlet | Thôn Trường Thọ\njust a name",
        capacity_per_day="-1"))
    html = text_of(broken.get_data(as_text=True))
    assert broken.status_code == 422 and "Dòng 2: hãy viết theo mẫu" in html and "Dòng 2: Không có" not in html
    assert "Nhập số đơn là số nguyên" in html  # every mistake at once
    db.session.rollback()
    assert coverage_state("QNG-02") == before


def test_a_new_hamlet_rule_places_new_and_waiting_orders(client, auth):
    earlier = new_order(client, auth, UNCOVERED, "Thôn Phú Hòa, xã An Phú", name="Hồ Văn Sớm")
    assert earlier.dispatch == "unknown_commune"
    login(client, "supervisor")
    communes = [str(c) for c in coverage_state("QNG-02")[0]]
    resp = client.post("/routes/QNG-02/coverage", data=coverage_form(
        client, "QNG-02", communes=communes, rules="21220 | hamlet | Thôn Trường Thọ\n21034 | thôn | Thôn Phú Hòa",
        capacity_per_day="40", backup="QNG-01", open_run="1"))
    assert resp.status_code == 303, text_of(resp.get_data(as_text=True))[:2000]
    assert "Đã lưu tuyến QNG-02." in text_of(client.get(resp.headers["Location"]).get_data(as_text=True))
    db.session.rollback()
    communes_now, rules, capacity, backup, back_home = coverage_state("QNG-02")
    assert rules == ["Thôn Phú Hòa", "Thôn Trường Thọ"] and capacity == 40
    assert backup == route_id("QNG-01") and back_home is False

    later = new_order(client, auth, UNCOVERED, "Số 3, thôn Phú Hòa", name="Hồ Thị Muộn")
    assert later.route_id == route_id("QNG-02") and later.dispatch is None
    event = db.session.scalar(sa.select(OrderEvent).where(OrderEvent.order_id == later.id,
                                                         OrderEvent.status_to == "assigned"))
    assert event.reason == "hamlet"

    # the order that waited goes there too when assignment runs again
    token = csrf_token(client, "/routes/dispatch")
    resp = client.post("/routes/dispatch/auto", data={"csrf_token": token})
    assert resp.status_code == 303
    page = text_of(client.get(resp.headers["Location"]).get_data(as_text=True))
    assert "Phân tuyến tự động: 1 đơn đã vào tuyến, 0 đơn còn chờ phân tuyến." in page
    db.session.rollback()
    assert db.session.get(DeliveryOrder, earlier.id).route_id == route_id("QNG-02")


def test_forms_without_the_csrf_token_are_refused(client, auth):
    order = new_order(client, auth, UNCOVERED, "Thôn Phú Hòa")
    before = coverage_state("QNG-02")
    login(client, "admin")
    for path, data in [("/routes/QNG-01/run/sequence", {}),
                       ("/routes/QNG-02/coverage", {"communes": [], "rules": ""}),
                       ("/routes/dispatch/move", {"item_id": order.item_id, "route": "QNG-02"}),
                       ("/routes/dispatch/auto", {})]:
        resp = client.post(path, data=data)
        assert resp.status_code == 400, path
        assert "Biểu mẫu đã hết hạn" in resp.get_data(as_text=True)
    db.session.rollback()
    assert coverage_state("QNG-02") == before
    assert db.session.get(DeliveryOrder, order.id).route_id is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RunStop)) == 0


# --- words --------------------------------------------------------------------------------------

def test_every_dispatch_reason_and_part_kind_has_a_label():
    from delivery_service.routing.models import PartKind
    from delivery_service.web import display
    from routes import Outcome

    assert set(display.DISPATCH_REASON) == {o for o in Outcome if o.needs_dispatch}
    assert set(display.PART_KIND) == set(PartKind)


@pytest.mark.parametrize("english, vietnamese", [
    ("Not a commune in force today: 17, 18.", "Không phải xã / phường đang có hiệu lực hôm nay: 17, 18."),
    ("The order is already on route QNG-01 for 2026-07-01.", "Đơn đã ở tuyến QNG-01 ngày 01/07/2026."),
    ("The order is handed_to_courier: it is with a courier or closed, so it cannot change route now.",
     "Đơn đang ở chỗ bưu tá hoặc đã kết thúc, nên không thể đổi tuyến lúc này."),
    ("No route NOPE", "Không có tuyến NOPE."),
    ("Only a post office's supervisor or an administrator can dispatch orders.",
     "Chỉ trưởng bưu cục hoặc quản trị viên mới được phân tuyến đơn."),
])
def test_routing_service_messages_are_translated(app, english, vietnamese):
    from flask_babel import force_locale

    from delivery_service.web.messages import translate_message

    with app.test_request_context(), force_locale("vi"):
        assert translate_message(english) == vietnamese
