"""Demo organisations in Quảng Ngãi, Hà Tĩnh and former Quảng Nam (now part of Đà Nẵng).

Unit codes are the GSO codes valid from 1 Jul 2025; the units must be imported first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import sqlalchemy as sa

from delivery_service.accounts.models import ApiClient, Role, User
from delivery_service.accounts.services import Actor, create_api_client, create_user
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import create_order, local_today
from delivery_service.orgs.models import Counter, CounterLevel, PostalRoute, PostOffice
from delivery_service.routing.models import PartKind, RouteRule
from delivery_service.units.models import REFORM_DATE, AdminUnit, UnitLevel
from routes.text import fold

POST_OFFICES = [
    ("BC-QNG", "Bưu điện tỉnh Quảng Ngãi", "21025"),
    ("BC-DUCTHO", "Bưu điện Đức Thọ (Hà Tĩnh)", "18229"),
    ("BC-TAMKY", "Bưu điện Tam Kỳ (Quảng Nam cũ, nay TP Đà Nẵng)", "20341"),
]
COUNTERS = [
    ("QNG-TTHCC", "Trung tâm Phục vụ hành chính công tỉnh Quảng Ngãi", CounterLevel.PROVINCE_CENTRE,
     "21025", "BC-QNG", "1022"),
    ("HTI-DUCTHO", "Bộ phận một cửa xã Đức Thọ", CounterLevel.COMMUNE, "18229", "BC-DUCTHO", None),
    ("QNM-TAMKY", "Trung tâm Phục vụ hành chính công Tam Kỳ (Quảng Nam cũ)",
     CounterLevel.PROVINCE_CENTRE, "20341", "BC-TAMKY", "1022"),
]
ROUTES = [
    ("QNG-01", "Tuyến phát Cẩm Thành – Nghĩa Lộ", "BC-QNG", ["21025", "21028"]),
    ("QNG-02", "Tuyến phát Trương Quang Trọng – Tịnh Khê", "BC-QNG", ["21172", "21211"]),
    ("HTI-01", "Tuyến phát Đức Thọ – Đức Minh", "BC-DUCTHO", ["18229", "18244"]),
    ("QNM-01", "Tuyến phát Tam Kỳ – Bàn Thạch – Hương Trà", "BC-TAMKY", ["20341", "20335", "20350"]),
]
USERS = [
    ("counter", "Trần Thị Quầy", Role.COUNTER_STAFF, "QNG-TTHCC", None),
    ("courier", "Lê Văn Phát", Role.COURIER, None, None),
    ("district", "Phạm Thị Huyện", Role.DISTRICT_OFFICER, None, "51"),
    ("admin", "Quản trị hệ thống", Role.ADMIN, None, None),
]
# Trưởng bưu cục: the routes of one post office, and the dispatch of its province's orders.
SUPERVISORS = [
    ("supervisor", "Võ Thị Trưởng", "BC-QNG"),
]
# Route settings: capacity per day and the backup taking the overflow; a part of a commune (a
# hamlet of Xã Sơn Tịnh, which no route covers whole) served by QNG-02.
CAPACITIES = [("QNG-01", 60, "QNG-02")]
RULES = [("QNG-02", "21220", PartKind.HAMLET, "Thôn Trường Thọ")]
DEMO_ORDERS = [
    ("DEMO-000001", "Nguyễn Văn An", "0905123456", "21025", "12 Hùng Vương"),
    ("DEMO-000002", "Trần Thị Bình", "0912345678", "21028", "45 Phan Đình Phùng"),
    ("DEMO-000003", "Lê Hoàng Cường", "0987654321", "21172", "Thôn 3"),
]


def _unit(code: str, level: UnitLevel = UnitLevel.COMMUNE) -> AdminUnit:
    unit = db.session.scalar(sa.select(AdminUnit).where(
        AdminUnit.level == level, AdminUnit.code == code, AdminUnit.valid_from == REFORM_DATE))
    if unit is None:
        raise LookupError(f"unit {code} is missing: run `delivery-service units import` first")
    return unit


def _get_or_add(model, code: str, **values):  # noqa: ANN001, ANN202
    row = db.session.scalar(sa.select(model).where(model.code == code))
    if row is None:
        row = model(code=code, **values)
        db.session.add(row)
        db.session.flush()
    return row


def load(password: str, with_orders: bool = True) -> Iterator[str]:
    """Create what is missing; yields lines to print (log-ins, a new API token)."""
    offices = {code: _get_or_add(PostOffice, code, name=name, unit_id=_unit(unit).id)
               for code, name, unit in POST_OFFICES}
    counters = {code: _get_or_add(Counter, code, name=name, level=level, unit_id=_unit(unit).id,
                                  post_office_id=offices[po].id, hotline=hotline)
                for code, name, level, unit, po, hotline in COUNTERS}
    for username, full_name, role, counter, area in USERS:
        if db.session.scalar(sa.select(User.id).where(User.username == username)) is None:
            create_user(username=username, full_name=full_name, password=password, role=role,
                        counter_code=counter, area_code=area)
    for username, full_name, po in SUPERVISORS:
        if db.session.scalar(sa.select(User.id).where(User.username == username)) is None:
            create_user(username=username, full_name=full_name, password=password, role=Role.SUPERVISOR,
                        post_office_code=po)
    courier = db.session.scalar(sa.select(User).where(User.username == "courier"))
    by_code: dict[str, PostalRoute] = {}
    for code, name, po, communes in ROUTES:
        route = by_code[code] = _get_or_add(PostalRoute, code, name=name, post_office_id=offices[po].id)
        if not route.communes:
            route.communes = [_unit(c) for c in communes]
        if code == "QNG-01" and route.courier_id is None:
            route.courier_id = courier.id
    for code, capacity, backup in CAPACITIES:
        route = by_code[code]
        if route.capacity_per_day is None and route.backup_route_id is None:
            route.capacity_per_day, route.backup_route_id = capacity, by_code[backup].id
    for code, commune, kind, phrase in RULES:
        if db.session.scalar(sa.select(RouteRule.id).where(RouteRule.route_id == by_code[code].id)) is None:
            db.session.add(RouteRule(route_id=by_code[code].id, commune_id=_unit(commune).id, kind=kind,
                                     phrase=phrase, phrase_key=fold(phrase)))
    db.session.commit()

    yield f"Demo log-ins (password: {password}):"
    for username, _full_name, role, counter, area in USERS:
        scope = f"counter {counter}" if counter else f"area {area}" if area else (
            "route QNG-01" if role is Role.COURIER else "everything")
        yield f"  {username:<10} {role.value:<17} {scope}"
    for username, _full_name, po in SUPERVISORS:
        yield f"  {username:<10} {Role.SUPERVISOR.value:<17} post office {po} (its routes, dispatch)"

    counter = counters["QNG-TTHCC"]
    if db.session.scalar(sa.select(ApiClient.id).where(ApiClient.name == "demo one-stop system")) is None:
        _client, token = create_api_client(counter_code=counter.code, name="demo one-stop system")
        db.session.commit()
        yield f"API token for counter {counter.code} (shown once): {token}"

    if not with_orders:
        return
    staff = db.session.scalar(sa.select(User).where(User.username == "counter"))
    actor = Actor.of_user(staff)
    appointment = local_today() + dt.timedelta(days=1)
    for dossier, name, phone, commune, detail in DEMO_ORDERS:
        exists = db.session.scalar(sa.select(DeliveryOrder.id).where(
            DeliveryOrder.counter_id == counter.id, DeliveryOrder.dossier_code == dossier))
        if exists is None:
            create_order(actor, {
                "direction": "result_to_citizen", "dossier_code": dossier,
                "procedure_code": "1.001612.000.00.00.H55", "procedure_name": "Cấp đổi Giấy phép lái xe",
                "issuing_agency": "Sở Xây dựng tỉnh Quảng Ngãi",
                "recipient": {"name": name, "phone": phone},
                "address": {"province_code": "51", "commune_code": commune, "detail": detail},
                "postage_vnd": 26000, "appointment_date": appointment,
            }, counter_id=counter.id)
    yield f"{len(DEMO_ORDERS)} demo orders at counter {counter.code}"
