"""The trigger of the geocoding scan: a commit that wrote order events queues a run, with rq only.

The scan (``services.locate_new``) reads the event log after its cursor: new orders (intake, imports)
and address changes. Missing a trigger only delays it: every process's maintenance pass queues a run
while the cursor is behind. Without rq nothing is queued: a run in the web process would cost intake,
and the run planner locates what it needs, offline (``services.locations_for``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

SCAN_JOB = "delivery_service.geo.services:locate_new"
SCAN_KEY = "geo:locate_new"


def events_written() -> None:
    """A commit is writing order events (orders.watch): with rq, queue the scan."""
    from flask import current_app

    if current_app.extensions.get("rq_queue") is not None:
        queue_scan()


def queue_scan(delay_s: float | None = None) -> None:
    """Queue a scan with the current transaction. By default coalesced: at most one run starts per
    JOBS_COALESCE_S in this process and a waiting run covers every commit before it starts; while
    this process's run waits, a commit writes nothing (``join_waiting``). ``delay_s`` (a run's own
    follow-up; an rq work-horse is a fresh fork, with no memory of this process's slots): 0 at once
    (more to do), else that much later, or sooner with a run already waiting."""
    from delivery_service.geo.services import scan_timeout
    from delivery_service.jobs import enqueue_after_commit

    if delay_s is None:
        when: dict[str, Any] = {"join_waiting": True}
    elif delay_s <= 0:
        when = {"coalesce_s": 0.0}
    else:
        when = {"delay_s": delay_s}
    enqueue_after_commit(SCAN_JOB, timeout=scan_timeout(), queue="background", dedupe_key=SCAN_KEY, **when)


def sweep(now: dt.datetime) -> dict[str, list[str]]:
    """The maintenance pass's hook (jobs.SWEEPERS): with rq, ask for a scan while the cursor is behind
    ("asked": a run already waiting covers it, and then nothing new is queued)."""
    from flask import current_app

    from delivery_service.extensions import db
    from delivery_service.geo.services import scan_behind

    if current_app.extensions.get("rq_queue") is None or not scan_behind():
        return {}
    queue_scan()
    db.session.commit()
    return {"asked": ["scan"]}
