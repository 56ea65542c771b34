"""S10 serials drawn in blocks on both databases (SQLite: in a transaction of its own): an order's
transaction spends no statement on its serial, a serial is never handed out twice, also after the
order's transaction rolled back, in a forked child, or when the transaction had written already."""

from __future__ import annotations

import os

import sqlalchemy as sa

from delivery_service.extensions import db
from delivery_service.orders.services import SERIAL_BLOCK, allocate_item_id
from labels import s10


def _serial(item_id: str) -> int:
    return s10.parse(item_id)[1]


def _stored_serials() -> set[int]:
    return set(db.session.scalars(sa.text("SELECT id FROM item_serials")))


def test_a_block_outlives_the_transaction_that_drew_it(app):
    first = allocate_item_id()
    db.session.rollback()  # the order's transaction is abandoned: its serial is a gap, never reused
    rest = [allocate_item_id() for _ in range(SERIAL_BLOCK + 3)]  # past the end of the first block
    db.session.commit()
    serials = [_serial(i) for i in [first, *rest]]
    assert serials == sorted(set(serials))  # increasing, no repeats, the rolled back one not again
    if app.config["DATABASE_URL"].startswith("sqlite"):
        # the blocks were committed on their own: every serial handed out has its row
        assert set(serials) <= _stored_serials()


def test_an_order_spends_no_statement_on_its_serial_within_a_block(app, client, auth):
    from conftest import order_payload

    assert client.post("/api/v1/orders", json=order_payload(), headers=auth).status_code == 201
    seen: list[str] = []

    def count(conn, cursor, statement, *args):  # noqa: ANN001, ANN202
        seen.append(statement)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        made = [client.post("/api/v1/orders", json=order_payload(), headers=auth) for _ in range(3)]
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert all(r.status_code == 201 for r in made)
    serials = [_serial(r.json["item_id"]) for r in made]
    assert serials == sorted(set(serials))
    drawn = [s for s in seen if "item_serials" in s]
    assert len(drawn) <= 1  # at most one block for three orders (none when the first block lasts)


def test_a_transaction_that_wrote_already_takes_its_serial_inside_it(app, backend):
    # SQLite: a second connection would wait for this transaction's write lock; the serial is then
    # one row of this transaction, rolled back with it (nothing handed out is lost or repeated).
    db.session.execute(sa.text("INSERT INTO item_serials (allocated_at) VALUES (CURRENT_TIMESTAMP)"))
    app.extensions.pop("serial_block", None)  # no block left: a new one would be drawn
    inside = allocate_item_id()
    db.session.commit()
    after = allocate_item_id()
    db.session.commit()
    assert _serial(after) > _serial(inside)
    if backend == "sqlite":
        assert _serial(inside) in _stored_serials()


def test_a_forked_child_never_reuses_its_parents_block_on_either_database(app):
    first = allocate_item_id()  # fills this process's block
    db.session.commit()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            db.session.remove()
            db.engine.dispose(close=False)  # the parent's connections are not the child's
            os.write(write_end, allocate_item_id().encode())
            db.session.commit()
        finally:
            os._exit(0)
    os.close(write_end)
    child_id = os.read(read_end, 64).decode()
    os.waitpid(pid, 0)
    parent_ids = {allocate_item_id() for _ in range(SERIAL_BLOCK)}
    assert s10.is_valid(child_id)
    assert child_id not in parent_ids and child_id != first
