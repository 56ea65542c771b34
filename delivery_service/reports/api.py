"""The reports API under /api/v1: counters' daily totals, figures, reporting areas."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import request
from flask_smorest import Blueprint

from delivery_service.api import current_actor, protected
from delivery_service.extensions import db
from delivery_service.orders.services import local_today
from delivery_service.reports import inputs
from delivery_service.reports.schemas import (
    AreaIn,
    AreaOut,
    DayPath,
    DayTotalIn,
    TotalIn,
    TotalOut,
    TotalsQuery,
    area_input,
)

blp = protected(Blueprint("reports_api", __name__, url_prefix="/reports",
                          description="Report figures, counters' daily totals, reporting areas"))


# --- counters' daily totals ----------------------------------------------------------------------

@blp.route("/counter-totals", methods=["GET"])
@blp.arguments(TotalsQuery, location="query")
@blp.response(200, TotalOut(many=True))
@blp.alt_response(403, description="Not a counter's staff or software")
def list_counter_totals(query: dict[str, Any]):
    """The daily totals the caller's counter reported, oldest first (at most 366 days)."""
    end = query["to"] or local_today()
    start = query["from_"] or end - dt.timedelta(days=30)
    return inputs.list_totals(current_actor(), start, end)


@blp.route("/counter-totals/<day>", methods=["PUT"])
@blp.arguments(DayPath, location="path")
@blp.arguments(TotalIn)
@blp.response(200, TotalOut, description="The stored total (a repeat replaces the earlier value)")
@blp.alt_response(403, description="Not a counter's staff or software")
def put_counter_total(path: dict[str, Any], data: dict[str, Any], day: str):
    """Report all the results the caller's counter handed out on a day.

    All results, by post or not: the denominator of the share sent by post. Idempotent: the same day
    again replaces the value, and records who reported it and when.
    """
    total = inputs.save_total(current_actor(), inputs.DayTotal(path["day"], data["results_total"]),
                              today=local_today())
    db.session.commit()
    return total


@blp.route("/counter-totals", methods=["PUT"])
@blp.arguments(DayTotalIn(many=True))
@blp.response(200, TotalOut(many=True), description="The stored totals, oldest first")
@blp.alt_response(403, description="Not a counter's staff or software")
def put_counter_totals(data: list[dict[str, Any]]):
    """Report several days' totals at once.

    At most 366 days, each day once: all of them are stored, or none when any is wrong (the errors
    are keyed by position in the list).
    """
    totals = [inputs.DayTotal(item["day"], item["results_total"]) for item in data]
    stored = inputs.save_totals(current_actor(), totals, today=local_today())
    db.session.commit()
    return stored


# --- reporting areas -----------------------------------------------------------------------------

_AREA_403 = "Not an administrator or district officer, or a counter system's token; for a district " \
            "officer, units outside their own area"


@blp.route("/areas", methods=["GET"])
@blp.response(200, AreaOut(many=True))
@blp.alt_response(403, description=_AREA_403)
def list_areas():
    """Reporting areas: all for administrators; for a district officer, those inside their area."""
    return inputs.list_areas(current_actor())


@blp.route("/areas", methods=["POST"])
@blp.arguments(AreaIn)
@blp.response(201, AreaOut, description="The new area, with the 2025 communes it holds")
@blp.alt_response(403, description=_AREA_403)
def create_area(data: dict[str, Any]):
    """Define a reporting area.

    Units are 2025 communes, or former communes and districts (before 1 Jul 2025), which are stored as
    the 2025 communes they count for. A district officer's area must lie inside their own area.
    """
    area = inputs.create_area(current_actor(), area_input(data), today=local_today(), ip=request.remote_addr)
    db.session.commit()
    return area, 201, {"Location": f"/api/v1/reports/areas/{area.id}"}


@blp.route("/areas/<int:area_id>", methods=["GET"])
@blp.response(200, AreaOut)
@blp.alt_response(404, description="No such area, or not inside the officer's area")
def get_area(area_id: int):
    """One reporting area and its communes."""
    return inputs.get_area(current_actor(), area_id)


@blp.route("/areas/<int:area_id>", methods=["PUT"])
@blp.arguments(AreaIn)
@blp.response(200, AreaOut)
@blp.alt_response(403, description=_AREA_403)
@blp.alt_response(404, description="No such area, or not inside the officer's area")
def update_area(data: dict[str, Any], area_id: int):
    """Replace an area's code, name and communes."""
    area = inputs.update_area(current_actor(), area_id, area_input(data), today=local_today(),
                              ip=request.remote_addr)
    db.session.commit()
    return area


@blp.route("/areas/<int:area_id>", methods=["DELETE"])
@blp.response(204)
@blp.alt_response(404, description="No such area, or not inside the officer's area")
def delete_area(area_id: int):
    """Delete a reporting area (its stored weekly reports stay)."""
    inputs.delete_area(current_actor(), area_id, ip=request.remote_addr)
    db.session.commit()
    return None
