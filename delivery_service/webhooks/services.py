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
  for those writers, and is released at once; new writers queue behind it, so it waits 20 ms at most
  and tries again, for about 2 s). SQLite serialises writers,
  so its ids commit in order and the horizon is simply the largest id.
- A failed request is retried on WEBHOOK_RETRY_SCHEDULE (by default after 1 min, 5 min, 30 min, 2 h,
  then every 6 h); the failure whose retries span more than a day (the ninth, about 26.6 h after the
  first, by default) pauses the endpoint until an admin resumes it.
- Duplicates: each attempt is recorded (a delivery row with no outcome yet) before its request, and
  its answer and the cursor's move are one transaction after it, retried on a fresh connection. A
  batch whose answer was never recorded is sent again as it was, with the same ``X-Webhook-Delivery``
  and the next ``X-Webhook-Attempt``; an answer recorded as 2xx is never sent again.
- Nothing waits for the next commit: ``dispatch_due`` (the background runner without Redis, rq's
  scheduled retries with it, ``webhooks dispatch`` by hand) sends whatever is due.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import OperationalError

from delivery_service.accounts.models import ApiClient
from delivery_service.db import utcnow
from delivery_service.errors import InvalidInput, Message, NotFound, Text
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orgs.services import route_code
from delivery_service.webhooks.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

# The defaults of WEBHOOK_RETRY_SCHEDULE and the timeouts (config.py), for code run outside an app.
DEFAULT_RETRY_SCHEDULE = (60, 5 * 60, 30 * 60, 2 * 3600, 6 * 3600)
GIVE_UP_AFTER_S = 24 * 3600  # failures spanning more than this (by the schedule) pause the endpoint
BATCH_SIZE = 100  # events per request
MAX_BATCHES_PER_RUN = 20  # then the job hands over (another run is queued) instead of holding a worker
LEASE_S = 120  # a run holds its endpoint this long at most (a crashed worker's hold expires)
RECORD_TRIES = 4  # recording an answer (and moving the cursor) is retried on a fresh connection
NO_OUTCOME = "no outcome recorded"  # a delivery row's error until its answer is recorded
SIGNATURE_HEADER = "X-Webhook-Signature"
# Every valid signature, space-separated: the new secret's first, then during a rotation's overlap
# the previous secret's (SIGNATURE_HEADER then carries the previous secret's, as before the rotation).
SIGNATURES_HEADER = "X-Webhook-Signatures"
TIMESTAMP_HEADER = "X-Webhook-Timestamp"
ATTEMPT_HEADER = "X-Webhook-Attempt"
DELIVERY_HEADER = "X-Webhook-Delivery"


def retry_schedule() -> tuple[int, ...]:
    """WEBHOOK_RETRY_SCHEDULE: seconds to wait after the 1st, 2nd, ... failure (the last repeats)."""
    return tuple(current_app.config.get("WEBHOOK_RETRY_SCHEDULE") or DEFAULT_RETRY_SCHEDULE)


def backoff(failures: int, schedule: tuple[int, ...] | None = None) -> dt.timedelta:
    """How long to wait after ``failures`` consecutive failures (1 → 1 min, 2 → 5 min, ...)."""
    schedule = schedule or retry_schedule()
    return dt.timedelta(seconds=schedule[min(max(failures, 1), len(schedule)) - 1])


def max_failures(schedule: tuple[int, ...] | None = None) -> int:
    """The consecutive failure that pauses an endpoint: the first one whose retries so far span more
    than a day (the ninth, about 26.6 h after the first, with the default schedule)."""
    schedule = schedule or retry_schedule()
    failures, waited = 1, 0.0
    while waited < GIVE_UP_AFTER_S:
        waited += backoff(failures, schedule).total_seconds()
        failures += 1
    return failures


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
    expected = sign(secret, ts, body)
    # One signature, or the space-separated list of X-Webhook-Signatures: any may match.
    return any([hmac.compare_digest(expected, s) for s in (signature or "").split()])


# --- transport ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Response:
    status_code: int | None
    error: str | None = None  # why it failed, for people: "HTTP 503", "timeout", "connection refused"


class Transport(Protocol):
    def post(self, url: str, body: bytes, headers: dict[str, str], connect_timeout: float,
             read_timeout: float) -> Response: ...


# --- where webhooks may go ------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are an IPv4 address
ADDRESS_NOT_ALLOWED = "address not allowed"  # a delivery's reason when no address of its host may be used


def allowed_networks() -> tuple[Network, ...]:
    """WEBHOOK_ALLOWED_NETWORKS (config.py): networks opened besides the public addresses."""
    return tuple(current_app.config.get("WEBHOOK_ALLOWED_NETWORKS") or ())


def address_allowed(address: str, allowed: Sequence[Network] = ()) -> bool:
    """Whether a webhook may connect to ``address`` (an IP address as getaddrinfo gives it): a public
    (globally routable) one, or one inside a network of ``allowed``. The one rule, for setting an
    endpoint and for every connection a delivery makes.

    Never: the unspecified address (0.0.0.0 reaches this machine) and multicast. An IPv6 address that
    carries an IPv4 one (mapped ::ffff:a.b.c.d, NAT64 64:ff9b::a.b.c.d, 6to4 2002:…) is judged by it.
    Link-local addresses (169.254.0.0/16, where clouds answer metadata requests, and fe80::/10) open
    only by a listed network inside link-local: 0.0.0.0/0 does not open 169.254.169.254.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        elif ip.sixtofour is not None and not address_allowed(str(ip.sixtofour), allowed):
            return False
    if ip.is_unspecified or ip.is_multicast:
        return False
    listed = [net for net in allowed if ip in net]  # `in` is False across IP versions
    if listed:
        return not ip.is_link_local or any(net.is_link_local for net in listed)
    # is_global already leaves out the private, loopback and link-local addresses (and IPv4's reserved
    # 240/4), but not IPv6's reserved blocks (::/8 with the old IPv4-compatible ::a.b.c.d, 4000::/3 …).
    return ip.is_global and not ip.is_reserved


class AddressNotAllowed(OSError):
    """Every address the receiver's host resolves to is refused by ``address_allowed``."""


def _guarded_connect(allowed: Sequence[Network]) -> Any:
    """socket.create_connection's work, connecting only to allowed addresses: given to an
    http.client connection as its ``_create_connection`` (HTTPSConnection wraps the socket with
    server_hostname set to the host's name, so TLS still checks the name, not the address)."""

    def create_connection(address: tuple[str, int], timeout: Any = None,
                          source_address: tuple[str, int] | None = None) -> socket.socket:
        host, port = address
        # Resolved here and connected to what was checked: a name cannot change between the two.
        infos = [info for info in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
                 if address_allowed(str(info[4][0]), allowed)]
        if not infos:
            raise AddressNotAllowed(ADDRESS_NOT_ALLOWED)
        error: OSError | None = None
        for family, kind, proto, _name, sockaddr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                if isinstance(timeout, int | float):  # else socket's global default, as create_connection
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(sockaddr)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        assert error is not None
        raise error

    return create_connection


class HttpTransport:
    """POST with the standard library's http.client; any 2xx is success.

    Connecting gets ``connect_timeout``, and only to an address ``address_allowed`` passes (public, or
    in ``allowed``: WEBHOOK_ALLOWED_NETWORKS), resolved at each request (a name checked when the
    endpoint was set may point elsewhere since). The answer's status line and headers then get
    ``read_timeout`` in all (a watchdog shuts the socket, so a receiver trickling bytes cannot stretch
    it). The answer's body is never read. Errors keep a short reason only: a response body or an
    exception's text could quote anything.
    """

    def __init__(self, allowed: Sequence[Network] = ()) -> None:
        self.allowed = tuple(allowed)

    def post(self, url: str, body: bytes, headers: dict[str, str], connect_timeout: float,
             read_timeout: float) -> Response:
        parts = urlsplit(url)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname or "", parts.port, timeout=connect_timeout)
        # http.client connects through this attribute (set in its __init__, no public hook): the
        # one place to choose the address without losing the host name TLS checks.
        conn._create_connection = _guarded_connect(self.allowed)  # type: ignore[attr-defined]
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        fired = threading.Event()
        watchdog: threading.Timer | None = None
        phase = "connect"
        try:
            conn.connect()
            phase = "read"
            sock = conn.sock
            sock.settimeout(read_timeout)
            watchdog = threading.Timer(read_timeout, _shut, (sock, fired))
            watchdog.daemon = True
            watchdog.start()
            conn.request("POST", path, body=body, headers=headers)
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            return Response(None, "timeout" if fired.is_set() else _reason(exc, phase))
        finally:
            if watchdog is not None:
                watchdog.cancel()
            conn.close()
        return Response(status, None if 200 <= status < 300 else f"HTTP {status}")


def _shut(sock: socket.socket, fired: threading.Event) -> None:
    fired.set()
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _reason(exc: BaseException, phase: str) -> str:
    if isinstance(exc, AddressNotAllowed):
        return ADDRESS_NOT_ALLOWED
    if isinstance(exc, TimeoutError):
        return "timeout" if phase == "read" else "timeout (connect)"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError | http.client.RemoteDisconnected | BrokenPipeError):
        return "connection closed without an answer"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ssl.SSLError):
        return "TLS error"
    return exc.__class__.__name__[:200]


def transport() -> Transport:
    return current_app.extensions.get("webhook_transport") or HttpTransport(allowed_networks())


# --- endpoints -----------------------------------------------------------------------------------------

URL_MESSAGE = "Must be an http:// or https:// address of at most 500 characters."
UNRESOLVED_MESSAGE = "The host name {host} does not resolve to an address."
REFUSED_MESSAGE = ("The address resolves to {address}, a loopback/private/link-local address: webhooks go to "
                   "public addresses only (an operator can allow a network with WEBHOOK_ALLOWED_NETWORKS).")
# Why an address is refused: a stable code, and the English message (with what it names) by code.
NOT_HTTP_URL, UNRESOLVED_HOST, ADDRESS_REFUSED = "not_http_url", "unresolved_host", "address_refused"
URL_PROBLEMS = {NOT_HTTP_URL: URL_MESSAGE, UNRESOLVED_HOST: UNRESOLVED_MESSAGE,
                ADDRESS_REFUSED: REFUSED_MESSAGE}


class UrlProblem(Message):
    """A refused webhook address: the English message (a ``str``, as the API and the CLI show it) with
    its ``code`` (one of URL_PROBLEMS) and ``params``, what it names (``host``, or the refused
    ``address``), so that a page can say it in another language without reading the English."""

    params: dict[str, str]

    def __new__(cls, code: str, **params: str) -> UrlProblem:
        problem = super().__new__(cls, code, URL_PROBLEMS[code].format(**params))
        problem.params = params
        return problem

    def __reduce__(self) -> tuple[Any, ...]:
        return _url_problem, (self.code, self.params)


def _url_problem(code: str, params: dict[str, str]) -> UrlProblem:
    return UrlProblem(code, **params)


def _check_url(url: str) -> str:
    """The address, if webhooks may go there: http(s), and every address its host resolves to now
    allowed (``address_allowed``; each delivery checks again where it connects)."""
    url = url.strip()
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # not a number, or past 65535
        port = -1
    bad_port = port is not None and not 0 < port <= 65535
    if parts.scheme not in ("http", "https") or not parts.hostname or len(url) > 500 or bad_port:
        raise InvalidInput({"url": [UrlProblem(NOT_HTTP_URL)]})
    host = parts.hostname
    try:
        default = 443 if parts.scheme == "https" else 80
        infos = socket.getaddrinfo(host, port or default, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError):  # socket.gaierror; a name IDNA cannot encode
        infos = []
    if not infos:
        raise InvalidInput({"url": [UrlProblem(UNRESOLVED_HOST, host=host)]})
    allowed = allowed_networks()
    for info in infos:
        address = str(info[4][0])
        if not address_allowed(address, allowed):
            raise InvalidInput({"url": [UrlProblem(ADDRESS_REFUSED, address=address)]})
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
    endpoint.previous_secret = endpoint.previous_secret_until = None
    endpoint.paused_at = endpoint.next_attempt_at = None
    endpoint.consecutive_failures = 0
    db.session.flush()
    _forget_active()
    return endpoint, secret


def rotate_secret(client_id: int, overlap: dt.timedelta) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (returned, shown once); until ``overlap`` has passed, requests are signed
    with the old one too, so that the receiver can switch without refusing a delivery."""
    endpoint = db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.api_client_id == client_id))
    if endpoint is None:
        raise NotFound(f"API client {client_id} has no webhook")
    if not dt.timedelta(0) <= overlap <= dt.timedelta(days=30):
        raise InvalidInput({"overlap_hours": [Text("Từ 0 đến 720 giờ.", "From 0 to 720 hours.")]})
    secret = "whsec_" + secrets.token_urlsafe(32)
    endpoint.previous_secret = endpoint.secret if overlap else None
    endpoint.previous_secret_until = utcnow() + overlap if overlap else None
    endpoint.secret = secret
    db.session.flush()
    return endpoint, secret


def _previous_secret(endpoint: WebhookEndpoint, now: dt.datetime | None = None) -> str | None:
    """The rotated-out secret while its overlap lasts."""
    until = endpoint.previous_secret_until
    if endpoint.previous_secret and until is not None and (now or utcnow()) < until:
        return endpoint.previous_secret
    return None


def signature_headers(secret: str, previous: str | None, timestamp: int, body: bytes) -> dict[str, str]:
    """X-Webhook-Signature (the secret the receiver had before a rotation, while the overlap lasts)
    and X-Webhook-Signatures (every valid one, the new secret's first)."""
    new = sign(secret, timestamp, body)
    if previous is None:
        return {SIGNATURE_HEADER: new, SIGNATURES_HEADER: new}
    old = sign(previous, timestamp, body)
    return {SIGNATURE_HEADER: old, SIGNATURES_HEADER: f"{new} {old}"}


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

# The horizon's lock on PostgreSQL: while it waits for the transactions inserting events, every new
# writer queues behind it, so each try waits HORIZON_LOCK_MS at most (a stall of intake no longer than
# that), then tries again after a pause, HORIZON_TRIES times (about 2 s in all) before giving up.
HORIZON_LOCK_MS = 20
HORIZON_TRIES = 40
_HORIZON = sa.select(sa.func.coalesce(sa.func.max(OrderEvent.id), 0))


def committed_horizon() -> int | None:
    """The largest event id below which every event is committed; None if writers held the table
    throughout HORIZON_TRIES short tries (try again later). Commits (ends) the current transaction."""
    if db.session.connection().dialect.name != "postgresql":
        horizon = db.session.scalar(_HORIZON)
        db.session.commit()
        return horizon
    for attempt in range(HORIZON_TRIES):
        try:
            conn = db.session.connection()
            conn.execute(sa.text(f"SET LOCAL lock_timeout = '{HORIZON_LOCK_MS}ms'"))
            conn.execute(sa.text("LOCK TABLE order_events IN SHARE MODE"))
            horizon = conn.scalar(_HORIZON)
            db.session.commit()
            return horizon
        except OperationalError:
            db.session.rollback()
            if attempt + 1 < HORIZON_TRIES:
                time.sleep(HORIZON_LOCK_MS / 1000 * (1 + secrets.randbelow(100) / 100))
    return None


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
class Report:
    """What one run did for one endpoint (``outcome`` below; ``reason`` when it failed)."""

    endpoint_id: int
    client_id: int
    # sent | nothing | more | failed | error | not_due | paused | disabled | revoked | held | busy
    outcome: str = "nothing"
    events: int = 0
    requests: int = 0
    reason: str | None = None
    next_attempt_at: dt.datetime | None = None
    paused: bool = False  # this run's failure paused the endpoint

    @property
    def failed(self) -> bool:
        """A request failed or the run could not finish (``webhooks dispatch`` exits non-zero)."""
        return self.outcome in ("failed", "error")

    def describe(self) -> str:
        """One line for people, e.g. ``failed: timeout; next attempt at 2026-12-04 23:50:00 UTC``."""
        def at(moment: dt.datetime | None) -> str:
            return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "?"

        sent = (f"sent {self.events} event{'s' * (self.events != 1)} in {self.requests} "
                f"request{'s' * (self.requests != 1)}")
        if self.outcome == "sent":
            return sent
        if self.outcome == "more":
            return f"{sent}; more is owed: another run continues"
        if self.outcome == "failed":
            then = "paused (resume with api-clients webhook ID --resume)" if self.paused else \
                f"next attempt at {at(self.next_attempt_at)}"
            before = f" after {sent}" if self.events else ""
            return f"failed: {self.reason}{before}; {then}"
        return {
            "nothing": "nothing to send",
            "error": f"error: {self.reason} (nothing lost: the events stay owed)",
            "not_due": f"not due until {at(self.next_attempt_at)} (backing off after a failure)",
            "paused": "paused (resume with api-clients webhook ID --resume)",
            "disabled": "disabled",
            "revoked": "its API client is revoked",
            "held": "another run is sending to it now",
            "busy": "the event log was busy (writers held it over 2 s); tried again in a minute",
        }.get(self.outcome, self.outcome)


@dataclass
class _Batch:
    events: list[dict[str, Any]]
    delivery_row: int
    attempt: int
    key: str  # X-Webhook-Delivery: the same for every attempt of this batch
    url: str
    secret: str
    previous_secret: str | None = None  # during a rotation's overlap: requests are signed with both


def due_endpoints(now: dt.datetime, *, force: bool = False,
                  every_endpoint: bool = False) -> list[tuple[int, int]]:
    """(endpoint id, API client id) of the endpoints with something owed and due at ``now``; one
    cheap query (the background runner asks every few seconds). See dispatch_due for the flags."""
    stmt = sa.select(WebhookEndpoint.id, WebhookEndpoint.api_client_id)
    if not every_endpoint:
        newest = sa.select(sa.func.coalesce(sa.func.max(OrderEvent.id), 0)).scalar_subquery()
        stmt = stmt.where(
            WebhookEndpoint.active, WebhookEndpoint.paused_at.is_(None),
            sa.or_(WebhookEndpoint.locked_until.is_(None), WebhookEndpoint.locked_until < now),
            # something was logged after the cursor (maybe for another counter: the run then moves
            # the cursor past it, so this stays a cheap look at the newest id)
            WebhookEndpoint.cursor_event_id < newest)
        if not force:
            stmt = stmt.where(sa.or_(WebhookEndpoint.next_attempt_at.is_(None),
                                     WebhookEndpoint.next_attempt_at <= now))
    endpoints = db.session.execute(stmt.order_by(WebhookEndpoint.id)).all()
    db.session.commit()
    return [(endpoint_id, client_id) for endpoint_id, client_id in endpoints]


def dispatch_due(now: dt.datetime | None = None, *, force: bool = False,
                 every_endpoint: bool = False) -> list[Report]:
    """Deliver what is owed to every endpoint that is due at ``now`` (default: the current time),
    retries included; returns a report per endpoint it looked at.

    The background runner without Redis calls this every few seconds: it costs one query when nothing
    is due. ``force``: ignore back-off timers (never a pause). ``every_endpoint``: report on every
    endpoint, also those not due, paused, disabled or up to date (``webhooks dispatch``).
    """
    now = now or utcnow()
    endpoints = due_endpoints(now, force=force, every_endpoint=every_endpoint)
    reports = []
    for endpoint_id, client_id in endpoints:
        try:
            reports.append(deliver(endpoint_id, force=force, now=now))
        except Exception as exc:  # noqa: BLE001 (one endpoint's trouble must not stop the others)
            _drop_connection()
            log.error("webhook endpoint %s: run failed (%s)", endpoint_id, exc.__class__.__name__)
            reports.append(Report(endpoint_id, client_id, "error", reason=exc.__class__.__name__))
    return reports


def deliver(endpoint_id: int, *, force: bool = False, now: dt.datetime | None = None) -> Report:
    """Send the endpoint what it is owed, batch after batch, up to the log's committed end as it was
    when the run started (one horizon a run: on PostgreSQL taking it locks the log's writers out
    briefly), until it is up to date, a request fails, or MAX_BATCHES_PER_RUN were sent (then
    another run is queued at once). Events committed during the run are sent by the run their
    commits queued. ``force``: ignore the back-off timer (not a pause). Never raises for the
    receiver's failures: they are logged, counted and scheduled."""
    now = now or utcnow()
    endpoint = db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    if endpoint is None:
        return Report(endpoint_id, 0, "disabled")
    report = Report(endpoint_id, endpoint.api_client_id, next_attempt_at=endpoint.next_attempt_at)
    due = force or endpoint.next_attempt_at is None or endpoint.next_attempt_at <= now
    report.outcome = ("disabled" if not endpoint.active else "paused" if endpoint.paused_at is not None
                      else "not_due" if not due else "nothing")
    if report.outcome != "nothing":
        db.session.commit()
        return report
    if not _claim(endpoint_id, now, force):
        report.outcome = "held"
        return report
    started = time.monotonic()
    per_request = _timeouts()[0] + _timeouts()[1] + 1
    horizon: int | None = None
    try:
        horizon = committed_horizon()
        if horizon is None:
            report.outcome = "busy"
            _schedule(endpoint_id, dt.timedelta(seconds=60))
            return report
        for _ in range(MAX_BATCHES_PER_RUN):
            if time.monotonic() - started + per_request > LEASE_S - 10:
                break  # the hold would lapse during the next request: hand over
            batch = _next_batch(endpoint_id, report, horizon)
            if batch is None:
                return report
            ok, reason = _send(endpoint_id, batch)
            report.requests += 1
            if not ok:
                endpoint = db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
                assert endpoint is not None
                report.outcome, report.reason = "failed", reason
                report.paused = endpoint.paused_at is not None
                report.next_attempt_at = endpoint.next_attempt_at
                db.session.commit()
                return report
            report.events += len(batch.events)
            report.outcome = "sent"
        report.outcome = "more"
        return report
    finally:
        with contextlib.suppress(Exception):
            db.session.rollback()
        db.session.execute(sa.update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                           .values(locked_until=None).execution_options(synchronize_session=False))
        db.session.commit()
        # After the release: the next run must find the endpoint free. At once when this run left
        # events owed up to its horizon; a coalescing period later when it sent and events were logged
        # past its horizon meanwhile (the runs their commits queued may have found the endpoint held
        # by this one and passed it over; a period later, their events go in full batches).
        if report.outcome == "more":
            _continue(endpoint_id, 0.0)
        elif report.outcome == "sent" and horizon is not None and (db.session.scalar(_NEWEST) or 0) > horizon:
            _continue(endpoint_id, float(current_app.config["WEBHOOK_COALESCE_S"]))


_NEWEST = sa.select(sa.func.max(OrderEvent.id))


def _continue(endpoint_id: int, delay_s: float) -> None:
    """Queue the endpoint's next run in ``delay_s``: with rq, as a job; without, as an outbox row for
    this process's background thread (not left to the next trigger or sweep)."""
    if _background_queue() is not None:
        _schedule(endpoint_id, dt.timedelta(seconds=delay_s))
        return
    from delivery_service.jobs import enqueue_after_commit

    enqueue_after_commit("delivery_service.webhooks.jobs:dispatch", endpoint_id, timeout=LEASE_S + 60,
                         queue="background", dedupe_key=f"webhooks:dispatch:{endpoint_id}", coalesce_s=0.0,
                         delay_s=delay_s)
    db.session.commit()


def _next_batch(endpoint_id: int, report: Report, horizon: int) -> _Batch | None:
    """The batch to send next, of events up to ``horizon`` (``committed_horizon``), recorded first as a
    delivery with no outcome (so that an attempt whose answer is never recorded still counts); None
    when there is nothing (``report`` says why)."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    assert endpoint is not None
    client = db.session.get(ApiClient, endpoint.api_client_id, populate_existing=True)
    if client is None or client.revoked_at is not None:
        report.outcome = "revoked"
        return None
    # A batch already tried and not acknowledged is sent again as it was: the same events, the same
    # delivery key, the next attempt number (also when its answer was lost or never recorded).
    previous = db.session.scalar(
        sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id,
                                         WebhookDelivery.last_event_id > endpoint.cursor_event_id)
        .order_by(WebhookDelivery.id.desc()).limit(1))
    owed = _owed(endpoint.cursor_event_id, client.counter_id)
    rows = []
    if previous is not None:
        rows = db.session.execute(owed.where(OrderEvent.id <= previous.last_event_id).limit(BATCH_SIZE)).all()
    attempt = previous.attempt + 1 if rows and previous is not None else 1
    if not rows:
        rows = db.session.execute(owed.where(OrderEvent.id <= horizon).limit(BATCH_SIZE)).all()
    if not rows:
        if endpoint.cursor_event_id < horizon:  # only other counters' events: skip past them
            endpoint.cursor_event_id = horizon
        db.session.commit()
        return None
    events = [_payload(e, item_id, dossier) for e, item_id, dossier in rows]
    delivery = WebhookDelivery(endpoint_id=endpoint_id, first_event_id=events[0]["event_id"],
                               last_event_id=events[-1]["event_id"], event_count=len(events),
                               attempt=attempt, status_code=None, error=NO_OUTCOME, duration_ms=0,
                               created_at=utcnow())
    db.session.add(delivery)
    # Until the answer is recorded, this attempt counts as failed for the back-off: a run that dies
    # mid-request is retried when this is due, not at once and not never.
    endpoint.next_attempt_at = utcnow() + backoff(endpoint.consecutive_failures + 1)
    db.session.flush()
    batch = _Batch(events, delivery.id, attempt,
                   f"{endpoint_id}.{events[0]['event_id']}.{events[-1]['event_id']}",
                   endpoint.url, endpoint.secret, _previous_secret(endpoint))
    db.session.commit()  # no transaction stays open during the request
    return batch


def _timeouts() -> tuple[float, float]:
    cfg = current_app.config
    return float(cfg.get("WEBHOOK_CONNECT_TIMEOUT_S") or 3.0), float(cfg.get("WEBHOOK_READ_TIMEOUT_S") or 5.0)


def _send(endpoint_id: int, batch: _Batch) -> tuple[bool, str | None]:
    body = json.dumps({"events": batch.events}, ensure_ascii=False, separators=(",", ":")).encode()
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "delivery-service-webhooks",
               TIMESTAMP_HEADER: str(timestamp), ATTEMPT_HEADER: str(batch.attempt),
               DELIVERY_HEADER: batch.key}
    headers.update(signature_headers(batch.secret, batch.previous_secret, timestamp, body))
    started = time.monotonic()
    resp = transport().post(batch.url, body, headers, *_timeouts())
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = resp.status_code is not None and 200 <= resp.status_code < 300
    reason = None if ok else (resp.error or f"HTTP {resp.status_code}")
    for attempt in range(RECORD_TRIES):
        try:
            _record(endpoint_id, batch, resp.status_code, reason, duration_ms)
            return ok, reason
        except sa.exc.DBAPIError as exc:
            # The answer is in hand: try hard to record it (a re-send is only a duplicate), each time
            # on a fresh connection in case this one is broken (terminated, or shared by a fork).
            _drop_connection()
            log.warning("webhook endpoint %s: recording delivery %s failed (%s), try %s of %s", endpoint_id,
                        batch.delivery_row, exc.__class__.__name__, attempt + 1, RECORD_TRIES)
            if attempt + 1 == RECORD_TRIES:
                raise
            time.sleep(0.1 * 3**attempt)
    raise AssertionError("unreachable")


def _record(endpoint_id: int, batch: _Batch, status_code: int | None, reason: str | None,
            duration_ms: int) -> None:
    """The answer and, for a 2xx, the cursor's move: one transaction."""
    ok = reason is None
    now = utcnow()
    endpoint = db.session.get(WebhookEndpoint, endpoint_id, populate_existing=True,
                              with_for_update=db.engine.dialect.name == "postgresql")
    delivery = db.session.get(WebhookDelivery, batch.delivery_row, populate_existing=True)
    assert endpoint is not None and delivery is not None
    delivery.status_code, delivery.error, delivery.duration_ms = status_code, reason, duration_ms
    if ok:
        endpoint.cursor_event_id = max(endpoint.cursor_event_id, batch.events[-1]["event_id"])
        endpoint.consecutive_failures = 0
        endpoint.next_attempt_at = None
        db.session.commit()
        return
    endpoint.consecutive_failures += 1
    if endpoint.consecutive_failures >= max_failures():
        endpoint.paused_at = now
        endpoint.next_attempt_at = None
        log.warning("webhook endpoint %s paused after %s failures", endpoint_id,
                    endpoint.consecutive_failures)
    else:
        delay = backoff(endpoint.consecutive_failures)
        endpoint.next_attempt_at = now + delay
        log.info("webhook endpoint %s failed (%s); next attempt in %s s", endpoint_id, reason,
                 int(delay.total_seconds()))
    db.session.commit()
    if endpoint.paused_at is None:
        _schedule(endpoint_id, backoff(endpoint.consecutive_failures))


def _drop_connection() -> None:
    """Roll back and throw the session's connection away: the next statement gets a fresh one."""
    with contextlib.suppress(Exception):
        if db.session.in_transaction():
            db.session.connection().invalidate()
    with contextlib.suppress(Exception):
        db.session.rollback()


def _background_queue() -> Any:
    """The rq queue of background jobs (the only one with a single queue), or None without rq."""
    queues = current_app.extensions.get("rq_queues") or {}
    return queues.get("background") or current_app.extensions.get("rq_queue")


def _schedule(endpoint_id: int, delay: dt.timedelta) -> None:
    """With rq, run the endpoint again after ``delay`` (the worker's scheduler). Never fails: if Redis
    cannot take the job, or loses it, the endpoint's ``next_attempt_at`` stays in the database and
    the next ``dispatch_due`` (the background runner's sweep, or ``webhooks dispatch``) sends it."""
    queue = _background_queue()
    if queue is None:
        return
    from redis.exceptions import RedisError

    from delivery_service.jobs import execute

    job = ("delivery_service.webhooks.jobs:dispatch", endpoint_id)
    options = {"job_timeout": LEASE_S + 60, "result_ttl": 3600, "failure_ttl": 7 * 86400}
    try:
        if delay <= dt.timedelta(0):  # more to send now: queued at once, not via the scheduler's next poll
            queue.enqueue(execute, *job, **options)
        else:
            queue.enqueue_in(delay, execute, *job, **options)
    except (RedisError, OSError) as exc:
        log.warning("webhook endpoint %s: retry not scheduled in Redis (%s); the sweep will send it",
                    endpoint_id, exc.__class__.__name__)
