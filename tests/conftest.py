"""Fixtures: every database test runs on SQLite and on PostgreSQL, with the schema built by the
migrations. Redis tests use the real server. Without a server those tests skip, with the reason;
with REQUIRE_SERVICES=1 (set by .ci/run) they fail instead."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings as hypothesis_settings

from delivery_service import create_app, logs
from delivery_service.extensions import db

# Property tests draw the same examples on every run, so that CI's verdict does not depend on luck;
# HYPOTHESIS_PROFILE=explore draws new ones (run it when changing labels or the API). No deadline: an
# example's time is no verdict on a shared 2-core machine (hypothesis' 200 ms default failed a run once).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
hypothesis_settings.register_profile("explore", derandomize=False, print_blob=True, deadline=None)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE = os.environ.get("REQUIRE_SERVICES") == "1"
TEST_PROVINCES_2025 = ("51", "42", "48")  # Quảng Ngãi, Hà Tĩnh, Đà Nẵng (with former Quảng Nam)
TEST_PROVINCES_LEGACY = ("51", "42", "49")
DEMO_PASSWORD = "demo-password"
# Tables that tests fill; emptied after each PostgreSQL test (the event log only by TRUNCATE).
ORDER_TABLES = ("order_events", "delivery_orders", "item_serials", "import_batches", "print_jobs", "manifests",
                "delivery_proofs", "proof_files", "event_corrections", "webhook_deliveries",
                "webhook_endpoints", "report_days", "report_weeks", "report_months", "report_years", "report_changes",
                "report_orders", "report_cursor",
                "counter_daily_totals", "weekly_reports", "report_area_communes", "report_areas", "rate_limit_counters",
                "job_outbox", "order_locations", "known_places", "geocode_cache", "audit_events",
                "business_rules", "personal_data_access", "privacy_runs", "notification_messages",
                "notification_cursor", "notification_optouts", "notification_templates", "geo_cursor", "shown_once")
ORG_TABLES = ("api_clients", "users", "route_communes", "postal_routes", "counters", "post_offices")
# Routing state tests change on the demo routes: restored from a snapshot after each PostgreSQL test.
ROUTE_SETTINGS = ("id", "courier_id", "capacity_per_day", "backup_route_id", "return_to_office", "active")
# The demo counters' settings that the administration tests change (a hotline the tracking page shows):
# restored the same way.
COUNTER_SETTINGS = ("id", "name", "hotline", "label_format", "label_size", "label_requires_route")
# The demo accounts' settings that the administration tests change: restored the same way.
USER_SETTINGS = ("id", "full_name", "role", "counter_id", "area_unit_id", "post_office_id", "active",
                 "password_hash", "session_version", "must_change_password")


def _unavailable(what: str, exc: Exception) -> None:
    msg = f"{what} is not reachable ({exc.__class__.__name__}: {exc}); start it as README shows"
    if REQUIRE:
        pytest.fail(msg)
    pytest.skip(msg)


def _base_config(url: str, tmp: Path) -> dict[str, Any]:
    return {"DATABASE_URL": url, "SECRET_KEY": "test-secret", "TESTING": True, "REDIS_URL": None,
            "ENV": "test", "JOBS_INLINE": True, "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}


def _prepare(app: Flask) -> dict[str, Any]:
    """Migrate, load the test units and the demo organisations; returns id watermarks."""
    from flask_migrate import upgrade

    from delivery_service.demo.seed import load
    from delivery_service.units.services import import_units

    with app.app_context():
        upgrade()
        import_units("2025", TEST_PROVINCES_2025)
        import_units("legacy", TEST_PROVINCES_LEGACY)
        lines = list(load(DEMO_PASSWORD, with_orders=False))
        app.config["DEMO_TOKEN"] = next(line.rsplit(" ", 1)[1] for line in lines if "API token" in line)
        marks: dict[str, Any] = {}
        for table in ORG_TABLES:
            if table != "route_communes":
                marks[table] = db.session.scalar(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))
        marks["snapshot"] = {
            "route_communes": _rows("SELECT * FROM route_communes"),
            "route_rules": _rows("SELECT * FROM route_rules"),
            "postal_routes": _rows(f"SELECT {', '.join(ROUTE_SETTINGS)} FROM postal_routes"),
            "users": _rows(f"SELECT {', '.join(USER_SETTINGS)} FROM users"),
            "counters": _rows(f"SELECT {', '.join(COUNTER_SETTINGS)} FROM counters"),
        }
        db.session.remove()
    return marks


def _rows(sql: str) -> list[dict[str, Any]]:
    return [dict(row) for row in db.session.execute(sa.text(sql)).mappings()]


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    app = create_app(_base_config(f"sqlite:///{path}", path.parent))
    _prepare(app)
    with app.app_context():
        db.engine.dispose()
    return path, app.config["DEMO_TOKEN"]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[tuple[str, dict[str, Any], str]]:
    name = f"ds_test_{os.getpid()}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    app = create_app(_base_config(url, Path("/tmp")))
    marks = _prepare(app)
    token = app.config["DEMO_TOKEN"]
    with app.app_context():
        db.engine.dispose()
    yield url, marks, token
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_pg(app: Flask, marks: dict[str, Any]) -> None:
    with app.app_context():
        db.session.execute(sa.text(f"TRUNCATE {', '.join(ORDER_TABLES)} RESTART IDENTITY CASCADE"))
        # Runs and day loads only exist with orders; coverage goes back to the demo's.
        for table in ("route_runs", "route_day_loads", "route_rules", "route_communes"):
            db.session.execute(sa.text(f"DELETE FROM {table}"))
        for table in ("api_clients", "users", "postal_routes", "counters", "post_offices"):
            db.session.execute(sa.text(f"DELETE FROM {table} WHERE id > :m"), {"m": marks[table]})
        snapshot = marks["snapshot"]
        for table in ("route_communes", "route_rules"):
            if snapshot[table]:
                columns = list(snapshot[table][0])
                db.session.execute(sa.text(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                           f"({', '.join(':' + c for c in columns)})"), snapshot[table])
        settings = ", ".join(f"{c} = :{c}" for c in ROUTE_SETTINGS if c != "id")
        db.session.execute(sa.text(f"UPDATE postal_routes SET {settings} WHERE id = :id"),
                           snapshot["postal_routes"])
        accounts = ", ".join(f"{c} = :{c}" for c in USER_SETTINGS if c != "id")
        db.session.execute(sa.text(f"UPDATE users SET {accounts} WHERE id = :id"), snapshot["users"])
        db.session.execute(sa.text("UPDATE api_clients SET revoked_at = NULL"))
        counters = ", ".join(f"{c} = :{c}" for c in COUNTER_SETTINGS if c != "id")
        db.session.execute(sa.text(f"UPDATE counters SET {counters} WHERE id = :id"), snapshot["counters"])
        db.session.commit()
        db.session.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """An app on a database holding the test units and the demo organisations, and no orders."""
    overrides = getattr(request, "param", None) or {}
    marker = request.node.get_closest_marker("config")
    if marker:
        overrides = {**overrides, **marker.kwargs}
    if backend == "sqlite":
        template, token = request.getfixturevalue("sqlite_template")
        path = tmp_path / "db.sqlite3"
        shutil.copy(template, path)
        app = create_app({**_base_config(f"sqlite:///{path}", tmp_path), **overrides})
    else:
        url, marks, token = request.getfixturevalue("pg_database")
        app = create_app({**_base_config(url, tmp_path), **overrides})
        _reset_pg(app, marks)
    app.config["DEMO_TOKEN"] = token
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


_engines_of_this_test: set[sa.Engine] = set()


@sa.event.listens_for(sa.Engine, "engine_connect")
def _keep_engine(conn: sa.Connection) -> None:
    _engines_of_this_test.add(conn.engine)


@pytest.fixture(autouse=True)
def _close_every_engine() -> Iterator[None]:
    """Close the pools of every engine a test used when it ends. An app a test makes besides the
    ``app`` fixture's (a second node, a worker's, a restored backup's) otherwise keeps its open
    connections until the garbage collector frees it, at a random moment of a later test, which
    psycopg's "connection deleted while open" ResourceWarning then fails (seen as an error at the
    teardown of an unrelated race test)."""
    yield
    while _engines_of_this_test:
        _engines_of_this_test.pop().dispose()


class IsolatedClient(FlaskClient):
    """Each request in an app context of its own, as in production: its own ``g`` and db session
    (the app fixture keeps a context pushed for the test body, which requests would otherwise share)."""

    def open(self, *args: Any, **kwargs: Any):  # noqa: ANN201
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    app.test_client_class = IsolatedClient
    return app.test_client()


@pytest.fixture
def token(app: Flask) -> str:
    """The demo API token of counter QNG-TTHCC."""
    return app.config["DEMO_TOKEN"]


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def redis_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The test Redis, with a queue of this test's own (so concurrent test runs never share jobs)."""
    from redis import Redis

    try:
        conn = Redis.from_url(REDIS_URL)
        conn.ping()
    except Exception as exc:  # noqa: BLE001
        _unavailable("Redis", exc)
    queue = f"test-{uuid.uuid4().hex}"
    monkeypatch.setenv("RQ_QUEUE", queue)
    yield REDIS_URL
    for key in conn.scan_iter(f"rq:*{queue}*"):
        conn.delete(key)
    conn.close()


@pytest.fixture
def rq_app(app: Flask, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Flask]:
    """A second app on the test database whose jobs go to Redis; rq workers started in this process
    run jobs in it."""
    from delivery_service import jobs

    queued = create_app({**_base_config(app.config["DATABASE_URL"], Path("/tmp")), "REDIS_URL": redis_url})
    monkeypatch.setattr(jobs, "_worker_app", queued)
    yield queued
    queued.extensions["redis"].close()
    with queued.app_context():
        db.session.remove()
        db.engine.dispose()


def order_payload(**changes: Any) -> dict[str, Any]:
    """A valid order for counter QNG-TTHCC; ``changes`` override fields (None removes one)."""
    import datetime as dt

    body: dict[str, Any] = {
        "direction": "result_to_citizen",
        "dossier_code": f"H55.22-{uuid.uuid4().hex[:10]}",
        "procedure_code": "1.011442.000.00.00.H55",
        "procedure_name": "Cấp đổi giấy phép lái xe",
        "issuing_agency": "Sở Xây dựng tỉnh Quảng Ngãi",
        "recipient": {"name": "Nguyễn Thị Hoa", "phone": "0905123456"},
        "address": {"province_code": "51", "commune_code": "21025", "detail": "12 Hùng Vương"},
        "postage_vnd": 26000,
        "appointment_date": (dt.date.today() + dt.timedelta(days=3)).isoformat(),
    }
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def csrf_token(client: FlaskClient, path: str) -> str:
    """The CSRF token of the form on ``path``."""
    html = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, f"no csrf_token on {path}"
    return match.group(1)


def login(client: FlaskClient, username: str, password: str = DEMO_PASSWORD) -> None:
    token = csrf_token(client, "/login")
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert resp.status_code in (302, 303), resp.get_data(as_text=True)[:500]


@pytest.fixture
def json_log(app):
    """The root logger's lines as the JSON formatter writes them, for this test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logs._configure(handler, "json")
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)
