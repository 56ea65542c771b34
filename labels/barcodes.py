"""Code 128 and QR codes drawn as filled rectangles on a reportlab canvas.

Public API (also used by ``labels.documents``)::

    draw_code128(canvas, x, y, value, *, dpi, module_dots=None, height_mm=15.0, quiet_modules=10) -> float
    draw_qr(canvas, x, y, size_mm, data, *, dpi=None, ec_level="M") -> float
    code128_modules(value) -> str             # "1101001..." one character per module, no quiet zone
    qr_matrix(data, ec_level="M") -> list[str]  # rows of "1"/"0", no quiet zone
    default_module_dots(dpi) -> int           # 3 at 203 dpi (0.375 mm), 4 at 300 (0.339), 8 at 600
    mm_to_pt(mm) -> float; dot_pt(dpi) -> float

Coordinates ``x, y`` are points from the bottom-left of the page (reportlab's), and both functions
return the width they drew in points. ``draw_code128``'s x is the left edge of the quiet zone and y
the bottom of the bars; the bars are ``height_mm`` tall (at least 12.5 mm, the UPU S10
recommendation). ``draw_qr``'s ``size_mm`` is the symbol without its quiet zone: leave 4 modules
clear around it.

Why this module exists (docs/BASELINES.md, Labels): reportlab's pure-Python QR encoder is about 97 %
of the time of a naive label, and bars that are not whole printer dots (0.19 mm = 1.5 dots at
203 dpi) fail to scan. The symbols are encoded by zxing-cpp (C++; ``create_barcode`` takes about
0.1 ms, segno about 2.7 ms for a tracking link) and drawn here: every Code 128 bar is a whole
number of printer dots wide and starts on a dot boundary of the page (the page's left edge is dot 0),
so a thermal printer at ``dpi`` prints it without rounding. With ``dpi`` given, QR modules are whole
dots too. Dark runs of a row are merged into one rectangle, and the operators are written in module
units so the PDF stream stays short.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import zxingcpp
from reportlab.pdfgen.canvas import Canvas

MM = 72.0 / 25.4  # points per millimetre
SUPPORTED_DPI = (203, 300, 600)
MIN_HEIGHT_MM = 12.5
MIN_QUIET_MODULES = 10
MIN_X_MM = 0.33  # the module width we aim for: DOMAIN.md allows 0.25–0.51 mm, wider scans better


def mm_to_pt(mm: float) -> float:
    """Millimetres to points."""
    return mm * MM


def dot_pt(dpi: int) -> float:
    """One printer dot in points."""
    return 72.0 / dpi


def default_module_dots(dpi: int) -> int:
    """The Code 128 module width in dots at ``dpi``: the fewest whole dots of at least 0.33 mm."""
    return max(1, math.ceil(MIN_X_MM * dpi / 25.4 - 1e-9))


_DARK = bytes(0x31 if v < 128 else 0x30 for v in range(256))  # grey byte -> "1" / "0"


def _bits(barcode: zxingcpp.Barcode) -> list[str]:
    image: Any = barcode.to_image(scale=1, add_quiet_zones=False)  # 8-bit grey buffer, 0 is dark
    view = memoryview(image)
    height, width = view.shape or (0, 0)
    dark = bytes(view).translate(_DARK)
    return [dark[r * width : (r + 1) * width].decode("ascii") for r in range(height)]


@lru_cache(maxsize=256)
def code128_modules(value: str) -> str:
    """The Code 128 symbol of ``value`` (start, data, check, stop) as "1"/"0" modules."""
    if not value or not value.isascii() or not value.isprintable():
        raise ValueError(f"Code 128 here takes printable ASCII, got {value!r}")
    return _bits(zxingcpp.create_barcode(value, zxingcpp.BarcodeFormat.Code128))[0]


def qr_matrix(data: str, ec_level: str = "M") -> list[str]:
    """The QR code of ``data`` as rows of "1"/"0" modules, without the quiet zone."""
    return _bits(zxingcpp.create_barcode(data, zxingcpp.BarcodeFormat.QRCode, ec_level=ec_level))


def _runs(row: str) -> list[tuple[int, int]]:
    """(start, length) of each run of "1" in ``row``."""
    runs: list[tuple[int, int]] = []
    start = -1
    for i, ch in enumerate(row):
        if ch == "1":
            if start < 0:
                start = i
        elif start >= 0:
            runs.append((start, i - start))
            start = -1
    if start >= 0:
        runs.append((start, len(row) - start))
    return runs


def draw_code128(
    canvas: Canvas,
    x: float,
    y: float,
    value: str,
    *,
    dpi: int,
    module_dots: int | None = None,
    height_mm: float = 15.0,
    quiet_modules: int = MIN_QUIET_MODULES,
) -> float:
    """Draw ``value`` as Code 128 with whole-dot bars; returns the width drawn (quiet zones included)."""
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, got {dpi}")
    k = default_module_dots(dpi) if module_dots is None else module_dots
    if k < 1:
        raise ValueError(f"module_dots must be at least 1, got {module_dots}")
    if height_mm < MIN_HEIGHT_MM:
        raise ValueError(f"Code 128 height must be at least {MIN_HEIGHT_MM} mm, got {height_mm}")
    if quiet_modules < MIN_QUIET_MODULES:
        raise ValueError(f"quiet zones must be at least {MIN_QUIET_MODULES} modules, got {quiet_modules}")
    modules = code128_modules(value)
    dot = dot_pt(dpi)
    first_dot = math.ceil(x / dot - 1e-6) + quiet_modules * k  # the first bar, on the dot grid
    ops = " ".join(f"{s * k} 0 {n * k} 1 re" for s, n in _runs(modules))
    canvas.saveState()
    canvas.setFillGray(0)
    canvas.addLiteral(f"{dot:.6f} 0 0 {mm_to_pt(height_mm):.4f} {first_dot * dot:.6f} {y:.4f} cm {ops} f")
    canvas.restoreState()
    return (first_dot * dot - x) + (len(modules) + quiet_modules) * k * dot


def draw_qr(
    canvas: Canvas,
    x: float,
    y: float,
    size_mm: float,
    data: str,
    *,
    dpi: int | None = None,
    ec_level: str = "M",
) -> float:
    """Draw ``data`` as a QR code at most ``size_mm`` wide; returns the side drawn in points."""
    matrix = qr_matrix(data, ec_level)
    n = len(matrix)
    side = mm_to_pt(size_mm)
    if dpi:
        dot = dot_pt(dpi)
        per_module = max(1, math.floor(side / dot / n + 1e-9))
        module = per_module * dot
        x = math.ceil(x / dot - 1e-6) * dot
        y = math.ceil(y / dot - 1e-6) * dot
    else:
        module = side / n
    parts: list[str] = []
    for r, row in enumerate(matrix):
        yy = n - 1 - r  # PDF y grows upwards; row 0 is the top of the symbol
        parts.extend(f"{s} {yy} {length} 1 re" for s, length in _runs(row))
    canvas.saveState()
    canvas.setFillGray(0)
    canvas.addLiteral(f"{module:.6f} 0 0 {module:.6f} {x:.4f} {y:.4f} cm {' '.join(parts)} f")
    canvas.restoreState()
    return module * n
