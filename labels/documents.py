"""Office documents: the citizen's receipt, the handover manifest and the courier's run sheet (PDF).

Public API::

    render_receipt(data: ReceiptData, size: str = "a5", *, dpi: int = 300) -> bytes   # A5 or A4
    render_manifest(data: ManifestData, *, dpi: int = 300) -> bytes                    # A4 portrait
    render_run_sheet(data: RunSheetData, *, dpi: int = 300) -> bytes                   # A4 portrait

Layout is reportlab platypus: every free text (names, addresses, procedures, notes) is an escaped
Paragraph in DejaVu Sans that wraps inside its cell or column, so nothing runs off the page; long
tables continue on further pages with their header row repeated, and every multi-page document
prints "Trang x/y · Page x of y". Captions are Vietnamese first, English second. Bars of every
Code 128 are whole dots of the printer's ``dpi`` and start on a dot of that grid (see
:func:`labels.barcodes.draw_code128`); QR modules are drawn as rectangles by
:func:`labels.barcodes.draw_qr`. Amounts are whole đồng, printed as ``26.000 ₫``.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import math
from collections.abc import Callable, Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    KeepTogether,
    LayoutError,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
)

from labels import barcodes
from labels.fonts import FONT, FONT_BOLD, fit_lines, nfc, register, text_width
from labels.model import (
    LabelError,
    ManifestData,
    ManifestKind,
    ManifestLine,
    ReceiptData,
    RunSheetData,
    RunSheetStop,
    Service,
)

RECEIPT_SIZES: dict[str, tuple[float, float]] = {"a5": A5, "a4": A4}
SERVICE_WORDS: dict[Service, str] = {
    Service.RESULT_TO_CITIZEN: "Trả kết quả đến tận nhà / Result delivered to your home",
    Service.DOSSIER_TO_AGENCY: "Chuyển hồ sơ đến cơ quan / Dossier carried to the agency",
    Service.BOTH: (
        "Chuyển hồ sơ đến cơ quan và trả kết quả đến tận nhà / "
        "Dossier carried to the agency and result delivered to your home"
    ),
}
MANIFEST_KIND_WORDS: dict[ManifestKind, str] = {
    ManifestKind.COUNTER_TO_COURIER: "Bàn giao từ quầy cho bưu tá / Counter to courier",
    ManifestKind.COURIER_TO_AGENCY: "Bàn giao hồ sơ từ bưu tá cho cơ quan / Courier to agency",
    ManifestKind.COURIER_TO_COUNTER: "Bưu tá trả lại quầy (chuyển hoàn) / Courier returns to counter",
}
NO_ORDERS = "Không có đơn nào / No orders"
EMPTY_MANIFEST = "A manifest needs at least one item"
INK = colors.black
RULE = colors.Color(0.45, 0.45, 0.45)
SHADE = colors.Color(0.90, 0.90, 0.90)


# ---------------------------------------------------------------------------------------------
# small formatting helpers


def _vnd(amount: int) -> str:
    """Whole đồng with dots between thousands, as Vietnamese prints them: ``1.250.000 ₫``."""
    return f"{amount:,}".replace(",", ".") + " ₫"


def _date(value: dt.date | None) -> str:
    return value.strftime("%d/%m/%Y") if value is not None else "—"


def _datetime(value: dt.datetime) -> str:
    return value.strftime("%d/%m/%Y %H:%M")


def _km(metres: float) -> str:
    return f"{metres / 1000:.1f}".replace(".", ",") + " km"


def _t(text: str | None) -> str:
    """NFC text escaped for a Paragraph (names may hold & < >); newlines become line breaks."""
    return escape(nfc(text or "")).replace("\n", "<br/>")


def _check_dpi(dpi: int) -> None:
    if not isinstance(dpi, int) or not 100 <= dpi <= 1200:
        raise LabelError(f"printer dpi must be a whole number from 100 to 1200 (203, 300, 600), got {dpi!r}")


def _ident(value: str, what: str) -> str:
    """An identifier drawn as a barcode: NFC, no blanks; refused when empty or not printable."""
    value = nfc(value)
    if not value or any(c.isspace() for c in value) or not value.isprintable():
        raise LabelError(f"{what} must be a non-empty printable identifier without spaces, got {value!r}")
    if not value.isascii():
        raise LabelError(f"{what} must be ASCII to be printed as Code 128, got {value!r}")
    return value


class _Styles:
    """Paragraph styles of one document; ``scale`` enlarges everything for an A4 receipt."""

    def __init__(self, scale: float = 1.0) -> None:
        register()

        def style(name: str, size: float, *, bold: bool = False, **kw: Any) -> ParagraphStyle:
            kw.setdefault("textColor", INK)
            kw.setdefault("leading", size * scale * 1.22)
            return ParagraphStyle(
                name,
                fontName=FONT_BOLD if bold else FONT,
                fontSize=size * scale,
                splitLongWords=1,
                **kw,
            )

        self.title = style("title", 15, bold=True, spaceAfter=1 * mm)
        self.subtitle = style("subtitle", 9.5)
        self.h2 = style("h2", 10.5, bold=True, spaceBefore=3 * mm, spaceAfter=1.5 * mm)
        self.body = style("body", 9)
        self.bold = style("bold", 9, bold=True)
        self.body_right = style("body_right", 9, alignment=TA_RIGHT)
        self.small = style("small", 7.5)
        self.caption = style("caption", 7.5, textColor=colors.Color(0.25, 0.25, 0.25))
        self.cell = style("cell", 7.5)
        self.cell_bold = style("cell_bold", 7.5, bold=True)
        self.cell_right = style("cell_right", 7.5, alignment=TA_RIGHT)
        self.head = style("head", 7, bold=True)
        self.head_right = style("head_right", 7, bold=True, alignment=TA_RIGHT)
        self.ident = style("ident", 11, bold=True, alignment=TA_CENTER)
        self.stop_no = style("stop_no", 18, bold=True, alignment=TA_CENTER, leading=21)
        self.center_small = style("center_small", 6.5, alignment=TA_CENTER)
        self.note = style("note", 8.5, textColor=colors.Color(0.2, 0.2, 0.2))


def _p(markup: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph(markup, style)


# ---------------------------------------------------------------------------------------------
# barcodes inside platypus


class _Symbol(Flowable):
    """A barcode of fixed size drawn in page coordinates: the symbols put their bars and modules on
    the printer's dot grid of the coordinates they are given, and platypus only translates."""

    width: float
    height: float

    def wrap(self, avail_width: float, avail_height: float) -> tuple[float, float]:
        return self.width, self.height

    def draw(self) -> None:
        canv = self.canv
        ax, ay = canv.absolutePosition(0.0, 0.0)
        canv.saveState()
        canv.translate(-ax, -ay)
        self.paint(canv, ax, ay)
        canv.restoreState()

    def paint(self, canv: Canvas, x: float, y: float) -> None:
        raise NotImplementedError


class _Code128(_Symbol):
    """A Code 128 symbol with its quiet zones in the flow, its bars on the printer's dot grid."""

    def __init__(
        self, value: str, *, dpi: int, height_mm: float, module_dots: int | None = None, align: str = "CENTER"
    ) -> None:
        super().__init__()
        self.value = value
        self.dpi = dpi
        self.height_mm = height_mm
        self.module_dots = barcodes.default_module_dots(dpi) if module_dots is None else module_dots
        self.hAlign = align
        dot = barcodes.dot_pt(dpi)
        modules = len(barcodes.code128_modules(value)) + 2 * barcodes.MIN_QUIET_MODULES
        self.width = modules * self.module_dots * dot + dot  # one dot for the snap to the grid
        self.height = barcodes.mm_to_pt(height_mm)

    def paint(self, canv: Canvas, x: float, y: float) -> None:
        barcodes.draw_code128(canv, x, y, self.value, dpi=self.dpi, module_dots=self.module_dots,
                              height_mm=self.height_mm)


class _QR(_Symbol):
    """A QR code whose symbol is at most ``size_mm``, with a 4-module quiet zone around it."""

    def __init__(self, data: str, size_mm: float, *, dpi: int, align: str = "CENTER") -> None:
        super().__init__()
        self.data = data
        self.size_mm = size_mm
        self.dpi = dpi
        self.hAlign = align
        n = len(barcodes.qr_matrix(data))
        self.quiet = 4 * barcodes.mm_to_pt(size_mm) / n
        self.width = self.height = barcodes.mm_to_pt(size_mm) + 2 * self.quiet

    def paint(self, canv: Canvas, x: float, y: float) -> None:
        barcodes.draw_qr(canv, x + self.quiet, y + self.quiet, self.size_mm, self.data, dpi=self.dpi)


def _compact_dots(dpi: int) -> int:
    """Module width for barcodes that must stay narrow (manifest id, run-sheet items): >= 0.25 mm."""
    return max(1, math.ceil(0.25 * dpi / 25.4 - 1e-9))


# ---------------------------------------------------------------------------------------------
# page furniture: "page x of y" needs the page count, known only once the story is laid out


PageHook = Callable[[Canvas, int, int], None]


class _NumberedCanvas(Canvas):
    """Keeps every page until the end, then draws ``furniture(canvas, page, pages)`` on each."""

    def __init__(self, *args: Any, furniture: PageHook, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._furniture = furniture
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:  # noqa: N802  (reportlab's name)
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        total = len(self._pages)
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self._furniture(self, number, total)
            super().showPage()
        super().save()


def _build(
    story: Sequence[Flowable],
    pagesize: tuple[float, float],
    *,
    title: str,
    margins: tuple[float, float, float, float],
    furniture: PageHook,
) -> tuple[bytes, int]:
    """Lay ``story`` out on pages of ``pagesize`` (margins top, right, bottom, left in points).

    Returns the PDF and its page count. The frame has no padding of its own: the margins are the
    edges of the text, and tables as wide as the frame line up with the paragraphs.
    """
    out = io.BytesIO()
    top, right, bottom, left = margins
    width, height = pagesize
    frame = Frame(
        left,
        bottom,
        width - left - right,
        height - top - bottom,
        leftPadding=0,
        rightPadding=0,
        topPadding=0,
        bottomPadding=0,
        id="body",
    )
    doc = BaseDocTemplate(
        out,
        pagesize=pagesize,
        topMargin=top,
        rightMargin=right,
        bottomMargin=bottom,
        leftMargin=left,
        title=title,
        author="Dịch vụ bưu chính công ích",
        creator="delivery-service labels",
        initialFontName=FONT,
        pageTemplates=[PageTemplate(id="page", frames=[frame], pagesize=pagesize)],
    )
    pages: list[int] = []

    def furniture_and_count(canv: Canvas, page: int, total: int) -> None:
        furniture(canv, page, total)
        pages.append(total)

    try:
        doc.build(list(story), canvasmaker=functools.partial(_NumberedCanvas, furniture=furniture_and_count))
    except LayoutError as exc:  # a single cell taller than a page: say so rather than crash
        raise LabelError(f"text too long to lay out on a page: {exc}") from exc
    return out.getvalue(), pages[0] if pages else 1


def _footer(canv: Canvas, page: int, pages: int, *, left_text: str, pagesize: tuple[float, float]) -> None:
    """Page number (right) and the document's identity (left) at the bottom of each page."""
    width, _ = pagesize
    canv.saveState()
    canv.setFillColor(INK)
    canv.setFont(FONT, 7.5)
    canv.drawRightString(width - 15 * mm, 9 * mm, f"Trang {page}/{pages} · Page {page} of {pages}")
    fit = fit_lines(left_text, FONT, 7.5, 6, width - 30 * mm - 45 * mm, 1)
    canv.setFont(FONT, fit.size)
    canv.drawString(15 * mm, 9 * mm, fit.lines[0] if fit.lines else "")
    canv.restoreState()


def _table(rows: list[list[Any]], *, style: list[tuple[Any, ...]], **kwargs: Any) -> Table:
    """A platypus Table whose cells default to DejaVu (reportlab's default would pull in Helvetica)."""
    return Table(rows, style=[("FONTNAME", (0, 0), (-1, -1), FONT), *style], **kwargs)


def _grid_style(header_rows: int = 1) -> list[tuple[Any, ...]]:
    return [
        ("GRID", (0, 0), (-1, -1), 0.5, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), SHADE),
    ]


def _party_markup(party_name: str, address: Sequence[str], phone: str | None) -> str:
    parts = [f"<b>{_t(party_name)}</b>"]
    parts += [_t(line) for line in address if nfc(line)]
    if phone and nfc(phone):
        parts.append(f"ĐT / Tel: {_t(phone)}")
    return "<br/>".join(parts)


# ---------------------------------------------------------------------------------------------
# the citizen's receipt


RECEIPT_SCALES: dict[str, tuple[float, ...]] = {"a5": (1.0, 0.92, 0.84, 0.76), "a4": (1.25, 1.12, 1.0, 0.9)}


def render_receipt(data: ReceiptData, size: str = "a5", *, dpi: int = 300) -> bytes:
    """The citizen's receipt (biên nhận), A5 by default or A4: service, ids, fees, tracking, hotline.

    Long texts wrap; if the receipt does not fit one page its type shrinks in steps (down to 76 %
    on A5), and only then does it continue on a second, numbered page: nothing is ever cut.
    """
    key = size.strip().lower() if isinstance(size, str) else ""
    if key not in RECEIPT_SIZES:
        raise LabelError(f"receipt size must be one of {', '.join(sorted(RECEIPT_SIZES))}, got {size!r}")
    pagesize = RECEIPT_SIZES[key]
    _check_dpi(dpi)
    item_id = _ident(data.item_id, "item id")
    url = nfc(data.tracking_url)
    if not url:
        raise LabelError("the receipt needs a tracking URL")
    margin = 10 * mm if key == "a5" else 15 * mm
    furniture = functools.partial(_receipt_furniture, item_id=item_id, pagesize=pagesize)
    pdf = b""
    for scale in RECEIPT_SCALES[key]:
        pdf, pages = _build(
            _receipt_story(data, item_id, url, key, scale, dpi, pagesize[0] - 2 * margin),
            pagesize,
            title=f"Biên nhận / Receipt {item_id}",
            margins=(margin, margin, margin + 4 * mm, margin),
            furniture=furniture,
        )
        if pages == 1:
            break
    return pdf


def _receipt_story(
    data: ReceiptData, item_id: str, url: str, key: str, scale: float, dpi: int, frame_w: float
) -> list[Flowable]:
    st = _Styles(scale)
    # heading: title on the left, the tracking QR on the right
    qr_mm = (24.0 if key == "a5" else 30.0) * min(1.0, scale)
    heading_left = [
        _p("BIÊN NHẬN / RECEIPT", st.title),
        _p("Dịch vụ bưu chính công ích / Public postal service", st.subtitle),
        Spacer(1, 2 * mm),
        _p("Nơi tiếp nhận / Registered at", st.caption),
        _p(_party_markup(data.counter.name, data.counter.address, data.counter.phone), st.body),
    ]
    qr = _QR(url, qr_mm, dpi=dpi, align="RIGHT")
    heading = _table(
        [[heading_left, qr]],
        colWidths=[frame_w - qr.width, qr.width],
        style=[
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("RIGHTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 0),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 0),
        ],
    )

    barcode_block = [
        Spacer(1, 3 * mm),
        _Code128(item_id, dpi=dpi, height_mm=13.0 if key == "a5" else 15.0),
        Spacer(1, 1 * mm),
        _p(f"Mã bưu gửi / Item ID: {escape(item_id)}", st.ident),
        Spacer(1, 3 * mm),
    ]

    cap_w = 38 * mm * scale
    rows: list[list[Any]] = [
        ["Dịch vụ / Service", _p(f"<b>{_t(SERVICE_WORDS[data.service])}</b>", st.body)],
        ["Thủ tục / Procedure", _p(_t(data.procedure_name), st.body)],
        ["Cơ quan giải quyết / Issuing agency", _p(_t(data.issuing_agency), st.body)],
        ["Mã hồ sơ / Dossier code", _p(f"<b>{_t(data.dossier_code)}</b>", st.body)],
        [
            "Người nhận / Recipient",
            _p(_party_markup(data.recipient.name, data.recipient.address, data.recipient.phone), st.body),
        ],
        ["Ngày hẹn trả / Appointment date", _p(_date(data.appointment_date), st.body)],
        ["Hạn giao / Due date", _p(_date(data.due_date), st.body)],
    ]
    details = _table(
        [[_p(c, st.caption), v] for c, v in rows],
        colWidths=[cap_w, frame_w - cap_w],
        style=[
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, -1), 0.3, SHADE),
            ("LEFTPADDING", (0, 0), (-1, -1), 1),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ],
    )

    total = data.postage_due_vnd + data.collect_vnd
    fee_rows = [
        ["Cước / Postage", _vnd(data.postage_vnd)],
        ["Miễn giảm / Exemption", _t(data.exemption) if data.exemption else "Không / None"],
        ["Cước phải trả / Postage due", _vnd(data.postage_due_vnd)],
        ["Thu hộ khi giao / To collect on delivery", _vnd(data.collect_vnd)],
        ["<b>Tổng cộng / Total</b>", f"<b>{_vnd(total)}</b>"],
    ]
    fees = _table(
        [[_p(c, st.body), _p(v, st.body_right)] for c, v in fee_rows],
        colWidths=[frame_w * 0.6, frame_w * 0.4],
        style=[
            ("BOX", (0, 0), (-1, -1), 0.6, RULE),
            ("LINEABOVE", (0, -1), (-1, -1), 0.6, RULE),
            ("BACKGROUND", (0, -1), (-1, -1), SHADE),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ],
    )

    tail = [
        Spacer(1, 2.5 * mm),
        _p(f"Tra cứu / Track: {escape(url)}", st.small),
    ]
    if data.delivery_code and nfc(data.delivery_code):
        tail.append(_p(f"<b>Mã nhận hàng / Delivery code: {_t(data.delivery_code)}</b> (đọc cho bưu tá khi "
                       "nhận kết quả / tell it to the courier when you receive the result)", st.body))
    if data.hotline and nfc(data.hotline):
        tail.append(_p(f"<b>Đường dây nóng / Hotline: {_t(data.hotline)}</b>", st.body))
    tail += [
        _p(f"Thời gian lập / Created at: {_datetime(data.created_at)}", st.small),
        Spacer(1, 2 * mm),
        _p(
            "Người dân giữ biên nhận này và xuất trình khi nhận kết quả hoặc khi tra cứu, khiếu nại. / "
            "Keep this receipt and present it when you receive the result, track it or complain.",
            st.note,
        ),
    ]
    story: list[Flowable] = [heading, *barcode_block, details, Spacer(1, 3 * mm), _p("Phí / Fees", st.h2)]
    story += [fees, *tail]
    return story


def _receipt_furniture(
    canv: Canvas, page: int, pages: int, *, item_id: str, pagesize: tuple[float, float]
) -> None:
    """A receipt is one page; should a very long text push it over, pages are numbered."""
    if pages > 1:
        _footer(canv, page, pages, left_text=f"Biên nhận / Receipt {item_id}", pagesize=pagesize)


# ---------------------------------------------------------------------------------------------
# the handover manifest

MANIFEST_TITLE = "BIÊN BẢN GIAO NHẬN / HANDOVER MANIFEST"
# STT, item id, dossier code, recipient, address, postage, collect, note: 180 mm between the margins
MANIFEST_COLUMNS_MM = (8, 26, 31, 27, 38, 17, 17, 16)
CELL_PAD = 2.0  # points, each side of a table cell (_grid_style)
BARCODE_HEIGHT_MM = barcodes.MIN_HEIGHT_MM


def _manifest_columns(item_cells: Sequence[Paragraph]) -> list[float]:
    """Column widths in points: the item-id column grows (up to 40 mm) so no id is broken; the
    address column gives up the difference."""
    widths = [w * mm for w in MANIFEST_COLUMNS_MM]
    widest = max(text_width(p.text, FONT_BOLD, p.style.fontSize) for p in item_cells) + 2 * CELL_PAD + 1
    extra = min(max(0.0, widest - widths[1]), 40 * mm - widths[1])
    widths[1] += extra
    widths[4] -= extra
    return widths


def _money_cell(amount: int, st: _Styles, *, bold: bool = False) -> Paragraph:
    """An amount in a table cell (the column header says ₫)."""
    text = f"{amount:,}".replace(",", ".") if amount else "—"
    return _p(f"<b>{text}</b>" if bold else text, st.cell_right)


def render_manifest(data: ManifestData, *, dpi: int = 300) -> bytes:
    """A handover manifest (biên bản giao nhận), A4 portrait: one row per item, totals, signatures."""
    if not data.lines:
        raise LabelError(EMPTY_MANIFEST)
    _check_dpi(dpi)
    manifest_id = _ident(data.manifest_id, "manifest id")
    st = _Styles()
    pagesize = A4
    frame_w = pagesize[0] - 30 * mm

    parties = _table(
        [
            [_p("Bên giao / Giver", st.caption), _p("Bên nhận / Receiver", st.caption)],
            [
                _p(_party_markup(data.giver.name, data.giver.address, data.giver.phone), st.body),
                _p(_party_markup(data.receiver.name, data.receiver.address, data.receiver.phone), st.body),
            ],
        ],
        colWidths=[frame_w / 2, frame_w / 2],
        style=[("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)],
    )
    facts = [
        f"Mã biên bản / Manifest ID: <b>{escape(manifest_id)}</b>",
        f"Thời gian / Date and time: <b>{_datetime(data.created_at)}</b>",
    ]
    if data.route_code and nfc(data.route_code):
        facts.append(f"Tuyến / Route: <b>{_t(data.route_code)}</b>")
    story: list[Flowable] = [
        _p(MANIFEST_TITLE, st.title),
        _p(_t(MANIFEST_KIND_WORDS[data.kind]), st.subtitle),
        Spacer(1, 3 * mm),
        parties,
        Spacer(1, 1.5 * mm),
        _p(" · ".join(facts), st.body),
    ]
    if data.note and nfc(data.note):
        story.append(_p(f"Ghi chú / Note: {_t(data.note)}", st.body))
    story.append(Spacer(1, 3 * mm))

    header = [
        _p("STT<br/>No.", st.head),
        _p("Mã bưu gửi<br/>Item ID", st.head),
        _p("Mã hồ sơ<br/>Dossier code", st.head),
        _p("Người nhận<br/>Recipient", st.head),
        _p("Địa chỉ<br/>Address", st.head),
        _p("Cước (₫)<br/>Postage", st.head_right),
        _p("Thu hộ (₫)<br/>Collect", st.head_right),
        _p("Ghi chú<br/>Note", st.head),
    ]
    rows: list[list[Any]] = [header]
    for no, line in enumerate(data.lines, start=1):
        rows.append(
            [
                _p(str(no), st.cell),
                _p(escape(_ident(line.item_id, f"item id of line {no}")), st.cell_bold),
                _p(_t(line.dossier_code), st.cell),
                _p(_t(line.recipient_name), st.cell),
                _p(_t(line.address), st.cell),
                _money_cell(line.postage_vnd, st),
                _money_cell(line.collect_vnd, st),
                _p(_t(line.note), st.cell),
            ]
        )
    count = len(data.lines)
    postage = sum(line.postage_vnd for line in data.lines)
    collect = sum(line.collect_vnd for line in data.lines)
    rows.append(
        [
            "",
            _p(f"<b>Tổng cộng / Total: {count}</b>", st.cell),
            "",
            "",
            "",
            _money_cell(postage, st, bold=True),
            _money_cell(collect, st, bold=True),
            "",
        ]
    )
    table = _table(
        rows,
        colWidths=_manifest_columns([row[1] for row in rows[1:-1]]),
        repeatRows=1,
        style=[*_grid_style(), ("SPAN", (1, -1), (4, -1)), ("BACKGROUND", (0, -1), (-1, -1), SHADE)],
    )
    story.append(table)

    totals = _table(
        [
            [_p("Tổng số bưu gửi / Number of items", st.body), _p(f"<b>{count}</b>", st.body_right)],
            [_p("Tổng cước / Total postage", st.body), _p(f"<b>{_vnd(postage)}</b>", st.body_right)],
            [_p("Tổng thu hộ / Total to collect", st.body), _p(f"<b>{_vnd(collect)}</b>", st.body_right)],
        ],
        colWidths=[70 * mm, 40 * mm],
        hAlign="RIGHT",
        style=[("BOX", (0, 0), (-1, -1), 0.6, RULE), ("VALIGN", (0, 0), (-1, -1), "TOP")],
    )
    closing = _p(
        "Hai bên đã kiểm đếm đủ số bưu gửi, niêm phong nguyên vẹn và số tiền nêu trên. / "
        "Both sides have counted the items above, checked their seals and the amounts.",
        st.note,
    )
    story.append(
        KeepTogether(
            [
                Spacer(1, 4 * mm),
                totals,
                Spacer(1, 3 * mm),
                closing,
                Spacer(1, 3 * mm),
                _signatures(data, st, frame_w),
            ]
        )
    )
    furniture = functools.partial(_manifest_furniture, data=data, manifest_id=manifest_id, dpi=dpi)
    pdf, _ = _build(
        story,
        pagesize,
        title=f"Biên bản giao nhận / Handover manifest {manifest_id}",
        margins=(15 * mm + BARCODE_HEIGHT_MM * mm + 8 * mm, 15 * mm, 16 * mm, 15 * mm),
        furniture=furniture,
    )
    return pdf


def _signatures(data: ManifestData, st: _Styles, frame_w: float) -> Table:
    """Two boxes to sign: the giver's (left) and the receiver's (right)."""

    def box(side: str, party_name: str) -> list[Flowable]:
        return [
            _p(f"<b>{side}</b>", st.body),
            _p("(Ký, ghi rõ họ tên / Signature and full name)", st.small),
            Spacer(1, 24 * mm),
            _p(_t(party_name), st.small),
        ]

    return _table(
        [[box("BÊN GIAO / GIVER", data.giver.name), box("BÊN NHẬN / RECEIVER", data.receiver.name)]],
        colWidths=[frame_w / 2, frame_w / 2],
        style=[
            ("BOX", (0, 0), (0, 0), 0.6, RULE),
            ("BOX", (1, 0), (1, 0), 0.6, RULE),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 4),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ],
    )


def _manifest_furniture(
    canv: Canvas, page: int, pages: int, *, data: ManifestData, manifest_id: str, dpi: int
) -> None:
    """On every page: the manifest's Code 128 top right, its title and id top left, page x of y."""
    width, height = A4
    module_dots = _compact_dots(dpi)
    dot = barcodes.dot_pt(dpi)
    bars_w = (len(barcodes.code128_modules(manifest_id)) + 2 * barcodes.MIN_QUIET_MODULES) * module_dots * dot
    top = height - 12 * mm
    x = width - 15 * mm - bars_w - dot
    y = top - BARCODE_HEIGHT_MM * mm
    barcodes.draw_code128(
        canv, x, y, manifest_id, dpi=dpi, module_dots=module_dots, height_mm=BARCODE_HEIGHT_MM
    )
    canv.saveState()
    canv.setFillColor(INK)
    canv.setFont(FONT, 8)
    canv.drawCentredString(x + bars_w / 2, y - 3.5 * mm, manifest_id)
    left_w = x - 15 * mm - 4 * mm
    canv.setFont(FONT_BOLD, 8.5)
    canv.drawString(15 * mm, top - 3 * mm, MANIFEST_TITLE)
    kind = fit_lines(MANIFEST_KIND_WORDS[data.kind], FONT, 8, 6, left_w, 1)
    canv.setFont(FONT, kind.size)
    canv.drawString(15 * mm, top - 7 * mm, kind.lines[0])
    canv.setFont(FONT, 8)
    canv.drawString(15 * mm, top - 11 * mm, f"{manifest_id} · {_datetime(data.created_at)}")
    canv.restoreState()
    _footer(canv, page, pages, left_text=f"{MANIFEST_TITLE} · {manifest_id}", pagesize=A4)


# ---------------------------------------------------------------------------------------------
# the courier's run sheet

RUN_SHEET_TITLE = "LỘ TRÌNH PHÁT TRONG NGÀY / COURIER RUN SHEET"
# stop, item(s), recipient, address, to collect, signature: 180 mm between the margins
RUN_COLUMNS_MM = (14, 48, 30, 38, 26, 24)


def _collect_markup(lines: Sequence[ManifestLine]) -> str:
    """What to collect at the door: postage due and amounts collected for the agency, with a total."""
    parts: list[str] = []
    total = 0
    for line in lines:
        if line.postage_vnd:
            parts.append(f"Cước / Postage {_vnd(line.postage_vnd)}")
        if line.collect_vnd:
            parts.append(f"Thu hộ / COD {_vnd(line.collect_vnd)}")
        total += line.postage_vnd + line.collect_vnd
    if not total:
        return "Không thu / Nothing"
    if len(parts) > 1:
        parts.append(f"<b>Tổng / Total {_vnd(total)}</b>")
    else:
        parts = [f"<b>{parts[0]}</b>"]
    return "<br/>".join(parts)


def _items_cell(lines: Sequence[ManifestLine], st: _Styles, dpi: int) -> list[Flowable]:
    """Each item at a stop: its Code 128 (when it fits the column) over its id and dossier code."""
    avail = RUN_COLUMNS_MM[1] * mm - 2 * CELL_PAD
    cell: list[Flowable] = []
    for line in lines:
        item_id = _ident(line.item_id, "item id")
        code = _Code128(
            item_id, dpi=dpi, height_mm=BARCODE_HEIGHT_MM, module_dots=_compact_dots(dpi), align="LEFT"
        )
        if code.width <= avail:
            cell.append(code)
        cell.append(_p(f"<b>{escape(item_id)}</b>", st.cell))
        cell.append(_p(f"Hồ sơ / Dossier: {_t(line.dossier_code)}", st.cell))
        if line.note and nfc(line.note):
            cell.append(_p(f"Ghi chú / Note: {_t(line.note)}", st.cell))
        cell.append(Spacer(1, 1.5 * mm))
    return cell


def _run_row(
    stop_cell: list[Flowable], lines: Sequence[ManifestLine], phone: str | None, st: _Styles, dpi: int
) -> list[Any]:
    names = list(dict.fromkeys(nfc(line.recipient_name) for line in lines))
    addresses = list(dict.fromkeys(nfc(line.address) for line in lines))
    recipient = "<br/>".join(f"<b>{_t(n)}</b>" for n in names)
    if phone and nfc(phone):
        recipient += f"<br/>ĐT / Tel: {_t(phone)}"
    return [
        stop_cell,
        _items_cell(lines, st, dpi),
        _p(recipient, st.cell),
        _p("<br/>".join(_t(a) for a in addresses), st.cell),
        _p(_collect_markup(lines), st.cell),
        [Spacer(1, 14 * mm)],  # room to sign
    ]


def _run_table(rows: list[list[Any]], st: _Styles) -> Table:
    header = [
        _p("Điểm<br/>Stop", st.head),
        _p("Bưu gửi<br/>Item(s)", st.head),
        _p("Người nhận<br/>Recipient", st.head),
        _p("Địa chỉ<br/>Address", st.head),
        _p("Thu<br/>To collect", st.head),
        _p("Ký nhận<br/>Signature", st.head),
    ]
    return _table(
        [header, *rows],
        colWidths=[w * mm for w in RUN_COLUMNS_MM],
        repeatRows=1,
        style=_grid_style(),
    )


def render_run_sheet(data: RunSheetData, *, dpi: int = 300) -> bytes:
    """A courier's run sheet, A4 portrait: stops in order with items, what to collect, a box to sign."""
    _check_dpi(dpi)
    st = _Styles()
    pagesize = A4
    route = nfc(data.route_code)
    all_lines = [line for stop in data.stops for line in stop.lines] + list(data.unsequenced)
    to_collect = sum(line.postage_vnd + line.collect_vnd for line in all_lines)
    facts = [
        ("Tuyến / Route", f"<b>{_t(route)}</b> — {_t(data.route_name)}"),
        (
            "Bưu tá / Courier",
            _t(data.courier_name) if data.courier_name else "— (chưa phân công / unassigned)",
        ),
        ("Ngày / Date", f"<b>{_date(data.day)}</b>"),
        ("Tổng quãng đường / Total distance", _km(data.total_m)),
        (
            "Điểm dừng · bưu gửi / Stops · items",
            f"{len(data.stops)} · {len(all_lines)}"
            + (f" (chưa xếp thứ tự / unsequenced: {len(data.unsequenced)})" if data.unsequenced else ""),
        ),
        ("Tổng tiền thu / Total to collect", f"<b>{_vnd(to_collect)}</b>"),
        ("In lúc / Printed at", _datetime(data.printed_at)),
    ]
    if data.office is not None:
        facts.insert(
            0, ("Bưu cục / Office", _party_markup(data.office.name, data.office.address, data.office.phone))
        )
    frame_w = pagesize[0] - 30 * mm
    info = _table(
        [[_p(c, st.caption), _p(v, st.body)] for c, v in facts],
        colWidths=[55 * mm, frame_w - 55 * mm],
        style=[
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ],
    )
    story: list[Flowable] = [_p(RUN_SHEET_TITLE, st.title), info, Spacer(1, 4 * mm)]

    if not data.stops and not data.unsequenced:
        story.append(_p(NO_ORDERS, st.h2))
    elif not data.stops:
        story.append(_p("Không có điểm dừng đã xếp thứ tự / No sequenced stops", st.body))
    else:
        story.append(
            _run_table(
                [_run_row(_stop_cell(stop, st), stop.lines, stop.phone, st, dpi) for stop in data.stops], st
            )
        )

    if data.unsequenced:
        story.append(
            _p("Đơn thêm sau khi xếp tuyến (chưa xếp thứ tự) / Added since sequencing (unsequenced)", st.h2)
        )
        rows = [_run_row([_p("—", st.stop_no)], [line], None, st, dpi) for line in data.unsequenced]
        story.append(_run_table(rows, st))

    furniture = functools.partial(_run_sheet_furniture, data=data)
    pdf, _ = _build(
        story,
        pagesize,
        title=f"Lộ trình / Run sheet {route} {_date(data.day)}",
        margins=(20 * mm, 15 * mm, 16 * mm, 15 * mm),
        furniture=furniture,
    )
    return pdf


def _stop_cell(stop: RunSheetStop, st: _Styles) -> list[Flowable]:
    cell: list[Flowable] = [_p(str(stop.stop_no), st.stop_no)]
    if stop.estimated:
        cell.append(_p("≈ vị trí ước tính<br/>estimated position", st.center_small))
    if stop.leg_m:
        cell.append(_p(f"+{_km(stop.leg_m)}", st.center_small))
    return cell


def _run_sheet_furniture(canv: Canvas, page: int, pages: int, *, data: RunSheetData) -> None:
    """Route, courier and day at the top of every page; page x of y at the bottom."""
    width, height = A4
    canv.saveState()
    canv.setFillColor(INK)
    head = f"{RUN_SHEET_TITLE} · {nfc(data.route_code)} · {_date(data.day)}"
    if data.courier_name:
        head += f" · {nfc(data.courier_name)}"
    fit = fit_lines(head, FONT, 8, 6, width - 30 * mm, 1)
    canv.setFont(FONT, fit.size)
    canv.drawString(15 * mm, height - 12 * mm, fit.lines[0])
    canv.setStrokeColor(RULE)
    canv.setLineWidth(0.5)
    canv.line(15 * mm, height - 13.5 * mm, width - 15 * mm, height - 13.5 * mm)
    canv.restoreState()
    _footer(
        canv,
        page,
        pages,
        left_text=f"Lộ trình / Run sheet {nfc(data.route_code)} {_date(data.day)}",
        pagesize=A4,
    )
