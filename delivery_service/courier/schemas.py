"""The courier app's JSON at the HTTP edge: the sync batch and each event in it."""

from __future__ import annotations

from typing import Any

from flask import current_app
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from delivery_service import rules
from delivery_service.courier.models import FileKind, IdCheckKind, ReceiverKind
from delivery_service.fields import Day, Text
from delivery_service.orders.schemas import MAX_VND, reasonable_time

ACTIONS = ("pickup_confirmed", "delivered", "failed_attempt", "dossier_picked_up", "correction")
CLIENT_ID = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._:-]{7,63}$",
                            error="Must be 8-64 letters, digits, '.', '_', ':' or '-' (a UUID).")
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
            codes = [r["code"] for r in rules.current().reasons]
            if not data.get("reason"):
                errors["reason"] = ["Choose why the attempt failed."]
            elif data["reason"] not in codes:
                errors["reason"] = [f"Must be one of: {', '.join(codes)}."]
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
    message = fields.String()
    fields_ = fields.Dict(data_key="fields", attribute="fields")


class CourierSyncResult(Schema):
    event_id = fields.String(allow_none=True)
    result = fields.String(metadata={"enum": ["applied", "duplicate", "rejected"]})
    status = fields.String(allow_none=True)
    error = fields.Nested(CourierSyncError, allow_none=True)


class CourierSyncOut(Schema):
    results = fields.List(fields.Nested(CourierSyncResult))


class CourierFileQuery(Schema):
    item_id = fields.String(required=True, validate=validate.Length(1, 20))
    event_id = fields.String(required=True, validate=CLIENT_ID)
    kind = fields.Enum(FileKind, by_value=True, required=True)


class CourierFileOut(Schema):
    id = fields.String()
    attached = fields.Boolean()


class CourierRunQuery(Schema):
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
