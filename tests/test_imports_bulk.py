"""The import's bulk write against the general paths it stands for, on the same inputs: ``insert_many``
(several rows per SQLite statement) against a Core insert, ``words_search_key`` against ``search_key``,
and ``add_orders`` (a chunk's orders and events at once) against ``add_order`` called for each."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import order_payload
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.exc import IntegrityError

from delivery_service.db import UTCDateTime
from delivery_service.extensions import db
from delivery_service.orders import services
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.services import insert_many, words_search_key
from delivery_service.vietnamese import search_key

TEXT = st.text(alphabet=st.one_of(
    st.characters(), st.sampled_from(" \t\n\u00a0\u2000\u2001\u3000\u0300\u0301\u0303\u0309\u0323đĐİßﬁ"),
    st.sampled_from("Nguyễn Thị Ánh Tuyết Đặng Văn Bình Hoà Hòa"),
), max_size=30)


@given(TEXT)
def test_words_search_key_is_search_key(text: str) -> None:
    assert words_search_key(text) == search_key(text)


def test_words_search_key_of_names() -> None:
    for name in ("Nguyễn Thị Hoa", "Đặng  Ánh Tuyết", " Lê Văn\tAn ", "Nguye\u0302\u0303n", "", "  ", "\u0301 a",
                 "İSTANBUL ẞ ﬁ", "Hoà Hòa HOÀ"):
        assert words_search_key(name) == search_key(name), name


class Mood(enum.Enum):
    GOOD = "good"
    BAD = "bad"


def _tables() -> tuple[sa.MetaData, sa.Table, sa.Table]:
    meta = sa.MetaData()

    def table(name: str) -> sa.Table:
        return sa.Table(
            name, meta, sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("text", sa.String(50)), sa.Column("mood", sa.Enum(Mood, native_enum=False, length=8)),
            sa.Column("day", sa.Date), sa.Column("at", UTCDateTime), sa.Column("extra", sa.JSON),
            sa.Column("small", sa.SmallInteger), sa.Column("ratio", sa.Float), sa.Column("flag", sa.Boolean))

    return meta, table(f"bulk_a_{uuid.uuid4().hex[:6]}"), table(f"bulk_b_{uuid.uuid4().hex[:6]}")


def _row(i: int) -> dict[str, Any]:
    return {"id": i, "text": [None, "", "Hà Nội", f"x{i}", "a'b\"c;"][i % 5], "mood": [Mood.GOOD, Mood.BAD, None][i % 3],
            "day": dt.date(2026, 1, 1) + dt.timedelta(days=i % 7) if i % 4 else None,
            "at": dt.datetime(2026, 1, 1, 8, tzinfo=dt.UTC) + dt.timedelta(seconds=i) if i % 6 else None,
            "extra": [None, {"a": [i, "ư"]}, ["x"], "s"][i % 4], "small": i % 300 - 150 if i % 5 else None,
            "ratio": i / 7 if i % 2 else None, "flag": [True, False, None][i % 3]}


@pytest.mark.parametrize("per", [7, 100])
def test_insert_many_stores_what_one_row_statements_and_a_core_insert_store(app, monkeypatch, per: int) -> None:
    """Each size below, at and above a statement's rows (and their remainder): the same values, of the
    same types, as one statement per row (``per`` 1, the former way) stores; read back, what a Core
    insert stores (which writes a JSON None as JSON null, insert_many as SQL NULL: read alike)."""
    meta, bulk, single = _tables()
    _meta, core, _ = _tables()
    meta.create_all(db.engine)
    _meta.create_all(db.engine, tables=[core])
    try:
        start = 0
        for n in (1, 6, 7, 8, 99, 100, 101, 250):
            rows = [_row(i) for i in range(start, start + n)]
            start += n
            monkeypatch.setattr(services, "SQLITE_ROWS_PER_INSERT", per)
            insert_many(bulk, rows)
            monkeypatch.setattr(services, "SQLITE_ROWS_PER_INSERT", 1)
            insert_many(single, rows)
            db.session.execute(core.insert(), rows)
        db.session.commit()
        typeof = "typeof" if db.engine.dialect.name == "sqlite" else "pg_typeof"

        def stored(table: sa.Table) -> list[tuple[Any, ...]]:
            cols = [c.name for c in table.columns]
            return [tuple(r) for r in db.session.execute(sa.text(
                f"SELECT {', '.join(cols)}, {', '.join(f'{typeof}({c})' for c in cols)} "
                f"FROM {table.name} ORDER BY id")).all()]

        got = stored(bulk)
        assert len(got) == start and got == stored(single)
        read = db.session.execute(sa.select(bulk).order_by(bulk.c.id)).all()
        assert read == db.session.execute(sa.select(core).order_by(core.c.id)).all()
        assert read == [tuple(_row(i).values()) for i in range(start)]
    finally:
        db.session.rollback()
        meta.drop_all(db.engine)
        _meta.drop_all(db.engine, tables=[core])
        _meta.drop_all(db.engine, tables=[core])


def test_a_refused_row_of_a_multi_row_insert_raises_integrity_error(app, monkeypatch) -> None:
    monkeypatch.setattr(services, "SQLITE_ROWS_PER_INSERT", 4)
    meta, bulk, _core = _tables()
    meta.create_all(db.engine)
    try:
        with pytest.raises(IntegrityError):
            insert_many(bulk, [_row(i) for i in range(6)] + [_row(2)])
        db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(bulk)) == 0
    finally:
        db.session.rollback()
        meta.drop_all(db.engine)


def _orders() -> list[dict[str, Any]]:
    """Validated orders of many shapes (OrderIn's output)."""
    from delivery_service.orders.schemas import OrderIn

    later = (dt.date.today() + dt.timedelta(days=40)).isoformat()
    bodies = [
        order_payload(),
        order_payload(recipient={"name": "Đặng  Ánh Tuyết", "phone": "0905123456", "id_number": "079123456789"}),
        order_payload(recipient={"name": "Nguyễn Văn Bình 12", "phone": "+84905123456"}, appointment_date=later),
        order_payload(direction="dossier_to_agency", appointment_date=None),
        order_payload(direction="both", delivery_window="sáng", weight_g=1250, note="Gọi trước\nkhi giao"),
        order_payload(payer="agency", exemption="war_invalid", postage_vnd=30001, collect_vnd=150000),
        order_payload(authorised_person={"name": "Trần Văn Nam", "phone": "0912345678", "id_number": "012345678"}),
        order_payload(address={"province_code": "51", "commune_code": "21028", "detail": "5 Lê Lợi"}),
        order_payload(address={"province_code": "51", "commune_code": "21172", "detail": "Thôn 3"},
                      procedure_code=None),
        order_payload(address={"province_code": "51", "commune_code": "99999", "detail": "x"}),  # refused
        order_payload(address={"province_code": "51", "commune_code": "21211", "detail": "Tổ 1"},
                      delivery_window={"from": "08:00", "to": "10:30"}),
        order_payload(recipient={"name": "HOÀ hoà Hòa", "phone": "0905123456"}),
    ]
    schema = OrderIn()
    return [schema.load(body) for body in bodies]


def _stored(order_ids: list[int]) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The orders' columns and their events' but for ids, serials and clocks."""
    skip = {"id", "item_id", "created_at", "updated_at"}
    orders = [{k: v for k, v in db.session.execute(sa.select(DeliveryOrder.__table__).where(
        DeliveryOrder.__table__.c.id == order_id)).one()._mapping.items() if k not in skip} for order_id in order_ids]
    events = [[{k: v for k, v in e._mapping.items() if k not in {"id", "order_id", "server_time"}}
               for e in db.session.execute(sa.select(OrderEvent.__table__).where(
                   OrderEvent.__table__.c.order_id == order_id).order_by(OrderEvent.__table__.c.id)).all()]
              for order_id in order_ids]
    return orders, events


def test_add_orders_stores_what_add_order_stores(app, token) -> None:
    """The same orders through the bulk path and one by one, each from the same database state:
    the same columns (the search key, due date and units included), events, places and refusals."""
    from delivery_service.accounts.services import actor_for_token
    from delivery_service.errors import InvalidInput
    from delivery_service.orders.services import add_order, add_orders

    actor = actor_for_token(token)
    items = _orders()
    one_by_one: list[Any] = []
    for i, data in enumerate(items):
        try:  # a refused order raises before add_order writes anything
            one_by_one.append(add_order(actor, data, counter_id=actor.counter_id, event_note=f"line {i}").id)
        except InvalidInput as exc:
            one_by_one.append(exc.errors)
    expected = _stored([x for x in one_by_one if isinstance(x, int)])
    db.session.rollback()

    got = add_orders(actor, [(data, f"line {i}") for i, data in enumerate(items)], counter_id=actor.counter_id)
    assert [isinstance(g, str) for g in got] == [isinstance(x, int) for x in one_by_one]
    assert [g.errors for g in got if isinstance(g, InvalidInput)] == [x for x in one_by_one if isinstance(x, dict)]
    ids = dict(db.session.execute(sa.select(DeliveryOrder.item_id, DeliveryOrder.id).where(
        DeliveryOrder.item_id.in_([g for g in got if isinstance(g, str)]))).all())
    stored = _stored([ids[g] for g in got if isinstance(g, str)])
    assert stored == expected
    assert len(stored[0]) == 11 and any(len(events) == 2 for events in stored[1])
    db.session.rollback()


@pytest.mark.config(IMPORT_CHUNK_ROWS=2)
def test_the_garbage_collector_runs_again_after_an_upload_and_its_job(client, auth, monkeypatch) -> None:
    """The collector, held off while a file's kept rows are read and while a chunk is stored, works
    again after a good import, a refused file, a file longer than the rows kept, and a failed chunk."""
    import gc

    from test_imports import row, to_csv, upload

    from delivery_service.imports import services as imports
    from delivery_service.imports.services import count_rows

    assert gc.isenabled()
    body = upload(client, auth, to_csv([row() for _ in range(5)])).json
    assert (body["state"], body["created_rows"]) == ("done", 5) and gc.isenabled()
    assert upload(client, auth, b"direction\n\"x").status_code == 422 and gc.isenabled()  # malformed
    table, total = count_rows("csv", to_csv([row() for _ in range(5)]), keep=3)
    assert (total, table.rows) == (5, []) and gc.isenabled()
    with pytest.raises(Exception):  # noqa: B017, PT011  (too many rows: refused while kept)
        count_rows("csv", to_csv([row() for _ in range(5)]), max_rows=2, keep=3)
    assert gc.isenabled()

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a chunk failed")

    monkeypatch.setattr(imports, "add_orders", fail)
    body = upload(client, auth, to_csv([row() for _ in range(3)])).json
    assert body["state"] == "failed" and gc.isenabled()
