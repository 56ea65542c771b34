"""The daily erasure: every process's maintenance pass (jobs.maintain, every JOBS_MAINTENANCE_S) asks
whether today's run was queued; the first node to insert today's ``privacy_runs`` row queues it
(a second node's insert finds the row and queues nothing), and the run goes through the job outbox
like any other background job (once, retried if its process dies). The run itself is safe to repeat
and to race (erasure.erase_due)."""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from flask import current_app

from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.localtime import local_moment
from delivery_service.privacy.models import PrivacyRun

log = logging.getLogger(__name__)
JOB = "delivery_service.privacy.jobs:run_daily"
_SEEN = "privacy_run_day"  # app.extensions key: the last day this process saw queued (spares a query)


def schedule_daily(now: dt.datetime) -> dict[str, list[str]]:
    """Queue today's erasure run unless some process already did (a maintenance sweeper: commits)."""
    from delivery_service.jobs import enqueue_after_commit

    day = local_moment(now).date()
    if current_app.extensions.get(_SEEN) == day:
        return {}
    queued: list[str] = []
    if db.session.get(PrivacyRun, day) is None:
        try:
            enqueue_after_commit(JOB, day.isoformat(), timeout=3600, queue="background",
                                 dedupe_key="privacy:erase")
            db.session.add(PrivacyRun(day=day, started_at=now))
            db.session.commit()  # the row and the job together; a second node's insert fails here
            queued.append(day.isoformat())
        except sa.exc.IntegrityError:
            db.session.rollback()
    else:
        db.session.rollback()
    current_app.extensions[_SEEN] = day
    return {"queued": queued} if queued else {}


def run_daily(day_iso: str) -> dict[str, int]:
    """Erase what is past the retention period; note the counts on the day's row."""
    from delivery_service.privacy.erasure import erase_due

    counts = erase_due()
    run = db.session.get(PrivacyRun, dt.date.fromisoformat(day_iso))
    if run is not None:
        run.finished_at = utcnow()
        run.erased = (run.erased or 0) + counts.orders
        db.session.commit()
    log.info("personal data erasure %s: %s", day_iso, counts.as_dict())
    return counts.as_dict()
