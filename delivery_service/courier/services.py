"""The courier's side: their run as the app shows it, events from the phone's outbox applied in
device-time order through the status machine, proof of delivery, photos and signatures, and
corrections. Logs carry ids and counts only, never names, phones or ID numbers."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from flask import current_app
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import undefer
from sqlalchemy.orm.attributes import set_committed_value

from delivery_service import logs, metrics, rules
from delivery_service.accounts.models import Role
from delivery_service.accounts.services import SYSTEM, Actor
from delivery_service.courier.models import (
    DeliveryProof,
    EventCorrection,
    FileKind,
    IdCheckKind,
    IdCheckResult,
    ProofFile,
    ProofKind,
    ReceiverKind,
)
from delivery_service.courier.schemas import CourierSyncEventIn, lean_event
from delivery_service.db import DriverSQL, utcnow
from delivery_service.errors import Conflict, DomainError, Forbidden, InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.localtime import local_moment
from delivery_service.orders import services as orders
from delivery_service.orders import status as machine
from delivery_service.orders.models import DeliveryOrder, OrderEvent, Payer, window_json
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.models import PostalRoute
from delivery_service.units.services import unit_index
from labels import s10

if TYPE_CHECKING:
    from delivery_service.geo.services import Learning

log = logging.getLogger(__name__)
S = Status
CORRECTION = "correction"
RETURN_REASON = "max_failed_attempts"
_EVENT_SCHEMA = CourierSyncEventIn()
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class PayloadTooLarge(DomainError):
    status = 413


class Rejected(Exception):
    """An event the service refuses: reported back to the phone, never dropped. ``code`` is the broad
    class (docs/courier-api.md), ``reason`` the stable name of this very refusal (the code when none is
    given): the app words it in its own language, the English ``message`` is for logs and scripts."""

    def __init__(self, code: str, message: str, fields: dict[str, Any] | None = None,
                 reason: str | None = None, next_attempt_date: dt.date | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.fields, self.reason = code, message, fields or {}, reason or code
        # with ``not_due_yet``: the day the next attempt is planned for, for the app to say it
        self.next_attempt_date = next_attempt_date


# --- the courier and their routes ----------------------------------------------------------------

def require_courier(actor: Actor) -> None:
    if actor.role is not Role.COURIER:
        raise Forbidden("The courier app is for couriers.")


def route_ids(actor: Actor) -> list[int]:
    """The routes the courier drives (PostalRoute.courier_id)."""
    require_courier(actor)
    return list(db.session.connection().scalars(_ROUTE_IDS, {"b_user": actor.user_id}))


_ROUTES = PostalRoute.__table__
_ROUTE_IDS = (sa.select(_ROUTES.c.id).where(_ROUTES.c.courier_id == sa.bindparam("b_user"))
              .order_by(_ROUTES.c.code))


def own_route(actor: Actor) -> PostalRoute:
    """The courier's route (the first by code if they drive several); NotFound if none."""
    require_courier(actor)
    route = db.session.scalar(sa.select(PostalRoute).where(PostalRoute.courier_id == actor.user_id)
                              .order_by(PostalRoute.code).limit(1))
    if route is None:
        raise NotFound("You have no route: ask your supervisor to assign you one.")
    return route


def own_order(actor: Actor, item_id: str) -> DeliveryOrder:
    """An order on one of the courier's routes (any day); NotFound saying so otherwise."""
    ids = route_ids(actor)
    normal = s10.normalize(item_id)
    order = db.session.scalar(sa.select(DeliveryOrder).where(
        DeliveryOrder.item_id == normal, DeliveryOrder.route_id.in_(ids or [-1])))
    if order is None:
        raise NotFound(f"{normal} is not on your route")
    return order


# --- reading: the run and its orders as the app shows them ---------------------------------------

def on_result_leg(order: DeliveryOrder | _Order) -> bool:
    """True while the order is carrying a result to the citizen (not collecting a dossier)."""
    if order.direction is Direction.RESULT_TO_CITIZEN:
        return True
    if order.direction is Direction.DOSSIER_TO_AGENCY:
        return False
    return order.dossier_delivered_at is not None or order.status is S.DELIVERED_TO_AGENCY


def actions_for(order: DeliveryOrder, *, attempt_due: dt.date | None = None,
                today: dt.date | None = None) -> list[str]:
    """What the courier can record next (corrections are added by the caller). ``attempt_due``: the
    first day another failed attempt counts (``next_attempt_due``); before it, none is offered (a
    delivery still is: the citizen may call the courier back the same day)."""
    actions = _actions_by_status(order)
    if attempt_due is not None and "failed_attempt" in actions and (
            (today or orders.local_today()) < attempt_due):
        actions.remove("failed_attempt")
    return actions


def _actions_by_status(order: DeliveryOrder) -> list[str]:
    status = order.status
    if on_result_leg(order):
        if status in (S.ASSIGNED, S.DELIVERED_TO_AGENCY):
            return ["pickup_confirmed"]
        if status in (S.HANDED_TO_COURIER, S.OUT_FOR_DELIVERY, S.FAILED_ATTEMPT):
            return ["delivered", "failed_attempt"]
        return []
    if status is S.ASSIGNED:
        return ["pickup_confirmed", "dossier_picked_up", "failed_attempt"]
    if status in (S.PICKUP_SCHEDULED, S.FAILED_ATTEMPT):
        return ["dossier_picked_up", "failed_attempt"]
    return []


def to_collect(order: DeliveryOrder | _Order) -> int:
    """What the courier collects from the citizen: fees for the agency, and postage if they pay it.

    The one rule for the phone, the label and the run sheet:
    ``collect_vnd + (postage_due_vnd if payer is Payer.CITIZEN else 0)``."""
    return order.collect_vnd + (order.postage_due_vnd if order.payer is Payer.CITIZEN else 0)


# The statuses in which an order's cash is in the courier's hand, and the proof that says how much:
# delivered (the delivery's amount collected), or its dossier picked up (the fees collected), since
# taken to the agency or not.
CASH_PROOF = {S.DELIVERED: ProofKind.DELIVERED, S.PICKED_UP: ProofKind.PICKED_UP,
              S.DELIVERED_TO_AGENCY: ProofKind.PICKED_UP}


@dataclass(frozen=True)
class Money:
    """An order's money on a run: what is due (``to_collect``) and, once delivered or its dossier
    picked up, what the courier recorded collecting (None: not stated), the record's note (why it
    differs) and, when that was another day than the run's, that day (its cash counts there)."""

    due: int
    delivered: bool = False
    collected: int | None = None
    note: str | None = None
    picked_up: bool = False
    other_day: dt.date | None = None

    @property
    def done(self) -> bool:
        """Delivered or picked up: the money is collected (or recorded as not), no longer to collect."""
        return self.delivered or self.picked_up

    @property
    def difference(self) -> int:
        """Collected less due, of a delivered or picked-up order (negative: short); 0 otherwise."""
        return (self.collected or 0) - self.due if self.done else 0


@dataclass(frozen=True)
class RunMoney:
    """A run's money for the supervisor counting the courier's cash at the end of the day."""

    orders: dict[int, Money]
    still_to_collect: int  # due on the orders not delivered (nor finished otherwise) yet
    due: int  # due on the orders delivered or picked up that day
    collected: int  # what the courier recorded collecting on them
    difference: int  # collected less due
    not_stated: int  # deliveries and pickups recorded without an amount


class Collected(NamedTuple):
    """What the courier recorded collecting on a delivery or a dossier pickup."""

    amount: int | None  # None: not stated
    note: str | None
    day: dt.date  # the service's day it was recorded (the device's time, else the server's)


def collected_amounts(orders_: Sequence[DeliveryOrder]) -> dict[int, Collected]:
    """Per order delivered, or whose dossier was picked up (``CASH_PROOF``), what the courier recorded
    collecting (the delivery's amount, the pickup's fees) with the record's note and day, from the
    proof of its standing (neither corrected nor a correction) delivered or picked-up event, the last
    one if several; one query for all. Other orders are left out."""
    by_kind: dict[ProofKind, list[int]] = defaultdict(list)
    for o in orders_:
        if o.status in CASH_PROOF:
            by_kind[CASH_PROOF[o.status]].append(o.id)
    if not by_kind:
        return {}
    ids = [i for kind_ids in by_kind.values() for i in kind_ids]
    # a proof counts only with the event it was recorded with (not, say, a later status of the order)
    status_of = {ProofKind.DELIVERED: S.DELIVERED, ProofKind.PICKED_UP: S.PICKED_UP}
    rows = db.session.execute(
        sa.select(DeliveryProof.order_id, DeliveryProof.kind, DeliveryProof.amount_collected_vnd,
                  DeliveryProof.fees_collected_vnd, OrderEvent.note, OrderEvent.device_time,
                  OrderEvent.server_time)
        .join(OrderEvent, OrderEvent.id == DeliveryProof.event_id)
        .where(sa.or_(*(sa.and_(DeliveryProof.order_id.in_(kind_ids), DeliveryProof.kind == kind,
                                OrderEvent.status_to == status_of[kind])
                        for kind, kind_ids in by_kind.items())),
               standing(EventCorrection.order_id.in_(ids)))
        .order_by(DeliveryProof.event_id))
    return {order_id: Collected(amount if kind is ProofKind.DELIVERED else fees, note,
                                local_moment(device_time or server_time).date())
            for order_id, kind, amount, fees, note, device_time, server_time in rows}  # the last standing one


def run_money(orders_: Sequence[DeliveryOrder], day: dt.date) -> RunMoney:
    """Per order of ``day``'s run, what is due and what was collected (the standing proof of its
    delivery or of its dossier's pickup), and the day's totals. Nothing is still to collect that day on
    an order done otherwise: closed, or failed and planned for a later day. A delivery or pickup
    recorded another day counts in that day's cash, not this one's: a dossier picked up stays on the
    following days' runs until it reaches the agency, its fees handed in on the pickup's day."""
    proofs = collected_amounts(orders_)
    money: dict[int, Money] = {}
    still = 0
    for o in orders_:
        if o.status in CASH_PROOF:
            got = proofs.get(o.id)
            amount, note = (got.amount, got.note) if got else (None, None)
            other_day = got.day if got and got.day != day else None
            delivered = o.status is S.DELIVERED
            money[o.id] = Money(to_collect(o), delivered, amount, note, not delivered, other_day)
        else:
            money[o.id] = Money(to_collect(o))
            later = o.status is S.FAILED_ATTEMPT and o.run_date is not None and o.run_date > day
            if not later and o.status not in (S.RETURNED_TO_AGENCY, S.CANCELLED):
                still += money[o.id].due
    done = [m for m in money.values() if m.done and m.other_day is None]
    due, collected = sum(m.due for m in done), sum(m.collected or 0 for m in done)
    return RunMoney(money, still, due, collected, collected - due, sum(m.collected is None for m in done))


def standing(corrections_of: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """The condition on ``OrderEvent`` for an event that still counts: neither a correction nor
    corrected since. ``corrections_of`` picks the corrections to look in (``EventCorrection``'s
    orders: the same orders as the events')."""
    corrected = sa.select(EventCorrection.corrected_event_id).where(corrections_of)
    return sa.and_(sa.or_(OrderEvent.reason.is_(None), OrderEvent.reason != CORRECTION),
                   OrderEvent.id.not_in(corrected))


def _is_attempt(ids: list[int]) -> sa.ColumnElement[bool]:
    """The condition on ``OrderEvent`` for a failed attempt that counts: one into ``failed_attempt``
    (not a move of an order already there to another route, which keeps its status), neither a
    correction nor corrected since."""
    return sa.and_(OrderEvent.order_id.in_(ids), OrderEvent.status_to == S.FAILED_ATTEMPT,
                   sa.or_(OrderEvent.status_from.is_(None), OrderEvent.status_from != S.FAILED_ATTEMPT),
                   standing(EventCorrection.order_id.in_(ids)))


def failed_attempts(order_ids: Iterable[int]) -> dict[int, int]:
    """Failed attempts per order, corrected ones not counted."""
    ids = list(order_ids)
    if not ids:
        return {}
    rows = db.session.execute(
        sa.select(OrderEvent.order_id, sa.func.count()).where(_is_attempt(ids)).group_by(OrderEvent.order_id))
    return {order_id: n for order_id, n in rows}


def last_attempts(order_ids: Iterable[int]) -> dict[int, OrderEvent]:
    """The last failed attempt that counts, per order (``failed_attempts``' events)."""
    ids = list(order_ids)
    if not ids:
        return {}
    latest = sa.select(sa.func.max(OrderEvent.id)).where(_is_attempt(ids)).group_by(OrderEvent.order_id)
    return {e.order_id: e for e in db.session.scalars(sa.select(OrderEvent).where(OrderEvent.id.in_(latest)))}


def next_attempt_due(run_date: dt.date | None, attempt: OrderEvent) -> dt.date:
    """The first day another failed attempt counts after ``attempt``: an attempt counts once per planned
    run day. That is the order's run date (the next attempt's day, ``_after_failure``), and never
    the attempt's own day. An attempt that reached the server after its day (a phone offline for
    days) moved the run date from the day it was sent: the next attempt was due the day after it."""
    day = local_moment(attempt.device_time or attempt.server_time).date()
    after = day + dt.timedelta(days=1)
    if run_date is None or local_moment(attempt.server_time).date() > day:
        return after
    return max(run_date, after)


def _last_events(order_ids: Sequence[int]) -> dict[int, OrderEvent]:
    if not order_ids:
        return {}
    latest = (sa.select(sa.func.max(OrderEvent.id)).where(OrderEvent.order_id.in_(order_ids))
              .group_by(OrderEvent.order_id))
    return {e.order_id: e for e in db.session.scalars(sa.select(OrderEvent).where(OrderEvent.id.in_(latest)))}


def _correctable_until(event: OrderEvent, actor: Actor) -> dt.datetime | None:
    """When the courier's own last event stops being correctable; None if it is not theirs."""
    if (event.actor_user_id != actor.user_id or not event.client_event_id or event.reason == CORRECTION
            or event.status_from is None):
        return None
    return event.server_time + dt.timedelta(minutes=rules.current().correction_window_min)


def order_json(order: DeliveryOrder, actor: Actor, *, position: tuple[float, float, bool] | None,
               attempts: int, last: OrderEvent | None, now: dt.datetime,
               attempt_due: dt.date | None = None, collected: int | None = None) -> dict[str, Any]:
    """ORDER of docs/courier-api.md. ``collected``: what the courier recorded collecting on the
    delivery or the dossier's pickup (``collected_amounts``), sent only while the order is delivered
    or its dossier picked up (``CASH_PROOF``)."""
    index = unit_index()
    commune, province = index.by_id.get(order.commune_id), index.by_id.get(order.province_id)
    actions = actions_for(order, attempt_due=attempt_due, today=local_moment(now).date())
    last_json = None
    if last is not None:
        until = _correctable_until(last, actor)
        if until is not None and until >= now:
            actions.append("correction")
        # Times in the service's zone (+07:00): the app decides "today" by the service's day, never
        # by UTC's or the phone's.
        last_json = {"event_id": last.client_event_id, "status": last.status_to.value,
                     "status_from": last.status_from.value if last.status_from is not None else None,
                     "device_time": local_moment(last.device_time).isoformat() if last.device_time else None,
                     "correctable_until": (local_moment(until).isoformat()
                                           if until is not None and until >= now else None)}
    authorised = None
    if order.authorised_name:
        authorised = {"name": order.authorised_name, "phone": order.authorised_phone}
    return {
        "item_id": order.item_id, "status": order.status.value, "direction": order.direction.value,
        "leg": "result" if on_result_leg(order) else "dossier",
        "dossier_code": order.dossier_code, "procedure_name": order.procedure_name,
        "issuing_agency": order.issuing_agency,
        "recipient": {"name": order.recipient_name, "phone": order.recipient_phone},
        "authorised": authorised,
        "address": {"detail": order.address_detail, "commune": commune.name if commune else None,
                    "province": province.name if province else None},
        "latitude": position[0] if position else None, "longitude": position[1] if position else None,
        "position_estimated": position[2] if position else True,
        "collect_vnd": order.collect_vnd, "postage_due_vnd": order.postage_due_vnd,
        "payer": order.payer.value, "to_collect_vnd": to_collect(order),
        # what the delivery or the pickup recorded as collected (it may differ from what was due)
        "collected_vnd": collected if order.status in CASH_PROOF else None,
        "failed_attempts": attempts, "id_check": rules.current().delivery_id_check,
        "actions": actions, "last_event": last_json,
        "delivery_window": window_json(order),  # the time the citizen chose, as in the orders API
    }


def _positions(orders_: Sequence[DeliveryOrder]) -> dict[int, tuple[float, float, bool]]:
    from delivery_service.geo.services import locations_for

    found = locations_for([o.id for o in orders_])
    return {i: (loc.latitude, loc.longitude, bool(loc.is_centroid)) for i, loc in found.items()}


def _orders_json(orders_: Sequence[DeliveryOrder], actor: Actor,
                 positions: dict[int, tuple[float, float, bool]]) -> dict[int, dict[str, Any]]:
    ids = [o.id for o in orders_]
    attempts, last, now = failed_attempts(ids), _last_events(ids), utcnow()
    failed = last_attempts([o.id for o in orders_ if o.status is S.FAILED_ATTEMPT])
    due = {i: next_attempt_due(o.run_date, failed[i]) for o in orders_ if (i := o.id) in failed}
    collected = collected_amounts(orders_)
    return {o.id: order_json(o, actor, position=positions.get(o.id), attempts=attempts.get(o.id, 0),
                             last=last.get(o.id), now=now, attempt_due=due.get(o.id),
                             collected=got.amount if (got := collected.get(o.id)) else None) for o in orders_}


def settings() -> dict[str, Any]:
    cfg, rule = current_app.config, rules.current()
    return {"max_failed_attempts": rule.max_failed_attempts,
            "correction_window_min": rule.correction_window_min, "max_file_bytes": cfg["MAX_PROOF_BYTES"]}


def run_for(actor: Actor, day: dt.date | None = None) -> dict[str, Any]:
    """The courier's run for ``day`` (today by default), JSON-ready (docs/courier-api.md)."""
    from delivery_service.routing.eta import stop_etas
    from delivery_service.routing.services import get_run

    route = own_route(actor)
    day = day or orders.local_today()
    view = get_run(actor, route.code, day)
    positions = {o.id: (stop["latitude"], stop["longitude"], bool(stop["estimated"]))
                 for stop in view.stops for o in stop["orders"]}
    if view.unsequenced:
        positions.update(_positions(view.unsequenced))
        db.session.commit()  # orders located just now keep their place for the next reader
    all_orders = [o for stop in view.stops for o in stop["orders"]] + list(view.unsequenced)
    as_json = _orders_json(all_orders, actor, positions)
    etas = stop_etas(view.run) if view.run is not None else {}
    return {
        "route": {"code": route.code, "name": route.name}, "date": day.isoformat(),
        "timezone": current_app.config["SERVICE_TIMEZONE"],
        "sequenced": view.run is not None, "done": view.done, "total": view.total,
        "stops": [{"number": s["number"], "leg_m": s["leg_m"], "estimated": bool(s["estimated"]),
                   "eta": etas[s["number"]].as_json() if s["number"] in etas else None,
                   "orders": [as_json[o.id] for o in s["orders"]]} for s in view.stops],
        "unsequenced": [as_json[o.id] for o in view.unsequenced],
        "failure_reasons": rules.current().reasons,
        "settings": settings(),
    }


def order_for(actor: Actor, item_id: str) -> dict[str, Any]:
    """One ORDER on the courier's route (any day)."""
    order = own_order(actor, item_id)
    positions = _positions([order])
    db.session.commit()
    return _orders_json([order], actor, positions)[order.id]


# --- identity checks -----------------------------------------------------------------------------

def delivery_code(item_id: str) -> str:
    """The citizen's one-time delivery code: 6 digits, HMAC-SHA256(SECRET_KEY, item id). It can be
    printed on the receipt or sent by SMS; nothing needs storing, and any worker can check it."""
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, f"delivery-code:{s10.normalize(item_id)}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 1_000_000:06d}"


def _check_identity(order: DeliveryOrder | _Order,
                    data: dict[str, Any]) -> tuple[IdCheckKind, IdCheckResult, str | None]:
    check = data.get("id_check")
    required = rules.current().delivery_id_check
    if check is None:
        if required != IdCheckKind.NONE.value:
            raise Rejected("invalid", "Check the receiver's identity before handing the result over.",
                           {"id_check": ["Required: the ID card's last 4 digits, or the one-time code."]},
                           "id_check_required")
        return IdCheckKind.NONE, IdCheckResult.NOT_CHECKED, None
    value = check["value"].strip()
    if check["kind"] is IdCheckKind.OTP:
        if not hmac.compare_digest(value, delivery_code(order.item_id)):
            raise Rejected("invalid", "The one-time code is wrong: do not hand the result over.",
                           {"id_check": ["The one-time code does not match the one sent to the citizen."]},
                           "otp_mismatch")
        return IdCheckKind.OTP, IdCheckResult.OK, None
    receiver = data["receiver"]["kind"]
    known = order.recipient_id_number if receiver is ReceiverKind.RECIPIENT else order.authorised_id_number
    if not known:
        return IdCheckKind.ID_LAST4, IdCheckResult.NOT_VERIFIABLE, value
    if not hmac.compare_digest(known[-4:], value):
        whose = "recipient's" if receiver is ReceiverKind.RECIPIENT else "authorised person's"
        raise Rejected("invalid", f"The ID card does not match the {whose} ID number on the order: "
                                  "do not hand the result over.",
                       {"id_check": ["The last 4 digits do not match the ID number on the order."]},
                       "id_mismatch")
    return IdCheckKind.ID_LAST4, IdCheckResult.OK, value


# --- writing: the sync batch -------------------------------------------------------------------

def _result(event_id: str | None, result: str, status: str | None = None,
            error: Rejected | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "result": result, "status": status}
    if error is not None:
        body["error"] = {"code": error.code, "reason": error.reason, "message": error.message,
                         "fields": error.fields}
        if error.next_attempt_date is not None:
            body["error"]["next_attempt_date"] = error.next_attempt_date.isoformat()
    return body


def sync(actor: Actor, events: Sequence[Any]) -> list[dict[str, Any]]:
    """Apply a batch from the phone's outbox; one result per event, in the order sent.

    Each event is validated on its own; duplicates (stored earlier, or twice in this batch) are
    answered ``duplicate`` and never stored again, but an event id used before for another order or
    action is rejected (it is not a replay); the others are applied in device-time order.
    Pickups and deliveries that the status machine, the identity check and the proof accept are
    planned in memory and written together, in one transaction (``_apply_together``); every other
    event, and any the plan would refuse or that meets a concurrent change, is applied in a
    transaction of its own (``_apply``), so a refused one never undoes or stops the others.
    """
    require_courier(actor)
    now = utcnow()
    skew = dt.timedelta(seconds=current_app.config["MAX_CLOCK_SKEW_S"])
    results: list[dict[str, Any] | None] = [None] * len(events)
    first_of: dict[str, int] = {}
    loaded: dict[int, dict[str, Any]] = {}
    twins: dict[int, int] = {}
    todo: list[tuple[int, dict[str, Any]]] = []
    for i, raw in enumerate(events):
        event_id = raw.get("event_id") if isinstance(raw, dict) else None
        event_id = event_id if isinstance(event_id, str) and len(event_id) <= 64 else None
        if not isinstance(raw, dict):
            results[i] = _result(None, "rejected",
                                 error=Rejected("invalid", "An event must be a JSON object.", None,
                                                "malformed"))
            continue
        try:
            data = (LEAN and lean_event(raw)) or _EVENT_SCHEMA.load(raw)
        except ValidationError as exc:
            fields = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
            results[i] = _result(event_id, "rejected", error=Rejected(
                "invalid", "The event is incomplete or malformed: " + _summary(fields), fields, "malformed"))
            continue
        if data["event_id"] in first_of:
            j = first_of[data["event_id"]]
            if _same_event(data, loaded[j]):
                twins[i] = j
            else:  # one event id for two different events in one batch: the first one has it
                results[i] = _reused(data, "order" if _item(data) != _item(loaded[j]) else "action")
            continue
        first_of[data["event_id"]] = i
        loaded[i] = data
        ahead = data["device_time"] - now
        if ahead > skew:
            results[i] = _result(data["event_id"], "rejected", error=Rejected(
                "clock_skew",
                f"The phone's clock is {int(ahead.total_seconds())} s ahead of the server's (at most "
                f"{int(skew.total_seconds())} s): set its date and time automatically, then record the event "
                "again.", {"device_time": ["In the future."]}))
            continue
        todo.append((i, data))
    one_statement = _one_statement(todo)
    found, stored = _batch_orders(actor, todo, lock=one_statement)
    todo.sort(key=lambda pair: (pair[1]["device_time"], pair[0]))
    fresh: list[tuple[int, dict[str, Any]]] = []
    for i, data in todo:
        seen = stored.get(data["event_id"])
        if seen is not None:
            results[i] = _duplicate(actor, data, seen, [])
        else:
            fresh.append((i, data))
    careful = _apply_together(actor, fresh, now, results, found, one_statement)
    if careful:
        ids = route_ids(actor)
        for i, data in careful:
            results[i] = _apply(actor, ids, data, now)
    for i, j in twins.items():  # sent twice in one batch: answered like the first
        first = results[j] or {}
        results[i] = dict(first) if first.get("result") == "rejected" else _result(
            first.get("event_id"), "duplicate", first.get("status"))
    counts = Counter(r["result"] for r in results if r)
    # On the request's access line (a line of its own cost ~0.06 ms of a one-event request)
    logs.note("courier sync", user=actor.user_id, events=len(events), applied=counts["applied"],
              duplicate=counts["duplicate"], rejected=counts["rejected"])
    return [r for r in results if r is not None]


def _summary(fields: dict[str, Any]) -> str:
    return ", ".join(sorted(fields)) or "the event"


class _Seen(NamedTuple):
    """An event id already stored: its order's item id, current status and route, who recorded the
    event, and what it recorded (the event's status and reason)."""

    item_id: str
    status: Status
    user_id: int | None
    route_id: int | None
    event_status: Status | str  # a Status as read (a plain value is compared alike)
    event_reason: str | None


# The statuses the event of each action records (its last step, ``_steps``); a correction is known
# by its reason.
_RECORDS = {"pickup_confirmed": {S.HANDED_TO_COURIER.value, S.PICKUP_SCHEDULED.value},
            "delivered": {S.DELIVERED.value}, "failed_attempt": {S.FAILED_ATTEMPT.value},
            "dossier_picked_up": {S.PICKED_UP.value}}


def _same_action(action: str, status: Any, reason: str | None) -> bool:
    """Whether a stored event (its status and reason) is what ``action`` records: a replay."""
    if action == CORRECTION or reason == CORRECTION:
        return action == CORRECTION and reason == CORRECTION
    return getattr(status, "value", status) in _RECORDS[action]


_STORED = (sa.select(OrderEvent.__table__.c.client_event_id, DeliveryOrder.__table__.c.item_id,
                     DeliveryOrder.__table__.c.status, OrderEvent.__table__.c.actor_user_id,
                     DeliveryOrder.__table__.c.route_id, OrderEvent.__table__.c.status_to,
                     OrderEvent.__table__.c.reason)
           .join_from(OrderEvent.__table__, DeliveryOrder.__table__,
                      DeliveryOrder.__table__.c.id == OrderEvent.__table__.c.order_id)
           .where(OrderEvent.__table__.c.client_event_id.in_(sa.bindparam("b_ids", expanding=True))))


def _stored_events(event_ids: list[str]) -> dict[str, _Seen]:
    """Events already stored, by client event id: their order's item id, current status and route,
    and who recorded the event."""
    found: dict[str, _Seen] = {}
    if not event_ids:
        return found
    conn = db.session.connection()  # plain Core: no ORM statement layer for a look-up by key
    for start in range(0, len(event_ids), 500):
        for event_id, *seen in conn.execute(_STORED, {"b_ids": event_ids[start:start + 500]}):
            found[event_id] = _Seen(*seen)
    return found


def _duplicate(actor: Actor, data: dict[str, Any], seen: _Seen,
               route_ids_: list[int]) -> dict[str, Any]:
    if seen.user_id != actor.user_id and seen.route_id not in route_ids_:  # someone else's event id
        return _result(data["event_id"], "rejected", error=Rejected(
            "not_your_route", f"{s10.normalize(data['item_id'])} is not on your route"))
    if seen.item_id != s10.normalize(data["item_id"]):
        return _reused(data, "order")
    if not _same_action(data["action"], seen.event_status, seen.event_reason):
        # Not a replay: answering "duplicate" would tell the phone that this other event is stored.
        return _reused(data, "action")
    return _result(data["event_id"], "duplicate", seen.status.value)


def _item(data: dict[str, Any]) -> str:
    return s10.normalize(data["item_id"])


def _same_event(data: dict[str, Any], first: dict[str, Any]) -> bool:
    """Whether two events sent with one event id in a batch are one event sent twice."""
    return _item(data) == _item(first) and data["action"] == first["action"]


def _reused(data: dict[str, Any], what: str) -> dict[str, Any]:
    return _result(data["event_id"], "rejected", error=Rejected(
        "invalid", f"This event_id was already used for another {what}; every event needs its own.",
        {"event_id": [f"Already used for another {what}."]}, "event_id_reused"))


def _apply(actor: Actor, route_ids_: list[int], data: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    """One event in its own transaction: applied, or rejected with the reason (nothing written)."""
    event_id = data["event_id"]
    item_id = s10.normalize(data["item_id"])
    try:
        order = db.session.scalar(sa.select(DeliveryOrder).where(
            DeliveryOrder.item_id == item_id, DeliveryOrder.route_id.in_(route_ids_ or [-1]))
            .execution_options(populate_existing=True))
        if order is None:
            raise Rejected("not_your_route", f"{item_id} is not on your route")
        if data["action"] == CORRECTION:
            status = _correct(actor, order, data, now)
        else:
            status = _record(actor, order, data)
        db.session.commit()
    except Rejected as exc:
        db.session.rollback()
        if (raced := _stored_meanwhile(actor, data, route_ids_)) is not None:
            return raced
        # Another route's order: say nothing about it, not even whether it exists.
        status = None if exc.code == "not_your_route" else _current_status(item_id)
        return _result(event_id, "rejected", status, exc)
    except (Conflict, Forbidden, NotFound) as exc:  # the status machine, or a concurrent change
        db.session.rollback()
        if (raced := _stored_meanwhile(actor, data, route_ids_)) is not None:
            return raced
        return _result(event_id, "rejected", _current_status(item_id),
                       Rejected("transition", exc.message, None, "status_not_allowed"))
    except IntegrityError:  # the same event_id stored meanwhile by a concurrent request
        db.session.rollback()
        if (raced := _stored_meanwhile(actor, data, route_ids_)) is None:
            raise
        return raced
    metrics.courier_event_applied(status.value)
    return _result(event_id, "applied", status.value)


def _stored_meanwhile(actor: Actor, data: dict[str, Any], route_ids_: list[int]) -> dict[str, Any] | None:
    """After a refusal (rolled back): the answer for an event a concurrent copy of the batch stored
    meanwhile, or None. The copy that got in first moved the order on, so this one failed the status
    machine (it read the moved order), the compare-and-set (PostgreSQL: its UPDATE waited on the row
    lock until the winner committed), a correction's "already corrected" check, or the unique event
    id; the winner's event is visible now, in a new transaction, and this copy is its replay."""
    seen = _stored_events([data["event_id"]]).get(data["event_id"])
    return None if seen is None else _duplicate(actor, data, seen, route_ids_)


def _current_status(item_id: str) -> str | None:
    status = db.session.scalar(sa.select(DeliveryOrder.status).where(DeliveryOrder.item_id == item_id))
    return status.value if status else None


# --- writing many events at once -----------------------------------------------------------------

# Actions whose whole effect can be planned from the order alone: status steps, proof, learnt position.
# Failed attempts (attempt counts, the next day's capacity) and corrections go one by one.
_TOGETHER = frozenset({"pickup_confirmed", "delivered", "dossier_picked_up"})
_EVENTS = OrderEvent.__table__
# executemany with RETURNING (one INSERT of many VALUES): the courier's own rows by their event id.
_INSERT_EVENTS = sa.insert(_EVENTS).returning(_EVENTS.c.client_event_id, _EVENTS.c.id)
_INSERT_PROOFS = sa.insert(DeliveryProof.__table__)
_ORDERS = DeliveryOrder.__table__
# Compare-and-set, one row per order (executemany): the status the plan started from, to its last one.
_MOVE_ORDERS = (sa.update(_ORDERS)
                .where(_ORDERS.c.id == sa.bindparam("b_id"), _ORDERS.c.status == sa.bindparam("b_from"))
                .values(status=sa.bindparam("b_to"), updated_at=sa.bindparam("b_at")))


_FILES = ProofFile.__table__


class _Order:
    """An order as a batch plans it: a plain copy of the columns the plan reads (Core, not the ORM:
    nothing to build, track or expire; the one-by-one path reads its orders through the ORM)."""

    id: int
    item_id: str
    status: Status
    direction: Direction
    created_at: dt.datetime
    dossier_delivered_at: dt.datetime | None
    recipient_name: str
    authorised_name: str | None
    recipient_id_number: str | None
    authorised_id_number: str | None
    route_id: int | None
    commune_id: int
    province_id: int
    address_detail: str
    collect_vnd: int
    postage_due_vnd: int
    payer: Payer

    def __init__(self, row: Any) -> None:
        self.__dict__.update(row)


_ORDER_COLUMNS = [_ORDERS.c[name] for name in _Order.__annotations__]
# The batch's orders on the courier's routes, read fresh, each with the batch's event ids already stored
# on it (a phone's replays): one round trip for what took three (the courier's routes, the stored
# events, the orders). Built once: no per-request statement building.
_SEEN_COLUMNS = (OrderEvent.__table__.c.client_event_id,
                 OrderEvent.__table__.c.status_to.label("seen_status"),
                 OrderEvent.__table__.c.reason.label("seen_reason"))
_BATCH_ORDERS = (
    sa.select(*_ORDER_COLUMNS, *_SEEN_COLUMNS)
    .outerjoin(OrderEvent.__table__, sa.and_(
        OrderEvent.__table__.c.order_id == _ORDERS.c.id,
        OrderEvent.__table__.c.client_event_id.in_(sa.bindparam("b_events", expanding=True))))
    .where(_ORDERS.c.item_id.in_(sa.bindparam("b_items", expanding=True)),
           _ORDERS.c.route_id.in_(_ROUTE_IDS.with_only_columns(_ROUTES.c.id).order_by(None)
                                  .scalar_subquery()))
    .order_by(_ORDERS.c.id))
# The same, locking the order (FOR NO KEY UPDATE, as its compare-and-set would): one event written in
# one statement (PostgreSQL, ``_write_one_order``) looks for the files sent before it in that same
# statement, so a photo's upload racing the event must wait for this lock, or this read for the
# upload's (store_file): the statement then sees every upload committed before the lock.
_BATCH_ORDERS_LOCKED = _BATCH_ORDERS.with_for_update(key_share=True, of=_ORDERS)
# The same for one event (the phone's usual sync): equalities instead of expanding IN lists, whose
# rendering SQLAlchemy redoes at every execution; run as the driver's SQL (``db.DriverSQL``, below).
_BATCH_ONE_SELECT = (
    sa.select(*_ORDER_COLUMNS, *_SEEN_COLUMNS)
    .outerjoin(OrderEvent.__table__, sa.and_(
        OrderEvent.__table__.c.order_id == _ORDERS.c.id,
        OrderEvent.__table__.c.client_event_id == sa.bindparam("b_event")))
    .where(_ORDERS.c.item_id == sa.bindparam("b_item"),
           _ORDERS.c.route_id.in_(_ROUTE_IDS.with_only_columns(_ROUTES.c.id).order_by(None)
                                  .scalar_subquery()))
    .order_by(_ORDERS.c.id))


def _one_statement(todo: Todo) -> bool:
    """Whether this batch can be written in one statement (``_write_one_order``): one pickup or
    delivery that lists no files, on PostgreSQL."""
    return (len(todo) == 1 and todo[0][1]["action"] in _TOGETHER and not todo[0][1].get("files")
            and db.session.get_bind().dialect.name == "postgresql")


def _batch_orders(actor: Actor, todo: Todo, lock: bool) -> tuple[dict[str, _Order],
                                                     dict[str, _Seen]]:
    """The batch's orders on the courier's routes by item id, and the batch's events already stored on
    them (as ``_stored_events`` gives them; recorded on the courier's own route, so never someone
    else's). An event id stored on another order is not seen here: writing it again breaks the unique
    event id, and the event goes one by one (``_apply``), which answers it as ``_stored_events`` would."""
    found: dict[str, _Order] = {}
    stored: dict[str, _Seen] = {}
    if not todo:
        return found, stored
    rows: Iterable[Any]
    if LEAN and len(todo) == 1:
        rows = (_BATCH_ONE_LOCKED if lock else _BATCH_ONE).rows(db.session.connection(), {
            "b_item": s10.normalize(todo[0][1]["item_id"]), "b_event": todo[0][1]["event_id"],
            "b_user": actor.user_id})
    else:
        rows = db.session.connection().execute(_BATCH_ORDERS_LOCKED if lock else _BATCH_ORDERS, {
            "b_items": sorted({s10.normalize(d["item_id"]) for _, d in todo}),
            "b_events": [d["event_id"] for _, d in todo], "b_user": actor.user_id}).mappings()
    for row in rows:
        order = found.get(row["item_id"])
        if order is None:  # one row per stored event of the order (a replay), else one
            order = found[row["item_id"]] = _Order(row)
        if row["client_event_id"] is not None:
            stored[row["client_event_id"]] = _Seen(order.item_id, order.status, actor.user_id, order.route_id,
                                                   row["seen_status"], row["seen_reason"])
    return found, stored


class _Raced(Exception):
    """The database is not as the plan read it (a concurrent change): apply the events one by one."""


@dataclass
class _Plan:
    """What a batch writes: event rows in device-time order, and the events applied with their status."""

    events: list[dict[str, Any]] = field(default_factory=list)
    applied: list[tuple[int, dict[str, Any], _Order, Status]] = field(default_factory=list)
    proofs: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (applied index, values)
    moves: dict[int, tuple[_Order, Status]] = field(default_factory=dict)  # order id: (order, from)
    one_statement: bool = False  # written by _write_one_order (the batch read locked its order)


Todo = list[tuple[int, dict[str, Any]]]  # (index in the batch, validated event)


def _apply_together(actor: Actor, fresh: Todo, now: dt.datetime, results: list[dict[str, Any] | None],
                    found: dict[str, _Order], one_statement: bool = False) -> Todo:
    """Apply the pickups and deliveries of ``fresh`` (in device-time order) in one transaction, with
    set-based writes: the orders read once, one compare-and-set UPDATE per order, the events, proofs
    and file links inserted together. Fills ``results`` for them and returns the events left to
    ``_apply``: other actions, every later event of their orders, and any the plan refuses (``_apply``
    says why, with the same words). When the database has moved meanwhile (a concurrent copy of the
    batch, another writer), nothing of the plan is kept and every event is left to ``_apply``."""
    if not fresh or all(data["action"] not in _TOGETHER for _, data in fresh):
        return fresh
    plan, careful, blocked = _Plan(one_statement=one_statement), [], set()
    for i, data in fresh:
        order = found.get(s10.normalize(data["item_id"]))
        if order is not None and order.id not in blocked and data["action"] in _TOGETHER:
            before = order.status
            try:
                _plan_event(actor, order, i, data, now, plan)
            except (Rejected, machine.TransitionRefused):
                pass
            else:
                plan.moves.setdefault(order.id, (order, before))
                continue
        careful.append((i, data))
        if order is not None:
            blocked.add(order.id)  # its later events follow it one by one, in order
    if not plan.applied:
        return careful
    try:
        _write_plan(plan, now)
        db.session.commit()
    except (_Raced, IntegrityError, OperationalError):  # OperationalError: a deadlock, on PostgreSQL
        db.session.rollback()
        return fresh
    statuses: Counter[str] = Counter()
    for i, data, _order, status in plan.applied:
        results[i] = _result(data["event_id"], "applied", status.value)
        statuses[status.value] += 1
    for status_value, n in statuses.items():
        metrics.courier_event_applied(status_value, n)
    return careful


def _plan_event(actor: Actor, order: _Order, i: int, data: dict[str, Any], now: dt.datetime,
                plan: _Plan) -> None:
    """Check one event against the order as planned so far and add its rows to ``plan``; raises
    (nothing added) when the status machine or the identity check refuses it."""
    _check_device_time(order, data, now)
    steps = _steps(order, data["action"])
    status, results_started = order.status, order.dossier_delivered_at is not None
    for step in steps:
        if step not in orders.ROLE_TARGETS[Role.COURIER]:
            raise Rejected("transition", f"Your role cannot set the status {step.value}.", None,
                           "status_not_allowed")
        machine.check(order.direction, status, step, results_started=results_started)
        status = step
    proof = _proof(order, data)
    device_time = data["device_time"].astimezone(dt.UTC)
    common = {"order_id": order.id, "device_time": device_time, "latitude": data.get("latitude"),
              "longitude": data.get("longitude"), "accuracy_m": data.get("accuracy_m"), "server_time": now,
              "reason": None, "route_id": None, **orders._actor_cols(actor)}
    previous = order.status
    for step in steps:
        plan.events.append({**common, "status_from": previous, "status_to": step, "note": None,
                            "client_event_id": None})
        previous = step
    plan.events[-1].update(note=data.get("note"), client_event_id=data["event_id"])
    plan.applied.append((i, data, order, steps[-1]))
    if proof is not None:
        plan.proofs.append((len(plan.applied) - 1, {"order_id": order.id, **proof}))
    order.status = steps[-1]  # as the next event of this order finds it


def _write_plan(plan: _Plan, now: dt.datetime) -> None:
    from delivery_service.geo.services import plan_learning, write_learning

    conn = db.session.connection()
    # What the couriers' positions teach, in device-time order, as one by one would: one pass. The
    # orders as the batch read them (units and address): the learning reads no order again.
    learning = plan_learning([(order.id, data["latitude"], data["longitude"], data.get("accuracy_m"))
                              for _, data, order, status in plan.applied if status is S.DELIVERED
                              and None not in (data.get("latitude"), data.get("longitude"))],
                             {order.id: order for _, _, order, _ in plan.applied})
    # Orders by id: two batches moving the same orders lock them in the same order (no deadlock).
    moves = [{"b_id": oid, "b_from": before, "b_to": order.status, "b_at": now}
             for oid, (order, before) in sorted(plan.moves.items())]
    if plan.one_statement and len(plan.applied) == 1 and len(plan.proofs) <= 1:
        _write_one_order(conn, plan, moves[0], learning)
        return
    if (LEAN and conn.dialect.name == "sqlite" and len(plan.applied) == 1 and len(plan.proofs) <= 1
            and not plan.applied[0][1].get("files")):
        _write_one_order_sqlite(conn, plan, moves[0], learning)
        return
    pks = _write_many(conn, plan, moves)
    if learning is not None:
        write_learning(learning)
    # After the compare-and-set: the files uploaded before it committed are seen (store_file).
    _attach_files_together(conn, [(o.id, data, pks[data["event_id"]]) for _, data, o, _ in plan.applied])


def _write_many(conn: sa.Connection, plan: _Plan, moves: list[dict[str, Any]]) -> dict[str, int]:
    """The plan's compare-and-sets, events and proofs, each kind in one executemany; the events' ids
    by their client event id."""
    if conn.execute(_MOVE_ORDERS, moves).rowcount != len(moves):
        raise _Raced()
    pks: dict[str, int] = {r.client_event_id: r.id for r in conn.execute(_INSERT_EVENTS, plan.events)
                           if r.client_event_id is not None}
    by_kind: dict[ProofKind, list[dict[str, Any]]] = defaultdict(list)  # same columns in each executemany
    for k, values in plan.proofs:
        by_kind[values["kind"]].append({**values, "event_id": pks[plan.applied[k][1]["event_id"]]})
    for rows in by_kind.values():
        conn.execute(_INSERT_PROOFS, rows)
    return pks


def _write_one_order(conn: sa.Connection, plan: _Plan, move: dict[str, Any],
                     learning: Learning | None) -> None:
    """PostgreSQL, one event of one order (the phone's usual sync), listing no files: its
    compare-and-set, events, proof, the files waiting for it (sent before it, by its event id), the
    learnt place and the order's location in one statement (data-modifying CTEs:
    ``_one_order_statement``) instead of six round trips. The files are seen as of the statement's
    start; the batch read locked the order before, so an upload racing it waits for its lock, or
    committed before this statement (store_file). If the compare-and-set missed (the order moved
    meanwhile), everything the statement wrote is rolled back (``_Raced``)."""
    from delivery_service.geo.services import learning_params, update_known_places
    from delivery_service.orders import watch

    event_columns = tuple(plan.events[0])
    # The values all the event rows share are one parameter each: psycopg parses a statement's
    # placeholders once only for statements of at most 50 parameters.
    shared = tuple(c for c in event_columns if all(row[c] == plan.events[0][c] for row in plan.events))
    # created_at: a Python-side column default, which a statement compiled to text does not apply.
    proof = {**plan.proofs[0][1], "created_at": utcnow()} if plan.proofs else None
    proof_columns = tuple(sorted(c for c in proof if c != "order_id")) if proof is not None else None
    learnt = None
    if learning is not None and [loc["order_id"] for loc in learning.locations] == [move["b_id"]]:
        learnt = learning_params(learning)
    params: dict[str, Any] = dict(move)
    params.update((f"e_{c}", plan.events[0][c]) for c in shared)
    for k, row in enumerate(plan.events):
        params.update((f"e{k}_{c}", row[c]) for c in event_columns if c not in shared)
    if proof is not None:
        params.update((f"p_{c}", proof[c]) for c in proof_columns or ())
        params["p_event"] = plan.applied[plan.proofs[0][0]][1]["event_id"]
    if learnt is not None:
        params.update(learnt)
    stmt = _one_order_statement(event_columns, shared, len(plan.events), proof_columns, learnt is not None)
    rows = conn.execute(stmt, params).all()
    if len(rows) != len(plan.events) or rows[0].moved != 1:  # the order moved meanwhile
        raise _Raced()
    watch.note_written(conn)  # a SELECT with INSERTs in it: the event-log watch cannot see them
    if learning is not None:
        if learnt is None:
            from delivery_service.geo.services import write_learning

            write_learning(learning)
        else:
            update_known_places(learning, {rows[0].new_place} - {None})


_BATCH_ONE = DriverSQL(_BATCH_ONE_SELECT)
_BATCH_ONE_LOCKED = DriverSQL(_BATCH_ONE_SELECT.with_for_update(key_share=True, of=_ORDERS))
LEAN = True  # the fast paths for the usual sync (tests turn them off to compare with the general path)
_MOVE_ONE = DriverSQL(_MOVE_ORDERS)
_PROOF_COLUMNS = tuple(c.name for c in DeliveryProof.__table__.c if c.name != "id")
_INSERT_PROOF_ONE = DriverSQL(sa.insert(DeliveryProof.__table__).values(
    {c: sa.bindparam(f"p_{c}") for c in _PROOF_COLUMNS}))
# _attach_files_together for one event that lists no files: those sent before it by its event id.
_ATTACH_ONE = DriverSQL(sa.update(_FILES).where(
    _FILES.c.order_id == sa.bindparam("b_order"), _FILES.c.attached_event_id.is_(None),
    _FILES.c.client_event_id == sa.bindparam("b_event")).values(attached_event_id=sa.bindparam("b_pk")))
_EVENTS_SQL: dict[tuple[tuple[str, ...], int], DriverSQL] = {}


def _events_sql(columns: tuple[str, ...], n: int) -> DriverSQL:
    """n event rows in one INSERT … VALUES, by shape (SQLite: no RETURNING, which makes SQLite build a
    temporary table; the caller reads the last row's id as the cursor's lastrowid)."""
    got = _EVENTS_SQL.get((columns, n))
    if got is None:
        got = _EVENTS_SQL.setdefault((columns, n), DriverSQL(
            # Typed: only the first row's parameters take their columns' types by themselves.
            sa.insert(_EVENTS).values([{c: sa.bindparam(f"e{k}_{c}", type_=_EVENTS.c[c].type)
                                        for c in columns} for k in range(n)])))
    return got


def _write_one_order_sqlite(conn: sa.Connection, plan: _Plan, move: dict[str, Any],
                            learning: Learning | None) -> None:
    """SQLite, one event of one order that lists no files (the phone's usual sync): what
    ``_write_many`` and ``_attach_files_together`` write, as the driver's SQL compiled once
    (``db.DriverSQL``), the event rows in one multi-row INSERT; the learning as the general path writes
    it. The same rows as the general path (tests/test_sync_lean.py compares them)."""
    from delivery_service.geo.services import write_learning
    from delivery_service.orders import watch

    if _MOVE_ONE.execute(conn, move).rowcount != 1:
        raise _Raced()
    columns = tuple(plan.events[0])
    params = {f"e{k}_{c}": row[c] for k, row in enumerate(plan.events) for c in columns}
    event_id = plan.applied[0][1]["event_id"]
    # The event with the phone's id is the plan's last row (_plan_event: the implied steps come first),
    # and a multi-row INSERT inserts its rows in order: its id is the rowid of the last row inserted
    # (an INTEGER PRIMARY KEY is the rowid; the table's triggers insert nothing), read as the cursor's
    # lastrowid, not by RETURNING (~0.05 ms: SQLite builds a temporary table, as intake found).
    if plan.events[-1]["client_event_id"] != event_id:  # never, by construction: fail loudly
        raise AssertionError("the event with the phone's id is not the last row")
    pk = _events_sql(columns, len(plan.events)).execute(conn, params).lastrowid
    watch.note_written(conn)  # driver SQL: the event-log watch sees SQLAlchemy's statements only
    if plan.proofs:
        proof = {"receiver_kind": None, "receiver_name": None, "receiver_relation": None, "id_last4": None,
                 "amount_collected_vnd": None, "documents": None, "sealed": None, "fees_collected_vnd": None,
                 **plan.proofs[0][1], "event_id": pk, "created_at": utcnow()}
        _INSERT_PROOF_ONE.execute(conn, {f"p_{c}": proof[c] for c in _PROOF_COLUMNS})
    if learning is not None:
        write_learning(learning)
    # After the compare-and-set: the files uploaded before it committed are seen (store_file).
    _ATTACH_ONE.execute(conn, {"b_order": move["b_id"], "b_event": event_id, "b_pk": pk})


_ONE_ORDER: dict[tuple[Any, ...], Any] = {}  # by shape: built once, so compiled once


def _one_order_statement(event_columns: tuple[str, ...], shared: tuple[str, ...], n_events: int,
                         proof_columns: tuple[str, ...] | None, learns: bool) -> Any:
    """The statement of ``_write_one_order`` for this shape of plan. Kept under psycopg's 4 KB limit
    for caching a statement's parsed placeholders (plain VALUES, which type their parameters by
    their columns, rather than INSERT … SELECT with casts)."""
    key = (event_columns, shared, n_events, proof_columns, learns)
    stmt = _ONE_ORDER.get(key)
    if stmt is not None:
        return stmt
    from delivery_service.geo.services import learning_ctes

    moved = _MOVE_ORDERS.returning(_ORDERS.c.id).cte("moved")
    # Inserted whatever the compare-and-set did: when it missed, the caller rolls all of it back.
    events = (sa.insert(_EVENTS).values([{c: sa.bindparam(f"e_{c}" if c in shared else f"e{k}_{c}")
                                          for c in event_columns} for k in range(n_events)])
              .returning(_EVENTS.c.id, _EVENTS.c.client_event_id).cte("events"))
    columns: list[Any] = [events.c.id, events.c.client_event_id,
                          sa.select(sa.func.count()).select_from(moved).scalar_subquery().label("moved")]
    # The files sent before the event, by its event id (one event with an id: see _write_plan).
    files = (sa.update(_FILES).where(_FILES.c.order_id == sa.bindparam("b_id"),
                                     _FILES.c.attached_event_id.is_(None),
                                     _FILES.c.client_event_id == events.c.client_event_id)
             .values(attached_event_id=events.c.id).cte("files"))
    ctes: list[Any] = [files]
    if proof_columns is not None:
        proof_event = sa.select(events.c.id).where(events.c.client_event_id == sa.bindparam("p_event"))
        ctes.append(sa.insert(DeliveryProof.__table__).values(
            {"event_id": proof_event.scalar_subquery(), "order_id": sa.bindparam("b_id"),
             **{c: sa.bindparam(f"p_{c}") for c in proof_columns}}).cte("proof"))
    if learns:
        new_place, location = learning_ctes("b_id")
        ctes += [new_place, location]
        columns.append(sa.select(new_place.c.address_key).scalar_subquery().label("new_place"))
    stmt = sa.select(*columns).add_cte(*ctes).order_by(events.c.id)
    # SQLAlchemy compiles a multi-row INSERT at every execution (it does not cache it): compiled once
    # here into text with the same typed parameters, which it caches like any text.
    # (the psycopg2 dialect renders no casts: the executing dialect adds its own to the typed ones)
    from sqlalchemy.dialects.postgresql import psycopg2

    compiled = stmt.compile(dialect=psycopg2.dialect(paramstyle="named"))
    sql = str(compiled).replace("::", "\\:\\:")  # its few casts (:name::JSON) escaped for text()
    text = sa.text(sql).bindparams(
        *[sa.bindparam(name, type_=bind.type) for bind, name in compiled.bind_names.items()])
    return _ONE_ORDER.setdefault(key, text)


# Files uploaded before their event, unattached: named by the event's id, or listed by the event.
_WAITING_FILES = sa.select(_FILES.c.id, _FILES.c.order_id, _FILES.c.client_event_id).where(
    _FILES.c.order_id.in_(sa.bindparam("b_orders", expanding=True)), _FILES.c.attached_event_id.is_(None),
    _FILES.c.client_event_id.in_(sa.bindparam("b_events", expanding=True)))
_WAITING_FILES_LISTED = sa.select(_FILES.c.id, _FILES.c.order_id, _FILES.c.client_event_id).where(
    _FILES.c.order_id.in_(sa.bindparam("b_orders", expanding=True)), _FILES.c.attached_event_id.is_(None),
    sa.or_(_FILES.c.client_event_id.in_(sa.bindparam("b_events", expanding=True)),
           _FILES.c.id.in_(sa.bindparam("b_files", expanding=True))))


def _attach_files_together(conn: sa.Connection, applied: list[tuple[int, dict[str, Any], int]]) -> None:
    """``_attach_files`` for many events: one look-up, and an update only for the files found."""
    if not applied:
        return
    event_ids = [data["event_id"] for _, data, _ in applied]
    listed = [f for _, data, _ in applied for f in data.get("files") or []]
    waiting = conn.execute(_WAITING_FILES_LISTED if listed else _WAITING_FILES, {
        "b_orders": sorted({order_id for order_id, _, _ in applied}), "b_events": event_ids,
        "b_files": listed}).all()
    links = []
    for f in waiting:
        for order_id, data, event_pk in applied:  # the first event that claims it, as one by one would
            claims = f.client_event_id == data["event_id"] or f.id in (data.get("files") or [])
            if f.order_id == order_id and claims:
                links.append({"b_file": f.id, "b_event": event_pk})
                break
    if links:
        files = ProofFile.__table__
        conn.execute(files.update().where(files.c.id == sa.bindparam("b_file"))
                     .values(attached_event_id=sa.bindparam("b_event")), links)


def _steps(order: DeliveryOrder | _Order, action: str) -> list[Status]:
    """The statuses an action moves the order through; the last one is the courier's event."""
    status, result_leg = order.status, on_result_leg(order)
    if action == "pickup_confirmed":
        return [S.HANDED_TO_COURIER] if result_leg else [S.PICKUP_SCHEDULED]
    if action in ("delivered", "failed_attempt") and result_leg:
        target = S.DELIVERED if action == "delivered" else S.FAILED_ATTEMPT
        # Out for delivery is implied: the courier records what happened at the door.
        return [S.OUT_FOR_DELIVERY, target] if status in (S.HANDED_TO_COURIER, S.FAILED_ATTEMPT) else [target]
    if action in ("dossier_picked_up", "failed_attempt") and not result_leg:
        target = S.PICKED_UP if action == "dossier_picked_up" else S.FAILED_ATTEMPT
        return [S.PICKUP_SCHEDULED, target] if status in (S.ASSIGNED, S.FAILED_ATTEMPT) else [target]
    if action == "delivered":
        return [S.DELIVERED]  # a dossier still to collect: the machine refuses it, with the reason
    return [S.PICKED_UP]


def _proof(order: DeliveryOrder | _Order, data: dict[str, Any]) -> dict[str, Any] | None:
    """The proof row's values for a delivery or a dossier pickup (None for other actions); raises
    Rejected when the identity check fails."""
    action = data["action"]
    proof: dict[str, Any] | None = None
    if action == "delivered":
        _check_amount(order, data)
        kind, result, last4 = _check_identity(order, data)
        receiver = data["receiver"]
        default_name = (order.recipient_name if receiver["kind"] is ReceiverKind.RECIPIENT
                        else order.authorised_name)
        proof = {"kind": ProofKind.DELIVERED, "receiver_kind": receiver["kind"],
                 "receiver_name": receiver.get("name") or default_name,
                 "receiver_relation": receiver.get("relation"), "id_check_kind": kind,
                 "id_check_result": result, "id_last4": last4,
                 "amount_collected_vnd": data.get("amount_collected_vnd")}
    elif action == "dossier_picked_up":
        proof = {"kind": ProofKind.PICKED_UP, "id_check_kind": IdCheckKind.NONE,
                 "id_check_result": IdCheckResult.NOT_CHECKED, "documents": data["documents"],
                 "sealed": data["sealed"], "fees_collected_vnd": data.get("fees_collected_vnd")}
    return proof


def _check_amount(order: DeliveryOrder | _Order, data: dict[str, Any]) -> None:
    """A delivery whose amount collected differs from what is due (``to_collect``) must say why in its
    note (a citizen exempt from postage, paid at the counter, short of cash…): refused otherwise. The
    app checks it before saving, offline too (it has what is due), so its outbox never holds one; a
    delivery that states no amount (older clients, scripts) is recorded as not stated."""
    amount, due = data.get("amount_collected_vnd"), to_collect(order)
    if amount is None or amount == due or (data.get("note") or "").strip():
        return
    message = f"Collected {amount:,} VND but {due:,} VND is due: say why in the note, or correct the amount."
    raise Rejected("invalid", message.replace(",", "."), {"amount_collected_vnd": [
        f"Differs from the {due:,} VND due; give the reason in note.".replace(",", ".")]}, "amount_mismatch")


def _check_device_time(order: DeliveryOrder | _Order, data: dict[str, Any], now: dt.datetime) -> None:
    """An event timed before its order existed (a phone's clock set years back) is refused: the
    reports would count it on that day."""
    if (problem := orders.device_time_problem(data["device_time"], order.created_at, now)) is not None:
        ahead = data["device_time"] > now  # else before the order was created
        raise Rejected("invalid", problem, {"device_time": [problem]},
                       "clock_skew" if ahead else "before_order")


def _check_attempt_due(order: DeliveryOrder, data: dict[str, Any]) -> None:
    """A failed attempt counts once per planned run day: on an order waiting for its next attempt's
    day (``next_attempt_due``), another failed attempt before that day is refused. A delivery is not:
    the citizen who comes home an hour later still gets their papers."""
    if order.status is not S.FAILED_ATTEMPT:
        return
    attempt = last_attempts([order.id]).get(order.id)
    if attempt is None:
        return
    due = next_attempt_due(order.run_date, attempt)
    if local_moment(data["device_time"]).date() < due:
        message = f"The next attempt is planned for {due:%d/%m/%Y}."
        raise Rejected("transition", message + " A failed attempt counts once per day; a delivery is still "
                       "possible.", {"device_time": [message]}, "not_due_yet", next_attempt_date=due)


def _record(actor: Actor, order: DeliveryOrder, data: dict[str, Any]) -> Status:
    _check_device_time(order, data, utcnow())
    action = data["action"]
    if action == "failed_attempt":
        _check_attempt_due(order, data)
    proof = _proof(order, data)
    where = {"device_time": data["device_time"], "latitude": data.get("latitude"),
             "longitude": data.get("longitude"), "accuracy_m": data.get("accuracy_m")}
    steps = _steps(order, action)
    # The order was read through the courier's routes and the event id looked up by sync(): neither
    # is done again for each step.
    for step in steps[:-1]:
        orders.change_status(actor, order.item_id, step, **where, commit=False, order=order)
    reason = data.get("reason") if action == "failed_attempt" else None
    event, _ = orders.change_status(actor, order.item_id, steps[-1], **where, reason=reason,
                                    note=data.get("note"), client_event_id=data["event_id"], commit=False,
                                    order=order, replay_checked=True)
    _attach_files(order.id, event.id, data["event_id"], data.get("files") or [])
    if proof is not None:
        db.session.add(DeliveryProof(event_id=event.id, order_id=order.id, **proof))
    status = steps[-1]
    if action == "failed_attempt":
        status = _after_failure(order, data)
    db.session.flush()
    return status


def _attach_files(order_id: int, event_pk: int, client_event_id: str, file_ids: list[str]) -> None:
    """Files uploaded before their event: attach them now (by their event_id, or listed in the event)."""
    which = ProofFile.client_event_id == client_event_id
    if file_ids:
        which = sa.or_(which, ProofFile.id.in_(file_ids))
    db.session.execute(sa.update(ProofFile).where(
        ProofFile.order_id == order_id, ProofFile.attached_event_id.is_(None), which)
        .values(attached_event_id=event_pk).execution_options(synchronize_session=False))


def next_working_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def _after_failure(order: DeliveryOrder, data: dict[str, Any]) -> Status:
    """Count the failed attempts: at the limit, the order goes back (the return flow); otherwise it
    is planned on the next attempt's day."""
    count = failed_attempts([order.id]).get(order.id, 0)
    limit = rules.current().max_failed_attempts
    if count >= limit:
        target = S.RETURNED_TO_AGENCY if on_result_leg(order) else S.CANCELLED
        orders.change_status(SYSTEM, order.item_id, target, reason=RETURN_REASON,
                             note=f"{count} failed attempts (limit {limit})", commit=False)
        return target
    today = orders.local_today()
    happened = local_moment(data["device_time"]).date()
    day = data.get("next_attempt_date") or next_working_day(max(happened, today))
    if day < today:  # replayed days later: the next attempt cannot be in the past
        day = next_working_day(today)
    if day > today + dt.timedelta(days=60):
        raise Rejected("invalid", "The next attempt must be within 60 days.",
                       {"next_attempt_date": ["More than 60 days ahead."]}, "next_attempt_too_far")
    _move_to_day(order, day)
    return S.FAILED_ATTEMPT


def _move_to_day(order: DeliveryOrder, day: dt.date) -> None:
    from delivery_service.routing.services import release, reserve

    if order.route_id is None or order.run_date == day:
        return
    release(order.route_id, order.run_date)
    reserve(order.route_id, day, force=True)  # the courier promised this day: count it whatever the capacity
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id).values(run_date=day)
                       .execution_options(synchronize_session=False))


def _correct(actor: Actor, order: DeliveryOrder, data: dict[str, Any], now: dt.datetime) -> Status:
    """A new event taking the order back to where the courier's own event found it."""
    corrects = data["corrects"]
    target = db.session.scalar(sa.select(OrderEvent).where(OrderEvent.client_event_id == corrects))
    if target is None or target.order_id != order.id or target.actor_user_id != actor.user_id:
        raise Rejected("invalid", f"There is no event {corrects} of yours on {order.item_id} to correct.",
                       {"corrects": ["Not one of your events on this order."]}, "nothing_to_correct")
    if target.reason == CORRECTION or target.status_from is None:
        raise Rejected("transition", "A correction cannot itself be corrected.", None,
                       "correction_of_correction")
    if db.session.get(EventCorrection, target.id) is not None or db.session.scalar(
            sa.select(EventCorrection.event_id).where(EventCorrection.corrected_event_id == target.id)):
        raise Rejected("transition", "That event was already corrected.", None, "already_corrected")
    window = rules.current().correction_window_min
    if now > target.server_time + dt.timedelta(minutes=window):
        raise Rejected("window_closed", f"Events can only be corrected within {window} minutes of reaching "
                                        "the server; ask your supervisor to correct this one.")
    note = (data.get("note") or "").strip()
    if not note:  # the back office reads why the courier's record was wrong
        raise Rejected("invalid", "Say what was wrong with the record being corrected.",
                       {"note": ["Required for a correction."]}, "note_required")
    _check_device_time(order, data, now)
    # sync() looked the event id up; a copy storing it meanwhile fails on the unique key (_apply).
    event, _ = orders.change_status(
        actor, order.item_id, target.status_from, device_time=data["device_time"],
        latitude=data.get("latitude"), longitude=data.get("longitude"), accuracy_m=data.get("accuracy_m"),
        reason=CORRECTION, note=note[:500], client_event_id=data["event_id"], commit=False,
        correction_of=target, order=order, replay_checked=True)
    db.session.add(EventCorrection(event_id=event.id, corrected_event_id=target.id, order_id=order.id))
    if target.status_to is S.FAILED_ATTEMPT:  # no failed attempt after all: back on today's run
        today = orders.local_today()
        if order.run_date is None or order.run_date > today:
            _move_to_day(order, today)
    db.session.flush()
    return target.status_from


# --- files: photos and signatures --------------------------------------------------------------

def sniff_image(body: bytes) -> str | None:
    """The image type by content (never by the declared header): JPEG, PNG or WebP."""
    if body[:3] == b"\xff\xd8\xff" and len(body) > 4:
        return "image/jpeg"
    if body[:8] == b"\x89PNG\r\n\x1a\n" and body[12:16] == b"IHDR":
        return "image/png"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP" and body[12:15] == b"VP8":
        return "image/webp"
    return None


def store_file(actor: Actor, file_id: str, *, item_id: str, event_id: str, kind: FileKind,
               body: bytes) -> tuple[ProofFile, bool]:
    """Keep a photo or signature; attach it to its event if that has arrived. Returns
    ``(file, True)`` when stored now, ``(file, False)`` for a replay of the same upload."""
    order = own_order(actor, item_id)
    limit = current_app.config["MAX_PROOF_BYTES"]
    if len(body) > limit:
        raise PayloadTooLarge(f"The file is larger than {limit} bytes: shrink the photo before sending it.")
    if not body:
        raise InvalidInput({"body": ["The file is empty."]}, "The file is empty.")
    mime = sniff_image(body)
    if mime is None:
        raise InvalidInput({"body": ["Not a JPEG, PNG or WebP image (checked by its content)."]},
                           "Only JPEG, PNG or WebP images are accepted.")
    digest = hashlib.sha256(body).hexdigest()
    existing = db.session.get(ProofFile, file_id)
    if existing is not None:
        return _replayed(existing, order, digest), False
    event_pk = db.session.scalar(sa.select(OrderEvent.id).where(
        OrderEvent.client_event_id == event_id, OrderEvent.order_id == order.id))
    stored = ProofFile(id=file_id, order_id=order.id, client_event_id=event_id, kind=kind, mime=mime,
                       size=len(body), sha256=digest, content=body, uploaded_by_id=actor.user_id,
                       attached_event_id=event_pk)
    db.session.add(stored)
    try:
        db.session.commit()
    except IntegrityError:  # the same upload, committed meanwhile by a retry
        db.session.rollback()
        existing = db.session.get(ProofFile, file_id)
        if existing is None:
            raise
        return _replayed(existing, order, digest), False
    if event_pk is None:
        event_pk = _attach_if_recorded_meanwhile(stored, order.id)
    log.info("proof file %s (%s, %d bytes) for order %d, attached=%s", file_id, kind.value, len(body),
             order.id, event_pk is not None)
    return stored, True


def _attach_if_recorded_meanwhile(stored: ProofFile, order_id: int) -> int | None:
    """A file stored before its event: attach it if the event was recorded meanwhile (the look-up
    before the file's INSERT did not see it, and the sync may have looked for files before the file
    was committed). Behind a share lock on the order (PostgreSQL): a sync holds the order's lock from
    its first read to its commit (``_BATCH_ORDERS_LOCKED``; the compare-and-set otherwise), so
    either this waits for the sync's commit and sees its event, or the sync waits for this and sees
    the file. On SQLite the file's INSERT waited for any sync writing at the time."""
    db.session.execute(sa.select(DeliveryOrder.id).where(DeliveryOrder.id == order_id)
                       .with_for_update(read=True))
    event_pk = db.session.scalar(sa.select(OrderEvent.id).where(
        OrderEvent.client_event_id == stored.client_event_id, OrderEvent.order_id == order_id))
    if event_pk is not None:
        db.session.execute(sa.update(ProofFile).where(
            ProofFile.id == stored.id, ProofFile.attached_event_id.is_(None))
            .values(attached_event_id=event_pk).execution_options(synchronize_session=False))
    db.session.commit()
    if event_pk is not None:
        set_committed_value(stored, "attached_event_id", event_pk)
    return event_pk


def _replayed(existing: ProofFile, order: DeliveryOrder, digest: str) -> ProofFile:
    if existing.order_id != order.id or existing.sha256 != digest:
        raise Conflict("This file id was already used for another file; every file needs its own uuid.")
    return existing


# --- the back office: proof of delivery ----------------------------------------------------------

def proof_json(order: DeliveryOrder, file_url: Any = None, *, iso: bool = True) -> dict[str, Any]:
    """What the courier recorded on an order: deliveries and pickups with their proof, failed
    attempts, corrections, and the files (``file_url(item_id, file_id)`` builds their links).
    ``iso``: times as ISO 8601 text (JSON); otherwise as datetimes (the order page formats them)."""

    def when(moment: dt.datetime | None) -> Any:
        return moment.isoformat() if iso and moment is not None else moment

    events = list(db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id == order.id)
                                     .order_by(OrderEvent.id)))
    proofs = {p.event_id: p for p in db.session.scalars(
        sa.select(DeliveryProof).where(DeliveryProof.order_id == order.id))}
    corrections = dict(db.session.execute(
        sa.select(EventCorrection.corrected_event_id, EventCorrection.event_id)
        .where(EventCorrection.order_id == order.id)).all())
    files: dict[int | None, list[dict[str, Any]]] = defaultdict(list)
    rows = db.session.execute(sa.select(ProofFile.id, ProofFile.kind, ProofFile.mime, ProofFile.size,
                                        ProofFile.uploaded_at, ProofFile.attached_event_id)
                              .where(ProofFile.order_id == order.id).order_by(ProofFile.uploaded_at))
    for r in rows:
        files[r.attached_event_id].append({
            "id": r.id, "kind": r.kind.value, "mime": r.mime, "size": r.size,
            "uploaded_at": when(r.uploaded_at),
            "url": file_url(order.item_id, r.id) if file_url else None})
    by_id = {e.id: e for e in events}

    def base(e: OrderEvent) -> dict[str, Any]:
        fix = None
        if e.latitude is not None and e.longitude is not None:
            fix = {"latitude": e.latitude, "longitude": e.longitude, "accuracy_m": e.accuracy_m}
        corrected_by = by_id.get(corrections.get(e.id, -1))
        return {"event_id": e.client_event_id, "status": e.status_to.value, "by": e.actor_label,
                "device_time": when(e.device_time), "server_time": when(e.server_time), "location": fix,
                "corrected": corrected_by is not None,
                "corrected_by": corrected_by.client_event_id if corrected_by is not None else None,
                "files": files.get(e.id, [])}

    deliveries, attempts, corrected = [], [], []
    for e in events:
        proof = proofs.get(e.id)
        if proof is not None:
            deliveries.append({**base(e), "kind": proof.kind.value,
                               "receiver": None if proof.receiver_kind is None else {
                                   "kind": proof.receiver_kind.value, "name": proof.receiver_name,
                                   "relation": proof.receiver_relation},
                               "id_check": {"kind": proof.id_check_kind.value,
                                            "result": proof.id_check_result.value},
                               "amount_collected_vnd": proof.amount_collected_vnd,
                               "documents": proof.documents, "sealed": proof.sealed,
                               "fees_collected_vnd": proof.fees_collected_vnd})
        elif e.status_to is S.FAILED_ATTEMPT and e.reason != CORRECTION:
            attempts.append({**base(e), "reason": e.reason, "note": e.note})
        elif e.reason == CORRECTION:
            corrected.append({**base(e), "note": e.note})
        elif files.get(e.id):
            deliveries.append({**base(e), "kind": None, "receiver": None, "id_check": None})
    reasons = {r.code: r.as_dict() for r in rules.current().failure_reasons}
    for a in attempts:
        reason = reasons.get(a["reason"] or "", {})
        a["reason_label"], a["reason_label_en"] = reason.get("label"), reason.get("label_en")
    return {"item_id": order.item_id, "status": order.status.value, "deliveries": deliveries,
            "failed_attempts": attempts, "corrections": corrected, "waiting_files": files.get(None, [])}


def proof_file(order: DeliveryOrder, file_id: str) -> ProofFile:
    """One file of the order, with its content; NotFound otherwise."""
    found = db.session.scalar(
        sa.select(ProofFile).where(ProofFile.id == file_id, ProofFile.order_id == order.id)
        .options(undefer(ProofFile.content)))
    if found is None:
        raise NotFound(f"No file {file_id} on {order.item_id}")
    return found
