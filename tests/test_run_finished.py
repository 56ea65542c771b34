"""The courier's day keeps its finished orders (routing.services.finished_orders), but only those this
route's courier finished that day and did not undo: found by a review of the change."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from conftest import login
from test_courier_api import courier, delivered, event, handed, sync  # noqa: F401 (courier: the fixture)

from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orders.models import DeliveryOrder
from delivery_service.routing.models import PostalRoute
from delivery_service.routing.services import finished_orders


def _route(code: str) -> PostalRoute:
    return db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == code))


def _finished(code: str) -> set[str]:
    db.session.rollback()
    route = _route(code)
    return {o.item_id for o in finished_orders(route, local_today(), route.courier_id)}


def test_a_delivery_undone_by_its_correction_is_not_finished(client, auth, courier):  # noqa: F811
    """Failed yesterday, delivered today by mistake and corrected: still to deliver today."""
    item = handed(client, auth, courier)["item_id"]
    order = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item))
    order.created_at -= dt.timedelta(days=2)  # an order of the day before yesterday
    db.session.commit()
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    [failed] = sync(client, courier, {**event(item, "failed_attempt", reason="not_home"), "device_time": yesterday})
    assert failed["result"] == "applied", failed
    assert item not in _finished("QNG-01")  # failed yesterday, not today
    wrong = delivered(item, -20)
    [done] = sync(client, courier, wrong)
    assert done["result"] == "applied" and item in _finished("QNG-01")
    [fix] = sync(client, courier, event(item, "correction", -10, corrects=wrong["event_id"], note="Nhầm đơn"))
    assert fix["result"] == "applied" and fix["status"] == "out_for_delivery"  # where the delivery found it
    assert item not in _finished("QNG-01")


def test_an_order_moved_after_another_couriers_attempt_is_not_finished_on_its_new_route(client, auth, courier):  # noqa: F811
    item = handed(client, auth, courier)["item_id"]
    [failed] = sync(client, courier, event(item, "failed_attempt", -10, reason="not_home"))
    assert failed["result"] == "applied" and item in _finished("QNG-01")
    other = _route("QNG-02")
    qng01 = _route("QNG-01")
    if other.courier_id is None:  # give QNG-02 a courier of its own: the route's courier is what counts
        from web_helpers import make_user

        from delivery_service.accounts.models import Role, User
        make_user("courier_b", Role.COURIER, counter_code=None)
        other = _route("QNG-02")
        other.courier_id = db.session.scalar(sa.select(User.id).where(User.username == "courier_b"))
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id == item).values(route_id=other.id))
    db.session.commit()
    assert item not in _finished("QNG-02") and qng01.courier_id != other.courier_id


def test_a_day_gone_by_shows_how_each_order_ended_that_day(app, client, auth, courier):  # noqa: F811
    """Yesterday's run as it ended: an order failed yesterday and delivered today counts as a failed
    attempt on yesterday's run (it counted as delivered, the order's status now), and an order the
    courier delivered yesterday that the sequence does not hold stays on it after it moved on."""
    from test_run_courier import _admin

    from delivery_service.routing.services import get_run, sequence_run

    yesterday = local_today() - dt.timedelta(days=1)
    then = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    items = [handed(client, auth, courier)["item_id"] for _ in range(3)]
    for order in db.session.scalars(sa.select(DeliveryOrder).where(DeliveryOrder.item_id.in_(items))):
        order.run_date, order.created_at = yesterday, order.created_at - dt.timedelta(days=2)
    db.session.commit()
    sequence_run(_admin(), "QNG-01", yesterday)
    failed, done, _open = items
    results = sync(client, courier, {**event(failed, "failed_attempt", reason="not_home"), "device_time": then},
                   {**delivered(done), "device_time": then})
    assert [r["result"] for r in results] == ["applied", "applied"], results
    [again] = sync(client, courier, delivered(failed, -10))  # today
    assert again["result"] == "applied", again
    db.session.expire_all()
    view = get_run(_admin(), "QNG-01", yesterday)
    assert dict((s.value, n) for s, n in view.outcomes) == {"delivered": 1, "failed_attempt": 1}
    assert view.done == 2 and view.total == 3
    # today's run has the order delivered today, as things stand
    today = get_run(_admin(), "QNG-01", local_today())
    assert failed in {o.item_id for o in today.unsequenced} | {o.item_id for s in today.stops for o in s["orders"]}
    # the page says so, with the order's status now beside it, and whose run it was
    desk = app.test_client()
    login(desk, "supervisor")
    flat = " ".join(desk.get(f"/routes/QNG-01/run?date={yesterday.isoformat()}&lang=vi")
                    .get_data(as_text=True).split())
    row = flat[:flat.index(failed)].split("run-order")[-1]
    assert ">Phát không thành công</span>" in row and "Hiện nay: Đã phát" in row, row
    assert "Hiện nay" not in flat[:flat.index(done)].split("run-order")[-1]
    assert "Bưu tá: <strong>Lê Văn Phát</strong>" in flat
