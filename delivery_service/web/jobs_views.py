"""The administrators' page of background jobs: whether Redis answers and which rq workers are alive
(or that jobs run in the web processes, without Redis), the outbox by state and queue, and the failed
jobs with retry and delete."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l

from delivery_service import jobs, outbox
from delivery_service.admin.scope import national_admin_required
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.localtime import local_moment

bp = Blueprint("admin_jobs", __name__, url_prefix="/admin/jobs")

# The whole country's data: national administrators only (province admins get 403).
admin_required = national_admin_required

# outbox.STATES and outbox.QUEUES as the page names them (the code stays beside, for the logs).
STATE_NAMES = {"pending": _l("Waiting"), "handed": _l("Handed to a worker"), "running": _l("Running"),
               "done": _l("Done"), "failed": _l("Failed"),
               "superseded": _l("Superseded (a newer run took it)")}
QUEUE_NAMES = {"interactive": _l("Someone is waiting"), "background": _l("Background")}
# rq's worker states (WorkerStatus) as the page names them
WORKER_STATES = {"idle": _l("Idle, waiting for jobs"), "busy": _l("Running a job"), "started": _l("Starting"),
                 "starting": _l("Starting"), "suspended": _l("Suspended")}


@bp.get("")
@admin_required
def index():
    """Jobs by state and queue, the oldest one owed, and the failed ones."""
    view = outbox.overview(db.session.connection(), utcnow())
    db.session.rollback()
    status = jobs.worker_status(current_app._get_current_object())
    now = utcnow()
    for worker in status["workers"]:
        beat = worker["last_heartbeat"]
        worker["beat_local"] = local_moment(beat).strftime("%d/%m/%Y %H:%M:%S") if beat else None
        worker["beat_age_s"] = max(0, int((now - beat).total_seconds())) if beat else None
    return render_template("admin/jobs.html", states=outbox.STATES, queues=outbox.QUEUES,
                           state_names=STATE_NAMES, queue_names=QUEUE_NAMES,
                           worker_states=WORKER_STATES, status=status,
                           alive=[w for w in status["workers"] if w["alive"]],
                           heartbeat_max_s=int(jobs.heartbeat_max_age(current_app).total_seconds()), **view)


@bp.post("/<int:job_id>/retry")
@admin_required
def retry(job_id: int):
    """Owe a failed job again, from its first attempt."""
    outcome = outbox.retry_failed(db.session.connection(), job_id, utcnow())
    if outcome is None:
        abort(404)
    db.session.commit()
    if outcome == "covered":
        flash(gettext("A waiting run of this job already covers it: nothing more to retry."), "success")
    else:
        flash(gettext("Job %(id)s will run again.", id=job_id), "success")
    return redirect(url_for("admin_jobs.index"), code=303)


@bp.post("/<int:job_id>/delete")
@admin_required
def delete(job_id: int):
    """Give up a failed job for good."""
    if not outbox.delete_failed(db.session.connection(), job_id):
        abort(404)
    db.session.commit()
    flash(gettext("Job %(id)s deleted.", id=job_id), "success")
    return redirect(url_for("admin_jobs.index"), code=303)
