"""Guessing passwords is slowed down: failed log-ins are limited per address and per account."""

from __future__ import annotations

from conftest import csrf_token


def test_failed_logins_are_limited_and_the_page_says_so(client):
    token = csrf_token(client, "/login")
    codes = [client.post("/login", data={"username": "counter", "password": f"wrong-{i}",
                                         "csrf_token": token}).status_code for i in range(11)]
    assert codes[:10] == [401] * 10 and codes[10] == 429
    page = client.post("/login", data={"username": "counter", "password": "demo-password", "csrf_token": token})
    assert page.status_code == 429 and "<html" in page.get_data(as_text=True).lower()
