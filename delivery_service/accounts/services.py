"""Passwords, API tokens and the Actor every service call is made on behalf of."""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import hmac
import secrets
import time
from copy import deepcopy
from dataclasses import dataclass
from importlib import resources
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app, has_app_context
from sqlalchemy.orm import make_transient_to_detached

from delivery_service.accounts.models import ApiClient, AuditEvent, Role, User
from delivery_service.db import utcnow
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.orgs.models import Counter
from delivery_service.units.models import AdminUnit, UnitLevel

_hasher = PasswordHasher()
TOKEN_PREFIX = "dsk"
MIN_PASSWORD = 10


@dataclass(frozen=True)
class Actor:
    """Who is acting: a staff user, a counter's software, or the system itself."""

    label: str
    role: Role
    user_id: int | None = None
    client_id: int | None = None
    counter_id: int | None = None
    area_unit_id: int | None = None
    post_office_id: int | None = None

    @classmethod
    def of_user(cls, user: User, *, administering: bool = False) -> Actor:
        """The user as the services take them. A province admin (an admin with an area) administers
        their province on the administration pages (``administering``); everywhere else they read
        their province's figures as its officer would (no order rows: docs/privacy.md), and the
        operational pages (desk, routes, printing) are not theirs."""
        return cls(label=user.username, role=effective_role(user, administering=administering),
                   user_id=user.id, counter_id=user.counter_id, area_unit_id=user.area_unit_id,
                   post_office_id=user.post_office_id)


def effective_role(user: User, *, administering: bool = False) -> Role:
    """``user.role``, except that a province admin acts as a district officer of their province
    outside the administration pages (so that no national query reaches them there)."""
    if user.role is Role.ADMIN and user.area_unit_id is not None and not administering:
        return Role.DISTRICT_OFFICER
    return user.role


SYSTEM = Actor(label="system", role=Role.ADMIN)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


@functools.cache
def _common_passwords() -> frozenset[str]:
    # Django's list (BSD-3-Clause): the 19,640 most common passwords of Royce Williams' compilation
    # of leaked password lists, lower case. Only those of MIN_PASSWORD characters or more matter.
    data = resources.files("delivery_service.accounts").joinpath("common-passwords.txt.gz").read_bytes()
    words = gzip.decompress(data).decode().split()
    return frozenset(w for w in words if len(w) >= MIN_PASSWORD)


def password_problems(password: str, username: str) -> list[str]:
    """Why this password may not be used (English; the pages translate them), empty if it may."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(f"Password must be at least {MIN_PASSWORD} characters.")
    lowered = password.strip().lower()
    name = username.strip().lower()
    # The username itself, reversed, or with a few characters around it ("nguyenvan123").
    if name and (lowered == name[::-1] or (name in lowered and len(lowered) - len(name) <= 3)):
        problems.append("Password must not be the username.")
    if lowered in _common_passwords():
        problems.append("This password is one of the most common passwords; choose another.")
    return problems


def record(action: str, *, actor: Actor | None = None, actor_label: str | None = None,
           object_type: str | None = None, object_id: object = None, before: dict[str, Any] | None = None,
           after: dict[str, Any] | None = None, ip: str | None = None) -> AuditEvent:
    """Add an audit event to the session (committed with the change it records). Callers pass
    field values of staff accounts or settings only: never passwords, tokens or citizens' data."""
    event = AuditEvent(action=action, actor_user_id=actor.user_id if actor else None,
                       actor_label=(actor_label or (actor.label if actor else "anonymous"))[:100],
                       object_type=object_type, object_id=None if object_id is None else str(object_id)[:64],
                       before=before, after=after, ip=(ip or None) and ip[:45])
    db.session.add(event)
    return event


def verify_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def change_password(user: User, *, current: str, new: str, repeat: str) -> None:
    """Change a user's own password; other sessions of this user end (the session version moves)."""
    errors: dict[str, list[str]] = {}
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        errors["current_password"] = ["The current password is wrong."]
    if new != repeat:
        errors["repeat_password"] = ["The two new passwords differ."]
    problems = password_problems(new, user.username)
    if new and new == current:
        problems.append("The new password must differ from the current one.")
    if problems:
        errors["new_password"] = problems
    if errors:
        raise InvalidInput(errors)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    user.session_version += 1


def end_sessions(user: User) -> None:
    """Make every session cookie issued to this user so far invalid."""
    user.session_version += 1


def authenticate(username: str, password: str) -> User | None:
    """The active user with these credentials, or None (same work whether or not the user exists)."""
    user = db.session.scalar(sa.select(User).where(User.username == username.strip().lower()))
    stored = user.password_hash if user else hash_password("dummy-password-for-timing")
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def create_user(*, username: str, full_name: str, password: str, role: Role,
                counter_code: str | None = None, area_code: str | None = None,
                post_office_code: str | None = None, locale: str = "vi") -> User:
    """Create a staff account with the scope its role needs."""
    errors: dict[str, list[str]] = {}
    username = username.strip().lower()
    if not username or len(username) > 64:
        errors["username"] = ["Username must be 1-64 characters."]
    elif db.session.scalar(sa.select(User.id).where(User.username == username)):
        errors["username"] = ["This username is taken."]
    problems = password_problems(password, username)
    if problems:
        errors["password"] = problems
    counter = area = None
    if role is Role.COUNTER_STAFF:
        counter = db.session.scalar(sa.select(Counter).where(Counter.code == (counter_code or "")))
        if counter is None:
            errors["counter"] = ["Counter staff need an existing counter code."]
    if role is Role.DISTRICT_OFFICER or (role is Role.ADMIN and area_code):
        from delivery_service.orders.services import local_today

        today = local_today()
        area = db.session.scalar(sa.select(AdminUnit).where(
            AdminUnit.code == (area_code or ""), AdminUnit.valid_from <= today,
            sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today)))
        if area is None:
            former = db.session.scalar(sa.select(AdminUnit.name).where(AdminUnit.code == (area_code or "")))
            # Orders carry the units valid on their date; a former unit would match none of today's.
            errors["area"] = [f"{former} no longer exists (units valid before 1 Jul 2025); give the code of "
                              "a current province or commune." if former else
                              "District officers need the code of a current administrative unit."]
        elif role is Role.ADMIN and area.level is not UnitLevel.PROVINCE:
            errors["area"] = ["A province admin's area is a province: give a province's code."]
    office = None
    if post_office_code or role is Role.SUPERVISOR:
        from delivery_service.orgs.models import PostOffice

        office = db.session.scalar(sa.select(PostOffice).where(PostOffice.code == (post_office_code or "")))
        if office is None:
            errors["post_office"] = ["Supervisors need the code of an existing post office."]
    if errors:
        raise InvalidInput(errors)
    user = User(username=username, full_name=full_name, password_hash=hash_password(password),
                role=role, counter_id=counter.id if counter else None,
                area_unit_id=area.id if area else None, post_office_id=office.id if office else None,
                locale=locale)
    db.session.add(user)
    db.session.flush()
    return user


def _token_hash(token: str) -> str:
    # Tokens carry 256 random bits, so a fast hash is safe here and keeps every API call cheap.
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_client(*, counter_code: str, name: str) -> tuple[ApiClient, str]:
    """A new API client for a counter; returns it with its token, which is not stored anywhere."""
    counter = db.session.scalar(sa.select(Counter).where(Counter.code == counter_code))
    if counter is None:
        raise NotFound(f"No counter with code {counter_code!r}")
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    client = ApiClient(counter_id=counter.id, name=name, token_prefix=prefix, token_hash=_token_hash(token))
    db.session.add(client)
    db.session.flush()
    return client, token


def revoke_api_client(client_id: int) -> None:
    client = db.session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(f"No API client {client_id}")
    client.revoked_at = utcnow()
    current_app.extensions.get("token_cache", {}).clear()


def actor_for_token(token: str) -> Actor | None:
    """The Actor of a valid, unrevoked token; a short per-process cache spares a query per call."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    digest = _token_hash(token)
    cache: dict[str, tuple[float, Actor]] = current_app.extensions.setdefault("token_cache", {})
    hit = cache.get(digest)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    row = db.session.execute(
        sa.select(ApiClient.id, ApiClient.name, ApiClient.counter_id, ApiClient.token_hash)
        .where(ApiClient.token_prefix == parts[1], ApiClient.revoked_at.is_(None))
    ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    actor = Actor(label=f"api:{row.name}", role=Role.COUNTER_STAFF, client_id=row.id,
                  counter_id=row.counter_id)
    if len(cache) > 10_000:
        cache.clear()
    cache[digest] = (time.monotonic() + current_app.config["API_TOKEN_CACHE_SECONDS"], actor)
    return actor


# How long a worker trusts its copy of a logged-in user's row (every page and courier request needs
# it). A log-out, password change or deactivation in this process drops the copy at once
# (``_forget_session_user``); in another worker the old row serves at most this long, unless the
# session cookie itself shows the row has moved on (``session_user``'s ``version``).
SESSION_USER_SECONDS = 1.0


def session_user(user_id: int, version: Any = None) -> User | None:
    """The active user of a session cookie (Flask-Login's user loader): from a per-process copy at
    most ``SESSION_USER_SECONDS`` old, merged into this request's session without a query (the
    cached-object recipe of ``Session.merge(load=False)``), else read. ``version``: the session
    version the cookie carries; a copy older than it is stale (the password was just changed in
    another worker, which renewed this cookie), and the row is read again: otherwise this worker
    would end the session the change had just renewed, or ask for the new password again."""
    cache: dict[int, tuple[float, User]] = current_app.extensions.setdefault("session_users", {})
    now = time.monotonic()
    hit = cache.get(user_id)
    if hit is not None and hit[0] > now and not (
            isinstance(version, int) and version > hit[1].session_version):
        return db.session.merge(hit[1], load=False)
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        cache.pop(user_id, None)
        return None
    if len(cache) > 10_000:
        cache.clear()
    cache[user_id] = (now + SESSION_USER_SECONDS, _detached_copy(user))
    return user


def _detached_copy(user: User) -> User:
    """A copy of the user's row as loaded, belonging to no session (to merge into later ones)."""
    copy = User(**{a.key: deepcopy(getattr(user, a.key)) for a in sa.inspect(User).column_attrs})
    make_transient_to_detached(copy)
    return copy


@sa.event.listens_for(User, "after_update")
@sa.event.listens_for(User, "after_delete")
def _forget_session_user(_mapper: Any, _connection: Any, target: User) -> None:
    """A user's row changed (log-out, password, deactivation, role): this process's copy goes."""
    if has_app_context():
        current_app.extensions.get("session_users", {}).pop(target.id, None)


# --- two-factor log-in (TOTP) -------------------------------------------------------------------

TOTP_ISSUER = "Buu chinh cong ich"
RECOVERY_CODES = 10


def totp_required(user: User) -> bool:
    """Whether TOTP_REQUIRED_ROLES makes a second factor compulsory for this user's role."""
    roles = {r.strip() for r in (current_app.config.get("TOTP_REQUIRED_ROLES") or "").split(",")}
    return user.role.value in roles


def new_totp_secret() -> str:
    import pyotp

    return pyotp.random_base32()


def totp_uri(secret: str, username: str) -> str:
    """The otpauth:// address an authenticator app reads from the QR code."""
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=TOTP_ISSUER)


def _totp_step(secret: str, code: str, last_step: int | None) -> int | None:
    """The time step a code belongs to (now, or one step either side for clock drift), if it is valid
    and newer than the last one accepted."""
    import pyotp

    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    now = time.time()
    for offset in (0, -1, 1):
        step = totp.timecode(dt.datetime.fromtimestamp(now + offset * totp.interval, dt.UTC))
        if (last_step is None or step > last_step) and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def enable_totp(user: User, secret: str, code: str) -> list[str]:
    """Turn two-factor log-in on once the user shows a code of the new secret; returns the recovery
    codes, which are shown once and kept only as hashes."""
    step = _totp_step(secret, code, None)
    if step is None:
        raise InvalidInput({"code": ["The code is wrong or too old."]})
    codes = ["-".join(secrets.token_hex(2) for _ in range(3)) for _ in range(RECOVERY_CODES)]
    user.totp_secret = secret
    user.totp_enabled_at = utcnow()
    user.totp_last_step = step
    user.recovery_code_hashes = [hash_password(c) for c in codes]
    return codes


def disable_totp(user: User) -> None:
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = user.recovery_code_hashes = None


def verify_second_factor(user: User, code: str) -> str | None:
    """'totp' or 'recovery' when the code is good (a recovery code is then spent), else None."""
    if not user.totp_secret:
        return None
    step = _totp_step(user.totp_secret, code, user.totp_last_step)
    if step is not None:
        user.totp_last_step = step
        return "totp"
    typed = "".join(code.split()).lower()
    for stored in user.recovery_code_hashes or []:
        try:
            _hasher.verify(stored, typed)
        except (VerificationError, InvalidHashError):
            continue
        user.recovery_code_hashes = [h for h in user.recovery_code_hashes if h != stored]
        return "recovery"
    return None
