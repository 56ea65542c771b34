"""The weekly PDF reports: one per province, former district, reporting area and the whole service,
with the dashboard's figures for the week, the units one level down with colour bands, and the trend
of the last eight weeks (docs/reports-weekly.md).

Three parts: gathering the figures (``figures()`` / ``weekly_trend()`` as the system, filtered to the
scope), drawing them (``render_pdf``: plain data in, bytes out, no Flask), and storing the file under
``REPORT_FILES_DIR`` with its ``weekly_reports`` row (``build_weekly``). Rebuilding a week replaces
both. Who may read which stored report is decided here too (``visible_scopes``).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from xml.sax.saxutils import escape

import sqlalchemy as sa
from flask import current_app
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table
from sqlalchemy.orm import aliased

from delivery_service import rules
from delivery_service.accounts.models import Role
from delivery_service.accounts.services import SYSTEM, Actor
from delivery_service.db import utcnow
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.localtime import local_now
from delivery_service.orders.services import local_today
from delivery_service.reports import bands
from delivery_service.reports.figures import (
    Cols,
    Filters,
    Level,
    Row,
    figures,
    scope_conditions,
    unit_name,
    weekly_trend,
)
from delivery_service.reports.fold import fold, upsert
from delivery_service.reports.models import (
    ReportArea,
    ReportUnit,
    WeeklyReport,
    report_area_communes,
    report_days,
)
from delivery_service.reports.units import ensure_unit_map
from delivery_service.units.models import AdminUnit, UnitLevel
from delivery_service.vietnamese import sort_key
from delivery_service.web.display import format_day
from labels.fonts import FONT, FONT_BOLD, fit_line, nfc, register, text_width

TREND_WEEKS = 8
SERVICE = "Báo cáo tuần dịch vụ BCCI"
SERVICE_EN = "Weekly report · public postal delivery of administrative results (BCCI)"

# --- colour bands ---------------------------------------------------------------------------------

# Light tints behind a dark text label: readable on screen, and in grey on a black-and-white printer.
BAND_TINTS = {"green": "#c8e6c9", "yellow": "#fff59d", "orange": "#ffcc80", "red": "#ef9a9a"}


class Band(NamedTuple):
    colour: str  # "green", "yellow", "orange" or "red"
    label_vi: str
    label_en: str


def _labelled(colour: str | None) -> Band | None:
    return None if colour is None else Band(colour, *bands.LABELS[colour])


def classify(value: float | None, limits: Sequence[float]) -> Band | None:
    """The band of a rate given its three falling thresholds (``bands.colour``) with its labels;
    None without a rate."""
    return _labelled(bands.colour(value, limits))


def band(rate_name: str, value: float | None) -> Band | None:
    """(colour, Vietnamese label, English label) of a rate (delivery_rate, on_time_rate, post_share)
    by the configured thresholds (``bands.colour_of``, as the dashboard); None without a rate."""
    return _labelled(bands.colour_of(rate_name, value))


# --- scopes ---------------------------------------------------------------------------------------

KINDS = ("all", "province", "district", "area")
# The units one level down that a scope's table lists.
LEVEL_OF = {
    "all": Level.PROVINCE,
    "province": Level.DISTRICT,
    "district": Level.COMMUNE,
    "area": Level.COMMUNE,
}
KIND_WORDS = {
    "all": ("Toàn bộ dịch vụ", "Whole service"),
    "province": ("Tỉnh, thành phố", "Province"),
    "district": ("Huyện cũ (trước 01/07/2025)", "Former district (before 1 Jul 2025)"),
    "area": ("Khu vực báo cáo", "Reporting area"),
}
LEVEL_WORDS = {
    Level.PROVINCE: ("Theo tỉnh, thành phố", "By province"),
    Level.DISTRICT: ("Theo huyện cũ", "By former district"),
    Level.COMMUNE: ("Theo xã, phường, đặc khu", "By commune"),
}


@dataclass(frozen=True)
class Scope:
    """What one report covers: ``all``, or a province, former district or reporting area by id."""

    kind: str
    id: int | None = None

    @classmethod
    def parse(cls, raw: str) -> Scope:
        """``all``, ``province:ID``, ``district:ID`` or ``area:ID``."""
        kind, _, ident = raw.strip().partition(":")
        if kind == "all" and not ident:
            return cls("all")
        if kind in KINDS[1:] and ident.isdigit():
            return cls(kind, int(ident))
        raise InvalidInput({"scope": ["The scope must be all, province:ID, district:ID or area:ID."]})

    def __str__(self) -> str:
        return self.kind if self.id is None else f"{self.kind}:{self.id}"

    @property
    def filters(self) -> Filters:
        return Filters() if self.id is None else Filters(**{self.kind: self.id})

    @property
    def level(self) -> Level:
        return LEVEL_OF[self.kind]


def scope_name(scope: Scope) -> str:
    """The scope as a heading names it: "Tỉnh Quảng Ngãi", "Huyện Sơn Tịnh (cũ), Tỉnh Quảng Ngãi"…;
    NotFound when its unit or area does not exist (or is not of its kind)."""
    if scope.kind == "all":
        return KIND_WORDS["all"][0]
    if scope.kind == "area":
        area = db.session.get(ReportArea, scope.id)
        if area is None:
            raise NotFound(f"No reporting area {scope.id}")
        return area.name
    unit = db.session.get(AdminUnit, scope.id)
    if scope.kind == "province":
        if unit is None or unit.level is not UnitLevel.PROVINCE or unit.valid_to is not None:
            raise NotFound(f"No current province {scope.id}")
        return unit_name(unit.kind, unit.name)
    if unit is None or unit.level is not UnitLevel.DISTRICT:
        raise NotFound(f"No district {scope.id}")
    name = unit_name(unit.kind, unit.name) + (" (cũ)" if unit.valid_to is not None else "")
    return f"{name}, {unit_name(unit.parent.kind, unit.parent.name)}" if unit.parent else name


def scopes_with_figures(start: dt.date, end: dt.date) -> list[Scope]:
    """The scopes built for a week: every province and former district with any figures in it (one
    query over the day rollups for both), every reporting area, and the whole service."""
    ensure_unit_map()
    days = (
        sa.select(report_days.c.commune_id).where(report_days.c.day.between(start, end)).distinct().subquery()
    )
    u = ReportUnit
    pairs = db.session.execute(
        sa.select(u.province_id, u.district_id).join(days, days.c.commune_id == u.unit_id).distinct()
    ).all()
    provinces = sorted({p for p, _d in pairs})
    districts = sorted({d for _p, d in pairs if d is not None})
    areas = db.session.scalars(sa.select(ReportArea.id).order_by(ReportArea.id))
    return (
        [Scope("all")]
        + [Scope("province", i) for i in provinces]
        + [Scope("district", i) for i in districts]
        + [Scope("area", i) for i in areas]
    )


# --- weeks ----------------------------------------------------------------------------------------


def week_of(day: dt.date) -> tuple[dt.date, dt.date]:
    """The Monday and Sunday of the week holding ``day``."""
    start = day - dt.timedelta(days=day.weekday())
    return start, start + dt.timedelta(days=6)


def last_full_week(day: dt.date) -> tuple[dt.date, dt.date]:
    """The last Monday–Sunday week that ended before ``day`` (a Friday's report: the week before)."""
    return week_of(day - dt.timedelta(days=day.weekday() + 1))


def period_words(start: dt.date, end: dt.date) -> str:
    """16/11–22/11/2026 (or 28/12/2026–03/01/2027 across a year's end)."""
    first = f"{start:%d/%m}" if start.year == end.year else format_day(start)
    return f"{first}–{format_day(end)}"


# --- the document's data --------------------------------------------------------------------------


@dataclass(frozen=True)
class WeeklyData:
    """Everything one report shows, computed: ``render_pdf`` draws it."""

    title: str
    scope_kind: str
    start: dt.date
    end: dt.date
    built_at: dt.datetime  # local time
    today: dt.date  # open and overdue orders are counted as of this day
    total: Row
    level: Level
    rows: list[Row]
    trend: list[tuple[dt.date, Row]]  # TREND_WEEKS weeks, oldest first, the report's week last
    bands: dict[str, list[float]]
    pending_events: int = 0


def gather(
    scope: Scope,
    start: dt.date,
    end: dt.date,
    *,
    today: dt.date | None = None,
    catch_up: bool = True,
    actor: Actor = SYSTEM,
) -> WeeklyData:
    """The figures of one report: exactly ``figures()`` and ``weekly_trend()`` for the scope."""
    if end < start:
        raise InvalidInput({"week": ["The period ends before it starts."]})
    name = scope_name(scope)
    today = today or local_today()
    report = figures(actor, start, end, scope.level, scope.filters, today=today, catch_up=catch_up)
    trend_start = week_of(end)[0] - dt.timedelta(weeks=TREND_WEEKS - 1)
    found = dict(weekly_trend(actor, trend_start, end, scope.filters, catch_up=False))
    trend = [
        (week, found.get(week, Row(label=week.isoformat())))
        for week in (trend_start + dt.timedelta(weeks=i) for i in range(TREND_WEEKS))
    ]
    return WeeklyData(
        title=f"{SERVICE} — {name} — {period_words(start, end)}",
        scope_kind=scope.kind,
        start=start,
        end=end,
        built_at=local_now(),
        today=today,
        total=report.total,
        level=scope.level,
        rows=report.rows,
        trend=trend,
        bands={k: list(v) for k, v in rules.current().report_bands.items()},
        pending_events=report.pending_events,
    )


# --- drawing --------------------------------------------------------------------------------------

INK = colors.black
RULE = colors.Color(0.55, 0.55, 0.55)
SHADE = colors.Color(0.92, 0.92, 0.92)
GREY = colors.Color(0.3, 0.3, 0.3)


def integer(n: int | None) -> str:
    """1234 -> "1.234" (Vietnamese grouping); None -> "—"."""
    return "—" if n is None else f"{n:,}".replace(",", ".")


def percent(value: float | None) -> str:
    """0.6667 -> "66,7 %"; None -> "—"."""
    return "—" if value is None else f"{value * 100:.1f}".replace(".", ",") + " %"


def hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}".replace(".", ",") + " giờ / h"


def _styles() -> dict[str, ParagraphStyle]:
    register()

    def style(name: str, size: float, *, bold: bool = False, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(
            name,
            fontName=FONT_BOLD if bold else FONT,
            fontSize=size,
            leading=size * 1.25,
            textColor=kw.pop("textColor", INK),
            splitLongWords=1,
            **kw,
        )

    return {
        "title": style("title", 14, bold=True, spaceAfter=1 * mm),
        "subtitle": style("subtitle", 8.5, textColor=GREY),
        "h2": style("h2", 10.5, bold=True, spaceBefore=4 * mm, spaceAfter=1.5 * mm),
        "body": style("body", 8.5),
        "cell": style("cell", 7.5),
        "cell_bold": style("cellb", 7.5, bold=True),
        "num": style("num", 7.5, alignment=TA_RIGHT),
        "num_bold": style("numb", 7.5, bold=True, alignment=TA_RIGHT),
        "head": style("head", 7, bold=True),
        "head_num": style("headn", 7, bold=True, alignment=TA_RIGHT),
        "note": style("note", 6.8, textColor=GREY, spaceAfter=0.6 * mm),
    }


def _t(text: str) -> str:
    return escape(nfc(text))


def _inline(vi: str, en: str, en_size: float = 6.5) -> str:
    """Vietnamese, then " / " and the English in smaller type on the same line."""
    return f"{_t(vi)} <font size={en_size} color='#555555'>/ {_t(en)}</font>"


def _both(vi: str, en: str, en_size: float = 6) -> str:
    """Vietnamese, and the English below it in smaller type."""
    return f"{_t(vi)}<br/><font size={en_size} color='#555555'>{_t(en)}</font>"


def _grid(header_rows: int = 1) -> list[tuple[Any, ...]]:
    return [
        ("FONTNAME", (0, 0), (-1, -1), FONT),
        ("GRID", (0, 0), (-1, -1), 0.4, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), SHADE),
        ("LEFTPADDING", (0, 0), (-1, -1), 2.5),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2.5),
        ("TOPPADDING", (0, 0), (-1, -1), 1.8),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 1.8),
    ]


CELL_PADDING = 5.0  # LEFTPADDING + RIGHTPADDING of _grid


def _figure(n: int | None, style: ParagraphStyle, width: float) -> Paragraph:
    """A count on one line of its column (``width`` points): in smaller type when it is long, rather
    than broken over two lines (a province's year, or a service-wide total, runs into millions)."""
    text = integer(n)
    room = width - CELL_PADDING
    natural = text_width(text, style.fontName, 1.0)
    if natural * style.fontSize <= room:
        return Paragraph(text, style)
    size = max(4.5, room / natural)
    smaller = ParagraphStyle(f"{style.name}-{size:.2f}", parent=style, fontSize=size, leading=size * 1.25)
    return Paragraph(text, smaller)


def _rate_cell(
    value: float | None, limits: Sequence[float], st: dict[str, ParagraphStyle], bold: bool = False
) -> tuple[Paragraph, str | None]:
    found = classify(value, limits)
    text = percent(value) + (f"<br/>{_t(found.label_vi)}" if found else "")
    return Paragraph(text, st["num_bold" if bold else "num"]), found.colour if found else None


HEADLINE = (
    ("received", "Đã nhận", "Received"),
    ("delivered", "Đã phát", "Delivered"),
    ("on_time", "Phát đúng hạn", "Delivered on time"),
    ("failed_attempts", "Số lần phát không thành công", "Failed attempts"),
    ("returned", "Chuyển hoàn", "Returned"),
    ("cancelled", "Đã hủy", "Cancelled"),
    ("abandoned", "Trong đó: hủy sau lần phát không thành công", "Of which given up after a failed attempt"),
    ("open", "Chưa xong", "Still open"),
    ("overdue", "Quá hạn", "Overdue"),
)
UNIT_COLUMNS = (
    ("received", "Đã nhận", "Received"),
    ("delivered", "Đã phát", "Delivered"),
    ("on_time", "Đúng hạn", "On time"),
    ("failed_attempts", "Phát không thành công", "Failed attempts"),
    ("returned", "Chuyển hoàn", "Returned"),
    ("open", "Chưa xong", "Still open"),
    ("overdue", "Quá hạn", "Overdue"),
)
DEFINITIONS = (
    "Số liệu theo ngày địa phương, từ thứ Hai đến Chủ nhật; giống hệt bảng điều khiển báo cáo cho cùng kỳ "
    "và phạm vi. / Figures by local day, Monday to Sunday; the same as the reports dashboard for the same "
    "period and scope.",
    "Đã nhận: đơn tạo trong kỳ. Đã phát, chuyển hoàn, đã hủy: đơn kết thúc trong kỳ, tính vào ngày kết thúc "
    "(một lần sửa sai của bưu tá trừ lại đúng phần đã tính). Đúng hạn: phát vào hoặc trước hạn phát. / "
    "Received: orders created in the period. Delivered, returned, cancelled: orders closed in the period, on "
    "the day they closed (a courier's correction takes back exactly what it undid). On time: delivered on or "
    "before the due date.",
    "Chưa xong: đơn nhận trong kỳ chưa kết thúc vào ngày lập báo cáo; quá hạn: đã qua hạn phát. / "
    "Still open: orders received in the period and not closed on the day the report was built; overdue: "
    "past their due date.",
    "Tỷ lệ phát thành công = đã phát ÷ (đã phát + chuyển hoàn + hủy sau lần phát không thành công); hủy "
    "trước khi phát là rút đơn, không tính. Tỷ lệ đúng hạn = phát đúng hạn ÷ đã phát. / Delivery rate = "
    "delivered ÷ (delivered + returned + abandoned); withdrawals before any attempt do not count. On-time "
    "rate = delivered on time ÷ delivered.",
    "Thời gian phát: số giờ từ khi bưu tá nhận đến khi phát, trung vị và phân vị 90, ước lượng trong nhóm "
    "giờ của biểu đồ. / Delivery time: hours from handover to the courier to delivery, median and 90th "
    "percentile, interpolated within the histogram's hour bins.",
    "Huyện: đơn vị trước 01/07/2025; xã mới được tính cho huyện cũ mà phần lớn xã đó thuộc về. Đơn giữ mã "
    "đơn vị có hiệu lực vào ngày tạo, và được tính theo xã, tỉnh của cơ cấu 2025. / Districts are the units "
    "before 1 Jul 2025; a 2025 commune counts for the former district most of it came from. Orders keep the "
    "unit codes valid on their date and count for the 2025 commune and province.",
)


def _band_legend(bands: dict[str, list[float]]) -> str:
    names = {
        "delivery_rate": ("tỷ lệ phát thành công", "delivery rate"),
        "on_time_rate": ("tỷ lệ đúng hạn", "on-time rate"),
    }
    parts_vi, parts_en = [], []
    for rate, (vi, en) in names.items():
        g, y, o = bands[rate]
        parts_vi.append(
            f"{vi}: Tốt ≥ {percent(g)}, Khá ≥ {percent(y)}, Cần chú ý ≥ {percent(o)}, Kém < {percent(o)}"
        )
        parts_en.append(
            f"{en}: good ≥ {percent(g)}, fair ≥ {percent(y)}, watch ≥ {percent(o)}, poor < {percent(o)}"
        )
    return (
        f"Xếp loại theo ngưỡng cấu hình — {'; '.join(parts_vi)}. / Bands by the configured thresholds — "
        f"{'; '.join(parts_en)}."
    )


def _headline(data: WeeklyData, st: dict[str, ParagraphStyle], width: float) -> Table:
    t = data.total
    rows: list[list[Any]] = [
        [
            Paragraph(_both("Chỉ tiêu", "Measure"), st["head"]),
            Paragraph(_both("Tuần này", "This week"), st["head_num"]),
            Paragraph(_both("Xếp loại", "Band"), st["head"]),
        ]
    ]
    for attr, vi, en in HEADLINE:
        figure = _figure(getattr(t, attr), st["num_bold"], width * 0.17)
        rows.append([Paragraph(_inline(vi, en), st["cell"]), figure, ""])
    rates = [
        ("delivery_rate", "Tỷ lệ phát thành công", "Delivery rate"),
        ("on_time_rate", "Tỷ lệ đúng hạn", "On-time rate"),
    ]
    if t.post_share is not None:  # only where counters' totals apply
        rates.append(("post_share", "Tỷ lệ trả kết quả qua bưu chính", "Share of results sent by post"))
    colour_rows: list[tuple[int, str]] = []
    for rate, vi, en in rates:
        value = getattr(t, rate)
        found = classify(value, data.bands[rate])
        rows.append(
            [
                Paragraph(_inline(vi, en), st["cell"]),
                Paragraph(percent(value), st["num_bold"]),
                Paragraph(_inline(found.label_vi, found.label_en) if found else "—", st["cell"]),
            ]
        )
        if found:
            colour_rows.append((len(rows) - 1, found.colour))
    for value, vi, en in (
        (t.median_hours, "Thời gian phát: trung vị", "Delivery time: median"),
        (t.p90_hours, "Thời gian phát: 90 % đơn trong vòng", "Delivery time: 90th percentile"),
    ):
        rows.append([Paragraph(_inline(vi, en), st["cell"]), Paragraph(hours(value), st["num_bold"]), ""])
    style = _grid() + [("BACKGROUND", (2, r), (2, r), colors.HexColor(BAND_TINTS[c])) for r, c in colour_rows]
    return Table(rows, colWidths=[width * 0.6, width * 0.17, width * 0.23], style=style, hAlign="LEFT")


def _unit_label(row: Row) -> str:
    if row.key is None or not row.label:
        return "(không có huyện / no district)"
    return f"{row.label} ({row.code})" if row.code else row.label


def _units(data: WeeklyData, st: dict[str, ParagraphStyle], width: float) -> Table:
    head = [Paragraph(_both("Đơn vị", "Unit"), st["head"])]
    head += [Paragraph(_both(v, e, 5.5), st["head_num"]) for _a, v, e in UNIT_COLUMNS]
    head += [
        Paragraph(_both("Tỷ lệ phát", "Delivery rate"), st["head_num"]),
        Paragraph(_both("Tỷ lệ đúng hạn", "On-time rate"), st["head_num"]),
    ]
    unit_w = width * 0.27
    rate_w = width * 0.1
    num_w = (width - unit_w - 2 * rate_w) / len(UNIT_COLUMNS)
    rows: list[list[Any]] = [head]
    style = _grid()
    for i, row in enumerate([*data.rows, data.total], start=1):
        is_total = row is data.total
        label = "Tổng cộng / Total" if is_total else _unit_label(row)
        line: list[Any] = [Paragraph(_t(label), st["cell_bold" if is_total else "cell"])]
        line += [
            _figure(getattr(row, a), st["num_bold" if is_total else "num"], num_w)
            for a, _v, _e in UNIT_COLUMNS
        ]
        for col, rate in ((8, "delivery_rate"), (9, "on_time_rate")):
            cell, colour = _rate_cell(getattr(row, rate), data.bands[rate], st, is_total)
            line.append(cell)
            if colour:
                style.append(("BACKGROUND", (col, i), (col, i), colors.HexColor(BAND_TINTS[colour])))
        rows.append(line)
    style.append(("LINEABOVE", (0, len(rows) - 1), (-1, len(rows) - 1), 1.0, INK))
    return Table(
        rows,
        colWidths=[unit_w] + [num_w] * len(UNIT_COLUMNS) + [rate_w] * 2,
        style=style,
        repeatRows=1,
        hAlign="LEFT",
    )


def _trend(data: WeeklyData, st: dict[str, ParagraphStyle], width: float) -> Table:
    head = [Paragraph(_both("Tuần", "Week"), st["head"])] + [
        Paragraph(_both(v, e), st["head_num"])
        for v, e in (
            ("Đã nhận", "Received"),
            ("Đã phát", "Delivered"),
            ("Đúng hạn", "On time"),
            ("Chuyển hoàn", "Returned"),
            ("Tỷ lệ phát", "Delivery rate"),
            ("Tỷ lệ đúng hạn", "On-time rate"),
        )
    ]
    first = width * 0.28
    num_w = (width - first) / 6
    rows: list[list[Any]] = [head]
    style = _grid()
    for i, (week, row) in enumerate(data.trend, start=1):
        bold = i == len(data.trend)
        num = st["num_bold" if bold else "num"]
        rows.append(
            [
                Paragraph(
                    period_words(week, week + dt.timedelta(days=6)), st["cell_bold" if bold else "cell"]
                ),
                _figure(row.received, num, num_w),
                _figure(row.delivered, num, num_w),
                _figure(row.on_time, num, num_w),
                _figure(row.returned, num, num_w),
                Paragraph(percent(row.delivery_rate), num),
                Paragraph(percent(row.on_time_rate), num),
            ]
        )
    return Table(rows, colWidths=[first] + [num_w] * 6, style=style, hAlign="LEFT")


def render_pdf(data: WeeklyData) -> bytes:
    """The report as an A4 portrait PDF: Vietnamese, with English subtitles in smaller type."""
    st = _styles()
    out = io.BytesIO()
    margin = 15 * mm
    width = A4[0] - 2 * margin
    built = f"{data.built_at:%d/%m/%Y %H:%M}"
    footer = f"{data.title} · lập / built {built}"

    def furniture(canv: Canvas, doc: SimpleDocTemplate) -> None:
        page = f"Trang {doc.page} · Page {doc.page}"
        # the title holds the scope's name (an area's may be 200 characters): one line, "…" if cut
        room = width - text_width(page, FONT, 6.5) - 6 * mm
        fit = fit_line(footer, FONT, 6.5, 5.0, room)
        canv.saveState()
        canv.setFillColor(GREY)
        canv.setFont(FONT, fit.size)
        canv.drawString(margin, 8 * mm, fit.lines[0] if fit.lines else "")
        canv.setFont(FONT, 6.5)
        canv.drawRightString(A4[0] - margin, 8 * mm, page)
        canv.restoreState()

    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=margin,
        rightMargin=margin,
        topMargin=margin,
        bottomMargin=margin + 3 * mm,
        title=nfc(data.title),
        author="Dịch vụ bưu chính công ích",
        creator="delivery-service reports",
        initialFontName=FONT,
    )
    kind_vi, kind_en = KIND_WORDS[data.scope_kind]
    level_vi, level_en = LEVEL_WORDS[data.level]
    story: list[Any] = [
        Paragraph(_t(data.title), st["title"]),
        Paragraph(
            _t(f"{SERVICE_EN} · {kind_en} · {format_day(data.start)}–{format_day(data.end)}"), st["subtitle"]
        ),
        Spacer(1, 2 * mm),
        Paragraph(
            _t(
                f"Phạm vi / Scope: {kind_vi} / {kind_en}. Kỳ báo cáo / Period: thứ Hai "
                f"{format_day(data.start)} – Chủ nhật {format_day(data.end)} (Monday to Sunday). Đơn đang "
                f"xử lý tính đến ngày / Open orders as of {format_day(data.today)}. Lập lúc / Built {built}."
            ),
            st["body"],
        ),
    ]
    if data.pending_events:
        story.append(
            Paragraph(
                _t(
                    f"Còn {data.pending_events} sự kiện chưa được tính vào số liệu. / "
                    f"{data.pending_events} events were not yet in the figures."
                ),
                st["body"],
            )
        )
    story += [
        Paragraph(_both("Số liệu chính", "Headline figures", 8), st["h2"]),
        _headline(data, st, width * 0.75),
    ]
    story += [Paragraph(_both(level_vi, level_en, 8), st["h2"])]
    story.append(
        _units(data, st, width)
        if data.rows
        else Paragraph(_t("Không có số liệu trong tuần này. / No figures this week."), st["body"])
    )
    story.append(
        KeepTogether(
            [
                Paragraph(
                    _both(
                        f"Xu hướng {TREND_WEEKS} tuần gần nhất", f"Trend of the last {TREND_WEEKS} weeks", 8
                    ),
                    st["h2"],
                ),
                _trend(data, st, width),
            ]
        )
    )
    notes = [
        Paragraph(_both("Định nghĩa", "Definitions", 7), st["h2"]),
        Paragraph(_t(_band_legend(data.bands)), st["note"]),
    ]
    notes += [Paragraph(_t(text), st["note"]) for text in DEFINITIONS]
    story.append(KeepTogether(notes))
    doc.build(story, onFirstPage=furniture, onLaterPages=furniture)
    return out.getvalue()


# --- storing --------------------------------------------------------------------------------------


def files_dir() -> Path:
    return Path(current_app.config["REPORT_FILES_DIR"])


def file_name(scope: Scope, start: dt.date) -> str:
    """One name per week and scope: rebuilding replaces the file."""
    return f"weekly-{start.isoformat()}-{scope.kind}{'' if scope.id is None else f'-{scope.id}'}.pdf"


def _write_atomically(path: Path, content: bytes) -> None:
    """Write to a temporary file in the same folder, then rename it over ``path``: a reader sees the
    old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_weekly(
    scope: str,
    period_start: dt.date,
    period_end: dt.date,
    *,
    today: dt.date | None = None,
    catch_up: bool = True,
) -> WeeklyReport:
    """Build, store and record one report (replacing the same week's for that scope). Flushes, does
    not commit."""
    parsed = Scope.parse(scope)
    data = gather(parsed, period_start, period_end, today=today, catch_up=catch_up)
    content = render_pdf(data)
    name = file_name(parsed, period_start)
    _write_atomically(files_dir() / name, content)
    row = {
        "period_start": period_start,
        "period_end": period_end,
        "scope": str(parsed),
        "title": data.title[:300],
        "file_name": name,
        "size_bytes": len(content),
        "created_at": utcnow(),
    }
    upsert(WeeklyReport.__table__, [row], ("period_start", "scope"), add=())
    return db.session.scalars(
        sa.select(WeeklyReport)
        .where(WeeklyReport.period_start == period_start, WeeklyReport.scope == str(parsed))
        .execution_options(populate_existing=True)
    ).one()


def build_scopes(
    period_start: dt.date,
    period_end: dt.date,
    *,
    scopes: Sequence[Scope] | None = None,
    today: dt.date | None = None,
) -> list[WeeklyReport]:
    """Fold what the log holds, then build every scope of the week (``scopes_with_figures``), each
    committed as it is done: a failure keeps the reports built before it, and a rerun replaces them."""
    fold()
    built = []
    for scope in scopes if scopes is not None else scopes_with_figures(period_start, period_end):
        built.append(build_weekly(str(scope), period_start, period_end, today=today, catch_up=False))
        db.session.commit()
    return built


# --- reading --------------------------------------------------------------------------------------


def visible_scopes(actor: Actor) -> set[str] | None:
    """The scopes of stored reports the actor may read: None for every one (administrators); for a
    district officer every province, former district and area that lies wholly inside their area
    (three grouped queries over the unit map); none for other roles."""
    if actor.role is Role.ADMIN:
        return None
    if actor.role is not Role.DISTRICT_OFFICER or actor.area_unit_id is None:
        return set()
    ensure_unit_map()
    u = aliased(ReportUnit, name="u")
    inside = sa.and_(sa.true(), *scope_conditions(actor, Cols(None, None, None, None, u, None)))
    outside = sa.func.sum(sa.case((inside, 0), else_=1))
    provinces = db.session.scalars(sa.select(u.province_id).group_by(u.province_id).having(outside == 0))
    districts = db.session.scalars(
        sa.select(u.district_id)
        .where(u.district_id.is_not(None))
        .group_by(u.district_id)
        .having(outside == 0)
    )
    a = report_area_communes
    areas = db.session.scalars(
        sa.select(a.c.area_id).join(u, u.commune_id == a.c.unit_id).group_by(a.c.area_id).having(outside == 0)
    )
    return (
        {f"province:{i}" for i in provinces}
        | {f"district:{i}" for i in districts}
        | {f"area:{i}" for i in areas}
    )


def _visible(stmt: sa.Select, scopes: set[str] | None) -> sa.Select:
    """``stmt`` narrowed to the reports of ``scopes`` (``visible_scopes``; None: every one)."""
    if scopes is None:
        return stmt
    return stmt.where(WeeklyReport.scope.in_(sorted(scopes)) if scopes else sa.false())


def stored_listing(
    actor: Actor, week: dt.date | None = None
) -> tuple[list[dt.date], dt.date | None, list[WeeklyReport]]:
    """What the list page shows, with the actor's scopes worked out once: the weeks (their Mondays)
    with reports the actor may read, newest first; the week shown (the one holding ``week``, else
    the newest); and its reports the actor may read: the whole service, provinces, districts and
    areas, each by title."""
    scopes = visible_scopes(actor)
    weeks_stmt = sa.select(WeeklyReport.period_start).distinct().order_by(WeeklyReport.period_start.desc())
    weeks = list(db.session.scalars(_visible(weeks_stmt, scopes)))
    shown = week_of(week)[0] if week else (weeks[0] if weeks else None)
    if shown is None:
        return weeks, None, []
    stmt = sa.select(WeeklyReport).where(WeeklyReport.period_start == shown)
    kind = {"all": 0, "province": 1, "district": 2}
    # titles in Vietnamese alphabetical order (ICU), not the database's byte or locale order
    reports = sorted(db.session.scalars(_visible(stmt, scopes)),
                     key=lambda r: (kind.get(r.scope.split(":", 1)[0], 3), sort_key(r.title), r.id))
    return weeks, shown, reports


def get_report(actor: Actor, report_id: int) -> WeeklyReport:
    """A stored report the actor may read; NotFound otherwise (whether or not it exists)."""
    report = db.session.get(WeeklyReport, report_id)
    scopes = visible_scopes(actor)
    if report is None or (scopes is not None and report.scope not in scopes):
        raise NotFound(f"No weekly report {report_id}")
    return report


def report_path(report: WeeklyReport) -> Path:
    return files_dir() / report.file_name


def download_name(report: WeeklyReport) -> str:
    """An ASCII file name for the download: bao-cao-tuan-2026-11-16-tinh-quang-ngai.pdf."""
    scope = Scope.parse(report.scope)
    try:
        words = scope_name(scope)
    except NotFound:
        words = str(scope)
    plain = unicodedata.normalize("NFD", words.replace("đ", "d").replace("Đ", "D"))
    slug = re.sub(
        r"[^a-z0-9]+", "-", "".join(c for c in plain if not unicodedata.combining(c)).lower()
    ).strip("-")
    return f"bao-cao-tuan-{report.period_start.isoformat()}-{slug or scope.kind}.pdf"
