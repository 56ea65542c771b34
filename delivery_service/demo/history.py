"""Weeks of past demo orders with their whole event history, so that the reports show something.

Written straight into the orders table and the event log with back-dated times (intake and the
courier app only ever write "now"). Deterministic (seeded); the orders' dossier codes start with
``DEMO-H-``, so loading twice adds nothing. Recipients and addresses are invented (demo.people): a
few hundred distinct names; each result order has its appointment date. Its events are history:
the citizens' notifications pass over them (their phone numbers are invented, and real-looking).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from delivery_service.accounts.models import User
from delivery_service.demo.people import person_name, street_address
from delivery_service.extensions import db
from delivery_service.localtime import service_timezone
from delivery_service.notifications import services as notifications
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import allocate_item_id, local_today, name_key
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.models import Counter, PostalRoute, route_communes
from delivery_service.units.models import AdminUnit
from delivery_service.vietnamese import search_key

PREFIX = "DEMO-H-"
PROCEDURES = (("Cấp đổi Giấy phép lái xe", "Sở Xây dựng"),
              ("Cấp lại Giấy chứng nhận quyền sử dụng đất", "Văn phòng đăng ký đất đai"),
              ("Cấp Phiếu lý lịch tư pháp", "Sở Tư pháp"),
              ("Cấp bản sao trích lục khai sinh", "Ủy ban nhân dân cấp xã"),
              ("Cấp Giấy phép xây dựng nhà ở riêng lẻ", "Ủy ban nhân dân cấp xã"),
              ("Đăng ký hộ kinh doanh", "Ủy ban nhân dân cấp xã"))
S = Status
# Per route (in id order, cycling): the chance a first attempt succeeds and a retry does, so that the
# demo's routes land in different colour bands.
QUALITY = ((0.9, 0.8), (0.7, 0.5), (0.8, 0.7), (0.6, 0.4))


def load_history(weeks: int = 8, per_day: int = 25, seed: int = 2025) -> Iterator[str]:
    """Orders of the demo counters on their routes over the past ``weeks`` (idempotent)."""
    if db.session.scalar(sa.select(DeliveryOrder.id).where(DeliveryOrder.dossier_code.startswith(PREFIX))
                         .limit(1)) is not None:
        yield "demo history already loaded"
        return
    rng = random.Random(seed)
    tz = service_timezone()
    staff = db.session.scalar(sa.select(User).where(User.username == "supervisor"))
    plans = []  # (counter, route, commune) the demo routes serve, with the counters of their offices
    routes = db.session.scalars(sa.select(PostalRoute).where(PostalRoute.active).order_by(PostalRoute.id))
    for i, route in enumerate(routes):
        counter = db.session.scalar(sa.select(Counter).where(Counter.post_office_id == route.post_office_id))
        communes = db.session.scalars(sa.select(AdminUnit).join(route_communes,
                                                                route_communes.c.unit_id == AdminUnit.id)
                                      .where(route_communes.c.route_id == route.id)).all()
        if counter is not None and communes:
            plans.append((counter, route, communes, QUALITY[i % len(QUALITY)]))
    if not plans or staff is None:
        yield "no demo routes: run `delivery-service demo load` first"
        return
    today = local_today()
    start = today - dt.timedelta(weeks=weeks)
    events: list[dict] = []
    orders = 0
    day = start
    while day < today:
        for _ in range(rng.randint(per_day // 2, per_day * 3 // 2)):
            counter, route, communes, quality = rng.choice(plans)
            commune = rng.choice(communes)
            province = commune
            while province.parent is not None:
                province = province.parent
            created = dt.datetime.combine(day, dt.time(rng.randint(7, 16), rng.randint(0, 59)), tz)
            due = day + dt.timedelta(days=3)
            appointment = day + dt.timedelta(days=rng.choice((1, 2, 2, 3)))  # the result's promised day
            name = person_name(rng)
            procedure, agency = rng.choice(PROCEDURES)
            order = DeliveryOrder(
                item_id=allocate_item_id(), counter_id=counter.id, direction=Direction.RESULT_TO_CITIZEN,
                dossier_code=f"{PREFIX}{orders + 1:06d}", procedure_name=procedure,
                issuing_agency=agency, recipient_name=name, recipient_name_key=name_key(name),
                recipient_search_key=search_key(name),
                recipient_phone=f"09{rng.randint(10_000_000, 99_999_999)}", province_id=province.id,
                commune_id=commune.id, address_detail=street_address(rng), due_date=due,
                appointment_date=appointment,
                route_id=route.id, run_date=day + dt.timedelta(days=1), created_at=created,
                updated_at=created, status=S.CREATED)
            db.session.add(order)
            db.session.flush()
            orders += 1
            courier_id = route.courier_id
            status = _history(rng, order, created, route.id, courier_id, staff.id, quality, tz, events)
            order.status = status
        day += dt.timedelta(days=1)
    db.session.flush()
    start = notifications.history_start()
    db.session.execute(sa.insert(OrderEvent.__table__), events)
    notifications.pass_over_history(start)  # history tells nobody anything (the scan's age bound aside)
    db.session.commit()
    yield f"{orders} demo orders over the past {weeks} weeks, with {len(events)} events"


def _history(rng: random.Random, order: DeliveryOrder, created: dt.datetime, route_id: int,
             courier_id: int | None, staff_id: int, quality: tuple[float, float], tz: ZoneInfo,
             out: list[dict]) -> Status:
    """Append the order's events; returns its final status. Mostly delivered in one or two days,
    some after a failed attempt or late, a few returned or cancelled; the last days still open."""
    now = dt.datetime.now(tz)

    def add(frm: Status | None, to: Status, when: dt.datetime, by: int | None,
            route: int | None = None) -> bool:
        if when >= now:
            return False
        out.append({"order_id": order.id, "status_from": frm, "status_to": to, "server_time": when,
                    "device_time": when if by == courier_id and by else None, "actor_user_id": by,
                    "actor_label": "system" if by is None else "demo", "route_id": route})
        return True

    add(None, S.CREATED, created, None)
    if not add(S.CREATED, S.ASSIGNED, created + dt.timedelta(minutes=1), None, route_id):
        return S.CREATED
    if rng.random() < 0.03:
        return S.CANCELLED if add(S.ASSIGNED, S.CANCELLED, created + dt.timedelta(hours=3), staff_id) \
            else S.ASSIGNED
    handed = dt.datetime.combine(created.date() + dt.timedelta(days=1), dt.time(7, 30), tz)
    if not add(S.ASSIGNED, S.HANDED_TO_COURIER, handed, courier_id or staff_id):
        return S.ASSIGNED
    out_at = handed + dt.timedelta(minutes=30)
    if not add(S.HANDED_TO_COURIER, S.OUT_FOR_DELIVERY, out_at, courier_id or staff_id):
        return S.HANDED_TO_COURIER
    when = out_at + dt.timedelta(hours=rng.uniform(0.5, 9))
    for attempt in range(3):
        if rng.random() < quality[0 if attempt == 0 else 1]:
            return S.DELIVERED if add(S.OUT_FOR_DELIVERY, S.DELIVERED, when, courier_id or staff_id) \
                else S.OUT_FOR_DELIVERY
        if not add(S.OUT_FOR_DELIVERY, S.FAILED_ATTEMPT, when, courier_id or staff_id):
            return S.OUT_FOR_DELIVERY
        when += dt.timedelta(days=rng.choice((1, 1, 2, 3)))
        if attempt < 2 and not add(S.FAILED_ATTEMPT, S.OUT_FOR_DELIVERY, when, courier_id or staff_id):
            return S.FAILED_ATTEMPT
        when += dt.timedelta(hours=rng.uniform(0.5, 6))
    return S.RETURNED_TO_AGENCY if add(S.FAILED_ATTEMPT, S.RETURNED_TO_AGENCY, when, staff_id) \
        else S.FAILED_ATTEMPT
