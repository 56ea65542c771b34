"""Routing at the HTTP edge: routes with their coverage, runs, moves and coverage edits."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from delivery_service.fields import Day, QueryArgs, Text
from delivery_service.orders.schemas import OrderOut
from delivery_service.orgs.models import MAX_CAPACITY_PER_DAY
from delivery_service.orgs.services import route_code
from delivery_service.routing.models import PartKind


class UnitRef(Schema):
    code = fields.String()
    name = fields.String()


class RuleOut(Schema):
    commune = fields.Nested(UnitRef)
    kind = fields.Enum(PartKind, by_value=True)
    phrase = fields.String()


class RouteOut(Schema):
    """A route and what it covers."""

    code = fields.String()
    name = fields.String()
    post_office = fields.Function(lambda r: {"code": r.post_office.code, "name": r.post_office.name})
    active = fields.Boolean()
    has_courier = fields.Function(lambda r: r.courier_id is not None)
    capacity_per_day = fields.Integer(
        allow_none=True, metadata={"description": "Orders a day; null: no limit"}
    )
    backup_route = fields.Function(lambda r: route_code(r.backup_route_id), allow_none=True)
    return_to_office = fields.Boolean(metadata={"description": "False: an open run, ending at the last stop"})
    communes = fields.Method("_communes", metadata={"description": "Communes covered in whole"})
    rules = fields.Method("_rules", metadata={"description": "Parts of communes: hamlets or streets"})

    def _communes(self, route: Any) -> list[dict[str, str]]:
        return [{"code": u.code, "name": u.name} for u in self.context_coverage(route)["communes"]]

    def _rules(self, route: Any) -> list[dict[str, Any]]:
        return [
            {
                "commune": {"code": r.commune.code, "name": r.commune.name},
                "kind": r.kind.value,
                "phrase": r.phrase,
            }
            for r in self.context_coverage(route)["rules"]
        ]

    def context_coverage(self, route: Any) -> dict[str, list]:
        from delivery_service.routing.services import coverage

        cached = getattr(route, "_coverage", None)
        if cached is None:
            cached = coverage([route.id])[route.id]
        return cached


class RuleIn(Schema):
    class Meta:
        unknown = RAISE

    commune_code = fields.String(required=True, validate=validate.Length(1, 16))
    kind = fields.Enum(PartKind, by_value=True, required=True)
    phrase = Text(required=True, max_length=120)


class CoverageIn(Schema):
    """What to change on a route; fields left out stay as they are."""

    class Meta:
        unknown = RAISE

    communes = fields.List(
        fields.String(validate=validate.Length(1, 16)),
        validate=validate.Length(max=500),
        metadata={"description": "Codes of the communes covered in whole (replaces them)"},
    )
    rules = fields.List(
        fields.Nested(RuleIn),
        validate=validate.Length(max=500),
        metadata={"description": "Hamlet and street rules (replaces them)"},
    )
    capacity_per_day = fields.Integer(allow_none=True, validate=validate.Range(0, MAX_CAPACITY_PER_DAY))
    backup_route = fields.String(allow_none=True, validate=validate.Length(max=32))
    return_to_office = fields.Boolean()


class MoveIn(Schema):
    class Meta:
        unknown = RAISE

    route = fields.String(
        required=True, validate=validate.Length(1, 32), metadata={"description": "Route code"}
    )
    date = Day(load_default=None, metadata={"description": "Day of the run (default: as planned)"})
    note = Text(load_default=None, max_length=300)


class RunQuery(QueryArgs):
    date = Day(load_default=None, metadata={"description": "Day of the run (default: today)"})


class StopOrder(OrderOut):
    class Meta:
        fields = (
            "item_id",
            "status",
            "direction",
            "recipient",
            "address",
            "collect_vnd",
            "postage_due_vnd",
            "payer",
            "dossier_code",
            "note",
        )


class StopOut(Schema):
    number = fields.Integer(metadata={"description": "Stop number; orders at one address share it"})
    orders = fields.List(fields.Nested(StopOrder))
    leg_m = fields.Float(
        metadata={"description": "Metres from the previous stop (the post office for stop 1)"}
    )
    cumulative_m = fields.Float()
    latitude = fields.Float()
    longitude = fields.Float()
    estimated = fields.Boolean(metadata={"description": "Placed by a commune centroid, not the address"})
    located = fields.Boolean(metadata={"description": "False: no coordinate at all, placed at the office"})


class RunOut(Schema):
    route = fields.Function(lambda v: v.route.code)
    date = fields.Date(attribute="day")
    courier = fields.Function(lambda v: v.courier.username if v.courier else None, allow_none=True, metadata={
        "description": "The user name of the courier who works the run: for a day gone by, the one who "
                       "worked it (whoever has the route since); null when the route has none",
        "type": "string"})
    sequenced_at = fields.Function(
        lambda v: v.run.sequenced_at.isoformat() if v.run else None, allow_none=True
    )
    version = fields.Function(lambda v: v.run.version if v.run else 0)
    return_to_office = fields.Function(lambda v: v.route.return_to_office)
    total_m = fields.Function(lambda v: v.run.total_m if v.run else 0.0)
    return_m = fields.Function(lambda v: v.run.return_m if v.run else 0.0)
    distances = fields.String(allow_none=True, metadata={
        "description": "Where the run's distances come from: road (the road graph) or straight_line; "
                       "null before the first sequencing"})
    done = fields.Integer(metadata={"description": "The run's orders done: the sum of outcomes"})
    outcomes = fields.Function(
        lambda v: {status.value: n for status, n in v.outcomes},
        metadata={"description": "The done orders by status (delivered, failed_attempt, returned_to_agency, "
                                 "cancelled, picked_up, delivered_to_agency), only those with orders",
                  "type": "object", "additionalProperties": {"type": "integer", "minimum": 1}})
    total = fields.Integer()
    stops = fields.List(fields.Nested(StopOut))
    unsequenced = fields.List(
        fields.Nested(StopOrder),
        metadata={
            "description": "Orders due that day added after the last sequencing: re-sequence to place them"
        },
    )


class AssignIn(Schema):
    class Meta:
        unknown = RAISE

    date = Day(load_default=None, metadata={"description": "Run day (default: each order's own)"})
