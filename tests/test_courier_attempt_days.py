"""A failed attempt counts once per planned run day (outside review: a courier recorded every allowed
failed attempt within seconds, and the order went back to the agency on its first day), through the
real sync API on SQLite and PostgreSQL: a second failed attempt before the next attempt's day is
refused (``not_due_yet``, with that day), while a delivery the same day, a correction of the attempt
and replays work as before; attempts on their own days still lead to the return."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from test_courier_api import (  # noqa: F401 (fixtures)
    courier,
    delivered,
    event,
    events_of,
    handed,
    status_of,
    sync,
)

from delivery_service.courier.schemas import REFUSAL_REASONS
from delivery_service.courier.services import failed_attempts, next_working_day
from delivery_service.extensions import db
from delivery_service.localtime import local_moment, local_today
from delivery_service.orders.models import DeliveryOrder

APP_JS = Path(__file__).resolve().parents[1] / "delivery_service" / "static" / "courier" / "app.js"


def _order(item_id: str) -> DeliveryOrder:
    db.session.expire_all()
    return db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item_id))


def _attempts(item_id: str) -> int:
    order = _order(item_id)
    return failed_attempts([order.id]).get(order.id, 0)


def _at(item_id: str, moment: dt.datetime, action: str = "failed_attempt", **fields) -> dict:
    return {**event(item_id, action, **fields), "device_time": moment.isoformat()}


def test_a_second_failed_attempt_before_the_next_attempts_day_is_refused(client, auth, courier):  # noqa: F811
    """The reviewer's case: an order of the day with one attempt already, then two more 1 s apart."""
    item = handed(client, auth, courier)["item_id"]
    first = event(item, "failed_attempt", -80, reason="not_home")
    second = event(item, "failed_attempt", -2, reason="not_home")
    third = event(item, "failed_attempt", -1, reason="refused")
    assert sync(client, courier, first)[0]["status"] == "failed_attempt"
    due = next_working_day(local_today())
    results = sync(client, courier, second, third)
    assert [(r["result"], r["status"]) for r in results] == [("rejected", "failed_attempt")] * 2, results
    for r in results:
        assert r["error"]["code"] == "transition" and r["error"]["reason"] == "not_due_yet", r
        assert r["error"]["next_attempt_date"] == due.isoformat()
        assert f"planned for {due:%d/%m/%Y}" in r["error"]["message"]
        assert r["error"]["fields"] == {"device_time": [f"The next attempt is planned for {due:%d/%m/%Y}."]}
    assert status_of(item) == "failed_attempt" and _attempts(item) == 1
    assert _order(item).run_date == due  # the next attempt's day is as the first attempt planned it
    # Replays answer as before: the first one is a duplicate, the refused one is refused again.
    again = sync(client, courier, first, second)
    assert [r["result"] for r in again] == ["duplicate", "rejected"]
    assert again[1]["error"]["reason"] == "not_due_yet"
    assert len([e for e in events_of(item) if e.status_to.value == "failed_attempt"]) == 1
    # The app is offered no failed attempt today, still a delivery (and the correction of the attempt).
    order = client.get(f"/api/v1/courier/orders/{item}").json
    assert order["actions"] == ["delivered", "correction"] and order["failed_attempts"] == 1


def test_the_reviewers_three_attempts_in_seconds_do_not_return_the_order(client, auth, courier):  # noqa: F811
    item = handed(client, auth, courier)["item_id"]
    results = sync(client, courier, *[event(item, "failed_attempt", -80 + 40 * i, reason="not_home")
                                      for i in range(3)])
    assert [r["result"] for r in results] == ["applied", "rejected", "rejected"], results
    assert status_of(item) == "failed_attempt" and _attempts(item) == 1


def test_the_citizen_called_back_a_delivery_the_same_day_is_still_possible(client, auth, courier):  # noqa: F811
    item = handed(client, auth, courier)["item_id"]
    assert sync(client, courier, event(item, "failed_attempt", -300, reason="not_home"))[0]["result"] == "applied"
    [done] = sync(client, courier, delivered(item, -60))
    assert (done["result"], done["status"]) == ("applied", "delivered"), done


def test_a_correction_of_the_attempt_works_and_the_attempt_can_be_recorded_again(client, auth, courier):  # noqa: F811
    item = handed(client, auth, courier)["item_id"]
    wrong = event(item, "failed_attempt", -120, reason="not_home")
    sync(client, courier, wrong)
    [fix] = sync(client, courier, event(item, "correction", -60, corrects=wrong["event_id"],
                                        note="Chọn nhầm lý do"))
    assert (fix["result"], fix["status"]) == ("applied", "out_for_delivery"), fix
    # no failed attempt stands today: the right one is recorded, and counts once
    [right] = sync(client, courier, event(item, "failed_attempt", -30, reason="refused"))
    assert (right["result"], right["status"]) == ("applied", "failed_attempt"), right
    assert _attempts(item) == 1


def test_attempts_on_their_own_days_count_up_to_the_return(client, auth, courier):  # noqa: F811
    """A phone offline for two days sends the attempts of each day at once: each was on its day."""
    item = handed(client, auth, courier)["item_id"]
    now = dt.datetime.now(dt.UTC)
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id == item)
                       .values(created_at=now - dt.timedelta(days=3)))
    db.session.commit()
    days_ago = [_at(item, now - dt.timedelta(days=2), reason="not_home"),
                _at(item, now - dt.timedelta(days=2) + dt.timedelta(seconds=5), reason="not_home"),
                _at(item, now - dt.timedelta(days=1), reason="not_home")]
    results = sync(client, courier, *days_ago)
    assert [r["result"] for r in results] == ["applied", "rejected", "applied"], results
    day = local_moment(now - dt.timedelta(days=2)).date()
    assert results[1]["error"]["next_attempt_date"] == (day + dt.timedelta(days=1)).isoformat()
    assert _attempts(item) == 2
    [last] = sync(client, courier, event(item, "failed_attempt", -10, reason="not_home"))
    assert (last["result"], last["status"]) == ("applied", "returned_to_agency"), last


def test_an_order_moved_to_another_route_after_its_attempt_has_one_attempt(client, auth, courier):  # noqa: F811
    """Moving an order waiting for its next attempt (an address corrected) records an event that
    keeps ``failed_attempt``: not a second attempt."""
    item = handed(client, auth, courier)["item_id"]
    sync(client, courier, event(item, "failed_attempt", -30, reason="wrong_address"))
    moved = client.put(f"/api/v1/orders/{item}/address", headers=auth, json={
        "address": {"province_code": "51", "commune_code": "21172", "detail": "Tổ 3"}})
    assert moved.status_code == 200 and moved.json["status"] == "failed_attempt", moved.json
    assert [e.status_to.value for e in events_of(item)][-2:] == ["failed_attempt", "failed_attempt"]
    assert _attempts(item) == 1


def test_the_app_words_every_refusal_reason():
    """Each stable refusal name is mapped to the app's words (static/courier/app.js REFUSALS)."""
    source = APP_JS.read_text(encoding="utf-8")
    block = re.search(r"const REFUSALS = \{(.*?)\};", source, re.S)
    assert block
    named = set(re.findall(r"(\w+):", block.group(1)))
    assert set(REFUSAL_REASONS) <= named, set(REFUSAL_REASONS) - named


def test_the_shell_says_not_due_yet_in_vietnamese(client, courier):  # noqa: F811
    html = client.get("/courier/").get_data(as_text=True)
    assert "Lần phát tiếp theo đã hẹn vào ngày %(date)s." in html
