"""The courier sync's fast paths for the usual request (one event, the usual shape) against the general
path on the same inputs: the event checker without the schema (``schemas.lean_event``), the one-event
batch read, and SQLite's one-order write as the driver's SQL. ``services.LEAN = False`` turns them off."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

import flask
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from test_courier_api import JPEG, courier, event, new_order, put_file, sync  # noqa: F401  (courier: fixture)

from delivery_service.accounts.models import User
from delivery_service.accounts.services import Actor
from delivery_service.courier import services
from delivery_service.courier.schemas import CourierSyncEventIn, CourierSyncOut, lean_event, sync_out
from delivery_service.extensions import db

SCHEMA = CourierSyncEventIn()
NOW = dt.datetime.now(dt.UTC).replace(microsecond=123456)


def usual(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()), "item_id": "RR000000001VN", "action": "delivered",
        "device_time": NOW.isoformat(), "latitude": 15.1205, "longitude": 108.8044, "accuracy_m": 12.0,
        "receiver": {"kind": "recipient"}, "id_check": {"kind": "id_last4", "value": "1234"},
        "amount_collected_vnd": 26000}
    for key, value in changes.items():
        if value is ...:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def schema_load(raw: Any) -> dict[str, Any] | None:
    try:
        return SCHEMA.load(raw)
    except ValidationError:
        return None


# --- the checker -------------------------------------------------------------------------------

USUAL = [
    usual(),
    usual(action="pickup_confirmed", receiver=..., id_check=..., amount_collected_vnd=...),
    usual(action="pickup_confirmed", latitude=..., longitude=..., accuracy_m=..., receiver=..., id_check=...,
          amount_collected_vnd=...),
    usual(latitude=15, longitude=-108, accuracy_m=0),
    usual(latitude=-90, longitude=180, accuracy_m=100_000),
    usual(id_check={"kind": "otp", "value": "123456"}),
    usual(id_check={"kind": "id_last4", "value": " 1234 "}),
    usual(id_check=..., amount_collected_vnd=0, files=[]),
    usual(device_time="2026-12-05T19:30:00+07:00", event_id="phone-1:event_0001"),
    usual(device_time="2026-12-05T12:30:00Z", amount_collected_vnd=1_000_000_000),
    usual(event_id="abcdefgh\n"),  # the schema's pattern ends with $, which a final newline passes
]


@pytest.mark.parametrize("raw", USUAL)
def test_the_usual_event_loads_as_the_schema_loads_it(app, raw):
    with app.app_context():
        lean = lean_event(raw)
        assert lean is not None
        assert lean == SCHEMA.load(raw)
        assert {k: type(v) for k, v in lean.items()} == {k: type(v) for k, v in SCHEMA.load(raw).items()}


UNUSUAL = [
    usual(note="at the door"), usual(receiver={"kind": "authorised", "name": "A", "relation": "son"}),
    usual(receiver={"kind": "recipient", "name": "Hoa"}), usual(receiver=...), usual(receiver=None),
    usual(latitude=...), usual(latitude=None), usual(latitude=91), usual(longitude=-180.5), usual(accuracy_m=-1),
    usual(latitude=True), usual(latitude="15.1"), usual(latitude=float("nan")), usual(latitude=10 ** 400),
    usual(amount_collected_vnd=1.0), usual(amount_collected_vnd=-1), usual(amount_collected_vnd=True),
    usual(amount_collected_vnd=1_000_000_001), usual(amount_collected_vnd=None),
    usual(id_check={"kind": "id_last4", "value": "123"}), usual(id_check={"kind": "otp", "value": "1234"}),
    usual(id_check={"kind": "none", "value": "1234"}), usual(id_check={"kind": "id_last4"}),
    usual(id_check={"kind": "id_last4", "value": 1234}), usual(id_check=None),
    usual(id_check={"kind": "id_last4", "value": "1234", "extra": 1}),
    usual(device_time="2026-12-05T12:30:00"), usual(device_time="1999-12-31T23:00:00+00:00"),
    usual(device_time="not a time"), usual(device_time=""), usual(device_time=1733400000),
    usual(event_id="short"), usual(event_id="x" * 65), usual(event_id="abc defgh"), usual(event_id=12345678),
    usual(item_id=""), usual(item_id="R" * 21), usual(item_id=None),
    usual(action="failed_attempt"), usual(action="correction"), usual(action="dossier_picked_up"),
    usual(action="nothing"), usual(files=[str(uuid.uuid4())]), usual(files="none"), usual(unknown_key=1),
    usual(event_id=...), usual(device_time=...),
]


@pytest.mark.parametrize("raw", UNUSUAL)
def test_an_unusual_event_is_left_to_the_schema(app, raw):
    with app.app_context():
        assert lean_event(raw) is None


JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-10 ** 20, 10 ** 20) | st.floats()
                       | st.text(max_size=30), lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)
VALUES = {
    "event_id": st.sampled_from([str(uuid.uuid4()), "abc", "abcdefgh\n", "a" * 64, "a" * 65]) | JSONISH,
    "item_id": st.sampled_from(["RR000000001VN", "", "R" * 20, "R" * 21]) | JSONISH,
    "action": st.sampled_from(["delivered", "pickup_confirmed", "failed_attempt"]) | JSONISH,
    "device_time": st.sampled_from([NOW.isoformat(), "2026-12-05T12:30:00", "2026-12-05T12:30:00Z",
                                    "2101-01-01T00:00:00+00:00", "9999-12-31T23:59:59-23:59", ""]) | JSONISH,
    "latitude": st.floats(-100, 100) | st.integers(-100, 100) | JSONISH,
    "longitude": st.floats(-200, 200) | st.integers(-200, 200) | JSONISH,
    "accuracy_m": st.floats(-1, 200_000) | JSONISH,
    "receiver": st.sampled_from([{"kind": "recipient"}, {"kind": "authorised"}, {"kind": "recipient", "x": 1}])
    | JSONISH,
    "id_check": st.fixed_dictionaries({"kind": st.sampled_from(["id_last4", "otp", "none"]),
                                       "value": st.sampled_from(["1234", "123456", " 1234", "12a4", "", "١٢٣٤"])})
    | JSONISH,
    "amount_collected_vnd": st.integers(-5, 2_000_000_000) | JSONISH,
    "files": st.sampled_from([[], [str(uuid.uuid4())], ["x"]]) | JSONISH,
    "note": JSONISH,
}


# The checks of the body and events touch no database: they run once, on the SQLite app (a test
# parametrised on "backend" overrides conftest's two-database parameter).
ONCE = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def sqlite_app(app):
    return app


@ONCE
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.fixed_dictionaries({}, optional=VALUES))
def test_the_checker_never_disagrees_with_the_schema(sqlite_app, raw):
    with sqlite_app.app_context():
        lean = lean_event(raw)
        if lean is not None:
            assert lean == schema_load(raw)


# --- the body --------------------------------------------------------------------------------

def _loaded(app, body: bytes, mimetype: str, load) -> Any:
    with app.test_request_context("/api/v1/courier/sync", method="POST", data=body, content_type=mimetype):
        try:
            return ("loaded", load())
        except Exception as exc:  # noqa: BLE001  (the 422 webargs raises, with its messages)
            return ("refused", type(exc).__name__, getattr(exc, "code", None), getattr(exc, "data", None))


BODIES = [
    (json.dumps({"events": [usual()]}), "application/json"),
    (json.dumps({"events": [usual(), "x", 3, [], {}]}), "application/json"),
    (json.dumps({"events": [usual()] * 200}), "application/json"),
    (json.dumps({"events": [usual()] * 201}), "application/json"),
    (json.dumps({"events": []}), "application/json"),
    (json.dumps({"events": [usual(), None]}), "application/json"),
    (json.dumps({"events": usual()}), "application/json"),
    (json.dumps({"events": [usual()], "more": 1}), "application/json"),
    (json.dumps({}), "application/json"),
    (json.dumps([usual()]), "application/json"),
    (json.dumps("events"), "application/json"),
    ("{not json", "application/json"),
    ("", "application/json"),
    (json.dumps({"events": [usual()]}), "text/plain"),
    (json.dumps({"events": [usual()]}), "application/vnd.api+json"),
    ("\ufeff" + json.dumps({"events": [usual()]}), "application/json"),
    (json.dumps({"events": [{"é": "ü"}]}, ensure_ascii=False), "application/json"),
]


@ONCE
@pytest.mark.parametrize(("body", "mimetype"), BODIES)
def test_the_body_loads_as_webargs_loads_it(sqlite_app, body, mimetype):
    from delivery_service.courier import api

    data = body.encode()
    lean = _loaded(sqlite_app, data, mimetype, api._sync_in)
    general = _loaded(sqlite_app, data, mimetype,
                      lambda: api.blp.ARGUMENTS_PARSER.parse(api._SYNC_IN, flask.request, location="json"))
    assert lean == general


# --- the answer ------------------------------------------------------------------------------

def test_the_answer_is_the_schemas_dump():
    rejected = services.Rejected("invalid", "The event is incomplete or malformed: device_time, receiver",
                                 {"device_time": ["Not a valid datetime."], "receiver": {"kind": ["Missing."]}})
    results = [services._result("e-0000001", "applied", "delivered"),
               services._result("e-0000002", "duplicate", "handed_to_courier"),
               services._result(None, "rejected", error=services.Rejected("invalid", "An event must be a JSON object.")),
               services._result("e-0000003", "rejected", None, rejected),
               services._result("e-0000004", "rejected", "delivered", services.Rejected("transition", "No."))]
    assert sync_out(results) == CourierSyncOut().dump({"results": results})
    assert sync_out([]) == CourierSyncOut().dump({"results": []})


def test_the_http_answer_is_the_schemas_dump(client, auth, courier):  # noqa: F811
    body = new_order(client, auth)
    events = [event(body["item_id"], "pickup_confirmed"), {"event_id": "x"}, "not an object",
              event(body["item_id"], "delivered", receiver={"kind": "recipient"})]
    events.append(dict(events[0]))
    resp = client.post("/api/v1/courier/sync", json={"events": events}, headers=courier)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    assert [r["result"] for r in resp.json["results"]] == ["applied", "rejected", "rejected", "rejected",
                                                           "duplicate"]
    assert resp.json == CourierSyncOut().dump(resp.json)


# --- the writes -------------------------------------------------------------------------------

def _shape(value: Any) -> str:
    """A stored value's form, its digits aside (times differ between runs; their text form must not)."""
    if isinstance(value, str):  # SQLite: the text form
        return re.sub(r"\d", "9", value)
    return f"{type(value).__name__} {getattr(value, 'tzinfo', None)}"


def _stored(item_id: str) -> dict[str, Any]:
    """What the database holds for the order, as stored (no type conversion), ids and times as shapes."""
    conn = db.session.connection()
    order = conn.execute(sa.text("SELECT id, status, run_date, updated_at FROM delivery_orders "
                                 "WHERE item_id = :i"), {"i": item_id}).mappings().one()
    events = [{k: (v is None if k in ("id", "order_id", "client_event_id") else _shape(v) if k == "server_time"
                   else v)
               for k, v in row.items()}
              for row in conn.execute(sa.text("SELECT * FROM order_events WHERE order_id = :o ORDER BY id"),
                                      {"o": order["id"]}).mappings()]
    proofs = [{k: (v is None if k in ("id", "event_id", "order_id") else _shape(v) if k == "created_at" else v)
               for k, v in row.items()}
              for row in conn.execute(sa.text("SELECT * FROM delivery_proofs WHERE order_id = :o"),
                                      {"o": order["id"]}).mappings()]
    files = [(row.kind, row.attached_event_id is not None) for row in conn.execute(
        sa.text("SELECT kind, attached_event_id FROM proof_files WHERE order_id = :o"), {"o": order["id"]})]
    locations = [{k: (_shape(v) if k == "located_at" else v) for k, v in row.items()
                  if k not in ("id", "order_id", "address_key")}
                 for row in conn.execute(sa.text("SELECT * FROM order_locations WHERE order_id = :o"),
                                         {"o": order["id"]}).mappings()]
    return {"status": order["status"], "run_date": order["run_date"], "updated_at": _shape(order["updated_at"]),
            "events": events, "proofs": proofs, "files": files, "locations": locations}


def _applied_both_ways(client, auth, courier, monkeypatch, make_events) -> tuple[dict, dict, list, list]:  # noqa: F811
    """The same events on two orders alike (same address), one with the fast paths, one without."""
    states, answers = [], []
    device = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat()
    for lean in (True, False):
        monkeypatch.setattr(services, "LEAN", lean)
        body = new_order(client, auth, address={"province_code": "51", "commune_code": "21025",
                                                "detail": f"{7 + lean} Lê Lợi"})
        item_id = body["item_id"]
        got = []
        for events in make_events(item_id, device):
            for e in events:
                for f in e.pop("_upload", []):
                    resp, _ = put_file(client, courier, item_id, e["event_id"], JPEG, kind=f)
                    assert resp.status_code == 201, resp.json
            got.append([{k: v for k, v in r.items() if k != "event_id"} for r in sync(client, courier, *events)])
        db.session.rollback()
        states.append(_stored(item_id))
        answers.append(got)
    return states[0], states[1], answers[0], answers[1]


def _with(item_id: str, device: str, action: str, **fields: Any) -> dict[str, Any]:
    e = event(item_id, action, **fields)
    e["device_time"] = device
    return e


def test_a_pickup_and_a_delivery_store_what_the_general_path_stores(client, auth, courier, monkeypatch):  # noqa: F811
    def events(item_id, device):
        yield [_with(item_id, device, "pickup_confirmed")]
        yield [_with(item_id, device, "delivered", receiver={"kind": "recipient"},
                     id_check={"kind": "id_last4", "value": "1234"}, amount_collected_vnd=26000,
                     latitude=15.1205, longitude=108.8044, accuracy_m=12.0, _upload=["photo", "signature"])]

    lean, general, lean_answers, general_answers = _applied_both_ways(client, auth, courier, monkeypatch, events)
    assert lean_answers == general_answers
    assert [a["result"] for batch in lean_answers for a in batch] == ["applied", "applied"]
    assert lean == general
    assert lean["files"] == [("photo", True), ("signature", True)] and lean["proofs"] and lean["locations"]


def test_a_refused_delivery_then_one_without_position_and_its_replay_alike(client, auth, courier, monkeypatch):  # noqa: F811
    def events(item_id, device):
        yield [_with(item_id, device, "pickup_confirmed", latitude=15, longitude=108)]
        delivery = _with(item_id, device, "delivered", receiver={"kind": "recipient"},
                         id_check={"kind": "otp", "value": "000000"})
        yield [delivery]  # a wrong one-time code: refused, nothing written
        delivery = {**delivery, "event_id": str(uuid.uuid4()), "id_check": {"kind": "id_last4", "value": "9999"}}
        yield [delivery]  # the order holds no ID number: not verifiable, applied
        yield [dict(delivery)]  # the phone's replay

    lean, general, lean_answers, general_answers = _applied_both_ways(client, auth, courier, monkeypatch, events)
    assert lean_answers == general_answers
    assert [a["result"] for batch in lean_answers for a in batch] == ["applied", "rejected", "applied",
                                                                      "duplicate"]
    assert lean == general


def test_a_dossier_pickup_stores_what_the_general_path_stores(client, auth, courier, monkeypatch):  # noqa: F811
    def events(item_id, device):
        yield [_with(item_id, device, "dossier_picked_up", documents=["Đơn đề nghị", "CCCD"], sealed=True,
                     fees_collected_vnd=50000)]

    device = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=30)).isoformat()

    def run(lean: bool) -> tuple[dict, list]:
        monkeypatch.setattr(services, "LEAN", lean)
        body = new_order(client, auth, direction="dossier_to_agency", appointment_date=None,
                         address={"province_code": "51", "commune_code": "21025", "detail": f"{7 + lean} Lê Lợi"})
        answers = [sync(client, courier, *batch) for batch in events(body["item_id"], device)]
        db.session.rollback()
        return _stored(body["item_id"]), [[{k: v for k, v in r.items() if k != "event_id"} for r in a]
                                          for a in answers]

    lean, general = run(True), run(False)
    assert lean[1] == general[1] and lean[1][0][0]["result"] == "applied", lean[1]
    assert lean[0] == general[0]
    assert lean[0]["proofs"][0]["documents"] is not None


def test_a_sync_logs_its_counts_on_its_access_line(client, auth, courier, json_log):  # noqa: F811
    body = new_order(client, auth)
    events = [event(body["item_id"], "pickup_confirmed"), {"event_id": "x"}]
    events.append(dict(events[0]))
    resp = client.post("/api/v1/courier/sync", json={"events": events}, headers={**courier, "X-Request-ID": "s-1"})
    assert resp.status_code == 200
    lines = [x for x in json_log() if x["request_id"] == "s-1"]
    assert len(lines) == 1  # one line a request, its outcome on it
    user_id = db.session.scalar(sa.select(User.id).where(User.username == "courier"))
    assert lines[0]["message"] == (f"request POST courier_api.sync 200 user={user_id} events=3 applied=1 "
                                   "duplicate=1 rejected=1")
    assert (lines[0]["events"], lines[0]["applied"], lines[0]["duplicate"], lines[0]["rejected"]) == (3, 1, 1, 1)
    assert body["item_id"] not in json.dumps(lines)  # ids and counts only


def test_a_sync_outside_a_request_logs_a_line_of_its_own(app, caplog):
    courier_user = db.session.scalar(sa.select(User).where(User.username == "courier"))
    caplog.set_level("INFO", logger="delivery_service.requests")
    assert services.sync(Actor.of_user(courier_user), [{"event_id": "x"}])[0]["result"] == "rejected"
    [line] = [r for r in caplog.records if r.getMessage().startswith("courier sync")]
    assert line.getMessage() == f"courier sync user={courier_user.id} events=1 applied=0 duplicate=0 rejected=1"
    assert (line.events, line.rejected) == (1, 1)
