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
from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np
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
    if total == 0 or 2 * per_row > 400:
        return f"^GFA,{total},{total},{per_row},{_compress_rows(bits, per_row, height_dots)}"
    return f"^GFA,{total},{total},{per_row},{_compress_fast(bits, per_row, height_dots)}"


def _compress_rows(bits: bytes, per_row: int, height_dots: int) -> str:
    """The compression row by row with regular expressions (any width)."""
    hexed = bits.hex().upper()
    rows, previous = [], None
    for r in range(height_dots):
        row = hexed[r * 2 * per_row : (r + 1) * 2 * per_row]
        rows.append(":" if row == previous else _compress_row(row))
        previous = row
    return "".join(rows)


_HEX = "0123456789ABCDEF"
# a run of n (1..400) of one hex digit d, at index n * 16 + d: "d", or its repeat count and "d"
_TOKENS = np.array([""] * 16 + [(_COUNTS[n] if n > 1 else "") + d for n in range(1, 401) for d in _HEX],
                   dtype=object)
_ENDS = np.array(["", ",", "!", ":"], dtype=object)


def _compress_fast(bits: bytes, per_row: int, height: int) -> str:
    """The same string as :func:`_compress_rows`, with the runs found by numpy (rows of at most 400
    hex digits, so that no run needs two repeat counts): a text block in tens of microseconds."""
    width = 2 * per_row
    raw = np.frombuffer(bits, dtype=np.uint8).reshape(height, per_row)
    nib = np.empty((height, width), dtype=np.uint8)
    nib[:, 0::2] = raw >> 4
    nib[:, 1::2] = raw & 15
    same = np.zeros(height, dtype=bool)
    same[1:] = (raw[1:] == raw[:-1]).all(axis=1)
    # how much of each row is written out: up to its last digit that is not a trailing 0 (rows
    # ending "00") or F (rows ending "FF"); the rest is said by the row's end mark
    nonzero = nib != 0
    blank = ~nonzero.any(axis=1)
    zeros_end = (nib[:, -1] == 0) & (nib[:, -2] == 0)
    ones_end = ~zeros_end & (nib[:, -1] == 15) & (nib[:, -2] == 15)
    last_ink = width - np.argmax(nonzero[:, ::-1], axis=1)
    last_gap = width - np.argmax(nib[:, ::-1] != 15, axis=1)
    last_gap[(nib == 15).all(axis=1)] = 0
    stop = np.where(zeros_end, last_ink, np.where(ones_end, last_gap, width))
    stop[same | blank] = 0
    end = np.where(zeros_end | blank, 1, np.where(ones_end, 2, 0))
    end[same] = 3
    starts = np.arange(width) < stop[:, None]
    starts[:, 1:] &= nib[:, 1:] != nib[:, :-1]
    flat = np.flatnonzero(starts)
    rows = flat // width
    run_end = np.minimum(np.append(flat[1:], height * width), rows * width + stop[rows])
    tokens = _TOKENS[(run_end - flat) * 16 + nib.ravel()[flat]]
    # each row's end mark after its runs (np.insert keeps marks at one position in row order)
    pieces = np.insert(tokens, np.cumsum(np.bincount(rows, minlength=height)), _ENDS[end])
    return "".join(pieces.tolist())


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


@lru_cache(maxsize=16)
def _advances(name: str, size: float) -> Callable[[str], float]:
    """``text_width`` of single characters in ``name`` at ``size``, cached (a batch's labels draw
    the same few hundred characters again and again)."""

    @lru_cache(maxsize=1024)
    def width(ch: str) -> float:
        return text_width(ch, name, size)

    return width


def _split64(v: float) -> tuple[int, int]:
    """``v`` as whole dots and 64ths of a dot (what ImageDraw.text passes FreeType, rounded)."""
    frac, whole = math.modf(v)
    n = round(frac * 64)
    if n in (64, -64):
        return int(whole) + n // 64, 0
    return int(whole), n


@lru_cache(maxsize=16384)
def _glyph(font: ImageFont.FreeTypeFont, ch: str, x64: int, y64: int,
           ink: int) -> tuple[object, tuple[int, int]]:
    """The 1-bit mask of ``ch`` anchored at its baseline, its origin ``x64``/64 and ``y64``/64 of a
    dot right and down of a whole dot (FreeType places outlines in 64ths of a pixel), and the
    offset to paste it at: what ``ImageDraw.text`` renders for one character, rendered once per
    batch instead of once per label. Bounded, so memory stays flat over long batches."""
    return font.getmask2(ch, "1", anchor="ls", ink=ink, start=(x64 / 64, y64 / 64))


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
    im = draw.draw  # Pillow's drawing core: glyph masks are pasted as ImageDraw.text pastes them
    widths = _advances(t.font, t.size)
    for i, s in enumerate(t.lines):
        baseline = first + i * t.line_mm * scale - top
        # Each character at the PDF's advance (reportlab's metrics, unhinted): Pillow's hinted
        # advances are whole pixels and a long line would drift up to 1.5 % wider or narrower.
        advances = [widths(ch) * dpi / 72 for ch in s]
        length = sum(advances)
        if t.align == "right":
            x = width - side - pad - length
        elif t.align == "center":
            x = (width - length) / 2
        else:
            x = side + pad
        y_int, y64 = _split64(baseline)
        for ch, advance in zip(s, advances, strict=True):
            if not ch.isspace():
                x_int, x64 = _split64(x)
                mask, (dx, dy) = _glyph(font, ch, x64, y64, ink)
                im.draw_bitmap((x_int + dx, y_int + dy), mask, ink)
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
        n = _qr_modules(p.data.translate(_QR_CLASSES))
        magnification = max(1, min(10, _dots(p.size, dpi) // n))
        return f"^FO{_dots(p.x, dpi)},{_dots(p.y, dpi)}^BQN,2,{magnification}^FDMA,{p.data}^FS\n"
    raise TypeError(f"unknown primitive {p!r}")


# QR's segment modes see only whether a character is a digit, in the alphanumeric set or another
# byte: data with the same classes in the same order gets the same symbol size.
_QR_CLASSES = str.maketrans({**{c: "0" for c in "0123456789"},
                             **{c: "A" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"},
                             **{chr(c): "b" for c in range(128) if chr(c) not in
                                "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"}})


@lru_cache(maxsize=256)
def _qr_modules(classes: str) -> int:
    """Modules a side of the QR code of any data whose characters fall in ``classes`` (the same
    symbol version; encoding it costs about as much as the rest of a label)."""
    return len(qr_matrix(classes))


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
    out = bytearray()  # each label encoded as it is done: the batch is held once, as bytes
    for item in items:
        lay = layout_label(item, size, dpi=dpi)
        parts = [f"^XA\n^CI28\n^PW{_dots(lay.width, dpi)}\n^LL{_dots(lay.height, dpi)}\n^LH0,0\n",
                 _static(size, dpi, lay.static), *(_primitive(p, dpi) for p in lay.variable), "^XZ\n"]
        out += "".join(parts).encode("utf-8")
    return bytes(out)
