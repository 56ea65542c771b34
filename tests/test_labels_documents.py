"""Receipt, manifest and run sheet PDFs: rasterised with poppler and scanned with zxing-cpp, text
read back with pdftotext, page sizes from pdfinfo. Without poppler these tests skip with the reason;
with REQUIRE_SERVICES=1 they fail instead."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re
import shutil
import subprocess
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from labels import s10
from labels.documents import render_manifest, render_receipt, render_run_sheet
from labels.model import (
    LabelError,
    ManifestData,
    ManifestKind,
    ManifestLine,
    Party,
    ReceiptData,
    RunSheetData,
    RunSheetStop,
    Service,
)

REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
POPPLER = ("pdftoppm", "pdftotext", "pdfinfo")
A5_PT = (419.53, 595.28)
A4_PT = (595.28, 841.89)
MODES = {
    "grey": ["-gray"],
    "grey-no-aa": ["-gray", "-aa", "no", "-aaVector", "no"],
    "mono": ["-mono"],
}
TRACKING = "https://tracuu.buudien.example.vn/t/RR123456785VN"
RECIPIENT = "Nguyễn Thị Ánh Tuyết & <Con> Hoàng"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


@pytest.fixture(scope="module", autouse=True)
def poppler() -> None:
    missing = [tool for tool in POPPLER if shutil.which(tool) is None]
    if missing:
        msg = f"{', '.join(missing)} not installed (Debian poppler-utils); scripts/test installs it"
        if REQUIRE:
            pytest.fail(msg)
        pytest.skip(msg)


def zxing() -> Any:
    try:
        import zxingcpp
    except ImportError as exc:  # labels itself needs zxing-cpp, so this is an install problem
        pytest.fail(f"zxing-cpp is not importable: {exc}")
    return zxingcpp


# ---------------------------------------------------------------------------------------------
# poppler helpers


def write(tmp: Path, name: str, pdf: bytes) -> Path:
    path = tmp / name
    path.write_bytes(pdf)
    return path


def scan(pdf: Path, *, dpi: int, mode: str, page: int = 1) -> list[tuple[str, str]]:
    """(format, text) of every barcode zxing-cpp finds on ``page`` rasterised at ``dpi``."""
    from PIL import Image

    out = pdf.with_name(f"{pdf.stem}-{dpi}-{mode}-{page}")
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(dpi),
            *MODES[mode],
            "-f",
            str(page),
            "-l",
            str(page),
            "-singlefile",
            str(pdf),
            str(out),
        ],
        check=True,
    )
    image_path = out.with_suffix(".pbm" if mode == "mono" else ".pgm")
    with Image.open(image_path) as image:
        found = zxing().read_barcodes(image)
    return [(b.format.name, b.text) for b in found]


def text(pdf: Path, page: int | None = None) -> str:
    args = ["pdftotext", "-raw", "-enc", "UTF-8"]  # content order: a cell's lines stay together
    if page is not None:
        args += ["-f", str(page), "-l", str(page)]
    return subprocess.run([*args, str(pdf), "-"], check=True, capture_output=True, text=True).stdout


def flat(s: str) -> str:
    return "".join(s.split())


def page_sizes(pdf: Path) -> list[tuple[float, float]]:
    out = subprocess.run(
        ["pdfinfo", "-f", "1", "-l", "999", str(pdf)], check=True, capture_output=True, text=True
    ).stdout
    return [(float(w), float(h)) for w, h in re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", out)]


def words_outside(pdf: Path, inset_mm: float = 3.0) -> list[str]:
    """Words whose box is not inside the page less ``inset_mm`` on every side (pdftotext -bbox)."""
    html = subprocess.run(
        ["pdftotext", "-bbox", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True, text=True
    ).stdout
    inset = inset_mm * 72 / 25.4
    bad: list[str] = []
    for page in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', html, re.S):
        width, height = float(page[1]), float(page[2])
        for w in re.finditer(
            r'<word xMin="([\d.-]+)" yMin="([\d.-]+)" xMax="([\d.-]+)" yMax="([\d.-]+)">(.*?)</word>', page[3]
        ):
            x0, y0, x1, y1 = (float(w[i]) for i in range(1, 5))
            if x0 < inset or y0 < inset or x1 > width - inset or y1 > height - inset:
                bad.append(w[5])
    return bad


def assert_size(pdf: Path, size: tuple[float, float]) -> None:
    sizes = page_sizes(pdf)
    assert sizes
    for w, h in sizes:
        assert w == pytest.approx(size[0], abs=0.01) and h == pytest.approx(size[1], abs=0.01)


# ---------------------------------------------------------------------------------------------
# data (NFD on purpose: the documents must print NFC)


def receipt_data(**overrides: object) -> ReceiptData:
    values: dict[str, object] = dict(
        item_id="RR123456785VN",
        tracking_url=TRACKING,
        service=Service.BOTH,
        counter=Party(
            nfd("Trung tâm Phục vụ hành chính công tỉnh Quảng Ngãi"),
            (nfd("96 Nguyễn Nghiêm"), nfd("Phường Cẩm Thành")),
            "0255 3822 222",
        ),
        recipient=Party(nfd(RECIPIENT), (nfd("Thôn Phú Vinh Đông, Xã Tịnh Ấn Tây"),), "0905 123 456"),
        dossier_code="000.00.16.H38-261121-0001",
        procedure_name=nfd("Cấp đổi giấy phép lái xe (1.011442.000.00.00.H38)"),
        issuing_agency=nfd("Sở Xây dựng tỉnh Quảng Ngãi"),
        created_at=dt.datetime(2026, 11, 21, 9, 30),
        appointment_date=dt.date(2026, 11, 28),
        due_date=dt.date(2026, 11, 30),
        postage_vnd=26_000,
        postage_due_vnd=13_000,
        exemption=nfd("Giảm 50 % – hộ nghèo"),
        collect_vnd=135_000,
        hotline="1022",
    )
    values.update(overrides)
    return ReceiptData(**values)  # type: ignore[arg-type]


def manifest_lines(n: int) -> tuple[ManifestLine, ...]:
    return tuple(
        ManifestLine(
            item_id=f"RR{i:08d}0VN",
            dossier_code=f"H38-{i:04d}",
            recipient_name=nfd("Lê Thị Hồng Nhung" if i % 2 else "Trần Văn Bảy"),
            address=nfd(f"{i} Hùng Vương, Phường Cẩm Thành, Tỉnh Quảng Ngãi")
            + (nfd(", hẻm 3 rẽ trái, nhà có cổng xanh, gọi trước khi đến") if i % 5 == 0 else ""),
            postage_vnd=26_000,
            collect_vnd=50_000 if i % 2 else 0,
            note="A & B <C>" if i == 7 else None,
        )
        for i in range(1, n + 1)
    )


def manifest_data(n: int = 45) -> ManifestData:
    return ManifestData(
        manifest_id="BB-QNG01-20261121-0003",
        kind=ManifestKind.COUNTER_TO_COURIER,
        giver=Party(nfd("Quầy 3 – Bưu điện Quảng Ngãi"), (nfd("80 Phan Đình Phùng"),)),
        receiver=Party(nfd("Phạm Văn Đức")),
        created_at=dt.datetime(2026, 11, 21, 14, 5),
        lines=manifest_lines(n),
        route_code="QNG01",
    )


def run_sheet_data() -> RunSheetData:
    lines = manifest_lines(12)
    stops = (
        RunSheetStop(1, lines[0:2], phone="0905 000 001", leg_m=800.0),
        RunSheetStop(2, lines[2:3], phone="0905 000 002", leg_m=1200.0, estimated=True),
        *(RunSheetStop(i, lines[i : i + 1], leg_m=500.0) for i in range(3, 10)),
    )
    return RunSheetData(
        route_code="QNG01",
        route_name=nfd("Tuyến Cẩm Thành – Nghĩa Chánh"),
        courier_name=nfd("Phạm Văn Đức"),
        day=dt.date(2026, 11, 22),
        stops=stops,
        total_m=23_456.0,
        printed_at=dt.datetime(2026, 11, 22, 6, 45),
        office=Party(nfd("Bưu điện thành phố Quảng Ngãi")),
        unsequenced=lines[10:12],
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("documents")


@pytest.fixture(scope="module")
def receipt_pdf(tmp: Path) -> Path:
    return write(tmp, "receipt.pdf", render_receipt(receipt_data()))


@pytest.fixture(scope="module")
def manifest_pdf(tmp: Path) -> Path:
    return write(tmp, "manifest.pdf", render_manifest(manifest_data()))


@pytest.fixture(scope="module")
def run_sheet_pdf(tmp: Path) -> Path:
    return write(tmp, "run.pdf", render_run_sheet(run_sheet_data()))


# ---------------------------------------------------------------------------------------------
# barcodes scan back at 203 and 300 dpi, grey, grey without anti-aliasing and 1-bit


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("raster_dpi", [203, 300])
@pytest.mark.parametrize("print_dpi", [203, 300])
def test_receipt_barcodes_scan(tmp: Path, print_dpi: int, raster_dpi: int, mode: str) -> None:
    pdf = write(tmp, f"receipt-{print_dpi}.pdf", render_receipt(receipt_data(), dpi=print_dpi))
    found = scan(pdf, dpi=raster_dpi, mode=mode)
    assert sorted(found) == [("Code128", "RR123456785VN"), ("QRCode", TRACKING)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("raster_dpi", [203, 300])
def test_manifest_barcode_scans_on_every_page(manifest_pdf: Path, raster_dpi: int, mode: str) -> None:
    for page in (1, 2):
        assert scan(manifest_pdf, dpi=raster_dpi, mode=mode, page=page) == [
            ("Code128", "BB-QNG01-20261121-0003")
        ]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("raster_dpi", [203, 300])
def test_run_sheet_item_barcodes_scan(run_sheet_pdf: Path, raster_dpi: int, mode: str) -> None:
    pages = len(page_sizes(run_sheet_pdf))
    found = [
        hit
        for page in range(1, pages + 1)
        for hit in scan(run_sheet_pdf, dpi=raster_dpi, mode=mode, page=page)
    ]
    assert sorted(found) == sorted(("Code128", line.item_id) for line in manifest_lines(12))


@pytest.mark.parametrize("dpi", [203, 300])
def test_barcodes_are_drawn_on_the_printer_dot_grid(monkeypatch: pytest.MonkeyPatch, dpi: int) -> None:
    """draw_code128 snaps to the dot grid of the coordinates it gets; inside a table cell those must
    be page coordinates (a cell's offset is not a whole number of dots), or every bar edge is off."""
    from labels import barcodes

    real = barcodes.draw_code128
    origins: list[float] = []

    def spy(canvas: Any, x: float, y: float, value: str, **kwargs: Any) -> float:
        origins.append(canvas.absolutePosition(0.0, 0.0)[0] * dpi / 72.0)  # in dots
        return real(canvas, x, y, value, **kwargs)

    monkeypatch.setattr(barcodes, "draw_code128", spy)
    render_run_sheet(run_sheet_data(), dpi=dpi)
    render_receipt(receipt_data(), dpi=dpi)
    render_manifest(manifest_data(2), dpi=dpi)
    assert len(origins) == 12 + 1 + 1
    for dots in origins:
        assert dots == pytest.approx(round(dots), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# receipt


def test_receipt_is_a5_and_prints_its_facts_in_nfc(receipt_pdf: Path) -> None:
    assert_size(receipt_pdf, A5_PT)
    assert len(page_sizes(receipt_pdf)) == 1
    out = text(receipt_pdf)
    for expected in (
        "BIÊN NHẬN / RECEIPT",
        "Dịch vụ bưu chính công ích",
        RECIPIENT,  # & and < > literally, diacritics composed
        "Trung tâm Phục vụ hành chính công tỉnh Quảng Ngãi",
        "Chuyển hồ sơ đến cơ quan",
        "trả kết quả đến tận nhà",
        "Cấp đổi giấy phép lái xe",
        "Sở Xây dựng tỉnh Quảng Ngãi",
        "000.00.16.H38-261121-0001",
        "RR123456785VN",
        TRACKING,
        "28/11/2026",
        "30/11/2026",
        "26.000 ₫",
        "Giảm 50 % – hộ nghèo",
        "13.000 ₫",
        "135.000 ₫",
        "148.000 ₫",  # total: postage due + collect
        "Đường dây nóng / Hotline: 1022",
        "21/11/2026 09:30",
        "xuất trình",
    ):
        assert flat(expected).lower() in flat(out).lower(), expected
    assert nfd(RECIPIENT) not in out
    assert "&amp;" not in out and "&lt;" not in out


@pytest.mark.parametrize(
    ("service", "words"),
    [
        (Service.RESULT_TO_CITIZEN, "Trả kết quả đến tận nhà / Result delivered to your home"),
        (Service.DOSSIER_TO_AGENCY, "Chuyển hồ sơ đến cơ quan / Dossier carried to the agency"),
    ],
)
def test_receipt_service_in_words(tmp: Path, service: Service, words: str) -> None:
    pdf = write(tmp, f"receipt-{service}.pdf", render_receipt(receipt_data(service=service, hotline=None)))
    out = text(pdf)
    assert flat(words) in flat(out)
    assert "Hotline" not in out


def test_receipt_a4(tmp: Path) -> None:
    pdf = write(tmp, "receipt-a4.pdf", render_receipt(receipt_data(), "A4"))
    assert_size(pdf, A4_PT)
    assert len(page_sizes(pdf)) == 1
    assert sorted(scan(pdf, dpi=203, mode="mono")) == [("Code128", "RR123456785VN"), ("QRCode", TRACKING)]


def test_receipt_long_texts_wrap_or_shrink_inside_the_page(tmp: Path) -> None:
    long_name = nfd("Công ty Trách nhiệm Hữu hạn Một thành viên Thương mại Dịch vụ Xuất nhập khẩu " * 3)
    unbroken = "Nguyễn" * 12  # one 72-letter word
    data = receipt_data(
        recipient=Party(
            long_name + unbroken, (nfd("Thôn Phú Vinh Đông, Xã Tịnh Ấn Tây, ") * 4,), "0905 123 456"
        ),
        procedure_name=nfd("Thủ tục cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở ") * 3,
    )
    pdf = write(tmp, "receipt-long.pdf", render_receipt(data))
    assert words_outside(pdf) == []
    assert_size(pdf, A5_PT)
    out = flat(text(pdf))
    assert flat(unicodedata.normalize("NFC", long_name)) in out  # nothing cut
    assert unbroken in out
    assert sorted(scan(pdf, dpi=300, mode="grey")) == [("Code128", "RR123456785VN"), ("QRCode", TRACKING)]


def test_receipt_errors() -> None:
    with pytest.raises(LabelError, match="a4, a5"):
        render_receipt(receipt_data(), "letter")
    with pytest.raises(LabelError, match="item id"):
        render_receipt(receipt_data(item_id="RR 123"))
    with pytest.raises(LabelError, match="tracking URL"):
        render_receipt(receipt_data(tracking_url=" "))
    with pytest.raises(LabelError, match="dpi"):
        render_receipt(receipt_data(), dpi=0)


# ---------------------------------------------------------------------------------------------
# manifest


def test_manifest_spans_pages_with_header_totals_and_signatures(manifest_pdf: Path) -> None:
    sizes = page_sizes(manifest_pdf)
    assert len(sizes) >= 2
    assert_size(manifest_pdf, A4_PT)
    pages = len(sizes)
    for page in range(1, pages + 1):
        out = text(manifest_pdf, page)
        if re.search(r"RR\d{9}VN", out):  # a page of items (the signatures may end on a page of their own)
            assert "Mã bưu gửi" in out and "Dossier code" in out and "STT" in out, (
                f"header missing on page {page}"
            )
        assert f"Page {page} of {pages}" in out
        assert "BB-QNG01-20261121-0003" in out
    first, last = text(manifest_pdf, 1), text(manifest_pdf, pages)
    assert "BIÊN BẢN GIAO NHẬN / HANDOVER MANIFEST" in first
    assert "Bàn giao từ quầy cho bưu tá / Counter to courier" in first
    assert "Quầy 3 – Bưu điện Quảng Ngãi" in first and "Phạm Văn Đức" in first
    assert "21/11/2026 14:05" in first and "QNG01" in first
    assert "Bên giao / Giver" in first and "Bên nhận / Receiver" in first
    assert "BÊN GIAO / GIVER" in last and "BÊN NHẬN / RECEIVER" in last and "Ký, ghi rõ họ tên" in last
    assert "Ký, ghi rõ họ tên" not in first
    everything = text(manifest_pdf)
    assert "Lê Thị Hồng Nhung" in everything and nfd("Lê Thị Hồng Nhung") not in everything
    assert "A & B <C>" in everything
    for line in manifest_lines(45):
        assert line.item_id in everything
    # 45 items; postage 45 x 26.000; collect 23 x 50.000
    assert re.search(r"Number of items\s+45\b", last)
    assert "1.170.000 ₫" in last and "1.150.000 ₫" in last
    assert re.search(r"Total to collect\s+2.320.000 ₫", last)  # postage and fees: what the courier collects
    assert re.search(r"Total: 45\b", everything)
    assert words_outside(manifest_pdf) == []


def test_manifest_of_one_item_is_one_page(tmp: Path) -> None:
    pdf = write(tmp, "manifest-1.pdf", render_manifest(manifest_data(1)))
    assert len(page_sizes(pdf)) == 1
    out = text(pdf)
    assert "Page 1 of 1" in out and "BÊN NHẬN / RECEIVER" in out and "26.000 ₫" in out


def test_manifest_errors() -> None:
    with pytest.raises(LabelError, match="^A manifest needs at least one item$"):
        render_manifest(manifest_data(0))


# ---------------------------------------------------------------------------------------------
# run sheet


def test_run_sheet_lists_stops_in_order_and_unsequenced_last(run_sheet_pdf: Path) -> None:
    assert_size(run_sheet_pdf, A4_PT)
    pages = len(page_sizes(run_sheet_pdf))
    out = text(run_sheet_pdf)
    for expected in (
        "LỘ TRÌNH PHÁT TRONG NGÀY / COURIER RUN SHEET",
        "QNG01",
        "Tuyến Cẩm Thành – Nghĩa Chánh",
        "Phạm Văn Đức",
        "22/11/2026",
        "23,5 km",
        "22/11/2026 06:45",
        "Bưu điện thành phố Quảng Ngãi",
        "0905 000 001",
        "≈ vị trí ước",
        "estimated",
        "Ký nhận",
        f"Page {pages} of {pages}",
    ):
        assert flat(expected) in flat(out), expected
    assert nfd("Phạm Văn Đức") not in out
    # item ids appear in stop order, the unsequenced ones after the heading that announces them
    positions = [out.index(line.item_id) for line in manifest_lines(12)]
    assert positions == sorted(positions)
    heading = out.index("unsequenced)")
    assert positions[9] < heading < positions[10]
    assert "A & B <C>" in out
    assert words_outside(run_sheet_pdf) == []


def test_empty_run_sheet_is_one_page_saying_so(tmp: Path) -> None:
    data = RunSheetData(
        "QNG02", "Tuyến 2", None, dt.date(2026, 11, 22), (), 0.0, dt.datetime(2026, 11, 22, 6, 45)
    )
    pdf = write(tmp, "run-empty.pdf", render_run_sheet(data))
    assert len(page_sizes(pdf)) == 1
    assert_size(pdf, A4_PT)
    out = text(pdf)
    assert "Không có đơn nào / No orders" in out and "Page 1 of 1" in out
    assert scan(pdf, dpi=203, mode="mono") == []


def test_long_run_sheet_repeats_its_header(tmp: Path) -> None:
    lines = manifest_lines(40)
    data = RunSheetData(
        "QNG01",
        "Tuyến 1",
        "Phạm Văn Đức",
        dt.date(2026, 11, 22),
        tuple(RunSheetStop(i + 1, (line,)) for i, line in enumerate(lines)),
        10_000.0,
        dt.datetime(2026, 11, 22, 6, 45),
    )
    pdf = write(tmp, "run-long.pdf", render_run_sheet(data))
    pages = len(page_sizes(pdf))
    assert pages >= 3
    for page in range(1, pages + 1):
        out = text(pdf, page)
        assert "Ký nhận" in out and f"Page {page} of {pages}" in out
    assert words_outside(pdf) == []


# ---------------------------------------------------------------------------------------------
# documents of any size: a stop of many orders, every text at the API's maximum length


def stop_data(n: int, **line_changes: Any) -> RunSheetData:
    """Stop 1 (one order), stop 2 (``n`` orders at one apartment block), stop 3 (one order)."""
    block = "Chung cư Hoàng Anh Gia Lai, 12 Hùng Vương, Phường Cẩm Thành"
    lines = tuple(
        ManifestLine(
            item_id=s10.make("RR", i),
            dossier_code=f"H38-{i:04d}",
            recipient_name=f"Người nhận số {i}",
            address=block,
            postage_vnd=26_000,
            collect_vnd=10_000 if i % 2 else 0,
            **line_changes,
        )
        for i in range(1, n + 3)
    )
    return RunSheetData(
        "QNG01",
        "Tuyến 1",
        "Phạm Văn Đức",
        dt.date(2026, 11, 22),
        (
            RunSheetStop(1, lines[:1], leg_m=300.0),
            RunSheetStop(2, lines[1 : n + 1], phone="0905 000 002", leg_m=800.0),
            RunSheetStop(3, lines[n + 1 :], leg_m=500.0),
        ),
        10_000.0,
        dt.datetime(2026, 11, 22, 6, 45),
    )


@pytest.mark.parametrize("n", [50, 200])
def test_a_stop_of_many_orders_flows_over_pages(tmp: Path, n: int) -> None:
    """One row per order: a stop of 13 or more orders used to be one row taller than a page."""
    data = stop_data(n)
    pdf = write(tmp, f"run-stop-{n}.pdf", render_run_sheet(data))
    pages = len(page_sizes(pdf))
    assert pages >= 1 + n // 20
    out = text(pdf)
    ids = [line.item_id for stop in data.stops for line in stop.lines]
    positions = [out.find(item_id) for item_id in ids]
    assert -1 not in positions and positions == sorted(positions)  # every order, in stop order
    # the stop's following rows say which stop they continue, on every page they reach
    assert flat(out).count("(tiếp/cont.)") == n - 1
    for page in range(1, pages + 1):
        on_page = text(pdf, page)
        assert "Ký nhận" in on_page and f"Page {page} of {pages}" in on_page
        if 1 < page < pages:  # the first row under the repeated header carries the stop's number
            assert "Signature2(tiếp/cont.)" in flat(on_page)
    whole = 26_000 * n + 10_000 * sum(1 for i in range(2, n + 2) if i % 2)
    assert f"Cả điểm 2 / Whole stop: {whole:,} ₫".replace(",", ".") in " ".join(out.split())
    assert words_outside(pdf) == []
    if n == 50:  # the barcodes on a page in the middle of the stop scan
        found = scan(pdf, dpi=203, mode="mono", page=2)
        assert found and {value for _format, value in found} <= set(ids[1 : n + 1])


# Every free text at the most the API accepts (orders.schemas.OrderIn), with and without spaces.
SPACED = {
    "name": ("Tôn Nữ Hoàng Thị Phương Thảo " * 8)[:200].strip(),
    "address": ("Tổ dân phố 14, khu phố Hoà Thuận Đông, đường Nguyễn Thị Minh Khai " * 4)[:255].strip()
    + ", Phường Điện Ngọc",
    "dossier": ("000.00.16.H38-261121-0001 " * 3)[:64].strip(),
    "procedure": ("Cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở " * 9)[:500].strip(),
    "agency": ("Văn phòng Đăng ký đất đai tỉnh Quảng Ngãi " * 7)[:255].strip(),
}
UNBROKEN = {
    "name": ("Nguyễn" * 34)[:200],
    "address": ("Hẻm" * 90)[:255] + ", Phường Điện Ngọc",
    "dossier": ("H38-" * 16)[:64],
    "procedure": ("Cấp" * 170)[:500],
    "agency": ("Sở" * 130)[:255],
}
NOTES = {
    "words": ("Gọi trước khi đến, cổng xanh, nhà thứ ba " * 13)[:500].strip(),
    "word": ("Gọi" * 170)[:500],
    "lines": "\n".join(["Ghi chú"] * 63)[:500],
    "blank lines": "đầu" + "\n" * 494 + "cuối",
}
TEXTS = {"spaced": SPACED, "unbroken": UNBROKEN}


def max_line(i: int, texts: dict[str, str], note: str) -> ManifestLine:
    return ManifestLine(
        item_id=s10.make("RR", i),
        dossier_code=texts["dossier"],
        recipient_name=texts["name"],
        address=texts["address"],
        postage_vnd=1_000_000_000,  # OrderIn's MAX_VND
        collect_vnd=1_000_000_000,
        note=note,
    )


def assert_all_there(out: str, texts: dict[str, str], *fields: str) -> None:
    """Nothing cut: each text is in the PDF whole (read without the blanks where it wraps)."""
    for name in fields:
        assert flat(texts[name]) in flat(out), name


@pytest.mark.parametrize("size", ["a5", "a4"])
@pytest.mark.parametrize("kind", TEXTS)
def test_receipt_of_maximum_size(tmp: Path, size: str, kind: str) -> None:
    texts = TEXTS[kind]
    data = receipt_data(
        counter=Party(texts["agency"][:200], (texts["address"], "Tỉnh Quảng Ngãi"), "0255 3822 222"),
        recipient=Party(texts["name"], (texts["address"], "Tỉnh Quảng Ngãi"), "0905 123 456"),
        dossier_code=texts["dossier"],
        procedure_name=texts["procedure"],
        issuing_agency=texts["agency"],
        postage_vnd=1_000_000_000,
        postage_due_vnd=1_000_000_000,
        collect_vnd=1_000_000_000,
        delivery_code="123456",
    )
    pdf = write(tmp, f"receipt-max-{size}-{kind}.pdf", render_receipt(data, size))
    pages = len(page_sizes(pdf))
    assert pages <= 2 and words_outside(pdf) == []
    out = text(pdf)
    assert_all_there(out, texts, "name", "address", "dossier", "procedure", "agency")
    assert "2.000.000.000 ₫" in out  # postage due + collect
    if pages == 2:
        assert "Page 2 of 2" in out
    assert sorted(scan(pdf, dpi=300, mode="grey")) == [("Code128", "RR123456785VN"), ("QRCode", TRACKING)]


@pytest.mark.parametrize("note", NOTES)
@pytest.mark.parametrize("kind", TEXTS)
def test_manifest_of_maximum_size(tmp: Path, kind: str, note: str) -> None:
    texts, n = TEXTS[kind], 40
    data = ManifestData(
        manifest_id="BB261122000001",
        kind=ManifestKind.COURIER_TO_AGENCY,
        giver=Party(texts["name"], (texts["address"],)),
        receiver=Party(texts["agency"]),
        created_at=dt.datetime(2026, 11, 22, 14, 5),
        lines=tuple(max_line(i, texts, NOTES[note]) for i in range(1, n + 1)),
        route_code="QNG-01",
        note=("Túi sáng, niêm phong đỏ " * 13)[:300],
    )
    pdf = write(tmp, f"manifest-max-{kind}-{note}.pdf", render_manifest(data))
    pages = len(page_sizes(pdf))
    assert pages <= n // 2 + 1  # at least two items a page: a note no longer makes an item a page tall
    assert words_outside(pdf) == []
    out = text(pdf)
    for line in data.lines:
        assert line.item_id in out
    assert_all_there(text(pdf, 1), texts, "name", "address", "dossier")
    lines_of_note = [part.strip() for part in NOTES[note].split("\n") if part.strip()]
    assert flat(" · ".join(lines_of_note)) in flat(text(pdf, 1))  # the note, its breaks as " · "
    assert "1.000.000.000" in out and f"Total: {n}" in out
    assert "BÊN NHẬN / RECEIVER" in text(pdf, pages)


@pytest.mark.parametrize("note", NOTES)
@pytest.mark.parametrize("kind", TEXTS)
def test_run_sheet_of_maximum_size(tmp: Path, kind: str, note: str) -> None:
    texts = TEXTS[kind]
    lines = tuple(max_line(i, texts, NOTES[note]) for i in range(1, 51))
    data = RunSheetData(
        "QNG-01",
        texts["name"],
        texts["name"],
        dt.date(2026, 11, 22),
        (RunSheetStop(1, lines[:45], phone="0905 123 456", leg_m=1200.0, estimated=True),),
        10_000.0,
        dt.datetime(2026, 11, 22, 6, 45),
        office=Party(texts["agency"][:200], (texts["address"],), "0255 3822 222"),
        unsequenced=lines[45:],
    )
    pdf = write(tmp, f"run-max-{kind}-{note}.pdf", render_run_sheet(data))
    pages = len(page_sizes(pdf))
    assert 1 < pages <= 50
    assert words_outside(pdf) == []
    out = text(pdf)
    positions = [out.find(line.item_id) for line in lines]
    assert -1 not in positions and positions == sorted(positions)
    assert_all_there(text(pdf, 1), texts, "name", "address", "dossier")
    lines_of_note = [part.strip() for part in NOTES[note].split("\n") if part.strip()]
    assert flat(" · ".join(lines_of_note)) in flat(out)
    assert f"Page {pages} of {pages}" in text(pdf, pages)


def test_a_block_taller_than_a_page_is_a_label_error() -> None:
    """What the API cannot send (a name of 30,000 characters) is refused with a clear message."""
    data = stop_data(1, note=None)
    giant = ManifestLine("RR000000014VN", "H38", "Tên " * 7_500, "12 Hùng Vương")
    with pytest.raises(LabelError, match="too long to lay out.*shorten"):
        render_run_sheet(dataclasses.replace(data, unsequenced=(giant,)))
    with pytest.raises(LabelError, match="too long to lay out"):
        render_manifest(dataclasses.replace(manifest_data(1), lines=(giant,)))
    with pytest.raises(LabelError, match="manifest id .* too long"):
        render_manifest(dataclasses.replace(manifest_data(1), manifest_id="BB" + "0" * 80))
