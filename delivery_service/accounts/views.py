"""Log-in, log-out, the own password, session expiry and the home page that sends each role
where its work is."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import segno
import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_login import current_user, login_required, login_user, logout_user
from markupsafe import Markup

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import (
    MIN_PASSWORD,
    Actor,
    authenticate,
    change_password,
    disable_totp,
    enable_totp,
    end_sessions,
    new_totp_secret,
    record,
    totp_required,
    totp_uri,
    verify_password,
    verify_second_factor,
)
from delivery_service.db import utcnow
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db, limiter

bp = Blueprint("auth", __name__)

DESK_ROLES = (Role.COUNTER_STAFF, Role.ADMIN)


def _safe_next(target: str | None) -> str | None:
    """A local path to return to after log-in; anything pointing elsewhere is dropped."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _landing() -> str:
    if current_user.role is Role.COUNTER_STAFF:
        return url_for("counter.desk")
    return url_for("auth.home")


def _username_key() -> str:
    return "login:" + (request.form.get("username") or "").strip().lower()


def _failed(response) -> bool:  # noqa: ANN001
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
# Failed attempts only: per address, and per account (against guessing from many addresses).
@limiter.limit("10 per minute", methods=["POST"], deduct_when=_failed)
@limiter.limit("30 per hour", methods=["POST"], key_func=_username_key, deduct_when=_failed)
def login():
    """The log-in form; on success, the page asked for or the role's own page."""
    next_url = _safe_next(request.values.get("next"))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(next_url or _landing())
    error = None
    username = ""
    if request.method == "POST":
        username = (request.form.get("username") or "").strip()
        user = authenticate(username, request.form.get("password") or "")
        if user is not None and user.totp_enabled_at is not None:
            db.session.rollback()  # last_login_at is stamped after the second step
            session[PENDING] = {"id": user.id, "at": int(time.time()), "next": next_url}
            return redirect(url_for("auth.login_code"), code=303)
        if user is not None:
            record("login", actor=Actor.of_user(user), object_type="user", object_id=user.id,
                   ip=request.remote_addr)
            db.session.commit()  # authenticate() stamped last_login_at
            _log_in(user)
            return redirect(next_url or _landing(), code=303)
        _record_failure(username)
        error = gettext("Wrong username or password.")
    status = 401 if error else 200
    return render_template("login.html", error=error, username=username, next_url=next_url), status


@bp.post("/logout")
def logout():
    """End the session (POST with the CSRF token, so another site cannot log people out); a copy
    of its cookie no longer works either."""
    if current_user.is_authenticated:
        user = db.session.get(User, current_user.id)
        record("logout", actor=Actor.of_user(user), object_type="user", object_id=user.id,
               ip=request.remote_addr)
        end_sessions(user)
        db.session.commit()
    logout_user()
    session.pop(SESSION_VERSION, None)
    session.pop(LAST_SEEN, None)
    return redirect(url_for("auth.login"), code=303)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def password():
    """Change one's own password: the current one, the new one twice."""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        user = db.session.get(User, current_user.id)
        try:
            change_password(user, current=request.form.get("current_password") or "",
                            new=request.form.get("new_password") or "",
                            repeat=request.form.get("repeat_password") or "")
        except InvalidInput as exc:
            db.session.rollback()
            errors = {field: [_translated(m) for m in msgs] for field, msgs in exc.errors.items()}
            if "current_password" in errors:
                record("password_change_failed", actor=Actor.of_user(current_user), object_type="user",
                       object_id=current_user.id, ip=request.remote_addr)
                db.session.commit()
        else:
            record("password_change", actor=Actor.of_user(user), object_type="user", object_id=user.id,
                   ip=request.remote_addr)
            db.session.commit()
            _stamp_session(user)  # this session goes on; the others end
            flash(gettext("Your password has been changed."), "success")
            return redirect(url_for("auth.home"), code=303)
    return render_template("account/password.html", errors=errors), 422 if errors else 200


def _translated(message: str) -> str:
    """The services' English messages about passwords, in the reader's language."""
    known = {
        "The current password is wrong.": lambda: gettext("The current password is wrong."),
        "The two new passwords differ.": lambda: gettext("The two new passwords differ."),
        "Password must not be the username.": lambda: gettext("The password must not be your username."),
        "This password is one of the most common passwords; choose another.":
            lambda: gettext("This password is one of the most common passwords; choose another."),
        "The new password must differ from the current one.":
            lambda: gettext("The new password must differ from the current one."),
    }
    if message.startswith("Password must be at least"):
        return gettext("The password must have at least %(n)s characters.", n=MIN_PASSWORD)
    return known[message]() if message in known else message


SESSION_VERSION = "sv"
LAST_SEEN = "seen"
PENDING = "2fa"  # the user who gave the right password and owes the second factor
PENDING_SECONDS = 300
TOTP_PENDING = "totp_new"  # the secret being enrolled, until a code of it is shown


def _log_in(user: User) -> None:
    lang = session.get("lang")
    session.clear()  # nothing of a session from before the log-in is kept but its language
    if lang:
        session["lang"] = lang
    login_user(user)
    _stamp_session(user)


def _pending_key() -> str:
    pending = session.get(PENDING) or {}
    return f"login-code:{pending.get('id')}"


@bp.route("/login/code", methods=["GET", "POST"])
@limiter.limit("10 per minute", methods=["POST"], deduct_when=_failed)
@limiter.limit("30 per hour", methods=["POST"], key_func=_pending_key, deduct_when=_failed)
def login_code():
    """The second step of a two-factor log-in: a code of the authenticator app, or a recovery code."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or int(time.time()) - pending.get("at", 0) > PENDING_SECONDS:
        session.pop(PENDING, None)
        return redirect(url_for("auth.login"))
    user = db.session.get(User, pending["id"])
    if user is None or not user.active or user.totp_enabled_at is None:
        session.pop(PENDING, None)
        return redirect(url_for("auth.login"))
    error = None
    if request.method == "POST":
        kind = verify_second_factor(user, request.form.get("code") or "")
        if kind is not None:
            user.last_login_at = utcnow()
            record("login", actor=Actor.of_user(user), object_type="user", object_id=user.id,
                   after={"second_factor": kind}, ip=request.remote_addr)
            db.session.commit()
            next_url = _safe_next(pending.get("next"))
            _log_in(user)
            if kind == "recovery":
                flash(gettext("You logged in with a recovery code; %(n)s are left.",
                              n=len(user.recovery_code_hashes or [])), "info")
            return redirect(next_url or _landing(), code=303)
        record("login_failed", actor_label=user.username, object_type="user", object_id=user.id,
               after={"second_factor": "wrong"}, ip=request.remote_addr)
        db.session.commit()
        error = gettext("Wrong code.")
    return render_template("account/login_code.html", error=error), 401 if error else 200


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def two_factor():
    """Turn two-factor log-in on (QR code, then a code to confirm, then the recovery codes once) or off."""
    user = db.session.get(User, current_user.id)
    errors: dict[str, list[str]] = {}
    if request.method == "POST" and request.form.get("action") == "disable":
        if totp_required(user):
            abort(403)
        if not verify_password(user, request.form.get("current_password") or ""):
            errors["current_password"] = [gettext("The current password is wrong.")]
        else:
            disable_totp(user)
            record("totp_disabled", actor=Actor.of_user(user), object_type="user", object_id=user.id,
                   ip=request.remote_addr)
            db.session.commit()
            flash(gettext("Two-factor log-in is off."), "success")
            return redirect(url_for("auth.two_factor"), code=303)
    elif request.method == "POST" and user.totp_enabled_at is None:
        secret = session.get(TOTP_PENDING)
        try:
            if not secret:
                raise InvalidInput({"code": ["The code is wrong or too old."]})
            codes = enable_totp(user, secret, request.form.get("code") or "")
        except InvalidInput:
            errors["code"] = [gettext("Wrong code.")]
        else:
            record("totp_enabled", actor=Actor.of_user(user), object_type="user", object_id=user.id,
                   ip=request.remote_addr)
            db.session.commit()
            session.pop(TOTP_PENDING, None)
            return render_template("account/two_factor.html", user=user, recovery_codes=codes,
                                   required=totp_required(user), errors={})
    qr = secret = None
    if user.totp_enabled_at is None:
        secret = session.get(TOTP_PENDING)
        if not secret:
            secret = session[TOTP_PENDING] = new_totp_secret()
        qr = Markup(segno.make(totp_uri(secret, user.username), error="m").svg_inline(scale=5))
    return render_template("account/two_factor.html", user=user, qr=qr, secret=secret, errors=errors,
                           required=totp_required(user), recovery_codes=None), 422 if errors else 200


def _stamp_session(user: User) -> None:
    session[SESSION_VERSION] = user.session_version
    session[LAST_SEEN] = int(time.time())


def _record_failure(username: str) -> None:
    """A failed log-in: the account it aimed at when it exists, else only that some name was tried
    (what people type by mistake into the name field may be a password or personal data)."""
    name = username.strip().lower()
    user_id = db.session.scalar(sa.select(User.id).where(User.username == name)) if name else None
    record("login_failed", actor_label=name if user_id else "unknown", object_type="user",
           object_id=user_id, ip=request.remote_addr)
    db.session.commit()


@bp.before_app_request
def check_session():  # noqa: ANN201
    """End sessions idle longer than SESSION_IDLE_MINUTES, and those whose version the user's
    log-out or password change moved past; otherwise note this request as activity."""
    if "_user_id" not in session or request.endpoint == "static":
        return
    if not current_user.is_authenticated:
        return
    now = int(time.time())
    idle = current_app.config["SESSION_IDLE_MINUTES"] * 60
    seen = session.get(LAST_SEEN)
    if session.get(SESSION_VERSION) != current_user.session_version:
        logout_user()
        session.pop(LAST_SEEN, None)
        return
    if not isinstance(seen, int) or now - seen > idle:
        logout_user()
        session.pop(SESSION_VERSION, None)
        session.pop(LAST_SEEN, None)
        flash(gettext("Your session ended after a time without activity. Please log in again."), "info")
        return
    if now - seen >= 15:  # spare a new cookie on every single request
        session[LAST_SEEN] = now
    if (current_user.must_change_password and request.endpoint not in SETUP_ENDPOINTS
            and not request.path.startswith("/api/")):
        # An administrator set this password: the user chooses their own before anything else.
        from delivery_service.admin import tr

        flash(tr("Quản trị viên đã đặt mật khẩu tạm: hãy chọn mật khẩu mới để tiếp tục.",
                 "An administrator set a temporary password: choose a new one to go on."), "info")
        return redirect(url_for("auth.password"))
    if (current_user.totp_enabled_at is None and totp_required(current_user)
            and request.endpoint not in SETUP_ENDPOINTS and not request.path.startswith("/api/")):
        flash(gettext("Your role needs two-factor log-in: set it up to go on."), "info")
        return redirect(url_for("auth.two_factor"))
    return None


SETUP_ENDPOINTS = {"auth.two_factor", "auth.logout", "auth.password", "static"}


@bp.get("/")
@login_required
def home():
    """Counter staff go to their desk; other roles see what is ready for them."""
    if current_user.role is Role.COUNTER_STAFF:
        return redirect(url_for("counter.desk"))
    return render_template("home.html")
