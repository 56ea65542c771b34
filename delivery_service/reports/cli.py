"""``delivery-service reports``: fold the event log, rebuild the unit map, weekly reports."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group()
def reports() -> None:
    """Report figures and the weekly reports."""


@reports.command("fold")
@click.option("--from-scratch", is_flag=True, help="Empty the figures and fold the whole event log again "
              "(after an upgrade that changes what an event counts for: see docs/operations.md).")
@with_appcontext
def fold_command(from_scratch: bool) -> None:
    """Fold every committed event not yet in the figures."""
    from delivery_service.reports.fold import fold, pending, refold

    n = refold() if from_scratch else fold()
    cursor, last = pending()
    click.echo(f"folded {n} events; cursor {cursor}, last event {last}")


@reports.command("units")
@with_appcontext
def units_command() -> None:
    """Rebuild where each commune counts in reports (after importing units)."""
    from delivery_service.reports.units import rebuild_unit_map

    click.echo(f"{rebuild_unit_map()} communes mapped")


@reports.command("weekly")
@click.option("--week", metavar="YYYY-MM-DD", help="Any day of the week to build (Monday to Sunday); "
              "default: the last full week.")
@click.option("--scope", metavar="SCOPE", help="all, province:ID, district:ID or area:ID; default: every "
              "province and former district with figures that week, every reporting area, and all.")
@with_appcontext
def weekly_command(week: str | None, scope: str | None) -> None:
    """Build the weekly PDF reports now (replacing that week's) and list what was stored."""
    import datetime as dt

    from delivery_service.errors import DomainError
    from delivery_service.reports.weekly import Scope, build_scopes, last_full_week, local_today, week_of

    try:
        start, end = week_of(dt.date.fromisoformat(week)) if week else last_full_week(local_today())
    except ValueError:
        raise click.BadParameter("must be a date, YYYY-MM-DD", param_hint="--week") from None
    try:
        built = build_scopes(start, end, scopes=[Scope.parse(scope)] if scope else None)
    except DomainError as exc:
        messages = getattr(exc, "errors", {}).get("scope") or [exc.message]
        raise click.ClickException(" ".join(messages)) from None
    for report in built:
        click.echo(f"{report.scope:<16} {report.size_bytes:>8} bytes  {report.file_name}  {report.title}")
    click.echo(f"{len(built)} weekly reports stored for {start.isoformat()}..{end.isoformat()}")


@reports.command("schedule")
@with_appcontext
def schedule_command() -> None:
    """Schedule the next weekly run on rq (REPORT_WEEKLY_SCHEDULE); harmless to repeat."""
    from delivery_service.errors import Conflict
    from delivery_service.reports.jobs import schedule_next

    try:
        done = schedule_next()
    except Conflict as exc:
        raise click.ClickException(exc.message) from None
    state = "scheduled" if done.created else "already scheduled"
    click.echo(f"weekly reports {state}: {done.run_at.strftime('%Y-%m-%d %H:%M %Z')} (job {done.job_id}), "
               f"covering {done.week[0].isoformat()}..{done.week[1].isoformat()}")
