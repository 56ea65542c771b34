"""The citizen's side: the opt-out link (``/t/optout/<token>``, a confirm page, then a POST; the same
link's page opts back in, by a POST to ``/t/optout/<token>/resume``) and the provider's inbound replies
(``POST /api/v1/notifications/inbound`` with the shared secret)."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from delivery_service.extensions import csrf, db, limiter
from delivery_service.notifications import services

bp = Blueprint("notifications", __name__)
SECRET_HEADER = "X-Notify-Secret"


@bp.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/t/optout/<token>")
@limiter.limit("30 per minute")
def optout_form(token: str):
    """The confirm page (a link must not opt out by itself: mail scanners follow links)."""
    hashed = services.optout_hash(token)
    if hashed is None:
        return render_template("tracking/optout.html", state="invalid", token=token), 404
    state = "already" if services.is_opted_out(hashed) else "ask"
    return render_template("tracking/optout.html", state=state, token=token)


@bp.post("/t/optout/<token>")
@limiter.limit("30 per minute")
def optout_confirm(token: str):
    hashed = services.optout_hash(token)
    if hashed is None:
        return render_template("tracking/optout.html", state="invalid", token=token), 404
    services.opt_out(hashed, "link")
    db.session.commit()
    return render_template("tracking/optout.html", state="done", token=token)


@bp.post("/t/optout/<token>/resume")
@limiter.limit("30 per minute")
def optout_undo(token: str):
    """Messages again for the number: the same proof as the opt-out (its signed link, which only the
    messages and a matching tracking look-up give)."""
    hashed = services.optout_hash(token)
    if hashed is None:
        return render_template("tracking/optout.html", state="invalid", token=token), 404
    services.opt_in(hashed)
    db.session.commit()
    return render_template("tracking/optout.html", state="resumed", token=token)


@bp.post("/api/v1/notifications/inbound")
@csrf.exempt
@limiter.exempt
def inbound():
    """A citizen's reply relayed by the provider: ``{"from": "<phone>", "text": "TU CHOI"}`` (JSON or a
    form), with the shared secret in ``X-Notify-Secret``. Answers whether the number opted out."""
    secret = current_app.config.get("NOTIFY_INBOUND_SECRET")
    given = request.headers.get(SECRET_HEADER, "")
    if not secret:
        abort(404)
    if not hmac.compare_digest(given.encode(), str(secret).encode()):
        abort(401)
    data = request.get_json(silent=True) if request.is_json else request.form
    data = data if isinstance(data, dict) or hasattr(data, "get") else {}
    sender = str(data.get("from") or data.get("phone") or "")[:32]
    text = str(data.get("text") or data.get("message") or "")[:500]
    errors = {}
    hashed = services.phone_hash(sender)
    if hashed is None:
        errors["from"] = ["Not a valid Vietnamese phone number."]
    if not text.strip():
        errors["text"] = ["Must not be empty."]
    if errors:
        return jsonify({"message": "Invalid input.", "errors": errors}), 422
    opted = services.keyword_opts_out(text)
    if opted:
        services.opt_out(hashed, "keyword")
        db.session.commit()
    return jsonify({"opted_out": opted})
