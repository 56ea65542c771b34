"""The delivery-service command, run through Flask's CLI runner against the real database."""

from __future__ import annotations

import sqlalchemy as sa

from delivery_service.cli import main
from delivery_service.extensions import db


def run(app, *args, input=None):
    result = app.test_cli_runner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result


def test_api_client_create_prints_token_once_and_stores_its_hash(app, client):
    from conftest import order_payload

    result = run(app, "api-clients", "create", "--counter", "HTI-DUCTHO", "--name", "iGate Hà Tĩnh")
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("dsk_")
    stored = db.session.scalars(sa.text("SELECT token_hash FROM api_clients")).all()
    assert token not in stored and all(len(h) == 64 for h in stored)
    resp = client.post("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}, json=order_payload(
        address={"province_code": "42", "commune_code": "18229", "detail": "Thôn Yên Trung"}))
    assert resp.status_code == 201 and resp.json["counter_code"] == "HTI-DUCTHO"
    assert run(app, "api-clients", "create", "--counter", "NOPE", "--name", "x").exit_code != 0


def test_users_create_validates_scope(app):
    ok = run(app, "users", "create", "--role", "counter_staff", "--username", "Lan", "--full-name",
             "Hoàng Thị Lan", "--counter", "HTI-DUCTHO", "--password", "a-long-password")
    assert ok.exit_code == 0, ok.output
    row = db.session.execute(sa.text("SELECT username, password_hash FROM users WHERE username='lan'")).one()
    assert row.password_hash.startswith("$argon2")
    bad = run(app, "users", "create", "--role", "counter_staff", "--username", "x", "--full-name", "X",
              "--password", "short")
    assert bad.exit_code == 2 and "counter" in bad.output and "password" in bad.output


def test_units_import_is_idempotent_and_holds_both_structures(app):
    again = run(app, "units", "import", "--province", "51")
    assert again.exit_code == 0 and "0 created" in again.output
    rows = db.session.execute(sa.text(
        "SELECT level, valid_from, valid_to FROM admin_units WHERE name = 'Tỉnh Quảng Ngãi' ORDER BY valid_from"
    )).all()
    assert [(r.level, str(r.valid_from), r.valid_to and str(r.valid_to)) for r in rows] == [
        ("province", "2008-08-01", "2025-06-30"), ("province", "2025-07-01", None)]
    districts = db.session.scalar(sa.text("SELECT COUNT(*) FROM admin_units WHERE level='district'"))
    assert districts > 20  # the three-level structure of Quảng Ngãi, Hà Tĩnh and Quảng Nam


def test_demo_load_is_idempotent(app):
    first = run(app, "demo", "load")
    second = run(app, "demo", "load")
    assert first.exit_code == 0 and second.exit_code == 0
    assert "admin" in second.output and "API token" not in second.output
    assert db.session.scalar(sa.text("SELECT COUNT(*) FROM users")) == 5  # counter, courier, supervisor, district, admin


def test_migrations_build_exactly_the_models_schema(app):
    result = run(app, "db", "check")
    assert result.exit_code == 0, result.output


def test_worker_needs_redis_and_drains_the_queue(app, rq_app):
    from delivery_service import jobs

    no_redis = run(app, "worker", "--burst")
    assert no_redis.exit_code != 0 and "REDIS_URL" in no_redis.output
    with rq_app.app_context():
        jobs.enqueue_after_commit("test_jobs:record", "from the worker command")
        db.session.commit()
        result = rq_app.test_cli_runner().invoke(main, ["worker", "--burst", "--simple"])
        assert result.exit_code == 0, result.output
        assert rq_app.extensions["rq_queue"].count == 0
        assert db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials")) == 1
