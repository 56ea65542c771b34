"""The courier app's JSON at the HTTP edge: the sync batch and each event in it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from delivery_service import rules
from delivery_service.courier.models import FileKind, IdCheckKind, ReceiverKind
from delivery_service.fields import Day, QueryArgs, Text
from delivery_service.orders.schemas import MAX_VND, reasonable_time

ACTIONS = ("pickup_confirmed", "delivered", "failed_attempt", "dossier_picked_up", "correction")
CLIENT_ID = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$",
                            error="Must be 8-64 letters, digits, '.', '_', ':' or '-' (a UUID).")
# Why the service refused an event, by a stable name (``error.reason`` of a sync result, set by
# courier.services.Rejected): the app says each in the page's language.
REFUSAL_REASONS = ("malformed", "event_id_reused", "clock_skew", "before_order", "not_your_route",
                   "status_not_allowed", "id_check_required", "id_mismatch", "otp_mismatch",
                   "next_attempt_too_far", "nothing_to_correct", "correction_of_correction",
                   "already_corrected", "window_closed", "note_required", "not_due_yet",
                   "amount_mismatch")
UUID = validate.Regexp(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
                       error="Must be a UUID.")


class Tolerant(Schema):
    # Keys a newer app version adds are ignored: refusing them would park real deliveries.
    class Meta:
        unknown = EXCLUDE


class CourierReceiverIn(Tolerant):
    kind = fields.Enum(ReceiverKind, by_value=True, required=True)
    name = Text(load_default=None, max_length=200)
    relation = Text(load_default=None, max_length=100,
                    metadata={"description": "The authorised person's relation to the recipient"})

    @validates_schema
    def _authorised(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["kind"] is ReceiverKind.AUTHORISED:
            if not data.get("name"):
                raise ValidationError("Give the authorised person's name.", "name")
            if not data.get("relation"):
                raise ValidationError("Give the authorised person's relation to the recipient.", "relation")


class CourierIdCheckIn(Tolerant):
    kind = fields.Enum(IdCheckKind, by_value=True, required=True,
                       validate=validate.OneOf([IdCheckKind.ID_LAST4, IdCheckKind.OTP]))
    value = fields.String(required=True, validate=validate.Length(1, 16))

    @validates_schema
    def _value(self, data: dict[str, Any], **kwargs: Any) -> None:
        value = data["value"].strip()
        if data["kind"] is IdCheckKind.ID_LAST4 and not (len(value) == 4 and value.isdigit()):
            raise ValidationError("Give the last 4 digits of the ID card.", "value")
        if data["kind"] is IdCheckKind.OTP and not (len(value) == 6 and value.isdigit()):
            raise ValidationError("Give the 6-digit one-time code.", "value")


class CourierSyncEventIn(Tolerant):
    """One event from the phone's outbox."""

    event_id = fields.String(required=True, validate=CLIENT_ID)
    item_id = fields.String(required=True, validate=validate.Length(1, 20))
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    device_time = fields.AwareDateTime(required=True, validate=reasonable_time)
    latitude = fields.Float(load_default=None, validate=validate.Range(-90, 90))
    longitude = fields.Float(load_default=None, validate=validate.Range(-180, 180))
    accuracy_m = fields.Float(load_default=None, validate=validate.Range(0, 100_000))
    receiver = fields.Nested(CourierReceiverIn, load_default=None)
    id_check = fields.Nested(CourierIdCheckIn, load_default=None)
    amount_collected_vnd = fields.Integer(load_default=None, strict=True, validate=validate.Range(0, MAX_VND))
    reason = fields.String(load_default=None, validate=validate.Length(1, 64))
    note = Text(load_default=None, max_length=500, multiline=True)
    next_attempt_date = Day(load_default=None)
    documents = fields.List(Text(max_length=200, required=True), load_default=None,
                            validate=validate.Length(max=50))
    sealed = fields.Boolean(load_default=None)
    fees_collected_vnd = fields.Integer(load_default=None, strict=True, validate=validate.Range(0, MAX_VND))
    corrects = fields.String(load_default=None, validate=CLIENT_ID)
    files = fields.List(fields.String(validate=UUID), load_default=list, validate=validate.Length(max=20))

    @validates_schema
    def _per_action(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        if (data.get("latitude") is None) != (data.get("longitude") is None):
            errors["latitude"] = ["Give both latitude and longitude, or neither."]
        action = data.get("action")
        if action == "delivered" and data.get("receiver") is None:
            errors["receiver"] = ["Say who received it: the recipient, or an authorised person."]
        if action == "failed_attempt":
            if not data.get("reason"):
                errors["reason"] = ["Choose why the attempt failed."]
            elif (message := rules.current().not_a_reason(data["reason"])) is not None:
                errors["reason"] = [message]
        if action == "dossier_picked_up":
            if not data.get("documents"):
                errors["documents"] = ["List the documents checked."]
            if data.get("sealed") is None:
                errors["sealed"] = ["Say whether the dossier was sealed."]
        if action == "correction" and not data.get("corrects"):
            errors["corrects"] = ["Give the event_id of the event to correct."]
        if errors:
            raise ValidationError(errors)


class CourierSyncIn(Schema):
    """A batch of events; each one is checked on its own (a bad one never stops the others)."""

    events = fields.List(fields.Raw(), required=True,
                         metadata={"description": "1 to SYNC_MAX_EVENTS (200) events"})

    @validates_schema
    def _size(self, data: dict[str, Any], **kwargs: Any) -> None:
        limit = current_app.config["SYNC_MAX_EVENTS"]
        if not 1 <= len(data["events"]) <= limit:
            raise ValidationError(f"Send 1 to {limit} events per batch.", "events")


class CourierSyncError(Schema):
    code = fields.String()
    reason = fields.String(metadata={
        "description": "The stable name of this refusal, for the app to word it in its own language "
                       "(docs/courier-api.md); the message is English",
        "enum": list(REFUSAL_REASONS)})
    message = fields.String()
    fields_ = fields.Dict(data_key="fields", attribute="fields")
    next_attempt_date = fields.String(metadata={
        "description": "With not_due_yet: the day (YYYY-MM-DD) the order's next attempt is planned for"})


class CourierSyncResult(Schema):
    event_id = fields.String(allow_none=True)
    result = fields.String(metadata={"enum": ["applied", "duplicate", "rejected"]})
    status = fields.String(allow_none=True)
    error = fields.Nested(CourierSyncError, allow_none=True)


class CourierSyncOut(Schema):
    results = fields.List(fields.Nested(CourierSyncResult))


class CourierFileQuery(QueryArgs):
    item_id = fields.String(required=True, validate=validate.Length(1, 20))
    event_id = fields.String(required=True, validate=CLIENT_ID)
    kind = fields.Enum(FileKind, by_value=True, required=True)


class CourierFileOut(Schema):
    id = fields.String()
    attached = fields.Boolean()


class CourierRunQuery(QueryArgs):
    date = Day(load_default=None)


class CourierRunOut(Schema):
    """See docs/courier-api.md for ORDER."""

    route = fields.Dict()
    date = fields.String()
    timezone = fields.String(metadata={"description": "The service's time zone: days are decided in it"})
    sequenced = fields.Boolean()
    done = fields.Integer()
    total = fields.Integer()
    stops = fields.List(fields.Dict())
    unsequenced = fields.List(fields.Dict())
    failure_reasons = fields.List(fields.Dict())
    settings = fields.Dict()


# --- the usual event, checked without the schema -------------------------------------------------

_LEAN_KEYS = frozenset({"event_id", "item_id", "action", "device_time", "latitude", "longitude", "accuracy_m",
                        "receiver", "id_check", "amount_collected_vnd", "files"})
_LEAN_DEFAULTS = {"latitude": None, "longitude": None, "accuracy_m": None, "receiver": None, "id_check": None,
                  "amount_collected_vnd": None, "reason": None, "note": None, "next_attempt_date": None,
                  "documents": None, "sealed": None, "fees_collected_vnd": None, "corrects": None}
_EVENT_ID_MATCH = CLIENT_ID.regex.match


def _lean_float(value: Any, low: float, high: float) -> float | None:
    if type(value) is not float and type(value) is not int:
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer beyond floats: the schema says so
        return None
    return number if low <= number <= high else None  # NaN compares false: left to the schema


def lean_event(raw: dict[str, Any]) -> dict[str, Any] | None:
    """What ``CourierSyncEventIn().load(raw)`` returns, for the usual event (a pickup confirmation or a
    delivery to the recipient, with plain JSON values that the schema accepts); None for anything
    else, which the schema then loads (and words its errors). The schema costs more than the rest of
    the request's validation together; tests/test_sync_lean.py checks that both give the same."""
    if not raw.keys() <= _LEAN_KEYS:
        return None
    event_id, item_id, action = raw.get("event_id"), raw.get("item_id"), raw.get("action")
    if (type(event_id) is not str or _EVENT_ID_MATCH(event_id) is None or type(item_id) is not str
            or not 1 <= len(item_id) <= 20 or action not in ("delivered", "pickup_confirmed")):
        return None
    moment = raw.get("device_time")
    if type(moment) is not str or not moment:
        return None
    try:
        device_time = dt.datetime.fromisoformat(moment)
        if device_time.tzinfo is None or device_time.tzinfo.utcoffset(device_time) is None:
            return None
        reasonable_time(device_time)
    except (ValueError, ValidationError):
        return None
    data = dict(_LEAN_DEFAULTS)
    data.update(event_id=event_id, item_id=item_id, action=action, device_time=device_time, files=[])
    for key, low, high in (("latitude", -90, 90), ("longitude", -180, 180), ("accuracy_m", 0, 100_000)):
        if key in raw:
            if (number := _lean_float(raw[key], low, high)) is None:
                return None
            data[key] = number
    if (data["latitude"] is None) != (data["longitude"] is None):
        return None
    if "files" in raw and raw["files"] != []:
        return None
    if "amount_collected_vnd" in raw:
        amount = raw["amount_collected_vnd"]
        if type(amount) is not int or not 0 <= amount <= MAX_VND:
            return None
        data["amount_collected_vnd"] = amount
    if "receiver" in raw:
        receiver = raw["receiver"]
        if type(receiver) is not dict or receiver.keys() != {"kind"} or receiver["kind"] != "recipient":
            return None
        data["receiver"] = {"kind": ReceiverKind.RECIPIENT, "name": None, "relation": None}
    elif action == "delivered":
        return None
    if "id_check" in raw:
        check = raw["id_check"]
        if type(check) is not dict or check.keys() != {"kind", "value"}:
            return None
        kind, value = check["kind"], check["value"]
        if type(value) is not str or not 1 <= len(value) <= 16:
            return None
        digits = value.strip()
        if kind == "id_last4" and len(digits) == 4 and digits.isdigit():
            data["id_check"] = {"kind": IdCheckKind.ID_LAST4, "value": value}
        elif kind == "otp" and len(digits) == 6 and digits.isdigit():
            data["id_check"] = {"kind": IdCheckKind.OTP, "value": value}
        else:
            return None
    return data


def sync_out(results: list[dict[str, Any]]) -> dict[str, Any]:
    """``CourierSyncOut().dump({"results": results})`` for the results ``courier.services.sync`` builds,
    written out (tests/test_sync_lean.py holds the two equal)."""
    out = []
    for r in results:
        item: dict[str, Any] = {"event_id": _text(r["event_id"]), "result": _text(r["result"]),
                                "status": _text(r["status"])}
        if "error" in r:
            error = r["error"]
            item["error"] = None if error is None else {
                "code": _text(error["code"]), "reason": _text(error["reason"]),
                "message": _text(error["message"]), "fields": error["fields"]}
            if error is not None and "next_attempt_date" in error:
                item["error"]["next_attempt_date"] = _text(error["next_attempt_date"])
        out.append(item)
    return {"results": out}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
