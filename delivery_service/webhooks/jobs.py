"""Webhook jobs: ids in, idempotent (the cursor and the endpoint's lease make a repeated run harmless)."""

from __future__ import annotations

from delivery_service.webhooks import services


def dispatch(endpoint_id: int) -> str:
    """Send one endpoint what it is owed (if it is due)."""
    return services.deliver(endpoint_id).outcome


def dispatch_due() -> int:
    """Send every due endpoint what it is owed; returns the number of events sent."""
    return sum(services.deliver(endpoint_id).sent for endpoint_id in services.due_endpoint_ids())
