"""The cookie-session API request's fixed cost: the session cookie's verified values and the CSRF
tokens' verified signatures remembered per process (delivery_service._CookieSessions,
delivery_service.api.protect_csrf), each held equal to Flask's and Flask-WTF's own checks on the
same inputs, forged, changed and expired ones refused right after the genuine one was remembered;
and the learnt-position write of one row (geo.services._upsert_locations)."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login, order_payload
from flask import g, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFError
from itsdangerous import URLSafeTimedSerializer
from web_helpers import make_user
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from delivery_service.accounts.models import Role
from delivery_service.api import _csrf_signed, protect_csrf
from delivery_service.extensions import csrf, db


def _request(cookie: str | None) -> Request:
    headers = {"Cookie": f"session={cookie}"} if cookie is not None else {}
    return Request(EnvironBuilder(path="/api/v1/courier/run", headers=headers).get_environ())


def _signed(app, data: dict, keys=None) -> str:
    """A session cookie as Flask signs it (with the app's keys, or ``keys``)."""
    general = SecureCookieSessionInterface()
    if keys is None:
        return general.get_signing_serializer(app).dumps(data)
    return URLSafeTimedSerializer(keys, salt=general.salt, serializer=general.serializer,
                                  signer_kwargs={"key_derivation": general.key_derivation,
                                                 "digest_method": general.digest_method}).dumps(data)


def _tampered(value: str) -> list[str]:
    """A signed value with one character changed in each of its three parts (not the last one, whose
    low bits may be base64 padding), its signature cut short or doubled, and no signature."""
    payload, stamp, signature = value.rsplit(".", 2)

    def flip(text: str, i: int) -> str:
        return text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1:]

    return [f"{flip(payload, len(payload) // 2)}.{stamp}.{signature}",
            f"{payload}.{flip(stamp, 1)}.{signature}",
            f"{payload}.{stamp}.{flip(signature, 3)}",
            f"{payload}.{stamp}.{signature[:-2]}",
            f"{payload}.{stamp}.{signature}{signature}",
            f"{payload}.{stamp}", "not-a-cookie", ""]


def _both(app, cookie: str | None) -> tuple[dict | None, dict | None]:
    ours = app.session_interface.open_session(app, _request(cookie))
    flasks = SecureCookieSessionInterface().open_session(app, _request(cookie))
    return (None if ours is None else dict(ours)), (None if flasks is None else dict(flasks))


def test_cookies_open_as_flask_opens_them_before_and_after_they_are_remembered(app, monkeypatch):
    sessions = app.session_interface
    sessions._verified.cache_clear()
    genuine = _signed(app, {"_user_id": "7", "_fresh": True, "csrf_token": "abc", "sv": 3, "seen": 1})
    nested = _signed(app, {"_user_id": "8", "pending": {"id": 8, "next": "/x"}, "t": (1, 2)})
    foreign = _signed(app, {"_user_id": "1"}, keys=["another-secret"])
    cases = [genuine, nested, foreign, None, *_tampered(genuine), *_tampered(nested)]
    for _ in range(3):  # the first round verifies, the next ones are answered from memory
        for cookie in cases:
            ours, flasks = _both(app, cookie)
            assert ours == flasks, cookie
    assert _both(app, genuine)[0]["_user_id"] == "7" and _both(app, nested)[0]["pending"]["id"] == 8
    info = sessions._verified.cache_info()
    assert info.currsize == 2 and info.hits >= 4  # only the two genuine ones are remembered
    # later: the lifetime (max_age) is checked at every use, also for a remembered cookie
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    now = time.time()
    for shift, alive in ((lifetime - 5, True), (lifetime + 5, False), (-3600, False)):
        monkeypatch.setattr(time, "time", lambda shift=shift: now + shift)
        for cookie in (genuine, nested, *_tampered(genuine)):
            ours, flasks = _both(app, cookie)
            assert ours == flasks, (shift, cookie)
        assert bool(_both(app, genuine)[0]) is alive


def test_each_request_gets_its_own_copy_of_a_remembered_cookie(app):
    cookie = _signed(app, {"_user_id": "8", "pending": {"id": 8, "next": "/x"}, "lang": "vi"})
    first = app.session_interface.open_session(app, _request(cookie))
    first["pending"]["id"] = 99
    first["pending"]["extra"] = 1
    first["lang"] = "en"
    del first["_user_id"]
    second = app.session_interface.open_session(app, _request(cookie))
    assert dict(second) == {"_user_id": "8", "pending": {"id": 8, "next": "/x"}, "lang": "vi"}
    assert not second.modified


def test_another_secret_key_forgets_every_remembered_cookie(app):
    sessions = app.session_interface
    cookie = _signed(app, {"_user_id": "7"})
    assert _both(app, cookie) == ({"_user_id": "7"}, {"_user_id": "7"})
    old = app.secret_key
    app.secret_key = "a-new-secret-key-after-a-leak"
    try:
        assert _both(app, cookie) == ({}, {})
        assert sessions._verified.cache_info().currsize == 0
        app.config["SECRET_KEY_FALLBACKS"] = [old]  # a rotation with the old key still accepted
        assert _both(app, cookie) == ({"_user_id": "7"}, {"_user_id": "7"})
    finally:
        app.secret_key = old
        app.config["SECRET_KEY_FALLBACKS"] = []
    assert _both(app, cookie) == ({"_user_id": "7"}, {"_user_id": "7"})


def test_the_memory_of_cookies_is_bounded(app):
    sessions = app.session_interface
    size = sessions.VERIFIED
    serializer = sessions.get_signing_serializer(app)
    for i in range(size + 50):
        assert app.session_interface.open_session(app, _request(serializer.dumps({"_user_id": str(i)})))
    assert sessions._verified.cache_info().currsize == size


def _api_headers(client) -> dict[str, str]:
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html)
    return {"X-CSRFToken": match.group(1)}


def test_a_log_out_ends_a_remembered_session(app, client):
    make_user("nho-phien", Role.COURIER, counter_code=None)
    login(client, "nho-phien")
    headers = _api_headers(client)
    cookie = client.get_cookie("session").value
    for _ in range(3):
        assert client.get("/api/v1/courier/run").status_code in (200, 404)  # logged in (no run)
        assert client.post("/api/v1/courier/sync", json={"events": []}, headers=headers).status_code != 403
    hits = app.session_interface._verified.cache_info().hits
    assert client.post("/logout", data={"csrf_token": csrf_token(client, "/")}).status_code == 303
    replay = app.test_client()
    replay.set_cookie("session", cookie)
    assert replay.get("/api/v1/courier/run").status_code == 401  # the session's version moved
    assert app.session_interface._verified.cache_info().hits > hits  # answered from memory
    for changed in _tampered(cookie):
        other = app.test_client()
        other.set_cookie("session", changed)
        assert other.get("/api/v1/courier/run").status_code == 401


def test_a_password_change_ends_the_other_remembered_sessions(app, client):
    make_user("doi-mk-nho", Role.COURIER, counter_code=None)
    login(client, "doi-mk-nho")
    other = app.test_client()
    login(other, "doi-mk-nho")
    for _ in range(3):
        assert other.get("/api/v1/courier/run").status_code in (200, 404)
    token = csrf_token(client, "/account/password")
    resp = client.post("/account/password", data={"current_password": DEMO_PASSWORD,
                                                   "new_password": "Mat-khau-moi-2026!",
                                                   "repeat_password": "Mat-khau-moi-2026!",
                                                   "csrf_token": token})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    assert other.get("/api/v1/courier/run").status_code == 401
    assert client.get("/api/v1/courier/run").status_code in (200, 404)  # logged in (no run)


# --- CSRF ------------------------------------------------------------------------------------------

def _outcome(check) -> tuple[str, bool]:
    g.pop("csrf_valid", None)
    try:
        check()
    except CSRFError as e:
        return e.description, g.get("csrf_valid", False)
    return "ok", g.get("csrf_valid", False)


def _compare(app, *, token: str | None, stored: str | None, method: str = "POST",
             base: str = "https://localhost", referrer: str | None = "https://localhost/courier/",
             form: bool = False) -> str:
    headers = {}
    if referrer is not None:
        headers["Referer"] = referrer
    data = None
    if form:
        data = {"csrf_token": token or "", "x": "1"}
    elif token is not None:
        headers["X-CSRFToken"] = token
    kwargs = {"data": data} if form else {"json": {"events": []}}
    with app.test_request_context("/api/v1/courier/sync", base_url=base, method=method, headers=headers,
                                  **kwargs):
        if stored is not None:
            session["csrf_token"] = stored
        general = _outcome(csrf.protect)
        ours = _outcome(protect_csrf)
        again = _outcome(protect_csrf)  # remembered by now, when it was good
        assert ours == general == again, (token, stored, method, base, referrer, form)
        return general[0]


@pytest.mark.parametrize("time_limit", [None, 3600])
def test_csrf_checks_answer_as_flask_wtfs_before_and_after_a_token_is_remembered(app, monkeypatch, time_limit):
    app.config["WTF_CSRF_TIME_LIMIT"] = time_limit
    raw, other_raw = uuid.uuid4().hex, uuid.uuid4().hex
    signer = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")
    good, other = signer.dumps(raw), signer.dumps(other_raw)
    foreign = URLSafeTimedSerializer("another-secret", salt="wtf-csrf-token").dumps(raw)
    changed = [*_tampered(good)[:-1], "garbage"]  # (a last base64 character may differ in padding only)
    _csrf_signed.cache_clear()
    assert _compare(app, token=good, stored=raw) == "ok"
    assert _csrf_signed.cache_info().currsize == 1
    for form in (False, True):
        assert _compare(app, token=good, stored=raw, form=form) == "ok"
        for token in changed:
            assert _compare(app, token=token, stored=raw, form=form) == "The CSRF token is invalid."
        assert _compare(app, token=foreign, stored=raw, form=form) == "The CSRF token is invalid."
        assert _compare(app, token=other, stored=raw, form=form) == "The CSRF tokens do not match."
        assert _compare(app, token=good, stored=other_raw, form=form) == "The CSRF tokens do not match."
        assert _compare(app, token=good, stored=None, form=form) == "The CSRF session token is missing."
        assert _compare(app, token=None, stored=raw, form=form) == "The CSRF token is missing."
    # Flask-WTF's other checks: the Referer on HTTPS, none on HTTP, nothing for a read
    assert _compare(app, token=good, stored=raw, referrer=None) == "The referrer header is missing."
    assert _compare(app, token=good, stored=raw, referrer="https://evil.example/") == (
        "The referrer does not match the host.")
    assert _compare(app, token=good, stored=raw, referrer="http://localhost/courier/") == (
        "The referrer does not match the host.")
    assert _compare(app, token=good, stored=raw, base="http://localhost", referrer=None) == "ok"
    assert _compare(app, token="garbage", stored=raw, method="GET") == "ok"
    assert _csrf_signed.cache_info().currsize == 2 and _csrf_signed.cache_info().hits > 10
    # later: with a time limit the remembered token expires as Flask-WTF's does; without, it lasts
    now = time.time()
    for shift in (3590, 3610, -60):
        monkeypatch.setattr(time, "time", lambda shift=shift: now + shift)
        answer = _compare(app, token=good, stored=raw)
        if time_limit is None or shift == 3590:
            assert answer == "ok"
        else:
            assert answer == "The CSRF token has expired."


def test_a_changed_csrf_token_is_refused_through_the_api_after_the_genuine_one(app, client):
    login(client, "courier")
    headers = {**_api_headers(client), "Content-Type": "application/json"}
    for _ in range(2):
        resp = client.post("/api/v1/courier/sync", json={"events": []}, headers=headers)
        assert resp.status_code != 403, resp.json
    bad = _tampered(headers["X-CSRFToken"])[2]  # its signature changed
    resp = client.post("/api/v1/courier/sync", json={"events": []}, headers={"X-CSRFToken": bad})
    assert resp.status_code == 403
    assert client.post("/api/v1/courier/sync", json={"events": []}).status_code == 403
    other = app.test_client()  # another session with this session's token: not its own
    login(other, "courier")
    assert other.post("/api/v1/courier/sync", json={"events": []}, headers=headers).status_code == 403


def test_the_memory_of_csrf_tokens_is_bounded(app):
    signer = URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token")
    for i in range(1100):
        _csrf_signed(app.secret_key, signer.dumps(str(i)))
    assert _csrf_signed.cache_info().currsize == 1024


# --- the learnt position of one delivery -----------------------------------------------------------

def test_one_learnt_position_is_written_as_the_general_path_writes_it(app, client, auth):
    from delivery_service.geo import services as geo
    from delivery_service.geo.models import LocationSource, OrderLocation

    ids = []
    for _ in range(4):
        resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
        assert resp.status_code == 201, resp.json
        ids.append(db.session.scalar(sa.text("SELECT id FROM delivery_orders WHERE item_id = :i"),
                                     {"i": resp.json["item_id"]}))
    table = OrderLocation.__table__

    def rows(order_ids):
        return [dict(r) for r in db.session.execute(
            sa.select(table).where(table.c.order_id.in_(order_ids)).order_by(table.c.order_id)).mappings()]

    at = geo.utcnow()

    def fix(order_id, source, lat):
        return {"order_id": order_id, "latitude": lat, "longitude": 108.8, "source": source,
                "precision_m": 15.0, "address_key": "k", "located_at": at}

    db.session.execute(sa.delete(table).where(table.c.order_id.in_(ids)))
    db.session.execute(table.insert(), [fix(ids[1], LocationSource.MANUAL, 1.0),
                                        fix(ids[3], LocationSource.MANUAL, 1.0)])
    a, b = ids[0], ids[1]  # a: new; b: manual
    for keep_manual in (True, False):
        for order_id, other in ((a, ids[2]), (b, ids[3])):
            row = fix(order_id, LocationSource.COURIER, 15.5 + keep_manual)
            geo._upsert_locations([row], keep_manual=keep_manual)  # one row: a single execute
            stmt = geo._statement("locations_keep_manual" if keep_manual else "locations")
            db.session.execute(stmt, [{**row, "order_id": other}])  # the general path, executemany
            [mine], [theirs] = rows([order_id]), rows([other])
            assert {**mine, "order_id": None} == {**theirs, "order_id": None}, keep_manual
    geo._upsert_locations([fix(ids[0], LocationSource.MANUAL, 3.0), fix(ids[2], LocationSource.MANUAL, 4.0)],
                          keep_manual=False)
    assert [r["latitude"] for r in rows([ids[0], ids[2]])] == [3.0, 4.0]
    db.session.rollback()
