"""The trigger: a commit that wrote order events (``orders.watch``) queues a dispatch run.

Missing a trigger would only delay a delivery: the cursor, not the trigger, decides what is sent,
and ``delivery-service webhooks dispatch`` sweeps.
"""

from __future__ import annotations

import time


def events_written() -> None:
    """A commit wrote order events (orders.watch): queue a dispatch run if any webhook is active."""
    if not _any_active():
        return
    from delivery_service.jobs import enqueue_after_commit

    # Coalesced: one waiting run covers every commit before it starts (the cursor decides what is
    # sent), so a burst of intake queues one dispatch, not one per order.
    enqueue_after_commit("delivery_service.webhooks.jobs:dispatch_due", timeout=300, queue="background",
                         dedupe_key="webhooks:dispatch_due")


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

