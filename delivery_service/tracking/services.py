"""Finding an item for a citizen: its code (item id or dossier code) and the last digits of a phone on
it must both match. What comes back holds no personal data beyond the recipient's initials."""

from __future__ import annotations

import datetime as dt
import hmac
import re
import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload, selectinload

from delivery_service import rules
from delivery_service.courier.services import CORRECTION
from delivery_service.extensions import db
from delivery_service.localtime import service_timezone
from delivery_service.orders.models import DeliveryOrder, OrderEvent, window_text
from delivery_service.orders.status import Direction, Status
from labels import s10

PHONE_DIGITS = 4
MAX_CODE_LENGTH = 64
# A dossier code is unique per counter and direction only; more matches than this are not shown.
MAX_MATCHES = 20


@dataclass(frozen=True)
class TrackedEvent:
    """One status change as the citizen sees it: when, which status, and why for a failed attempt."""

    at: dt.datetime
    status: Status
    reason: str | None


@dataclass(frozen=True)
class TrackedItem:
    """What the tracking page shows of one order."""

    item_id: str
    direction: Direction
    status: Status
    counter_name: str
    recipient_initials: str
    province_name: str
    appointment_date: dt.date | None
    due_date: dt.date
    events: tuple[TrackedEvent, ...]
    optout_token: str | None = None  # stops text messages to the phone the citizen proved (notifications)
    eta: str | None = None  # "9:00–10:00": the window of today's sequenced run, shown on the run's day only
    window: str | None = None  # "08:00–12:00": the delivery window the citizen chose (not personal data)
    # After a failed attempt: the day of the next one (the order's run date, Vietnam's calendar), as
    # the text message says it; None when not set yet.
    next_attempt: dt.date | None = None
    hotline: str | None = None  # the counter's, else COMPLAINTS_HOTLINE (as on labels and messages)
    # Which order, and whose phone the digits proved: what the session keeps of the look-up so that the
    # page can be shown again (in the other language) without a new one. Never shown.
    order_id: int = 0
    proved: str = "recipient"  # or "authorised"

    @property
    def hotline_href(self) -> str:
        return tel_href(self.hotline or "")


def clean_code(text: str) -> str:
    """The code as typed, in a comparable form: compatibility-normalised (full-width letters and
    digits from a phone keyboard become ASCII), trimmed, at most MAX_CODE_LENGTH characters."""
    return unicodedata.normalize("NFKC", text or "").strip()[:MAX_CODE_LENGTH]


def clean_digits(text: str) -> str | None:
    """The last digits of a phone as typed (spaces and dots allowed); None unless exactly PHONE_DIGITS."""
    digits = "".join(ch for ch in unicodedata.normalize("NFKC", text or "") if not ch.isspace() and ch != ".")
    return digits if len(digits) == PHONE_DIGITS and digits.isascii() and digits.isdigit() else None


def item_id_of(code: str) -> str | None:
    """The S10 item id a code stands for (lower case, spaces and hyphens allowed), or None."""
    candidate = s10.normalize(clean_code(code))
    return candidate if s10.is_valid(candidate) else None


def mistyped_item_id(code: str) -> bool:
    """Whether a code has the shape of an S10 item id (two letters, nine digits, two letters) with a
    wrong check digit: no item can have it, so it was mistyped (looking it up would tell nothing)."""
    candidate = s10.normalize(clean_code(code))
    return re.fullmatch(r"[A-Z]{2}\d{9}[A-Z]{2}", candidate) is not None and not s10.is_valid(candidate)


def initials(name: str) -> str:
    """The first letter of each word, nothing more: "N. T. H." for "Nguyễn Thị Hoa"."""
    words = unicodedata.normalize("NFC", name).split()
    letters = [next((ch for ch in word if ch.isalpha()), "") for word in words]
    return " ".join(f"{letter.upper()}." for letter in letters if letter)


def _phone_ends_with(phone: str | None, digits: str) -> bool:
    tail = "".join(ch for ch in phone or "" if ch.isdigit())[-PHONE_DIGITS:]
    # Constant time, and both phones always checked: a wrong guess costs what a right one does.
    return hmac.compare_digest(tail.rjust(PHONE_DIGITS, "x"), digits)


def track(code: str, digits: str) -> list[TrackedItem]:
    """The orders with this item id or dossier code whose recipient's or authorised person's phone
    ends with ``digits``, oldest first; an empty list for an unknown code and for wrong digits alike."""
    text = clean_code(code)
    if not text or len(digits) != PHONE_DIGITS:
        return []
    item_id = item_id_of(text)
    condition = (DeliveryOrder.item_id == item_id if item_id
                 else DeliveryOrder.dossier_code.in_({text, text.upper()}))
    rows = db.session.execute(
        sa.select(DeliveryOrder.id, DeliveryOrder.recipient_phone, DeliveryOrder.authorised_phone)
        .where(condition).order_by(DeliveryOrder.id).limit(MAX_MATCHES)).all()
    ids = [row.id for row in rows
           if _phone_ends_with(row.recipient_phone, digits) | _phone_ends_with(row.authorised_phone, digits)]
    if not ids:
        return []
    orders = db.session.scalars(
        sa.select(DeliveryOrder).where(DeliveryOrder.id.in_(ids)).order_by(DeliveryOrder.id)
        .options(joinedload(DeliveryOrder.counter), joinedload(DeliveryOrder.province),
                 selectinload(DeliveryOrder.events))).all()
    return [_tracked(order, _proved(order, digits)) for order in orders]


def _proved(order: DeliveryOrder, digits: str) -> str:
    return "recipient" if _phone_ends_with(order.recipient_phone, digits) else "authorised"


def track_again(refs: list[tuple[int, str]]) -> list[TrackedItem]:
    """The items of an earlier successful look-up, from what the session kept of it ((order id, whose
    phone the digits proved) pairs, in a signed cookie): the same page, read afresh, no new look-up."""
    ids = [order_id for order_id, _proved in refs][:MAX_MATCHES]
    proved = dict(refs)
    orders = db.session.scalars(
        sa.select(DeliveryOrder).where(DeliveryOrder.id.in_(ids)).order_by(DeliveryOrder.id)
        .options(joinedload(DeliveryOrder.counter), joinedload(DeliveryOrder.province),
                 selectinload(DeliveryOrder.events))).all()
    return [_tracked(order, proved[order.id]) for order in orders]


def hotline(counter_hotline: str | None = None) -> str:
    """The number a citizen calls: the counter's hotline, else the service's (COMPLAINTS_HOTLINE)."""
    return (counter_hotline or "").strip() or current_app.config.get("COMPLAINTS_HOTLINE") or ""


def tel_href(number: str) -> str:
    """``tel:`` link of a number as printed ("1900 545481" → "tel:1900545481")."""
    return "tel:" + "".join(ch for ch in number if ch.isdigit() or ch == "+")


def next_attempt(order: DeliveryOrder) -> dt.date | None:
    """After a failed attempt, the day of the next one: the order's run date when later than the day
    (in Vietnam) the attempt failed; None otherwise (not decided yet)."""
    if order.status is not Status.FAILED_ATTEMPT or order.run_date is None:
        return None
    failed = [e for e in order.events if e.status_to is Status.FAILED_ATTEMPT and e.reason != CORRECTION]
    if failed:
        happened = failed[-1].server_time.astimezone(service_timezone()).date()
        if order.run_date <= happened:
            return None
    return order.run_date


def _tracked(order: DeliveryOrder, proved: str) -> TrackedItem:
    from delivery_service.notifications.services import optout_token

    proved = "authorised" if proved == "authorised" else "recipient"
    phone = order.authorised_phone if proved == "authorised" else order.recipient_phone
    return TrackedItem(
        order_id=order.id, proved=proved,
        next_attempt=next_attempt(order), hotline=hotline(order.counter.hotline),
        optout_token=optout_token(phone) if phone else None, eta=_eta_today(order),
        item_id=order.item_id, direction=order.direction, status=order.status,
        counter_name=order.counter.name, recipient_initials=initials(order.recipient_name),
        province_name=order.province.name, appointment_date=order.appointment_date,
        window=window_text(order), due_date=order.due_date,
        events=tuple(_event(e) for e in order.events if _shown(e)))


# Statuses in which the courier is still to come: the order is on a run, not yet visited.
_AWAITED = {Status.ASSIGNED, Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.PICKUP_SCHEDULED}


def _eta_today(order: DeliveryOrder) -> str | None:
    """The arrival window when the order is awaited on today's (local) sequenced run; else None."""
    from delivery_service.localtime import local_today
    from delivery_service.routing.eta import order_eta

    if order.status not in _AWAITED or order.run_date != local_today():
        return None
    eta = order_eta(order)
    return eta.label() if eta is not None and not eta.visited else None


def _shown(event: OrderEvent) -> bool:
    # Events that change nothing a citizen sees (an address corrected, a route swapped) are left out.
    return event.status_from is not event.status_to


def _event(event: OrderEvent) -> TrackedEvent:
    # Only a failed attempt says why; other reasons are internal (corrections, returns' bookkeeping).
    # A listed reason only (its label is shown): whatever else a caller wrote there stays internal.
    failed = event.status_to is Status.FAILED_ATTEMPT and event.reason != CORRECTION
    reason = event.reason if failed and rules.current().reason(event.reason or "") is not None else None
    return TrackedEvent(at=event.device_time or event.server_time, status=event.status_to, reason=reason)
