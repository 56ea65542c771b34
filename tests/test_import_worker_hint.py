"""An import waiting for a worker that is not running says so at once, as a label batch does
(tests/test_print_worker_hint.py): on its page and in the API's import status, when Redis does not
answer or no live worker listens to its queue; never without Redis. A real Redis; no worker started."""

from __future__ import annotations

import io

from conftest import login, order_payload
from test_faults_printing_imports import csv_of, flat
from test_print_worker_hint import _app, _close, queued_app  # noqa: F401 (a fixture)

HINT_VI = "Chưa có tiến trình nhập tệp nào đang chạy: báo cho quản trị viên."
HINT_EN = "No import worker is running: tell the administrator."


def _upload(client, auth) -> dict:  # noqa: ANN001
    content = csv_of([flat(order_payload()) for _ in range(2)])
    resp = client.post("/api/v1/imports", data={"file": (io.BytesIO(content), "lo.csv")}, headers=auth,
                       content_type="multipart/form-data")
    assert resp.status_code == 202, resp.json
    return resp.json


def test_an_import_no_worker_takes_says_so_at_once(queued_app, auth):  # noqa: F811
    client = queued_app.test_client()
    started = _upload(client, auth)
    assert started["state"] == "pending" and (started["no_worker"], started["notice"]) == (True, HINT_EN)
    status = client.get(f"/api/v1/imports/{started['id']}", headers=auth).json
    assert (status["no_worker"], status["notice"]) == (True, HINT_EN)
    login(client, "counter")
    page = client.get(f"/counter/imports/{started['id']}").get_data(as_text=True)
    assert HINT_VI in page and "Đang nhập tệp" not in page and '<meta http-equiv="refresh"' in page


def test_an_import_says_so_when_redis_does_not_answer(app, auth, tmp_path):
    closed = _app(app, tmp_path, REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    try:
        client = closed.test_client()
        started = _upload(client, auth)
        assert started["no_worker"] is True
        login(client, "counter")
        assert HINT_VI in client.get(f"/counter/imports/{started['id']}").get_data(as_text=True)
    finally:
        _close(closed)


def test_without_redis_an_import_says_nothing_of_workers(app, client, auth):
    started = _upload(client, auth)  # the web process runs it
    status = client.get(f"/api/v1/imports/{started['id']}", headers=auth).json
    assert (status["no_worker"], status["notice"]) == (False, None)
    login(client, "counter")
    page = client.get(f"/counter/imports/{started['id']}").get_data(as_text=True)
    assert HINT_VI not in page and 'id="no-worker"' not in page
