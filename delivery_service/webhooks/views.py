"""The administrators' page of webhooks: each counter system's state, backlog and deliveries."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext

from delivery_service.admin.scope import national_admin_required
from delivery_service.errors import NotFound
from delivery_service.extensions import db
from delivery_service.webhooks import services

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")


# The whole country's data: national administrators only (province admins get 403).
admin_required = national_admin_required


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
