"""Schema-driven fuzzing of the whole API (schemathesis), as each role, on SQLite and PostgreSQL.

Every operation of /api/v1/openapi.json goes through schemathesis' phases: examples, coverage
(boundary and invalid values from the schemas), fuzzing (generated cases), then stateful sequences
along the links it infers from the Location headers. Parameters named like a seeded object (item_id,
job_id, area_id …) take a real id half the time, so that cases reach past the 404; strings and
integers anywhere take, now and then, a value that once broke the service. A fixed seed, derandomised
generation and a bounded number of examples keep the run reproducible and within a few minutes.

Checks: no server error (with the server's traceback in the report), and every response as
documented: status code and body schema.

Alone: ``pytest tests/test_api_fuzz.py`` (or ``-m fuzz``); ``-m "not fuzz"`` leaves it out.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import io
import logging
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from conftest import DEMO_PASSWORD, order_payload
from flask import Flask
from flask.testing import FlaskClient
from schemathesis.engine import events, from_schema

pytestmark = pytest.mark.fuzz

SEED = 20261211
MAX_EXAMPLES = 20  # per operation and phase: both databases x five roles take about three minutes
MAX_STEPS = 8  # per stateful scenario
CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance")
ROLES = ("counter", "courier", "supervisor", "district", "admin")
HTI = {"province_code": "42", "commune_code": "18229", "detail": "Xóm 4"}
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + b"\x00" * 200 + b"\xff\xd9"
# Values that broke the service once: NUL (PostgreSQL cannot store it), blanks, days and numbers at the
# extremes. Lone surrogates cannot be entries (schemathesis encodes entries as UTF-8): the guards'
# tests (tests/test_api_guards.py) send those.
HOSTILE_TEXT = ["\x00", "a\x00b", " ", "0001-01-01", "9999-12-31", "9223372036854775808"]
HOSTILE_INTEGERS = [2**63, -(2**63) - 1, 10**30, -1, 0]


@dataclass
class Seeded:
    """Real objects, made through the API before the run."""

    item_id: list[str] = field(default_factory=list)
    job_id: list[int] = field(default_factory=list)
    import_id: list[int] = field(default_factory=list)
    area_id: list[int] = field(default_factory=list)
    manifest_code: list[str] = field(default_factory=list)
    file_id: list[str] = field(default_factory=list)
    day: list[str] = field(default_factory=list)
    route_code: list[str] = field(default_factory=lambda: ["QNG-01", "QNG-02"])


def _login(app: Flask, username: str) -> tuple[FlaskClient, dict[str, str]]:
    """A client logged in through the login page, and the page's CSRF header for writes."""
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)
    resp = client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    assert resp.status_code in (302, 303), resp.get_data(as_text=True)[:300]
    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or re.search(
        r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, f"no CSRF token for {username}"
    return client, {"X-CSRFToken": match.group(1)}


def _seed(app: Flask) -> Seeded:
    """Orders of two counters in several states (one delivered with a photo), a label batch job, an
    import, a manifest, a daily total and a reporting area."""
    from web_helpers import make_order

    seeded = Seeded()
    with app.app_context():
        seeded.item_id.append(make_order("HTI-DUCTHO", address=HTI).item_id)  # another counter's
    client = app.test_client()
    auth = {"Authorization": f"Bearer {app.config['DEMO_TOKEN']}"}
    for changes in ({}, {"direction": "dossier_to_agency", "appointment_date": None},
                    {"authorised_person": {"name": "Trần Văn Bình", "phone": "0912345678"}}, {}, {}):
        resp = client.post("/api/v1/orders", json=order_payload(**changes), headers=auth)
        assert resp.status_code == 201, resp.get_json()
        seeded.item_id.append(resp.get_json()["item_id"])
    mine = seeded.item_id[1:]
    resp = client.post(f"/api/v1/orders/{mine[-1]}/events", json={"status": "cancelled"}, headers=auth)
    assert resp.status_code == 201, resp.get_json()

    courier, csrf = _login(app, "courier")
    now = dt.datetime.now(dt.UTC)
    delivered = {"event_id": str(uuid.uuid4()), "item_id": mine[0], "action": "delivered",
                 "device_time": now.isoformat(), "receiver": {"kind": "recipient"},
                 "id_check": {"kind": "id_last4", "value": "0000"}}
    file_id = str(uuid.uuid4())
    resp = courier.put(f"/api/v1/courier/files/{file_id}?item_id={mine[0]}&event_id={delivered['event_id']}"
                       "&kind=photo", data=JPEG, headers={**csrf, "Content-Type": "image/jpeg"})
    assert resp.status_code == 201, resp.get_json()
    seeded.file_id.append(file_id)
    picked = {"event_id": str(uuid.uuid4()), "item_id": mine[0], "action": "pickup_confirmed",
              "device_time": (now - dt.timedelta(minutes=5)).isoformat()}
    resp = courier.post("/api/v1/courier/sync", json={"events": [picked, delivered]}, headers=csrf)
    assert resp.status_code == 200, resp.get_json()

    threshold = app.config["LABEL_ASYNC_THRESHOLD"]
    app.config["LABEL_ASYNC_THRESHOLD"] = 1  # two labels make a job (rendered after the commit)
    resp = client.post("/api/v1/labels/batches", json={"item_ids": mine[1:3]}, headers=auth)
    app.config["LABEL_ASYNC_THRESHOLD"] = threshold
    assert resp.status_code == 202, resp.get_json()
    seeded.job_id.append(resp.get_json()["id"])
    template = client.get("/api/v1/imports/template.csv", headers=auth).data
    resp = client.post("/api/v1/imports", headers=auth, data={"file": (io.BytesIO(template), "orders.csv")})
    assert resp.status_code == 202, resp.get_json()
    seeded.import_id.append(resp.get_json()["id"])
    resp = client.post("/api/v1/manifests", headers=auth,
                       json={"kind": "counter_to_courier", "item_ids": mine[1:2], "route": "QNG-01"})
    assert resp.status_code == 201, resp.get_json()
    seeded.manifest_code.append(resp.get_json()["code"])
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    resp = client.put(f"/api/v1/reports/counter-totals/{yesterday}", json={"results_total": 7}, headers=auth)
    assert resp.status_code == 200, resp.get_json()
    seeded.day.append(yesterday)
    admin, csrf = _login(app, "admin")
    resp = admin.post("/api/v1/reports/areas", headers=csrf, json={
        "code": "FUZZ-1", "name": "Vùng thử", "units": [{"level": "commune", "code": "21025"}]})
    assert resp.status_code == 201, resp.get_json()
    seeded.area_id.append(resp.get_json()["id"])
    return seeded


def _config(seeded: Seeded) -> schemathesis.Config:
    # Real ids half the time, and now and then a hostile one in the same place.
    dictionaries: dict[str, list[Any]] = {
        "item-ids": [*seeded.item_id, "\x00", seeded.item_id[1] + "\x00", " "],
        "job-ids": [*seeded.job_id, 2**63, 2**64], "import-ids": [*seeded.import_id, 2**63],
        "area-ids": [*seeded.area_id, 2**63], "file-ids": [*seeded.file_id, "\x00"],
        "route-codes": [*seeded.route_code, "QNG\x0001"], "days": [*seeded.day, "0001-01-01", "9999-12-31"],
        "manifest-codes": [*seeded.manifest_code, "\x00"],
        "hostile-text": HOSTILE_TEXT, "hostile-integers": HOSTILE_INTEGERS,
    }
    bound = {"path.item_id": "item-ids", "query.item_id": "item-ids", "body.item_ids[*]": "item-ids",
             "body.events[*].item_id": "item-ids", "path.job_id": "job-ids", "path.import_id": "import-ids",
             "path.area_id": "area-ids", "path.file_id": "file-ids", "path.code": "route-codes",
             "body.route": "route-codes", "path.day": "days"}
    return schemathesis.Config.from_dict({
        "seed": SEED,
        "workers": 1,
        "continue-on-failure": True,
        "warnings": False,
        "cache": {"enabled": False},
        "suppress-health-check": ["all"],
        "dictionaries": {name: {"values": values} for name, values in dictionaries.items()},
        "parameters": {key: {"dictionary": name, "probability": 0.5} for key, name in bound.items()},
        "operations": [{"include-path-regex": "^/api/v1/manifests/",
                        "parameters": {"path.code": {"dictionary": "manifest-codes", "probability": 0.5}}}],
        "generation": {
            "deterministic": True, "max-examples": MAX_EXAMPLES, "no-shrink": True, "database": "none",
            "allow-x00": True,
            "with-security-parameters": False,  # each role's own credentials, never generated ones
            "dictionaries": {"string": {"dictionary": "hostile-text", "probability": 0.3},
                             "integer": {"dictionary": "hostile-integers", "probability": 0.3}},
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "phases": {"stateful": {"max-steps": MAX_STEPS}},
    })


def _with_examples(spec: dict[str, Any], seeded: Seeded) -> dict[str, Any]:
    """The document with examples of real ids and of bodies that pass validation, for the examples
    phase and as seeds of the fuzzing phase: writes that random data rarely gets right."""
    order = seeded.item_id[4]  # an order of counter QNG-TTHCC on QNG-01, assigned
    yesterday = (dt.date.today() - dt.timedelta(days=1)).isoformat()
    area = {"code": "FUZZ-2", "name": "Vùng thử hai", "units": [{"level": "district", "code": "522", "legacy": True}]}
    bodies = {
        ("post", "/api/v1/orders"): order_payload(),
        ("put", "/api/v1/orders/{item_id}/address"): {"address": {"province_code": "51", "commune_code": "21025",
                                                                  "detail": "14 Hùng Vương"}},
        ("post", "/api/v1/orders/{item_id}/events"): {"status": "cancelled", "event_id": str(uuid.uuid4())},
        ("post", "/api/v1/orders/{item_id}/route"): {"route": "QNG-02", "note": "Chuyển tuyến"},
        ("put", "/api/v1/reports/counter-totals"): [{"day": yesterday, "results_total": 3}],
        ("post", "/api/v1/reports/areas"): area,
        ("put", "/api/v1/reports/areas/{area_id}"): area,
        ("put", "/api/v1/routes/{code}/coverage"): {"capacity_per_day": 80},
        ("post", "/api/v1/courier/sync"): {"events": [{
            "event_id": str(uuid.uuid4()), "item_id": order, "action": "pickup_confirmed",
            "device_time": dt.datetime.now(dt.UTC).isoformat()}]},
    }
    ids = {"item_id": order, "job_id": seeded.job_id[0], "import_id": seeded.import_id[0],
           "area_id": seeded.area_id[0], "day": seeded.day[0], "file_id": seeded.file_id[0]}
    for path, item in spec["paths"].items():
        for parameter in item.get("parameters", []):
            if parameter["in"] == "path":
                code = seeded.manifest_code[0] if path.startswith("/api/v1/manifests/") else "QNG-01"
                parameter["example"] = ids.get(parameter["name"], code)
                if parameter["name"] == "item_id" and "/proof/files/" in path:
                    parameter["example"] = seeded.item_id[1]  # the order delivered with the photo
        for method, operation in item.items():
            if (method, path) in bodies:
                operation["requestBody"]["content"]["application/json"]["example"] = bodies[(method, path)]
    return spec


def _schema(app: Flask, role: str, seeded: Seeded) -> Any:
    spec = _with_examples(app.test_client().get("/api/v1/openapi.json").get_json(), seeded)
    schema = schemathesis.openapi.from_dict(spec, config=_config(seeded))
    schema.app = app  # called in-process, as schemathesis.openapi.from_wsgi does
    if role == "counter":
        creds = {"headers": {"Authorization": f"Bearer {app.config['DEMO_TOKEN']}"}, "cookies": {}}
    else:
        client, csrf = _login(app, role)
        creds = {"headers": csrf, "cookies": {"session": client.get_cookie("session").value}}

    class RoleAuth:
        """The role's credentials on every call: the counter's token, or a session cookie and the page's
        CSRF token."""

        def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> dict[str, Any]:
            return creds

        def set(self, case: schemathesis.Case, data: dict[str, Any], context: schemathesis.AuthContext) -> None:
            headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
            case.headers = {**headers, **data["headers"]}
            case.cookies = {**(case.cookies or {}), **data["cookies"]}

    schema.auth()(RoleAuth)
    return schema


@dataclass
class Figures:
    """What one run did and found."""

    operations: set[str] = field(default_factory=set)
    reached: set[str] = field(default_factory=set)  # operations with at least one 2xx answer
    requests: int = 0
    by_phase: Counter = field(default_factory=Counter)
    server_errors: int = 0
    failures: Counter = field(default_factory=Counter)
    links: str = ""
    details: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _run(schema: Any) -> Figures:
    figures = Figures()
    seen: set[tuple[str, str, str]] = set()
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseStarted) and event.payload is not None:
            p = event.payload
            figures.links = f"{p.transitions_selected} links ({p.inferred_transitions} inferred)"
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            figures.operations.add(recorder.label)
            for case_id, interaction in recorder.interactions.items():
                figures.requests += 1
                figures.by_phase[event.phase.value] += 1
                status = interaction.response.status_code if interaction.response is not None else 0
                figures.server_errors += status >= 500
                operation = recorder.cases[case_id].value.operation
                if 200 <= status < 300 and interaction.request.method == operation.method.upper():
                    figures.reached.add(operation.label)
            for checks in recorder.checks.values():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    figures.failures[check.name] += 1
                    key = (check.name, failure.operation or recorder.label, failure.title)
                    if key not in seen:
                        seen.add(key)
                        figures.details.append(f"{check.name}: {key[1]}: {failure.title}\n  "
                                               f"{failure.message[:600]}\n  {check.failure_info.code_sample}")
        elif isinstance(event, events.NonFatalError):
            figures.errors.append(f"{event.label}: {event.info.title}: {event.info.message}\n"
                                  f"{event.info.traceback[-1500:]}")
        elif isinstance(event, events.FatalError):
            figures.errors.append(f"fatal: {event.exception!r}")
    figures.operations.discard("Stateful tests")
    return figures


class _Tracebacks(logging.Handler):
    """The server errors the app logged, by exception and the line of ours it came from."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        lines = self.format(record).strip().splitlines()
        error = next((line for line in reversed(lines) if re.match(r"[\w.]+(Error|Exception)\b", line)),
                     lines[-1])
        where = next((line.strip() for line in reversed(lines) if "/delivery_service/" in line), "")
        self.seen[f"{error[:300]} at {where} ({record.getMessage()[:120]})"] += 1


@pytest.mark.parametrize("role", ROLES)
def test_api_fuzz(app: Flask, backend: str, role: str, tmp_path, capsys) -> None:
    app.config.update(PROPAGATE_EXCEPTIONS=False,  # a 500 answer, and its traceback logged
                      PRINT_FILES_DIR=str(tmp_path / "prints"), REPORT_FILES_DIR=str(tmp_path / "reports"))
    started = time.monotonic()
    # Requests run outside the app context the fixture keeps pushed: each gets its own, as in production.
    seeded = contextvars.Context().run(_seed, app)
    schema = contextvars.Context().run(_schema, app, role, seeded)
    tracebacks = _Tracebacks()
    app.logger.addHandler(tracebacks)
    disabled, app.logger.disabled = app.logger.disabled, False  # the migrations' logging config disables it
    try:
        figures = contextvars.Context().run(_run, schema)
    finally:
        app.logger.removeHandler(tracebacks)
        app.logger.disabled = disabled
    with capsys.disabled():
        print(f"\nfuzz {backend}/{role}: {len(figures.operations)} operations ({len(figures.reached)} with a 2xx), "
              f"{figures.requests} requests {dict(figures.by_phase)}, stateful {figures.links}, "
              f"{figures.server_errors} 5xx, failed checks {dict(figures.failures) or 0}, "
              f"{time.monotonic() - started:.1f} s")
    report = [*figures.details, *figures.errors, *(f"{n}x {key}" for key, n in tracebacks.seen.items())]
    assert not report, "\n".join(report)
    # A run that quietly tested less (an upgrade or a setting that skips operations) must not pass.
    documented = contextvars.Context().run(_documented_operations, app)
    assert len(figures.operations) == len(documented), sorted(documented)
    assert figures.requests > 1000, figures.requests


def _documented_operations(app: Flask) -> set[str]:
    with app.test_client() as client:
        spec = client.get("/api/v1/openapi.json").get_json()
    return {f"{method.upper()} {path}" for path, item in spec["paths"].items() for method in item
            if method in ("get", "put", "post", "delete", "patch")}
