"""The day plan, a route's run and the webhooks page speak the reader's language: Vietnamese by
default, English with ?lang=en (once chosen, the session keeps it), never both at once."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login
from web_helpers import make_order

from delivery_service.accounts.models import ApiClient
from delivery_service.extensions import db
from delivery_service.orders.services import local_today
from delivery_service.orgs.models import PostOffice
from delivery_service.webhooks import services as webhooks


def text_of(page: str) -> str:
    """The page's words as a reader sees them: no tags, entities decoded, spaces collapsed."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


# "Tiếng Việt / English": a word, a slash, a word ("3 / 5" orders of a capacity is no pair)
PAIR = re.compile(r"[^\W\d_] / [^\W\d_]")


def main_text(page: str) -> str:
    """The words of the page's <main> (the flash messages included)."""
    return text_of(page.split("<main", 1)[1].split("</main>", 1)[0])


def _orders() -> None:
    today = local_today().isoformat()
    for n, (commune, detail) in enumerate([("21025", "12 Hùng Vương"), ("21028", "45 Phan Đình Phùng"),
                                           ("21172", "Thôn 3")]):
        make_order(address={"province_code": "51", "commune_code": commune, "detail": detail},
                   dossier_code=f"H55.22-LANG-{n:03d}", appointment_date=today)
    db.session.commit()


def _plan_path() -> str:
    office = db.session.scalar(sa.select(PostOffice.id).where(PostOffice.code == "BC-QNG"))
    return f"/routing/plan/{office}/{local_today().isoformat()}"


PLAN_VI = ["Kế hoạch ngày của bưu cục", "Kế hoạch đề xuất", "Theo địa bàn xã (hiện tại)", "Tuyến, bưu tá",
           "Làm thêm", "Chuyển tuyến (", "Nhận kế hoạch: chuyển", "(bản đồ đường không phủ mọi điểm dừng)"]
PLAN_EN = ["Post office day plan", "Proposed plan", "Commune rule (today)", "Route, courier", "Overtime",
           "Moves (", "Accept: move", "(the road graph does not cover every stop)"]


def _shows_only(text: str, shown: list[str], hidden: list[str]) -> None:
    """Every text of one language on the page, none of the other's."""
    assert [t for t in shown if t not in text] == [] and [t for t in hidden if t in text] == []


@pytest.mark.config(PLAN_SECONDS=0.3)
def test_the_day_plan_and_its_messages_switch_language(client):
    _orders()
    login(client, "supervisor")
    path = _plan_path()
    page = client.get(path).get_data(as_text=True)
    assert "<title>Kế hoạch ngày ·" in page and "Day plan" not in page
    text = text_of(page)
    _shows_only(text, PLAN_VI, PLAN_EN)
    assert re.search(r"Đường thẳng × 1,3 .*Tìm trong \d+,\d giây\.", text)  # decimal commas in Vietnamese
    assert "Straight line" not in text and "Searched for" not in text
    assert not PAIR.search(main_text(page)), PAIR.findall(main_text(page))
    # a refused plan says why in Vietnamese only
    refused = client.post(path + "/accept", data={"csrf_token": csrf_token(client, path), "assignment": "1:x"})
    assert refused.status_code == 303
    said = text_of(client.get(refused.headers["Location"]).get_data(as_text=True))
    assert "Không nhận được kế hoạch: Không đọc được kế hoạch gửi lại; hãy tính lại." in said
    assert "not accepted" not in said and "not readable" not in said

    page = client.get(path + "?lang=en").get_data(as_text=True)
    assert "<title>Day plan ·" in page and "Kế hoạch ngày" not in page
    text = text_of(page)
    _shows_only(text, PLAN_EN, PLAN_VI)
    assert re.search(r"Straight line × 1\.3 .*Searched for \d+\.\d s\.", text)  # decimal points in English
    assert "Đường thẳng" not in text and "giây" not in text
    assert not PAIR.search(main_text(page)), PAIR.findall(main_text(page))
    # the session keeps English: the accepted plan is announced in English only
    accepted = client.post(path + "/accept", data={
        "csrf_token": csrf_token(client, path),
        "assignment": re.search(r'name="assignment" value="([^"]*)"', page).group(1)})
    assert accepted.status_code == 303
    said = text_of(client.get(accepted.headers["Location"]).get_data(as_text=True))
    assert re.search(r"Plan accepted: \d+ orders moved, \d+ runs re-sequenced", said)
    assert "Đã nhận kế hoạch" not in said and "bưu gửi" not in said


def test_the_run_notes_its_distances_in_one_language(client):
    _orders()
    login(client, "supervisor")
    token = csrf_token(client, "/routes/QNG-01/run")
    assert client.post("/routes/QNG-01/run/sequence", data={
        "csrf_token": token, "date": local_today().isoformat()}).status_code == 303
    vi = text_of(client.get("/routes/QNG-01/run").get_data(as_text=True))
    assert "Khoảng cách theo đường thẳng; giờ đến dự kiến tính đường thẳng × 1,3" in vi
    assert "Straight-line distances" not in vi and "arrival estimates" not in vi
    en = text_of(client.get("/routes/QNG-01/run?lang=en").get_data(as_text=True))
    assert "Straight-line distances; arrival estimates use straight line × 1.3" in en
    assert "Khoảng cách" not in en and "đường thẳng" not in en


def test_the_webhooks_page_links_the_api_clients_in_one_language(client):
    client_id = db.session.scalar(sa.select(ApiClient.id).order_by(ApiClient.id).limit(1))
    webhooks.set_endpoint(client_id, "http://127.0.0.1:9/hooks")
    db.session.commit()
    login(client, "admin")
    vi = text_of(client.get("/admin/webhooks").get_data(as_text=True))
    assert "Khóa API và webhook: đặt địa chỉ, tạm dừng, đổi khóa ký" in vi
    assert "API clients and webhooks" not in vi
    en = text_of(client.get("/admin/webhooks?lang=en").get_data(as_text=True))
    assert "API clients and webhooks: address, pause, secret rotation" in en
    assert "Khóa API" not in en
