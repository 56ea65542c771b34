"""/api/v1/routes: routes and coverage, a route's run for a day, re-sequencing, moving orders."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import request
from flask_smorest import Blueprint

from delivery_service.api import current_actor, protected
from delivery_service.errors import InvalidInput
from delivery_service.orders.schemas import EventOut, OrderOut
from delivery_service.routing import services
from delivery_service.routing.schemas import AssignIn, CoverageIn, MoveIn, RouteOut, RunOut, RunQuery
from delivery_service.units.models import UnitLevel
from delivery_service.units.services import unit_index

blp = protected(
    Blueprint(
        "routes",
        __name__,
        url_prefix="/routes",
        description="Postal delivery routes: coverage, daily runs, dispatch",
    )
)
moves = protected(
    Blueprint("order_routes", __name__, url_prefix="/orders", description="Result-delivery orders")
)


def _with_coverage(routes: list[Any]) -> list[Any]:
    cov = services.coverage([r.id for r in routes])
    for route in routes:
        route._coverage = cov[route.id]
    return routes


@blp.route("", methods=["GET"])
@blp.response(200, RouteOut(many=True))
def list_routes():
    """Routes and the communes, hamlets and streets they cover (couriers: their own route)."""
    return _with_coverage(services.list_routes(current_actor()))


@blp.route("/<code>", methods=["GET"])
@blp.response(200, RouteOut)
def get_route(code: str):
    """One route and its coverage."""
    actor = current_actor()
    return _with_coverage(
        [services.get_route(actor, code, for_run=actor.role.value in ("courier", "supervisor"))]
    )[0]


@blp.route("/<code>/coverage", methods=["PUT"])
@blp.arguments(CoverageIn())
@blp.response(200, RouteOut)
def set_coverage(data: dict[str, Any], code: str):
    """Change what a route covers, its daily capacity, backup route or open/closed run."""
    kwargs: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if "communes" in data:
        kwargs["communes"] = []
        for i, unit_code in enumerate(data["communes"]):
            unit = _commune(unit_code)
            if unit is None:
                errors.setdefault(f"communes.{i}", []).append(f"No commune {unit_code} in force today.")
            else:
                kwargs["communes"].append(unit.id)
    if "rules" in data:
        kwargs["rules"] = []
        for i, rule in enumerate(data["rules"]):
            unit = _commune(rule["commune_code"])
            if unit is None:
                errors.setdefault(f"rules.{i}.commune_code", []).append(
                    f"No commune {rule['commune_code']} in force today."
                )
                continue
            kwargs["rules"].append(
                {"commune_id": unit.id, "kind": rule["kind"].value, "phrase": rule["phrase"]}
            )
    if errors:
        raise InvalidInput(errors)
    if "capacity_per_day" in data:
        kwargs["capacity"] = data["capacity_per_day"]
    if "backup_route" in data:
        kwargs["backup"] = data["backup_route"]
    if "return_to_office" in data:
        kwargs["return_to_office"] = data["return_to_office"]
    try:
        route = services.set_coverage(current_actor(), code, **kwargs, ip=request.remote_addr)
    except InvalidInput as exc:
        raise InvalidInput(_api_fields(exc.errors)) from None
    return _with_coverage([route])[0]


def _api_fields(errors: dict[str, Any]) -> dict[str, Any]:
    """The service's refusals at the fields of this API's body: ``backup`` is ``backup_route``, a
    rule's ``commune_id`` its ``commune_code``."""
    out: dict[str, Any] = {}
    for key, messages in errors.items():
        parts = key.split(".")
        if parts[0] == "backup":
            parts[0] = "backup_route"
        elif parts[0] == "rules" and parts[-1] == "commune_id":
            parts[-1] = "commune_code"
        out[".".join(parts)] = messages
    return out


def _commune(code: str):  # noqa: ANN202
    from delivery_service.orders.services import local_today

    return unit_index().find(UnitLevel.COMMUNE, code.strip(), local_today())


@blp.route("/<code>/run", methods=["GET"])
@blp.arguments(RunQuery, location="query")
@blp.response(200, RunOut)
def get_run(query: dict[str, Any], code: str):
    """A route's run for a day: the stops in order, with what to deliver and collect at each."""
    return services.get_run(current_actor(), code, _day(query.get("date")))


@blp.route("/<code>/run/sequence", methods=["POST"])
@blp.arguments(RunQuery, location="query")
@blp.response(200, RunOut)
def sequence_run(query: dict[str, Any], code: str):
    """Re-sequence a route's run (after orders were added or removed during the day)."""
    actor = current_actor()
    day = _day(query.get("date"))
    services.sequence_run(actor, code, day)
    return services.get_run(actor, code, day)


@blp.route("/dispatch", methods=["GET"])
@blp.response(200, OrderOut(many=True))
def dispatch_queue():
    """Orders waiting for a person to choose their route, with the reason in ``dispatch``."""
    return services.dispatch_queue(current_actor())


@blp.route("/assign", methods=["POST"])
@blp.arguments(AssignIn())
@blp.response(200, description="Orders placed, by outcome")
def assign_pending(data: dict[str, Any]):
    """Assign again every order waiting for a route (after coverage changed)."""
    return services.assign_pending(current_actor(), data.get("date"))


@moves.route("/<item_id>/route", methods=["POST"])
@moves.arguments(MoveIn())
@moves.response(201, EventOut, description="The order is on the route; the event records the move")
@moves.alt_response(409, description="The order is with a courier or closed")
def move_order(data: dict[str, Any], item_id: str):
    """Move an order to another route (supervisors, administrators)."""
    return services.move_order(
        current_actor(), item_id, data["route"], day=data.get("date"), note=data.get("note")
    )


def _day(day: dt.date | None) -> dt.date:
    from delivery_service.orders.services import local_today

    return day or local_today()
