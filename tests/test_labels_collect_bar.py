"""The "THU HỘ / COLLECT" bar covers no text (outside review: on 100x100 labels the black box, drawn
taller than the 5 mm the details left it, half covered the last row, "In lúc / Printed ..."). Checked
on the layout that the PDF and the ZPL both draw (labels.label.layout_label, inverse_box), every size,
and on the 100x100 PDF as printed (rasterised by poppler)."""

from __future__ import annotations

import pytest
from test_labels import item, rasterise

from labels import LabelSize, layout_label, render_labels
from labels.label import Text, inverse_box

DOSSIER_64 = ("0123456789abcdef0123456789abcdef" + "-000.00.16.H38-261121-0001" * 2)[:64]


def _bar_and_texts(size: LabelSize, **overrides: object) -> tuple[tuple[float, float, float, float], list[Text]]:
    layout = layout_label(item(**overrides), size)
    [bar] = [p for p in layout.variable if isinstance(p, Text) and p.inverse and "COLLECT" in p.lines[0]]
    texts = [p for p in (*layout.static, *layout.variable) if isinstance(p, Text) and p is not bar and p.lines]
    return inverse_box(bar), texts


@pytest.mark.parametrize("size", list(LabelSize))
@pytest.mark.parametrize("amount", [41_000, 1_000_000_000])
@pytest.mark.parametrize("dossier", ["000.00.10.H47-261121-0042", DOSSIER_64])
def test_no_text_row_reaches_into_the_collect_bar(size: LabelSize, amount: int, dossier: str) -> None:
    (bx, by, bw, bh), texts = _bar_and_texts(size, collect_vnd=amount, dossier_code=dossier)
    inside = [(t.lines, round(t.y + t.height - by, 2)) for t in texts
              if t.y < by + bh and t.y + t.height > by and t.x < bx + bw and t.x + t.width > bx]
    assert not inside, f"{size.value}: text boxes reaching into the bar (mm over its top): {inside}"
    printed = [t for t in texts if t.lines[0].startswith("In lúc")]
    assert printed and printed[0].y + printed[0].height <= by  # the last row, above the bar


def test_the_100x100_pdf_prints_the_last_row_above_the_bar() -> None:
    """As printed: between the last row's text and the bar's top edge a band of white paper, and the
    bar starts where the layout says."""
    (bx, by, _bw, _bh), texts = _bar_and_texts(LabelSize.L100X100, collect_vnd=41_000)
    [row] = [t for t in texts if t.lines[0].startswith("In lúc")]
    dpi = 300
    image = rasterise(render_labels([item(collect_vnd=41_000)], LabelSize.L100X100, dpi=dpi), dpi, True)
    px = dpi / 25.4

    def ink(y_mm: float) -> int:  # dark pixels in the row band at y_mm, across the caption and the bar
        y = round(y_mm * px)
        return sum(1 for x in range(round((bx + 1) * px), round((row.x + 15) * px)) if image.getpixel((x, y)) < 128)

    assert ink(by + 0.2) > 0.9 * ((row.x + 14) - (bx + 1)) * px  # the bar's top padding, black
    assert ink(by - 0.1) == 0  # paper just above its top: the row's descenders end before it
