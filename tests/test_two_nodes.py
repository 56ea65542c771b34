"""Several machines (issue 14, point 6): two web nodes (two `delivery-service serve` on their own ports,
with the same SECRET_KEY) and one `delivery-service worker`, on one fresh PostgreSQL database and one
private Redis. Racing intakes across both nodes make one order, a log-in on one node holds on the other,
the tracking limit is one allowance for both, and every webhook event arrives once."""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, PG_ADMIN_URL, _base_config, _prepare, _unavailable, order_payload
from redis_server import RedisServer, free_port, redis_server  # noqa: F401  (the fixture)
from test_proxies_and_limits import UNKNOWN, VENV_BIN, _serve, _wait_up
from test_webhooks import Receiver

from delivery_service import create_app
from delivery_service.extensions import db

ROUNDS = 8  # racing intakes; odd rounds carry an Idempotency-Key and cancel the order before
PER_NODE = 2  # the same order POSTed this many times to each node at the same moment


@pytest.fixture
def fresh_pg() -> Iterator[tuple[str, str]]:
    """A PostgreSQL database of this test's own, migrated, with the test units and the demo
    organisations: (url, demo API token)."""
    name = f"ds_two_nodes_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        _unavailable("PostgreSQL", exc)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    app = create_app(_base_config(url, Path("/tmp")))
    _prepare(app)
    with app.app_context():
        db.engine.dispose()
    yield url, app.config["DEMO_TOKEN"]
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _csrf(session: requests.Session, url: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', session.get(url, timeout=10).text)
    assert match, url
    return match[1]


def _race(bases: list[str], token: str, keyed: bool) -> list[tuple[int, str]]:
    """The same order sent PER_NODE times to each node at the same moment: (status, item_id) each."""
    body = order_payload()
    headers = {"Authorization": f"Bearer {token}", "Connection": "close"}
    if keyed:
        headers["Idempotency-Key"] = f"key-{uuid.uuid4().hex}"
    targets = [base for base in bases for _ in range(PER_NODE)]
    barrier = threading.Barrier(len(targets))
    answers: list[tuple[int, str]] = [(0, "")] * len(targets)

    def send(i: int, base: str) -> None:
        barrier.wait()
        resp = requests.post(f"{base}/api/v1/orders", json=body, headers=headers, timeout=30)
        answers[i] = (resp.status_code, resp.json().get("item_id", ""))

    threads = [threading.Thread(target=send, args=(i, base)) for i, base in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    return answers


def test_two_nodes_and_a_worker_share_orders_log_ins_limits_and_webhooks(fresh_pg, redis_server,  # noqa: F811
                                                                          tmp_path):
    url, token = fresh_pg
    started = time.monotonic()
    receiver = Receiver()
    receiver.on_request = lambda: time.sleep(0.3)  # a slow receiver: dispatch runs overlap new events
    app = create_app(_base_config(url, tmp_path))
    with app.app_context():
        from delivery_service.accounts.services import actor_for_token
        from delivery_service.webhooks import services

        client_id = actor_for_token(token).client_id
        services.set_endpoint(client_id, receiver.url)
        db.session.commit()
        db.session.remove()
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {**os.environ, "WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8", "DATABASE_URL": url, "REDIS_URL": redis_server.url, "SECRET_KEY": "two-nodes-secret",
           "ENV": "test", "TRUSTED_PROXIES": "1", "RQ_QUEUE": f"two-nodes-{uuid.uuid4().hex[:8]}", "XDG_RUNTIME_DIR": str(runtime),
           "JOBS_POLL_S": "0.5", "JOBS_MAINTENANCE_S": "1", "PRINT_FILES_DIR": str(tmp_path / "prints"),
           "REPORT_FILES_DIR": str(tmp_path / "reports")}
    ports = [free_port(), free_port()]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    logs = [tmp_path / f"serve-{port}.log" for port in ports] + [tmp_path / "worker.log"]
    procs = [_serve(ports[0], 2, env, logs[0]), _serve(ports[1], 1, env, logs[1])]
    with logs[2].open("wb") as out:
        procs.append(subprocess.Popen([str(VENV_BIN / "delivery-service"), "worker"], env=env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True))
    try:
        for base, proc, log in zip(bases, procs, logs, strict=False):
            _wait_up(base, proc, log)
        for base in bases:
            ready = requests.get(base + "/ready", timeout=10)
            assert ready.status_code == 200, ready.text

        # 1. Racing intakes across both nodes make one order.
        items = []
        for round_ in range(ROUNDS):
            answers = _race(bases, token, keyed=round_ % 2 == 1)
            codes = sorted(code for code, _ in answers)
            assert codes == [200] * (2 * PER_NODE - 1) + [201], (round_, answers)
            assert len({item for _, item in answers}) == 1 and answers[0][1], (round_, answers)
            items.append(answers[0][1])
            if round_ % 2 == 1:  # more events, on the other node, while the webhook runs are under way
                resp = requests.post(f"{bases[round_ % 2]}/api/v1/orders/{items[-2]}/events", timeout=10,
                                     json={"status": "cancelled"}, headers={"Authorization": f"Bearer {token}"})
                assert resp.status_code == 201, resp.text
            time.sleep(0.6)  # spread over several webhook runs of the worker
        assert len(set(items)) == ROUNDS

        # 2. A log-in on node A is valid on node B (signed cookies, one SECRET_KEY).
        session = requests.Session()
        resp = session.post(f"{bases[0]}/login", allow_redirects=False, timeout=10, data={
            "username": "counter", "password": DEMO_PASSWORD, "csrf_token": _csrf(session, f"{bases[0]}/login")})
        assert resp.status_code == 303 and resp.headers["Location"] == "/counter", resp.status_code
        assert requests.get(f"{bases[1]}/counter", allow_redirects=False, timeout=10).status_code != 200
        on_b = session.get(f"{bases[1]}/counter", allow_redirects=False, timeout=10)
        assert on_b.status_code == 200 and "counter" in on_b.text.lower(), on_b.status_code
        # A form rendered by node B posts on node A (the CSRF token is in the signed session too).
        assert session.post(f"{bases[0]}/logout", data={"csrf_token": _csrf(session, f"{bases[1]}/counter")},
                            allow_redirects=False, timeout=10).status_code in (302, 303)
        assert session.get(f"{bases[1]}/counter", allow_redirects=False, timeout=10).status_code != 200

        # 3. The limits are one allowance for both nodes (counted in the shared Redis): log-in failures
        # of one address, then tracking look-ups of one citizen, alternating between the nodes.
        guesser = requests.Session()
        login_csrf = _csrf(guesser, f"{bases[1]}/login")
        failures = [guesser.post(f"{bases[i % 2]}/login", allow_redirects=False, timeout=10,
                                 headers={"Connection": "close", "X-Forwarded-For": "203.0.113.9"},
                                 data={"username": "courier", "password": "wrong", "csrf_token": login_csrf}
                                 ).status_code for i in range(12)]
        assert failures == [401] * 10 + [429] * 2, failures
        tracker = requests.Session()
        csrf = _csrf(tracker, f"{bases[0]}/t")

        def look_up(node: int, citizen: str) -> int:  # through the load balancer, which appends the address
            return tracker.post(f"{bases[node]}/t", data={"code": UNKNOWN, "phone_last4": "0000", "csrf_token": csrf},
                                headers={"Connection": "close", "X-Forwarded-For": citizen}, timeout=10).status_code

        codes = [look_up(i % 2, "203.0.113.7") for i in range(14)]
        assert codes == [200] * 10 + [429] * 4, codes
        assert [look_up(1, "203.0.113.8"), look_up(0, "203.0.113.8")] == [200, 200]  # another citizen
        from redis import Redis

        conn = Redis.from_url(redis_server.url)
        assert conn.keys("LIMITS*"), "the limits are counted in Redis"
        conn.close()

        # 4. Every event of those orders arrives once, though both nodes and the worker run jobs.
        with app.app_context():
            owed = set(db.session.scalars(sa.text("SELECT id FROM order_events")).all())
            db.session.remove()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and {e["event_id"] for e in receiver.events()} != owed:
            time.sleep(0.2)
        time.sleep(3)  # anything sent twice would arrive meanwhile
        received = collections.Counter(e["event_id"] for e in receiver.events())
        assert set(received) == owed, (sorted(owed - set(received)), sorted(set(received) - owed))
        assert max(received.values()) == 1, [e for e, n in received.items() if n > 1]

        # 5. The shared Redis stops: the service is unfit (/ready), but each node still serves, and its
        # load balancer's health check (/ready?scope=node) keeps it in: nodes are not all taken out.
        redis_server.stop()
        for base in bases:
            whole = requests.get(base + "/ready", timeout=10)
            assert whole.status_code == 503 and whole.json()["reasons"] == ["redis unreachable"], whole.text
            mine = requests.get(base + "/ready?scope=node", timeout=10)
            assert mine.status_code == 200 and mine.json()["warnings"] == ["redis unreachable"], mine.text
            resp = requests.post(f"{base}/api/v1/orders", json=order_payload(), timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})
            assert resp.status_code == 201, resp.text
        print(f"\ntwo nodes + worker: {ROUNDS} races of {2 * PER_NODE} intakes -> {ROUNDS} orders; "  # noqa: T201
              f"log-in {failures.count(401)} failures before 429; tracking {codes.count(200)} answered, {codes.count(429)} refused; {len(owed)} events "
              f"delivered in {len(receiver.requests)} webhook requests, none twice; Redis stopped: /ready 503, "
              f"/ready?scope=node 200 and intake 201 on both nodes; "
              f"{time.monotonic() - started:.1f} s")
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc, log in zip(procs, logs, strict=True):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            print(f"--- {log.name}\n{log.read_text()[-1500:]}")  # noqa: T201
        receiver.close()
        with app.app_context():
            db.engine.dispose()
