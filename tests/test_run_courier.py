"""A run keeps the courier who worked it (route_runs.courier_id, migration 0034): after the route changed
couriers, a day gone by still names that courier on its run sheet and still lists the orders they
finished that day; today's run and the days after are the new courier's. Until then a run followed
the route's courier at the time of looking. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from conftest import login
from flask import Flask
from test_courier_api import courier, delivered, handed, sync  # noqa: F401 (courier: the fixture)
from test_manifest_courier import NEW_COURIER, _hand_route_to, _new_courier, _user
from test_printing import pdf_text

from delivery_service.accounts.services import Actor
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orders.models import DeliveryOrder
from delivery_service.routing.models import RouteRun
from delivery_service.routing.services import get_run, sequence_run


def _admin() -> Actor:
    return Actor.of_user(_user("admin"))


def _sheet(app: Flask, day: dt.date) -> str:
    """The run sheet of QNG-01 for ``day``, printed by the post office's supervisor."""
    desk = app.test_client()
    login(desk, "supervisor")
    resp = desk.get(f"/routes/QNG-01/run/sheet.pdf?date={day.isoformat()}")
    assert resp.status_code == 200, resp.data[:300]
    return " ".join(pdf_text(resp.data).split())


def _delivered_yesterday(client, auth, courier) -> str:  # noqa: ANN001, F811
    """An order of yesterday's run, added after it was sequenced, delivered by its courier yesterday
    (the stored sequence does not hold it: the run shows it as finished that day)."""
    item = handed(client, auth, courier)["item_id"]
    yesterday = local_today() - dt.timedelta(days=1)
    order = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item))
    order.run_date, order.created_at = yesterday, order.created_at - dt.timedelta(days=2)
    db.session.commit()
    [done] = sync(client, courier, {**delivered(item), "device_time": (
        dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()})
    assert done["result"] == "applied", done
    return item


def test_a_day_gone_by_keeps_the_courier_who_worked_it_after_the_route_changed_couriers(app, client, auth, courier):  # noqa: F811
    worked = _user("courier")
    today, yesterday = local_today(), local_today() - dt.timedelta(days=1)
    sequence_run(_admin(), "QNG-01", yesterday)  # the morning's sequencing, before the order came
    item = _delivered_yesterday(client, auth, courier)
    sequence_run(_admin(), "QNG-01", today)
    before = get_run(_admin(), "QNG-01", yesterday)
    assert before.courier_id == worked.id and [o.item_id for o in before.unsequenced] == [item]
    assert f"· {worked.full_name}" in _sheet(app, yesterday)

    _new_courier()
    _hand_route_to("bt.thayca")
    db.session.expire_all()
    view = get_run(_admin(), "QNG-01", yesterday)
    # the order its courier delivered yesterday is still on yesterday's run, done
    assert view.courier_id == worked.id
    assert [o.item_id for o in view.unsequenced] == [item] and view.done == 1
    text = _sheet(app, yesterday)
    assert f"· {worked.full_name}" in text and NEW_COURIER not in text
    desk = app.test_client()
    login(desk, "supervisor")
    page = desk.get(f"/routes/QNG-01/run?date={yesterday.isoformat()}&lang=vi").get_data(as_text=True)
    assert f"Bưu tá: <strong>{worked.full_name}</strong>" in page and NEW_COURIER not in page
    assert f"Bưu tá: <strong>{NEW_COURIER}</strong>" in desk.get("/routes/QNG-01/run?lang=vi").get_data(as_text=True)
    api = {day: desk.get(f"/api/v1/routes/QNG-01/run?date={day.isoformat()}").json for day in (yesterday, today)}
    assert (api[yesterday]["courier"], api[today]["courier"]) == ("courier", "bt.thayca"), api
    # today's run, sequenced before the change, is the new courier's
    assert get_run(_admin(), "QNG-01", today).courier_id == _user("bt.thayca").id
    text = _sheet(app, today)
    assert f"· {NEW_COURIER}" in text and worked.full_name not in text
    kept = dict(db.session.execute(sa.select(RouteRun.run_date, RouteRun.courier_id)).all())
    assert kept == {yesterday: worked.id, today: _user("bt.thayca").id}
    # sequencing yesterday's run again does not hand it to the route's courier of today
    sequence_run(_admin(), "QNG-01", yesterday)
    assert get_run(_admin(), "QNG-01", yesterday).courier_id == worked.id


def test_a_route_without_a_courier_leaves_its_runs_from_today_without_one(app):
    today, tomorrow = local_today(), local_today() + dt.timedelta(days=1)
    for day in (today - dt.timedelta(days=1), today, tomorrow):
        sequence_run(_admin(), "QNG-01", day)
    _hand_route_to(None)
    kept = dict(db.session.execute(sa.select(RouteRun.run_date, RouteRun.courier_id)).all())
    assert kept == {today - dt.timedelta(days=1): _user("courier").id, today: None, tomorrow: None}
    assert "chưa phân công" in _sheet(app, tomorrow)


def test_migration_0034_gives_existing_runs_the_routes_courier(app):
    from flask_migrate import downgrade, upgrade

    yesterday = local_today() - dt.timedelta(days=1)
    sequence_run(_admin(), "QNG-01", yesterday)
    sequence_run(_admin(), "QNG-02", yesterday)
    couriers = dict(db.session.execute(sa.text(
        "SELECT code, courier_id FROM postal_routes WHERE code IN ('QNG-01', 'QNG-02')")).all())
    db.session.remove()
    downgrade(revision="0033")
    assert "courier_id" not in [c["name"] for c in sa.inspect(db.engine).get_columns("route_runs")]
    db.session.remove()
    upgrade()
    kept = dict(db.session.execute(sa.text(
        "SELECT r.code, rr.courier_id FROM route_runs rr JOIN postal_routes r ON r.id = rr.route_id")).all())
    assert kept == couriers and kept["QNG-01"] == _user("courier").id
    foreign_keys = sa.inspect(db.engine).get_foreign_keys("route_runs")
    assert {"constrained_columns": ["courier_id"], "referred_table": "users"}.items() <= next(
        fk for fk in foreign_keys if fk["constrained_columns"] == ["courier_id"]).items()
