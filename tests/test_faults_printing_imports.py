"""Faults in label batches and imports (issue 12, points 2 and 7): the job's process is killed with
SIGKILL in the middle of a chunk, as the out-of-memory killer does.

Each job runs in a real subprocess on the test database; a hook in it stops at a chosen point, says
so through a file, and waits. The test then kills it (or lets it go on, to play a run that was only
slow), checks what the database holds, and lets the sweeper requeue or fail the job.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import login, order_payload
from pypdf import PdfReader

from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.imports import services as imports
from delivery_service.imports.models import ImportBatch, ImportState
from delivery_service.orders.models import DeliveryOrder
from delivery_service.printing import services as printing
from delivery_service.printing.models import JobState, LabelPrint, PrintJob

ROOT = Path(__file__).resolve().parent.parent
WAIT_S = 60  # the longest a step may take before the test gives up

# The job in a subprocess. argv: settings (JSON), kind (print|import), id, hook call at which to stop,
# the folder for the "stopped" and "go on" files. Without "go on" within WAIT_S it carries on anyway.
CHILD = r"""
import json, sys, time
from pathlib import Path

settings, kind, job_id, stop_at, folder = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
from delivery_service import create_app
app = create_app(settings)
calls = 0

def hold(original):
    def hooked(*args, **kwargs):
        global calls
        calls += 1
        if calls == stop_at:
            (folder / "stopped").write_text("1")
            deadline = time.monotonic() + 60
            while not (folder / "go").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return original(*args, **kwargs)
    return hooked

with app.app_context():
    if kind == "print":
        from delivery_service.printing import services
        services._render_labels = hold(services._render_labels)
        services.run_print_job(job_id, 1)
    else:
        from delivery_service.imports import services
        services._Run._store_chunk = hold(services._Run._store_chunk)
        services.run_import(job_id, 1)
"""


class Child:
    """A job run in a subprocess that stops at the ``stop_at``-th call of its hook."""

    def __init__(self, app, kind: str, job_id: int, stop_at: int, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        keys = ("DATABASE_URL", "SECRET_KEY", "TESTING", "ENV", "REDIS_URL", "JOBS_INLINE", "PRINT_FILES_DIR",
                "LABEL_CHUNK", "IMPORT_CHUNK_ROWS", "LABEL_DPI", "PUBLIC_BASE_URL")
        settings = {k: app.config[k] for k in keys if k in app.config}
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(settings), kind, str(job_id), str(stop_at), str(folder)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_stopped(self) -> None:
        deadline = time.monotonic() + WAIT_S
        while not (self.folder / "stopped").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                output = self.proc.communicate(timeout=5)[0].decode(errors="replace")
                pytest.fail(f"the job never reached its stop (exit {self.proc.returncode}):\n{output[-3000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.communicate(timeout=WAIT_S)
        assert self.proc.returncode == -signal.SIGKILL

    def go_on(self) -> str:
        (self.folder / "go").write_text("1")
        output = self.proc.communicate(timeout=WAIT_S)[0].decode(errors="replace")
        assert self.proc.returncode == 0, output[-3000:]
        return output


def new_orders(client, auth, n: int) -> list[str]:
    items = []
    for _ in range(n):
        resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
        assert resp.status_code == 201, resp.json
        items.append(resp.json["item_id"])
    return items


def pending_job(client, auth, monkeypatch, **body: Any) -> int:
    """A big batch started through the API whose job is queued but not run (the worker is the child)."""
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(printing, "enqueue_after_commit", lambda *a, **kw: queued.append(a))
    resp = client.post("/api/v1/labels/batches", json=body, headers=auth)
    monkeypatch.undo()
    assert resp.status_code == 202 and resp.json["state"] == "pending", resp.json
    assert queued == [(printing.RUN_JOB, resp.json["id"], 1)]
    return resp.json["id"]


def job(job_id: int) -> PrintJob:
    db.session.expire_all()
    return db.session.get(PrintJob, job_id)


def print_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(LabelPrint))


def kept_files(app) -> list[str]:
    folder = Path(app.config["PRINT_FILES_DIR"])
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def unprinted_on_page(client, items: list[str]) -> set[str]:
    """The item ids of ``items`` that the counter's labels page lists as not printed (logged in)."""
    html = client.get("/counter/labels").get_data(as_text=True)
    return {i for i in items if f'data-item="{i}" data-printed="0"' in html}


SETTINGS = {"LABEL_ASYNC_THRESHOLD": 3, "LABEL_CHUNK": 4}


@pytest.fixture
def prints_dir(app, tmp_path: Path) -> Path:
    app.config["PRINT_FILES_DIR"] = str(tmp_path / "prints")
    return tmp_path / "prints"


# --- label batches --------------------------------------------------------------------------------

@pytest.mark.config(**SETTINGS, JOBS_STALL_S=3)
def test_a_long_step_without_chunks_keeps_the_batch_beating(app, client, auth, monkeypatch, prints_dir):
    """Joining thousands of pages into one PDF writes no chunk's heartbeat: a thread beats meanwhile
    (every third of JOBS_STALL_S), so the sweeper never takes that live run for a dead one."""
    new_orders(client, auth, 4)
    job_id = pending_job(client, auth, monkeypatch)
    runner = printing._claim(job_id, 1, utcnow())
    first = job(job_id).heartbeat_at
    db.session.rollback()
    with printing._beating(job_id, runner):
        time.sleep(2.5)
    beat = job(job_id).heartbeat_at
    assert beat >= first + dt.timedelta(seconds=1.5)
    assert printing.sweep_stalled(beat + dt.timedelta(seconds=2), stale_after=dt.timedelta(seconds=3)) == {
        "requeued": [], "failed": []}

@pytest.mark.config(**SETTINGS)
def test_a_killed_batch_records_no_print_and_the_sweeper_reruns_it_to_one_file(app, client, auth, monkeypatch,
                                                                               prints_dir, tmp_path):
    items = new_orders(client, auth, 14)
    login(client, "counter")
    job_id = pending_job(client, auth, monkeypatch)
    child = Child(app, "print", job_id, stop_at=3, folder=tmp_path / "child")  # in chunk 3 of 4
    child.wait_stopped()
    assert (job(job_id).state, job(job_id).done) == (JobState.RUNNING, 8)  # two chunks counted
    child.kill()

    # Killed mid-way: nothing recorded as printed, no file offered, every order still to print.
    stopped = job(job_id)
    assert (stopped.state, stopped.done, stopped.file_name) == (JobState.RUNNING, 8, None)
    assert print_count() == 0
    assert unprinted_on_page(client, items) == set(items)
    assert client.get(f"/api/v1/labels/batches/{job_id}/file", headers=auth).status_code == 409
    # The page no longer refreshes once the heartbeat is older than JOBS_STALL_S (30 s), and says what happens next.
    db.session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(
        heartbeat_at=stopped.heartbeat_at - dt.timedelta(seconds=61)))
    db.session.commit()
    page = client.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page and "Không có tiến triển trong hơn 30 giây (8/14)" in page
    db.session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(heartbeat_at=stopped.heartbeat_at))
    db.session.commit()

    # The sweeper leaves it for JOBS_STALL_S (30 s), then requeues it; the re-run (inline here) starts over.
    beat = stopped.heartbeat_at
    assert printing.sweep_stalled(beat + dt.timedelta(seconds=29)) == {"requeued": [], "failed": []}
    assert printing.sweep_stalled(beat + dt.timedelta(seconds=61)) == {"requeued": [job_id], "failed": []}
    done = job(job_id)
    assert (done.state, done.done, done.total, done.attempts) == (JobState.DONE, 14, 14, 2)
    assert kept_files(app) == [done.file_name]  # exactly one file, no partial one left
    pdf = client.get(f"/api/v1/labels/batches/{job_id}/file", headers=auth)
    assert pdf.status_code == 200 and len(PdfReader(io.BytesIO(pdf.data)).pages) == 14
    rows = db.session.execute(sa.select(DeliveryOrder.item_id, LabelPrint.print_job_id, LabelPrint.copy_no)
                              .join(LabelPrint, LabelPrint.order_id == DeliveryOrder.id)).all()
    assert sorted(r.item_id for r in rows) == sorted(items)  # every order once
    assert {(r.print_job_id, r.copy_no) for r in rows} == {(job_id, 1)}
    assert unprinted_on_page(client, items) == set()
    # Sweeping again or re-running the done job changes nothing.
    assert printing.sweep_stalled(utcnow() + dt.timedelta(hours=1)) == {"requeued": [], "failed": []}
    printing.run_print_job(job_id, 2)
    assert print_count() == 14 and kept_files(app) == [done.file_name]


@pytest.mark.config(**SETTINGS)
def test_a_batch_killed_too_often_fails_with_its_reason_and_print_again_offers_every_order(
        app, client, auth, monkeypatch, prints_dir, tmp_path):
    items = new_orders(client, auth, 9)
    login(client, "counter")
    job_id = pending_job(client, auth, monkeypatch, format="zpl")
    child = Child(app, "print", job_id, stop_at=2, folder=tmp_path / "child")
    child.wait_stopped()
    child.kill()
    assert print_count() == 0 and job(job_id).done == 4
    beat = job(job_id).heartbeat_at

    result = printing.sweep_stalled(beat + dt.timedelta(seconds=61), max_attempts=1)
    assert result == {"requeued": [], "failed": [job_id]}
    failed = job(job_id)
    assert failed.state is JobState.FAILED and failed.error.startswith("The batch's process stopped 1 time (")
    assert [p.name for p in prints_dir.iterdir()] == [f".job-{job_id}-{failed.runner}.zpl.part"]  # the dead run's
    api = client.get(f"/api/v1/labels/batches/{job_id}", headers=auth).json
    assert api["state"] == "failed" and "print the batch again" in api["error"]
    # The page: no refresh, the reason and what to do, in Vietnamese (the default language) ...
    page = client.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page
    assert "Tiến trình chuẩn bị lô đã dừng 1 lần" in page and "Cách xử lý:" in page
    # ... and in English.
    english = client.get(f"/counter/labels/jobs/{job_id}?lang=en").get_data(as_text=True)
    assert "The process preparing it stopped 1 time (" in english and "What to do:" in english

    # "Print again": every order of the dead batch is offered, and printed once.
    assert unprinted_on_page(client, items) == set(items)
    again = client.post("/api/v1/labels/batches", json={"format": "zpl"}, headers=auth)
    assert again.status_code == 202 and again.json["total"] == 9 and again.headers["X-Left-Out"] == "0"
    redo = job(again.json["id"])
    assert redo.state is JobState.DONE
    stream = client.get(f"/api/v1/labels/batches/{redo.id}/file", headers=auth).data.decode()
    assert stream.count("^XA") == 9 and all(i in stream for i in items)
    assert print_count() == 9
    assert sorted(p.name for p in prints_dir.iterdir() if not p.name.startswith(".")) == [redo.file_name]
    # rq's on_failure for the dead run comes late: the failed job stays failed, the done one done.
    printing.mark_job_failed(job_id, 1)
    printing.mark_job_failed(redo.id, 1)
    db.session.commit()
    assert job(redo.id).state is JobState.DONE


@pytest.mark.config(**SETTINGS)
def test_a_slow_run_that_lost_its_job_stops_without_recording_anything(app, client, auth, monkeypatch,
                                                                         prints_dir, tmp_path):
    items = new_orders(client, auth, 10)
    job_id = pending_job(client, auth, monkeypatch)
    child = Child(app, "print", job_id, stop_at=2, folder=tmp_path / "child")
    child.wait_stopped()  # paused (a long garbage collection, a frozen VM), not dead
    beat = job(job_id).heartbeat_at
    assert printing.sweep_stalled(beat + dt.timedelta(seconds=61)) == {"requeued": [job_id], "failed": []}
    assert job(job_id).state is JobState.DONE and print_count() == 10
    child.go_on()  # it wakes up, finds at its next chunk that the job is no longer its own, and stops
    assert print_count() == 10 and kept_files(app) == [job(job_id).file_name]
    assert sorted(db.session.scalars(sa.select(DeliveryOrder.item_id).join(
        LabelPrint, LabelPrint.order_id == DeliveryOrder.id))) == sorted(items)


def test_on_failure_of_a_superseded_attempt_leaves_the_requeued_job_alone(app, client, auth, monkeypatch):
    app.config["LABEL_ASYNC_THRESHOLD"] = 1
    new_orders(client, auth, 2)
    job_id = pending_job(client, auth, monkeypatch)
    db.session.execute(sa.update(PrintJob).where(PrintJob.id == job_id).values(attempts=2))
    db.session.commit()
    printing.mark_job_failed(job_id, 1)
    db.session.commit()
    assert job(job_id).state is JobState.PENDING
    printing.mark_job_failed(job_id, 2)
    db.session.commit()
    assert job(job_id).state is JobState.FAILED and print_count() == 0


# --- imports --------------------------------------------------------------------------------------

def csv_of(rows: list[dict[str, str]]) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(imports.COLUMNS)
    for values in rows:
        writer.writerow([values.get(c, "") for c in imports.COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def flat(payload: dict[str, Any], **changes: str) -> dict[str, str]:
    values = {"direction": payload["direction"], "dossier_code": payload["dossier_code"],
              "procedure_code": payload["procedure_code"], "procedure_name": payload["procedure_name"],
              "issuing_agency": payload["issuing_agency"], "recipient_name": payload["recipient"]["name"],
              "recipient_phone": payload["recipient"]["phone"], "province_code": "51", "commune_code": "21025",
              "address_detail": payload["address"]["detail"], "postage_vnd": "26000",
              "appointment_date": payload["appointment_date"]}
    values.update(changes)
    return values


def import_file(client, auth) -> tuple[bytes, list[str]]:
    """12 rows: one stored earlier through the API (line 5), one bad (line 7), one repeating line 2
    (line 10); the statuses a clean import gives them."""
    stored = order_payload()
    assert client.post("/api/v1/orders", json=stored, headers=auth).status_code == 201
    rows = [flat(order_payload()) for _ in range(12)]
    rows[3] = flat(stored)
    rows[5] = flat(order_payload(), recipient_phone="12345")
    rows[8] = dict(rows[0])
    expected = ["created"] * 12
    expected[3], expected[5], expected[8] = "existing", "error", "error"
    return csv_of(rows), expected


def pending_import(client, auth, monkeypatch, content: bytes) -> int:
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(imports, "enqueue_after_commit", lambda *a, **kw: queued.append(a))
    resp = client.post("/api/v1/imports", data={"file": (io.BytesIO(content), "lo.csv")}, headers=auth,
                       content_type="multipart/form-data")
    monkeypatch.undo()
    assert resp.status_code == 202 and resp.json["state"] == "pending", resp.json
    assert queued == [(imports.RUN_IMPORT, resp.json["id"], 1)]
    return resp.json["id"]


def batch(import_id: int) -> ImportBatch:
    db.session.expire_all()
    return db.session.get(ImportBatch, import_id)


def order_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder))


def killed_import(app, client, auth, monkeypatch, tmp_path) -> tuple[int, list[str]]:
    """An import killed while storing its 3rd chunk (chunks of 4 rows), after the chunk's first write."""
    content, expected = import_file(client, auth)
    import_id = pending_import(client, auth, monkeypatch, content)
    # _store_chunk runs once per chunk with new rows: chunks 1 and 2 commit (lines 2-9), and the job
    # stops inside chunk 3's transaction (its heartbeat written, uncommitted) as it stores its rows.
    child = Child(app, "import", import_id, stop_at=3, folder=tmp_path / "child")
    child.wait_stopped()
    child.kill()
    return import_id, expected


@pytest.mark.config(IMPORT_CHUNK_ROWS=4)
def test_a_killed_import_resumes_to_exactly_the_rows_of_the_file(app, client, auth, monkeypatch, tmp_path):
    import_id, expected = killed_import(app, client, auth, monkeypatch, tmp_path)
    stopped = batch(import_id)
    # Two chunks committed with their results; the third (one order written) was rolled back.
    assert stopped.state is ImportState.RUNNING
    assert [r["status"] for r in stopped.results] == expected[:8]
    assert (stopped.total_rows, stopped.created_rows, stopped.existing_rows, stopped.error_rows) == (12, 6, 1, 1)
    assert order_count() == 1 + 6
    login(client, "counter")
    page = client.get(f"/counter/imports/{import_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' in page  # within its minute it may still be alive

    beat = stopped.heartbeat_at
    assert imports.sweep_stalled(beat + dt.timedelta(seconds=29)) == {"requeued": [], "failed": []}
    assert imports.sweep_stalled(beat + dt.timedelta(seconds=61)) == {"requeued": [import_id], "failed": []}
    done = batch(import_id)
    assert done.state is ImportState.DONE and done.attempts == 2 and done.error is None
    assert [r["line"] for r in done.results] == list(range(2, 14))  # every row once, in order
    assert [r["status"] for r in done.results] == expected
    assert (done.created_rows, done.existing_rows, done.error_rows) == (9, 1, 2)
    created = [r["item_id"] for r in done.results if r["status"] == "created"]
    assert len(set(created)) == 9 and order_count() == 1 + 9  # no duplicate order
    assert "Duplicate of line 2" in done.results[8]["errors"]["dossier_code"][0]
    imports.run_import(import_id)  # a done batch is left alone
    assert batch(import_id).results == done.results and order_count() == 10


@pytest.mark.config(IMPORT_CHUNK_ROWS=4)
def test_an_import_killed_too_often_ends_failed_with_exact_counts(app, client, auth, monkeypatch, tmp_path):
    import_id, expected = killed_import(app, client, auth, monkeypatch, tmp_path)
    beat = batch(import_id).heartbeat_at
    assert imports.sweep_stalled(beat + dt.timedelta(seconds=61), max_attempts=1) == {
        "requeued": [], "failed": [import_id]}
    failed = batch(import_id)
    assert failed.state is ImportState.FAILED
    assert failed.error.startswith("The import's process stopped 1 time (killed or out of memory) after 8 of "
                                   "12 rows: 6 created, 1 existing, 1 with errors.")
    assert (failed.created_rows, failed.existing_rows, failed.error_rows) == (6, 1, 1) and order_count() == 7
    login(client, "counter")
    page = client.get(f"/counter/imports/{import_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page
    assert "Tiến trình nhập tệp này đã dừng 1 lần" in page
    assert "Đã xử lý 8/12 dòng: 6 đơn đã tạo, 1 đơn đã có từ trước, 1 dòng bị lỗi." in page
    english = client.get(f"/counter/imports/{import_id}?lang=en").get_data(as_text=True)
    assert "8 of 12 rows were handled: 6 orders created, 1 already existed, 1 rows with errors." in english
    # A re-run by hand resumes after the last committed chunk: exactly the rows of the file.
    imports.run_import(import_id)
    done = batch(import_id)
    assert done.state is ImportState.DONE and [r["status"] for r in done.results] == expected
    assert (done.created_rows, done.existing_rows, done.error_rows) == (9, 1, 2) and order_count() == 10


@pytest.mark.config(**SETTINGS)
def test_a_batch_that_raises_ends_failed_with_no_print_and_no_file(app, client, auth, monkeypatch, prints_dir):
    new_orders(client, auth, 9)
    login(client, "counter")
    job_id = pending_job(client, auth, monkeypatch)
    render, calls = printing._render_labels, []

    def third_chunk_fails(*args: Any, **kwargs: Any):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError
        return render(*args, **kwargs)

    monkeypatch.setattr(printing, "_render_labels", third_chunk_fails)
    printing.run_print_job(job_id, 1)
    failed = job(job_id)
    assert (failed.state, failed.done, failed.file_name) == (JobState.FAILED, 8, None)
    assert failed.error.startswith("Rendering stopped (MemoryError)") and print_count() == 0
    assert kept_files(app) == []
    page = client.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
    assert 'http-equiv="refresh"' not in page
    assert "Việc tạo nhãn bị dừng giữa chừng; hãy in lại lô này." in page and "Cách xử lý:" in page
    printing.run_print_job(job_id, 1)  # a failed job is not started again by a late copy of its run
    assert job(job_id).state is JobState.FAILED and print_count() == 0


@pytest.mark.config(IMPORT_CHUNK_ROWS=4)
def test_an_import_that_raises_ends_failed_with_exact_counts_and_resumes_by_hand(app, client, auth,
                                                                                 monkeypatch):
    content, expected = import_file(client, auth)
    import_id = pending_import(client, auth, monkeypatch, content)
    store, calls = imports._Run._store_chunk, []

    def third_chunk_fails(self, *args: Any, **kwargs: Any):
        calls.append(1)
        if len(calls) == 3:
            raise ConnectionResetError
        return store(self, *args, **kwargs)

    monkeypatch.setattr(imports._Run, "_store_chunk", third_chunk_fails)
    imports.run_import(import_id, 1)
    failed = batch(import_id)
    assert failed.state is ImportState.FAILED and order_count() == 7
    assert failed.error.startswith("The import stopped (ConnectionResetError) after 8 of 12 rows: 6 created, "
                                   "1 existing, 1 with errors.")
    monkeypatch.undo()
    imports.run_import(import_id)
    done = batch(import_id)
    assert [r["status"] for r in done.results] == expected and order_count() == 10


@pytest.mark.config(**SETTINGS)
def test_print_all_twice_prints_each_label_once(app, client, auth, monkeypatch, prints_dir):
    """Two "print all" while the first's job still renders, one after the other or at once: the second
    leaves out what the first holds, so no label is printed twice as copy 1 (outside review)."""
    import threading

    new_orders(client, auth, 5)
    first = pending_job(client, auth, monkeypatch)
    again = client.post("/api/v1/labels/batches", json={}, headers=auth)
    # every unprinted label is the first job's: that batch again (a clerk's second click follows it)
    assert again.status_code == 202 and again.json["id"] == first, again.json
    held = set(job(first).order_ids)
    assert len(held) == 5

    new_orders(client, auth, 5)
    queued: list[Any] = []
    monkeypatch.setattr(printing, "enqueue_after_commit", lambda *a, **kw: queued.append(a))
    start, answers = threading.Barrier(2), []

    def print_all() -> None:
        with app.test_client() as other:
            start.wait()
            answers.append(other.post("/api/v1/labels/batches", json={}, headers=auth))

    threads = [threading.Thread(target=print_all) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    monkeypatch.undo()
    assert [a.status_code for a in answers] == [202, 202], [a.json for a in answers]
    [made] = {a.json["id"] for a in answers}  # one new batch, answered to both
    assert made != first and len(job(made).order_ids) == 5 and not held & set(job(made).order_ids)


@pytest.mark.config(**SETTINGS)
def test_a_batch_no_process_has_taken_says_it_waits_and_a_stall_names_its_seconds(app, client, auth,
                                                                                 monkeypatch, prints_dir):
    """Redis or every worker down: the batch's page said "preparing 0 of N" for minutes; a stall said
    "more than a minute" after JOBS_STALL_S (30 s) (outside review, 6 Dec afternoon)."""
    new_orders(client, auth, 5)
    first = pending_job(client, auth, monkeypatch)
    login(client, "counter")
    page = client.get(f"/counter/labels/jobs/{first}").get_data(as_text=True)
    assert "Đang chuẩn bị nhãn" in page and "đã chờ hơn" not in page
    db.session.execute(sa.update(PrintJob).where(PrintJob.id == first)
                       .values(created_at=utcnow() - dt.timedelta(seconds=31)))
    db.session.commit()
    page = client.get(f"/counter/labels/jobs/{first}").get_data(as_text=True)
    assert "Lô nhãn đã chờ hơn 30 giây mà hệ thống xử lý nền chưa nhận" in page
    assert 'http-equiv="refresh"' in page  # it goes on looking
    db.session.execute(sa.update(PrintJob).where(PrintJob.id == first)
                       .values(state=JobState.RUNNING, heartbeat_at=utcnow() - dt.timedelta(seconds=31)))
    db.session.commit()
    page = client.get(f"/counter/labels/jobs/{first}").get_data(as_text=True)
    assert "Không có tiến triển trong hơn 30 giây" in page and "hơn một phút" not in page


@pytest.mark.config(**SETTINGS)
def test_an_order_cancelled_while_its_batch_waits_is_named_not_counted(app, client, auth, monkeypatch, prints_dir):
    """The batch said "1,011 labels ready" for a file of 1,010 (an order cancelled between the asking and
    the rendering), naming none (outside review, 6 Dec afternoon)."""
    items = new_orders(client, auth, 5)
    job_id = pending_job(client, auth, monkeypatch)
    assert client.post(f"/api/v1/orders/{items[2]}/events", json={"status": "cancelled"},
                       headers=auth).status_code == 201
    printing.run_print_job(job_id, 1)
    answer = client.get(f"/api/v1/labels/batches/{job_id}", headers=auth).json
    assert (answer["state"], answer["total"], answer["done"], answer["left_out"]) == ("done", 5, 4, [items[2]])
    body = client.get(f"/api/v1/labels/batches/{job_id}/file", headers=auth).get_data()
    assert len(PdfReader(io.BytesIO(body)).pages) == 4 and print_count() == 4
    login(client, "counter")
    page = client.get(f"/counter/labels/jobs/{job_id}").get_data(as_text=True)
    assert "4 nhãn đã sẵn sàng" in page.replace("\u00a0", " ") or "Đã sẵn sàng 4 nhãn" in page, page[-3000:]
    assert items[2] in page and "Đã hủy" in page
