"""The ``delivery-service`` command: serve, worker, db, units, geo, roads, demo, users, api-clients."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from delivery_service import create_app
from delivery_service.geo.cli import geo
from delivery_service.privacy.cli import privacy as privacy_cli
from delivery_service.reports.cli import reports as reports_cli
from delivery_service.roads.cli import roads as roads_cli
from delivery_service.routing.cli import routes as routes_cli


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False,
             add_default_commands=True)
def main() -> None:
    """Postal public-utility delivery service (dịch vụ bưu chính công ích)."""


main.add_command(geo)
main.add_command(routes_cli)
main.add_command(roads_cli)
main.add_command(reports_cli)
main.add_command(privacy_cli)


@main.command()
@click.option("--workers", type=int, default=lambda: int(os.environ.get("WEB_CONCURRENCY", "2")),
              show_default="WEB_CONCURRENCY or 2")
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="HOST or 127.0.0.1")
@click.option("--dev", is_flag=True, help="Flask's reloading development server instead of gunicorn.")
def serve(workers: int, host: str, dev: bool) -> None:
    """Serve the app with gunicorn on $PORT (default 5000)."""
    port = int(os.environ.get("PORT", "5000"))
    metrics_dir = _metrics_dir()  # before anything imports prometheus_client
    _keep_development_secret()
    if dev:
        create_app().run(host=host, port=port, debug=True)
        return
    from gunicorn.app.base import BaseApplication

    from delivery_service.api.guards import GUNICORN_REQUEST_LINE

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("post_worker_init", post_worker_init)
            self.cfg.set("child_exit", child_exit)
            self.cfg.set("accesslog", "-")
            # Longer than the app's own limit (api.guards.MAX_URL_LENGTH), which answers in the
            # service's error format: gunicorn's default 4094 answered such requests itself, in HTML.
            self.cfg.set("limit_request_line", GUNICORN_REQUEST_LINE)
            self.cfg.set("access_log_format", '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms %({x-request-id}o)s')
            # gunicorn's control socket (for gunicornc) is one path per user by default: a second
            # serve on the machine took it over, and removed it when it stopped. One per address
            # and port instead, in gunicorn's own directory ($XDG_RUNTIME_DIR or ~/.gunicorn).
            self.cfg.set("control_socket", os.path.join(os.path.dirname(self.cfg.control_socket),
                                                        f"delivery-service-{host}-{port}.ctl"))

        def load(self):  # noqa: ANN202
            return create_app()

    def post_worker_init(worker) -> None:  # noqa: ANN001
        # Each gunicorn worker runs (or, with Redis, relays) background jobs in a thread of its own,
        # from its start: retries and due jobs run with no traffic.
        from delivery_service.jobs import runner

        runner(worker.wsgi)

    def child_exit(server, worker) -> None:  # noqa: ANN001
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, metrics_dir)

    master = os.getpid()
    try:
        Server().run()
    finally:
        if os.getpid() == master:  # a worker's exit unwinds through here too (gunicorn forks in run)
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_dir() -> str:
    """A fresh, empty directory for the workers' metrics (prometheus-client's multiprocess mode): the
    operator's PROMETHEUS_MULTIPROC_DIR emptied, else a new temporary one for this serve."""
    from delivery_service.metrics import MULTIPROC_ENV

    path = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="delivery-service-metrics-")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, exist_ok=True)
    os.environ[MULTIPROC_ENV] = path
    return path


def _keep_development_secret() -> None:
    """Without SECRET_KEY (development), keep one in the instance folder before the workers start, so
    that they share it and log-ins survive a restart (loading the settings alone writes nothing)."""
    from delivery_service import config

    app = create_app()
    if not os.environ.get("SECRET_KEY") and app.config["ENV"] != "production":
        config.keep_instance_secret(app.instance_path)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--simple", is_flag=True,
              help="Run jobs in this process instead of forking per job (for debugging: no heartbeat "
                   "while a job runs, so /ready counts a long job's worker as stopped).")
@click.option("--queues", "queue_set", type=click.Choice(["interactive", "background", "all"]), default="all",
              show_default=True,
              help="The jobs to run: interactive (label batches, imports: people wait for them), "
                   "background (webhooks, geocoding, report folds), or all (interactive first). Run "
                   "one worker per queue so that a long background job never holds up a label batch.")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              default=lambda: int(os.environ.get("WORKER_METRICS_PORT", "0")),
              show_default="WORKER_METRICS_PORT or 0 (off)",
              help="Serve this worker's metrics (its jobs' label renders and failures) at "
                   "http://METRICS_HOST:PORT/metrics for Prometheus.")
@click.option("--metrics-host", default=lambda: os.environ.get("WORKER_METRICS_HOST", "127.0.0.1"),
              show_default="WORKER_METRICS_HOST or 127.0.0.1")
@with_appcontext
def worker(burst: bool, simple: bool, queue_set: str, metrics_port: int, metrics_host: str) -> None:
    """Run an rq worker for the background jobs (needs REDIS_URL); it outlives Redis outages."""
    from delivery_service.jobs import run_worker

    if current_app.extensions.get("rq_queue") is None:
        raise click.ClickException("REDIS_URL is not set: jobs run in-process, no worker is needed.")
    if metrics_port:
        # A directory of its own (never the web nodes'), made before prometheus_client is imported:
        # the job processes forked from this one write there, and the scrape sums them.
        from delivery_service.metrics import MULTIPROC_ENV, serve_worker_metrics

        metrics_dir = tempfile.mkdtemp(prefix="delivery-service-worker-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
        serve_worker_metrics(metrics_host, metrics_port)
        click.echo(f"worker metrics on http://{metrics_host}:{metrics_port}/metrics")
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def schedule_weekly() -> None:  # the weekly reports' chain of scheduled runs starts with a worker
        from delivery_service.reports.jobs import schedule_next

        with app.app_context():
            scheduled = schedule_next()
        click.echo(f"weekly reports: next run {scheduled.run_at.isoformat()} ({scheduled.job_id})")

    queues = ("interactive", "background") if queue_set == "all" else (queue_set,)
    click.echo(f"worker on the {' and '.join(queues)} queue{'s' if len(queues) > 1 else ''}")
    run_worker(app, burst=burst, simple=simple, queues=queues,
               on_connect=None if burst else schedule_weekly)


@main.group()
def units() -> None:
    """Administrative units."""


@units.command("import")
@click.option("--source", type=click.Choice(["all", "2025", "legacy"]), default="all", show_default=True,
              help="2025: 34 provinces and communes (from 1 Jul 2025); legacy: 63 provinces with "
                   "districts (until 30 Jun 2025).")
@click.option("--province", "provinces", multiple=True, help="Only these province codes (repeatable).")
@with_appcontext
def units_import(source: str, provinces: tuple[str, ...]) -> None:
    """Load units from the vietnamadminunits data package (insert or update)."""
    from delivery_service.units.services import import_units

    for src in (("2025", "legacy") if source == "all" else (source,)):
        counts = import_units(src, provinces or None)
        click.echo(f"{src}: {counts['created']} created, {counts['updated']} updated, "
                   f"{counts['unchanged']} unchanged")
    from delivery_service.reports.units import rebuild_unit_map

    click.echo(f"reports: {rebuild_unit_map()} communes mapped to the 2025 structure")


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("load")
@click.option("--password", default="demo-password", show_default=True)
@with_appcontext
def demo_load(password: str) -> None:
    """Counters, post offices, routes and one user of each role in three provinces (idempotent)."""
    from delivery_service.demo.seed import load

    try:
        for line in load(password):
            click.echo(line)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from None


@demo.command("history")
@click.option("--weeks", type=click.IntRange(1, 104), default=8, show_default=True)
@click.option("--per-day", type=click.IntRange(1, 10_000), default=25, show_default=True)
@with_appcontext
def demo_history(weeks: int, per_day: int) -> None:
    """Past orders with their whole history on the demo routes, for the reports (idempotent)."""
    from delivery_service.demo.history import load_history

    for line in load_history(weeks, per_day):
        click.echo(line)


@main.group()
def users() -> None:
    """Staff accounts."""


ROLES = ["counter_staff", "courier", "supervisor", "district_officer", "admin"]


@users.command("create")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--username", required=True)
@click.option("--full-name", required=True)
@click.option("--counter", "counter_code", help="Counter code (counter staff).")
@click.option("--area", "area_code", help="Administrative unit code (district officers); a province's code "
              "makes an admin a province admin.")
@click.option("--office", "office_code", help="Post office code (supervisors).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def users_create(role: str, username: str, full_name: str, counter_code: str | None,
                 area_code: str | None, office_code: str | None, password: str) -> None:
    """Create a staff user."""
    from delivery_service.accounts.models import Role
    from delivery_service.accounts.services import create_user
    from delivery_service.errors import InvalidInput
    from delivery_service.extensions import db

    try:
        user = create_user(username=username, full_name=full_name, password=password, role=Role(role),
                           counter_code=counter_code, area_code=area_code, post_office_code=office_code)
    except InvalidInput as exc:
        for field, msgs in exc.errors.items():
            click.echo(f"{field}: {' '.join(msgs)}", err=True)
        sys.exit(2)
    db.session.commit()
    click.echo(f"created user {user.username} ({user.role.value})")


def _operator() -> Any:
    """Who acts from the command line: a national administrator, audited as ``cli:<OS account>``."""
    import getpass

    from delivery_service.accounts.models import Role, User

    return User(username=f"cli:{getpass.getuser()}", role=Role.ADMIN)


def _user_named(username: str) -> Any:
    import sqlalchemy as sa

    from delivery_service.accounts.models import User
    from delivery_service.extensions import db

    user = db.session.scalar(sa.select(User).where(User.username == username.strip().lower()))
    if user is None:
        click.echo(f"no user {username}", err=True)
        sys.exit(1)
    return user


@users.command("list")
@click.option("--role", type=click.Choice(ROLES))
@with_appcontext
def users_list(role: str | None) -> None:
    """User names, roles and states (no names of people: they stay on the pages)."""
    import sqlalchemy as sa

    from delivery_service.accounts.models import User
    from delivery_service.admin.user_services import is_locked
    from delivery_service.extensions import db

    query = sa.select(User).order_by(User.role, User.username)
    if role:
        query = query.where(User.role == role)
    for user in db.session.scalars(query):
        state = "active" if user.active else "deactivated"
        if user.active and is_locked(user):
            state += ", locked after failed log-ins"
        scope = " province admin" if user.role.value == "admin" and user.area_unit_id else ""
        click.echo(f"{user.username}\t{user.role.value}{scope}\t{state}")


@users.command("reset-password")
@click.argument("username")
@with_appcontext
def users_reset_password(username: str) -> None:
    """Give USERNAME a new temporary password, printed once: they choose their own at the next log-in
    (their sessions end). For an administrator who lost theirs; audited as cli:<your OS account>."""
    from delivery_service.admin.user_services import reset_password
    from delivery_service.extensions import db

    secret = reset_password(_operator(), _user_named(username))
    db.session.commit()
    click.echo(f"temporary password for {username} (shown once; they must change it at the next log-in):")
    click.echo(secret)


@users.command("unlock")
@click.argument("username")
@with_appcontext
def users_unlock(username: str) -> None:
    """Let USERNAME log in again at once after too many failed log-ins."""
    from delivery_service.admin.user_services import unlock
    from delivery_service.extensions import db

    was_locked = unlock(_operator(), _user_named(username))
    db.session.commit()
    click.echo(f"{username} unlocked" if was_locked else f"{username} was not locked")


@main.group()
def counters() -> None:
    """One-stop counters."""


@counters.command("labels")
@click.argument("code")
@click.option("--format", "fmt", type=click.Choice(["pdf", "zpl"]), help="Default label format.")
@click.option("--size", type=click.Choice(["100x150", "100x100", "a6", "a4"]), help="Default label size.")
@click.option("--requires-route/--no-requires-route", default=None,
              help="Print labels only for orders already on a route.")
@click.option("--hotline", help="Complaints hotline printed on its labels and receipts.")
@with_appcontext
def counters_labels(code: str, fmt: str | None, size: str | None, requires_route: bool | None,
                    hotline: str | None) -> None:
    """Show or set how a counter prints its labels."""
    import sqlalchemy as sa

    from delivery_service.extensions import db
    from delivery_service.orgs.models import Counter

    counter = db.session.scalar(sa.select(Counter).where(Counter.code == code.strip().upper()))
    if counter is None:
        raise click.ClickException(f"No counter {code}")
    if fmt:
        counter.label_format = fmt
    if size:
        counter.label_size = size
    if requires_route is not None:
        counter.label_requires_route = requires_route
    if hotline is not None:
        counter.hotline = hotline.strip() or None
    if fmt == "zpl" and counter.label_size == "a4" or size == "a4" and counter.label_format == "zpl":
        raise click.ClickException("ZPL is for label printers: choose 100x150, 100x100 or a6")
    db.session.commit()
    click.echo(f"{counter.code}: {counter.label_format} {counter.label_size}, "
               f"route required: {'yes' if counter.label_requires_route else 'no'}, "
               f"hotline: {counter.hotline or current_app.config['COMPLAINTS_HOTLINE']}")


@main.group("api-clients")
def api_clients() -> None:
    """API clients of counter systems."""


@api_clients.command("create")
@click.option("--counter", "counter_code", required=True)
@click.option("--name", required=True)
@with_appcontext
def api_clients_create(counter_code: str, name: str) -> None:
    """Create a client and print its token once (only its hash is kept)."""
    from delivery_service.accounts.services import create_api_client
    from delivery_service.errors import NotFound
    from delivery_service.extensions import db

    try:
        client, token = create_api_client(counter_code=counter_code, name=name)
    except NotFound as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"API client {client.id} for counter {counter_code}. Token (shown once):", err=True)
    click.echo(token)


@api_clients.command("revoke")
@click.argument("client_id", type=int)
@with_appcontext
def api_clients_revoke(client_id: int) -> None:
    """Revoke a client's token."""
    from delivery_service.accounts.services import revoke_api_client
    from delivery_service.extensions import db

    revoke_api_client(client_id)
    db.session.commit()
    click.echo(f"revoked API client {client_id}")


@api_clients.command("webhook")
@click.argument("client_id", type=int)
@click.option("--url", help="Where to POST the client's counter's status changes (prints a new secret).")
@click.option("--resume", is_flag=True, help="Lift a pause or a back-off and send what is owed now.")
@click.option("--disable", is_flag=True, help="Stop sending (what is owed is kept).")
@with_appcontext
def api_clients_webhook(client_id: int, url: str | None, resume: bool, disable: bool) -> None:
    """Set, resume or disable a client's webhook (docs/webhooks.md)."""
    from delivery_service.errors import InvalidInput, NotFound
    from delivery_service.extensions import db
    from delivery_service.webhooks import services

    if sum((url is not None, resume, disable)) != 1:
        raise click.UsageError("Give one of --url, --resume or --disable.")
    try:
        if url is not None:
            _endpoint, secret = services.set_endpoint(client_id, url)
            db.session.commit()
            click.echo(f"Webhook of API client {client_id} set. Signing secret (shown once):", err=True)
            click.echo(secret)
        elif resume:
            services.resume(client_id)
            db.session.commit()
            click.echo(f"Webhook of API client {client_id} resumed")
        else:
            services.disable(client_id)
            db.session.commit()
            click.echo(f"Webhook of API client {client_id} disabled")
    except NotFound as exc:
        raise click.ClickException(exc.message) from None
    except InvalidInput as exc:
        raise click.ClickException(" ".join(m for msgs in exc.errors.values() for m in msgs)) from None


@main.group()
def webhooks() -> None:
    """Webhooks to counter systems."""


@webhooks.command("dispatch")
@click.option("--all", "retry_now", is_flag=True, help="Also endpoints waiting out a back-off (not paused).")
@click.option("--every", type=int, default=0, help="Repeat every N seconds (a sweep next to the worker).")
@with_appcontext
def webhooks_dispatch(retry_now: bool, every: int) -> None:
    """Send every due endpoint what it is owed; one line per endpoint says what happened.

    Exits with status 1 when a delivery failed (the reason is printed; it is retried on schedule).
    """
    import time

    from delivery_service.webhooks import services

    while True:
        reports = services.dispatch_due(force=retry_now, every_endpoint=True)
        for report in reports:
            click.echo(f"webhook of API client {report.client_id} (endpoint {report.endpoint_id}): "
                       f"{report.describe()}")
        if not reports:
            click.echo("no webhooks are set (api-clients webhook ID --url URL)")
        failed = sum(r.failed for r in reports)
        if every <= 0:
            if failed:
                raise click.ClickException(f"{failed} of {len(reports)} webhook deliveries failed")
            return
        time.sleep(every)


@main.command("backup")
@click.option("--to", "to_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for the archive (default: backups in the instance folder).")
@with_appcontext
def backup_command(to_dir: str | None) -> None:
    """Back up the database and the stored files into one .tar (safe while the service runs).

    Prints the archive's path on the last line (docs/operations.md, Backups).
    """
    from pathlib import Path

    from delivery_service import backup

    folder = Path(to_dir) if to_dir else Path(current_app.instance_path) / "backups"
    try:
        archive, manifest = backup.backup(folder)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    counts = manifest["counts"]
    click.echo(f"{manifest['backend']} database at revision {manifest['schema_revision']}: "
               + ", ".join(f"{v} {k}" for k, v in counts.items()), err=True)
    for missing in manifest["files_missing"]:
        click.echo(f"warning: {missing} is named in the database but was not on disk", err=True)
    click.echo(str(archive))


@main.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="Replace the contents of a database that is not empty.")
@with_appcontext
def restore_command(archive: str, force: bool) -> None:
    """Restore a backup archive into a fresh database (DATABASE_URL) and the file folders."""
    from pathlib import Path

    from delivery_service import backup

    try:
        done = backup.restore(Path(archive), force=force)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"restored the {done.backend} backup of {done.created_at} (schema revision {done.revision})")
    click.echo("database: " + ", ".join(f"{v} {k}" for k, v in done.counts.items()))
    click.echo("files: " + (", ".join(f"{v} {k}" for k, v in done.files.items()) or "none"))
    click.echo("the restore matches the manifest; run `delivery-service db upgrade` if this code is newer")
