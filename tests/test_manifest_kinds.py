"""Each kind of manifest lists the items of its handover, once, and names who signs (outside review:
a courier → counter manifest took a delivered item and one on a failed attempt with tomorrow's retry,
the same returned items gave two manifests, courier → agency took a delivered result, and the giver
was printed as just "Bưu tá"). Migration 0032 puts the step in manifest_handovers' key."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login, order_payload
from test_courier_api import page_csrf
from test_printing import pdf_text

from delivery_service.accounts.models import User
from delivery_service.accounts.services import SYSTEM, Actor
from delivery_service.errors import Conflict
from delivery_service.extensions import db
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status
from delivery_service.printing import services
from delivery_service.printing.models import Manifest, manifest_handovers, manifest_items

DELIVERED = (Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.DELIVERED)
FAILED = (Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT)
RETURNED = (*FAILED, Status.RETURNED_TO_AGENCY)
PICKED_UP = (Status.PICKUP_SCHEDULED, Status.PICKED_UP)


def item(client, auth, *steps: Status, **payload) -> str:  # noqa: ANN001, ANN003
    resp = client.post("/api/v1/orders", json=order_payload(**payload), headers=auth)
    assert resp.status_code == 201, resp.json
    item_id = resp.json["item_id"]
    for step in steps:
        change_status(SYSTEM, item_id, step)
    return item_id


def dossier(client, auth) -> str:  # noqa: ANN001
    return item(client, auth, *PICKED_UP, direction="dossier_to_agency", appointment_date=None)


def manifests() -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(Manifest.code).order_by(Manifest.id)))


def full_name(username: str) -> str:
    return db.session.scalar(sa.select(User.full_name).where(User.username == username))


def post(client, kind, items, headers=None, **extra):  # noqa: ANN001, ANN003, ANN201
    return client.post("/api/v1/manifests", headers=headers or {},
                       json={"kind": kind, "item_ids": items, "route": "QNG-01", **extra})


def test_a_return_manifest_lists_returned_items_once_and_refuses_others_naming_their_status(client, auth):
    delivered, failed, returned, other = (item(client, auth, *DELIVERED), item(client, auth, *FAILED),
                                          item(client, auth, *RETURNED), item(client, auth, *RETURNED))
    refused = post(client, "courier_to_counter", [delivered, failed, returned], auth)
    assert refused.status_code == 409, refused.json
    assert refused.json["error"] == "wrong_status" and refused.json["kind"] == "courier_to_counter"
    assert refused.json["items"] == [{"item_id": delivered, "status": "delivered"},
                                     {"item_id": failed, "status": "failed_attempt"}]
    assert f"{delivered} (delivered), {failed} (failed_attempt)" in refused.json["message"]
    assert manifests() == []
    made = post(client, "courier_to_counter", [returned], auth, note="Chiều")
    assert made.status_code == 201, made.json
    code = made.json["code"]
    again = post(client, "courier_to_counter", [returned], auth)  # a retry: that manifest, answered again
    assert again.status_code == 200 and again.json["code"] == code
    assert again.headers["Location"] == f"/api/v1/manifests/{code}.pdf"
    more = post(client, "courier_to_counter", [returned, other], auth)  # a part of it again: refused
    assert more.status_code == 409 and more.json["error"] == "already_handed_over"
    assert more.json["handed_over"] == [{"manifest": code, "item_ids": [returned]}]
    assert "handed back once" in more.json["message"]
    assert manifests() == [code]
    # Handed back once, to the counter or to the agency: not both
    login(client, "courier")
    courier = page_csrf(client)
    to_agency = post(client, "courier_to_agency", [returned], courier)
    assert to_agency.status_code == 409, to_agency.json
    assert to_agency.json["handed_over"][0]["manifest"] == code
    assert post(client, "courier_to_agency", [other], courier).status_code == 201


def test_a_courier_hands_the_agency_dossiers_picked_up_not_delivered_results_and_signs_by_name(client, auth):
    delivered, picked = item(client, auth, *DELIVERED), dossier(client, auth)
    login(client, "courier")
    csrf = page_csrf(client)
    refused = post(client, "courier_to_agency", [delivered, picked], csrf)
    assert refused.status_code == 409 and refused.json["items"] == [{"item_id": delivered, "status": "delivered"}]
    made = post(client, "courier_to_agency", [picked], csrf)
    assert made.status_code == 201, made.json
    assert post(client, "courier_to_agency", [picked], csrf).json["code"] == made.json["code"]
    text = " ".join(pdf_text(client.get(f"/api/v1/manifests/{made.json['code']}.pdf").data).split())
    courier = full_name("courier")
    assert f"Người giao / Handed over by: {courier}" in text
    assert text.count(courier) == 2  # beside the giver and in the giver's signature box
    # to the counter taking it in for the agency: the same handover, refused
    assert post(client, "courier_to_counter", [picked], csrf).json["error"] == "already_handed_over"


def test_a_bag_for_a_courier_holds_what_the_counter_still_has(client, auth):
    delivered, back, bag, pickup = (item(client, auth, *DELIVERED), item(client, auth, *RETURNED),
                                    item(client, auth), item(client, auth, direction="dossier_to_agency",
                                                             appointment_date=None))
    refused = post(client, "counter_to_courier", [bag, delivered, back], auth)
    assert refused.status_code == 409 and refused.json["error"] == "wrong_status"
    assert refused.json["items"] == [{"item_id": delivered, "status": "delivered"},
                                     {"item_id": back, "status": "returned_to_agency"}]
    assert post(client, "counter_to_courier", [bag, pickup], auth).status_code == 201  # a pickup's label too


def test_the_counters_manifests_name_the_staff_and_the_courier(client, auth):
    out, back = item(client, auth), item(client, auth, *RETURNED)
    login(client, "counter")
    token = csrf_token(client, "/counter/labels")
    bag = client.post("/counter/manifests", data={"csrf_token": token, "item_ids": [out], "route": "QNG-01"})
    returned = client.post("/counter/manifests", data={"csrf_token": token, "kind": "courier_to_counter",
                                                       "item_ids": [back], "route": "QNG-01"})
    staff, courier = full_name("counter"), full_name("courier")
    for made, giver, receiver in ((bag, staff, courier), (returned, courier, staff)):
        assert made.status_code == 303
        text = " ".join(pdf_text(client.get(made.headers["Location"]).data).split())
        assert f"Người giao / Handed over by: {giver}" in text and f"Người nhận / Received by: {receiver}" in text
    # the same return again: that manifest ("here it is again"), and the returns page no longer lists it
    again = client.post("/counter/manifests", data={"csrf_token": token, "kind": "courier_to_counter",
                                                    "item_ids": [back], "route": "QNG-01"})
    assert again.headers["Location"] == returned.headers["Location"]
    assert back not in client.get("/counter/returns").get_data(as_text=True)


def test_the_returns_page_says_in_vietnamese_which_items_cannot_go_back(client, auth):
    delivered, failed = item(client, auth, *DELIVERED), item(client, auth, *FAILED)
    login(client, "counter")
    token = csrf_token(client, "/counter/labels")
    page = client.post("/counter/manifests", data={"csrf_token": token, "kind": "courier_to_counter",
                                                   "item_ids": [delivered, failed], "route": "QNG-01"},
                       follow_redirects=True).get_data(as_text=True)
    assert (f"Không thể ghi các bưu gửi này vào biên bản trả lại với trạng thái hiện tại: {delivered} (Đã phát), "
            f"{failed} (Phát không thành công).") in page
    assert "bưu gửi còn lần phát tiếp theo thì bưu tá giữ lại" in page
    assert manifests() == []


def _race(app, actor: Actor, kind: str, bags: list[list[str]]) -> list[object]:  # noqa: ANN001
    start = threading.Barrier(len(bags))
    results: list[object] = [None] * len(bags)

    def one(n: int) -> None:
        with app.app_context():
            start.wait()
            try:
                result = services.create_manifest(actor, kind=kind, item_ids=bags[n], route="QNG-01")
                results[n] = (result.manifest.code, result.created)
            except Conflict as exc:
                db.session.rollback()
                results[n] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(len(bags))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_the_same_returns_handed_back_at_once_give_one_manifest(app, client, auth):
    courier = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "courier")))
    back = [item(client, auth, *RETURNED) for _ in range(4)]
    picked = [dossier(client, auth) for _ in range(3)]
    db.session.remove()
    for kind, same in (("courier_to_counter", back[:2]), ("courier_to_agency", back[2:])):
        results = _race(app, courier, kind, [same] * 4)
        assert len({r[0] for r in results}) == 1 and sorted(r[1] for r in results) == [False, False, False, True], \
            results
    # overlapping bags of dossiers, to the counter and to the agency at once: one recorded
    results = _race(app, courier, "courier_to_counter", [picked[:2], picked[1:]]) + []
    made = [r for r in results if isinstance(r, tuple)]
    assert len(made) == 1 and made[0][1] is True, results
    assert all(isinstance(r, Conflict) and r.error == "already_handed_over" for r in results if r not in made)
    db.session.rollback()
    per_item = db.session.execute(sa.select(manifest_items.c.order_id, sa.func.count())
                                  .group_by(manifest_items.c.order_id)).all()
    assert all(n == 1 for _order, n in per_item)  # no item on two manifests
    assert len(manifests()) == 3


def test_migration_0032_records_the_first_handover_back_of_each_item(app, client, auth):
    from flask_migrate import downgrade, upgrade

    returned = item(client, auth, *RETURNED)
    first = post(client, "courier_to_counter", [returned], auth).json["code"]
    bag = post(client, "counter_to_courier", [item(client, auth)], auth).json["code"]
    db.session.remove()
    downgrade(revision="0031")
    assert [c["name"] for c in sa.inspect(db.engine).get_columns("manifest_handovers")] == [
        "order_id", "route_id", "manifest_id"]
    # what the code before 0032 let through: the returned item on a second manifest back, to the agency
    route_id = db.session.scalar(sa.text("SELECT route_id FROM manifests WHERE code = :c"), {"c": first})
    db.session.execute(sa.text(
        "INSERT INTO manifests (code, kind, route_id, actor_label, created_at) "
        "VALUES ('BB-AGAIN', 'courier_to_agency', :route, 'test', CURRENT_TIMESTAMP)"), {"route": route_id})
    again = db.session.scalar(sa.text("SELECT id FROM manifests WHERE code = 'BB-AGAIN'"))
    order_id = db.session.scalar(sa.text("SELECT id FROM delivery_orders WHERE item_id = :i"), {"i": returned})
    db.session.execute(sa.text("INSERT INTO manifest_items (manifest_id, order_id, position) VALUES (:m, :o, 1)"),
                       {"m": again, "o": order_id})
    db.session.commit()
    db.session.remove()
    upgrade()
    handed = db.session.execute(sa.select(manifest_handovers.c.step, Manifest.code)
                                .join(Manifest, Manifest.id == manifest_handovers.c.manifest_id)
                                .order_by(Manifest.id)).all()
    assert [tuple(r) for r in handed] == [("return", first), ("to_courier", bag)]
    db.session.remove()
    refused = post(client, "courier_to_counter", [returned], auth, note="x")
    assert refused.status_code == 200 and refused.json["code"] == first
