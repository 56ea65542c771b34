"""The reports API at the HTTP edge: counters' daily totals and reporting areas."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from delivery_service.fields import Day, QueryArgs, Text
from delivery_service.orders.schemas import StrictSchema
from delivery_service.reports import inputs
from delivery_service.units.models import REFORM_DATE, UnitLevel
from delivery_service.units.services import unit_index
from delivery_service.vietnamese import sorted_vi


def reportable_day(day: dt.date) -> None:
    """A day a counter may report: not in the future, at most 400 days ago (local dates)."""
    from delivery_service.orders.services import local_today

    problem = inputs.day_problem(day, local_today())
    if problem:
        raise ValidationError(problem)


def _results_total(**kwargs: Any) -> fields.Integer:
    return fields.Integer(strict=True, validate=validate.Range(0, inputs.MAX_TOTAL, error=inputs.TOTAL_RANGE),
                          metadata={"description": "All the results the counter handed out that day, by "
                                                   "post or not", "example": 120}, **kwargs)


# --- counters' daily totals ----------------------------------------------------------------------

class DayPath(Schema):
    day = Day(required=True, validate=reportable_day,
                      metadata={"description": "The local day (YYYY-MM-DD): not in the future, at most "
                                               f"{inputs.MAX_PAST_DAYS} days ago"})


class TotalIn(StrictSchema):
    """A counter's total for the day in the path."""

    results_total = _results_total(required=True)


class DayTotalIn(StrictSchema):
    """One day's total in a bulk write. An empty list and a day given twice are refused by the service
    (inputs.save_totals), with the same errors."""

    day = Day(required=True, validate=reportable_day)
    results_total = _results_total(required=True)

    @pre_load(pass_collection=True)
    def _at_most(self, data: Any, many: bool, **kwargs: Any) -> Any:
        # Before loading each item: a list too long is refused whole.
        if many and isinstance(data, list) and len(data) > inputs.MAX_DAYS:
            raise ValidationError(f"At most {inputs.MAX_DAYS} days at once.")
        return data


class DayTotalForm(DayTotalIn):
    """One day's total as the counter's page takes it: a total that is not a whole number hears the
    range, as one out of it does."""

    results_total = _results_total(required=True, error_messages={"invalid": inputs.TOTAL_RANGE})


class TotalsQuery(QueryArgs):
    from_ = Day(data_key="from", load_default=None,
                        metadata={"description": "First day (default: 30 days before `to`)"})
    to = Day(load_default=None, metadata={"description": "Last day (default: today)"})

    @validates_schema
    def _span(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start and end and end < start:
            raise ValidationError("Must not be before from.", "to")
        if start and end and (end - start).days + 1 > inputs.MAX_DAYS:
            raise ValidationError(f"At most {inputs.MAX_DAYS} days at once.", "to")


class ReporterOut(Schema):
    kind = fields.String(metadata={"description": "user (a counter's staff) or api_client (its software)"})
    name = fields.String(allow_none=True)


class TotalOut(Schema):
    day = fields.Date()
    results_total = fields.Integer()
    reported_by = fields.Nested(ReporterOut, allow_none=True)
    updated_at = fields.DateTime()


# --- reporting areas -----------------------------------------------------------------------------

class UnitRefIn(StrictSchema):
    """A unit by its GSO code: a 2025 commune, or (legacy) a commune or district before 1 Jul 2025."""

    level = fields.String(required=True, validate=validate.OneOf(["commune", "district"]),
                          metadata={"description": "commune, or district (legacy only)"})
    code = fields.String(required=True, validate=validate.Length(1, 16), metadata={"example": "522"})
    legacy = fields.Boolean(load_default=False,
                            metadata={"description": "The code as it was on 30 Jun 2025 (or on `on`)"})
    on = Day(load_default=None, metadata={
        "description": "Legacy codes: the day the code was valid, before 1 Jul 2025 (default 30 Jun 2025)"})

    @validates_schema
    def _legacy_day(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("on") is not None and data["on"] >= REFORM_DATE:
            raise ValidationError("Must be before 1 Jul 2025; 2025 codes need no day.", "on")


class AreaIn(StrictSchema):
    """A reporting area: its communes, given as 2025 communes or as former communes and districts; it
    stores the 2025 communes they count for."""

    code = fields.String(required=True, validate=validate.Length(1, 32), metadata={"example": "TPQNG-CU"})
    name = Text(required=True, max_length=200, metadata={"example": "TP Quảng Ngãi (cũ)"})
    units = fields.List(
        fields.Nested(UnitRefIn), required=True,
        validate=validate.Length(1, 5000,
                                 error="Give at least one commune or former district (at most {max})."),
        metadata={"example": [{"level": "district", "code": "522", "legacy": True},
                              {"level": "commune", "code": "21028"}]})


def area_input(data: dict[str, Any]) -> inputs.AreaInput:
    """AreaIn's loaded data as the service takes it."""
    refs = [inputs.UnitRef(UnitLevel(u["level"]), u["code"],
                           u["on"] or (inputs.LAST_LEGACY_DAY if u["legacy"] else None))
            for u in data["units"]]
    return inputs.AreaInput(code=data["code"], name=data["name"], units=refs)


class CommuneOut(Schema):
    code = fields.String()
    name = fields.String()


class OwnerOut(Schema):
    level = fields.Enum(UnitLevel, by_value=True)
    code = fields.String()
    name = fields.String()


class _UnitsInVietnameseOrder(fields.List):
    """Units dumped in Vietnamese order (vietnamese.sort_key), as every list people read."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        ordered = None if value is None else sorted_vi(value, key=lambda u: u.name)
        return super()._serialize(ordered, attr, obj, **kwargs)


class AreaOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    owner_unit = fields.Method("_owner", allow_none=True, metadata={
        "description": "The unit whose district officers own it (null: the whole service's)"})
    communes = _UnitsInVietnameseOrder(fields.Nested(CommuneOut), metadata={"description": "2025 communes"})
    created_at = fields.DateTime()
    dashboard = fields.Function(lambda a: f"/reports/?level=commune&area={a.id}",
                                metadata={"description": "The area's figures per commune"})

    def _owner(self, area: Any) -> dict[str, Any] | None:
        # From the unit index: a list of areas costs no query per owner.
        unit = unit_index().by_id.get(area.owner_unit_id) if area.owner_unit_id else None
        return OwnerOut().dump(unit) if unit else None
