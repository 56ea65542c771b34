"""Batch import: rows per second of a 5,000-row CSV and XLSX file, on SQLite and PostgreSQL.

Each import runs through the service (``start_import``: parse, validate every row, resolve units,
place the orders on routes, allocate S10 ids, store the orders, their events and the rows' results,
a chunk of ``CHUNK_ROWS`` (500) rows at a time with one statement per table). The baseline, measured in
the same run on the same database, is the bare write of the same rows: SQLAlchemy Core ``executemany``
into a plain 21-column table, as many rows per commit as the import's chunk. ``--big N`` adds an import
of N rows (and of N/10, to compare) in a process of its own each, with that process's memory before
and at its peak and the times the batch's progress was saved.

    .venv/bin/python scripts/bench/imports.py [--rows 5000] [--backends sqlite,postgresql] [--big 100000]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import resource
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[2]
# Run as a script, Python puts scripts/bench/ first on the path, where labels.py and routes.py would
# shadow the ``labels`` and ``routes`` packages the service imports: take it out, put the root first.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
COMMUNES = ("21025", "21028", "21172", "21211")


def run_line() -> str:
    """When and on what this ran: the UTC time, the commit (and whether the tree had uncommitted
    changes), the load average. Printed above the table, and copied with it into docs/benchmarks.md."""
    import os
    import subprocess

    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)

    commit = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    dirty = " with uncommitted changes" if git("diff-index", "--quiet", "HEAD", "--").returncode else ""
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit}{dirty}, "
            f"{os.cpu_count()} CPUs, load average {load}.")


PREFIXES = ("090", "091", "093", "094", "096", "097", "098", "032", "035", "038", "070", "077", "081", "085")


def make_rows(n: int, columns: tuple[str, ...]) -> list[dict[str, str]]:
    soon = (dt.date.today() + dt.timedelta(days=3)).strftime("%d/%m/%Y")
    rows = []
    for i in range(n):
        row = {
            "direction": "result_to_citizen", "dossier_code": f"H55-{uuid.uuid4().hex[:12]}",
            "procedure_code": "1.011442.000.00.00.H55", "procedure_name": "Cấp đổi giấy phép lái xe",
            "issuing_agency": "Sở Xây dựng tỉnh Quảng Ngãi", "recipient_name": f"Nguyễn Văn Bình {i}",
            # a phone of its own (mobile prefixes of several networks), as citizens have; 2 % bad rows
            "recipient_phone": f"{PREFIXES[i % len(PREFIXES)]}{(i * 7919) % 10**7:07d}"
            if i % 50 != 7 else "12345",
            "province_code": "51", "commune_code": COMMUNES[i % 4], "address_detail": f"{i} Hùng Vương",
            "postage_vnd": "26000", "appointment_date": soon, "note": "Gọi trước khi giao",
        }
        rows.append({c: row.get(c, "") for c in columns})
    return rows


def to_csv(rows: list[dict[str, str]], columns: tuple[str, ...]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([r[c] for c in columns] for r in rows)
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(rows: list[dict[str, str]], columns: tuple[str, ...]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(list(columns))
    for r in rows:
        sheet.append([r[c] for c in columns])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def app_config(url: str) -> dict[str, object]:
    # The big files are over the default limits (5,000 rows, 5 MB).
    return {"DATABASE_URL": url, "SECRET_KEY": "bench", "JOBS_INLINE": True, "MAX_IMPORT_ROWS": 1_000_000,
            "MAX_IMPORT_BYTES": 1 << 30}


def prepare(url: str):  # noqa: ANN201
    from flask_migrate import upgrade

    from delivery_service import create_app
    from delivery_service.demo.seed import load
    from delivery_service.units.services import import_units

    # JOBS_INLINE: the import job, and the follow-up jobs its chunks queue, run before start_import
    # returns, so that the time measured is all the work the file causes.
    app = create_app(app_config(url))
    with app.app_context():
        upgrade()
        import_units("2025", ["51", "42", "48"])
        lines = list(load("bench-password", with_orders=False))
    token = next(line.rsplit(" ", 1)[1] for line in lines if "API token" in line)
    return app, token


def baseline(app, rows: list[dict[str, str]], columns: tuple[str, ...], repeat: int = 5) -> tuple[float, float, float]:  # noqa: ANN001,E501
    """The bare write of ``rows``, ``repeat`` times on a new table each: (median, min, max) seconds.
    Each run's rows are counted back."""
    from delivery_service.extensions import db
    from delivery_service.imports.services import CHUNK_ROWS

    table = sa.Table("bench_bare_rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     *[sa.Column(c, sa.String(500)) for c in columns])
    times = []
    with app.app_context():
        engine = db.engine
        for _ in range(repeat):
            table.drop(engine, checkfirst=True)
            table.create(engine)
            started = time.perf_counter()
            with engine.connect() as conn:
                for i in range(0, len(rows), CHUNK_ROWS):
                    conn.execute(table.insert(), rows[i:i + CHUNK_ROWS])
                    conn.commit()
            times.append(time.perf_counter() - started)
            with engine.connect() as conn:
                stored = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            assert stored == len(rows), (stored, len(rows))
        table.drop(engine)
    return statistics.median(times), min(times), max(times)


def stored_counts(app) -> tuple[int, int]:  # noqa: ANN001
    """(orders, their events) in the database."""
    from delivery_service.extensions import db

    with app.app_context():
        orders = db.session.execute(sa.text("SELECT count(*) FROM delivery_orders")).scalar_one()
        events = db.session.execute(sa.text("SELECT count(*) FROM order_events")).scalar_one()
        db.session.remove()
    return orders, events


def run_import(app, token: str, content: bytes, name: str) -> tuple[float, object]:  # noqa: ANN001
    from delivery_service.accounts.services import actor_for_token
    from delivery_service.extensions import db
    from delivery_service.imports.services import start_import

    with app.app_context():
        actor = actor_for_token(token)
        started = time.perf_counter()
        batch = start_import(actor, counter_id=actor.counter_id, filename=name, content=content)
        elapsed = time.perf_counter() - started
        counts = (batch.state.value, batch.created_rows, batch.existing_rows, batch.error_rows)
        db.session.remove()
    return elapsed, counts


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def child(url: str, token: str, path: str) -> None:
    """Import the CSV file at ``path`` in this process: the upload (checks, the file stored), then
    its job, timed together; print as JSON what they cost, the memory of each apart."""
    import json

    from delivery_service import create_app
    from delivery_service.accounts.services import actor_for_token
    from delivery_service.extensions import db
    from delivery_service.imports import services

    app = create_app(app_config(url))
    content = Path(path).read_bytes()
    saves: list[float] = []  # the process's memory at each save of the batch's progress
    save = services._Run._save_progress  # noqa: SLF001

    def counted(self, **extra):  # noqa: ANN001, ANN003, ANN202
        saves.append(_rss_mb())
        return save(self, **extra)

    services._Run._save_progress = counted  # noqa: SLF001
    with app.app_context():  # warm: the first import loads the units, the routes, the schema
        run_import(app, token, to_csv(make_rows(50, COLUMNS_), COLUMNS_), "warm.csv")
    saves.clear()
    queued: list[tuple[object, ...]] = []
    enqueue = services.enqueue_after_commit
    services.enqueue_after_commit = lambda *a, **kw: queued.append(a)  # the job is run below
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:  # the process's resident memory, every 20 ms
        while not done.wait(0.02):
            peak[0] = max(peak[0], _rss_mb())

    orders0, _ = stored_counts(app)
    before = _rss_mb()
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with app.app_context():
        actor = actor_for_token(token)
        started = time.perf_counter()
        import_id = services.start_import(actor, counter_id=actor.counter_id, filename="big.csv",
                                          content=content).id
        db.session.remove()
        upload_peak, peak[0] = max(peak[0], _rss_mb()), 0.0
        services.enqueue_after_commit = enqueue
        services.run_import(import_id, 1)
        secs = time.perf_counter() - started
        job_peak = max(peak[0], _rss_mb())
        batch = services.get_import(actor, import_id)
        counts = (batch.state.value, batch.created_rows, batch.existing_rows, batch.error_rows)
        db.session.remove()
    done.set()
    sampler.join()
    orders1, _ = stored_counts(app)
    print(json.dumps({"secs": secs, "counts": counts, "stored": orders1 - orders0, "rss_before": before,
                      "upload_peak": upload_peak, "job_peak": job_peak, "saves": len(saves),
                      "first_save": saves[0] if saves else 0, "last_save": saves[-1] if saves else 0,
                      "size": len(content)}))


COLUMNS_: tuple[str, ...] = ()


def big_import(url: str, token: str, rows: int) -> dict[str, object]:
    import json
    import subprocess

    path = Path(tempfile.mkdtemp(prefix="bench-imports-big-")) / "big.csv"
    path.write_bytes(to_csv(make_rows(rows, COLUMNS_), COLUMNS_))
    out = subprocess.run([sys.executable, __file__, "--child", url, token, str(path)], capture_output=True,
                         text=True, check=True)
    path.unlink()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3, help="imports of each file kind (median)")
    parser.add_argument("--big", type=int, default=0, help="also import a file of this many rows (and a "
                        "tenth of it) in a process of its own each, with its memory")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()

    from delivery_service.imports.services import COLUMNS

    global COLUMNS_  # noqa: PLW0603
    COLUMNS_ = COLUMNS
    if args.child:
        child(*args.child)
        return 0
    big_table = ["| backend | rows | file | seconds | rows/s | progress saved | memory: before, upload's "
                 "peak, job's peak, at the first and last save | checked |",
                 "|---|---|---|---|---|---|---|---|"]

    table = ["| backend | case | rows | seconds (median) | range | rows/s | share of bare write | checked |",
             "|---|---|---|---|---|---|---|---|"]
    bad = sum(1 for i in range(args.rows) if i % 50 == 7)
    for backend in args.backends.split(","):
        tmp = Path(tempfile.mkdtemp(prefix="bench-imports-"))
        admin = None
        if backend == "sqlite":
            url = f"sqlite:///{tmp / 'bench.sqlite3'}"
        else:
            name = f"ds_bench_imports_{uuid.uuid4().hex[:6]}"
            admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
        try:
            app, token = prepare(url)
            rows = make_rows(args.rows, COLUMNS)
            bare, bare_lo, bare_hi = baseline(app, rows, COLUMNS)
            table.append(f"| {backend} | bare write (baseline), median of 5 | {args.rows} | {bare:.3f} | "
                         f"{bare_lo:.3f}–{bare_hi:.3f} | {args.rows / bare:,.0f} | 100 % | rows counted |")
            for kind in ("csv", "xlsx"):
                times, size = [], 0
                for _ in range(args.repeat):
                    fresh = make_rows(args.rows, COLUMNS)  # new dossier codes: every row is new
                    content = to_csv(fresh, COLUMNS) if kind == "csv" else to_xlsx(fresh, COLUMNS)
                    size = len(content)
                    orders0, events0 = stored_counts(app)
                    secs, counts = run_import(app, token, content, f"bench.{kind}")
                    assert counts == ("done", args.rows - bad, 0, bad), counts
                    orders1, events1 = stored_counts(app)
                    assert orders1 - orders0 == args.rows - bad, (orders0, orders1)
                    assert events1 - events0 >= args.rows - bad, (events0, events1)  # created (+ assigned)
                    times.append(secs)
                secs = statistics.median(times)
                case = f"import {kind.upper()} ({size // 1024} KB), median of {len(times)}"
                table.append(f"| {backend} | {case} | {args.rows} | {secs:.2f} | "
                             f"{min(times):.2f}–{max(times):.2f} | {args.rows / secs:,.0f} | "
                             f"{bare / secs * 100:.1f} % | "
                             f"{args.rows - bad} orders stored, {bad} rows refused |")
            orders0, _ = stored_counts(app)
            _secs, counts = run_import(app, token, to_csv(rows, COLUMNS), "first.csv")
            secs, counts2 = run_import(app, token, to_csv(rows, COLUMNS), "again.csv")  # timed: all stored
            assert counts == ("done", args.rows - bad, 0, bad), counts
            assert counts2 == ("done", 0, args.rows - bad, bad), counts2
            assert stored_counts(app)[0] == orders0 + args.rows - bad
            table.append(f"| {backend} | re-upload, all rows existing | {args.rows} | {secs:.2f} | – | "
                         f"{args.rows / secs:,.0f} | {bare / secs * 100:.1f} % | 0 stored |")
            for n in ([args.big // 10, args.big] if args.big else []):
                got = big_import(url, token, n)
                bad_n = sum(1 for i in range(n) if i % 50 == 7)
                assert got["counts"] == ["done", n - bad_n, 0, bad_n], got
                assert got["stored"] == n - bad_n, got
                big_table.append(
                    f"| {backend} | {n:,} | {got['size'] / 2**20:.1f} MB CSV | {got['secs']:.1f} | "
                    f"{n / got['secs']:,.0f} | {got['saves']} times | {got['rss_before']:.0f}, "
                    f"{got['upload_peak']:.0f}, {got['job_peak']:.0f}, {got['first_save']:.0f} → "
                    f"{got['last_save']:.0f} MB | "
                    f"{n - bad_n:,} orders stored, {bad_n:,} rows refused |")
            from delivery_service.extensions import db

            with app.app_context():
                db.engine.dispose()
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        print(f"{backend} done", file=sys.stderr)
    print(run_line())
    print()
    print("\n".join(table))
    print(f"\npeak memory of the benchmark process: {_peak_mb():.0f} MB")
    if args.big:
        print()
        print("\n".join(big_table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
