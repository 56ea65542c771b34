"""The shipping label in ZPL II for Zebra-compatible thermal printers.

Public API::

    render_zpl(items: Sequence[LabelData], size: LabelSize | str = LabelSize.L100X150,
               *, dpi: int = 203) -> bytes          # one ^XA ... ^XZ per label, UTF-8
    graphic_field(bits: bytes, width_dots: int, height_dots: int) -> str   # ^GFA of a 1-bit bitmap

The layout is the PDF's (labels.label.layout_label), drawn with native commands where a printer
does it best and sharpest: the Code 128 as ^BC (module width ^BY = the PDF's whole dots), the QR
as ^BQ, rules and frames as ^GB. Text is rasterised with the vendored DejaVu fonts into ^GF graphics
at the printer's dpi. Why not ^CI28 with ^A@ and a font downloaded by ~DY: Zebra's built-in fonts
lack Vietnamese, a downloaded DejaVu Sans + Bold needs about 1.5 MB of printer memory (many desk
printers have 512 KB–2 MB free), it must be sent once per printer and kept there, and printers that
emulate ZPL (Godex, TSC, Xprinter) handle ^A@ with TrueType unevenly. A 1-bit graphic prints the same
on every one of them. ^CI28 is still sent, so any text field a person adds is read as UTF-8.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from labels.barcodes import code128_modules, qr_matrix
from labels.fonts import FONT_FILES, text_width
from labels.label import (
    ASCENT,
    PT,
    Barcode,
    Frame,
    Primitive,
    Qr,
    Rule,
    Text,
    check_dpi,
    coerce_size,
    inverse_box,
    layout_label,
)
from labels.model import LabelData, LabelError, LabelSize

ZPL_SIZES = (LabelSize.L100X150, LabelSize.L100X100, LabelSize.A6)


def _dots(mm: float, dpi: int) -> int:
    return round(mm * dpi / 25.4)


_RUN = re.compile(r"(.)\1+")


def _count(n: int) -> str:
    """Zebra's repeat count: g..z are 20..400, G..Y are 1..19 (summed)."""
    return ("" if n < 20 else chr(ord("f") + n // 20)) + ("" if n % 20 == 0 else chr(ord("F") + n % 20))


def _compress_row(row: str) -> str:
    if row.rstrip("0") == "":
        return ","
    tail = ""
    if row.endswith("00"):
        row, tail = row.rstrip("0"), ","
    elif row.endswith("FF"):
        row, tail = row.rstrip("F"), "!"

    return _RUN.sub(_run, row) + tail


_COUNTS = [_count(n) for n in range(401)]  # repeat counts, computed once


def _run(m: re.Match[str]) -> str:
    run = m.group(0)
    n, ch = len(run), run[0]
    if n <= 400:
        return _COUNTS[n] + ch
    return "".join(_COUNTS[min(400, n - i)] + ch for i in range(0, n, 400))


def graphic_field(bits: bytes, width_dots: int, height_dots: int) -> str:
    """``^GFA`` of a packed 1-bit bitmap (rows padded to whole bytes, 1 = black).

    The hex is in Zebra's ASCII compression (repeat counts, "," and "!" to end a row with 0s or
    1s, ":" to repeat the row above): a text block shrinks about tenfold.
    """
    per_row = (width_dots + 7) // 8
    total = per_row * height_dots
    if len(bits) != total:
        raise ValueError(f"bitmap of {len(bits)} bytes, expected {total} for {width_dots}x{height_dots}")
    hexed = bits.hex().upper()
    rows, previous = [], None
    for r in range(height_dots):
        row = hexed[r * 2 * per_row : (r + 1) * 2 * per_row]
        rows.append(":" if row == previous else _compress_row(row))
        previous = row
    return f"^GFA,{total},{total},{per_row},{''.join(rows)}"


@lru_cache(maxsize=64)
def _font(name: str, size_px: float) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONT_FILES[name]), size_px)


# The 134 precomposed Vietnamese letters (67 lower-case, 67 upper-case): the marks they stack above
# capitals (Ầ Ẫ Ỗ) and below the baseline (ỵ Ặ) decide how much room a line needs.
_LOWER = "àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ"
VIETNAMESE_LETTERS = _LOWER + _LOWER.upper()


@lru_cache(maxsize=64)
def _extents(name: str, size_px: float) -> tuple[int, int, int]:
    """(above, below, side) dots the ink of any letter (Vietnamese, Latin, digits, ₫…) can reach
    from its baseline and beyond its advance, with a dot to spare: a line's bitmap is that tall."""
    font = _font(name, size_px)
    ascent, descent = font.getmetrics()
    above, below, side = math.ceil(ascent), math.ceil(descent), 0
    for ch in VIETNAMESE_LETTERS + "Ågjpqy|()[]{}/₫…·—":
        left, top, right, bottom = font.getbbox(ch, anchor="ls")
        above, below = max(above, math.ceil(-top)), max(below, math.ceil(bottom))
        side = max(side, math.ceil(-left), math.ceil(right - font.getlength(ch)))
    return above + 1, below + 1, side + 1


def text_bitmap(t: Text, dpi: int) -> tuple[int, int, Image.Image]:
    """``t`` rasterised at ``dpi``: (x, y) of its top-left dot on the label and the 1-bit image.

    The image holds each line's full ascent, descent and stacked marks (plus a dot) and the glyphs'
    side bearings, so no mark is cut; baselines sit exactly where the PDF puts them. Graphics only
    add ink on a printer, so blocks whose empty margins overlap do not erase each other.
    """
    # The exact size, not rounded to whole pixels: lines as wide as the PDF's that fit_lines measured.
    size_px = round(t.size * dpi / 72, 2)
    font = _font(t.font, size_px)
    above, below, side = _extents(t.font, size_px)
    scale = dpi / 25.4
    pad = _dots(0.8, dpi) if t.inverse else 0
    left = _dots(t.x, dpi) - pad - side
    width = _dots(t.width, dpi) + 2 * (pad + side)
    first = (t.y + t.size * ASCENT * PT) * scale  # the first baseline, in dots from the label's top
    last = first + (len(t.lines) - 1) * t.line_mm * scale
    top, bottom = math.floor(first - above), math.ceil(last + below)
    box = (0, 0, 0, 0)
    if t.inverse:  # the black box, as tall as the PDF's (labels.label.inverse_box)
        bx, by, bw, bh = inverse_box(t)
        box_top, box_bottom = math.floor(by * scale), math.ceil((by + bh) * scale)
        top, bottom = min(top, box_top), max(bottom, box_bottom)
        box = (side, box_top - top, width - side - 1, box_bottom - top - 1)
    ink = 0 if t.inverse else 1  # 1 is a printed dot; inverse text is the paper showing through
    image = Image.new("1", (width, bottom - top), 0)
    draw = ImageDraw.Draw(image)
    if t.inverse:
        draw.rectangle(box, fill=1)
    for i, s in enumerate(t.lines):
        baseline = first + i * t.line_mm * scale - top
        # Each character at the PDF's advance (reportlab's metrics, unhinted): Pillow's hinted
        # advances are whole pixels and a long line would drift up to 1.5 % wider or narrower.
        advances = [text_width(ch, t.font, t.size) * dpi / 72 for ch in s]
        length = sum(advances)
        if t.align == "right":
            x = width - side - pad - length
        elif t.align == "center":
            x = (width - length) / 2
        else:
            x = side + pad
        for ch, advance in zip(s, advances, strict=True):
            if not ch.isspace():
                draw.text((x, baseline), ch, font=font, fill=ink, anchor="ls")
            x += advance
    # A label starts at dot 0: what would lie left of or above it is cut off, not shifted.
    crop_x, crop_y = max(0, -left), max(0, -top)
    if crop_x or crop_y:
        image = image.crop((crop_x, crop_y, image.width, image.height))
    return left + crop_x, top + crop_y, image


@lru_cache(maxsize=2048)
def _text(t: Text, dpi: int) -> str:
    """A text block rasterised to one ^GF at its place (cached: senders, captions and dates repeat
    from label to label in a batch)."""
    if not t.lines:
        return ""
    x, y, image = text_bitmap(t, dpi)
    return f"^FO{x},{y}{graphic_field(image.tobytes(), image.width, image.height)}^FS\n"


def _primitive(p: Primitive, dpi: int) -> str:
    if isinstance(p, Text):
        return _text(p, dpi)
    if isinstance(p, Rule):
        w, h = max(1, _dots(p.width, dpi)), max(1, _dots(p.height, dpi))
        return f"^FO{_dots(p.x, dpi)},{_dots(p.y, dpi)}^GB{w},{h},{min(w, h)}^FS\n"
    if isinstance(p, Frame):
        w, h = _dots(p.width, dpi), _dots(p.height, dpi)
        return f"^FO{_dots(p.x, dpi)},{_dots(p.y, dpi)}^GB{w},{h},{max(1, _dots(p.stroke, dpi))}^FS\n"
    if isinstance(p, Barcode):
        k = p.module_dots
        width = len(code128_modules(p.value)) * k  # ^BC's automatic mode picks the same subsets
        x = _dots(p.x, dpi) + max(0, (_dots(p.width, dpi) - width) // 2)
        h = _dots(p.height, dpi)
        return f"^FO{x},{_dots(p.y, dpi)}^BY{k}^BCN,{h},N,N,N,A^FD{p.value}^FS\n"
    if isinstance(p, Qr):
        n = len(qr_matrix(p.data))
        magnification = max(1, min(10, _dots(p.size, dpi) // n))
        return f"^FO{_dots(p.x, dpi)},{_dots(p.y, dpi)}^BQN,2,{magnification}^FDMA,{p.data}^FS\n"
    raise TypeError(f"unknown primitive {p!r}")


@lru_cache(maxsize=16)
def _static(size: LabelSize, dpi: int, prims: tuple[Primitive, ...]) -> str:
    return "".join(_primitive(p, dpi) for p in prims)


def render_zpl(
    items: Sequence[LabelData], size: LabelSize | str = LabelSize.L100X150, *, dpi: int = 203
) -> bytes:
    """ZPL II for ``items``: one ^XA ... ^XZ label each, text as graphics, barcodes native."""
    size = coerce_size(size)
    check_dpi(dpi)
    if size not in ZPL_SIZES:
        raise LabelError("ZPL is for label printers: choose 100x150, 100x100 or a6")
    if not items:
        raise LabelError("no labels to print: the batch is empty")
    out: list[str] = []
    for item in items:
        lay = layout_label(item, size, dpi=dpi)
        out.append(f"^XA\n^CI28\n^PW{_dots(lay.width, dpi)}\n^LL{_dots(lay.height, dpi)}\n^LH0,0\n")
        out.append(_static(size, dpi, lay.static))
        out.extend(_primitive(p, dpi) for p in lay.variable)
        out.append("^XZ\n")
    return "".join(out).encode("utf-8")
