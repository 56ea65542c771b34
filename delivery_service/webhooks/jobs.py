"""Webhook jobs: ids in, idempotent (the cursor and the endpoint's lease make a repeated run harmless)."""

from __future__ import annotations

import datetime as dt

from delivery_service.webhooks import services


def dispatch(endpoint_id: int) -> str:
    """Send one endpoint what it is owed (if it is due); returns the outcome (services.Report)."""
    return services.deliver(endpoint_id).outcome


def dispatch_due(now: dt.datetime | None = None) -> list[services.Report]:
    """Send every endpoint due at ``now`` (default: the current time) what it is owed, retries
    included; returns a report per endpoint it ran (none when nothing was due: one cheap query).

    The trigger's job after a commit, and what the background runner calls every few seconds.
    """
    return services.dispatch_due(now)
