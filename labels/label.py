"""Shipping labels as PDF: one label per page (100x150, 100x100, A6) or four per A4 sheet.

Public API::

    render_labels(items: Sequence[LabelData], size: LabelSize | str = LabelSize.L100X150,
                  *, dpi: int = 203) -> bytes
    layout_label(item: LabelData, size: LabelSize | str = LabelSize.L100X150,
                 *, dpi: int = 203) -> Layout          # what is drawn; .truncated names cut fields
    page_size_pt(size) -> (width, height)               # exact, e.g. 283.46 x 425.20 for 100x150

The layout is computed once, in millimetres from the top-left of the label, as a list of plain
primitives (text blocks, rules, boxes, a Code 128, a QR); the PDF renderer here and the ZPL
renderer (labels.zpl) draw the same list. What is the same on every label (frames and captions) is
a separate list drawn once per document as a reportlab Form XObject; only the variable part is
drawn per label. ``dpi`` is the printer's resolution: the Code 128 bars are whole dots at it
(labels.barcodes). Text that cannot fit even at its minimum size ends with "…" on the label (a clerk
sees it) and its field is listed in ``Layout.truncated``; identifiers (item id, dossier code) are
never cut: they raise LabelError instead.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from reportlab import rl_config
from reportlab.pdfbase.pdfdoc import PDFArray, PDFDictionary, PDFName, PDFStream
from reportlab.pdfgen.canvas import Canvas

from labels import s10
from labels.barcodes import MM, code128_modules, default_module_dots, draw_code128, draw_qr
from labels.fonts import ELLIPSIS, FONT, FONT_BOLD, Fit, fit_lines, nfc, register
from labels.model import LabelData, LabelError, LabelSize, Service

SUPPORTED_DPI = (203, 300, 600)
PT = 25.4 / 72.0  # millimetres per point
LEADING = 1.18
ASCENT = 0.93  # DejaVu's ascender as a fraction of the size: the baseline below a line's top
INVERSE_PAD = 0.8  # mm of black around the lines of inverse text (half of it above, half below)
MARKS = 0.16  # how far stacked marks (Ẫ Ỗ) rise above a line's top, as a fraction of the size

# Page sizes in millimetres; A4 holds four A6-sized cells (2 x 2 of 105 x 148.5 mm, exactly A4).
SIZES_MM: dict[LabelSize, tuple[float, float]] = {
    LabelSize.L100X150: (100.0, 150.0),
    LabelSize.L100X100: (100.0, 100.0),
    LabelSize.A6: (105.0, 148.0),
    LabelSize.A4: (210.0, 297.0),
}
A4_CELL_MM = (105.0, 148.5)
A4_CELL_MARGIN_MM = 6.0  # office printers leave 4–5 mm unprinted at the sheet's edge

SERVICE_TEXT = {
    Service.RESULT_TO_CITIZEN: ("TRẢ KẾT QUẢ", "Result to citizen"),
    Service.DOSSIER_TO_AGENCY: ("CHUYỂN HỒ SƠ", "Dossier to agency"),
    Service.BOTH: ("HỒ SƠ + KẾT QUẢ", "Dossier and result"),
}


# ---------------------------------------------------------------------------------------------
# Primitives (millimetres, origin at the label's top-left corner)


@dataclass(frozen=True, slots=True)
class Text:
    """Lines of text; ``y`` is the top of the first line, ``x``/``width`` the box it stays in."""

    x: float
    y: float
    width: float
    font: str
    size: float  # points
    lines: tuple[str, ...]
    align: str = "left"  # left | center | right
    inverse: bool = False  # white on a black box (amounts to collect, reprints)

    @property
    def line_mm(self) -> float:
        return self.size * LEADING * PT

    @property
    def height(self) -> float:
        return self.line_mm * len(self.lines)


@dataclass(frozen=True, slots=True)
class Rule:
    """A filled rectangle: rules, frames' sides and cut marks."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True, slots=True)
class Frame:
    """An unfilled rectangle with a line of ``stroke`` millimetres."""

    x: float
    y: float
    width: float
    height: float
    stroke: float = 0.3


@dataclass(frozen=True, slots=True)
class Barcode:
    """A Code 128 centred in ``width``; ``y`` is the top of the bars."""

    x: float
    y: float
    width: float
    value: str
    height: float
    module_dots: int


@dataclass(frozen=True, slots=True)
class Qr:
    """A QR code; ``y`` is its top; ``size`` excludes the quiet zone."""

    x: float
    y: float
    size: float
    data: str


Primitive = Text | Rule | Frame | Barcode | Qr


@dataclass(frozen=True, slots=True)
class Layout:
    """What one label shows: the static part (same on every label of a size) and the variable part."""

    width: float  # mm
    height: float
    static: tuple[Primitive, ...]
    variable: tuple[Primitive, ...]
    truncated: tuple[str, ...] = field(default=())  # fields that did not fit and end with "…"


@dataclass(frozen=True, slots=True)
class _Geometry:
    """Section boxes of one label size (mm from the top-left)."""

    width: float
    height: float
    margin: float
    header: float  # route and service
    bar: float  # the Code 128 height
    barcode_zone: float
    recipient: float
    sender: float
    compact: bool
    extra: float = 0.0  # height the dossier code's row borrows from the recipient's section


    @property
    def inner(self) -> float:
        return self.width - 2 * self.margin

    @property
    def y_barcode(self) -> float:
        return self.margin + self.header

    @property
    def y_recipient(self) -> float:
        return self.y_barcode + self.barcode_zone

    @property
    def y_sender(self) -> float:
        return self.y_recipient + self.recipient - self.extra

    @property
    def y_details(self) -> float:
        return self.y_sender + self.sender

    @property
    def details(self) -> float:
        return self.height - self.margin - self.y_details

    @property
    def qr(self) -> float:
        return min(30.0, self.details - self.extra - self.row - 6.0, self.inner * 0.3)

    @property
    def row(self) -> float:
        """Height of a details row: the rows plus the collect bar share the details section."""
        return (self.details - self.extra - 1.5 - _collect_h(self)) / len(_DETAIL_CAPTIONS)


def _geometry(width: float, height: float, margin: float, extra: float = 0.0) -> _Geometry:
    if height - 2 * margin >= 125:
        return _Geometry(width, height, margin, 19.0, 15.0, 24.0, 38.0, 18.0, False, extra)
    return _Geometry(width, height, margin, 13.0, 12.5, 19.5, 26.0, 12.0, True, extra)


def coerce_size(size: LabelSize | str) -> LabelSize:
    """``size`` as a LabelSize; LabelError listing the valid ones otherwise."""
    try:
        return LabelSize(size.lower() if isinstance(size, str) else size)
    except ValueError:
        valid = ", ".join(s.value for s in LabelSize)
        raise LabelError(f"unknown label size {size!r}: choose one of {valid}") from None


def check_dpi(dpi: int) -> int:
    """``dpi`` if a label printer has it; LabelError otherwise."""
    if dpi not in SUPPORTED_DPI:
        raise LabelError(f"unsupported printer resolution {dpi} dpi: choose 203, 300 or 600")
    return dpi


def page_size_pt(size: LabelSize | str) -> tuple[float, float]:
    """The exact page size in points."""
    w, h = SIZES_MM[coerce_size(size)]
    return w * MM, h * MM


def _label_box(size: LabelSize) -> tuple[float, float, float]:
    """(width, height, margin) in mm of one label of ``size`` (an A4 cell for A4)."""
    if size is LabelSize.A4:
        return (*A4_CELL_MM, A4_CELL_MARGIN_MM)
    w, h = SIZES_MM[size]
    return w, h, 3.0 if h >= 130 else 2.5


# ---------------------------------------------------------------------------------------------
# Layout


def _money(vnd: int) -> str:
    return f"{vnd:,}".replace(",", ".") + " ₫"


def _weight(grams: int) -> str:
    if grams < 1000:
        return f"{grams} g"
    return f"{grams / 1000:.3f}".rstrip("0").rstrip(".").replace(".", ",") + " kg"


def _postage(item: LabelData) -> str:
    """Postage due (the courier collects it), paid, or free; and the weight when known."""
    if item.postage_vnd > 0:  # short words: an amount is never cut ("Cước / Postage" is the caption)
        text = f"Thu {_money(item.postage_vnd)}"
    elif item.postage_paid_vnd > 0:
        text = f"Đã trả {_money(item.postage_paid_vnd)}"
    else:
        text = "Miễn cước"
    return text + (f" · {_weight(item.weight_g)}" if item.weight_g else "")


def _date(d: dt.date | None) -> str:
    return d.strftime("%d/%m/%Y") if d else "—"


def _appointment(item: LabelData) -> tuple[str, str]:
    """The appointment row's text and font: the date and the citizen's delivery window, if one was
    chosen ("25/11/2026 08:00–12:00", bold: a time the courier has to keep), else the date."""
    window = nfc(item.window or "")
    if not window:
        return _date(item.appointment_date), FONT
    return (f"{_date(item.appointment_date)} {window}" if item.appointment_date else window), FONT_BOLD


@lru_cache(maxsize=64)
def _static(size: LabelSize, extra: float = 0.0) -> tuple[tuple[Primitive, ...], _Geometry]:
    """Frames and captions: the same on every label of ``size`` whose dossier code takes ``extra``."""
    w, h, m = _label_box(size)
    g = _geometry(w, h, m, extra)
    cap = 6.0 if g.compact else 6.5
    x0, inner = m, g.inner
    out: list[Primitive] = [Frame(m, m, inner, h - 2 * m, 0.4)]
    for y in (g.y_barcode, g.y_recipient, g.y_sender, g.y_details):
        out.append(Rule(m, y - 0.15, inner, 0.3))
    out.append(Text(x0 + 1.5, m + 0.8, inner * 0.6, FONT, cap, ("Tuyến · Điểm dừng / Route · Stop",)))
    out.append(Text(x0 + 1.5, g.y_recipient + 0.8, inner - 3, FONT, cap, ("Người nhận / To",)))
    out.append(Text(x0 + 1.5, g.y_sender + 0.8, inner - 3, FONT, cap, ("Người gửi / From",)))
    qr_x = m + inner - g.qr - 2.0
    # The dossier code's row spans the width; the QR sits under it, beside the other rows.
    qr_y = _detail_y(g, 1) - 0.2
    out.append(Text(qr_x - 2, qr_y, g.qr + 4, FONT, cap - 0.5, ("Tra cứu / Track",), "center"))
    for i, caption in enumerate(_DETAIL_CAPTIONS):
        width = _detail_caption_w(g) - 1.0
        fit = fit_lines(caption, FONT, _detail_size(g), 4.5, width / PT, 1)
        out.append(Text(x0 + 1.5, _detail_y(g, i), width, FONT, fit.size, fit.lines))
    return tuple(out), g


_DETAIL_CAPTIONS = (
    "Mã hồ sơ / Dossier",
    "Thủ tục / Procedure",
    "Hẹn trả / Appt.",
    "Hạn / Due",
    "Cước / Postage",
    "Khiếu nại / Hotline",
    "In lúc / Printed",
)


def _detail_size(g: _Geometry) -> float:
    """The details' type: 6.5 pt (compact) or 7.5 pt, smaller where a row is lower than a line of it
    (100x100: 7 rows and the collect bar in 24.5 mm), so no row reaches into the next or the bar."""
    return min(6.5 if g.compact else 7.5, math.floor(g.row / (LEADING * PT) * 10) / 10)


def _detail_row(g: _Geometry) -> float:
    return g.row


def _shows(part: str, value: str, width_mm: float, max_lines: int) -> bool:
    """Whether ``part`` prints whole when ``value`` is fitted as the sender's address line(s)."""
    return part in " ".join(fit_lines(value, FONT, 7.0, 5.5, width_mm / PT, max_lines).lines)


def _collect_size(g: _Geometry) -> float:
    """The largest type of the "THU HỘ / COLLECT" bar (a long amount shrinks to fit its width)."""
    return 10.0 if g.compact else 13.0


def _collect_h(g: _Geometry) -> float:
    """Height of the collect bar at the bottom of the details: the black box behind its text at the
    largest size (``inverse_box``: the line, its padding and the marks stacked above the capitals), so
    the details rows above it end where the box begins, on every size (PDF and ZPL draw this layout)."""
    size = _collect_size(g)
    return size * LEADING * PT + INVERSE_PAD + size * MARKS * PT


def _detail_y(g: _Geometry, i: int) -> float:
    return g.y_details + 1.0 + i * _detail_row(g) + (g.extra if i > 0 else 0.0)


def _detail_caption_w(g: _Geometry) -> float:
    return 22.0 if g.compact else 27.0


def layout_label(item: LabelData, size: LabelSize | str = LabelSize.L100X150, *, dpi: int = 203) -> Layout:
    """Validate ``item`` and lay it out for ``size`` at ``dpi``."""
    size = coerce_size(size)
    check_dpi(dpi)
    return _layout(item, size, dpi)


DOSSIER_MIN_PT = 7.0  # identifiers are never shrunk below this, nor cut: they wrap
DOSSIER_MAX_CHARS = 64  # what intake accepts (orders.schemas.OrderIn): every size prints it whole


def _dossier_fit(item: LabelData, g: _Geometry) -> Fit:
    """The dossier code whole, at 7 pt or more, on as many lines as it needs in its column."""
    code = nfc(item.dossier_code)
    if len(code) > DOSSIER_MAX_CHARS:
        raise LabelError(f"{item.item_id}: the dossier code is longer than {DOSSIER_MAX_CHARS} characters")
    top = max(_detail_size(g), DOSSIER_MIN_PT)
    width = _value_w(g) / PT
    for lines in range(1, 5):
        fit = fit_lines(code, FONT_BOLD, top, DOSSIER_MIN_PT, width, lines)
        if not fit.truncated:
            return fit
    raise LabelError(f"{item.item_id}: the dossier code {item.dossier_code!r} is too long to print whole")


def _layout(item: LabelData, size: LabelSize, dpi: int) -> Layout:
    _check(item)
    g0 = _static(size)[1]
    fit = _dossier_fit(item, g0)
    need = len(fit.lines) * fit.size * LEADING * PT + 0.3
    extra = max(0.0, need - _detail_row(g0))
    extra = round(-(-extra // 0.5) * 0.5, 1)  # to half millimetres: few static variants to cache
    static, g = _static(size, extra)
    return _variable(item, static, g, dpi, fit)


def _value_w(g: _Geometry) -> float:
    """Width of the dossier code's row: from the captions to the frame (the QR is below it)."""
    return g.inner - 3.0 - _detail_caption_w(g)


def _check(item: LabelData) -> None:
    if not isinstance(item, LabelData):
        raise LabelError(f"expected LabelData, got {type(item).__name__}")
    if not s10.is_valid(item.item_id):
        raise LabelError(f"item id {item.item_id!r} is not a valid S10 identifier (e.g. RR123456785VN)")
    url = item.tracking_url.strip()
    if not url or not url.isascii() or not url.isprintable():
        raise LabelError(f"tracking link must be printable ASCII, got {item.tracking_url!r}")
    if not nfc(item.recipient.name):
        raise LabelError(f"{item.item_id}: the recipient has no name")
    if not nfc(item.dossier_code):
        raise LabelError(f"{item.item_id}: the dossier code is empty")
    if min(item.postage_vnd, item.collect_vnd, item.postage_paid_vnd, item.reprint) < 0:
        raise LabelError(f"{item.item_id}: amounts and the reprint count cannot be negative")
    if item.weight_g is not None and item.weight_g <= 0:
        raise LabelError(f"{item.item_id}: the weight must be a positive number of grams")


def _roomiest(text: str, font: str, sizes: tuple[float, float], width: float, room: float) -> Fit:
    """``text`` at the largest size whose lines fit ``room`` mm (names use the room they have)."""
    best = fit_lines(text, font, sizes[0], sizes[1], width, 1)
    for lines in range(2, 7):
        fit = fit_lines(text, font, sizes[0], sizes[1], width, lines)
        if len(fit.lines) * fit.size * LEADING * PT > room:
            break
        if (best.truncated, -best.size) > (fit.truncated, -fit.size):
            best = fit
    return best


def _variable(
    item: LabelData, static: tuple[Primitive, ...], g: _Geometry, dpi: int, dossier: Fit
) -> Layout:
    m, inner = g.margin, g.inner
    out: list[Primitive] = []
    truncated: list[str] = []

    def text(
        name: str,
        value: str,
        x: float,
        y: float,
        width: float,
        font: str,
        sizes: tuple[float, float],
        max_lines: int = 1,
        align: str = "left",
        inverse: bool = False,
        identifier: bool = False,
    ) -> Text:
        fit = fit_lines(value, font, sizes[0], sizes[1], width / PT, max_lines)
        if fit.truncated:
            if identifier:
                raise LabelError(f"{item.item_id}: the {name} {value!r} is too long to print whole")
            truncated.append(name)
        block = Text(x, y, width, font, fit.size, fit.lines, align, inverse)
        out.append(block)
        return block

    # Header: route and stop in large type (or "not routed yet"), the service and reprint marks.
    cap_mm = (6.0 if g.compact else 6.5) * LEADING * PT
    route_w = inner * 0.6
    big = (26.0, 12.0) if g.compact else (34.0, 14.0)
    if item.route_code:
        route = nfc(item.route_code) + (f" · {item.stop_no}" if item.stop_no is not None else "")
        text("route", route, m + 1.5, m + 1.0 + cap_mm, route_w - 2, FONT_BOLD, big, identifier=True)
    else:
        text("route", "CHƯA PHÂN TUYẾN", m + 1.5, m + 1.5 + cap_mm, route_w - 2, FONT_BOLD, (16.0, 8.0))
        text("route", "Not routed yet", m + 1.5, m + g.header - 4.5, route_w - 2, FONT, (7.0, 6.0))
    sx, sw = m + route_w, inner - route_w - 1.5
    vi, en = SERVICE_TEXT[item.service]
    y = m + 1.2
    y += text("service", vi, sx, y, sw, FONT_BOLD, (10.0 if not g.compact else 8.5, 6.0), 2, "right").height
    y += text("service", en, sx, y, sw, FONT, (7.0, 5.5), 1, "right").height + 0.6
    if item.reprint > 0:
        text(
            "reprint",
            f"IN LẠI lần {item.reprint} / Reprint",
            sx,
            y,
            sw,
            FONT_BOLD,
            (7.5, 5.5),
            1,
            "right",
            True,
        )

    # Barcode and the id in text under it.
    text_size = 9.0 if g.compact else 11.0
    text_h = text_size * LEADING * PT
    bar_y = g.y_barcode + (g.barcode_zone - g.bar - text_h) / 2
    out.append(Barcode(m, bar_y, inner, item.item_id, g.bar, default_module_dots(dpi)))
    text(
        "item id", item.item_id, m, bar_y + g.bar + 0.3, inner, FONT_BOLD, (text_size, text_size), 1, "center"
    )

    # Recipient: name, phone, full address (wrap, then shrink).
    rec = item.recipient
    y = g.y_recipient + 1.0 + cap_mm
    name_sizes = (11.0, 7.0) if g.compact else (14.0, 8.0)
    phone_h = 9.0 * LEADING * PT if rec.phone else 0.0
    # The address keeps the lines it needs at its smallest size (the commune and the province are what
    # the item is sorted and delivered by), as long as the name keeps one line at its own smallest.
    address = ", ".join(nfc(a) for a in rec.address if nfc(a)) or "—"
    addr_line = 6.0 * LEADING * PT
    spare = g.y_sender - 0.8 - y - phone_h - name_sizes[1] * LEADING * PT
    needed = len(fit_lines(address, FONT, 6.0, 6.0, (inner - 3) / PT, 99).lines)
    kept = max(2, min(needed, int(spare / addr_line)))
    name_room = g.y_sender - 0.8 - y - phone_h - kept * addr_line
    name_fit = _roomiest(rec.name, FONT_BOLD, name_sizes, (inner - 3) / PT, name_room)
    if name_fit.truncated:
        truncated.append("recipient name")
    name_block = Text(m + 1.5, y, inner - 3, FONT_BOLD, name_fit.size, name_fit.lines)
    out.append(name_block)
    y += name_block.height
    if rec.phone:
        y += text("recipient phone", f"ĐT / Tel: {rec.phone}", m + 1.5, y, inner - 3, FONT, (9.0, 6.5)).height
    room = g.y_sender - 0.8 - y
    addr_max = 8.5 if g.compact else 10.0
    lines = max(1, int(room / (6.0 * LEADING * PT)))
    fit = fit_lines(address, FONT, addr_max, 6.0, (inner - 3) / PT, lines)
    while fit.size * LEADING * PT * len(fit.lines) > room and len(fit.lines) > 1:
        lines = len(fit.lines) - 1
        fit = fit_lines(address, FONT, addr_max, 6.0, (inner - 3) / PT, lines)
    if fit.truncated:
        truncated.append("recipient address")
    out.append(Text(m + 1.5, y, inner - 3, FONT, fit.size, fit.lines))

    # Sender: the counter (or, on the dossier leg, the citizen), its address and phone, and the
    # agency deciding the procedure (on its own line where the section has room).
    snd = item.sender
    y = g.y_sender + 1.0 + cap_mm
    y += text("sender name", snd.name, m + 1.5, y, inner - 3, FONT_BOLD, (8.5, 6.0)).height
    address = ", ".join(nfc(a) for a in snd.address if nfc(a))
    phone = f"ĐT / Tel {nfc(snd.phone)}" if snd.phone and nfc(snd.phone) else ""
    agency = nfc(item.issuing_agency or "")
    if agency and agency in (nfc(snd.name), nfc(item.recipient.name)):
        agency = ""  # already printed as the sender or the recipient
    tail = ""
    if agency and g.compact:
        tail = f"CQ / Agency: {agency}"
        agency = ""
    address_lines = 1 if g.compact else 2
    value = " · ".join(p for p in (address, phone, tail) if p) or "—"
    if phone and address and not _shows(phone, value, inner - 3, address_lines):
        # The phone is never cut (on the dossier leg it is the citizen's): a long address before it
        # is shortened, ending with "…", and the field is reported as cut.
        def cut(k: int) -> str:
            return " · ".join(p for p in (address[:k].rstrip(" ,") + ELLIPSIS, phone, tail) if p)

        lo, hi = 0, len(address) - 1
        while lo < hi:  # the longest start of the address that leaves the phone whole
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if _shows(phone, cut(mid), inner - 3, address_lines) else (lo, mid - 1)
        value = cut(lo)
        truncated.append("sender address")
    y += text("sender address", value, m + 1.5, y, inner - 3, FONT, (7.0, 5.5), address_lines).height
    if agency:
        text("issuing agency", f"Cơ quan / Agency: {agency}", m + 1.5, y, inner - 3, FONT, (7.0, 5.5))

    # Details: captions are static; values at the same rows. The QR sits to the right.
    qr_x = m + inner - g.qr - 2.0
    out.append(Qr(qr_x, _detail_y(g, 1) + cap_mm, g.qr, item.tracking_url.strip()))
    vx = m + 1.5 + _detail_caption_w(g)
    vw = qr_x - 2.5 - vx
    ds = _detail_size(g)
    dates_printed = item.printed_at.strftime("%d/%m/%Y %H:%M")
    appointment, appointment_font = _appointment(item)
    out.append(Text(vx, _detail_y(g, 0), _value_w(g), FONT_BOLD, dossier.size, dossier.lines))
    values = (
        ("procedure", nfc(item.procedure_name or "") or "—", FONT, False),
        ("appointment date", appointment, appointment_font, False),
        ("due date", _date(item.due_date), FONT_BOLD if item.due_date else FONT, False),
        ("postage", _postage(item), FONT_BOLD if item.postage_vnd else FONT, False),
        ("hotline", nfc(item.hotline or "") or "—", FONT_BOLD, False),
        ("printed at", dates_printed, FONT, False),
    )
    for i, (name, value, font, ident) in enumerate(values, start=1):
        text(name, value, vx, _detail_y(g, i), vw, font, (ds, 5.0), identifier=ident)
    cy = g.height - m - _collect_h(g) - 0.5  # where the details rows end and the bar's box begins
    cw = qr_x - 2.5 - (m + 1.5)
    if item.collect_vnd > 0:
        text(
            "collect",
            f"THU HỘ / COLLECT {_money(item.collect_vnd)}",
            m + 1.5,
            cy + INVERSE_PAD / 2 + _collect_size(g) * MARKS * PT,  # the box's top at cy, whatever the size
            cw,
            FONT_BOLD,
            (_collect_size(g), 7.0),
            1,
            "left",
            True,
            identifier=True,  # an amount is never cut: LabelError rather than "…"
        )
    else:
        text("collect", "Không thu hộ / Nothing to collect", m + 1.5, cy + 1.0, cw, FONT, (ds, 5.5))
    return Layout(g.width, g.height, static, tuple(out), tuple(dict.fromkeys(truncated)))


# ---------------------------------------------------------------------------------------------
# PDF


def _draw(canvas: Canvas, prims: Sequence[Primitive], ox: float, top: float, dpi: int) -> None:
    """Draw ``prims`` with the label's top-left corner at (ox, top) in points of the page."""
    for p in prims:
        if isinstance(p, Text):
            _draw_text(canvas, p, ox, top)
        elif isinstance(p, Rule):
            canvas.rect(ox + p.x * MM, top - (p.y + p.height) * MM, p.width * MM, p.height * MM, 0, 1)
        elif isinstance(p, Frame):
            canvas.setLineWidth(p.stroke * MM)
            canvas.rect(ox + p.x * MM, top - (p.y + p.height) * MM, p.width * MM, p.height * MM, 1, 0)
        elif isinstance(p, Barcode):
            k = p.module_dots
            quiet = 10
            width_pt = (len(code128_modules(p.value)) + 2 * quiet) * k * 72.0 / dpi
            x = ox + p.x * MM + max(0.0, (p.width * MM - width_pt) / 2)
            draw_code128(
                canvas,
                x,
                top - (p.y + p.height) * MM,
                p.value,
                dpi=dpi,
                module_dots=k,
                height_mm=p.height,
                quiet_modules=quiet,
            )
        elif isinstance(p, Qr):
            draw_qr(canvas, ox + p.x * MM, top - (p.y + p.size) * MM, p.size, p.data, dpi=dpi)


def inverse_box(t: Text) -> tuple[float, float, float, float]:
    """(x, y, width, height) in mm of the black box behind inverse text: 0.8 mm around the lines and
    room above the first for marks stacked on capitals (the Ộ of "THU HỘ"), which rise above it."""
    pad = INVERSE_PAD
    marks = t.size * MARKS * PT
    return t.x - pad, t.y - pad / 2 - marks, t.width + 2 * pad, t.height + pad + marks


def _draw_text(canvas: Canvas, t: Text, ox: float, top: float) -> None:
    if not t.lines:
        return
    x0 = ox + t.x * MM
    y0 = top - t.y * MM
    if t.inverse:
        bx, by, bw, bh = inverse_box(t)
        canvas.rect(ox + bx * MM, top - (by + bh) * MM, bw * MM, bh * MM, 0, 1)
        canvas.setFillGray(1)
    canvas.setFont(t.font, t.size)
    for i, s in enumerate(t.lines):
        baseline = y0 - (i * t.line_mm + t.size * ASCENT * PT) * MM
        if t.align == "left":
            canvas.drawString(x0, baseline, s)
        elif t.align == "right":
            canvas.drawRightString(x0 + t.width * MM, baseline, s)
        else:
            canvas.drawCentredString(x0 + t.width * MM / 2, baseline, s)
    if t.inverse:
        canvas.setFillGray(0)


def _cut_marks(canvas: Canvas) -> None:
    """Crop marks on the A4 sheet's cut lines (inside the printable area) and a cross at the centre."""
    w, h = SIZES_MM[LabelSize.A4]
    cw, ch = A4_CELL_MM
    canvas.setLineWidth(0.2 * MM)
    for a, b in ((1.5, 5.0), (h - 5.0, h - 1.5)):  # vertical cut at x = 105 mm: top and bottom
        canvas.line(cw * MM, (h - a) * MM, cw * MM, (h - b) * MM)
    for a, b in ((1.5, 5.0), (w - 5.0, w - 1.5)):  # horizontal cut at y = 148.5 mm: left and right
        canvas.line(a * MM, ch * MM, b * MM, ch * MM)
    canvas.line((cw - 3) * MM, ch * MM, (cw + 3) * MM, ch * MM)
    canvas.line(cw * MM, (ch - 3) * MM, cw * MM, (ch + 3) * MM)


def _render(layouts: Iterator[Layout], size: LabelSize, dpi: int) -> bytes:
    """Draw the labels page by page; ``layouts`` is consumed lazily, so memory stays flat."""
    register()
    page_w, page_h = page_size_pt(size)
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(page_w, page_h), pageCompression=1, invariant=1)
    canvas.setTitle("Nhãn bưu gửi / Shipping labels")
    canvas.setCreator("labels (delivery-service)")
    first = next(layouts)
    forms: dict[tuple[Primitive, ...], str] = {}  # a form per static part (a long dossier code moves rows)
    per_page = 4 if size is LabelSize.A4 else 1
    cell_w, cell_h = A4_CELL_MM
    pending = itertools.chain([first], layouts)
    while page := list(itertools.islice(pending, per_page)):
        if size is LabelSize.A4:
            _cut_marks(canvas)
        for j, lay in enumerate(page):
            ox = (j % 2) * cell_w * MM if per_page > 1 else 0.0
            oy = (j // 2) * cell_h * MM if per_page > 1 else 0.0  # from the top
            top = page_h - oy
            name = forms.get(lay.static)
            if name is None:
                name = forms[lay.static] = f"static{len(forms)}"
                canvas.beginForm(name)
                _draw(canvas, lay.static, 0.0, lay.height * MM, dpi)
                canvas.endForm()
            canvas.saveState()
            canvas.translate(ox, top - lay.height * MM)
            canvas.doForm(name)
            canvas.restoreState()
            _draw(canvas, lay.variable, ox, top, dpi)
        canvas.showPage()
        _compress_last_page(canvas)
    canvas.save()
    return buf.getvalue()


_FLATE = PDFDictionary({"Filter": PDFArray([PDFName("FlateDecode")])})


def _compress_last_page(canvas: Canvas) -> None:
    """Compress the page just finished now rather than at save().

    reportlab keeps every page's content uncompressed (~17 KB a label) until it writes the file, so
    memory would grow with the batch; compressed it is ~1.5 KB. reportlab leaves a stream alone when
    its dictionary already names a filter, which is what this relies on (the raster tests check the
    pages still decode).
    """
    page = canvas._doc.Pages.pages[-1]  # noqa: SLF001  (reportlab has no public hook for this)
    if page.Contents or not page.stream:
        return
    raw = page.stream.encode("latin-1") if isinstance(page.stream, str) else page.stream
    stream = PDFStream(dictionary=PDFDictionary(dict(_FLATE.dict)), content=zlib.compress(raw))
    stream.__Comment__ = "page stream"
    page.Contents, page.stream = stream, None


def render_labels(
    items: Sequence[LabelData], size: LabelSize | str = LabelSize.L100X150, *, dpi: int = 203
) -> bytes:
    """One PDF of shipping labels: a label per page, or four per A4 sheet with cut marks."""
    size = coerce_size(size)
    check_dpi(dpi)
    if not items:
        raise LabelError("no labels to print: the batch is empty")
    layouts = (_layout(item, size, dpi) for item in items)
    # Both settings are read while drawing: shape checking costs ~20 % and our primitives are built
    # valid; ASCII85 around the compressed streams costs another ~20 % and only makes them larger.
    saved = rl_config.shapeChecking, rl_config.useA85
    rl_config.shapeChecking, rl_config.useA85 = 0, 0
    try:
        return _render(layouts, size, dpi)
    finally:
        rl_config.shapeChecking, rl_config.useA85 = saved
