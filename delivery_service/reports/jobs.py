"""Weekly report jobs: the scheduled run (every Friday 07:00 by default, REPORT_WEEKLY_SCHEDULE) and
building a week's reports. Dates in as ISO strings; idempotent: a rebuilt week replaces its files and
rows, and a run is scheduled under an id made of its date, so scheduling it twice keeps one job.

The run on a day covers the last full Monday–Sunday week before that day: on Friday 27 Nov 2026 at
07:00, Monday 16 to Sunday 22 Nov (docs/reports-weekly.md says why).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from flask import current_app

from delivery_service.db import utcnow
from delivery_service.errors import Conflict
from delivery_service.localtime import service_timezone
from delivery_service.reports.weekly import build_scopes, last_full_week, week_of

log = logging.getLogger(__name__)
JOB_TIMEOUT = 3600  # a national week is several hundred reports
KEEP_S = 30 * 86400  # how long rq keeps a run's result or failure


def build_week(period_start_iso: str) -> int:
    """Build every report of the week holding that day (Monday..Sunday); returns how many."""
    start, end = week_of(dt.date.fromisoformat(period_start_iso))
    built = build_scopes(start, end)
    log.info("weekly reports %s..%s: %d built", start, end, len(built))
    return len(built)


def next_run(now: dt.datetime, schedule: tuple[int, int, int], tz: ZoneInfo) -> dt.datetime:
    """The first scheduled moment strictly after ``now`` (aware; naive means UTC): ``schedule`` is
    (weekday with Monday 0, hour, minute) in ``tz``. Returns an aware local datetime."""
    weekday, hour, minute = schedule
    local = (now if now.tzinfo else now.replace(tzinfo=dt.UTC)).astimezone(tz)
    day = local.date() + dt.timedelta(days=(weekday - local.weekday()) % 7)
    run_at = dt.datetime.combine(day, dt.time(hour, minute), tz)
    if run_at <= local:
        run_at = dt.datetime.combine(day + dt.timedelta(days=7), dt.time(hour, minute), tz)
    return run_at


def job_id(queue_name: str, run_day: dt.date) -> str:
    """``weekly-report-<queue>-2026-11-27``: one id per run and queue (deployments sharing a Redis
    keep their own runs apart)."""
    return f"weekly-report-{re.sub(r'[^A-Za-z0-9_-]', '_', queue_name)}-{run_day.isoformat()}"


@dataclass(frozen=True)
class Scheduled:
    run_at: dt.datetime  # local time
    job_id: str
    created: bool  # False: that run was already scheduled
    week: tuple[dt.date, dt.date]  # the week it will cover


def schedule_next(now: dt.datetime | None = None) -> Scheduled:
    """Schedule the next run after ``now`` (default: now) on rq's scheduler, unless it already is.
    Needs Redis, and a worker started with its scheduler (``delivery-service worker`` does that)."""
    queue = current_app.extensions.get("rq_queue")
    if queue is None:
        raise Conflict("REDIS_URL is not set: run 'delivery-service reports weekly' from cron instead.")
    from rq.job import Job

    from delivery_service.jobs import execute

    run_at = next_run(now or utcnow(), current_app.config["REPORT_WEEKLY_SCHEDULE"], service_timezone())
    ident = job_id(queue.name, run_at.date())
    week = last_full_week(run_at.date())
    # Two callers at once both find no job and both enqueue: under the same id that is still one job
    # (its hash is written twice, its place in the scheduled registry once).
    if Job.exists(ident, connection=queue.connection):
        return Scheduled(run_at, ident, False, week)
    queue.enqueue_at(
        run_at,
        execute,
        "delivery_service.reports.jobs:run_scheduled",
        run_at.date().isoformat(),
        job_id=ident,
        job_timeout=JOB_TIMEOUT,
        result_ttl=KEEP_S,
        failure_ttl=KEEP_S,
        description=f"weekly reports of {week[0]}..{week[1]}",
    )
    log.info("weekly reports scheduled for %s (job %s)", run_at.isoformat(), ident)
    return Scheduled(run_at, ident, True, week)


def run_scheduled(run_day_iso: str) -> int:
    """The scheduled run of that day: schedule the next one first (so that a failing week does not
    end the chain), then build the last full week before the day; returns how many reports."""
    run_day = dt.date.fromisoformat(run_day_iso)
    if current_app.extensions.get("rq_queue") is not None:
        _weekday, hour, minute = current_app.config["REPORT_WEEKLY_SCHEDULE"]
        this_run = dt.datetime.combine(run_day, dt.time(hour, minute), service_timezone())
        schedule_next(max(utcnow(), this_run))
    start, _end = last_full_week(run_day)
    return build_week(start.isoformat())
