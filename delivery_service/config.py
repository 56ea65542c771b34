"""Configuration: defaults, then the environment, then an explicit override; validated once."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from labels import s10

DEFAULTS: dict[str, Any] = {
    "ENV": "development",
    "DATABASE_URL": None,  # None: a SQLite file in the instance folder
    "REDIS_URL": None,  # None: background jobs run in-process after commit
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
    "API_TOKEN_CACHE_SECONDS": 30,
    # Geocoding: "offline" (unit centroids refined by couriers' recorded positions, no network),
    # or a self-hosted "nominatim" / "photon" at GEOCODER_URL (never the public servers in bulk).
    "GEOCODER": "offline",
    "GEOCODER_URL": None,
    "GEOCODER_USER_AGENT": "delivery-service (buu chinh cong ich)",
    "GEOCODER_MIN_DELAY_S": 1.0,  # between two requests of one process to the geocoding server
    "GEOCODER_TIMEOUT_S": 5.0,
    "GEOCODER_CACHE_DAYS": 90,
    # Stop sequencing: the solver's time budget for one run (None: chosen by the number of stops).
    "ROUTE_SEQUENCE_TIME_LIMIT_S": None,
    # Labels: the public address the tracking links on labels and receipts point to
    # ({base}/t/<item id>), the hotline printed when a counter has none of its own, the printers'
    # resolution, and the batch size above which a print is rendered in a background job.
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "COMPLAINTS_HOTLINE": "1900 545481",
    "LABEL_DPI": 203,
    "LABEL_ASYNC_THRESHOLD": 100,
    "PRINT_FILES_DIR": None,  # None: "prints" in the instance folder; batch files kept for download
}

_INT_KEYS = {"DELIVERY_TARGET_DAYS", "MAX_JSON_BYTES", "MAX_IMPORT_BYTES", "MAX_IMPORT_ROWS",
             "API_TOKEN_CACHE_SECONDS", "GEOCODER_CACHE_DAYS", "LABEL_DPI", "LABEL_ASYNC_THRESHOLD"}
_FLOAT_KEYS = {"GEOCODER_MIN_DELAY_S", "GEOCODER_TIMEOUT_S", "ROUTE_SEQUENCE_TIME_LIMIT_S"}
_BOOL_KEYS = {"DELIVERY_TARGET_WORKING_DAYS"}
GEOCODERS = ("offline", "nominatim", "photon")


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
    if not cfg["DATABASE_URL"]:
        instance.mkdir(parents=True, exist_ok=True)
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
        cfg["SECRET_KEY"] = _instance_secret(instance)

    cfg["ITEM_ID_PREFIX"] = str(cfg["ITEM_ID_PREFIX"]).upper()
    cfg["ITEM_ID_COUNTRY"] = str(cfg["ITEM_ID_COUNTRY"]).upper()
    try:
        s10.make(cfg["ITEM_ID_PREFIX"], 0, cfg["ITEM_ID_COUNTRY"])
    except s10.S10Error as exc:
        raise ConfigError(f"ITEM_ID_PREFIX / ITEM_ID_COUNTRY: {exc}") from None
    if cfg["DELIVERY_TARGET_DAYS"] < 0:
        raise ConfigError("DELIVERY_TARGET_DAYS must not be negative")
    if cfg["GEOCODER"] not in GEOCODERS:
        raise ConfigError(f"GEOCODER must be one of {', '.join(GEOCODERS)}, got {cfg['GEOCODER']!r}")
    if cfg["GEOCODER"] != "offline" and not cfg["GEOCODER_URL"]:
        raise ConfigError(f"GEOCODER={cfg['GEOCODER']} needs GEOCODER_URL (your own server's address)")
    if cfg["LABEL_DPI"] not in (203, 300, 600):
        raise ConfigError("LABEL_DPI must be 203, 300 or 600 (the printers' resolutions)")
    cfg["PUBLIC_BASE_URL"] = str(cfg["PUBLIC_BASE_URL"]).rstrip("/")
    if not cfg["PUBLIC_BASE_URL"].startswith(("http://", "https://")):
        raise ConfigError("PUBLIC_BASE_URL must start with http:// or https://")
    if not cfg["PRINT_FILES_DIR"]:
        cfg["PRINT_FILES_DIR"] = str(instance / "prints")
    limit = cfg["ROUTE_SEQUENCE_TIME_LIMIT_S"]
    if limit is not None and not 0 < limit <= 600:
        raise ConfigError("ROUTE_SEQUENCE_TIME_LIMIT_S must be between 0 and 600 seconds")
    return cfg


def _instance_secret(instance: Path) -> str:
    """A development secret shared by all worker processes of this instance folder.

    Written to a temporary file and linked into place, so that two workers starting together agree
    on one secret and neither ever reads a half-written file.
    """
    instance.mkdir(parents=True, exist_ok=True)
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
