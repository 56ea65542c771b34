"""Inputs that reached the database as server errors (found by hand and by tests/test_api_fuzz.py): NUL
and lone surrogates, integers beyond 64 bits, days at the extremes, blank ids. Each is a 404 or a 422
naming the field, on SQLite and PostgreSQL alike, and changes nothing."""

from __future__ import annotations

import io

import pytest
from conftest import login, order_payload

from delivery_service.api.guards import INT64_MAX

BIG = str(INT64_MAX + 1)


def new_order(client, auth) -> str:
    resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert resp.status_code == 201, resp.json
    return resp.json["item_id"]


def page_csrf(client) -> dict[str, str]:
    import re

    html = client.get("/", follow_redirects=True).get_data(as_text=True)
    return {"X-CSRFToken": re.search(r'name="csrf-token" content="([^"]+)"', html).group(1)}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/api/v1/orders/{}"), ("GET", "/api/v1/orders/{}/events"), ("POST", "/api/v1/orders/{}/events"),
    ("GET", "/api/v1/orders/{}/label"), ("GET", "/api/v1/orders/{}/label/prints"),
    ("GET", "/api/v1/orders/{}/receipt"), ("PUT", "/api/v1/orders/{}/address"),
    ("POST", "/api/v1/orders/{}/route"), ("GET", "/api/v1/orders/{}/proof"),
    ("GET", "/api/v1/routes/{}"), ("GET", "/api/v1/routes/{}/run"), ("GET", "/api/v1/manifests/{}.pdf"),
    ("GET", "/api/v1/labels/batches/{}"), ("GET", "/api/v1/imports/{}"),
])
def test_nul_in_a_path_is_404(client, auth, method, path):
    item = new_order(client, auth)
    for value in ("%00", f"{item}%00", "RH%00000001VN"):
        resp = client.open(path.format(value), method=method, json={}, headers=auth)
        assert resp.status_code == 404, (path, value, resp.json)
    assert client.get(f"/api/v1/orders/{item}", headers=auth).json["status"] == "assigned"


@pytest.mark.parametrize("path", ["/api/v1/labels/batches/{}", "/api/v1/labels/batches/{}/file",
                                  "/api/v1/imports/{}", "/api/v1/reports/areas/{}"])
@pytest.mark.parametrize("number", [BIG, str(2**64), "1" + "0" * 40, str(INT64_MAX)])
def test_ids_beyond_64_bits_are_404(client, path, number):
    login(client, "admin")  # sees every batch, import and area
    assert client.get(path.format(number)).status_code == 404


def test_int_path_parameters_are_documented_as_64_bit(client):
    spec = client.get("/api/v1/openapi.json").json
    params = spec["paths"]["/api/v1/reports/areas/{area_id}"]["parameters"]
    [area_id] = [p for p in params if p["name"] == "area_id"]
    assert area_id["schema"] == {"type": "integer", "minimum": 0, "maximum": INT64_MAX}


@pytest.mark.parametrize("query", [{"q": "a\x00"}, {"cursor": "\x00abc"}, {"created_on": "2026-01-01\x00"},
                                   {"q\x00": "x"}])
def test_nul_in_a_query_is_422_with_the_field(client, auth, query):
    resp = client.get("/api/v1/orders", query_string=query, headers=auth)
    assert resp.status_code == 422
    assert list(resp.json["errors"]["query"]) == list(query)


@pytest.mark.parametrize(("path", "query"), [
    ("/api/v1/reports/counter-totals", "to=0001-01-01"), ("/api/v1/reports/counter-totals", "from=0001-01-01"),
    ("/api/v1/reports/counter-totals", "to=9999-12-31"), ("/api/v1/units", "on=0001-01-01"),
    ("/api/v1/units", "on=9999-12-31"), ("/api/v1/routes/QNG-01/run", "date=0001-01-01"),
    ("/api/v1/routes/QNG-01/run/sheet", "date=9999-12-31"), ("/api/v1/orders", "created_on=1999-12-31"),
])
def test_days_at_the_extremes_are_422(client, auth, path, query):
    resp = client.get(f"{path}?{query}", headers=auth)
    assert resp.status_code == 422, resp.json
    assert query.split("=")[0] in resp.json["errors"]["query"]


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1999-12-31"])
def test_reported_days_at_the_extremes_are_422(client, auth, day):
    resp = client.put(f"/api/v1/reports/counter-totals/{day}", json={"results_total": 1}, headers=auth)
    assert resp.status_code == 422 and "day" in resp.json["errors"]["path"]
    resp = client.put("/api/v1/reports/counter-totals", json=[{"day": day, "results_total": 1}], headers=auth)
    assert resp.status_code == 422 and "day" in resp.json["errors"]["json"]["0"]


@pytest.mark.parametrize("event_id", ["", " ", "\t\n", "   \u3000 "])
def test_a_blank_event_id_is_422(client, auth, event_id):
    item = new_order(client, auth)
    resp = client.post(f"/api/v1/orders/{item}/events", json={"status": "cancelled", "event_id": event_id},
                       headers=auth)
    assert resp.status_code == 422 and "event_id" in resp.json["errors"]["json"], resp.json
    assert client.get(f"/api/v1/orders/{item}", headers=auth).json["status"] == "assigned"


@pytest.mark.parametrize(("body", "field"), [
    ('{"item_ids": ["RH\\u0000"]}', ["item_ids", "0"]),
    ('{"item_ids": ["\\ud800"]}', ["item_ids", "0"]),
    ('{"item_ids": ["ok", "x\\udfffy"], "format": "pdf"}', ["item_ids", "1"]),
    ('{"format\\u0000": "pdf"}', ["format\x00"]),
])
def test_nul_and_lone_surrogates_in_json_are_422_with_the_field(client, auth, body, field):
    resp = client.post("/api/v1/labels/batches", data=body, content_type="application/json", headers=auth)
    assert resp.status_code == 422, resp.json
    errors = resp.json["errors"]["json"]
    for key in field:
        errors = errors[key]
    assert errors == ["Contains a NUL character or an unpaired surrogate."]


def test_nul_in_other_json_bodies_is_422(client, auth):
    item = new_order(client, auth)
    for path, body in [
        ("/api/v1/manifests", {"kind": "counter_to_courier", "item_ids": [item + "\x00"], "route": "QNG-01"}),
        ("/api/v1/manifests", {"kind": "counter_to_courier", "item_ids": [item], "route": "QNG\x0001"}),
        (f"/api/v1/orders/{item}/address", {"address": {"province_code": "51\x00", "commune_code": "21025",
                                                        "detail": "x"}}),
    ]:
        resp = client.open(path, method="PUT" if path.endswith("address") else "POST", json=body, headers=auth)
        assert resp.status_code == 422, (path, resp.json)


def test_a_surrogate_pair_is_a_character_not_a_lone_surrogate(client, auth):
    import json

    body = json.dumps(order_payload(note="Gọi trước 🙂"))  # ASCII-escaped: "\\ud83d\\ude42"
    assert "\\ud83d" in body
    resp = client.post("/api/v1/orders", data=body, content_type="application/json", headers=auth)
    assert resp.status_code == 201 and resp.json["note"] == "Gọi trước 🙂"


def test_nul_in_an_uploaded_file_name_is_422(client, auth):
    resp = client.post("/api/v1/imports", headers=auth,
                       data={"file": (io.BytesIO(b"a,b\n"), "orders\x00.csv")})
    assert resp.status_code == 422 and "file" in resp.json["errors"]["files"]


def test_pages_too(client):
    login(client, "counter")
    assert client.get("/counter/orders/RH%00").status_code == 404
    assert client.get("/counter?q=a%00b").status_code == 422


@pytest.mark.parametrize("parent", [BIG, "1" + "0" * 30, "0", "-1"])
def test_integers_beyond_64_bits_in_a_query_are_422(client, auth, parent):
    resp = client.get("/api/v1/units", query_string={"parent": parent}, headers=auth)
    assert resp.status_code == 422 and "parent" in resp.json["errors"]["query"]
