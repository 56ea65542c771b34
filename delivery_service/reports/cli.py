"""``delivery-service reports``: fold the event log, rebuild the unit map, weekly reports."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group()
def reports() -> None:
    """Report figures and the weekly reports."""


@reports.command("fold")
@with_appcontext
def fold_command() -> None:
    """Fold every committed event not yet in the figures."""
    from delivery_service.reports.fold import fold, pending

    n = fold()
    cursor, last = pending()
    click.echo(f"folded {n} events; cursor {cursor}, last event {last}")


@reports.command("units")
@with_appcontext
def units_command() -> None:
    """Rebuild where each commune counts in reports (after importing units)."""
    from delivery_service.reports.units import rebuild_unit_map

    click.echo(f"{rebuild_unit_map()} communes mapped")
