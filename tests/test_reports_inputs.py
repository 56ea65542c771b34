"""What feeds the reports: counters' daily totals (API and the counter's page) and reporting areas
(API and page), on SQLite and PostgreSQL; the figures read both."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login, order_payload
from flask_babel import force_locale

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import Actor, create_api_client, create_user, hash_password
from delivery_service.errors import Forbidden, InvalidInput
from delivery_service.extensions import db
from delivery_service.orders.services import local_today
from delivery_service.orgs.models import Counter
from delivery_service.reports import inputs
from delivery_service.reports.figures import Filters, Level, figures
from delivery_service.reports.fold import fold
from delivery_service.reports.models import CounterDailyTotal, ReportArea, ReportUnit, report_area_communes
from delivery_service.units.models import REFORM_DATE, AdminUnit, UnitLevel
from delivery_service.web.messages import translate_message

ADMIN = Actor(label="admin", role=Role.ADMIN)
TOTALS = "/api/v1/reports/counter-totals"
AREAS = "/api/v1/reports/areas"
TPQNG = {"code": "TPQNG-CU", "name": "TP Quảng Ngãi (cũ)", "units": [{"level": "district", "code": "522",
                                                                       "legacy": True}]}


def today() -> dt.date:
    return local_today()


def days_ago(n: int) -> str:
    return (today() - dt.timedelta(days=n)).isoformat()


def counter_id(code: str = "QNG-TTHCC") -> int:
    return db.session.scalar(sa.select(Counter.id).where(Counter.code == code))


def stored_totals() -> list[tuple[str, str, int]]:
    db.session.rollback()
    return [(code, day.isoformat(), total) for code, day, total in db.session.execute(
        sa.select(Counter.code, CounterDailyTotal.day, CounterDailyTotal.results_total)
        .join(Counter, Counter.id == CounterDailyTotal.counter_id)
        .order_by(Counter.code, CounterDailyTotal.day)).all()]


def token_of(counter_code: str) -> dict[str, str]:
    _client, token = create_api_client(counter_code=counter_code, name=f"system of {counter_code}")
    db.session.commit()
    return {"Authorization": f"Bearer {token}"}


def unit(code: str, *, legacy: bool = False, level: UnitLevel = UnitLevel.COMMUNE) -> AdminUnit:
    cond = AdminUnit.valid_from < REFORM_DATE if legacy else AdminUnit.valid_from >= REFORM_DATE
    return db.session.scalar(sa.select(AdminUnit).where(AdminUnit.level == level, AdminUnit.code == code, cond))


def successors_of_522() -> set[int]:
    """The 2025 communes the communes of former district 522 (TP Quảng Ngãi) became."""
    district = unit("522", legacy=True, level=UnitLevel.DISTRICT)
    legacy = sa.select(AdminUnit.id).where(AdminUnit.parent_id == district.id)
    return set(db.session.scalars(sa.select(ReportUnit.commune_id).where(ReportUnit.unit_id.in_(legacy))))


def area_communes(area_id: int) -> set[int]:
    db.session.rollback()
    return set(db.session.scalars(sa.select(report_area_communes.c.unit_id)
                                  .where(report_area_communes.c.area_id == area_id)))


def order(client, auth, **changes) -> dict:
    resp = client.post("/api/v1/orders", json=order_payload(**changes), headers=auth)
    assert resp.status_code == 201, resp.json
    return resp.json


def officer(username: str, area: AdminUnit) -> None:
    """A district officer of any unit, former ones too (create_user takes only units in force)."""
    db.session.add(User(username=username, full_name="Phạm Văn Huyện", password_hash=hash_password(DEMO_PASSWORD),
                        role=Role.DISTRICT_OFFICER, area_unit_id=area.id))
    db.session.commit()


def api_login(client, username: str) -> dict[str, str]:
    """Log in and return the header a page's script writes to the API with."""
    login(client, username)
    html = client.get("/counter/totals" if username == "counter" else "/reports/areas").get_data(as_text=True)
    return {"X-CSRFToken": re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)}


# --- counters' daily totals: API ------------------------------------------------------------------

def test_a_day_is_stored_then_replaced_with_who_and_when(client, auth):
    first = client.put(f"{TOTALS}/{days_ago(1)}", json={"results_total": 120}, headers=auth)
    assert first.status_code == 200, first.json
    assert first.json["day"] == days_ago(1) and first.json["results_total"] == 120
    assert first.json["reported_by"]["kind"] == "api_client"
    again = client.put(f"{TOTALS}/{days_ago(1)}", json={"results_total": 130}, headers=auth)
    assert again.status_code == 200 and again.json["results_total"] == 130
    assert again.json["updated_at"] >= first.json["updated_at"]
    assert stored_totals() == [("QNG-TTHCC", days_ago(1), 130)]
    row = db.session.scalar(sa.select(CounterDailyTotal))
    assert row.reported_by_client_id is not None and row.reported_by_user_id is None
    listed = client.get(f"{TOTALS}?from={days_ago(10)}&to={days_ago(0)}", headers=auth)
    assert listed.status_code == 200
    assert [(t["day"], t["results_total"]) for t in listed.json] == [(days_ago(1), 130)]
    assert client.get(TOTALS, headers=auth).json == listed.json  # default: the last 31 days
    assert client.get(f"{TOTALS}?from={days_ago(0)}", headers=auth).json == []
    # Today counts; 400 days ago is the earliest.
    assert client.put(f"{TOTALS}/{days_ago(0)}", json={"results_total": 0}, headers=auth).status_code == 200
    assert client.put(f"{TOTALS}/{days_ago(400)}", json={"results_total": 5}, headers=auth).status_code == 200


def test_bulk_is_all_or_nothing(client, auth):
    days = [{"day": days_ago(i), "results_total": 10 * i} for i in (3, 1, 2)]
    resp = client.put(TOTALS, json=days, headers=auth)
    assert resp.status_code == 200, resp.json
    assert [(t["day"], t["results_total"]) for t in resp.json] == [(days_ago(3), 30), (days_ago(2), 20),
                                                                   (days_ago(1), 10)]
    before = stored_totals()
    bad = client.put(TOTALS, json=[{"day": days_ago(1), "results_total": 11},
                                   {"day": days_ago(5), "results_total": -1},
                                   {"day": days_ago(-1), "results_total": 3}], headers=auth)
    assert bad.status_code == 422
    errors = bad.json["errors"]["json"]
    assert errors["1"] == {"results_total": [inputs.TOTAL_RANGE]}
    assert errors["2"] == {"day": [inputs.DAY_IN_FUTURE]} and "0" not in errors
    assert stored_totals() == before  # the good first item was not stored either
    twice = client.put(TOTALS, json=[{"day": days_ago(4), "results_total": 1},
                                     {"day": days_ago(4), "results_total": 2}], headers=auth)
    assert twice.status_code == 422 and twice.json["errors"]["json"] == {"1": {"day": [inputs.DAY_TWICE]}}
    too_many = [{"day": days_ago(i % 300), "results_total": 1} for i in range(367)]
    resp = client.put(TOTALS, json=too_many, headers=auth)
    assert resp.status_code == 422 and resp.json["errors"]["json"] == {"_schema": ["At most 366 days at once."]}
    assert client.put(TOTALS, json=[], headers=auth).status_code == 422
    assert client.put(TOTALS, json={"day": days_ago(1), "results_total": 1}, headers=auth).status_code == 422
    assert stored_totals() == before
    # 366 days in one go are fine.
    year = [{"day": days_ago(i), "results_total": i} for i in range(366)]
    resp = client.put(TOTALS, json=year, headers=auth)
    assert resp.status_code == 200 and len(resp.json) == 366 and len(stored_totals()) == 366


@pytest.mark.parametrize(("path", "body", "where", "field", "message"), [
    ("1", {"results_total": -1}, "json", "results_total", inputs.TOTAL_RANGE),
    ("1", {"results_total": 1_000_001}, "json", "results_total", inputs.TOTAL_RANGE),
    ("1", {"results_total": 1.5}, "json", "results_total", "Not a valid integer."),
    ("1", {"results_total": "12"}, "json", "results_total", "Not a valid integer."),
    ("1", {"results_total": True}, "json", "results_total", "Not a valid integer."),
    ("1", {"results_total": None}, "json", "results_total", "Field may not be null."),
    ("1", {}, "json", "results_total", "Missing data for required field."),
    ("1", {"results_total": 1, "total": 2}, "json", "total", "Unknown field."),
    ("-1", {"results_total": 1}, "path", "day", inputs.DAY_IN_FUTURE),
    ("401", {"results_total": 1}, "path", "day", inputs.DAY_TOO_OLD),
    ("2025-13-01", {"results_total": 1}, "path", "day", "Not a valid date."),
    ("yesterday", {"results_total": 1}, "path", "day", "Not a valid date."),
])
def test_bad_input_is_422_by_field(client, auth, path, body, where, field, message):
    day = days_ago(int(path)) if path.lstrip("-").isdigit() else path
    resp = client.put(f"{TOTALS}/{day}", json=body, headers=auth)
    assert resp.status_code == 422, resp.json
    assert resp.json["errors"][where][field] == [message]
    assert stored_totals() == []


def test_bad_queries_and_paths(client, auth):
    assert client.put(f"{TOTALS}/2026/01/01", json={"results_total": 1}, headers=auth).status_code == 404
    resp = client.put(f"{TOTALS}/{days_ago(1)}", data="{not json", headers={**auth, "Content-Type": "application/json"})
    assert resp.status_code == 422
    resp = client.get(f"{TOTALS}?from={days_ago(1)}&to={days_ago(2)}", headers=auth)
    assert resp.status_code == 422 and resp.json["errors"]["query"] == {"to": ["Must not be before from."]}
    resp = client.get(f"{TOTALS}?from={days_ago(366)}&to={days_ago(0)}", headers=auth)
    assert resp.status_code == 422 and resp.json["errors"]["query"] == {"to": ["At most 366 days at once."]}
    assert client.get(f"{TOTALS}?from={days_ago(365)}&to={days_ago(0)}", headers=auth).status_code == 200
    assert client.get(f"{TOTALS}?from=soon", headers=auth).status_code == 422


def test_a_token_only_touches_its_own_counter(client, auth):
    other = token_of("HTI-DUCTHO")
    assert client.put(f"{TOTALS}/{days_ago(1)}", json={"results_total": 7}, headers=other).status_code == 200
    assert client.put(f"{TOTALS}/{days_ago(1)}", json={"results_total": 9}, headers=auth).status_code == 200
    assert stored_totals() == [("HTI-DUCTHO", days_ago(1), 7), ("QNG-TTHCC", days_ago(1), 9)]
    assert [t["results_total"] for t in client.get(TOTALS, headers=other).json] == [7]
    assert [t["results_total"] for t in client.get(TOTALS, headers=auth).json] == [9]
    assert client.get(TOTALS).status_code == 401
    assert client.put(f"{TOTALS}/{days_ago(1)}", json={"results_total": 1},
                      headers={"Authorization": "Bearer dsk_nope_nope"}).status_code == 401


def test_logged_in_counter_staff_write_with_the_pages_csrf_token(client):
    header = api_login(client, "counter")
    assert client.put(f"{TOTALS}/{days_ago(2)}", json={"results_total": 4}).status_code == 403
    resp = client.put(f"{TOTALS}/{days_ago(2)}", json={"results_total": 4}, headers=header)
    assert resp.status_code == 200 and resp.json["reported_by"] == {"kind": "user", "name": "counter"}
    assert stored_totals() == [("QNG-TTHCC", days_ago(2), 4)]
    assert client.get(TOTALS).json[0]["results_total"] == 4


@pytest.mark.parametrize("username", ["admin", "district", "supervisor"])
def test_only_counters_report_totals(client, username):
    header = api_login(client, username)
    assert client.put(f"{TOTALS}/{days_ago(1)}", json={"results_total": 1}, headers=header).status_code == 403
    assert client.get(TOTALS).status_code == 403
    assert stored_totals() == []


def test_concurrent_writes_of_a_day_leave_one_row(app):
    staff = Actor(label="api:x", role=Role.COUNTER_STAFF, counter_id=counter_id())
    day = today() - dt.timedelta(days=1)
    start = threading.Barrier(6)
    failures: list[Exception] = []

    def write(n: int) -> None:
        with app.app_context():
            try:
                start.wait()
                inputs.save_total(staff, inputs.DayTotal(day, n), today=day + dt.timedelta(days=1))
                db.session.commit()
            except Exception as exc:  # noqa: BLE001
                failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    rows = stored_totals()
    assert len(rows) == 1 and rows[0][2] in range(6)


def test_the_service_refuses_what_the_schema_would(app):
    staff = Actor(label="api:x", role=Role.COUNTER_STAFF, counter_id=counter_id())
    with pytest.raises(InvalidInput) as err:
        inputs.save_total(staff, inputs.DayTotal(today() + dt.timedelta(days=1), -3), today=today())
    assert err.value.errors == {"day": [inputs.DAY_IN_FUTURE], "results_total": [inputs.TOTAL_RANGE]}
    with pytest.raises(Forbidden):
        inputs.save_total(ADMIN, inputs.DayTotal(today(), 3), today=today())
    assert stored_totals() == []


# --- the counter's page ---------------------------------------------------------------------------

def test_page_shows_sent_by_post_beside_the_total_and_the_share(client, auth):
    order(client, auth)
    order(client, auth)
    order(client, auth, direction="both")
    order(client, auth, direction="dossier_to_agency", appointment_date=None)  # no result to send
    order(client, token_of("HTI-DUCTHO"), address={"province_code": "42", "commune_code": "18229",
                                                    "detail": "Xóm 4"})  # another counter's
    login(client, "counter")
    resp = client.get("/counter/totals")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Số kết quả đã trả mỗi ngày" in html
    assert len(re.findall(r'<tr id="d-', html)) == 14
    row = re.search(rf'<tr id="d-{days_ago(0)}">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[1:4] == ["3", "chưa báo cáo", "—"]

    token = csrf_token(client, "/counter/totals")
    resp = client.post("/counter/totals", data={"csrf_token": token, "day": days_ago(0), "results_total": "12"})
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/counter/totals")
    html = client.get("/counter/totals").get_data(as_text=True)
    assert "Đã lưu: 12 kết quả" in html and "hãy kiểm tra lại" not in html
    row = re.search(rf'<tr id="d-{days_ago(0)}">(.*?)</tr>', html, re.S).group(1)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    assert cells[1:4] == ["3", "12", "25%"]
    assert stored_totals() == [("QNG-TTHCC", days_ago(0), 12)]
    db.session.rollback()
    assert db.session.scalar(sa.select(CounterDailyTotal.reported_by_user_id)) == db.session.scalar(
        sa.select(User.id).where(User.username == "counter"))
    # A day written the Vietnamese way, with a thousands separator, replaces nothing else.
    yesterday = today() - dt.timedelta(days=1)
    resp = client.post("/counter/totals", data={"csrf_token": token, "day": yesterday.strftime("%d/%m/%Y"),
                                                "results_total": "1.200"})
    assert resp.status_code == 303
    assert stored_totals() == [("QNG-TTHCC", days_ago(1), 1200), ("QNG-TTHCC", days_ago(0), 12)]
    # A total below what the counter sent by post that day is saved, with a word to check it.
    resp = client.post("/counter/totals", data={"csrf_token": token, "day": days_ago(0), "results_total": "2"},
                       follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "Đã lưu: 2 kết quả" in html
    assert "Tổng số này nhỏ hơn 3 kết quả quầy đã gửi qua bưu chính trong ngày đó: hãy kiểm tra lại." in html
    assert stored_totals()[-1] == ("QNG-TTHCC", days_ago(0), 2)
    # The row's link fills the form with the stored value.
    html = client.get(f"/counter/totals?day={days_ago(1)}&lang=en").get_data(as_text=True)
    assert 'value="1200"' in html and "Results handed out per day" in html


@pytest.mark.parametrize(("day", "total", "field", "message"), [
    (0, "-5", "results_total", "Nhập một số nguyên từ 0 đến 1.000.000."),
    (0, "mười", "results_total", "Nhập một số nguyên từ 0 đến 1.000.000."),
    (0, "", "results_total", "Vui lòng nhập mục này."),
    (-1, "5", "day", "Ngày này chưa đến"),
    (401, "5", "day", "Ngày này đã cách đây hơn 400 ngày."),
    (None, "5", "day", "Ngày không hợp lệ (ngày/tháng/năm)."),
])
def test_page_refuses_bad_input_and_changes_nothing(client, day, total, field, message):
    login(client, "counter")
    token = csrf_token(client, "/counter/totals")
    resp = client.post("/counter/totals", data={"csrf_token": token, "results_total": total,
                                                "day": days_ago(day) if day is not None else "31/02/2026"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Không lưu gì." in html
    error = re.search(rf'<p class="field-error" id="e-{field}">(.*?)</p>', html, re.S).group(1)
    assert message in error
    assert stored_totals() == []


def test_page_needs_its_csrf_token_and_the_counter_role(client):
    login(client, "counter")
    resp = client.post("/counter/totals", data={"day": days_ago(0), "results_total": "3"})
    assert resp.status_code == 400 and stored_totals() == []
    for username in ("admin", "district", "supervisor", "courier"):
        other = client.application.test_client()
        login(other, username)
        assert other.get("/counter/totals").status_code == 403
        assert other.post("/counter/totals", data={"csrf_token": csrf_token(other, "/counter/totals"), "day": days_ago(0),
                                                   "results_total": "3"}).status_code == 403
    assert client.application.test_client().get("/counter/totals").status_code == 302  # to the log-in page
    assert stored_totals() == []


# --- the figures read the totals --------------------------------------------------------------------

def test_figures_give_the_share_sent_by_post_per_counter(client, auth):
    for _ in range(3):
        order(client, auth)
    order(client, auth, direction="dossier_to_agency", appointment_date=None)
    assert client.put(f"{TOTALS}/{days_ago(0)}", json={"results_total": 12}, headers=auth).status_code == 200
    assert client.put(f"{TOTALS}/{days_ago(1)}", json={"results_total": 8}, headers=auth).status_code == 200
    fold()
    report = figures(ADMIN, today(), today(), Level.COUNTER)
    row = next(r for r in report.rows if r.code == "QNG-TTHCC")
    assert (row.received, row.received_results, row.results_total) == (4, 3, 12)
    assert row.post_share == pytest.approx(3 / 12)
    # Over two days the denominator is both days' totals.
    two = figures(ADMIN, today() - dt.timedelta(days=1), today(), Level.COUNTER)
    row = next(r for r in two.rows if r.code == "QNG-TTHCC")
    assert row.results_total == 20 and row.post_share == pytest.approx(3 / 20)
    staff = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "counter")))
    mine = figures(staff, today(), today(), Level.COUNTER, Filters(counter=counter_id()))
    assert mine.total.post_share == pytest.approx(3 / 12)


# --- reporting areas: API -------------------------------------------------------------------------

def test_a_former_district_becomes_its_2025_communes(client, auth):
    header = api_login(client, "admin")
    resp = client.post(AREAS, json=TPQNG, headers=header)
    assert resp.status_code == 201, resp.json
    body = resp.json
    expected = successors_of_522()
    assert {unit("21025").id, unit("21028").id} <= expected and unit("18229").id not in expected
    assert area_communes(body["id"]) == expected
    assert {c["code"] for c in body["communes"]} == {db.session.get(AdminUnit, i).code for i in expected}
    assert body["owner_unit"] is None and body["dashboard"] == f"/reports/?level=commune&area={body['id']}"
    assert resp.headers["Location"] == f"{AREAS}/{body['id']}"
    assert [a["code"] for a in client.get(AREAS).json] == ["TPQNG-CU"]
    assert client.get(f"{AREAS}/{body['id']}").json == body

    # The figures per area count an order in one of its communes.
    order(client, auth)  # commune 21025
    order(client, auth, address={"province_code": "42", "commune_code": "18229", "detail": "Xóm 4"})
    fold()
    rows = figures(ADMIN, today(), today(), Level.AREA).rows
    assert [(r.code, r.label, r.received) for r in rows] == [("TPQNG-CU", "TP Quảng Ngãi (cũ)", 1)]
    only = figures(ADMIN, today(), today(), Level.COMMUNE, Filters(area=body["id"]))
    assert [(r.code, r.received) for r in only.rows] == [("21025", 1)]

    # PUT replaces code, name and communes; a legacy commune counts as its successor.
    resp = client.put(f"{AREAS}/{body['id']}", headers=header, json={
        "code": "qng-2", "name": "  Hai  phường ", "units": [
            {"level": "commune", "code": "21172"}, {"level": "commune", "code": "21019", "legacy": True}]})
    assert resp.status_code == 200, resp.json
    assert (resp.json["code"], resp.json["name"]) == ("QNG-2", "Hai phường")
    assert area_communes(body["id"]) == {unit("21172").id, unit("21025").id}
    assert client.delete(f"{AREAS}/{body['id']}", headers=header).status_code == 204
    assert client.get(f"{AREAS}/{body['id']}").status_code == 404
    assert client.get(AREAS).json == []


@pytest.mark.parametrize(("change", "errors"), [
    ({"units": []}, {"units": ["Give at least one commune or former district (at most 5000)."]}),
    ({"units": [{"level": "commune", "code": "99999"}]},
     {"units": {"0": ["Unknown commune code 99999 (2025 structure)."]}}),
    ({"units": [{"level": "district", "code": "999", "legacy": True}]},
     {"units": {"0": ["Unknown district code 999 on 2025-06-30."]}}),
    ({"units": [{"level": "district", "code": "522"}]},
     {"units": {"0": ["There are no districts since 1 Jul 2025: mark district 522 as legacy (its communes "
                      "as they were on 30 Jun 2025)."]}}),
    ({"units": [{"level": "commune", "code": "21025"}, {"level": "commune", "code": "21028"},
                {"level": "commune", "code": "21025"}]}, {"units": {"2": ["Given twice (also item 1)."]}}),
    ({"units": [{"level": "province", "code": "51"}]},
     {"units": {"0": {"level": ["Must be one of: commune, district."]}}}),
    ({"units": [{"level": "commune", "code": "21019", "on": "2025-07-01"}]},
     {"units": {"0": {"on": ["Must be before 1 Jul 2025; 2025 codes need no day."]}}}),
    ({"code": "TP QNG"}, {"code": ["Use 1-32 letters, digits, dots, dashes or underscores, starting with a "
                                   "letter or digit."]}),
    ({"name": "   "}, {"name": ["Must not be empty."]}),
    ({"name": None}, {"name": ["Field may not be null."]}),
])
def test_area_input_is_422_by_field(client, change, errors):
    header = api_login(client, "admin")
    resp = client.post(AREAS, json={**TPQNG, **change}, headers=header)
    assert resp.status_code == 422, resp.json
    assert resp.json["errors"]["json"] == errors
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReportArea)) == 0


def test_an_area_code_is_unique(client):
    header = api_login(client, "admin")
    first = client.post(AREAS, json=TPQNG, headers=header).json
    resp = client.post(AREAS, json={**TPQNG, "code": "tpqng-cu"}, headers=header)
    assert resp.status_code == 422 and resp.json["errors"]["json"] == {
        "code": ["An area with code TPQNG-CU exists already."]}
    other = client.post(AREAS, json={**TPQNG, "code": "OTHER"}, headers=header).json
    resp = client.put(f"{AREAS}/{other['id']}", json=TPQNG, headers=header)
    assert resp.status_code == 422
    assert client.put(f"{AREAS}/{first['id']}", json=TPQNG, headers=header).status_code == 200  # itself
    assert client.put(f"{AREAS}/999999", json=TPQNG, headers=header).status_code == 404


def test_counter_systems_and_other_roles_cannot_manage_areas(client, auth):
    assert client.get(AREAS, headers=auth).status_code == 403
    assert client.post(AREAS, json=TPQNG, headers=auth).status_code == 403
    for username in ("counter", "supervisor", "courier"):
        c = client.application.test_client()
        login(c, username)
        assert c.get(AREAS).status_code == 403
        assert c.get("/reports/areas").status_code == 403
    header = api_login(client, "admin")
    assert client.post(AREAS, json=TPQNG).status_code == 403  # a log-in session writes with the CSRF token
    assert client.post(AREAS, json=TPQNG, headers=header).status_code == 201


def test_district_officers_keep_to_their_area(client):
    admin = client.application.test_client()
    admin_header = api_login(admin, "admin")
    mixed = admin.post(AREAS, headers=admin_header, json={
        "code": "MIXED", "name": "Quảng Ngãi và Hà Tĩnh",
        "units": [{"level": "commune", "code": "21025"}, {"level": "commune", "code": "18229"}]}).json

    # The demo officer's area is the province of Quảng Ngãi (2025): former district 522 lies in it.
    header = api_login(client, "district")
    resp = client.post(AREAS, json=TPQNG, headers=header)
    assert resp.status_code == 201, resp.json
    mine = resp.json
    province = unit("51", level=UnitLevel.PROVINCE)
    assert mine["owner_unit"] == {"level": "province", "code": "51", "name": province.name}
    assert [a["code"] for a in client.get(AREAS).json] == ["TPQNG-CU"]  # not MIXED
    assert client.get(f"{AREAS}/{mixed['id']}").status_code == 404
    assert client.delete(f"{AREAS}/{mixed['id']}", headers=header).status_code == 404
    resp = client.post(AREAS, headers=header, json={**TPQNG, "code": "HT", "units": [
        {"level": "commune", "code": "21028"}, {"level": "commune", "code": "18229"}]})
    assert resp.status_code == 403 and resp.json["units"] == ["1"]
    resp = client.put(f"{AREAS}/{mine['id']}", headers=header, json={**TPQNG, "units": [
        {"level": "commune", "code": "18229"}]})
    assert resp.status_code == 403 and area_communes(mine["id"]) == successors_of_522()

    # An officer of Hà Tĩnh sees neither; an officer of former district 522 sees the officer's area.
    create_user(username="hatinh", full_name="Lê Thị Hà", password=DEMO_PASSWORD, role=Role.DISTRICT_OFFICER,
                area_code="42")
    officer("huyen522", unit("522", legacy=True, level=UnitLevel.DISTRICT))
    db.session.commit()
    hatinh = client.application.test_client()
    hatinh_header = api_login(hatinh, "hatinh")
    assert hatinh.get(AREAS).json == []
    assert hatinh.get(f"{AREAS}/{mine['id']}").status_code == 404
    assert hatinh.put(f"{AREAS}/{mine['id']}", json=TPQNG, headers=hatinh_header).status_code == 404
    assert hatinh.post(AREAS, json={**TPQNG, "code": "X"}, headers=hatinh_header).status_code == 403
    assert hatinh.post(AREAS, headers=hatinh_header, json={"code": "DT", "name": "Đức Thọ", "units": [
        {"level": "commune", "code": "18229"}]}).status_code == 201
    old = client.application.test_client()
    old_header = api_login(old, "huyen522")
    assert [a["code"] for a in old.get(AREAS).json] == ["TPQNG-CU"]
    resp = old.post(AREAS, headers=old_header, json={"code": "CT", "name": "Cẩm Thành", "units": [
        {"level": "commune", "code": "21025"}]})
    assert resp.status_code == 201 and resp.json["owner_unit"]["code"] == "522"
    assert old.post(AREAS, headers=old_header, json={"code": "DT2", "name": "Đức Thọ", "units": [
        {"level": "commune", "code": "18229"}]}).status_code == 403
    # The administrator sees every area.
    assert [a["code"] for a in admin.get(AREAS).json] == ["CT", "DT", "MIXED", "TPQNG-CU"]


# --- reporting areas: the page --------------------------------------------------------------------

def test_areas_page_creates_lists_links_and_deletes(client):
    login(client, "district")
    html = client.get("/reports/areas").get_data(as_text=True)
    assert "Khu vực báo cáo" in html and "Chưa có khu vực báo cáo nào." in html
    token = csrf_token(client, "/reports/areas")
    resp = client.post("/reports/areas", data={"csrf_token": token, "code": "TPQNG-CU",
                                               "name": "TP Quảng Ngãi (cũ)", "units": "522\n21172, cũ:21019"})
    assert resp.status_code == 303, resp.get_data(as_text=True)
    area = db.session.scalar(sa.select(ReportArea))
    expected = successors_of_522() | {unit("21172").id}
    assert area_communes(area.id) == expected
    html = client.get("/reports/areas").get_data(as_text=True)
    assert f'href="/reports/?level=commune&amp;area={area.id}"' in html and "TP Quảng Ngãi (cũ)" in html
    assert f"Đã lưu khu vực TPQNG-CU gồm {len(expected)} xã / phường." in html

    resp = client.post("/reports/areas", data={"csrf_token": token, "code": "TPQNG-CU", "name": "",
                                               "units": "21025 99999 21025"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "Đã có khu vực mang mã TPQNG-CU." in html and "Vui lòng nhập mục này." in html
    assert "99999: Từ ngày 1/7/2025 không có xã / phường nào mang mã 99999." in html
    assert "21025: Đã nhập hai lần." in html
    assert 'value="TPQNG-CU"' in html and "21025 99999 21025</textarea>" in html  # typed values kept
    resp = client.post("/reports/areas", data={"csrf_token": token, "code": "HT", "name": "Hà Tĩnh",
                                               "units": "21025 18229"})
    assert resp.status_code == 403 and "Ngoài địa bàn của bạn: 18229." in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReportArea)) == 1

    assert client.post(f"/reports/areas/{area.id}/delete").status_code == 400  # no CSRF token
    assert client.post(f"/reports/areas/{area.id + 100}/delete", data={"csrf_token": token}).status_code == 404
    resp = client.post(f"/reports/areas/{area.id}/delete", data={"csrf_token": token})
    assert resp.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReportArea)) == 0


def test_areas_page_refuses_without_csrf_and_in_english(client):
    login(client, "admin")
    resp = client.post("/reports/areas", data={"code": "A", "name": "A", "units": "21025"})
    assert resp.status_code == 400
    html = client.get("/reports/areas?lang=en").get_data(as_text=True)
    assert "Reporting areas" in html and "No reporting area yet." in html
    token = csrf_token(client, "/reports/areas")
    resp = client.post("/reports/areas", data={"csrf_token": token, "code": "A", "name": "A", "units": "522 12345"})
    assert resp.status_code == 422 and "12345: No commune has code 12345 since 1 July 2025." in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReportArea)) == 0


def test_areas_page_names_each_unknown_former_code(client):
    login(client, "admin")
    token = csrf_token(client, "/reports/areas")
    resp = client.post("/reports/areas", data={"csrf_token": token, "code": "X", "name": "X", "units": "999 cũ:99999"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422
    assert "999: Trước ngày 1/7/2025 không có quận / huyện nào mang mã 999." in html
    assert "cũ:99999: Trước ngày 1/7/2025 không có xã / phường nào mang mã 99999." in html


def test_units_resolve_to_the_2025_communes_they_count_for(app):
    refs = [inputs.UnitRef(UnitLevel.DISTRICT, "522", inputs.LAST_LEGACY_DAY),
            inputs.UnitRef(UnitLevel.COMMUNE, "21172"),
            inputs.UnitRef(UnitLevel.COMMUNE, "21019", inputs.LAST_LEGACY_DAY)]
    assert inputs.resolve_units(refs, today()) == ([successors_of_522(), {unit("21172").id}, {unit("21025").id}], {})


@pytest.mark.parametrize(("english", "vietnamese"), [
    (inputs.DAY_IN_FUTURE, "Ngày này chưa đến: chỉ báo tổng số của một ngày khi ngày đó đã bắt đầu."),
    (inputs.DAY_TOO_OLD, "Ngày này đã cách đây hơn 400 ngày."),
    (inputs.TOTAL_RANGE, "Nhập một số nguyên từ 0 đến 1.000.000."),
    (inputs.DAY_TWICE, "Ngày này được nhập hai lần."),
    ("Given twice (also item 1).", "Đã nhập hai lần."),
    ("District 522 has no communes.", "Đơn vị 522 không có xã / phường nào."),
    ("Unknown district code 999 on 2025-06-30.", "Trước ngày 1/7/2025 không có quận / huyện nào mang mã 999."),
    # An address's code is quoted (units.services.resolve_address): the addresses' own wording.
    ("Unknown district code '999' on 2026-01-01. Since 1 Jul 2025 there is no district level: leave "
     "district_code empty.", "Không có quận / huyện mã 999; từ ngày 01/7/2025 không còn cấp huyện."),
])
def test_report_messages_are_in_the_shared_table(app, english, vietnamese):
    with app.test_request_context(), force_locale("vi"):
        assert translate_message(english) == vietnamese
