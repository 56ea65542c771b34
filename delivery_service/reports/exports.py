"""The dashboard's table as files for Excel: CSV (UTF-8 with a byte-order mark, so that Excel reads
the Vietnamese letters) and XLSX (XlsxWriter in constant-memory mode), and the drill-down's orders
as CSV. Headers are Vietnamese first, then English ("Đã phát / Delivered"), whatever the reader's
language: files travel between offices.

No personal data: units' figures, and for orders only the item id, status, commune, route, dates and
the delivery window.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import xlsxwriter
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l

from delivery_service.reports.bands import LABELS, colour
from delivery_service.reports.figures import Report, Row
from delivery_service.web.display import STATUS

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


@dataclass(frozen=True)
class Column:
    """A column of the table: the Row attribute it shows and how (count, rate, hours, band, text)."""

    key: str
    title: Any  # a lazy string: its msgid is the English title
    kind: str = "count"
    rate: str | None = None  # for kind "band": the rate whose band it names


COLUMNS = (
    Column("label", _l("Unit"), "text"),
    Column("code", _l("Code"), "text"),
    Column("received", _l("Received")),
    Column("delivered", _l("Delivered")),
    Column("on_time", _l("Delivered on time")),
    Column("failed_attempts", _l("Failed attempts")),
    Column("returned", _l("Returned")),
    Column("cancelled", _l("Cancelled")),
    Column("open", _l("Still open")),
    Column("overdue", _l("Overdue")),
    Column("delivery_rate", _l("Delivery rate"), "rate"),
    Column("delivery_band", _l("Delivery rate band"), "band", "delivery_rate"),
    Column("on_time_rate", _l("On-time rate"), "rate"),
    Column("on_time_band", _l("On-time rate band"), "band", "on_time_rate"),
    Column("median_hours", _l("Median hours from handover to delivery"), "hours"),
    Column("p90_hours", _l("90th percentile hours from handover to delivery"), "hours"),
    Column("post_share", _l("Share of results sent by post"), "rate"),
    Column("post_share_band", _l("Share by post band"), "band", "post_share"),
)

TOTAL = _l("Total")


def bilingual(text: Any) -> str:
    """ "Vietnamese / English" of a lazy string (one of them when both read the same)."""
    with force_locale("vi"):
        vi = str(text)
    with force_locale("en"):
        en = str(text)
    return vi if vi == en else f"{vi} / {en}"


def filename(level: str, start: dt.date, end: dt.date, ext: str, what: str = "bao-cao") -> str:
    """bao-cao-commune-2026-03-02-2026-03-08.csv"""
    return f"{what}-{level.replace('_', '-')}-{start.isoformat()}-{end.isoformat()}.{ext}"


def _value(row: Row, col: Column, bands: Mapping[str, Sequence[float]]) -> Any:
    if col.kind == "band":
        name = colour(getattr(row, col.rate), bands[col.rate]) if col.rate in bands else None
        return " / ".join(LABELS[name]) if name else None
    return getattr(row, col.key)


def table(report: Report, bands: Mapping[str, Sequence[float]],
          label_of: Callable[[Row], str]) -> Iterator[tuple[bool, list[Any]]]:
    """(is the totals row, values) per unit then the totals: plain values (rates as fractions)."""
    for row in report.rows:
        values = [_value(row, c, bands) for c in COLUMNS]
        values[0] = label_of(row)
        yield False, values
    values = [_value(report.total, c, bands) for c in COLUMNS]
    values[0], values[1] = bilingual(TOTAL), None
    yield True, values


def safe_text(value: str) -> str:
    """Text a spreadsheet shows as text: a name starting like a formula gets a leading apostrophe
    (names of areas and units are typed by people)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def _csv_cell(value: Any, kind: str) -> Any:
    if value is None:
        return ""
    if kind == "rate":
        return f"{value * 100:.1f}"
    if kind == "hours":
        return f"{value:.1f}"
    return safe_text(value) if isinstance(value, str) else value


def _titles(rate_suffix: str) -> list[str]:
    return [bilingual(c.title) + (rate_suffix if c.kind == "rate" else "") for c in COLUMNS]


def report_csv(report: Report, header: Sequence[tuple[Any, str]], bands: Mapping[str, Sequence[float]],
               label_of: Callable[[Row], str]) -> bytes:
    """The table as CSV: a few ``label, value`` lines saying what it is, an empty line, the column
    titles, a row per unit and the totals. Rates in percent with one decimal (66.7)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    for label, value in header:
        out.writerow([bilingual(label), safe_text(value)])
    out.writerow([])
    out.writerow(_titles(" (%)"))
    for _total, values in table(report, bands, label_of):
        out.writerow([_csv_cell(v, c.kind) for v, c in zip(values, COLUMNS, strict=True)])
    return (BOM + buf.getvalue()).encode("utf-8")


def report_xlsx(report: Report, header: Sequence[tuple[Any, str]], bands: Mapping[str, Sequence[float]],
                label_of: Callable[[Row], str]) -> bytes:
    """The same table as an Excel workbook: rates as numbers formatted as percents, hours with one
    decimal; the titles row frozen. Constant-memory mode writes rows in order and keeps one in
    memory at a time (its temporary files go away when the workbook closes)."""
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"constant_memory": True})
    sheet = book.add_worksheet("Báo cáo")
    bold = book.add_format({"bold": True})
    title = book.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#EEF2F6",
                             "border": 1})
    numbers = {"count": "#,##0", "rate": "0.0%", "hours": "0.0"}
    formats = {kind: book.add_format({"num_format": numbers[kind]}) if kind in numbers else None
               for kind in ("count", "rate", "hours", "text", "band")}
    totals = {kind: book.add_format({"bold": True, "top": 1, **({"num_format": numbers[kind]}
                                                                if kind in numbers else {})})
              for kind in formats}
    sheet.set_column(0, 0, 40)
    sheet.set_column(1, 1, 12)
    sheet.set_column(2, len(COLUMNS) - 1, 16)
    r = 0
    for label, value in header:
        sheet.write_string(r, 0, bilingual(label), bold)
        sheet.write_string(r, 1, value)
        r += 1
    r += 1
    sheet.set_row(r, 45)
    for c, text in enumerate(_titles("")):
        sheet.write_string(r, c, text, title)
    sheet.freeze_panes(r + 1, 1)
    for is_total, values in table(report, bands, label_of):
        r += 1
        for c, (value, col) in enumerate(zip(values, COLUMNS, strict=True)):
            fmt = totals[col.kind] if is_total else formats[col.kind]
            if value is None:
                sheet.write_blank(r, c, None, fmt)
            elif isinstance(value, str):
                sheet.write_string(r, c, value, fmt)
            else:
                sheet.write_number(r, c, value, fmt)
    book.close()
    return buf.getvalue()


@dataclass(frozen=True)
class OrderLine:
    """One order of the drill-down list: nothing about the recipient."""

    item_id: str
    status: Any  # orders.status.Status
    commune: str
    route: str
    received_at: str  # local time, dd/mm/yyyy HH:MM
    due_date: dt.date | None
    overdue: bool
    window: str | None = None  # the delivery window the citizen chose, "08:00–12:00"


ORDER_COLUMNS = (_l("Item ID"), _l("Status"), _l("Commune / ward"), _l("Postal route"), _l("Received on"),
                 _l("Due date"), _l("Overdue"), _l("Delivery window"))


def orders_csv(header: Sequence[tuple[Any, str]], lines: Iterable[OrderLine]) -> Iterator[str]:
    """The orders as CSV text, streamed line by line (the first chunk carries the byte-order mark)."""
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\r\n")
    yes, no = bilingual(_l("Yes")), bilingual(_l("No"))
    statuses = {s: bilingual(label) for s, label in STATUS.items()}

    def flush() -> str:
        text = buf.getvalue()
        buf.seek(0)
        buf.truncate()
        return text

    for label, value in header:
        out.writerow([bilingual(label), safe_text(value)])
    out.writerow([])
    out.writerow([bilingual(t) for t in ORDER_COLUMNS])
    yield BOM + flush()
    for n, line in enumerate(lines, 1):
        out.writerow([line.item_id, statuses.get(line.status, str(line.status)), safe_text(line.commune),
                      safe_text(line.route),
                      line.received_at, line.due_date.strftime("%d/%m/%Y") if line.due_date else "",
                      yes if line.overdue else no, line.window or ""])
        if n % 500 == 0:
            yield flush()
    yield flush()
