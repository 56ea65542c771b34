"""Fonts and text fitting for every document the library draws.

Public API (also used by ``labels.documents``)::

    register() -> None                       # DejaVu Sans + Bold, once per process (idempotent)
    FONT, FONT_BOLD                           # the registered names: "DejaVuSans", "DejaVuSans-Bold"
    nfc(text: str) -> str                     # NFC-normalise, collapse runs of spaces, strip
    text_width(text, font, size) -> float     # points (reportlab stringWidth; registers first)
    fit_lines(text, font, max_size, min_size, width, max_lines, *, step=0.5) -> Fit
        Fit(size: float, lines: tuple[str, ...], truncated: bool)   # a NamedTuple
    fit_line(text, font, max_size, min_size, width, *, step=0.5) -> Fit    # one line, cut anywhere

``fit_lines`` wraps on words (a word longer than the width is broken between characters), keeps
explicit newlines, and shrinks the size from ``max_size`` down to ``min_size`` in ``step`` points
until the text fits in ``max_lines`` lines of ``width`` points. When even ``min_size`` does not fit,
the last line ends with "…" and ``truncated`` is True: text is never cut silently. Callers show the
mark (the label prints a "(…)" hint and tests assert on it); identifiers must never be truncated,
so callers raise :class:`labels.model.LabelError` for those instead. ``fit_line`` is for running
heads and feet: the text on one line, shrunk, then cut between characters (not before a long word)
with "…".

The fonts are vendored (labels/fonts/, DejaVu 2.37 from Debian's fonts-dejavu-core, licence in
LICENSE-DejaVu.txt): a fresh checkout needs no system fonts. DejaVu has every Vietnamese letter
form and ₫. Text must be NFC before drawing: reportlab places decomposed (NFD) accents wrongly.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from pathlib import Path
from typing import NamedTuple

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFont

FONT_DIR = Path(__file__).resolve().parent / "fonts"
FONT = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"
FONT_FILES = {FONT: FONT_DIR / "DejaVuSans.ttf", FONT_BOLD: FONT_DIR / "DejaVuSans-Bold.ttf"}
ELLIPSIS = "…"

_lock = threading.Lock()
_registered = False
_SPACES = re.compile(r"[ \t\r\f\v]+")


class Fit(NamedTuple):
    """The result of :func:`fit_lines`."""

    size: float  # font size in points
    lines: tuple[str, ...]
    truncated: bool  # True when the text did not fit and the last line ends with "…"


_WIDE_CODE = re.compile(r"<([0-9A-F]{5,6})>$", re.M)


def _utf16(match: re.Match[str]) -> str:
    """A code point beyond U+FFFF as the UTF-16BE surrogate pair a ToUnicode CMap needs."""
    offset = int(match.group(1), 16) - 0x10000
    return f"<{0xD800 + (offset >> 10):04X}{0xDC00 + (offset & 0x3FF):04X}>"


class _DejaVu(TTFont):
    """DejaVu with a text layer that copies right beyond U+FFFF too (emoji in a name): reportlab
    writes such a character's ToUnicode entry as 5 hex digits, which readers take as its first 4
    (pdftotext gave "ὠ" for 😀); the entry must be a UTF-16 surrogate pair. Drawing is unchanged."""

    def addObjects(self, doc):  # type: ignore[no-untyped-def]  # reportlab's hook, untyped
        before = set(doc.idToObject)
        super().addObjects(doc)
        for key in set(doc.idToObject) - before:
            if key.startswith("toUnicodeCMap:"):
                stream = doc.idToObject[key]
                stream.content = _WIDE_CODE.sub(_utf16, stream.content)


def register() -> None:
    """Register DejaVu Sans and DejaVu Sans Bold with reportlab, once per process."""
    global _registered
    if _registered:
        return
    with _lock:
        if _registered:
            return
        for name, path in FONT_FILES.items():
            pdfmetrics.registerFont(_DejaVu(name, str(path)))
        pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=FONT_BOLD, italic=FONT, boldItalic=FONT_BOLD)
        _registered = True


def nfc(text: str) -> str:
    """NFC-normalise ``text``, collapse runs of blanks (newlines are kept) and strip it."""
    text = unicodedata.normalize("NFC", text)
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.strip().splitlines())


def text_width(text: str, font: str, size: float) -> float:
    """Width of ``text`` in points."""
    register()
    return float(stringWidth(text, font, size))


def _break_word(word: str, font: str, limit: float) -> list[str]:
    """Split a word wider than ``limit`` (points at size 1) between characters."""
    pieces: list[str] = []
    current = ""
    for ch in word:
        if current and stringWidth(current + ch, font, 1.0) > limit:
            pieces.append(current)
            current = ch
        else:
            current += ch
    if current:
        pieces.append(current)
    return pieces


def _wrap(paragraphs: list[list[str]], widths: dict[str, float], space: float, limit: float) -> list[str]:
    """Greedy word wrap at size 1; ``limit`` is the line width divided by the font size."""
    lines: list[str] = []
    for words in paragraphs:
        line: list[str] = []
        used = 0.0
        for word in words:
            w = widths[word]
            if line and used + space + w > limit:
                lines.append(" ".join(line))
                line, used = [word], w
            else:
                used += (space if line else 0.0) + w
                line.append(word)
        lines.append(" ".join(line))
    return lines


def fit_lines(
    text: str,
    font: str,
    max_size: float,
    min_size: float,
    width: float,
    max_lines: int,
    *,
    step: float = 0.5,
) -> Fit:
    """Wrap ``text`` into at most ``max_lines`` lines of ``width`` points, shrinking if needed.

    Returns the largest size (from ``max_size`` down to ``min_size``) at which the text fits. If it
    does not fit at ``min_size``, the lines at ``min_size`` are cut to ``max_lines`` and the last
    one ends with "…"; ``truncated`` is then True so the caller can show it.
    """
    if max_lines < 1 or width <= 0 or min_size <= 0 or max_size < min_size:
        raise ValueError("fit_lines needs max_lines >= 1, width > 0 and 0 < min_size <= max_size")
    register()
    text = nfc(text)
    if not text:
        return Fit(max_size, (), False)
    words_of = [p.split(" ") for p in text.split("\n")]
    space = stringWidth(" ", font, 1.0)
    widths = {w: stringWidth(w, font, 1.0) for ws in words_of for w in ws}
    size = max_size
    while True:
        limit = width / size
        paragraphs = [
            [piece for w in ws for piece in (_break_word(w, font, limit) if widths[w] > limit else [w])]
            for ws in words_of
        ]
        for ws in paragraphs:
            for w in ws:
                if w not in widths:
                    widths[w] = stringWidth(w, font, 1.0)
        lines = _wrap(paragraphs, widths, space, limit)
        if len(lines) <= max_lines:
            return Fit(size, tuple(lines), False)
        if size <= min_size:
            break
        size = max(min_size, size - step)
    kept = lines[:max_lines]
    last = kept[-1]
    while last and stringWidth(last + ELLIPSIS, font, size) > width:
        last = last[:-1]
    kept[-1] = last.rstrip() + ELLIPSIS
    return Fit(size, tuple(kept), True)


def fit_line(
    text: str, font: str, max_size: float, min_size: float, width: float, *, step: float = 0.5
) -> Fit:
    """``text`` on one line of ``width`` points: the largest size from ``max_size`` down to
    ``min_size`` at which it fits, else at ``min_size`` cut between characters and ending with "…"."""
    if width <= 0 or min_size <= 0 or max_size < min_size:
        raise ValueError("fit_line needs width > 0 and 0 < min_size <= max_size")
    register()
    text = " ".join(nfc(text).split())
    if not text:
        return Fit(max_size, (), False)
    natural = stringWidth(text, font, 1.0)
    size = max_size
    while natural * size > width and size > min_size:
        size = max(min_size, size - step)
    if natural * size <= width:
        return Fit(size, (text,), False)
    lo, hi = 0, len(text)  # the longest prefix that fits with the ellipsis: binary search
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if stringWidth(text[:mid].rstrip() + ELLIPSIS, font, size) <= width:
            lo = mid
        else:
            hi = mid - 1
    return Fit(size, (text[:lo].rstrip() + ELLIPSIS,), True)
