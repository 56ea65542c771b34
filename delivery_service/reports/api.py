"""The reports API under /api/v1: counters' daily totals, figures, reporting areas."""

from __future__ import annotations

from flask_smorest import Blueprint

from delivery_service.api import protected

blp = protected(Blueprint("reports_api", __name__, url_prefix="/reports",
                          description="Report figures, counters' daily totals, reporting areas"))
