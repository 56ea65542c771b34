"""Order intake, lookup scoped to the actor, and status changes with their events."""

from __future__ import annotations

import datetime as dt
import enum
import functools
import hashlib
import itertools
import json
import os
import sqlite3
import unicodedata
from collections import deque
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value

from delivery_service import metrics, rules
from delivery_service.accounts.models import Role
from delivery_service.accounts.services import SYSTEM, Actor
from delivery_service.db import DriverSQL, UTCDateTime, utcnow
from delivery_service.errors import Conflict, Forbidden, InvalidInput, Message, NotFound, coded
from delivery_service.extensions import db
from delivery_service.geo.models import OrderLocation
from delivery_service.localtime import day_start, local_today  # noqa: F401  (local_today: many import it from here)
from delivery_service.orders import status as machine
from delivery_service.orders import watch
from delivery_service.orders.models import DeliveryOrder, Exemption, ItemSerial, OrderEvent, Payer
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.models import PostalRoute
from delivery_service.units.models import UnitLevel
from delivery_service.units.services import resolve_address, unit_index
from delivery_service.vietnamese import search_key
from labels import s10


def due_date(start: dt.date, days: int, working_days: bool) -> dt.date:
    """The delivery target: ``days`` (working) days after ``start``."""
    if not working_days:
        return start + dt.timedelta(days=days)
    day = start
    while days > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            days -= 1
    return day


def name_key(name: str) -> str:
    """The form names are searched by: NFC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


_INSERT_SERIAL = sa.insert(ItemSerial.__table__).returning(ItemSerial.__table__.c.id)
_INSERT_ORDER = sa.insert(DeliveryOrder.__table__).returning(DeliveryOrder.__table__.c.id)
_INSERT_EVENT = sa.insert(OrderEvent.__table__)
_ORDER_COLUMNS = tuple(c.key for c in DeliveryOrder.__table__.columns if c.key != "id")
_NO_VALUES = dict.fromkeys(_ORDER_COLUMNS)  # a new order's columns order_values leaves out: NULL


# Serials are drawn in blocks, each block in a transaction of its own, so that an order's transaction
# costs no statement for its serial and (SQLite) takes the write lock only at the order's own INSERT.
# PostgreSQL: from the table's sequence, one round trip per block; a sequence never hands a number out
# twice, even when the drawing transaction rolls back. SQLite: a block of item_serials rows inserted
# and committed on a connection of their own (AUTOINCREMENT never reuses a committed id; the write
# lock keeps processes apart). Numbers of a block a process never uses (it stopped, or the order's
# transaction rolled back) are gaps, never handed out again, as with PostgreSQL's sequence.
_NEXT_SERIALS = sa.text("SELECT nextval(pg_get_serial_sequence('item_serials', 'id')) "
                        "FROM generate_series(1, :n)")
# SQLite: n rows of item_serials in one statement (compiled once, whatever n): a block, or a chunk's.
_SERIAL_ROWS = sa.text(
    "INSERT INTO item_serials (allocated_at) "
    "SELECT :at FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n) "
    "SELECT i FROM n) RETURNING id").bindparams(sa.bindparam("at", type_=UTCDateTime))
SERIAL_BLOCK = 100  # a block's draw (SQLite: a connection, a transaction) was 1.4 % of intake at 20


def _draw_serials(conn: sa.Connection) -> list[int] | None:
    """A new block of serials, or None when this SQLite session must draw in its own transaction: it
    holds the write lock already (a second connection would wait for it) or its database is in
    memory (a second connection would be the same one)."""
    if conn.dialect.name == "postgresql":
        return sorted(conn.execute(_NEXT_SERIALS, {"n": SERIAL_BLOCK}).scalars())
    database = conn.engine.url.database or ""
    if (conn.connection.dbapi_connection.in_transaction  # type: ignore[union-attr]
            or database in ("", ":memory:") or "mode=memory" in database):
        return None
    with conn.engine.begin() as own:
        return sorted(own.execute(_SERIAL_ROWS, {"n": SERIAL_BLOCK, "at": utcnow()}).scalars())


def _next_serial() -> int:
    pid, block = current_app.extensions.get("serial_block") or (None, None)
    if pid != os.getpid() or not block:  # a forked child must never use its parent's numbers
        conn = db.session.connection()
        drawn = _draw_serials(conn)
        if drawn is None:  # one row in the caller's transaction, as before blocks
            return conn.execute(_INSERT_SERIAL, {"allocated_at": utcnow()}).scalar_one()
        block = deque(drawn)
        current_app.extensions["serial_block"] = (os.getpid(), block)
    return block.popleft()


def allocate_item_id() -> str:
    """A new S10 identifier; no two processes ever get the same serial."""
    serial = _next_serial()
    cfg = current_app.config
    if serial > s10.MAX_SERIAL:
        raise Conflict("The S10 serial range of this service indicator is used up: "
                       "configure a new ITEM_ID_PREFIX.", error="serials_used_up")
    return s10.make(cfg["ITEM_ID_PREFIX"], serial, cfg["ITEM_ID_COUNTRY"])


def create_order(actor: Actor, data: dict[str, Any], *, counter_id: int,
                 idempotency_key: str | None = None, digest: str | None = None) -> tuple[DeliveryOrder, bool]:
    """Store a validated order and its first event; commits.

    Returns ``(order, True)`` for a new order and ``(existing, False)`` for a retry of one already
    stored (same counter, dossier code and direction, or the same idempotency key), also when two
    retries race: the database's unique constraints decide, and the loser reads the winner's row.
    ``digest`` (``request_digest(data)``, given by the API) binds the stored order to the body that
    created it: a retry with another body is refused (see ``check_retry``), never answered with the
    stored order.
    """
    if actor.role is not Role.ADMIN and actor.counter_id != counter_id:
        raise Forbidden("You can only create orders for your own counter.")
    try:
        order = add_order(actor, data, counter_id=counter_id, idempotency_key=idempotency_key, digest=digest)
        db.session.commit()
        metrics.order_created()
        return order, True
    except InvalidInput:
        db.session.rollback()
        raise
    except IntegrityError:
        db.session.rollback()
        existing = find_duplicate(counter_id, data["dossier_code"], Direction(data["direction"]),
                                  idempotency_key)
        if existing is None:
            raise
        check_retry(existing, data, idempotency_key=idempotency_key, digest=digest)
        return existing, False


def request_digest(data: dict[str, Any]) -> str:
    """SHA-256 of a validated create call's body in one canonical form (keys sorted, enums by value,
    dates in ISO form): two bodies that mean the same order have the same digest."""

    def plain(value: Any) -> Any:
        if isinstance(value, enum.Enum):
            return value.value
        if isinstance(value, dt.date):
            return value.isoformat()
        raise TypeError(f"{type(value).__name__} in an order's data")

    canonical = json.dumps(data, sort_keys=True, default=plain, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_retry(existing: DeliveryOrder, data: dict[str, Any], *, idempotency_key: str | None,
                digest: str | None) -> None:
    """Refuse a create call that repeats a stored order's key or dossier with another body.

    The same Idempotency-Key with another body is 422 ``idempotency_key_reused`` (as payment APIs and
    the IETF Idempotency-Key draft do); the same dossier and direction with another body is 409
    ``dossier_exists``. Both name the stored order. Orders stored before digests were kept (NULL)
    are compared by dossier code and direction only.
    """
    known = digest is not None and existing.request_digest is not None
    if idempotency_key and existing.idempotency_key == idempotency_key:
        same = (existing.request_digest == digest if known else
                existing.dossier_code == data["dossier_code"] and existing.direction == data["direction"])
        if not same:
            message = (f"This Idempotency-Key was already used for order {existing.item_id} (dossier "
                       f"{existing.dossier_code}) with another body: a retry must repeat the first "
                       "request exactly; a new order needs a new key.")
            raise InvalidInput({"Idempotency-Key": [coded("idempotency_key_reused", message)]}, message,
                               location="headers", error="idempotency_key_reused", item_id=existing.item_id)
    elif known and existing.request_digest != digest:
        raise Conflict(f"Dossier {existing.dossier_code} already has order {existing.item_id} "
                       f"({existing.direction.value}), created with other data. Correct that order "
                       "(address call), or cancel it and send the dossier again.",
                       error="dossier_exists", item_id=existing.item_id)


def add_order(actor: Actor, data: dict[str, Any], *, counter_id: int, idempotency_key: str | None = None,
              event_note: str | None = None, digest: str | None = None) -> DeliveryOrder:
    """Write a validated order and its first event in the current transaction, without committing.

    All checks run first; the writes (serial, order, event) come last and go out as plain inserts,
    so that SQLite's write lock is held for as short a time as possible.
    """
    from delivery_service.routing import services as routing

    today = local_today()
    values = order_values(actor, data, counter_id=counter_id, idempotency_key=idempotency_key, today=today)
    values["request_digest"] = digest
    # The serial first: placing may write (a route's day load), and on SQLite a block of serials is
    # drawn on a connection of its own only while this transaction has written nothing.
    values["item_id"] = allocate_item_id()
    order = _unsaved_order(values)
    placement = routing.place_new_order(order, today)
    # Everything but the ids is ready before the first write (on SQLite the write lock is taken there).
    events = [{"order_id": None, "status_from": None, "status_to": Status.CREATED, "reason": None,
               "route_id": None, "server_time": order.created_at, "note": event_note, **_actor_cols(actor)}]
    if order.route_id is not None:  # placed automatically: the system's event, with how it matched
        events.append({**events[0], "status_from": Status.CREATED, "status_to": Status.ASSIGNED,
                       "reason": placement.outcome.value, "route_id": order.route_id, "note": None,
                       **_actor_cols(SYSTEM)})
    conn = db.session.connection()
    # The driver's SQL, compiled once (a Core Insert's compile-and-bind work per statement was ~8 % of
    # an order): the statement events, error wrapping and hidden parameters are SQLAlchemy's as before.
    if ONE_STATEMENT and conn.dialect.name == "postgresql":  # one round trip for the order and events
        order.id = _ORDER_WITH_EVENTS.execute(conn, order.__dict__, events).scalar_one()
        for event in events:
            event["order_id"] = order.id
    else:
        if conn.dialect.name == "sqlite":  # the id is the rowid: no RETURNING (a temporary table in SQLite)
            order.id = _ORDER_SQL_ROWID.execute(conn, order.__dict__).lastrowid
        else:
            order.id = _ORDER_SQL.execute(conn, order.__dict__).scalar_one()
        for event in events:
            event["order_id"] = order.id
        _EVENT_SQL.execute(conn, events)
    watch.note_written(conn)  # orders.watch sees SQLAlchemy's statements only: say it
    return order


# An order and its events as the driver's SQL (db.DriverSQL); columns missing from the values are NULL.
_ORDER_SQL = DriverSQL(sa.insert(DeliveryOrder.__table__).returning(DeliveryOrder.__table__.c.id),
                       column_keys=_ORDER_COLUMNS, missing_as_none=True)
# SQLite: the same without RETURNING, the id read as the cursor's lastrowid (an INTEGER PRIMARY KEY
# is the rowid); SQLite's RETURNING cost ~0.05 ms an order in a temporary table, and its result ~0.02.
_ORDER_SQL_ROWID = DriverSQL(sa.insert(DeliveryOrder.__table__), column_keys=_ORDER_COLUMNS,
                             missing_as_none=True)
_EVENT_SQL = DriverSQL(sa.insert(OrderEvent.__table__), column_keys=(
    "order_id", "status_from", "status_to", "reason", "route_id", "server_time", "note", "actor_user_id",
    "actor_client_id", "actor_label"), missing_as_none=True)


_EVENT_KEYS = ("status_from", "status_to", "reason", "route_id", "server_time", "note", "actor_user_id",
               "actor_client_id", "actor_label")


class _OrderWithEvents:
    """PostgreSQL: a new order and its first events (1 or 2) in one statement, a data-modifying CTE
    (``WITH o AS (INSERT INTO delivery_orders … RETURNING id) INSERT INTO order_events … SELECT o.id,
    … FROM o`` … ``SELECT id FROM o``): the same rows as ``_ORDER_SQL`` then ``_EVENT_SQL``, one round
    trip instead of two. One statement per number of events, run as the driver's SQL, as they are."""

    def __init__(self) -> None:
        self._statements: dict[int, DriverSQL] = {}

    def _for(self, n: int) -> DriverSQL:
        got = self._statements.get(n)
        if got is None:
            orders, events = DeliveryOrder.__table__, OrderEvent.__table__
            o = (sa.insert(orders)
                 .values({k: sa.bindparam(f"o_{k}", type_=orders.c[k].type) for k in _ORDER_COLUMNS})
                 .returning(orders.c.id).cte("o"))
            rows = [sa.select(o.c.id, *(sa.bindparam(f"e{i}_{k}", type_=events.c[k].type)
                                        for k in _EVENT_KEYS)) for i in range(n)]
            e = sa.insert(events).from_select(["order_id", *_EVENT_KEYS],
                                               rows[0] if n == 1 else sa.union_all(*rows)).cte("e")
            got = self._statements.setdefault(n, DriverSQL(sa.select(o.c.id).add_cte(e)))
        return got

    def execute(self, conn: sa.Connection, order: dict[str, Any],
                events: list[dict[str, Any]]) -> sa.CursorResult[Any]:
        params: dict[str, Any] = {f"o_{k}": order.get(k) for k in _ORDER_COLUMNS}
        for i, event in enumerate(events):
            params.update((f"e{i}_{k}", event.get(k)) for k in _EVENT_KEYS)
        return self._for(len(events)).execute(conn, params)


# Whether add_order writes an order and its events in one statement on PostgreSQL (tests compare the
# two ways' rows: tests/test_intake_fast_hooks.py)
ONE_STATEMENT = True
_ORDER_WITH_EVENTS = _OrderWithEvents()
_ORDER_CLASS = sa.inspect(DeliveryOrder).class_manager


def _unsaved_order(values: dict[str, Any]) -> DeliveryOrder:
    """A DeliveryOrder holding ``values`` (not in the session: add_order writes it with Core), filled
    as the ORM fills an order it loads, without an attribute event per column (``DeliveryOrder(**values)``
    cost about 3 % of an order's intake). Columns not in ``values`` read as None, as they would."""
    order: DeliveryOrder = _ORDER_CLASS.new_instance()
    order.__dict__.update(values)
    return order


def build_order(actor: Actor, data: dict[str, Any], *, counter_id: int,
                idempotency_key: str | None = None) -> DeliveryOrder:
    """Check the cross-field rules of a validated order and build it (item id not yet given)."""
    return DeliveryOrder(**order_values(actor, data, counter_id=counter_id, idempotency_key=idempotency_key))


def _as(kind: Any, value: Any) -> Any:
    """``kind(value)``: the member itself when ``value`` is one already (validated data), unconverted."""
    return value if type(value) is kind else kind(value)


def order_values(actor: Actor, data: dict[str, Any], *, counter_id: int, idempotency_key: str | None = None,
                 today: dt.date | None = None, rule: Any = None, read_address: Any = None,
                 name_search_key: Any = None, due: Any = None,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """``build_order``'s checks and the new order's columns as a dict (``add_orders`` writes many at
    once). ``today``, ``rule``, ``read_address`` (a cached ``read_order_address``), ``name_search_key``
    (``search_key`` a word at a time, each word's kept: ``words_search_key``) and ``due`` (a cached
    ``due_date``) let a batch look them up once; ``now``, the batch's one moment."""
    today = today or local_today()
    address = data["address"]
    province, district, commune, detail = (read_address or read_order_address)(address, today)
    direction = _as(Direction, data["direction"])
    appointment = data.get("appointment_date")
    if appointment is None and direction is Direction.RESULT_TO_CITIZEN:
        raise InvalidInput({"appointment_date": [coded("required", "Required when delivering a result.")]})
    exemption = _as(Exemption, data.get("exemption") or Exemption.NONE)
    postage = data.get("postage_vnd") or 0
    recipient = data["recipient"]
    authorised = data.get("authorised_person") or {}
    rule = rule or rules.current()
    now = now or utcnow()
    return {
        "counter_id": counter_id,
        "api_client_id": actor.client_id,
        "created_by_id": actor.user_id,
        "idempotency_key": idempotency_key,
        "direction": direction,
        "status": Status.CREATED,
        "dossier_code": data["dossier_code"],
        "procedure_code": data.get("procedure_code"),
        "procedure_name": data["procedure_name"],
        "issuing_agency": data["issuing_agency"],
        "recipient_name": recipient["name"],
        "recipient_name_key": name_key(recipient["name"]),
        "recipient_search_key": (name_search_key or search_key)(recipient["name"]),
        "recipient_phone": recipient["phone"],
        "recipient_id_number": recipient.get("id_number"),
        "authorised_name": authorised.get("name"),
        "authorised_phone": authorised.get("phone"),
        "authorised_id_number": authorised.get("id_number"),
        "province_id": province.id,
        "district_id": district.id if district else None,
        "commune_id": commune.id,
        "address_detail": detail,
        "postage_vnd": postage,
        "payer": _as(Payer, data.get("payer") or Payer.CITIZEN),
        "exemption": exemption,
        "postage_due_vnd": postage * (100 - exemption.waived_percent) // 100,
        "collect_vnd": data.get("collect_vnd") or 0,
        "weight_g": data.get("weight_g"),
        "appointment_date": appointment,
        "window_from_min": (window := data.get("delivery_window") or {}).get("from"),
        "window_to_min": window.get("to"),
        "due_date": (due or due_date)(appointment or today, rule.delivery_target_days,
                                       rule.delivery_target_working_days),
        "note": data.get("note"),
        "created_at": now,
        "updated_at": now,
    }


# --- many orders at once (imports) ---------------------------------------------------------------

def insert_many(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in the current transaction, the fastest way each
    database has, the values converted by the columns' types as SQLAlchemy would (once per distinct
    value of a column: a chunk's rows share their dates, codes and states): SQLite, the driver's
    executemany of one prepared statement of up to 100 rows (in C); PostgreSQL, ``COPY … FROM STDIN``
    (psycopg formats the rows in C; an executemany sends one INSERT per row, and the server's work
    per statement is most of the cost). SQLAlchemy's own executemany costs more per row than these.

    Order events written this way are announced to the event log's watchers (``orders.watch``),
    which see SQLAlchemy's statements only. A refused row raises IntegrityError.
    """
    if not rows:
        return
    conn = db.session.connection()
    keys = list(rows[0])
    values = list(zip(*[_column_values(table.c[k].type, [row[k] for row in rows], conn.dialect)
                        for k in keys], strict=True))
    quote = conn.dialect.identifier_preparer.quote
    columns = ", ".join(quote(table.c[k].name) for k in keys)
    raw = conn.connection.dbapi_connection
    if table.name == OrderEvent.__tablename__:
        watch.note_written(conn)
    if conn.dialect.name == "postgresql":
        statement = f"COPY {quote(table.name)} ({columns}) FROM STDIN"
        try:
            with raw.cursor() as cursor, cursor.copy(statement) as copy:
                for row_values in values:
                    copy.write_row(row_values)
        except raw.IntegrityError as exc:  # as SQLAlchemy would raise it, for the callers' handlers
            raise IntegrityError(statement, None, exc) from exc
        return
    # Several rows per statement: SQLite runs a table's CHECK (x IN (...)) constraints with a lookup
    # table built once per execution of a statement, so a statement per row paid for it at every row
    # (a third of the orders' insert, two fifths of the events'). The rows go in the same order, each
    # bound as the one-row statement would bind it; a refused row fails its statement, whose caller
    # rolls the chunk back (IntegrityError) as before.
    width = len(keys)
    one = f"({', '.join('?' * width)})"
    per = max(1, min(SQLITE_ROWS_PER_INSERT, raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width))
    head = f"INSERT INTO {quote(table.name)} ({columns}) VALUES "
    full, rest = divmod(len(values), per)
    flat = list(itertools.chain.from_iterable(values))
    step = per * width
    statement = head + one
    cursor = raw.cursor()
    try:
        if full:
            statement = head + ", ".join([one] * per)
            cursor.executemany(statement, [flat[i:i + step] for i in range(0, full * step, step)])
        if rest:
            statement = head + ", ".join([one] * rest)
            cursor.execute(statement, flat[full * step:])
    except conn.dialect.loaded_dbapi.IntegrityError as exc:
        raise IntegrityError(statement, None, exc) from exc
    finally:
        cursor.close()


SQLITE_ROWS_PER_INSERT = 100  # rows per INSERT statement in insert_many (fewer if the columns are many)


def _column_values(type_: Any, values: list[Any], dialect: Any) -> list[Any]:
    """``values`` of one column converted by its type's bind processor, each distinct value once."""
    process = type_._cached_bind_processor(dialect)  # noqa: SLF001
    if process is None:
        return values
    done: dict[Any, Any] = {}
    try:
        return [None if v is None else done[v] if v in done else done.setdefault(v, process(v))
                for v in values]
    except TypeError:  # an unhashable value (JSON): each converted on its own
        return [None if v is None else process(v) for v in values]


_NEXT_ORDER_IDS = sa.text("SELECT nextval(pg_get_serial_sequence('delivery_orders', 'id')) "
                          "FROM generate_series(1, :n)")
# SQLite: the new orders' ids, by their (unique) item ids: an executemany with RETURNING in the rows' order
# would go row by row on SQLite.
_ORDER_IDS = sa.select(DeliveryOrder.__table__.c.item_id, DeliveryOrder.__table__.c.id).where(
    DeliveryOrder.__table__.c.item_id.in_(sa.bindparam("item_ids", expanding=True)))



def allocate_item_ids(n: int) -> list[str]:
    """``n`` new S10 identifiers in one statement (the serials of ``allocate_item_id``)."""
    if n <= 0:
        return []
    if db.session.get_bind().dialect.name == "postgresql":
        serials = sorted(db.session.execute(_NEXT_SERIALS, {"n": n}).scalars())
    else:
        serials = sorted(db.session.connection().execute(_SERIAL_ROWS, {"n": n, "at": utcnow()}).scalars())
    cfg = current_app.config
    if serials[-1] > s10.MAX_SERIAL:
        raise Conflict("The S10 serial range of this service indicator is used up: "
                       "configure a new ITEM_ID_PREFIX.", error="serials_used_up")
    return s10.make_many(cfg["ITEM_ID_PREFIX"], serials, cfg["ITEM_ID_COUNTRY"])


def add_orders(actor: Actor, items: list[tuple[dict[str, Any], str | None]], *,
               counter_id: int) -> list[str | InvalidInput]:
    """Write many validated orders (``(data, event_note)`` each) and their first events in the current
    transaction, without committing; per item its new item id, or the InvalidInput ``add_order``
    would have raised for it (nothing written for that one).

    The same orders, events, serials, route places and follow-up effects as ``add_order`` called for
    each item in turn (webhooks, report figures and notifications follow the event log), written
    with one statement per table: the serials, the orders, the events, a capacity upsert per route
    and day. Raises IntegrityError (an order stored meanwhile by another request) or
    ``routing.bulk.PlacementRaced`` (a route's capacity taken meanwhile): the caller rolls back to
    before the call and stores the items one by one.
    """
    from delivery_service.routing.bulk import place_new_orders

    today, now = local_today(), utcnow()
    rule = rules.current()
    units: dict[tuple[Any, ...], Any] = {}
    due = functools.lru_cache(maxsize=None)(due_date)  # the chunk's orders share a few dates

    def read_address(address: dict[str, Any], day: dt.date) -> tuple[Any, Any, Any, str]:
        if address.get("text") is not None:
            return read_order_address(address, day)
        key = (address["province_code"], address.get("district_code"), address["commune_code"])
        got = units.get(key)
        if got is None:
            try:
                got = units[key] = resolve_order_address(address, day)
            except InvalidInput as exc:
                got = units[key] = exc
        if isinstance(got, InvalidInput):
            raise InvalidInput(got.errors)
        return (*got, address["detail"])

    out: list[str | InvalidInput] = []
    rows: list[dict[str, Any]] = []
    notes: list[str | None] = []
    for data, note in items:
        try:
            values = order_values(actor, data, counter_id=counter_id, today=today, rule=rule,
                                  read_address=read_address, name_search_key=words_search_key, due=due,
                                  now=now)  # stored together: one moment for the chunk
        except InvalidInput as exc:
            out.append(exc)
            continue
        out.append("")
        rows.append({**_NO_VALUES, **values})
        notes.append(note)
    if not rows:
        return out
    placements = place_new_orders(rows, today)
    item_ids = allocate_item_ids(len(rows))
    for row, item_id in zip(rows, item_ids, strict=True):
        row["item_id"] = item_id
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":  # the ids from the key's sequence, as its default draws them
        ids = sorted(conn.execute(_NEXT_ORDER_IDS, {"n": len(rows)}).scalars())
        for row, order_id in zip(rows, ids, strict=True):
            row["id"] = order_id
        insert_many(DeliveryOrder.__table__, rows)
    else:
        insert_many(DeliveryOrder.__table__, rows)
        id_of = dict(conn.execute(_ORDER_IDS, {"item_ids": item_ids}).all())
        ids = [id_of[item_id] for item_id in item_ids]
    user_cols, system_cols = _actor_cols(actor), _actor_cols(SYSTEM)
    events: list[dict[str, Any]] = []
    for row, order_id, note, placement in zip(rows, ids, notes, placements, strict=True):
        created = {"order_id": order_id, "status_from": None, "status_to": Status.CREATED, "reason": None,
                   "route_id": None, "server_time": row["created_at"], "note": note, **user_cols}
        events.append(created)
        if row["route_id"] is not None:
            events.append({**created, "status_from": Status.CREATED, "status_to": Status.ASSIGNED,
                           "reason": placement.outcome.value, "route_id": row["route_id"], "note": None,
                           **system_cols})
    insert_many(OrderEvent.__table__, events)
    stored = iter(item_ids)
    return [next(stored) if result == "" else result for result in out]


@functools.lru_cache(maxsize=8192)
def _word_search_key(word: str) -> str:
    return search_key(word)


def words_search_key(text: str) -> str:
    """``search_key(text)``, a word at a time, each distinct word's key kept: a file's names share most
    of their words (family and middle names). The same text (the key is made a character at a time
    and its words are joined by single spaces; tests/test_imports_bulk.py holds the two equal)."""
    return " ".join([key for word in text.split()
                     if (key := _word_search_key(word) if len(word) <= 32 else search_key(word))])


def resolve_order_address(address: dict[str, Any], day: dt.date) -> tuple[Any, Any, Any]:
    """The address's units on ``day``; InvalidInput with each wrong code under ``address``."""
    try:
        return resolve_address(address["province_code"], address.get("district_code"),
                               address["commune_code"], day)
    except InvalidInput as exc:
        raise InvalidInput({"address": exc.errors}) from None


def raw_address_errors(raw: Any, day: dt.date) -> dict[str, Any]:
    """The mistakes in the units of an address that failed the schema for other reasons (``raw``,
    the body's ``address`` as sent), under ``address``: a client whose body has several mistakes
    hears of them all in one answer, the wrong commune with the rest. {} when there is none to tell
    or the address is not shaped enough to look its units up."""
    if not isinstance(raw, dict):
        return {}
    codes = [raw.get(k) for k in ("province_code", "commune_code")]
    try:
        if "text" not in raw and all(isinstance(c, str) and c for c in codes):
            resolve_order_address(raw, day)
        elif set(raw) <= {"text", "detail"} and isinstance(raw.get("text"), str) and raw["text"].strip():
            detail = " ".join(raw["detail"].split()) if isinstance(raw.get("detail"), str) else None
            read_order_address({"text": raw["text"], "detail": detail or None}, day)
    except InvalidInput as exc:
        return exc.errors
    return {}


class AddressCandidates(Message):
    """The message of an address text read without certainty; ``extra`` (the ranked candidates)
    goes into the error's entry in ``details``."""

    extra: dict[str, Any]


def read_order_address(address: dict[str, Any], day: dt.date) -> tuple[Any, Any, Any, str]:
    """The units and the detail of a validated address (codes, or ``text`` read by the parser on
    ``day``); InvalidInput under ``address`` otherwise. The codes never reach the parser."""
    if address.get("text") is None:
        return (*resolve_order_address(address, day), address["detail"])
    from delivery_service.addresses.api import address_parser  # it imports this module

    result = address_parser().parse(address["text"], day)
    if not result.sure or result.province is None or result.commune is None:
        raise InvalidInput({"address": {"text": [address_candidates(result.candidates, day)]}})
    province, district, commune = resolve_order_address({
        "province_code": result.province.code, "commune_code": result.commune.code,
        "district_code": result.district.code if result.district is not None else None}, day)
    detail = address.get("detail") or result.detail
    if not detail:
        raise InvalidInput({"address": {"detail": [coded(
            "required", "The text names no house number, street or hamlet: give them in detail.")]}})
    if len(detail) > ADDRESS_DETAIL_MAX:
        raise InvalidInput({"address": {"detail": [coded(
            "too_long", f"What the text gives besides the units is longer than {ADDRESS_DETAIL_MAX} "
                        "characters: give the house number, street and hamlet in detail.")]}})
    return province, district, commune, detail


ADDRESS_DETAIL_MAX = 255  # AddressIn.detail's limit


def address_candidates(candidates: list[Any], day: dt.date) -> AddressCandidates:
    """The per-field message of an unclear address text, with the candidates (codes, names, score);
    a candidate of a structure that ended before ``day`` also names the commune that succeeded it."""
    from delivery_service.units.succession import successors

    index = unit_index()

    def ref(unit: Any) -> dict[str, str] | None:
        return {"code": unit.code, "name": unit.name} if unit is not None else None

    def successor(c: Any) -> Any:
        code = successors().get(c.commune.code) if c.legacy and c.commune is not None else None
        return index.find(UnitLevel.COMMUNE, code, day) if code else None

    def label(c: Any) -> str:
        names = [u.name for u in (c.commune, c.district, c.province) if u is not None]
        codes = "/".join(u.code for u in (c.province, c.district, c.commune) if u is not None)
        after = successor(c)
        return f"{', '.join(names)} ({codes}{f' → {after.name} {after.code}' if after else ''})"

    if candidates:
        shown = "; ".join(label(c) for c in candidates)
        text = f"Không rõ địa chỉ, có phải: {shown}? / Ambiguous address: did you mean {shown}?"
    else:
        text = ("Không đọc được xã / phường và tỉnh / thành phố trong địa chỉ. / "
                "Address not recognised: write the commune (ward) and the province.")
    message = AddressCandidates("ambiguous_address" if candidates else "unknown_address", text)
    message.extra = {"candidates": [
        {"province": ref(c.province), "district": ref(c.district), "commune": ref(c.commune),
         "score": c.score, "legacy": c.legacy, "successor": ref(successor(c))} for c in candidates]}
    return message


def find_duplicate(counter_id: int, dossier_code: str, direction: Direction,
                   idempotency_key: str | None) -> DeliveryOrder | None:
    """The stored order a create call repeats, if any: the one with its Idempotency-Key (cancelled or
    not), else the dossier's order in that direction that is not cancelled (a cancelled order gives its
    dossier back, ``uq_orders_dossier``)."""
    conds = [sa.and_(DeliveryOrder.dossier_code == dossier_code, DeliveryOrder.direction == direction,
                     DeliveryOrder.status != Status.CANCELLED)]
    if idempotency_key:
        conds.insert(0, DeliveryOrder.idempotency_key == idempotency_key)
    rows = db.session.scalars(sa.select(DeliveryOrder).where(
        DeliveryOrder.counter_id == counter_id, sa.or_(*conds))).all()
    by_key = [o for o in rows if idempotency_key and o.idempotency_key == idempotency_key]
    return (by_key or rows or [None])[0]


def sent_again(actor: Actor, order: DeliveryOrder) -> DeliveryOrder | None:
    """For a cancelled order, the order its counter made of the same dossier and direction since (the
    one not cancelled, ``uq_orders_dossier``), if the actor may see it; else None."""
    if order.status is not Status.CANCELLED:
        return None
    return db.session.scalar(scope(sa.select(DeliveryOrder), actor).where(
        DeliveryOrder.counter_id == order.counter_id, DeliveryOrder.dossier_code == order.dossier_code,
        DeliveryOrder.direction == order.direction, DeliveryOrder.status != Status.CANCELLED))


def _actor_cols(actor: Actor) -> dict[str, Any]:
    return {"actor_user_id": actor.user_id, "actor_client_id": actor.client_id, "actor_label": actor.label}


# --- reading, always through the actor's scope ----------------------------------------------------

def scope(stmt: sa.Select, actor: Actor) -> sa.Select:
    """Restrict a select over DeliveryOrder to what ``actor`` may see."""
    if actor.role is Role.ADMIN:
        return stmt
    if actor.role is Role.COUNTER_STAFF:
        return stmt.where(DeliveryOrder.counter_id == actor.counter_id)
    if actor.role is Role.COURIER:
        routes = sa.select(PostalRoute.id).where(PostalRoute.courier_id == actor.user_id)
        return stmt.where(DeliveryOrder.route_id.in_(routes))
    if actor.role is Role.SUPERVISOR:
        from delivery_service.routing.services import scope_orders

        return scope_orders(stmt, actor)
    # District and province officers read figures and weekly reports of their area, which hold no
    # personal data (docs/privacy.md): no order rows, through the pages or the API.
    return stmt.where(sa.false())


def get_order(actor: Actor, item_id: str) -> DeliveryOrder:
    """The order with this item id if the actor may see it; NotFound otherwise (no existence leak)."""
    order = db.session.scalar(scope(sa.select(DeliveryOrder), actor)
                              .where(DeliveryOrder.item_id == s10.normalize(item_id)))
    if order is None:
        if not s10.is_valid(s10.normalize(item_id)):  # a mistyped id: say so, not only "no order"
            raise NotFound(f"No order {item_id}: that is not a valid item id (two letters, eight digits, "
                           "the check digit, VN), check it for a typing mistake.")
        raise NotFound(f"No order {item_id}")
    return order


def find_orders(actor: Actor, *, q: str | None = None, created_on: dt.date | None = None,
                status: Status | None = None) -> sa.Select:
    """A select of the actor's orders, newest first: matching ``q`` (item id, dossier code or phone
    equal to it, or a name containing it), created on the local date ``created_on``, in ``status``
    now (each when given)."""
    stmt = scope(sa.select(DeliveryOrder), actor)
    if q is not None:
        stmt = stmt.where(_search_condition(q))
    if status is not None:
        stmt = stmt.where(DeliveryOrder.status == status)
    if created_on is not None:
        start = day_start(created_on)
        stmt = stmt.where(DeliveryOrder.created_at >= start,
                          DeliveryOrder.created_at < start + dt.timedelta(days=1))
    return stmt.order_by(DeliveryOrder.id.desc())


def _search_condition(query: str) -> sa.ColumnElement[bool]:
    text = unicodedata.normalize("NFC", query).strip()
    if not text or any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text):
        return sa.false()
    conds = [DeliveryOrder.dossier_code == text, DeliveryOrder.item_id == s10.normalize(text)]
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and len(digits) >= 9 and not any(ch.isalpha() for ch in text):
        conds.append(DeliveryOrder.recipient_phone == normalise_phone_digits(digits))
    key = search_key(text)  # case and diacritics ignored: "anh tuyet" finds "Ánh Tuyết"
    if len(key) >= 2:
        escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conds.append(DeliveryOrder.recipient_search_key.like(f"%{escaped}%", escape="\\"))
    return sa.or_(*conds)


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: its orders, the number of all matches, and the page's place."""

    orders: list[DeliveryOrder]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def search_orders(actor: Actor, query: str, *, page: int = 1, per_page: int = 50) -> SearchPage:
    """The actor's orders matching ``query`` (see find_orders), newest first, one page of them."""
    stmt = find_orders(actor, q=query)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())) or 0
    page = max(1, min(page, max(1, -(-total // per_page))))
    orders = list(db.session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
    return SearchPage(orders, total, page, per_page)


def normalise_phone_digits(digits: str) -> str:
    if digits.startswith("84") and len(digits) in (11, 12):
        return "0" + digits[2:]
    return digits if digits.startswith("0") else "0" + digits


def orders_created_on(actor: Actor, day: dt.date, limit: int = 500) -> list[DeliveryOrder]:
    """The actor's orders created on ``day`` (local date), newest first."""
    return list(db.session.scalars(find_orders(actor, created_on=day).limit(limit)))


# --- status changes --------------------------------------------------------------------------

# Which roles may set which statuses; an admin may set any.
ROLE_TARGETS: dict[Role, set[Status]] = {
    Role.COUNTER_STAFF: {Status.CANCELLED},
    Role.COURIER: {Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY, Status.DELIVERED,
                   Status.FAILED_ATTEMPT, Status.RETURNED_TO_AGENCY, Status.PICKUP_SCHEDULED,
                   Status.PICKED_UP, Status.DELIVERED_TO_AGENCY},
    Role.SUPERVISOR: {Status.CANCELLED, Status.RETURNED_TO_AGENCY},
    Role.DISTRICT_OFFICER: set(),
}


# What a courier records only from the app (POST /api/v1/courier/sync), where each needs its proof: a
# delivery its receiver and identity check, a dossier's pickup its documents, a failed attempt a
# listed reason. The general events endpoint refuses them to a courier (orders.api.add_event).
WITH_PROOF = frozenset({Status.DELIVERED, Status.PICKED_UP, Status.FAILED_ATTEMPT})


def check_general_event(actor: Actor, target: Status) -> None:
    """Refuse a courier's status that needs the proof the courier app records with it."""
    if actor.role is Role.COURIER and target in WITH_PROOF:
        raise Forbidden(f"Record {target.value} from the courier app (POST /api/v1/courier/sync): it needs "
                        "its proof (receiver and identity check, documents, or a listed reason).")


def device_time_problem(device_time: dt.datetime, created_at: dt.datetime, now: dt.datetime) -> str | None:
    """Why ``device_time`` (a phone's or counter system's clock) cannot be when an event of an order
    created at ``created_at`` happened, or None: more than MAX_CLOCK_SKEW_S ahead of the server, or
    that much before the order existed (the reports count an event on its device day)."""
    skew = dt.timedelta(seconds=current_app.config["MAX_CLOCK_SKEW_S"])
    if device_time - now > skew:
        return (f"The device's clock is {int((device_time - now).total_seconds())} s ahead of the server's "
                f"(at most {int(skew.total_seconds())} s): set its date and time automatically.")
    if created_at - device_time > skew:
        return "Before the order was created: check the device's date and time."
    return None


def change_status(actor: Actor, item_id: str, target: Status, *, device_time: dt.datetime | None = None,
                  latitude: float | None = None, longitude: float | None = None,
                  accuracy_m: float | None = None, reason: str | None = None, note: str | None = None,
                  client_event_id: str | None = None, commit: bool = True,
                  correction_of: OrderEvent | None = None, order: DeliveryOrder | None = None,
                  replay_checked: bool = False, check_time: bool = False) -> tuple[OrderEvent, bool]:
    """Move an order to ``target`` and log the event; commits.

    Returns ``(event, True)``, or ``(earlier_event, False)`` for a replay: the same ``client_event_id``
    sent again for the same order and status (an offline phone resending), also by a copy that ran
    at the same time and lost the race to store it. Raises Conflict (409) with the reason when the
    move is impossible, when the status changed meanwhile, or when the ``client_event_id`` was used
    for another change.

    ``commit=False``: flush the event instead, so that the caller writes what belongs with it in the
    same transaction (the courier app's proof of delivery) and commits. ``correction_of``: undo that
    event (the caller has checked it may): the order goes back to the event's ``status_from``, which
    the machine alone would refuse (a delivered order is closed); allowed only while the order is
    still in the status that event set. ``order``: the order as the caller already read it through
    the actor's scope (not read again); ``replay_checked``: the caller has looked the
    ``client_event_id`` up already (a concurrent duplicate still fails on the unique key). With
    ``commit=False`` or ``replay_checked`` a lost race raises Conflict after rolling back: the caller
    owns the transaction, so it looks the event up again itself. ``check_time``: refuse an
    implausible ``device_time`` (``device_time_problem``: the API's callers' clocks).
    """
    # A racing copy of this request (same client_event_id) that got in first moved the status, so
    # this one fails the machine's check or the compare-and-set below; after the rollback the winner's
    # event is visible (PostgreSQL: the UPDATE waited on the row lock until the winner committed;
    # SQLite: writes are serialised), and the request is answered as its replay.
    replay_after_race = bool(client_event_id) and commit and not replay_checked
    if (correction_of is None and actor.role is not Role.ADMIN
            and target not in ROLE_TARGETS.get(actor.role, set())):
        raise Forbidden(f"Your role cannot set the status {target.value}.")
    if order is None:
        order = db.session.scalar(scope(sa.select(DeliveryOrder), actor)
                                  .where(DeliveryOrder.item_id == s10.normalize(item_id)))
    if order is None:
        raise NotFound(f"No order {item_id}")
    if client_event_id and not replay_checked:
        replay = _replay(order, target, client_event_id)
        if replay is not None:
            return replay, False
    if check_time and device_time is not None and (
            problem := device_time_problem(device_time, order.created_at, utcnow())):
        raise InvalidInput({"device_time": [coded("implausible_time", problem)]})
    if correction_of is not None:
        if (correction_of.order_id != order.id or order.status is not correction_of.status_to
                or target is not correction_of.status_from):
            current = order.status.value
            db.session.rollback()
            raise Conflict("The order has changed since that event; it can no longer be corrected.",
                           error="already_changed", current_status=current, requested=target.value)
    else:
        try:
            machine.check(order.direction, order.status, target,
                          results_started=order.dossier_delivered_at is not None)
        except machine.TransitionRefused as exc:
            db.session.rollback()
            replay = _replay(order, target, client_event_id) if replay_after_race else None
            if replay is not None:
                return replay, False
            raise Conflict(exc.reason, error="transition_refused", current_status=order.status.value,
                           requested=target.value) from None
    now = utcnow()
    changes: dict[str, Any] = {"status": target, "updated_at": now}
    if target is Status.DELIVERED_TO_AGENCY:
        changes["dossier_delivered_at"] = now
    # Compare-and-set: of two concurrent changes from the same status only one updates a row, on
    # every backend (SQLite ignores SELECT ... FOR UPDATE).
    moved = db.session.execute(
        sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id, DeliveryOrder.status == order.status)
        .values(**changes).execution_options(synchronize_session=False)).rowcount
    if moved != 1:
        db.session.rollback()
        replay = _replay(order, target, client_event_id) if replay_after_race else None
        if replay is not None:
            return replay, False
        current = db.session.scalar(sa.select(DeliveryOrder.status).where(DeliveryOrder.id == order.id))
        raise Conflict("The order's status changed meanwhile; reload it and try again.",
                       error="status_changed", current_status=current.value if current else None,
                       requested=target.value)
    if target in (Status.CANCELLED, Status.RETURNED_TO_AGENCY):  # its place on the route is free again
        from delivery_service.routing.services import release

        release(order.route_id, order.run_date)
    if target is Status.DELIVERED and latitude is not None and longitude is not None:
        from delivery_service.geo.services import learn_delivery_point

        learn_delivery_point(order.id, latitude, longitude, accuracy_m)
    event = OrderEvent(order_id=order.id, status_from=order.status, status_to=target,
                       device_time=device_time.astimezone(dt.UTC) if device_time else None,
                       latitude=latitude, longitude=longitude, server_time=now,
                       accuracy_m=accuracy_m, reason=reason, note=note, client_event_id=client_event_id,
                       **_actor_cols(actor))
    db.session.add(event)
    if not commit:
        db.session.flush()  # a duplicate client_event_id raises here, for the caller to handle
        for key, value in changes.items():
            set_committed_value(order, key, value)
        return event, True
    try:
        db.session.commit()
    except IntegrityError:  # the same client_event_id committed meanwhile by a concurrent request
        db.session.rollback()
        replay = _replay(order, target, client_event_id) if client_event_id else None
        if replay is None:
            raise
        return replay, False
    for key, value in changes.items():  # the session's copy, as committed (no new change to flush)
        set_committed_value(order, key, value)
    return event, True


def _replay(order: DeliveryOrder, target: Status, client_event_id: str) -> OrderEvent | None:
    """The stored event a request repeats; Conflict if its id was used for a different change."""
    seen = db.session.scalar(sa.select(OrderEvent).where(OrderEvent.client_event_id == client_event_id))
    if seen is None:
        return None
    if seen.order_id != order.id or seen.status_to is not target:
        db.session.rollback()
        raise Conflict("This event_id was already used for another status change; "
                       "every change needs an event_id of its own.", error="event_id_reused")
    return seen


# --- address corrections -------------------------------------------------------------------------

READDRESSABLE = {Status.CREATED, Status.ASSIGNED, Status.FAILED_ATTEMPT, Status.PICKUP_SCHEDULED}
ADDRESS_ROLES = frozenset({Role.ADMIN, Role.SUPERVISOR, Role.COUNTER_STAFF})


def address_changeable(actor: Actor, order: DeliveryOrder) -> bool:
    """Whether ``change_address`` would take a new address for ``order`` (one the actor may see) from
    ``actor`` now: the same rules, for a page to offer the correction or not."""
    return actor.role in ADDRESS_ROLES and order.status in READDRESSABLE


def change_address(actor: Actor, item_id: str, address: dict[str, Any], *,
                   note: str | None = None) -> DeliveryOrder:
    """Correct an order's delivery address; it is placed again (route, capacity) and located again.
    An event records it; commits. Counter staff may correct their own counter's orders."""
    from delivery_service.routing import services as routing

    if actor.role not in ADDRESS_ROLES:
        raise Forbidden("Your role cannot change an order's address.")
    order = db.session.scalar(scope(sa.select(DeliveryOrder), actor)
                              .where(DeliveryOrder.item_id == s10.normalize(item_id))
                              .execution_options(populate_existing=True))
    if order is None:
        raise NotFound(f"No order {item_id}")
    if order.status not in READDRESSABLE:
        raise Conflict(f"The order is {order.status.value}: its address can no longer change.",
                       error="address_locked", current_status=order.status.value)
    province, district, commune, detail = read_order_address(address, local_today())
    before = order.status
    order.province_id, order.district_id = province.id, district.id if district else None
    order.commune_id, order.address_detail = commune.id, detail
    order.updated_at = now = utcnow()
    db.session.add(OrderEvent(order_id=order.id, status_from=before, status_to=before, server_time=now,
                              reason="address_changed", note=note, route_id=order.route_id,
                              **_actor_cols(actor)))
    # The position found for the old address goes (a pin set by hand too: it marked the old door);
    # the planner, or the geocoding scan with rq (it reads this event), locates the new one.
    db.session.execute(sa.delete(OrderLocation).where(OrderLocation.order_id == order.id))
    db.session.flush()
    routing.readdress(order, SYSTEM)
    db.session.commit()
    return order
