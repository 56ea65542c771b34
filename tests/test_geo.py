"""Geocoding: offline centroids, courier-learnt places, a Nominatim/Photon server (a fake on loopback),
the cache, the rq job, and what the run planner gets."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from conftest import order_payload
from fake_geocoder import FakeGeocodingServer
from flask import Flask
from rq import SimpleWorker

from delivery_service import outbox
from delivery_service.accounts.models import User
from delivery_service.accounts.services import Actor
from delivery_service.cli import main
from delivery_service.extensions import db
from delivery_service.geo import hooks, services
from delivery_service.geo.backends import NominatimGeocoder, OfflineGeocoder, make_geocoder
from delivery_service.geo.models import GeocodeCache, GeoCursor, KnownPlace, LocationSource, OrderLocation
from delivery_service.geo.services import (
    address_key,
    distance_m,
    learn_delivery_point,
    learn_delivery_points,
    locate_orders,
    locations_for,
    robust_position,
)
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import change_status
from delivery_service.orders.status import Status
from delivery_service.units.models import AdminUnit, UnitLevel

COMMUNE = "21025"  # Phường Cẩm Thành, Quảng Ngãi (the demo counter's area)
NAME, PHONE = "Nguyễn Thị Hoa", "0905123456"


@pytest.fixture(autouse=True)
def empty_geo_tables(app: Flask) -> None:
    """PostgreSQL keeps tables between tests; the conftest reset only knows the order tables."""
    db.session.execute(sa.delete(KnownPlace))
    db.session.execute(sa.delete(GeocodeCache))
    db.session.commit()


@pytest.fixture
def fake() -> Iterator[FakeGeocodingServer]:
    server = FakeGeocodingServer(places={
        "12 hung vuong": (15.1205, 108.8042, "place", "house"),
        "duong le loi": (15.1190, 108.8000, "highway", "residential"),
        "thon xa lam": (16.9000, 106.0000, "place", "hamlet"),  # a namesake 200 km away
    }).start()
    yield server
    server.stop()


def use_server(app: Flask, fake: FakeGeocodingServer, kind: str = "nominatim", **config: object) -> None:
    """Point the app at the fake server; the geocoder is rebuilt from the config on next use."""
    app.config.update({"GEOCODER": kind, "GEOCODER_URL": fake.url, "GEOCODER_MIN_DELAY_S": 0.01,
                       "GEOCODER_TIMEOUT_S": 2.0, **config})
    app.extensions.pop("geocoder", None)


def new_order(client, auth, detail: str, commune: str = COMMUNE, province: str = "51") -> int:
    resp = client.post("/api/v1/orders", headers=auth, json=order_payload(
        recipient={"name": NAME, "phone": PHONE},
        address={"province_code": province, "commune_code": commune, "detail": detail}))
    assert resp.status_code == 201, resp.json
    db.session.rollback()  # see the request's commit
    return db.session.scalar(sa.select(DeliveryOrder.id).where(DeliveryOrder.item_id == resp.json["item_id"]))


def commune_centre(code: str = COMMUNE) -> tuple[float, float]:
    unit = db.session.scalars(sa.select(AdminUnit).where(
        AdminUnit.level == UnitLevel.COMMUNE, AdminUnit.code == code).order_by(AdminUnit.valid_from.desc())).first()
    assert unit is not None and unit.latitude is not None and unit.longitude is not None
    return unit.latitude, unit.longitude


def stored(order_id: int) -> OrderLocation | None:
    db.session.expire_all()
    return db.session.get(OrderLocation, order_id)


# --- offline ------------------------------------------------------------------------------------

def test_offline_is_the_default_and_places_an_order_at_its_commune_centroid(app, client, auth, monkeypatch):
    import geopy.adapters

    def no_network(*args, **kwargs):
        raise AssertionError("the offline geocoder must not touch the network")

    monkeypatch.setattr(geopy.adapters.URLLibAdapter, "get_json", no_network)
    assert isinstance(services.get_geocoder(), OfflineGeocoder) and not services.get_geocoder().remote
    order_id = new_order(client, auth, "12 Hùng Vương")
    locate_orders([order_id])
    db.session.commit()
    loc = stored(order_id)
    assert loc is not None and loc.source is LocationSource.COMMUNE_CENTROID
    assert (loc.latitude, loc.longitude) == commune_centre()
    assert loc.precision_m == services.MERGED_COMMUNE_CENTROID_PRECISION_M  # a 2025 commune
    assert loc.address_key == f"{COMMUNE}|12 hung vuong" and loc.located_at.tzinfo is not None


def test_address_key_folds_spelling_variants():
    assert address_key("21025", "Thôn  Phú-Lộc") == address_key("21025", "thôn phú lộc") == "21025|thon phu loc"
    assert address_key("21025", "12/3 Đường Lê Lợi") == "21025|12/3 duong le loi"
    assert address_key("21025", "Thôn Phú Lộc") != address_key("21026", "Thôn Phú Lộc")


def test_locate_is_idempotent_and_keeps_a_manual_location(app, client, auth):
    a, b = new_order(client, auth, "Tổ 3"), new_order(client, auth, "Tổ 4")
    locate_orders([a, b, a])
    db.session.commit()
    locate_orders([a, b])
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderLocation)) == 2
    db.session.execute(sa.update(OrderLocation).where(OrderLocation.order_id == a).values(
        latitude=15.0, longitude=108.0, source=LocationSource.MANUAL, precision_m=20))
    db.session.commit()
    locate_orders([a, b])
    db.session.commit()
    manual = stored(a)
    assert manual.source is LocationSource.MANUAL and (manual.latitude, manual.precision_m) == (15.0, 20)


def test_a_batch_costs_a_fixed_number_of_queries_not_one_per_order(app, client, auth):
    ids = [new_order(client, auth, f"Tổ {n}") for n in range(12)]
    learn_delivery_point(ids[0], *commune_centre(), 15.0)
    db.session.commit()
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        statements.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        locate_orders(ids)
        db.session.commit()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in statements if not s.startswith(("BEGIN", "COMMIT"))]) <= 5, statements
    sources = db.session.execute(sa.select(OrderLocation.source, sa.func.count()).group_by(OrderLocation.source))
    assert dict(sources.all()) == {LocationSource.COURIER: 1, LocationSource.COMMUNE_CENTROID: 11}


# --- learning from couriers ---------------------------------------------------------------------

def test_a_delivery_fix_locates_the_next_order_to_the_same_address(app, client, auth):
    lat, lon = commune_centre()
    first = new_order(client, auth, "Thôn  Phú-Lộc")
    learn_delivery_point(first, lat + 0.004, lon + 0.002, 8.0)
    db.session.commit()
    mine = stored(first)
    assert mine.source is LocationSource.COURIER and mine.precision_m == 10  # 8 m reported; 10 m floor
    second = new_order(client, auth, "thôn phú lộc")
    elsewhere = new_order(client, auth, "thôn phú lộc 2")
    locate_orders([second, elsewhere])
    db.session.commit()
    loc = stored(second)
    assert loc.source is LocationSource.COURIER
    assert distance_m(loc.latitude, loc.longitude, lat + 0.004, lon + 0.002) < 1
    assert stored(elsewhere).source is LocationSource.COMMUNE_CENTROID


def test_inaccurate_and_far_fixes_are_ignored(app, client, auth):
    lat, lon = commune_centre()
    order_id = new_order(client, auth, "Thôn Phú Lộc")
    learn_delivery_point(order_id, lat, lon, 350.0)  # a cell-tower guess
    learn_delivery_point(order_id, lat + 0.6, lon, 5.0)  # ~67 km away: a stale fix
    learn_delivery_point(order_id, float("nan"), lon, 5.0)
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(KnownPlace)) == 0
    assert stored(order_id) is None or stored(order_id).source is LocationSource.COMMUNE_CENTROID  # by intake
    learn_delivery_point(order_id, lat, lon, None)  # no accuracy reported: taken as 100 m
    db.session.commit()
    place = db.session.scalars(sa.select(KnownPlace)).one()
    assert place.samples == 1 and place.accuracy_m == 100.0


def test_one_bad_fix_does_not_move_a_known_place(app, client, auth):
    lat, lon = commune_centre()
    ids = [new_order(client, auth, "Thôn Phú Lộc") for _ in range(4)]
    for order_id, (dlat, acc) in zip(ids, [(0.0, 12.0), (0.0001, 15.0), (0.03, 20.0), (-0.0001, 10.0)],
                                     strict=True):
        learn_delivery_point(order_id, lat + dlat, lon, acc)  # the third fix is 3.3 km off
        db.session.commit()
    place = db.session.scalars(sa.select(KnownPlace)).one()
    assert place.samples == 4 and len(place.fixes) == 4
    assert distance_m(place.latitude, place.longitude, lat, lon) < 20
    assert robust_position([[1.0, 2.0, 30.0], [5.0, 6.0, 12.0]]) == (5.0, 6.0, 12.0)
    assert robust_position([[1.0, 2.0, 4.0]]) == (1.0, 2.0, 10.0)


def test_fixes_learnt_together_cost_a_fixed_number_of_statements(app, client, auth):
    lat, lon = commune_centre()
    ids = [new_order(client, auth, f"Tổ {n % 6}") for n in range(18)]
    learn_delivery_points([(ids[n], lat, lon, 12.0) for n in range(3)])  # Tổ 0, 1 and 2 become known
    db.session.commit()
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001, ARG001
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        learn_delivery_points([(order_id, lat + 0.0001 * n, lon, 10.0 + n) for n, order_id in enumerate(ids[3:])])
        db.session.commit()
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    # The orders with their units; the new places; the known ones locked, then updated; the locations.
    assert len([s for s in statements if not s.startswith(("BEGIN", "COMMIT"))]) <= 5, statements
    places = {p.address_key: p.samples for p in db.session.scalars(sa.select(KnownPlace))}
    assert places == {f"{COMMUNE}|to {n}": 3 for n in range(6)}  # 1 + 2 known before, 3 new
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrderLocation).where(
        OrderLocation.source == LocationSource.COURIER)) == 18


def test_one_fix_stores_what_the_general_path_stores(app, client, auth, monkeypatch):
    """SQLite learns one fix with the driver's SQL (a new place counted by rowcount, not RETURNING):
    the same rows, as stored, as the general path's, for a new address and for a known one."""
    lat, lon = commune_centre()

    def learnt(detail: str) -> tuple[list[dict], list[dict]]:
        ids = [new_order(client, auth, detail) for _ in range(3)]
        for n, order_id in enumerate(ids):  # new place, then known (twice: the median of three)
            learn_delivery_point(order_id, lat + 0.0001 * n, lon - 0.0001 * n, 9.0 + n)
            db.session.commit()
        conn = db.session.connection()
        places = [{k: v for k, v in row.items() if k not in ("id", "address_key", "updated_at")}
                  for row in conn.execute(sa.text("SELECT * FROM known_places WHERE address_key = :k"),
                                          {"k": address_key(COMMUNE, detail)}).mappings()]
        locations = [{k: v for k, v in row.items() if k not in ("order_id", "located_at")}
                     for row in conn.execute(sa.text("SELECT * FROM order_locations WHERE order_id IN "
                                                     f"({', '.join(map(str, ids))}) ORDER BY order_id")).mappings()]
        db.session.rollback()
        return places, [{**loc, "address_key": loc["address_key"].split("|")[0]} for loc in locations]

    monkeypatch.setattr(services, "LEAN", False)
    general = learnt("7 Lê Lợi")
    monkeypatch.setattr(services, "LEAN", True)
    lean = learnt("8 Lê Lợi")
    assert lean == general
    assert general[0] and general[0][0]["samples"] == 3 and len(general[1]) == 3


# --- the geocoding server ------------------------------------------------------------------------

def test_nominatim_answers_are_used_and_cached(app, client, auth, fake):
    use_server(app, fake)
    a = new_order(client, auth, "12 Hùng Vương")
    b = new_order(client, auth, "12 hùng vương")  # the same address typed differently
    fake.requests.clear()  # the lead may wire intake to locate; only our calls count
    locate_orders([a])
    db.session.commit()
    locate_orders([b])
    db.session.commit()
    assert len(fake.requests) == 1
    seen = fake.requests[0]
    assert seen.path == "/search" and seen.user_agent == app.config["GEOCODER_USER_AGENT"]
    assert "12 Hùng Vương" in seen.query and "Việt Nam" in seen.query
    for order_id in (a, b):
        loc = stored(order_id)
        assert loc.source is LocationSource.NOMINATIM and loc.precision_m == 25
        assert (loc.latitude, loc.longitude) == (15.1205, 108.8042)
    row = db.session.scalars(sa.select(GeocodeCache)).one()
    assert row.backend == "nominatim" and row.label == "place:house" and row.precision_m == 25


def test_not_found_is_cached_and_expired_entries_are_refetched(app, client, auth, fake):
    use_server(app, fake)
    order_id = new_order(client, auth, "Nhà văn hoá thôn 9")
    fake.requests.clear()
    locate_orders([order_id])
    db.session.commit()
    locate_orders([order_id])
    db.session.commit()
    assert len(fake.requests) == 1
    assert stored(order_id).source is LocationSource.COMMUNE_CENTROID
    row = db.session.scalars(sa.select(GeocodeCache)).one()
    assert row.latitude is None and row.longitude is None
    app.config["GEOCODER_CACHE_DAYS"] = 0  # every entry is now stale
    locate_orders([order_id])
    db.session.commit()
    assert len(fake.requests) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GeocodeCache)) == 1


def test_a_namesake_far_away_is_not_taken(app, client, auth, fake):
    use_server(app, fake)
    order_id = new_order(client, auth, "Thôn Xá Lam")
    locate_orders([order_id])
    db.session.commit()
    assert stored(order_id).source is LocationSource.COMMUNE_CENTROID


def test_server_errors_fall_back_to_the_centroid_and_stop_asking(app, client, auth, fake, caplog):
    use_server(app, fake)
    ids = [new_order(client, auth, "12 Hùng Vương"), new_order(client, auth, "Đường Lê Lợi")]
    fake.status = 500
    fake.requests.clear()
    caplog.set_level(logging.DEBUG)
    locate_orders(ids)
    db.session.commit()
    assert len(fake.requests) == 3  # one address, tried three times; the second is not asked
    assert all(stored(i).source is LocationSource.COMMUNE_CENTROID for i in ids)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(GeocodeCache)) == 0  # nothing cached
    for private in (NAME, PHONE, "Hùng Vương", "Lê Lợi", "hung vuong"):
        assert private not in caplog.text
    fake.status = 200
    locate_orders(ids)  # the next job asks again
    db.session.commit()
    assert stored(ids[1]).source is LocationSource.NOMINATIM and stored(ids[1]).precision_m == 150


def test_a_timeout_falls_back_to_the_centroid(app, client, auth, fake):
    use_server(app, fake, GEOCODER_TIMEOUT_S=0.2)
    order_id = new_order(client, auth, "12 Hùng Vương")
    fake.delay_s = 1.0
    locate_orders([order_id])
    db.session.commit()
    assert stored(order_id).source is LocationSource.COMMUNE_CENTROID


def test_requests_are_spaced_by_the_rate_limiter(app, client, auth, fake):
    use_server(app, fake, GEOCODER_MIN_DELAY_S=0.15)
    geocoder = services.get_geocoder()
    assert isinstance(geocoder, NominatimGeocoder) and geocoder.limited.min_delay_seconds == 0.15
    ids = [new_order(client, auth, f"Tổ {n}") for n in range(3)]
    fake.requests.clear()
    # When the limiter lets each call start, measured in this process: the server's arrival times
    # also carry the loopback's and the test server's scheduling jitter on a loaded machine.
    starts: list[float] = []
    inner = geocoder.limited.func

    def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        starts.append(time.monotonic())
        return inner(*args, **kwargs)

    geocoder.limited.func = timed
    locate_orders(ids)
    db.session.commit()
    assert len(fake.requests) == 3 and len(starts) == 3
    assert all(b - a >= 0.145 for a, b in zip(starts, starts[1:], strict=False))  # 0.15 less a tick


def test_photon_backend(app, client, auth, fake):
    use_server(app, fake, kind="photon")
    order_id = new_order(client, auth, "Đường Lê Lợi")
    fake.requests.clear()
    locate_orders([order_id])
    db.session.commit()
    assert [r.path for r in fake.requests] == ["/api"]
    loc = stored(order_id)
    assert loc.source is LocationSource.PHOTON and loc.precision_m == 150
    assert (loc.latitude, loc.longitude) == (15.119, 108.8)


def test_the_factory_follows_the_configuration():
    config = {"GEOCODER": "nominatim", "GEOCODER_URL": "https://geo.example.vn/nominatim/",
              "GEOCODER_USER_AGENT": "delivery-service test", "GEOCODER_TIMEOUT_S": 3.0,
              "GEOCODER_MIN_DELAY_S": 1.0}
    geocoder = make_geocoder(config)
    assert geocoder.client.api == "https://geo.example.vn/nominatim/search"
    assert geocoder.client.headers["User-Agent"] == "delivery-service test"
    assert isinstance(make_geocoder({"GEOCODER": "offline"}), OfflineGeocoder)


# --- for the run planner -------------------------------------------------------------------------

def test_locations_for_falls_back_to_centroids(app, client, auth):
    located, fresh, bare = (new_order(client, auth, f"Tổ {n}") for n in range(3))
    db.session.execute(sa.delete(OrderLocation))  # whatever intake did, start unlocated
    locate_orders([located])
    db.session.commit()
    lat, lon = commune_centre()
    # The commune without coordinates: the province centroid; with the province too: no coordinate.
    commune_id, province_id = db.session.execute(sa.select(DeliveryOrder.commune_id, DeliveryOrder.province_id)
                                                 .where(DeliveryOrder.id == bare)).one()
    got = locations_for([located, fresh, 999_999])
    assert set(got) == {located, fresh}
    assert got[located].is_centroid
    assert got[fresh].is_centroid and got[fresh].source is LocationSource.COMMUNE_CENTROID
    assert stored(fresh).source is LocationSource.COMMUNE_CENTROID  # located on the way, kept
    assert (got[fresh].latitude, got[fresh].longitude) == (lat, lon)
    assert got[fresh].address_key == f"{COMMUNE}|to 1"
    # Uncommitted, rolled back below: the units are shared by every test of this database.
    db.session.execute(sa.update(AdminUnit).where(AdminUnit.id == commune_id).values(latitude=None, longitude=None))
    province = locations_for([bare])[bare]
    assert province.source is LocationSource.PROVINCE_CENTROID and province.precision_m == 30_000
    db.session.execute(sa.update(AdminUnit).where(AdminUnit.id == province_id).values(latitude=None, longitude=None))
    db.session.execute(sa.delete(OrderLocation).where(OrderLocation.order_id == bare))  # stored just above
    assert locations_for([bare]) == {}
    db.session.rollback()


# --- jobs ----------------------------------------------------------------------------------------

def scans_queued(app: Flask) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(outbox.T)
                             .where(outbox.T.c.func_path == hooks.SCAN_JOB))


def test_without_redis_intake_queues_nothing_and_planning_locates_offline(app, client, auth, fake):
    use_server(app, fake)
    order_id = new_order(client, auth, "12 Hùng Vương")
    # intake: one transaction, no job, no network
    assert stored(order_id) is None and fake.requests == [] and scans_queued(app) == 0
    assert hooks.sweep(services.utcnow()) == {}  # the maintenance pass queues no scan either
    got = locations_for([order_id])  # the run planner locates it, offline, in its own transaction
    db.session.commit()
    assert got[order_id].source is LocationSource.COMMUNE_CENTROID
    assert stored(order_id).source is LocationSource.COMMUNE_CENTROID and fake.requests == []


def test_with_redis_a_scan_a_worker_runs_locates_new_orders_and_address_changes(app, auth, fake, rq_app):
    use_server(rq_app, fake)
    fake.delay_s = 0.5  # a slow server: intake must not wait for it
    client = rq_app.test_client()
    with rq_app.app_context():
        queue = rq_app.extensions["rq_queues"]["background"]  # geocoding: nobody waits for it
        first = new_order(client, auth, "12 Hùng Vương")
        closed = new_order(client, auth, "Đường Lê Lợi")
        assert stored(first) is None and fake.requests == []  # the requests asked nothing of the server
        # Both commits join one run (coalesced; JOBS_INLINE relays it at once, the second joins it).
        assert [j.args[0] for j in queue.jobs].count(hooks.SCAN_JOB) == 1
        admin = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "admin")))
        change_status(admin, item_of(closed), Status.CANCELLED)
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        loc = stored(first)
        assert loc.source is LocationSource.NOMINATIM and loc.precision_m == 25
        assert stored(closed) is None  # closed before its turn: nothing to plan, nothing asked
        assert len(fake.requests) == 1
        assert services.locate_new() == {} and len(fake.requests) == 1  # nothing new: no lock, no request

        # An address change: the old position goes with the commit, the scan finds the new address.
        moved = client.put(f"/api/v1/orders/{item_of(first)}/address", headers=auth, json={
            "address": {"province_code": "51", "commune_code": COMMUNE, "detail": "Đường Lê Lợi"}})
        assert moved.status_code == 200, moved.json
        assert stored(first) is None
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        assert (stored(first).latitude, stored(first).longitude) == (15.1190, 108.8000)
        assert len(fake.requests) == 2


def test_a_scan_asks_the_server_a_job_at_a_time_and_queues_the_rest_after_its_lease(
        app, auth, fake, rq_app, monkeypatch):
    use_server(rq_app, fake)
    monkeypatch.setattr(services, "SERVER_JOB_SIZE", 2)  # orders a run asks for
    monkeypatch.setattr(services, "SERVER_BATCH", 1)  # events a batch (the lease renewed after each)
    client = rq_app.test_client()
    with rq_app.app_context():
        queue = rq_app.extensions["rq_queues"]["background"]
        ids = [new_order(client, auth, f"Tổ {n} thôn Xuân") for n in range(5)]
        assert [j.args[0] for j in queue.jobs].count(hooks.SCAN_JOB) == 1  # the five commits joined one run
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        assert all(stored(i) is not None for i in ids) and len(fake.requests) == 5
        # 2 + 2 + 1 orders: each run queued the next once it had let go of the lease (a run queued
        # before would have found it held, and the rest would wait for the maintenance pass).
        runs = db.session.scalars(sa.select(outbox.T.c.state).where(outbox.T.c.func_path == hooks.SCAN_JOB))
        assert list(runs) == ["done"] * 3
        assert queue.count == 0 and services.locate_new() == {}
        db.session.execute(sa.update(GeoCursor).values(cursor_event_id=0))  # as if the scan were behind
        db.session.commit()
        assert hooks.sweep(services.utcnow()) == {"asked": ["scan"]}  # the maintenance pass queues it
        assert [j.args[0] for j in queue.jobs] == [hooks.SCAN_JOB]
        db.session.execute(sa.update(GeoCursor).values(locked_until=services.utcnow() + dt.timedelta(minutes=1),
                                                       lease_owner="another run"))
        db.session.commit()
        assert services.locate_new() == {"held": 1}  # another run holds the lease: this one leaves
        # A run whose lease ran out and was taken neither renews nor releases the new holder's.
        assert not services._hold("a run that lost it", 60)
        assert db.session.scalar(sa.select(GeoCursor.lease_owner)) == "another run"


def test_a_scan_keeps_orders_the_server_failed_for_and_asks_again_later(app, auth, fake, rq_app, monkeypatch):
    use_server(rq_app, fake, GEOCODER_RETRY_S=120.0)
    monkeypatch.setattr(services, "SERVER_BATCH", 1)  # one order a batch: the failure is in the second
    client = rq_app.test_client()
    with rq_app.app_context():
        ids = [new_order(client, auth, detail) for detail in ("12 Hùng Vương", "Đường Lê Lợi", "Tổ 3")]
        fake.fail_after = 1  # the server answers once, then fails (500: geopy tries 3 times)
        before = db.session.scalar(sa.select(GeoCursor.cursor_event_id)) or 0  # no row: the log's start
        assert services.locate_new() == {"nominatim": 1, "commune_centroid": 1, "retry": 1}
        assert stored(ids[0]).source is LocationSource.NOMINATIM
        assert stored(ids[1]).source is LocationSource.COMMUNE_CENTROID  # for now
        assert stored(ids[2]) is None  # waits in the log
        cursor = db.session.scalar(sa.select(GeoCursor.cursor_event_id))
        assert before < cursor < db.session.scalar(sa.select(sa.func.max(OrderEvent.id)))
        # The lease is kept for GEOCODER_RETRY_S: runs before then leave without asking the server.
        held_until = db.session.scalar(sa.select(GeoCursor.locked_until))
        assert 100 < (held_until - services.utcnow()).total_seconds() <= 120
        asked = len(fake.requests)
        assert services.locate_new() == {"held": 1} and len(fake.requests) == asked
        assert hooks.sweep(services.utcnow()) == {"asked": ["scan"]}  # behind: the maintenance pass asks
        # Later, the server back: the run asks again for the order it failed for and the rest.
        fake.fail_after = None
        db.session.execute(sa.update(GeoCursor).values(locked_until=services.utcnow()))
        db.session.commit()
        assert services.locate_new() == {"nominatim": 1, "commune_centroid": 1}  # "Tổ 3": not found
        assert (stored(ids[1]).latitude, stored(ids[1]).longitude) == (15.1190, 108.8000)
        assert stored(ids[2]).source is LocationSource.COMMUNE_CENTROID
        assert db.session.scalar(sa.select(GeoCursor.lease_owner)) is None


def item_of(order_id: int) -> str:
    return db.session.scalar(sa.select(DeliveryOrder.item_id).where(DeliveryOrder.id == order_id))


def test_cli_locates_missing_orders_and_reports_counts(app, client, auth):
    ids = [new_order(client, auth, f"Tổ {n}") for n in range(3)]
    db.session.execute(sa.delete(OrderLocation))  # whatever intake did, start unlocated
    db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(main, ["geo", "locate"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "3 orders (missing) located" in result.output and "3 commune_centroid" in result.output
    again = runner.invoke(main, ["geo", "locate", "--missing"], catch_exceptions=False)
    assert "0 orders (missing)" in again.output
    coarse = runner.invoke(main, ["geo", "locate", "--coarse"], catch_exceptions=False)
    assert "3 orders (coarse)" in coarse.output
    everything = runner.invoke(main, ["geo", "locate", "--all"], catch_exceptions=False)
    assert f"{len(ids)} orders (all)" in everything.output
