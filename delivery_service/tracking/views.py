"""The public tracking page (``/t``): no log-in; the item's code and the last digits of a phone on it."""

from __future__ import annotations

import hashlib
import time

from flask import Blueprint, Response, g, redirect, render_template, request, session, url_for
from flask_babel import gettext
from flask_wtf.csrf import CSRFError

from delivery_service.extensions import limiter
from delivery_service.tracking import services

bp = Blueprint("tracking", __name__)

# Four digits are 10,000 guesses. Per client address the misses count (a code and digits that match
# nothing, a mistyped code, a form sent incomplete; not a look-up refused by a limit): 10 a minute,
# 300 a day. Found items do not count there: Vietnam's mobile carriers put thousands of phones behind
# one public address (carrier-grade NAT), and citizens who type their own item right must not use up
# each other's allowance; the day's misses are shared by all of them, hence 300 (a scanner from one
# address still finds an item once in 30 days). A miss is counted once answered, so look-ups in
# flight when the 10th is answered go through too (at most one per web worker). Every look-up counts
# against a flood ceiling per address, far above what guessing needs. Per code only misses count, from
# all addresses together, so that many addresses cannot share the work of guessing one item's digits;
# the price is that someone can block an item's page for a day, and its owner can still call the
# hotline. Constants, not settings, on purpose: config.py belongs to the whole service.
LIMIT_PER_ADDRESS = "60 per minute;2000 per day"
LIMIT_MISSES_PER_ADDRESS = "10 per minute;300 per day"
LIMIT_PER_CODE = "30 per day"
# What the session keeps of the last successful look-up (which orders, whose phone: no digits) so
# that the result page shows again in the other language without a new look-up; for this long.
REMEMBERED = "tracked"
REMEMBER_S = 15 * 60


def _code_key() -> str:
    # The code as looked up (item id normalised; a dossier code in capitals, since the look-up matches it
    # typed or in capitals: each way of writing it must not get a day's misses of its own); hashed so
    # that storage keys stay short.
    code = services.clean_code(request.form.get("code") or "")
    code = services.item_id_of(code) or code.upper()
    return "track:" + hashlib.sha256(code.encode()).hexdigest()[:24]


def _missed(_response: Response) -> bool:
    return bool(g.get("tracking_missed"))


def _not_found(_response: Response) -> bool:
    """A miss, or a form refused (a mistyped code, a field left empty); not a look-up the limits
    refused (a 429 is no guess: counting it would let one blocked item use up its address's misses)."""
    return bool(g.get("tracking_missed") or g.get("tracking_refused"))


@bp.after_request
def _private(response: Response) -> Response:
    # The answer is for the person who asked: never kept by a shared cache or the browser.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/t")
def form():
    """The empty form: item id or dossier code, and the phone's last digits."""
    session.pop(REMEMBERED, None)  # "track another item": the last result is no longer needed
    return _form_page(code="")


@bp.get("/t/result")
def result():
    """The last successful look-up of this browser again (its language links lead here), read afresh
    from the orders: no new look-up, nothing typed again; the form once it is older than REMEMBER_S."""
    kept = session.get(REMEMBERED)
    refs = _refs(kept)
    if not refs:
        session.pop(REMEMBERED, None)
        return redirect(url_for("tracking.form"), 303)
    return _result_page(services.track_again(refs))


@bp.get("/t/<item_id>")
def item_form(item_id: str):
    """The link on labels and receipts: the form with the item id filled in."""
    return _form_page(code=services.item_id_of(item_id) or services.clean_code(item_id))


@bp.post("/t")
@limiter.limit(LIMIT_PER_ADDRESS)
@limiter.limit(LIMIT_MISSES_PER_ADDRESS, deduct_when=_not_found)
@limiter.limit(LIMIT_PER_CODE, key_func=_code_key, deduct_when=_missed)
def lookup():
    """The status timeline when the code and the digits match; one neutral answer otherwise."""
    code = services.clean_code(request.form.get("code") or "")
    digits = services.clean_digits(request.form.get("phone_last4") or "")
    errors = {}
    if not code:
        errors["code"] = gettext("Enter the item id or the dossier code.")
    elif services.mistyped_item_id(code):
        # Checked before any look-up: it reveals nothing, so it costs nothing of the code's miss budget
        # (the address's misses still count it).
        errors["code"] = gettext("The item number looks mistyped (check digit): look at your receipt again.")
    if digits is None:
        errors["phone_last4"] = gettext("Enter the last 4 digits of the phone number.")
    if errors:
        g.tracking_refused = True
        return _form_page(code=code, errors=errors, status=422)
    items = services.track(code, digits or "")
    if not items:
        g.tracking_missed = True
        session.pop(REMEMBERED, None)
        return _form_page(code=code, not_found=True)
    session[REMEMBERED] = {"at": int(time.time()), "refs": [[i.order_id, i.proved] for i in items]}
    return _result_page(items)


@bp.errorhandler(429)
def too_many(_exc: Exception):
    """Past the limits: a page that says to wait, in the citizen's language."""
    return render_template("tracking/limited.html", **_help()), 429


@bp.errorhandler(CSRFError)
def csrf_refused(_exc: CSRFError):
    """A form sent from elsewhere or from an old page: the form again, with what to do."""
    message = gettext("The form has expired. Please enter the details again.")
    code = services.clean_code(request.form.get("code") or "")
    return _form_page(code=code, message=message, status=400)


def _refs(kept: object) -> list[tuple[int, str]]:
    """The (order id, whose phone) pairs of a fresh remembered look-up; [] when none or too old."""
    if not isinstance(kept, dict) or not isinstance(kept.get("at"), int) \
            or not 0 <= time.time() - kept["at"] <= REMEMBER_S:
        return []
    refs = kept.get("refs")
    if not isinstance(refs, list):
        return []
    return [(int(r[0]), str(r[1])) for r in refs
            if isinstance(r, list) and len(r) == 2 and isinstance(r[0], int)][:services.MAX_MATCHES]


def _result_page(items: list[services.TrackedItem]):
    # The language links show this result again (GET /t/result), not the empty form.
    links = [(lang, name, url_for("tracking.result", lang=lang))
             for lang, name in (("vi", "Tiếng Việt"), ("en", "English"))]
    return render_template("tracking/result.html", items=items, lang_links=links)


def _help() -> dict[str, str]:
    # No item known: the service's hotline (an item's page gives its counter's).
    number = services.hotline()
    return {"hotline": number, "hotline_href": services.tel_href(number)}


def _form_page(*, code: str, errors: dict[str, str] | None = None, not_found: bool = False,
               message: str | None = None, status: int = 200):
    return render_template("tracking/form.html", code=code, errors=errors or {}, not_found=not_found,
                           message=message, digits=services.PHONE_DIGITS, **_help()), status
