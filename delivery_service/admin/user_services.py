"""Staff accounts as administrators manage them: list, create, change role and scope, deactivate,
reset a password (the user must choose their own at the next log-in), unlock; and the audit log.

Every function takes the acting administrator and explicit values, checks that the account lies in
the administrator's scope (``scope``: a province admin sees only their province), raises
``InvalidInput`` with per-field messages (English; the pages translate them) and records an audit
event with the fields before and after (never a password or its hash). The caller commits."""

from __future__ import annotations

import datetime as dt
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app

from delivery_service.accounts.models import AuditEvent, Role, User
from delivery_service.accounts.services import Actor, end_sessions, hash_password, password_problems, record
from delivery_service.admin import scope, shown_once
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.localtime import day_start, local_today
from delivery_service.orgs.models import Counter, PostalRoute, PostOffice
from delivery_service.units.models import AdminUnit, UnitLevel
from delivery_service.vietnamese import search_key, sort_key

PER_PAGE = 25
# No look-alike characters (0/O, 1/l/I, 2/Z, 5/S, 8/B): the password is read off a screen and typed.
_ALPHABET = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY34679"
GENERATED_LENGTH = 14


@dataclass(frozen=True)
class Page:
    """One page of a list."""

    rows: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))


def _actor(admin: User) -> Actor:
    return Actor.of_user(admin, administering=True)


# --- reading -------------------------------------------------------------------------------------

def list_users(admin: User, *, q: str = "", role: str | None = None, active: bool | None = None,
               page: int = 1, per_page: int = PER_PAGE) -> Page:
    """The users ``admin`` may see, matching ``q`` in the user name or the full name (without
    diacritics: "nguyen" finds "Nguyễn"), in Vietnamese order of full name, one page of them."""
    stmt = scope.scope_users(sa.select(User), admin)
    if role:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.active == active)
    users = list(db.session.scalars(stmt))
    needle = search_key(q)
    if needle:
        users = [u for u in users if needle in search_key(u.full_name) or needle in u.username]
    users.sort(key=lambda u: (sort_key(u.full_name), u.username))
    page = max(1, page)
    return Page(users[(page - 1) * per_page: page * per_page], len(users), page, per_page)


def get_user(admin: User, user_id: int) -> User:
    """A user ``admin`` may see; NotFound for any other (another province's user looks absent)."""
    user = db.session.scalar(scope.scope_users(sa.select(User).where(User.id == user_id), admin))
    if user is None:
        raise NotFound(f"No user {user_id}")
    return user


def routes_of(user: User) -> list[PostalRoute]:
    """The routes a courier drives (changed on the route pages)."""
    routes = db.session.scalars(sa.select(PostalRoute).where(PostalRoute.courier_id == user.id))
    return sorted(routes, key=lambda r: r.code)


@dataclass(frozen=True)
class ScopeChoices:
    """What the form offers an administrator for each role's scope."""

    counters: list[Counter]
    offices: list[PostOffice]
    provinces: list[AdminUnit]
    national: bool


def scope_choices(admin: User) -> ScopeChoices:
    province = scope.province_of(admin)
    counters = sa.select(Counter).where(Counter.active.is_(True))
    offices = sa.select(PostOffice)
    today = local_today()
    provinces = sa.select(AdminUnit).where(
        AdminUnit.level == UnitLevel.PROVINCE, AdminUnit.valid_from <= today,
        sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today))
    if province is not None:
        units = scope.units_in_province(province)
        counters = counters.where(Counter.unit_id.in_(units))
        offices = offices.where(PostOffice.unit_id.in_(units))
        provinces = provinces.where(AdminUnit.id == province.id)
    return ScopeChoices(
        counters=sorted(db.session.scalars(counters), key=lambda c: sort_key(c.name)),
        offices=sorted(db.session.scalars(offices), key=lambda o: sort_key(o.name)),
        provinces=sorted(db.session.scalars(provinces), key=lambda p: sort_key(p.name)),
        national=province is None,
    )


def snapshot(user: User) -> dict[str, Any]:
    """The account's fields as the audit log keeps them (codes, not ids; never the password)."""
    return {
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role.value,
        "counter": user.counter.code if user.counter else None,
        "post_office": user.post_office.code if user.post_office else None,
        "area_unit": user.area_unit.code if user.area_unit else None,
        "active": user.active,
        "must_change_password": user.must_change_password,
    }


def _diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    changed = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in changed}, {k: after[k] for k in changed}


# --- changing ------------------------------------------------------------------------------------

def _current_unit(code: str) -> AdminUnit | None:
    today = local_today()
    return db.session.scalar(sa.select(AdminUnit).where(
        AdminUnit.code == code, AdminUnit.valid_from <= today,
        sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today)))


def _role(value: str | Role | None, errors: dict[str, list[str]]) -> Role | None:
    try:
        return Role(value)
    except ValueError:
        errors["role"] = ["Choose a role."]
        return None


def _scope_of(admin: User, role: Role | None, *, counter_id: int | None, post_office_id: int | None,
              area_code: str | None, province_id: int | None,
              errors: dict[str, list[str]]) -> dict[str, int | None]:
    """The counter, post office and area a user of ``role`` gets, checked against what ``admin`` may
    give: a province admin only gives scopes inside their province."""
    province = scope.province_of(admin)
    out: dict[str, int | None] = {"counter_id": None, "post_office_id": None, "area_unit_id": None}
    if role is Role.COUNTER_STAFF:
        counter = db.session.get(Counter, counter_id) if counter_id else None
        if counter is None:
            errors["counter_id"] = ["Counter staff need a counter."]
        elif province is not None and not scope.unit_in_province(counter.unit_id, province):
            errors["counter_id"] = ["This counter is outside your province."]
        else:
            out["counter_id"] = counter.id
    elif role in (Role.SUPERVISOR, Role.COURIER):
        office = db.session.get(PostOffice, post_office_id) if post_office_id else None
        if office is None and (role is Role.SUPERVISOR or province is not None):
            # A province admin's couriers need a home office: it is what puts them in the province
            # before a route is given to them.
            errors["post_office_id"] = ["Supervisors need a post office." if role is Role.SUPERVISOR
                                        else "Choose the courier's post office."]
        elif (office is not None and province is not None
              and not scope.unit_in_province(office.unit_id, province)):
            errors["post_office_id"] = ["This post office is outside your province."]
        elif office is not None:
            out["post_office_id"] = office.id
    elif role is Role.DISTRICT_OFFICER:
        code = (area_code or "").strip()
        unit = _current_unit(code) if code else None
        if unit is None:
            errors["area_code"] = ["District officers need the code of a current province or commune."]
        elif province is not None and not scope.unit_in_province(unit.id, province):
            errors["area_code"] = ["This unit is outside your province."]
        else:
            out["area_unit_id"] = unit.id
    elif role is Role.ADMIN:
        if province is not None:
            # A province admin makes admins of their own province only, never national ones.
            if province_id not in (None, province.id):
                errors["province_id"] = ["You can only give your own province."]
            out["area_unit_id"] = province.id
        elif province_id:
            unit = db.session.get(AdminUnit, province_id)
            if unit is None or unit.level is not UnitLevel.PROVINCE:
                errors["province_id"] = ["Choose a province, or none for a national administrator."]
            else:
                out["area_unit_id"] = unit.id
    return out


def _check_names(username: str, full_name: str, errors: dict[str, list[str]],
                 *, check_username: bool = True) -> None:
    if check_username:
        if not username or len(username) > 64 or any(ch.isspace() for ch in username):
            errors["username"] = ["User name must be 1-64 characters without spaces."]
        elif db.session.scalar(sa.select(User.id).where(User.username == username)):
            errors["username"] = ["This user name is taken."]
    if not full_name or len(full_name) > 200:
        errors["full_name"] = ["Full name must be 1-200 characters."]


def generate_password() -> str:
    """A temporary password that passes the policy, shown once to the administrator."""
    while True:
        password = "".join(secrets.choice(_ALPHABET) for _ in range(GENERATED_LENGTH))
        if not password_problems(password, ""):
            return password


def _temporary_password(password: str | None, username: str, errors: dict[str, list[str]],
                        field: str = "password") -> tuple[str, bool]:
    """The password given (checked by the policy) or a generated one; and whether it was generated."""
    if not password:
        return generate_password(), True
    problems = password_problems(password, username)
    if problems:
        errors[field] = problems
    return password, False


def create_account(admin: User, *, username: str, full_name: str, role: str | Role,
                   counter_id: int | None = None, post_office_id: int | None = None,
                   area_code: str | None = None, province_id: int | None = None,
                   password: str | None = None, locale: str = "vi",
                   ip: str | None = None) -> tuple[User, str | None]:
    """A new account, which must choose its own password at the first log-in. Returns it with the
    generated password when none was given (to show once; it is stored only as a hash)."""
    import unicodedata

    errors: dict[str, list[str]] = {}
    username = unicodedata.normalize("NFC", username.strip().lower())
    full_name = unicodedata.normalize("NFC", " ".join(full_name.split()))
    _check_names(username, full_name, errors)
    chosen_role = _role(role, errors)
    scope_ids = _scope_of(admin, chosen_role, counter_id=counter_id, post_office_id=post_office_id,
                          area_code=area_code, province_id=province_id, errors=errors)
    secret, generated = _temporary_password(password, username, errors)
    if errors:
        raise InvalidInput(errors)
    assert chosen_role is not None
    user = User(username=username, full_name=full_name, password_hash=hash_password(secret),
                role=chosen_role, locale=locale, must_change_password=True, **scope_ids)
    db.session.add(user)
    db.session.flush()
    db.session.refresh(user)
    record("user.create", actor=_actor(admin), object_type="user", object_id=user.id,
           after={**snapshot(user), "password": "generated" if generated else "set by administrator"},
           ip=ip)
    return user, secret if generated else None


def update_account(admin: User, user: User, *, full_name: str, role: str | Role,
                   counter_id: int | None = None, post_office_id: int | None = None,
                   area_code: str | None = None, province_id: int | None = None,
                   ip: str | None = None) -> User:
    """Change a visible user's full name, role and scope."""
    import unicodedata

    user = get_user(admin, user.id)
    errors: dict[str, list[str]] = {}
    full_name = unicodedata.normalize("NFC", " ".join(full_name.split()))
    _check_names(user.username, full_name, errors, check_username=False)
    chosen_role = _role(role, errors)
    scope_ids = _scope_of(admin, chosen_role, counter_id=counter_id, post_office_id=post_office_id,
                          area_code=area_code, province_id=province_id, errors=errors)
    if user.id == admin.id and (chosen_role is not user.role
                                or scope_ids["area_unit_id"] != user.area_unit_id):
        errors["role"] = ["You cannot change your own role or scope."]
    if errors:
        raise InvalidInput(errors)
    before = snapshot(user)
    user.full_name = full_name
    user.role = chosen_role  # type: ignore[assignment]
    for key, value in scope_ids.items():
        setattr(user, key, value)
    db.session.flush()
    db.session.refresh(user)
    old, new = _diff(before, snapshot(user))
    if new:
        if any(k in new for k in ("role", "counter", "post_office", "area_unit")):
            end_sessions(user)  # a session keeps the scope it was opened with: start afresh
        record("user.update", actor=_actor(admin), object_type="user", object_id=user.id,
               before=old, after=new, ip=ip)
    return user


def set_active(admin: User, user: User, *, active: bool, ip: str | None = None) -> User:
    """Deactivate (their sessions end at once) or reactivate a visible user."""
    user = get_user(admin, user.id)
    if user.id == admin.id and not active:
        raise InvalidInput({"active": ["You cannot deactivate your own account."]})
    if user.active == active:
        return user
    user.active = active
    if not active:
        end_sessions(user)
    record("user.reactivate" if active else "user.deactivate", actor=_actor(admin), object_type="user",
           object_id=user.id, before={"active": not active}, after={"active": active}, ip=ip)
    return user


def reset_password(admin: User, user: User, *, password: str | None = None,
                   ip: str | None = None) -> str | None:
    """Give a visible user a temporary password (``password``, checked by the policy, or a generated
    one, returned to show once); they must change it at their next log-in, and their sessions end."""
    user = get_user(admin, user.id)
    errors: dict[str, list[str]] = {}
    secret, generated = _temporary_password(password, user.username, errors)
    if errors:
        raise InvalidInput(errors)
    before = user.must_change_password
    user.password_hash = hash_password(secret)
    user.must_change_password = True
    end_sessions(user)
    record("user.password_reset", actor=_actor(admin), object_type="user", object_id=user.id,
           before={"must_change_password": before},
           after={"must_change_password": True,
                  "password": "generated" if generated else "set by administrator"},
           ip=ip)
    return secret if generated else None


def hold_password(admin: User, user: User, password: str, *,
                  now: dt.datetime | None = None) -> tuple[str, str]:
    """Keep a generated temporary password for the page that shows it once, after the redirect that
    answers the form (``shown_once``). Returns a token and a pad, for the admin's session only."""
    return shown_once.hold(admin, password, subject=f"password:{user.id}", user_id=user.id, now=now)


def take_password(admin: User, user_id: int, token: str, pad: str, *,
                  now: dt.datetime | None = None) -> str | None:
    """The password ``hold_password`` kept for ``admin`` and the user, once (``shown_once.take``)."""
    return shown_once.take(admin, token, pad, subject=f"password:{user_id}", user_id=user_id, now=now)


def _login_limits(user: User) -> Iterator[tuple[Any, str, str]]:
    """(limit, key, scope) of the per-account log-in limits: failed passwords by user name, failed
    second-factor codes by user id. These are what locks an account after failed log-ins."""
    from flask_limiter.util import get_qualified_name

    from delivery_service.accounts import views as auth_views
    from delivery_service.extensions import limiter

    for endpoint, key_func, key in (("auth.login", auth_views._username_key, f"login:{user.username}"),
                                    ("auth.login_code", auth_views._pending_key, f"login-code:{user.id}")):
        view = current_app.view_functions.get(endpoint)
        if view is None:
            continue
        for lim in limiter.limit_manager.decorated_limits(get_qualified_name(view)):
            if lim.key_func is key_func:
                yield lim.limit, key, lim.scope or endpoint


def is_locked(user: User) -> bool:
    """Whether failed log-ins have used up this account's allowance (it cannot log in for now)."""
    from delivery_service.extensions import limiter

    try:
        return any(not limiter.limiter.test(limit, key, where) for limit, key, where in _login_limits(user))
    except Exception:  # noqa: BLE001  (storage down: the limiter itself falls back; show "not locked")
        return False


def unlock(admin: User, user: User, *, ip: str | None = None) -> bool:
    """Forget a visible user's failed log-ins, so that they may log in again at once; whether the
    account was locked. An account that is not locked is left as it is, and nothing is audited."""
    from delivery_service.extensions import limiter

    user = get_user(admin, user.id)
    was_locked = is_locked(user)
    if not was_locked:
        return False
    if limiter.enabled:
        for limit, key, where in _login_limits(user):
            limiter.limiter.clear(limit, key, where)
    record("user.unlock", actor=_actor(admin), object_type="user", object_id=user.id,
           before={"locked": was_locked}, after={"locked": False}, ip=ip)
    return was_locked


# --- the audit log -------------------------------------------------------------------------------

def search_audit(admin: User, *, actor: str = "", action: str = "", object_type: str = "",
                 object_id: str = "", date_from: dt.date | None = None, date_to: dt.date | None = None,
                 page: int = 1, per_page: int = 50) -> Page:
    """Audit events, newest first; dates are whole local days (Asia/Ho_Chi_Minh). A province admin
    sees the events whose actor or object (a user) lies in their province."""
    stmt = sa.select(AuditEvent)
    if actor.strip():
        # the account name as recorded, or the full name the page shows (without diacritics or case)
        wanted = search_key(actor)
        named = [uid for uid, full in db.session.execute(sa.select(User.id, User.full_name))
                 if wanted and wanted in search_key(full)]
        stmt = stmt.where(sa.or_(
            sa.func.lower(AuditEvent.actor_label).contains(actor.strip().lower(), autoescape=True),
            AuditEvent.actor_user_id.in_(named)))
    if action.strip():
        stmt = stmt.where(AuditEvent.action == action.strip())
    if object_type.strip():
        stmt = stmt.where(AuditEvent.object_type == object_type.strip())
    if object_id.strip():
        stmt = stmt.where(AuditEvent.object_id == object_id.strip())
    if date_from:
        stmt = stmt.where(AuditEvent.at >= day_start(date_from))
    if date_to:
        stmt = stmt.where(AuditEvent.at < day_start(date_to + dt.timedelta(days=1)))
    province = scope.province_of(admin)
    if province is not None:
        mine = sa.select(User.id).where(scope.users_in_province(province))
        stmt = stmt.where(sa.or_(
            AuditEvent.actor_user_id.in_(mine),
            sa.and_(AuditEvent.object_type == "user",
                    AuditEvent.object_id.in_(sa.select(sa.cast(User.id, sa.String)).where(
                        scope.users_in_province(province))))))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.subquery())) or 0
    page = max(1, page)
    rows = list(db.session.scalars(stmt.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
                                   .limit(per_page).offset((page - 1) * per_page)))
    return Page(rows, total, page, per_page)


def known_object_types() -> list[str]:
    """The kinds of object recorded so far, for the search form."""
    return sorted(t for t in db.session.scalars(sa.select(AuditEvent.object_type).distinct()) if t)


def known_actions() -> list[str]:
    """The actions recorded so far, for the search form."""
    return sorted(db.session.scalars(sa.select(AuditEvent.action).distinct()))


def changes(event: AuditEvent) -> list[tuple[str, Any, Any]]:
    """(field, before, after) of an event, in a stable order."""
    before, after = event.before or {}, event.after or {}
    keys = list(before) + [k for k in after if k not in before]
    return [(k, before.get(k), after.get(k)) for k in keys]
