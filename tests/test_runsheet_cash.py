"""The run sheet counts the courier's money (outside review: "Tổng tiền thu" counted delivered items as
still to collect, and nothing showed what was collected): a delivered item shows what was due and
what the courier recorded collecting, and the sheet's facts say what is still to collect and, for the
delivered items, due / collected / difference. labels/runsheet.py is given the figures (no database)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from labels.model import ManifestLine, RunSheetData, RunSheetStop
from labels.runsheet import cash_totals, render_run_sheet

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler) not installed")


def _line(i: int, **changes) -> ManifestLine:
    base = ManifestLine(item_id=f"RR{i:08d}0VN", dossier_code=f"H55-{i:04d}", recipient_name="Nguyễn Thị Hoa",
                        address=f"{i} Hùng Vương, Phường Cẩm Thành", postage_vnd=26_000, collect_vnd=41_000)
    return dataclasses.replace(base, **changes)


def _text(tmp_path: Path, data: RunSheetData) -> str:
    pdf = tmp_path / "run.pdf"
    pdf.write_bytes(render_run_sheet(data))
    out = subprocess.run(["pdftotext", "-raw", "-enc", "UTF-8", str(pdf), "-"], check=True, capture_output=True,
                         text=True).stdout
    return " ".join(out.split())


def _sheet(*lines: ManifestLine) -> RunSheetData:
    return RunSheetData(route_code="QNG-01", route_name="Cẩm Thành", courier_name="Phạm Văn Đức",
                        day=dt.date(2026, 12, 6), stops=(RunSheetStop(1, lines[:2], phone="0905123456"),),
                        total_m=1200.0, printed_at=dt.datetime(2026, 12, 6, 17, 30), unsequenced=lines[2:])


def test_delivered_items_show_due_and_collected_and_the_day_the_difference(tmp_path):
    short = _line(1, delivered=True, collected_vnd=0)  # the reviewer's case: 67.000 ₫ due, 0 collected
    paid = _line(2, delivered=True, collected_vnd=67_000)
    todo = _line(3)
    data = _sheet(short, paid, todo)
    assert cash_totals([short, paid, todo]) == (67_000, 134_000, 67_000, -67_000)
    text = _text(tmp_path, data)
    # still to collect: only the item not delivered
    assert "Còn phải thu / Still to collect 67.000 ₫" in text, text
    assert "Tổng tiền thu" not in text
    assert "Delivered: due · collected · difference 134.000 ₫ · 67.000 ₫ · −67.000 ₫" in text, text
    assert "Phải thu / Due 67.000 ₫ Đã thu / Collected 0 ₫ Chênh lệch / Difference −67.000 ₫" in text, text
    assert "Phải thu / Due 67.000 ₫ Đã thu / Collected 67.000 ₫" in text
    assert text.count("Chênh lệch / Difference") == 1  # the paid item has none
    # the stop's total is what is still to collect there: nothing (both delivered)
    assert "Whole stop" not in text


def test_a_sheet_with_nothing_delivered_reads_as_before(tmp_path):
    text = _text(tmp_path, _sheet(_line(1), _line(2), _line(3)))
    assert "Còn phải thu / Still to collect 201.000 ₫" in text
    assert "Cả điểm 1 / Whole stop: 134.000 ₫" in text
    assert "Delivered: due" not in text and "Đã thu / Collected" not in text


def test_a_delivery_without_a_stated_amount_is_said_so(tmp_path):
    text = _text(tmp_path, _sheet(_line(1, delivered=True)))
    assert "Đã thu / Collected chưa ghi / not recorded" in text, text
    assert "134.000 ₫" not in text and "67.000 ₫ · 0 ₫ · −67.000 ₫" in text, text
