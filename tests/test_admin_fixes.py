"""Administration pages, fixes of 6 Dec: the temporary password page after a redirect, shown once; one
spelling of "hủy" in the Vietnamese texts."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login

from delivery_service.accounts.models import AuditEvent, Role, User
from delivery_service.accounts.services import create_user
from delivery_service.admin.models import ShownOnce
from delivery_service.extensions import db

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "delivery_service"


# --- the temporary password: Post/Redirect/Get, shown once, never in a URL, a log line or the cookie


def _password_hash(username: str) -> str:
    db.session.expire_all()
    return db.session.scalar(sa.select(User.password_hash).where(User.username == username))


def _session(client) -> dict:  # noqa: ANN001
    """The session cookie's content, decoded as Flask reads it (base64 and zlib over JSON: a password
    in it would not show as plain text in the cookie's value)."""
    app = client.application
    return app.session_interface.get_signing_serializer(app).loads(client.get_cookie("session").value)


def _shown_once(client, resp, json_log) -> str:  # noqa: ANN001
    """Follows the form's redirect: the password on the page, once; a reload shows it no more."""
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    location = resp.headers["Location"]
    held = _session(client)  # what the redirect's page will need: a token and the pad, no password
    waiting = [value for value in held.values() if isinstance(value, dict) and "pad" in value]
    assert len(waiting) == 1 and set(waiting[0]) == {"subject", "token", "pad"}, held
    page = client.get(location)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="temporary-password">([^<]+)<', page.get_data(as_text=True)).group(1)
    assert password not in location and password not in json.dumps(held)
    assert not any(isinstance(v, dict) and "pad" in v for v in _session(client).values())  # used up
    again = client.get(location)  # the reload
    html = again.get_data(as_text=True)
    assert again.status_code == 200 and again.headers["Cache-Control"] == "no-store"
    assert password not in html and 'id="temporary-password-gone"' in html and "không hiện lại" in html
    assert json_log() and password not in json.dumps(json_log())  # the access log lines too
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ShownOnce)) == 0  # nothing kept
    return password


def test_a_reset_password_is_shown_once_after_a_redirect_and_a_reload_sets_none(client, app, json_log):
    login(client, "admin")
    user_id = db.session.scalar(sa.select(User.id).where(User.username == "courier"))
    path = f"/admin/users/{user_id}"
    before = _password_hash("courier")
    resp = client.post(f"{path}/password", data={"csrf_token": csrf_token(client, path), "password": ""})
    password = _shown_once(client, resp, json_log)
    after = _password_hash("courier")
    assert after != before
    fresh = app.test_client()
    login(fresh, "courier", password)
    assert fresh.get("/routes").headers["Location"].endswith("/account/password")
    assert _password_hash("courier") == after  # the reload set no other password
    resets = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                               .where(AuditEvent.action == "user.password_reset"))
    assert resets == 1


def test_a_new_accounts_password_is_shown_once_after_a_redirect(client, app, json_log):
    login(client, "admin")
    form = {"username": "nv.prg", "full_name": "Nguyễn Văn Chuyển", "role": "counter_staff",
            "counter_id": str(db.session.scalar(sa.text("SELECT id FROM counters WHERE code = 'QNG-TTHCC'"))),
            "post_office_id": "", "area_code": "", "province_id": "", "password": ""}
    resp = client.post("/admin/users/new", data={"csrf_token": csrf_token(client, "/admin/users/new"), **form})
    password = _shown_once(client, resp, json_log)
    fresh = app.test_client()
    login(fresh, "nv.prg", password)
    assert fresh.get("/counter").headers["Location"].endswith("/account/password")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.username == "nv.prg")) == 1


def test_the_password_page_shows_nothing_to_another_admin_or_without_the_session(client, app):
    """The page shows the password only with the session that set it; the row alone (the database)
    holds it sealed, and another admin's session, or a stale copy of the cookie, gets nothing."""
    login(client, "admin")
    user_id = db.session.scalar(sa.select(User.id).where(User.username == "courier"))
    path = f"/admin/users/{user_id}"
    resp = client.post(f"{path}/password", data={"csrf_token": csrf_token(client, path), "password": ""})
    stale = client.get_cookie("session").value
    [row] = db.session.scalars(sa.select(ShownOnce))
    assert row.user_id == user_id and len(row.sealed) == 14
    create_user(username="admin2", full_name="Quản trị Hai", password=DEMO_PASSWORD, role=Role.ADMIN)
    db.session.commit()
    other = app.test_client()
    login(other, "admin2")
    assert 'id="temporary-password-gone"' in other.get(resp.headers["Location"]).get_data(as_text=True)
    assert re.search(r'id="temporary-password">', client.get(resp.headers["Location"]).get_data(as_text=True))
    client.set_cookie("session", stale)  # the cookie as it was before the page was shown
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert 'id="temporary-password-gone"' in html


# The old tone placement ("huỷ", the mark on the y) beside the one the pages use ("hủy", on the u).
# The old placement of the tone mark (on the first vowel of "oa", "uy"): the pages write "hủy", "khóa",
# "xóa", as the catalogue does. privacy.PLACEHOLDER keeps "(đã xoá / erased)": it is stored data, which
# the event log's redaction guard compares (migration 0019).
OLD_MARKS = re.compile(r"(?<!\w)(huỷ|khoá|xoá)(?!\w)", re.I)


def test_cancel_is_spelt_huy_with_the_mark_on_the_u_everywhere():
    """The catalogue's msgstrs and the texts the administration pages carry in tr("…", "…") both say
    "Hủy"; "Huỷ" beside it looked like two different words on one page. The same for "khóa" and "xóa"
    (the administration said "Khoá tài khoản" beside the catalogue's "khóa")."""
    places = [PACKAGE / "translations" / "vi" / "LC_MESSAGES" / "messages.po",
              *PACKAGE.glob("templates/**/*.html"), *PACKAGE.glob("**/*.py")]
    found = [f"{path.relative_to(ROOT)}:{number}"
             for path in places
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if OLD_MARKS.search(unicodedata.normalize("NFC", line)) and "PLACEHOLDER" not in line]
    assert not found, found
