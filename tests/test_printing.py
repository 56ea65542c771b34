"""Printing through the service: labels (one, reprints, batches big and small), receipts, manifests
and run sheets, on both databases; the files are checked with poppler and pypdf."""

from __future__ import annotations

import datetime as dt
import io
import re
import shutil
import subprocess

import pytest
import sqlalchemy as sa
from conftest import REQUIRE, csrf_token, login, order_payload
from pypdf import PdfReader

from delivery_service.extensions import db
from delivery_service.orgs.models import Counter
from delivery_service.printing.models import LabelPrint, Manifest, PrintJob


def pdf_text(content: bytes) -> str:
    if shutil.which("pdftotext") is None:
        if REQUIRE:
            pytest.fail("pdftotext (poppler-utils) is missing")
        pytest.skip("pdftotext (poppler-utils) is missing: apt-get install poppler-utils")
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=content, capture_output=True, check=True)
    return out.stdout.decode()


def pages(content: bytes) -> int:
    return len(PdfReader(io.BytesIO(content)).pages)


def new_order(client, auth, **changes) -> str:
    resp = client.post("/api/v1/orders", json=order_payload(**changes), headers=auth)
    assert resp.status_code == 201, resp.json
    return resp.json["item_id"]


def prints(item_id: str) -> list[LabelPrint]:
    from delivery_service.orders.models import DeliveryOrder

    return list(db.session.scalars(sa.select(LabelPrint).join(DeliveryOrder, DeliveryOrder.id == LabelPrint.order_id)
                                   .where(DeliveryOrder.item_id == item_id).order_by(LabelPrint.id)))


def test_one_label_as_pdf_and_zpl_and_every_print_is_recorded(client, auth):
    item = new_order(client, auth, recipient={"name": "Nguyễn Thị Hoà", "phone": "0905123456"})
    pdf = client.get(f"/api/v1/orders/{item}/label", headers=auth)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert f'filename="nhan-{item}.pdf"' in pdf.headers["Content-Disposition"]
    box = PdfReader(io.BytesIO(pdf.data)).pages[0].mediabox
    assert (round(float(box.width), 2), round(float(box.height), 2)) == (283.46, 425.2)  # 100 x 150 mm
    text = pdf_text(pdf.data)
    assert "Nguyễn Thị Hoà" in text and item in text and "QNG-01" in text
    zpl = client.get(f"/api/v1/orders/{item}/label?format=zpl&size=100x100", headers=auth)
    assert zpl.status_code == 200 and zpl.mimetype == "application/zpl"
    body = zpl.data.decode()
    assert body.startswith("^XA") and body.rstrip().endswith("^XZ") and item in body
    history = client.get(f"/api/v1/orders/{item}/label/prints", headers=auth).json
    assert [(p["copy_no"], p["format"], p["size"]) for p in history] == [(1, "pdf", "100x150"), (2, "zpl", "100x100")]
    assert "12 Hùng Vương" in history[0]["address"]


def test_a_reprint_after_an_address_change_shows_the_new_address(client, auth):
    item = new_order(client, auth)
    assert client.get(f"/api/v1/orders/{item}/label", headers=auth).status_code == 200
    moved = client.put(f"/api/v1/orders/{item}/address", headers=auth, json={
        "address": {"province_code": "51", "commune_code": "21172", "detail": "Tổ 7, đường Lê Lợi"}})
    assert moved.status_code == 200 and moved.json["route_code"] == "QNG-02"
    again = client.get(f"/api/v1/orders/{item}/label", headers=auth)
    text = pdf_text(again.data)
    assert "Tổ 7, đường Lê Lợi" in text and "QNG-02" in text and "12 Hùng Vương" not in text
    first, second = prints(item)
    assert (first.copy_no, second.copy_no) == (1, 2)
    assert "12 Hùng Vương" in first.address and "Tổ 7" in second.address


@pytest.mark.parametrize("query,field", [("format=png", "format"), ("size=a3", "size"),
                                         ("format=zpl&size=a4", "size")])
def test_unknown_formats_and_sizes_are_422(client, auth, query, field):
    item = new_order(client, auth)
    resp = client.get(f"/api/v1/orders/{item}/label?{query}", headers=auth)
    assert resp.status_code == 422 and field in str(resp.json)
    assert prints(item) == []


def test_cancelled_and_unrouted_orders_get_a_clear_refusal(client, auth):
    item = new_order(client, auth)
    assert client.post(f"/api/v1/orders/{item}/events", json={"status": "cancelled"}, headers=auth).status_code == 201
    refused = client.get(f"/api/v1/orders/{item}/label", headers=auth)
    assert refused.status_code == 409 and "cancelled" in refused.json["message"]
    db.session.execute(sa.update(Counter).where(Counter.code == "QNG-TTHCC").values(label_requires_route=True))
    db.session.commit()
    lost = new_order(client, auth, address={"province_code": "51", "commune_code": "21250", "detail": "Thôn 2"})
    refused = client.get(f"/api/v1/orders/{lost}/label", headers=auth)
    assert refused.status_code == 409 and "not on a route" in refused.json["message"]
    assert prints(item) == [] and prints(lost) == []


def test_small_batches_come_back_at_once(client, auth):
    items = [new_order(client, auth) for _ in range(3)]
    cancelled = new_order(client, auth)
    client.post(f"/api/v1/orders/{cancelled}/events", json={"status": "cancelled"}, headers=auth)
    resp = client.post("/api/v1/labels/batches", json={}, headers=auth)
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert pages(resp.data) == 3 and resp.headers["X-Left-Out"] == "0"  # cancelled ones are not "unprinted"
    assert client.post("/api/v1/labels/batches", json={}, headers=auth).status_code == 422  # all printed
    chosen = client.post("/api/v1/labels/batches", json={"item_ids": items[:2], "format": "zpl"}, headers=auth)
    assert chosen.status_code == 200 and chosen.data.decode().count("^XA") == 2
    bad = client.post("/api/v1/labels/batches", json={"item_ids": [cancelled, "RH000000000VN"]}, headers=auth)
    assert bad.status_code == 422


@pytest.mark.config(LABEL_ASYNC_THRESHOLD=2)
def test_big_batches_run_as_a_job_and_the_file_is_kept(client, auth):
    for _ in range(5):
        new_order(client, auth)
    resp = client.post("/api/v1/labels/batches", json={"size": "a4"}, headers=auth)
    assert resp.status_code == 202, resp.json
    job = client.get(resp.headers["Location"], headers=auth).json
    assert (job["state"], job["done"], job["total"]) == ("done", 5, 5)  # no Redis: it ran after the commit
    pdf = client.get(job["file"], headers=auth)
    assert pdf.status_code == 200 and pages(pdf.data) == 2  # A4: four labels a page
    box = PdfReader(io.BytesIO(pdf.data)).pages[0].mediabox
    assert (round(float(box.width), 2), round(float(box.height), 2)) == (595.28, 841.89)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LabelPrint)) == 5
    ids = [p["item_id"] for p in client.get("/api/v1/orders", headers=auth).json]
    zpl = client.post("/api/v1/labels/batches", json={"item_ids": ids, "format": "zpl"}, headers=auth)
    assert zpl.status_code == 202
    done = client.get(zpl.headers["Location"], headers=auth).json
    stream = client.get(done["file"], headers=auth).data.decode()
    assert stream.count("^XA") == stream.count("^XZ") == 5 and all(i in stream for i in ids)


@pytest.mark.redis
@pytest.mark.config(LABEL_ASYNC_THRESHOLD=2)
def test_big_batches_go_to_rq_and_show_progress(client, auth, rq_app):
    from rq import SimpleWorker

    ids = [new_order(client, auth) for _ in range(3)]
    rq_app.config["LABEL_ASYNC_THRESHOLD"] = 2
    with rq_app.app_context():
        from delivery_service.accounts.services import actor_for_token
        from delivery_service.printing.services import get_job, start_batch

        actor = actor_for_token(auth["Authorization"][7:])
        result = start_batch(actor, counter_id=actor.counter_id, item_ids=ids)
        assert result.document is None and result.job.state.value == "pending"
        queue = rq_app.extensions["rq_queue"]
        assert queue.count == 1
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        db.session.expire_all()
        job = get_job(actor, result.job.id)
        assert (job.state.value, job.done) == ("done", 3) and job.file_name


def test_manifest_for_a_bag_and_its_refusals(client, auth):
    items = [new_order(client, auth, recipient={"name": f"Trần Văn Đức {n}", "phone": "0905123456"})
             for n in range(3)]
    resp = client.post("/api/v1/manifests", headers=auth, json={
        "kind": "counter_to_courier", "item_ids": items, "route": "QNG-01", "note": "Túi sáng"})
    assert resp.status_code == 201, resp.json
    code = resp.json["code"]
    assert re.fullmatch(r"BB\d{12}", code)
    pdf = client.get(f"/api/v1/manifests/{code}.pdf", headers=auth)
    assert pdf.status_code == 200
    text = pdf_text(pdf.data)
    assert code in text and all(i in text for i in items) and "Trần Văn Đức 2" in text
    empty = client.post("/api/v1/manifests", headers=auth, json={"kind": "counter_to_courier", "item_ids": []})
    assert empty.status_code == 422
    courier_kind = client.post("/api/v1/manifests", headers=auth, json={"kind": "courier_to_agency", "item_ids": items})
    assert courier_kind.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Manifest)) == 1


def test_receipt_and_run_sheet(client, auth):
    item = new_order(client, auth, recipient={"name": "Lê Thị Ánh", "phone": "0912345678"})
    receipt = client.get(f"/api/v1/orders/{item}/receipt", headers=auth)
    assert receipt.status_code == 200
    box = PdfReader(io.BytesIO(receipt.data)).pages[0].mediabox
    assert (round(float(box.width), 2), round(float(box.height), 2)) == (419.53, 595.28)  # A5
    text = pdf_text(receipt.data)
    from delivery_service.courier.services import delivery_code

    assert "Lê Thị Ánh" in text and f"Delivery code: {delivery_code(item)}" in text  # the one-time code
    assert client.get(f"/api/v1/orders/{item}/receipt?size=letter", headers=auth).status_code == 422
    day = client.get(f"/api/v1/orders/{item}", headers=auth).json["run_date"]
    login(client, "courier")
    sheet = client.get(f"/api/v1/routes/QNG-01/run/sheet?date={day}")
    assert sheet.status_code == 200 and "Lê Thị Ánh" in pdf_text(sheet.data)
    assert "Hẹn giờ" not in pdf_text(sheet.data)  # no window asked for
    assert client.get(f"/api/v1/routes/QNG-02/run/sheet?date={day}").status_code == 404
    assert client.get("/api/v1/routes/QNG-01/run/sheet?date=yesterday").status_code == 422


def test_pages_print_labels_receipts_batches_and_manifests(client, auth):
    items = [new_order(client, auth) for _ in range(2)]
    login(client, "counter")
    order_page = client.get(f"/counter/orders/{items[0]}").get_data(as_text=True)
    assert "In nhãn" in order_page and "In biên nhận" in order_page
    label = client.get(f"/counter/orders/{items[0]}/label?format=pdf&size=a6")
    assert label.status_code == 200 and label.mimetype == "application/pdf"
    assert "In lại nhãn" in client.get(f"/counter/orders/{items[0]}").get_data(as_text=True)
    bad = client.get(f"/counter/orders/{items[0]}/label?size=a3", follow_redirects=True)
    assert bad.status_code == 200 and "Cỡ nhãn không hợp lệ" in bad.get_data(as_text=True)  # the message, in Vietnamese
    listing = client.get("/counter/labels").get_data(as_text=True)
    # every item not handed over yet is listed, printed or not, and says which
    assert f'data-item="{items[0]}" data-printed="1"' in listing
    assert f'data-item="{items[1]}" data-printed="0"' in listing
    token = re.search(r'name="csrf_token" value="([^"]+)"', listing).group(1)
    batch = client.post("/counter/labels", data={"csrf_token": token, "which": "all", "format": "pdf",
                                                 "size": "100x150"})
    assert batch.status_code == 200 and "attachment" in batch.headers["Content-Disposition"]
    manifest = client.post("/counter/manifests", data={"csrf_token": token, "item_ids": items, "route": "QNG-01"})
    assert manifest.status_code == 303 and manifest.headers["Location"].endswith(".pdf")
    assert client.get(manifest.headers["Location"]).mimetype == "application/pdf"
    assert client.post("/counter/labels", data={"which": "all"}).status_code == 400  # no CSRF token
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PrintJob)) == 0


def test_cli_sets_a_counters_label_defaults(app, client, auth):
    from delivery_service.cli import main

    runner = app.test_cli_runner()
    result = runner.invoke(main, ["counters", "labels", "QNG-TTHCC", "--format", "zpl", "--size", "100x100"])
    assert result.exit_code == 0 and "zpl 100x100" in result.output
    item = new_order(client, auth)
    resp = client.get(f"/api/v1/orders/{item}/label", headers=auth)  # the counter's defaults
    assert resp.mimetype == "application/zpl" and "^XA" in resp.data.decode()
    refused = runner.invoke(main, ["counters", "labels", "QNG-TTHCC", "--size", "a4"])
    assert refused.exit_code != 0 and "ZPL is for label printers" in refused.output
    assert runner.invoke(main, ["counters", "labels", "NOPE"]).exit_code != 0


def test_returned_items_get_their_own_manifest(client, auth):
    from delivery_service.accounts.services import SYSTEM
    from delivery_service.orders.services import change_status
    from delivery_service.orders.status import Status

    items = [new_order(client, auth) for _ in range(2)]
    for step in (Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT, Status.RETURNED_TO_AGENCY):
        change_status(SYSTEM, items[0], step)
    login(client, "counter")
    page = client.get("/counter/returns").get_data(as_text=True)
    assert items[0] in page and items[1] not in page and "Hàng trả lại" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    made = client.post("/counter/manifests", data={"csrf_token": token, "kind": "courier_to_counter",
                                                   "item_ids": [items[0]], "route": "QNG-01"})
    assert made.status_code == 303
    pdf = client.get(made.headers["Location"])
    assert pdf.mimetype == "application/pdf" and items[0] in pdf_text(pdf.data)
    assert items[0] not in client.get("/counter/returns").get_data(as_text=True)  # handed back


def test_the_returns_page_has_one_manifest_per_route(client, auth):
    """A manifest names one route (each courier hands back their own items): the page groups the
    returned items by route, each group with its own button (it ticked every route's items in one
    form, which the manifest then refused without a route chosen)."""
    from delivery_service.accounts.services import SYSTEM
    from delivery_service.orders.services import change_status
    from delivery_service.orders.status import Status

    one = new_order(client, auth)
    two = client.post("/api/v1/orders", json=order_payload(address={
        "province_code": "51", "commune_code": "21172", "detail": "Thôn 3"}), headers=auth).json["item_id"]
    for item in (one, two):
        for step in (Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT,
                     Status.RETURNED_TO_AGENCY):
            change_status(SYSTEM, item, step)
    login(client, "counter")
    page = client.get("/counter/returns").get_data(as_text=True)
    forms = re.findall(r'<form method="post" action="/counter/manifests".*?</form>', page, re.S)
    assert len(forms) == 2 and "Tuyến QNG-01" in page and "Tuyến QNG-02" in page
    second = next(f for f in forms if two in f)
    assert one not in second and 'name="route" value="QNG-02"' in second
    assert "In biên bản trả lại của tuyến QNG-02" in second
    fields = {"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', second).group(1),
              "kind": "courier_to_counter", "route": "QNG-02", "item_ids": [two]}
    made = client.post("/counter/manifests", data=fields)
    assert made.status_code == 303 and two in pdf_text(client.get(made.headers["Location"]).data)
    left = client.get("/counter/returns").get_data(as_text=True)
    assert one in left and two not in left


# --- documents of any size ---------------------------------------------------------------------

# Every free text at the most OrderIn accepts: names 200, address detail 255, procedure 500, agency
# 255, dossier code 64, and a note of 500 characters broken over many lines.
MAX_NAME = ("Tôn Nữ Hoàng Thị Phương Thảo " * 8)[:200].strip()
MAX_DETAIL = ("Chung cư Hoàng Anh Gia Lai, block B, tầng 12, " * 6)[:255].strip()
MAX_NOTE = "\n".join(["Gọi trước khi đến"] * 28)[:500]


def max_order(client, auth) -> str:
    import uuid

    return new_order(
        client, auth,
        dossier_code=(uuid.uuid4().hex + "-000.00.16.H38-261121-0001" * 2)[:64],
        procedure_name=("Cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở " * 9)[:500].strip(),
        issuing_agency=("Văn phòng Đăng ký đất đai tỉnh Quảng Ngãi " * 7)[:255].strip(),
        recipient={"name": MAX_NAME, "phone": "0905123456"},
        address={"province_code": "51", "commune_code": "21025", "detail": MAX_DETAIL},
        postage_vnd=1_000_000_000, collect_vnd=1_000_000_000, note=MAX_NOTE,
    )


def test_fifty_orders_at_one_address_every_document_prints_or_is_refused_with_422(client, auth):
    """A stop of 50 orders (one apartment block) used to answer the run sheet with 500: its single
    table row was taller than a page. Every text is at its maximum length too."""
    items = [max_order(client, auth) for _ in range(50)]
    receipt = client.get(f"/api/v1/orders/{items[0]}/receipt", headers=auth)
    assert receipt.status_code == 200 and MAX_NAME in " ".join(pdf_text(receipt.data).split())
    label = client.get(f"/api/v1/orders/{items[0]}/label", headers=auth)  # a 64-character dossier code
    assert label.status_code == 200  # issue 13: printed whole (wrapped, >= 7 pt) instead of refused
    dossier = client.get(f"/api/v1/orders/{items[0]}", headers=auth).json["dossier_code"]
    assert dossier in "".join(pdf_text(label.data).split())
    zpl = client.get(f"/api/v1/orders/{items[0]}/label?format=zpl", headers=auth)
    assert zpl.status_code == 200 and zpl.data.count(b"^XA") == 1
    made = client.post("/api/v1/manifests", headers=auth, json={
        "kind": "counter_to_courier", "item_ids": items, "route": "QNG-01", "note": ("Túi sáng " * 40)[:300]})
    assert made.status_code == 201, made.json
    manifest = client.get(f"/api/v1/manifests/{made.json['code']}.pdf", headers=auth)
    assert manifest.status_code == 200 and pages(manifest.data) > 1
    assert all(i in pdf_text(manifest.data) for i in items)

    from delivery_service.accounts.models import User
    from delivery_service.accounts.services import Actor
    from delivery_service.routing.services import get_run, sequence_run

    day = dt.date.fromisoformat(client.get(f"/api/v1/orders/{items[0]}", headers=auth).json["run_date"])
    courier = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "courier")))
    sequence_run(courier, "QNG-01", day)
    assert [len(s["orders"]) for s in get_run(courier, "QNG-01", day).stops] == [50]  # one stop
    login(client, "courier")
    sheet = client.get(f"/api/v1/routes/QNG-01/run/sheet?date={day}")
    assert sheet.status_code == 200, sheet.data[:300]
    assert pages(sheet.data) > 1
    text = pdf_text(sheet.data)
    assert all(i in text for i in items)
    assert text.count("(tiếp") == 49  # the stop's 49 following rows say "(tiếp / cont.)"


@pytest.mark.parametrize("document", ["run_sheet", "manifest"])
def test_a_document_the_library_cannot_lay_out_is_422_not_500(client, auth, monkeypatch, document):
    import labels

    def refuse(*args, **kwargs):
        raise labels.LabelError("a text is too long to lay out")

    monkeypatch.setattr(labels, f"render_{document}", refuse)
    item = new_order(client, auth)
    if document == "manifest":
        code = client.post("/api/v1/manifests", headers=auth, json={
            "kind": "counter_to_courier", "item_ids": [item], "route": "QNG-01"}).json["code"]
        resp = client.get(f"/api/v1/manifests/{code}.pdf", headers=auth)
    else:
        day = client.get(f"/api/v1/orders/{item}", headers=auth).json["run_date"]
        login(client, "courier")
        resp = client.get(f"/api/v1/routes/QNG-01/run/sheet?date={day}")
    assert resp.status_code == 422
    assert "cannot be printed" in resp.json["message"] and "too long to lay out" in str(resp.json)


def test_weekly_report_of_maximum_size_lays_out():
    """The weekly PDF (reports.weekly.render_pdf, reportlab too) with 400 units whose names are 200
    characters without a space, an area name of 200 and figures in the billions."""
    from delivery_service.reports.figures import Level, Row
    from delivery_service.reports.weekly import WeeklyData, render_pdf

    area = ("Khuvựcbáocáo" * 17)[:200]
    big = dict(received=10**9, delivered=10**9, on_time=10**9, failed_attempts=10**9, returned=10**9,
               open=10**9, overdue=10**9)
    rows = [Row(key=i, label=("Phường" * 34)[:200], code=f"{i:05d}", **big) for i in range(400)]
    total = Row(label="total", **{k: v * 400 for k, v in big.items()})
    data = WeeklyData(
        title=f"Báo cáo tuần dịch vụ BCCI — {area} — 16/11–22/11/2026", scope_kind="area",
        start=dt.date(2026, 11, 16), end=dt.date(2026, 11, 22), built_at=dt.datetime(2026, 11, 27, 7, 0),
        today=dt.date(2026, 11, 27), total=total, level=Level.COMMUNE, rows=rows,
        trend=[(dt.date(2026, 11, 16) - dt.timedelta(weeks=7 - i), total) for i in range(8)],
        bands={"delivery_rate": [0.95, 0.9, 0.8], "on_time_rate": [0.95, 0.9, 0.8], "post_share": [0.5, 0.3, 0.1]},
        pending_events=10**6)
    pdf = render_pdf(data)
    count = pages(pdf)
    assert count > 5
    text = pdf_text(pdf)
    bbox = subprocess.run(["pdftotext", "-bbox", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    words = re.findall(r'<word xMin="([\d.-]+)" yMin="[\d.-]+" xMax="([\d.-]+)"', bbox.decode())
    assert words and all(30 <= float(x0) and float(x1) <= 595.28 - 30 for x0, x1 in words)  # in the margins
    assert "00399" in text and "400.000.000.000" in text
    footer = [line for line in text.splitlines() if f"Page {count}" in line][-1]
    assert "…" in footer  # the footer's title is cut to its line, marked, not run off the page


def test_the_dossier_leg_is_printed_the_right_way_round_and_collects_what_the_phone_says(client, auth):
    """Issue 13: on the dossier leg the citizen sends and the agency receives; the label's amount to
    collect is the courier app's (fees + postage due), on the label and on the run sheet; weight prints."""
    from delivery_service.courier.services import to_collect
    from delivery_service.orders.models import DeliveryOrder

    item = new_order(client, auth, direction="dossier_to_agency", appointment_date=None, weight_g=1250,
                     recipient={"name": "Trần Thị Kiều Oanh", "phone": "0905123456"},
                     issuing_agency="Sở Tư pháp tỉnh Quảng Ngãi", postage_vnd=26000, collect_vnd=0)
    label = client.get(f"/api/v1/orders/{item}/label", headers=auth)
    assert label.status_code == 200
    text = " ".join(pdf_text(label.data).split())
    to, sender = text.index("Người nhận / To"), text.index("Người gửi / From")
    assert "Sở Tư pháp tỉnh Quảng Ngãi" in text[to:sender]  # the agency receives
    assert "Trần Thị Kiều Oanh" in text[sender:]  # the citizen sends
    order = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item))
    assert to_collect(order) == 26000 and "THU HỘ / COLLECT 26.000 ₫" in text  # not "Không thu hộ"
    assert "1,25 kg" in text and "Thu 26.000 ₫" in text

    result = new_order(client, auth, postage_vnd=26000, payer="agency", collect_vnd=15000)
    text = " ".join(pdf_text(client.get(f"/api/v1/orders/{result}/label", headers=auth).data).split())
    to, sender = text.index("Người nhận / To"), text.index("Người gửi / From")
    assert "Nguyễn Thị Hoa" in text[to:sender] and "Sở Xây dựng tỉnh Quảng Ngãi" in text[sender:]
    assert "THU HỘ / COLLECT 15.000 ₫" in text and "Đã trả 26.000 ₫" in text


def test_the_run_sheet_shows_a_delivery_window(client, auth):
    item = new_order(client, auth, recipient={"name": "Trần Văn Hẹn", "phone": "0912345679"},
                     delivery_window="morning")
    day = client.get(f"/api/v1/orders/{item}", headers=auth).json["run_date"]
    login(client, "courier")
    text = pdf_text(client.get(f"/api/v1/routes/QNG-01/run/sheet?date={day}").data)
    assert "Trần Văn Hẹn" in text and "Hẹn giờ / Window: 08:00–12:00" in text


def _money(text: str) -> list[int]:
    return [int(m.replace(".", "")) for m in re.findall(r"(\d{1,3}(?:\.\d{3})*) ₫", text)]


def test_the_run_sheet_marks_the_pickup_and_collects_what_the_label_and_the_phone_say(client, auth):
    """Issue 13 (audit G1): on one run, a dossier pickup and a result delivery; the run sheet marks the
    pickup '▲ LẤY HỒ SƠ / PICK UP' and the delivery '▼ GIAO / DELIVER', and for each order the amount
    to collect is the same on its label, on the run sheet and on the courier's phone."""
    dossier = new_order(client, auth, direction="dossier_to_agency", appointment_date=None,
                        recipient={"name": "Trần Thị Kiều Oanh", "phone": "0905123456"},
                        address={"province_code": "51", "commune_code": "21025", "detail": "3 Lê Lợi"},
                        postage_vnd=26000, collect_vnd=0)
    day = client.get(f"/api/v1/orders/{dossier}", headers=auth).json["run_date"]
    result = new_order(client, auth, recipient={"name": "Lê Văn Giao", "phone": "0905123457"},
                       address={"province_code": "51", "commune_code": "21025", "detail": "88 Quang Trung"},
                       postage_vnd=26000, payer="citizen", collect_vnd=15000, appointment_date=day)
    assert client.get(f"/api/v1/orders/{result}", headers=auth).json["run_date"] == day
    label_amount = {}
    for item in (dossier, result):
        text = " ".join(pdf_text(client.get(f"/api/v1/orders/{item}/label", headers=auth).data).split())
        found = re.search(r"THU HỘ / COLLECT (\S+) ₫", text)
        assert found, text
        label_amount[item] = int(found.group(1).replace(".", ""))
    assert label_amount == {dossier: 26000, result: 41000}

    login(client, "courier")
    run = client.get(f"/api/v1/courier/run?date={day}")
    assert run.status_code == 200, run.json
    orders = [o for s in run.json["stops"] for o in s["orders"]] + run.json["unsequenced"]
    phone = {o["item_id"]: o for o in orders}
    assert phone[dossier]["leg"] == "dossier" and phone[result]["leg"] == "result"
    assert {item: phone[item]["to_collect_vnd"] for item in (dossier, result)} == label_amount

    def sheet_rows() -> tuple[dict[str, tuple[str, int]], int]:
        """Each item's leg mark and amount to collect on the run sheet, and the sheet's total."""
        sheet = client.get(f"/api/v1/routes/QNG-01/run/sheet?date={day}")
        assert sheet.status_code == 200
        text = pdf_text(sheet.data)
        marks = list(re.finditer(r"▲ LẤY HỒ SƠ / PICK UP|▼ GIAO / DELIVER", text))
        rows = {}
        for mark, end in zip(marks, [*marks[1:], None], strict=True):
            chunk = text[mark.start():end.start() if end else text.index("Lộ trình / Run sheet", mark.start())]
            (item,) = re.findall(r"RH\d{9}VN", chunk)
            total = re.search(r"Tổng / Total\s+(?:\S+\s+)*?([\d.]+) ₫", chunk)
            amounts = _money(chunk)
            rows[item] = (mark.group(0), int(total.group(1).replace(".", "")) if total else amounts[-1])
        whole = re.search(r"Còn phải thu / Still to collect\s+([\d.]+) ₫", text)
        return rows, int(whole.group(1).replace(".", ""))

    expected = {dossier: ("▲ LẤY HỒ SƠ / PICK UP", label_amount[dossier]),
                result: ("▼ GIAO / DELIVER", label_amount[result])}
    assert sheet_rows() == (expected, 26000 + 41000)  # unsequenced: the orders are listed after the stops
    headers = {"X-CSRFToken": csrf_token(client, "/courier/")}
    assert client.post(f"/api/v1/routes/QNG-01/run/sequence?date={day}", headers=headers).status_code == 200
    assert sheet_rows() == (expected, 26000 + 41000)  # and in their stops once sequenced
    run = client.get(f"/api/v1/courier/run?date={day}").json
    phone = {o["item_id"]: (o["leg"], o["to_collect_vnd"]) for s in run["stops"] for o in s["orders"]}
    assert phone == {dossier: ("dossier", 26000), result: ("result", 41000)}


def _row(text: str, caption: str) -> str:
    """The line of ``pdftotext -layout`` text where a table row's caption starts: its value is on it."""
    return next((line for line in text.splitlines() if caption in line), "")


def test_the_receipt_shows_the_delivery_window(client, auth):
    """Intake takes a delivery window; the citizen's receipt says it, in the words of the order's leg."""
    item = new_order(client, auth, delivery_window="morning")
    text = pdf_text(client.get(f"/api/v1/orders/{item}/receipt", headers=auth).data)
    assert "08:00–12:00" in _row(text, "Khung giờ giao /")  # the caption's row (it wraps: "… Delivery window")
    pickup = new_order(client, auth, direction="dossier_to_agency", appointment_date=None,
                       delivery_window={"from": "14:00", "to": "16:30"})
    text = pdf_text(client.get(f"/api/v1/orders/{pickup}/receipt?size=a4", headers=auth).data)
    assert "14:00–16:30" in _row(text, "Khung giờ nhận hồ sơ /") and "Pickup window" in text
    plain = new_order(client, auth)
    assert "Khung giờ" not in pdf_text(client.get(f"/api/v1/orders/{plain}/receipt", headers=auth).data)


def test_the_label_and_the_bag_manifest_show_the_delivery_window(client, auth):
    item = new_order(client, auth, delivery_window="afternoon")
    plain = new_order(client, auth)
    day = dt.date.fromisoformat(client.get(f"/api/v1/orders/{item}", headers=auth).json["appointment_date"])
    label = " ".join(pdf_text(client.get(f"/api/v1/orders/{item}/label", headers=auth).data).split())
    assert f"{day:%d/%m/%Y} 13:30–17:00" in label  # the appointment row: the date and the window
    time_range = re.compile(r"\d\d:\d\d–\d\d:\d\d")
    assert not time_range.search(pdf_text(client.get(f"/api/v1/orders/{plain}/label", headers=auth).data))
    bag = client.post("/api/v1/manifests", headers=auth, json={
        "kind": "counter_to_courier", "item_ids": [item, plain], "route": "QNG-01"})
    assert bag.status_code == 201, bag.json
    text = " ".join(pdf_text(client.get(f"/api/v1/manifests/{bag.json['code']}.pdf", headers=auth).data).split())
    assert text.count("Hẹn giờ / Window:") == 1 and "13:30–17:00" in text  # only the order that has one
    # Handed back to the counter, the window is past: that manifest leaves it out.
    from delivery_service.accounts.services import SYSTEM
    from delivery_service.orders.services import change_status
    from delivery_service.orders.status import Status

    for step in (Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT, Status.RETURNED_TO_AGENCY):
        change_status(SYSTEM, item, step)  # a return manifest lists items returned (outside review)
    back = client.post("/api/v1/manifests", headers=auth, json={
        "kind": "courier_to_counter", "item_ids": [item], "route": "QNG-01"})
    assert back.status_code == 201, back.json
    text = pdf_text(client.get(f"/api/v1/manifests/{back.json['code']}.pdf", headers=auth).data)
    assert item in text and "Hẹn giờ" not in text and not time_range.search(text)
