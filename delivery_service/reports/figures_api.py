"""The dashboard's figures as JSON: ``GET /api/v1/reports/figures``, for a province's own dashboard or
the public-service portal to pull.

The answer is the dashboard's table for the same level and period (reports.figures.figures, the very
function the page calls), scoped to the caller as the page is (reports.figures.scope_conditions):
admins everything, district officers their area, supervisors their post office, counter staff and a
counter's software their counter, or the unit an administrator gave it as its reporting scope
(api_clients.report_unit_id: it then reads as a district officer of that unit). ``unit`` narrows it to
one unit of the level, as the page's filter of the same name does; a unit the caller's scope does not
reach is a 404, as one that does not exist.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import url_for
from flask_babel import force_locale
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from delivery_service import rules
from delivery_service.accounts.models import ApiClient, Role, User
from delivery_service.accounts.services import Actor, record
from delivery_service.api import current_actor, protected
from delivery_service.errors import Forbidden, InvalidInput, NotFound, coded
from delivery_service.errors import Text as Both
from delivery_service.extensions import db
from delivery_service.fields import Day, QueryArgs, Text
from delivery_service.localtime import local_today
from delivery_service.orgs.models import Counter, PostalRoute, PostOffice, route_communes
from delivery_service.reports.bands import BANDS, LABELS, colour_of
from delivery_service.reports.figures import (
    READERS,
    Cols,
    Filters,
    Level,
    Report,
    Row,
    figures,
    scope_conditions,
)
from delivery_service.reports.models import ReportArea, ReportUnit, report_area_communes
from delivery_service.reports.units import ensure_unit_map
from delivery_service.reports.views import MAX_DAYS, row_label, scope_label
from delivery_service.units.models import AdminUnit, UnitLevel

RATES = ("delivery_rate", "on_time_rate", "post_share")
COUNTS = ("received", "delivered", "on_time", "failed_attempts", "returned", "cancelled", "open", "overdue",
          "abandoned", "closed", "received_results")
_MAX_ID = 2**53


# --- schemas --------------------------------------------------------------------------------------

class FiguresQuery(QueryArgs):
    """What to report: a level, a period of local days (both ends included), optionally one unit."""

    level = fields.Enum(Level, by_value=True, load_default=Level.DISTRICT, metadata={
        "description": "The units the figures are given for, one row each (as the dashboard's "
                       "\"Units by\"): province (2025), district (former, before 1 Jul 2025; 2025 "
                       "communes count for the district most of them came from), commune (2025), "
                       "area (reporting areas), post_office, route, counter, courier"})
    start = Day(load_default=None, metadata={
        "description": "First local day (YYYY-MM-DD); default: the Monday of `end`'s week"})
    end = Day(load_default=None, metadata={
        "description": "Last local day, included (YYYY-MM-DD); default: today, or `start` when it is "
                       f"later. At most {MAX_DAYS} days from `start`"})
    unit = Text(max_length=64, load_default=None, metadata={
        "description": "Only this unit of the level: its code (GSO code of a province, former district or "
                       "commune: a former commune's code stands for the 2025 commune it became; the code "
                       "of an area, post office, route or counter; a courier's username), or else its "
                       "`id` as the answer's rows give it. 404 when it does not exist or is outside the "
                       "caller's scope", "example": "522"})

    @validates_schema
    def _period(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "start" not in data or "end" not in data:
            return  # refused already
        start, end = period(data["start"], data["end"], local_today())
        if end < start:
            raise ValidationError(coded("invalid_period", "Must not be before start."), "end")
        if (end - start).days + 1 > MAX_DAYS:
            field = "end" if data["end"] is not None else "start"
            raise ValidationError(coded("period_too_long", f"At most {MAX_DAYS} days from start to end "
                                                           "(end: today when not given)."), field)


class FiguresBandsOut(Schema):
    delivery_rate = fields.String(allow_none=True, validate=validate.OneOf(BANDS))
    on_time_rate = fields.String(allow_none=True, validate=validate.OneOf(BANDS))
    post_share = fields.String(allow_none=True, validate=validate.OneOf(BANDS))


class FiguresRowOut(Schema):
    """One unit's figures (docs/reports.md defines each)."""

    id = fields.Integer(allow_none=True, metadata={
        "description": "The unit's id (`unit` takes it); null for the row of what belongs to no unit of "
                       "the level (not on any route, no courier, no former district)"})
    code = fields.String(allow_none=True)
    name = fields.String(metadata={"description": "As the dashboard writes it (Vietnamese)"})
    received = fields.Integer(metadata={"description": "Orders created in the period"})
    delivered = fields.Integer(metadata={"description": "Deliveries in the period"})
    on_time = fields.Integer(metadata={"description": "Of those, on or before the due date"})
    failed_attempts = fields.Integer()
    returned = fields.Integer(metadata={"description": "Results returned to the agency"})
    cancelled = fields.Integer()
    open = fields.Integer(metadata={"description": "Orders received in the period and not closed now"})
    overdue = fields.Integer(metadata={"description": "Of those, past their due date today"})
    abandoned = fields.Integer(metadata={"description": "Pickups cancelled after a failed attempt"})
    closed = fields.Integer(metadata={"description": "delivered + returned + abandoned"})
    received_results = fields.Integer(metadata={"description": "Received orders that carry a result"})
    results_total = fields.Integer(allow_none=True, metadata={
        "description": "All results the counters handed out, where they reported their daily totals"})
    delivery_rate = fields.Float(allow_none=True, metadata={"description": "delivered ÷ closed (0–1)"})
    on_time_rate = fields.Float(allow_none=True, metadata={"description": "on_time ÷ delivered (0–1)"})
    post_share = fields.Float(allow_none=True, metadata={
        "description": "received_results ÷ results_total (0–1)"})
    median_hours = fields.Float(allow_none=True, metadata={
        "description": "Median hours from handover to delivery (exact to its histogram bin)"})
    p90_hours = fields.Float(allow_none=True, metadata={"description": "90 % delivered within (hours)"})
    bands = fields.Nested(FiguresBandsOut, metadata={
        "description": "Each rate's colour band (null without the rate)"})


class FiguresBandLimitsOut(Schema):
    delivery_rate = fields.List(fields.Float())
    on_time_rate = fields.List(fields.Float())
    post_share = fields.List(fields.Float())


class FiguresOut(Schema):
    level = fields.Enum(Level, by_value=True)
    start = fields.Date()
    end = fields.Date()
    scope = fields.String(metadata={"description": "What the caller may see, in words (Vietnamese)"})
    as_of_event = fields.Integer(metadata={"description": "The figures count the event log up to this event"})
    pending_events = fields.Integer(metadata={"description": "Events not yet counted (0: up to date)"})
    units = fields.List(fields.Nested(FiguresRowOut), metadata={"description": "In the dashboard's order"})
    total = fields.Nested(FiguresRowOut, metadata={"description": "All the rows together (id, code null)"})
    band_limits = fields.Nested(FiguresBandLimitsOut, metadata={
        "description": "Lower limits of green, yellow and orange (below the last: red), per rate"})
    band_labels = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), metadata={
        "description": "Each band's label, Vietnamese then English", "example": {"green": ["Tốt", "Good"]}})
    dashboard = fields.String(metadata={"description": "The same figures on the dashboard page"})


# --- the view -------------------------------------------------------------------------------------

blp = protected(Blueprint("reports_figures_api", __name__, url_prefix="/reports",
                          description="The dashboard's figures as JSON"))


@blp.route("/figures", methods=["GET"])
@blp.arguments(FiguresQuery, location="query")
@blp.response(200, FiguresOut)
@blp.alt_response(403, description="A courier (no reports)")
@blp.alt_response(404, description="No such unit of the level, or outside the caller's scope")
def get_figures(query: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's figures for a level and a period.

    Counts, rates, median and p90 times and colour bands of every unit of the level the caller may
    see, and their total: exactly the dashboard's table (`/reports/`) for the same level and period.
    Staff sessions see what the dashboard shows them; a counter's software sees its counter's orders,
    or the unit an administrator gave it as its reporting scope.
    """
    actor = report_actor(current_actor())
    if actor.role not in READERS:
        raise Forbidden("Your role cannot read reports.")
    start, end = period(query["start"], query["end"], local_today())
    level: Level = query["level"]
    filters = Filters()
    if query["unit"] is not None:
        ensure_unit_map()  # the units' places, which the unit and the scope are read from
        key = resolve_unit(level, query["unit"])
        if key is None or not in_scope(actor, level, key):
            raise NotFound(f"No {level.value} {query['unit']!r} in your scope.", error="unknown_unit")
        filters = Filters(**{level.value: key})
    report = figures(actor, start, end, level, filters, memo=True)
    return answer(actor, report, filters)


def period(start: dt.date | None, end: dt.date | None, today: dt.date) -> tuple[dt.date, dt.date]:
    """The dashboard's defaults: this week, Monday to today (views.parse_query)."""
    if end is None:
        end = today if start is None or start <= today else start
    if start is None:
        start = end - dt.timedelta(days=end.weekday())
    return start, end


def answer(actor: Actor, report: Report, filters: Filters) -> dict[str, Any]:
    limits = rules.current().report_bands
    with force_locale("vi"):
        units = [_row(row, row_label(report.level, row)) for row in report.rows]
        total = _row(report.total, "Tổng cộng")
        total["id"] = total["code"] = None
        scope = str(scope_label(actor))
    args: dict[str, Any] = {"start": report.start.isoformat(), "end": report.end.isoformat(),
                            "level": report.level.value, **dict(filters.items())}
    return {"level": report.level, "start": report.start, "end": report.end, "scope": scope,
            "as_of_event": report.as_of_event, "pending_events": report.pending_events,
            "units": units, "total": total,
            "band_limits": {name: list(limits[name]) for name in RATES if name in limits},
            "band_labels": {name: list(LABELS[name]) for name in BANDS},
            "dashboard": url_for("reports.index", **args)}


def _row(row: Row, name: str) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.key, "code": row.code, "name": name,
                           **{c: getattr(row, c) for c in COUNTS}, "results_total": row.results_total,
                           "median_hours": row.median_hours, "p90_hours": row.p90_hours}
    out.update({r: getattr(row, r) for r in RATES})
    out["bands"] = {r: colour_of(r, getattr(row, r)) for r in RATES}
    return out


# --- API clients' reporting scope ------------------------------------------------------------------

def report_actor(actor: Actor) -> Actor:
    """Whom the figures are read as: a counter's software with a reporting scope (api_clients.
    report_unit_id) as a district officer of that unit; anyone else as themselves (a counter's software
    without one: its counter's staff)."""
    if actor.client_id is None:
        return actor
    unit_id = db.session.scalar(sa.select(ApiClient.report_unit_id).where(ApiClient.id == actor.client_id))
    if unit_id is None:
        return actor
    return Actor(label=actor.label, role=Role.DISTRICT_OFFICER, client_id=actor.client_id,
                 area_unit_id=unit_id)


def set_report_scope(admin: Actor, client_id: int, unit_code: str | None, *, today: dt.date,
                     ip: str | None = None) -> ApiClient:
    """Let an API client read the figures of a unit: a province or commune valid ``today``, or a former
    district (its orders before the reform and the 2025 communes that count for it), by code; None:
    its counter's figures again. Administrators only; recorded in the audit log."""
    if admin.role is not Role.ADMIN:
        raise Forbidden("Only administrators set an API client's reporting scope.")
    client = db.session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"No API client {client_id}")
    unit_id = None
    if unit_code is not None:
        unit_id = db.session.scalar(
            sa.select(AdminUnit.id).where(AdminUnit.code == unit_code, AdminUnit.level != UnitLevel.DISTRICT,
                                          AdminUnit.valid_from <= today,
                                          sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today))
            .order_by(AdminUnit.valid_from.desc()).limit(1)
        ) or db.session.scalar(_admin(UnitLevel.DISTRICT).where(AdminUnit.code == unit_code)
                               .order_by(AdminUnit.valid_from.desc()).limit(1))
        if unit_id is None:
            raise InvalidInput({"unit": [Both(  # the administration page shows the reader's language
                "Mã tỉnh hoặc xã hiện hành, hoặc mã huyện cũ.",
                "Give the code of a current province or commune, or of a former district.")]})
    before = {"report_unit_id": client.report_unit_id}
    client.report_unit_id = unit_id
    record("api_client.report_scope", actor=admin, object_type="api_client", object_id=client.id,
           before=before, after={"report_unit_id": unit_id}, ip=ip)
    db.session.flush()
    return client


# --- the unit and the caller's scope ---------------------------------------------------------------

def resolve_unit(level: Level, value: str) -> int | None:
    """The id of the unit of ``level`` that ``value`` names: by code first, then by id."""
    key = _by_code(level, value)
    if key is None and value.isascii() and value.isdigit() and int(value) < _MAX_ID:
        key = _by_id(level, int(value))
    return key


def _admin(level: UnitLevel) -> sa.Select:
    return sa.select(AdminUnit.id).where(AdminUnit.level == level)


def _by_code(level: Level, code: str) -> int | None:
    if level is Level.PROVINCE:
        return db.session.scalar(_admin(UnitLevel.PROVINCE).where(AdminUnit.code == code,
                                                                  AdminUnit.valid_to.is_(None)))
    if level is Level.DISTRICT:
        return db.session.scalar(_admin(UnitLevel.DISTRICT).where(AdminUnit.code == code)
                                 .order_by(AdminUnit.valid_from.desc()).limit(1))
    if level is Level.COMMUNE:
        current = db.session.scalar(_admin(UnitLevel.COMMUNE).where(AdminUnit.code == code,
                                                                    AdminUnit.valid_to.is_(None)))
        if current is not None:
            return current
        # A former commune's code: the 2025 commune it counts for.
        return db.session.scalar(sa.select(ReportUnit.commune_id)
                                 .join(AdminUnit, AdminUnit.id == ReportUnit.unit_id)
                                 .where(AdminUnit.level == UnitLevel.COMMUNE, AdminUnit.code == code)
                                 .order_by(AdminUnit.valid_from.desc()).limit(1))
    if level is Level.COURIER:
        return db.session.scalar(sa.select(User.id).where(User.username == code, User.role == Role.COURIER))
    model = _ORG_MODELS[level]
    return db.session.scalar(sa.select(model.id).where(model.code == code))


def _by_id(level: Level, key: int) -> int | None:
    if level is Level.PROVINCE:
        return db.session.scalar(_admin(UnitLevel.PROVINCE).where(AdminUnit.id == key,
                                                                  AdminUnit.valid_to.is_(None)))
    if level is Level.DISTRICT:
        return db.session.scalar(_admin(UnitLevel.DISTRICT).where(AdminUnit.id == key))
    if level is Level.COMMUNE:
        return db.session.scalar(sa.select(ReportUnit.commune_id).where(ReportUnit.commune_id == key)
                                 .limit(1))
    if level is Level.COURIER:
        return db.session.scalar(sa.select(User.id).where(User.id == key, User.role == Role.COURIER))
    model = _ORG_MODELS[level]
    return db.session.scalar(sa.select(model.id).where(model.id == key))


_ORG_MODELS: dict[Level, Any] = {Level.AREA: ReportArea, Level.POST_OFFICE: PostOffice,
                                 Level.ROUTE: PostalRoute, Level.COUNTER: Counter}


def in_scope(actor: Actor, level: Level, key: int) -> bool:
    """Whether the caller's scope reaches the unit.

    Admins: every unit. District officers: units placed in their area (administrative units and areas
    by their communes; counters and post offices by their unit; routes by the communes they serve or
    their post office's unit; couriers by the routes they drive), tested with the dashboard's own
    scope conditions. Supervisors: their post office, its routes, its counters and the couriers of its
    routes. Counter staff and counters' software: their counter. Administrative units and areas are
    reached by every reader: the figures themselves stay within the caller's scope.
    """
    if actor.role is Role.ADMIN:
        return True
    if actor.role is Role.DISTRICT_OFFICER:
        return _meets_area(actor, level, key)
    admin_units = (Level.PROVINCE, Level.DISTRICT, Level.COMMUNE, Level.AREA)
    if actor.role is Role.SUPERVISOR:
        office = actor.post_office_id
        if level is Level.POST_OFFICE:
            return key == office
        if level is Level.ROUTE:
            found = db.session.scalar(sa.select(PostalRoute.post_office_id).where(PostalRoute.id == key))
            return found == office
        if level is Level.COUNTER:
            return db.session.scalar(sa.select(Counter.post_office_id).where(Counter.id == key)) == office
        if level is Level.COURIER:
            return db.session.scalar(sa.select(sa.exists().where(
                PostalRoute.courier_id == key, PostalRoute.post_office_id == office))) or False
        return level in admin_units
    if actor.role is Role.COUNTER_STAFF:
        return key == actor.counter_id if level is Level.COUNTER else level in admin_units
    return False


def _meets_area(actor: Actor, level: Level, key: int) -> bool:
    ensure_unit_map()  # the map of communes it reads (built on the first report after an import)
    u = sa.orm.aliased(ReportUnit, name="u")
    none = sa.null()
    conditions = scope_conditions(actor, Cols(commune=u.unit_id, route=none, counter=none, courier=none,
                                              unit=u, office=none))

    def placed(units: Any) -> sa.ColumnElement[bool]:
        """The report unit is, or lies in, one of ``units`` (communes, districts or provinces)."""
        return sa.or_(u.unit_id.in_(units), u.district_id.in_(units), u.province_id.in_(units))

    def served(routes: Any) -> sa.ColumnElement[bool]:
        communes = sa.select(route_communes.c.unit_id).where(route_communes.c.route_id.in_(routes))
        offices = (sa.select(PostOffice.unit_id)
                   .join(PostalRoute, PostalRoute.post_office_id == PostOffice.id)
                   .where(PostalRoute.id.in_(routes)))
        return sa.or_(placed(communes), placed(offices))

    where: sa.ColumnElement[bool]
    if level is Level.PROVINCE:
        where = u.province_id == key
    elif level is Level.DISTRICT:
        where = u.district_id == key
    elif level is Level.COMMUNE:
        where = u.commune_id == key
    elif level is Level.AREA:
        where = u.commune_id.in_(sa.select(report_area_communes.c.unit_id)
                                 .where(report_area_communes.c.area_id == key))
    elif level is Level.COUNTER:
        where = placed(sa.select(Counter.unit_id).where(Counter.id == key))
    elif level is Level.POST_OFFICE:
        where = sa.or_(placed(sa.select(PostOffice.unit_id).where(PostOffice.id == key)),
                       served(sa.select(PostalRoute.id).where(PostalRoute.post_office_id == key)))
    elif level is Level.ROUTE:
        where = served(sa.select(PostalRoute.id).where(PostalRoute.id == key))
    else:
        where = served(sa.select(PostalRoute.id).where(PostalRoute.courier_id == key))
    return bool(db.session.scalar(sa.select(sa.exists().where(where, *conditions))))
