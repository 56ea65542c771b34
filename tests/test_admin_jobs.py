"""The administrators' page of background jobs: counts, failed jobs, retry and delete (issue 14)."""

from __future__ import annotations

import re

import sqlalchemy as sa
from conftest import csrf_token, login

from delivery_service import outbox
from delivery_service.db import utcnow
from delivery_service.extensions import db


def _job(state: str, func_path: str = "delivery_service.webhooks.jobs:dispatch", *, attempt: int = 3,
         dedupe_key: str | None = None, error: str | None = "ConnectionError") -> int:
    now = utcnow()
    row_id = db.session.execute(sa.insert(outbox.T).values(
        func_path=func_path, args=[7], queue="background", state=state, dedupe_key=dedupe_key, timeout_s=60,
        attempt=attempt, requests=1, created_at=now, due_at=now,
        finished_at=now if state in ("done", "failed") else None,
        error=error if state == "failed" else None).returning(outbox.T.c.id)).scalar_one()
    db.session.commit()
    return row_id


def _state(row_id: int) -> tuple[str, int] | None:
    row = db.session.execute(sa.select(outbox.T.c.state, outbox.T.c.attempt)
                             .where(outbox.T.c.id == row_id)).one_or_none()
    db.session.rollback()
    return tuple(row) if row else None


def test_only_admins_see_the_page(client):
    assert client.get("/admin/jobs").status_code == 302  # to the log-in page
    login(client, "counter")
    assert client.get("/admin/jobs").status_code == 403
    assert 'href="/admin/jobs"' not in client.get("/counter").get_data(as_text=True)


def test_failed_jobs_are_listed_retried_and_deleted(client):
    failed = _job("failed", "delivery_service.reports.jobs:fold", error="OperationalError")
    doomed = _job("failed")
    _job("pending")
    _job("done")
    login(client, "admin")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert 'href="/admin/jobs"' in page  # the admin menu links it
    assert "Tác vụ nền" in page and "Tác vụ thất bại" in page
    assert "delivery_service.reports.jobs:fold" in page and "OperationalError" in page
    assert "onclick" not in page and "<script>" not in page  # the strict CSP: no inline handlers

    assert client.post(f"/admin/jobs/{failed}/retry").status_code == 400  # no CSRF token
    token = csrf_token(client, "/admin/jobs")
    resp = client.post(f"/admin/jobs/{failed}/retry", data={"csrf_token": token})
    assert resp.status_code == 303
    assert _state(failed) == ("pending", 1)
    assert f"Tác vụ {failed} sẽ được chạy lại." in client.get("/admin/jobs").get_data(as_text=True)
    # only failed rows: a second retry, or a retry of a pending row, finds nothing
    assert client.post(f"/admin/jobs/{failed}/retry", data={"csrf_token": token}).status_code == 404

    assert client.post(f"/admin/jobs/{doomed}/delete", data={"csrf_token": token}).status_code == 303
    assert _state(doomed) is None
    assert client.post(f"/admin/jobs/{doomed}/delete", data={"csrf_token": token}).status_code == 404


def test_retry_of_a_coalesced_job_already_owed_supersedes_it(client):
    failed = _job("failed", dedupe_key="webhooks:dispatch_due")
    waiting = _job("pending", dedupe_key="webhooks:dispatch_due")
    login(client, "admin")
    token = csrf_token(client, "/admin/jobs")
    assert client.post(f"/admin/jobs/{failed}/retry", data={"csrf_token": token}).status_code == 303
    assert _state(failed)[0] == "superseded" and _state(waiting)[0] == "pending"


def test_the_page_in_english(client):
    _job("failed")
    login(client, "admin")
    page = client.get("/admin/jobs?lang=en").get_data(as_text=True)
    assert "Background jobs" in page and "Failed jobs" in page and "Retry" in page


def test_the_oldest_waiting_job_is_said_in_the_readers_words(client):
    """'1 ngày' / '1 day', not '86400.0 s' (outside review)."""
    import datetime as dt

    long_ago = utcnow() - dt.timedelta(days=1)
    db.session.execute(sa.insert(outbox.T).values(
        func_path="delivery_service.webhooks.jobs:dispatch", args=[7], queue="background", state="pending",
        timeout_s=60, attempt=1, requests=1, created_at=long_ago, due_at=long_ago))
    db.session.commit()
    login(client, "admin")
    page = client.get("/admin/jobs").get_data(as_text=True)
    assert "<dd>1 ngày</dd>" in page, re.findall(r"<dd>[^<]*</dd>", page)
    assert "<dd>1 day</dd>" in client.get("/admin/jobs?lang=en").get_data(as_text=True)
