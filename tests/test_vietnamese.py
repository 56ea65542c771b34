"""Vietnamese done properly: collation of every list, search without diacritics, labels of codes,
full names of actors, and tracking links that follow the address the service is reached at."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from conftest import login
from web_helpers import make_order

from delivery_service.accounts.models import User
from delivery_service.accounts.services import SYSTEM, Actor
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import change_status, search_orders
from delivery_service.orders.status import Status
from delivery_service.printing.models import PrintJob
from delivery_service.tracking import links
from delivery_service.units.services import unit_index
from delivery_service.vietnamese import search_key, sort_key, sorted_vi

# The order of the Vietnamese alphabet: a ă â b c d đ e ê … o ô ơ … u ư …; tones after the letter.
ORDERED = ["An Giang", "Anh Tuấn", "Ánh Tuyết", "Ăn", "Ân", "Bắc Ninh", "Cà Mau", "Cao Bằng", "Dak Lak",
           "Điện Biên", "Đồng Nai", "Hà Nội", "Hải Phòng", "Ô Môn", "Ơn", "Tây Ninh",
           "Thành phố Hồ Chí Minh", "Tuyên Quang", "Ưng Hòa", "Vĩnh Long"]


def test_sort_key_is_the_vietnamese_alphabet():
    shuffled = sorted(ORDERED, key=lambda s: (len(s) * 7919) % 13 + ord(s[-1]))
    assert sorted_vi(shuffled) == ORDERED
    assert sort_key("Cà Mau") < sort_key("Cao Bằng")  # plain code points put "Cao" first
    assert sort_key("Dak Lak") < sort_key("Điện Biên") < sort_key("Vĩnh Long")  # Đ is U+0110, after V
    assert sort_key("Ánh") == sort_key("A\u0301nh")  # NFD input sorts like NFC


def test_search_key_drops_case_and_diacritics_and_maps_d_bar():
    assert search_key("Ánh  Tuyết") == "anh tuyet"
    assert search_key("ĐẶNG Văn Đức") == "dang van duc"
    assert search_key("Nguyễn Thị Hoa") == search_key("NGUYEN THI HOA") == "nguyen thi hoa"
    assert search_key("A\u0301nh") == "anh"
    assert search_key(None) == ""


def test_units_are_in_vietnamese_order_in_the_api_and_on_the_form(client, auth):
    index = unit_index()
    for parent_id, kids in index.children.items():
        names = [u.name for u in kids]
        assert names == sorted_vi(names), parent_id
    provinces = client.get("/api/v1/units").json
    assert [p["name"] for p in provinces] == sorted_vi(p["name"] for p in provinces)
    da_nang = next(p for p in provinces if p["code"] == "48")
    communes = client.get(f"/api/v1/units?parent={da_nang['id']}").json
    names = [c["name"] for c in communes]
    assert names == sorted_vi(names) and len(names) > 50
    # "Xã Đông Giang" comes after "Xã Duy Xuyên" and before "Xã Vu Gia"; code points put Đ after V
    x_d = [n for n in names if n.startswith("Xã D")]
    x_dd = [n for n in names if n.startswith("Xã Đ")]
    x_v = [n for n in names if n.startswith("Xã V")]
    assert x_d and x_dd and x_v
    assert max(map(names.index, x_d)) < min(map(names.index, x_dd))
    assert max(map(names.index, x_dd)) < min(map(names.index, x_v))
    login(client, "counter")
    form = client.get("/counter/orders/new").get_data(as_text=True)
    select = re.search(r'<select[^>]*name="province_code".*?</select>', form, re.S).group(0)
    shown = re.findall(r"<option value=\"\d+\"[^>]*>([^<]+)</option>", select)
    assert shown == sorted_vi(shown) and len(shown) == len(provinces)


def test_search_ignores_diacritics_and_case(client):
    tuyet = make_order(recipient={"name": "Ánh Tuyết", "phone": "0905123456"})
    duc = make_order(recipient={"name": "Đặng Văn Đức", "phone": "0905123456"})
    db.session.commit()
    assert db.session.get(DeliveryOrder, tuyet.id).recipient_search_key == "anh tuyet"
    for query, wanted in (("anh tuyet", tuyet), ("ÁNH TUYẾT", tuyet), ("Tuyet", tuyet),
                          ("dang van duc", duc), ("ĐỨC", duc)):
        found = search_orders(SYSTEM, query)
        assert [o.id for o in found.orders] == [wanted.id], query
        assert found.total == 1
    login(client, "counter")
    html = client.get(f"/counter/search?q={quote('anh tuyet')}").get_data(as_text=True)
    assert tuyet.item_id in html and "(1 đơn)" in html


def test_search_counts_all_matches_and_pages_through_them(client):
    names = ["Nguyễn Văn An", "Nguyễn Thị Bích", "NGUYỄN HỮU CƯỜNG"]
    made = [make_order(recipient={"name": names[i % 3], "phone": "0905123456"}) for i in range(59)]
    make_order(recipient={"name": "Trần Thị Mai", "phone": "0905123456"})
    db.session.commit()
    first = search_orders(SYSTEM, "nguyen", per_page=50)
    assert first.total == 59 and first.pages == 2 and len(first.orders) == 50
    second = search_orders(SYSTEM, "Nguyễn", page=2, per_page=50)
    assert second.total == 59 and len(second.orders) == 9
    assert {o.id for o in first.orders} | {o.id for o in second.orders} == {o.id for o in made}
    login(client, "counter")
    html = client.get(f"/counter/search?q={quote('Nguyễn')}").get_data(as_text=True)
    assert "(59 đơn)" in html and "Trang 1/2" not in html  # the count of all, not of the page
    assert 'name="page" value="2"' in html and html.count('class="item-id"') <= 50 + 5
    page2 = client.get(f"/counter/search?q={quote('Nguyễn')}&page=2").get_data(as_text=True)
    assert sum(o.item_id in page2 for o in made) == 9
    assert sum(o.item_id in html for o in made) == 50


def test_order_page_shows_vietnamese_reasons_and_full_names(client):
    order = make_order()  # placed on its route by the system: reason "commune"
    admin = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "admin")))
    for target in (Status.ASSIGNED, Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY):
        if target is not Status.ASSIGNED or db.session.get(DeliveryOrder, order.id).status is Status.CREATED:
            change_status(admin, order.item_id, target)
    change_status(SYSTEM, order.item_id, Status.FAILED_ATTEMPT, reason="not_home")
    login(client, "counter")
    html = client.get(f"/counter/orders/{order.item_id}").get_data(as_text=True)
    history = html.split("Lịch sử xử lý", 1)[1]
    assert "Không có người nhận tại nhà" in history
    assert "Hệ thống (tự động)" in history and "Quản trị hệ thống" in history
    for code in (">not_home", ">system<", ">commune", ">admin<"):
        assert code not in history, code


def test_actor_names_are_full_names(app):
    from delivery_service.web.display import actor_name

    with app.test_request_context("/?lang=vi"):
        _names_in_vietnamese(actor_name)


def _names_in_vietnamese(actor_name) -> None:
    assert actor_name("courier") == "Lê Văn Phát"
    assert actor_name("counter") == "Trần Thị Quầy"
    assert actor_name("system") == "Hệ thống (tự động)"
    assert actor_name("api:demo one-stop system") == "demo one-stop system (qua API)"
    assert actor_name("no-such-user") == "no-such-user"


def _zpl_link(resp) -> str:
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return re.search(r"\^FDMA,([^\^]+)\^FS", resp.get_data(as_text=True)).group(1)


def test_tracking_link_follows_the_address_the_service_is_reached_at(client, auth):
    item = client.post("/api/v1/orders", json=_payload(), headers=auth).json["item_id"]
    resp = client.get(f"/api/v1/orders/{item}/label?format=zpl", headers=auth,
                      base_url="http://192.0.2.7:8123")
    assert _zpl_link(resp) == f"http://192.0.2.7:8123/t/{item}"
    with app_context_without_request(client):
        assert links.tracking_url(item) == f"{links.FALLBACK_BASE_URL}/t/{item}"
        links.use_base_url("https://tra.example.vn")
        assert links.tracking_url(item) == f"https://tra.example.vn/t/{item}"


@pytest.mark.config(PUBLIC_BASE_URL="https://tracuu.buudien.example.vn/")
def test_the_setting_wins_when_set(client, auth):
    item = client.post("/api/v1/orders", json=_payload(), headers=auth).json["item_id"]
    resp = client.get(f"/api/v1/orders/{item}/label?format=zpl", headers=auth,
                      base_url="http://192.0.2.7:8123")
    assert _zpl_link(resp) == f"https://tracuu.buudien.example.vn/t/{item}"


@pytest.mark.config(LABEL_ASYNC_THRESHOLD=1)
def test_a_background_batch_prints_the_askers_address(client, auth):
    items = [client.post("/api/v1/orders", json=_payload(), headers=auth).json["item_id"] for _ in range(2)]
    resp = client.post("/api/v1/labels/batches", json={"item_ids": items, "format": "zpl"}, headers=auth,
                       base_url="http://192.0.2.7:8123")
    assert resp.status_code in (200, 201, 202), resp.get_data(as_text=True)[:300]
    job = db.session.scalars(sa.select(PrintJob).order_by(PrintJob.id.desc())).first()
    assert job.public_base_url == "http://192.0.2.7:8123"
    file = client.get(f"/api/v1/labels/batches/{job.id}/file", headers=auth)
    assert file.status_code == 200
    found = re.findall(r"\^FDMA,([^\^]+)\^FS", file.get_data(as_text=True))
    assert sorted(found) == sorted(f"http://192.0.2.7:8123/t/{i}" for i in items)


def _payload():
    from conftest import order_payload

    return order_payload()


class app_context_without_request:  # noqa: N801 - used as a context manager
    """A fresh app context (a job's), with no request."""

    def __init__(self, client) -> None:
        self.ctx = client.application.app_context()

    def __enter__(self):
        return self.ctx.__enter__()

    def __exit__(self, *exc):
        return self.ctx.__exit__(*exc)


def test_demo_history_has_many_distinct_names_addresses_and_appointment_dates(app):
    from delivery_service.demo.history import PREFIX, load_history

    list(load_history(weeks=3))
    rows = db.session.execute(sa.select(DeliveryOrder.recipient_name, DeliveryOrder.address_detail,
                                        DeliveryOrder.appointment_date, DeliveryOrder.recipient_search_key)
                              .where(DeliveryOrder.dossier_code.startswith(PREFIX))).all()
    assert len(rows) > 300
    assert len({r.recipient_name for r in rows}) > 200
    assert len({r.address_detail for r in rows}) > 200
    assert all(r.appointment_date is not None for r in rows)
    assert all(r.recipient_search_key == search_key(r.recipient_name) for r in rows)


def test_migration_0015_fills_the_key_of_existing_orders(app):
    from flask_migrate import downgrade, upgrade

    order = make_order(recipient={"name": "Đoàn Thị Ánh Tuyết", "phone": "0905123456"})
    db.session.commit()
    db.session.remove()
    downgrade(revision="0014")
    upgrade()
    key = db.session.scalar(sa.text("SELECT recipient_search_key FROM delivery_orders WHERE id = :id"),
                            {"id": order.id})
    assert key == "doan thi anh tuyet"
    assert [o.id for o in search_orders(SYSTEM, "anh tuyet").orders] == [order.id]
