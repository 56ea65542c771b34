"""Webhooks to counter systems, delivered from the event log (an outbox that is already there).

Design (docs/webhooks.md):

- Nothing hooks the many code paths that write order_events (API, pages, imports, routing's Core
  inserts, the courier sync). Each endpoint keeps a cursor: the last order_events.id delivered. The
  dispatcher sends the client's counter's events after the cursor, in id order, in batches; a batch
  that fails blocks everything after it, so events arrive in the order they were logged (per order,
  and indeed per counter). Delivery is at least once: receivers de-duplicate on ``event_id``.
- Ids are handed out before commit, so on PostgreSQL event 101 may be visible while event 100 is
  still uncommitted. The dispatcher therefore never reads past a *horizon*: the largest id at a
  moment when no transaction was inserting events (``LOCK TABLE order_events IN SHARE MODE`` waits
  for those writers, with a 2 s lock timeout, and is released at once). SQLite serialises writers,
  so its ids commit in order and the horizon is simply the largest id.
- A failed request is retried after 1 min, 5 min, 30 min, 2 h, then every 6 h; the ninth consecutive
  failure (about 26.6 h after the first) pauses the endpoint until an admin resumes it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import OperationalError

from delivery_service.accounts.models import ApiClient
from delivery_service.db import utcnow
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orgs.services import route_code
from delivery_service.webhooks.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

# Seconds to wait after the n-th consecutive failure (the last value repeats).
BACKOFF_S = (60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600)
MAX_FAILURES = 9  # 1 + 5 + 30 min + 2 h + 4 x 6 h: paused after ~26.6 h of trying (more than a day)
BATCH_SIZE = 100  # events per request
MAX_BATCHES_PER_RUN = 20  # then the job hands over (another run is queued) instead of holding a worker
TIMEOUT_S = 10.0
LEASE_S = 120  # a run holds its endpoint this long at most (a crashed worker's hold expires)
SIGNATURE_HEADER = "X-Webhook-Signature"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"


def backoff(failures: int) -> dt.timedelta:
    """How long to wait after ``failures`` consecutive failures (1 → 1 min, 2 → 5 min, ...)."""
    return dt.timedelta(seconds=BACKOFF_S[min(max(failures, 1), len(BACKOFF_S)) - 1])


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the endpoint's secret over ``"<timestamp>.<body>"``."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, max_age_s: int = 300,
           now: float | None = None) -> bool:
    """What a receiver does (docs/webhooks.md): a fresh timestamp and a matching signature."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - ts) > max_age_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


# --- transport ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Response:
    status_code: int | None
    error: str | None = None


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response: ...


class UrllibTransport:
    """POST with the standard library; any 2xx is success. Errors keep their class and status only
    (a response body or an exception's text could quote anything)."""

    def post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> Response:
        req = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (http/https checked)
                return Response(resp.status)
        except urllib.error.HTTPError as exc:
            return Response(exc.code, f"HTTP {exc.code}")
        except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections
            reason = getattr(exc, "reason", None)
            name = reason.__class__.__name__ if isinstance(reason, BaseException) else exc.__class__.__name__
            return Response(None, name[:200])


def transport() -> Transport:
    return current_app.extensions.get("webhook_transport") or UrllibTransport()


# --- endpoints -----------------------------------------------------------------------------------------

def _check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500:
        raise InvalidInput({"url": ["Must be an http:// or https:// address of at most 500 characters."]})
    return url


def set_endpoint(client_id: int, url: str) -> tuple[WebhookEndpoint, str]:
    """Create or re-point the client's endpoint with a new secret; returns it and the secret (shown
    once). A new endpoint starts after the last event logged now: it is not sent the past."""
    client = db.session.get(ApiClient, client_id)
    if client is None or client.revoked_at is not None:
        raise NotFound(f"No active API client {client_id}")
    url = _check_url(url)
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint = db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.api_client_id == client_id))
    if endpoint is None:
        start = db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(OrderEvent.id), 0)))
        endpoint = WebhookEndpoint(api_client_id=client_id, cursor_event_id=start, consecutive_failures=0)
        db.session.add(endpoint)
    endpoint.url, endpoint.secret, endpoint.active = url, secret, True
    endpoint.paused_at = endpoint.next_attempt_at = None
    endpoint.consecutive_failures = 0
    db.session.flush()
    _forget_active()
    return endpoint, secret


def resume(client_id: int) -> WebhookEndpoint:
    """Lift a pause or a back-off: everything owed is sent at the next run (queued after commit)."""
    endpoint = db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.api_client_id == client_id))
    if endpoint is None:
        raise NotFound(f"API client {client_id} has no webhook")
    endpoint.paused_at = endpoint.next_attempt_at = None
    endpoint.consecutive_failures = 0
    endpoint.active = True
    db.session.flush()
    _forget_active()
    from delivery_service.jobs import enqueue_after_commit

    enqueue_after_commit("delivery_service.webhooks.jobs:dispatch", endpoint.id, timeout=LEASE_S)
    return endpoint


def disable(client_id: int) -> None:
    endpoint = db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.api_client_id == client_id))
    if endpoint is None:
        raise NotFound(f"API client {client_id} has no webhook")
    endpoint.active = False
    _forget_active()


def _forget_active() -> None:
    from delivery_service.webhooks.hooks import forget_active

    forget_active()


def any_endpoint() -> bool:
    """Whether some endpoint could be owed events (the commit hook's cheap first question)."""
    return db.session.scalar(sa.select(WebhookEndpoint.id).where(
        WebhookEndpoint.active, WebhookEndpoint.paused_at.is_(None)).limit(1)) is not None


def overview() -> list[dict[str, Any]]:
    """Every endpoint with its client, state, backlog and last ten deliveries (the admin page)."""
    rows = db.session.execute(sa.select(WebhookEndpoint, ApiClient).join(ApiClient)
                              .order_by(WebhookEndpoint.id)).all()
    out = []
    for endpoint, client in rows:
        deliveries = db.session.scalars(
            sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
            .order_by(WebhookDelivery.id.desc()).limit(10)).all()
        out.append({"endpoint": endpoint, "client": client, "state": state(endpoint),
                    "backlog": _backlog(endpoint, client.counter_id), "deliveries": deliveries})
    return out


def state(endpoint: WebhookEndpoint) -> str:
    if not endpoint.active:
        return "disabled"
    if endpoint.paused_at is not None:
        return "paused"
    if endpoint.consecutive_failures:
        return "retrying"
    return "ok"


def _backlog(endpoint: WebhookEndpoint, counter_id: int) -> int:
    return db.session.scalar(_owed(endpoint.cursor_event_id, counter_id).with_only_columns(sa.func.count())
                             .order_by(None)) or 0


def _owed(cursor: int, counter_id: int) -> sa.Select:
    return (sa.select(OrderEvent, DeliveryOrder.item_id, DeliveryOrder.dossier_code)
            .join(DeliveryOrder, DeliveryOrder.id == OrderEvent.order_id)
            .where(OrderEvent.id > cursor, DeliveryOrder.counter_id == counter_id)
            .order_by(OrderEvent.id))


# --- dispatching ----------------------------------------------------------------------------------------

def committed_horizon() -> int | None:
    """The largest event id below which every event is committed; None if writers held the table
    for more than 2 s (try again later). Commits (ends) the current transaction."""
    conn = db.session.connection()
    try:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET LOCAL lock_timeout = '2s'"))
            conn.execute(sa.text("LOCK TABLE order_events IN SHARE MODE"))
        horizon = conn.scalar(sa.select(sa.func.coalesce(sa.func.max(OrderEvent.id), 0)))
        db.session.commit()
        return horizon
    except OperationalError:
        db.session.rollback()
        return None


def due_endpoint_ids(*, include_backoff: bool = False) -> list[int]:
    """Active, unpaused endpoints (those waiting out a back-off only with ``include_backoff``)."""
    stmt = sa.select(WebhookEndpoint.id).where(WebhookEndpoint.active, WebhookEndpoint.paused_at.is_(None))
    if not include_backoff:
        stmt = stmt.where(sa.or_(WebhookEndpoint.next_attempt_at.is_(None),
                                 WebhookEndpoint.next_attempt_at <= utcnow()))
    return list(db.session.scalars(stmt.order_by(WebhookEndpoint.id)))


def _claim(endpoint_id: int, now: dt.datetime, force: bool) -> bool:
    """Take the endpoint for this run (compare-and-set, so on every backend only one run holds it)."""
    cond = [WebhookEndpoint.id == endpoint_id, WebhookEndpoint.active, WebhookEndpoint.paused_at.is_(None),
            sa.or_(WebhookEndpoint.locked_until.is_(None), WebhookEndpoint.locked_until < now)]
    if not force:
        cond.append(sa.or_(WebhookEndpoint.next_attempt_at.is_(None), WebhookEndpoint.next_attempt_at <= now))
    taken = db.session.execute(sa.update(WebhookEndpoint).where(*cond)
                               .values(locked_until=now + dt.timedelta(seconds=LEASE_S))
                               .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return taken == 1


def _payload(event: OrderEvent, item_id: str, dossier_code: str) -> dict[str, Any]:
    def iso(moment: dt.datetime | None) -> str | None:
        return moment.astimezone(dt.UTC).isoformat() if moment else None

    return {"event_id": event.id, "item_id": item_id, "dossier_code": dossier_code,
            "status_from": event.status_from.value if event.status_from else None,
            "status_to": event.status_to.value, "reason": event.reason,
            "server_time": iso(event.server_time), "device_time": iso(event.device_time),
            "route_code": route_code(event.route_id)}


@dataclass
class RunResult:
    sent: int = 0
    requests: int = 0
    outcome: str = "idle"  # idle | skipped | delivered | failed | paused | busy | more


def deliver(endpoint_id: int, *, force: bool = False) -> RunResult:
    """Send the endpoint what it is owed, batch after batch, until it is up to date or a request
    fails. ``force``: ignore the back-off timer (not a pause). Never raises for the receiver's
    failures: they are logged, counted and scheduled."""
    result = RunResult()
    now = utcnow()
    if not _claim(endpoint_id, now, force):
        result.outcome = "skipped"
        return result
    try:
        for _ in range(MAX_BATCHES_PER_RUN):
            horizon = committed_horizon()
            if horizon is None:
                result.outcome = "busy"
                _schedule(endpoint_id, dt.timedelta(seconds=60))
                return result
            endpoint = db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
            assert endpoint is not None
            client = db.session.get(ApiClient, endpoint.api_client_id, populate_existing=True)
            if client is None or client.revoked_at is not None:
                result.outcome = "skipped"
                return result
            rows = db.session.execute(_owed(endpoint.cursor_event_id, client.counter_id)
                                      .where(OrderEvent.id <= horizon).limit(BATCH_SIZE)).all()
            if not rows:
                if result.requests == 0:
                    result.outcome = "idle"
                return result
            events = [_payload(e, item_id, dossier) for e, item_id, dossier in rows]
            url, secret, attempt = endpoint.url, endpoint.secret, endpoint.consecutive_failures + 1
            db.session.commit()  # no transaction stays open during the request
            ok = _post(endpoint_id, url, secret, events, attempt)
            result.requests += 1
            if not ok:
                endpoint = db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
                result.outcome = "paused" if endpoint is not None and endpoint.paused_at else "failed"
                return result
            result.sent += len(events)
            result.outcome = "delivered"
        result.outcome = "more"
        _schedule(endpoint_id, dt.timedelta(0))
        return result
    finally:
        db.session.rollback()
        db.session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                           .values(locked_until=None).execution_options(synchronize_session=False))
        db.session.commit()


def _post(endpoint_id: int, url: str, secret: str, events: list[dict[str, Any]], attempt: int) -> bool:
    body = json.dumps({"events": events}, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "delivery-service-webhooks",
               TIMESTAMP_HEADER: str(timestamp), SIGNATURE_HEADER: sign(secret, timestamp, body),
               "X-Webhook-Attempt": str(attempt)}
    started = time.monotonic()
    resp = transport().post(url, body, headers, float(current_app.config.get("WEBHOOK_TIMEOUT_S", TIMEOUT_S)))
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = resp.status_code is not None and 200 <= resp.status_code < 300
    now = utcnow()
    endpoint = db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    assert endpoint is not None
    db.session.add(WebhookDelivery(endpoint_id=endpoint_id, first_event_id=events[0]["event_id"],
                                   last_event_id=events[-1]["event_id"], event_count=len(events),
                                   attempt=attempt, status_code=resp.status_code,
                                   error=None if ok else (resp.error or f"HTTP {resp.status_code}"),
                                   duration_ms=duration_ms, created_at=now))
    if ok:
        endpoint.cursor_event_id = events[-1]["event_id"]
        endpoint.consecutive_failures = 0
        endpoint.next_attempt_at = None
        db.session.commit()
        return True
    endpoint.consecutive_failures += 1
    if endpoint.consecutive_failures >= MAX_FAILURES:
        endpoint.paused_at = now
        endpoint.next_attempt_at = None
        log.warning("webhook endpoint %s paused after %s failures", endpoint_id,
                    endpoint.consecutive_failures)
    else:
        delay = backoff(endpoint.consecutive_failures)
        endpoint.next_attempt_at = now + delay
        log.info("webhook endpoint %s failed (%s); next attempt in %s s", endpoint_id,
                 resp.status_code or resp.error, int(delay.total_seconds()))
    db.session.commit()
    if endpoint.paused_at is None:
        _schedule(endpoint_id, backoff(endpoint.consecutive_failures))
    return False


def _schedule(endpoint_id: int, delay: dt.timedelta) -> None:
    """With rq, run the endpoint again after ``delay`` (the worker's scheduler); without it the next
    event's commit or ``delivery-service webhooks dispatch`` picks the endpoint up when it is due."""
    queue = current_app.extensions.get("rq_queue")
    if queue is None:
        return
    from delivery_service.jobs import execute

    queue.enqueue_in(delay, execute, "delivery_service.webhooks.jobs:dispatch", endpoint_id,
                     job_timeout=LEASE_S + 60, result_ttl=3600, failure_ttl=7 * 86400)
