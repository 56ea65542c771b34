"""A manifest names the courier who signed for the bag, also when printed again after the route changed
couriers (outside review: the PDF named the route's courier at the time of printing, so a legal
handover record changed after the fact). The courier is kept on the manifest when it is made
(manifests.courier_id, migration 0033, which fills existing manifests with the rule used until then).
On SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from conftest import DEMO_PASSWORD, login
from test_courier_api import page_csrf
from test_manifest_kinds import RETURNED, item
from test_printing import pdf_text

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import create_user
from delivery_service.admin import org_services as orgs
from delivery_service.extensions import db
from delivery_service.orgs.models import PostalRoute
from delivery_service.printing.models import Manifest

NEW_COURIER = "Phạm Thị Thay Ca"


def _user(username: str) -> User:
    return db.session.scalar(sa.select(User).where(User.username == username))


def _route(code: str = "QNG-01") -> PostalRoute:
    db.session.expire_all()
    return db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == code))


def _hand_route_to(username: str | None) -> None:
    """QNG-01 given to another courier (or to none), as an administrator does on the route's page."""
    route = _route()
    orgs.save_route(_user("admin"), route, {
        "name": route.name, "post_office": route.post_office.code, "courier": username or "",
        "capacity_per_day": "" if route.capacity_per_day is None else str(route.capacity_per_day),
        "backup": route.backup.code if route.backup else "", "active": "1",
        "return_to_office": "1" if route.return_to_office else ""})
    db.session.commit()
    assert _route().courier_id == (_user(username).id if username else None)


def _new_courier() -> None:
    create_user(username="bt.thayca", full_name=NEW_COURIER, password=DEMO_PASSWORD, role=Role.COURIER,
                post_office_code="BC-QNG")
    db.session.commit()


def _manifest(client, kind: str, items: list[str], headers: dict[str, str]) -> str:  # noqa: ANN001
    made = client.post("/api/v1/manifests", headers=headers,
                       json={"kind": kind, "item_ids": items, "route": "QNG-01"})
    assert made.status_code == 201, made.json
    return made.json["code"]


def _printed(client, code: str, auth: dict[str, str]) -> str:  # noqa: ANN001
    resp = client.get(f"/api/v1/manifests/{code}.pdf", headers=auth)
    assert resp.status_code == 200, resp.data[:300]
    return " ".join(pdf_text(resp.data).split())


def test_a_manifest_printed_again_after_the_route_changed_couriers_names_the_one_who_signed(client, auth):
    signed = _user("courier").full_name
    bag = _manifest(client, "counter_to_courier", [item(client, auth)], auth)  # the counter's software
    assert f"Người nhận / Received by: {signed}" in _printed(client, bag, auth)
    _new_courier()
    _hand_route_to("bt.thayca")
    text = _printed(client, bag, auth)
    assert f"Người nhận / Received by: {signed}" in text
    assert NEW_COURIER not in text
    # a route with no courier now: still the one who signed
    _hand_route_to(None)
    assert f"Người nhận / Received by: {signed}" in _printed(client, bag, auth)
    # a bag made now, for the route with no courier: no name, written by hand; then the new courier's
    later = _manifest(client, "counter_to_courier", [item(client, auth)], auth)
    assert signed not in _printed(client, later, auth)
    _hand_route_to("bt.thayca")
    assert db.session.scalar(sa.select(Manifest.courier_id).where(Manifest.code == later)) is None
    newer = _manifest(client, "counter_to_courier", [item(client, auth)], auth)
    text = _printed(client, newer, auth)
    assert f"Người nhận / Received by: {NEW_COURIER}" in text and signed not in text


def test_a_couriers_own_manifest_keeps_their_name_after_the_route_changed_couriers(client, auth):
    back = item(client, auth, *RETURNED)
    login(client, "courier")
    code = _manifest(client, "courier_to_counter", [back], page_csrf(client))
    _new_courier()
    _hand_route_to("bt.thayca")
    text = _printed(client, code, auth)
    assert f"Người giao / Handed over by: {_user('courier').full_name}" in text and NEW_COURIER not in text


def test_migration_0033_keeps_the_courier_each_manifest_printed_until_then(app, client, auth):
    from flask_migrate import downgrade, upgrade

    back = item(client, auth, *RETURNED)
    bag = _manifest(client, "counter_to_courier", [item(client, auth)], auth)
    login(client, "courier")
    own = _manifest(client, "courier_to_counter", [back], page_csrf(client))
    _new_courier()
    courier, new = _user("courier").id, _user("bt.thayca").id
    db.session.remove()
    downgrade(revision="0032")
    assert "courier_id" not in [c["name"] for c in sa.inspect(db.engine).get_columns("manifests")]
    # What the code before 0033 printed: the maker if a courier, else the route's courier now
    db.session.execute(sa.text("UPDATE postal_routes SET courier_id = :c WHERE code = 'QNG-01'"), {"c": new})
    db.session.commit()
    db.session.remove()
    upgrade()
    kept = dict(db.session.execute(sa.select(Manifest.code, Manifest.courier_id)).all())
    assert kept == {bag: new, own: courier}
    foreign_keys = sa.inspect(db.engine).get_foreign_keys("manifests")
    assert {"constrained_columns": ["courier_id"], "referred_table": "users"}.items() <= next(
        fk for fk in foreign_keys if fk["constrained_columns"] == ["courier_id"]).items()
    db.session.remove()
    assert f"Người nhận / Received by: {NEW_COURIER}" in _printed(client, bag, auth)
