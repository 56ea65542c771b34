"""An API query string's parameters: one the endpoint does not take is refused (422 under ``query``,
naming the ones it takes), never ignored; ``?status=`` filters the order list (it was ignored: a
counter system asking for its delivered orders got all of them, as if they were)."""

from __future__ import annotations

import pytest
from conftest import order_payload


def _unknown(resp, name: str) -> dict:  # noqa: ANN001
    assert resp.status_code == 422, resp.get_data(as_text=True)
    detail = {(d["location"], d["field"]): d for d in resp.json["details"]}[("query", name)]
    assert detail["code"] == "unknown_parameter"
    return detail


def test_an_unknown_filter_is_refused_not_ignored(client, auth):
    assert client.post("/api/v1/orders", json=order_payload(), headers=auth).status_code == 201
    detail = _unknown(client.get("/api/v1/orders?state=delivered", headers=auth), "state")
    # it says what the endpoint takes, the paginator's parameters included
    assert detail["message"] == ("Not a parameter of this endpoint; it takes created_on, cursor, lang, page, "
                                 "page_size, q, status, updated_since.")


@pytest.mark.parametrize("path", [
    "/api/v1/units?parnet=1",
    "/api/v1/reports/counter-totals?form=2025-01-01",
    "/api/v1/reports/figures?levle=province",
])
def test_every_query_schema_refuses_what_it_does_not_name(client, auth, path):
    _unknown(client.get(path, headers=auth), path.split("?")[1].split("=")[0])


def test_the_parameters_read_elsewhere_are_taken(client, auth):
    for _ in range(3):
        assert client.post("/api/v1/orders", json=order_payload(), headers=auth).status_code == 201
    resp = client.get("/api/v1/orders?page=2&page_size=2&lang=vi", headers=auth)
    assert resp.status_code == 200, resp.json
    assert len(resp.json) == 1
    assert client.get("/api/v1/units?lang=en", headers=auth).status_code == 200


def test_status_filters_the_order_list(client, auth):
    ids = [client.post("/api/v1/orders", json=order_payload(), headers=auth).json["item_id"] for _ in range(3)]
    resp = client.post(f"/api/v1/orders/{ids[1]}/events", json={"status": "cancelled", "reason": "citizen"},
                       headers=auth)
    assert resp.status_code in (200, 201), resp.json
    cancelled = client.get("/api/v1/orders?status=cancelled", headers=auth)
    assert cancelled.status_code == 200
    assert [o["item_id"] for o in cancelled.json] == [ids[1]]
    assert cancelled.headers["X-Pagination"] and '"total": 1' in cancelled.headers["X-Pagination"]
    others = client.get("/api/v1/orders?status=assigned", headers=auth).json
    assert sorted(o["item_id"] for o in others) == sorted([ids[0], ids[2]])
    # the same filter while polling for changes
    polled = client.get("/api/v1/orders?updated_since=2020-01-01T00:00:00Z&status=cancelled", headers=auth)
    assert polled.status_code == 200, polled.json
    assert [o["item_id"] for o in polled.json] == [ids[1]]
    bad = client.get("/api/v1/orders?status=lost", headers=auth)
    assert bad.status_code == 422
    assert [(d["location"], d["field"]) for d in bad.json["details"]] == [("query", "status")]


def test_the_document_gives_every_list_page_the_bounds_the_api_enforces(client, auth):
    """A list's ``page`` runs from 1 to MAX_PAGE; the OpenAPI document says so (it declared no maximum,
    so a schema fuzzer took the 422 past MAX_PAGE for a broken contract)."""
    from delivery_service.fields import MAX_PAGE

    spec = client.get("/api/v1/openapi.json").json
    pages = {(path, method): p["schema"] for path, item in spec["paths"].items() for method, op in item.items()
             if isinstance(op, dict) for p in op.get("parameters", [])
             if (p.get("in"), p.get("name")) == ("query", "page")}
    assert ("/api/v1/orders", "get") in pages  # the paginated list
    for where, schema in pages.items():
        assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, MAX_PAGE), where
    # ... and what the document says is what the list does
    assert client.get(f"/api/v1/orders?page={MAX_PAGE}", headers=auth).status_code == 200
    past = client.get(f"/api/v1/orders?page={MAX_PAGE + 1}", headers=auth)
    assert past.status_code == 422
    assert [(d["location"], d["field"], d["code"]) for d in past.json["details"]] == [("query", "page", "out_of_range")]
