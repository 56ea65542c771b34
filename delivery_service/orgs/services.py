"""Look-ups of the organisations that change rarely, cached per process for a short while."""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import current_app

from delivery_service.extensions import db
from delivery_service.orgs.models import Counter, PostalRoute

_TTL = 60.0


def _code(model: type[Counter] | type[PostalRoute], key: str, row_id: int) -> str | None:
    """The code of one row, from a per-app cache reloaded when stale or missing the row."""
    cache = current_app.extensions.setdefault("org_codes", {})
    hit = cache.get(key)
    if hit is None or hit[0] < time.monotonic() or row_id not in hit[1]:
        rows = db.session.execute(sa.select(model.id, model.code)).all()
        hit = cache[key] = (time.monotonic() + _TTL, {r.id: r.code for r in rows})
    return hit[1].get(row_id)


def counter_code(counter_id: int) -> str:
    """The code of a counter (codes never change once given)."""
    code = _code(Counter, "counters", counter_id)
    assert code is not None, f"counter {counter_id} does not exist"
    return code


def route_code(route_id: int | None) -> str | None:
    """The code of a postal route, or None."""
    return None if route_id is None else _code(PostalRoute, "routes", route_id)
