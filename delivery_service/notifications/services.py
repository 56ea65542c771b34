"""Citizen notifications, following the order event log (docs/notifications.md).

- ``scan``: reads order events after the cursor (up to the committed horizon, as webhooks do),
  decides which ones tell the citizen something, and writes one message per (order, kind, round)
  into ``notification_messages``: the unique key makes a repeated or concurrent scan harmless, and a
  lease on the cursor row keeps scanners from doing the same work twice.
- ``send_due``: sends the messages that are due, each claimed by compare-and-set, with retries on
  NOTIFY_RETRY_SCHEDULE; the last failure marks it failed. Quiet hours defer a message; an opted-out
  number or an erased order gets nothing. Each time a message is due it is checked again: one whose
  order has moved on (an "out for delivery" after the delivery) or whose event is older than
  NOTIFY_MAX_AGE_HOURS is dropped (``skipped``, with why), and the scan makes no message at all for an
  event already that old (back-dated history: the past is not sent).

Nothing here logs a phone number, a name or a message's text: ids, kinds and outcomes only.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
from typing import Any

import phonenumbers
import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from delivery_service import rules
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.fields import phone_text
from delivery_service.localtime import service_timezone
from delivery_service.notifications import texts
from delivery_service.notifications.models import (
    NotificationCursor,
    NotificationMessage,
    NotificationOptOut,
    NotificationTemplate,
)
from delivery_service.notifications.providers import Outgoing, provider
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.status import Status

log = logging.getLogger(__name__)
S = Status
KIND_OF = {S.HANDED_TO_COURIER: "handed", S.OUT_FOR_DELIVERY: "out_for_delivery",
           S.FAILED_ATTEMPT: "failed_attempt", S.DELIVERED: "delivered", S.RETURNED_TO_AGENCY: "returned"}
STATUS_OF = {kind: status for status, kind in KIND_OF.items()}
CORRECTION = "correction"  # courier.services.CORRECTION: an undone event tells nobody anything
BATCH = 500
LEASE_S = 120
SEND_BATCH = 100
OPT_OUT_WORDS = ("TU CHOI", "TUCHOI", "HUY", "STOP")


# --- settings ------------------------------------------------------------------------------------------

def quiet_until(now: dt.datetime) -> dt.datetime | None:
    """When the quiet period that ``now`` falls in ends (UTC); None outside quiet hours."""
    quiet = current_app.config.get("NOTIFY_QUIET_HOURS")
    if not quiet:
        return None
    start, end = quiet
    local = now.astimezone(service_timezone())
    t = local.time()
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, end, tzinfo=service_timezone()).astimezone(dt.UTC)


def retry_schedule() -> tuple[int, ...]:
    return tuple(current_app.config["NOTIFY_RETRY_SCHEDULE"])


def max_age() -> dt.timedelta:
    """How old an event may be and still be told (NOTIFY_MAX_AGE_HOURS)."""
    return dt.timedelta(hours=float(current_app.config["NOTIFY_MAX_AGE_HOURS"]))


def happened_at(event: OrderEvent) -> dt.datetime:
    """When the event happened, as the tracking page shows it: the courier's phone's time, else the
    server's."""
    return event.device_time or event.server_time


def too_old(event: OrderEvent, now: dt.datetime) -> bool:
    return now - happened_at(event) > max_age()


# --- phones and opt-outs ---------------------------------------------------------------------------------

def e164(phone: str | None) -> str | None:
    """"0912 345 678" → "84912345678"; None for what is not a valid Vietnamese number."""
    text = phone_text(phone) if phone else None
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, "VN")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return f"{number.country_code}{number.national_number}"


def phone_hash(phone: str | None) -> str | None:
    """HMAC-SHA256 (keyed with SECRET_KEY) of the number's E.164 form: the opt-out table's key."""
    number = e164(phone)
    if number is None:
        return None
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, b"notify-optout:" + number.encode(), hashlib.sha256).hexdigest()


def mask(phone: str | None) -> str:
    """All but the last 3 digits hidden: "0912345678" → "*******678"."""
    digits = re.sub(r"\D", "", phone or "")
    if not digits:
        return "—"
    return "*" * (len(digits) - 3) + digits[-3:]


def is_opted_out(hashed: str | None) -> bool:
    return hashed is not None and db.session.get(NotificationOptOut, hashed) is not None


def opt_out(hashed: str, source: str) -> bool:
    """Record the opt-out (idempotent); True when it is new. Caller commits."""
    if db.session.get(NotificationOptOut, hashed) is not None:
        return False
    db.session.add(NotificationOptOut(phone_hash=hashed, source=source))
    db.session.flush()
    return True


def opt_in(hashed: str) -> bool:
    """Undo an opt-out (idempotent): the number gets messages of later events again (those kept as
    ``opted_out`` stay so). True when there was one. Caller commits."""
    return db.session.execute(sa.delete(NotificationOptOut).where(NotificationOptOut.phone_hash == hashed)
                              .execution_options(synchronize_session=False)).rowcount == 1


def optout_count() -> int:
    """How many numbers opted out (the admin page shows the number, never the numbers)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(NotificationOptOut)) or 0


def keyword_opts_out(text: str | None) -> bool:
    """Whether a reply asks for no more messages ("TU CHOI", "Từ chối", "huy", "STOP" ...)."""
    plain = re.sub(r"\s+", " ", texts.strip_diacritics(text or "").upper()).strip()
    return any(plain == w or plain.startswith(w + " ") for w in OPT_OUT_WORDS)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="notify-optout")


def optout_token(phone: str) -> str | None:
    hashed = phone_hash(phone)
    return None if hashed is None else _serializer().dumps(hashed)


def optout_hash(token: str) -> str | None:
    try:
        value = _serializer().loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) else None


def optout_url(phone: str) -> str | None:
    from delivery_service.tracking.links import public_base_url

    token = optout_token(phone)
    return None if token is None else f"{public_base_url()}/t/optout/{token}"


# --- templates -------------------------------------------------------------------------------------------

def templates() -> dict[str, NotificationTemplate | None]:
    rows = {t.kind: t for t in db.session.scalars(sa.select(NotificationTemplate))}
    return {kind: rows.get(kind) for kind in texts.KINDS}


def template_text(kind: str) -> tuple[str, str | None]:
    """(the text, the ZNS template id) in force for ``kind``."""
    row = db.session.scalar(sa.select(NotificationTemplate).where(NotificationTemplate.kind == kind))
    if row is None:
        return texts.DEFAULT_TEMPLATES[kind], None
    return row.text, row.zns_template_id


def save_template(actor: Any, kind: str, text: str, zns_template_id: str | None, *,
                  ip: str | None = None) -> NotificationTemplate:
    """Validate and store an admin's template; an audit event with before and after. Raises
    InvalidInput with per-field messages, each a Text in both languages (the page shows the reader's);
    the caller commits."""
    from delivery_service.accounts.services import record
    from delivery_service.errors import InvalidInput, Text

    if kind not in texts.KINDS:
        raise InvalidInput({"kind": [Text("Không có loại tin này.", "No such message kind.")]})
    errors: dict[str, list[Text]] = {}
    try:
        text = texts.check_template(text)
    except texts.TemplateError as exc:
        errors["text"] = [exc.text]
    zns = (zns_template_id or "").strip() or None
    if zns is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", zns):
        errors["zns_template_id"] = [
            Text("Chỉ chữ, số, - và _ (tối đa 64).", "Letters, digits, - and _ only.")
        ]
    if errors:
        raise InvalidInput(errors)
    row = db.session.scalar(sa.select(NotificationTemplate).where(NotificationTemplate.kind == kind))
    before = {"text": row.text if row else texts.DEFAULT_TEMPLATES[kind],
              "zns_template_id": row.zns_template_id if row else None}
    if row is None:
        row = NotificationTemplate(kind=kind, text=text)
        db.session.add(row)
    row.text, row.zns_template_id = text, zns
    row.updated_by_id, row.updated_at = getattr(actor, "user_id", None), utcnow()
    db.session.flush()
    record("notification_template.update", actor=actor, object_type="notification_template", object_id=kind,
           before=before, after={"text": text, "zns_template_id": zns}, ip=ip)
    return row


# --- what a message says -----------------------------------------------------------------------------------

def _eta(order: DeliveryOrder, event: OrderEvent) -> str | None:
    """The window of the order's stop on its sequenced run, "09:30-10:30" (routing.eta: the one ETA
    rule); None when the run was not sequenced."""
    from delivery_service.routing.eta import order_eta

    eta = order_eta(order)
    return eta.label(dash="-", pad=True) if eta else None


def _values(order: DeliveryOrder, event: OrderEvent, kind: str) -> dict[str, Any]:
    from delivery_service.tracking.links import tracking_url

    hotline = (order.counter.hotline if order.counter is not None else None) \
        or current_app.config.get("COMPLAINTS_HOTLINE") or ""
    values: dict[str, Any] = {"item_id": order.item_id, "dossier_code": order.dossier_code,
                              "hotline": hotline, "link": tracking_url(order.item_id),
                              "eta": "", "reason": "", "next_attempt": "",
                              "optout_link": optout_url(order.recipient_phone) or ""}
    if kind == "out_for_delivery":
        values["eta"] = _eta(order, event) or "trong ngày"
    if kind == "failed_attempt":
        reason = rules.current().reason(event.reason)
        values["reason"] = reason.label if reason else (event.reason or "không rõ lý do")
        later = order.run_date if order.status is S.FAILED_ATTEMPT else None
        happened = event.server_time.astimezone(service_timezone()).date()
        values["next_attempt"] = later.strftime("%d/%m/%Y") if later and later > happened else "sẽ báo sau"
    return values


def _round(order_id: int, event: OrderEvent, kind: str) -> int:
    """Which attempt the event belongs to (failed attempts before it), for kinds that repeat."""
    if kind not in ("out_for_delivery", "failed_attempt"):
        return 0
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(OrderEvent)
        .where(OrderEvent.order_id == order_id, OrderEvent.id < event.id,
               OrderEvent.status_to == S.FAILED_ATTEMPT, OrderEvent.status_from == S.OUT_FOR_DELIVERY)) or 0


def _insert(values: dict[str, Any]) -> bool:
    """Insert a message unless its (order, kind, round) exists; True when inserted."""
    table = NotificationMessage.__table__
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=["order_id", "kind", "round"])
    return db.session.execute(stmt).rowcount == 1


# --- the scanner -------------------------------------------------------------------------------------------

def _cursor() -> None:
    if db.session.get(NotificationCursor, 1) is None:
        try:
            db.session.add(NotificationCursor(id=1, cursor_event_id=0))
            db.session.commit()
        except sa.exc.IntegrityError:
            db.session.rollback()


def _claim(now: dt.datetime) -> bool:
    taken = db.session.execute(
        sa.update(NotificationCursor).where(
            NotificationCursor.id == 1,
            sa.or_(NotificationCursor.locked_until.is_(None), NotificationCursor.locked_until < now))
        .values(locked_until=now + dt.timedelta(seconds=LEASE_S))
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return taken == 1


def scan(now: dt.datetime | None = None) -> dict[str, int]:
    """Turn the events logged since the last scan into messages; returns counts by outcome."""
    from delivery_service.webhooks.services import committed_horizon

    now = now or utcnow()
    _cursor()
    counts: dict[str, int] = {}
    # Nothing logged since the last scan (most passes): one cheap query, no lock on the event log.
    newest = db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(OrderEvent.id), 0)))
    behind = db.session.scalar(sa.select(NotificationCursor.cursor_event_id)
                               .where(NotificationCursor.id == 1))
    db.session.commit()
    if behind is not None and behind >= newest:
        return counts
    if not _claim(now):
        return {"held": 1}
    try:
        horizon = committed_horizon()
        if horizon is None:
            return {"busy": 1}
        while True:
            cursor = db.session.get(NotificationCursor, 1, populate_existing=True)
            assert cursor is not None
            rows = db.session.execute(
                sa.select(OrderEvent, DeliveryOrder)
                .join(DeliveryOrder, DeliveryOrder.id == OrderEvent.order_id)
                .where(OrderEvent.id > cursor.cursor_event_id, OrderEvent.id <= horizon,
                       OrderEvent.status_to.in_(list(KIND_OF)))
                .order_by(OrderEvent.id).limit(BATCH)).all()
            if not rows:
                cursor.cursor_event_id = max(cursor.cursor_event_id, horizon)
                db.session.commit()
                return counts
            for event, order in rows:
                outcome = _consider(event, order, now)
                counts[outcome] = counts.get(outcome, 0) + 1
            cursor.cursor_event_id = rows[-1][0].id if len(rows) == BATCH else horizon
            db.session.commit()
            if len(rows) < BATCH:
                return counts
    finally:
        db.session.rollback()
        db.session.execute(sa.update(NotificationCursor).where(NotificationCursor.id == 1)
                           .values(locked_until=None).execution_options(synchronize_session=False))
        db.session.commit()


def history_start() -> int | None:
    """Before a loader writes back-dated events in the current transaction (``demo history``): the
    last event id before them, or None when the scanner still has news to read before them (then
    they are scanned, and only those younger than NOTIFY_MAX_AGE_HOURS make messages). On PostgreSQL
    the event log is held against other writers until the caller commits, so no one else's event
    gets an id among the history's."""
    if db.session.connection().dialect.name == "postgresql":
        db.session.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
        db.session.execute(sa.text("LOCK TABLE order_events IN SHARE MODE"))
    last = db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(OrderEvent.id), 0))) or 0
    cursor = db.session.scalar(sa.select(NotificationCursor.cursor_event_id)
                               .where(NotificationCursor.id == 1)) or 0
    waiting = db.session.scalar(sa.select(sa.func.count()).select_from(OrderEvent).where(
        OrderEvent.id > cursor, OrderEvent.id <= last, OrderEvent.status_to.in_(list(KIND_OF))))
    return None if waiting else last


def pass_over_history(start: int | None, now: dt.datetime | None = None) -> bool:
    """After the loader wrote its events (same transaction, ``start`` from history_start): move the
    scanner's cursor over them, so that they make no message. True when moved; the caller commits."""
    if start is None:
        return False
    end = db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(OrderEvent.id), 0))) or 0
    if db.session.get(NotificationCursor, 1) is None:
        db.session.add(NotificationCursor(id=1, cursor_event_id=end))
        db.session.flush()
        return True
    now = now or utcnow()
    moved = db.session.execute(
        sa.update(NotificationCursor).where(
            NotificationCursor.id == 1, NotificationCursor.cursor_event_id <= start,
            sa.or_(NotificationCursor.locked_until.is_(None), NotificationCursor.locked_until < now))
        .values(cursor_event_id=end).execution_options(synchronize_session=False)).rowcount
    return moved == 1


def _consider(event: OrderEvent, order: DeliveryOrder, now: dt.datetime) -> str:
    kind = KIND_OF.get(event.status_to)
    if kind is None or event.reason == CORRECTION:
        return "ignored"
    if event.status_to is S.FAILED_ATTEMPT and event.status_from is not S.OUT_FOR_DELIVERY:
        return "ignored"  # a dossier pick-up that failed: the citizen is the sender, not a recipient
    if order.personal_data_erased_at is not None:
        return "erased"
    if too_old(event, now):
        return "too_old"  # back-dated history, or a scanner that was stopped for long: not news any more
    text, zns_id = template_text(kind)
    values = _values(order, event, kind)
    hashed = phone_hash(order.recipient_phone)
    later = quiet_until(now)
    state = "opted_out" if is_opted_out(hashed) else "skipped" if hashed is None else \
        "deferred" if later else "pending"
    params = {k: str(v) for k, v in values.items()} | ({"_zns_template_id": zns_id} if zns_id else {})
    inserted = _insert({"order_id": order.id, "event_id": event.id, "kind": kind,
                        "round": _round(order.id, event, kind), "state": state,
                        "text": texts.render(text, values)[:1000], "params": params,
                        "due_at": later or now, "attempts": 0, "created_at": now})
    return state if inserted else "duplicate"


# --- the sender -------------------------------------------------------------------------------------------

def _claim_message(message_id: int, now: dt.datetime) -> bool:
    taken = db.session.execute(
        sa.update(NotificationMessage).where(
            NotificationMessage.id == message_id, NotificationMessage.state.in_(("pending", "deferred")),
            NotificationMessage.due_at <= now,
            sa.or_(NotificationMessage.locked_until.is_(None), NotificationMessage.locked_until < now))
        .values(locked_until=now + dt.timedelta(seconds=LEASE_S))
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return taken == 1


def send_due(now: dt.datetime | None = None) -> dict[str, int]:
    """Send every message that is due (retries included); returns counts by outcome."""
    now = now or utcnow()
    ids = list(db.session.scalars(
        sa.select(NotificationMessage.id)
        .where(NotificationMessage.state.in_(("pending", "deferred")), NotificationMessage.due_at <= now,
               sa.or_(NotificationMessage.locked_until.is_(None), NotificationMessage.locked_until < now))
        .order_by(NotificationMessage.due_at, NotificationMessage.id).limit(SEND_BATCH)))
    db.session.commit()
    counts: dict[str, int] = {}
    for message_id in ids:
        if not _claim_message(message_id, now):
            continue
        try:
            outcome = _send(message_id, now)
        except Exception as exc:  # noqa: BLE001 (one message's trouble must not stop the others)
            db.session.rollback()
            log.error("notification %s: send failed (%s)", message_id, exc.__class__.__name__)
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def outdated(message: NotificationMessage, order: DeliveryOrder, now: dt.datetime) -> str | None:
    """Why the message no longer makes sense now (None: it still does): the order has moved on from
    its status (or a later attempt has begun), or its event is older than NOTIFY_MAX_AGE_HOURS."""
    status = STATUS_OF.get(message.kind)
    if status is None:
        return None
    if order.status is not status:
        return f"out of date: the order is now {order.status.value}"
    # The latest event that brought the order to this status (a courier's correction only undoes one):
    # a message of an earlier round (the first attempt's "out for delivery" once the second has begun)
    # is out of date.
    query = sa.select(OrderEvent).where(
        OrderEvent.order_id == order.id, OrderEvent.status_to == status,
        sa.or_(OrderEvent.reason.is_(None), OrderEvent.reason != CORRECTION))
    if status is S.FAILED_ATTEMPT:
        query = query.where(OrderEvent.status_from == S.OUT_FOR_DELIVERY)
    latest = db.session.scalar(query.order_by(OrderEvent.id.desc()).limit(1))
    if latest is not None and _round(order.id, latest, message.kind) != message.round:
        return "out of date: a later attempt has begun"
    event = db.session.get(OrderEvent, message.event_id)
    if event is not None and too_old(event, now):
        return f"out of date: the event is older than {current_app.config['NOTIFY_MAX_AGE_HOURS']} h"
    return None


def _send(message_id: int, now: dt.datetime) -> str:
    message = db.session.get(NotificationMessage, message_id, populate_existing=True)
    assert message is not None
    order = db.session.get(DeliveryOrder, message.order_id)
    # The claim's lease stays on while the provider is asked (no transaction is open then): another
    # sender passing meanwhile must not take the message too. Every outcome below ends the lease.
    if order is None or order.personal_data_erased_at is not None:
        message.state, message.locked_until = "skipped", None
        db.session.commit()
        return "skipped"
    hashed = phone_hash(order.recipient_phone)
    number = e164(order.recipient_phone)
    if hashed is None or number is None:
        message.state, message.last_error, message.locked_until = "skipped", "no valid phone number", None
        db.session.commit()
        return "skipped"
    if is_opted_out(hashed):
        message.state, message.locked_until = "opted_out", None
        db.session.commit()
        log.info("notification %s (%s): not sent, the number opted out", message.id, message.kind)
        return "opted_out"
    why = outdated(message, order, now)
    if why is not None:
        message.state, message.last_error, message.locked_until = "skipped", why, None
        db.session.commit()
        log.info("notification %s (%s): not sent, %s", message.id, message.kind, why)
        return "outdated"
    later = quiet_until(now)
    if later is not None:
        message.state, message.due_at, message.locked_until = "deferred", later, None
        db.session.commit()
        return "deferred"
    sender = provider()
    text, kind, params = message.text, message.kind, dict(message.params or {})
    db.session.commit()  # no transaction stays open during the request
    result = sender.send(Outgoing(message_id, kind, number, text, params))
    message = db.session.get(NotificationMessage, message_id, populate_existing=True)
    assert message is not None
    message.attempts += 1
    message.provider = sender.name
    message.locked_until = None
    if result.ok:
        message.state, message.sent_at, message.provider_ref = "sent", utcnow(), result.ref
        message.last_error = None
        log.info("notification %s (%s) sent by %s", message_id, kind, sender.name)
        outcome = "sent"
    else:
        message.last_error = (result.error or "failed")[:200]
        schedule = retry_schedule()
        if result.permanent or message.attempts > len(schedule):
            message.state = "failed"
            log.warning("notification %s (%s) failed for good after %s attempts (%s)", message_id, kind,
                        message.attempts, message.last_error)
            outcome = "failed"
        else:
            delay = dt.timedelta(seconds=schedule[message.attempts - 1])
            message.state, message.due_at = "pending", now + delay
            log.info("notification %s (%s) failed (%s); retry in %s s", message_id, kind, message.last_error,
                     int(delay.total_seconds()))
            outcome = "retry"
    db.session.commit()
    return outcome


def run(now: dt.datetime | None = None) -> dict[str, Any]:
    """One pass: scan the log, then send what is due (the maintenance pass and the CLI call this)."""
    if not current_app.config.get("NOTIFY_ENABLED", True):
        return {}
    return {"scan": scan(now), "send": send_due(now)}


def recent(limit: int = 50) -> list[dict[str, Any]]:
    """The latest messages for the admin page: masked numbers, no text of erased orders."""
    rows = db.session.execute(
        sa.select(NotificationMessage, DeliveryOrder.item_id, DeliveryOrder.recipient_phone,
                  DeliveryOrder.personal_data_erased_at)
        .join(DeliveryOrder, DeliveryOrder.id == NotificationMessage.order_id)
        .order_by(NotificationMessage.id.desc()).limit(limit)).all()
    return [{"message": m, "item_id": item_id, "phone": "—" if erased else mask(phone)}
            for m, item_id, phone, erased in rows]
