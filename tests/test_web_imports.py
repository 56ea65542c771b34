"""Batch import pages: upload, template download, per-row results, scope, auto-refresh."""

from __future__ import annotations

import io
import re

import pytest
from conftest import csrf_token, login
from web_helpers import counter_id, make_user, order_count

from delivery_service.extensions import db
from delivery_service.imports.models import ImportBatch, ImportState

pytest.importorskip("delivery_service.imports.services")


def _upload(client, content: bytes, filename: str = "don.csv", **fields: str):
    data = {"csrf_token": csrf_token(client, "/counter/imports/new"),
            "file": (io.BytesIO(content), filename), **fields}
    return client.post("/counter/imports/new", data=data, content_type="multipart/form-data")


def _template(client) -> bytes:
    resp = client.get("/counter/imports/template.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    return resp.data


def test_upload_the_template_and_read_the_result(client):
    login(client, "counter")
    page = client.get("/counter/imports/new").get_data(as_text=True)
    assert "/counter/imports/template.csv" in page and 'enctype="multipart/form-data"' in page
    content = _template(client)
    before = order_count()
    resp = _upload(client, content)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:1500]
    assert re.fullmatch(r"/counter/imports/\d+", resp.headers["Location"])
    assert order_count() == before + 1
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Hoàn tất" in html and 'http-equiv="refresh"' not in html
    item_id = re.search(r'href="/counter/orders/(RH\d{9}VN)"', html).group(1)
    assert "Đã tạo đơn" in html
    assert client.get(f"/counter/orders/{item_id}").status_code == 200

    again = _upload(client, content)
    html = client.get(again.headers["Location"]).get_data(as_text=True)
    assert order_count() == before + 1
    assert "Đã có từ trước" in html and item_id in html


def test_bad_rows_are_listed_with_translated_messages_and_good_rows_kept(client):
    login(client, "counter")
    header, example = _template(client).decode("utf-8-sig").splitlines()[:2]
    bad = example.replace("0905123456", "12345").replace(",21025,", ",18229,")
    bad = bad.replace("000.00.18.H55-261121-0042", "H55-BAD-1")
    before = order_count()
    resp = _upload(client, "\r\n".join([header, example, bad]).encode())
    assert resp.status_code == 303
    assert order_count() == before + 1
    batch = db.session.get(ImportBatch, int(resp.headers["Location"].rsplit("/", 1)[1]))
    db.session.refresh(batch)
    assert (batch.created_rows, batch.error_rows) == (1, 1)
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Số điện thoại Việt Nam không hợp lệ." in html
    assert "Số điện thoại, cột recipient_phone" in html
    assert 'class="row-error"' in html and "<td>3</td>" in html  # the file's line number


def test_a_file_that_cannot_be_read_is_refused_on_the_upload_page(client):
    login(client, "counter")
    before = order_count()
    resp = _upload(client, b"just some text", filename="notes.txt")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Tệp chưa được nhập." in html and "Chỉ nhập được tệp .csv và .xlsx." in html
    assert order_count() == before
    token = csrf_token(client, "/counter/imports/new")
    resp = client.post("/counter/imports/new", data={"csrf_token": token}, content_type="multipart/form-data")
    assert resp.status_code == 422 and "Hãy chọn tệp CSV hoặc XLSX." in resp.get_data(as_text=True)


def test_imports_of_another_counter_are_not_found(client):
    make_user("ductho")
    login(client, "ductho")
    resp = _upload(client, _template(client).replace(b",51,", b",42,").replace(b",21025,", b",18229,"))
    assert resp.status_code == 303
    location = resp.headers["Location"]
    client.post("/logout", data={"csrf_token": csrf_token(client, "/counter")})
    login(client, "counter")
    assert client.get(location).status_code == 404


def test_a_running_import_page_refreshes_itself(client):
    batch = ImportBatch(counter_id=counter_id("QNG-TTHCC"), filename="lon.csv", content_type="csv",
                        content=b"x", state=ImportState.RUNNING, total_rows=900, created_rows=250)
    db.session.add(batch)
    db.session.commit()
    login(client, "counter")
    html = client.get(f"/counter/imports/{batch.id}").get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="2">' in html
    assert "Đang nhập" in html and "900" in html and "250" in html


def test_admin_chooses_the_counter_of_an_import(client):
    login(client, "admin")
    assert 'name="counter_id"' in client.get("/counter/imports/new").get_data(as_text=True)
    resp = _upload(client, _template(client))
    assert resp.status_code == 422
    assert "Hãy chọn quầy tiếp nhận các đơn này." in resp.get_data(as_text=True)
    resp = _upload(client, _template(client), counter_id=str(counter_id("QNG-TTHCC")))
    assert resp.status_code == 303


def test_a_long_import_shows_its_results_a_page_at_a_time(client):
    login(client, "counter")
    header, example = _template(client).decode("utf-8-sig").splitlines()[:2]
    rows = [example.replace("000.00.18.H55-261121-0042", f"H55-PAGE-{i}") for i in range(502)]
    rows[501] = rows[501].replace("0905123456", "12345")
    resp = _upload(client, "\r\n".join([header, *rows]).encode())
    assert resp.status_code == 303
    first = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert first.count('<tr class="') == 500 and "Trang 1 / 2." in first and "?page=2" in first
    second = client.get(resp.headers["Location"] + "?page=2").get_data(as_text=True)
    assert second.count('<tr class="') == 2 and "Trang 2 / 2." in second and 'rel="prev"' in second
    assert '<td>503</td>' in second and "row-error" in second
    assert client.get(resp.headers["Location"] + "?page=99").get_data(as_text=True).count('<tr class="') == 2
