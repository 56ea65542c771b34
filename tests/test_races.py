"""Racing copies of one request (a phone retrying on a flaky network while its first request still
runs), on both databases: every event is stored once, and every copy that lost the race answers as a
replay (``duplicate`` in a courier sync, 200 with the stored event from the events API), never as a
refusal. Real threads and real transactions, no mocks; each race runs several rounds."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import login, order_payload
from flask import Flask
from test_courier_api import (
    JPEG,
    delivered,
    event,
    events_of,
    handed,
    new_order,
    page_csrf,
    put_file,
    status_of,
)

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor
from delivery_service.courier.models import DeliveryProof, EventCorrection, ProofFile
from delivery_service.errors import Conflict
from delivery_service.extensions import db
from delivery_service.orders.models import OrderEvent
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status

ROUNDS = 5
COPIES = 3


@pytest.fixture
def courier(client) -> dict[str, str]:
    """The demo courier (drives QNG-01), logged in; returns the write headers."""
    login(client, "courier")
    return page_csrf(client)


def race(n: int, send: Callable[[int], Any]) -> list[Any]:
    """``send(k)`` in ``n`` threads released at the same moment; their answers, by k."""
    barrier = threading.Barrier(n)
    answers: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            barrier.wait(timeout=30)
            answers[k] = send(k)
        except BaseException as exc:  # noqa: BLE001  (reported in the test's thread below)
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    db.session.rollback()  # the test's own session: read what the racers committed
    return answers


def phones(app: Flask, client, n: int) -> list:
    """``n`` test clients sharing ``client``'s log-in (one phone's session), one per thread."""
    name = app.config["SESSION_COOKIE_NAME"]
    cookie = client.get_cookie(name)
    copies = []
    for _ in range(n):
        copy = app.test_client()
        copy.set_cookie(name, cookie.value)
        copies.append(copy)
    return copies


def race_sync(app: Flask, client, headers: dict[str, str], batch: list[dict]) -> list[list[dict]]:
    """The same sync batch sent by COPIES clients at once; each copy's results."""
    copies = phones(app, client, COPIES)

    def send(k: int) -> list[dict]:
        resp = copies[k].post("/api/v1/courier/sync", json={"events": batch}, headers=headers)
        assert resp.status_code == 200, resp.json
        return resp.json["results"]

    return race(COPIES, send)


def assert_one_applied_rest_duplicate(answers: list[list[dict]], batch: list[dict]) -> None:
    for i, sent in enumerate(batch):
        results = [copy[i] for copy in answers]
        assert all(r["event_id"] == sent["event_id"] for r in results), results
        assert sorted(r["result"] for r in results) == ["applied"] + ["duplicate"] * (COPIES - 1), results
        assert len({r["status"] for r in results}) == 1, results


def stored_once(event_id: str) -> OrderEvent:
    [stored] = db.session.scalars(sa.select(OrderEvent).where(OrderEvent.client_event_id == event_id)).all()
    return stored


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_racing_copies_of_a_sync_batch_store_each_event_once(app, client, auth, courier, round_):
    """A delivery (two steps from handed_to_courier, with a photo sent first), a failed attempt (two
    steps, moves the order to another day) and a pickup (one step), sent three times at once."""
    to_deliver = handed(client, auth, courier)["item_id"]
    to_fail = handed(client, auth, courier)["item_id"]
    to_pick_up = new_order(client, auth)["item_id"]
    delivery = delivered(to_deliver, -20, latitude=15.12, longitude=108.8, accuracy_m=8.0)
    photo = str(uuid.uuid4())
    uploaded, _ = put_file(client, courier, to_deliver, delivery["event_id"], JPEG, file_id=photo)
    assert uploaded.status_code == 201, uploaded.json
    batch = [delivery, event(to_fail, "failed_attempt", -10, reason="not_home"),
             event(to_pick_up, "pickup_confirmed", -5)]

    answers = race_sync(app, client, courier, batch)

    assert_one_applied_rest_duplicate(answers, batch)
    assert [r["status"] for r in answers[0]] == ["delivered", "failed_attempt", "handed_to_courier"]
    for sent in batch:
        stored_once(sent["event_id"])
    assert [e.status_to.value for e in events_of(to_deliver)] == [
        "created", "assigned", "handed_to_courier", "out_for_delivery", "delivered"]
    assert [e.status_to.value for e in events_of(to_fail)] == [
        "created", "assigned", "handed_to_courier", "out_for_delivery", "failed_attempt"]
    assert [e.status_to.value for e in events_of(to_pick_up)] == ["created", "assigned", "handed_to_courier"]
    assert (status_of(to_deliver), status_of(to_fail), status_of(to_pick_up)) == (
        "delivered", "failed_attempt", "handed_to_courier")
    stored = stored_once(delivery["event_id"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryProof)
                             .where(DeliveryProof.event_id == stored.id)) == 1
    assert db.session.get(ProofFile, photo).attached_event_id == stored.id


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_a_photo_sent_while_its_event_syncs_is_attached_to_it(app, client, auth, courier, round_):
    """The phone sends a delivery and its photo at the same moment, on two connections: whichever
    commits first, the photo ends attached to the event (the sync looks files up only for orders
    that had files waiting when it read them; an upload that finds no event looks again after its
    commit, behind the order's row lock)."""
    item = handed(client, auth, courier)["item_id"]
    delivery = delivered(item, -5, latitude=15.12, longitude=108.8, accuracy_m=8.0)
    photo = str(uuid.uuid4())
    sender, uploader = phones(app, client, 2)

    def send(k: int) -> int:
        if k == 0:
            resp = sender.post("/api/v1/courier/sync", json={"events": [delivery]}, headers=courier)
            assert resp.json["results"][0]["result"] == "applied", resp.json
        else:
            resp, _ = put_file(uploader, courier, item, delivery["event_id"], JPEG, file_id=photo)
        return resp.status_code

    assert race(2, send) == [200, 201]
    stored = stored_once(delivery["event_id"])
    assert db.session.get(ProofFile, photo).attached_event_id == stored.id


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_racing_copies_of_a_correction_store_it_once(app, client, auth, courier, round_):
    item = handed(client, auth, courier)["item_id"]
    delivery = delivered(item, -30)
    [done] = race_sync(app, client, courier, [delivery])[0]
    assert done["status"] == "delivered"
    fix = event(item, "correction", -5, corrects=delivery["event_id"], note="Giao nhầm nhà")

    answers = race_sync(app, client, courier, [fix])

    assert_one_applied_rest_duplicate(answers, [fix])
    assert answers[0][0]["status"] == "out_for_delivery"
    corrected = stored_once(delivery["event_id"])
    correction = stored_once(fix["event_id"])
    assert db.session.scalars(sa.select(EventCorrection).where(EventCorrection.order_id == corrected.order_id)
                              ).one().event_id == correction.id
    assert status_of(item) == "out_for_delivery"


def test_one_event_id_racing_for_two_orders_is_stored_once_and_refused_for_the_other(app, client, auth,
                                                                                  courier):
    """Not a copy: the same event_id for a different change stays refused, also in a race."""
    first, second = (handed(client, auth, courier)["item_id"] for _ in range(2))
    shared = delivered(first, -10)
    other = {**delivered(second, -10), "event_id": shared["event_id"]}
    copies = phones(app, client, 2)
    batches = [[shared], [other]]

    def send(k: int) -> dict:
        return copies[k].post("/api/v1/courier/sync", json={"events": batches[k]}, headers=courier).json

    answers = [a["results"][0] for a in race(2, send)]

    assert sorted(a["result"] for a in answers) == ["applied", "rejected"], answers
    [refused] = [a for a in answers if a["result"] == "rejected"]
    assert refused["error"]["code"] in ("invalid", "transition"), refused
    stored = stored_once(shared["event_id"])
    winner = first if stored.order_id == events_of(first)[0].order_id else second
    loser = second if winner == first else first
    assert (status_of(winner), status_of(loser)) == ("delivered", "handed_to_courier")


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_racing_copies_of_a_status_event_answer_the_stored_event(app, client, auth, round_):
    item = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    body = {"status": "cancelled", "event_id": str(uuid.uuid4()), "note": "Công dân hủy yêu cầu"}
    copies = [app.test_client() for _ in range(COPIES)]

    def send(k: int) -> tuple[int, dict]:
        resp = copies[k].post(f"/api/v1/orders/{item}/events", json=body, headers=auth)
        return resp.status_code, resp.json

    answers = race(COPIES, send)

    assert sorted(code for code, _ in answers) == [200] * (COPIES - 1) + [201], answers
    assert len({(b["event_id"], b["status_to"], b["server_time"]) for _, b in answers}) == 1, answers
    stored_once(body["event_id"])
    assert status_of(item) == "cancelled"


@pytest.mark.parametrize("round_", range(ROUNDS))
def test_one_event_id_racing_for_two_changes_lets_one_win_and_refuses_the_other(app, client, auth, round_):
    item = client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"]
    admin = Actor(label="admin", role=Role.ADMIN,
                  user_id=db.session.scalar(sa.text("SELECT id FROM users WHERE username = 'admin'")))
    for st in ("handed_to_courier", "out_for_delivery"):
        change_status(admin, item, Status(st))
    db.session.remove()
    event_id = str(uuid.uuid4())

    def send(k: int) -> str:
        with app.app_context():
            try:
                change_status(admin, item, (Status.DELIVERED, Status.FAILED_ATTEMPT)[k], client_event_id=event_id)
                return "ok"
            except Conflict:
                return "conflict"
            finally:
                db.session.remove()

    assert sorted(race(2, send)) == ["conflict", "ok"]
    stored = stored_once(event_id)
    assert status_of(item) == stored.status_to.value


def test_a_copy_that_reads_the_order_after_the_winner_committed_answers_duplicate(client, auth, courier,
                                                                                   monkeypatch):
    """The other interleaving, made deterministic: the copy looked the event ids up just before the
    winner committed, and reads the orders just after. The machine refuses (delivered, corrected) or
    the unique key does (a failed attempt is a legal retry from failed_attempt): all duplicates."""
    from delivery_service.courier import services

    to_deliver, to_fail = (handed(client, auth, courier)["item_id"] for _ in range(2))
    delivery = delivered(to_deliver, -30)
    batch = [delivery, event(to_fail, "failed_attempt", -20, reason="not_home")]
    assert [r["result"] for r in client.post("/api/v1/courier/sync", json={"events": batch},
                                             headers=courier).json["results"]] == ["applied"] * 2
    fix = event(to_deliver, "correction", -10, corrects=delivery["event_id"], note="Giao nhầm nhà")
    assert client.post("/api/v1/courier/sync", json={"events": [fix]}, headers=courier).json[
        "results"][0]["result"] == "applied"
    real = services._stored_events
    lookups: list[list[str]] = []

    def before_the_winner_committed(event_ids: list[str]) -> dict:
        lookups.append(event_ids)
        return {} if len(lookups) == 1 else real(event_ids)

    monkeypatch.setattr(services, "_stored_events", before_the_winner_committed)
    copy = [delivery, batch[1], fix]
    results = client.post("/api/v1/courier/sync", json={"events": copy}, headers=courier).json["results"]

    assert [(r["result"], r["status"]) for r in results] == [
        ("duplicate", "out_for_delivery"), ("duplicate", "failed_attempt"), ("duplicate", "out_for_delivery")]
    db.session.rollback()
    for sent in copy:
        stored_once(sent["event_id"])
    assert len(events_of(to_fail)) == 5 and len(events_of(to_deliver)) == 6
