"""Batch import of orders through /api/v1/imports: files, per-row results, no half-written rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from delivery_service.extensions import db
from delivery_service.imports.models import ImportBatch, ImportRow, ImportState
from delivery_service.imports.services import COLUMNS
from delivery_service.orders.models import DeliveryOrder, OrderEvent

SOON = dt.date.today() + dt.timedelta(days=3)


def row(**changes: Any) -> dict[str, Any]:
    """A valid flat row for counter QNG-TTHCC; ``changes`` override cells."""
    values: dict[str, Any] = {
        "direction": "result_to_citizen",
        "dossier_code": f"H55.22-{uuid.uuid4().hex[:10]}",
        "procedure_code": "1.011442.000.00.00.H55",
        "procedure_name": "Cấp đổi giấy phép lái xe",
        "issuing_agency": "Sở Xây dựng tỉnh Quảng Ngãi",
        "recipient_name": "Nguyễn Thị Hoa",
        "recipient_phone": "0905123456",
        "province_code": "51",
        "commune_code": "21025",
        "address_detail": "12 Hùng Vương",
        "postage_vnd": "26000",
        "appointment_date": SOON.strftime("%d/%m/%Y"),
    }
    values.update(changes)
    return values


def to_csv(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS, delimiter: str = ",",
           encoding: str = "utf-8-sig") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    for values in rows:
        writer.writerow([values.get(c, "") for c in columns])
    return out.getvalue().encode(encoding)


TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def cp1258(text: str) -> bytes:
    """Text as Windows-1258 stores Vietnamese: base letters precomposed, tone marks combining."""
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            parts = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", "".join(p for p in parts if p not in TONES))
            out += (base + "".join(p for p in parts if p in TONES)).encode("cp1258")
    return bytes(out)


def to_xlsx(rows: list[list[Any]], header: tuple[str, ...] = COLUMNS) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(list(header))
    for values in rows:
        sheet.append(values)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def upload(client: FlaskClient, auth: dict[str, str], content: bytes, name: str = "orders.csv"):
    return client.post("/api/v1/imports", data={"file": (io.BytesIO(content), name)}, headers=auth,
                       content_type="multipart/form-data")


def count(model: type) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def by_line(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {r["line"]: r for r in body["results"]}


BAD_ROWS = [  # (cells, column, message) — lines 3 to 7 of the file, between two good rows
    ({"recipient_phone": "12345"}, "recipient_phone", "Not a valid Vietnamese phone number."),
    ({"province_code": "51", "commune_code": "18229"}, "commune_code",
     "Commune 18229 is not in province 51."),
    ({"appointment_date": (dt.date.today() - dt.timedelta(days=5)).isoformat()}, "appointment_date",
     "The appointment date is in the past."),
    ({"issuing_agency": "  "}, "issuing_agency", "Missing data for required field."),
    ({"recipient_name": "Nguyễn " + "A" * 200}, "recipient_name", "Longer than 200 characters."),
]


@pytest.mark.config(IMPORT_CHUNK_ROWS=3)  # several chunks, with bad rows inside them
def test_csv_stores_good_rows_and_reports_bad_ones(client, auth):
    rows = [row(), *(row(**cells) for cells, _col, _msg in BAD_ROWS), row(direction="dossier_to_agency",
                                                                          appointment_date="")]
    resp = upload(client, auth, to_csv(rows))
    assert resp.status_code == 202, resp.json
    body = resp.json
    assert body["state"] == "done" and body["finished_at"]
    counts = (body["total_rows"], body["created_rows"], body["existing_rows"], body["error_rows"])
    assert counts == (7, 2, 0, 5)
    results = by_line(body)
    assert sorted(results) == list(range(2, 9))
    for line, (_cells, column, message) in enumerate(BAD_ROWS, start=3):
        assert results[line]["status"] == "error" and results[line]["item_id"] is None
        assert results[line]["errors"] == {column: [message]}, line
    stored = {results[2]["item_id"], results[8]["item_id"]}
    assert all(results[n]["status"] == "created" and results[n]["errors"] == {} for n in (2, 8))
    assert count(DeliveryOrder) == 2 and count(OrderEvent) == 4  # created, assigned
    assert set(db.session.scalars(sa.select(DeliveryOrder.item_id))) == stored
    assert resp.headers["Location"] == body["links"]["self"] == f"/api/v1/imports/{body['id']}"
    got = client.get(body["links"]["self"], headers=auth)
    assert got.status_code == 200 and got.json["results"] == body["results"]
    order = client.get(f"/api/v1/orders/{results[2]['item_id']}", headers=auth).json
    assert order["postage_vnd"] == 26000 and order["appointment_date"] == SOON.isoformat()


def test_xlsx_with_numbers_and_dates_in_cells(client, auth):
    header = ("direction", "dossier_code", "procedure_name", "issuing_agency", "recipient_name",
              "recipient_phone", "recipient_id_number", "province_code", "commune_code", "address_detail",
              "postage_vnd", "appointment_date")

    def cells(**changes: Any) -> list[Any]:
        values = {"direction": "result_to_citizen", "dossier_code": f"X-{uuid.uuid4().hex[:8]}",
                  "procedure_name": "Cấp phiếu lý lịch tư pháp", "issuing_agency": "Sở Tư pháp",
                  "recipient_name": "Trần Văn Bình", "recipient_phone": 905123456,  # Excel dropped the 0
                  "recipient_id_number": 51090001234, "province_code": 51, "commune_code": 21025.0,
                  "address_detail": "45 Phan Đình Phùng", "postage_vnd": 26000.0, "appointment_date": SOON}
        values.update(changes)
        return [values[c] for c in header]

    bad = [cells(recipient_phone="12345"), cells(commune_code=18229),
           cells(appointment_date=dt.datetime.combine(dt.date.today() - dt.timedelta(days=5), dt.time())),
           cells(issuing_agency=None), cells(recipient_name="A" * 201), cells(postage_vnd=1.5)]
    rows = [cells(dossier_code=12345), *bad, [], cells(appointment_date=SOON.strftime("%d/%m/%Y"))]
    resp = upload(client, auth, to_xlsx(rows, header), "lô 1.xlsx")
    assert resp.status_code == 202, resp.json
    body = resp.json
    assert body["content_type"] == "xlsx" and body["filename"] == "lô 1.xlsx"
    assert (body["total_rows"], body["created_rows"], body["error_rows"]) == (8, 2, 6)
    results = by_line(body)
    assert 9 not in results  # the blank row is skipped but still counts as a line
    assert results[3]["errors"] == {"recipient_phone": ["Not a valid Vietnamese phone number."]}
    assert results[4]["errors"] == {"commune_code": ["Commune 18229 is not in province 51."]}
    assert results[5]["errors"] == {"appointment_date": ["The appointment date is in the past."]}
    assert results[6]["errors"] == {"issuing_agency": ["Missing data for required field."]}
    assert results[7]["errors"] == {"recipient_name": ["Longer than 200 characters."]}
    assert results[8]["errors"] == {"postage_vnd": ["Not a valid integer."]}
    assert results[2]["status"] == results[10]["status"] == "created"
    order = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == results[2]["item_id"]))
    assert (order.dossier_code, order.recipient_phone, order.recipient_id_number, order.postage_vnd) == (
        "12345", "0905123456", "051090001234", 26000)
    assert order.appointment_date == SOON
    assert count(DeliveryOrder) == 2


def test_windows_code_page_is_refused_and_nothing_stored(client, auth):
    content = cp1258(to_csv([row(recipient_name="Nguyễn Văn An")]).decode("utf-8-sig"))
    assert content.decode("cp1258")
    resp = upload(client, auth, content)
    assert resp.status_code == 422
    (message,) = resp.json["errors"]["files"]["file"]
    assert "CSV UTF-8" in message
    # under the upload's own location, with a code to act on (like a bad file name)
    assert [(d["location"], d["field"], d["code"]) for d in resp.json["details"]] == [
        ("files", "file", "invalid_encoding")]
    assert count(ImportBatch) == 0 and count(DeliveryOrder) == 0


def test_unbalanced_quote_refuses_the_file(client, auth):
    content = to_csv([row(), row()]) + b'"result_to_citizen,H55-1,"Cap doi\r\n'
    resp = upload(client, auth, content)
    assert resp.status_code == 422
    assert "line 4" in resp.json["errors"]["files"]["file"][0]
    assert resp.json["details"][0]["code"] == "malformed_file"
    assert count(ImportBatch) == 0 and count(DeliveryOrder) == 0


def test_wrong_number_of_values_is_a_row_error(client, auth):
    good = to_csv([row()])
    shifted = to_csv([row(address_detail="12, Hùng Vương")]).decode("utf-8-sig").splitlines()[1]
    shifted = shifted.replace('"12, Hùng Vương"', "12, Hùng Vương")  # an unquoted separator
    short = ",".join(str(v) for v in row().values())  # fewer values than columns
    content = good + f"{shifted}\r\n{short}\r\n".encode()
    body = upload(client, auth, content).json
    results = by_line(body)
    assert results[2]["status"] == "created"
    assert results[3]["errors"]["_row"] == [
        f"This line has {len(COLUMNS) + 1} values but the header has {len(COLUMNS)} columns: check the "
        "separators and the quotes."]
    assert results[4]["errors"]["_row"] == [
        f"This line has 12 values but the header has {len(COLUMNS)} columns: check the separators and the quotes."]
    assert count(DeliveryOrder) == 1


def test_value_in_a_column_without_a_name(client, auth):
    def cells() -> list[Any]:
        values = row()
        return [values.get(c) for c in COLUMNS]

    header = (*COLUMNS[:3], None, *COLUMNS[3:])
    one, two, three = cells(), cells(), cells()
    content = to_xlsx([[*one[:3], None, *one[3:]], [*two[:3], "?", *two[3:]], [*three[:3], None, *three[3:],
                                                                                 None, "x"]], header)
    body = upload(client, auth, content, "a.xlsx").json
    results = by_line(body)
    assert [results[n]["status"] for n in (2, 3, 4)] == ["created", "error", "error"]
    assert results[3]["errors"] == {"_row": ["Column D has a value but no name in the first line."]}
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[len(COLUMNS) + 2]  # the columns, the unnamed one, a blank, then "x"
    assert results[4]["errors"] == {"_row": [f"Column {last} has a value but no name in the first line."]}


def test_uploading_the_same_file_again_creates_nothing(client, auth):
    content = to_csv([row(), row(recipient_phone="bad"), row()])
    first = upload(client, auth, content).json
    second = upload(client, auth, content).json
    assert second["id"] != first["id"]
    assert (second["created_rows"], second["existing_rows"], second["error_rows"]) == (0, 2, 1)
    assert [r["item_id"] for r in second["results"]] == [r["item_id"] for r in first["results"]]
    assert count(DeliveryOrder) == 2 and count(OrderEvent) == 4  # created, assigned


def test_duplicate_rows_within_a_file(client, auth):
    twice = row(dossier_code="H55-DUP-1")
    other_direction = {**twice, "direction": "dossier_to_agency"}
    body = upload(client, auth, to_csv([twice, row(), {**twice, "dossier_code": " H55-DUP-1 "},
                                        other_direction])).json
    results = by_line(body)
    assert results[4] == {"line": 4, "status": "error", "item_id": None, "errors": {
        "dossier_code": ["Duplicate of line 2 (same dossier_code and direction)."]}}
    assert [results[n]["status"] for n in (2, 3, 5)] == ["created"] * 3
    assert count(DeliveryOrder) == 3


def test_nfd_text_is_stored_as_nfc_and_vietnamese_headers_work(client, auth):
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Hoà")
    assert nfd != unicodedata.normalize("NFC", nfd)
    values = row(recipient_name=nfd, address_detail=unicodedata.normalize("NFD", "Thôn Phú Lộc"))
    headers = {"dossier_code": "Mã hồ sơ", "recipient_name": "Tên người nhận", "commune_code": "MA_XA"}
    columns = tuple(c for c in COLUMNS if c in values)
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";")  # Excel with Vietnamese regional settings
    writer.writerow([unicodedata.normalize("NFD", headers.get(c, c)) for c in columns])
    writer.writerow([values[c] for c in columns])
    body = upload(client, auth, out.getvalue().encode()).json
    assert body["created_rows"] == 1, body
    order = db.session.scalar(sa.select(DeliveryOrder))
    assert order.recipient_name == "Nguyễn Thị Hoà" == unicodedata.normalize("NFC", order.recipient_name)
    assert order.address_detail == "Thôn Phú Lộc"
    # errors name the columns as the file does
    values = row(recipient_phone="0", dossier_code="H55-X")
    body = upload(client, auth, to_csv([values]).replace(b"recipient_phone", b"SDT nguoi nhan")).json
    assert body["results"][0]["errors"] == {"SDT nguoi nhan": ["Not a valid Vietnamese phone number."]}


@pytest.mark.parametrize(("name", "content", "expected"), [
    ("orders.csv", b"", "The file is empty."),
    ("orders.csv", b"\xef\xbb\xbf", "The file is empty."),
    ("orders.txt", b"direction\r\n", "Only .csv and .xlsx files can be imported."),
    ("orders.xls", b"\xd0\xcf\x11\xe0rest", "Old Excel files (.xls)"),
    ("orders.xlsx", b"direction,dossier_code\r\n", "not an Excel workbook"),
    ("orders.csv", b"PK\x03\x04rest", "Excel workbook, not CSV"),
    ("orders.xlsx", b"PK\x03\x04 not really a zip", "cannot be read as an Excel workbook"),
    ("orders.csv", ",".join(COLUMNS).encode() + b"\r\n", "header but no rows"),
    ("orders.csv", b"direction,dossier_code,colour\r\nboth,1,red\r\n", "Unknown columns: colour."),
    ("orders.csv", b"direction,dossier_code\r\nboth,1\r\n", "Missing required columns: procedure_name,"),
])
def test_files_refused_as_a_whole(client, auth, name, content, expected):
    resp = upload(client, auth, content, name)
    assert resp.status_code == 422, resp.json
    assert expected in " ".join(resp.json["errors"]["files"]["file"])
    assert count(ImportBatch) == 0


@pytest.mark.config(MAX_IMPORT_ROWS=2, MAX_IMPORT_BYTES=4000)
def test_size_limits(client, auth):
    resp = upload(client, auth, to_csv([row(), row(), row()]))
    assert resp.status_code == 422 and "more than 2 rows" in resp.json["errors"]["files"]["file"][0]
    assert upload(client, auth, to_csv([row(), row()])).status_code == 202
    resp = upload(client, auth, to_csv([row(note="x" * 400)] * 2) + b" " * 4000)
    assert resp.status_code == 422 and "larger than 4,000 bytes" in resp.json["errors"]["files"]["file"][0]
    resp = upload(client, auth, to_csv([]) + b"\r\n" * 1100 + to_csv([row()]).split(b"\r\n", 1)[1])
    assert resp.status_code == 422 and "most of them blank" in resp.json["errors"]["files"]["file"][0]


def test_template_is_importable(client, auth):
    resp = client.get("/api/v1/imports/template.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.data.startswith(b"\xef\xbb\xbf")
    lines = resp.data.decode("utf-8-sig").splitlines()
    assert lines[0] == ",".join(COLUMNS) and len(lines) == 2
    body = upload(client, auth, resp.data, "mau.csv").json
    assert body["created_rows"] == 1, body


def test_another_counter_cannot_see_the_batch(client, auth):
    from delivery_service.accounts.models import Role
    from delivery_service.accounts.services import Actor, create_api_client
    from delivery_service.imports.services import get_import

    body = upload(client, auth, to_csv([row()])).json
    _client, other = create_api_client(counter_code="HTI-DUCTHO", name="other counter")
    db.session.commit()
    resp = client.get(f"/api/v1/imports/{body['id']}", headers={"Authorization": f"Bearer {other}"})
    assert resp.status_code == 404
    assert get_import(Actor(label="admin", role=Role.ADMIN), body["id"]).created_rows == 1


@pytest.mark.config(IMPORT_CHUNK_ROWS=2)
def test_rerun_after_a_crash_does_not_duplicate(client, auth):
    from delivery_service.imports.services import run_import

    body = upload(client, auth, to_csv([row(), row(), row(recipient_phone="x"), row(), row()])).json
    assert body["created_rows"] == 4
    # As if the worker died after storing every row but before recording the last chunks' results
    # (its last heartbeat two minutes ago: a batch whose run still beats is left to that run).
    db.session.execute(sa.delete(ImportRow).where(ImportRow.batch_id == body["id"], ImportRow.line > 3))
    db.session.execute(sa.update(ImportBatch).where(ImportBatch.id == body["id"]).values(
        state=ImportState.RUNNING, created_rows=2, existing_rows=0, error_rows=0, finished_at=None,
        heartbeat_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)))
    db.session.commit()
    run_import(body["id"])
    db.session.commit()
    again = client.get(f"/api/v1/imports/{body['id']}", headers=auth).json
    assert again["state"] == "done"
    assert [r["status"] for r in again["results"]] == ["created", "created", "error", "existing", "existing"]
    assert [r["item_id"] for r in again["results"]] == [r["item_id"] for r in body["results"]]
    assert count(DeliveryOrder) == 4 and count(OrderEvent) == 8  # created, assigned
    run_import(body["id"])  # a done batch is left alone
    assert client.get(f"/api/v1/imports/{body['id']}", headers=auth).json == again


def test_openapi_documents_the_upload(client):
    spec = client.get("/api/v1/openapi.json").json
    post = spec["paths"]["/api/v1/imports"]["post"]
    schema = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "202" in post["responses"] and "/api/v1/imports/{import_id}" in spec["paths"]
    assert schema  # a reference to the upload schema with its binary `file`


# --- with Redis: the upload only queues the job, a worker runs it --------------------------------

@pytest.mark.redis
def test_rq_worker_runs_the_import(rq_app, client, auth):
    from rq import SimpleWorker

    resp = upload(rq_app.test_client(), auth, to_csv([row(), row(recipient_phone="1"), row()]))
    assert resp.status_code == 202, resp.json
    assert resp.json["state"] == "pending" and resp.json["results"] == []
    assert count(DeliveryOrder) == 0
    queue = rq_app.extensions["rq_queue"]
    assert queue.count == 1
    SimpleWorker([queue], connection=rq_app.extensions["redis"]).work(burst=True)
    body = client.get(resp.json["links"]["self"], headers=auth).json
    assert body["state"] == "done"
    assert (body["created_rows"], body["error_rows"]) == (2, 1)
    assert count(DeliveryOrder) == 2


def test_weight_column_in_grams(client, auth):
    """The optional weight (khối lượng, whole grams 1..30000) is read like an amount and kept."""
    content = to_csv([row(weight_g="1.250"), row(weight_g=""), row(weight_g="40000")])
    results = by_line(upload(client, auth, content).json)
    assert [results[n]["status"] for n in (2, 3, 4)] == ["created", "created", "error"]
    assert "weight_g" in results[4]["errors"]
    weights = sorted(w is None and -1 or w for w in db.session.scalars(sa.select(DeliveryOrder.weight_g)))
    assert weights == [-1, 1250]


@pytest.mark.config(IMPORT_CHUNK_ROWS=4)
def test_a_row_the_database_refuses_undoes_only_that_row(client, auth, monkeypatch):
    """A chunk is stored under one savepoint; when the database refuses a row (here: its dossier is
    written twice, as a concurrent request storing it meanwhile would), the chunk is stored again
    row by row and only that row is reported."""
    from delivery_service.imports import services
    from delivery_service.orders.services import add_order, add_orders

    rows = [row() for _ in range(6)]
    clash = rows[2]["dossier_code"]

    def add_twice(actor, data, **kwargs):  # noqa: ANN001, ANN003, ANN202
        if data["dossier_code"] == clash:
            add_order(actor, data, **kwargs)
        return add_order(actor, data, **kwargs)

    def add_all_twice(actor, items, **kwargs):  # noqa: ANN001, ANN003, ANN202
        # The chunk's bulk write with its clashing row written twice: the chunk is refused as a whole.
        return add_orders(actor, items + [i for i in items if i[0]["dossier_code"] == clash], **kwargs)

    monkeypatch.setattr(services, "add_order", add_twice)
    monkeypatch.setattr(services, "add_orders", add_all_twice)
    body = upload(client, auth, to_csv(rows)).json
    assert (body["state"], body["created_rows"], body["error_rows"]) == ("done", 5, 1)
    results = by_line(body)
    assert results[4] == {"line": 4, "status": "error", "item_id": None,
                          "errors": {"_row": ["The database refused this row."]}}
    assert count(DeliveryOrder) == 5 and count(OrderEvent) == 10
    assert clash not in set(db.session.scalars(sa.select(DeliveryOrder.dossier_code)))


# --- the bulk path: the same outcome as OrderIn and add_order, row by row --------------------------

def _variants() -> list[dict[str, Any]]:
    """Rows that OrderIn accepts and rows it refuses, in the forms files hold them."""
    later = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    return [
        row(), row(appointment_date=later), row(recipient_phone=" 0905 123 456 "), row(recipient_phone="+84905123456"),
        row(recipient_phone="84905123456"), row(recipient_phone="0205123456"), row(recipient_phone="0123456789"),
        row(recipient_phone="12345"), row(recipient_phone="0905123456789"), row(recipient_phone="00905123456"),
        row(recipient_name="  Nguyễn   Văn\tAn "), row(recipient_name="Nguye\u0302\u0303n"), row(recipient_name="x" * 201),
        row(recipient_name="a\u0007b"), row(note="dòng 1\ndòng 2"), row(note="Gọi trước"), row(procedure_code=""),
        row(recipient_id_number="012345678901"), row(recipient_id_number="12345"), row(recipient_id_number="0123 4567 8901"),
        row(authorised_name="Trần Văn Bình", authorised_phone="0912345678", authorised_id_number="012345678"),
        row(authorised_phone="0912345678"), row(authorised_name="Trần Văn Bình", authorised_phone="xyz"),
        row(postage_vnd="1.200"), row(postage_vnd="-5"), row(postage_vnd="2000000000"), row(postage_vnd="abc"),
        row(weight_g="0"), row(weight_g="30000"), row(weight_g="30001"), row(collect_vnd="15000"),
        row(payer="agency"), row(payer="nobody"), row(exemption="full"), row(exemption="bogus"),
        row(direction="dossier_to_agency", appointment_date=""), row(direction="result_to_citizen", appointment_date=""),
        row(direction="both"), row(direction="sideways"), row(appointment_date="2001-01-01"),
        row(appointment_date=(dt.date.today() + dt.timedelta(days=400)).isoformat()),
        row(appointment_date="31/02/2030"), row(appointment_date=dt.date.today().strftime("%d/%m/%Y")),
        row(delivery_window="sáng"), row(delivery_window="08:00-10:00"), row(delivery_window="05:00-06:00"),
        row(delivery_window="whenever"), row(district_code="212"), row(province_code="5" * 17),
        row(commune_code=""), row(address_detail=""), row(address_detail="x" * 256), row(dossier_code="x" * 65),
        row(province_code="", commune_code="", address_detail="12 Hùng Vương, Cẩm Thành, Quảng Ngãi"),
        row(issuing_agency=""), row(procedure_name="   "),
    ]


def test_the_fast_validation_gives_orderin_output_or_leaves_the_row_to_it(app):
    from marshmallow import ValidationError

    from delivery_service.imports.services import fast_load, row_input
    from delivery_service.orders.schemas import OrderIn
    from delivery_service.orders.services import local_today

    schema, fast_rows = OrderIn(), 0
    for values in _variants():
        data, errors = row_input(values)
        if errors:
            continue
        try:
            expected = schema.load(data)
        except ValidationError:
            expected = None
        got = fast_load(data, local_today())
        assert got is None or got == expected, (values, got, expected)
        fast_rows += got is not None
    assert fast_rows >= 15  # the usual rows do take the fast path


def test_the_fast_phone_check_agrees_with_the_phone_field():
    import random

    from marshmallow import ValidationError

    from delivery_service.fields import normalise_phone
    from delivery_service.imports.services import fast_phone

    rng = random.Random(15)
    numbers = [f"0{p}{rng.randrange(10**7):07d}" for p in range(10, 100) for _ in range(3)]
    numbers += [f"0{rng.randrange(10**9):09d}" for _ in range(300)] + ["0905123456", "+84905123456", "0205123456"]
    for number in numbers:
        try:
            expected = normalise_phone(number)
        except ValidationError:
            expected = None
        assert fast_phone(number) == expected, number


def test_imported_rows_take_route_places_as_one_by_one_intake(client, auth):
    """As tests/test_routing.py::test_capacity_overflows_to_the_backup_then_to_dispatch, in one chunk."""
    from delivery_service.accounts.models import Role
    from delivery_service.accounts.services import Actor
    from delivery_service.orgs.models import PostalRoute
    from delivery_service.routing import services as routing
    from delivery_service.routing.models import RouteDayLoad

    admin = Actor(label="admin", role=Role.ADMIN)
    routing.set_coverage(admin, "QNG-01", capacity=2, backup="QNG-02")
    routing.set_coverage(admin, "QNG-02", capacity=1)
    body = upload(client, auth, to_csv([row() for _ in range(5)])).json
    orders = [db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == r["item_id"]))
              for r in body["results"]]
    codes = dict(db.session.execute(sa.select(PostalRoute.id, PostalRoute.code)).all())
    assert [(codes.get(o.route_id), o.dispatch) for o in orders] == [
        ("QNG-01", None), ("QNG-01", None), ("QNG-02", None), (None, "over_capacity"), (None, "over_capacity")]
    reasons = [db.session.scalars(sa.select(OrderEvent.reason).where(OrderEvent.order_id == o.id)
                                  .order_by(OrderEvent.id)).all() for o in orders]
    assert reasons == [[None, "commune"], [None, "commune"], [None, "overflow"], [None], [None]]
    loads = dict(db.session.execute(sa.select(PostalRoute.code, RouteDayLoad.orders).join(
        RouteDayLoad, RouteDayLoad.route_id == PostalRoute.id)).all())
    assert loads == {"QNG-01": 2, "QNG-02": 1}


@pytest.mark.config(IMPORT_CHUNK_ROWS=3)
def test_events_serials_and_results_of_chunks(client, auth):
    """Every stored row has its S10 id, its created (and assigned) event with the import's note, in
    the rows' order; the results are read a page at a time."""
    body = upload(client, auth, to_csv([row() for _ in range(7)] + [row(recipient_phone="1")])).json
    assert (body["created_rows"], body["error_rows"]) == (7, 1)
    orders = db.session.scalars(sa.select(DeliveryOrder).order_by(DeliveryOrder.id)).all()
    assert [o.item_id for o in orders] == [r["item_id"] for r in body["results"][:7]]
    assert sorted(o.item_id[2:11] for o in orders) == [o.item_id[2:11] for o in orders]  # serials in line order
    notes = db.session.scalars(sa.select(OrderEvent.note).where(OrderEvent.note.is_not(None))
                               .order_by(OrderEvent.id)).all()
    assert notes == [f"Import #{body['id']}, line {line}" for line in range(2, 9)]
    page = client.get(f"/api/v1/imports/{body['id']}?results_offset=2&results_limit=3", headers=auth).json
    assert [r["line"] for r in page["results"]] == [4, 5, 6]
    assert page["links"]["next_results"].endswith("results_offset=5&results_limit=3")
    last = client.get(page["links"]["next_results"], headers=auth).json
    assert [r["line"] for r in last["results"]] == [7, 8, 9] and "next_results" not in last["links"]
    assert client.get(f"/api/v1/imports/{body['id']}?results_limit=0", headers=auth).status_code == 422
