"""The reports dashboard for district and province offices (pages under /reports)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/reports")
