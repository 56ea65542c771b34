"""/api/v1/units: administrative units for address pickers (public reference data)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from delivery_service.api import protected
from delivery_service.api.guards import INT64_MAX
from delivery_service.fields import Day, QueryArgs
from delivery_service.orders.services import local_today
from delivery_service.units.services import unit_index

blp = protected(Blueprint("units", __name__, url_prefix="/units",
                          description="Administrative units (provinces, districts, communes)"))


class UnitQuery(QueryArgs):
    parent = fields.Integer(load_default=None, validate=validate.Range(1, INT64_MAX),
                            metadata={"description": "Parent unit id; none: provinces"})
    on = Day(load_default=None, metadata={"description": "Date the units must be valid on"})


class UnitOut(Schema):
    id = fields.Integer()
    level = fields.String()
    code = fields.String()
    name = fields.String()
    kind = fields.String()


@blp.route("", methods=["GET"])
@blp.arguments(UnitQuery, location="query")
@blp.response(200, UnitOut(many=True))
@blp.doc(security=[])
def list_units(query: dict[str, Any]):
    """The provinces, or the children of one unit, valid on a date (today by default)."""
    day: dt.date = query["on"] or local_today()
    return unit_index().children_of(query["parent"], day)
