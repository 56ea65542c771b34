"""The handover manifest (biên bản giao nhận), A4 portrait: one row per item, totals, signatures.

Public API: ``render_manifest(data: ManifestData, *, dpi: int = 300) -> bytes``.

An item's note is printed under its address, on one line (``one_line``), rather than in a column
of its own: a 500-character note in a 16 mm column made one item a page tall, and one with many
line breaks taller than a page. The citizen's delivery window, when the line has one, goes there too
("Hẹn giờ / Window: 08:00–12:00", as on the run sheet).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, Paragraph, Spacer, Table

from labels import barcodes
from labels.docparts import (
    BARCODE_HEIGHT_MM,
    CELL_PAD,
    INK,
    RULE,
    SHADE,
    Styles,
    build,
    check_dpi,
    compact_dots,
    esc,
    footer,
    grid_style,
    identifier,
    moment_text,
    one_line,
    para,
    party_markup,
    table,
    vnd,
)
from labels.fonts import FONT, FONT_BOLD, fit_lines, nfc, text_width
from labels.model import LabelError, ManifestData, ManifestKind

MANIFEST_KIND_WORDS: dict[ManifestKind, str] = {
    ManifestKind.COUNTER_TO_COURIER: "Bàn giao từ quầy cho bưu tá / Counter to courier",
    ManifestKind.COURIER_TO_AGENCY: "Bàn giao hồ sơ từ bưu tá cho cơ quan / Courier to agency",
    ManifestKind.COURIER_TO_COUNTER: "Bưu tá trả lại quầy (chuyển hoàn) / Courier returns to counter",
}
EMPTY_MANIFEST = "A manifest needs at least one item"
MANIFEST_TITLE = "BIÊN BẢN GIAO NHẬN / HANDOVER MANIFEST"
# STT, item id, dossier code, recipient, address, postage, collect: 180 mm between the margins
MANIFEST_COLUMNS_MM = (8, 26, 31, 33, 48, 17, 17)
MONEY_SIZES = (7.5, 5.0)  # an amount shrinks to stay on one line of its column, down to 5 pt
CODE_SIZES = (7.5, 5.0)  # so does a dossier code; past 5 pt it wraps, at its separators only
CODE_MAX_MM = 38  # the dossier-code column grows to this, taking from the address column
_AFTER_SEPARATOR = re.compile(r"(?<=[./\-_:])")


def _manifest_columns(item_cells: Sequence[Paragraph], codes: Sequence[str]) -> list[float]:
    """Column widths in points: the item-id column grows (up to 40 mm) so no id is broken, and the
    dossier-code column (up to 38 mm) so codes keep their size; the address column gives up the
    difference."""
    widths = [w * mm for w in MANIFEST_COLUMNS_MM]
    widest = max(text_width(p.text, FONT_BOLD, p.style.fontSize) for p in item_cells) + 2 * CELL_PAD + 1
    extra = min(max(0.0, widest - widths[1]), 40 * mm - widths[1])
    widths[1] += extra
    widths[4] -= extra
    # a code that would wrap even at the smallest size in the widest column takes no width from the
    # addresses: it wraps anyway
    room = CODE_MAX_MM * mm - 2 * CELL_PAD - 1
    fitting = [w for c in codes if (w := text_width(nfc(c), FONT, 1.0)) * CODE_SIZES[-1] <= room]
    widest_code = max(fitting, default=0.0) * CODE_SIZES[0] + 2 * CELL_PAD + 1
    extra = min(max(0.0, widest_code - widths[2]), CODE_MAX_MM * mm - widths[2])
    widths[2] += extra
    widths[4] -= extra
    return widths


def _code_cell(code: str, st: Styles, width: float) -> Paragraph:
    """A dossier code in a cell ``width`` points wide: on one line, its type shrinking down to 5 pt;
    a code too long even then wraps after its separators (. - / _ :), never inside a number."""
    text = nfc(code)
    limit = width - 2 * CELL_PAD
    fit = fit_lines(text, FONT, *CODE_SIZES, limit, 1)
    size = fit.size
    if fit.truncated:
        lines: list[str] = []
        for piece in _AFTER_SEPARATOR.split(text):
            if lines and text_width(lines[-1] + piece, FONT, size) <= limit:
                lines[-1] += piece
            else:
                lines.append(piece)
        markup = "<br/>".join(escape(line) for line in lines)  # a piece wider still wraps as words do
    else:
        markup = escape(text)
    style = st.cell
    if size < style.fontSize:
        style = ParagraphStyle(f"code_{size}", parent=style, fontSize=size, leading=size * 1.22)
    return para(markup, style)


def _money_cell(amount: int, st: Styles, width: float, *, bold: bool = False) -> Paragraph:
    """An amount in a table cell of ``width`` points (the column header says ₫), on one line: its
    type shrinks for a large amount; only past the smallest size does it wrap."""
    text = f"{amount:,}".replace(",", ".") if amount else "—"
    fit = fit_lines(text, FONT_BOLD if bold else FONT, *MONEY_SIZES, width - 2 * CELL_PAD, 1)
    style = st.cell_right
    if fit.size < style.fontSize:
        style = ParagraphStyle(f"money_{fit.size}", parent=style, fontSize=fit.size, leading=fit.size * 1.22)
    return para(f"<b>{text}</b>" if bold else text, style)


def render_manifest(data: ManifestData, *, dpi: int = 300) -> bytes:
    """A handover manifest (biên bản giao nhận), A4 portrait: one row per item, totals, signatures."""
    if not data.lines:
        raise LabelError(EMPTY_MANIFEST)
    check_dpi(dpi)
    manifest_id = identifier(data.manifest_id, "manifest id")
    if _bars_width(manifest_id, dpi) > 90 * mm:
        raise LabelError(f"manifest id {manifest_id!r} is too long for its barcode in the page's corner")
    st = Styles()
    pagesize = A4
    frame_w = pagesize[0] - 30 * mm

    parties = table(
        [
            [para("Bên giao / Giver", st.caption), para("Bên nhận / Receiver", st.caption)],
            [
                para(party_markup(data.giver.name, data.giver.address, data.giver.phone)
                     + _person_markup("Người giao / Handed over by", data.giver_person), st.body),
                para(party_markup(data.receiver.name, data.receiver.address, data.receiver.phone)
                     + _person_markup("Người nhận / Received by", data.receiver_person), st.body),
            ],
        ],
        colWidths=[frame_w / 2, frame_w / 2],
        style=[("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)],
    )
    facts = [
        f"Mã biên bản / Manifest ID: <b>{escape(manifest_id)}</b>",
        f"Thời gian / Date and time: <b>{moment_text(data.created_at)}</b>",
    ]
    if data.route_code and nfc(data.route_code):
        facts.append(f"Tuyến / Route: <b>{esc(data.route_code)}</b>")
    story: list[Flowable] = [
        para(MANIFEST_TITLE, st.title),
        para(esc(MANIFEST_KIND_WORDS[data.kind]), st.subtitle),
        Spacer(1, 3 * mm),
        parties,
        Spacer(1, 1.5 * mm),
        para(" · ".join(facts), st.body),
    ]
    if data.note and nfc(data.note):
        story.append(para(f"Ghi chú / Note: {esc(data.note)}", st.body))
    story.append(Spacer(1, 3 * mm))

    header = [
        para("STT<br/>No.", st.head),
        para("Mã bưu gửi<br/>Item ID", st.head),
        para("Mã hồ sơ<br/>Dossier code", st.head),
        para("Người nhận<br/>Recipient", st.head),
        para("Địa chỉ · ghi chú<br/>Address · note", st.head),
        para("Cước (₫)<br/>Postage", st.head_right),
        para("Thu hộ (₫)<br/>To collect", st.head_right),
    ]
    item_cells = [
        para(escape(identifier(line.item_id, f"item id of line {no}")), st.cell_bold)
        for no, line in enumerate(data.lines, start=1)
    ]
    widths = _manifest_columns(item_cells, [line.dossier_code for line in data.lines])
    rows: list[list[Any]] = [header]
    for no, (line, item_cell) in enumerate(zip(data.lines, item_cells, strict=True), start=1):
        address = esc(line.address)
        if line.window and nfc(line.window):
            address += f"<br/><b>Hẹn giờ / Window: {esc(line.window)}</b>"
        note = one_line(line.note)
        if note:
            address += f"<br/>Ghi chú / Note: {escape(note)}"
        rows.append(
            [
                para(str(no), st.cell),
                item_cell,
                _code_cell(line.dossier_code, st, widths[2]),
                para(esc(line.recipient_name), st.cell),
                para(address, st.cell),
                _money_cell(line.postage_vnd, st, widths[5]),
                _money_cell(line.to_collect_vnd, st, widths[6]),
            ]
        )
    count = len(data.lines)
    postage = sum(line.postage_vnd for line in data.lines)
    # what the courier collects, postage due and fees: per item the label's "THU HỘ / COLLECT"
    collect = sum(line.to_collect_vnd for line in data.lines)
    rows.append(
        [
            "",
            para(f"<b>Tổng cộng / Total: {count}</b>", st.cell),
            "",
            "",
            "",
            _money_cell(postage, st, widths[5], bold=True),
            _money_cell(collect, st, widths[6], bold=True),
        ]
    )
    story.append(
        table(
            rows,
            colWidths=widths,
            repeatRows=1,
            style=[*grid_style(), ("SPAN", (1, -1), (4, -1)), ("BACKGROUND", (0, -1), (-1, -1), SHADE)],
        )
    )

    totals = table(
        [
            [para("Tổng số bưu gửi / Number of items", st.body), para(f"<b>{count}</b>", st.body_right)],
            [para("Tổng cước / Total postage", st.body), para(f"<b>{vnd(postage)}</b>", st.body_right)],
            [
                para("Tổng phí, lệ phí / Total fees", st.body),
                para(f"<b>{vnd(collect - postage)}</b>", st.body_right),
            ],
            [para("Tổng thu hộ / Total to collect", st.body), para(f"<b>{vnd(collect)}</b>", st.body_right)],
        ],
        colWidths=[70 * mm, 40 * mm],
        hAlign="RIGHT",
        style=[("BOX", (0, 0), (-1, -1), 0.6, RULE), ("VALIGN", (0, 0), (-1, -1), "TOP")],
    )
    closing = para(
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
    pdf, _ = build(
        story,
        pagesize,
        title=f"Biên bản giao nhận / Handover manifest {manifest_id}",
        margins=(15 * mm + BARCODE_HEIGHT_MM * mm + 8 * mm, 15 * mm, 16 * mm, 15 * mm),
        furniture=furniture,
    )
    return pdf


def _signatures(data: ManifestData, st: Styles, frame_w: float) -> Table:
    """Two boxes to sign: the giver's (left) and the receiver's (right)."""

    def box(side: str, party_name: str, person: str | None) -> list[Flowable]:
        named = [para(f"<b>{esc(person)}</b>", st.body)] if person and nfc(person) else []
        return [
            para(f"<b>{side}</b>", st.body),
            para("(Ký, ghi rõ họ tên / Signature and full name)", st.small),
            Spacer(1, 24 * mm),
            *named,
            para(esc(party_name), st.small),
        ]

    return table(
        [[box("BÊN GIAO / GIVER", data.giver.name, data.giver_person),
          box("BÊN NHẬN / RECEIVER", data.receiver.name, data.receiver_person)]],
        colWidths=[frame_w / 2, frame_w / 2],
        style=[
            ("BOX", (0, 0), (0, 0), 0.6, RULE),
            ("BOX", (1, 0), (1, 0), 0.6, RULE),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("TOPPADDING", (0, 0), (-1, -1), 4),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
        ],
    )


def _person_markup(caption: str, person: str | None) -> str:
    """A party's signing person on a line of its own under the party, or nothing when not known."""
    if not person or not nfc(person):
        return ""
    return f"<br/>{caption}: <b>{esc(person)}</b>"


def _manifest_furniture(
    canv: Canvas, page: int, pages: int, *, data: ManifestData, manifest_id: str, dpi: int
) -> None:
    """On every page: the manifest's Code 128 top right, its title and id top left, page x of y."""
    width, height = A4
    module_dots = compact_dots(dpi)
    dot = barcodes.dot_pt(dpi)
    bars_w = _bars_width(manifest_id, dpi)
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
    canv.drawString(15 * mm, top - 11 * mm, f"{manifest_id} · {moment_text(data.created_at)}")
    canv.restoreState()
    footer(canv, page, pages, left_text=f"{MANIFEST_TITLE} · {manifest_id}", pagesize=A4)


def _bars_width(manifest_id: str, dpi: int) -> float:
    """Width in points of the manifest id's Code 128 with its quiet zones."""
    modules = len(barcodes.code128_modules(manifest_id)) + 2 * barcodes.MIN_QUIET_MODULES
    return modules * compact_dots(dpi) * barcodes.dot_pt(dpi)
