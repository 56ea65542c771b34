"""Configuration: defaults, then the environment, then an explicit override; validated once."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from typing import Any

from labels import s10

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "DATABASE_URL": None,  # None: a SQLite file in the instance folder
    "REDIS_URL": None,  # None: background jobs run in-process after commit
    # Reverse proxies in front of the service (nginx, a load balancer) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: rate limits and logs then see the client's address. 0: none,
    # the headers are ignored, so a client cannot choose the address it is counted under.
    "TRUSTED_PROXIES": 0,
    "SECRET_KEY": None,  # None outside production: generated once and kept in the instance folder
    # UPU S10 service indicator for the items this service issues (not J, K, S, T or W).
    "ITEM_ID_PREFIX": "RH",
    "ITEM_ID_COUNTRY": "VN",
    # Service level: the delivery target is this many days after the appointment date.
    "DELIVERY_TARGET_DAYS": 2,
    "DELIVERY_TARGET_WORKING_DAYS": True,
    # Request limits.
    "MAX_JSON_BYTES": 64 * 1024,
    "MAX_IMPORT_BYTES": 5 * 1024 * 1024,
    "MAX_IMPORT_ROWS": 5000,
    "SERVICE_TIMEZONE": "Asia/Ho_Chi_Minh",
    "BABEL_DEFAULT_LOCALE": "vi",
    "RQ_QUEUE": "default",
    # Background jobs (jobs.py, outbox.py). JOBS_INLINE: run what a commit queued right after that
    # commit, in the committing thread (the tests; never in production: a request would wait for its
    # jobs). Otherwise a runner thread per web process runs them (no Redis) or hands them to rq, waking
    # after each commit and polling every JOBS_POLL_S. A job's claim is a lease of JOBS_LEASE_S, kept
    # alive while it runs; a lapsed lease means its process died: retried up to JOBS_MAX_ATTEMPTS in
    # all. REDIS_TIMEOUT_S bounds every Redis call a request or the relay makes (a stopped or frozen
    # Redis costs that, then the job waits in the outbox). /ready fails when the oldest job owed has
    # waited more than JOBS_BACKLOG_MAX_AGE_S.
    "JOBS_INLINE": False,
    "JOBS_POLL_S": 2.0,
    "JOBS_LEASE_S": 30,
    "JOBS_MAX_ATTEMPTS": 3,
    "JOBS_HAND_LEASE_S": 60,  # a job handed to rq and not started by then is checked: lost? hand again
    # rq's clean-up, scheduler restart and the maintenance pass in `delivery-service worker`
    "JOBS_WORKER_MAINTENANCE_S": 20,
    # every process's runner sweeps stalled label batches and imports and sends due webhook retries
    "JOBS_MAINTENANCE_S": 15.0,
    # A label batch or an import whose heartbeat (one per chunk) is older than JOBS_STALL_S lost its
    # process: the next maintenance pass requeues or fails it, so it ends within JOBS_STALL_S plus
    # one pass (at most 30 + 20 s by default: under a minute, whichever process died).
    "JOBS_STALL_S": 30,
    # Follow-up jobs that coalesce (webhook runs, geocoding, the report fold): while a run of one kind
    # started less than JOBS_COALESCE_S ago, the next waits until then and takes every commit
    # meanwhile, so a burst queues about one run per kind per JOBS_COALESCE_S (0: no wait).
    "JOBS_COALESCE_S": 10.0,
    "JOBS_BACKLOG_MAX_AGE_S": 300,
    "REDIS_TIMEOUT_S": 0.5,
    "API_TOKEN_CACHE_SECONDS": 30,
    # A log-in session ends after this many minutes without a request.
    "SESSION_IDLE_MINUTES": 30,
    # Roles that must log in with a second factor (TOTP), comma-separated: e.g. "admin,district_officer".
    # Empty: two-factor log-in is optional for everybody.
    "TOTP_REQUIRED_ROLES": "",
    # Geocoding: "offline" (unit centroids refined by couriers' recorded positions, no network),
    # or a self-hosted "nominatim" / "photon" at GEOCODER_URL (never the public servers in bulk).
    "GEOCODER": "offline",
    "GEOCODER_URL": None,
    "GEOCODER_USER_AGENT": "delivery-service (buu chinh cong ich)",
    "GEOCODER_MIN_DELAY_S": 1.0,  # between two requests of one process to the geocoding server
    "GEOCODER_TIMEOUT_S": 5.0,
    "GEOCODER_CACHE_DAYS": 90,
    # The geocoding server failed during a scan: the scan waits this long before asking it again
    # (meanwhile those orders are at their centroids; the orders after them wait in the log).
    "GEOCODER_RETRY_S": 300.0,
    # Stop sequencing: the solver's time budget for one run (None: chosen by the number of stops).
    "ROUTE_SEQUENCE_TIME_LIMIT_S": None,
    # Road distances (docs/routing.md): the graph `delivery-service roads build FILE.osm.pbf` makes
    # (None: "roads" in the instance folder); a matrix comes from it when every point lies within
    # ROADS_SNAP_M metres of one of its roads, else from straight lines times ROADS_DETOUR_FACTOR.
    "ROADS_DIR": None,
    "ROADS_SNAP_M": 500.0,
    "ROADS_DETOUR_FACTOR": 1.3,
    # Labels: the public address the tracking links on labels and receipts point to
    # ({base}/t/<item id>), the hotline printed when a counter has none of its own, the printers'
    # resolution, and the batch size above which a print is rendered in a background job.
    # None: the address each request reached the service at (delivery_service.tracking.links).
    "PUBLIC_BASE_URL": None,
    "COMPLAINTS_HOTLINE": "1900 545481",
    "LABEL_DPI": 203,
    "LABEL_ASYNC_THRESHOLD": 100,
    "PRINT_FILES_DIR": None,  # None: "prints" in the instance folder; batch files kept for download
    # The courier app: why a delivery or pickup failed ("code:Vietnamese:English;..." in the
    # environment), failed attempts before the order goes back to the agency, how long a courier may
    # correct their own event, proof uploads, how far ahead of the server a device clock may run, the
    # largest sync batch, and the identity check asked for at delivery (id_last4 | otp | none).
    "FAILURE_REASONS": (
        "not_home:Không có người nhận tại nhà:Nobody at home;"
        "wrong_address:Sai địa chỉ:Wrong address;"
        "refused:Người nhận từ chối nhận:Refused by the recipient;"
        "moved:Người nhận đã chuyển đi:Recipient has moved;"
        "unreachable_by_phone:Không liên lạc được qua điện thoại:Unreachable by phone;"
        "recipient_absent_authorised_missing:Người nhận vắng, không có giấy ủy quyền:"
        "Recipient away, no authorisation;"
        "other:Lý do khác:Other"
    ),
    "MAX_FAILED_ATTEMPTS": 3,
    "CORRECTION_WINDOW_MIN": 30,
    "MAX_PROOF_BYTES": 2 * 1024 * 1024,
    "MAX_CLOCK_SKEW_S": 600,
    "SYNC_MAX_EVENTS": 200,
    "DELIVERY_ID_CHECK": "id_last4",
    # The business rules above (failure reasons, service level, attempts, correction window, identity
    # check, colour bands) are defaults: an admin's saved values win (docs/settings.md). Each process
    # checks for a saved change at most this often (seconds).
    "RULES_CHECK_S": 1.0,
    # Reports: how long a request may spend folding new events into the figures before it shows
    # them with a note of what is still pending; the colour bands (a rate at or above the first
    # threshold is green, the second yellow, the third orange, below it red; "rate:g,y,o;..."); when
    # the weekly PDF reports are built ("DAY HH:MM" in SERVICE_TIMEZONE, the week before that day);
    # where they are stored (None: "reports" in the instance folder).
    "REPORT_CATCH_UP_S": 5.0,
    "REPORT_BANDS": "delivery_rate:0.95,0.90,0.80;on_time_rate:0.90,0.80,0.70;post_share:0.50,0.30,0.10",
    "REPORT_WEEKLY_SCHEDULE": "FRI 07:00",
    "REPORT_FILES_DIR": None,
    # Webhooks (docs/webhooks.md): seconds to wait after the 1st, 2nd, ... consecutive failure (the
    # last repeats; an endpoint is paused once its failures span more than a day), and how long one
    # request may take to connect and then to answer: a hanging receiver holds a sender this long.
    "WEBHOOK_RETRY_SCHEDULE": "60,300,1800,7200,21600",
    "WEBHOOK_CONNECT_TIMEOUT_S": 3.0,
    "WEBHOOK_READ_TIMEOUT_S": 5.0,
    # A commit's webhook run starts at most this often per process (JOBS_COALESCE_S for webhooks):
    # the delay a counter system sees for a status change is about this plus the runner's poll.
    "WEBHOOK_COALESCE_S": 1.0,
    # Where webhooks may go besides public (globally routable) addresses: comma-separated networks,
    # e.g. "10.20.0.0/16" for counter software on a province's own LAN. Empty: public addresses only,
    # so an endpoint cannot reach this machine, the LAN or the cloud's metadata service (169.254.169.254,
    # which only a listed network inside 169.254.0.0/16 opens).
    "WEBHOOK_ALLOWED_NETWORKS": "",
    # Operations: /metrics answers loopback, or a request with "Authorization: Bearer METRICS_TOKEN"
    # (None: loopback only). Logs as JSON lines or text (None: json in production, text otherwise).
    "METRICS_TOKEN": None,
    "LOG_FORMAT": None,
    # Personal data (docs/privacy.md): days after an order is closed (its last event) before the
    # recipient's name, phone, ID digits, address detail, signatures and photos are erased. 365: the
    # complaints and audits of a closed delivery fit in a year.
    "PERSONAL_DATA_RETENTION_DAYS": 365,
    # Citizen notifications (docs/notifications.md): NOTIFY_PROVIDER log (the default: a log line per
    # message, no number, no text) | sms (a brand-name SMS gateway's JSON API) | zns (Zalo ZNS
    # template messages); quiet hours in SERVICE_TIMEZONE ("" for none); retries after the 1st, 2nd, ...
    # failure (then the message is failed). NOTIFY_INBOUND_SECRET: the provider's replies ("TU CHOI").
    # NOTIFY_MAX_AGE_HOURS: an event older than this is not told (back-dated history, a message held
    # by quiet hours or retries past it): the past is not sent.
    "NOTIFY_ENABLED": True,
    "NOTIFY_PROVIDER": "log",
    "NOTIFY_SMS_URL": None,
    "NOTIFY_SMS_API_KEY": None,
    "NOTIFY_SMS_BRANDNAME": "BUUDIEN",
    "NOTIFY_SMS_UNICODE": False,
    "NOTIFY_ZNS_URL": "https://business.openapi.zalo.me/message/template",
    "NOTIFY_ZNS_ACCESS_TOKEN": None,
    "NOTIFY_INBOUND_SECRET": None,
    "NOTIFY_QUIET_HOURS": "21:00-07:00",
    "NOTIFY_RETRY_SCHEDULE": "60,300,1800,7200",
    "NOTIFY_TIMEOUT_S": 5.0,
    "NOTIFY_MAX_AGE_HOURS": 24,
}

_INT_KEYS = {"DELIVERY_TARGET_DAYS", "MAX_JSON_BYTES", "MAX_IMPORT_BYTES", "MAX_IMPORT_ROWS",
             "API_TOKEN_CACHE_SECONDS", "GEOCODER_CACHE_DAYS", "LABEL_DPI", "LABEL_ASYNC_THRESHOLD",
             "MAX_FAILED_ATTEMPTS", "CORRECTION_WINDOW_MIN", "MAX_PROOF_BYTES", "MAX_CLOCK_SKEW_S",
             "SYNC_MAX_EVENTS", "TRUSTED_PROXIES", "SESSION_IDLE_MINUTES",
             "JOBS_LEASE_S", "JOBS_MAX_ATTEMPTS", "JOBS_HAND_LEASE_S", "JOBS_WORKER_MAINTENANCE_S",
             "JOBS_BACKLOG_MAX_AGE_S", "PERSONAL_DATA_RETENTION_DAYS", "JOBS_STALL_S"}
_FLOAT_KEYS = {"JOBS_POLL_S", "JOBS_MAINTENANCE_S", "JOBS_COALESCE_S", "RULES_CHECK_S",
               "REDIS_TIMEOUT_S", "GEOCODER_MIN_DELAY_S", "GEOCODER_TIMEOUT_S",
               "GEOCODER_RETRY_S",
               "ROUTE_SEQUENCE_TIME_LIMIT_S", "ROADS_SNAP_M", "ROADS_DETOUR_FACTOR",
               "REPORT_CATCH_UP_S", "WEBHOOK_CONNECT_TIMEOUT_S", "WEBHOOK_READ_TIMEOUT_S",
               "WEBHOOK_COALESCE_S"}
_BOOL_KEYS = {"DELIVERY_TARGET_WORKING_DAYS", "JOBS_INLINE"}
GEOCODERS = ("offline", "nominatim", "photon")
ID_CHECKS = ("id_last4", "otp", "none")


class ConfigError(RuntimeError):
    """The configuration cannot be used."""


def _parse(key: str, raw: str) -> Any:
    if key in _INT_KEYS:
        try:
            return int(raw)
        except ValueError as exc:
            raise ConfigError(f"{key} must be an integer, got {raw!r}") from exc
    if key in _FLOAT_KEYS:
        try:
            return float(raw)
        except ValueError as exc:
            raise ConfigError(f"{key} must be a number, got {raw!r}") from exc
    if key in _BOOL_KEYS:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw


def load(instance_path: str, override: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build the settings: defaults, then environment variables, then ``override``."""
    cfg = dict(DEFAULTS)
    for key in DEFAULTS:
        if os.environ.get(key):
            cfg[key] = _parse(key, os.environ[key])
    cfg.update(override or {})

    instance = Path(instance_path)
    if not cfg["DATABASE_URL"]:  # the folder is made when the database is first opened, not here
        cfg["DATABASE_URL"] = f"sqlite:///{instance / 'delivery.sqlite3'}"
    url = cfg["DATABASE_URL"]
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    cfg["DATABASE_URL"] = url

    if not cfg["SECRET_KEY"]:
        if cfg["ENV"] == "production":
            raise ConfigError("SECRET_KEY must be set in production")
        # Loading the settings writes nothing (``delivery-service --help`` must not): the secret kept
        # in the instance folder is read if there is one, else this process gets a passing one;
        # ``serve`` keeps one (keep_instance_secret) before its workers start.
        cfg["SECRET_KEY"] = read_instance_secret(instance) or secrets.token_urlsafe(48)

    cfg["ITEM_ID_PREFIX"] = str(cfg["ITEM_ID_PREFIX"]).upper()
    cfg["ITEM_ID_COUNTRY"] = str(cfg["ITEM_ID_COUNTRY"]).upper()
    try:
        s10.make(cfg["ITEM_ID_PREFIX"], 0, cfg["ITEM_ID_COUNTRY"])
    except s10.S10Error as exc:
        raise ConfigError(f"ITEM_ID_PREFIX / ITEM_ID_COUNTRY: {exc}") from None
    if not 0 <= cfg["TRUSTED_PROXIES"] <= 5:
        raise ConfigError("TRUSTED_PROXIES must be between 0 and 5 (the proxies in front of the service)")
    for key, low, high in (("JOBS_POLL_S", 0.1, 60), ("JOBS_MAINTENANCE_S", 1, 3600),
                           ("RULES_CHECK_S", 0, 60), ("JOBS_STALL_S", 2, 3600), ("JOBS_COALESCE_S", 0, 300),
                           ("WEBHOOK_COALESCE_S", 0, 300)):
        if not low <= cfg[key] <= high:
            raise ConfigError(f"{key} must be between {low} and {high} seconds")
    if cfg["DELIVERY_TARGET_DAYS"] < 0:
        raise ConfigError("DELIVERY_TARGET_DAYS must not be negative")
    if cfg["GEOCODER"] not in GEOCODERS:
        raise ConfigError(f"GEOCODER must be one of {', '.join(GEOCODERS)}, got {cfg['GEOCODER']!r}")
    if cfg["GEOCODER"] != "offline" and not cfg["GEOCODER_URL"]:
        raise ConfigError(f"GEOCODER={cfg['GEOCODER']} needs GEOCODER_URL (your own server's address)")
    if cfg["LABEL_DPI"] not in (203, 300, 600):
        raise ConfigError("LABEL_DPI must be 203, 300 or 600 (the printers' resolutions)")
    cfg["PUBLIC_BASE_URL"] = str(cfg["PUBLIC_BASE_URL"] or "").rstrip("/") or None
    if cfg["PUBLIC_BASE_URL"] and not cfg["PUBLIC_BASE_URL"].startswith(("http://", "https://")):
        raise ConfigError("PUBLIC_BASE_URL must start with http:// or https://")
    if not cfg["PRINT_FILES_DIR"]:
        cfg["PRINT_FILES_DIR"] = str(instance / "prints")
    if not cfg["ROADS_DIR"]:
        cfg["ROADS_DIR"] = str(instance / "roads")
    if not 1.0 <= float(cfg["ROADS_DETOUR_FACTOR"]) <= 3.0:
        raise ConfigError("ROADS_DETOUR_FACTOR must be between 1.0 and 3.0 (road over straight line)")
    if not 10 <= float(cfg["ROADS_SNAP_M"]) <= 5000:
        raise ConfigError("ROADS_SNAP_M must be between 10 and 5000 metres")
    limit = cfg["ROUTE_SEQUENCE_TIME_LIMIT_S"]
    if limit is not None and not 0 < limit <= 600:
        raise ConfigError("ROUTE_SEQUENCE_TIME_LIMIT_S must be between 0 and 600 seconds")
    if not 30 <= cfg["PERSONAL_DATA_RETENTION_DAYS"] <= 3650:
        raise ConfigError("PERSONAL_DATA_RETENTION_DAYS must be between 30 and 3650 days")
    if not 1 <= cfg["SESSION_IDLE_MINUTES"] <= 24 * 60:
        raise ConfigError("SESSION_IDLE_MINUTES must be between 1 and 1440 minutes")
    _totp_roles(cfg)
    _courier_settings(cfg)
    _report_settings(cfg, instance)
    _webhook_settings(cfg)
    _notify_settings(cfg)
    return cfg


def _totp_roles(cfg: dict[str, Any]) -> None:
    """TOTP_REQUIRED_ROLES: role names, comma-separated; a misspelt one would silently require
    nothing of anybody, so it stops the start."""
    from delivery_service.accounts.models import Role

    names = [r.strip() for r in str(cfg["TOTP_REQUIRED_ROLES"] or "").split(",") if r.strip()]
    unknown = [n for n in names if n not in {r.value for r in Role}]
    if unknown:
        raise ConfigError(f"TOTP_REQUIRED_ROLES: unknown role(s) {', '.join(unknown)} "
                          f"(one of {', '.join(r.value for r in Role)})")
    cfg["TOTP_REQUIRED_ROLES"] = ",".join(names)


def _notify_settings(cfg: dict[str, Any]) -> None:
    from delivery_service.notifications.texts import parse_quiet_hours

    if cfg["NOTIFY_PROVIDER"] not in ("log", "sms", "zns"):
        raise ConfigError(f"NOTIFY_PROVIDER must be log, sms or zns, got {cfg['NOTIFY_PROVIDER']!r}")
    for key, needs in (("sms", ("NOTIFY_SMS_URL", "NOTIFY_SMS_API_KEY")), ("zns", ("NOTIFY_ZNS_URL",
                                                                                  "NOTIFY_ZNS_ACCESS_TOKEN"))):
        if cfg["NOTIFY_PROVIDER"] == key:
            for name in needs:
                if not cfg[name]:
                    raise ConfigError(f"NOTIFY_PROVIDER={key} needs {name}")
            url = str(cfg[needs[0]])
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"{needs[0]} must start with http:// or https://")
    if cfg["NOTIFY_PROVIDER"] != "log" and cfg["ENV"] == "production" and not cfg["PUBLIC_BASE_URL"]:
        # Messages are made outside any request: without it their links would be tracking.links'
        # FALLBACK_BASE_URL (http://127.0.0.1:5000), which no citizen can open.
        raise ConfigError(f"NOTIFY_PROVIDER={cfg['NOTIFY_PROVIDER']} needs PUBLIC_BASE_URL in production "
                          "(the address citizens reach: the links in their messages point there)")
    for key in ("NOTIFY_ENABLED", "NOTIFY_SMS_UNICODE"):
        if isinstance(cfg[key], str):
            cfg[key] = cfg[key].strip().lower() in {"1", "true", "yes", "on"}
    if not 0 < float(cfg["NOTIFY_TIMEOUT_S"]) <= 30:
        raise ConfigError("NOTIFY_TIMEOUT_S must be more than 0 and at most 30 seconds")
    cfg["NOTIFY_TIMEOUT_S"] = float(cfg["NOTIFY_TIMEOUT_S"])
    try:
        cfg["NOTIFY_MAX_AGE_HOURS"] = int(cfg["NOTIFY_MAX_AGE_HOURS"])
    except (TypeError, ValueError):
        raise ConfigError(f"NOTIFY_MAX_AGE_HOURS must be whole hours, "
                          f"got {cfg['NOTIFY_MAX_AGE_HOURS']!r}") from None
    if not 1 <= cfg["NOTIFY_MAX_AGE_HOURS"] <= 168:
        raise ConfigError("NOTIFY_MAX_AGE_HOURS must be between 1 and 168 hours (a week)")
    raw = cfg["NOTIFY_QUIET_HOURS"]
    if not isinstance(raw, tuple):
        cfg["NOTIFY_QUIET_HOURS_TEXT"] = str(raw or "").strip()
        try:
            cfg["NOTIFY_QUIET_HOURS"] = parse_quiet_hours(raw)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    schedule = cfg["NOTIFY_RETRY_SCHEDULE"]
    try:
        values = tuple(int(x) for x in str(schedule).replace(" ", "").split(",") if x) \
            if not isinstance(schedule, tuple | list) else tuple(int(x) for x in schedule)
    except ValueError:
        raise ConfigError(f"NOTIFY_RETRY_SCHEDULE must be seconds like '60,300,1800', "
                          f"got {schedule!r}") from None
    if not 0 <= len(values) <= 20 or any(not 1 <= v <= 86400 for v in values):
        raise ConfigError("NOTIFY_RETRY_SCHEDULE: up to 20 delays of 1 to 86400 seconds")
    cfg["NOTIFY_RETRY_SCHEDULE"] = values


def parse_retry_schedule(raw: str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``60,300,1800`` -> (60, 300, 1800): whole seconds, each from 1 s to 1 day, not falling."""
    if isinstance(raw, str):
        try:
            values = tuple(int(v) for v in raw.split(",") if v.strip())
        except ValueError:
            raise ConfigError(f"WEBHOOK_RETRY_SCHEDULE must be seconds like '60,300,1800', got {raw!r}"
                              ) from None
    else:
        values = tuple(raw)
    if not values or len(values) > 50:
        raise ConfigError("WEBHOOK_RETRY_SCHEDULE needs 1 to 50 delays")
    if not all(isinstance(v, int) and 1 <= v <= 86400 for v in values):
        raise ConfigError("WEBHOOK_RETRY_SCHEDULE: each delay must be whole seconds from 1 to 86400")
    if list(values) != sorted(values):
        raise ConfigError("WEBHOOK_RETRY_SCHEDULE: the delays must not fall (a back-off)")
    return values


def parse_networks(raw: str | tuple[Any, ...] | list[Any] | None
                   ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``10.20.0.0/16, fd00:1::/64`` -> the networks (an address alone is a network of one)."""
    parts = [p.strip() for p in raw.split(",")] if isinstance(raw, str) else list(raw or ())
    networks = []
    for part in parts:
        if part == "":
            continue
        try:
            networks.append(ipaddress.ip_network(part))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"WEBHOOK_ALLOWED_NETWORKS must be networks like '10.20.0.0/16,fd00:1::/64': "
                              f"{part!r} is not one ({exc})") from None
    return tuple(networks)


def _webhook_settings(cfg: dict[str, Any]) -> None:
    cfg["WEBHOOK_RETRY_SCHEDULE"] = parse_retry_schedule(cfg["WEBHOOK_RETRY_SCHEDULE"])
    cfg["WEBHOOK_ALLOWED_NETWORKS"] = parse_networks(cfg["WEBHOOK_ALLOWED_NETWORKS"])
    for key in ("WEBHOOK_CONNECT_TIMEOUT_S", "WEBHOOK_READ_TIMEOUT_S"):
        if not 0 < cfg[key] <= 30:  # both together stay within a sender's 2-minute hold on its endpoint
            raise ConfigError(f"{key} must be more than 0 and at most 30 seconds")


BAND_RATES = ("delivery_rate", "on_time_rate", "post_share")
WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")


def parse_bands(raw: str | dict[str, list[float]]) -> dict[str, list[float]]:
    """``rate:green,yellow,orange;...`` -> {rate: [green, yellow, orange]}, thresholds between 0 and 1,
    falling; every rate keeps its default unless given."""
    bands = {} if isinstance(raw, str) else {k: list(v) for k, v in raw.items()}
    if isinstance(raw, str):
        for part in raw.split(";"):
            if not part.strip():
                continue
            name, _, values = part.partition(":")
            try:
                bands[name.strip()] = [float(v) for v in values.split(",")]
            except ValueError:
                raise ConfigError(f"REPORT_BANDS: {part.strip()!r} must be rate:green,yellow,orange"
                                  ) from None
    for name, limits in bands.items():
        if name not in BAND_RATES:
            raise ConfigError(f"REPORT_BANDS: unknown rate {name!r} (one of {', '.join(BAND_RATES)})")
        if len(limits) != 3 or not all(0 <= x <= 1 for x in limits) or sorted(limits, reverse=True) != limits:
            raise ConfigError(f"REPORT_BANDS: {name} needs three falling thresholds between 0 and 1")
    return bands


def parse_schedule(raw: str | tuple[int, int, int]) -> tuple[int, int, int]:
    """``FRI 07:00`` -> (weekday 0-6 with Monday 0, hour, minute)."""
    if isinstance(raw, tuple):
        return raw
    day, _, clock = str(raw).strip().upper().partition(" ")
    try:
        hour, minute = (int(x) for x in clock.split(":"))
        if day not in WEEKDAYS or not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError
    except ValueError:
        raise ConfigError(f"REPORT_WEEKLY_SCHEDULE must be like 'FRI 07:00', got {raw!r}") from None
    return WEEKDAYS.index(day), hour, minute


def _report_settings(cfg: dict[str, Any], instance: Path) -> None:
    defaults = parse_bands(DEFAULTS["REPORT_BANDS"])
    cfg["REPORT_BANDS"] = {**defaults, **parse_bands(cfg["REPORT_BANDS"])}
    cfg["REPORT_WEEKLY_SCHEDULE"] = parse_schedule(cfg["REPORT_WEEKLY_SCHEDULE"])
    if not 0 <= cfg["REPORT_CATCH_UP_S"] <= 600:
        raise ConfigError("REPORT_CATCH_UP_S must be between 0 and 600 seconds")
    if not cfg["REPORT_FILES_DIR"]:
        cfg["REPORT_FILES_DIR"] = str(instance / "reports")


# Reasons the event log gives its own events, which code reads back (a courier's correction, an
# address change): a failure reason with one of these codes would be taken for them.
RESERVED_REASONS = frozenset({"correction", "address_changed"})


def parse_failure_reasons(raw: str | list[dict[str, str]]) -> list[dict[str, str]]:
    """``code:Vietnamese:English;...`` (or already parsed) -> [{"code", "label", "label_en"}]."""
    if isinstance(raw, list):
        items = [(str(r.get("code", "")), str(r.get("label", "")), str(r.get("label_en", ""))) for r in raw]
    else:
        items = []
        for part in str(raw).split(";"):
            if not part.strip():
                continue
            fields = [f.strip() for f in part.split(":")]
            if len(fields) != 3:
                raise ConfigError(f"FAILURE_REASONS: {part.strip()!r} must be code:Vietnamese:English")
            items.append((fields[0], fields[1], fields[2]))
    reasons: list[dict[str, str]] = []
    for code, label, label_en in items:
        if not (code and len(code) <= 64 and code.replace("_", "").isalnum() and code.isascii()):
            raise ConfigError(f"FAILURE_REASONS: the code {code!r} must be 1-64 letters, digits or _")
        if not label or not label_en:
            raise ConfigError(f"FAILURE_REASONS: {code} needs a Vietnamese and an English label")
        if code in RESERVED_REASONS:
            raise ConfigError(f"FAILURE_REASONS: {code} is the event log's own reason: choose another code")
        if any(r["code"] == code for r in reasons):
            raise ConfigError(f"FAILURE_REASONS: {code} is listed twice")
        reasons.append({"code": code, "label": label, "label_en": label_en})
    if not reasons:
        raise ConfigError("FAILURE_REASONS must list at least one reason")
    return reasons


def _courier_settings(cfg: dict[str, Any]) -> None:
    cfg["FAILURE_REASONS"] = parse_failure_reasons(cfg["FAILURE_REASONS"])
    if cfg["MAX_FAILED_ATTEMPTS"] < 1:
        raise ConfigError("MAX_FAILED_ATTEMPTS must be at least 1")
    if cfg["CORRECTION_WINDOW_MIN"] < 0:
        raise ConfigError("CORRECTION_WINDOW_MIN must not be negative")
    if not 1024 <= cfg["MAX_PROOF_BYTES"] <= 20 * 1024 * 1024:
        raise ConfigError("MAX_PROOF_BYTES must be between 1 KiB and 20 MiB")
    if cfg["MAX_CLOCK_SKEW_S"] < 0:
        raise ConfigError("MAX_CLOCK_SKEW_S must not be negative")
    if not 1 <= cfg["SYNC_MAX_EVENTS"] <= 1000:
        raise ConfigError("SYNC_MAX_EVENTS must be between 1 and 1000")
    cfg["DELIVERY_ID_CHECK"] = str(cfg["DELIVERY_ID_CHECK"]).strip().lower()
    if cfg["DELIVERY_ID_CHECK"] not in ID_CHECKS:
        raise ConfigError(f"DELIVERY_ID_CHECK must be one of {', '.join(ID_CHECKS)}, "
                          f"got {cfg['DELIVERY_ID_CHECK']!r}")


def read_instance_secret(instance: Path) -> str | None:
    """The development secret kept in the instance folder, if one was kept."""
    try:
        return (instance / "secret_key").read_text().strip() or None
    except FileNotFoundError:
        return None


def keep_instance_secret(instance_path: str) -> str:
    """A development secret shared by all worker processes of this instance folder, kept there.

    Written to a temporary file and linked into place, so that two workers starting together agree
    on one secret and neither ever reads a half-written file.
    """
    instance = Path(instance_path)
    instance.mkdir(mode=0o700, parents=True, exist_ok=True)  # the secret, and by default the database
    path = instance / "secret_key"
    if not path.exists():
        tmp = instance / f".secret_key.{os.getpid()}"
        tmp.write_text(secrets.token_urlsafe(48))
        tmp.chmod(0o600)
        try:
            os.link(tmp, path)  # fails if another process got there first: then theirs is used
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
