"""Outside review of the routing pages: a coverage change's audit event keeps the address it came
from; after saving coverage each user is told what they themselves can do about the orders waiting
for dispatch; the dispatch page offers each order only the routes of its own province. On SQLite
and PostgreSQL."""

from __future__ import annotations

import html
import re

import sqlalchemy as sa
from conftest import csrf_token, login
from test_province_admin import _province_admin
from test_web_routing import UNCOVERED, new_order, route_id, text_of
from web_helpers import make_order

from delivery_service.accounts.models import AuditEvent
from delivery_service.extensions import db
from delivery_service.orgs.models import PostalRoute, route_communes
from delivery_service.routing.services import invalidate_routes

ADDRESS = "203.0.113.7"  # documentation range (RFC 5737): the client's address the test client sends


def _last_coverage_event() -> AuditEvent:
    db.session.rollback()
    return db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "route.coverage")
                             .order_by(AuditEvent.id.desc()))


def _coverage_form(client, path: str, capacity: str) -> dict:  # noqa: ANN001
    """The coverage form as the page shows it, with another capacity."""
    page = client.get(path).get_data(as_text=True)
    communes = re.findall(r'name="communes" value="(\d+)"[^>]*checked', page)
    rules = re.search(r'<textarea[^>]*name="rules"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    backup = re.search(r'<option value="([^"]*)"[^>]*selected', page)
    form = {"csrf_token": csrf_token(client, path), "communes": communes, "rules": html.unescape(rules).strip(),
            "capacity_per_day": capacity, "backup": backup.group(1) if backup else ""}
    if re.search(r'name="open_run" value="1" checked', page):
        form["open_run"] = "1"
    return form


# --- 2. the address of a coverage change -------------------------------------------------------------

def test_a_coverage_change_records_the_clients_address_from_every_page_and_the_api(client):
    env = {"REMOTE_ADDR": ADDRESS}
    login(client, "supervisor")
    resp = client.post("/routes/QNG-02/coverage", data=_coverage_form(client, "/routes/QNG-02/coverage", "7"),
                       environ_base=env)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    event = _last_coverage_event()
    assert event.after == {"capacity_per_day": 7} and event.ip == ADDRESS

    headers = {"X-CSRFToken": csrf_token(client, "/routes")}
    resp = client.put("/api/v1/routes/QNG-02/coverage", headers=headers, json={"capacity_per_day": 8},
                      environ_base={"REMOTE_ADDR": "198.51.100.9"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    event = _last_coverage_event()
    assert event.after == {"capacity_per_day": 8} and event.ip == "198.51.100.9"

    admin = client.application.test_client()
    login(admin, "admin")
    path = f"/admin/routes/{route_id('QNG-02')}/coverage"
    resp = admin.post(path, data=_coverage_form(admin, path, "9"), environ_base=env)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    event = _last_coverage_event()
    assert event.after == {"capacity_per_day": 9} and event.ip == ADDRESS and event.actor_label == "admin"
    assert ADDRESS in admin.get("/admin/audit?action=route.coverage").get_data(as_text=True)


# --- 3. after saving coverage: what each user can do about the orders waiting for dispatch ----------

def _saved_flash(client, path: str) -> str:  # noqa: ANN001
    resp = client.post(path, data=_coverage_form(client, path, "11"))
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    return re.search(r'<p class="flash flash-success"[^>]*>(.*?)</p>', page, re.S).group(1)


def test_whoever_may_dispatch_is_sent_to_the_dispatch_page(client):
    login(client, "supervisor")
    message = _saved_flash(client, "/routes/QNG-02/coverage")
    assert "hãy bấm “Phân tuyến tự động lại” ở trang" in message
    assert '<a href="/routes/dispatch">Chờ phân tuyến</a>' in message
    assert client.get("/routes/dispatch").status_code == 200  # where the link goes, they may go
    national = client.application.test_client()
    login(national, "admin")
    message = _saved_flash(national, f"/admin/routes/{route_id('QNG-02')}/coverage")
    assert '<a href="/routes/dispatch">Chờ phân tuyến</a>' in message
    assert national.get("/routes/dispatch").status_code == 200
    english = _saved_flash(national, f"/admin/routes/{route_id('QNG-02')}/coverage?lang=en")
    assert 'use “Auto-assign again” on the page <a href="/routes/dispatch">Waiting for dispatch</a>' in english


def test_a_province_admin_is_told_who_places_the_waiting_orders_not_sent_to_a_page_they_cannot_open(client):
    _province_admin("51")
    login(client, "qt.51")
    assert client.get("/routes/dispatch").status_code == 403
    message = text_of(_saved_flash(client, f"/admin/routes/{route_id('QNG-02')}/coverage"))
    assert "/routes/dispatch" not in message and "hãy bấm" not in message
    assert ("Các đơn đang chờ phân tuyến được phân tuyến lại khi trưởng bưu cục BC-QNG hoặc quản trị viên "
            "toàn quốc bấm “Phân tuyến tự động lại” ở trang điều phối") in message


# --- 4. the dispatch page offers each order the routes of its own province ------------------------------

def _choices(page: str, order_id: int) -> list[str]:
    """The route codes the "move to" list of one order offers."""
    cell = re.search(rf'<select id="route-{order_id}" name="route"[^>]*>(.*?)</select>', page, re.S)
    return re.findall(r'<option value="([^"]+)">', cell.group(1)) if cell else []


def test_each_waiting_order_is_offered_the_routes_of_its_own_province_only(client, auth):
    quang_ngai = new_order(client, auth, UNCOVERED, "Thôn Phú Hòa", name="Ngô Văn Xa")
    # a waiting order of Hà Tĩnh: its commune no longer covered by HTI-01
    db.session.execute(sa.delete(route_communes).where(route_communes.c.route_id == route_id("HTI-01")))
    db.session.commit()
    invalidate_routes()
    ha_tinh = make_order("HTI-DUCTHO", address={"province_code": "42", "commune_code": "18229",
                                                "detail": "Xóm 4"})
    db.session.commit()
    assert quang_ngai.route_id is None and ha_tinh.route_id is None
    login(client, "admin")  # a national admin: every active route of the country is theirs to choose
    page = client.get("/routes/dispatch").get_data(as_text=True)
    assert _choices(page, quang_ngai.id) == ["QNG-01", "QNG-02"]  # not HTI-01, not Đà Nẵng's QNM-01
    assert _choices(page, ha_tinh.id) == ["HTI-01"]

    supervisor = client.application.test_client()  # BC-QNG's routes only, as before
    login(supervisor, "supervisor")
    page = supervisor.get("/routes/dispatch").get_data(as_text=True)
    assert _choices(page, quang_ngai.id) == ["QNG-01", "QNG-02"]


def test_an_order_no_route_of_its_province_serves_is_told_so(client, auth):
    order = new_order(client, auth, UNCOVERED, "Thôn Phú Hòa", name="Ngô Văn Xa")
    db.session.execute(sa.update(PostalRoute).where(PostalRoute.code.in_(["QNG-01", "QNG-02"]))
                       .values(active=False))
    db.session.commit()
    login(client, "admin")
    page = client.get("/routes/dispatch").get_data(as_text=True)
    assert order.item_id in page and f'id="route-{order.id}"' not in page
    assert "Không có tuyến đang hoạt động nào (trong phạm vi của bạn) phát ở tỉnh của đơn này." in text_of(page)
