"""Road distances (delivery_service.roads): the graph built from the test town (tests/data/roads, written
by scripts/make_test_roads.py: a grid cut by a river that one bridge crosses at its western end, and a
one-way street), the fallback to straight lines, the CLI, and runs and day plans measured on roads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import login
from flask import Flask
from web_helpers import make_order

from delivery_service import roads
from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor
from delivery_service.extensions import db
from delivery_service.geo.models import LocationSource, OrderLocation
from delivery_service.geo.services import locations_for
from delivery_service.orders.services import local_today
from delivery_service.orgs.models import PostalRoute
from delivery_service.roads.cli import roads as roads_cli
from delivery_service.roads.engine import Graph, RoadsError, build_graph
from delivery_service.routing import plan as planning
from delivery_service.routing import services
from routes.distance import geodesic_m, haversine_matrix

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "roads"
sys.path.insert(0, str(ROOT / "scripts"))
import make_test_roads as town  # noqa: E402

ROWS = 8  # the committed town: 10 columns, 8 rows, the river between rows 3 and 4, bridge at column 0


def at(row: float, col: float) -> tuple[float, float]:
    return town.point(row, col, ROWS)


@pytest.fixture(scope="session")
def roads_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test town's graph, built once per session (about a second)."""
    directory = tmp_path_factory.mktemp("roads")
    build_graph(DATA / "town.osm.pbf", directory)
    return directory


@pytest.fixture
def bare(roads_dir: Path):
    """A bare Flask app with the road settings only: no database needed for matrices."""
    app = Flask(__name__)
    app.config.update(ROADS_DIR=str(roads_dir), ROADS_DETOUR_FACTOR=1.3, ROADS_SNAP_M=500.0)
    with app.app_context():
        yield app


def test_the_committed_town_is_what_the_script_writes():
    assert (DATA / "town.osm").read_text(encoding="utf-8") == town.town_xml()
    assert (DATA / "town.osm.pbf").stat().st_size > 0


def test_across_the_river_the_road_goes_by_the_only_bridge(bare):
    south, north = at(3, 9), at(4, 9)  # facing each other across the river, at the eastern end
    found = roads.matrix([south, north])
    straight = geodesic_m(south, north)
    assert found.source == roads.ROAD
    assert 140 < straight < 160
    # 9 blocks west to the bridge, across, 9 blocks back east: about 2 km
    assert found.distances[0, 1] > 10 * straight and found.distances[1, 0] > 10 * straight
    assert found.distances[0, 1] > 2 * 9 * 100
    assert found.durations[0, 1] > 0
    # on the same bank, the road is the straight line
    same_bank = roads.matrix([at(3, 2), at(3, 7)])
    assert same_bank.distances[0, 1] == pytest.approx(geodesic_m(at(3, 2), at(3, 7)), rel=0.02)


def test_the_one_way_street_makes_the_two_directions_differ(bare):
    west, east = at(7, 2.5), at(7, 6.5)  # on the northernmost street, one-way eastbound
    found = roads.matrix([west, east])
    with_the_flow, against = found.distances[0, 1], found.distances[1, 0]
    assert with_the_flow == pytest.approx(geodesic_m(west, east), rel=0.02)
    assert against > with_the_flow + 150  # round the block by the street south of it
    assert found.durations[1, 0] > found.durations[0, 1]


def test_a_point_off_the_graph_falls_back_to_straight_lines_and_says_so(bare):
    points = [at(3, 9), (15.5, 108.5)]  # the second is 50 km away
    found = roads.matrix(points)
    assert found.source == roads.STRAIGHT_LINE
    expected = haversine_matrix(points) * 1.3
    np.testing.assert_allclose(found.distances, expected)
    np.testing.assert_allclose(found.durations, expected / (25 / 3.6))  # PLAN_SPEED_KMH's default
    # 700 m south of the town's southernmost street: beyond ROADS_SNAP_M
    assert roads.matrix([at(3, 9), (town.LAT0 - 0.0063, town.LON0 + 0.005)]).source == roads.STRAIGHT_LINE
    # 300 m south of it: snapped to that street
    assert roads.matrix([at(3, 9), (town.LAT0 - 0.0027, town.LON0 + 0.005)]).source == roads.ROAD
    assert roads.covers([at(3, 9), at(4, 0)]) and not roads.covers([at(3, 9), (15.5, 108.5)])


def test_without_a_graph_every_matrix_is_a_straight_line(bare, tmp_path):
    bare.config["ROADS_DIR"] = str(tmp_path / "none")
    found = roads.matrix([at(3, 9), at(4, 9)])
    assert found.source == roads.STRAIGHT_LINE
    assert roads.status()["info"] is None and roads.matrix([]).distances.shape == (0, 0)


def test_the_cli_builds_a_graph_and_says_what_is_loaded(tmp_path):
    from delivery_service.cli import main

    assert main.commands["roads"] is roads_cli
    app = Flask(__name__)
    app.config.update(ROADS_DIR=str(tmp_path / "roads"), ROADS_DETOUR_FACTOR=1.3, ROADS_SNAP_M=500.0)
    runner = app.test_cli_runner()
    empty = runner.invoke(roads_cli, ["status"])
    assert empty.exit_code == 0 and "no road graph" in empty.output
    built = runner.invoke(roads_cli, ["build", str(DATA / "town.osm.pbf")])
    assert built.exit_code == 0, built.output
    assert "town.osm.pbf" in built.output and "29 roads" in built.output
    shown = runner.invoke(roads_cli, ["status"])
    assert shown.exit_code == 0 and "loaded" in shown.output
    assert "15.12000,108.79900" in shown.output  # the extract's bounds
    bad = runner.invoke(roads_cli, ["build", str(DATA / "town.osm")])  # XML: the engine reads PBF
    assert bad.exit_code != 0 and "PBF" in bad.output
    with app.app_context():  # a rebuild replaces the graph; this process switches to it
        first = roads.loaded_graph()
        assert runner.invoke(roads_cli, ["build", str(DATA / "town.osm.pbf")]).exit_code == 0
        assert roads.loaded_graph() is not first and roads.matrix([at(3, 9), at(4, 9)]).source == roads.ROAD


def test_a_file_without_roads_is_refused(tmp_path):
    xml = tmp_path / "empty.osm"
    xml.write_text('<?xml version="1.0"?>\n<osm version="0.6"><node id="1" version="1" lat="15.1" lon="108.8"/>'
                   "</osm>\n", encoding="utf-8")
    import osmium

    pbf = tmp_path / "empty.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)
    with pytest.raises(RoadsError, match="no roads"):
        build_graph(pbf, tmp_path / "roads")
    assert not (tmp_path / "roads" / "graph").exists()


def test_the_engine_reads_a_graph_moved_elsewhere(roads_dir, tmp_path):
    import shutil

    moved = tmp_path / "moved"
    shutil.copytree(roads_dir / "graph", moved)
    distances, _ = Graph(moved).matrix([at(3, 9), at(4, 9)], 500)
    assert distances[0, 1] > 1500


def _place(order_id: int, point: tuple[float, float]) -> None:
    db.session.execute(sa.update(OrderLocation).where(OrderLocation.order_id == order_id).values(
        latitude=point[0], longitude=point[1], source=LocationSource.MANUAL, precision_m=10))


def test_a_run_and_the_day_plan_are_measured_on_roads_where_the_graph_covers_them(app, client, roads_dir):
    app.config["ROADS_DIR"] = str(roads_dir)
    today = local_today()
    route = db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == "QNG-01"))
    office = route.post_office
    kept = (office.latitude, office.longitude)
    places = [at(3, 9), at(4, 9), at(7, 5)]  # both banks at the eastern end, and the north
    made = [make_order(address={"province_code": "51", "commune_code": commune, "detail": detail},
                       dossier_code=f"H55.22-ROAD-{n:03d}", appointment_date=today.isoformat())
            for n, (commune, detail) in enumerate([("21025", "12 Hùng Vương"), ("21025", "3 Quang Trung"),
                                                   ("21028", "45 Phan Đình Phùng")])]
    db.session.commit()
    try:
        office.latitude, office.longitude = at(0, 0.5)  # the post office by the south-western corner
        ids = [o.id for o in made]
        locations_for(ids)
        for order_id, point in zip(ids, places, strict=True):
            _place(order_id, point)
        db.session.commit()
        courier = Actor(label="test", role=Role.ADMIN, user_id=None, post_office_id=None)
        run = services.sequence_run(courier, "QNG-01", today)
        view = services.get_run(courier, "QNG-01", today)
        assert view.distances == roads.ROAD and len(view.stops) == 3
        points = [at(0, 0.5)] + [(s["latitude"], s["longitude"]) for s in view.stops]
        road = roads.matrix(points).distances
        # every leg is the road's, in the direction driven
        for k, stop in enumerate(view.stops, start=1):
            assert stop["leg_m"] == pytest.approx(road[k - 1, k])
        assert run.total_m == pytest.approx(sum(road[k - 1, k] for k in range(1, 4)) + road[3, 0])
        geodesic_total = sum(geodesic_m(points[k - 1], points[k]) for k in range(1, 4)) + geodesic_m(points[3], points[0])
        assert run.total_m > 1.2 * geodesic_total
        login(client, "admin")
        page = client.get(f"/routes/QNG-01/run?date={today.isoformat()}").get_data(as_text=True)
        assert "Khoảng cách theo đường bộ" in page
        assert client.get(f"/api/v1/routes/QNG-01/run?date={today.isoformat()}").json["distances"] == "road"

        day = planning.build_plan(Actor(label="t", role=Role.ADMIN, user_id=None, post_office_id=None),
                                  office.id, today, seconds=0.2)
        assert day.distances == roads.ROAD
        shown = client.get(f"/routing/plan/{office.id}/{today.isoformat()}").get_data(as_text=True)
        assert "Khoảng cách theo đường bộ." in shown

        # without a graph covering them: straight lines, said so
        app.config["ROADS_DIR"] = str(roads_dir / "elsewhere")
        services.sequence_run(courier, "QNG-01", today)
        again = services.get_run(courier, "QNG-01", today)
        assert again.distances == roads.STRAIGHT_LINE
        assert again.stops[0]["leg_m"] == pytest.approx(geodesic_m(at(0, 0.5), (again.stops[0]["latitude"],
                                                                                again.stops[0]["longitude"])))
        assert "Khoảng cách theo đường thẳng" in client.get(f"/routes/QNG-01/run?date={today.isoformat()}").get_data(
            as_text=True)
        assert "Đường thẳng × 1,3 (bản đồ đường" in client.get(
            f"/routing/plan/{office.id}/{today.isoformat()}").get_data(as_text=True)
    finally:
        db.session.rollback()
        office = db.session.get(type(office), office.id)
        office.latitude, office.longitude = kept
        db.session.commit()
