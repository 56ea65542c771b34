"""Defects found by counter staff on the printing pages (exploratory test, December 2026): manifests
naming another route's courier, "print all" printing more than the page lists, the amount to collect
differing between label, receipt and manifest, a cancelled order's receipt, the admin's "In nhãn"
link, dossier codes broken on manifests, and the receipt's wording on the dossier leg."""

from __future__ import annotations

import datetime as dt
import io
import re

import sqlalchemy as sa
from conftest import csrf_token, login
from pypdf import PdfReader
from test_printing import new_order, pdf_text, prints

from delivery_service.extensions import db
from delivery_service.printing.models import LabelPrint, Manifest
from labels import ManifestData, ManifestKind, ManifestLine, Party, render_manifest

QNG_02 = {"province_code": "51", "commune_code": "21172", "detail": "Tổ 7, đường Lê Lợi"}
HTI = {"province_code": "42", "commune_code": "18229", "detail": "Thôn 1"}


def manifests() -> int:
    db.session.rollback()
    return db.session.scalar(sa.select(sa.func.count()).select_from(Manifest))


def flat(text: str) -> str:
    return " ".join(text.split())


# --- 1. a manifest's items are all on its route -----------------------------------------------------

def test_a_manifest_refuses_items_of_another_route_per_item_and_creates_nothing(client, auth):
    one = new_order(client, auth)
    two = new_order(client, auth, address=QNG_02)
    assert client.get(f"/api/v1/orders/{two}", headers=auth).json["route_code"] == "QNG-02"
    for route, items, wrong in (("HTI-01", [one], [one]), ("QNG-01", [one, two], [two])):
        resp = client.post("/api/v1/manifests", headers=auth,
                           json={"kind": "counter_to_courier", "item_ids": items, "route": route})
        assert resp.status_code == 422, resp.json
        messages = resp.json["errors"]["json"]["item_ids"]  # per field, per item
        assert len(messages) == len(wrong)
        for item, message in zip(wrong, messages, strict=True):
            # the API's English, one language (the counter page translates it, below)
            assert item in message and f"not on route {route}" in message and "tuyến" not in message
    assert manifests() == 0
    # items of two routes and no route chosen: which courier? refused, not guessed
    mixed = client.post("/api/v1/manifests", headers=auth, json={"kind": "counter_to_courier", "item_ids": [one, two]})
    assert mixed.status_code == 422 and "route" in str(mixed.json) and manifests() == 0
    # one route: that route's courier
    made = client.post("/api/v1/manifests", headers=auth, json={"kind": "counter_to_courier", "item_ids": [two]})
    assert made.status_code == 201, made.json
    assert "Tuyến / Route: QNG-02" in flat(pdf_text(client.get(made.json["pdf"], headers=auth).data))


def test_the_page_offers_the_items_routes_and_refuses_another_one(client, auth):
    one = new_order(client, auth)
    two = new_order(client, auth, address=QNG_02)
    login(client, "counter")
    page = client.get("/counter/labels").get_data(as_text=True)
    offered = re.findall(r'<option value="([A-Z]{3}-\d\d)">', page)
    assert offered == ["QNG-01", "QNG-02"]  # not every route of the country (HTI-01 exists)
    token = csrf_token(client, "/counter/labels")
    resp = client.post("/counter/manifests", data={"csrf_token": token, "item_ids": [one, two], "route": "QNG-01"},
                       follow_redirects=True)
    text = resp.get_data(as_text=True)
    assert resp.status_code == 200 and two in text and f"{two} thuộc tuyến QNG-02, không phải tuyến QNG-01" in text
    assert "not on route" not in text
    # in English, English only; no route chosen for items of two routes: the page says which to choose
    client.get("/counter/labels?lang=en")
    resp = client.post("/counter/manifests", data={"csrf_token": token, "item_ids": [one, two]}, follow_redirects=True)
    text = resp.get_data(as_text=True)
    assert "Choose the route of the courier taking the bag." in text and "bưu tá nhận túi" not in text
    resp = client.post("/counter/manifests", data={"csrf_token": token, "item_ids": [one, two], "route": "QNG-01"},
                       follow_redirects=True)
    text = resp.get_data(as_text=True)
    assert f"{two} is on route QNG-02, not on route QNG-01." in text and "không phải tuyến" not in text
    assert manifests() == 0


# --- 2. one set of unprinted labels ---------------------------------------------------------------------

def test_print_all_prints_exactly_the_unprinted_items_the_page_lists(client, auth):
    from delivery_service.accounts.services import SYSTEM
    from delivery_service.orders.services import change_status
    from delivery_service.orders.status import Status

    printed = new_order(client, auth)
    assert client.get(f"/api/v1/orders/{printed}/label", headers=auth).status_code == 200
    waiting = [new_order(client, auth) for _ in range(2)]
    with_courier = new_order(client, auth)  # failed attempt: the courier has it, label unprinted
    for step in (Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.FAILED_ATTEMPT):
        change_status(SYSTEM, with_courier, step)
    dossier = new_order(client, auth, direction="dossier_to_agency", appointment_date=None)
    login(client, "counter")
    page = client.get("/counter/labels").get_data(as_text=True)
    listed_unprinted = re.findall(r'data-item="(\w+)" data-printed="0"', page)
    assert sorted(listed_unprinted) == sorted(waiting)  # the items to hand over
    assert "(3 nhãn chưa in)" in page  # and the dossier's pickup label, which goes with the courier
    assert with_courier not in page
    token = csrf_token(client, "/counter/labels")
    batch = client.post("/counter/labels", data={"csrf_token": token, "which": "all"})
    assert batch.status_code == 200 and len(PdfReader(io.BytesIO(batch.data)).pages) == 3
    assert all(prints(i) for i in [*waiting, dossier])
    assert prints(with_courier) == []  # already with the courier: never printed by "print all"
    # the API's empty batch is the same set: nothing is left
    assert client.post("/api/v1/labels/batches", json={}, headers=auth).status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LabelPrint)) == 4


# --- 3. label, receipt and manifest agree on the amount to collect --------------------------------------

def _label_collect(client, auth, item: str) -> int:
    text = flat(pdf_text(client.get(f"/api/v1/orders/{item}/label", headers=auth).data))
    found = re.search(r"THU HỘ / COLLECT ([\d.]+) ?₫", text)
    return int(found.group(1).replace(".", "")) if found else 0


def _receipt_collect(client, auth, item: str) -> int:
    text = flat(pdf_text(client.get(f"/api/v1/orders/{item}/receipt", headers=auth).data))
    found = re.search(r"Thu hộ khi (?:giao|nhận hồ sơ) / To collect (?:on delivery|at pickup) ([\d.]+) ?₫", text)
    assert found, text
    return int(found.group(1).replace(".", ""))


def _manifest_collect(client, auth, item: str) -> int:
    made = client.post("/api/v1/manifests", headers=auth,
                       json={"kind": "counter_to_courier", "item_ids": [item], "route": "QNG-01"})
    assert made.status_code == 201, made.json
    text = flat(pdf_text(client.get(made.json["pdf"], headers=auth).data))
    found = re.search(r"Tổng thu hộ / Total to collect ([\d.]+) ?₫", text)
    assert found, text
    return int(found.group(1).replace(".", ""))


def test_label_receipt_and_manifest_collect_the_same_amount_as_the_phone(client, auth):
    from delivery_service.courier.services import to_collect
    from delivery_service.orders.models import DeliveryOrder

    cases = {
        new_order(client, auth, postage_vnd=26000, collect_vnd=0): 26000,  # the exploratory test's order
        new_order(client, auth, postage_vnd=26000, payer="agency", collect_vnd=15000): 15000,
        new_order(client, auth, postage_vnd=26000, payer="citizen", collect_vnd=15000): 41000,
        new_order(client, auth, postage_vnd=26000, exemption="heroic_mother", collect_vnd=0): 0,
    }
    for item, expected in cases.items():
        order = db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item))
        assert to_collect(order) == expected
        found = (_label_collect(client, auth, item), _receipt_collect(client, auth, item),
                 _manifest_collect(client, auth, item))
        assert found == (expected,) * 3, (item, found)


# --- 4. a cancelled order's receipt -----------------------------------------------------------------------

def test_a_cancelled_orders_receipt_says_so_and_shows_no_delivery_code(client, auth):
    from delivery_service.courier.services import delivery_code

    item = new_order(client, auth, recipient={"name": "Lê Thị Hủy", "phone": "0912345678"})
    live = flat(pdf_text(client.get(f"/api/v1/orders/{item}/receipt", headers=auth).data))
    assert delivery_code(item) in live and "CANCELLED" not in live
    assert client.post(f"/api/v1/orders/{item}/events", json={"status": "cancelled"}, headers=auth).status_code == 201
    resp = client.get(f"/api/v1/orders/{item}/receipt", headers=auth)
    assert resp.status_code == 200
    text = flat(pdf_text(resp.data))
    assert "ĐÃ HỦY / CANCELLED" in text and "Lê Thị Hủy" in text
    assert "Mã nhận hàng" not in text and "Delivery code" not in text and delivery_code(item) not in text
    assert "ĐÃ HỦY / CANCELLED: 0 ₫" in text  # nothing to collect


# --- 5. the admin's "In nhãn" ----------------------------------------------------------------------------

def test_the_admins_labels_link_asks_for_the_counter_instead_of_404(client, auth):
    from delivery_service.orgs.models import Counter

    item = new_order(client, auth)
    login(client, "admin")
    for path in ("/counter/labels", "/counter/returns"):
        page = client.get(path)
        assert page.status_code == 200, path
        html = page.get_data(as_text=True)
        counter = db.session.scalar(sa.select(Counter).where(Counter.code == "QNG-TTHCC"))
        assert f"{path}?counter_id={counter.id}" in html and "QNG-TTHCC" in html and "HTI-DUCTHO" in html
    chosen = client.get(f"/counter/labels?counter_id={counter.id}").get_data(as_text=True)
    assert f'data-item="{item}"' in chosen
    assert client.get("/counter/labels?counter_id=999999").status_code == 404


# --- 6. dossier codes on one line ---------------------------------------------------------------------------

def test_the_manifest_keeps_a_dossier_code_on_one_line(client, auth):
    code = "000.00.18.H55-261205-0105"
    item = new_order(client, auth, dossier_code=code)
    made = client.post("/api/v1/manifests", headers=auth,
                       json={"kind": "counter_to_courier", "item_ids": [item], "route": "QNG-01"})
    assert made.status_code == 201
    text = pdf_text(client.get(made.json["pdf"], headers=auth).data)
    assert code in text  # one line, not "000.00.18.H55-26120" over "5-0105"


def test_a_dossier_code_too_long_for_one_line_wraps_at_its_separators_only(tmp_path):
    import subprocess

    codes = ["000.00.18.H55-261205-0105", "H38.99-" + "1234567890." * 5 + "0001", "X" * 40]
    data = ManifestData(
        manifest_id="BB261205000001", kind=ManifestKind.COUNTER_TO_COURIER, giver=Party("Quầy"),
        receiver=Party("Bưu tá"), created_at=dt.datetime(2026, 12, 5, 9, 0),
        lines=tuple(ManifestLine(item_id=f"RR{n:08d}0VN", dossier_code=c, recipient_name="A", address="B")
                    for n, c in enumerate(codes, start=1)))
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=render_manifest(data), capture_output=True,
                         check=True).stdout.decode()
    assert codes[0] in out
    row = out[out.index("RR000000020VN") + 13:out.index("RR000000030VN")]
    pieces = [p for p in row.split() if p not in ("A", "B", "—", "3")]  # 3: the next row's No.
    assert "".join(pieces) == codes[1] and len(pieces) > 1  # all there, in order, over lines
    assert all(p[-1] in ".-" for p in pieces[:-1])  # cut after separators only, never in a number
    assert "X" * 40 in "".join(out.split())  # a code without separators still prints whole


# --- 7. the receipt's words follow the direction ------------------------------------------------------------

def test_the_dossier_receipt_calls_the_citizen_the_sender(client, auth):
    dossier = new_order(client, auth, direction="dossier_to_agency", appointment_date=None,
                        recipient={"name": "Trần Thị Kiều Oanh", "phone": "0905123456"})
    text = flat(pdf_text(client.get(f"/api/v1/orders/{dossier}/receipt", headers=auth).data))
    assert "Người gửi / Sender Trần Thị Kiều Oanh" in text and "Người nhận / Recipient" not in text
    result = new_order(client, auth, recipient={"name": "Lê Văn Giao", "phone": "0905123457"})
    text = flat(pdf_text(client.get(f"/api/v1/orders/{result}/receipt", headers=auth).data))
    assert "Người nhận / Recipient Lê Văn Giao" in text and "Người gửi / Sender" not in text


# --- 8. characters beyond U+FFFF copy out of the PDF as they print --------------------------------------

def test_an_emoji_in_a_name_copies_out_of_label_and_receipt_as_itself(client, auth):
    item = new_order(client, auth, recipient={"name": "Hoa 😀 Lan", "phone": "0905123456"})
    for path in (f"/api/v1/orders/{item}/label", f"/api/v1/orders/{item}/receipt"):
        text = pdf_text(client.get(path, headers=auth).data)
        assert "Hoa 😀 Lan" in text and "ὠ" not in text, path
