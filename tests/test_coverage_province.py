"""A route covers communes of its post office's province only, whoever edits it (supervisor, national
or province admin; service, supervisors' page, administration page, API), comparing provinces as of
2025 (former Quảng Nam's units count for Đà Nẵng); and a district officer lists only the routes of
their area. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login
from test_province_admin import _province_admin
from test_web_routing import coverage_state, route_id, text_of

from delivery_service.accounts.models import AuditEvent, User
from delivery_service.accounts.services import Actor
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orgs.models import PostalRoute, PostOffice
from delivery_service.routing import services
from delivery_service.units.models import REFORM_DATE, UnitLevel
from delivery_service.units.services import province_code_2025, unit_index

HA_TINH = "18229"  # Xã Đức Thọ, Hà Tĩnh (42): not Quảng Ngãi (51), where BC-QNG and its routes are
OUTSIDE_QNG = "Outside Tỉnh Quảng Ngãi, the province of post office BC-QNG: "


def _unit_id(code: str) -> int:
    return unit_index().find(UnitLevel.COMMUNE, code, local_today()).id


def _legacy_id(code: str) -> int:
    """A commune of before the reform (the same code may be a 2025 commune's too: 20341)."""
    return unit_index().find(UnitLevel.COMMUNE, code, REFORM_DATE.replace(year=2024)).id


def _user(username: str) -> User:
    return db.session.scalar(sa.select(User).where(User.username == username))


def _audits() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "route.coverage"))


def _route(code: str) -> PostalRoute:
    return db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == code))


# --- the service ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["supervisor", "admin"])
def test_no_editor_puts_a_commune_of_another_province_on_a_route(app, who):
    actor = Actor.of_user(_user(who))
    before, audits = coverage_state("QNG-01"), _audits()
    inside = [_unit_id("21025")]
    with pytest.raises(InvalidInput) as whole:
        services.set_coverage(actor, "QNG-01", communes=[*inside, _unit_id(HA_TINH)])
    assert whole.value.errors == {"communes": [OUTSIDE_QNG + "Xã Đức Thọ."]}
    assert whole.value.errors["communes"][0].code == "unit_mismatch"
    with pytest.raises(InvalidInput) as part:
        services.set_coverage(actor, "QNG-01", communes=inside, rules=[
            {"commune_id": _unit_id("21220"), "kind": "hamlet", "phrase": "Thôn Trường Thọ"},
            {"commune_id": _unit_id(HA_TINH), "kind": "hamlet", "phrase": "Xóm 4"}])
    assert part.value.errors == {"rules.1.commune_id": [OUTSIDE_QNG + "Xã Đức Thọ."]}
    db.session.rollback()
    assert coverage_state("QNG-01") == before and _audits() == audits
    # within the province it goes through
    services.set_coverage(actor, "QNG-01", communes=[*inside, _unit_id("21172")])
    assert coverage_state("QNG-01")[0] == sorted([*inside, _unit_id("21172")])


def test_a_national_admin_gets_no_backup_route_of_another_province(app):
    national = Actor.of_user(_user("admin"))
    before = coverage_state("QNG-01")
    with pytest.raises(InvalidInput) as refused:
        services.set_coverage(national, "QNG-01", backup="HTI-01")
    assert refused.value.errors == {"backup": [OUTSIDE_QNG + "HTI-01."]}
    db.session.rollback()
    assert coverage_state("QNG-01") == before
    assert [r.code for r in services.backup_choices(national, _route("QNG-01"))] == ["QNG-02"]
    services.set_coverage(national, "QNG-02", backup="QNG-01")
    assert coverage_state("QNG-02")[3] == route_id("QNG-01")


def test_a_province_admin_is_told_their_province_as_before(app):
    admin = Actor.of_user(_province_admin("51"), administering=True)
    with pytest.raises(InvalidInput) as refused:
        services.set_coverage(admin, "QNG-01", communes=[_unit_id(HA_TINH)], backup="QNM-01")
    assert refused.value.errors == {"communes": ["Outside your province: Xã Đức Thọ."],
                                    "backup": ["Outside your province: QNM-01."]}
    with pytest.raises(NotFound):
        services.set_coverage(admin, "HTI-01", capacity=5)


# --- across the 2025 reform -----------------------------------------------------------------------------

def test_provinces_are_compared_as_of_2025(app):
    # 20341 is Phường Tam Kỳ of Đà Nẵng (48) since 1 Jul 2025, and was Phường An Mỹ of Quảng Nam (49)
    assert province_code_2025(_unit_id("20341")) == "48"
    assert province_code_2025(_legacy_id("20341")) == "48"
    assert province_code_2025(_legacy_id("20335")) == "48"
    assert province_code_2025(_unit_id("21025")) == province_code_2025(_legacy_id("21025")) == "51"

    national = Actor.of_user(_user("admin"))
    # a rule on a commune of former Quảng Nam is within BC-TAMKY's province (Đà Nẵng)...
    services.set_coverage(national, "QNM-01", rules=[
        {"commune_id": _legacy_id("20341"), "kind": "street", "phrase": "Đường Phan Bội Châu"}])
    # ...one on a former commune of Quảng Ngãi is not
    with pytest.raises(InvalidInput) as refused:
        services.set_coverage(national, "QNM-01", rules=[
            {"commune_id": _legacy_id("21025"), "kind": "street", "phrase": "Đường Hùng Vương"}])
    assert refused.value.errors["rules.0.commune_id"][0].startswith(
        "Outside Thành phố Đà Nẵng, the province of post office BC-TAMKY: ")
    db.session.rollback()

    # a post office still on its unit of before the reform (Tam Kỳ, Quảng Nam): its routes take the
    # communes of Đà Nẵng of today, and not those of another province
    office = db.session.scalar(sa.select(PostOffice).where(PostOffice.code == "BC-TAMKY"))
    unit_of_today, office.unit_id = office.unit_id, _legacy_id("20341")
    db.session.commit()
    try:
        services.set_coverage(national, "QNM-01", communes=[_unit_id("20341"), _unit_id("20335")])
        with pytest.raises(InvalidInput) as other:
            services.set_coverage(national, "QNM-01", communes=[_unit_id("20341"), _unit_id("21025")])
        assert other.value.errors == {"communes": [
            "Outside Thành phố Đà Nẵng, the province of post office BC-TAMKY: Phường Cẩm Thành."]}
    finally:  # the database of PostgreSQL's tests outlives this test (conftest restores routes, not offices)
        db.session.rollback()
        db.session.get(PostOffice, office.id).unit_id = unit_of_today
        db.session.commit()


# --- the pages and the API -----------------------------------------------------------------------------

def _form(client, path: str, communes: list[int], **changes: str) -> dict:
    return {"csrf_token": csrf_token(client, path), "communes": [str(c) for c in communes], "rules": "",
            "capacity_per_day": "60", "backup": "", "open_run": "", **changes}


def test_the_supervisors_page_refuses_another_provinces_commune_in_vietnamese(client):
    before, audits = coverage_state("QNG-01"), _audits()
    login(client, "supervisor")
    path = "/routes/QNG-01/coverage"
    resp = client.post(path, data=_form(client, path, [_unit_id("21025"), _unit_id(HA_TINH)],
                                         rules=f"{HA_TINH} | xóm | Xóm 4", backup="QNG-02"))
    html = text_of(resp.get_data(as_text=True))
    assert resp.status_code == 422
    assert "Ngoài Tỉnh Quảng Ngãi, tỉnh/thành phố của bưu cục BC-QNG: Xã Đức Thọ." in html
    assert "Dòng 1: Ngoài Tỉnh Quảng Ngãi, tỉnh/thành phố của bưu cục BC-QNG: Xã Đức Thọ." in html
    english = client.post(path + "?lang=en", data=_form(client, path, [_unit_id(HA_TINH)]))
    assert english.status_code == 422
    assert OUTSIDE_QNG + "Xã Đức Thọ." in text_of(english.get_data(as_text=True))
    db.session.rollback()
    assert coverage_state("QNG-01") == before and _audits() == audits


def test_the_administration_page_refuses_a_national_admin_another_provinces_backup(client):
    before = coverage_state("QNG-01")
    login(client, "admin")
    path = f"/admin/routes/{route_id('QNG-01')}/coverage"
    page = client.get(path).get_data(as_text=True)
    assert '<option value="QNG-02"' in page and '<option value="HTI-01"' not in page
    resp = client.post(path, data=_form(client, path, [_unit_id("21025"), _unit_id(HA_TINH)], backup="HTI-01"))
    html = text_of(resp.get_data(as_text=True))
    assert resp.status_code == 422
    assert "Ngoài Tỉnh Quảng Ngãi, tỉnh/thành phố của bưu cục BC-QNG: Xã Đức Thọ." in html
    assert "Ngoài Tỉnh Quảng Ngãi, tỉnh/thành phố của bưu cục BC-QNG: HTI-01." in html
    db.session.rollback()
    assert coverage_state("QNG-01") == before


def test_the_api_refuses_another_provinces_commune_or_backup_at_its_field(client):
    before = coverage_state("QNG-01")
    login(client, "supervisor")
    headers = {"X-CSRFToken": csrf_token(client, "/routes")}
    resp = client.put("/api/v1/routes/QNG-01/coverage", headers=headers, json={"communes": ["21025", HA_TINH]})
    assert resp.status_code == 422, resp.json
    assert resp.json["errors"]["json"] == {"communes": [OUTSIDE_QNG + "Xã Đức Thọ."]}
    assert [(d["field"], d["code"]) for d in resp.json["details"]] == [("communes", "unit_mismatch")]
    resp = client.put("/api/v1/routes/QNG-01/coverage", headers=headers, json={
        "rules": [{"commune_code": "21220", "kind": "hamlet", "phrase": "Thôn Trường Thọ"},
                  {"commune_code": HA_TINH, "kind": "hamlet", "phrase": "Xóm 4"}]})
    assert resp.status_code == 422
    assert resp.json["errors"]["json"] == {"rules.1.commune_code": [OUTSIDE_QNG + "Xã Đức Thọ."]}
    admin = client.application.test_client()
    login(admin, "admin")
    resp = admin.put("/api/v1/routes/QNG-01/coverage", headers={"X-CSRFToken": csrf_token(admin, "/routes")},
                     json={"backup_route": "HTI-01"})
    assert resp.status_code == 422
    assert resp.json["errors"]["json"] == {"backup_route": [OUTSIDE_QNG + "HTI-01."]}
    db.session.rollback()
    assert coverage_state("QNG-01") == before


# --- the routes API, as a district officer ---------------------------------------------------------------

def test_a_district_officer_lists_the_routes_of_their_area_only(client, auth):
    login(client, "district")  # area: Tỉnh Quảng Ngãi
    listed = client.get("/api/v1/routes")
    assert listed.status_code == 200 and [r["code"] for r in listed.json] == ["QNG-01", "QNG-02"]
    assert client.get("/api/v1/routes/QNG-02").status_code == 200
    assert client.get("/api/v1/routes/HTI-01").status_code == 404
    _province_admin("42")  # outside the administration pages, the province's officer
    officer = client.application.test_client()
    login(officer, "qt.42")
    assert [r["code"] for r in officer.get("/api/v1/routes").json] == ["HTI-01"]
    # counters' software reads every route's coverage, as before (no personal data)
    assert {r["code"] for r in client.application.test_client().get("/api/v1/routes", headers=auth).json} == {
        "QNG-01", "QNG-02", "HTI-01", "QNM-01"}


# --- the administration's route form: the same rule for its backup and its post office -------------------

def test_the_route_form_keeps_a_route_within_its_post_offices_province(client):
    from test_admin_orgs import _error, _post

    login(client, "admin")
    qng = route_id("QNG-02")
    form = {"name": "Tuyến 2", "post_office": "BC-QNG", "active": "1", "return_to_office": "1"}
    resp = _post(client, f"/admin/routes/{qng}", **form, backup="HTI-01")
    assert resp.status_code == 422
    assert _error(resp.get_data(as_text=True), "backup") == "Tuyến dự phòng HTI-01 ở tỉnh khác với bưu cục BC-QNG."
    # moved to Hà Tĩnh's office, it would still cover Quảng Ngãi's communes
    resp = _post(client, f"/admin/routes/{qng}", **{**form, "post_office": "BC-DUCTHO"})
    assert resp.status_code == 422 and "sửa phạm vi phát trước" in _error(resp.get_data(as_text=True), "post_office")
    db.session.rollback()
    route = _route("QNG-02")
    assert (route.backup_route_id, route.post_office.code) == (None, "BC-QNG")
