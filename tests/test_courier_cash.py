"""The money the courier collects, checked against what is due (outside review: an order with 67.000 ₫
to collect was delivered with 0 ₫ collected, accepted, and the run page still said "Cần thu: 67.000 ₫
… Đã phát"), through the real sync API and the run page, on SQLite and PostgreSQL:

(a) a delivery whose amount collected differs from what is due is refused (``amount_mismatch``) unless
    its note says why; the same amount, or none stated (older clients), is recorded as before;
(b) the run page shows per order what was due and what was collected, and for the day what is still
    to collect, what the deliveries were due, what was collected and the difference;
(c) the courier's own run and order (the phone's data) carry what the delivery recorded as collected
    (``collected_vnd``), not only what was due: the app showed the due as "Đã thu" even when the
    courier collected less, the figure a supervisor compares with the cash handed in."""

from __future__ import annotations

import sqlalchemy as sa
from conftest import csrf_token, login
from test_courier_api import (  # noqa: F401 (fixtures)
    ID_NUMBER,
    courier,
    delivered,
    event,
    events_of,
    handed,
    page_csrf,
    status_of,
    sync,
)

from delivery_service.courier.models import DeliveryProof
from delivery_service.courier.schemas import REFUSAL_REASONS
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orders.models import DeliveryOrder

PEOPLE = {"name": "Nguyễn Thị Hoa", "phone": "0905123456", "id_number": ID_NUMBER}


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
    statements: list[str] = []

    def proofs_read(_conn, _cursor, statement, *_args):
        if "delivery_proofs" in statement:
            statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", proofs_read)
    try:
        run = client.get(f"/api/v1/courier/run?date={local_today().isoformat()}")
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", proofs_read)
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
    assert "Phải thu của đơn đã phát: <strong>134.000 ₫</strong>" in flat
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
