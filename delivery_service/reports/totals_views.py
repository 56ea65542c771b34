"""Counters' daily totals (the form under /counter/totals) and reporting areas (/reports/areas).

Thin: the rules are in reports.inputs; this module turns form fields into its inputs, and its English
messages into the reader's language through the shared table (web.messages).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import format_decimal, format_percent, gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from marshmallow import ValidationError

from delivery_service.accounts.models import Role
from delivery_service.errors import Forbidden, InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.orders.services import local_today
from delivery_service.reports import inputs
from delivery_service.reports.schemas import DayTotalForm
from delivery_service.web.access import page_actor, roles_required
from delivery_service.web.messages import translate_message

bp = Blueprint("report_input", __name__)


def _said(errors: Mapping[str, Any]) -> dict[str, list[str]]:
    """Errors by field, each message in the reader's language (the shared table of web.messages)."""
    return {key: [translate_message(m) for m in (value if isinstance(value, list) else [value])]
            for key, value in errors.items()}


# --- counters' daily totals ----------------------------------------------------------------------

_DMY = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
TOTAL_LABELS = {"day": _l("Day"), "results_total": _l("Results handed out that day (all, by post or not)")}


def _form_total(values: Mapping[str, str]) -> dict[str, Any]:
    """The typed day (2025-07-01 or 01/07/2025) and number (1.200 or 1,200 too) as DayTotalForm takes
    them."""
    day = values["day"]
    match = _DMY.fullmatch(day)
    if match:
        day = f"{match.group(3)}-{int(match.group(2)):02d}-{int(match.group(1)):02d}"
    raw = re.sub(r"(?<=\d)[.,\s](?=\d{3}\b)", "", values["results_total"])
    number: Any = int(raw) if re.fullmatch(r"-?\d{1,9}", raw) else raw
    return {"day": day, "results_total": number} if raw else {"day": day}


@bp.route("/counter/totals", methods=["GET", "POST"])
@roles_required(Role.COUNTER_STAFF)
def totals():
    """The counter's last 14 days: results sent by post beside all the results it handed out (as it
    reports them here), and the share sent by post. POST saves one day's total."""
    actor = page_actor()
    today = local_today()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {name: (request.form.get(name) or "").strip() for name in TOTAL_LABELS}
        try:
            data = DayTotalForm().load(_form_total(values))
            saved = inputs.save_total(actor, inputs.DayTotal(data["day"], data["results_total"]), today=today)
        except ValidationError as exc:
            errors = _said(exc.messages)  # type: ignore[arg-type]
        except InvalidInput as exc:
            db.session.rollback()
            errors = _said(exc.errors)
        else:
            db.session.commit()
            flash(gettext("Saved: %(total)s results handed out on %(day)s.",
                          total=format_decimal(saved.results_total), day=saved.day.strftime("%d/%m/%Y")),
                  "success")
            sent = inputs.sent_by_post(inputs.reporting_counter(actor), saved.day, saved.day,
                                       current_app.config["SERVICE_TIMEZONE"]).get(saved.day, 0)
            if saved.results_total < sent:  # saved all the same: the figure may be corrected later
                flash(gettext("The total is below the %(sent)s results this counter sent by post that day: "
                              "check the figure.", sent=format_decimal(sent)), "warning")
            return redirect(url_for("report_input.totals"), code=303)
    else:
        values = {"day": request.args.get("day") or today.isoformat(), "results_total": ""}
    rows = inputs.recent_days(actor, today, current_app.config["SERVICE_TIMEZONE"])
    if request.method == "GET":
        chosen = next((r for r in rows if r.day.isoformat() == values["day"]), None)
        if chosen is not None and chosen.results_total is not None:
            values["results_total"] = str(chosen.results_total)
    focus = next((name for name in TOTAL_LABELS if name in errors), "results_total")
    return render_template("reports/totals.html", rows=rows, values=values, errors=errors,
                           labels=TOTAL_LABELS, focus=focus, today=today,
                           earliest=today - dt.timedelta(days=inputs.MAX_PAST_DAYS),
                           percent=_percent), 422 if errors else 200


def _percent(share: float | None) -> str:
    return format_percent(share, format="#,##0.#%") if share is not None else "—"


# --- reporting areas -----------------------------------------------------------------------------

AREA_LABELS = {"code": _l("Code"), "name": _l("Name"), "units": _l("Codes of communes or former districts")}


@bp.get("/reports/areas")
@roles_required(Role.ADMIN, Role.DISTRICT_OFFICER)
def areas():
    """The reporting areas the user may see, each linked to its figures, and a form for a new one."""
    return _areas_page({name: "" for name in AREA_LABELS}, {})


def _areas_page(values: dict[str, str], errors: dict[str, list[str]], status: int = 200):
    actor = page_actor()
    focus = next((name for name in AREA_LABELS if name in errors), "code")
    return render_template("reports/areas.html", areas=inputs.list_areas(actor), values=values,
                           errors=errors, labels=AREA_LABELS, focus=focus,
                           owner=current_user.area_unit), status


@bp.post("/reports/areas")
@roles_required(Role.ADMIN, Role.DISTRICT_OFFICER)
def create_area():
    """Save a new area from its code, name and the unit codes typed in the text box."""
    values = {name: (request.form.get(name) or "").strip() for name in AREA_LABELS}
    today = local_today()
    typed = inputs.refs_from_text(values["units"], today)
    data = inputs.AreaInput(code=values["code"], name=values["name"], units=[ref for _raw, ref in typed])
    try:
        area = inputs.create_area(page_actor(), data, today=today, ip=request.remote_addr)
    except InvalidInput as exc:
        db.session.rollback()
        return _areas_page(values, _area_errors(exc.errors, typed), 422)
    except Forbidden as exc:
        db.session.rollback()
        outside = ", ".join(typed[int(i)][0] for i in exc.details.get("units", []))
        return _areas_page(values, {"units": [gettext(
            "Outside your area: %(codes)s. Your areas may only hold communes of your own area.",
            codes=outside)]}, 403)
    db.session.commit()
    flash(ngettext("Area %(code)s saved with %(num)d commune.", "Area %(code)s saved with %(num)d communes.",
                   len(area.communes), code=area.code), "success")
    return redirect(url_for("report_input.areas"), code=303)


def _area_errors(errors: Mapping[str, Any], typed: list[tuple[str, inputs.UnitRef]]) -> dict[str, list[str]]:
    """Like _said; the units' errors by position come back beside the code typed there."""
    units = errors.get("units")
    if not isinstance(units, Mapping):
        return _said(errors)
    return {**_said({k: v for k, v in errors.items() if k != "units"}),
            "units": [f"{typed[int(i)][0]}: {translate_message(m)}" for i, ms in units.items() for m in ms]}


@bp.post("/reports/areas/<int:area_id>/delete")
@roles_required(Role.ADMIN, Role.DISTRICT_OFFICER)
def delete_area(area_id: int):
    """Delete an area the user may see."""
    try:
        inputs.delete_area(page_actor(), area_id, ip=request.remote_addr)
    except NotFound:
        abort(404)
    db.session.commit()
    flash(gettext("Area deleted."), "success")
    return redirect(url_for("report_input.areas"), code=303)
