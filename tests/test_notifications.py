"""Citizen notifications (docs/notifications.md): messages follow the order event log, are sent by a
provider over HTTP (a real receiver on loopback standing in for the SMS gateway or Zalo), once per
order and kind, out of quiet hours, never to a number that opted out."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login
from web_helpers import make_order

from delivery_service import rules
from delivery_service.accounts.services import SYSTEM
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.notifications import services, texts
from delivery_service.notifications.models import NotificationMessage, NotificationOptOut
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status

S = Status
PHONE = "0905123456"  # order_payload's recipient
NAME = "Nguyễn Thị Hoa"
SECRET = "inbound-test-secret"
SMS = {"NOTIFY_PROVIDER": "sms", "NOTIFY_SMS_URL": "http://127.0.0.1:9/unused", "NOTIFY_SMS_API_KEY": "key-1",
       "NOTIFY_QUIET_HOURS": "", "NOTIFY_INBOUND_SECRET": SECRET, "NOTIFY_RETRY_SCHEDULE": "60,120"}
pytestmark = pytest.mark.config(**SMS)


class Receiver:
    """The provider on loopback: records every request; answers ``status`` (200 with an id) or 500
    for the next ``fail`` ones; ``answer`` is the JSON body of a 2xx."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail = 0
        self.status = 200
        self.answer: dict[str, Any] = {"id": "gw-1"}
        self.delay = 0.0  # seconds before answering (a slow provider)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                failing = receiver.fail > 0
                receiver.fail -= 1 if failing else 0
                status = 500 if failing else receiver.status
                receiver.requests.append({"headers": dict(self.headers), "body": body, "status": status})
                time.sleep(receiver.delay)
                raw = json.dumps(receiver.answer if status < 300 else {"error": "boom"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/sms/send"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def ok(self) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["status"] < 300]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(app):
    r = Receiver()
    app.config["NOTIFY_SMS_URL"] = r.url
    app.config["NOTIFY_ZNS_URL"] = r.url.replace("/sms/send", "/message/template")
    yield r
    r.close()


def reason_code() -> str:
    return rules.current().reasons[0]["code"]


def move(order: DeliveryOrder, *targets: Status, reason: str | None = None) -> None:
    """Move the order through ``targets`` (skipping a step it has already reached)."""
    for target in targets:
        current = db.session.get(DeliveryOrder, order.id, populate_existing=True).status
        if current is target and target in (S.ASSIGNED,):
            continue
        change_status(SYSTEM, order.item_id, target,
                      reason=reason if target is S.FAILED_ATTEMPT else None)
    db.session.commit()


def run(now: dt.datetime | None = None) -> dict[str, Any]:
    result = services.run(now)
    db.session.remove()
    return result


def messages(order_id: int | None = None) -> list[NotificationMessage]:
    stmt = sa.select(NotificationMessage).order_by(NotificationMessage.id)
    if order_id is not None:
        stmt = stmt.where(NotificationMessage.order_id == order_id)
    return list(db.session.scalars(stmt))


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))


def to_delivery(order: DeliveryOrder) -> None:
    current = db.session.get(DeliveryOrder, order.id, populate_existing=True).status
    if current is S.CREATED:
        move(order, S.ASSIGNED)
    move(order, S.HANDED_TO_COURIER)


def test_each_kind_is_sent_once_even_when_the_job_runs_twice_or_concurrently(app, receiver):
    delivered, returned = make_order(), make_order()
    for order in (delivered, returned):
        to_delivery(order)
    run()  # each step is told before the next (a message the order has moved past is dropped: below)
    for target in (S.OUT_FOR_DELIVERY, S.FAILED_ATTEMPT, S.OUT_FOR_DELIVERY, S.DELIVERED):
        move(delivered, target, reason=reason_code())
        if target is not S.DELIVERED:
            run()
    for target in (S.OUT_FOR_DELIVERY, S.FAILED_ATTEMPT):
        move(returned, target, reason=reason_code())
        run()
    move(returned, S.RETURNED_TO_AGENCY)

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with app.app_context():
                services.run()
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    run()
    run()

    kinds = [(m.kind, m.round, m.state) for m in messages(delivered.id)]
    assert kinds == [("handed", 0, "sent"), ("out_for_delivery", 0, "sent"), ("failed_attempt", 0, "sent"),
                     ("out_for_delivery", 1, "sent"), ("delivered", 0, "sent")]
    assert [(m.kind, m.state) for m in messages(returned.id)] == [
        ("handed", "sent"), ("out_for_delivery", "sent"), ("failed_attempt", "sent"), ("returned", "sent")]
    assert len(receiver.requests) == 9  # one request per message, none twice
    refs = [r["ref"] for r in receiver.ok]
    assert len(set(refs)) == 9
    assert all(r["to"] == "84905123456" and r["brandname"] == "BUUDIEN" for r in receiver.ok)
    assert all(r["headers"]["Authorization"] == "Bearer key-1" for r in receiver.requests)
    texts_sent = [r["text"] for r in receiver.ok]
    assert any(delivered.item_id in t and "da phat thanh cong" in t for t in texts_sent)
    label = texts.strip_diacritics(rules.current().reasons[0]["label"])
    assert any(f"({label})" in t and "Phat lai:" in t for t in texts_sent)
    assert any("du kien trong ngay" in t for t in texts_sent)  # no sequenced run: no ETA window


def test_quiet_hours_defer_messages_to_their_end(app, receiver):
    app.config["NOTIFY_QUIET_HOURS"] = texts.parse_quiet_hours("21:00-07:00")
    order = make_order()
    to_delivery(order)
    today = dt.date.today()
    night = local(today, 22, 30)
    run(night)
    [message] = messages(order.id)
    assert message.state == "deferred" and receiver.requests == []
    assert message.due_at == local(today + dt.timedelta(days=1), 7).astimezone(dt.UTC)
    run(local(today + dt.timedelta(days=1), 6, 59))
    assert receiver.requests == []
    run(local(today + dt.timedelta(days=1), 7, 0))
    assert [r["body"]["ref"] for r in receiver.requests] == [f"notify-{message.id}"]
    assert db.session.get(NotificationMessage, message.id).state == "sent"
    # a retry that falls due in the night waits too (the quiet period, not the retry, decides)
    assert services.quiet_until(local(today, 3)) == local(today, 7).astimezone(dt.UTC)
    assert services.quiet_until(local(today, 12)) is None


def test_opt_out_by_reply_keyword_stops_messages(app, client, receiver):
    url = "/api/v1/notifications/inbound"
    assert client.post(url, json={"from": PHONE, "text": "TU CHOI"}).status_code == 401
    assert client.post(url, json={"from": PHONE, "text": "TU CHOI"},
                       headers={"X-Notify-Secret": "wrong"}).status_code == 401
    bad = client.post(url, json={"from": "12", "text": ""}, headers={"X-Notify-Secret": SECRET})
    assert bad.status_code == 422 and set(bad.get_json()["errors"]) == {"from", "text"}
    other = client.post(url, json={"from": PHONE, "text": "cam on"}, headers={"X-Notify-Secret": SECRET})
    assert other.get_json() == {"opted_out": False}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NotificationOptOut)) == 0

    order = make_order()
    to_delivery(order)
    run()
    assert len(receiver.requests) == 1
    resp = client.post(url, json={"from": "+84 905 123 456", "text": "Từ chối"},
                       headers={"X-Notify-Secret": SECRET})
    assert resp.status_code == 200 and resp.get_json() == {"opted_out": True}
    [row] = db.session.scalars(sa.select(NotificationOptOut))
    assert row.source == "keyword" and PHONE not in row.phone_hash and len(row.phone_hash) == 64
    move(order, S.OUT_FOR_DELIVERY, S.DELIVERED)
    run()
    assert len(receiver.requests) == 1
    assert [m.state for m in messages(order.id)] == ["sent", "opted_out", "opted_out"]
    for word in ("HUY", "stop", "tu choi nhan tin", "Tuchoi"):
        assert services.keyword_opts_out(word)
    assert not services.keyword_opts_out("huyen")


def test_opt_out_by_signed_link_stops_messages(app, client, receiver):
    order = make_order()
    to_delivery(order)  # handed: created before the opt-out, refused when it is sent
    token = services.optout_token(PHONE)
    assert token and PHONE not in token
    # the citizen finds the link on the tracking page, after proving the phone's last 4 digits
    tracked = client.post("/t", data={"code": order.item_id, "phone_last4": PHONE[-4:],
                                      "csrf_token": csrf_token(client, "/t")}).get_data(as_text=True)
    assert f'href="/t/optout/{token}"' in tracked and "Không nhận tin nhắn" in tracked
    page = client.get(f"/t/optout/{token}")
    assert page.status_code == 200 and "Xác nhận ngừng nhận tin" in page.get_data(as_text=True)
    english = client.get(f"/t/optout/{token}?lang=en").get_data(as_text=True)  # in the chosen language only
    assert "Confirm: stop messages" in english and "Xác nhận" not in english and "Ông/Bà" not in english
    assert "Confirm" not in client.get(f"/t/optout/{token}?lang=vi").get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(NotificationOptOut)) == 0  # GET changes nothing
    assert client.get(f"/t/optout/{token[:-2]}xx").status_code == 404
    form = client.post(f"/t/optout/{token}", data={"csrf_token": csrf_token(client, f"/t/optout/{token}")})
    assert form.status_code == 200 and "sẽ không nhận tin nhắn" in form.get_data(as_text=True)
    assert "ngừng nhận tin nhắn" in client.get(f"/t/optout/{token}").get_data(as_text=True)
    assert client.post(f"/t/optout/{token}", data={}).status_code == 400  # CSRF
    move(order, S.OUT_FOR_DELIVERY)
    run()
    assert receiver.requests == []
    assert [m.state for m in messages(order.id)] == ["opted_out", "opted_out"]
    assert services.optout_url(PHONE).endswith(f"/t/optout/{token}")


def test_gsm_fallback_strips_diacritics_and_fits_160(app, receiver):
    long_text = ("Bưu điện Đà Nẵng: đã phát bưu gửi RH000000014VN, hồ sơ H55.22-000123 — Cấp đổi giấy phép "
                 "lái xe. Ông/Bà vui lòng kiểm tra kết quả; mọi thắc mắc xin gọi đường dây nóng 1900 545481 "
                 "hoặc đến bưu cục gần nhất.")
    plain = texts.gsm_text(long_text)
    assert texts.gsm_length(plain) <= 160 and texts.is_gsm(plain)
    assert plain.startswith("Buu dien Da Nang: da phat buu gui RH000000014VN") and "đ" not in plain
    assert texts.strip_diacritics("Đường đi ĐẸP") == "Duong di DEP"
    assert texts.sms_text("Da phat", False) == ("Da phat", False)
    assert texts.sms_text("Đã phát", True) == ("Đã phát", True)
    assert texts.ucs2_segments("á" * 70) == 1 and texts.ucs2_segments("á" * 71) == 2

    order = make_order()
    to_delivery(order)
    run()
    [body] = receiver.ok
    assert body["unicode"] is False and texts.is_gsm(body["text"]) and texts.gsm_length(body["text"]) <= 160
    assert "Buu dien: ho so " in body["text"] and "giao buu ta" in body["text"]
    app.config["NOTIFY_SMS_UNICODE"] = True
    move(order, S.OUT_FOR_DELIVERY)
    run()
    body = receiver.ok[-1]
    assert body["unicode"] is True and "Bưu điện: bưu gửi" in body["text"] and "đang được phát" in body["text"]


def test_a_provider_500_is_retried_then_marked_failed(app, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.status = 500
    order = make_order()
    to_delivery(order)
    start = utcnow()
    run(start)
    [message] = messages(order.id)
    assert (message.state, message.attempts, message.last_error) == ("pending", 1, "HTTP 500")
    assert message.due_at == start + dt.timedelta(seconds=60)
    run(start + dt.timedelta(seconds=30))  # not due yet
    assert len(receiver.requests) == 1
    run(start + dt.timedelta(seconds=61))
    message = db.session.get(NotificationMessage, message.id, populate_existing=True)
    assert (message.state, message.attempts) == ("pending", 2)
    run(start + dt.timedelta(seconds=61 + 121))
    message = db.session.get(NotificationMessage, message.id, populate_existing=True)
    assert (message.state, message.attempts, message.last_error) == ("failed", 3, "HTTP 500")
    run(start + dt.timedelta(days=1))
    assert len(receiver.requests) == 3
    assert "failed for good after 3 attempts" in caplog.text

    # one failure, then the gateway answers: sent on the retry
    receiver.status, receiver.fail = 200, 1
    move(order, S.OUT_FOR_DELIVERY)
    later = utcnow() + dt.timedelta(hours=1)  # within NOTIFY_MAX_AGE_HOURS of the event
    run(later)
    run(later + dt.timedelta(seconds=61))
    assert [m.state for m in messages(order.id)] == ["failed", "sent"]


def test_zns_sends_the_template_id_and_its_parameters(app, receiver):
    app.config["NOTIFY_PROVIDER"] = "zns"
    app.config["NOTIFY_ZNS_ACCESS_TOKEN"] = "zns-token"
    receiver.answer = {"error": 0, "message": "Success", "data": {"msg_id": "a1b2"}}
    services.save_template(SYSTEM, "handed", texts.DEFAULT_TEMPLATES["handed"], "231204")
    db.session.commit()
    order = make_order()
    to_delivery(order)
    run()
    [request] = receiver.requests
    assert request["headers"]["access_token"] == "zns-token"
    body = request["body"]
    assert body["phone"] == "84905123456" and body["template_id"] == "231204"
    assert body["template_data"]["item_id"] == order.item_id and body["tracking_id"].startswith("notify-")
    [message] = messages(order.id)
    assert (message.state, message.provider_ref) == ("sent", "a1b2")
    receiver.answer = {"error": -124, "message": "Invalid access token"}
    move(order, S.OUT_FOR_DELIVERY)  # no ZNS template for this kind: failed at once, not retried
    run()
    assert messages(order.id)[-1].last_error == "no ZNS template id for this kind"


def test_erased_orders_never_get_messages(app, receiver):
    order = make_order()
    to_delivery(order)
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id)
                       .values(personal_data_erased_at=utcnow()))
    db.session.commit()
    run()
    assert messages(order.id) == [] and receiver.requests == []


def test_admin_edits_a_template_and_the_next_message_uses_it(app, client, receiver):
    login(client, "counter")
    assert client.get("/admin/notifications").status_code == 403
    client = app.test_client()  # a fresh browser
    login(client, "admin")
    page = client.get("/admin/notifications")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Bưu điện: bưu gửi RH000000014VN (hồ sơ H55.22-000123) đã phát thành công" in html  # preview
    token = csrf_token(client, "/admin/notifications")
    bad = client.post("/admin/notifications/delivered", data={"csrf_token": token, "text": "Đã phát {ten}",
                                                               "action": "save"})
    assert bad.status_code == 422 and "Không có biến {ten}" in bad.get_data(as_text=True)
    preview = client.post("/admin/notifications/delivered", data={
        "csrf_token": token, "text": "Đã phát {item_id} lúc nãy", "action": "preview"})
    assert preview.status_code == 200 and "Đã phát RH000000014VN lúc nãy" in preview.get_data(as_text=True)
    assert services.template_text("delivered")[0] == texts.DEFAULT_TEMPLATES["delivered"]  # nothing saved
    new = "Bưu điện: đã trao {item_id} tận tay. Hotline {hotline}"
    saved = client.post("/admin/notifications/delivered", data={"csrf_token": token, "text": new,
                                                                 "action": "save"})
    assert saved.status_code == 303
    assert services.template_text("delivered")[0] == new
    audit = db.session.execute(sa.text(
        "SELECT action, object_id FROM audit_events WHERE action = 'notification_template.update'")).all()
    assert [tuple(a) for a in audit] == [("notification_template.update", "delivered")]

    order = make_order()
    to_delivery(order)
    move(order, S.OUT_FOR_DELIVERY, S.DELIVERED)
    run()
    assert receiver.ok[-1]["text"].startswith(f"Buu dien: da trao {order.item_id} tan tay. Hotline ")
    html = client.get("/admin/notifications").get_data(as_text=True)
    assert "*******456" in html and PHONE not in html and NAME not in html
    # kinds and states in Vietnamese (the code in data- and title attributes), times in Vietnam's zone
    sent = db.session.scalars(sa.select(NotificationMessage).where(NotificationMessage.state == "sent")
                              .order_by(NotificationMessage.id.desc())).first()
    row = re.search(rf'<tr class="msg-sent" data-kind="delivered" data-state="sent">\s*<td>{sent.id}</td>.*?</tr>',
                    html, re.S).group(0)
    assert '<td title="delivered">Đã phát</td>' in row and '<td title="sent">Đã gửi</td>' in row
    local = sent.due_at.astimezone(ZoneInfo("Asia/Ho_Chi_Minh")).strftime("%d/%m/%Y %H:%M")
    assert f">{local}</time>" in row and "(UTC)" not in html
    assert not re.search(r"<td>(sent|pending|delivered|failed_attempt)</td>", html)
    english = client.get("/admin/notifications?lang=en").get_data(as_text=True)
    assert '<td title="delivered">Delivered</td>' in english and '<td title="sent">Sent</td>' in english


def test_no_phone_or_name_in_logs(app, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    order = make_order()
    to_delivery(order)
    receiver.fail = 1
    run()
    run(utcnow() + dt.timedelta(seconds=61))
    app.config["NOTIFY_PROVIDER"] = "log"
    move(order, S.OUT_FOR_DELIVERY)
    run()
    assert [m.state for m in messages(order.id)] == ["sent", "sent"]
    assert "written to the log only" in caplog.text and "failed (HTTP 500)" in caplog.text
    for secret in (PHONE, "905123456", NAME, "Hoa", "key-1", order.item_id):
        assert secret not in caplog.text


@pytest.mark.parametrize("value", ["25:00-07:00", "7-9", "21:00-21:00"])
def test_quiet_hours_are_validated(value):
    from delivery_service.config import ConfigError, load

    with pytest.raises(ConfigError, match="NOTIFY_QUIET_HOURS"):
        load("/tmp", {"NOTIFY_QUIET_HOURS": value})
    with pytest.raises(ConfigError, match="NOTIFY_SMS_URL"):
        load("/tmp", {"NOTIFY_PROVIDER": "sms"})


def test_out_for_delivery_gives_the_eta_window_of_a_sequenced_run(app, receiver):
    from delivery_service.routing.models import RouteRun, RunStop

    order = make_order()
    to_delivery(order)
    order = db.session.get(DeliveryOrder, order.id, populate_existing=True)
    if order.route_id is None or order.run_date is None:
        db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id).values(
            route_id=sa.select(sa.text("id FROM postal_routes ORDER BY id LIMIT 1")).scalar_subquery(),
            run_date=dt.date.today()))
        db.session.commit()
        order = db.session.get(DeliveryOrder, order.id, populate_existing=True)
    run_ = RouteRun(route_id=order.route_id, run_date=order.run_date, sequenced_at=utcnow(),
                    return_to_office=True, start_latitude=15.1, start_longitude=108.8, stops=3, orders=3,
                    total_m=9000.0, return_m=2000.0)
    db.session.add(run_)
    db.session.flush()
    # 07:30 shift start + 5 km × 1.3 at 25 km/h (15.6 min) + 2 stops × 3 min before it = 07:51:36
    db.session.add(RunStop(run_id=run_.id, order_id=order.id, stop_no=3, latitude=15.1, longitude=108.8,
                           estimated=False, located=True, leg_m=1000.0, cumulative_m=5000.0))
    db.session.commit()
    move(order, S.OUT_FOR_DELIVERY)
    run()
    assert messages(order.id)[-1].params["eta"] == "07:30-08:30"
    assert "du kien 07:30-08:30" in receiver.ok[-1]["text"]


def test_two_senders_at_once_send_a_message_once_while_the_provider_is_slow(app, receiver):
    """Two nodes' maintenance passes meet while the provider takes its time: the claim's lease holds
    through the request, so the second sender finds nothing to send."""
    order = make_order()
    to_delivery(order)
    services.scan()
    db.session.remove()
    receiver.delay = 1.0
    outcomes: list[dict[str, int]] = []

    def send() -> None:
        with app.app_context():
            outcomes.append(services.send_due())
            db.session.remove()

    senders = [threading.Thread(target=send) for _ in range(2)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(30)
    assert len(receiver.requests) == 1, receiver.requests
    assert sorted(sum(o.values()) for o in outcomes) == [0, 1]
    assert [m.state for m in messages(order.id)] == ["sent"]


VN = ZoneInfo("Asia/Ho_Chi_Minh")


def quiet_around(app, moment: dt.datetime) -> dt.datetime:
    """Quiet hours from an hour before ``moment`` to four hours after it; returns their end (UTC)."""
    here = moment.astimezone(VN)
    app.config["NOTIFY_QUIET_HOURS"] = texts.parse_quiet_hours(
        f"{here - dt.timedelta(hours=1):%H:%M}-{here + dt.timedelta(hours=4):%H:%M}")
    end = services.quiet_until(moment)
    assert end is not None
    return end


def test_at_the_end_of_quiet_hours_only_what_still_holds_is_sent(app, receiver):
    """A delivery in the night: "handed", "out for delivery" and "delivered" all wait for the morning;
    then only "delivered" goes (the others are dropped, with why). A second attempt's "out for
    delivery" drops the first one's, and the failed attempt between them."""
    delivered, again = make_order(), make_order()
    for order in (delivered, again):
        to_delivery(order)
    move(delivered, S.OUT_FOR_DELIVERY, S.DELIVERED)
    move(again, S.OUT_FOR_DELIVERY, S.FAILED_ATTEMPT, S.OUT_FOR_DELIVERY, reason=reason_code())
    night = utcnow() + dt.timedelta(minutes=1)
    morning = quiet_around(app, night)
    run(night)
    assert {m.state for m in messages()} == {"deferred"} and receiver.requests == []
    run(morning)
    assert [(m.kind, m.round, m.state) for m in messages(delivered.id)] == [
        ("handed", 0, "skipped"), ("out_for_delivery", 0, "skipped"), ("delivered", 0, "sent")]
    assert [(m.kind, m.round, m.state) for m in messages(again.id)] == [
        ("handed", 0, "skipped"), ("out_for_delivery", 0, "skipped"), ("failed_attempt", 0, "skipped"),
        ("out_for_delivery", 1, "sent")]
    dropped = messages(delivered.id)[1]
    assert dropped.last_error == "out of date: the order is now delivered" and dropped.attempts == 0
    assert messages(again.id)[1].last_error == "out of date: a later attempt has begun"
    assert len(receiver.requests) == 2
    assert "da phat thanh cong" in receiver.ok[0]["text"] and "dang duoc phat" in receiver.ok[1]["text"]


def test_an_event_older_than_the_bound_is_not_sent(app, receiver):
    """Three days later nobody is told: the scan makes no message, and one already made is dropped."""
    late, waiting = make_order(), make_order()
    to_delivery(waiting)
    services.scan()  # its message is made now ...
    db.session.remove()
    to_delivery(late)
    later = utcnow() + dt.timedelta(days=3)
    assert run(later)["scan"] == {"too_old": 1}  # ... this one's event is three days old when scanned
    assert messages(late.id) == [] and receiver.requests == []
    [message] = messages(waiting.id)  # ... and this one's is sent three days late: dropped
    assert (message.state, message.last_error) == ("skipped", "out of date: the event is older than 24 h")
    app.config["NOTIFY_MAX_AGE_HOURS"] = 100
    move(late, S.OUT_FOR_DELIVERY)
    run(later)
    assert [m.state for m in messages(late.id)] == ["sent"]


def test_the_demo_history_queues_no_message(app, receiver):
    """Back-dated weeks of demo orders (real-looking invented numbers): nothing to anybody, the last
    day's events included."""
    from delivery_service.demo.history import load_history

    order = make_order()
    lines = list(load_history(weeks=1, per_day=8))
    assert "demo orders" in lines[-1]
    to_delivery(order)  # news after the history is still told
    run()
    assert [(m.order_id, m.kind, m.state) for m in messages()] == [(order.id, "handed", "sent")]
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("provider", [{"NOTIFY_PROVIDER": "sms", "NOTIFY_SMS_URL": "https://sms.example.vn/send",
                                       "NOTIFY_SMS_API_KEY": "k"},
                                      {"NOTIFY_PROVIDER": "zns", "NOTIFY_ZNS_ACCESS_TOKEN": "t"}])
def test_a_real_provider_in_production_needs_the_public_address(provider):
    """Messages are made outside any request: without PUBLIC_BASE_URL their links would point at
    http://127.0.0.1:5000. Refused at start, as a missing API key is."""
    from delivery_service.config import ConfigError, load

    production = {"ENV": "production", "SECRET_KEY": "s" * 48, **provider}
    with pytest.raises(ConfigError, match="needs PUBLIC_BASE_URL in production"):
        load("/tmp", {**production, "PUBLIC_BASE_URL": ""})
    assert load("/tmp", {**production, "PUBLIC_BASE_URL": "https://tracuu.example.vn/"})["PUBLIC_BASE_URL"] \
        == "https://tracuu.example.vn"
    assert load("/tmp", {**production, "NOTIFY_PROVIDER": "log"})["PUBLIC_BASE_URL"] is None  # log: no links out
    assert load("/tmp", {**provider})["PUBLIC_BASE_URL"] is None  # development: the local address is fine


def test_a_number_opts_back_in_from_the_same_link_and_admins_see_how_many_opted_out(app, client, receiver):
    """The opt-out page of a number that opted out offers to receive messages again (a POST with the
    same signed link: the same proof); later events are told again. The admin page shows how many
    numbers opted out, never which."""
    order = make_order()
    token = services.optout_token(PHONE)
    other = services.optout_token("0912000777")
    for t in (token, other):
        client.post(f"/t/optout/{t}", data={"csrf_token": csrf_token(client, f"/t/optout/{t}")})
    assert services.optout_count() == 2
    admin = app.test_client()
    login(admin, "admin")
    html = admin.get("/admin/notifications").get_data(as_text=True)
    assert re.search(r'id="optouts">Số điện thoại đã ngừng nhận tin: <strong>2</strong>', html)
    assert PHONE not in html and "905123456" not in html and "0912000777" not in html

    page = client.get(f"/t/optout/{token}").get_data(as_text=True)
    assert f'action="/t/optout/{token}/resume"' in page and "Nhận lại tin nhắn" in page
    assert client.post(f"/t/optout/{token}/resume", data={}).status_code == 400  # CSRF
    assert client.post(f"/t/optout/{token[:-2]}xx/resume",
                       data={"csrf_token": csrf_token(client, "/t")}).status_code == 404
    assert services.optout_count() == 2
    done = client.post(f"/t/optout/{token}/resume", data={"csrf_token": csrf_token(client, f"/t/optout/{token}")})
    assert done.status_code == 200 and "sẽ lại nhận tin nhắn" in done.get_data(as_text=True)
    assert services.optout_count() == 1 and not services.is_opted_out(services.phone_hash(PHONE))
    assert "Xác nhận ngừng nhận tin" in client.get(f"/t/optout/{token}").get_data(as_text=True)  # may opt out again
    english = client.get(f"/t/optout/{other}?lang=en").get_data(as_text=True)
    assert "Receive messages again" in english and "Nhận lại" not in english
    to_delivery(order)
    run()
    assert [m.state for m in messages(order.id)] == ["sent"]
    assert re.search(r'id="optouts">Numbers that opted out: <strong>1</strong>',
                     admin.get("/admin/notifications?lang=en").get_data(as_text=True))
