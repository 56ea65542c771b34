"""Where orders are: places learnt from couriers, the geocoding server (cached), unit centroids.

Every coordinate keeps its source and its precision, an approximate radius in metres:

- courier: the accuracy the phone reported, at least 10 m (the courier stands at the gate, not at
  the door); for a known place, the median accuracy of its fixes;
- nominatim / photon: by what the server matched (house 25 m, street 150 m, hamlet or village 1 km,
  see geo.backends.TYPE_PRECISION_M);
- commune_centroid: 3 km (a commune of the three-level structure averaged ~31 km², a disc of radius
  ~3.1 km); 5 km for the merged communes valid from 1 Jul 2025 (~100 km², radius ~5.6 km);
- province_centroid: 30 km.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from delivery_service import jobs
from delivery_service.db import DriverSQL, utcnow
from delivery_service.extensions import db
from delivery_service.geo.backends import (
    AddressQuery,
    Geocoder,
    GeocoderUnavailable,
    GeoResult,
    make_geocoder,
)
from delivery_service.geo.models import (
    ADDRESS_KEY_LENGTH,
    QUERY_KEY_LENGTH,
    GeocodeCache,
    GeoCursor,
    KnownPlace,
    LocationSource,
    OrderLocation,
)
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.status import Status
from delivery_service.units.models import REFORM_DATE, AdminUnit
from delivery_service.units.services import unit_index
from routes.text import fold

log = logging.getLogger(__name__)
T = TypeVar("T")

COURIER_MIN_PRECISION_M = 10
COMMUNE_CENTROID_PRECISION_M = 3_000
MERGED_COMMUNE_CENTROID_PRECISION_M = 5_000
PROVINCE_CENTROID_PRECISION_M = 30_000
MAX_FIX_ACCURACY_M = 100.0  # a worse fix is a cell-tower guess, not the doorstep
MAX_FIX_DISTANCE_M = 50_000.0  # from the commune centroid: farther is a stale or spoofed fix
MAX_FIX_DISTANCE_PROVINCE_M = 150_000.0  # the same check when only the province centroid is known
MAX_GEOCODE_DISTANCE_M = 50_000.0  # a server match farther from the commune is a namesake elsewhere
KEPT_FIXES = 15  # the newest fixes of a known place, whose median is its position
BATCH = 1_000  # ids per query (IN lists) and per offline job
SERVER_JOB_SIZE = 200  # ids per job that asks the geocoding server (~4 minutes at 1 request/s)
JOB = "delivery_service.geo.services:locate_orders"
COARSE_LEASE_S = 120  # the scan's lease without the geocoding server (renewed after each batch)
CENTROIDS = (LocationSource.COMMUNE_CENTROID, LocationSource.PROVINCE_CENTROID)


@dataclass(frozen=True)
class Location:
    """An order's position for the run planner."""

    latitude: float
    longitude: float
    source: LocationSource
    precision_m: int
    address_key: str

    @property
    def is_centroid(self) -> bool:
        """Only the commune or province is known, not the address itself."""
        return self.source in CENTROIDS


@dataclass(frozen=True)
class _Unit:
    id: int
    code: str
    name: str
    latitude: float | None
    longitude: float | None
    valid_from: dt.date


def address_key(commune_code: str, detail: str) -> str:
    """The key shared by every spelling of one address: commune code, "|", the folded detail."""
    return f"{commune_code}|{fold(detail)}"[:ADDRESS_KEY_LENGTH]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine; plenty for checks at the scale of kilometres)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dlon = math.radians(lon2 - lon1)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dlon / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(min(1.0, a)))


def get_geocoder(app: Flask | None = None) -> Geocoder:
    """The app's geocoder, built from its configuration on first use (tests may put another there)."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    geocoder = app.extensions.get("geocoder")
    if geocoder is None:
        geocoder = app.extensions.setdefault("geocoder", make_geocoder(app.config))
    return geocoder


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _units(ids: Iterable[int | None]) -> dict[int, _Unit]:
    """Code, name and centroid of these units (the unit index carries no coordinates)."""
    wanted = sorted({i for i in ids if i is not None})
    units: dict[int, _Unit] = {}
    for chunk in _chunks(wanted, BATCH):
        rows = db.session.execute(sa.select(
            AdminUnit.id, AdminUnit.code, AdminUnit.name, AdminUnit.latitude, AdminUnit.longitude,
            AdminUnit.valid_from).where(AdminUnit.id.in_(chunk)))
        units.update((r.id, _Unit(*r)) for r in rows)
    return units


def _orders(ids: Sequence[int]) -> list[sa.Row[Any]]:
    return list(db.session.execute(sa.select(
        DeliveryOrder.id, DeliveryOrder.commune_id, DeliveryOrder.district_id, DeliveryOrder.province_id,
        DeliveryOrder.address_detail).where(DeliveryOrder.id.in_(ids)).order_by(DeliveryOrder.id)))


Spot = tuple[float, float, LocationSource, int]  # latitude, longitude, source, precision_m


def _centroid(order: Any, units: Mapping[int, _Unit]) -> Spot | None:
    """The commune centroid, else the province centroid, with their precision."""
    commune = units.get(order.commune_id)
    if commune and commune.latitude is not None and commune.longitude is not None:
        merged = commune.valid_from >= REFORM_DATE
        precision = MERGED_COMMUNE_CENTROID_PRECISION_M if merged else COMMUNE_CENTROID_PRECISION_M
        return commune.latitude, commune.longitude, LocationSource.COMMUNE_CENTROID, precision
    province = units.get(order.province_id)
    if province and province.latitude is not None and province.longitude is not None:
        return (province.latitude, province.longitude, LocationSource.PROVINCE_CENTROID,
                PROVINCE_CENTROID_PRECISION_M)
    return None


def _insert(table: sa.Table) -> Any:
    """INSERT with the dialect's ON CONFLICT (SQLite and PostgreSQL share the syntax)."""
    if db.session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


_PLACES = KnownPlace.__table__
_STATEMENTS: dict[tuple[str, str], Any] = {}  # (dialect, which): built once, so compiled once


def _statement(which: str) -> Any:
    """The upserts of this module for the session's dialect, built on first use (an ON CONFLICT
    statement built per call is compiled per call: SQLAlchemy's cache does not recognise it)."""
    dialect = db.session.get_bind().dialect.name
    stmt = _STATEMENTS.get((dialect, which))
    if stmt is not None:
        return stmt
    return _STATEMENTS.setdefault((dialect, which), _build_statement(which, _insert))


def _build_statement(which: str, insert: Any, returning: bool = True) -> Any:
    """``_statement``'s upserts, built with ``insert`` (the dialect's INSERT with ON CONFLICT)."""
    if which == "new_places":  # insert-or-nothing, returning the keys inserted
        stmt = insert(_PLACES).on_conflict_do_nothing(index_elements=["address_key"])
        return stmt.returning(_PLACES.c.address_key) if returning else stmt
    # "locations" or "locations_keep_manual"
    table = OrderLocation.__table__
    stmt = insert(table)
    columns = ("latitude", "longitude", "source", "precision_m", "address_key", "located_at")
    return stmt.on_conflict_do_update(
        index_elements=["order_id"], set_={c: stmt.excluded[c] for c in columns},
        # A location a person set on purpose outranks any computed one.
        where=(table.c.source != LocationSource.MANUAL) if which == "locations_keep_manual" else None)


def _upsert_locations(rows: list[dict[str, Any]], keep_manual: bool) -> None:
    if not rows:
        return
    stmt = _statement("locations_keep_manual" if keep_manual else "locations")
    conn = db.session.connection()  # Core statements: the ORM session's execute adds nothing here
    for chunk in _chunks(rows, BATCH):
        part = list(chunk)
        # one row (a courier's delivery) as a single execute, not an executemany of one
        conn.execute(stmt, part[0] if len(part) == 1 else part)


class _ServerLookups:
    """The geocoding server for one job: cached answers first, the server for the rest; after one
    failure the server is not asked again in this job (a down server must not cost a timeout and two
    retries per address)."""

    def __init__(self, geocoder: Geocoder, cache_days: int) -> None:
        self.geocoder = geocoder
        self.cutoff = utcnow() - dt.timedelta(days=cache_days)
        self.failed = False
        self.requests = 0

    def answers(self, queries: Mapping[str, AddressQuery]) -> dict[str, GeoResult | None]:
        """Answers by query key; a key without an answer (server failed) is missing."""
        name = self.geocoder.name
        found: dict[str, GeoResult | None] = {}
        keys = sorted(queries)
        for chunk in _chunks(keys, BATCH):
            rows = db.session.execute(sa.select(
                GeocodeCache.query_key, GeocodeCache.latitude, GeocodeCache.longitude,
                GeocodeCache.precision_m, GeocodeCache.label).where(
                GeocodeCache.backend == name, GeocodeCache.query_key.in_(chunk),
                GeocodeCache.fetched_at >= self.cutoff))
            for r in rows:
                found[r.query_key] = None if r.latitude is None else GeoResult(
                    r.latitude, r.longitude, LocationSource(name), r.precision_m or 1_000, r.label or "")
        fresh: list[dict[str, Any]] = []
        for key in keys:
            if key in found or self.failed:
                continue
            try:
                self.requests += 1
                result = self.geocoder.geocode(queries[key])
            except GeocoderUnavailable as exc:
                self.failed = True
                log.warning("geocoder unavailable (%s): the remaining orders of this job get centroids "
                            "(a scan asks again after GEOCODER_RETRY_S)", exc)
                continue
            found[key] = result
            fresh.append({"backend": name, "query_key": key, "fetched_at": utcnow(),
                          "latitude": result and result.latitude, "longitude": result and result.longitude,
                          "precision_m": result and result.precision_m, "label": result and result.label})
        if fresh:  # written after the network calls, so no row stays locked while we wait on the server
            stmt = _insert(GeocodeCache.__table__)  # type: ignore[arg-type]
            columns = ("latitude", "longitude", "precision_m", "label", "fetched_at")
            db.session.execute(stmt.on_conflict_do_update(
                index_elements=["backend", "query_key"], set_={c: stmt.excluded[c] for c in columns}), fresh)
        return found


def _query(order: sa.Row[Any], units: Mapping[int, _Unit]) -> AddressQuery:
    district = units.get(order.district_id) if order.district_id else None
    return AddressQuery(detail=order.address_detail, commune=units[order.commune_id].name,
                        province=units[order.province_id].name, district=district and district.name)


def _locate_batch(ids: Sequence[int], server: _ServerLookups | None) -> Counter[str]:
    orders = _orders(ids)
    units = _units(u for o in orders for u in (o.commune_id, o.district_id, o.province_id))
    keys = {o.id: address_key(units[o.commune_id].code, o.address_detail) for o in orders}
    known = {r.address_key: r for r in db.session.execute(sa.select(
        KnownPlace.address_key, KnownPlace.latitude, KnownPlace.longitude, KnownPlace.accuracy_m
    ).where(KnownPlace.address_key.in_(set(keys.values()))))}

    answers: dict[str, GeoResult | None] = {}
    queries: dict[int, str] = {}
    if server is not None:
        asked = {o.id: _query(o, units) for o in orders if keys[o.id] not in known}
        queries = {oid: q.key()[:QUERY_KEY_LENGTH] for oid, q in asked.items()}
        answers = server.answers({queries[oid]: q for oid, q in asked.items()})

    now = utcnow()
    rows: list[dict[str, Any]] = []
    for o in orders:
        key = keys[o.id]
        place = known.get(key)
        centroid = _centroid(o, units)
        found = answers.get(queries.get(o.id, ""))
        if place is not None:
            spot = (place.latitude, place.longitude, LocationSource.COURIER,
                    max(COURIER_MIN_PRECISION_M, round(place.accuracy_m)))
        elif found is not None and (centroid is None or distance_m(
                found.latitude, found.longitude, centroid[0], centroid[1]) <= MAX_GEOCODE_DISTANCE_M):
            spot = (found.latitude, found.longitude, found.source, found.precision_m)
        elif centroid is not None:
            spot = centroid
        else:
            continue  # no coordinate at all: the planner leaves the order out
        rows.append({"order_id": o.id, "latitude": spot[0], "longitude": spot[1], "source": spot[2],
                     "precision_m": spot[3], "address_key": key, "located_at": now})
    _upsert_locations(rows, keep_manual=True)
    return Counter(r["source"].value for r in rows)


def locate_orders(order_ids: list[int], use_server: bool = True) -> None:
    """The job: store each order's best position (idempotent; a manually set location is kept).

    Best first: a place couriers delivered to at the same address, the geocoding server (through its
    cache; only if configured and ``use_server``), the commune centroid, the province centroid.
    """
    geocoder = get_geocoder()
    server = None
    if use_server and geocoder.remote:
        server = _ServerLookups(geocoder, int(current_app.config["GEOCODER_CACHE_DAYS"]))
    counts: Counter[str] = Counter()
    ids = sorted(set(order_ids))
    for chunk in _chunks(ids, BATCH):
        counts.update(_locate_batch(chunk, server))
    # Ids and counts only: addresses are personal data.
    log.info("located %d of %d orders (%s)%s", sum(counts.values()), len(ids),
             ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
             f"; {server.requests} server requests" if server else "")


def queue_locations(order_ids: list[int]) -> int:
    """Queue ``locate_orders`` jobs for these orders (``geo locate`` with rq), a job's worth each,
    to start after the current transaction commits; returns how many jobs."""
    use_server = get_geocoder().remote
    size = SERVER_JOB_SIZE if use_server else BATCH
    chunks = list(_chunks(sorted(set(order_ids)), size))
    for chunk in chunks:
        jobs.enqueue_after_commit(JOB, list(chunk), use_server, timeout=scan_timeout(), queue="background")
    return len(chunks)


def _server_request_s() -> float:
    """The longest one request to the geocoding server may take: the spacing plus a whole timeout."""
    config = current_app.config
    return float(config["GEOCODER_MIN_DELAY_S"]) + float(config["GEOCODER_TIMEOUT_S"])


def scan_timeout() -> int:
    """Seconds a job may take (a scan's or ``locate_orders``'): with the geocoding server, a job's
    worth of orders (SERVER_JOB_SIZE), each request maybe the spacing plus a whole timeout."""
    if not get_geocoder().remote:
        return 600
    per_request = _server_request_s()
    return int(300 + SERVER_JOB_SIZE * per_request)


# The events that ask for an order's position: its creation (intake, imports) and an address change.
_ASKS = sa.or_(OrderEvent.status_from.is_(None), sa.and_(
    OrderEvent.reason == "address_changed", OrderEvent.status_from == OrderEvent.status_to))
# An order closed since has no run left to plan: its position is not asked for.
_CLOSED = (Status.DELIVERED, Status.RETURNED_TO_AGENCY, Status.CANCELLED)
_NEWEST_EVENT = sa.select(sa.func.coalesce(sa.func.max(OrderEvent.id), 0)).scalar_subquery()


def scan_behind() -> bool:
    """Whether events were logged after the scan's cursor (one cheap query; ends the transaction).
    The cursor's row is made at the log's start if it is missing (the migration makes it at the
    log's end; a database emptied by hand has neither)."""
    behind = db.session.execute(sa.select(GeoCursor.cursor_event_id < _NEWEST_EVENT)
                                .where(GeoCursor.id == 1)).scalar()
    if behind is None:
        db.session.execute(_insert(GeoCursor.__table__).values(id=1, cursor_event_id=0)  # type: ignore[arg-type]
                           .on_conflict_do_nothing(index_elements=["id"]))
        behind = db.session.scalar(sa.select(_NEWEST_EVENT > 0))
    db.session.commit()
    return bool(behind)


def _hold(owner: str, lease_s: float) -> bool:
    """Take the scan's lease for ``owner`` (compare-and-set: one run at a time on every backend), or
    renew it if ``owner`` still holds it; commits. False: another run holds it."""
    now = utcnow()
    free_or_mine = sa.or_(GeoCursor.locked_until.is_(None), GeoCursor.locked_until < now,
                          GeoCursor.lease_owner == owner)
    taken = db.session.execute(
        sa.update(GeoCursor).where(GeoCursor.id == 1, free_or_mine)
        .values(locked_until=now + dt.timedelta(seconds=lease_s), lease_owner=owner)
        .execution_options(synchronize_session=False)).rowcount
    db.session.commit()
    return taken == 1


SERVER_BATCH = 20  # events a batch with the geocoding server (the lease is renewed after each)


def locate_new() -> dict[str, int]:
    """The background scan (rq; queued by the commits that write order events and by the
    maintenance pass): locate the orders created or re-addressed since the last run, as
    ``locate_orders`` does, reading the event log after the cursor up to the committed horizon.

    With the geocoding server a run asks for at most SERVER_JOB_SIZE orders, SERVER_BATCH events'
    orders at a time, then queues the next run (after giving up its lease, so that run can take it).
    A run that ends while newer events were logged queues a coalesced one. An order closed before its
    turn is skipped. When the server fails, the batch's orders get their centroids for now, the cursor
    stays before them and the lease is kept GEOCODER_RETRY_S (no run asks a down server before then);
    a run is queued for that time, which asks again for them and the orders after. Returns counts by
    source (and "held" or "busy" when another run or the event log's writers kept it from starting;
    "retry" when the server failed)."""
    from delivery_service.geo.hooks import queue_scan
    from delivery_service.webhooks.services import committed_horizon

    if not scan_behind():
        return {}
    geocoder = get_geocoder()
    server = None
    if geocoder.remote:
        server = _ServerLookups(geocoder, int(current_app.config["GEOCODER_CACHE_DAYS"]))
    size = SERVER_BATCH if server else BATCH
    # The lease outlasts one batch: a run killed on the way (its worker lost) keeps the next one
    # waiting that long at most. Each batch renews it, and only the run that holds it can.
    lease_s = 60 + size * _server_request_s() if server else COARSE_LEASE_S
    owner = uuid.uuid4().hex
    if not _hold(owner, lease_s):
        return {"held": 1}
    counts: Counter[str] = Counter()
    more = newer = failed = False
    horizon = None
    try:
        horizon = committed_horizon()
        if horizon is None:
            return {"busy": 1}  # writers held the log: the next trigger or maintenance pass tries again
        asked = 0
        while True:
            cursor = db.session.scalar(sa.select(GeoCursor.cursor_event_id).where(GeoCursor.id == 1))
            rows = db.session.execute(
                sa.select(OrderEvent.id, OrderEvent.order_id)
                .join(DeliveryOrder, DeliveryOrder.id == OrderEvent.order_id)
                .where(OrderEvent.id > cursor, OrderEvent.id <= horizon, _ASKS,
                       DeliveryOrder.status.not_in(_CLOSED))
                .order_by(OrderEvent.id).limit(size)).all()
            ids = sorted({r.order_id for r in rows})
            if ids:
                counts.update(_locate_batch(ids, server))
                asked += len(ids)
            if server is not None and server.failed:
                db.session.commit()  # their centroids, for now; the cursor stays before them
                failed = True
                break
            full = len(rows) == size
            moved = rows[-1].id if full else horizon
            # Never backwards (a run whose lease ran out may finish after the next run moved on).
            db.session.execute(sa.update(GeoCursor).where(GeoCursor.id == 1)
                               .values(cursor_event_id=sa.case((GeoCursor.cursor_event_id < moved, moved),
                                                               else_=GeoCursor.cursor_event_id))
                               .execution_options(synchronize_session=False))
            db.session.commit()
            if not full:
                break
            if server is not None and asked >= SERVER_JOB_SIZE:  # a job's worth: the rest in the next run
                more = True
                break
            if not _hold(owner, lease_s):  # renewed; lost only if it ran out and another run took it
                break
    finally:
        db.session.rollback()
        retry_s = float(current_app.config["GEOCODER_RETRY_S"])
        until = utcnow() + dt.timedelta(seconds=retry_s) if failed else None
        db.session.execute(sa.update(GeoCursor).where(GeoCursor.id == 1, GeoCursor.lease_owner == owner)
                           .values(locked_until=until, lease_owner=owner if failed else None)
                           .execution_options(synchronize_session=False))
        if horizon is not None and not (more or failed):
            # Events logged after this run's horizon (a run that found the lease held left them here).
            newer = bool(db.session.scalar(sa.select(_NEWEST_EVENT > horizon)))
        if failed:
            queue_scan(retry_s + 1)  # once the kept lease has run out
        elif more:
            queue_scan(0)
        elif newer:
            queue_scan(float(current_app.config["JOBS_COALESCE_S"]))
        db.session.commit()
    # Ids and counts only: addresses are personal data.
    log.info("scan located %d orders (%s)%s", sum(counts.values()),
             ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
             f"; {server.requests} server requests" if server else "")
    return {**counts, "retry": 1} if failed else dict(counts)


Fix = tuple[int, float, float, float | None]  # order id, latitude, longitude, accuracy_m (or None)

# The orders of a batch of fixes that the caller did not pass: their units and address.
_FIX_ORDERS = (sa.select(DeliveryOrder.id, DeliveryOrder.commune_id, DeliveryOrder.province_id,
                         DeliveryOrder.address_detail)
               .where(DeliveryOrder.id.in_(sa.bindparam("b_ids", expanding=True))))
_CENTROIDS = (sa.select(AdminUnit.id, AdminUnit.latitude, AdminUnit.longitude)
              .where(AdminUnit.id.in_(sa.bindparam("b_ids", expanding=True))))


class FixOrder(Protocol):
    """What learning a fix reads of its order (a ``DeliveryOrder`` or a row)."""

    @property
    def id(self) -> int: ...
    @property
    def commune_id(self) -> int: ...
    @property
    def province_id(self) -> int | None: ...
    @property
    def address_detail(self) -> str: ...


def _fix_units(unit_ids: Iterable[int | None]) -> dict[int, _Unit]:
    """Code, name, start and centroid of these units from per-process caches: the unit index
    (``units.services.unit_index``) and the centroids read once per index. A units import replaces
    the index (``invalidate_index``), and with it these centroids; so does the index's TTL."""
    index = unit_index()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    cached = app.extensions.get("unit_centroids")
    if cached is None or cached[0] is not index:
        cached = app.extensions["unit_centroids"] = (index, {})
    centroids: dict[int, tuple[float | None, float | None]] = cached[1]
    wanted = {i for i in unit_ids if i is not None}
    indexed = {i for i in wanted if i in index.by_id}
    missing = sorted(indexed - centroids.keys())
    for chunk in _chunks(missing, BATCH):
        rows = db.session.connection().execute(_CENTROIDS, {"b_ids": list(chunk)}).all()
        centroids.update((r.id, (r.latitude, r.longitude)) for r in rows)
    units = _units(wanted - indexed)  # newer than this process's index (imported meanwhile): read
    for i in indexed:
        u, (latitude, longitude) = index.by_id[i], centroids.get(i, (None, None))
        units[i] = _Unit(u.id, u.code, u.name, latitude, longitude, u.valid_from)
    return units


_LOCK_PLACES = (sa.select(_PLACES.c.id, _PLACES.c.address_key, _PLACES.c.samples, _PLACES.c.fixes)
                .where(_PLACES.c.address_key.in_(sa.bindparam("b_keys", expanding=True)))
                .order_by(_PLACES.c.address_key).with_for_update())
_UPDATE_PLACES = (sa.update(_PLACES).where(_PLACES.c.id == sa.bindparam("b_id"))
                  .values(latitude=sa.bindparam("b_latitude"), longitude=sa.bindparam("b_longitude"),
                          accuracy_m=sa.bindparam("b_accuracy"), fixes=sa.bindparam("b_fixes"),
                          samples=sa.bindparam("b_samples"), updated_at=sa.bindparam("b_at")))


def learn_delivery_point(order_id: int, latitude: float, longitude: float, accuracy_m: float | None) -> None:
    """Learn from one courier's fix at a successful delivery: ``learn_delivery_points`` for one."""
    learn_delivery_points([(order_id, latitude, longitude, accuracy_m)])


@dataclass
class Learning:
    """What a batch of delivery fixes teaches (``plan_learning``), before it is written."""

    now: dt.datetime
    by_key: dict[str, list[list[float]]]  # the accepted fixes of each address, in order
    locations: list[dict[str, Any]]  # each order's last accepted fix, as its location's row

    def new_places(self) -> list[dict[str, Any]]:
        """The known_places rows to insert for addresses not known yet, by key."""
        rows = []
        for key in sorted(self.by_key):  # keys in order: two batches lock each other's rows alike
            kept = self.by_key[key][-KEPT_FIXES:]
            latitude, longitude, accuracy = robust_position(kept)
            rows.append({"address_key": key, "latitude": latitude, "longitude": longitude,
                         "samples": len(self.by_key[key]), "accuracy_m": accuracy, "fixes": kept,
                         "updated_at": self.now})
        return rows


def learn_delivery_points(fixes: Sequence[Fix], orders: Mapping[int, FixOrder] | None = None) -> None:
    """Learn from couriers' fixes at successful deliveries, in the order given (the caller commits).

    Each fix refines the known place of its order's address and becomes the order's own location,
    exactly as if the fixes were learnt one after the other. Fixes worse than 100 m, or more than
    50 km from the commune, are ignored. A fix without an accuracy counts as a 100 m one.

    ``orders``: the fixes' orders as the caller has them already (their units and address are read
    from them); the others are read. The units' codes and centroids come from per-process caches.
    Set-based: one INSERT … ON CONFLICT DO NOTHING creates the places not known yet with their fixes
    of this batch, the places that already existed are locked (``FOR UPDATE``, by key) and updated in
    one executemany, and the orders' locations are upserted in one statement: 2 statements for a
    batch of new addresses, 4 with known ones (and one more for orders the caller did not pass).
    """
    learning = plan_learning(fixes, orders)
    if learning is not None:
        write_learning(learning)


def plan_learning(fixes: Sequence[Fix], orders: Mapping[int, FixOrder] | None = None) -> Learning | None:
    """The checks and sums of ``learn_delivery_points``, without its writes; None if nothing is learnt."""
    usable: list[tuple[int, float, float, float]] = []
    for order_id, latitude, longitude, accuracy_m in fixes:
        accuracy = MAX_FIX_ACCURACY_M if accuracy_m is None else float(accuracy_m)
        if not (math.isfinite(latitude) and math.isfinite(longitude) and -90 <= latitude <= 90
                and -180 <= longitude <= 180 and 0 <= accuracy <= MAX_FIX_ACCURACY_M):
            log.info("delivery fix of order %d ignored: unusable or inaccurate", order_id)
            continue
        usable.append((order_id, latitude, longitude, accuracy))
    if not usable:
        return None
    known_orders: dict[int, FixOrder] = {}
    wanted = sorted({f[0] for f in usable})
    if orders is not None:
        known_orders.update((i, orders[i]) for i in wanted if i in orders)
    conn = db.session.connection()
    for chunk in _chunks([i for i in wanted if i not in known_orders], BATCH):
        known_orders.update((r.id, r) for r in conn.execute(_FIX_ORDERS, {"b_ids": list(chunk)}))
    units = _fix_units(u for o in known_orders.values() for u in (o.commune_id, o.province_id))
    by_key: dict[str, list[list[float]]] = {}  # the accepted fixes of each address, in order
    locations: dict[int, dict[str, Any]] = {}  # the last accepted fix of each order
    now = utcnow()
    for order_id, latitude, longitude, accuracy in usable:
        order = known_orders.get(order_id)
        commune = units.get(order.commune_id) if order is not None else None
        if order is None or commune is None:
            continue
        centroid = _centroid(order, units)
        if centroid is not None:
            commune_known = centroid[2] is LocationSource.COMMUNE_CENTROID
            limit = MAX_FIX_DISTANCE_M if commune_known else MAX_FIX_DISTANCE_PROVINCE_M
            if distance_m(latitude, longitude, centroid[0], centroid[1]) > limit:
                log.info("delivery fix of order %d ignored: too far from its commune", order_id)
                continue
        key = address_key(commune.code, order.address_detail)
        accuracy = max(float(COURIER_MIN_PRECISION_M), accuracy)
        by_key.setdefault(key, []).append([round(latitude, 7), round(longitude, 7), round(accuracy, 1)])
        locations.pop(order_id, None)  # the same order twice: its last fix, as one by one
        locations[order_id] = {"order_id": order_id, "latitude": latitude, "longitude": longitude,
                               "source": LocationSource.COURIER, "precision_m": round(accuracy),
                               "address_key": key, "located_at": now}
    if not by_key:
        return None
    return Learning(now, by_key, list(locations.values()))


def write_learning(learning: Learning) -> None:
    """Add each key's new fixes to its known place (created if none): the newest ``KEPT_FIXES`` are
    kept and the position is their ``robust_position``, whatever the batching; and store each
    order's location."""
    conn = db.session.connection()
    if (LEAN and len(learning.by_key) == 1 and len(learning.locations) == 1
            and conn.dialect.driver == "pysqlite"):
        _write_one_sqlite(conn, learning)  # a one-event sync's learning (see there)
        return
    # Insert-or-nothing first, so two deliveries to a new address at once cannot collide on the key.
    # RETURNING, not rowcount: drivers need not count INSERTs.
    created: set[str] = set()
    for rows in _chunks(learning.new_places(), BATCH):
        if len(rows) == 1:
            created.update(conn.execute(_statement("new_places"), rows[0]).scalars())
        else:  # executemany with RETURNING: one INSERT of many VALUES ("insertmanyvalues")
            created.update(conn.execute(_statement("new_places"), list(rows)).scalars())
    update_known_places(learning, created)
    _upsert_locations(learning.locations, keep_manual=False)


def update_known_places(learning: Learning, created: set[str]) -> None:
    """Add the fixes of the places that existed before (not in ``created``, the keys this
    transaction inserted) to them: locked by key, updated in one executemany."""
    by_key, now = learning.by_key, learning.now
    known = [key for key in sorted(by_key) if key not in created]
    if not known:
        return
    conn = db.session.connection()
    updates = []
    for chunk in _chunks(known, BATCH):
        for place in conn.execute(_LOCK_PLACES, {"b_keys": list(chunk)}):
            fixes = [*place.fixes, *by_key[place.address_key]][-KEPT_FIXES:]
            latitude, longitude, accuracy = robust_position(fixes)
            updates.append({"b_id": place.id, "b_latitude": latitude, "b_longitude": longitude,
                            "b_accuracy": accuracy, "b_fixes": fixes,
                            "b_samples": place.samples + len(by_key[place.address_key]), "b_at": now})
    if updates:
        conn.execute(_UPDATE_PLACES, updates)


def learning_ctes(order_param: str) -> tuple[Any, Any]:
    """PostgreSQL only: ``write_learning``'s INSERT of one new place (``RETURNING address_key``) and
    upsert of one order's location as CTEs, for a caller that writes them in a statement of its own
    (bind parameters ``lp_<column>`` and ``ll_<column>``: ``learning_params``; the order's id is the
    caller's parameter ``order_param``, the location's time the place's); the caller then runs
    ``update_known_places`` with the keys the first one returned."""
    from sqlalchemy.dialects.postgresql import insert

    places = {c: sa.bindparam(f"lp_{c}", type_=_PLACES.c[c].type) for c in _PLACE_COLUMNS}
    new_place = (insert(_PLACES).values(places).on_conflict_do_nothing(index_elements=["address_key"])
                 .returning(_PLACES.c.address_key).cte("new_place"))
    table = OrderLocation.__table__
    names = {c: f"ll_{c}" for c in _LOCATION_COLUMNS}
    names.update(order_id=order_param, located_at="lp_updated_at")
    upsert = insert(table).values(
        {c: sa.bindparam(names[c], type_=table.c[c].type) for c in _LOCATION_COLUMNS})
    location = upsert.on_conflict_do_update(index_elements=["order_id"], set_={
        c: upsert.excluded[c] for c in _LOCATION_COLUMNS if c != "order_id"}).cte("location")
    return new_place, location


_PLACE_COLUMNS = ("address_key", "latitude", "longitude", "samples", "accuracy_m", "fixes", "updated_at")
_LOCATION_COLUMNS = ("order_id", "latitude", "longitude", "source", "precision_m", "address_key",
                     "located_at")

# SQLite, one place and one order (the learning of a one-event sync): ``write_learning``'s statements
# as the driver's SQL (db.DriverSQL: compiled once, no compile-and-bind work at each execution; with
# the RETURNING below, ~0.12 ms of a 1.6-2 ms event). The new place without RETURNING (which makes
# SQLite build a temporary table): pysqlite's rowcount is SQLite's count of the rows the statement
# wrote, 1 for the place inserted and 0 when its key existed (ON CONFLICT DO NOTHING writes nothing).
LEAN = True  # the SQLite path for one place (tests turn it off to compare with the general path)
_NEW_PLACE_SQLITE = DriverSQL(_build_statement("new_places", sqlite_insert, returning=False),
                              column_keys=_PLACE_COLUMNS)
_LOCATION_SQLITE = DriverSQL(_build_statement("locations", sqlite_insert), column_keys=_LOCATION_COLUMNS)


def _write_one_sqlite(conn: sa.Connection, learning: Learning) -> None:
    """``write_learning`` for one place and one order on SQLite (pysqlite), with the same rows."""
    [place] = learning.new_places()
    created = {place["address_key"]} if _NEW_PLACE_SQLITE.execute(conn, place).rowcount == 1 else set()
    update_known_places(learning, created)
    _LOCATION_SQLITE.execute(conn, learning.locations[0])


def learning_params(learning: Learning) -> dict[str, Any] | None:
    """The parameters of ``learning_ctes`` for a learning of one address and one order; None if it
    has more."""
    if len(learning.by_key) != 1 or len(learning.locations) != 1:
        return None
    [place] = learning.new_places()
    [location] = learning.locations
    if location["located_at"] != place["updated_at"]:  # one moment, one parameter (learning_ctes)
        return None
    return {**{f"lp_{c}": place[c] for c in _PLACE_COLUMNS},
            **{f"ll_{c}": location[c] for c in _LOCATION_COLUMNS if c not in ("order_id", "located_at")}}


def robust_position(fixes: Sequence[Sequence[float]]) -> tuple[float, float, float]:
    """Latitude, longitude and accuracy of a place from its fixes [lat, lon, accuracy_m].

    From three fixes on, the median of each coordinate: one bad fix cannot move it far. With one or
    two there is no majority, so the more accurate fix stands (the older on a tie).
    """
    if len(fixes) <= 2:
        best = min(fixes, key=lambda f: f[2])
        return best[0], best[1], max(float(COURIER_MIN_PRECISION_M), best[2])
    return (median(f[0] for f in fixes), median(f[1] for f in fixes),
            max(float(COURIER_MIN_PRECISION_M), median(f[2] for f in fixes)))


def locations_for(order_ids: list[int]) -> dict[int, Location]:
    """Each order's position for the run planner: the stored one, else located now without the
    network (a courier's known place, else a centroid: ``is_centroid``) and stored in the caller's
    transaction; orders with no coordinate at all are absent."""
    found: dict[int, Location] = {}
    for chunk in _chunks(sorted(set(order_ids)), BATCH):
        found.update(_stored_locations(chunk))
        missing = [i for i in chunk if i not in found]
        if missing:
            # Not located yet (no rq, or its job has not run): locate them now, without the network,
            # in the caller's transaction, so that a courier's known place beats the centroid.
            _locate_batch(missing, None)
            found.update(_stored_locations(missing))
    return found


def _stored_locations(ids: list[int]) -> dict[int, Location]:
    rows = db.session.execute(sa.select(
        OrderLocation.order_id, OrderLocation.latitude, OrderLocation.longitude, OrderLocation.source,
        OrderLocation.precision_m, OrderLocation.address_key).where(OrderLocation.order_id.in_(ids)))
    return {r.order_id: Location(r.latitude, r.longitude, r.source, r.precision_m, address_key=r.address_key)
            for r in rows}


def orders_to_locate(which: str) -> list[int]:
    """Ids of the orders ``geo locate`` works on: "missing", "coarse" (missing or centroid) or "all"."""
    stmt = sa.select(DeliveryOrder.id).order_by(DeliveryOrder.id)
    if which != "all":
        stmt = stmt.outerjoin(OrderLocation, OrderLocation.order_id == DeliveryOrder.id)
        unlocated = OrderLocation.order_id.is_(None)
        coarse = unlocated | OrderLocation.source.in_(CENTROIDS)
        stmt = stmt.where(unlocated if which == "missing" else coarse)
    return list(db.session.scalars(stmt))


def count_by_source() -> dict[str, int]:
    """How many stored locations each source gave."""
    rows = db.session.execute(sa.select(OrderLocation.source, sa.func.count()).group_by(OrderLocation.source))
    return {source.value: n for source, n in rows}
