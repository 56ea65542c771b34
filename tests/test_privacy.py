"""Personal data on the real databases: erasure after the retention period (only closed orders, every
copy, twice harmless, figures unchanged, the order still printable, syncable and exportable), the
access log, the citizen's export with its scope, the daily schedule, and no personal data in logs."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, login
from test_courier_api import HTI, ID_NUMBER, JPEG, delivered_with_proof, new_order, page_csrf, put_file  # noqa: F401
from test_reports import WEEK, book, unit  # noqa: F401  (book: the hand-computed data set of March 2026)

from delivery_service import config
from delivery_service.accounts.models import AuditEvent, Role
from delivery_service.accounts.services import create_user
from delivery_service.cli import main
from delivery_service.courier.models import DeliveryProof, ProofFile
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.geo.models import OrderLocation
from delivery_service.orders.models import DeliveryOrder, OrderEvent
from delivery_service.orders.status import Status
from delivery_service.printing.models import LabelPrint
from delivery_service.privacy import PHONE_PLACEHOLDER, PLACEHOLDER
from delivery_service.privacy.erasure import erase_due
from delivery_service.privacy.jobs import schedule_daily
from delivery_service.privacy.models import PersonalDataAccess, PrivacyRun
from delivery_service.reports import fold as folding
from delivery_service.units.models import UnitLevel

LATER = dt.timedelta(days=400)  # erasure "now": past the default 365 days for what closes today


@pytest.fixture
def courier(client) -> dict[str, str]:
    login(client, "courier")
    return page_csrf(client)


def order_row(item_id: str) -> DeliveryOrder:
    db.session.expire_all()
    return db.session.scalar(sa.select(DeliveryOrder).where(DeliveryOrder.item_id == item_id))


def events_of(order_id: int) -> list[tuple]:
    return [tuple(r) for r in db.session.execute(
        sa.select(OrderEvent.status_from, OrderEvent.status_to, OrderEvent.server_time, OrderEvent.actor_label,
                  OrderEvent.reason, OrderEvent.route_id).where(OrderEvent.order_id == order_id)
        .order_by(OrderEvent.id))]


def snapshot(order_id: int) -> dict:
    """Every stored trace of the order, to show that a second run changes nothing."""
    row = db.session.execute(sa.select(DeliveryOrder.__table__).where(DeliveryOrder.id == order_id)).mappings().one()
    events = db.session.execute(sa.select(OrderEvent.__table__).where(OrderEvent.order_id == order_id)
                                .order_by(OrderEvent.id)).mappings().all()
    proofs = db.session.execute(sa.select(DeliveryProof.__table__).where(DeliveryProof.order_id == order_id)
                                ).mappings().all()
    return {"order": dict(row), "events": [dict(e) for e in events], "proofs": [dict(p) for p in proofs]}


def close_later(item_id: str, days: int) -> None:
    """Cancel an order with an event written ``days`` from now (as if it had closed then)."""
    order = order_row(item_id)
    when = utcnow() + dt.timedelta(days=days)
    db.session.add(OrderEvent(order_id=order.id, status_from=order.status, status_to=Status.CANCELLED,
                              server_time=when, actor_label="system"))
    order.status, order.updated_at = Status.CANCELLED, when
    db.session.commit()


def dashboard(client, query: str) -> str:
    html = client.get(f"/reports/?{query}").get_data(as_text=True)
    return re.sub(r'name="csrf_token"[^>]*>', "", html)


def test_erasure_after_retention_only_for_closed_orders(app, client, auth, courier, book):  # noqa: F811
    body, ev, photo_id, sign_id = delivered_with_proof(client, auth, courier)
    item = body["item_id"]
    assert client.get(f"/api/v1/orders/{item}/label", headers=auth).status_code == 200  # a label print
    old = order_row(item)
    assert db.session.get(OrderLocation, old.id) is not None  # located at intake
    still_open = new_order(client, auth, recipient={"name": "Trần Văn Mở", "phone": "0905111222"})
    recent = new_order(client, auth, recipient={"name": "Lê Thị Gần", "phone": "0905333444"})
    close_later(recent["item_id"], 390)  # closed 10 days before the erasure's "now"
    before_events = events_of(old.id)

    admin = app.test_client()
    login(admin, "admin")
    folding.fold()
    db.session.commit()
    week = f"start={WEEK[0]}&end={WEEK[1]}&level=route"
    today = utcnow().date()
    this_period = f"start={today - dt.timedelta(days=6)}&end={today}&level=commune"
    before = (dashboard(admin, week), dashboard(admin, this_period),
              admin.get(f"/reports/export.csv?{week}").data.split(b"\n")[:-2])
    assert "QNG-01" in before[0]

    counts = erase_due(utcnow() + LATER)
    # The delivered order, and the book's closed orders of 2025-2026 (o1-o5, o8, o9): not o6 and o7
    assert counts.orders == 1 + 7, counts
    assert counts.proof_files == 2 and counts.events_redacted >= 2

    erased = order_row(item)
    assert erased.personal_data_erased_at is not None
    assert (erased.recipient_name, erased.recipient_phone, erased.recipient_id_number, erased.address_detail) == (
        PLACEHOLDER, PHONE_PLACEHOLDER, None, PLACEHOLDER)
    assert "hoa" not in erased.recipient_name_key and "hoa" not in erased.recipient_search_key
    assert erased.status is Status.DELIVERED and erased.postage_vnd == old.postage_vnd
    assert erased.commune_id == old.commune_id and erased.item_id == item
    assert events_of(old.id) == before_events  # statuses, times, actors, reasons unchanged
    notes = db.session.execute(sa.select(OrderEvent.note, OrderEvent.latitude).where(OrderEvent.order_id == old.id)
                               ).all()
    assert all(n in (None, PLACEHOLDER) and lat is None for n, lat in notes) and (PLACEHOLDER, None) in notes
    proof = db.session.scalar(sa.select(DeliveryProof).where(DeliveryProof.order_id == old.id))
    assert (proof.receiver_name, proof.receiver_relation, proof.id_last4) == (PLACEHOLDER, None, None)
    assert proof.amount_collected_vnd == 26000
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ProofFile)) == 0
    assert db.session.get(OrderLocation, old.id) is None
    assert {p.address for p in db.session.scalars(sa.select(LabelPrint).where(LabelPrint.order_id == old.id))} == {
        PLACEHOLDER}
    for untouched, name in ((still_open, "Trần Văn Mở"), (recent, "Lê Thị Gần")):
        row = order_row(untouched["item_id"])
        assert row.recipient_name == name and row.personal_data_erased_at is None

    # A second run changes nothing.
    kept = snapshot(old.id)
    again = erase_due(utcnow() + LATER)
    assert again.as_dict() == {"orders": 0, "proof_files": 0, "events_redacted": 0, "print_files": 0,
                               "import_files": 0}
    db.session.expire_all()
    assert snapshot(old.id) == kept

    # The figures, the dashboard and its export are the same.
    folding.fold()
    db.session.commit()
    after = (dashboard(admin, week), dashboard(admin, this_period),
             admin.get(f"/reports/export.csv?{week}").data.split(b"\n")[:-2])
    assert after == before

    # The order still prints, syncs and answers the API; its proof lists no files.
    assert client.get(f"/api/v1/orders/{item}/label", headers=auth).status_code == 200
    assert client.get(f"/api/v1/orders/{item}/receipt", headers=auth).status_code == 200
    got = client.get(f"/api/v1/orders/{item}", headers=auth)
    assert got.status_code == 200 and got.json["recipient"]["name"] == PLACEHOLDER
    proof_json = client.get(f"/api/v1/orders/{item}/proof", headers=auth)
    assert proof_json.status_code == 200 and proof_json.json["deliveries"][0]["files"] == []
    assert client.get(f"/api/v1/orders/{item}/proof/files/{photo_id}", headers=auth).status_code == 404
    assert client.get(f"/api/v1/courier/orders/{item}").status_code == 200  # the courier's app
    assert client.get("/api/v1/courier/run").status_code == 200
    page = admin.get(f"/counter/orders/{item}")
    assert page.status_code == 200 and "Nguyễn Thị Hoa" not in page.get_data(as_text=True)
    assert admin.get(f"/reports/orders.csv?{week}").status_code == 200


def test_the_event_log_accepts_only_the_redaction_of_an_erased_order(app, client, auth):
    body = new_order(client, auth)
    order = order_row(body["item_id"])
    with pytest.raises(sa.exc.DatabaseError):  # not erased: no update at all
        db.session.execute(sa.update(OrderEvent).where(OrderEvent.order_id == order.id).values(note=None))
    db.session.rollback()
    db.session.execute(sa.update(DeliveryOrder).where(DeliveryOrder.id == order.id)
                       .values(personal_data_erased_at=utcnow()))
    with pytest.raises(sa.exc.DatabaseError):  # erased: still no change of status
        db.session.execute(sa.update(OrderEvent).where(OrderEvent.order_id == order.id)
                           .values(status_to=Status.CANCELLED))
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError):
        db.session.execute(sa.delete(OrderEvent).where(OrderEvent.order_id == order.id))
    db.session.rollback()


def test_label_batch_files_go_with_their_orders(app, client, auth):
    body = new_order(client, auth)
    order = order_row(body["item_id"])
    folder = Path(app.config["PRINT_FILES_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "batch-1.pdf").write_bytes(b"%PDF-1.4 names")
    from delivery_service.printing.models import JobState, LabelFormat, PrintJob

    job = PrintJob(actor_label="system", format=LabelFormat.PDF, size="100x150", order_ids=[order.id],
                   state=JobState.DONE, total=1, done=1, file_name="batch-1.pdf")
    db.session.add(job)
    db.session.flush()
    db.session.add(LabelPrint(order_id=order.id, actor_label="system", format=LabelFormat.PDF, size="100x150",
                              copy_no=1, address="12 Hùng Vương", print_job_id=job.id))
    db.session.commit()
    close_later(body["item_id"], 0)
    assert erase_due(utcnow() + LATER, dry_run=True).as_dict() == {
        "orders": 1, "proof_files": 0, "events_redacted": 0, "print_files": 1, "import_files": 0}
    assert (folder / "batch-1.pdf").exists() and order_row(body["item_id"]).personal_data_erased_at is None
    counts = erase_due(utcnow() + LATER)
    assert counts.orders == 1 and counts.print_files == 1
    assert not (folder / "batch-1.pdf").exists()


def test_a_stopped_run_is_resumed_by_the_next(app, book):  # noqa: F811
    first = erase_due(utcnow() + LATER, batch_size=3, max_batches=1)  # as if the process died after it
    assert first.orders == 3
    assert erase_due(utcnow() + LATER, batch_size=3).orders == 4  # the book's other closed orders
    assert db.session.scalar(sa.select(sa.func.count()).where(DeliveryOrder.personal_data_erased_at.is_(None))
                             ) == 2  # o6 and o7, still open


def accesses(**where) -> list[tuple]:
    stmt = sa.select(PersonalDataAccess.what, PersonalDataAccess.actor_label, PersonalDataAccess.user_id,
                     PersonalDataAccess.client_id, PersonalDataAccess.ip, PersonalDataAccess.order_id)
    for key, value in where.items():
        stmt = stmt.where(getattr(PersonalDataAccess, key) == value)
    return [tuple(r) for r in db.session.execute(stmt.order_by(PersonalDataAccess.id))]


def test_access_log_records_pages_proofs_api_and_exports(app, client, auth, courier):
    body, _ev, photo_id, _sign = delivered_with_proof(client, auth, courier)
    item = body["item_id"]
    order_id = order_row(item).id
    staff = app.test_client()
    login(staff, "counter")
    assert staff.get(f"/counter/orders/{item}").status_code == 200
    assert staff.get(f"/counter/orders/{item}/proof/{photo_id}").status_code == 200
    assert staff.get(f"/counter/orders/{item}/label").status_code == 200
    assert staff.get(f"/counter/orders/{item}/receipt").status_code == 200
    assert client.get(f"/api/v1/orders/{item}", headers=auth).status_code == 200
    assert client.get(f"/api/v1/orders/{item}/proof", headers=auth).status_code == 200
    other = new_order(client, auth)
    assert client.get(f"/api/v1/orders/{other['item_id']}/label", headers=auth).status_code == 200
    token = csrf_token(staff, "/counter/labels")
    made = staff.post("/counter/manifests", data={"csrf_token": token, "item_ids": [other["item_id"]],
                                                  "route": "QNG-01", "kind": "counter_to_courier"})
    assert made.status_code == 303, made.get_data(as_text=True)[:300]
    assert staff.get(made.headers["Location"]).status_code == 200

    rows = accesses(order_id=order_id)
    kinds = [r[0] for r in rows]
    assert kinds == ["order_page", "proof_file", "label", "receipt", "api_order", "proof"], rows
    assert {r[1] for r in rows[:4]} == {"counter"} and all(r[2] for r in rows[:4])
    assert all(r[3] is not None and r[2] is None for r in rows[4:])
    assert all(r[4] == "127.0.0.1" for r in rows)
    assert [r[0] for r in accesses(order_id=order_row(other["item_id"]).id)] == ["label", "manifest"]
    # Figures without personal data are not logged.
    assert staff.get("/reports/export.csv").status_code in (200, 403)
    assert "label" not in [r[0] for r in accesses(what="order_page") if r[5] != order_id]


def admin_client(app, username: str = "admin"):
    c = app.test_client()
    login(c, username)
    return c


def export(c, kind: str, value: str):
    token = csrf_token(c, "/admin/privacy")
    return c.post("/admin/privacy/export", data={"csrf_token": token, "kind": kind, "value": value})


def test_citizen_export_by_phone_in_any_form_and_by_dossier(app, client, auth, courier, caplog):
    caplog.set_level(logging.DEBUG)
    body, _ev, _photo, _sign = delivered_with_proof(client, auth, courier)  # recipient 0905123456
    second = new_order(client, auth, recipient={"name": "Nguyễn Thị Hoa", "phone": "+84 905 123 456"})
    as_authorised = new_order(client, auth, recipient={"name": "Bà Lan", "phone": "0912000111"},
                              authorised_person={"name": "Nguyễn Thị Hoa", "phone": "0905123456"})
    stranger = new_order(client, auth, recipient={"name": "Người Khác", "phone": "0912999888"})
    assert client.get(f"/api/v1/orders/{second['item_id']}", headers=auth).status_code == 200
    admin = admin_client(app)

    for written in ("0905123456", "0905 123 456", "+84905123456", "84-905-123-456", "(090) 512.3456"):
        resp = export(admin, "phone", written)
        assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
        assert resp.headers["Content-Disposition"].startswith("attachment")
        data = json.loads(resp.data)
        found = {o["item_id"] for o in data["orders"]}
        assert found == {body["item_id"], second["item_id"], as_authorised["item_id"]}, written
    first = next(o for o in data["orders"] if o["item_id"] == body["item_id"])
    assert first["recipient"] == {"name": "Nguyễn Thị Hoa", "phone": "0905123456", "id_number": ID_NUMBER}
    assert [e["status_to"] for e in first["events"]][-1] == "delivered"
    assert {f["kind"] for d in first["proof"]["deliveries"] for f in d["files"]} == {"photo", "signature"}
    logged = next(o for o in data["orders"] if o["item_id"] == second["item_id"])["access_log"]
    assert {a["what"] for a in logged} >= {"api_order", "citizen_export"}
    assert stranger["item_id"] not in resp.get_data(as_text=True)

    by_dossier = json.loads(export(admin, "dossier", body["dossier_code"]).data)
    assert [o["item_id"] for o in by_dossier["orders"]] == [body["item_id"]]

    audits = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "privacy.citizen_export")).all()
    assert len(audits) == 6 and all("0905" not in json.dumps(a.after) for a in audits)
    assert audits[-1].after["orders"] == [body["item_id"]]
    assert len(accesses(what="citizen_export")) == 5 * 3 + 1

    # The page searches the access log by order and by user.
    page = admin.get(f"/admin/privacy?order={second['item_id']}").get_data(as_text=True)
    assert second["item_id"] in page and "API" in page
    page = admin.get("/admin/privacy?user=admin").get_data(as_text=True)
    assert body["item_id"] in page and stranger["item_id"] not in page

    bad = export(admin, "phone", "12345")
    assert bad.status_code == 422 and "không hợp lệ" in bad.get_data(as_text=True)
    assert export(admin, "phone", "").status_code == 422
    assert len(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "privacy.citizen_export")
                                  ).all()) == 6
    for private in ("Nguyễn Thị Hoa", "0905123456", ID_NUMBER, "Phạm Văn Đức"):
        assert private not in caplog.text


def test_a_province_admin_sees_only_their_province(app, client, auth):
    user = create_user(username="qng-admin", full_name="Quản trị Quảng Ngãi", password=DEMO_PASSWORD,
                       role=Role.ADMIN)
    user.area_unit_id = unit("51", level=UnitLevel.PROVINCE).id  # a province admin
    db.session.commit()
    here = new_order(client, auth, recipient={"name": "Nguyễn Văn Tỉnh", "phone": "0905000999"})
    elsewhere = new_order(client, auth, recipient={"name": "Nguyễn Văn Tỉnh", "phone": "0905000999"},
                          address=HTI)
    national, province = admin_client(app), admin_client(app, "qng-admin")
    assert national.get(f"/api/v1/orders/{elsewhere['item_id']}").status_code == 200  # logged for the search
    everything = {o["item_id"] for o in json.loads(export(national, "phone", "0905000999").data)["orders"]}
    assert everything == {here["item_id"], elsewhere["item_id"]}
    mine = {o["item_id"] for o in json.loads(export(province, "phone", "0905000999").data)["orders"]}
    assert mine == {here["item_id"]}
    page = province.get("/admin/privacy").get_data(as_text=True)
    assert here["item_id"] in page and elsewhere["item_id"] not in page
    for role_user in ("counter", "supervisor"):
        assert admin_client(app, role_user).get("/admin/privacy").status_code == 403


def test_daily_schedule_queues_one_run_per_day(app):
    from delivery_service.jobs import maintain

    assert maintain(app)["privacy"] == {"queued": 1}  # every process's maintenance pass asks
    run = db.session.scalar(sa.select(PrivacyRun))
    assert run.finished_at is not None and run.erased == 0  # JOBS_INLINE: it ran at the commit
    assert run.day == utcnow().astimezone(dt.timezone(dt.timedelta(hours=7))).date()
    app.extensions.pop("privacy_run_day")  # another node, which has not seen today's run
    assert schedule_daily(utcnow()) == {}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PrivacyRun)) == 1


def test_cli_erase_prints_counts(app, book):  # noqa: F811
    # Today (the real clock) only the book's orders delivered in July 2025 are past 365 days.
    last = sa.select(sa.func.max(OrderEvent.server_time)).where(OrderEvent.order_id == DeliveryOrder.id)
    db.session.execute(sa.update(DeliveryOrder).values(updated_at=last.scalar_subquery()))  # as lived
    db.session.commit()
    result = app.test_cli_runner().invoke(main, ["privacy", "erase", "--dry-run"], catch_exceptions=False)
    assert result.exit_code == 0 and "would be erased: 2 orders" in result.output, result.output
    assert db.session.scalar(sa.select(sa.func.count()).where(DeliveryOrder.personal_data_erased_at.is_not(None))
                             ) == 0
    result = app.test_cli_runner().invoke(main, ["privacy", "erase"], catch_exceptions=False)
    assert "erased: 2 orders" in result.output
    result = app.test_cli_runner().invoke(main, ["privacy", "erase"], catch_exceptions=False)
    assert "erased: 0 orders" in result.output


def test_retention_setting_is_validated(tmp_path):
    base = {"DATABASE_URL": "sqlite://", "SECRET_KEY": "x"}
    assert config.load(str(tmp_path), base)["PERSONAL_DATA_RETENTION_DAYS"] == 365
    assert config.load(str(tmp_path), {**base, "PERSONAL_DATA_RETENTION_DAYS": 730}
                       )["PERSONAL_DATA_RETENTION_DAYS"] == 730
    for bad in (0, 29, 4000):
        with pytest.raises(config.ConfigError):
            config.load(str(tmp_path), {**base, "PERSONAL_DATA_RETENTION_DAYS": bad})


def test_the_citizen_export_holds_the_delivery_window(app, client, auth):
    """What is kept about the person includes the window they chose, in the orders API's form."""
    from delivery_service.accounts.models import User
    from delivery_service.accounts.services import Actor
    from delivery_service.privacy.export import citizen_export

    timed = new_order(client, auth, recipient={"name": "Lê Văn Giờ", "phone": "0912000222"},
                      delivery_window={"from": "07:00", "to": "09:30"})
    plain = new_order(client, auth, recipient={"name": "Lê Văn Giờ", "phone": "0912000222"})
    admin = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "admin")))
    data, _ids = citizen_export(admin, "phone", "0912000222", None)
    windows = {o["item_id"]: o["delivery_window"] for o in data["orders"]}
    assert windows == {timed["item_id"]: {"from": "07:00", "to": "09:30"}, plain["item_id"]: None}
    json.dumps(data)  # a download: JSON as it is
