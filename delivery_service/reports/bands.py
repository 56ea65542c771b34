"""Colour bands of a rate (green, yellow, orange, red) from the configured thresholds, with the text
label always shown beside the colour. One definition for the dashboard, its charts and exports, and
the weekly PDF."""

from __future__ import annotations

from collections.abc import Sequence

from delivery_service import rules

BANDS = ("green", "yellow", "orange", "red")
LABELS = {"green": ("Tốt", "Good"), "yellow": ("Khá", "Fair"), "orange": ("Cần chú ý", "Watch"),
          "red": ("Kém", "Poor")}


def label(name: str) -> str:
    """A band's name in the reader's language."""
    from flask_babel import get_locale

    vi, en = LABELS[name]
    locale = get_locale()
    return en if locale is not None and locale.language == "en" else vi


def colour(value: float | None, limits: Sequence[float]) -> str | None:
    """The band of a rate given its three falling thresholds (lower limits of green, yellow and
    orange; below the last, red); None without a rate."""
    if value is None:
        return None
    return next((name for name, limit in zip(BANDS, limits, strict=False) if value >= limit), "red")


def colour_of(rate_name: str, value: float | None) -> str | None:
    """The band of ``rate_name`` (delivery_rate, on_time_rate, post_share) by REPORT_BANDS."""
    limits = rules.current().report_bands.get(rate_name)
    if limits is None:
        raise ValueError(f"no colour bands for {rate_name!r}")
    return colour(value, limits)
