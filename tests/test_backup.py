"""Backup under write load, restore into a fresh database, and the refusal to restore over data."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import tarfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import PG_ADMIN_URL, _base_config, order_payload
from flask import Flask

from delivery_service import create_app
from delivery_service.cli import main
from delivery_service.extensions import db


def _cli(app: Flask, *args: str):  # noqa: ANN202
    # with_appcontext uses the current app: push the app the command is meant for.
    with app.app_context():
        return app.test_cli_runner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database of the same kind: a new SQLite file, or a new PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    name = f"ds_restore_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _ids(table: str) -> set[int]:
    return set(db.session.scalars(sa.text(f"SELECT id FROM {table}")))


def test_backup_under_write_load_restores_every_order_event_and_file(app, client, auth, tmp_path, fresh_url):
    from delivery_service.courier.models import FileKind, ProofFile

    started = time.monotonic()
    app.config["PRINT_FILES_DIR"] = str(tmp_path / "prints")
    app.config["REPORT_FILES_DIR"] = str(tmp_path / "reports")
    for _ in range(10):
        assert client.post("/api/v1/orders", json=order_payload(), headers=auth).status_code == 201
    orders = sorted(_ids("delivery_orders"))
    for n, order_id in enumerate(orders[:3]):  # proof photos live in the database
        content = f"photo {n}".encode() * 100
        db.session.add(ProofFile(id=str(uuid.uuid4()), order_id=order_id, client_event_id=f"ev-{n}",
                                 kind=FileKind.PHOTO, mime="image/jpeg", size=len(content),
                                 sha256=hashlib.sha256(content).hexdigest(), content=content))
    db.session.commit()
    stored = {"prints/batch-1.pdf": b"%PDF-1.7 labels", "prints/sub/batch-2.zpl": b"^XA^XZ",
              "reports/2026-W48-province-51.pdf": b"%PDF-1.7 weekly"}
    for name, data in stored.items():
        folder, rest = name.split("/", 1)
        path = Path(app.config["PRINT_FILES_DIR" if folder == "prints" else "REPORT_FILES_DIR"]) / rest
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    db.session.remove()

    # Write load: another thread keeps creating orders through the API while the backup runs.
    stop, written, errors = threading.Event(), [], []

    def write() -> None:
        try:
            while not stop.is_set():
                resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
                (written if resp.status_code == 201 else errors).append(resp.status_code)
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(repr(exc))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        while len(written) < 3 and not errors and time.monotonic() - started < 20:
            time.sleep(0.01)
        # What is committed when the backup starts (a lower bound: the writer goes on meanwhile).
        before = {"orders": _ids("delivery_orders"), "events": _ids("order_events")}
        db.session.remove()
        during_from = len(written)
        t0 = time.monotonic()
        result = _cli(app, "backup", "--to", str(tmp_path / "backups"))
        backup_s = time.monotonic() - t0
        during = len(written) - during_from
    finally:
        stop.set()
        writer.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert not errors and during > 0, (errors, during)  # orders were written while the backup ran
    archive = Path(result.stdout.strip().splitlines()[-1])
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == "manifest.json"
        manifest = json.load(tar.extractfile("manifest.json"))
    counts = manifest["counts"]
    # Everything committed before the backup started is in it; later orders may be, whole.
    assert counts["orders"] >= len(before["orders"]) and counts["events"] >= len(before["events"])
    assert counts["proof_files"] == 3 and counts["files"] == 3
    assert manifest["schema_revision"] and manifest["backend"] == app.config["DATABASE_URL"].split(":")[0].split("+")[0]

    restored_dir = tmp_path / "restored"
    fresh = create_app({**_base_config(fresh_url, restored_dir), "PRINT_FILES_DIR": str(restored_dir / "prints"),
                        "REPORT_FILES_DIR": str(restored_dir / "reports")})
    t0 = time.monotonic()
    done = _cli(fresh, "restore", str(archive))
    restore_s = time.monotonic() - t0
    assert done.exit_code == 0, done.output
    with fresh.app_context():
        got = {"orders": _ids("delivery_orders"), "events": _ids("order_events")}
        proofs = db.session.execute(sa.text("SELECT sha256, content FROM proof_files")).all()
        # Each event belongs to a restored order; each order's events are all there (none half-copied).
        orphan = db.session.scalar(sa.text("SELECT COUNT(*) FROM order_events e WHERE NOT EXISTS "
                                           "(SELECT 1 FROM delivery_orders o WHERE o.id = e.order_id)"))
        db.session.remove()
        db.engine.dispose()
    assert len(got["orders"]) == counts["orders"] and len(got["events"]) == counts["events"]
    assert before["orders"] <= got["orders"] and before["events"] <= got["events"] and orphan == 0
    assert len(proofs) == 3 and all(hashlib.sha256(bytes(c)).hexdigest() == s for s, c in proofs)
    for name, data in stored.items():
        assert (restored_dir / name).read_bytes() == data
    assert f"{counts['orders']} orders" in done.output and "2 prints, 1 reports" in done.output

    again = _cli(fresh, "restore", str(archive))
    assert again.exit_code == 1 and "not empty" in again.output
    with fresh.app_context():
        db.engine.dispose()
    elapsed = time.monotonic() - started
    print(f"\nbackup figures ({manifest['backend']}): {counts['orders']} orders ({len(before['orders'])} committed when it started, "
          f"{during} written while it ran), {counts['events']} events, {counts['proof_files']} proof files, "
          f"{counts['files']} stored files; backup {backup_s:.2f} s, restore {restore_s:.2f} s, test {elapsed:.1f} s")


def test_restore_refuses_a_tampered_archive(app, tmp_path):
    app.config["PRINT_FILES_DIR"] = str(tmp_path / "prints")
    app.config["REPORT_FILES_DIR"] = str(tmp_path / "reports")
    archive = Path(_cli(app, "backup", "--to", str(tmp_path)).stdout.strip().splitlines()[-1])
    with tarfile.open(archive) as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()]
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        for member, data in members:
            if member.name.startswith("database"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            tar.addfile(member, io.BytesIO(data))
    fresh = create_app({**_base_config(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path)})
    result = _cli(fresh, "restore", str(bad))
    assert result.exit_code == 1 and "sha256" in result.output


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask of most servers (0022: files readable by every local account), whatever the test
    runner's own."""
    before = os.umask(0o022)
    yield
    os.umask(before)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_backups_and_sqlite_databases_are_readable_by_the_service_account_only(app, tmp_path, usual_umask):
    """They hold citizens' names, phones and ID numbers: an archive is 0600 and a folder made for it
    0700; a SQLite database (a new one, a restored one) is 0600 in a 0700 folder. An operator's own
    folder keeps its modes."""
    app.config["PRINT_FILES_DIR"] = str(tmp_path / "prints")
    app.config["REPORT_FILES_DIR"] = str(tmp_path / "reports")
    made = tmp_path / "made" / "backups"
    archive = Path(_cli(app, "backup", "--to", str(made)).stdout.strip().splitlines()[-1])
    assert (_mode(made), _mode(archive)) == (0o700, 0o600)
    own = tmp_path / "own"
    own.mkdir(mode=0o750)
    second = Path(_cli(app, "backup", "--to", str(own)).stdout.strip().splitlines()[-1])
    assert (_mode(own), _mode(second)) == (0o750, 0o600)
    if app.config["DATABASE_URL"].startswith("sqlite"):
        restored = tmp_path / "restored" / "db" / "restored.sqlite3"
        fresh = create_app({**_base_config(f"sqlite:///{restored}", tmp_path / "restored"),
                            "PRINT_FILES_DIR": str(tmp_path / "restored" / "prints"),
                            "REPORT_FILES_DIR": str(tmp_path / "restored" / "reports")})
        assert _cli(fresh, "restore", str(archive)).exit_code == 0
        with fresh.app_context():
            db.engine.dispose()
        assert (_mode(restored.parent), _mode(restored)) == (0o700, 0o600)
        new = tmp_path / "new" / "delivery.sqlite3"
        blank = create_app(_base_config(f"sqlite:///{new}", tmp_path / "new"))
        with blank.app_context():
            db.session.execute(sa.text("CREATE TABLE t (x)"))
            db.session.commit()
            db.engine.dispose()
        assert (_mode(new.parent), _mode(new)) == (0o700, 0o600)
