"""The tracking link printed on labels and receipts: ``<base>/t/<item id>``.

The base is PUBLIC_BASE_URL when it is set; otherwise the address the service was reached at by the
request that asked for the label (its ``url_root``), so that a service on another host or port prints
links that work. A label batch rendered by a worker uses the base its request stored with the job.
"""

from __future__ import annotations

from flask import current_app, g, has_request_context, request

FALLBACK_BASE_URL = "http://127.0.0.1:5000"  # only outside any request, with no stored base (CLI)


def public_base_url() -> str:
    """The address citizens reach the service at, without a trailing slash."""
    configured = current_app.config.get("PUBLIC_BASE_URL")
    if configured:
        return configured
    stored = g.get("public_base_url")
    if stored:
        return stored
    if has_request_context():
        return request.url_root.rstrip("/")
    return FALLBACK_BASE_URL


def use_base_url(base_url: str | None) -> None:
    """Make ``base_url`` (stored with a background job) the base of the links this app context prints."""
    if base_url:
        g.public_base_url = base_url


def tracking_url(item_id: str) -> str:
    """The link a citizen follows (or scans) to the tracking page of ``item_id``."""
    return f"{public_base_url()}/t/{item_id}"
