"""The public tracking page: the item's code plus the phone's last digits give the status timeline,
with no personal data beyond the recipient's initials; one neutral answer otherwise; rate-limited."""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata

import sqlalchemy as sa
from conftest import csrf_token, order_payload
from flask.testing import FlaskClient
from web_helpers import HTI

from delivery_service.accounts.services import SYSTEM
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status
from delivery_service.tracking.services import initials

NOT_FOUND_VI = "Không tìm thấy bưu gửi với thông tin này"
NOT_FOUND_EN = "No item was found with this information"
NOTE = "Gọi trước cho chị Hoa ở nhà số 12"


def _order(client: FlaskClient, auth: dict[str, str], **changes) -> dict:
    resp = client.post("/api/v1/orders", json=order_payload(note=NOTE, **changes), headers=auth)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def _to_failed_attempt(item_id: str) -> None:
    """created (assigned) → with the courier → out → failed (nobody home) → out again."""
    for target in (Status.ASSIGNED, Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY):
        if target is Status.ASSIGNED and _status(item_id) is Status.ASSIGNED:
            continue
        change_status(SYSTEM, item_id, target, note="Bưu tá Trần Văn Bình, Tổ 3")
    change_status(SYSTEM, item_id, Status.FAILED_ATTEMPT, reason="not_home", note="Hàng xóm nói đi vắng",
                  latitude=15.12, longitude=108.8)
    change_status(SYSTEM, item_id, Status.OUT_FOR_DELIVERY)


def _status(item_id: str) -> Status:
    from delivery_service.orders.services import get_order

    return get_order(SYSTEM, item_id).status


def _look_up(client: FlaskClient, code: str, digits: str, *, token: str | None = None, lang: str = "",
             **kwargs):
    token = token or csrf_token(client, "/t" + (f"?lang={lang}" if lang else ""))
    return client.post("/t", data={"code": code, "phone_last4": digits, "csrf_token": token}, **kwargs)


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def test_right_digits_show_the_timeline_without_personal_data(client, auth):
    order = _order(client, auth)
    _to_failed_attempt(order["item_id"])
    resp = _look_up(client, order["item_id"], "3456")
    html = _text(resp)
    assert resp.status_code == 200
    assert order["item_id"] in html
    # the steps as a citizen reads them, not the post office's words ("Đã phân tuyến": outside review)
    statuses = ["Đã tiếp nhận tại quầy", "Bưu điện đang chuẩn bị phát", "Bưu tá đã nhận để phát", "Đang phát",
                "Phát không thành công", "Đang phát"]
    history = html.split("Lịch sử xử lý", 1)[1]
    found = re.findall(r"<td>(Đã tiếp nhận tại quầy|Bưu điện đang chuẩn bị phát|Bưu tá đã nhận để phát|Đang phát"
                       r"|Phát không thành công)", history)
    assert found == statuses and "Đã phân tuyến" not in html
    assert "Không có người nhận tại nhà" in html  # the reason's label, from FAILURE_REASONS
    # Vietnamese only: no English under the statuses unless English is chosen
    assert "Out for delivery" not in html and "Nobody at home" not in html and '<span class="muted" lang="en">' not in html
    assert "N. T. H." in html and "Trả kết quả" in html and "Quảng Ngãi" in html
    for private in ("Nguyễn Thị Hoa", "Hoa", "0905123456", "0905", "12 Hùng Vương", NOTE, "Trần Văn Bình",
                    "Hàng xóm", "15.12", "108.8", "Cấp đổi giấy phép lái xe"):
        assert private not in html, private
    assert re.search(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}", history)
    assert resp.headers["Cache-Control"] == "private, no-store"


def test_wrong_digits_and_unknown_item_get_the_same_neutral_answer(client, auth):
    order = _order(client, auth)
    token = csrf_token(client, "/t")
    wrong = _look_up(client, order["item_id"], "9999", token=token)
    unknown = _look_up(client, "RR123456785VN", "3456", token=token)
    unknown_dossier = _look_up(client, "H55.22-khong-co", "3456", token=token)
    assert wrong.status_code == unknown.status_code == unknown_dossier.status_code == 200
    assert NOT_FOUND_VI in _text(wrong)

    def answer(resp) -> str:  # the page without the code typed back into the form, nor the CSRF
        # token (signed with a timestamp: two requests a second apart get different ones)
        page = re.sub(r'(name="code"[^>]*value=")[^"]*', r"\1", _text(resp))
        return re.sub(r'(name="csrf_token"[^>]*value=")[^"]*', r"\1", page)

    assert answer(wrong) == answer(unknown) == answer(unknown_dossier)
    assert "N. T. H." not in _text(wrong) and "Mới tạo" not in _text(wrong)


def test_the_authorised_persons_phone_works_too(client, auth):
    order = _order(client, auth, authorised_person={"name": "Lê Văn Tám", "phone": "0912000777"})
    html = _text(_look_up(client, order["item_id"], "0777"))
    assert "N. T. H." in html and "Lê Văn Tám" not in html and "L. V. T." not in html


def test_dossier_code_matches_only_orders_whose_phone_ends_with_the_digits(client, auth):
    dossier = "H55.22-250101-0042"
    mine = _order(client, auth, dossier_code=dossier)
    both = _order(client, auth, dossier_code=dossier, direction="dossier_to_agency")
    other_token = _other_counter_token(client)
    elsewhere = _order(client, {"Authorization": f"Bearer {other_token}"}, dossier_code=dossier,
                       recipient={"name": "Phạm Minh Quân", "phone": "0987654321"}, address=HTI)
    html = _text(_look_up(client, dossier.lower(), "3456"))
    assert mine["item_id"] in html and both["item_id"] in html and elsewhere["item_id"] not in html
    assert "Gửi hồ sơ" in html and "Trả kết quả" in html
    html = _text(_look_up(client, f"  {dossier} ", "4321"))
    assert elsewhere["item_id"] in html and mine["item_id"] not in html and "P. M. Q." in html


def _other_counter_token(client: FlaskClient) -> str:
    """An API token of another counter (the demo has one token; make a second)."""
    from delivery_service.accounts.services import create_api_client
    from delivery_service.extensions import db

    _client, token = create_api_client(name="Phần mềm một cửa Đức Thọ", counter_code="HTI-DUCTHO")
    db.session.commit()
    return token


def test_item_ids_as_people_type_them(client, auth):
    item_id = _order(client, auth)["item_id"]
    token = csrf_token(client, "/t")
    spaced = f" {item_id[:2].lower()} {item_id[2:6]} {item_id[6:11]}-{item_id[11:].lower()} "
    full_width = "".join(chr(ord(ch) + 0xFEE0) for ch in item_id)  # a phone keyboard's full-width forms
    nfd = unicodedata.normalize("NFD", item_id.lower())
    for typed in (item_id.lower(), spaced, full_width, nfd):
        html = _text(_look_up(client, typed, "3 456", token=token))
        assert "N. T. H." in html, typed


def test_the_link_on_labels_fills_in_the_item_id(client, auth):
    item_id = _order(client, auth)["item_id"]
    resp = client.get(f"/t/{item_id.lower()}")
    html = _text(resp)
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "private, no-store"
    assert f'value="{item_id}"' in html and 'name="phone_last4"' in html
    assert "N. T. H." not in html and "Mới tạo" not in html  # nothing shown before the digits
    assert "/login" not in html and "Quầy tiếp nhận" not in html  # the public layout: no staff menu
    assert 'name="code" type="text" value=""' in _text(client.get("/t"))


def test_malformed_input_asks_again_without_looking_up(client, auth):
    item_id = _order(client, auth)["item_id"]
    resp = _look_up(client, item_id, "34")
    assert resp.status_code == 422 and "4 chữ số cuối" in _text(resp) and NOT_FOUND_VI not in _text(resp)
    resp = _look_up(client, "   ", "3456")
    assert resp.status_code == 422 and NOT_FOUND_VI not in _text(resp)


def test_the_form_needs_its_csrf_token(client, auth):
    item_id = _order(client, auth)["item_id"]
    resp = client.post("/t", data={"code": item_id, "phone_last4": "3456"})
    assert resp.status_code == 400 and "N. T. H." not in _text(resp)
    assert 'name="csrf_token"' in _text(resp)  # the form again, ready to send
    assert "N. T. H." in _text(_look_up(client, item_id, "3456"))


def test_misses_are_limited_per_address_and_the_page_says_so(client, auth):
    """Per address the misses count (10 a minute), not the items found: behind a carrier's one public
    address (carrier-grade NAT) citizens who type their own item right never use up the allowance."""
    item_id = _order(client, auth)["item_id"]
    token = csrf_token(client, "/t")
    found = [_look_up(client, item_id, "3456", token=token).status_code for _ in range(25)]
    assert found == [200] * 25
    codes = [_look_up(client, item_id, "0000" if i % 3 else "3456", token=token).status_code for i in range(16)]
    assert codes[:15] == [200] * 15 and codes[15] == 429  # the 10th miss was the 15th look-up
    resp = _look_up(client, item_id, "3456", token=token)
    assert resp.status_code == 429 and "Thử quá nhiều lần" in _text(resp) and "N. T. H." not in _text(resp)
    assert resp.headers["Cache-Control"] == "private, no-store"
    other = _look_up(client, item_id, "3456", token=token, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    assert other.status_code == 200 and "N. T. H." in _text(other)


def test_a_look_up_refused_by_a_limit_is_no_miss_of_its_address(client, auth):
    """An item blocked by its code's misses: its owner retrying from behind a carrier's address gets
    429 each time, and those refusals use up nothing of the address's misses (review: they did)."""
    item_id = _order(client, auth)["item_id"]
    token = csrf_token(client, "/t")
    codes = [_look_up(client, item_id, f"{i:04d}", token=token,
                      environ_base={"REMOTE_ADDR": f"10.0.8.{i}"}).status_code for i in range(30)]
    assert codes == [200] * 30  # the code's 30 misses of the day, from 30 addresses
    owner = {"REMOTE_ADDR": "10.0.8.200"}
    assert [_look_up(client, item_id, "3456", token=token, environ_base=owner).status_code
            for _ in range(5)] == [429] * 5
    codes = [_look_up(client, "RR123456785VN", "0000", token=token, environ_base=owner).status_code
             for _ in range(11)]
    assert codes == [200] * 10 + [429]  # the address's 10 misses a minute are all still there


def test_every_look_up_counts_against_an_addresss_flood_ceiling(client, auth):
    """Found items count only against the ceiling, which stands far above the misses' limit (the
    README's 60 look-ups and 10 misses a minute): citizens behind one address find their items."""
    from delivery_service.tracking.views import LIMIT_MISSES_PER_ADDRESS, LIMIT_PER_ADDRESS

    per_minute = int(LIMIT_PER_ADDRESS.split()[0])
    assert (per_minute, int(LIMIT_MISSES_PER_ADDRESS.split()[0])) == (60, 10)
    item_id = _order(client, auth)["item_id"]
    token = csrf_token(client, "/t")
    codes = [_look_up(client, item_id, "3456", token=token, environ_base={"REMOTE_ADDR": "10.0.7.1"}).status_code
             for _ in range(per_minute + 1)]
    assert codes == [200] * per_minute + [429]
    other = _look_up(client, item_id, "3456", token=token, environ_base={"REMOTE_ADDR": "10.0.7.2"})
    assert other.status_code == 200


def test_misses_on_one_code_are_limited_across_addresses(client, auth):
    item_id = _order(client, auth)["item_id"]
    token = csrf_token(client, "/t")
    codes = [_look_up(client, item_id, f"{i:04d}", token=token,
                      environ_base={"REMOTE_ADDR": f"10.0.1.{i}"}).status_code for i in range(31)]
    assert codes[:30] == [200] * 30 and codes[30] == 429
    other = _look_up(client, "RR123456785VN", "0000", token=token, environ_base={"REMOTE_ADDR": "10.0.2.1"})
    assert other.status_code == 200 and NOT_FOUND_VI in _text(other)
    # a dossier code's misses count once however its letters are written (the look-up ignores case)
    dossier = _order(client, auth, dossier_code="DEMO-000777")["dossier_code"]
    variants = [dossier, dossier.lower(), dossier.title(), "dEMO-000777"]
    codes = [_look_up(client, variants[i % 4], f"{i:04d}", token=token,
                      environ_base={"REMOTE_ADDR": f"10.0.3.{i}"}).status_code for i in range(31)]
    assert codes[:30] == [200] * 30 and codes[30] == 429


def test_english_on_request_vietnamese_by_default(client, auth):
    item_id = _order(client, auth)["item_id"]
    assert "Tra cứu bưu gửi" in _text(client.get("/t"))
    html = _text(client.get(f"/t/{item_id}?lang=en"))
    assert "Track an item" in html and "Last 4 digits of the phone number" in html
    links = re.findall(r'<a href="([^"]+)" lang="(vi|en)"', html)
    assert [lang for _url, lang in links] == ["vi", "en"]
    result = _text(_look_up(client, item_id, "3456"))  # the session remembers English
    assert "Received at the counter" in result and "Deliver the result" in result and "Đã tiếp nhận" not in result
    _to_failed_attempt(item_id)
    result = _text(_look_up(client, item_id, "3456"))
    assert "Nobody at home" in result and "Delivery attempt failed" in result
    assert "Không có người nhận tại nhà" not in result and "Phát không thành công" not in result
    assert NOT_FOUND_EN in _text(_look_up(client, item_id, "0000"))


def test_no_personal_data_in_the_logs(client, auth, caplog):
    item_id = _order(client, auth)["item_id"]
    with caplog.at_level(logging.DEBUG):
        _look_up(client, item_id, "3456")
        _look_up(client, item_id, "0000")
    assert "3456" not in caplog.text and "Nguyễn" not in caplog.text


def test_initials():
    assert initials("Nguyễn Thị Hoa") == "N. T. H."
    assert initials("  đặng   ánh ") == "Đ. Á."
    assert initials(unicodedata.normalize("NFD", "Đỗ Ông")) == "Đ. Ô."
    assert initials("") == ""


def test_the_delivery_window_is_shown_when_the_order_has_one(client, auth):
    """The window the citizen chose is not personal data: the tracking page says it, and says nothing
    of a window when none was chosen."""
    timed = _order(client, auth, delivery_window={"from": "09:30", "to": "11:00"})
    html = _text(_look_up(client, timed["item_id"], "3456"))
    assert re.search(r"<dt>Khung giờ giao</dt><dd[^>]*>09:30–11:00</dd>", html), html
    html = _text(_look_up(client, timed["item_id"], "3456", lang="en"))
    assert re.search(r"<dt>Delivery window</dt><dd[^>]*>09:30–11:00</dd>", html)
    plain = _order(client, auth)
    html = _text(_look_up(client, plain["item_id"], "3456", lang="vi"))
    assert plain["item_id"] in html and "Khung giờ giao" not in html and "delivery-window" not in html


def _failed(item_id: str, next_day) -> None:
    """created → … → failed attempt (nobody home), the next attempt moved to ``next_day``."""
    for target in (Status.ASSIGNED, Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY):
        if not (target is Status.ASSIGNED and _status(item_id) is Status.ASSIGNED):
            change_status(SYSTEM, item_id, target)
    change_status(SYSTEM, item_id, Status.FAILED_ATTEMPT, reason="not_home")
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id == item_id)
                       .values(run_date=next_day))
    db.session.commit()


def test_what_the_citizen_needs_next_the_next_attempt_the_hotline_where_returned_papers_are(client, auth):
    """A failed attempt says the day of the next one (as the text message does), every result gives
    the counter's hotline as a tel: link, a returned item says where the papers are; the answers that
    know no item (not found, too many) give the service's hotline."""
    later = local_today() + dt.timedelta(days=2)
    failed = _order(client, auth)
    _failed(failed["item_id"], later)
    html = _text(_look_up(client, failed["item_id"], "3456"))
    assert re.search(rf'<dt>Ngày phát lại</dt><dd class="next-attempt">{later:%d/%m/%Y}</dd>', html), html
    assert '<dt>Đường dây nóng</dt><dd class="hotline"><a href="tel:1022">1022</a></dd>' in html  # QNG-TTHCC's
    english = _text(_look_up(client, failed["item_id"], "3456", lang="en"))
    assert re.search(rf'<dt>Next attempt</dt><dd class="next-attempt">{later:%d/%m/%Y}</dd>', english)
    _failed(_order(client, auth, dossier_code="H55.22-000999")["item_id"], local_today())  # not moved yet
    html = _text(_look_up(client, "H55.22-000999", "3456", lang="vi"))
    assert '<dd class="next-attempt">sẽ báo sau</dd>' in html

    returned = _order(client, auth)
    _failed(returned["item_id"], later)
    change_status(SYSTEM, returned["item_id"], Status.RETURNED_TO_AGENCY)
    html = _text(_look_up(client, returned["item_id"], "3456"))
    assert ("Không phát được: bưu gửi đã được chuyển trả về Trung tâm Phục vụ hành chính công tỉnh Quảng Ngãi, "
            "nơi đang giữ giấy tờ của Ông/Bà. Vui lòng gọi đường dây nóng 1022 để hẹn nhận lại.") in html
    assert "next-attempt" not in html
    for private in ("Nguyễn Thị Hoa", "0905123456", "12 Hùng Vương"):
        assert private not in html

    missed = _text(_look_up(client, failed["item_id"], "0000"))
    assert NOT_FOUND_VI in missed and '<a href="tel:1900545481">1900 545481</a>' in missed
    assert "1022" not in missed  # a miss does not say which counter the item belongs to
    token = csrf_token(client, "/t")
    for _ in range(10):
        _look_up(client, "RR123456785VN", "0000", token=token, environ_base={"REMOTE_ADDR": "10.0.9.9"})
    limited = _look_up(client, "RR123456785VN", "0000", token=token, environ_base={"REMOTE_ADDR": "10.0.9.9"})
    assert limited.status_code == 429 and '<a href="tel:1900545481">1900 545481</a>' in _text(limited)


def test_a_mistyped_item_id_is_told_so_without_costing_the_codes_misses(client, auth):
    """A wrong S10 check digit: no item can have it, so the page says to look at the receipt again
    (not the generic "not found"), and it counts against no code's miss budget; the address's misses
    still count it."""
    item_id = _order(client, auth)["item_id"]
    wrong = item_id[:10] + str((int(item_id[10]) + 1) % 10) + item_id[11:]
    resp = _look_up(client, wrong.lower(), "3456")
    html = _text(resp)
    assert resp.status_code == 422 and NOT_FOUND_VI not in html and "N. T. H." not in html
    assert "Số hiệu có vẻ bị gõ sai (sai số kiểm tra): hãy xem lại trên biên nhận." in html
    assert "look at your receipt again" in _text(_look_up(client, wrong, "3456", lang="en"))
    token = csrf_token(client, "/t")
    codes = [_look_up(client, wrong, f"{i:04d}", token=token, environ_base={"REMOTE_ADDR": f"10.0.4.{i}"}
                      ).status_code for i in range(35)]
    assert codes == [422] * 35  # past the 30 misses a code may have: none counted
    codes = [_look_up(client, wrong, "3456", token=token, environ_base={"REMOTE_ADDR": "10.0.5.1"}).status_code
             for _ in range(11)]
    assert codes == [422] * 10 + [429]  # the address's 10 misses a minute
    assert "N. T. H." in _text(_look_up(client, item_id, "3456", environ_base={"REMOTE_ADDR": "10.0.5.2"}))


def test_the_language_switch_keeps_the_result_without_a_new_look_up(client, auth):
    """On the result page "English" shows the same result in English (from what the session kept of
    the look-up: which orders, whose phone; no digits in any address), with no look-up counted;
    "track another item" forgets it, and so does time."""
    item_id = _order(client, auth)["item_id"]
    _to_failed_attempt(item_id)
    html = _text(_look_up(client, item_id, "3456"))
    links = dict((lang, url) for url, lang in re.findall(r'<a href="([^"]+)" lang="(vi|en)"', html))
    assert links == {"vi": "/t/result?lang=vi", "en": "/t/result?lang=en"}
    for _ in range(6):  # more switches than the 10 look-ups a minute allow, with the look-ups below
        english = client.get(links["en"])
        assert english.status_code == 200 and english.headers["Cache-Control"] == "private, no-store"
        english = _text(english)
        assert item_id in english and "N. T. H." in english and "Delivery attempt failed" in english
        assert "Nobody at home" in english and "Phát không thành công" not in english
        vietnamese = _text(client.get(links["vi"]))
        assert item_id in vietnamese and "Phát không thành công" in vietnamese and "Nobody at home" not in vietnamese
    assert "3456" not in "".join(links.values())
    token = csrf_token(client, "/t")
    assert [_look_up(client, item_id, "3456", token=token).status_code for _ in range(9)] == [200] * 9
    client.get("/t")  # track another item
    gone = client.get("/t/result?lang=en")
    assert gone.status_code == 303 and gone.headers["Location"].endswith("/t")
    _look_up(client, item_id, "3456", environ_base={"REMOTE_ADDR": "10.0.6.1"})
    with client.session_transaction() as kept:
        assert "3456" not in repr(dict(kept))  # which orders and whose phone, not the digits
        kept["tracked"] = {**kept["tracked"], "at": kept["tracked"]["at"] - 16 * 60}
    assert client.get("/t/result").status_code == 303
