"""Counters, post offices, postal routes and API clients as an admin changes them in the browser.

Every function takes the admin (a User: national, or limited to a province by ``scope``) and the
form's fields as strings; bad input raises InvalidInput with messages per field, each a Text in both
languages (the page shows the reader's, ``admin.in_language``), and changes nothing. Every change is
an audit event with the fields before and after (never a token or a signing secret). The caller
commits."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import sqlalchemy as sa
from babel.numbers import format_decimal

from delivery_service.accounts.models import ApiClient, Role, User
from delivery_service.accounts.services import Actor, create_api_client, record, revoke_api_client
from delivery_service.admin import Text
from delivery_service.admin.scope import province_of, scope_users, units_in_province
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.fields import whole_number
from delivery_service.localtime import local_today
from delivery_service.orgs.models import MAX_CAPACITY_PER_DAY, Counter, CounterLevel, PostalRoute, PostOffice
from delivery_service.units.models import AdminUnit, UnitLevel
from delivery_service.vietnamese import sort_key

LABEL_FORMATS = ("pdf", "zpl")
LABEL_SIZES = ("100x150", "100x100", "a6", "a4")
CODE = re.compile(r"^[A-Z0-9][A-Z0-9_.-]{0,31}$")
HOTLINE = re.compile(r"^[0-9 .+()-]{3,32}$")
COUNTER_FIELDS = (
    "code",
    "name",
    "level",
    "unit",
    "post_office",
    "hotline",
    "label_format",
    "label_size",
    "label_requires_route",
    "active",
)
OFFICE_FIELDS = ("code", "name", "unit", "address", "latitude", "longitude")
ROUTE_FIELDS = (
    "code",
    "name",
    "post_office",
    "courier",
    "capacity_per_day",
    "backup",
    "active",
    "return_to_office",
)


class Errors(dict[str, list[Text]]):
    def add(self, field: str, vi: str, en: str) -> None:
        self.setdefault(field, []).append(Text(vi, en))


def _text(value: Any) -> str:
    return unicodedata.normalize("NFC", " ".join(str(value or "").split()))


def _flag(value: Any) -> bool:
    return str(value or "").strip().lower() in {"1", "true", "on", "yes", "y"}


def _actor(admin: User) -> Actor:
    return Actor.of_user(admin, administering=True)


# --- scope ------------------------------------------------------------------------------------------


def _unit_filter(column: Any, admin: User) -> Any:
    province = province_of(admin)
    return sa.true() if province is None else column.in_(units_in_province(province))


def counters_query(admin: User) -> sa.Select:
    return sa.select(Counter).where(_unit_filter(Counter.unit_id, admin)).order_by(Counter.code)


def offices_query(admin: User) -> sa.Select:
    return sa.select(PostOffice).where(_unit_filter(PostOffice.unit_id, admin)).order_by(PostOffice.code)


def routes_query(admin: User) -> sa.Select:
    return (
        sa.select(PostalRoute)
        .join(PostOffice, PostOffice.id == PostalRoute.post_office_id)
        .where(_unit_filter(PostOffice.unit_id, admin))
        .order_by(PostalRoute.code)
    )


def clients_query(admin: User) -> sa.Select:
    return (
        sa.select(ApiClient)
        .join(Counter, Counter.id == ApiClient.counter_id)
        .where(_unit_filter(Counter.unit_id, admin))
        .order_by(ApiClient.id)
    )


def _one(query: sa.Select, model: Any, row_id: int, what: str) -> Any:
    row = db.session.scalar(query.where(model.id == row_id))
    if row is None:  # another province's row is as absent as a missing one
        raise NotFound(f"No {what} {row_id}")
    return row


def get_counter(admin: User, counter_id: int) -> Counter:
    return _one(counters_query(admin), Counter, counter_id, "counter")


def get_office(admin: User, office_id: int) -> PostOffice:
    return _one(offices_query(admin), PostOffice, office_id, "post office")


def get_route(admin: User, route_id: int) -> PostalRoute:
    return _one(routes_query(admin), PostalRoute, route_id, "route")


def get_client(admin: User, client_id: int) -> ApiClient:
    return _one(clients_query(admin), ApiClient, client_id, "API client")


# A counter's level and the level of the unit it sits in, with that unit's name in both languages
COUNTER_UNITS = {
    CounterLevel.PROVINCE_CENTRE.value: (UnitLevel.PROVINCE, "tỉnh, thành phố", "province"),
    CounterLevel.DISTRICT.value: (UnitLevel.DISTRICT, "huyện", "district"),
    CounterLevel.COMMUNE.value: (UnitLevel.COMMUNE, "xã, phường", "commune"),
}


def _current_unit(admin: User, code: str, errors: Errors, field: str = "unit") -> AdminUnit | None:
    today = local_today()
    unit = db.session.scalar(
        sa.select(AdminUnit).where(
            AdminUnit.code == code,
            AdminUnit.valid_from <= today,
            sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today),
        )
    )
    if unit is None:
        errors.add(
            field,
            "Không có đơn vị hành chính hiện hành với mã này.",
            "No administrative unit in force today has this code.",
        )
        return None
    province = province_of(admin)
    if (
        province is not None
        and db.session.scalar(
            sa.select(AdminUnit.id).where(
                AdminUnit.id == unit.id, AdminUnit.id.in_(units_in_province(province))
            )
        )
        is None
    ):
        errors.add(field, "Đơn vị này nằm ngoài tỉnh của bạn.", "This unit is outside your province.")
        return None
    return unit


def _code(model: Any, form: Mapping[str, Any], errors: Errors) -> str:
    code = _text(form.get("code")).upper()
    if not CODE.match(code):
        errors.add(
            "code",
            "Mã gồm 1-32 chữ in hoa, số, dấu - _ hoặc .",
            "The code is 1-32 capital letters, digits, -, _ or .",
        )
    elif db.session.scalar(sa.select(model.id).where(model.code == code)) is not None:
        errors.add("code", "Mã này đã được dùng.", "This code is already used.")
    return code


def _name(form: Mapping[str, Any], errors: Errors) -> str:
    name = _text(form.get("name"))
    if not 1 <= len(name) <= 200:
        errors.add("name", "Nhập tên (tối đa 200 ký tự).", "Enter a name (at most 200 characters).")
    return name


def _fields(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """The audited values of a row (codes for the rows it points to)."""
    out: dict[str, Any] = {}
    for name in names:
        if name == "unit":
            out[name] = row.unit.code if row.unit_id else None
        elif name == "post_office":
            out[name] = row.post_office.code if row.post_office_id else None
        elif name == "courier":
            out[name] = db.session.get(User, row.courier_id).username if row.courier_id else None
        elif name == "backup":
            out[name] = row.backup.code if row.backup_route_id else None
        elif name == "level":
            out[name] = row.level.value
        else:
            value = getattr(row, name)
            out[name] = value
    return out


def _audit(
    admin: User,
    action: str,
    kind: str,
    row: Any,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    ip: str | None,
) -> None:
    if before is not None:
        changed = [k for k in after if before.get(k) != after.get(k)]
        if not changed:
            return
        before, after = {k: before[k] for k in changed}, {k: after[k] for k in changed}
    record(action, actor=_actor(admin), object_type=kind, object_id=row.id, before=before, after=after, ip=ip)


# --- counters ---------------------------------------------------------------------------------------


def save_counter(
    admin: User, counter: Counter | None, form: Mapping[str, Any], *, ip: str | None = None
) -> Counter:
    """Create (``counter`` None) or change a counter: its code is given once and never changes."""
    errors = Errors()
    code = _code(Counter, form, errors) if counter is None else counter.code
    name = _name(form, errors)
    level = str(form.get("level") or "")
    if level not in {lv.value for lv in CounterLevel}:
        errors.add("level", "Chọn cấp của bộ phận một cửa.", "Choose the counter's level.")
    unit = _current_unit(admin, _text(form.get("unit")), errors)
    if unit is not None and level in COUNTER_UNITS and unit.level is not COUNTER_UNITS[level][0]:
        _wanted, vi, en = COUNTER_UNITS[level]  # a commune's counter on a province: figures misplaced
        errors.add("unit", f"Bộ phận một cửa cấp này đặt tại một {vi}: nhập mã {vi}.",
                   f"A counter of this level sits in a {en}: give a {en}'s code.")
    office = None
    office_code = _text(form.get("post_office")).upper()
    if office_code:
        office = db.session.scalar(offices_query(admin).where(PostOffice.code == office_code))
        if office is None:
            errors.add(
                "post_office",
                "Không có bưu cục này (trong phạm vi của bạn).",
                "No such post office (within your scope).",
            )
    hotline = _text(form.get("hotline")) or None
    if hotline and not HOTLINE.match(hotline):
        errors.add(
            "hotline",
            "Số đường dây nóng chỉ gồm chữ số (3-32 ký tự).",
            "A hotline is digits (3-32 characters).",
        )
    fmt, size = str(form.get("label_format") or "pdf"), str(form.get("label_size") or "100x150")
    if fmt not in LABEL_FORMATS:
        errors.add("label_format", "Chọn PDF hoặc ZPL.", "Choose PDF or ZPL.")
    if size not in LABEL_SIZES:
        errors.add("label_size", "Chọn một khổ nhãn.", "Choose a label size.")
    elif fmt == "zpl" and size == "a4":
        errors.add(
            "label_size",
            "ZPL dành cho máy in nhãn: chọn 100x150, 100x100 hoặc A6.",
            "ZPL is for label printers: choose 100x150, 100x100 or a6.",
        )
    if errors:
        raise InvalidInput(errors)
    assert unit is not None
    before = None if counter is None else _fields(counter, COUNTER_FIELDS)
    if counter is None:
        counter = Counter(code=code)
        db.session.add(counter)
    counter.name, counter.level, counter.unit_id = name, CounterLevel(level), unit.id
    counter.post_office_id = office.id if office else None
    counter.hotline, counter.label_format, counter.label_size = hotline, fmt, size
    counter.label_requires_route = _flag(form.get("label_requires_route"))
    counter.active = _flag(form.get("active")) if before is not None else True
    db.session.flush()
    db.session.refresh(counter)
    _audit(
        admin,
        "counter.create" if before is None else "counter.update",
        "counter",
        counter,
        before,
        _fields(counter, COUNTER_FIELDS),
        ip,
    )
    return counter


# --- post offices -----------------------------------------------------------------------------------


def save_office(
    admin: User, office: PostOffice | None, form: Mapping[str, Any], *, ip: str | None = None
) -> PostOffice:
    errors = Errors()
    code = _code(PostOffice, form, errors) if office is None else office.code
    name = _name(form, errors)
    unit = _current_unit(admin, _text(form.get("unit")), errors)
    address = _text(form.get("address")) or None
    if address and len(address) > 255:
        errors.add("address", "Địa chỉ tối đa 255 ký tự.", "The address is at most 255 characters.")
    coords: dict[str, float | None] = {}
    for field, limit in (("latitude", 90), ("longitude", 180)):
        raw = str(form.get(field) or "").strip().replace(",", ".")
        try:
            coords[field] = float(raw) if raw else None
        except ValueError:
            coords[field] = None
            errors.add(field, "Nhập một số thập phân.", "Enter a decimal number.")
            continue
        value = coords[field]
        if value is not None and not -limit <= value <= limit:
            errors.add(field, f"Từ -{limit} đến {limit}.", f"From -{limit} to {limit}.")
    if (coords["latitude"] is None) != (coords["longitude"] is None) and "latitude" not in errors:
        errors.add(
            "latitude",
            "Nhập cả vĩ độ và kinh độ, hoặc để trống cả hai.",
            "Give both latitude and longitude, or neither.",
        )
    if errors:
        raise InvalidInput(errors)
    assert unit is not None
    before = None if office is None else _fields(office, OFFICE_FIELDS)
    if office is None:
        office = PostOffice(code=code)
        db.session.add(office)
    office.name, office.unit_id, office.address = name, unit.id, address
    office.latitude, office.longitude = coords["latitude"], coords["longitude"]
    db.session.flush()
    db.session.refresh(office)
    _audit(
        admin,
        "post_office.create" if before is None else "post_office.update",
        "post_office",
        office,
        before,
        _fields(office, OFFICE_FIELDS),
        ip,
    )
    return office


# --- postal routes ----------------------------------------------------------------------------------


def _home(office: PostOffice) -> str | None:
    """The office's province as of 2025: routing.services.office_province, the coverage rule's."""
    from delivery_service.routing.services import office_province  # the routing pages import admin's

    return office_province(office)


def _provinces() -> dict[int, str | None]:
    """{post office id: its province as of 2025}, ``_home`` for every office in one query."""
    from delivery_service.routing.services import office_provinces  # the routing pages import admin's

    return office_provinces()


def _loose_within(offices: list[int]) -> sa.ColumnElement[bool]:
    """Couriers of no post office who drive no route of a post office outside ``offices`` (none given:
    who drive no route at all)."""
    elsewhere = sa.exists().where(PostalRoute.courier_id == User.id,
                                  PostalRoute.post_office_id.not_in(offices))
    return sa.and_(User.post_office_id.is_(None), ~elsewhere)


def _may_drive(office: PostOffice, provinces: dict[int, str | None] | None = None) -> sa.ColumnElement[bool]:
    """Which couriers a route of ``office`` may have: the office's own, and those of no post office
    who drive no route of another province (``provinces``: ``_provinces()``, when the caller has it).
    The one rule: the form's choices (``couriers_for``, ``courier_groups``) and the save's check."""
    home = _home(office)
    same_province = [i for i, p in (_provinces() if provinces is None else provinces).items() if p == home]
    return sa.and_(User.role == Role.COURIER, User.active,
                   sa.or_(User.post_office_id == office.id, _loose_within(same_province)))


def _by_name(users: Any) -> list[User]:
    # by full name in Vietnamese alphabetical order (ICU), as the people are shown
    return sorted(users, key=lambda u: (sort_key(u.full_name or u.username), u.username))


def _couriers(admin: User, *conditions: sa.ColumnElement[bool]) -> sa.Select[tuple[User]]:
    """Couriers the admin may see (admin.scope: a province admin, those of their province's offices and
    routes) and that meet ``conditions``: whom a route form may offer and its save accept. A courier of
    no office who drives no route is in no province: only a national admin sees them, so a province
    admin cannot take such an account into their province by giving it a route."""
    return scope_users(sa.select(User).where(*conditions), admin)


def couriers_for(admin: User, office: PostOffice) -> list[User]:
    """The couriers a route of ``office`` may have (``_may_drive``) that the admin sees; a new route's,
    whose office is chosen beside the courier, come from ``courier_groups``."""
    return _by_name(db.session.scalars(_couriers(admin, _may_drive(office))))


class CourierGroup(NamedTuple):
    """Couriers of one post office (``office``), or of none who drive routes of one province only
    (``province``, its name as of 2025, ``home`` its code; all None: of no office and driving no
    route, who fit any office)."""

    office: PostOffice | None
    province: str | None
    couriers: list[User]
    home: str | None = None


def office_homes(offices: Iterable[PostOffice]) -> dict[str, str | None]:
    """{office code: the code of its province as of 2025} (``_home``): what the new route's form
    narrows its courier groups by, as ``_may_drive`` does."""
    return {o.code: _home(o) for o in offices}


def _province_name(home: str | None) -> str | None:
    from delivery_service.units.models import UnitLevel
    from delivery_service.units.services import unit_index

    unit = unit_index().find(UnitLevel.PROVINCE, home, local_today()) if home else None
    return unit.name if unit is not None else home


def courier_groups(admin: User) -> list[CourierGroup]:
    """Every courier the admin may put on a route, for a form where the office is chosen beside the
    courier: by post office (the offices the admin sees, in code order, each with its province), then
    those of no office by the province whose routes they drive, then those of no office driving no
    route. Each group fits the routes of its office, or of any office of its province (``_may_drive``);
    a courier of no office who drives routes in two provinces fits none and is not listed."""
    offices = list(db.session.scalars(offices_query(admin)))
    visible = [o.id for o in offices]
    couriers = list(db.session.scalars(_couriers(
        admin, User.role == Role.COURIER, User.active,
        sa.or_(User.post_office_id.in_(visible), User.post_office_id.is_(None)))))
    own: dict[int, list[User]] = {}
    loose: list[User] = []
    for user in couriers:
        (own.setdefault(user.post_office_id, []) if user.post_office_id else loose).append(user)
    in_scope = {home: _province_name(home) for home in {_home(o) for o in offices}}
    groups = [CourierGroup(o, in_scope[_home(o)], _by_name(own[o.id]), _home(o))
              for o in offices if o.id in own]
    # Those of no office: the ones driving routes are asked ``_may_drive`` of one office of each
    # province (within the admin's scope) where one of their routes is; one who drives in two
    # provinces fits neither. The others drive no route, and fit any office.
    routes = db.session.execute(
        sa.select(PostalRoute.courier_id, PostalRoute.post_office_id)
        .where(PostalRoute.courier_id.in_([u.id for u in loose]))).all() if loose else []
    driving = {courier_id for courier_id, _office in routes}
    provinces = _provinces() if routes else {}
    asked = {provinces.get(office_id) for _courier, office_id in routes} & in_scope.keys()
    one_office = {_home(o): o for o in reversed(offices)}  # the first visible office of each province
    for home in sorted(asked, key=lambda h: sort_key(in_scope[h] or "")):
        may_drive = _may_drive(one_office[home], provinces)
        if users := _by_name(db.session.scalars(_couriers(admin, User.id.in_(driving), may_drive))):
            groups.append(CourierGroup(None, in_scope[home], users, home))
    if idle := [u for u in loose if u.id not in driving]:
        groups.append(CourierGroup(None, None, _by_name(idle)))
    return groups


def save_route(
    admin: User, route: PostalRoute | None, form: Mapping[str, Any], *, ip: str | None = None
) -> PostalRoute:
    """Create or change a route's settings; its communes are edited on the coverage page."""
    from delivery_service.routing.services import hand_runs_to, invalidate_routes, recount

    errors = Errors()
    code = _code(PostalRoute, form, errors) if route is None else route.code
    name = _name(form, errors)
    office = db.session.scalar(
        offices_query(admin).where(PostOffice.code == _text(form.get("post_office")).upper())
    )
    if office is None:
        errors.add(
            "post_office",
            "Chọn một bưu cục (trong phạm vi của bạn).",
            "Choose a post office (within your scope).",
        )
    courier = None
    username = _text(form.get("courier")).lower()
    if username and office is None:  # no office to check against: at least an active courier
        courier = db.session.scalar(
            _couriers(admin, User.username == username, User.role == Role.COURIER, User.active))
        if courier is None:
            errors.add("courier", "Không có bưu tá này.", "No such courier.")
    elif username and office is not None:
        courier = db.session.scalar(_couriers(admin, User.username == username, _may_drive(office)))
        if courier is None:
            province = _province_name(_home(office))
            errors.add("courier",
                       f"Bưu tá này không nhận được tuyến của bưu cục {office.code}: chọn một bưu tá của "
                       f"bưu cục {office.code}, hoặc một bưu tá chưa thuộc bưu cục nào chỉ phát tuyến ở "
                       f"{province}.",
                       f"This courier cannot take a route of post office {office.code}: choose a courier of "
                       f"{office.code}, or one of no post office who drives routes in {province} only.")
    capacity: int | None = None
    raw = str(form.get("capacity_per_day") or "").strip()
    if raw:
        if (number := whole_number(raw)) is None or number > MAX_CAPACITY_PER_DAY:
            errors.add(
                "capacity_per_day",
                f"Số đơn mỗi ngày: số nguyên từ 0 đến {format_decimal(MAX_CAPACITY_PER_DAY, locale='vi')}, "
                "hoặc để trống (không giới hạn).",
                f"Orders a day: a whole number from 0 to {MAX_CAPACITY_PER_DAY:,}, or empty for no limit.",
            )
        else:
            capacity = number
    backup = None
    backup_code = _text(form.get("backup")).upper()
    if backup_code:
        backup = db.session.scalar(routes_query(admin).where(PostalRoute.code == backup_code))
        if backup is None or backup_code == code:
            errors.add(
                "backup",
                "Tuyến dự phòng phải là một tuyến khác đang có.",
                "The backup must be another existing route.",
            )
        elif route is not None and _loops(route.id, backup):
            errors.add(
                "backup",
                "Tuyến dự phòng này dẫn vòng về chính tuyến này.",
                "This backup's chain of backups leads back to this route.",
            )
    if office is not None:
        _same_province(office, route, backup if "backup" not in errors else None, errors)
    if errors:
        raise InvalidInput(errors)
    assert office is not None
    before = None if route is None else _fields(route, ROUTE_FIELDS)
    if route is None:
        route = PostalRoute(code=code)
        db.session.add(route)
    old_capacity, old_courier = route.capacity_per_day, route.courier_id
    route.name, route.post_office_id = name, office.id
    route.courier_id = courier.id if courier else None
    route.capacity_per_day, route.backup_route_id = capacity, backup.id if backup else None
    route.active = _flag(form.get("active")) if before is not None else True
    route.return_to_office = _flag(form.get("return_to_office"))
    db.session.flush()
    db.session.refresh(route)
    if before is not None and capacity != old_capacity:
        recount(route.id, local_today())
    if before is not None and route.courier_id != old_courier:
        hand_runs_to(route.id, route.courier_id, local_today())
    _audit(
        admin,
        "route.create" if before is None else "route.update",
        "route",
        route,
        before,
        _fields(route, ROUTE_FIELDS),
        ip,
    )
    invalidate_routes()
    return route


def _same_province(office: PostOffice, route: PostalRoute | None, backup: PostalRoute | None,
                   errors: Errors) -> None:
    """A route stays within its post office's province (routing.services.set_coverage's rule, as of
    2025): its backup, and, when it moves to another office, the communes it covers."""
    from delivery_service.routing.models import RouteRule
    from delivery_service.units.services import province_code_2025

    home = _home(office)
    if backup is not None and _home(backup.post_office) != home:
        errors.add("backup", f"Tuyến dự phòng {backup.code} ở tỉnh khác với bưu cục {office.code}.",
                   f"Backup route {backup.code} is in another province than post office {office.code}.")
    if route is not None and route.post_office_id != office.id:
        covered = {u.id for u in route.communes} | set(db.session.scalars(
            sa.select(RouteRule.commune_id).where(RouteRule.route_id == route.id)))
        if any(province_code_2025(c) != home for c in covered):
            errors.add("post_office",
                       f"Tuyến này phát ở xã ngoài tỉnh của bưu cục {office.code}: sửa phạm vi phát trước.",
                       f"This route covers communes outside post office {office.code}'s province: change its "
                       "coverage first.")


def _loops(route_id: int, backup: PostalRoute) -> bool:
    """Whether following ``backup`` and its backups comes back to ``route_id``. The assignment stops
    at a loop (routes.assign chain), but a loop only hides which route takes the overflow."""
    seen: set[int] = set()
    current: int | None = backup.id
    while current is not None and current not in seen:
        if current == route_id:
            return True
        seen.add(current)
        current = db.session.scalar(sa.select(PostalRoute.backup_route_id).where(PostalRoute.id == current))
    return False


# --- API clients ------------------------------------------------------------------------------------


def _client_fields(client: ApiClient) -> dict[str, Any]:
    from delivery_service.webhooks.models import WebhookEndpoint

    endpoint = db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.api_client_id == client.id))
    return {
        "name": client.name,
        "counter": client.counter.code,
        "token_prefix": client.token_prefix,
        "revoked": client.revoked_at is not None,
        "webhook_url": endpoint.url if endpoint else None,
        "webhook_active": endpoint.active if endpoint else None,
    }


def create_client(admin: User, form: Mapping[str, Any], *, ip: str | None = None) -> tuple[ApiClient, str]:
    """A new API client; returns it and its token (shown once; only its hash is stored)."""
    errors = Errors()
    name = _name(form, errors)
    counter = db.session.scalar(
        counters_query(admin).where(Counter.code == _text(form.get("counter")).upper())
    )
    if counter is None:
        errors.add(
            "counter",
            "Chọn một bộ phận một cửa (trong phạm vi của bạn).",
            "Choose a counter (within your scope).",
        )
    if errors:
        raise InvalidInput(errors)
    assert counter is not None
    client, token = create_api_client(counter_code=counter.code, name=name)
    _audit(admin, "api_client.create", "api_client", client, None, _client_fields(client), ip)
    return client, token


def revoke_client(admin: User, client: ApiClient, *, ip: str | None = None) -> None:
    if client.revoked_at is not None:
        return
    before = _client_fields(client)
    revoke_api_client(client.id)
    from delivery_service.webhooks import services as webhooks

    if before["webhook_active"]:
        webhooks.disable(client.id)  # a revoked client's system is sent nothing more
    db.session.flush()
    _audit(admin, "api_client.revoke", "api_client", client, before, _client_fields(client), ip)


def set_webhook(admin: User, client: ApiClient, url: str, *, ip: str | None = None) -> str:
    """Set or change the webhook address; returns the new signing secret (shown once)."""
    from delivery_service.webhooks import services as webhooks

    if client.revoked_at is not None:
        raise InvalidInput({"url": [Text("Khóa API này đã bị thu hồi.", "This API client is revoked.")]})
    before = _client_fields(client)
    try:
        _endpoint, secret = webhooks.set_endpoint(client.id, url)
    except InvalidInput as exc:
        raise InvalidInput({"url": [_webhook_problem(m) for m in exc.errors.get("url") or []]}) from None
    _audit(admin, "webhook.update", "api_client", client, before, _client_fields(client), ip)
    return secret


# The webhook service's refusals (webhooks.services.URL_PROBLEMS) in Vietnamese, by their code; the
# English is the service's own message, and the host or address it names is kept.
WEBHOOK_PROBLEMS_VI = {
    "not_http_url": "Nhập địa chỉ http:// hoặc https:// (tối đa 500 ký tự).",
    "unresolved_host": "Không tìm thấy máy chủ {host} (tên miền không phân giải được địa chỉ): kiểm tra lại "
                       "địa chỉ.",
    "address_refused": "Địa chỉ này trỏ tới {address}, một địa chỉ nội bộ (máy này, mạng riêng hoặc "
                       "link-local): webhook chỉ gửi tới địa chỉ công cộng (người vận hành có thể cho phép "
                       "một mạng bằng WEBHOOK_ALLOWED_NETWORKS).",
}


def _webhook_problem(problem: object) -> Text:
    """A refusal of the webhook service (a ``UrlProblem``: code and params) in both languages."""
    code, params = getattr(problem, "code", None), getattr(problem, "params", {})
    if code not in WEBHOOK_PROBLEMS_VI:  # none it raises today; said as is rather than guessed at
        return Text(str(problem), str(problem))
    return Text(WEBHOOK_PROBLEMS_VI[code].format(**params), str(problem))


def clear_webhook(admin: User, client: ApiClient, *, ip: str | None = None) -> None:
    """Remove the webhook (and its delivery log): nothing more is sent; polling still works."""
    from delivery_service.webhooks import services as webhooks
    from delivery_service.webhooks.models import WebhookDelivery, WebhookEndpoint

    endpoint = db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.api_client_id == client.id))
    if endpoint is None:
        return
    before = _client_fields(client)
    db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    db.session.delete(endpoint)
    db.session.flush()
    webhooks._forget_active()
    _audit(admin, "webhook.clear", "api_client", client, before, _client_fields(client), ip)


def pause_webhook(admin: User, client: ApiClient, pause: bool, *, ip: str | None = None) -> None:
    from delivery_service.webhooks import services as webhooks

    before = _client_fields(client)
    if pause:
        webhooks.disable(client.id)
    else:
        webhooks.resume(client.id)
    db.session.flush()
    _audit(
        admin,
        "webhook.pause" if pause else "webhook.resume",
        "api_client",
        client,
        before,
        _client_fields(client),
        ip,
    )


def rotate_webhook_secret(
    admin: User, client: ApiClient, overlap_hours: str, *, ip: str | None = None
) -> tuple[str, dt.datetime | None]:
    """A new signing secret (returned, shown once) and until when the old one still signs too."""
    from delivery_service.webhooks import services as webhooks

    raw = str(overlap_hours or "").strip()
    if (hours := whole_number(raw)) is None or hours > 720:
        raise InvalidInput({"overlap_hours": [Text("Số giờ từ 0 đến 720.", "Hours from 0 to 720.")]})
    from delivery_service.webhooks.models import WebhookEndpoint

    ongoing = db.session.scalar(
        sa.select(WebhookEndpoint.previous_secret_until).where(WebhookEndpoint.api_client_id == client.id)
    )
    endpoint, secret = webhooks.rotate_secret(client.id, dt.timedelta(hours=hours))
    record(
        "webhook.rotate_secret",
        actor=_actor(admin),
        object_type="api_client",
        object_id=client.id,
        # when the previous rotation's overlap ended (the secrets themselves are never recorded)
        before={"old_secret_valid_until": ongoing.isoformat() if ongoing else None},
        after={
            "overlap_hours": hours,
            "old_secret_valid_until": endpoint.previous_secret_until.isoformat()
            if endpoint.previous_secret_until
            else None,
        },
        ip=ip,
    )
    return secret, endpoint.previous_secret_until
