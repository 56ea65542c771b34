"""The stored weekly PDF reports: list and download (pages under /reports/weekly)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("weekly_reports", __name__, url_prefix="/reports/weekly")
