"""Order intake through /api/v1/orders."""

from __future__ import annotations

from conftest import order_payload


def test_create_returns_201_with_valid_s10_item_id(client, auth):
    from labels import s10

    resp = client.post("/api/v1/orders", json=order_payload(), headers=auth)
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert s10.is_valid(body["item_id"]) and body["item_id"].endswith("VN")
    assert body["status"] == "created"
    assert body["address"]["commune"] == {"code": "21025", "name": "Phường Cẩm Thành"}
    assert resp.headers["Location"] == f"/api/v1/orders/{body['item_id']}"
    got = client.get(f"/api/v1/orders/{body['item_id']}", headers=auth)
    assert got.status_code == 200 and got.json["dossier_code"] == body["dossier_code"]
