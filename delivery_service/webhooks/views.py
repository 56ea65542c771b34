"""The administrators' page of webhooks: each counter system's state, backlog and deliveries."""

from __future__ import annotations

from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from delivery_service.accounts.models import Role
from delivery_service.errors import NotFound
from delivery_service.extensions import db
from delivery_service.webhooks import services

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")


def admin_required(view):  # noqa: ANN001, ANN201
    """Logged in as an administrator; other roles get 403."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any):
        if current_user.role is not Role.ADMIN:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


@bp.get("")
@admin_required
def index():
    """Every webhook: its state (ok, retrying, paused, disabled), events owed, last deliveries."""
    return render_template("webhooks/index.html", rows=services.overview())


@bp.post("/<int:client_id>/resume")
@admin_required
def resume(client_id: int):
    """Lift a pause or a back-off: everything owed is sent once, in order."""
    try:
        services.resume(client_id)
    except NotFound:
        abort(404)
    db.session.commit()
    flash(gettext("Webhook resumed: what is owed is being sent."), "success")
    return redirect(url_for("webhooks.index"), code=303)
