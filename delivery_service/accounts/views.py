"""Log-in, log-out and the home page that sends each role where its work is."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required, login_user, logout_user

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import authenticate
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
        if user is not None:
            db.session.commit()  # authenticate() stamped last_login_at
            login_user(user)
            return redirect(next_url or _landing(), code=303)
        error = gettext("Wrong username or password.")
    status = 401 if error else 200
    return render_template("login.html", error=error, username=username, next_url=next_url), status


@bp.post("/logout")
def logout():
    """End the session (POST with the CSRF token, so another site cannot log people out)."""
    logout_user()
    return redirect(url_for("auth.login"), code=303)


@bp.get("/")
@login_required
def home():
    """Counter staff go to their desk; other roles see what is ready for them."""
    if current_user.role is Role.COUNTER_STAFF:
        return redirect(url_for("counter.desk"))
    return render_template("home.html")
