"""An item is handed to a route's courier once (outside review: one item could go on two counter →
courier manifests, from two staff printing the bag's manifest, or one made again after it was
printed). The same items for the same route again are the same manifest (200, the document as
made); an item on another of the route's manifests is refused (409 already_handed_over, naming the
manifest), also when two requests race (manifest_handovers' key, migration 0031)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login, order_payload

from delivery_service.accounts.models import User
from delivery_service.accounts.services import Actor
from delivery_service.errors import Conflict
from delivery_service.extensions import db
from delivery_service.printing import services
from delivery_service.printing.models import Manifest, manifest_handovers, manifest_items


def new_items(client, auth, n: int) -> list[str]:  # noqa: ANN001
    items = []
    for _ in range(n):
        resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
        assert resp.status_code == 201, resp.json
        items.append(resp.json["item_id"])
    return items


def manifests() -> list[str]:
    db.session.rollback()
    return list(db.session.scalars(sa.select(Manifest.code).order_by(Manifest.id)))


def bag(client, auth, items, route="QNG-01", **extra):  # noqa: ANN001, ANN003, ANN201
    return client.post("/api/v1/manifests", headers=auth,
                       json={"kind": "counter_to_courier", "item_ids": items, "route": route, **extra})


def test_the_same_bag_again_is_the_same_manifest_and_an_item_goes_on_one(client, auth):
    items = new_items(client, auth, 3)
    first = bag(client, auth, items[:2], note="Túi sáng")
    assert first.status_code == 201, first.json
    code = first.json["code"]
    pdf = client.get(f"/api/v1/manifests/{code}.pdf", headers=auth).data
    # A retry, or a second person printing the bag's manifest: that manifest, as made
    again = bag(client, auth, list(reversed(items[:2])), note="another note")
    assert again.status_code == 200 and again.json["code"] == code
    assert again.headers["Location"] == f"/api/v1/manifests/{code}.pdf"
    assert manifests() == [code]
    assert client.get(f"/api/v1/manifests/{code}.pdf", headers=auth).data[:200] == pdf[:200]
    # One of its items in another bag of the route: refused, naming the manifest; nothing recorded
    more = bag(client, auth, items[1:])
    assert more.status_code == 409, more.json
    assert more.json["error"] == "already_handed_over" and more.json["route"] == "QNG-01"
    assert more.json["handed_over"] == [{"manifest": code, "item_ids": [items[1]]}]
    assert f"{items[1]} on {code}" in more.json["message"]
    fewer = bag(client, auth, items[:1])  # a part of the bag is not the bag: refused too
    assert fewer.status_code == 409 and fewer.json["handed_over"] == [{"manifest": code, "item_ids": [items[0]]}]
    assert manifests() == [code]
    # The item not handed over yet goes on a manifest of its own
    last = bag(client, auth, items[2:])
    assert last.status_code == 201
    assert manifests() == [code, last.json["code"]]


def test_the_counter_page_prints_the_same_manifest_again_and_refuses_a_second(client, auth):
    items = new_items(client, auth, 2)
    login(client, "counter")
    token = csrf_token(client, "/counter/labels")
    made = client.post("/counter/manifests", data={"csrf_token": token, "item_ids": items, "route": "QNG-01"})
    assert made.status_code == 303
    [code] = manifests()
    again = client.post("/counter/manifests", data={"csrf_token": token, "item_ids": items, "route": "QNG-01"})
    assert again.status_code == 303 and again.headers["Location"].endswith(f"/counter/manifests/{code}.pdf")
    page = client.get("/counter/labels").get_data(as_text=True)
    assert f"Các bưu gửi này đã được giao theo biên bản {code}: in lại biên bản đó." in page
    refused = client.post("/counter/manifests", data={"csrf_token": token, "item_ids": items[:1],
                                                      "route": "QNG-01"}, follow_redirects=True)
    text = refused.get_data(as_text=True)
    assert (f"{items[0]}: đã giao cho bưu tá tuyến QNG-01 theo biên bản {code}. Mỗi bưu gửi chỉ giao một lần: "
            "in lại biên bản đó, hoặc bỏ chọn các bưu gửi này.") in text
    assert manifests() == [code]


def test_an_item_moved_to_another_route_before_its_handover_goes_to_that_routes_courier(app, client, auth):
    """A supervisor may move an item still at the counter to another route: the first manifest no
    longer matches its route, and the new route's courier takes it on a manifest of their own."""
    from delivery_service.routing.services import move_order

    [item] = new_items(client, auth, 1)
    first = bag(client, auth, [item])
    assert first.status_code == 201
    supervisor = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "supervisor")))
    move_order(supervisor, item, "QNG-02")
    other = bag(client, auth, [item], route="QNG-02")
    assert other.status_code == 201, other.json
    assert bag(client, auth, [item], route="QNG-02").json["code"] == other.json["code"]  # once there too


def _race(app, actor: Actor, bags: list[list[str]]) -> list[object]:  # noqa: ANN001
    """Each bag asked for by a thread of its own, all at once (each its own session and connection)."""
    start = threading.Barrier(len(bags))
    results: list[object] = [None] * len(bags)

    def one(n: int) -> None:
        with app.app_context():
            start.wait()
            try:
                result = services.create_manifest(actor, kind="counter_to_courier", item_ids=bags[n], route="QNG-01")
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
def test_two_staff_printing_the_bags_manifest_at_once_get_one_manifest(app, client, auth):
    from delivery_service.accounts.services import actor_for_token

    actor = actor_for_token(app.config["DEMO_TOKEN"])
    items = new_items(client, auth, 8)
    db.session.remove()
    for round_ in range(4):  # the same bag, four times at once: one manifest, every answer it
        same = items[round_ * 2:round_ * 2 + 2]
        results = _race(app, actor, [same] * 4)
        codes = {r[0] for r in results}
        assert len(codes) == 1 and sorted(r[1] for r in results) == [False, False, False, True], results
    assert len(manifests()) == 4
    # Overlapping bags at once: one is recorded, the others are refused and record nothing
    more = new_items(client, auth, 3)
    db.session.remove()
    results = _race(app, actor, [more[:2], more[1:], [more[1]]])
    made = [r for r in results if isinstance(r, tuple)]
    assert len(made) == 1 and made[0][1] is True, results
    assert all(isinstance(r, Conflict) and r.error == "already_handed_over" for r in results if r not in made)
    db.session.rollback()
    per_item = db.session.execute(sa.select(manifest_items.c.order_id, sa.func.count())
                                  .group_by(manifest_items.c.order_id)).all()
    assert len(per_item) >= 9 and all(n == 1 for _order, n in per_item)  # no item on two manifests
    assert len(manifests()) == 5


def test_migration_0031_records_the_first_handover_of_each_item(app, client, auth):
    """Manifests made before 0031 that list an item twice keep their lines as printed; the handover is
    the first manifest's, and a bag of that item is refused from then on."""
    from flask_migrate import downgrade, upgrade

    items = new_items(client, auth, 3)
    first = bag(client, auth, items[:2]).json["code"]
    db.session.remove()
    downgrade(revision="0030")
    assert "manifest_handovers" not in sa.inspect(db.engine).get_table_names()
    # what the code before 0031 let through: a second manifest of the route with items[1] on it
    route_id = db.session.scalar(sa.text("SELECT route_id FROM manifests"))
    db.session.execute(sa.text(
        "INSERT INTO manifests (code, kind, route_id, actor_label, created_at) "
        "VALUES ('BB-SECOND', 'counter_to_courier', :route, 'test', CURRENT_TIMESTAMP)"), {"route": route_id})
    second = db.session.scalar(sa.text("SELECT id FROM manifests WHERE code = 'BB-SECOND'"))
    ids = dict(db.session.execute(sa.text("SELECT item_id, id FROM delivery_orders")).all())
    db.session.execute(sa.text("INSERT INTO manifest_items (manifest_id, order_id, position) VALUES (:m, :o, :p)"),
                       [{"m": second, "o": ids[items[1]], "p": 1}, {"m": second, "o": ids[items[2]], "p": 2}])
    db.session.commit()
    db.session.remove()
    upgrade()
    handed = dict(db.session.execute(sa.select(manifest_handovers.c.order_id, Manifest.code)
                                     .join(Manifest, Manifest.id == manifest_handovers.c.manifest_id)).all())
    assert handed == {ids[items[0]]: first, ids[items[1]]: first, ids[items[2]]: "BB-SECOND"}
    db.session.remove()
    refused = bag(client, auth, [items[1]])
    assert refused.status_code == 409 and refused.json["handed_over"][0]["manifest"] == first


def test_the_labels_page_leaves_out_items_handed_over_and_counts_what_it_lists(client, auth):
    """Outside review: after a counter → courier manifest its items (still ``assigned`` until the
    courier confirms the bag) stayed on /counter/labels, "not yet handed to a courier", and in its count;
    ticking them again only gave an error. An item moved to another route since is listed again."""
    import re

    from delivery_service.routing.services import move_order

    items = new_items(client, auth, 3)
    assert bag(client, auth, items[:2]).status_code == 201
    login(client, "counter")
    page = client.get("/counter/labels").get_data(as_text=True)
    listed = re.findall(r'data-item="([^"]+)"', page)
    assert listed == [items[2]]
    assert re.search(r"<h1>Nhãn và bàn giao <span class=\"muted\">\(1\)</span></h1>", page), page[:2000]
    assert "(1 nhãn chưa in)" in page  # none of the three printed: the two handed over are not counted
    assert services.unprinted_count(Actor.of_user(db.session.scalar(
        sa.select(User).where(User.username == "counter"))), db.session.scalar(
        sa.select(Manifest.counter_id))) == 1
    # moved to another route before that route's courier took it: at the counter again, for QNG-02
    supervisor = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "supervisor")))
    move_order(supervisor, items[0], "QNG-02")
    page = client.get("/counter/labels").get_data(as_text=True)
    assert re.findall(r'data-item="([^"]+)"', page) == [items[0], items[2]]
