"""The order as it crosses the HTTP edge: what may come in, and what goes out."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from flask import current_app
from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate, validates_schema

from delivery_service.errors import coded
from delivery_service.fields import EARLIEST, LATEST, Day, IdNumber, Phone, QueryArgs, Text
from delivery_service.orders.models import DeliveryOrder, Exemption, Payer, hhmm, window_json
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.services import counter_code, route_code
from delivery_service.units.services import unit_index

MAX_VND = 1_000_000_000
MAX_WEIGHT_G = 30_000  # 30 kg, the heaviest parcel the post accepts at a counter


# The order as one flat record (form fields, spreadsheet columns), in display order, mapped to the
# path of each value in OrderIn's nested structure.
FLAT_FIELDS: dict[str, tuple[str, ...]] = {
    "direction": ("direction",),
    "dossier_code": ("dossier_code",),
    "procedure_code": ("procedure_code",),
    "procedure_name": ("procedure_name",),
    "issuing_agency": ("issuing_agency",),
    "recipient_name": ("recipient", "name"),
    "recipient_phone": ("recipient", "phone"),
    "recipient_id_number": ("recipient", "id_number"),
    "authorised_name": ("authorised_person", "name"),
    "authorised_phone": ("authorised_person", "phone"),
    "authorised_id_number": ("authorised_person", "id_number"),
    "province_code": ("address", "province_code"),
    "district_code": ("address", "district_code"),
    "commune_code": ("address", "commune_code"),
    "address_detail": ("address", "detail"),
    "postage_vnd": ("postage_vnd",),
    "payer": ("payer",),
    "exemption": ("exemption",),
    "collect_vnd": ("collect_vnd",),
    "weight_g": ("weight_g",),
    "appointment_date": ("appointment_date",),
    "delivery_window": ("delivery_window",),
    "note": ("note",),
}


# The delivery window (appointment time of day), in minutes after local midnight.
WINDOWS: dict[str, tuple[int, int]] = {"morning": (8 * 60, 12 * 60), "afternoon": (13 * 60 + 30, 17 * 60)}
WINDOW_NAMES = {"morning": "morning", "sang": "morning", "buoi_sang": "morning",
                "afternoon": "afternoon", "chieu": "afternoon", "buoi_chieu": "afternoon"}
# The named windows' hours as pages and messages write them: {"morning": "08:00–12:00", ...}
NAMED_WINDOWS: dict[str, str] = {name: f"{hhmm(start)}–{hhmm(end)}" for name, (start, end) in WINDOWS.items()}
WINDOW_EARLIEST, WINDOW_LATEST, WINDOW_SHORTEST = 6 * 60, 21 * 60, 30
_HHMM = re.compile(r"([01]?\d|2[0-3])\s*[:hH.]\s*([0-5]\d)|([01]?\d|2[0-3])\s*[hH]")

WINDOW_ERROR = (f'Give "morning" ({NAMED_WINDOWS["morning"]}), "afternoon" ({NAMED_WINDOWS["afternoon"]}) '
                f'or {{"from": "HH:MM", "to": "HH:MM"}} between {hhmm(WINDOW_EARLIEST)} and '
                f"{hhmm(WINDOW_LATEST)}, at least {WINDOW_SHORTEST} minutes long.")


def _minutes(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    m = _HHMM.fullmatch(text.strip())
    if m is None:
        return None
    return int(m.group(1)) * 60 + int(m.group(2)) if m.group(1) else int(m.group(3)) * 60


def window_key(text: str) -> str:
    """A window's name without diacritics, case or spaces: "Sáng" is "sang"."""
    plain = unicodedata.normalize("NFD", text.strip()).replace("đ", "d").replace("Đ", "D")
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


def parse_window(value: Any) -> tuple[int, int]:
    """A delivery window as (from, to) minutes: "morning"/"sáng", "afternoon"/"chiều", "08:00-10:00"
    or {"from": "08:00", "to": "10:00"}. Raises ValidationError (per key for the mapping form)."""
    if isinstance(value, str):
        name = WINDOW_NAMES.get(window_key(value))
        if name is not None:
            return WINDOWS[name]
        parts = re.split(r"\s*[-–—]\s*|\s+(?:to|đến|den)\s+", value.strip())
        if len(parts) != 2:
            raise ValidationError(WINDOW_ERROR)
        start, end = _minutes(parts[0]), _minutes(parts[1])
        if start is None or end is None:
            raise ValidationError(WINDOW_ERROR)
    elif isinstance(value, dict):
        errors: dict[str, list[str]] = {}
        unknown = set(value) - {"from", "to"}
        for key in sorted(unknown):
            errors[key] = ["Unknown field."]
        got = {k: _minutes(value.get(k)) for k in ("from", "to")}
        for key, minutes in got.items():
            if minutes is None:
                errors[key] = ['Missing data for required field.' if key not in value else
                               'Not a valid time: give "HH:MM".']
        if errors:
            raise ValidationError(errors)
        start, end = got["from"], got["to"]
        assert start is not None and end is not None
    else:
        raise ValidationError(WINDOW_ERROR)
    if start < WINDOW_EARLIEST or end > WINDOW_LATEST:
        raise ValidationError(
            f"The window must lie between {hhmm(WINDOW_EARLIEST)} and {hhmm(WINDOW_LATEST)}.")
    if end - start < WINDOW_SHORTEST:
        raise ValidationError(f"The window must end at least {WINDOW_SHORTEST} minutes after it starts.")
    return start, end


class DeliveryWindow(fields.Field):
    """An optional delivery window, loaded as {"from": minutes, "to": minutes} after local midnight."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, int] | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        start, end = parse_window(value)
        return {"from": start, "to": end}


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class RecipientIn(StrictSchema):
    name = Text(required=True, max_length=200, metadata={"example": "Nguyễn Văn An"})
    phone = Phone(required=True)
    id_number = IdNumber(load_default=None, metadata={"description": "CCCD (12 digits)"})


class AuthorisedIn(StrictSchema):
    name = Text(required=True, max_length=200)
    phone = Phone(load_default=None)
    id_number = IdNumber(load_default=None)


ADDRESS_TEXT_MAX = 500
_REQUIRED = "Missing data for required field."


class AddressIn(StrictSchema):
    """GSO codes (province_code, commune_code, detail), or the address as written (``text``)."""

    province_code = fields.String(validate=validate.Length(1, 16), metadata={
        "example": "51", "description": "GSO code (required unless `text` is given)"})
    district_code = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=16),
                                  metadata={"description": "Only for dates before 1 Jul 2025"})
    commune_code = fields.String(validate=validate.Length(1, 16), metadata={
        "example": "21154", "description": "GSO code (required unless `text` is given)"})
    detail = Text(max_length=255, metadata={
        "example": "12 Hùng Vương, tổ 3",
        "description": "House number, street, hamlet (required with the codes; with `text`, what "
                       "remains of the text once the units are read is used when it is left out)"})
    text = Text(max_length=ADDRESS_TEXT_MAX, multiline=True, metadata={
        "example": "Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi",
        "description": "Instead of the codes: the address as written (full names, abbreviations, "
                       "without diacritics, pre-reform units). Read on the day of the order; when the "
                       "reading is not sure the answer is 422 at `address.text` with the candidates"})

    @validates_schema
    def _one_form(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Exactly one form: the codes, or the text."""
        codes = [k for k in ("province_code", "district_code", "commune_code") if data.get(k)]
        if data.get("text") is not None:
            if codes:
                raise ValidationError(coded("address_forms", "Nhập địa chỉ dạng mã hoặc dạng chữ, không "
                                            "cả hai. / Give the address either as codes (province_code, "
                                            "commune_code) or as text, not both."))
            return
        if "text" in data and not codes:  # empty text counts as missing (Text's rule)
            raise ValidationError(coded("required", "Must not be empty."), "text")
        if kwargs.get("partial"):
            return
        errors: dict[str, list[Any]] = {}
        for k in ("province_code", "commune_code", "detail"):
            if data.get(k) is None:
                errors[k] = [coded("required", _REQUIRED if k not in data else "Must not be empty.")]
        if not codes:
            errors["_schema"] = [coded("address_forms", "Nhập mã tỉnh, mã xã và số nhà, đường, hoặc cả "
                                       "địa chỉ dạng chữ. / Give the address as codes (province_code, "
                                       "commune_code, detail) or as text.")]
        if errors:
            raise ValidationError(errors)


class OrderIn(StrictSchema):
    """A new order."""

    direction = fields.Enum(Direction, by_value=True, required=True)
    dossier_code = Text(required=True, max_length=64, metadata={"description": "Mã hồ sơ"})
    procedure_code = Text(load_default=None, max_length=64,
                          metadata={"example": "1.011442.000.00.00.H38"})
    procedure_name = Text(required=True, max_length=500)
    issuing_agency = Text(required=True, max_length=255)
    recipient = fields.Nested(RecipientIn, required=True)
    authorised_person = fields.Nested(AuthorisedIn, load_default=None, allow_none=True)
    address = fields.Nested(AddressIn, required=True, metadata={
        "description": "GSO codes, or the address as written in `text` (not both)",
        "example": {"text": "Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi"}})
    postage_vnd = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, MAX_VND))
    payer = fields.Enum(Payer, by_value=True, load_default=Payer.CITIZEN)
    exemption = fields.Enum(Exemption, by_value=True, load_default=Exemption.NONE)
    collect_vnd = fields.Integer(load_default=0, strict=True, validate=validate.Range(0, MAX_VND),
                                 metadata={"description": "Fees to collect for the agency"})
    appointment_date = fields.Date(load_default=None, metadata={"description": "Ngày hẹn trả"})
    weight_g = fields.Integer(load_default=None, allow_none=True, strict=True,
                              validate=validate.Range(1, MAX_WEIGHT_G),
                              metadata={"description": "Khối lượng: whole grams, printed on the label"})
    delivery_window = DeliveryWindow(allow_none=True, metadata={
        "description": f'Khung giờ giao: "morning" ({NAMED_WINDOWS["morning"]}), "afternoon" '
                       f'({NAMED_WINDOWS["afternoon"]}) or {{"from": "HH:MM", "to": "HH:MM"}} '
                       f"({hhmm(WINDOW_EARLIEST)}–{hhmm(WINDOW_LATEST)}, at least {WINDOW_SHORTEST} min; "
                       "local time)",
        "example": "morning"})
    note = Text(load_default=None, max_length=500, multiline=True)

    @post_load
    def _no_window(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # No window is no key: the request digests of orders without one stay as they were.
        if data.get("delivery_window", 0) is None:
            del data["delivery_window"]
        return data

    @validates_schema(skip_on_field_errors=False, pass_original=True)  # past dates show with other errors
    def _dates(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        from delivery_service.orders.services import local_today

        appointment = data.get("appointment_date")
        if appointment is not None and appointment < local_today():
            raise ValidationError(coded("date_in_past", "The appointment date is in the past."),
                                  "appointment_date")
        if appointment is not None and (appointment - local_today()).days > 366:
            raise ValidationError(coded("out_of_range", "The appointment date is more than a year away."),
                                  "appointment_date")
        given = isinstance(original, dict) and original.get("appointment_date") not in (None, "")
        if data.get("direction") is Direction.RESULT_TO_CITIZEN and appointment is None and not given:
            raise ValidationError(coded("required", "Required when delivering a result."), "appointment_date")


class AddressChangeIn(StrictSchema):
    """A corrected delivery address; the order is placed again on the route that covers it."""

    address = fields.Nested(AddressIn, required=True)
    note = Text(load_default=None, max_length=300)


class UnitRef(Schema):
    code = fields.String()
    name = fields.String()


class AddressOut(Schema):
    province = fields.Nested(UnitRef)
    district = fields.Nested(UnitRef, allow_none=True)
    commune = fields.Nested(UnitRef)
    detail = fields.String()


class OrderOut(Schema):
    """An order as the API returns it."""

    item_id = fields.String(metadata={"description": "UPU S10 identifier, e.g. RH000000018VN"})
    status = fields.Enum(Status, by_value=True)
    direction = fields.Enum(Direction, by_value=True)
    dossier_code = fields.String()
    procedure_code = fields.String(allow_none=True)
    procedure_name = fields.String()
    issuing_agency = fields.String()
    recipient = fields.Method("_recipient")
    authorised_person = fields.Method("_authorised", allow_none=True)
    address = fields.Method("_address")
    postage_vnd = fields.Integer()
    postage_due_vnd = fields.Integer()
    payer = fields.Enum(Payer, by_value=True)
    exemption = fields.Enum(Exemption, by_value=True)
    collect_vnd = fields.Integer()
    weight_g = fields.Integer(allow_none=True)
    appointment_date = fields.Date(allow_none=True)
    delivery_window = fields.Method("_window", allow_none=True, metadata={
        "description": 'Khung giờ giao: {"from": "HH:MM", "to": "HH:MM"} (local time), or null'})
    due_date = fields.Date()
    counter_code = fields.Function(lambda o: counter_code(o.counter_id))
    route_code = fields.Function(lambda o: route_code(o.route_id))
    run_date = fields.Date(allow_none=True, metadata={
        "description": "The day it is planned on its route's run"})
    dispatch = fields.String(allow_none=True, metadata={
        "description": "Why a person must choose its route: unknown_commune, no_rule or over_capacity"})
    note = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()

    def _window(self, o: DeliveryOrder) -> dict[str, str] | None:
        return window_json(o)

    def _recipient(self, o: DeliveryOrder) -> dict[str, Any]:
        return {"name": o.recipient_name, "phone": o.recipient_phone, "id_number": o.recipient_id_number}

    def _authorised(self, o: DeliveryOrder) -> dict[str, Any] | None:
        if not o.authorised_name:
            return None
        return {"name": o.authorised_name, "phone": o.authorised_phone, "id_number": o.authorised_id_number}

    def _address(self, o: DeliveryOrder) -> dict[str, Any]:
        units = unit_index(current_app).by_id

        def ref(unit_id: int | None) -> dict[str, str] | None:
            u = units.get(unit_id) if unit_id else None
            return {"code": u.code, "name": u.name} if u else None

        return {"province": ref(o.province_id), "district": ref(o.district_id),
                "commune": ref(o.commune_id), "detail": o.address_detail}


_ORDER_OUT = OrderOut()


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _value(member: Any) -> Any:
    return None if member is None else member.value


def order_out(o: DeliveryOrder) -> dict[str, Any]:
    """``OrderOut().dump(o)``, written out: the answer to every order created (marshmallow's dump of
    its 26 fields cost about 5 % of an intake request). tests/test_order_out.py holds the two equal,
    field by field, over orders of every shape; a field added to OrderOut must be added here."""
    s = _ORDER_OUT
    return {
        "item_id": _text(o.item_id),
        "status": _value(o.status),
        "direction": _value(o.direction),
        "dossier_code": _text(o.dossier_code),
        "procedure_code": _text(o.procedure_code),
        "procedure_name": _text(o.procedure_name),
        "issuing_agency": _text(o.issuing_agency),
        "recipient": s._recipient(o),
        "authorised_person": s._authorised(o),
        "address": s._address(o),
        "postage_vnd": _int(o.postage_vnd),
        "postage_due_vnd": _int(o.postage_due_vnd),
        "payer": _value(o.payer),
        "exemption": _value(o.exemption),
        "collect_vnd": _int(o.collect_vnd),
        "weight_g": _int(o.weight_g),
        "appointment_date": _iso(o.appointment_date),
        "delivery_window": s._window(o),
        "due_date": _iso(o.due_date),
        "counter_code": counter_code(o.counter_id),
        "route_code": route_code(o.route_id),
        "run_date": _iso(o.run_date),
        "dispatch": _text(o.dispatch),
        "note": _text(o.note),
        "created_at": _iso(o.created_at),
        "updated_at": _iso(o.updated_at),
    }


def reasonable_time(value: dt.datetime) -> None:
    """A device clock between 2000 and 2100 (anything else is a broken clock or a probe)."""
    try:
        day = value.astimezone(dt.UTC).date()
    except OverflowError:
        raise ValidationError("Not a plausible time.") from None
    if not EARLIEST <= day <= LATEST:
        raise ValidationError("Not a plausible time.")


class OrderQuery(QueryArgs):
    ALSO = QueryArgs.ALSO | {"page", "page_size"}  # read by the paginator

    q = Text(load_default=None, max_length=200,
             metadata={"description": "Item id, dossier code, phone or part of the name"})
    created_on = Day(load_default=None)
    status = fields.Enum(Status, by_value=True, load_default=None, metadata={
        "description": "Only the orders in this status now"})
    updated_since = fields.AwareDateTime(load_default=None, validate=reasonable_time, metadata={
        "description": "For systems that poll: the orders with a status change at or after this time, "
                       "oldest change first, paged by `cursor` (not `page`)"})
    cursor = fields.String(load_default=None, validate=validate.Length(1, 64), metadata={
        "description": "The X-Next-Cursor of the previous answer: the orders changed since that page"})


class ClientEventId(Text):
    """A client's id for its event. Blank is refused, not taken as missing: the client means an id,
    and without one a replay would be applied twice."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if text is None:
            raise ValidationError(coded("required", "Must not be blank; leave event_id out to send none."))
        return text


class EventIn(StrictSchema):
    """A status change."""

    status = fields.Enum(Status, by_value=True, required=True)
    event_id = ClientEventId(load_default=None, max_length=64, validate=validate.Length(min=8),
                             metadata={"description": "Client-generated UUID; a replay is answered 200"})
    device_time = fields.AwareDateTime(load_default=None, validate=reasonable_time)
    latitude = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, validate=validate.Range(-180, 180))
    accuracy_m = fields.Float(load_default=None, validate=validate.Range(0, 100_000))
    reason = Text(load_default=None, max_length=64, metadata={"description": "A failure reason code"})
    note = Text(load_default=None, max_length=500, multiline=True)

    @validates_schema
    def _location(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data.get("latitude") is None) != (data.get("longitude") is None):
            raise ValidationError("Give both latitude and longitude, or neither.", "latitude")
        if data.get("status") is Status.FAILED_ATTEMPT and data.get("reason") is not None:
            from delivery_service import rules  # a failed attempt's reason is one the tracking page can name

            if (message := rules.current().not_a_reason(data["reason"])) is not None:
                raise ValidationError(coded("not_one_of", message), "reason")


class EventOut(Schema):
    event_id = fields.String(attribute="client_event_id", allow_none=True)
    status_from = fields.Enum(Status, by_value=True, allow_none=True)
    status_to = fields.Enum(Status, by_value=True)
    actor = fields.String(attribute="actor_label")
    device_time = fields.DateTime(allow_none=True)
    server_time = fields.DateTime()
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    accuracy_m = fields.Float(allow_none=True)
    reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    route_code = fields.Function(lambda e: route_code(e.route_id), metadata={
        "description": "The route the event placed or moved the order on"})
