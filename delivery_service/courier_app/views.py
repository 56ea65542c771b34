"""Pages of the courier app under /courier/: the shell, the service worker (served from /courier/ so
that its scope is /courier/) and the web manifest. Everything else is drawn by static/courier/app.js
from the courier API and, with no network, from IndexedDB."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from delivery_service.accounts.models import Role
from delivery_service.web.display import STATUS

bp = Blueprint("courier_app", __name__, url_prefix="/courier")

APP_NAME = "Bưu tá – Phát kết quả TTHC"
THEME_COLOUR = "#0b4f8a"
# The shell needs blob: images (photo previews) and camera video on top of the pages' usual policy.
SHELL_CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; object-src 'none'; "
             "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; worker-src 'self'; "
             "manifest-src 'self'")


def _static_dir() -> Path:
    return Path(current_app.static_folder or "") / "courier"


def _asset_version() -> str:
    """Changes whenever a file of the shell changes: the service worker's cache name carries it."""
    digest = hashlib.sha256()
    files = sorted(_static_dir().glob("*")) + [Path(current_app.static_folder or "") / "css" / "app.css"]
    for path in files:
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def js_strings() -> dict[str, str]:
    """Messages the script shows, in the request's language (the script has no catalog of its own)."""
    return {
        "done": gettext("done"),
        "left": gettext("left"),
        "stop": gettext("Stop %(number)s"),
        "eta": gettext("Expected %(window)s"),
        "visited": gettext("Visited at %(time)s"),
        "map": gettext("Map"),
        "to_collect": gettext("To collect"),
        "collected": gettext("Collected"),
        "nothing_to_collect": gettext("Nothing to collect"),
        "estimated": gettext("Position estimated from the commune centre"),
        "no_position": gettext("No position known"),
        "authorised": gettext("Authorised person"),
        "not_sequenced": gettext("Not in the sequence yet"),
        "no_orders": gettext("No orders on your run today."),
        "no_route": gettext("You have no postal route. Ask your supervisor."),
        "offline_run": gettext("No network: showing the run saved at %(time)s."),
        "offline_nothing": gettext("No network and no saved run yet. Connect once to load today's run."),
        "outbox_pending": gettext("waiting: %(num)s"),
        "outbox_sent": gettext("sent"),
        "outbox_parked": gettext("refused: %(num)s"),
        "saved_offline": gettext("Saved on the phone. It will be sent when the network is back."),
        "not_on_run": gettext("%(item_id)s is not on your run today."),
        "not_on_route": gettext("%(item_id)s is not on your route."),
        "found_other_day": gettext("%(item_id)s is on your route, but not on today's run."),
        "bad_code": gettext("This is not an item ID. Type it as on the label, e.g. RH000000014VN."),
        "pickup_done": gettext("Pickup of %(item_id)s confirmed."),
        "pickup_not_needed": gettext("%(item_id)s does not need a pickup confirmation (%(status)s)."),
        "pickup_mode_on": gettext("Pickup at the counter: scan each item of the bag."),
        "camera_error": gettext("The camera cannot be used. Type the item ID instead."),
        "rejected": gettext("Refused by the server"),
        "dismiss": gettext("Dismiss"),
        "pending_here": gettext("Waiting to be sent"),
        "session_expired": gettext("Your session has ended. Log in again to send what is waiting; "
                                   "nothing is lost."),
        "need_signature_or_photo": gettext("Draw a signature or take a photo."),
        "need_id_check": gettext("Enter the identity check."),
        "need_id_last4": gettext("Enter exactly the last 4 digits of the ID card (CCCD)."),
        "need_receiver_name": gettext("Enter the name of the person who received it."),
        "need_relation": gettext("Enter the relation to the recipient."),
        "need_reason": gettext("Choose a reason."),
        "need_documents": gettext("List the documents checked."),
        "need_amount_note": gettext("The amount collected is not the %(due)s due: write why."),
        "correct_until": gettext("Can be corrected until %(time)s"),
        "last_event": gettext("Last record"),
        # what the last record was: its status in words and its time ("Delivered at 09:15")
        "record_at": gettext("%(status)s at %(time)s"),
        "fees_for_agency": gettext("fees for the agency"),
        # what the stop is for: the courier brings a result, or collects a dossier
        "leg_result": gettext("Deliver the result"),
        "leg_dossier": gettext("Pick up the dossier"),
        "file_photo": gettext("Photo"),
        "file_signature": gettext("Signature"),
        "postage": gettext("postage"),
        "failed_attempts": gettext("Failed attempts: %(num)s"),
        "error": gettext("Error"),
        # why the server refused a record (error codes of POST /api/v1/courier/sync)
        "error_transition": gettext("The order's status does not allow this now."),
        "error_not_your_route": gettext("This order is not on your route."),
        "error_invalid": gettext("Some of the data is not valid."),
        "error_clock_skew": gettext("The phone's clock is wrong: set the date and time, then record again."),
        "error_window_closed": gettext("The time allowed for a correction has passed."),
        # ... and by the refusal's stable name (error.reason): the server's message is English
        "error_transition_now": gettext("The order is now “%(status)s”: this record is not allowed "
                                        "any more."),
        "error_event_id_reused": gettext("The phone gave this record a number already used for another "
                                         "record. Record it again."),
        "error_before_order": gettext("The record's time is before the order was created: set the phone's "
                                      "date and time, then record again."),
        "error_next_attempt_too_far": gettext("The next attempt must be within 60 days."),
        "error_nothing_to_correct": gettext("There is no record of yours on this order to correct."),
        "error_correction_of_correction": gettext("A correction cannot itself be corrected."),
        "error_already_corrected": gettext("That record was already corrected."),
        # a second failed attempt the same day: it counts once per day (a delivery is still possible)
        "error_not_due_yet": gettext("The next attempt is planned for %(date)s. A failed attempt counts "
                                     "once per day; you can still deliver it today."),
        "error_amount_mismatch": gettext("The amount collected is not what is due: record the delivery "
                                         "again with the reason, or with the right amount."),
        # a photo or signature, or a whole batch of records, refused by its HTTP status
        "error_too_large": gettext("Too large to send. Take the photo again."),
        "error_not_an_image": gettext("The server did not accept this file as an image. "
                                      "Take the photo again."),
        **{f"status_{status.value}": str(label) for status, label in STATUS.items()},
    }


@bp.get("/")
@login_required
def shell():
    """The app shell: the run, the scan box and the order sheet, filled in by app.js."""
    if current_user.role is not Role.COURIER:
        abort(403)
    html = render_template("courier/app.html", strings=js_strings(), version=_asset_version())
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = SHELL_CSP
    return response


@bp.get("/sw.js")
def service_worker():
    """The service worker, from /courier/ so that it controls /courier/ (no Service-Worker-Allowed needed)."""
    source = (_static_dir() / "sw.js").read_text(encoding="utf-8")
    source = source.replace("__VERSION__", _asset_version())
    source = source.replace("__STATIC__", url_for("static", filename="").rstrip("/"))
    response = Response(source, mimetype="text/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    """The web app manifest: installable, opening on the run."""
    icon = "courier/icon-{}.png"
    body = {
        "name": APP_NAME,
        "short_name": "Bưu tá",
        "lang": "vi",
        "description": "Phát kết quả thủ tục hành chính và nhận hồ sơ tại nhà",
        "start_url": url_for(".shell"),
        "scope": url_for(".shell"),
        "display": "standalone",
        "orientation": "portrait",
        "theme_color": THEME_COLOUR,
        "background_color": "#f4f6f9",
        "icons": [
            {"src": url_for("static", filename=icon.format(192)), "sizes": "192x192", "type": "image/png",
             "purpose": "any"},
            {"src": url_for("static", filename=icon.format(512)), "sizes": "512x512", "type": "image/png",
             "purpose": "any"},
            {"src": url_for("static", filename="courier/icon-maskable-512.png"), "sizes": "512x512",
             "type": "image/png", "purpose": "maskable"},
        ],
    }
    response = Response(json.dumps(body, ensure_ascii=False), mimetype="application/manifest+json")
    response.headers["Cache-Control"] = "no-cache"
    return response
