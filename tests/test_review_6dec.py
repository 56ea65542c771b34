"""What an outside review of 6 Dec 2026 found using the product as each role: every test here failed on
the code before its fix."""

from __future__ import annotations

import pytest
from conftest import login, order_payload
from test_imports import row, to_csv, upload
from web_helpers import field_error, form_data, order_count

# --- a phone number with letters is refused, not read as a keypad's digits ------------------------

KEYPAD = "090abc1234"  # phonenumbers.parse reads it as 0902221234: someone else's phone


@pytest.mark.parametrize("phone", [KEYPAD, "0905 abc 456", "0905-123-4S6"])
def test_the_api_refuses_letters_in_a_phone(client, auth, phone):
    resp = client.post("/api/v1/orders", headers=auth,
                       json=order_payload(recipient={"name": "Nguyễn Văn An", "phone": phone}))
    assert resp.status_code == 422, resp.json
    assert "phone" in resp.json["errors"]["json"]["recipient"]
    assert order_count() == 0


def test_the_counter_form_refuses_letters_in_a_phone(client):
    login(client, "counter")
    resp = client.post("/counter/orders/new", data=form_data(client, recipient_phone=KEYPAD))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 422 and order_count() == 0
    assert field_error(html, "recipient_phone"), html[:2000]


def test_an_import_refuses_letters_in_a_phone_on_that_row(client, auth):
    resp = upload(client, auth, to_csv([row(recipient_phone=KEYPAD), row()]))
    assert resp.status_code in (201, 202), resp.json
    body = client.get(f"/api/v1/imports/{resp.json['id']}", headers=auth).json
    assert (body["created_rows"], body["error_rows"]) == (1, 1), body["results"]
    assert list(body["results"][0]["errors"]) == ["recipient_phone"]


def test_the_written_forms_of_a_number_are_still_read():
    from delivery_service.fields import normalise_phone

    for written in ("0905 123 456", "+84 905 123 456", "(0905) 123-456", "0905.123.456", "0905\u00a0123\u00a0456"):
        assert normalise_phone(written) == "0905123456", written
