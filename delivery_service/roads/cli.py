"""The ``delivery-service roads`` commands: build the road graph, say which one is loaded."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import with_appcontext


@click.group()
def roads() -> None:
    """Road distances: the graph built from an OpenStreetMap extract (docs/routing.md)."""


@roads.command("build")
@click.argument("pbf", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def build(pbf: Path) -> None:
    """Build the road graph from an OpenStreetMap extract (FILE.osm.pbf) into ROADS_DIR."""
    from delivery_service import roads as service

    click.echo(f"building the road graph of {pbf.name} into {service.roads_dir()} ...")
    try:
        info = service.build(pbf)
    except service.RoadsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(_describe(info))
    click.echo("the service uses it from its next matrix (no restart needed)")


@roads.command("status")
@with_appcontext
def status() -> None:
    """Which road graph is there, its bounds, and whether it loads."""
    from delivery_service import roads as service

    state = service.status()
    info = state["info"]
    if info is None:
        click.echo(f"no road graph in {state['dir']}: distances are straight lines × "
                   "ROADS_DETOUR_FACTOR (build one with `delivery-service roads build FILE.osm.pbf`)")
        return
    click.echo(f"{state['dir']}")
    click.echo(_describe(info))
    click.echo("loaded" if state["loaded"] else "NOT loadable in this process (see the log)")


def _describe(info: object) -> str:
    from delivery_service.roads.engine import GraphInfo

    assert isinstance(info, GraphInfo)
    south, west, north, east = info.bounds
    return (f"graph of {info.source} ({info.source_bytes:,} bytes, {info.roads:,} roads), "
            f"built {info.built_at} in {info.build_s:.1f} s with {info.engine}\n"
            f"bounds: {south:.5f},{west:.5f} – {north:.5f},{east:.5f} (lat,lon south-west – north-east)")
