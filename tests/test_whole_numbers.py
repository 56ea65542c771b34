"""Numbers typed or forged into pages' forms and query strings: ``str.isdigit()`` also takes "²" (which
``int()`` refuses) and twenty digits overflow a BIGINT; each was a 500 before fields.whole_number."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login

from delivery_service.extensions import db
from delivery_service.fields import MAX_PAGE, page_number, whole_number
from delivery_service.localtime import local_today
from delivery_service.orgs.models import PostOffice

FORGED = ["²", "١٢", "-5", "+3", "1e3", " ", "9" * 19, "9" * 4000, "0x10", "1_000"]


def test_whole_number_takes_ascii_digits_that_fit_a_bigint():
    assert whole_number("0") == 0 and whole_number(" 42 ") == 42 and whole_number("9" * 18) == 10**18 - 1
    assert all(whole_number(raw) is None for raw in [*FORGED, "", None])
    assert page_number(None) == 1 and page_number("0") == 1 and page_number("-5") == 1
    assert page_number("7") == 7 and page_number("9" * 18) == MAX_PAGE and page_number("²") == 1


@pytest.mark.parametrize("user, paths", [
    ("admin", ["/admin/users?page={}", "/admin/audit?page={}"]),
    ("counter", ["/counter/search?q=nguyen&page={}"]),
])
def test_forged_page_numbers_show_a_page(client, user, paths):
    login(client, user)
    for path in paths:
        for raw in [*FORGED, "99999999999999999"]:
            resp = client.get(path.format(raw))
            assert resp.status_code == 200, (path, raw)


def test_forged_ids_in_forms_are_readable_errors(client):
    login(client, "supervisor")
    office = db.session.scalar(sa.select(PostOffice.id).where(PostOffice.code == "BC-QNG"))
    plan = f"/routing/plan/{office}/{local_today().isoformat()}"
    token = csrf_token(client, plan)
    for raw in ("²", "9" * 19):
        resp = client.post(plan + "/accept", data={"csrf_token": token, "assignment": f"{raw}:1"})
        assert resp.status_code == 303  # back to the plan, which says why
        assert "Không đọc được kế hoạch gửi lại" in client.get(resp.headers["Location"]).get_data(as_text=True)
        resp = client.post(plan, data={"csrf_token": token, "lock": raw, "kept": f"{raw},1"})
        assert resp.status_code == 200


def test_a_forged_counter_on_the_order_form_is_a_readable_error(client):
    login(client, "counter")
    new = "/counter/orders/new"
    resp = client.post(new, data={"csrf_token": csrf_token(client, new), "counter_id": "²"})
    assert resp.status_code == 422  # the form again, with its messages

