"""The answer to a created order is written by ``schemas.order_out`` instead of marshmallow's dump of
``OrderOut``: the two must be equal, field by field, for orders of every shape."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from conftest import order_payload

from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, Exemption, Payer
from delivery_service.orders.schemas import OrderOut, order_out
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.models import Counter, PostalRoute
from delivery_service.units.models import AdminUnit


def _same(order: DeliveryOrder) -> dict:
    dumped = OrderOut().dump(order)
    written = order_out(order)
    assert list(written) == list(dumped)  # every field, in the schema's order
    for name, value in dumped.items():
        assert written[name] == value, name
        assert type(written[name]) is type(value), name
    return written


def test_the_answer_equals_the_schemas_dump_for_orders_made_through_the_api(app, client, auth):
    bodies = [
        order_payload(),
        order_payload(authorised_person={"name": "Trần Văn Bình", "phone": "0912345678",
                                         "id_number": "012345678901"},
                      recipient={"name": "Lê Thị Cúc", "phone": "0905123456", "id_number": "123456789"},
                      weight_g=250, note="Gọi trước khi giao", delivery_window="afternoon",
                      payer="agency", exemption="war_invalid", collect_vnd=15000),
        order_payload(direction="dossier_to_agency", appointment_date=None,
                      delivery_window={"from": "08:30", "to": "10:00"}, postage_vnd=0),
    ]
    for body in bodies:
        made = client.post("/api/v1/orders", json=body, headers=auth)
        assert made.status_code == 201, made.json
        order = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == made.json["item_id"]))
        written = _same(order)
        assert made.json == written  # the stored order, read back, answers as the request did
        again = client.post("/api/v1/orders", json=body, headers=auth)  # a retry: the stored order
        assert again.status_code == 200 and again.json == written
        assert again.headers["Location"] == made.headers["Location"] == f"/api/v1/orders/{order.item_id}"


def test_the_answer_equals_the_schemas_dump_for_unusual_orders(app):
    with app.test_request_context():
        counter = db.session.scalars(sa.select(Counter).order_by(Counter.id)).first()
        route = db.session.scalars(sa.select(PostalRoute).order_by(PostalRoute.id)).first()
        units = db.session.scalars(sa.select(AdminUnit).order_by(AdminUnit.id).limit(3)).all()
        now = dt.datetime(2026, 12, 5, 9, 30, 1, 250, tzinfo=dt.UTC)
        base = DeliveryOrder(
            id=1, item_id="RH000000018VN", counter_id=counter.id, direction=Direction.BOTH,
            status=Status.CREATED, dossier_code="D-1", procedure_code=None, procedure_name="Thủ tục",
            issuing_agency="Sở", recipient_name="Nguyễn Văn An", recipient_phone="0905123456",
            recipient_id_number=None, authorised_name=None, authorised_phone=None, authorised_id_number=None,
            province_id=units[0].id, district_id=None, commune_id=units[-1].id, address_detail="12 Hùng Vương",
            postage_vnd=0, postage_due_vnd=0, payer=Payer.CITIZEN, exemption=Exemption.NONE, collect_vnd=0,
            weight_g=None, appointment_date=None, window_from_min=None, window_to_min=None,
            due_date=dt.date(2026, 12, 8), route_id=None, run_date=None, dispatch="unknown_commune", note=None,
            created_at=now, updated_at=now)
        _same(base)
        shapes = [
            dict(district_id=units[1].id, route_id=route.id, run_date=dt.date(2026, 12, 6), dispatch=None,
                 status=Status.ASSIGNED, window_from_min=8 * 60, window_to_min=12 * 60 + 5, weight_g=30000,
                 authorised_name="Trần Bình", authorised_phone=None, authorised_id_number="012345678901",
                 appointment_date=dt.date(2026, 12, 7), note="Dòng một\nDòng hai", procedure_code="1.0"),
            dict(authorised_name="", window_from_min=8 * 60, window_to_min=None, commune_id=10**9,
                 district_id=10**9, exemption=Exemption.WAR_INVALID, payer=Payer.AGENCY,
                 postage_vnd=26000, postage_due_vnd=0, collect_vnd=1_000_000_000,
                 updated_at=now + dt.timedelta(days=1), created_at=now.replace(microsecond=0)),
        ]
        for shape in shapes:
            order = DeliveryOrder(**{c.key: getattr(base, c.key) for c in DeliveryOrder.__table__.columns})
            for key, value in shape.items():
                setattr(order, key, value)
            _same(order)
        assert set(OrderOut().fields) == set(order_out(base))
