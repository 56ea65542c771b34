"""Operations (issue 14): Prometheus metrics at /metrics, summed over processes, restricted; JSON logs
with a request id and no personal data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import order_payload

from delivery_service import metrics, outbox
from delivery_service.db import utcnow
from delivery_service.extensions import db

ROOT = Path(__file__).resolve().parents[1]


def _value(text: str, name: str, **labels: str) -> float:
    """The sample ``name{labels}`` of a scrape (0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        sample, _, value = line.rpartition(" ")
        if sample.split("{")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', sample))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def _scrape(client, **kwargs) -> str:
    resp = client.get("/metrics", **kwargs)
    assert resp.status_code == 200, resp.status_code
    assert resp.headers["Content-Type"].startswith("text/plain")
    return resp.get_data(as_text=True)


def test_metrics_count_orders_labels_requests_and_jobs(client, auth):
    before = _scrape(client)
    created = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert created.status_code == 201
    item = created.json["item_id"]
    assert client.post("/api/v1/orders", json=order_payload(), headers=auth).status_code == 201
    assert client.get(f"/api/v1/orders/{item}/label?format=zpl&size=100x100", headers=auth).status_code == 200
    now = utcnow()
    db.session.execute(sa.insert(outbox.T).values(
        func_path="delivery_service.reports.jobs:fold", args=[], queue="background", state="failed",
        timeout_s=60, attempt=3, requests=1, created_at=now, due_at=now, finished_at=now, error="KeyError"))
    db.session.commit()
    metrics.courier_event_applied("delivered")
    after = _scrape(client)

    def grew(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert grew("delivery_orders_created_total", channel="single") == 2
    assert grew("delivery_label_renders_total", format="zpl") == 1
    assert grew("delivery_courier_events_applied_total", status="delivered") == 1
    assert grew("delivery_http_request_duration_seconds_count", endpoint="orders.create_order",
                method="POST", status="2xx") == 2
    assert _value(after, "delivery_jobs", state="failed", queue="background") == 1
    assert _value(after, "delivery_metrics_database_ok") == 1
    for name in ("delivery_jobs_oldest_due_seconds", "delivery_webhook_failed_deliveries",
                 "delivery_webhook_backlog_events", "delivery_webhook_consecutive_failures"):
        assert f"# TYPE {name} gauge" in after


@pytest.mark.config(METRICS_TOKEN="scrape-secret")
def test_metrics_only_from_loopback_or_with_the_token(client):
    away = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    assert client.get("/metrics", **away).status_code == 404
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}, **away).status_code == 404
    _scrape(client, headers={"Authorization": "Bearer scrape-secret"}, **away)
    # a proxy on this machine forwarding a client: not loopback any more
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    _scrape(client)


def test_metrics_are_summed_over_processes(client, tmp_path, monkeypatch):
    """Two processes (two apps, as two gunicorn workers) write to one multiprocess directory; a
    scrape shows the sum of both."""
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    worker = textwrap.dedent(f"""
        import sys
        from delivery_service import create_app, metrics
        app = create_app({{"DATABASE_URL": f"sqlite:///{tmp_path}/worker-{{sys.argv[1]}}.sqlite3", "SECRET_KEY": "x",
                          "ENV": "test", "TESTING": True}})
        assert app.test_client().get("/health").status_code == 200
        metrics.order_created("api")
    """)
    env = {**os.environ, metrics.MULTIPROC_ENV: str(multiproc)}
    procs = [subprocess.Popen([sys.executable, "-c", worker, str(i)], cwd=ROOT, env=env) for i in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(list(multiproc.glob("*.db"))) >= 2  # one file set per process
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(multiproc))
    text = _scrape(client)
    assert _value(text, "delivery_orders_created_total", channel="api") == 2
    assert _value(text, "delivery_http_request_duration_seconds_count", endpoint="health",
                  method="GET", status="2xx") == 2


def test_serve_with_two_workers_shows_the_sum_and_cleans_up(sqlite_template, tmp_path):
    """A real `serve --workers 2`: requests answered by either worker are all counted by a scrape
    of either worker; the metrics directory is emptied at start and removed at the end."""
    import shutil
    import signal
    import time

    import requests
    from redis_server import free_port

    template, _token = sqlite_template
    database = tmp_path / "db.sqlite3"
    shutil.copy(template, database)
    multiproc = tmp_path / "metrics"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"stale")  # from an earlier run: removed at start
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    port = free_port()
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{database}", "SECRET_KEY": "test-secret", "ENV": "test",
           "XDG_RUNTIME_DIR": str(runtime), "PORT": str(port), metrics.MULTIPROC_ENV: str(multiproc)}
    env.pop("REDIS_URL", None)
    log = tmp_path / "serve.log"
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "delivery-service"), "serve", "--workers", "2"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            try:
                if requests.get(base + "/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        assert not (multiproc / "counter_999999.db").exists()

        def pids() -> set[str]:
            return {p.stem.rsplit("_", 1)[1] for p in multiproc.glob("histogram_*.db")}

        for _ in range(200):  # until both workers have answered
            if len(pids()) >= 2:
                break
            requests.get(base + "/health", headers={"Connection": "close"}, timeout=5)
        assert len(pids()) == 2, pids()

        def health_count() -> float:
            resp = requests.get(base + "/metrics", headers={"Connection": "close"}, timeout=5)
            return _value(resp.text, "delivery_http_request_duration_seconds_count", endpoint="health",
                          method="GET", status="2xx")

        before = health_count()
        for _ in range(20):
            resp = requests.get(base + "/health", headers={"Connection": "close"}, timeout=5)
            assert re.fullmatch(r"[0-9a-f]{32}", resp.headers["X-Request-ID"])
        assert [health_count() - before for _ in range(4)] == [20.0] * 4  # whichever worker scrapes
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert not multiproc.exists()  # removed when serve stopped


def test_log_lines_of_a_request_carry_its_id(client, json_log):
    resp = client.get("/health", headers={"X-Request-ID": "req-abc.123"})
    assert resp.headers["X-Request-ID"] == "req-abc.123"
    lines = [line for line in json_log() if line["logger"] == "delivery_service.requests"]
    assert lines and lines[-1]["request_id"] == "req-abc.123" and lines[-1]["endpoint"] == "health"
    made = client.get("/health", headers={"X-Request-ID": "bad id with spaces"}).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # not the client's: a new one
    assert json_log()[-1]["request_id"] == made


@pytest.mark.config(LOG_FORMAT="json")
def test_no_personal_data_in_the_logs_of_creating_and_reading_an_order(client, auth, json_log):
    payload = order_payload(recipient={"name": "Trần Văn Bí Mật", "phone": "0912345678"})
    created = client.post("/api/v1/orders", json=payload, headers=auth)
    assert created.status_code == 201
    item = created.json["item_id"]
    assert client.get(f"/api/v1/orders/{item}", headers=auth).status_code == 200
    assert client.get("/api/v1/orders?q=0912345678", headers=auth).status_code == 200
    assert client.get(f"/api/v1/orders/{item}/events", headers=auth).status_code == 200
    lines = json_log()
    assert len(lines) >= 4 and all(line["request_id"] != "-" for line in lines
                                   if line["logger"] == "delivery_service.requests")
    text = json.dumps(lines, ensure_ascii=False)
    for secret in ("Trần Văn Bí Mật", "0912345678", "912345678", "12 Hùng Vương"):
        assert secret not in text


def test_log_format_is_checked():
    from delivery_service import create_app

    with pytest.raises(ValueError, match="LOG_FORMAT"):
        create_app({"DATABASE_URL": "sqlite://", "SECRET_KEY": "x", "ENV": "test", "LOG_FORMAT": "xml"})


def test_imported_orders_are_counted_by_their_channel(client, auth):
    from test_imports import BAD_ROWS, row, to_csv, upload

    before = _scrape(client)
    rows = [row(), row(**BAD_ROWS[0][0]), row(dossier_code="H55.22-250101-0777")]
    body = upload(client, auth, to_csv(rows)).json
    assert (body["created_rows"], body["error_rows"]) == (2, 1)
    assert upload(client, auth, to_csv(rows)).json["existing_rows"] == 2  # the same file again: none new
    after = _scrape(client)
    assert _value(after, "delivery_orders_created_total", channel="import") \
        - _value(before, "delivery_orders_created_total", channel="import") == 2
