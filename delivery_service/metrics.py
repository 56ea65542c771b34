"""Prometheus metrics at ``/metrics``, and the one-line hooks the services call.

Under gunicorn every worker is a process of its own: ``delivery-service serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory) before the workers start, each worker writes its
counters and histograms there, and a scrape of any worker sums them (prometheus-client's multiprocess
mode). prometheus_client is imported lazily, on the first hook or scrape, because it chooses its
storage when it is imported: after ``serve`` has set the directory.

What the database holds (jobs owed and failed, webhook backlogs) is read at scrape time, so it is
one figure for the whole service whichever worker answers. Labels are bounded (endpoint names,
formats, states): never an item id, a path or anything about a citizen.
"""

from __future__ import annotations

import hmac
import logging
import os
from functools import cache
from typing import Any

from flask import Flask, Response, abort, current_app, request

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)
_DATABASE_OK = (b"# HELP delivery_metrics_database_ok Whether this scrape could read the database.\n"
                b"# TYPE delivery_metrics_database_ok gauge\ndelivery_metrics_database_ok")
_LOOPBACK = ("127.0.0.1", "::1")


@cache
def _m() -> Any:
    """The process's metric objects, made on first use (see the module docstring)."""
    from types import SimpleNamespace

    from prometheus_client import Counter, Histogram

    return SimpleNamespace(
        request_latency=Histogram(
            "delivery_http_request_duration_seconds", "Time to answer a request, by Flask endpoint.",
            ["endpoint", "method", "status"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)),
        orders_created=Counter("delivery_orders_created_total", "Orders created (new, not retries).",
                               ["channel"]),
        courier_events=Counter("delivery_courier_events_applied_total",
                               "Courier app events applied, by the status they led to.", ["status"]),
        label_renders=Counter("delivery_label_renders_total", "Labels rendered, by format.", ["format"]),
        job_failures=Counter("delivery_job_failures_total", "Background jobs that raised, by queue.",
                             ["queue"]),
    )


# --- hooks (one line each where they are called) -----------------------------------------------------

def order_created(channel: str = "single", count: int = 1) -> None:
    """``count`` new orders were committed (``channel``: single, import)."""
    if count:
        _m().orders_created.labels(channel).inc(count)


def courier_event_applied(status: str, count: int = 1) -> None:
    """``count`` courier events were applied and committed, leading to ``status``."""
    _m().courier_events.labels(status).inc(count)


def labels_rendered(fmt: str, count: int = 1) -> None:
    """``count`` labels were rendered in ``fmt`` (pdf, zpl)."""
    _m().label_renders.labels(fmt).inc(count)


def job_failed(queue: str) -> None:
    """A background job raised."""
    _m().job_failures.labels(queue).inc()


# --- the app side -----------------------------------------------------------------------------------

def init_app(app: Flask) -> None:
    """Serve ``/metrics``. Every request is timed by the request's bracket in logs.init_app (one
    clock for the access line and the histogram), through ``request_observer``."""
    app.add_url_rule("/metrics", "metrics", scrape)


def request_observer() -> Any:
    """``observe(endpoint, method, status_code, seconds)``: one request's time into
    delivery_http_request_duration_seconds (status as its class, "2xx")."""
    timers: dict[tuple[str, str, int], Any] = {}  # the histogram's child per label values, as it keeps them

    def observe(endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status // 100)
        timer = timers.get(key)
        if timer is None:
            timer = timers[key] = _m().request_latency.labels(endpoint, method, f"{key[2]}xx")
        timer.observe(seconds)

    return observe


def _allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    # The TCP peer, not X-Forwarded-For: behind a proxy on this machine every client looks local,
    # so a proxied deployment sets METRICS_TOKEN (ProxyFix keeps the peer in REMOTE_ADDR's original).
    peer = request.environ.get("werkzeug.proxy_fix.orig", {}).get("REMOTE_ADDR", request.remote_addr)
    return peer in _LOOPBACK and not request.headers.get("X-Forwarded-For")


def scrape() -> Response:
    """Every metric in Prometheus's text format: loopback or the bearer token only."""
    if not _allowed():
        abort(404)  # say nothing about what is here
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

    _m()
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(DatabaseCollector())
    try:
        body += generate_latest(database) + _DATABASE_OK + b" 1.0\n"
    except Exception:  # the database down: the process metrics still answer, and say so
        log.exception("metrics: reading the database failed")
        from delivery_service.extensions import db

        db.session.rollback()
        body += _DATABASE_OK + b" 0.0\n"
    return Response(body, mimetype=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def serve_worker_metrics(host: str, port: int) -> None:
    """The rq worker's metrics, summed over its job processes, from a thread of the worker (the
    multiprocess directory is set by the caller first). What the database holds is left to the web
    nodes' scrape, so that the two never count it twice."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    _m()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)


class DatabaseCollector:
    """Jobs and webhooks as the database has them now (read at each scrape)."""

    def collect(self) -> Any:
        import sqlalchemy as sa
        from prometheus_client.core import GaugeMetricFamily

        from delivery_service.db import utcnow
        from delivery_service.extensions import db
        from delivery_service.outbox import T as jobs
        from delivery_service.webhooks import services as webhooks
        from delivery_service.webhooks.models import WebhookDelivery, WebhookEndpoint

        rows = GaugeMetricFamily("delivery_jobs", "Job outbox rows by state and queue.",
                                 labels=["state", "queue"])
        for state, queue, count in db.session.execute(
                sa.select(jobs.c.state, jobs.c.queue, sa.func.count()).group_by(jobs.c.state, jobs.c.queue)):
            rows.add_metric([state, queue], count)
        yield rows
        now = utcnow()
        oldest = db.session.scalar(sa.select(sa.func.min(jobs.c.due_at)).where(
            jobs.c.state.in_(("pending", "handed")), jobs.c.due_at <= now))
        age = GaugeMetricFamily("delivery_jobs_oldest_due_seconds", "Age of the oldest job owed and due.")
        if oldest is not None and oldest.tzinfo is None:
            oldest = oldest.replace(tzinfo=now.tzinfo)
        age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield age

        backlog = GaugeMetricFamily("delivery_webhook_backlog_events", "Order events owed to a webhook.",
                                    labels=["client_id"])
        failing = GaugeMetricFamily("delivery_webhook_consecutive_failures",
                                    "Failed deliveries in a row of a webhook.", labels=["client_id"])
        for endpoint in db.session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)):
            client = str(endpoint.api_client_id)
            backlog.add_metric([client], webhooks._backlog(endpoint, endpoint.api_client.counter_id))
            failing.add_metric([client], endpoint.consecutive_failures)
        yield backlog
        yield failing
        failed = GaugeMetricFamily("delivery_webhook_failed_deliveries",
                                   "Webhook deliveries that failed (kept in the delivery log).")
        failed.add_metric([], db.session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery).where(
            sa.or_(WebhookDelivery.error.is_not(None), WebhookDelivery.status_code.is_(None),
                   WebhookDelivery.status_code >= 300))) or 0)
        yield failed
        db.session.rollback()  # a read: end the transaction, do not hold a snapshot
