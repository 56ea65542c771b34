"""The ``delivery-service routes`` commands."""

from __future__ import annotations

import datetime as dt

import click
from flask.cli import with_appcontext


@click.group()
def routes() -> None:
    """Postal routes: assignment of waiting orders, runs."""


@routes.command("assign")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Run day (default: each order's own).")
@with_appcontext
def assign(day: dt.datetime | None) -> None:
    """Place every order still waiting for a route (after coverage or capacity changed)."""
    from delivery_service.accounts.services import SYSTEM
    from delivery_service.routing.services import assign_pending

    counts = assign_pending(SYSTEM, day.date() if day else None)
    total = sum(counts.values())
    click.echo(f"{total} orders looked at: " + (", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
                                                or "none waiting"))


@routes.command("sequence")
@click.argument("code")
@click.option("--date", "day", type=click.DateTime(["%Y-%m-%d"]), help="Run day (default: today).")
@with_appcontext
def sequence(code: str, day: dt.datetime | None) -> None:
    """Sequence a route's run for a day and print its stops."""
    from delivery_service.accounts.services import SYSTEM
    from delivery_service.errors import DomainError
    from delivery_service.orders.services import local_today
    from delivery_service.routing.services import get_run, sequence_run

    run_day = day.date() if day else local_today()
    try:
        run = sequence_run(SYSTEM, code, run_day)
    except DomainError as exc:
        raise click.ClickException(str(exc)) from None
    view = get_run(SYSTEM, code, run_day)
    click.echo(f"{view.route.code} {run_day.isoformat()}: {run.stops} stops, {run.orders} orders, "
               f"{run.total_m / 1000:.1f} km")
    for stop in view.stops:  # item ids and distances only: names and addresses are personal data
        ids = " ".join(o.item_id for o in stop["orders"])
        mark = " (estimated position)" if stop["estimated"] else ""
        click.echo(f"{stop['number']:>4}  {stop['leg_m'] / 1000:6.2f} km  {ids}{mark}")
