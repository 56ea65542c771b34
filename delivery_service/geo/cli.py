"""The ``delivery-service geo`` commands."""

from __future__ import annotations

import click
from flask.cli import with_appcontext


@click.group()
def geo() -> None:
    """Geocoding: positions of orders' delivery addresses."""


@geo.command("locate")
@click.option("--missing", "which", flag_value="missing", default=True,
              help="Orders with no location yet (the default).")
@click.option("--coarse", "which", flag_value="coarse",
              help="Orders with no location or only a commune or province centroid.")
@click.option("--all", "which", flag_value="all", help="Every order (a manually set location is kept).")
@with_appcontext
def locate(which: str) -> None:
    """Locate orders: as rq jobs with REDIS_URL set, otherwise here (asking the geocoding server if any)."""
    from flask import current_app

    from delivery_service.extensions import db
    from delivery_service.geo.services import (
        BATCH,
        count_by_source,
        locate_orders,
        orders_to_locate,
        queue_locations,
    )

    ids = orders_to_locate(which)
    if current_app.extensions.get("rq_queue") is not None:
        queued = queue_locations(ids)
        db.session.commit()  # the jobs are enqueued after this commit
        click.echo(f"{len(ids)} orders ({which}): queued for the worker in {queued} jobs")
        return
    for start in range(0, len(ids), BATCH):
        locate_orders(ids[start:start + BATCH])
        db.session.commit()  # a batch at a time: an interrupted run keeps what it found
    counts = count_by_source()
    summary = ", ".join(f"{n} {source}" for source, n in sorted(counts.items())) or "none"
    click.echo(f"{len(ids)} orders ({which}) located; locations by source: {summary}")
