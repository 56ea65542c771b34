"""What the office documents (receipt, manifest, run sheet) are built from: reportlab platypus.

Formatting helpers (amounts, dates, escaped text), the paragraph styles, Code 128 and QR codes as
flowables on the printer's dot grid, tables in DejaVu, and ``build``, which lays a story out on
numbered pages ("Trang x/y · Page x of y") and turns a layout failure into a LabelError.

Every free text (names, addresses, procedures, notes) is an escaped Paragraph in DejaVu Sans that
wraps inside its cell or column (long words are broken), so nothing runs off the page; tables
continue on further pages with their header row repeated. A table row can never be taller than a
page: the documents put one order in a row and flatten multi-line notes (``one_line``), so every
row the API can produce is bounded; anything else a caller feeds in is refused with LabelError.
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
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import BaseDocTemplate, Flowable, Frame, LayoutError, PageTemplate, Paragraph, Table

from labels import barcodes
from labels.fonts import FONT, FONT_BOLD, fit_line, nfc, register
from labels.model import LabelError

INK = colors.black
RULE = colors.Color(0.45, 0.45, 0.45)
SHADE = colors.Color(0.90, 0.90, 0.90)
CELL_PAD = 2.0  # points, each side of a table cell (grid_style)
BARCODE_HEIGHT_MM = barcodes.MIN_HEIGHT_MM


# ---------------------------------------------------------------------------------------------
# small formatting helpers


def vnd(amount: int) -> str:
    """Whole đồng with dots between thousands, as Vietnamese prints them: ``1.250.000 ₫``."""
    return f"{amount:,}".replace(",", ".") + " ₫"


def date_text(value: dt.date | None) -> str:
    """dd/mm/yyyy, or "—" without a date."""
    return value.strftime("%d/%m/%Y") if value is not None else "—"


def moment_text(value: dt.datetime) -> str:
    """dd/mm/yyyy HH:MM."""
    return value.strftime("%d/%m/%Y %H:%M")


def km(metres: float) -> str:
    """Metres as kilometres with a decimal comma: ``23,5 km``."""
    return f"{metres / 1000:.1f}".replace(".", ",") + " km"


def esc(text: str | None) -> str:
    """NFC text escaped for a Paragraph (names may hold & < >); newlines become line breaks."""
    return escape(nfc(text or "")).replace("\n", "<br/>")


def one_line(text: str | None) -> str:
    """Free text on one line, its lines joined by " · " and blank ones dropped: a note of 500 line
    breaks would make a table row taller than a page, as one line it wraps to a few."""
    return " · ".join(line for line in nfc(text or "").split("\n") if line)


def check_dpi(dpi: int) -> None:
    """LabelError unless ``dpi`` is a whole number of dots per inch a printer can have."""
    if not isinstance(dpi, int) or not 100 <= dpi <= 1200:
        raise LabelError(f"printer dpi must be a whole number from 100 to 1200 (203, 300, 600), got {dpi!r}")


def identifier(value: str, what: str) -> str:
    """An identifier drawn as a barcode: NFC, no blanks; refused when empty or not printable."""
    value = nfc(value)
    if not value or any(c.isspace() for c in value) or not value.isprintable():
        raise LabelError(f"{what} must be a non-empty printable identifier without spaces, got {value!r}")
    if not value.isascii():
        raise LabelError(f"{what} must be ASCII to be printed as Code 128, got {value!r}")
    return value


class Styles:
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
        self.stop_cont = style("stop_cont", 11, bold=True, alignment=TA_CENTER)
        self.cell_grey = style("cell_grey", 7.5, textColor=colors.Color(0.3, 0.3, 0.3))
        self.center_small = style("center_small", 6.5, alignment=TA_CENTER)
        self.note = style("note", 8.5, textColor=colors.Color(0.2, 0.2, 0.2))


def para(markup: str, style: ParagraphStyle) -> Paragraph:
    """A Paragraph of ``markup`` (already escaped) in ``style``."""
    return Paragraph(markup, style)


# ---------------------------------------------------------------------------------------------
# barcodes inside platypus


class Symbol(Flowable):
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


class Code128(Symbol):
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
        barcodes.draw_code128(
            canv, x, y, self.value, dpi=self.dpi, module_dots=self.module_dots, height_mm=self.height_mm
        )


class QR(Symbol):
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


def compact_dots(dpi: int) -> int:
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


def build(
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
    except LayoutError as exc:  # a block taller (or wider) than a page; reportlab's text names objects
        raise LabelError(
            f"{title}: a text is too long to lay out, one of its blocks would not fit on a page; "
            "shorten the longest name, address or note"
        ) from exc
    return out.getvalue(), pages[0] if pages else 1


def footer(canv: Canvas, page: int, pages: int, *, left_text: str, pagesize: tuple[float, float]) -> None:
    """Page number (right) and the document's identity (left) at the bottom of each page."""
    width, _ = pagesize
    canv.saveState()
    canv.setFillColor(INK)
    canv.setFont(FONT, 7.5)
    canv.drawRightString(width - 15 * mm, 9 * mm, f"Trang {page}/{pages} · Page {page} of {pages}")
    fit = fit_line(left_text, FONT, 7.5, 6, width - 30 * mm - 45 * mm)
    canv.setFont(FONT, fit.size)
    canv.drawString(15 * mm, 9 * mm, fit.lines[0] if fit.lines else "")
    canv.restoreState()


def table(rows: list[list[Any]], *, style: list[tuple[Any, ...]], **kwargs: Any) -> Table:
    """A platypus Table whose cells default to DejaVu (reportlab's default would pull in Helvetica)."""
    return Table(rows, style=[("FONTNAME", (0, 0), (-1, -1), FONT), *style], **kwargs)


def grid_style(header_rows: int = 1) -> list[tuple[Any, ...]]:
    """A ruled table with thin padding, its first ``header_rows`` shaded."""
    return [
        ("GRID", (0, 0), (-1, -1), 0.5, RULE),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("BACKGROUND", (0, 0), (-1, header_rows - 1), SHADE),
    ]


def party_markup(party_name: str, address: Sequence[str], phone: str | None) -> str:
    """A party as Paragraph markup: the name in bold, then each address line, then the phone."""
    parts = [f"<b>{esc(party_name)}</b>"]
    parts += [esc(line) for line in address if nfc(line)]
    if phone and nfc(phone):
        parts.append(f"ĐT / Tel: {esc(phone)}")
    return "<br/>".join(parts)
