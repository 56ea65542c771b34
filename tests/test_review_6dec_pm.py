"""What the outside review of 6 Dec (afternoon) found: each test fails on the code before its fix."""

from __future__ import annotations

import sqlalchemy as sa
from conftest import login

from delivery_service.accounts.models import Role, User
from delivery_service.extensions import db
from delivery_service.orgs.models import PostalRoute

PERIOD = "start=2026-03-02&end=2026-03-08"


# --- the dashboard's filters name only what the reader may see -------------------------------------

def test_a_filter_beyond_the_readers_scope_is_refused_not_named(client):
    admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
    other_route = db.session.scalar(sa.select(PostalRoute).where(~PostalRoute.code.like("QNG-%")))
    own_courier = db.session.scalar(sa.select(User.id).where(User.username == "courier"))
    login(client, "district")  # province 51, Quảng Ngãi
    for name, value, shown in (("courier", admin.id, admin.full_name),
                               ("route", other_route.id, other_route.name)):
        for path in ("/reports/", "/reports/orders", "/reports/export.csv", "/reports/orders.csv",
                     "/reports/chart/units.svg"):
            resp = client.get(f"{path}?{PERIOD}&{name}={value}")
            body = resp.get_data(as_text=True)
            assert resp.status_code == 400 and shown not in body, (path, name, body[:500])
        assert "ngoài phạm vi bạn được xem" in client.get(f"/reports/?{PERIOD}&{name}={value}").get_data(as_text=True)
    assert client.get(f"/reports/?{PERIOD}&courier={own_courier}").status_code == 200  # their own area's courier
    assert db.session.get(User, own_courier).role is Role.COURIER


# --- a province admin sets their routes' coverage on the administration pages, and it is audited ----

def _unit_id(code: str) -> int:
    from delivery_service.localtime import local_today
    from delivery_service.units.models import UnitLevel
    from delivery_service.units.services import unit_index

    return unit_index().find(UnitLevel.COMMUNE, code, local_today()).id


def _coverage_form(client, path: str, communes: list[int], **changes: str) -> dict:
    from conftest import csrf_token

    return {"csrf_token": csrf_token(client, path), "communes": [str(c) for c in communes], "rules": "",
            "capacity_per_day": "60", "backup": "", "open_run": "", **changes}


def test_a_province_admin_edits_their_routes_coverage_within_the_province_and_it_is_audited(client):
    from test_province_admin import _province_admin

    from delivery_service.accounts.models import AuditEvent

    _province_admin("51")
    qng, hti = (db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == c))
                for c in ("QNG-01", "HTI-01"))
    login(client, "qt.51")
    assert client.get(f"/routes/{qng.code}/coverage").status_code == 403  # the supervisors' page is not theirs
    path = f"/admin/routes/{qng.id}/coverage"
    page = client.get(path)
    assert page.status_code == 200 and f'action="{path}"' in page.get_data(as_text=True)
    assert "HTI-01" not in page.get_data(as_text=True)  # no other province's route offered as backup
    assert client.get(f"/admin/routes/{hti.id}/coverage").status_code == 404

    resp = client.post(path, data=_coverage_form(client, path, [_unit_id("21025"), _unit_id("18229")]))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Ngoài tỉnh của bạn" in html, html[-3000:]
    resp = client.post(path, data=_coverage_form(client, path, [_unit_id("21025")], backup="HTI-01"))
    assert resp.status_code == 422 and "Ngoài tỉnh của bạn: HTI-01." in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "route.coverage")) == 0

    resp = client.post(path, data=_coverage_form(client, path, [_unit_id("21025")], capacity_per_day="75"))
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/admin/routes")
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "route.coverage"))
    assert event.actor_label == "qt.51" and event.object_id == str(qng.id)
    assert event.after["capacity_per_day"] == 75 and event.after["communes"] == ["21025"]
    assert "21025" in event.before["communes"] and len(event.before["communes"]) == 2
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert "Sửa phạm vi phát của tuyến" in audit and "Số đơn tối đa mỗi ngày" in audit
    assert "capacity_per_day" not in audit.split("<main", 1)[-1].replace('data-field="capacity_per_day"', "")


def test_reporting_areas_changes_are_audited(client):
    from delivery_service.accounts.models import AuditEvent

    login(client, "admin")  # the API with an admin's session
    from conftest import csrf_token

    headers = {"X-CSRFToken": csrf_token(client, "/reports/")}
    body = {"code": "QNG-TP", "name": "Thành phố", "units": [{"level": "commune", "code": "21025"}]}
    resp = client.post("/api/v1/reports/areas", headers=headers, json=body,
                       environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    area = resp.json["id"]
    resp = client.put(f"/api/v1/reports/areas/{area}", headers=headers, json={**body, "name": "TP Quảng Ngãi"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert client.delete(f"/api/v1/reports/areas/{area}", headers=headers).status_code == 204
    rows = db.session.execute(sa.select(AuditEvent.action, AuditEvent.before, AuditEvent.after)
                              .where(AuditEvent.object_type == "report_area").order_by(AuditEvent.id)).all()
    assert [r.action for r in rows] == ["report_area.create", "report_area.update", "report_area.delete"]
    assert rows[1].before == {"name": "Thành phố"} and rows[1].after == {"name": "TP Quảng Ngãi"}
    assert rows[0].after["communes"] == ["21025"]
    # the address each change came from, as every change (docs/administration.md)
    assert db.session.scalars(sa.select(AuditEvent.ip).where(AuditEvent.object_type == "report_area")
                              .order_by(AuditEvent.id)).all() == ["10.1.2.3", "127.0.0.1", "127.0.0.1"]


# --- a webhook to an internal address is refused on the admin page, in the reader's language ----------

def test_the_admin_page_says_why_an_internal_webhook_address_is_refused(client):
    from conftest import csrf_token

    from delivery_service.accounts.models import ApiClient

    login(client, "admin")
    token = csrf_token(client, "/admin/clients")
    client.post("/admin/clients", data={"csrf_token": token, "name": "iGate Thử", "counter": "QNG-TTHCC"})
    client_id = db.session.scalar(sa.select(sa.func.max(ApiClient.id)))
    for url, shown in (("http://169.254.169.254/latest/meta-data/", "trỏ tới 169.254.169.254, một địa chỉ nội bộ"),
                       ("http://10.0.0.5:6379/", "trỏ tới 10.0.0.5, một địa chỉ nội bộ")):  # tests allow 127/8
        resp = client.post(f"/admin/clients/{client_id}/webhook", data={"csrf_token": token, "url": url})
        html = resp.get_data(as_text=True)
        assert resp.status_code == 422 and shown in html, html[-2000:]
        assert "Must be an http://" not in html and "Nhập địa chỉ http://" not in html


# --- a form refused before its view says why, in the reader's language ------------------------------

def test_a_nul_character_in_a_form_is_explained_on_the_page(client):
    from conftest import csrf_token

    login(client, "admin")
    resp = client.post("/admin/offices/new", data={"csrf_token": csrf_token(client, "/admin/offices/new"),
                                                   "code": "BC-NUL", "name": "Bưu cục\x00 thử", "unit": "21025"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "Dữ liệu gửi đi có một ký tự không lưu được" in page, page[-1500:]
    resp = client.post("/api/v1/orders", json={"note": "a\u0000b"}, headers={"X-CSRFToken": "x"})
    assert resp.status_code in (403, 422) and resp.is_json  # the API still answers JSON
