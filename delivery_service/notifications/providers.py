"""Where messages go: one interface, three providers (config NOTIFY_PROVIDER).

- ``log``: writes one log line per message (its id and template kind; never the number or text).
- ``sms``: a brand-name SMS gateway's HTTP API: a JSON POST to NOTIFY_SMS_URL with the API key.
- ``zns``: Zalo Notification Service template messages: a JSON POST to NOTIFY_ZNS_URL with the
  template id and its parameters (``access_token`` header).

A provider answers a Result; it never raises for the provider's failures, and its error is a short
reason (``HTTP 500``, ``timeout``, ``ZNS error -124``), never a response body.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from flask import current_app

from delivery_service.notifications import texts

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    message_id: int
    kind: str
    phone_e164: str  # "84912345678"
    text: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Result:
    ok: bool
    error: str | None = None
    ref: str | None = None  # the provider's message id
    permanent: bool = False  # retrying cannot help (e.g. the number is not on Zalo)


class Provider(Protocol):
    name: str

    def send(self, message: Outgoing) -> Result: ...


class LogProvider:
    name = "log"

    def send(self, message: Outgoing) -> Result:
        log.info("notification %s (%s): written to the log only (NOTIFY_PROVIDER=log)", message.message_id,
                 message.kind)
        return Result(True, ref=f"log-{message.message_id}")


def post_json(url: str, payload: dict[str, Any], headers: dict[str, str],
              timeout: float) -> tuple[int | None, Any, str | None]:
    """(status, parsed JSON answer or None, error reason). Reads at most 16 KiB of the answer."""
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = cls(parts.hostname or "", parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    body = json.dumps(payload, ensure_ascii=False).encode()
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json; charset=utf-8",
                                                       "User-Agent": "delivery-service-notify", **headers})
        resp = conn.getresponse()
        raw = resp.read(16 * 1024)
        status = resp.status
    except TimeoutError:
        return None, None, "timeout"
    except ConnectionRefusedError:
        return None, None, "connection refused"
    except socket.gaierror:
        return None, None, "unknown host"
    except (OSError, http.client.HTTPException) as exc:
        return None, None, exc.__class__.__name__[:200]
    finally:
        conn.close()
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    return status, answer, None if 200 <= status < 300 else f"HTTP {status}"


class SmsProvider:
    """A brand-name SMS gateway (generic JSON API; see docs/notifications.md for the body)."""

    name = "sms"

    def send(self, message: Outgoing) -> Result:
        cfg = current_app.config
        text, unicode = texts.sms_text(message.text, bool(cfg["NOTIFY_SMS_UNICODE"]))
        payload = {"to": message.phone_e164, "brandname": cfg["NOTIFY_SMS_BRANDNAME"], "text": text,
                   "unicode": unicode, "ref": f"notify-{message.message_id}"}
        status, answer, error = post_json(cfg["NOTIFY_SMS_URL"], payload,
                                          {"Authorization": f"Bearer {cfg['NOTIFY_SMS_API_KEY']}"},
                                          float(cfg["NOTIFY_TIMEOUT_S"]))
        if error:
            permanent = status is not None and 400 <= status < 500 and status != 429
            return Result(False, error, permanent=permanent)
        ref = str(answer.get("id") or answer.get("message_id") or "")[:64] if isinstance(answer, dict) else ""
        return Result(True, ref=ref or None)


class ZnsProvider:
    """Zalo ZNS: ``POST <NOTIFY_ZNS_URL>`` (https://business.openapi.zalo.me/message/template) with
    header ``access_token`` and ``{"phone", "template_id", "template_data", "tracking_id"}``; the answer
    is ``{"error": 0, "message": "Success", "data": {"msg_id": ...}}``, or a negative error code."""

    name = "zns"

    def send(self, message: Outgoing) -> Result:
        cfg = current_app.config
        template_id = message.params.get("_zns_template_id")
        if not template_id:
            return Result(False, "no ZNS template id for this kind", permanent=True)
        data = {k: v for k, v in message.params.items() if not k.startswith("_")}
        payload = {"phone": message.phone_e164, "template_id": template_id, "template_data": data,
                   "tracking_id": f"notify-{message.message_id}"}
        status, answer, error = post_json(cfg["NOTIFY_ZNS_URL"], payload,
                                          {"access_token": cfg["NOTIFY_ZNS_ACCESS_TOKEN"] or ""},
                                          float(cfg["NOTIFY_TIMEOUT_S"]))
        if error:
            return Result(False, error)
        code = answer.get("error") if isinstance(answer, dict) else None
        if code not in (0, "0"):
            return Result(False, f"ZNS error {code}"[:200])
        msg_id = (answer.get("data") or {}).get("msg_id") if isinstance(answer, dict) else None
        return Result(True, ref=str(msg_id)[:64] if msg_id else None)


def provider() -> Provider:
    name = current_app.config["NOTIFY_PROVIDER"]
    if name == "sms":
        return SmsProvider()
    if name == "zns":
        return ZnsProvider()
    return LogProvider()
