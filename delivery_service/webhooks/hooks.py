"""The trigger: a commit that wrote order events (``orders.watch``) queues a dispatch run.

Missing a trigger would only delay a delivery: the cursor, not the trigger, decides what is sent,
and ``delivery-service webhooks dispatch`` sweeps.
"""

from __future__ import annotations

import time


def events_written() -> None:
    """A commit wrote order events (orders.watch): queue a dispatch run if any webhook is active."""
    if _any_active():
        queue_dispatch()


def queue_dispatch() -> None:
    """Queue a run of ``jobs.dispatch_due`` with the current transaction (the commits' trigger, and the
    maintenance pass for retries that came due).

    Coalesced: at most one run starts per WEBHOOK_COALESCE_S in this process, and one waiting run
    covers every commit before it starts (the cursor decides what is sent), so a burst of intake
    queues a run a second, not one per order; while this process's run waits, a commit writes
    nothing at all (``join_waiting``: a trigger missed in a race is covered by the maintenance pass)."""
    from flask import current_app

    from delivery_service.jobs import enqueue_after_commit

    enqueue_after_commit("delivery_service.webhooks.jobs:dispatch_due", timeout=300, queue="background",
                         dedupe_key="webhooks:dispatch_due", join_waiting=True,
                         coalesce_s=float(current_app.config["WEBHOOK_COALESCE_S"]))


_ACTIVE_TTL = 10.0  # seconds; a webhook set up meanwhile is reached by the next trigger or the sweep


def _any_active() -> bool:
    """Whether any webhook is active, looked up at most every few seconds per process (intake
    commits should not pay a query for a feature most installations use on few counters)."""
    from flask import current_app

    from delivery_service.webhooks.services import any_endpoint

    cache = current_app.extensions.setdefault("webhooks_active", [0.0, False])
    if cache[0] > time.monotonic():
        return cache[1]
    active = any_endpoint()
    cache[:] = [time.monotonic() + _ACTIVE_TTL, active]
    return active


def forget_active() -> None:
    """Drop this process's cached answer (after a webhook is set up, resumed or disabled here)."""
    from flask import current_app

    current_app.extensions.pop("webhooks_active", None)

