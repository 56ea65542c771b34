"""S10 serials allocated by several processes at once never collide and are never reused."""

from __future__ import annotations

import multiprocessing

import sqlalchemy as sa

from delivery_service.extensions import db
from labels import s10


def _allocate(url: str, n: int, queue: multiprocessing.Queue) -> None:
    from delivery_service import create_app
    from delivery_service.orders.services import allocate_item_id

    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "x", "TESTING": True})
    ids = []
    with app.app_context():
        for i in range(n):
            ids.append(allocate_item_id())
            if i % 5 == 4:
                db.session.rollback()  # an abandoned transaction must not hand its serial out again
                ids.pop()
            else:
                db.session.commit()
    queue.put(ids)


def test_processes_never_share_a_serial(app):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_allocate, args=(app.config["DATABASE_URL"], 40, queue)) for _ in range(4)]
    for p in procs:
        p.start()
    ids = [item for _ in procs for item in queue.get(timeout=120)]
    for p in procs:
        p.join(timeout=60)
    assert len(ids) == 4 * 32
    assert len(set(ids)) == len(ids)
    assert all(s10.is_valid(i) for i in ids)
    # a later allocation continues past every committed serial
    from delivery_service.orders.services import allocate_item_id

    db.session.rollback()
    newest = allocate_item_id()
    assert s10.parse(newest)[1] > max(s10.parse(i)[1] for i in ids)
    if app.config["DATABASE_URL"].startswith("sqlite"):
        assert db.session.scalar(sa.text("SELECT COUNT(*) FROM item_serials")) >= len(ids)
