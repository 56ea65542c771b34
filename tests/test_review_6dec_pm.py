"""What the outside review of 6 Dec (afternoon) found: each test fails on the code before its fix."""

from __future__ import annotations

import sqlalchemy as sa
from conftest import login

from delivery_service.accounts.models import Role, User
from delivery_service.extensions import db
from delivery_service.orgs.models import PostalRoute

PERIOD = "start=2026-03-02&end=2026-03-08"


# --- the dashboard's filters name only what the reader may see -------------------------------------

def test_a_filter_beyond_the_readers_scope_is_refused_not_named(client):
    admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
    other_route = db.session.scalar(sa.select(PostalRoute).where(~PostalRoute.code.like("QNG-%")))
    own_courier = db.session.scalar(sa.select(User.id).where(User.username == "courier"))
    login(client, "district")  # province 51, Quảng Ngãi
    for name, value, shown in (("courier", admin.id, admin.full_name),
                               ("route", other_route.id, other_route.name)):
        for path in ("/reports/", "/reports/orders", "/reports/export.csv", "/reports/orders.csv",
                     "/reports/chart/units.svg"):
            resp = client.get(f"{path}?{PERIOD}&{name}={value}")
            body = resp.get_data(as_text=True)
            assert resp.status_code == 400 and shown not in body, (path, name, body[:500])
        assert "ngoài phạm vi bạn được xem" in client.get(f"/reports/?{PERIOD}&{name}={value}").get_data(as_text=True)
    assert client.get(f"/reports/?{PERIOD}&courier={own_courier}").status_code == 200  # their own area's courier
    assert db.session.get(User, own_courier).role is Role.COURIER
