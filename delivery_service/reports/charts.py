"""The dashboard's charts, drawn on the server as small SVG: plain data in, bytes out (no Flask).

Only matplotlib's object API (``matplotlib.figure.Figure``) is used, never pyplot: pyplot keeps
global figure state shared by every request of the process. The images are Vietnamese only (they
are the same for every reader), and their text stays text (``svg.fonttype`` "none"): no embedded
glyph paths, so a chart is a few tens of kilobytes and the browser draws the letters with its own
fonts, diacritics included.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from delivery_service.reports.bands import LABELS

BAND_COLOURS = {"green": "#1f7a3a", "yellow": "#c99700", "orange": "#d9650b", "red": "#a52a2a"}
BAND_NAMES_VI = {name: vi for name, (vi, _en) in LABELS.items()}
UNIT_LIMIT = 30  # bars in the chart by unit; more would not be readable
RECEIVED_COLOUR, DELIVERED_COLOUR, RATE_COLOUR = "#9db9d8", "#0b4f8a", "#f3b41b"




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


def trend_svg(weeks: Sequence[Week], subtitle: str = "") -> bytes:
    """Received and delivered orders per week (bars) and the delivery rate (line, right axis).

    Drawn once per distinct input in a process (``DRAWINGS`` kept): the drawing is a function of
    the figures, and matplotlib takes 100–400 ms where the figures take a few."""
    return _trend_svg(tuple(weeks), subtitle)


def units_svg(bars: Sequence[Bar], subtitle: str = "") -> bytes:
    """Delivery rate by unit as horizontal bars coloured by band, the rate and the band's name
    written at each bar's end (the colour is never the only sign). The ``UNIT_LIMIT`` lowest rates
    are shown when there are more, and the title says so. Cached as ``trend_svg`` is, by what is
    drawn: a change among the units not shown leaves the drawing as it was."""
    shown = tuple(sorted(bars, key=lambda b: (b.rate, b.label))[:UNIT_LIMIT])
    return _units_svg(shown, len(bars), subtitle)


DRAWINGS = 32  # charts kept per process, each a few tens of kilobytes


@lru_cache(maxsize=DRAWINGS)
def _trend_svg(weeks: tuple[Week, ...], subtitle: str) -> bytes:
    fig = Figure(figsize=(8, 3.6))
    ax = fig.add_subplot()
    ax.set_title("Xu hướng theo tuần" + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    if not weeks:
        _nothing(ax, "Không có số liệu trong kỳ này")
        return _svg(fig)
    x = list(range(len(weeks)))
    ax.bar([i - 0.2 for i in x], [w.received for w in weeks], width=0.4, color=RECEIVED_COLOUR,
           label="Tiếp nhận")
    ax.bar([i + 0.2 for i in x], [w.delivered for w in weeks], width=0.4, color=DELIVERED_COLOUR,
           label="Đã phát")
    ax.set_ylabel("Số đơn")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xticks(x, [w.start.strftime("%d/%m") for w in weeks], fontsize=8,
                  rotation=45 if len(weeks) > 12 else 0)
    if len(weeks) > 26:  # a year: every other label
        for i, tick in enumerate(ax.xaxis.get_major_ticks()):
            tick.label1.set_visible(i % 2 == 0)
    ax.set_xlabel("Tuần bắt đầu (thứ Hai)")
    pad = max(0.0, (6 - len(weeks)) / 2)  # a few weeks stay narrow groups in the middle
    ax.set_xlim(-0.6 - pad, len(weeks) - 0.4 + pad)
    rates = ax.twinx()
    points = [(i, w.delivery_rate) for i, w in zip(x, weeks, strict=True) if w.delivery_rate is not None]
    rates.plot([i for i, _ in points], [r for _, r in points], color=RATE_COLOUR, marker="o", linewidth=2,
               label="Tỷ lệ phát thành công")
    if len(weeks) <= 12:
        for i, rate in points:
            rates.annotate(f"{rate * 100:.0f} %", (i, rate), textcoords="offset points", xytext=(0, 6),
                           ha="center", fontsize=7.5)
    rates.set_ylim(0, 1.05)
    rates.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v * 100:.0f} %"))
    rates.set_ylabel("Tỷ lệ phát thành công")
    for side in (ax, rates):
        side.spines["top"].set_visible(False)
    handles = ax.get_legend_handles_labels()[0] + rates.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", fontsize=8, frameon=False, ncols=3,
              bbox_to_anchor=(0, -0.22 if len(weeks) <= 12 else -0.3))
    fig.tight_layout()
    return _svg(fig)


@lru_cache(maxsize=DRAWINGS)
def _units_svg(lowest: tuple[Bar, ...], total: int, subtitle: str) -> bytes:
    shown = list(lowest)
    title = "Tỷ lệ phát thành công theo đơn vị"
    if total > len(shown):
        title += f"\n{len(shown)} đơn vị có tỷ lệ thấp nhất trên tổng số {total}"
    elif subtitle:
        title += f"\n{subtitle}"
    fig = Figure(figsize=(8, 1.4 + 0.32 * max(len(shown), 3)))
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    if not shown:
        _nothing(ax, "Chưa có đơn nào kết thúc phát trong kỳ này")
        return _svg(fig)
    shown.reverse()  # matplotlib draws the first bar at the bottom: the lowest rate goes on top
    y = list(range(len(shown)))
    ax.barh(y, [b.rate for b in shown], color=[BAND_COLOURS[b.band] for b in shown], height=0.7)
    ax.set_yticks(y, [_short(b.label) for b in shown], fontsize=8)
    ax.set_ylim(-0.6, max(len(shown), 3) - 0.4)  # one or two bars stay bars, not blocks
    for i, b in zip(y, shown, strict=True):
        ax.text(min(b.rate, 1.0) + 0.01, i, f"{percent_vi(b.rate)} · {BAND_NAMES_VI[b.band]}", va="center",
                fontsize=7.5)
    ax.set_xlim(0, 1.3)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v * 100:.0f} %"))
    ax.set_xlabel("Tỷ lệ phát thành công (đã phát ÷ đã kết thúc)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return _svg(fig)


def _short(label: str, width: int = 42) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _nothing(ax, text: str) -> None:  # noqa: ANN001
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#5b6676")
    ax.set_axis_off()


def _svg(fig: Figure) -> bytes:
    # Text as text, and ids that do not change from one drawing to the next. Set on every call, to
    # the same values: the SVG backend reads these from the global rcParams while it draws.
    mpl.rcParams["svg.fonttype"] = "none"
    mpl.rcParams["svg.hashsalt"] = "delivery-service"
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()
