"""The dashboard's charts, drawn on the server as small SVG: plain data in, bytes out (no Flask).

The SVG is written directly (bars are rectangles, the rate a polyline): a chart takes a millisecond
or two, where matplotlib took 100–400 ms for the same picture. The images are Vietnamese only (they
are the same for every reader); their text stays text, so the browser draws the letters with its own
fonts, diacritics included, and a screen reader or a search finds them. Every piece of text goes
through ``_x`` (XML escaping): unit names come from the database.

What a chart shows is also written in it for those who cannot see it: the ``<title>`` and ``<desc>``
(every week's or unit's figures in words), and each bar's and point's own ``<title>`` and
``data-*`` attributes (the figure it stands for; the tests read them).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from html import escape

from delivery_service.reports.bands import LABELS

BAND_COLOURS = {"green": "#1f7a3a", "yellow": "#c99700", "orange": "#d9650b", "red": "#a52a2a"}
BAND_NAMES_VI = {name: vi for name, (vi, _en) in LABELS.items()}
UNIT_LIMIT = 30  # bars in the chart by unit; more would not be readable
RECEIVED_COLOUR, DELIVERED_COLOUR, RATE_COLOUR = "#9db9d8", "#0b4f8a", "#f3b41b"
INK, MUTED, GRID = "#1d2733", "#5b6676", "#e3e7ec"
WIDTH = 768  # the <img width> of the dashboard
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'DejaVu Sans', Arial, sans-serif"
STYLE = (f"text{{font-family:{FONT};fill:{INK};font-size:11px}}"
         f".t{{font-size:15px;font-weight:600}}.s{{font-size:13px}}.m{{fill:{MUTED}}}.k{{font-size:10px}}")


@dataclass(frozen=True)
class Week:
    """One week of the trend (``start``: its Monday)."""

    start: dt.date
    received: int
    delivered: int
    delivery_rate: float | None


@dataclass(frozen=True)
class Bar:
    """One unit's delivery rate and its band."""

    label: str
    rate: float
    band: str


def percent_vi(value: float) -> str:
    """0.667 -> "66,7 %" (Vietnamese decimal comma)."""
    return f"{value * 100:.1f}".replace(".", ",") + " %"


def count_vi(value: int) -> str:
    """12345 -> "12.345" (Vietnamese thousands separator)."""
    return f"{value:,}".replace(",", ".")


def nice_ticks(top: float, most: int = 6) -> list[int]:
    """Whole-number ticks from 0 up to the first at or above ``top``, at most about ``most`` of them,
    a step of 1, 2, 2.5 or 5 times a power of ten: 22,000 -> 0, 5,000 … 25,000."""
    if top <= 0:
        return [0, 1]
    raw = top / (most - 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    steps = (1, 2, 5, 10) if magnitude < 10 else (1, 2, 2.5, 5, 10)
    step = int(next(m * magnitude for m in steps if m * magnitude >= raw))
    return list(range(0, math.ceil(top / step) * step + 1, step))


def trend_svg(weeks: Sequence[Week], subtitle: str = "") -> bytes:
    """Received and delivered orders per week (bars) and the delivery rate (line, right axis).

    Drawn once per distinct input in a process (``DRAWINGS`` kept): the drawing is a function of
    the figures."""
    return _trend_svg(tuple(weeks), subtitle)


def units_svg(bars: Sequence[Bar], subtitle: str = "") -> bytes:
    """Delivery rate by unit as horizontal bars coloured by band, the rate and the band's name
    written at each bar's end (the colour is never the only sign). The ``UNIT_LIMIT`` lowest rates
    are shown when there are more, lowest on top, and the title says so. Cached as ``trend_svg`` is,
    by what is drawn: a change among the units not shown leaves the drawing as it was."""
    shown = tuple(sorted(bars, key=lambda b: (b.rate, b.label))[:UNIT_LIMIT])
    return _units_svg(shown, len(bars), subtitle)


DRAWINGS = 32  # charts kept per process, each a few tens of kilobytes


# --- the trend ------------------------------------------------------------------------------------

TREND_TITLE = "Xu hướng theo tuần"
RATE_TITLE = "Tỷ lệ phát thành công"


@lru_cache(maxsize=DRAWINGS)
def _trend_svg(weeks: tuple[Week, ...], subtitle: str) -> bytes:
    n = len(weeks)
    rotate = n > 12
    height = 360
    left, right, top = 72, WIDTH - 76, 62
    bottom = height - (104 if rotate else 84)  # the plot's lower edge: labels, axis title, legend below
    out = _open(height, TREND_TITLE + (f" – {subtitle}" if subtitle else ""), _trend_desc(weeks))
    out += _titles(TREND_TITLE, subtitle)
    if not weeks:
        out.append(_nothing(top + (bottom - top) / 2, "Không có số liệu trong kỳ này"))
        return _close(out)

    ticks = nice_ticks(max(max(w.received, w.delivered) for w in weeks))
    plot_h = bottom - top

    def y_count(v: float) -> float:
        return bottom - plot_h * v / ticks[-1]

    def y_rate(v: float) -> float:
        return bottom - plot_h * v / 1.05

    # the axes: counts on the left (with the grid), rates on the right
    for t in ticks:
        y = y_count(t)
        out.append(f'<line x1="{left}" x2="{right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
                   f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{count_vi(t)}</text>')
    for pct in range(0, 101, 20):
        y = y_rate(pct / 100)
        out.append(f'<line x1="{right}" x2="{right + 4}" y1="{y:.1f}" y2="{y:.1f}" stroke="{INK}"/>'
                   f'<text x="{right + 7}" y="{y + 4:.1f}">{pct} %</text>')
    out.append(f'<path d="M{left} {top}V{bottom}H{right}V{top}" fill="none" stroke="{INK}"/>')
    mid = (top + bottom) / 2
    out.append(f'<text x="18" y="{mid:.1f}" text-anchor="middle" class="s" '
               f'transform="rotate(-90 18 {mid:.1f})">Số đơn</text>'
               f'<text x="{WIDTH - 12}" y="{mid:.1f}" text-anchor="middle" class="s" '
               f'transform="rotate(-90 {WIDTH - 12} {mid:.1f})">{RATE_TITLE}</text>')

    # the weeks: a few stay narrow groups in the middle, as many as fit otherwise
    slots = max(n, 6)
    slot = (right - left) / slots
    first = left + slot * ((slots - n) / 2 + 0.5)  # the centre of the first week
    bar_w = slot * 0.4
    points = []
    out.append("<g>")
    for i, w in enumerate(weeks):
        cx = first + i * slot
        day = w.start.strftime("%d/%m")
        for kind, value, colour, dx in (("received", w.received, RECEIVED_COLOUR, -bar_w),
                                        ("delivered", w.delivered, DELIVERED_COLOUR, 0.0)):
            y = y_count(value)
            out.append(f'<rect class="{kind}" data-week="{w.start.isoformat()}" data-value="{value}" '
                       f'x="{cx + dx:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{bottom - y:.1f}" '
                       f'fill="{colour}"><title>{day}: {_KIND_VI[kind]} {count_vi(value)}</title></rect>')
        if not rotate or i % (2 if n > 26 else 1) == 0:
            ty = bottom + 14
            if rotate:
                out.append(f'<text x="{cx + 3:.1f}" y="{ty + 2}" text-anchor="end" class="k" '
                           f'transform="rotate(-45 {cx + 3:.1f} {ty + 2})">{day}</text>')
            else:
                out.append(f'<text x="{cx:.1f}" y="{ty}" text-anchor="middle" class="k">{day}</text>')
        if w.delivery_rate is not None:
            points.append((cx, y_rate(w.delivery_rate), w))
    out.append("</g>")
    if points:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _w in points)
        out.append(f'<polyline class="rate-line" points="{line}" fill="none" stroke="{RATE_COLOUR}" '
                   f'stroke-width="2.5" stroke-linejoin="round"/>')
        for x, y, w in points:
            rate = w.delivery_rate or 0.0
            out.append(f'<circle class="rate" data-week="{w.start.isoformat()}" data-rate="{rate:.6f}" '
                       f'cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{RATE_COLOUR}">'
                       f'<title>{w.start.strftime("%d/%m")}: {RATE_TITLE.lower()} {percent_vi(rate)}'
                       f'</title></circle>')
            if n <= 12:
                out.append(f'<text x="{x:.1f}" y="{y - 9:.1f}" text-anchor="middle" class="k">'
                           f'{rate * 100:.0f} %</text>')
    axis_y = bottom + (52 if rotate else 34)
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{axis_y}" text-anchor="middle" class="s">'
               'Tuần bắt đầu (thứ Hai)</text>')
    out.append(_legend(left, axis_y + 24, [("rect", RECEIVED_COLOUR, "Tiếp nhận"),
                                           ("rect", DELIVERED_COLOUR, "Đã phát"),
                                           ("line", RATE_COLOUR, RATE_TITLE)]))
    return _close(out)


_KIND_VI = {"received": "tiếp nhận", "delivered": "đã phát"}


def _trend_desc(weeks: tuple[Week, ...]) -> str:
    if not weeks:
        return "Không có số liệu trong kỳ này."
    lines = ["Số đơn tiếp nhận và đã phát mỗi tuần (cột) và tỷ lệ phát thành công (đường)."]
    for w in weeks:
        rate = "chưa có" if w.delivery_rate is None else percent_vi(w.delivery_rate)
        lines.append(f"Tuần từ {w.start.strftime('%d/%m/%Y')}: tiếp nhận {count_vi(w.received)}, "
                     f"đã phát {count_vi(w.delivered)}, tỷ lệ {rate}.")
    return " ".join(lines)


# --- the units ------------------------------------------------------------------------------------

UNITS_TITLE = "Tỷ lệ phát thành công theo đơn vị"
ROW = 30  # px per bar


@lru_cache(maxsize=DRAWINGS)
def _units_svg(lowest: tuple[Bar, ...], total: int, subtitle: str) -> bytes:
    shown = list(lowest)  # lowest rate first: drawn on top
    second = (f"{len(shown)} đơn vị có tỷ lệ thấp nhất trên tổng số {total}" if total > len(shown)
              else subtitle)
    rows = max(len(shown), 3)  # one or two bars stay bars, not blocks
    left, right, top = 270, WIDTH - 16, 60 if second else 42
    bottom = top + ROW * rows
    height = bottom + 56
    out = _open(height, UNITS_TITLE + (f" – {second}" if second else ""), _units_desc(shown, total))
    out += _titles(UNITS_TITLE, second)
    if not shown:
        out.append(_nothing(top + (bottom - top) / 2, "Chưa có đơn nào kết thúc phát trong kỳ này"))
        return _close(out)
    scale = (right - left) / 1.3  # px per 100 %: room on the right for the figures
    for pct in (0, 25, 50, 75, 100):
        x = left + scale * pct / 100
        out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{bottom + 4}" '
                   f'stroke="{GRID if pct else INK}"/>'
                   f'<text x="{x:.1f}" y="{bottom + 17}" text-anchor="middle">{pct} %</text>')
    out.append(f'<line x1="{left}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="{INK}"/>')
    out.append("<g>")
    for i, b in enumerate(shown):
        cy = top + ROW * (i + 0.5)
        width = scale * max(b.rate, 0.0)
        figure = f"{percent_vi(b.rate)} · {BAND_NAMES_VI.get(b.band, b.band)}"
        out.append(f'<text x="{left - 6}" y="{cy + 4:.1f}" text-anchor="end">{_x(_short(b.label))}</text>'
                   f'<rect class="unit" data-band="{_x(b.band)}" data-rate="{b.rate:.6f}" '
                   f'x="{left}" y="{cy - ROW * 0.35:.1f}" width="{width:.1f}" height="{ROW * 0.7:.1f}" '
                   f'fill="{BAND_COLOURS.get(b.band, MUTED)}"><title>{_x(b.label)}: {figure}</title></rect>'
                   f'<text x="{left + scale * (min(b.rate, 1.0) + 0.01):.1f}" y="{cy + 4:.1f}" class="k">'
                   f'{figure}</text>')
    out.append("</g>")
    out.append(f'<text x="{(left + right) / 2:.1f}" y="{bottom + 40}" text-anchor="middle" class="s">'
               'Tỷ lệ phát thành công (đã phát ÷ đã kết thúc)</text>')
    return _close(out)


def _units_desc(shown: list[Bar], total: int) -> str:
    if not shown:
        return "Chưa có đơn nào kết thúc phát trong kỳ này."
    lines = ["Tỷ lệ phát thành công của mỗi đơn vị, thấp nhất trước"
             + (f" ({len(shown)} trên tổng số {total} đơn vị)." if total > len(shown) else ".")]
    lines += [f"{b.label}: {percent_vi(b.rate)}, {BAND_NAMES_VI.get(b.band, b.band)}." for b in shown]
    return " ".join(lines)


# --- the pieces -----------------------------------------------------------------------------------

def _x(text: str) -> str:
    """Text or an attribute value, escaped for XML."""
    return escape(text, quote=True)


def _open(height: int, title: str, desc: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="chart-title chart-desc" '
            f'lang="vi">'
            f'<title id="chart-title">{_x(title)}</title><desc id="chart-desc">{_x(desc)}</desc>'
            f'<style>{STYLE}</style><rect width="100%" height="100%" fill="#fff"/>']


def _titles(title: str, subtitle: str) -> list[str]:
    out = [f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" class="t">{_x(title)}</text>']
    if subtitle:
        out.append(f'<text x="{WIDTH / 2}" y="42" text-anchor="middle" class="s">{_x(subtitle)}</text>')
    return out


def _legend(x: float, y: float, items: list[tuple[str, str, str]]) -> str:
    out = []
    for shape, colour, text in items:
        if shape == "rect":
            out.append(f'<rect x="{x}" y="{y - 9}" width="14" height="10" fill="{colour}"/>')
        else:
            out.append(f'<line x1="{x}" x2="{x + 14}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" '
                       f'stroke-width="2.5"/><circle cx="{x + 7}" cy="{y - 4}" r="3.5" fill="{colour}"/>')
        out.append(f'<text x="{x + 19}" y="{y}">{_x(text)}</text>')
        x += 19 + 7 * len(text) + 24
    return "".join(out)


def _nothing(y: float, text: str) -> str:
    return f'<text x="{WIDTH / 2}" y="{y:.1f}" text-anchor="middle" class="s m">{_x(text)}</text>'


def _close(out: list[str]) -> bytes:
    out.append("</svg>")
    return "".join(out).encode()


def _short(label: str, width: int = 42) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"
