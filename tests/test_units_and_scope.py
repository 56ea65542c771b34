"""Address resolution over both unit structures, and what each role may see."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from conftest import order_payload

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db
from delivery_service.orders import services
from delivery_service.orders.models import DeliveryOrder
from delivery_service.units.services import resolve_address

BEFORE = dt.date(2024, 5, 1)
AFTER = dt.date(2026, 1, 15)


def _legacy_commune_with_district(province: str) -> tuple[str, str]:
    row = db.session.execute(sa.text(
        "SELECT c.code, d.code FROM admin_units c JOIN admin_units d ON c.parent_id = d.id "
        "JOIN admin_units p ON d.parent_id = p.id WHERE p.code = :p AND c.valid_to IS NOT NULL "
        "ORDER BY c.code LIMIT 1"), {"p": province}).one()
    return row[0], row[1]


def test_three_level_address_before_the_reform(app):
    commune, district = _legacy_commune_with_district("49")  # Quảng Nam existed until 30 Jun 2025
    p, d, c = resolve_address("49", district, commune, BEFORE)
    assert p.name == "Tỉnh Quảng Nam" and d is not None and c.parent_id == d.id
    with pytest.raises(InvalidInput) as exc:
        resolve_address("49", None, commune, BEFORE)
    assert "district_code" in exc.value.errors
    with pytest.raises(InvalidInput) as exc:  # Quảng Nam is no province after 1 Jul 2025
        resolve_address("49", district, commune, AFTER)
    assert set(exc.value.errors) >= {"province_code", "district_code"}


def test_two_level_address_after_the_reform(app):
    p, d, c = resolve_address("48", None, "20341", AFTER)
    assert (p.name, d, c.name) == ("Thành phố Đà Nẵng", None, "Phường Tam Kỳ")
    with pytest.raises(InvalidInput) as exc:
        resolve_address("51", None, "20341", AFTER)
    assert exc.value.errors == {"commune_code": ["Commune 20341 is not in province 51."]}
    assert resolve_address("51", "", "21025", AFTER)[2].code == "21025"  # empty district is none


def test_units_endpoint_cascades(client, auth):
    provinces = client.get("/api/v1/units", headers=auth).json
    assert {p["code"] for p in provinces} == {"51", "42", "48"}  # the test data set, valid today
    qng = next(p for p in provinces if p["code"] == "51")
    communes = client.get("/api/v1/units", query_string={"parent": qng["id"]}, headers=auth).json
    assert "Phường Cẩm Thành" in [c["name"] for c in communes]
    assert {c["level"] for c in communes} == {"commune"}
    old = client.get("/api/v1/units", query_string={"on": "2024-01-01"}, headers=auth).json
    assert {p["code"] for p in old} == {"51", "42", "49"}


def _user_actor(username: str) -> Actor:
    from delivery_service.accounts.models import User

    return Actor.of_user(db.session.scalar(sa.select(User).where(User.username == username)))


def test_each_role_sees_its_own_scope(client, auth):
    ids = [client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"] for _ in range(2)]
    db.session.rollback()
    route_id = db.session.scalar(sa.text("SELECT id FROM postal_routes WHERE code = 'QNG-01'"))
    other_route = db.session.scalar(sa.text("SELECT id FROM postal_routes WHERE code = 'QNG-02'"))
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id == ids[0]).values(route_id=route_id))
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id == ids[1]).values(route_id=other_route))
    db.session.commit()

    def visible(actor: Actor) -> set[str]:
        return set(db.session.scalars(services.scope(sa.select(DeliveryOrder.item_id), actor)))

    assert visible(_user_actor("counter")) == set(ids)
    assert visible(_user_actor("courier")) == {ids[0]}          # only its route
    assert visible(_user_actor("district")) == set()            # figures only: no order rows
    assert visible(_user_actor("admin")) == set(ids)
    other = Actor(label="x", role=Role.COUNTER_STAFF, counter_id=-1)
    assert visible(other) == set()
    hatinh = db.session.scalar(sa.text("SELECT id FROM admin_units WHERE code='42' AND valid_to IS NULL"))
    assert visible(Actor(label="d", role=Role.DISTRICT_OFFICER, area_unit_id=hatinh)) == set()


def test_an_area_officer_reads_no_personal_data_through_the_api(client, auth):
    """An exploratory test read names, phones, ID numbers and the receipt's delivery code as the district
    officer through the API (the pages refused): officers read figures only (docs/privacy.md)."""
    from conftest import login

    item_id = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    officer = client.application.test_client()
    login(officer, "district")
    assert officer.get("/api/v1/orders").json == []
    assert officer.get("/api/v1/orders?q=0905123456").json == []
    for path in ("", "/events", "/proof", "/receipt", "/label"):
        resp = officer.get(f"/api/v1/orders/{item_id}{path}")
        assert resp.status_code in (403, 404), (path, resp.status_code)
        assert b"0905" not in resp.data
    assert officer.get("/api/v1/reports/figures?level=commune").status_code == 200  # figures: yes
