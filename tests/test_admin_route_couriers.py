"""A route's courier choices are the couriers its post office's routes may take: the same rule
(admin.org_services._may_drive) for the form's list and for the save's check."""

from __future__ import annotations

import html as markup
import re

import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import create_user
from delivery_service.extensions import db
from delivery_service.orgs.models import PostalRoute

# --- a route's couriers: those its post office's routes may take, the same rule for the list and the save


def _courier_select(page: str) -> str:
    return re.search(r'<select[^>]*name="courier".*?</select>', page, re.S).group(0)


def _usernames(select: str) -> list[str]:
    return [v for v in re.findall(r'<option value="([^"]*)"', select) if v]


def _route(code: str) -> PostalRoute:
    db.session.expire_all()
    return db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == code))


def _route_form(route: PostalRoute, **changes: str) -> dict[str, str]:
    return {"name": route.name, "post_office": route.post_office.code, "courier": "", "capacity_per_day": "",
            "backup": "", "active": "1", "return_to_office": "1", **changes}


def _couriers_elsewhere() -> None:
    """A courier of Hà Tĩnh's office, and one of no office who drives Hà Tĩnh's route HTI-01."""
    create_user(username="c.ductho", full_name="Nguyễn Văn Đức", password=DEMO_PASSWORD, role=Role.COURIER,
                post_office_code="BC-DUCTHO")
    loose = create_user(username="c.hatinh", full_name="Trần Văn Hà", password=DEMO_PASSWORD, role=Role.COURIER)
    db.session.flush()
    _route("HTI-01").courier_id = loose.id
    db.session.commit()


def test_a_routes_courier_list_has_only_couriers_of_its_office_or_province(client):
    """QNG-02 (BC-QNG, Quảng Ngãi): the national admin was offered Hà Tĩnh's couriers, the one of no
    office (driving HTI-01) even accepted; now neither is listed, and saving one says why."""
    _couriers_elsewhere()
    login(client, "admin")
    route = _route("QNG-02")
    path = f"/admin/routes/{route.id}"
    listed = _usernames(_courier_select(client.get(path).get_data(as_text=True)))
    assert "courier" in listed  # no office, drives QNG-01 in Quảng Ngãi
    assert "c.ductho" not in listed and "c.hatinh" not in listed
    for username in ("c.hatinh", "c.ductho"):
        resp = client.post(path, data={"csrf_token": csrf_token(client, path),
                                       **_route_form(route, courier=username)})
        page = markup.unescape(resp.get_data(as_text=True))
        assert resp.status_code == 422, username
        assert "Bưu tá này không nhận được tuyến của bưu cục BC-QNG" in page and "Quảng Ngãi" in page
        assert _route("QNG-02").courier_id is None  # nothing changed
    resp = client.post(path, data={"csrf_token": csrf_token(client, path),
                                   **_route_form(route, courier="courier")})
    assert resp.status_code == 303
    assert _route("QNG-02").courier_id == db.session.scalar(sa.select(User.id).where(User.username == "courier"))


def test_a_new_routes_courier_is_checked_against_the_office_chosen(client):
    _couriers_elsewhere()
    login(client, "admin")
    form = {"code": "QNG-09", "name": "Tuyến thử", "post_office": "BC-QNG", "courier": "c.hatinh"}
    resp = client.post("/admin/routes/new", data={"csrf_token": csrf_token(client, "/admin/routes/new"), **form})
    assert resp.status_code == 422
    assert "không nhận được tuyến của bưu cục BC-QNG" in markup.unescape(resp.get_data(as_text=True))
    assert _route("QNG-09") is None
    form["post_office"] = "BC-DUCTHO"
    resp = client.post("/admin/routes/new", data={"csrf_token": csrf_token(client, "/admin/routes/new"), **form})
    assert resp.status_code == 303
    assert _route("QNG-09").courier_id == db.session.scalar(sa.select(User.id).where(User.username == "c.hatinh"))


def test_a_new_routes_couriers_come_by_office_and_province(client):
    _couriers_elsewhere()
    login(client, "admin")
    select = _courier_select(client.get("/admin/routes/new").get_data(as_text=True))
    groups = {label: _usernames(options)
              for label, options in re.findall(r'<optgroup label="([^"]*)"[^>]*>(.*?)</optgroup>', select, re.S)}
    [ductho] = [names for label, names in groups.items() if label.startswith("BC-DUCTHO · ")]
    assert ductho == ["c.ductho"]
    [hatinh] = [names for label, names in groups.items() if "phát tuyến ở" in label and "Hà Tĩnh" in label]
    assert hatinh == ["c.hatinh"]
    [quang_ngai] = [names for label, names in groups.items() if "phát tuyến ở" in label and "Quảng Ngãi" in label]
    assert quang_ngai == ["courier"]
    assert sum(len(names) for names in groups.values()) == len(set(_usernames(select)))  # each once


def test_a_routes_current_courier_who_no_longer_fits_stays_listed_and_says_so(client):
    """HTI-01's courier, made a courier of BC-QNG (another province) after they were given the route,
    stays selected in the route's form (saving the form unchanged must not drop them silently), marked
    as no longer fitting the route; saving the form as it is then says why."""
    _couriers_elsewhere()
    user = db.session.scalar(sa.select(User).where(User.username == "c.hatinh"))
    user.post_office_id = _route("QNG-01").post_office_id
    db.session.commit()
    login(client, "admin")
    route = _route("HTI-01")
    path = f"/admin/routes/{route.id}"
    select = markup.unescape(_courier_select(client.get(path).get_data(as_text=True)))
    assert "Trần Văn Hà (c.hatinh): không còn hợp với tuyến này" in select
    resp = client.post(path, data={"csrf_token": csrf_token(client, path),
                                   **_route_form(route, courier="c.hatinh")})
    assert resp.status_code == 422
    assert "Bưu tá này không nhận được tuyến của bưu cục BC-DUCTHO" in markup.unescape(resp.get_data(as_text=True))


def test_a_province_admin_is_not_offered_nor_given_a_courier_they_cannot_see(client):
    """A courier of no post office who drives no route is in no province: a province admin cannot open
    their account (404), so the route forms must not list them, nor a save give them a route, which
    would bring the account, and its password reset, into that admin's province (outside review)."""
    from test_province_admin import _province_admin

    loose = create_user(username="c.loose", full_name="Hồ Văn Tự Do", password=DEMO_PASSWORD, role=Role.COURIER)
    _province_admin("51")
    login(client, "qt.51")
    assert client.get(f"/admin/users/{loose.id}").status_code == 404
    assert "c.loose" not in _usernames(_courier_select(client.get("/admin/routes/new").get_data(as_text=True)))
    route = _route("QNG-02")
    path = f"/admin/routes/{route.id}"
    assert "c.loose" not in _usernames(_courier_select(client.get(path).get_data(as_text=True)))
    resp = client.post(path, data={"csrf_token": csrf_token(client, path), **_route_form(route, courier="c.loose")})
    assert resp.status_code == 422 and _route("QNG-02").courier_id is None
    new = {"code": "QNG-77", **_route_form(route, courier="c.loose")}
    assert client.post("/admin/routes/new", data={"csrf_token": csrf_token(client, "/admin/routes/new"),
                                                  **new}).status_code == 422
    assert _route("QNG-77") is None
    assert client.get(f"/admin/users/{loose.id}").status_code == 404  # still not theirs

    client.post("/logout", data={"csrf_token": csrf_token(client, "/admin/")})
    login(client, "admin")  # the national admin sees them, and may give them the route
    resp = client.post(path, data={"csrf_token": csrf_token(client, path), **_route_form(route, courier="c.loose")})
    assert resp.status_code == 303 and _route("QNG-02").courier_id == loose.id
