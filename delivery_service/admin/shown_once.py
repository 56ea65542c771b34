"""Secrets the administration pages show once, after a redirect (Post/Redirect/Get): a generated
temporary password, a new API token, a webhook signing secret.

The form's POST makes the secret and keeps it here (``hold``, in ``shown_once``, migration 0030)
sealed with a one-time pad; the token that finds it and the pad go to the admin's session only
(``remember``: the cookie is signed, not encrypted, so it never carries the secret itself); the GET
page it redirects to takes both (``recall``, ``take``) and deletes the row as it reads it. A reload
of that page, another tab, another admin or a stale copy of the cookie gets nothing ("shown once
already"), and a reload cannot post the form again."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

import sqlalchemy as sa
from flask import session

from delivery_service.accounts.models import User
from delivery_service.admin.models import ShownOnce
from delivery_service.db import utcnow
from delivery_service.extensions import db

SHOWN_FOR = dt.timedelta(minutes=10)  # a secret waits this long for its page
SESSION_KEY = "admin_shown_once"


def _digest(subject: str, token: str) -> str:
    # The subject is part of the key: a token kept for one page opens nothing on another.
    return hashlib.sha256(f"{subject}\n{token}".encode()).hexdigest()


def hold(admin: User, secret: str, *, subject: str, user_id: int,
         now: dt.datetime | None = None) -> tuple[str, str]:
    """Keep ``secret`` for the page that shows it to ``admin`` once. ``subject`` names what it is
    (e.g. ``"password:12"``, ``"api-token:3"``); ``user_id`` is the account whose password it is,
    or the admin's own for a secret that belongs to no account (an API client's). Returns a token
    and the pad the secret is sealed with (hex), for the admin's session only. Secrets left unshown
    past SHOWN_FOR are swept."""
    now = now or utcnow()
    db.session.execute(sa.delete(ShownOnce).where(ShownOnce.expires_at < now))
    token, data = secrets.token_urlsafe(32), secret.encode()
    pad = secrets.token_bytes(len(data))
    db.session.add(ShownOnce(token_hash=_digest(subject, token), admin_id=admin.id, user_id=user_id,
                             sealed=bytes(a ^ b for a, b in zip(data, pad, strict=True)),
                             expires_at=now + SHOWN_FOR))
    db.session.flush()
    return token, pad.hex()


def take(admin: User, token: str, pad: str, *, subject: str, user_id: int,
         now: dt.datetime | None = None) -> str | None:
    """The secret ``hold`` kept for ``admin`` and ``subject``, once: it is deleted as it is read
    (one statement, so two reloads at once cannot both have it). None when it was shown already, has
    expired, or was not kept for this admin and subject."""
    now = now or utcnow()
    row = db.session.execute(
        sa.delete(ShownOnce)
        .where(ShownOnce.token_hash == _digest(subject, token), ShownOnce.admin_id == admin.id,
               ShownOnce.user_id == user_id)
        .returning(ShownOnce.sealed, ShownOnce.expires_at)).first()
    if row is None or row.expires_at < now:
        return None
    try:
        key = bytes.fromhex(pad)
    except ValueError:
        return None
    if len(key) != len(row.sealed):
        return None
    return bytes(a ^ b for a, b in zip(row.sealed, key, strict=True)).decode(errors="replace")


def remember(subject: str, token: str, pad: str) -> None:
    """Put the token and the pad of a held secret in the admin's session (one at a time: the latest
    form's)."""
    session[SESSION_KEY] = {"subject": subject, "token": token, "pad": pad}


def recall(subject: str) -> tuple[str, str] | None:
    """The token and pad ``remember`` put in the session for ``subject``, removed from it; None when
    there are none (the page was shown already, or the session is another's)."""
    held = session.get(SESSION_KEY)
    if not isinstance(held, dict) or held.get("subject") != subject:
        return None
    session.pop(SESSION_KEY)
    return str(held.get("token")), str(held.get("pad"))
