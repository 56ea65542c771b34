"""The new-order form: flat HTML fields to the nested OrderIn payload, and errors back to the fields.

Validation stays in ``OrderIn`` and the order service; this module only translates shapes and words.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from marshmallow import EXCLUDE, Schema, ValidationError

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db
from delivery_service.fields import Text, whole_number
from delivery_service.orders.models import DeliveryOrder, Exemption, Payer
from delivery_service.orders.schemas import FLAT_FIELDS, AddressChangeIn, OrderIn
from delivery_service.orders.services import ROLE_TARGETS, order_values
from delivery_service.orders.status import Direction, Status, allowed_targets
from delivery_service.orgs.models import Counter
from delivery_service.units.models import UnitLevel
from delivery_service.units.services import Unit, resolve_address, unit_index
from delivery_service.web.messages import translate_message, weight_message

# form field -> path in the OrderIn payload
FIELDS = FLAT_FIELDS
_BY_PATH = {path: name for name, path in FIELDS.items()}
# The delivery window: a select (none, morning, afternoon, custom) and, for custom, two time inputs.
WINDOW_FIELDS = ("window_from", "window_to")
_BY_PATH[("delivery_window", "from")] = "window_from"
_BY_PATH[("delivery_window", "to")] = "window_to"
INTEGER_FIELDS = {"postage_vnd", "collect_vnd", "weight_g"}
ALWAYS_SENT_GROUPS = ("recipient", "address")  # so that their errors name the field, not the group
FORM = "_form"  # key of errors that belong to no single field

LABELS = {
    "counter_id": _l("Counter"),
    "direction": _l("Service"),
    "dossier_code": _l("Dossier code"),
    "procedure_code": _l("Procedure code"),
    "procedure_name": _l("Procedure name"),
    "issuing_agency": _l("Agency handling the dossier"),
    "recipient_name": _l("Full name"),
    "recipient_phone": _l("Phone"),
    "recipient_id_number": _l("ID number (CCCD)"),
    "authorised_name": _l("Full name of the authorised person"),
    "authorised_phone": _l("Phone of the authorised person"),
    "authorised_id_number": _l("ID number of the authorised person"),
    "province_code": _l("Province / city"),
    "district_code": _l("District"),
    "commune_code": _l("Commune / ward"),
    "address_detail": _l("House number, street, hamlet"),
    "postage_vnd": _l("Postage (VND)"),
    "payer": _l("Postage paid by"),
    "exemption": _l("Exemption"),
    "collect_vnd": _l("Fees to collect for the agency (VND)"),
    "weight_g": _l("Weight (grams)"),
    "appointment_date": _l("Appointment date"),
    "delivery_window": _l("Delivery window"),
    "window_from": _l("From (time)"),
    "window_to": _l("To (time)"),
    "note": _l("Note"),
    "recipient": _l("Recipient"),
    "authorised_person": _l("Authorised person"),
    "address": _l("Address"),
    "file": _l("File"),
    "line": _l("Line"),
}


def field_label(key: str) -> str:
    """A person's name for a field key of the form, the API (``recipient.phone``) or an import."""
    name = key.replace(".", "_")
    name = {"address_province_code": "province_code", "address_district_code": "district_code",
            "address_commune_code": "commune_code", "authorised_person_name": "authorised_name",
            "authorised_person_phone": "authorised_phone",
            "authorised_person_id_number": "authorised_id_number"}.get(name, name)
    label = LABELS.get(name)
    return str(label) if label is not None else key


def column_label(key: str) -> str:
    """An import file's column as the result page names it: the field's name and the file's header."""
    if key == "_row":
        return gettext("Whole row")
    label = field_label(key)
    return key if label == key else gettext("%(label)s, column %(column)s", label=label, column=key)


def _choices() -> dict[str, Mapping[Any, Any]]:
    from delivery_service.web import display

    return {"direction": display.DIRECTION, "payer": display.PAYER, "exemption": display.EXEMPTION}


# --- errors back to the form's fields ------------------------------------------------------------

def translate_errors(errors: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{field: [message]}`` with every message translated (nested values are flattened)."""
    out: dict[str, list[str]] = {}
    for key, value in _flatten(errors, ()):
        out.setdefault(key, []).append(translate_message(value))
    return out


def _flatten(errors: Any, path: tuple[str, ...]) -> list[tuple[str, str]]:
    if isinstance(errors, Mapping):
        pairs: list[tuple[str, str]] = []
        for key, value in errors.items():
            sub = path if key == "_schema" else (*path, str(key))
            pairs += _flatten(value, sub)
        return pairs
    if isinstance(errors, list | tuple):
        return [pair for item in errors for pair in _flatten(item, path)]
    name = _BY_PATH.get(path) or (path[-1] if len(path) == 1 and path[-1] in FIELDS else None)
    if name is None:
        name = path[0] if len(path) == 1 and path[0] in LABELS else FORM
    return [(name, str(errors))]


# --- form values to payload ----------------------------------------------------------------------

def _integer(raw: str) -> int | str:
    """Digits, also written with thousands separators (26.000 or 26,000), with a sign (a negative amount
    is a number out of range, not "not a number"); anything else unchanged."""
    compact = re.sub(r"[\s.,]", "", raw)
    sign, digits = (compact[0], compact[1:]) if compact[:1] in ("-", "−", "+") else ("", compact)
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 30):
        return raw
    return -int(digits) if sign in ("-", "−") else int(digits)


def form_values(form: Mapping[str, str]) -> dict[str, str]:
    """The submitted order fields, trimmed and in NFC, as the form shows them again. A dossier taken to
    the agency has no appointment date (it is the day a result is handed back: import-format.md),
    so the date the form offers by default is not kept for it."""
    values = {name: unicodedata.normalize("NFC", (form.get(name) or "").strip())
              for name in (*FIELDS, *WINDOW_FIELDS)}
    if values["direction"] == Direction.DOSSIER_TO_AGENCY.value:
        values["appointment_date"] = ""
    return values


def order_payload(values: Mapping[str, str]) -> dict[str, Any]:
    """The OrderIn payload of the filled fields; empty fields are left out."""
    payload: dict[str, Any] = {group: {} for group in ALWAYS_SENT_GROUPS}
    for name, path in FIELDS.items():
        raw = values.get(name, "")
        if not raw:
            continue
        value: Any = _integer(raw) if name in INTEGER_FIELDS else raw
        if name == "delivery_window" and raw == "custom":
            value = {"from": values.get("window_from", ""), "to": values.get("window_to", "")}
        target = payload
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return payload


WINDOW_MESSAGE = _l("Choose morning, afternoon, or a from–to time between 06:00 and 21:00, at least "
                    "30 minutes long.")


def load_order(values: Mapping[str, str],
               today: dt.date) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """Validate the form with OrderIn: ``(data, {})`` or ``(None, translated errors by field)``.

    When OrderIn refuses the form, the dates and the address are checked too, so that all mistakes
    show at once.
    """
    payload = order_payload(values)
    try:
        return OrderIn().load(payload), {}
    except ValidationError as exc:
        errors = translate_errors(exc.messages)  # type: ignore[arg-type]
        if "weight_g" in errors:
            errors["weight_g"] = [weight_message()]
        whole, amount = gettext("Enter a whole number."), gettext("Enter a whole number of đồng.")
        for name in ("postage_vnd", "collect_vnd"):  # an amount: say so (``whole`` is any number's)
            if name in errors:
                errors[name] = [amount if m == whole else m for m in errors[name]]
        if "delivery_window" in errors:
            errors["delivery_window"] = [str(WINDOW_MESSAGE)]
        for name, labels in _choices().items():  # a value not in the list (a tampered form)
            if name in errors:
                listed = "; ".join(map(str, labels.values()))
                errors[name] = [gettext("Choose one of: %(values)s.", values=listed)]
        for name in WINDOW_FIELDS:
            if name in errors:
                errors[name] = [gettext("Enter a time as HH:MM.")]
    # marshmallow skips the cross-field rules (dates) while any field fails: run them on the rest.
    rest = order_payload({k: v for k, v in values.items() if k not in errors})
    try:
        OrderIn().load(rest, partial=True)
    except ValidationError as exc:
        for key, messages in translate_errors(exc.messages).items():  # type: ignore[arg-type]
            if key not in errors:
                errors[key] = messages
    if not {"province_code", "district_code", "commune_code"} & errors.keys():
        _check_units(values, today, errors)
    return None, errors


def _check_units(values: Mapping[str, str], today: dt.date, errors: dict[str, list[str]]) -> None:
    """Look the chosen province, district and commune up (``resolve_address``, as the services do)
    when the schema let them through, adding what it refuses to ``errors``: every mistake shows at once."""
    if not (values.get("province_code") and values.get("commune_code")):
        return
    try:
        resolve_address(values["province_code"], values.get("district_code") or None,
                        values["commune_code"], today)
    except InvalidInput as exc:
        for key, messages in translate_errors(exc.errors).items():
            errors.setdefault(key, []).extend(messages)


# --- what the form offers ------------------------------------------------------------------------

@dataclass
class AddressOptions:
    """Units to offer in the cascading selects, given what is chosen."""

    provinces: list[Unit]
    districts: list[Unit] = field(default_factory=list)
    communes: list[Unit] = field(default_factory=list)
    province: Unit | None = None
    district: Unit | None = None


def address_options(values: Mapping[str, str], day: dt.date) -> AddressOptions:
    """Provinces valid on ``day`` and, below the chosen ones, their districts or communes."""
    index = unit_index()
    options = AddressOptions(provinces=index.children_of(None, day))
    province = index.find(UnitLevel.PROVINCE, values.get("province_code") or "", day)
    if province is None:
        return options
    options.province = province
    children = index.children_of(province.id, day)
    if children and children[0].level is UnitLevel.DISTRICT:
        options.districts = children
        district = index.find(UnitLevel.DISTRICT, values.get("district_code") or "", day)
        if district is not None and district.parent_id == province.id:
            options.district = district
            options.communes = index.children_of(district.id, day)
    else:
        options.communes = children
    return options


def province_of(unit_id: int) -> Unit | None:
    """The province a unit lies in."""
    by_id = unit_index().by_id
    unit = by_id.get(unit_id)
    while unit is not None and unit.parent_id is not None:
        unit = by_id.get(unit.parent_id)
    return unit


def initial_values(counter: Counter | None, today: dt.date) -> dict[str, str]:
    """A blank order: the counter's province, delivery of a result, appointment tomorrow."""
    values = dict.fromkeys(FIELDS, "")
    province = province_of(counter.unit_id) if counter else None
    values.update(direction=Direction.RESULT_TO_CITIZEN.value, payer=Payer.CITIZEN.value,
                  exemption=Exemption.NONE.value, province_code=province.code if province else "",
                  appointment_date=(today + dt.timedelta(days=1)).isoformat())
    return values


def all_counters() -> list[Counter]:
    """The active counters an administrator may act for."""
    return list(db.session.scalars(sa.select(Counter).where(Counter.active.is_(True)).order_by(Counter.code)))


def chosen_counter(raw: str | None) -> Counter | None:
    """The active counter picked in a select, or None."""
    if (counter_id := whole_number(raw)) is None:
        return None
    counter = db.session.get(Counter, counter_id)
    return counter if counter is not None and counter.active else None


# --- a dossier sent again ------------------------------------------------------------------------

# The stored order's columns compared with a form sent again for its dossier, by the form field
# that names them (the dossier code and the service are the same by definition).
_COMPARED = {
    "procedure_code": "procedure_code", "procedure_name": "procedure_name",
    "issuing_agency": "issuing_agency",
    "recipient_name": "recipient_name", "recipient_phone": "recipient_phone",
    "recipient_id_number": "recipient_id_number", "authorised_name": "authorised_name",
    "authorised_phone": "authorised_phone", "authorised_id_number": "authorised_id_number",
    "province_id": "address", "district_id": "address", "commune_id": "address", "address_detail": "address",
    "postage_vnd": "postage_vnd", "payer": "payer", "exemption": "exemption", "collect_vnd": "collect_vnd",
    "weight_g": "weight_g", "appointment_date": "appointment_date", "window_from_min": "delivery_window",
    "window_to_min": "delivery_window", "note": "note",
}


def differing_fields(actor: Actor, existing: DeliveryOrder, data: dict[str, Any], *,
                     counter_id: int) -> list[str]:
    """The names of the fields where ``data`` (a form sent again for ``existing``'s dossier) differs
    from the stored order, in the form's order; computed as the order service would store them."""
    try:
        typed = order_values(actor, data, counter_id=counter_id)
    except (InvalidInput, KeyError):
        return []
    names = dict.fromkeys(name for column, name in _COMPARED.items()
                          if typed.get(column) != getattr(existing, column))
    return [field_label(name) for name in names]


# --- cancelling an order on its page -------------------------------------------------------------

class CancelIn(Schema):
    """The cancel form: why the order is cancelled (stored in its history)."""

    note = Text(required=True, max_length=500, multiline=True)


def can_cancel(actor: Actor, order: DeliveryOrder) -> bool:
    """The actor's role may cancel, and the status machine still lets the order be cancelled."""
    if actor.role is not Role.ADMIN and Status.CANCELLED not in ROLE_TARGETS.get(actor.role, set()):
        return False
    return Status.CANCELLED in allowed_targets(order.direction, order.status,
                                               results_started=order.dossier_delivered_at is not None)


def load_cancel_note(form: Mapping[str, str]) -> tuple[str | None, dict[str, list[str]]]:
    """``(note, {})``, or ``(None, {"note": [message]})`` when the reason is missing or refused."""
    try:
        return CancelIn().load({"note": form.get("note") or ""}, unknown=EXCLUDE)["note"], {}
    except ValidationError as exc:
        if "note" in exc.messages and not (form.get("note") or "").strip():
            return None, {"note": [gettext("Write why the order is cancelled.")]}
        return None, translate_errors(exc.messages)  # type: ignore[arg-type]


# --- correcting an order's address on its page ---------------------------------------------------

# The address fields of the new-order form, and why the address is corrected (kept in the history)
ADDRESS_FIELDS = ("province_code", "district_code", "commune_code", "address_detail", "note")
ADDRESS_LABELS = {**{name: LABELS[name] for name in ADDRESS_FIELDS if name != "note"},
                  "address": LABELS["address"], "note": _l("Why is the address corrected?")}


_ADDRESS_KEYS = {"province_code": "province_code", "district_code": "district_code",  # AddressIn -> form
                 "commune_code": "commune_code", "detail": "address_detail"}


def address_values(order: DeliveryOrder, day: dt.date) -> dict[str, str]:
    """The order's address as the form shows it; a unit no longer in force on ``day`` (an order made
    before the 2025 reform) is left to choose again."""
    by_id = unit_index().by_id
    values = dict.fromkeys(ADDRESS_FIELDS, "")
    for name, unit_id in (("province_code", order.province_id), ("district_code", order.district_id),
                          ("commune_code", order.commune_id)):
        unit = by_id.get(unit_id) if unit_id is not None else None
        if unit is not None and unit.valid_on(day):
            values[name] = unit.code
    values["address_detail"] = order.address_detail or ""
    return values


def address_form_values(form: Mapping[str, str]) -> dict[str, str]:
    """The submitted address fields, trimmed and in NFC, as the form shows them again."""
    return {name: unicodedata.normalize("NFC", (form.get(name) or "").strip()) for name in ADDRESS_FIELDS}


def load_address_change(values: Mapping[str, str],
                        today: dt.date) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """Validate the form with AddressChangeIn (the API's schema): ``(data, {})`` or ``(None, translated
    errors by field)``. The units are looked up too when the schema refuses something else, so that all
    mistakes show at once; the order service checks them again."""
    address = {key: values[name] for key, name in _ADDRESS_KEYS.items() if values.get(name)}
    payload: dict[str, Any] = {"address": address}
    if values.get("note"):
        payload["note"] = values["note"]
    try:
        return AddressChangeIn().load(payload), {}
    except ValidationError as exc:
        errors = translate_errors(exc.messages)  # type: ignore[arg-type]
    # marshmallow skips the address's own rule (which fields it needs) while a field fails: run it on the rest
    rest = {k: v for k, v in address.items() if _ADDRESS_KEYS[k] not in errors}
    try:
        AddressChangeIn().load({"address": rest})
    except ValidationError as exc:
        for key, messages in translate_errors(exc.messages).items():  # type: ignore[arg-type]
            errors.setdefault(key, messages)
    if any(name in errors for name in ("province_code", "district_code", "commune_code")):
        errors.pop("address", None)  # "give the codes or the text": the fields say which is missing
    else:
        _check_units(values, today, errors)
    return None, errors
