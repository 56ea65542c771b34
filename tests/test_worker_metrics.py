"""The rq worker's own metrics (issue 14, point 3): a real ``delivery-service worker --metrics-port``
on a private Redis runs each job in a forked job process; its /metrics sums what those processes
counted (label renders, job failures), and the web nodes' /metrics keeps what the database holds."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path

from flask import Flask
from redis_server import redis_server  # noqa: F401 (the fixture)
from test_faults_jobs import CLI, TESTS, fault_app, figures, wait_for  # noqa: F401 (fixtures)
from test_metrics import _value

from delivery_service import jobs, metrics
from delivery_service.extensions import db


def render_three() -> None:
    """A job: what a label batch's job process counts."""
    metrics.labels_rendered("zpl", 3)


def fail() -> None:
    raise RuntimeError("a job that fails")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_the_worker_serves_the_sum_of_its_job_processes_metrics(fault_app: Flask, tmp_path: Path):  # noqa: F811
    port = _free_port()
    dirs_before = set(Path(tempfile.gettempdir()).glob("delivery-service-worker-metrics-*"))
    env = {**os.environ, "DATABASE_URL": fault_app.config["DATABASE_URL"], "REDIS_URL": fault_app.config["REDIS_URL"],
           "RQ_QUEUE": fault_app.config["RQ_QUEUE"], "SECRET_KEY": "test-secret", "JOBS_POLL_S": "0.2",
           "JOBS_MAX_ATTEMPTS": "1", "PYTHONPATH": str(TESTS)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen([str(CLI), "worker", "--metrics-port", str(port)], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: _up(port), 30, "the worker's metrics endpoint")
        with fault_app.app_context():
            for _ in range(2):
                jobs.enqueue_after_commit("test_worker_metrics:render_three")
            jobs.enqueue_after_commit("test_worker_metrics:fail")
            db.session.commit()
        wait_for(lambda: figures(fault_app).get("done", 0) == 2 and figures(fault_app).get("failed", 0) == 1,
                 60, "two jobs done and one failed")
        text = _scrape(port)
        assert _value(text, "delivery_label_renders_total", format="zpl") == 6.0  # two job processes, summed
        assert _value(text, "delivery_job_failures_total") == 1.0
        assert "delivery_jobs{" not in text  # the database's figures are the web nodes' to report
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(20)
        log.close()
    # the worker's private metrics directory is gone with it
    assert set(Path(tempfile.gettempdir()).glob("delivery-service-worker-metrics-*")) <= dirs_before


def _up(port: int) -> bool:
    try:
        _scrape(port)
        return True
    except OSError:
        return False
