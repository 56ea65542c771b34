"""The courier's run sheet for a day (lộ trình phát), A4 portrait.

Public API: ``render_run_sheet(data: RunSheetData, *, dpi: int = 300) -> bytes``.

One table row per order, so a stop of any size (50 results for one apartment block) flows over as
many pages as it needs; one row per stop made a row taller than a page. A stop's first row carries
its number in large type, how far it is and how many items it has, and the phone; each following
row repeats the stop's number with "(tiếp / cont.)" and its own address (greyed when it is the
stop's), so a row read on its own, or at the top of a page, says where it belongs. A heavier rule
separates stops.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Spacer, Table

from labels.docparts import (
    BARCODE_HEIGHT_MM,
    CELL_PAD,
    INK,
    RULE,
    Code128,
    Styles,
    build,
    check_dpi,
    compact_dots,
    date_text,
    esc,
    footer,
    grid_style,
    identifier,
    km,
    moment_text,
    one_line,
    para,
    party_markup,
    table,
    vnd,
)
from labels.fonts import FONT, FONT_BOLD, fit_line, fit_lines, nfc
from labels.model import ManifestLine, RunSheetData, RunSheetStop

RUN_SHEET_TITLE = "LỘ TRÌNH PHÁT TRONG NGÀY / COURIER RUN SHEET"
NO_ORDERS = "Không có đơn nào / No orders"
CONTINUED = "(tiếp / cont.)"
# stop, item, recipient, address, to collect, signature: 180 mm between the margins
RUN_COLUMNS_MM = (14, 48, 30, 38, 26, 24)
SIGN_MM = 14.0  # room to sign in each order's row
STOP_RULE = 1.2  # points: the line above a stop's first row


def signed_vnd(amount: int) -> str:
    """An amount with its sign: ``+5.000 ₫``, ``−67.000 ₫``, ``0 ₫``."""
    return ("+" if amount > 0 else "−" if amount < 0 else "") + vnd(abs(amount))


def cash_totals(lines: Sequence[ManifestLine]) -> tuple[int, int, int, int]:
    """The day's money: (still to collect on the items not delivered, due on the delivered ones,
    collected on them, collected less due), for the supervisor counting the courier's cash. An item
    recorded another day (``cash_on``) counts in that day's cash."""
    delivered = [line for line in lines if line.delivered and line.cash_on is None]
    still = sum(line.to_collect_vnd for line in lines if not line.delivered)
    due = sum(line.to_collect_vnd for line in delivered)
    collected = sum(line.collected_vnd or 0 for line in delivered)
    return still, due, collected, collected - due


def _delivered_markup(line: ManifestLine) -> str:
    """A delivered item: what was due, what the courier recorded collecting, and any difference."""
    collected = vnd(line.collected_vnd) if line.collected_vnd is not None else "chưa ghi / not recorded"
    parts = [f"Phải thu / Due {vnd(line.to_collect_vnd)}", f"<b>Đã thu / Collected {collected}</b>"]
    if line.difference_vnd:
        parts.append(f"<b>Chênh lệch / Difference {signed_vnd(line.difference_vnd)}</b>")
    if line.cash_on is not None:
        day = line.cash_on.strftime("%d/%m/%Y")
        parts.append(f"Ghi ngày {day}, tính vào tiền thu của ngày đó / Recorded {day}, counted that day")
    return "<br/>".join(parts)


def _collect_markup(lines: Sequence[ManifestLine]) -> str:
    """What to collect at the door: postage due and amounts collected for the agency, with a total;
    for a delivered item, what was due and what was collected."""
    if len(lines) == 1 and lines[0].delivered:
        return _delivered_markup(lines[0])
    parts: list[str] = []
    total = 0
    for line in lines:
        if line.postage_vnd:
            parts.append(f"Cước / Postage {vnd(line.postage_vnd)}")
        if line.collect_vnd:
            parts.append(f"Thu hộ / COD {vnd(line.collect_vnd)}")
        total += line.postage_vnd + line.collect_vnd
    if not total:
        return "Không thu / Nothing"
    if len(parts) > 1:
        parts.append(f"<b>Tổng / Total {vnd(total)}</b>")
    else:
        parts = [f"<b>{parts[0]}</b>"]
    return "<br/>".join(parts)


def _item_cell(line: ManifestLine, st: Styles, dpi: int) -> list[Flowable]:
    """An order's Code 128 (when it fits the column) over its id, dossier code and note."""
    avail = RUN_COLUMNS_MM[1] * mm - 2 * CELL_PAD
    item_id = identifier(line.item_id, "item id")
    # Pickups and deliveries look different at a glance: the courier takes a dossier away from one
    # and hands a result over at the other.
    leg = "<b>▲ LẤY HỒ SƠ / PICK UP</b>" if line.pickup else "▼ GIAO / DELIVER"
    cell: list[Flowable] = [para(leg, st.cell)]
    code = Code128(item_id, dpi=dpi, height_mm=BARCODE_HEIGHT_MM, module_dots=compact_dots(dpi), align="LEFT")
    if code.width <= avail:
        cell.append(code)
    cell.append(para(f"<b>{escape(item_id)}</b>", st.cell))
    cell.append(para(f"Hồ sơ / Dossier: {esc(line.dossier_code)}", st.cell))
    if line.window:
        cell.append(para(f"<b>Hẹn giờ / Window: {escape(line.window)}</b>", st.cell))
    note = one_line(line.note)
    if note:
        cell.append(para(f"Ghi chú / Note: {escape(note)}", st.cell))
    return cell


def _number_style(number: str, base: ParagraphStyle) -> ParagraphStyle:
    """``base``, smaller if the stop number would not fit the stop column on one line."""
    fit = fit_lines(number, FONT_BOLD, base.fontSize, 8.0, RUN_COLUMNS_MM[0] * mm - 2 * CELL_PAD, 1)
    if fit.size >= base.fontSize:
        return base
    return ParagraphStyle(f"{base.name}_{fit.size}", parent=base, fontSize=fit.size, leading=fit.size * 1.17)


def _stop_cell(stop: RunSheetStop, st: Styles) -> list[Flowable]:
    """The stop's first row: its number in large type, an estimated place, the leg, the item count."""
    number = str(stop.stop_no)
    cell: list[Flowable] = [para(number, _number_style(number, st.stop_no))]
    if stop.estimated:
        cell.append(para("≈ vị trí ước tính<br/>estimated position", st.center_small))
    if stop.leg_m:
        cell.append(para(f"+{km(stop.leg_m)}", st.center_small))
    if len(stop.lines) > 1:
        cell.append(para(f"{len(stop.lines)} bưu gửi<br/>items", st.center_small))
    return cell


def _continued_cell(stop: RunSheetStop, st: Styles) -> list[Flowable]:
    number = str(stop.stop_no)
    return [para(number, _number_style(number, st.stop_cont)), para(CONTINUED, st.center_small)]


def _order_row(
    stop_cell: list[Flowable],
    line: ManifestLine,
    st: Styles,
    dpi: int,
    *,
    phone: str | None = None,
    address_style: ParagraphStyle | None = None,
    collect_extra: str = "",
) -> list[Any]:
    recipient = f"<b>{esc(line.recipient_name)}</b>"
    if phone and nfc(phone):
        recipient += f"<br/>ĐT / Tel: {esc(phone)}"
    return [
        stop_cell,
        _item_cell(line, st, dpi),
        para(recipient, st.cell),
        para(esc(line.address), address_style or st.cell),
        para(_collect_markup([line]) + collect_extra, st.cell),
        [Spacer(1, SIGN_MM * mm)],
    ]


def _stop_rows(stop: RunSheetStop, st: Styles, dpi: int) -> list[list[Any]]:
    """One row per order of the stop (one empty row for a stop without orders)."""
    if not stop.lines:
        return [[_stop_cell(stop, st), "", "", "", "", [Spacer(1, SIGN_MM * mm)]]]
    total = sum(line.to_collect_vnd for line in stop.lines if not line.delivered)
    whole_stop = ""
    if len(stop.lines) > 1 and total:
        whole_stop = f"<br/><b>Cả điểm {stop.stop_no} / Whole stop: {vnd(total)}</b>"
    first_address = nfc(stop.lines[0].address)
    rows = [
        _order_row(_stop_cell(stop, st), stop.lines[0], st, dpi, phone=stop.phone, collect_extra=whole_stop)
    ]
    for line in stop.lines[1:]:
        same = nfc(line.address) == first_address
        rows.append(
            _order_row(_continued_cell(stop, st), line, st, dpi, address_style=st.cell_grey if same else None)
        )
    return rows


def _run_table(rows: list[list[Any]], starts: Sequence[int], st: Styles) -> Table:
    """The stops' rows under a header repeated on every page; ``starts``: the rows (from 0, without
    the header) that begin a stop, ruled heavier above."""
    header = [
        para("Điểm<br/>Stop", st.head),
        para("Bưu gửi<br/>Item", st.head),
        para("Người nhận<br/>Recipient", st.head),
        para("Địa chỉ<br/>Address", st.head),
        para("Thu<br/>To collect", st.head),
        para("Ký nhận<br/>Signature", st.head),
    ]
    rules = [("LINEABOVE", (0, r + 1), (-1, r + 1), STOP_RULE, INK) for r in starts if r > 0]
    return table(
        [header, *rows],
        colWidths=[w * mm for w in RUN_COLUMNS_MM],
        repeatRows=1,
        style=[*grid_style(), *rules],
    )


def render_run_sheet(data: RunSheetData, *, dpi: int = 300) -> bytes:
    """A courier's run sheet, A4 portrait: stops in order, a row per item, what to collect, a box to sign."""
    check_dpi(dpi)
    st = Styles()
    pagesize = A4
    route = nfc(data.route_code)
    all_lines = [line for stop in data.stops for line in stop.lines] + list(data.unsequenced)
    still, due, collected, difference = data.cash or cash_totals(all_lines)
    facts = [
        ("Tuyến / Route", f"<b>{esc(route)}</b> — {esc(data.route_name)}"),
        (
            "Bưu tá / Courier",
            esc(data.courier_name) if data.courier_name else "— (chưa phân công / unassigned)",
        ),
        ("Ngày / Date", f"<b>{date_text(data.day)}</b>"),
        ("Tổng quãng đường / Total distance", km(data.total_m)),
        (
            "Điểm dừng · bưu gửi / Stops · items",
            f"{len(data.stops)} · {len(all_lines)}"
            + (f" (chưa xếp thứ tự / unsequenced: {len(data.unsequenced)})" if data.unsequenced else ""),
        ),
        # items delivered already are not "to collect": their money is counted below
        ("Còn phải thu / Still to collect", f"<b>{vnd(still)}</b>"),
        ("In lúc / Printed at", moment_text(data.printed_at)),
    ]
    if any(line.delivered for line in all_lines):
        caption = ("Đã phát, đã lấy hồ sơ: phải thu · đã thu · chênh lệch / Delivered, picked up: due · "
                   "collected · difference" if any(line.delivered and line.pickup for line in all_lines) else
                   "Đã phát: phải thu · đã thu · chênh lệch / Delivered: due · collected · difference")
        facts.insert(-1, (caption, f"{vnd(due)} · <b>{vnd(collected)}</b> · <b>{signed_vnd(difference)}</b>"))
    if data.office is not None:
        facts.insert(
            0, ("Bưu cục / Office", party_markup(data.office.name, data.office.address, data.office.phone))
        )
    frame_w = pagesize[0] - 30 * mm
    info = table(
        [[para(c, st.caption), para(v, st.body)] for c, v in facts],
        colWidths=[55 * mm, frame_w - 55 * mm],
        style=[
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ],
    )
    story: list[Flowable] = [para(RUN_SHEET_TITLE, st.title), info, Spacer(1, 4 * mm)]

    if not data.stops and not data.unsequenced:
        story.append(para(NO_ORDERS, st.h2))
    elif not data.stops:
        story.append(para("Không có điểm dừng đã xếp thứ tự / No sequenced stops", st.body))
    else:
        rows: list[list[Any]] = []
        starts: list[int] = []
        for stop in data.stops:
            starts.append(len(rows))
            rows += _stop_rows(stop, st, dpi)
        story.append(_run_table(rows, starts, st))

    if data.unsequenced:
        story.append(
            para("Đơn thêm sau khi xếp tuyến (chưa xếp thứ tự) / Added since sequencing (unsequenced)", st.h2)
        )
        rows = [_order_row([para("—", st.stop_no)], line, st, dpi) for line in data.unsequenced]
        story.append(_run_table(rows, range(len(rows)), st))

    furniture = functools.partial(_run_sheet_furniture, data=data)
    pdf, _ = build(
        story,
        pagesize,
        title=f"Lộ trình / Run sheet {route} {date_text(data.day)}",
        margins=(20 * mm, 15 * mm, 16 * mm, 15 * mm),
        furniture=furniture,
    )
    return pdf


def _run_sheet_furniture(canv: Canvas, page: int, pages: int, *, data: RunSheetData) -> None:
    """Route, courier and day at the top of every page; page x of y at the bottom."""
    width, height = A4
    canv.saveState()
    canv.setFillColor(INK)
    head = f"{RUN_SHEET_TITLE} · {nfc(data.route_code)} · {date_text(data.day)}"
    if data.courier_name:
        head += f" · {nfc(data.courier_name)}"
    fit = fit_line(head, FONT, 8, 6, width - 30 * mm)
    canv.setFont(FONT, fit.size)
    canv.drawString(15 * mm, height - 12 * mm, fit.lines[0])
    canv.setStrokeColor(RULE)
    canv.setLineWidth(0.5)
    canv.line(15 * mm, height - 13.5 * mm, width - 15 * mm, height - 13.5 * mm)
    canv.restoreState()
    footer(
        canv,
        page,
        pages,
        left_text=f"Lộ trình / Run sheet {nfc(data.route_code)} {date_text(data.day)}",
        pagesize=A4,
    )
