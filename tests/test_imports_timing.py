"""Timing of a full-size import (5,000 rows) on each backend; run on demand, not in the suite:

    IMPORT_TIMING=1 .venv/bin/python -m pytest -q -s tests/test_imports_timing.py
"""

from __future__ import annotations

import os
import time
import uuid

import pytest
import sqlalchemy as sa
from test_imports import row, to_csv, to_xlsx

from delivery_service.accounts.services import actor_for_token
from delivery_service.extensions import db
from delivery_service.imports.services import COLUMNS, start_import
from delivery_service.orders.models import DeliveryOrder

pytestmark = pytest.mark.skipif(os.environ.get("IMPORT_TIMING") != "1",
                                reason="timing run: set IMPORT_TIMING=1")
ROWS = 5000
COMMUNES = ("21025", "21028", "21172", "21211")


def _rows() -> list[dict[str, str]]:
    rows = []
    for n in range(ROWS):
        values = row(dossier_code=f"H55-{uuid.uuid4().hex[:12]}", commune_code=COMMUNES[n % 4],
                     recipient_name=f"Nguyễn Văn {n}", note="Gọi trước khi giao")
        if n % 50 == 7:
            values["recipient_phone"] = "12345"  # 2 % bad rows
        rows.append(values)
    return rows


@pytest.mark.parametrize("kind", ["csv", "xlsx"])
def test_5000_rows(token, backend, kind):
    """Through the service: werkzeug's test client spools big bodies to a file it never closes."""
    actor = actor_for_token(token)
    rows = _rows()
    if kind == "csv":
        content = to_csv(rows)
    else:
        content = to_xlsx([[values.get(c) for c in COLUMNS] for values in rows])
    started = time.perf_counter()
    batch = start_import(actor, counter_id=actor.counter_id, filename=f"big.{kind}", content=content)
    first = time.perf_counter() - started
    good = ROWS - ROWS // 50
    assert (batch.state.value, batch.created_rows, batch.error_rows) == ("done", good, ROWS // 50)
    started = time.perf_counter()
    again = start_import(actor, counter_id=actor.counter_id, filename=f"big.{kind}", content=content)
    second = time.perf_counter() - started
    assert again.existing_rows == good
    assert db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder)) == good
    print(f"\n{backend} {kind} {len(content) // 1024} KB: {ROWS} rows in {first:.1f} s, "
          f"re-upload (all existing) {second:.1f} s")
    assert first < 60
