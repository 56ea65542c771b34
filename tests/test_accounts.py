"""Accounts: the own password and its policy, the audit log of log-ins, idle and ended sessions."""

from __future__ import annotations

import re
import time

import pyotp
import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login
from web_helpers import make_user

from delivery_service.accounts.models import AuditEvent, Role, User
from delivery_service.accounts.services import create_user, password_problems
from delivery_service.cli import main
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db

NEW = "mây-trắng-bay-2026"


def _events(action: str | None = None) -> list[AuditEvent]:
    db.session.expire_all()
    query = sa.select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.session.scalars(query))


def _user(username: str) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def _change(client, current: str, new: str, repeat: str | None = None):
    token = csrf_token(client, "/account/password")
    return client.post("/account/password", data={"current_password": current, "new_password": new,
                                                   "repeat_password": new if repeat is None else repeat,
                                                   "csrf_token": token})


def test_policy_refuses_short_username_and_common_passwords():
    assert password_problems("short", "an") == ["Password must be at least 10 characters."]
    assert password_problems("nguyenvana", "nguyenvana") == ["Password must not be the username."]
    assert password_problems("NguyenVanA1", "nguyenvana") == ["Password must not be the username."]
    assert password_problems("1234567890", "an") == [
        "This password is one of the most common passwords; choose another."]
    assert password_problems("Password123", "an")  # matched in any case
    assert password_problems(NEW, "an") == []
    assert password_problems(DEMO_PASSWORD, "counter") == []


def test_create_user_and_the_cli_check_the_policy(app):
    with pytest.raises(InvalidInput) as exc:
        create_user(username="tester", full_name="Người Thử", password="qwertyuiop", role=Role.COURIER)
    assert "most common" in exc.value.errors["password"][0]
    result = app.test_cli_runner().invoke(main, ["users", "create", "--role", "courier", "--username", "tester2",
                                                 "--full-name", "Người Thử", "--password", "tester2123"])
    assert result.exit_code == 2 and "password" in result.output
    assert _user("tester2") is None


def test_the_header_links_to_the_password_page_which_needs_a_log_in(client):
    assert client.get("/account/password").status_code == 302
    login(client, "courier")
    html = client.get("/").get_data(as_text=True)
    assert 'href="/account/password"' in html and "Đổi mật khẩu" in html
    page = client.get("/account/password")
    assert page.status_code == 200 and 'name="csrf_token"' in page.get_data(as_text=True)
    resp = client.post("/account/password", data={"current_password": DEMO_PASSWORD, "new_password": NEW,
                                                  "repeat_password": NEW})
    assert resp.status_code == 400  # no CSRF token


def test_a_user_changes_their_password_and_other_sessions_end(app, client):
    make_user("doi-mat-khau", Role.COURIER, counter_code=None)  # not a demo user: PostgreSQL keeps those
    login(client, "doi-mat-khau")
    other = app.test_client()
    login(other, "doi-mat-khau")
    assert other.get("/").status_code == 200
    resp = _change(client, DEMO_PASSWORD, NEW)
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert "Đã đổi mật khẩu." in client.get("/").get_data(as_text=True)  # this session goes on
    assert other.get("/").status_code == 302  # the other one ended
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "doi-mat-khau", NEW)
    token = csrf_token(other, "/login")
    resp = other.post("/login", data={"username": "doi-mat-khau", "password": DEMO_PASSWORD,
                                      "csrf_token": token})
    assert resp.status_code == 401
    [event] = _events("password_change")
    assert event.actor_label == "doi-mat-khau" and event.object_type == "user"


@pytest.mark.parametrize(("current", "new", "repeat", "field", "message"), [
    ("wrong-password", NEW, None, "current_password", "Mật khẩu hiện tại không đúng."),
    (DEMO_PASSWORD, NEW, NEW + "x", "repeat_password", "Hai lần nhập mật khẩu mới không khớp nhau."),
    (DEMO_PASSWORD, "ngắn", None, "new_password", "Mật khẩu phải có ít nhất 10 ký tự."),
    (DEMO_PASSWORD, "courier123", None, "new_password", "Mật khẩu không được trùng với tên đăng nhập."),
    (DEMO_PASSWORD, "iloveyou123", None, "new_password", "thuộc số mật khẩu phổ biến nhất"),
])
def test_refused_changes_say_why_in_vietnamese_and_keep_the_password(client, current, new, repeat, field,
                                                                     message):
    login(client, "courier")
    before = _user("courier").password_hash
    resp = _change(client, current, new, repeat)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert message in html and f'id="e-{field}"' in html
    assert new not in html and current not in html  # passwords are never sent back
    assert _user("courier").password_hash == before


def test_logins_failures_and_logouts_are_audited_without_passwords(client):
    token = csrf_token(client, "/login")
    client.post("/login", data={"username": "counter", "password": "wrong-password-1", "csrf_token": token})
    client.post("/login", data={"username": "nobody-here", "password": "wrong-password-2", "csrf_token": token})
    login(client, "counter")
    client.post("/logout", data={"csrf_token": csrf_token(client, "/counter")})
    events = _events()
    assert [e.action for e in events] == ["login_failed", "login_failed", "login", "logout"]
    counter_id = _user("counter").id
    assert (events[0].actor_label, events[0].object_id, events[0].actor_user_id) == ("counter", str(counter_id),
                                                                                     None)
    assert (events[1].actor_label, events[1].object_id) == ("unknown", None)  # the typed name is not kept
    assert events[2].actor_user_id == counter_id and events[3].actor_user_id == counter_id
    assert all(e.ip == "127.0.0.1" and e.at is not None for e in events)
    stored = repr([(e.actor_label, e.object_id, e.before, e.after) for e in events])
    assert "wrong-password" not in stored and DEMO_PASSWORD not in stored and "nobody" not in stored


def test_a_copied_session_cookie_stops_working_after_log_out(app, client):
    login(client, "counter")
    copy = app.test_client()
    copy.set_cookie("session", client.get_cookie("session").value)
    assert copy.get("/counter").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/counter")})
    assert copy.get("/counter").status_code == 302


def test_the_session_user_is_kept_briefly_and_dropped_when_its_row_changes(app, client, monkeypatch):
    """Each worker keeps a logged-in user's row for a moment (no query per request): a change made in
    this process (deactivation here) ends the session at the next request, and a change made
    elsewhere (another worker, plain SQL here) once the copy is older than SESSION_USER_SECONDS."""
    from delivery_service.accounts import services

    login(client, "counter")
    assert client.get("/counter").status_code == 200
    cached = app.extensions["session_users"]
    user = _user("counter")
    assert user.id in cached
    user.active = False
    db.session.commit()
    assert user.id not in cached
    assert client.get("/counter").status_code == 302
    user.active = True
    db.session.commit()
    monkeypatch.setattr(services, "SESSION_USER_SECONDS", 0.0)  # every copy is too old at once
    other = app.test_client()
    login(other, "counter")
    assert other.get("/counter").status_code == 200
    db.session.execute(sa.text("UPDATE users SET session_version = session_version + 1 WHERE id = :id"),
                       {"id": user.id})
    db.session.commit()
    assert other.get("/counter").status_code == 302


def test_a_password_changed_in_one_worker_keeps_the_session_in_another(app, client):
    """gunicorn runs several workers, each with its own copy of the user's row: the password change
    renews the session in the worker that made it, and the next page may land on a worker still
    holding the row of before (reproduced here by putting that copy back). That worker must see from
    the cookie's session version that its copy is stale, not end the session the change had just
    renewed, nor ask for the new password again (an account made with a temporary password)."""
    user = _user("counter")
    user.must_change_password = True
    db.session.commit()
    login(client, "counter")
    assert client.get("/counter").headers["Location"].endswith("/account/password")
    cached = app.extensions["session_users"]
    before = cached[user.id][1]  # the other worker's copy: the old version, a password still to choose
    assert before.must_change_password
    assert _change(client, DEMO_PASSWORD, NEW).status_code == 303
    cached[user.id] = (time.monotonic() + 3600, before)  # fresh for that worker for a while yet
    page = client.get("/counter")
    assert page.status_code == 200, page.headers.get("Location")
    fresh = cached[user.id][1]
    assert fresh.session_version == _user("counter").session_version and not fresh.must_change_password


def test_sessions_end_after_the_idle_time(app, client):
    login(client, "counter")
    assert client.get("/counter").status_code == 200
    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    assert idle == 30 * 60
    with client.session_transaction() as sess:
        sess["seen"] = int(time.time()) - idle + 60  # active 29 minutes ago: still in
    assert client.get("/counter").status_code == 200
    with client.session_transaction() as sess:
        assert sess["seen"] >= int(time.time()) - 5  # the request counted as activity
        sess["seen"] = int(time.time()) - idle - 1
    resp = client.get("/counter")
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/login")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Phiên làm việc đã kết thúc do không hoạt động" in page
    assert client.get("/counter").status_code == 302  # logged out for good
    login(client, "counter")
    assert client.get("/counter").status_code == 200


def _enrol(client) -> tuple[str, list[str]]:
    """Turn two-factor log-in on for the logged-in user; returns the secret and the recovery codes."""
    page = client.get("/account/two-factor").get_data(as_text=True)
    assert "<svg" in page and "<script" not in page
    secret = re.search(r"<code>([A-Z2-7]{16,})</code>", page).group(1)
    token = csrf_token(client, "/account/two-factor")
    wrong = client.post("/account/two-factor", data={"code": "000000", "csrf_token": token})
    assert wrong.status_code == 422 and "Mã không đúng." in wrong.get_data(as_text=True)
    resp = client.post("/account/two-factor", data={"code": pyotp.TOTP(secret).now(), "csrf_token": token})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Đăng nhập hai lớp đang bật." in html
    codes = re.findall(r"<code>([0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4})</code>", html)
    assert len(codes) == 10
    return secret, codes


def _password_step(client, username: str):
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"] == "/login/code"
    return resp


def test_two_factor_enrolment_and_log_in_with_a_code_or_a_recovery_code(app, client):
    make_user("hai-lop", Role.COURIER, counter_code=None)
    login(client, "hai-lop")
    secret, codes = _enrol(client)
    user = _user("hai-lop")
    assert user.totp_secret == secret and user.totp_enabled_at is not None
    assert all(h.startswith("$argon2") for h in user.recovery_code_hashes)
    assert not any(code in repr(user.recovery_code_hashes) for code in codes)  # kept only as hashes
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})

    _password_step(client, "hai-lop")
    assert client.get("/").status_code == 302  # not logged in before the second step
    token = csrf_token(client, "/login/code")
    resp = client.post("/login/code", data={"code": "123456", "csrf_token": token})
    assert resp.status_code == 401 and "Mã không đúng." in resp.get_data(as_text=True)
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the next step: a used code is not taken twice
    resp = client.post("/login/code", data={"code": code, "csrf_token": token})
    assert resp.status_code == 303 and client.get("/").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})

    _password_step(client, "hai-lop")
    token = csrf_token(client, "/login/code")
    assert client.post("/login/code", data={"code": code, "csrf_token": token}).status_code == 401  # replay
    resp = client.post("/login/code", data={"code": codes[0].upper(), "csrf_token": token})
    assert resp.status_code == 303
    assert "còn lại 9 mã" in client.get("/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    _password_step(client, "hai-lop")
    token = csrf_token(client, "/login/code")
    assert client.post("/login/code", data={"code": codes[0], "csrf_token": token}).status_code == 401
    actions = [(e.action, (e.after or {}).get("second_factor")) for e in _events()]
    assert ("login", "totp") in actions and ("login", "recovery") in actions
    assert ("login_failed", "wrong") in actions and ("totp_enabled", None) in actions


def test_two_factor_can_be_turned_off_with_the_password_unless_the_role_needs_it(app, client):
    make_user("tat-hai-lop", Role.COURIER, counter_code=None)
    login(client, "tat-hai-lop")
    _enrol(client)
    token = csrf_token(client, "/account/two-factor")
    resp = client.post("/account/two-factor", data={"action": "disable", "current_password": "wrong-password",
                                                    "csrf_token": token})
    assert resp.status_code == 422 and _user("tat-hai-lop").totp_secret is not None
    resp = client.post("/account/two-factor", data={"action": "disable", "current_password": DEMO_PASSWORD,
                                                    "csrf_token": token})
    assert resp.status_code == 303 and _user("tat-hai-lop").totp_secret is None
    app.config["TOTP_REQUIRED_ROLES"] = "courier"
    resp = client.get("/")
    assert resp.status_code == 302 and resp.headers["Location"] == "/account/two-factor"
    assert "Vai trò của bạn cần đăng nhập hai lớp" in client.get("/account/two-factor").get_data(as_text=True)
    _enrol(client)
    assert client.get("/").status_code == 200
    token = csrf_token(client, "/account/two-factor")
    resp = client.post("/account/two-factor", data={"action": "disable", "current_password": DEMO_PASSWORD,
                                                    "csrf_token": token})
    assert resp.status_code == 403 and _user("tat-hai-lop").totp_secret is not None


def test_two_factor_is_not_required_by_default(app, client):
    assert app.config["TOTP_REQUIRED_ROLES"] == ""
    login(client, "admin")
    assert client.get("/").status_code == 200
