"""Batch import: rows per second of a 5,000-row CSV and XLSX file, on SQLite and PostgreSQL.

Each import runs through the service (``start_import``: parse, validate every row with the API's
schema, resolve units, allocate S10 ids, store order + event under a savepoint per row). The baseline,
measured in the same run on the same database, is the bare write of the same rows: SQLAlchemy Core
``executemany`` into a plain 21-column table, 250 rows per commit (the import's chunk size).

    .venv/bin/python scripts/bench/imports.py [--rows 5000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
COMMUNES = ("21025", "21028", "21172", "21211")


def make_rows(n: int, columns: tuple[str, ...]) -> list[dict[str, str]]:
    soon = (dt.date.today() + dt.timedelta(days=3)).strftime("%d/%m/%Y")
    rows = []
    for i in range(n):
        row = {
            "direction": "result_to_citizen", "dossier_code": f"H55-{uuid.uuid4().hex[:12]}",
            "procedure_code": "1.011442.000.00.00.H55", "procedure_name": "Cấp đổi giấy phép lái xe",
            "issuing_agency": "Sở Xây dựng tỉnh Quảng Ngãi", "recipient_name": f"Nguyễn Văn Bình {i}",
            "recipient_phone": "0905123456" if i % 50 != 7 else "12345",  # 2 % bad rows
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


def prepare(url: str):  # noqa: ANN201
    from flask_migrate import upgrade

    from delivery_service import create_app
    from delivery_service.demo.seed import load
    from delivery_service.units.services import import_units

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    with app.app_context():
        upgrade()
        import_units("2025", ["51", "42", "48"])
        lines = list(load("bench-password", with_orders=False))
    token = next(line.rsplit(" ", 1)[1] for line in lines if "API token" in line)
    return app, token


def baseline(app, rows: list[dict[str, str]], columns: tuple[str, ...]) -> float:  # noqa: ANN001
    from delivery_service.extensions import db

    table = sa.Table("bench_bare_rows", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     *[sa.Column(c, sa.String(500)) for c in columns])
    with app.app_context():
        engine = db.engine
        table.drop(engine, checkfirst=True)
        table.create(engine)
        started = time.perf_counter()
        with engine.connect() as conn:
            for i in range(0, len(rows), 250):
                conn.execute(table.insert(), rows[i:i + 250])
                conn.commit()
        elapsed = time.perf_counter() - started
        table.drop(engine)
    return elapsed


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()

    from delivery_service.imports.services import COLUMNS

    table = ["| backend | case | rows | seconds | rows/s | share of bare write |",
             "|---|---|---|---|---|---|"]
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
            bare = baseline(app, rows, COLUMNS)
            table.append(f"| {backend} | bare write (baseline) | {args.rows} | {bare:.2f} | "
                         f"{args.rows / bare:,.0f} | 100 % |")
            xlsx = to_xlsx(make_rows(args.rows, COLUMNS), COLUMNS)
            files = (("csv", to_csv(rows, COLUMNS)), ("xlsx", xlsx))
            for kind, content in files:
                secs, counts = run_import(app, token, content, f"bench.{kind}")
                expected_errors = sum(1 for i in range(args.rows) if i % 50 == 7)
                assert counts == ("done", args.rows - expected_errors, 0, expected_errors), counts
                case = f"import {kind.upper()} ({len(content) // 1024} KB)"
                table.append(f"| {backend} | {case} | {args.rows} | {secs:.2f} | {args.rows / secs:,.0f} | "
                             f"{bare / secs * 100:.1f} % |")
            secs, counts = run_import(app, token, to_csv(rows, COLUMNS), "again.csv")
            assert counts[2] == args.rows - sum(1 for i in range(args.rows) if i % 50 == 7), counts
            table.append(f"| {backend} | re-upload, all rows existing | {args.rows} | {secs:.2f} | "
                         f"{args.rows / secs:,.0f} | {bare / secs * 100:.1f} % |")
            from delivery_service.extensions import db

            with app.app_context():
                db.engine.dispose()
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
        print(f"{backend} done", file=sys.stderr)
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
