"""Administration of staff accounts (/admin/users) and the audit log (/admin/audit): the services and
the pages, as a national admin and as a province admin, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login
from flask import Flask
from web_helpers import field_error, make_user

from delivery_service.accounts.models import AuditEvent, Role, User
from delivery_service.accounts.services import create_user
from delivery_service.admin import user_services as svc
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orgs.models import Counter, PostOffice
from delivery_service.units.models import AdminUnit, UnitLevel

TEMP = "Tam-thoi-2026-xyz"
NEW = "Mat-khau-rieng-77"


def _id(model, code: str) -> int:  # noqa: ANN001
    return db.session.scalar(sa.select(model.id).where(model.code == code))


def _province(code: str) -> int:
    today = local_today()
    return db.session.scalar(sa.select(AdminUnit.id).where(
        AdminUnit.level == UnitLevel.PROVINCE, AdminUnit.code == code, AdminUnit.valid_from <= today,
        sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today)))


def _user(username: str) -> User:
    return db.session.scalar(sa.select(User).where(User.username == username))


def _province_admin(username: str = "qt.qng", province: str = "51") -> User:
    user = create_user(username=username, full_name="Quản trị Quảng Ngãi", password=DEMO_PASSWORD,
                       role=Role.ADMIN)
    user.area_unit_id = _province(province)
    db.session.commit()
    return user


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.id)))


def _post(client, path: str, form_path: str, **data: str):  # noqa: ANN001, ANN202
    return client.post(path, data={"csrf_token": csrf_token(client, form_path), **data})


def _new_user_form(**changes: str) -> dict[str, str]:
    data = {"username": "nv.moi", "full_name": "Nguyễn  Văn Mới", "role": "counter_staff",
            "counter_id": str(_id(Counter, "QNG-TTHCC")), "post_office_id": "", "area_code": "",
            "province_id": "", "password": ""}
    data.update(changes)
    return data


# --- services ------------------------------------------------------------------------------------

def test_list_searches_without_diacritics_in_vietnamese_order_and_pages(app: Flask):
    admin = _user("admin")
    for username, name in (("u.dung", "Đặng Văn Dũng"), ("u.an", "Nguyễn An"), ("u.anh", "Ánh Tuyết"),
                           ("u.cuong", "Cao Văn Cường")):
        create_user(username=username, full_name=name, password=DEMO_PASSWORD, role=Role.COURIER)
    db.session.commit()
    found = svc.list_users(admin, q="nguyen")
    assert [u.username for u in found.rows] == ["u.an"]
    assert [u.username for u in svc.list_users(admin, q="U.AN").rows] == ["u.anh", "u.an"]
    couriers = svc.list_users(admin, role="courier")
    names = [u.full_name for u in couriers.rows]
    # ICU's Vietnamese order: Á after A-words is with A; Đ after D (here after C), before L and N
    assert names == ["Ánh Tuyết", "Cao Văn Cường", "Đặng Văn Dũng", "Lê Văn Phát", "Nguyễn An"]
    second = svc.list_users(admin, role="courier", page=2, per_page=2)
    assert [u.full_name for u in second.rows] == names[2:4] and second.pages == 3 and second.total == 5


def test_create_checks_every_field_and_changes_nothing(app: Flask):
    admin = _user("admin")
    before = db.session.scalar(sa.select(sa.func.count()).select_from(User))
    with pytest.raises(InvalidInput) as exc:
        svc.create_account(admin, username="counter", full_name=" ", role="counter_staff", password="short")
    assert set(exc.value.errors) == {"username", "full_name", "counter_id", "password"}
    with pytest.raises(InvalidInput) as exc:
        svc.create_account(admin, username="x.y", full_name="X Y", role="district_officer", area_code="99999")
    assert set(exc.value.errors) == {"area_code"}
    with pytest.raises(InvalidInput) as exc:
        svc.create_account(admin, username="x.y", full_name="X Y", role="boss")
    assert set(exc.value.errors) == {"role"}
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == before
    assert not _events("user.create")


def test_create_audits_fields_without_the_password(app: Flask):
    admin = _user("admin")
    user, generated = svc.create_account(admin, username="QT.HTI", full_name="Quản trị Hà Tĩnh",
                                         role="admin", province_id=_province("42"), ip="127.0.0.1")
    db.session.commit()
    assert generated and len(generated) >= 10 and user.username == "qt.hti"
    assert user.must_change_password and user.area_unit_id == _province("42")
    (event,) = _events("user.create")
    assert event.before is None and event.object_id == str(user.id) and event.actor_label == "admin"
    assert event.after["role"] == "admin" and event.after["area_unit"] == "42"
    assert event.after["password"] == "generated"
    assert generated not in str(event.after) and user.password_hash not in str(event.after)


def test_province_admin_sees_and_changes_only_their_province(app: Flask):
    qng = _province_admin()
    make_user("hti.staff", counter_code="HTI-DUCTHO")
    hti = _user("hti.staff")
    other_admin = _province_admin("qt.hti", "42")
    visible = {u.username for u in svc.list_users(qng, per_page=100).rows}
    # counter by its counter's unit, supervisor by office, district officer by area, courier by route
    assert {"counter", "supervisor", "district", "courier", "qt.qng"} <= visible
    assert not visible & {"admin", "hti.staff", "qt.hti"}
    for user in (hti, _user("admin"), other_admin):
        with pytest.raises(NotFound):
            svc.get_user(qng, user.id)
        with pytest.raises(NotFound):
            svc.set_active(qng, user, active=False)
        with pytest.raises(NotFound):
            svc.reset_password(qng, user)
    cases = [
        ({"role": "counter_staff", "counter_id": _id(Counter, "HTI-DUCTHO")}, "counter_id"),
        ({"role": "supervisor", "post_office_id": _id(PostOffice, "BC-DUCTHO")}, "post_office_id"),
        ({"role": "district_officer", "area_code": "18229"}, "area_code"),
        ({"role": "admin", "province_id": _province("42")}, "province_id"),
        ({"role": "courier"}, "post_office_id"),  # a courier needs a home office in the province
    ]
    for scope_args, field in cases:
        with pytest.raises(InvalidInput) as exc:
            svc.create_account(qng, username="x.new", full_name="X", **scope_args)  # type: ignore[arg-type]
        assert set(exc.value.errors) == {field}, scope_args
    # an admin made by a province admin is an admin of that province, never a national one
    made, _ = svc.create_account(qng, username="qt.qng2", full_name="Phó quản trị", role="admin")
    courier, _ = svc.create_account(qng, username="bt.qng", full_name="Bưu tá", role="courier",
                                    post_office_id=_id(PostOffice, "BC-QNG"))
    db.session.commit()
    assert made.area_unit_id == _province("51")
    assert {"qt.qng2", "bt.qng"} <= {u.username for u in svc.list_users(qng, per_page=100).rows}
    with pytest.raises(InvalidInput):
        svc.update_account(qng, _user("counter"), full_name="Trần Thị Quầy", role="counter_staff",
                           counter_id=_id(Counter, "HTI-DUCTHO"))


# --- pages ---------------------------------------------------------------------------------------

def test_admin_creates_a_user_on_the_page_and_sees_the_password_once(client, app: Flask):
    login(client, "admin")
    page = client.get("/admin/users/new")
    assert page.status_code == 200 and "Tên đăng nhập" in page.get_data(as_text=True)
    resp = _post(client, "/admin/users/new", "/admin/users/new", **_new_user_form())
    assert resp.status_code == 303  # then the page that shows the password once (Post/Redirect/Get)
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="temporary-password"' in html
    user = _user("nv.moi")
    assert user.full_name == "Nguyễn Văn Mới" and user.role is Role.COUNTER_STAFF and user.must_change_password
    listing = client.get("/admin/users?q=moi&role=counter_staff&active=1").get_data(as_text=True)
    assert "Nguyễn Văn Mới" in listing and "Chờ đổi mật khẩu" in listing
    assert "Nguyễn Văn Mới" not in client.get("/admin/users?q=moi&active=0").get_data(as_text=True)


def test_bad_form_is_refused_with_messages_per_field(client, app: Flask):
    login(client, "admin")
    resp = _post(client, "/admin/users/new", "/admin/users/new",
                 **_new_user_form(username="counter", counter_id="", password="short1"))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert field_error(html, "username") == "Tên đăng nhập này đã có người dùng."
    assert field_error(html, "counter_id") == "Nhân viên quầy cần có quầy một cửa."
    assert "ít nhất" in field_error(html, "password")
    assert _user("counter").full_name == "Trần Thị Quầy" and not _events("user.create")


def test_province_admin_pages_give_404_for_another_province_and_403_for_national_pages(client, app: Flask):
    _province_admin()
    make_user("hti.staff", counter_code="HTI-DUCTHO")
    hti = _user("hti.staff")
    national = _user("admin")
    login(client, "qt.qng")
    listing = client.get("/admin/users").get_data(as_text=True)
    assert "counter" in listing and "hti.staff" not in listing and "Quản trị hệ thống" not in listing
    own = _user("counter").id
    token = csrf_token(client, f"/admin/users/{own}")
    for user_id in (hti.id, national.id):
        assert client.get(f"/admin/users/{user_id}").status_code == 404
        assert client.get(f"/admin/users/{user_id}/edit").status_code == 404
        for action in ("deactivate", "reactivate", "password", "unlock", "edit"):
            assert client.post(f"/admin/users/{user_id}/{action}", data={"csrf_token": token}).status_code == 404
    assert client.get("/admin/jobs").status_code == 403
    assert client.get("/admin/webhooks").status_code == 403
    index = client.get("/admin/").get_data(as_text=True)
    assert "/admin/users" in index and "/admin/jobs" not in index
    resp = _post(client, "/admin/users/new", "/admin/users/new",
                 **_new_user_form(counter_id=str(_id(Counter, "HTI-DUCTHO"))))
    assert resp.status_code == 422
    assert field_error(resp.get_data(as_text=True), "counter_id") == "Quầy này nằm ngoài tỉnh của bạn."
    db.session.remove()
    assert _user("hti.staff").active and _user("nv.moi") is None


def test_edit_role_and_scope_is_audited(client, app: Flask):
    login(client, "admin")
    user = _user("counter")
    resp = _post(client, f"/admin/users/{user.id}/edit", f"/admin/users/{user.id}/edit",
                 full_name="Trần Thị Quầy", role="supervisor", post_office_id=str(_id(PostOffice, "BC-QNG")),
                 counter_id=str(user.counter_id), area_code="", province_id="")
    assert resp.status_code == 303
    db.session.remove()
    user = _user("counter")
    assert user.role is Role.SUPERVISOR and user.counter_id is None and user.post_office.code == "BC-QNG"
    (event,) = _events("user.update")
    assert event.before == {"role": "counter_staff", "counter": "QNG-TTHCC", "post_office": None}
    assert event.after == {"role": "supervisor", "counter": None, "post_office": "BC-QNG"}


def test_reset_password_forces_a_change_at_next_log_in(client, app: Flask):
    other = app.test_client()
    login(other, "counter")
    assert other.get("/counter").status_code == 200
    login(client, "admin")
    user_id = _user("counter").id
    resp = _post(client, f"/admin/users/{user_id}/password", f"/admin/users/{user_id}", password=TEMP)
    assert resp.status_code == 303
    assert other.get("/counter").status_code == 302  # the sessions of the user ended
    db.session.remove()
    assert _user("counter").must_change_password
    (event,) = _events("user.password_reset")
    assert event.after == {"must_change_password": True, "password": "set by administrator"}
    assert TEMP not in str(event.after)

    fresh = app.test_client()
    login(fresh, "counter", TEMP)
    for path in ("/counter", "/", "/reports/"):
        resp = fresh.get(path)
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/account/password"), path
    resp = _post(fresh, "/account/password", "/account/password", current_password=TEMP,
                 new_password=NEW, repeat_password=NEW)
    assert resp.status_code == 303
    assert fresh.get("/counter").status_code == 200
    db.session.remove()
    assert not _user("counter").must_change_password


def test_generated_reset_password_is_shown_once_and_works(client, app: Flask):
    login(client, "admin")
    user_id = _user("courier").id
    resp = _post(client, f"/admin/users/{user_id}/password", f"/admin/users/{user_id}", password="")
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    import re

    password = re.search(r'id="temporary-password">([^<]+)<', html).group(1)
    assert "demo-password" not in html
    fresh = app.test_client()
    login(fresh, "courier", password)
    assert fresh.get("/routes").headers["Location"].endswith("/account/password")
    weak = _post(client, f"/admin/users/{user_id}/password", f"/admin/users/{user_id}", password="courier123")
    assert weak.status_code == 422 and field_error(weak.get_data(as_text=True), "password")


def test_failed_log_ins_lock_the_account_and_unlock_clears_them(client, app: Flask):
    token = csrf_token(client, "/login")
    for n in range(30):  # the per-account allowance, from several addresses (each has its own)
        resp = client.post("/login", data={"username": "counter", "password": f"wrong-{n}", "csrf_token": token},
                           environ_base={"REMOTE_ADDR": f"10.0.0.{n // 8}"})
        assert resp.status_code == 401
    right = {"username": "counter", "password": DEMO_PASSWORD, "csrf_token": token}
    assert client.post("/login", data=right, environ_base={"REMOTE_ADDR": "10.0.1.1"}).status_code == 429
    user = _user("counter")
    assert svc.is_locked(user)
    admin_client = app.test_client()
    login(admin_client, "admin")
    assert "Khóa đăng nhập" in admin_client.get("/admin/users?q=counter").get_data(as_text=True)
    resp = _post(admin_client, f"/admin/users/{user.id}/unlock", f"/admin/users/{user.id}")
    assert resp.status_code == 303
    db.session.remove()
    assert not svc.is_locked(_user("counter"))
    assert client.post("/login", data=right, environ_base={"REMOTE_ADDR": "10.0.1.2"}).status_code == 303
    (event,) = _events("user.unlock")
    assert event.before == {"locked": True} and event.after == {"locked": False}


def test_deactivate_ends_sessions_and_reactivate_lets_them_back(client, app: Flask):
    other = app.test_client()
    login(other, "supervisor")
    assert other.get("/routes").status_code == 200
    login(client, "admin")
    user = _user("supervisor")
    version = user.session_version
    assert _post(client, f"/admin/users/{user.id}/deactivate", f"/admin/users/{user.id}").status_code == 303
    assert other.get("/routes").status_code == 302
    db.session.remove()
    user = _user("supervisor")
    assert not user.active and user.session_version > version
    token = csrf_token(other, "/login")
    refused = other.post("/login", data={"username": "supervisor", "password": DEMO_PASSWORD, "csrf_token": token})
    assert refused.status_code == 401
    me = _user("admin").id
    assert _post(client, f"/admin/users/{me}/deactivate", f"/admin/users/{me}").status_code == 303
    db.session.remove()
    assert _user("admin").active  # one cannot deactivate oneself
    assert _post(client, f"/admin/users/{user.id}/reactivate", f"/admin/users/{user.id}").status_code == 303
    login(other, "supervisor")
    assert [e.action for e in db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action.like("user.%")).order_by(AuditEvent.id))] == ["user.deactivate", "user.reactivate"]


def test_audit_log_is_searchable_and_scoped_to_the_province(client, app: Flask):
    admin = _user("admin")
    make_user("hti.staff", counter_code="HTI-DUCTHO")
    svc.reset_password(admin, _user("hti.staff"), password=TEMP)
    svc.reset_password(admin, _user("counter"), password=TEMP)
    svc.create_account(admin, username="nv.moi", full_name="Nguyễn Văn Mới", role="counter_staff",
                       counter_id=_id(Counter, "QNG-TTHCC"))
    _province_admin()
    db.session.commit()
    login(client, "admin")
    html = client.get("/admin/audit?action=user.password_reset").get_data(as_text=True)
    assert html.count('data-action="user.password_reset"') == 2 and "Đặt lại mật khẩu" in html
    hti_id = _user("hti.staff").id
    one = client.get(f"/admin/audit?object_type=user&object_id={hti_id}").get_data(as_text=True)
    assert one.count("<tr data-action") == 1 and f'data-object="user:{hti_id}"' in one
    today = local_today()
    by_admin = client.get(f"/admin/audit?actor=ADM&from={today}&to={today}").get_data(as_text=True)
    assert by_admin.count("<tr data-action") == 4 and 'data-action="login"' in by_admin  # and its log-in
    tomorrow = today + dt.timedelta(days=1)
    assert "<tr data-action" not in client.get(f"/admin/audit?from={tomorrow}").get_data(as_text=True)
    assert "Phải đổi mật khẩu" in html  # the before/after of the fields
    # People by their full names (the account name small beside them), object types in Vietnamese
    created = client.get("/admin/audit?action=user.create").get_data(as_text=True)
    row = re.search(r'<tr data-action="user.create".*?</tr>', created, re.S).group(0)
    actor_cell = re.search(r'<td class="actor">(.*?)</td>', row, re.S).group(1)
    assert actor_cell.startswith("Quản trị hệ thống") and "<code>admin</code>" in actor_cell
    object_cell = re.search(r'<td class="object" title="user">(.*?)</td>', row, re.S).group(1)
    assert "Người dùng Nguyễn Văn Mới" in object_cell and "<code>nv.moi</code>" in object_cell
    assert ">Tạo tài khoản<" in row and "<code>user</code>" not in row
    assert '<option value="user" >Người dùng</option>' in created or '<option value="user">Người dùng</option>' in created
    by_name = client.get("/admin/audit?actor=quan tri he thong&action=user.create").get_data(as_text=True)
    assert by_name.count("<tr data-action") == 1  # found by the full name shown, without diacritics

    province = app.test_client()
    login(province, "qt.qng")
    seen = province.get("/admin/audit").get_data(as_text=True)
    counter_id = _user("counter").id
    assert f'data-object="user:{counter_id}"' in seen and f'data-object="user:{hti_id}"' not in seen
    qng = _user("qt.qng")
    rows = svc.search_audit(qng, action="user.password_reset").rows
    assert [e.object_id for e in rows] == [str(counter_id)]


def test_index_lists_only_registered_sections(client, app: Flask):
    from delivery_service.admin import SECTIONS

    login(client, "admin")
    html = client.get("/admin/").get_data(as_text=True)
    assert "/admin/users" in html and "/admin/audit" in html and "/admin/jobs" in html
    for section in SECTIONS:
        if section.endpoint not in app.view_functions:
            assert section.label_vi not in html
    staff = app.test_client()
    login(staff, "counter")
    assert staff.get("/admin/").status_code == 403 and staff.get("/admin/users").status_code == 403
    assert staff.get("/admin/audit").status_code == 403


def test_pages_read_in_english_after_the_switch(client, app: Flask):
    login(client, "admin")
    svc.reset_password(_user("admin"), _user("courier"), password=TEMP)
    db.session.commit()
    html = client.get("/admin/users?lang=en").get_data(as_text=True)
    assert "<h1>Users" in html and "Người dùng" not in html and "Must change password" in html
    audit = client.get("/admin/audit").get_data(as_text=True)
    assert "Password reset" in audit and "Must change password" in audit and "Đặt lại mật khẩu" not in audit
    assert "User " in audit and "Người dùng" not in audit  # the object type in English too
    assert "Administration" in client.get("/admin/").get_data(as_text=True)
