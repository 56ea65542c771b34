"""What an outside review of the administration pages found (December 2026): a reload of the page
that shows a new API token or signing secret made another one; destructive buttons name what they
act on before acting; "khóa" meant both "deactivated" and "locked out"; province names said twice;
a raw setting and repository paths on pages for staff; links and sentences sending a province admin
to pages that answer 403."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login
from test_admin_orgs import _events, _province_admin
from test_webhooks import Receiver

from delivery_service.accounts.models import ApiClient, Role, User
from delivery_service.accounts.services import create_user
from delivery_service.admin.models import ShownOnce
from delivery_service.admin.notifications import provider_label
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.units.models import AdminUnit, UnitLevel
from delivery_service.webhooks.models import WebhookEndpoint


def _post(client, path: str, form_path: str = "/admin/clients", **data: str):  # noqa: ANN001, ANN202
    return client.post(path, data={"csrf_token": csrf_token(client, form_path), **data})


def _clients() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(sa.func.count()).select_from(ApiClient))


# --- 1. a secret is shown once, after a redirect --------------------------------------------------

def test_a_new_api_token_is_shown_once_after_a_redirect_and_a_reload_makes_no_second_client(client):
    login(client, "admin")
    before = _clients()
    resp = _post(client, "/admin/clients", name="iGate Quảng Ngãi", counter="QNG-TTHCC")
    # The form is answered with a redirect: the browser's reload repeats the GET, not the POST.
    assert resp.status_code == 303
    client_id = db.session.scalar(sa.select(sa.func.max(ApiClient.id)))
    page = resp.headers["Location"]
    assert page.endswith(f"/admin/clients/{client_id}/token")
    shown = client.get(page)
    html = shown.get_data(as_text=True)
    token = re.search(r'<pre class="pre" id="token">([^<]+)</pre>', html).group(1)
    assert token.startswith("dsk_") and shown.headers["Cache-Control"] == "no-store"
    assert token not in resp.headers["Location"]
    reloaded = client.get(page).get_data(as_text=True)  # F5
    assert token not in reloaded and 'id="secret-gone"' in reloaded and "đã được hiện một lần" in reloaded
    assert _clients() == before + 1 and len(_events("api_client.create")) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ShownOnce)) == 0  # taken as shown
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_a_webhook_signing_secret_is_shown_once_and_a_reload_does_not_rotate_it(client):
    receiver = Receiver()
    try:
        login(client, "admin")
        _post(client, "/admin/clients", name="iGate Quảng Ngãi", counter="QNG-TTHCC")
        client_id = db.session.scalar(sa.select(sa.func.max(ApiClient.id)))
        secrets_shown = []
        for path, data, action in ((f"/admin/clients/{client_id}/webhook", {"url": receiver.url}, "webhook.update"),
                                   (f"/admin/clients/{client_id}/webhook/rotate", {"overlap_hours": "24"},
                                    "webhook.rotate_secret")):
            resp = _post(client, path, **data)
            assert resp.status_code == 303, path
            page = resp.headers["Location"]
            assert page.endswith(f"/admin/clients/{client_id}/webhook/secret")
            html = client.get(page).get_data(as_text=True)
            secret = re.search(r'<pre class="pre" id="secret">([^<]+)</pre>', html).group(1)
            assert secret.startswith("whsec_")
            secrets_shown.append(secret)
            reloaded = client.get(page).get_data(as_text=True)
            assert secret not in reloaded and 'id="secret-gone"' in reloaded
            assert len(_events(action)) == 1, action  # the reload changed nothing
        assert secrets_shown[0] != secrets_shown[1]
        # the rotation's page says until when the old secret still signs
        assert "Khóa ký cũ vẫn ký các yêu cầu đến" in reloaded
    finally:
        receiver.close()


def test_a_secret_kept_for_one_client_is_not_shown_on_another_clients_page(client):
    login(client, "admin")
    _post(client, "/admin/clients", name="iGate A", counter="QNG-TTHCC")
    first = db.session.scalar(sa.select(sa.func.max(ApiClient.id)))
    client.get(f"/admin/clients/{first}/token")
    resp = _post(client, "/admin/clients", name="iGate B", counter="QNG-TTHCC")
    second = db.session.scalar(sa.select(sa.func.max(ApiClient.id)))
    html = client.get(f"/admin/clients/{first}/token").get_data(as_text=True)
    assert 'id="token"' not in html and 'id="secret-gone"' in html
    html = client.get(f"/admin/clients/{second}/webhook/secret").get_data(as_text=True)
    assert 'id="secret"' not in html
    # ... and the one kept for the second client is still there for its own page
    assert 'id="token"' in client.get(resp.headers["Location"]).get_data(as_text=True)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_province_admin_cannot_open_another_provinces_token_page(app, client):
    login(client, "admin")
    _post(client, "/admin/clients", name="iGate Quảng Ngãi", counter="QNG-TTHCC")
    client_id = db.session.scalar(sa.select(sa.func.max(ApiClient.id)))
    assert client.get(f"/admin/clients/{client_id}/webhook/secret").status_code == 200
    client = app.test_client()
    _province_admin(client)  # Hà Tĩnh
    assert client.get(f"/admin/clients/{client_id}/token").status_code == 404
    assert client.get(f"/admin/clients/{client_id}/webhook/secret").status_code == 404


# --- 3. "deactivated" is not "locked" -----------------------------------------------------------

def _user_id(username: str) -> int:
    return db.session.scalar(sa.select(User.id).where(User.username == username))


def test_deactivated_is_called_ngung_hoat_dong_and_khoa_is_kept_for_the_log_in_lock(client):
    login(client, "admin")
    supervisor, counter, me = _user_id("supervisor"), _user_id("counter"), _user_id("admin")
    page = client.get(f"/admin/users/{counter}").get_data(as_text=True)
    assert ">Ngừng hoạt động tài khoản</button>" in page
    assert 'data-confirm="Ngừng hoạt động tài khoản «counter»' in page
    resp = _post(client, f"/admin/users/{supervisor}/deactivate", f"/admin/users/{supervisor}")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Đã ngừng hoạt động tài khoản; mọi phiên đăng nhập" in page
    assert '<span class="badge badge-bad">Ngừng hoạt động</span>' in page and ">Cho hoạt động lại</button>" in page
    listing = client.get("/admin/users?active=0").get_data(as_text=True)
    assert '<option value="0" selected>Ngừng hoạt động</option>' in listing
    assert '<span class="badge badge-bad">Ngừng hoạt động</span>' in listing
    resp = _post(client, f"/admin/users/{me}/deactivate", f"/admin/users/{me}")
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Bạn không thể ngừng hoạt động tài khoản của chính mình." in page
    resp = _post(client, f"/admin/users/{supervisor}/reactivate", f"/admin/users/{supervisor}")
    assert "Đã cho tài khoản hoạt động lại." in client.get(resp.headers["Location"]).get_data(as_text=True)
    for path in ("/admin/users", "/admin/users?active=0", f"/admin/users/{supervisor}", f"/admin/users/{counter}"):
        html = client.get(path).get_data(as_text=True)
        # "khóa" on these pages is only the log-in lock (Khóa đăng nhập / Mở khóa đăng nhập)
        assert "Đã khóa" not in html and "khóa tài khoản" not in html.lower(), path
    english = client.get(f"/admin/users/{counter}?lang=en").get_data(as_text=True)
    assert ">Deactivate</button>" in english and "Ngừng" not in english


# --- 4. text and the administration's menu --------------------------------------------------------

def _province_admin_of(code: str) -> str:
    today = local_today()
    username = f"qt.{code}"
    user = create_user(username=username, full_name="Quản trị cấp tỉnh", password=DEMO_PASSWORD, role=Role.ADMIN)
    user.area_unit_id = db.session.scalar(sa.select(AdminUnit.id).where(
        AdminUnit.level == UnitLevel.PROVINCE, AdminUnit.code == code, AdminUnit.valid_from <= today,
        sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today)))
    db.session.commit()
    return username


def _muted(html: str) -> str:
    return " ".join(" ".join(re.findall(r'<p class="muted"[^>]*>(.*?)</p>', html, re.S)).split())


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_province_is_named_once_for_a_province_and_a_city(app, client):
    for code, name in (("51", "Tỉnh Quảng Ngãi"), ("48", "Thành phố Đà Nẵng")):
        client = app.test_client()  # (an IsolatedClient, as the client fixture set it)
        login(client, _province_admin_of(code))
        users = _muted(client.get("/admin/users").get_data(as_text=True))
        assert f"Người dùng thuộc {name}." in users and "tỉnh Tỉnh" not in users and "tỉnh Thành" not in users
        privacy = _muted(client.get("/admin/privacy").get_data(as_text=True))
        assert f"Phạm vi: đơn của {name}." in privacy and "tỉnh Tỉnh" not in privacy and "tỉnh Thành" not in privacy
        english = _muted(client.get("/admin/users?lang=en").get_data(as_text=True))
        assert f"Users of {name}." in english


def test_the_notifications_page_says_where_messages_go_in_words_without_repository_paths(app, client):
    login(client, "admin")
    html = client.get("/admin/notifications").get_data(as_text=True)
    provider = " ".join(re.search(r'<p class="muted" id="provider">(.*?)</p>', html, re.S).group(1).split())
    assert "Gửi qua: <strong>chỉ ghi vào nhật ký máy chủ (chưa gửi tin thật cho công dân)</strong>" in provider
    assert "người vận hành máy chủ cần cấu hình một cổng SMS thương hiệu hoặc Zalo ZNS" in provider
    assert "<strong>log</strong>" not in html and "docs/" not in html
    english = client.get("/admin/notifications?lang=en").get_data(as_text=True)
    assert "the server&#39;s log only" in english and "docs/" not in english
    assert "docs/" not in client.get("/admin/privacy").get_data(as_text=True)
    with app.test_request_context("/admin/notifications"):
        assert provider_label("sms", "BUUDIEN") == "SMS thương hiệu (BUUDIEN)"
        assert provider_label("zns") == "tin Zalo (ZNS)"


ADMIN_PAGES = ("/admin/users", "/admin/users/new", "/admin/counters", "/admin/offices", "/admin/routes",
               "/admin/clients", "/admin/settings", "/admin/privacy", "/admin/audit", "/admin/notifications",
               "/admin/webhooks", "/admin/jobs")


def _links(html: str, selector: str) -> list[str]:
    block = re.search(rf'<nav [^>]*{selector}[^>]*>(.*?)</nav>', html, re.S)
    assert block, selector
    return re.findall(r'href="([^"?]+)', block.group(1))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_every_admin_page_has_the_same_menu_with_only_pages_the_reader_may_open(app, client):
    login(client, "admin")
    everything = _links(client.get("/admin/").get_data(as_text=True), 'class="cards admin-sections"')
    assert {"/admin/users", "/admin/privacy", "/admin/audit", "/admin/webhooks", "/admin/jobs"} <= set(everything)
    counter = _user_id("counter")
    for path in (*ADMIN_PAGES, f"/admin/users/{counter}"):
        html = client.get(path).get_data(as_text=True)
        assert _links(html, 'id="admin-nav"') == everything, path
    html = client.get("/admin/users").get_data(as_text=True)
    assert re.search(r'<a class="btn btn-quiet" href="/admin/users" aria-current="page">Người dùng</a>', html)
    province = app.test_client()
    login(province, _province_admin_of("51"))
    theirs = _links(province.get("/admin/").get_data(as_text=True), 'class="cards admin-sections"')
    assert not {"/admin/webhooks", "/admin/jobs", "/admin/notifications"} & set(theirs)
    for path in ADMIN_PAGES:
        resp = province.get(path)
        if path in ("/admin/webhooks", "/admin/notifications", "/admin/jobs"):
            assert resp.status_code == 403, path
            continue
        assert _links(resp.get_data(as_text=True), 'id="admin-nav"') == theirs, path
    for link in theirs:
        assert province.get(link).status_code == 200, link


# --- 5. no page sends a province admin to a page they cannot open ---------------------------------

@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_webhook_log_is_mentioned_only_to_whoever_may_open_it(app, client):
    login(client, "admin")
    html = client.get("/admin/clients").get_data(as_text=True)
    assert "Nhật ký gửi webhook ở" in html and 'href="/admin/webhooks"' in html
    province = app.test_client()
    login(province, _province_admin_of("51"))
    html = province.get("/admin/clients").get_data(as_text=True)
    assert "Nhật ký gửi webhook" not in html and 'href="/admin/webhooks"' not in html
    assert province.get("/admin/webhooks").status_code == 403


def test_no_webhooks_yet_points_to_the_web_form_and_the_command_only_as_an_alternative(client):
    login(client, "admin")
    db.session.execute(sa.delete(WebhookEndpoint))
    db.session.commit()
    html = client.get("/admin/webhooks").get_data(as_text=True)
    empty = re.search(r'<p class="empty" id="no-webhooks">(.*?)</p>', html, re.S).group(1)
    assert "Chưa có hệ thống quầy nào đăng ký webhook." in empty
    assert re.search(r'<a href="/admin/clients">Đặt địa chỉ webhook của hệ thống quầy ở trang Khóa API và webhook',
                     empty)
    assert "delivery-service" not in empty
    hint = re.search(r'<p class="hint">(Người vận hành máy chủ cũng có thể đặt bằng lệnh.*?)</p>', html, re.S)
    assert hint and "<code>delivery-service api-clients webhook ID --url URL</code>" in hint.group(1)
    english = client.get("/admin/webhooks?lang=en").get_data(as_text=True)
    assert "webhook address on the API clients page" in english and "Chưa có" not in english
