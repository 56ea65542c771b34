"""The JSON API under /api/v1: bearer-token auth for counter systems, and blueprint registration."""

from __future__ import annotations

from flask import Flask, abort, current_app, g, request
from flask_login import current_user
from flask_smorest import Blueprint
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import RequestEntityTooLarge

from delivery_service.accounts.services import Actor, actor_for_token
from delivery_service.extensions import api, csrf, limiter


def current_actor() -> Actor:
    """The caller: a counter system by its bearer token, or a logged-in staff user (reads only)."""
    actor = g.get("actor")
    if actor is None:
        abort(401)
    return actor


def _authenticate() -> None:
    g.pop("actor", None)
    cfg = current_app.config
    if request.mimetype == "multipart/form-data":
        limit = cfg["MAX_IMPORT_BYTES"] + 64 * 1024
    elif request.path.startswith("/api/v1/courier/files/"):  # a photo or signature as the body
        limit = cfg["MAX_PROOF_BYTES"]
    elif request.path.startswith("/api/v1/courier/"):  # a whole offline batch of events
        limit = max(cfg["MAX_JSON_BYTES"], cfg["SYNC_MAX_EVENTS"] * 2048)
    else:
        limit = cfg["MAX_JSON_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge(f"The body is larger than {limit} bytes.")
    request.max_content_length = limit
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        g.actor = actor_for_token(header[7:].strip())
        if g.actor is None:
            abort(401, "Invalid or revoked token.")
        return
    if current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # A logged-in page's script may write, with the page's CSRF token in X-CSRFToken.
            try:
                csrf.protect()
            except CSRFError:
                abort(403, "Writes with a log-in session need the page's CSRF token (X-CSRFToken).")
        g.actor = Actor.of_user(current_user)


def protected(blp: Blueprint) -> Blueprint:
    """Wire token auth into a blueprint: exempt from CSRF (no cookies are trusted for writes)."""
    blp.before_request(_authenticate)
    csrf.exempt(blp)
    limiter.exempt(blp)  # no per-address limits on server-to-server intake
    return blp


def register(app: Flask) -> None:
    from swagger_ui_bundle import swagger_ui_path

    from delivery_service.courier import api as courier
    from delivery_service.imports.api import blp as imports_blp
    from delivery_service.orders.api import blp as orders_blp
    from delivery_service.printing import api as printing
    from delivery_service.reports.api import blp as reports_blp
    from delivery_service.routing.api import blp as routes_blp
    from delivery_service.routing.api import moves as moves_blp
    from delivery_service.units.api import blp as units_blp

    for blp in (orders_blp, moves_blp, printing.orders, imports_blp, units_blp, routes_blp, printing.sheets,
                printing.batches, printing.manifests, courier.blp, courier.proof, reports_blp):
        api.register_blueprint(blp, url_prefix="/api/v1" + blp.url_prefix)
    app.register_blueprint(courier.pages)  # the order page's proof images

    from flask import send_from_directory

    @app.get("/api/v1/docs/assets/<path:filename>")
    def swagger_assets(filename: str):
        return send_from_directory(swagger_ui_path, filename, max_age=86400)
