"""What the service holds about one person, for their request (Decree 13/2023 Art. 14; the 2025 law's
right to access): orders found by a phone number (as recipient or authorised person, however it was
written) or by a dossier code, with their events, proofs (files listed, not attached), label prints,
and who opened them (the access log). Also the access log's search for the admin page.

Scope: a national admin sees every order; a province admin (role admin, area a province) only the
orders of their province (admin.scope)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from marshmallow import ValidationError

from delivery_service.accounts.models import ApiClient, User
from delivery_service.accounts.services import Actor
from delivery_service.admin.scope import units_in_province
from delivery_service.courier.services import proof_json
from delivery_service.db import utcnow
from delivery_service.errors import InvalidInput, Text
from delivery_service.extensions import db
from delivery_service.fields import normalise_phone
from delivery_service.orders.models import DeliveryOrder, OrderEvent, window_json
from delivery_service.orgs.models import Counter
from delivery_service.printing.models import LabelPrint
from delivery_service.privacy.access import WHAT
from delivery_service.privacy.models import PersonalDataAccess
from delivery_service.units.models import AdminUnit
from delivery_service.units.services import unit_index

KINDS = ("phone", "dossier")
MAX_ORDERS = 1000  # one person's orders; a dossier code or phone shared by more is refused as a probe
LOG_PAGE = 200


def in_province(province: AdminUnit | None) -> sa.ColumnElement[bool]:
    """Orders a province admin may see (True for a national admin)."""
    if province is None:
        return sa.true()
    units = units_in_province(province)
    return sa.or_(DeliveryOrder.province_id.in_(units), DeliveryOrder.commune_id.in_(units))


def matching(kind: str, value: str) -> sa.ColumnElement[bool]:
    """The condition finding a person's orders; InvalidInput (per field) when the value cannot be one."""
    value = (value or "").strip()
    if kind not in KINDS:
        raise InvalidInput({"kind": ["Choose a phone number or a dossier code."]})
    if not value:
        raise InvalidInput({"value": ["Must not be empty."]})
    if kind == "phone":
        try:
            phone = normalise_phone(value)
        except ValidationError:
            raise InvalidInput({"value": ["Not a valid Vietnamese phone number."]}) from None
        return sa.or_(DeliveryOrder.recipient_phone == phone, DeliveryOrder.authorised_phone == phone)
    if len(value) > 64:
        raise InvalidInput({"value": ["A dossier code has at most 64 characters."]})
    return DeliveryOrder.dossier_code == value


def find_orders(kind: str, value: str, province: AdminUnit | None) -> list[DeliveryOrder]:
    return list(db.session.scalars(
        sa.select(DeliveryOrder).where(matching(kind, value), in_province(province))
        .order_by(DeliveryOrder.created_at, DeliveryOrder.id).limit(MAX_ORDERS)))


def _iso(moment: dt.datetime | dt.date | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _unit(unit_id: int | None) -> dict[str, str] | None:
    unit = unit_index().by_id.get(unit_id) if unit_id else None
    return {"code": unit.code, "name": unit.name} if unit else None


def citizen_export(actor: Actor, kind: str, value: str, province: AdminUnit | None
                   ) -> tuple[dict[str, Any], list[int]]:
    """Everything held about the person, as JSON-able data, and the orders' ids (reads only; the
    caller logs and audits)."""
    orders = find_orders(kind, value, province)
    ids = [o.id for o in orders]
    events: dict[int, list[OrderEvent]] = {i: [] for i in ids}
    prints: dict[int, list[LabelPrint]] = {i: [] for i in ids}
    access: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for e in db.session.scalars(sa.select(OrderEvent).where(OrderEvent.order_id.in_(ids))
                                    .order_by(OrderEvent.id)):
            events[e.order_id].append(e)
        for p in db.session.scalars(sa.select(LabelPrint).where(LabelPrint.order_id.in_(ids))
                                    .order_by(LabelPrint.id)):
            prints[p.order_id].append(p)
        for row in access_rows(sa.select(PersonalDataAccess).where(PersonalDataAccess.order_id.in_(ids))
                               .order_by(PersonalDataAccess.at, PersonalDataAccess.id)):
            access[row.order_id].append(row.as_json())
    counters = {c.id: c.name for c in db.session.scalars(
        sa.select(Counter).where(Counter.id.in_({o.counter_id for o in orders})))} if orders else {}
    return {
        "request": {"kind": kind, "value": value.strip(), "exported_at": utcnow().isoformat(),
                    "exported_by": actor.label},
        "orders": [_order_json(o, counters, events[o.id], prints[o.id], access[o.id]) for o in orders],
        "notes": ("Ảnh và chữ ký chỉ được liệt kê; bản sao được cấp theo yêu cầu. / Photos and signatures "
                  "are listed; copies are given on request."),
    }, ids


def _order_json(o: DeliveryOrder, counters: dict[int, str], events: list[OrderEvent],
                prints: list[LabelPrint], access: list[dict[str, Any]]) -> dict[str, Any]:
    proofs = proof_json(o)
    return {
        "item_id": o.item_id, "dossier_code": o.dossier_code, "procedure_code": o.procedure_code,
        "procedure_name": o.procedure_name, "issuing_agency": o.issuing_agency,
        "direction": o.direction.value, "status": o.status.value, "counter": counters.get(o.counter_id),
        "created_at": _iso(o.created_at), "appointment_date": _iso(o.appointment_date),
        "delivery_window": window_json(o), "due_date": _iso(o.due_date),
        "personal_data_erased_at": _iso(o.personal_data_erased_at),
        "recipient": {"name": o.recipient_name, "phone": o.recipient_phone,
                      "id_number": o.recipient_id_number},
        "authorised": ({"name": o.authorised_name, "phone": o.authorised_phone,
                        "id_number": o.authorised_id_number} if o.authorised_name else None),
        "address": {"detail": o.address_detail, "commune": _unit(o.commune_id),
                    "district": _unit(o.district_id), "province": _unit(o.province_id)},
        "note": o.note, "postage_vnd": o.postage_vnd, "collect_vnd": o.collect_vnd,
        "events": [_event_json(e) for e in events],
        "proof": proofs,
        "label_prints": [{"printed_at": _iso(p.printed_at), "by": p.actor_label, "copy_no": p.copy_no,
                          "address": p.address} for p in prints],
        "access_log": access,
    }


def _event_json(e: OrderEvent) -> dict[str, Any]:
    location = None
    if e.latitude is not None:
        location = {"latitude": e.latitude, "longitude": e.longitude, "accuracy_m": e.accuracy_m}
    return {"status_from": e.status_from.value if e.status_from else None, "status_to": e.status_to.value,
            "at": _iso(e.server_time), "device_time": _iso(e.device_time), "by": e.actor_label,
            "reason": e.reason, "note": e.note, "location": location}


@dataclass(frozen=True)
class AccessRow:
    at: dt.datetime
    order_id: int
    item_id: str | None
    dossier_code: str | None
    who: str
    username: str | None
    client: str | None
    what: str
    ip: str | None

    @property
    def what_label(self) -> Text:
        """What was opened, in both languages (the page shows the reader's); the code when unknown."""
        return Text(*WHAT.get(self.what, (self.what, self.what)))

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "who": self.who, "user": self.username, "api_client": self.client,
                "what": self.what, "ip": self.ip}


def access_rows(stmt: sa.Select) -> list[AccessRow]:
    """``stmt`` (a select of PersonalDataAccess, filtered and ordered) with the order, user and client."""
    sub = stmt.subquery()
    rows = db.session.execute(
        sa.select(sub.c.at, sub.c.order_id, DeliveryOrder.item_id, DeliveryOrder.dossier_code,
                  sub.c.actor_label, User.username, ApiClient.name, sub.c.what, sub.c.ip)
        .outerjoin(DeliveryOrder, DeliveryOrder.id == sub.c.order_id)
        .outerjoin(User, User.id == sub.c.user_id)
        .outerjoin(ApiClient, ApiClient.id == sub.c.client_id)
        .order_by(sub.c.at.desc(), sub.c.id.desc()))
    return [AccessRow(*r) for r in rows]


def search_access(*, order: str | None, username: str | None, province: AdminUnit | None,
                  limit: int = LOG_PAGE) -> list[AccessRow]:
    """The access log, newest first, by order (item id or dossier code) and/or user name, within scope."""
    a = PersonalDataAccess
    stmt = sa.select(a)
    order = (order or "").strip()
    if order:
        from labels import s10

        ids = sa.select(DeliveryOrder.id).where(sa.or_(DeliveryOrder.item_id == s10.normalize(order),
                                                       DeliveryOrder.dossier_code == order))
        stmt = stmt.where(a.order_id.in_(ids))
    username = (username or "").strip()
    if username:
        stmt = stmt.where(a.user_id.in_(sa.select(User.id).where(User.username == username)))
    if province is not None:
        stmt = stmt.where(a.order_id.in_(sa.select(DeliveryOrder.id).where(in_province(province))))
    return access_rows(stmt.order_by(a.at.desc(), a.id.desc()).limit(limit))
