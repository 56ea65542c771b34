"""The citizen's receipt (biên nhận), A5 or A4: service, ids, fees, tracking, hotline.

Public API: ``render_receipt(data: ReceiptData, size: str = "a5", *, dpi: int = 300) -> bytes``.
"""

from __future__ import annotations

import functools
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib.pagesizes import A4, A5
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Spacer

from labels.docparts import (
    QR,
    RULE,
    SHADE,
    Code128,
    Styles,
    build,
    check_dpi,
    date_text,
    esc,
    footer,
    identifier,
    moment_text,
    para,
    party_markup,
    table,
    vnd,
)
from labels.fonts import FONT_BOLD, nfc
from labels.model import LabelError, ReceiptData, Service

RECEIPT_SIZES: dict[str, tuple[float, float]] = {"a5": A5, "a4": A4}
SERVICE_WORDS: dict[Service, str] = {
    Service.RESULT_TO_CITIZEN: "Trả kết quả đến tận nhà / Result delivered to your home",
    Service.DOSSIER_TO_AGENCY: "Chuyển hồ sơ đến cơ quan / Dossier carried to the agency",
    Service.BOTH: (
        "Chuyển hồ sơ đến cơ quan và trả kết quả đến tận nhà / "
        "Dossier carried to the agency and result delivered to your home"
    ),
}


# The citizen's part in the order: they send the dossier, receive the result, or both (the label
# says "Người gửi / From" on the dossier leg and "Người nhận / To" on the result leg).
CITIZEN_WORDS: dict[Service, str] = {
    Service.RESULT_TO_CITIZEN: "Người nhận / Recipient",
    Service.DOSSIER_TO_AGENCY: "Người gửi / Sender",
    Service.BOTH: "Người gửi hồ sơ, nhận kết quả / Sender of the dossier, recipient of the result",
}
COLLECT_WORDS: dict[Service, str] = {
    Service.RESULT_TO_CITIZEN: "Thu hộ khi giao / To collect on delivery",
    Service.DOSSIER_TO_AGENCY: "Thu hộ khi nhận hồ sơ / To collect at pickup",
    Service.BOTH: "Thu hộ khi nhận hồ sơ, giao kết quả / To collect at pickup and delivery",
}
# The delivery window is when the courier comes: with the result, for the dossier, or both.
WINDOW_WORDS: dict[Service, str] = {
    Service.RESULT_TO_CITIZEN: "Khung giờ giao / Delivery window",
    Service.DOSSIER_TO_AGENCY: "Khung giờ nhận hồ sơ / Pickup window",
    Service.BOTH: "Khung giờ nhận hồ sơ, giao kết quả / Pickup and delivery window",
}
CANCELLED = "ĐÃ HỦY / CANCELLED"


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
    check_dpi(dpi)
    item_id = identifier(data.item_id, "item id")
    url = nfc(data.tracking_url)
    if not url:
        raise LabelError("the receipt needs a tracking URL")
    margin = 10 * mm if key == "a5" else 15 * mm
    furniture = functools.partial(
        _receipt_furniture, item_id=item_id, pagesize=pagesize, cancelled=data.cancelled_at is not None
    )
    pdf = b""
    for scale in RECEIPT_SCALES[key]:
        pdf, pages = build(
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
    st = Styles(scale)
    # heading: title on the left, the tracking QR on the right
    qr_mm = (24.0 if key == "a5" else 30.0) * min(1.0, scale)
    cancelled = data.cancelled_at is not None
    cancelled_text = moment_text(data.cancelled_at) if data.cancelled_at is not None else ""
    heading_left = [
        para("BIÊN NHẬN / RECEIPT", st.title),
        para("Dịch vụ bưu chính công ích / Public postal service", st.subtitle),
    ]
    if cancelled:
        heading_left += [
            Spacer(1, 1.5 * mm),
            para(f"<b>{CANCELLED}</b> {cancelled_text}", st.title),
            para(
                "Đơn đã hủy: không giao, không thu tiền. / The order is cancelled: nothing is delivered "
                "or collected.",
                st.body,
            ),
        ]
    heading_left += [
        Spacer(1, 2 * mm),
        para("Nơi tiếp nhận / Registered at", st.caption),
        para(party_markup(data.counter.name, data.counter.address, data.counter.phone), st.body),
    ]
    qr = QR(url, qr_mm, dpi=dpi, align="RIGHT")
    heading = table(
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
        Code128(item_id, dpi=dpi, height_mm=13.0 if key == "a5" else 15.0),
        Spacer(1, 1 * mm),
        para(f"Mã bưu gửi / Item ID: {escape(item_id)}", st.ident),
        Spacer(1, 3 * mm),
    ]

    cap_w = 38 * mm * scale
    rows: list[list[Any]] = [
        ["Dịch vụ / Service", para(f"<b>{esc(SERVICE_WORDS[data.service])}</b>", st.body)],
        ["Thủ tục / Procedure", para(esc(data.procedure_name), st.body)],
        ["Cơ quan giải quyết / Issuing agency", para(esc(data.issuing_agency), st.body)],
        ["Mã hồ sơ / Dossier code", para(f"<b>{esc(data.dossier_code)}</b>", st.body)],
        [
            CITIZEN_WORDS[data.service],
            para(party_markup(data.recipient.name, data.recipient.address, data.recipient.phone), st.body),
        ],
        ["Ngày hẹn trả / Appointment date", para(date_text(data.appointment_date), st.body)],
    ]
    if data.window and nfc(data.window):
        rows.append([WINDOW_WORDS[data.service], para(f"<b>{esc(data.window)}</b>", st.body)])
    rows.append(["Hạn giao / Due date", para(date_text(data.due_date), st.body)])
    details = table(
        [[para(c, st.caption), v] for c, v in rows],
        colWidths=[cap_w, frame_w - cap_w],
        style=[
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEBELOW", (0, 0), (-1, -1), 0.3, SHADE),
            ("LEFTPADDING", (0, 0), (-1, -1), 1),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
        ],
    )

    fee_rows = [
        ["Cước / Postage", vnd(data.postage_vnd)],
        ["Miễn giảm / Exemption", esc(data.exemption) if data.exemption else "Không / None"],
        ["Cước phải trả / Postage due", vnd(data.postage_due_vnd)],
    ]
    if data.postage_paid_vnd:
        fee_rows.append(["Cước cơ quan đã trả / Postage paid by the agency", vnd(data.postage_paid_vnd)])
    fee_rows.append(["Phí, lệ phí thu hộ cơ quan / Fees collected for the agency", vnd(data.collect_vnd)])
    # the last row is what the courier collects: the label's "THU HỘ / COLLECT", the manifest's figure
    collect = f"{CANCELLED}: 0 ₫" if cancelled else vnd(data.collected)
    fee_rows.append([f"<b>{COLLECT_WORDS[data.service]}</b>", f"<b>{collect}</b>"])
    fees = table(
        [[para(c, st.body), para(v, st.body_right)] for c, v in fee_rows],
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
        para(f"Tra cứu / Track: {escape(url)}", st.small),
    ]
    if data.delivery_code and nfc(data.delivery_code) and not cancelled:  # a cancelled order is not delivered
        tail.append(
            para(
                f"<b>Mã nhận hàng / Delivery code: {esc(data.delivery_code)}</b> (đọc cho bưu tá khi "
                "nhận kết quả / tell it to the courier when you receive the result)",
                st.body,
            )
        )
    if data.hotline and nfc(data.hotline):
        tail.append(para(f"<b>Đường dây nóng / Hotline: {esc(data.hotline)}</b>", st.body))
    tail += [
        para(f"Thời gian lập / Created at: {moment_text(data.created_at)}", st.small),
        Spacer(1, 2 * mm),
        para(
            "Người dân giữ biên nhận này và xuất trình khi nhận kết quả hoặc khi tra cứu, khiếu nại. / "
            "Keep this receipt and present it when you receive the result, track it or complain.",
            st.note,
        ),
    ]
    story: list[Flowable] = [heading, *barcode_block, details, Spacer(1, 3 * mm), para("Phí / Fees", st.h2)]
    story += [fees, *tail]
    return story


def _receipt_furniture(
    canv: Canvas,
    page: int,
    pages: int,
    *,
    item_id: str,
    pagesize: tuple[float, float],
    cancelled: bool = False,
) -> None:
    """A receipt is one page; should a very long text push it over, pages are numbered. A cancelled
    order's receipt says so across every page, so no part of it passes for a valid one."""
    if cancelled:
        # outlined, drawn over the page: the text under it stays legible
        size = 40 if pagesize[0] < 500 else 56
        canv.saveState()
        canv.setStrokeColor(RULE)
        canv.setLineWidth(0.6)
        canv.translate(pagesize[0] / 2, pagesize[1] / 2)
        canv.rotate(35)
        mark = canv.beginText(-stringWidth(CANCELLED, FONT_BOLD, size) / 2, -size / 3)
        mark.setFont(FONT_BOLD, size)
        mark.setTextRenderMode(1)  # stroke only
        mark.textLine(CANCELLED)
        canv.drawText(mark)
        canv.restoreState()
    if pages > 1:
        footer(canv, page, pages, left_text=f"Biên nhận / Receipt {item_id}", pagesize=pagesize)
