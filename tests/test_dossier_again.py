"""A cancelled order gives its dossier back (migration 0029): the counter that cancelled an order made with
wrong data sends the same dossier again, through the API, the counter page or an import, and gets a new
order; while the dossier has an order that is not cancelled, it is refused (409) or replayed (200) as
before, and a retry with the cancelled order's Idempotency-Key still finds the cancelled order."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from conftest import login, order_payload
from test_imports import row, to_csv, upload
from web_helpers import form_data

from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.status import Status


def orders_of(dossier: str) -> list[tuple[str, Status]]:
    db.session.rollback()
    return [(o.item_id, o.status) for o in db.session.scalars(
        sa.select(DeliveryOrder).where(DeliveryOrder.dossier_code == dossier).order_by(DeliveryOrder.id))]


def cancel(client, auth, item_id: str) -> None:
    resp = client.post(f"/api/v1/orders/{item_id}/events", json={"status": "cancelled", "note": "Sai địa chỉ"},
                       headers=auth)
    assert resp.status_code == 201, resp.json


def test_api_sends_a_cancelled_dossier_again(client, auth):
    body = order_payload(dossier_code="H55-AGAIN-API")
    first = client.post("/api/v1/orders", json=body, headers=auth)
    assert first.status_code == 201
    corrected = order_payload(dossier_code="H55-AGAIN-API", address={
        "province_code": "51", "commune_code": "21025", "detail": "99 Quang Trung"})
    refused = client.post("/api/v1/orders", json=corrected, headers=auth)
    assert refused.status_code == 409 and refused.json["error"] == "dossier_exists"
    assert "cancel it and send the dossier again" in refused.json["message"]

    cancel(client, auth, first.json["item_id"])
    again = client.post("/api/v1/orders", json=corrected, headers=auth)
    assert again.status_code == 201, again.json
    assert again.json["item_id"] != first.json["item_id"] and again.json["status"] == "assigned"
    # a retry of the new order is the new order; the old body is now "another body" of the live one
    assert client.post("/api/v1/orders", json=corrected, headers=auth).json["item_id"] == again.json["item_id"]
    assert client.post("/api/v1/orders", json=body, headers=auth).status_code == 409
    assert orders_of("H55-AGAIN-API") == [(first.json["item_id"], Status.CANCELLED),
                                          (again.json["item_id"], Status.ASSIGNED)]
    # the other direction of the same dossier was never blocked, and is still one order
    other = order_payload(dossier_code="H55-AGAIN-API", direction="dossier_to_agency", appointment_date=None)
    assert client.post("/api/v1/orders", json=other, headers=auth).status_code == 201
    assert client.post("/api/v1/orders", json=other, headers=auth).status_code == 200


def test_a_retry_with_the_cancelled_orders_key_finds_it(client, auth):
    body = order_payload(dossier_code="H55-AGAIN-KEY")
    key = {**auth, "Idempotency-Key": "again-key-1"}
    first = client.post("/api/v1/orders", json=body, headers=key)
    cancel(client, auth, first.json["item_id"])
    retry = client.post("/api/v1/orders", json=body, headers=key)
    assert retry.status_code == 200 and retry.json["item_id"] == first.json["item_id"]
    assert retry.json["status"] == "cancelled"
    assert len(orders_of("H55-AGAIN-KEY")) == 1
    # without the key, the same body after the cancel is a new order
    new = client.post("/api/v1/orders", json=body, headers=auth)
    assert new.status_code == 201 and len(orders_of("H55-AGAIN-KEY")) == 2


def test_two_sends_after_a_cancel_race_to_one_order(app, client, auth):
    body = order_payload(dossier_code="H55-AGAIN-RACE")
    cancel(client, auth, client.post("/api/v1/orders", json=body, headers=auth).json["item_id"])
    db.session.remove()
    answers: list[int] = []
    start = threading.Barrier(4)

    def send() -> None:
        with app.test_client() as own:
            start.wait()
            answers.append(own.post("/api/v1/orders", json=body, headers=auth).status_code)

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers) == [200, 200, 200, 201]
    statuses = [s for _item, s in orders_of("H55-AGAIN-RACE")]
    assert statuses == [Status.CANCELLED, Status.ASSIGNED]


def test_counter_page_creates_the_order_again_after_a_cancel(client):
    login(client, "counter")
    first = client.post("/counter/orders/new", data=form_data(client, dossier_code="H55-AGAIN-PAGE"))
    assert first.status_code == 303
    item = orders_of("H55-AGAIN-PAGE")[0][0]
    other = client.post("/counter/orders/new", data=form_data(
        client, dossier_code="H55-AGAIN-PAGE", address_detail="99 Quang Trung"),
        follow_redirects=True).get_data(as_text=True)
    assert "hãy hủy đơn đó (trên trang của đơn, ghi lý do) rồi tạo lại đơn" in other and "sửa đơn" not in other
    token = form_data(client)["csrf_token"]
    page = f"/counter/orders/{item}"
    assert client.post(f"{page}/cancel", data={"csrf_token": token, "note": "Sai địa chỉ"}).status_code in (302, 303)
    again = client.post("/counter/orders/new", data=form_data(
        client, dossier_code="H55-AGAIN-PAGE", address_detail="99 Quang Trung"), follow_redirects=True)
    assert "Đã tạo đơn" in again.get_data(as_text=True)
    stored = orders_of("H55-AGAIN-PAGE")
    assert [s for _i, s in stored] == [Status.CANCELLED, Status.ASSIGNED]
    # the cancelled order's page leads to the order that replaced it; the new one's names none
    cancelled = client.get(f"/counter/orders/{item}").get_data(as_text=True)
    assert "Hồ sơ này đã được gửi lại sau khi hủy:" in cancelled and f"/counter/orders/{stored[1][0]}" in cancelled
    assert 'id="sent-again"' not in client.get(f"/counter/orders/{stored[1][0]}").get_data(as_text=True)
    assert db.session.scalar(sa.select(DeliveryOrder.address_detail).where(
        DeliveryOrder.item_id == stored[1][0])) == "99 Quang Trung"


def test_import_creates_a_cancelled_dossier_again(client, auth):
    rows = [row(dossier_code="H55-AGAIN-CSV1"), row(dossier_code="H55-AGAIN-CSV2")]
    first = upload(client, auth, to_csv(rows)).json
    assert first["created_rows"] == 2
    cancel(client, auth, first["results"][0]["item_id"])
    second = upload(client, auth, to_csv(rows)).json
    assert (second["created_rows"], second["existing_rows"], second["error_rows"]) == (1, 1, 0)
    assert [r["status"] for r in second["results"]] == ["created", "existing"]
    assert second["results"][1]["item_id"] == first["results"][1]["item_id"]
    assert [s for _i, s in orders_of("H55-AGAIN-CSV1")] == [Status.CANCELLED, Status.ASSIGNED]


def _schema_of_orders() -> tuple[set[tuple[str, str]], set[str]]:
    """The indexes on delivery_orders (name, and their SQL on SQLite) and the triggers of the database."""
    conn = db.session.connection()
    if conn.dialect.name == "sqlite":
        indexes = {(n, s or "") for n, s in conn.exec_driver_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'delivery_orders'")}
        triggers = {n for (n,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    else:
        indexes = {(n, s) for n, s in conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'delivery_orders'")}
        triggers = {n for (n,) in conn.exec_driver_sql("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
    return indexes, triggers


def test_migration_0029_keeps_the_table_its_indexes_and_triggers(app, client, auth):
    from flask_migrate import downgrade, upgrade

    item = client.post("/api/v1/orders", json=order_payload(dossier_code="H55-AGAIN-MIG"), headers=auth).json["item_id"]
    indexes, triggers = _schema_of_orders()
    assert any(name == "uq_orders_dossier" and "cancelled" in sql for name, sql in indexes)
    db.session.remove()
    downgrade(revision="0028")
    upgrade()
    assert _schema_of_orders() == (indexes, triggers)
    assert orders_of("H55-AGAIN-MIG") == [(item, Status.ASSIGNED)]
    # the event log is still append-only (the triggers were made again after SQLite's rebuild)
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.update(OrderEvent).values(note="changed"))
        db.session.flush()
    db.session.rollback()
    # and the unique index does its work on the rebuilt table
    cancel(client, auth, item)
    assert client.post("/api/v1/orders", json=order_payload(dossier_code="H55-AGAIN-MIG"),
                       headers=auth).status_code == 201


def test_a_downgrade_below_0029_is_refused_before_it_changes_anything(app, client, auth, capfd):
    """With a dossier sent again after a cancellation, the old unique constraint cannot be made again:
    the downgrade says so before its first statement, so the table keeps its index and the event log
    its triggers (on SQLite each DDL statement stands alone: a failure half way would have lost them)."""
    from flask_migrate import downgrade, upgrade

    body = order_payload(dossier_code="H55-AGAIN-DOWN")
    cancel(client, auth, client.post("/api/v1/orders", json=body, headers=auth).json["item_id"])
    assert client.post("/api/v1/orders", json=body, headers=auth).status_code == 201
    db.session.remove()
    downgrade(revision="0029")
    before = _schema_of_orders()
    db.session.remove()
    try:
        with pytest.raises(SystemExit):  # Flask-Migrate logs the error and exits 1, as the CLI does
            downgrade(revision="0028")
        said = capfd.readouterr().err  # Alembic's logging configuration writes to the process's stderr
        assert "Cannot downgrade below 0029" in said and "H55-AGAIN-DOWN" in said
        db.session.remove()
        assert _schema_of_orders() == before
        assert db.session.scalar(sa.text("SELECT version_num FROM alembic_version")) == "0029"
        if db.engine.dialect.name == "sqlite":
            assert not db.session.execute(sa.text("SELECT name FROM sqlite_master WHERE name LIKE '_alembic%'")).all()
    finally:
        db.session.remove()
        upgrade()


def test_a_dossier_with_the_courier_sent_again_says_the_counter_cannot_cancel_it(client):
    """The desk has no way to change an order with the courier: the message says so instead of sending
    the clerk to a cancel button the order's page no longer has (outside review)."""
    from delivery_service.accounts.services import SYSTEM
    from delivery_service.orders.services import change_status

    login(client, "counter")
    assert client.post("/counter/orders/new", data=form_data(client, dossier_code="H55-AGAIN-HANDED")).status_code == 303
    item = orders_of("H55-AGAIN-HANDED")[0][0]
    change_status(SYSTEM, item, Status.HANDED_TO_COURIER)
    other = client.post("/counter/orders/new", data=form_data(
        client, dossier_code="H55-AGAIN-HANDED", address_detail="99 Quang Trung"),
        follow_redirects=True).get_data(as_text=True)
    assert "Đơn đó đã giao cho bưu tá hoặc đã kết thúc nên quầy không hủy được nữa" in other
    assert "hãy hủy đơn đó" not in other and "Hủy đơn" not in other
    assert len(orders_of("H55-AGAIN-HANDED")) == 1
