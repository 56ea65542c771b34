"""Backups: the database and the stored files in one .tar, and their restore into a fresh database.

An archive holds ``manifest.json`` (first), the database (``database.sqlite3``, made with SQLite's
online backup API, or ``database.pgdump``, pg_dump's custom format) and ``files/prints/…`` and
``files/reports/…`` (PRINT_FILES_DIR and REPORT_FILES_DIR). Proof photos and signatures are rows of
``proof_files`` and travel in the database. The manifest gives the schema revision, the counts of
the database as dumped (one snapshot: the counts are the dump's), the size and sha256 of each
member, and when it was made. A restore checks every member against the manifest before it writes
anything, and the restored counts against the manifest after.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app

from delivery_service.db import private_file
from delivery_service.extensions import db

FORMAT = 1
MANIFEST = "manifest.json"
# What the manifest counts: name -> table.
COUNTED = {"orders": "delivery_orders", "events": "order_events", "proof_files": "proof_files",
           "print_jobs": "print_jobs", "weekly_reports": "weekly_reports", "users": "users",
           "api_clients": "api_clients"}
# Stored files: archive folder -> the setting that names the folder on disk.
FILE_DIRS = {"prints": "PRINT_FILES_DIR", "reports": "REPORT_FILES_DIR"}


class BackupError(Exception):
    """A backup or restore that cannot be done; the message says why."""


@dataclass
class Restored:
    """What a restore put back."""

    backend: str
    revision: str | None
    created_at: str
    counts: dict[str, int]
    files: dict[str, int] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _backend() -> str:
    name = db.engine.url.get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"backups support SQLite and PostgreSQL, not {name}")
    return name


# -- taking a backup ------------------------------------------------------------------------------

def backup(to_dir: Path) -> tuple[Path, dict[str, Any]]:
    """Write a backup archive into ``to_dir``; returns its path and its manifest. The archive holds
    citizens' personal data: it is readable by this account only (0600), whatever the umask, and a
    folder made for it is too (0700; an existing folder keeps the modes its operator gave it)."""
    to_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    backend = _backend()
    created = dt.datetime.now(dt.UTC)
    stamp = created.strftime("%Y%m%dT%H%M%SZ")
    with tempfile.TemporaryDirectory(dir=to_dir, prefix=".backup-") as tmp:
        stage = Path(tmp)
        if backend == "sqlite":
            db_member = "database.sqlite3"
            revision, counts, referenced = _dump_sqlite(stage / db_member)
        else:
            db_member = "database.pgdump"
            revision, counts, referenced = _dump_postgresql(stage / db_member)
        # Files are copied after the snapshot: a file the snapshot names was written before it (files
        # are written before their row is committed) and is kept unless it was deleted meanwhile.
        members = [db_member]
        for folder, setting in FILE_DIRS.items():
            root = Path(current_app.config[setting])
            if not root.is_dir():
                continue
            for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")):
                member = f"files/{folder}/{path.relative_to(root).as_posix()}"
                target = stage / member
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copy2(path, target)
                except FileNotFoundError:  # deleted while we walked (an expired print file)
                    continue
                members.append(member)
        present = {m.split("/", 2)[1] + "/" + m.split("/", 2)[2] for m in members if m.startswith("files/")}
        missing = sorted(ref for ref in referenced if ref not in present)
        manifest = {
            "format": FORMAT,
            "created_at": created.isoformat(),
            "backend": backend,
            "schema_revision": revision,
            "counts": {**counts, "files": len(members) - 1},
            "files_missing": missing,
            "members": {m: {"size": (stage / m).stat().st_size, "sha256": _sha256(stage / m)}
                        for m in members},
        }
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
        archive = to_dir / f"delivery-backup-{stamp}.tar"
        partial = to_dir / f".{archive.name}.partial"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # a partial file left by a killed run keeps its mode otherwise
        with os.fdopen(fd, "wb") as fh, tarfile.open(fileobj=fh, mode="w") as tar:
            for member in [MANIFEST, *members]:
                tar.add(stage / member, arcname=member, recursive=False)
        os.replace(partial, archive)
    return archive, manifest


def _count(execute: Any) -> tuple[str | None, dict[str, int], list[str]]:
    """Schema revision, counts and referenced files, read with ``execute(sql) -> rows``."""
    revision = execute("SELECT version_num FROM alembic_version")
    counts = {name: int(execute(f"SELECT COUNT(*) FROM {table}")[0][0]) for name, table in COUNTED.items()}
    prints = execute("SELECT file_name FROM print_jobs WHERE file_name IS NOT NULL")
    referenced = [f"prints/{r[0]}" for r in prints]
    referenced += [f"reports/{r[0]}" for r in execute("SELECT file_name FROM weekly_reports")]
    return (revision[0][0] if revision else None), counts, referenced


def _sqlite_path() -> Path:
    database = db.engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("the SQLite database is not a file")
    return Path(database)


def _dump_sqlite(target: Path) -> tuple[str | None, dict[str, int], list[str]]:
    # The online backup API copies every page in one step (pages=-1) under one read transaction:
    # a consistent snapshot, while writers go on (WAL mode).
    source = sqlite3.connect(_sqlite_path(), timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file in the archive
        return _count(lambda sql: copy.execute(sql).fetchall())
    finally:
        copy.close()
        source.close()


def _pg_env() -> dict[str, str]:
    url = db.engine.url
    env = dict(os.environ)
    for key, value in (("PGHOST", url.host), ("PGPORT", url.port), ("PGUSER", url.username),
                       ("PGPASSWORD", url.password), ("PGDATABASE", url.database)):
        if value is not None:
            env[key] = str(value)
    if "sslmode" in url.query:
        env["PGSSLMODE"] = str(url.query["sslmode"])
    return env


def _pg_tool(name: str) -> str:
    """The client tool of the server's major version (Debian keeps each under /usr/lib/postgresql/N),
    else the one on PATH if it is at least as new as the server."""
    with db.engine.connect() as conn:
        server = int(conn.scalar(sa.text("SHOW server_version_num"))) // 10000
    candidates = [f"/usr/lib/postgresql/{server}/bin/{name}", shutil.which(name)]
    for tool in filter(None, candidates):
        if not os.access(tool, os.X_OK):
            continue
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout
        match = re.search(r"(\d+)(?:\.\d+)?", out)
        if match and int(match.group(1)) >= server:
            return tool
    raise BackupError(f"{name} of PostgreSQL {server} or newer is needed (Debian: "
                      f"apt install postgresql-client-{server})")


def _run(args: list[str]) -> None:
    done = subprocess.run(args, env=_pg_env(), capture_output=True, text=True, check=False)
    if done.returncode:
        raise BackupError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _dump_postgresql(target: Path) -> tuple[str | None, dict[str, int], list[str]]:
    # Count and dump one snapshot: this transaction exports it and pg_dump reads the same one.
    pg_dump = _pg_tool("pg_dump")
    with db.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        snapshot = conn.scalar(sa.text("SELECT pg_export_snapshot()"))
        found = _count(lambda sql: conn.execute(sa.text(sql)).all())
        _run([pg_dump, "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
              f"--file={target}"])
        conn.rollback()
    return found


# -- restoring --------------------------------------------------------------------------------------

def read_manifest(archive: Path, into: Path) -> dict[str, Any]:
    """Unpack ``archive`` into ``into`` and check every member against its manifest."""
    try:
        with tarfile.open(archive, "r") as tar:
            names = tar.getnames()
            if MANIFEST not in names:
                raise BackupError(f"{archive} has no {MANIFEST}: not a backup of this service")
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"cannot read {archive}: {exc}") from None
    manifest = json.loads((into / MANIFEST).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupError(f"backup format {manifest.get('format')} is not {FORMAT}")
    listed = set(manifest["members"])
    extra = {n for n in names if n != MANIFEST and (into / n).is_file()} - listed
    if extra:
        raise BackupError(f"members not in the manifest: {', '.join(sorted(extra))}")
    for member, meta in manifest["members"].items():
        path = into / member
        if not path.is_file():
            raise BackupError(f"{member} is in the manifest but not in the archive")
        if _sha256(path) != meta["sha256"]:
            raise BackupError(f"{member} does not match its sha256 in the manifest")
    return manifest


def restore(archive: Path, force: bool = False) -> Restored:
    """Restore ``archive`` into this app's database and file folders, which must be empty unless
    ``force``; checks the manifest before and the counts after."""
    backend = _backend()
    with tempfile.TemporaryDirectory(prefix="ds-restore-") as tmp:
        stage = Path(tmp)
        manifest = read_manifest(archive, stage)
        if manifest["backend"] != backend:
            raise BackupError(f"this is a {manifest['backend']} backup; the database here is {backend} "
                              "(restore it into the same kind of database)")
        tables = sa.inspect(db.engine).get_table_names()
        db.session.remove()
        if tables and not force:
            raise BackupError(f"the database is not empty ({len(tables)} tables); restore into a fresh "
                              "database, or give --force to replace its contents")
        files = [m for m in manifest["members"] if m.startswith("files/")]
        targets = {m: _file_target(m) for m in files}
        clashes = [str(t) for m, t in targets.items()
                   if t.exists() and _sha256(t) != manifest["members"][m]["sha256"]]
        if clashes and not force:
            raise BackupError(f"{len(clashes)} stored files differ from the backup's (first: {clashes[0]}); "
                              "give --force to replace them")
        db.engine.dispose()
        if backend == "sqlite":
            _restore_sqlite(stage / "database.sqlite3")
        else:
            _restore_postgresql(stage / "database.pgdump", clean=force)
        written: dict[str, int] = {}
        for member, target in targets.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(stage / member, target)
            written[member.split("/")[1]] = written.get(member.split("/")[1], 0) + 1
    db.engine.dispose()
    with db.engine.connect() as conn:
        revision, counts, _ = _count(lambda sql: conn.execute(sa.text(sql)).all())
    expected = {k: v for k, v in manifest["counts"].items() if k != "files"}
    if counts != expected:
        raise BackupError(f"restored counts {counts} differ from the manifest's {expected}")
    return Restored(backend, revision, manifest["created_at"], counts, written)


def _file_target(member: str) -> Path:
    _files, folder, rest = member.split("/", 2)
    if folder not in FILE_DIRS:
        raise BackupError(f"unknown file folder in the backup: {member}")
    return Path(current_app.config[FILE_DIRS[folder]]) / rest


def _restore_sqlite(source_path: Path) -> None:
    target = _sqlite_path()
    private_file(target)
    source = sqlite3.connect(source_path)
    dest = sqlite3.connect(target, timeout=30)
    try:
        source.backup(dest)
        dest.execute("PRAGMA journal_mode=WAL")
    finally:
        dest.close()
        source.close()


def _restore_postgresql(dump: Path, clean: bool) -> None:
    args = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error",
            "--single-transaction"]
    if clean:
        args += ["--clean", "--if-exists"]
    _run([*args, f"--dbname={db.engine.url.database}", str(dump)])
