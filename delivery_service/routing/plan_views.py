"""The supervisor's plan of a post office's day: the proposed plan next to the commune rule, and accept.

Thin: the work is in routing.plan. GET computes a proposal; "plan again" POSTs the order ids the
supervisor keeps on their route (a POST: hundreds of kept orders would not fit in a URL; GET still reads
``lock`` query values, for a short link); POST accept applies exactly the assignment the page showed.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from delivery_service.accounts.models import Role
from delivery_service.admin import tr
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db
from delivery_service.fields import whole_number
from delivery_service.routing import plan as planning
from delivery_service.units.services import unit_index
from delivery_service.web.access import page_actor, roles_required

bp = Blueprint("routing_plan", __name__, url_prefix="/routing/plan")

# routing.plan refuses a plan in English (the API's language); the page says why in Vietnamese too.
_REFUSALS = {
    "The plan sent back is not readable; compute it again.":
        "Không đọc được kế hoạch gửi lại; hãy tính lại.",
    "The plan is empty: nothing to accept.":
        "Kế hoạch trống: không có gì để nhận.",
    "The plan names a route that is not one of this post office's active routes.":
        "Kế hoạch có tuyến không thuộc các tuyến đang hoạt động của bưu cục này.",
    "The plan names an order that is not on this post office's routes for the day; compute it again.":
        "Kế hoạch có bưu gửi không nằm trên các tuyến của bưu cục này trong ngày; hãy tính lại.",
}


def _refusal(message: str) -> str:
    """A refusal of routing.plan in the reader's language; an unknown one as it is."""
    vi = _REFUSALS.get(message)
    return tr(vi, message) if vi else message


def _day(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        abort(404)


@bp.route("/<int:office_id>/<day>", methods=["GET", "POST"])
@roles_required(Role.SUPERVISOR, Role.ADMIN)
def show(office_id: int, day: str):
    """Kế hoạch ngày của bưu cục / The post office's day plan (POST: plan again with the kept orders)."""
    date = _day(day)
    values = request.form if request.method == "POST" else request.args
    # ``lock``: a box ticked on this page; ``kept``: the ids kept before, one field (comma-separated), so
    # that a long list stays one form part (werkzeug parses at most 1,000)
    raw = values.getlist("lock") + values.get("kept", "").split(",")
    locked = sorted({n for x in raw if (n := whole_number(x)) is not None})
    result = planning.build_plan(page_actor(), office_id, date, locked=locked)
    return render_template("routing/plan.html", plan=result, day=date, index=unit_index(),
                           prev_day=date - dt.timedelta(days=1), next_day=date + dt.timedelta(days=1))


@bp.post("/<int:office_id>/<day>/accept")
@roles_required(Role.SUPERVISOR, Role.ADMIN)
def accept(office_id: int, day: str):
    """Apply the plan shown: move the orders, re-sequence the runs."""
    date = _day(day)
    back = url_for("routing_plan.show", office_id=office_id, day=date.isoformat())
    try:
        assignment = planning.parse_assignment(request.form.get("assignment", ""))
        done = planning.accept_plan(page_actor(), office_id, date, assignment)
    except InvalidInput as exc:
        db.session.rollback()
        reasons = " ".join(_refusal(m) for ms in exc.errors.values() for m in ms)
        flash(tr("Không nhận được kế hoạch", "The plan was not accepted") + ": " + reasons, "error")
        return redirect(back, code=303)
    moved, runs = done.moved, len(done.resequenced)
    message = tr(f"Đã nhận kế hoạch: chuyển {moved} bưu gửi, sắp lại {runs} lộ trình",
                 f"Plan accepted: {moved} orders moved, {runs} runs re-sequenced")
    if done.resequenced:
        message += f" ({', '.join(done.resequenced)})"
    flash(message + ".", "success")
    if done.skipped:
        flash(tr("Không chuyển được (đã thay đổi)", "Not moved (changed meanwhile)") + ": "
              + ", ".join(done.skipped), "warning")
    return redirect(back, code=303)
