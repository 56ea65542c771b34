"""Look-ups of the organisations that change rarely, cached per process for a short while."""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import current_app

from delivery_service.extensions import db
from delivery_service.orgs.models import Counter, PostalRoute

_TTL = 60.0


def _codes(model: type[Counter] | type[PostalRoute], key: str) -> dict[int, str]:
    cache = current_app.extensions.setdefault("org_codes", {})
    hit = cache.get(key)
    if hit is None or hit[0] < time.monotonic():
        rows = db.session.execute(sa.select(model.id, model.code)).all()
        hit = cache[key] = (time.monotonic() + _TTL, {r.id: r.code for r in rows})
    return hit[1]


def counter_code(counter_id: int) -> str:
    """The code of a counter (codes never change once given)."""
    codes = _codes(Counter, "counters")
    if counter_id not in codes:
        current_app.extensions["org_codes"].pop("counters", None)
        codes = _codes(Counter, "counters")
    return codes[counter_id]


def route_code(route_id: int | None) -> str | None:
    """The code of a postal route, or None."""
    if route_id is None:
        return None
    codes = _codes(PostalRoute, "routes")
    if route_id not in codes:
        current_app.extensions["org_codes"].pop("routes", None)
        codes = _codes(PostalRoute, "routes")
    return codes.get(route_id)
