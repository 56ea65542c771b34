"""The operator's user commands: a lost administrator's password, a locked account, a province admin,
without the web pages (``delivery-service users …``)."""

from __future__ import annotations

import getpass

import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login

from delivery_service.accounts.models import AuditEvent, User
from delivery_service.admin import user_services
from delivery_service.cli import main
from delivery_service.extensions import db


def _cli(app, *args: str):  # noqa: ANN202
    return app.test_cli_runner().invoke(main, list(args))


def _user(username: str) -> User:
    db.session.expire_all()
    return db.session.scalar(sa.select(User).where(User.username == username))


def test_reset_password_gives_a_temporary_one_to_change_at_the_next_log_in(app, client):
    result = _cli(app, "users", "reset-password", "admin")
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert len(secret) >= 10 and secret != DEMO_PASSWORD
    assert _user("admin").must_change_password
    login(client, "admin", secret)
    assert client.get("/admin/").headers["Location"].endswith("/account/password")
    event = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "user.password_reset")).one()
    assert (event.actor_label, event.actor_user_id) == (f"cli:{getpass.getuser()}", None)
    assert _cli(app, "users", "reset-password", "nobody").exit_code == 1


def test_the_audit_log_names_the_operator_of_a_command(app, client):
    assert _cli(app, "users", "reset-password", "counter").exit_code == 0
    login(client, "admin")
    page = client.get("/admin/audit").get_data(as_text=True)
    assert f"{getpass.getuser()} (dòng lệnh)" in page


def test_unlock_lets_a_locked_account_log_in_again(app, client):
    token = csrf_token(client, "/login")
    for n in range(30):  # the per-account allowance, from several addresses
        client.post("/login", data={"username": "counter", "password": f"wrong-{n}", "csrf_token": token},
                    environ_base={"REMOTE_ADDR": f"10.0.0.{n // 8}"})
    assert user_services.is_locked(_user("counter"))
    listed = _cli(app, "users", "list", "--role", "counter_staff")
    assert "counter\tcounter_staff\tactive, locked after failed log-ins" in listed.output
    result = _cli(app, "users", "unlock", "counter")
    assert result.exit_code == 0 and "counter unlocked" in result.output
    assert not user_services.is_locked(_user("counter"))
    right = {"username": "counter", "password": DEMO_PASSWORD, "csrf_token": token}
    assert client.post("/login", data=right, environ_base={"REMOTE_ADDR": "10.0.1.2"}).status_code == 303
    assert "was not locked" in _cli(app, "users", "unlock", "counter").output


def test_create_makes_a_province_admin_from_a_province_code_only(app):
    ok = _cli(app, "users", "create", "--role", "admin", "--username", "qtqngcli", "--full-name",
              "Quản trị Quảng Ngãi", "--area", "51", "--password", "mây-trắng-bay-2026")
    assert ok.exit_code == 0, ok.output
    assert _user("qtqngcli").area_unit_id is not None
    assert "qtqngcli\tadmin province admin\tactive" in _cli(app, "users", "list", "--role", "admin").output
    commune = _cli(app, "users", "create", "--role", "admin", "--username", "qtxa", "--full-name", "Quản trị xã",
                   "--area", "21025", "--password", "mây-trắng-bay-2026")
    assert commune.exit_code == 2 and "province" in commune.output and _user("qtxa") is None
