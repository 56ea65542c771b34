"""Counters' daily totals (the form under /counter/totals) and reporting areas (/reports/areas)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("report_input", __name__)
