"""The reports dashboard (/reports): the hand-computed data set of test_reports seen through the
page, the drill-down, the exports and the charts, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pytest
from conftest import login
from test_reports import ADMIN, WEEK, book, route, unit  # noqa: F401  (book: the data set's fixture)

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import create_user
from delivery_service.extensions import db
from delivery_service.orders.services import local_today
from delivery_service.reports import bands, charts, exports, views
from delivery_service.reports import fold as folding
from delivery_service.reports.figures import Level, figures
from delivery_service.units.models import UnitLevel

PERIOD = "start=2026-03-02&end=2026-03-08"
QNG01 = "Tuyến phát Cẩm Thành – Nghĩa Lộ"
COUNTS = ("received", "delivered", "on_time", "failed_attempts", "returned", "cancelled", "open", "overdue")


class Rows(HTMLParser):
    """The rows of the page's tables: each cell's text and the row's links."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self._row: dict | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self._row = {"cells": [], "links": [], "classes": []}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
            self._row["classes"].append(attrs.get("class") or "")
        elif tag == "a" and self._row is not None:
            self._row["links"].append(attrs["href"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row["cells"].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def rows_by_code(html: str) -> dict[str, dict]:
    """Body rows by the unit code ending their first cell; the totals row as "total"."""
    result = {}
    for row in Rows(html).rows[1:]:
        first = row["cells"][0]
        result["total" if first in ("Tổng cộng", "Total") else first.rsplit(" ", 1)[-1]] = row
    return result


def args_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def page(client, path: str, status: int = 200) -> str:
    resp = client.get(path)
    assert resp.status_code == status, resp.get_data(as_text=True)[:2000]
    return resp.get_data(as_text=True)


@pytest.mark.usefixtures("book")
def test_routes_on_the_page(client):
    login(client, "admin")
    html = page(client, f"/reports/?{PERIOD}&level=route")
    rows = rows_by_code(html)
    expected = {r.code: r for r in figures(ADMIN, *WEEK, Level.ROUTE, today=local_today()).rows}
    one = rows["QNG-01"]["cells"]
    assert one[0] == f"{QNG01} QNG-01"
    # The hand-computed week (test_reports): received 5, delivered 2, 1 on time, 2 failed attempts,
    # 1 returned, none cancelled; open and overdue depend on today, as the figures say.
    assert one[1:7] == ["5", "2", "1", "2", "1", "0"]
    assert one[7:9] == [str(expected["QNG-01"].open), str(expected["QNG-01"].overdue)]
    assert one[9:13] == ["66,7% Kém", "50,0% Kém", "8,0 giờ", "2,8 ngày"]
    two = rows["QNG-02"]["cells"]
    assert two[1:7] == ["2", "1", "1", "0", "0", "1"] and two[9:12] == ["100,0% Tốt", "100,0% Tốt", "18,0 giờ"]
    total = rows["total"]["cells"]
    assert total[1:7] == ["7", "3", "2", "2", "1", "1"]
    assert "band band-red" in rows["QNG-01"]["classes"][9] and "band band-green" in rows["QNG-02"]["classes"][9]
    assert "Tỷ lệ phát thành công" in html and "Báo cáo" in html  # the table's header and the menu
    assert "Nguyễn Văn A" not in html and "0905123456" not in html


@pytest.mark.usefixtures("book")
def test_communes_and_the_drill_down(client):
    login(client, "district")
    rows = rows_by_code(page(client, f"/reports/?{PERIOD}&level=commune"))
    cells = rows["21025"]["cells"]
    assert cells[1:7] == ["3", "1", "1", "1", "1", "0"]
    assert rows["21028"]["cells"][1:4] == ["2", "1", "0"] and rows["21172"]["cells"][6] == "1"
    link = args_of(rows["21025"]["links"][0])
    assert link == {"start": "2026-03-02", "end": "2026-03-08", "level": "route", "commune": str(unit("21025").id)}

    # District (the default level) → communes of the district.
    rows = rows_by_code(page(client, f"/reports/?{PERIOD}"))
    district = unit("522", legacy=True, level=UnitLevel.DISTRICT).id
    assert rows["522"]["cells"][1:3] == ["7", "3"]
    assert args_of(rows["522"]["links"][0]) == {"start": "2026-03-02", "end": "2026-03-08", "level": "commune",
                                                "district": str(district)}

    # Commune → its routes, with the filter named and removable.
    html = page(client, rows["522"]["links"][0].replace("level=commune", "level=route")
                + f"&commune={unit('21172').id}")
    rows = rows_by_code(html)
    assert list(rows) == ["QNG-02", "total"] and rows["QNG-02"]["cells"][1] == "2"
    assert "Xã / phường:" in html and "Quận / huyện:" in html
    removes = [href for href in _links(html) if "level=route" in href and "commune=" not in href
               and "district=" in href]
    assert removes, "a link that drops the commune filter"

    # Route → its orders, 50 a page, without personal data.
    orders_url = rows["QNG-02"]["links"][0]
    assert urlsplit(orders_url).path == "/reports/orders"
    assert args_of(orders_url)["route"] == str(route("QNG-02").id)
    html = page(client, orders_url)
    lines = Rows(html).rows[1:]
    assert len(lines) == 2 and all(line["cells"][3] == "QNG-02" for line in lines)
    assert "Nguyễn Văn A" not in html and "0905123456" not in html and "Hùng Vương" not in html
    assert "/counter/orders/" not in html  # a district officer cannot open the counter's order page


def _links(html: str) -> list[str]:
    import re

    return [h.replace("&amp;", "&") for h in re.findall(r'href="([^"]+)"', html)]


@pytest.mark.usefixtures("book")
def test_orders_list_pages_and_links(client, monkeypatch):
    monkeypatch.setattr(views, "ORDERS_PER_PAGE", 2)
    login(client, "admin")
    base = f"/reports/orders?{PERIOD}&route={route('QNG-01').id}"
    html = page(client, base)
    lines = Rows(html).rows[1:]
    assert len(lines) == 2 and lines[0]["links"][0].startswith("/counter/orders/RH")
    assert "Trang 1 / 3." in html
    assert any("page=2" in href for href in _links(html))
    html = page(client, base + "&page=3")
    assert len(Rows(html).rows[1:]) == 1
    assert "Không có đơn nào ở trang này" in page(client, base + "&page=9")


@pytest.mark.usefixtures("book")
def test_bands_in_english_and_the_pending_note(client, monkeypatch):
    login(client, "admin")
    html = page(client, f"/reports/?{PERIOD}&level=route&lang=en")
    assert "Good" in html and "Poor" in html and "Delivery rate" in html
    monkeypatch.setattr(folding, "state", lambda: (41, 44, 0))  # cursor, last event, unit map
    html = page(client, f"/reports/?{PERIOD}&level=route&lang=vi")
    assert "41" in html and "3 sự kiện" in html


@pytest.mark.usefixtures("book")
def test_scope_of_each_role(client):
    create_user(username="hatinh", full_name="Officer of Hà Tĩnh", password="demo-password",
                role=Role.DISTRICT_OFFICER, area_code="42")
    db.session.commit()
    login(client, "hatinh")
    html = page(client, f"/reports/?{PERIOD}&level=route")
    assert rows_by_code(html) == {} and "Không có đơn" in html and "Tỉnh Hà Tĩnh" in html
    assert "QNG-01" not in page(client, f"/reports/orders?{PERIOD}")
    client.post("/logout", data={})

    client2 = client.application.test_client()
    login(client2, "supervisor")  # post office BC-QNG: both routes
    rows = rows_by_code(page(client2, f"/reports/?{PERIOD}&level=route"))
    assert set(rows) == {"QNG-01", "QNG-02", "total"}

    client3 = client.application.test_client()
    login(client3, "courier")
    for path in ("/reports/", "/reports/orders", "/reports/export.csv", "/reports/export.xlsx",
                 "/reports/orders.csv", "/reports/chart/trend.svg", "/reports/chart/units.svg"):
        assert client3.get(f"{path}?{PERIOD}").status_code == 403, path
    assert client.application.test_client().get("/reports/").status_code == 302  # not logged in


@pytest.mark.parametrize("query, message", [
    ("start=2026-03-08&end=2026-03-02", "kết thúc"),
    ("start=2026-02-30&end=2026-03-08", "YYYY-MM-DD"),
    ("start=2024-01-01&end=2025-12-31", "366"),
    ("level=hamlet", "cấp đơn vị"),
    ("route=abc", "Tuyến phát"),
])
def test_bad_queries_say_why(client, query, message):
    login(client, "admin")
    html = page(client, f"/reports/?{query}", status=400)
    assert message in html and 'class="error-summary"' in html
    page(client, f"/reports/orders?{query}", status=400)
    assert client.get(f"/reports/export.csv?{query}").status_code == 400


def test_default_period_is_this_week(client):
    login(client, "district")
    html = page(client, "/reports/")
    today = local_today()
    monday = today - dt.timedelta(days=today.weekday())
    assert f'name="start" type="date" value="{monday.isoformat()}"' in html
    assert f'name="end" type="date" value="{today.isoformat()}"' in html
    assert 'href="/reports/"' in page(client, "/")  # the menu


def read_csv(body: bytes) -> tuple[list[list[str]], list[str], list[list[str]]]:
    """(header lines, column titles, rows) of an export."""
    assert body.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    blank = lines.index([])
    return lines[:blank], lines[blank + 1], lines[blank + 2:]


@pytest.mark.usefixtures("book")
def test_csv_export_matches_the_figures(client):
    login(client, "admin")
    resp = client.get(f"/reports/export.csv?{PERIOD}&level=route")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="bao-cao-route-2026-03-02-2026-03-08.csv"' in resp.headers["Content-Disposition"]
    header, titles, rows = read_csv(resp.data)
    assert ["Kỳ báo cáo / Period", "02/03/2026 – 08/03/2026"] in header
    assert titles[:4] == ["Đơn vị / Unit", "Mã / Code", "Đã nhận / Received", "Đã phát / Delivered"]
    report = figures(ADMIN, *WEEK, Level.ROUTE, today=local_today())
    by_code = {r[1]: dict(zip(titles, r, strict=True)) for r in rows}
    for expected in report.rows:
        got = by_code[expected.code]
        assert got["Đơn vị / Unit"] == expected.label
        assert [int(got[t]) for t in titles[2:10]] == [getattr(expected, k) for k in COUNTS]
    one = by_code["QNG-01"]
    assert one["Tỷ lệ phát thành công / Delivery rate (%)"] == "66.7"
    assert one["Mức tỷ lệ phát thành công / Delivery rate band"] == "Kém / Poor"
    assert one["Trung vị số giờ từ bàn giao đến khi phát / Median hours from handover to delivery"] == "8.0"
    total = rows[-1]
    assert total[0] == "Tổng cộng / Total" and int(total[2]) == report.total.received == 7

    resp = client.get(f"/reports/orders.csv?{PERIOD}&route={route('QNG-01').id}")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="bao-cao-don-2026-03-02-2026-03-08.csv"' in resp.headers["Content-Disposition"]
    header, titles, rows = read_csv(resp.data)
    assert titles[0] == "Số hiệu bưu gửi / Item ID" and len(rows) == 5
    assert {r[3] for r in rows} == {"QNG-01"}
    assert "Có / Yes" in {r[6] for r in rows}  # o6 waits past its due date
    # one date format in the file: received "05/03/2026 09:00", due "06/03/2026"
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4} \d\d:\d\d", r[4]) for r in rows)
    assert all(re.fullmatch(r"\d\d/\d\d/\d{4}", r[5]) for r in rows if r[5])
    assert b"Nguy" not in resp.data and b"0905123456" not in resp.data and "Hùng".encode() not in resp.data


@pytest.mark.usefixtures("book")
def test_the_orders_export_and_list_show_the_delivery_window(client):
    import sqlalchemy as sa

    from delivery_service.orders.models import DeliveryOrder

    login(client, "admin")
    _header, titles, rows = read_csv(client.get(f"/reports/orders.csv?{PERIOD}").data)
    assert titles[-1] == "Khung giờ giao / Delivery window" and {r[-1] for r in rows} == {""}
    timed = rows[0][0]
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.item_id == timed)
                       .values(window_from_min=8 * 60, window_to_min=12 * 60))
    db.session.commit()
    _header, _titles, rows = read_csv(client.get(f"/reports/orders.csv?{PERIOD}").data)
    assert {r[0]: r[-1] for r in rows if r[-1]} == {timed: "08:00–12:00"}
    lines = {row["cells"][0]: row["cells"][-1] for row in Rows(page(client, f"/reports/orders?{PERIOD}")).rows[1:]}
    assert lines[timed] == "08:00–12:00" and set(lines.values()) == {"08:00–12:00", "—"}


@pytest.mark.usefixtures("book")
def test_xlsx_export_matches_the_figures(client):
    login(client, "admin")
    resp = client.get(f"/reports/export.xlsx?{PERIOD}&level=commune")
    assert resp.status_code == 200
    assert 'filename="bao-cao-commune-2026-03-02-2026-03-08.xlsx"' in resp.headers["Content-Disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(resp.data)).active
    cells = list(sheet.iter_rows())
    start = next(i for i, row in enumerate(cells) if row[0].value == "Đơn vị / Unit")
    titles = [c.value for c in cells[start]]
    rows = {row[1].value: {t: c for t, c in zip(titles, row, strict=True)} for row in cells[start + 1:]}
    report = figures(ADMIN, *WEEK, Level.COMMUNE, today=local_today())
    for expected in report.rows:
        got = rows[expected.code]
        assert [got[t].value for t in titles[2:10]] == [getattr(expected, k) for k in COUNTS]
    rate = rows["21025"]["Tỷ lệ phát thành công / Delivery rate"]
    assert rate.value == pytest.approx(report.rows[0].delivery_rate if report.rows[0].code == "21025"
                                       else next(r for r in report.rows if r.code == "21025").delivery_rate)
    assert rate.number_format == "0.0%"
    total = cells[-1]
    assert total[0].value == "Tổng cộng / Total" and total[2].value == report.total.received == 7


SVG = "{http://www.w3.org/2000/svg}"


def svg_of(body: bytes) -> ET.Element:
    root = ET.fromstring(body)  # well-formed XML, or this raises
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title").text and root.find(f"{SVG}desc").text
    return root


def marks(root: ET.Element, tag: str, kind: str) -> list[ET.Element]:
    return [e for e in root.iter(f"{SVG}{tag}") if e.get("class") == kind]


def no_matplotlib() -> bool:
    return not any(name == "matplotlib" or name.startswith("matplotlib.") for name in sys.modules)


@pytest.mark.usefixtures("book")
def test_charts_are_small_svg_drawn_from_the_figures(client):
    login(client, "admin")
    for name, text in (("units", QNG01), ("trend", "Xu hướng theo tuần")):
        resp = client.get(f"/reports/chart/{name}.svg?{PERIOD}&level=route")
        assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"
        assert resp.headers["Cache-Control"].startswith("private")
        svg_of(resp.data)
        assert text in resp.get_data(as_text=True) and len(resp.data) < 80_000

    # The units chart: one bar per route, lowest rate on top, its length the rate, the band's colour
    # and its name written beside it (QNG-01: 2 delivered of 3 closed; QNG-02: 1 of 1).
    root = svg_of(client.get(f"/reports/chart/units.svg?{PERIOD}&level=route").data)
    bars = marks(root, "rect", "unit")
    assert [(b.get("data-band"), round(float(b.get("data-rate")), 4)) for b in bars] == [
        ("red", 0.6667), ("green", 1.0)]
    assert float(bars[0].get("y")) < float(bars[1].get("y"))
    widths = [float(b.get("width")) for b in bars]
    assert widths[0] / widths[1] == pytest.approx(2 / 3, abs=0.01)
    assert bars[0].get("fill") == charts.BAND_COLOURS["red"] and QNG01 in bars[0].find(f"{SVG}title").text
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "66,7 % · Kém" in texts and "100,0 % · Tốt" in texts and "50 %" in texts

    # The trend: eight weeks up to the period's, the period's week with its 7 received and 3
    # delivered (test_reports.test_weekly_trend), bar heights in proportion, the rate as a point.
    root = svg_of(client.get(f"/reports/chart/trend.svg?{PERIOD}&level=route").data)
    received = {b.get("data-week"): b for b in marks(root, "rect", "received")}
    delivered = {b.get("data-week"): b for b in marks(root, "rect", "delivered")}
    assert received["2026-03-02"].get("data-value") == "7" and delivered["2026-03-02"].get("data-value") == "3"
    assert float(delivered["2026-03-02"].get("height")) / float(received["2026-03-02"].get("height")) == \
        pytest.approx(3 / 7, abs=0.01)
    points = marks(root, "circle", "rate")
    assert [(p.get("data-week"), round(float(p.get("data-rate")), 2)) for p in points] == [("2026-03-02", 0.75)]
    assert "Tuần từ 02/03/2026: tiếp nhận 7, đã phát 3, tỷ lệ 75,0 %." in root.find(f"{SVG}desc").text

    html = page(client, f"/reports/?{PERIOD}&level=route")
    assert "/reports/chart/units.svg?" in html and "/reports/chart/trend.svg?" in html
    assert no_matplotlib()


def test_the_charts_draw_what_they_are_given():
    weeks = [charts.Week(dt.date(2026, 1, 5) + dt.timedelta(weeks=i), 1000 * (i + 1), 900 * (i + 1),
                         0.9 if i != 3 else None) for i in range(30)]
    root = svg_of(charts.trend_svg(weeks, "05/01/2026 – 27/07/2026"))
    heights = [float(b.get("height")) for b in marks(root, "rect", "received")]
    assert len(heights) == 30 and heights[29] / heights[0] == pytest.approx(30, rel=0.01)
    assert len(marks(root, "circle", "rate")) == 29  # a week without a closed delivery has no rate
    polyline = next(root.iter(f"{SVG}polyline"))
    assert len(polyline.get("points").split()) == 29
    ticks = [t.text for t in root.iter(f"{SVG}text")]
    assert "30.000" in ticks and "100 %" in ticks  # Vietnamese grouping, the rate axis
    assert charts.nice_ticks(22_000) == [0, 5_000, 10_000, 15_000, 20_000, 25_000]
    assert charts.nice_ticks(7) == [0, 2, 4, 6, 8] and charts.nice_ticks(0) == [0, 1]
    assert charts.nice_ticks(1) == [0, 1] and charts.nice_ticks(13) == [0, 5, 10, 15]

    # Names from the database are escaped; nothing to draw says so.
    odd = charts.Bar('Xã <b>"A&B"</b>', 0.5, "red")
    root = svg_of(charts.units_svg([odd]))
    assert 'Xã <b>"A&B"</b>' in [t.text for t in root.iter(f"{SVG}text")]
    assert "Chưa có đơn nào" in charts.units_svg([]).decode()
    assert "Không có số liệu" in charts.trend_svg([]).decode()
    svg_of(charts.units_svg([])), svg_of(charts.trend_svg([]))
    # A changed figure changes the drawing.
    assert charts.trend_svg(weeks[:8]) != charts.trend_svg([*weeks[:7], charts.Week(weeks[7].start, 8001, 7200, 0.9)])
    assert no_matplotlib()


def test_bands_and_the_units_chart_cut_at_30():
    limits = (0.95, 0.90, 0.80)
    assert [bands.colour(v, limits) for v in (1.0, 0.95, 0.9, 0.85, 0.8, 0.79, None)] == \
        ["green", "green", "yellow", "orange", "orange", "red", None]
    bars = [charts.Bar(f"Tuyến số {i:02d}", i / 40, bands.colour(i / 40, limits)) for i in range(41)]
    svg = charts.units_svg(bars).decode()
    assert "30 đơn vị có tỷ lệ thấp nhất trên tổng số 41" in svg
    assert "Tuyến số 29" in svg and "Tuyến số 30" not in svg  # the lowest rates are kept
    assert len(marks(svg_of(svg.encode()), "rect", "unit")) == 30


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_table_formats_write_what_babel_writes(app, lang):
    """The table's cells are formatted without Babel (views.TableFormats): the same text."""
    import random

    from flask_babel import force_locale, format_decimal, format_percent

    rng = random.Random(15)
    rates = [0.0, 0.0005, 0.00049, 0.6665, 0.66666, 0.99949, 0.9995, 1.0, 12.3456, 123.4565, None]
    rates += [rng.random() for _ in range(2000)] + [rng.randint(0, 3000) / rng.randint(1, 3000) for _ in range(2000)]
    hours = [0.0, 0.05, 0.15, 0.25, 8.0, 47.95, 47.99, 48.0, 66.6, 1234.25, None]
    hours += [round(rng.uniform(0, 1000), rng.choice((1, 2, 3))) for _ in range(2000)]
    with app.test_request_context(f"/?lang={lang}"), force_locale(lang):
        f = views.TableFormats({"delivery_rate": (0.95, 0.9, 0.8)})
        for n in (0, 5, 999, 1000, 123456, 10**9):
            assert f.count(n) == format_decimal(n)
        for v in rates:
            assert f.rate(v) == ("—" if v is None else format_percent(v, "#,##0.0%")) == views.fmt_rate(v)
        for h in hours:
            assert f.hours(h) == views.fmt_hours(h)
        assert f.rate_cell("delivery_rate", 0.5).startswith('<td class="rate band band-red">50')
        assert f.rate_cell("delivery_rate", None) == '<td class="rate">—</td>'


def test_exported_text_never_runs_as_a_formula():
    assert exports.safe_text("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert exports.safe_text("Xã Tịnh Khê") == "Xã Tịnh Khê"


@pytest.mark.usefixtures("book")
def test_the_page_and_its_charts_follow_a_new_event(client, request):
    """The page, its table and both charts are reused while nothing changes (figures(memo=True), the
    rows' HTML, the drawings), and show a new delivery as soon as it is folded."""
    from test_reports import S, at

    data = request.getfixturevalue("book")
    login(client, "admin")
    path = f"/reports/?{PERIOD}&level=district"
    charts_of = {name: f"/reports/chart/{name}.svg?{PERIOD}&level=district" for name in ("units", "trend")}
    before = rows_by_code(page(client, path))
    drawn = {name: client.get(url).data for name, url in charts_of.items()}
    assert rows_by_code(page(client, path)) == before
    assert {name: client.get(url).data for name, url in charts_of.items()} == drawn
    received, delivered = (int(x) for x in before["522"]["cells"][1:3])

    o = data.order(unit("21028"), at("2026-03-06"), "2026-03-20")
    data.event(o, S.CREATED, S.ASSIGNED, at("2026-03-06", "09:01"), by=None, route_id=route("QNG-01").id)
    data.event(o, S.ASSIGNED, S.HANDED_TO_COURIER, at("2026-03-07", "08:00"))
    data.event(o, S.HANDED_TO_COURIER, S.OUT_FOR_DELIVERY, at("2026-03-07", "08:30"))
    data.event(o, S.OUT_FOR_DELIVERY, S.DELIVERED, at("2026-03-07", "10:00"))
    db.session.commit()

    after = rows_by_code(page(client, path))
    assert after["522"]["cells"][1:3] == [str(received + 1), str(delivered + 1)]
    assert after["total"]["cells"][1:3] == [str(int(before["total"]["cells"][1]) + 1),
                                            str(int(before["total"]["cells"][2]) + 1)]
    for name, url in charts_of.items():
        assert client.get(url).data != drawn[name], name
    week = {b.get("data-week"): b.get("data-value") for b in marks(svg_of(drawn["trend"]), "rect", "received")}
    now = {b.get("data-week"): b.get("data-value") for b in
           marks(svg_of(client.get(charts_of["trend"]).data), "rect", "received")}
    assert int(now["2026-03-02"]) == int(week["2026-03-02"]) + 1


@pytest.mark.usefixtures("book")
def test_a_kept_report_keeps_the_html_of_a_few_pages_only(client, app):
    """The rows' HTML a kept report holds is bounded: the page number alone goes to 1,000,000."""
    login(client, "admin")
    for n in range(1, views.RENDERED_KEPT + 4):
        page(client, f"/reports/?{PERIOD}&level=district&page={n}")
    kept = [value for value, _ in app.extensions["report_memo"].values() if hasattr(value, "report")]
    assert kept and all(0 < len(k.report.rendered) <= views.RENDERED_KEPT for k in kept)
