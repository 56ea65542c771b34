"""``delivery-service privacy``: erase personal data past the retention period now."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group()
def privacy() -> None:
    """Personal data (docs/privacy.md)."""


@privacy.command("erase")
@click.option("--dry-run", is_flag=True, help="Count what would be erased; change nothing.")
@with_appcontext
def erase_command(dry_run: bool) -> None:
    """Erase the personal data of orders closed longer ago than PERSONAL_DATA_RETENTION_DAYS (the
    daily job does this too; safe to repeat and to run beside it). Prints the counts."""
    from flask import current_app

    from delivery_service.privacy.erasure import erase_due

    counts = erase_due(dry_run=dry_run)
    days = current_app.config["PERSONAL_DATA_RETENTION_DAYS"]
    verb = "would be erased" if dry_run else "erased"
    click.echo(f"closed more than {days} days ago, {verb}: {counts.orders} orders, "
               f"{counts.proof_files} photos and signatures, {counts.events_redacted} event notes or "
               f"positions, {counts.print_files} label batch files, {counts.import_files} import files")
