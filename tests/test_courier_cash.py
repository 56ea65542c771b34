"""The money the courier collects, checked against what is due (outside review: an order with 67.000 ₫
to collect was delivered with 0 ₫ collected, accepted, and the run page still said "Cần thu: 67.000 ₫
… Đã phát"), through the real sync API and the run page, on SQLite and PostgreSQL:

(a) a delivery whose amount collected differs from what is due is refused (``amount_mismatch``) unless
    its note says why; the same amount, or none stated (older clients), is recorded as before;
(b) the run page shows per order what was due and what was collected, and for the day what is still
    to collect, what the deliveries were due, what was collected and the difference;
(c) the courier's own run and order (the phone's data) carry what the delivery recorded as collected
    (``collected_vnd``), not only what was due: the app showed the due as "Đã thu" even when the
    courier collected less, the figure a supervisor compares with the cash handed in;
(d) a dossier pickup puts cash in the courier's hand too (the fees, and the postage when the citizen
    pays it): the run page and the courier's data count the pickup's ``fees_collected_vnd`` as they
    count a delivery's amount (they left picked-up orders out of both "still to collect" and the
    day's totals), on the day it was recorded."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

import sqlalchemy as sa
from conftest import csrf_token, login
from test_courier_api import (  # noqa: F401 (fixtures)
    ID_NUMBER,
    courier,
    delivered,
    event,
    events_of,
    handed,
    new_order,
    page_csrf,
    status_of,
    sync,
)

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor
from delivery_service.courier.models import DeliveryProof
from delivery_service.courier.schemas import REFUSAL_REASONS
from delivery_service.courier.services import Money, run_money
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status

PEOPLE = {"name": "Nguyễn Thị Hoa", "phone": "0905123456", "id_number": ID_NUMBER}


@contextlib.contextmanager
def _proofs_read() -> Iterator[list[str]]:
    """The statements that read delivery_proofs meanwhile."""
    statements: list[str] = []

    def proofs_read(_conn, _cursor, statement, *_args):  # noqa: ANN001, ANN002, ANN202
        if "delivery_proofs" in statement:
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", proofs_read)
    try:
        yield statements
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", proofs_read)


def _order(client, auth, courier_headers) -> str:  # 41.000 ₫ fees + 26.000 ₫ postage: 67.000 ₫ due
    return handed(client, auth, courier_headers, collect_vnd=41000, recipient=PEOPLE)["item_id"]


def test_a_delivery_collecting_other_than_what_is_due_must_say_why(client, auth, courier):  # noqa: F811
    item, other = _order(client, auth, courier), _order(client, auth, courier)
    short = delivered(item, -20, amount_collected_vnd=0)
    # alone (the phone's usual sync) and in a batch: the same refusal
    for results in (sync(client, courier, short), sync(client, courier, delivered(other, -20, amount_collected_vnd=5000),
                                                         delivered(item, -19, amount_collected_vnd=0))):
        for r in results:
            assert (r["result"], r["status"]) == ("rejected", "handed_to_courier"), r
            assert (r["error"]["code"], r["error"]["reason"]) == ("invalid", "amount_mismatch"), r
            assert "67.000 VND is due" in r["error"]["message"]
            assert list(r["error"]["fields"]) == ["amount_collected_vnd"]
    assert "amount_mismatch" in REFUSAL_REASONS
    assert status_of(item) == "handed_to_courier" and not db.session.scalar(sa.select(sa.func.count()).select_from(
        DeliveryProof))
    # with the reason: recorded, the amount and the reason kept
    why = delivered(item, -10, amount_collected_vnd=0, note="Hộ nghèo: được miễn cước, phí nộp tại quầy")
    [ok] = sync(client, courier, why)
    assert (ok["result"], ok["status"]) == ("applied", "delivered"), ok
    last = events_of(item)[-1]
    assert last.note == "Hộ nghèo: được miễn cước, phí nộp tại quầy"
    assert db.session.scalar(sa.select(DeliveryProof.amount_collected_vnd)
                             .where(DeliveryProof.event_id == last.id)) == 0
    # what is due: no reason needed
    [paid] = sync(client, courier, delivered(other, -5, amount_collected_vnd=67000))
    assert paid["result"] == "applied", paid


def test_a_delivery_stating_no_amount_is_recorded_as_not_stated(client, auth, courier):  # noqa: F811
    item = _order(client, auth, courier)
    [ok] = sync(client, courier, delivered(item))
    assert ok["result"] == "applied"
    assert db.session.scalar(sa.select(DeliveryProof.amount_collected_vnd)) is None


def test_the_couriers_run_and_order_say_what_was_collected(client, auth, courier):  # noqa: F811
    short, paid, unstated, corrected, todo = (_order(client, auth, courier) for _ in range(5))
    db.session.execute(sa.update(DeliveryOrder)
                       .where(DeliveryOrder.item_id.in_([short, paid, unstated, corrected, todo]))
                       .values(run_date=local_today()))
    db.session.commit()
    wrong = delivered(corrected, -25, amount_collected_vnd=67000)
    results = sync(client, courier,
                   delivered(short, -30, amount_collected_vnd=20000, note="Người nhận chỉ có 20.000 ₫, hẹn nộp sau"),
                   wrong, delivered(paid, -20, amount_collected_vnd=67000), delivered(unstated, -15))
    assert [r["result"] for r in results] == ["applied"] * 4, results
    [fix] = sync(client, courier, event(corrected, "correction", -5, corrects=wrong["event_id"],
                                        note="Chưa giao: bấm nhầm đơn"))
    assert fix["result"] == "applied", fix
    with _proofs_read() as statements:
        run = client.get(f"/api/v1/courier/run?date={local_today().isoformat()}")
    assert run.status_code == 200, run.json
    orders = {o["item_id"]: o for o in [o for s in run.json["stops"] for o in s["orders"]] + run.json["unsequenced"]}
    got = {item: (orders[item]["status"], orders[item]["to_collect_vnd"], orders[item]["collected_vnd"])
           for item in (short, paid, unstated, corrected, todo)}
    assert got == {short: ("delivered", 67000, 20000), paid: ("delivered", 67000, 67000),
                   unstated: ("delivered", 67000, None),  # recorded without an amount: not stated
                   corrected: ("out_for_delivery", 67000, None),  # the delivery was cancelled
                   todo: ("handed_to_courier", 67000, None)}, got
    assert len(statements) == 1, statements  # the whole run's amounts in one query, not one per order
    one = client.get(f"/api/v1/courier/orders/{short}").json
    assert (one["to_collect_vnd"], one["collected_vnd"]) == (67000, 20000)
    assert client.get(f"/api/v1/courier/orders/{todo}").json["collected_vnd"] is None


def test_the_run_page_shows_due_collected_and_the_days_difference(client, auth, courier):  # noqa: F811
    short, paid, todo = (_order(client, auth, courier) for _ in range(3))
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id.in_([short, paid, todo]))
                       .values(run_date=local_today()))  # all three on today's run
    db.session.commit()
    results = sync(client, courier,
                   delivered(short, -30, amount_collected_vnd=0, note="Người nhận chưa có tiền, hẹn nộp sau"),
                   delivered(paid, -20, amount_collected_vnd=67000))
    assert [r["result"] for r in results] == ["applied", "applied"], results
    client.post("/logout", data={"csrf_token": csrf_token(client, "/routes/QNG-01/run")})
    login(client, "supervisor")
    html = client.get("/routes/QNG-01/run").get_data(as_text=True)
    flat = " ".join(html.split())
    block = {item: flat[flat.index(item) - 1500:flat.index(item)] for item in (short, paid, todo)}
    # the reviewer's order: due and collected, the difference and why; never "to collect" once delivered
    assert "Phải thu: <strong>67.000 ₫</strong>" in block[short], block[short]
    assert "Đã thu: <strong>0 ₫</strong>" in block[short]
    assert "Chênh lệch: −67.000 ₫" in block[short]
    assert "Lý do: Người nhận chưa có tiền, hẹn nộp sau" in block[short]
    assert "Cần thu" not in block[short].split("run-order")[-1]
    assert "Đã thu: <strong>67.000 ₫</strong>" in block[paid] and "Chênh lệch" not in block[paid].split("run-order")[-1]
    assert "Cần thu: <strong>67.000 ₫</strong>" in block[todo].split("run-order")[-1]
    # the day: still to collect on the order not delivered; of the deliveries due / collected / difference
    assert "Còn phải thu: <strong>67.000 ₫</strong>" in flat
    assert "Phải thu của đơn đã phát và hồ sơ đã lấy: <strong>134.000 ₫</strong>" in flat
    assert "Đã thu: <strong>67.000 ₫</strong> </span>" in flat or "Đã thu: <strong>67.000 ₫</strong></span>" in flat
    assert "Chênh lệch: <strong>−67.000 ₫</strong>" in flat
    english = " ".join(client.get("/routes/QNG-01/run?lang=en").get_data(as_text=True).split())
    assert "Difference: <strong>−67.000 ₫</strong>" in english or "Difference: <strong>−67,000 ₫</strong>" in english


def test_the_printed_run_sheet_counts_the_cash_as_the_run_page(client, auth, courier):  # noqa: F811
    """The run sheet printed from the service (not only labels.runsheet given the figures): the
    delivered order's due / collected / difference, and only the undelivered one still to collect."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler) not installed")
    short, todo = (_order(client, auth, courier) for _ in range(2))
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id.in_([short, todo]))
                       .values(run_date=local_today()))
    db.session.commit()
    [ok] = sync(client, courier, delivered(short, -30, amount_collected_vnd=0, note="Hẹn nộp sau"))
    assert ok["result"] == "applied", ok
    client.post("/logout", data={"csrf_token": csrf_token(client, "/routes/QNG-01/run")})
    login(client, "supervisor")
    sheet = client.get(f"/routes/QNG-01/run/sheet.pdf?date={local_today().isoformat()}")
    assert sheet.status_code == 200, sheet.get_data(as_text=True)[:300]
    text = " ".join(subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", "-", "-"], input=sheet.data,
                                   capture_output=True, check=True).stdout.decode().split())
    assert "Phải thu / Due 67.000 ₫ Đã thu / Collected 0 ₫ Chênh lệch / Difference −67.000 ₫" in text, text
    assert "Còn phải thu / Still to collect 67.000 ₫" in text, text


# --- (d) dossier pickups -------------------------------------------------------------------------

def _dossier(client, auth, direction: str = "dossier_to_agency") -> str:  # 67.000 ₫ due at the pickup
    return new_order(client, auth, direction=direction, appointment_date=None, collect_vnd=41000,
                     recipient=PEOPLE)["item_id"]


def picked_up(item_id: str, offset_s: float = 0, **fields) -> dict:
    fields.setdefault("documents", ["Tờ khai", "CCCD bản sao"])
    fields.setdefault("sealed", True)
    return event(item_id, "dossier_picked_up", offset_s, **fields)


def _on_todays_run(*items: str) -> None:
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id.in_(items)).values(run_date=local_today()))
    db.session.commit()


def _admin() -> Actor:
    uid = db.session.scalar(sa.text("SELECT id FROM users WHERE username = 'admin'"))
    return Actor(label="admin", role=Role.ADMIN, user_id=uid)


def test_the_run_page_counts_the_cash_of_dossier_pickups(client, auth, courier):  # noqa: F811
    paid, short, unstated, undone = (_dossier(client, auth) for _ in range(4))
    delivery = _order(client, auth, courier)
    _on_todays_run(paid, short, unstated, undone, delivery)
    wrong = picked_up(undone, -40, fees_collected_vnd=67000)
    results = sync(client, courier, wrong, picked_up(paid, -30, fees_collected_vnd=67000),
                   picked_up(short, -25, fees_collected_vnd=41000, note="Người dân nộp cước tại quầy"),
                   picked_up(unstated, -20), delivered(delivery, -15, amount_collected_vnd=67000))
    assert [r["result"] for r in results] == ["applied"] * 5, results  # no refusal of other fees
    [fix] = sync(client, courier, event(undone, "correction", -5, corrects=wrong["event_id"],
                                        note="Chưa lấy: bấm nhầm đơn"))
    assert fix["result"] == "applied", fix
    client.post("/logout", data={"csrf_token": csrf_token(client, "/routes/QNG-01/run")})
    login(client, "supervisor")
    flat = " ".join(client.get("/routes/QNG-01/run").get_data(as_text=True).split())
    row = {item: flat[flat.index(item) - 1500:flat.index(item)].split("run-order")[-1]
           for item in (paid, short, unstated, undone)}
    # each pickup: what was due and what the courier recorded collecting, never "to collect"
    assert "Phải thu: <strong>67.000 ₫</strong>" in row[paid] and "Đã thu: <strong>67.000 ₫</strong>" in row[paid]
    assert "Cần thu" not in row[paid] and "Chênh lệch" not in row[paid]
    assert "Đã thu: <strong>41.000 ₫</strong>" in row[short] and "Chênh lệch: −26.000 ₫" in row[short]
    assert "Lý do: Người dân nộp cước tại quầy" in row[short]
    assert "Đã thu: <strong>chưa ghi</strong>" in row[unstated]
    assert "Cần thu: <strong>67.000 ₫</strong>" in row[undone]  # its pickup was cancelled: still to collect
    # the day: the pickups with the delivery; the corrected pickup still to collect
    assert "Còn phải thu: <strong>67.000 ₫</strong>" in flat
    assert "Phải thu của đơn đã phát và hồ sơ đã lấy: <strong>268.000 ₫</strong>" in flat
    assert "Đã thu: <strong>175.000 ₫</strong>" in flat
    assert "Chênh lệch: <strong>−93.000 ₫</strong>" in flat
    assert "1 đơn đã phát hoặc đã lấy hồ sơ không ghi số tiền thu" in flat
    english = " ".join(client.get("/routes/QNG-01/run?lang=en").get_data(as_text=True).split())
    assert "Due on deliveries and pickups: <strong>268,000 ₫</strong>" in english
    assert "1 delivery or pickup recorded without an amount" in english
    # the next day the dossiers are still on the run (not yet at the agency): their cash counted today
    tomorrow = local_today() + dt.timedelta(days=1)
    later = " ".join(client.get(f"/routes/QNG-01/run?date={tomorrow.isoformat()}&lang=vi")
                     .get_data(as_text=True).split())
    block = later[later.index(paid) - 1500:later.index(paid)].split("run-order")[-1]
    assert "Đã thu: <strong>67.000 ₫</strong>" in block
    assert f"Ghi ngày {local_today():%d/%m/%Y}, tính vào tiền thu của ngày đó" in block
    assert "Phải thu của đơn đã phát và hồ sơ đã lấy: <strong>0 ₫</strong>" in later
    assert "Còn phải thu: <strong>67.000 ₫</strong>" in later  # the corrected pickup, still to make
    english = " ".join(client.get(f"/routes/QNG-01/run?date={tomorrow.isoformat()}&lang=en")
                       .get_data(as_text=True).split())
    assert f"Recorded on {local_today():%d/%m/%Y}, counted in that day's cash" in english
    # the printed run sheets count as the pages do (they counted deliveries only, and the picked-up
    # dossiers as still to collect)
    sheet = _sheet_text(client, local_today())
    assert "Còn phải thu / Still to collect 67.000 ₫" in sheet, sheet
    assert ("Delivered, picked up: due · collected · difference 268.000 ₫ · 175.000 ₫ · −93.000 ₫"
            in sheet), sheet
    assert "Phải thu / Due 67.000 ₫ Đã thu / Collected 41.000 ₫ Chênh lệch / Difference −26.000 ₫" in sheet
    sheet = _sheet_text(client, tomorrow)
    assert "Còn phải thu / Still to collect 67.000 ₫" in sheet, sheet
    assert "due · collected · difference 0 ₫ · 0 ₫ · 0 ₫" in sheet, sheet
    assert f"Ghi ngày {local_today():%d/%m/%Y}, tính vào tiền thu của ngày đó" in sheet


def _sheet_text(client, day: dt.date) -> str:  # noqa: ANN001
    """The run sheet of QNG-01 for ``day`` as printed from the run page, its text on one line."""
    import subprocess

    sheet = client.get(f"/routes/QNG-01/run/sheet.pdf?date={day.isoformat()}")
    assert sheet.status_code == 200, sheet.get_data(as_text=True)[:300]
    return " ".join(subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", "-", "-"], input=sheet.data,
                                   capture_output=True, check=True).stdout.decode().split())


def test_run_money_and_the_couriers_data_count_a_pickup_until_the_dossier_moves_on(client, auth, courier):  # noqa: F811
    at_agency, picked, undone = (_dossier(client, auth) for _ in range(3))
    both = _dossier(client, auth, "both")
    _on_todays_run(at_agency, picked, undone, both)
    wrong = picked_up(undone, -40, fees_collected_vnd=67000)
    results = sync(client, courier, picked_up(at_agency, -30, fees_collected_vnd=67000), wrong,
                   picked_up(picked, -25, fees_collected_vnd=50000, note="Miễn lệ phí một phần"),
                   picked_up(both, -20, fees_collected_vnd=67000))
    assert [r["result"] for r in results] == ["applied"] * 4, results
    [fix] = sync(client, courier, event(undone, "correction", -5, corrects=wrong["event_id"], note="Bấm nhầm"))
    assert fix["result"] == "applied", fix
    change_status(_admin(), at_agency, Status.DELIVERED_TO_AGENCY)  # the dossier taken to the agency since
    for st in (Status.DELIVERED_TO_AGENCY, Status.ASSIGNED):  # the result of ``both`` on its own leg now
        change_status(_admin(), both, st)
    db.session.expire_all()
    orders = {o.item_id: o for o in db.session.scalars(
        sa.select(DeliveryOrder).where(DeliveryOrder.item_id.in_([at_agency, picked, undone, both])))}
    with _proofs_read() as statements:
        money = run_money(list(orders.values()), local_today())
    assert len(statements) == 1, statements  # one query for the whole run
    got = {item: money.orders[orders[item].id] for item in orders}
    assert got[at_agency] == Money(67000, False, 67000, None, True)
    assert got[picked] == Money(67000, False, 50000, "Miễn lệ phí một phần", True)
    assert got[undone] == Money(67000) and got[both] == Money(67000)  # to pick up; a result to deliver
    assert (money.still_to_collect, money.due, money.collected, money.difference, money.not_stated) == (
        134000, 134000, 117000, -17000, 0)
    # another day's run: the pickups are shown with their day, and counted on it, not again
    tomorrow = run_money(list(orders.values()), local_today() + dt.timedelta(days=1))
    assert tomorrow.orders[orders[picked].id].other_day == local_today()
    assert (tomorrow.due, tomorrow.collected, tomorrow.not_stated) == (0, 0, 0)
    # the phone's data: what the pickup recorded, while the dossier is picked up or at the agency
    run = client.get(f"/api/v1/courier/run?date={local_today().isoformat()}").json
    listed = {o["item_id"]: o for o in [o for s in run["stops"] for o in s["orders"]] + run["unsequenced"]}
    assert (listed[picked]["status"], listed[picked]["collected_vnd"]) == ("picked_up", 50000)
    assert (listed[undone]["status"], listed[undone]["collected_vnd"]) == ("pickup_scheduled", None)
    for item, want in ((at_agency, ("delivered_to_agency", 67000)), (picked, ("picked_up", 50000)),
                       (both, ("assigned", None))):
        one = client.get(f"/api/v1/courier/orders/{item}").json
        assert (one["status"], one["collected_vnd"]) == want, one
