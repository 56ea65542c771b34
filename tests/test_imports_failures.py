"""A batch whose job was killed is closed as failed, and never reopened once finished."""

from __future__ import annotations

import sqlalchemy as sa

from delivery_service.extensions import db
from delivery_service.imports.models import ImportBatch, ImportState
from delivery_service.imports.services import mark_failed


def _batch(state: ImportState) -> int:
    counter_id = db.session.scalar(sa.text("SELECT id FROM counters WHERE code = 'QNG-TTHCC'"))
    batch = ImportBatch(counter_id=counter_id, filename="x.csv", content_type="csv", content=b"x", state=state)
    db.session.add(batch)
    db.session.commit()
    return batch.id


def test_mark_failed_closes_running_batches_only(app):
    running, done = _batch(ImportState.RUNNING), _batch(ImportState.DONE)
    mark_failed(running)
    mark_failed(done)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(ImportBatch, running).state is ImportState.FAILED
    assert "stopped" in db.session.get(ImportBatch, running).error
    assert db.session.get(ImportBatch, done).state is ImportState.DONE
