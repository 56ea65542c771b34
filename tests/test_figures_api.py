"""GET /api/v1/reports/figures: the dashboard's figures as JSON, against the dashboard itself (its data
function and its page), scoped per role and for a counter's software, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import login
from test_reports import ADMIN, WEEK, book, route, unit  # noqa: F401  (book: the data set's fixture)
from test_reports_dashboard import rows_by_code

from delivery_service.accounts.models import AuditEvent, Role, User
from delivery_service.accounts.services import Actor, create_api_client, create_user
from delivery_service.errors import Forbidden, InvalidInput
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orgs.models import Counter
from delivery_service.reports.bands import LABELS
from delivery_service.reports.figures import Filters, Level, figures
from delivery_service.reports.figures_api import set_report_scope
from delivery_service.units.models import UnitLevel

URL = "/api/v1/reports/figures"
PERIOD = "start=2026-03-02&end=2026-03-08"
COUNTS = ("received", "delivered", "on_time", "failed_attempts", "returned", "cancelled", "open", "overdue")


def get(client, query: str, status: int = 200, headers: dict[str, str] | None = None) -> dict:
    resp = client.get(f"{URL}?{query}", headers=headers or {})
    assert resp.status_code == status, resp.get_data(as_text=True)[:2000]
    return resp.get_json()


def by_code(body: dict) -> dict[str | None, dict]:
    return {row["code"]: row for row in body["units"]}


def expected(row, name: str | None = None) -> dict:
    """A figures.Row as the API writes it."""
    out = {c: getattr(row, c) for c in (*COUNTS, "abandoned", "closed", "received_results", "results_total",
                                        "delivery_rate", "on_time_rate", "post_share", "median_hours",
                                        "p90_hours")}
    return {**out, "id": row.key, "code": row.code, **({"name": name} if name else {})}


def percent(rate: float | None, band: str | None) -> str:
    """A rate as the Vietnamese page writes it: "66,7% Kém"."""
    return "—" if rate is None else f"{rate * 100:.1f}".replace(".", ",") + "% " + LABELS[band][0]


def user(username: str) -> User:
    return db.session.scalar(sa.select(User).where(User.username == username))


@pytest.mark.usefixtures("book")
def test_routes_equal_the_dashboard(client):
    login(client, "admin")
    body = get(client, f"{PERIOD}&level=route")
    assert (body["level"], body["start"], body["end"]) == ("route", "2026-03-02", "2026-03-08")
    assert body["scope"] == "Toàn bộ dịch vụ" and body["pending_events"] == 0
    assert body["dashboard"] == "/reports/?start=2026-03-02&end=2026-03-08&level=route"
    # The dashboard's own data function, for the same actor and period.
    report = figures(ADMIN, *WEEK, Level.ROUTE, today=local_today())
    assert [r["code"] for r in body["units"]] == [r.code for r in report.rows]
    for got, row in zip(body["units"], report.rows, strict=True):
        assert {k: got[k] for k in expected(row)} == expected(row)
    assert {k: body["total"][k] for k in COUNTS} == {k: getattr(report.total, k) for k in COUNTS}
    # The hand-computed week (test_reports): QNG-01 delivered 2 of 3 closed, 1 on time, 8 h and 67.2 h.
    one = by_code(body)["QNG-01"]
    assert (one["received"], one["delivered"], one["on_time"], one["returned"]) == (5, 2, 1, 1)
    assert one["delivery_rate"] == pytest.approx(2 / 3) and one["on_time_rate"] == 0.5
    assert (one["median_hours"], one["p90_hours"]) == (8.0, 67.2)
    assert one["bands"] == {"delivery_rate": "red", "on_time_rate": "red", "post_share": None}
    assert by_code(body)["QNG-02"]["bands"]["delivery_rate"] == "green"
    assert body["band_limits"]["delivery_rate"] == [0.95, 0.90, 0.80]
    assert body["band_labels"]["green"] == ["Tốt", "Good"]

    # The page: every count, rate and band of every row, and the total, as the table shows them.
    page = rows_by_code(client.get(f"/reports/?{PERIOD}&level=route").get_data(as_text=True))
    assert set(page) == {*by_code(body), "total"}
    for code, cells in [(c, page[c]["cells"]) for c in by_code(body)] + [("total", page["total"]["cells"])]:
        row = body["total"] if code == "total" else by_code(body)[code]
        assert cells[1:9] == [str(row[k]) for k in COUNTS], code
        assert cells[9:11] == [percent(row[r], row["bands"][r]) for r in ("delivery_rate", "on_time_rate")]
    assert page["QNG-01"]["cells"][11:13] == ["8,0 giờ", "2,8 ngày"]  # 67.2 h


@pytest.mark.usefixtures("book")
def test_one_unit_by_code_or_id_as_the_filtered_dashboard(client):
    login(client, "district")  # the demo district officer: Quảng Ngãi
    district = unit("522", legacy=True, level=UnitLevel.DISTRICT)
    body = get(client, f"{PERIOD}&level=district&unit=522")
    assert [(r["id"], r["code"], r["received"], r["delivered"]) for r in body["units"]] == [
        (district.id, "522", 7, 3)]
    assert get(client, f"{PERIOD}&level=district&unit={district.id}")["units"] == body["units"]
    page = rows_by_code(client.get(f"/reports/?{PERIOD}&level=district&district={district.id}")
                        .get_data(as_text=True))
    assert page["522"]["cells"][1:9] == [str(body["units"][0][k]) for k in COUNTS]
    # Communes: 2025 codes, and a former commune's code for the 2025 commune it became.
    body = get(client, f"{PERIOD}&level=commune&unit=21019")
    assert [(r["code"], r["received"]) for r in body["units"]] == [("21025", 3)]
    report = figures(Actor.of_user(user("district")), *WEEK, Level.COMMUNE, Filters(commune=unit("21025").id),
                     today=local_today())
    assert body["units"][0] == {**body["units"][0], **expected(report.rows[0])}
    body = get(client, f"{PERIOD}&level=route&unit=QNG-02")
    assert [(r["code"], r["received"], r["cancelled"]) for r in body["units"]] == [("QNG-02", 2, 1)]
    assert body["dashboard"].endswith(f"level=route&route={route('QNG-02').id}")


@pytest.mark.usefixtures("book")
def test_scope_of_each_role(client, app):
    create_user(username="hatinh", full_name="Officer of Hà Tĩnh", password="demo-password",
                role=Role.DISTRICT_OFFICER, area_code="42")
    db.session.commit()
    login(client, "hatinh")
    assert get(client, f"{PERIOD}&level=route")["units"] == []
    assert get(client, f"{PERIOD}&level=commune")["total"]["received"] == 0
    for query in ("level=district&unit=522", "level=commune&unit=21025", "level=province&unit=51",
                  "level=route&unit=QNG-01", "level=counter&unit=QNG-TTHCC", "level=courier&unit=courier",
                  "level=post_office&unit=BC-QNG"):
        assert get(client, f"{PERIOD}&{query}", 404)["error"] == "unknown_unit", query
    assert get(client, f"{PERIOD}&level=route&unit=HTI-01")["units"] == []  # his, and quiet

    supervisor = app.test_client()
    login(supervisor, "supervisor")  # post office BC-QNG: both routes
    body = get(supervisor, f"{PERIOD}&level=route")
    assert set(by_code(body)) == {"QNG-01", "QNG-02"} and body["total"]["received"] == 7
    assert get(supervisor, f"{PERIOD}&level=courier&unit=courier")["units"][0]["delivered"] == 3
    for query in ("level=route&unit=HTI-01", "level=counter&unit=HTI-DUCTHO", "level=post_office&unit=BC-TAMKY"):
        get(supervisor, f"{PERIOD}&{query}", 404)

    staff = app.test_client()
    login(staff, "counter")  # counter QNG-TTHCC, which sent every order of the data set
    body = get(staff, f"{PERIOD}&level=counter")
    assert [(r["code"], r["received"]) for r in body["units"]] == [("QNG-TTHCC", 7)]
    get(staff, f"{PERIOD}&level=counter&unit=HTI-DUCTHO", 404)
    assert get(staff, f"{PERIOD}&level=commune&unit=21172")["units"][0]["received"] == 2

    courier = app.test_client()
    login(courier, "courier")
    assert get(courier, f"{PERIOD}&level=route", 403)["code"] == 403
    assert get(courier, f"{PERIOD}&level=route&unit=QNG-01", 403)["code"] == 403
    assert app.test_client().get(f"{URL}?{PERIOD}").status_code == 401


@pytest.mark.usefixtures("book")
def test_a_counters_software_sees_its_counter(client, auth):
    body = get(client, f"{PERIOD}&level=route", headers=auth)
    assert body["scope"] == db.session.scalar(sa.select(Counter.name).where(Counter.code == "QNG-TTHCC"))
    assert body["total"]["received"] == 7 and set(by_code(body)) == {"QNG-01", "QNG-02"}
    assert get(client, f"{PERIOD}&level=counter&unit=QNG-TTHCC", headers=auth)["units"][0]["delivered"] == 3
    get(client, f"{PERIOD}&level=counter&unit=QNM-TAMKY", 404, headers=auth)
    # Another counter's software sees none of it.
    _client, token = create_api_client(counter_code="HTI-DUCTHO", name="Một cửa Đức Thọ")
    db.session.commit()
    other = {"Authorization": f"Bearer {token}"}
    body = get(client, f"{PERIOD}&level=route", headers=other)
    assert body["units"] == [] and body["total"]["received"] == 0
    get(client, f"{PERIOD}&level=counter&unit=QNG-TTHCC", 404, headers=other)


@pytest.mark.usefixtures("book")
def test_an_api_client_given_a_reporting_scope(client):
    admin = Actor.of_user(user("admin"))
    portal, token = create_api_client(counter_code="HTI-DUCTHO", name="Cổng dịch vụ công tỉnh")
    set_report_scope(admin, portal.id, "51", today=local_today())  # Quảng Ngãi (2025)
    db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    body = get(client, f"{PERIOD}&level=commune", headers=headers)
    assert body["scope"] == "Tỉnh Quảng Ngãi"
    assert {k: body["total"][k] for k in COUNTS} == {k: getattr(figures(Actor.of_user(user("district")), *WEEK,
                                                                        Level.COMMUNE).total, k) for k in COUNTS}
    assert set(by_code(body)) == {"21025", "21028", "21172"}
    assert get(client, f"{PERIOD}&level=district&unit=522", headers=headers)["units"][0]["received"] == 7
    get(client, f"{PERIOD}&level=route&unit=HTI-01", 404, headers=headers)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "api_client.report_scope"))
    assert event.after == {"report_unit_id": unit("51", level=UnitLevel.PROVINCE).id}

    # A former district; then Hà Tĩnh, where none of it is; then its counter's figures again.
    set_report_scope(admin, portal.id, "522", today=local_today())
    db.session.commit()
    assert get(client, f"{PERIOD}&level=route", headers=headers)["total"]["received"] == 7
    set_report_scope(admin, portal.id, "42", today=local_today())
    db.session.commit()
    assert get(client, f"{PERIOD}&level=route", headers=headers)["total"]["received"] == 0
    get(client, f"{PERIOD}&level=district&unit=522", 404, headers=headers)
    set_report_scope(admin, portal.id, None, today=local_today())
    db.session.commit()
    body = get(client, f"{PERIOD}&level=counter", headers=headers)
    assert body["scope"] == "Bộ phận một cửa xã Đức Thọ" and body["units"] == []

    with pytest.raises(InvalidInput):
        set_report_scope(admin, portal.id, "0000", today=local_today())
    with pytest.raises(Forbidden):
        set_report_scope(Actor.of_user(user("district")), portal.id, "51", today=local_today())


@pytest.mark.parametrize("query, field", [
    ("level=ward", "level"),
    ("start=2026-02-30", "start"),
    ("start=1999-12-31", "start"),
    ("end=2101-01-01", "end"),
    ("start=2026-03-08&end=2026-03-02", "end"),
    ("start=2025-01-01&end=2026-01-02", "end"),
    ("start=2020-01-01", "start"),
    ("unit=%00", "unit"),
])
def test_bad_queries_are_422_per_field(client, auth, query, field):
    body = get(client, query, 422, headers=auth)
    assert list(body["errors"]["query"]) == [field], body
    assert body["details"][0]["field"] == field


def test_unknown_units_are_404(client, auth):
    for query in ("level=route&unit=NOPE", "level=commune&unit=99999999", "level=province&unit=9007199254740993",
                  "level=courier&unit=admin", "level=area&unit=1"):
        assert get(client, f"{PERIOD}&{query}", 404, headers=auth)["error"] == "unknown_unit", query


def test_the_period_defaults_to_this_week(client, auth):
    body = get(client, "level=counter", headers=auth)
    today = local_today()
    assert body["end"] == today.isoformat() and body["start"] <= body["end"]
    assert get(client, "start=2025-01-01&end=2026-01-01", headers=auth)["end"] == "2026-01-01"  # 366 days


def test_documented_in_the_openapi_document(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    op = spec["paths"]["/api/v1/reports/figures"]["get"]
    assert {p["name"] for p in op["parameters"]} == {"level", "start", "end", "unit"}
    assert {"200", "403", "404", "422"} <= set(op["responses"])
    schemas = spec["components"]["schemas"]
    assert {"FiguresOut", "FiguresRowOut", "FiguresBandsOut"} <= set(schemas)
    assert "median_hours" in schemas["FiguresRowOut"]["properties"]
