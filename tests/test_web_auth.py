"""Log-in, log-out, CSRF and who may open the counter desk."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login

from delivery_service.accounts.models import User
from delivery_service.extensions import db

WRONG = "Sai tên đăng nhập hoặc mật khẩu."


def test_login_page_has_a_csrf_protected_form(client):
    resp = client.get("/login")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert 'name="csrf_token"' in html and 'name="username"' in html and 'type="password"' in html
    assert "Đăng nhập" in html
    assert resp.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def test_counter_staff_land_on_the_desk(client):
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"username": "Counter ", "password": DEMO_PASSWORD,
                                       "csrf_token": token})
    assert resp.status_code == 303 and resp.headers["Location"] == "/counter"
    assert client.get("/counter").status_code == 200
    user = db.session.scalar(sa.select(User).where(User.username == "counter"))
    db.session.refresh(user)
    assert user.last_login_at is not None


def test_couriers_and_district_officers_land_on_a_home_page_leading_to_their_pages(client):
    login(client, "courier")
    resp = client.get("/")
    assert resp.status_code == 200
    assert 'href="/courier/"' in resp.get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "district")
    html = client.get("/").get_data(as_text=True)
    assert 'href="/reports/"' in html and 'href="/reports/weekly/"' in html


@pytest.mark.parametrize("username", ["courier", "district", "supervisor", "admin"])
def test_every_button_of_a_home_page_opens_for_its_role(client, username):
    login(client, username)
    html = client.get("/").get_data(as_text=True)
    links = [href for block in re.findall(r'<p class="actions">(.*?)</p>', html, re.S)
             for href in re.findall(r'href="([^"]+)"', block)]
    assert links
    for href in links:  # a supervisor's home offered the district officer's reports: 403s
        assert client.get(href, follow_redirects=True).status_code == 200, (username, href)


def test_wrong_password_and_unknown_user_get_the_same_message(client):
    for username, password in (("counter", "wrong-password"), ("nobody", DEMO_PASSWORD)):
        token = csrf_token(client, "/login")
        resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
        html = resp.get_data(as_text=True)
        assert resp.status_code == 401
        assert WRONG in html
        assert f'value="{username}"' in html  # the username is kept, the password is not
        assert "wrong-password" not in html
    assert client.get("/counter").status_code == 302


def test_post_without_csrf_token_is_refused(client):
    resp = client.post("/login", data={"username": "counter", "password": DEMO_PASSWORD})
    assert resp.status_code == 400
    assert "Biểu mẫu đã hết hạn" in resp.get_data(as_text=True)
    assert client.get("/counter").status_code == 302  # not logged in


def test_form_post_without_csrf_token_is_refused_when_logged_in(client):
    login(client, "counter")
    resp = client.post("/counter/orders/new", data={"dossier_code": "X-1"})
    assert resp.status_code == 400


def test_login_returns_to_the_page_asked_for_but_never_to_another_site(client):
    resp = client.get("/counter/orders/new")
    assert resp.status_code == 302 and "/login?next=" in resp.headers["Location"]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Vui lòng đăng nhập để xem trang này." in page
    token = csrf_token(client, "/login")
    resp = client.post("/login?next=/counter/orders/new",
                       data={"username": "counter", "password": DEMO_PASSWORD, "csrf_token": token})
    assert resp.headers["Location"] == "/counter/orders/new"
    client.post("/logout", data={"csrf_token": csrf_token(client, "/counter")})
    token = csrf_token(client, "/login")
    resp = client.post("/login?next=//evil.example/x",
                       data={"username": "counter", "password": DEMO_PASSWORD, "csrf_token": token})
    assert resp.headers["Location"] == "/counter"


def test_logout_needs_post_and_ends_the_session(client):
    login(client, "counter")
    assert client.get("/logout").status_code == 405
    resp = client.post("/logout", data={"csrf_token": csrf_token(client, "/counter")})
    assert resp.status_code == 303 and resp.headers["Location"] == "/login"
    assert client.get("/counter").status_code == 302


def test_desk_is_for_counter_staff_and_admins_only(client):
    assert client.get("/counter").headers["Location"].startswith("/login")
    login(client, "courier")
    resp = client.get("/counter")
    assert resp.status_code == 403
    assert "Bạn không có quyền truy cập trang này" in resp.get_data(as_text=True)
    assert client.get("/counter/orders/new").status_code == 403


def test_district_officer_gets_403_and_admin_gets_the_desk(client):
    login(client, "district")
    assert client.get("/counter").status_code == 403
    client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    login(client, "admin")
    assert client.get("/counter").status_code == 200
