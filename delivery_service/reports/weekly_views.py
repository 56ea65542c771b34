"""The stored weekly PDF reports: list and download (pages under /reports/weekly).

Administrators see every report and may build last week's again; a district officer sees the reports
of the provinces, former districts and reporting areas that lie wholly inside their area; other roles
see none. A report someone may not read answers 404, like one that does not exist.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, send_file, url_for
from flask_babel import format_decimal, gettext
from flask_login import login_required

from delivery_service.accounts.models import Role
from delivery_service.extensions import db
from delivery_service.jobs import enqueue_after_commit
from delivery_service.orders.services import local_today
from delivery_service.outbox import OutboxJob
from delivery_service.reports import weekly
from delivery_service.reports.jobs import JOB_TIMEOUT
from delivery_service.web.access import page_actor, roles_required

bp = Blueprint("weekly_reports", __name__, url_prefix="/reports/weekly")
READERS = (Role.ADMIN, Role.DISTRICT_OFFICER)
WEEKS_SHOWN = 26  # links to the weeks with reports, newest first
BUILD_JOB = "delivery_service.reports.jobs:build_week"
UNFINISHED = ("pending", "handed", "running")


def _building(week_start: dt.date | None) -> bool:
    """Whether a build of that week's reports is queued or running (the job outbox's own state, so
    the page never says "being built" over reports that are done)."""
    if week_start is None:
        return False
    waiting = db.session.scalars(sa.select(OutboxJob.args).where(OutboxJob.func_path == BUILD_JOB,
                                                                 OutboxJob.state.in_(UNFINISHED)))
    return any(args and args[0] == week_start.isoformat() for args in waiting)


def _kilobytes(size: int) -> str:
    return format_decimal(size / 1024, format="#,##0.0")


@bp.get("/")
@roles_required(*READERS)
def index():
    """The reports of one week (?week=YYYY-MM-DD, any day of it; default the newest), newest first."""
    actor = page_actor()
    try:
        asked = dt.date.fromisoformat(request.args["week"]) if request.args.get("week") else None
    except ValueError:
        abort(404)
    weeks, week, reports = weekly.stored_listing(actor, asked)
    span = weekly.week_of(asked or week) if (asked or week) else None
    return render_template(
        "reports/weekly.html",
        reports=reports,
        week=week,
        building=_building(span[0] if span else None),
        week_span=span,
        weeks=[weekly.week_of(w) for w in weeks[:WEEKS_SHOWN]],
        kilobytes=_kilobytes,
        period=weekly.period_words,
        can_build=actor.role is Role.ADMIN,
        last_week=weekly.last_full_week(local_today()),
    )


@bp.get("/<int:report_id>.pdf")
@login_required
def download(report_id: int):
    """The stored PDF, as a download (a report the reader may not see: NotFound, a 404 like a
    missing one)."""
    report = weekly.get_report(page_actor(), report_id)
    path = weekly.report_path(report)
    if not path.is_file():
        abort(404)
    response = send_file(
        path, mimetype="application/pdf", as_attachment=True, download_name=weekly.download_name(report)
    )
    response.headers["Cache-Control"] = "private"
    return response


@bp.post("/build")
@roles_required(Role.ADMIN)
def build():
    """Build last week's reports again, in the background (administrators)."""
    start, end = weekly.last_full_week(local_today())
    enqueue_after_commit("delivery_service.reports.jobs:build_week", start.isoformat(), timeout=JOB_TIMEOUT)
    db.session.commit()
    if not _building(start):  # without Redis the job has run already, after the commit
        flash(gettext("The reports of %(period)s are built.", period=weekly.period_words(start, end)),
              "success")
    return redirect(url_for("weekly_reports.index", week=start.isoformat()), code=303)
