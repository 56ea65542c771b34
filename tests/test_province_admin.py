"""A province admin (an admin whose area is a province) administers their province on the
administration pages, and outside them reads only their province's orders and figures, as the
province's officer would: no counter desk, routes or printing of other provinces, no national
queries through the API with their session. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, login
from flask import Flask
from web_helpers import make_order

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import Actor, create_user, effective_role
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import find_orders, scope
from delivery_service.units.models import AdminUnit, UnitLevel


def _province(code: str) -> int:
    today = local_today()
    return db.session.scalar(sa.select(AdminUnit.id).where(
        AdminUnit.level == UnitLevel.PROVINCE, AdminUnit.code == code, AdminUnit.valid_from <= today,
        sa.or_(AdminUnit.valid_to.is_(None), AdminUnit.valid_to >= today)))


def _province_admin(province: str) -> User:
    user = create_user(username=f"qt.{province}", full_name="Quản trị tỉnh", password=DEMO_PASSWORD,
                       role=Role.ADMIN)
    user.area_unit_id = _province(province)
    db.session.commit()
    return user


@pytest.fixture
def orders(app: Flask) -> dict[str, DeliveryOrder]:
    """One order delivered in Quảng Ngãi, one in Hà Tĩnh."""
    return {"51": make_order("QNG-TTHCC"),
            "42": make_order("HTI-DUCTHO", address={"province_code": "42", "commune_code": "18229",
                                                    "detail": "Xóm 4"})}


def test_outside_the_admin_pages_a_province_admin_reads_as_the_provinces_officer(app: Flask, orders):
    admin = _province_admin("51")
    assert effective_role(admin) is Role.DISTRICT_OFFICER
    assert effective_role(admin, administering=True) is Role.ADMIN
    actor = Actor.of_user(admin)
    # as an officer reads: figures, no order rows with citizens' data (docs/privacy.md)
    assert set(db.session.scalars(scope(sa.select(DeliveryOrder.item_id), actor))) == set()
    assert list(db.session.scalars(find_orders(actor))) == []
    national = db.session.scalar(sa.select(User).where(User.username == "admin"))
    assert effective_role(national) is Role.ADMIN
    everything = set(db.session.scalars(scope(sa.select(DeliveryOrder.item_id), Actor.of_user(national))))
    assert {orders["51"].item_id, orders["42"].item_id} <= everything


def test_a_province_admins_pages_and_api_session(app: Flask, client, orders):
    _province_admin("51")
    login(client, "qt.51")
    index = client.get("/admin/")
    assert index.status_code == 200
    links = index.get_data(as_text=True)
    # the unit's name says its level: "Tỉnh Quảng Ngãi", not "tỉnh Tỉnh Quảng Ngãi" (outside review)
    assert "Bạn quản trị <strong>Tỉnh Quảng Ngãi</strong>" in links
    assert "Bạn quản trị Tỉnh Quảng Ngãi:" in client.get("/").get_data(as_text=True)
    for shown in ("/admin/users", "/admin/counters", "/admin/clients", "/admin/settings", "/admin/privacy",
                  "/admin/audit"):
        assert f'href="{shown}' in links, shown
    for national in ("/admin/jobs", "/admin/webhooks"):
        assert f'href="{national}' not in links, national
        assert client.get(national).status_code == 403, national
    assert client.get("/admin/users").status_code == 200
    # the operational pages are not theirs
    for path in ("/counter", "/counter/orders/new", "/routes", "/counter/labels"):
        assert client.get(path).status_code == 403, path
    # figures: their province's
    assert client.get("/reports/").status_code == 200
    # the API with their session: no order rows, as for their province's officer
    assert client.get(f"/api/v1/orders/{orders['51'].item_id}").status_code == 404
    assert client.get(f"/api/v1/orders/{orders['42'].item_id}").status_code == 404
    home = client.get("/").get_data(as_text=True)
    assert "/admin/" in home and "/counter\"" not in home


def test_a_national_admin_keeps_every_page(app: Flask, client, orders):
    login(client, "admin")
    for path in ("/counter", "/routes", "/admin/", "/reports/"):
        assert client.get(path).status_code == 200, path
    assert client.get(f"/api/v1/orders/{orders['42'].item_id}").status_code == 200
