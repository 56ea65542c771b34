"""Helpers shared by the page tests: orders made through the services, users of other counters."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa
from conftest import DEMO_PASSWORD, csrf_token, order_payload

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import SYSTEM, create_user
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.schemas import OrderIn
from delivery_service.orders.services import create_order
from delivery_service.orgs.models import Counter

HTI = {"province_code": "42", "commune_code": "18229", "detail": "Xóm 4"}


def counter_id(code: str) -> int:
    return db.session.scalar(sa.select(Counter.id).where(Counter.code == code))


def make_order(counter_code: str = "QNG-TTHCC", **changes: Any) -> DeliveryOrder:
    """An order stored through the service, as a counter's software would."""
    data = OrderIn().load(order_payload(**changes))
    order, created = create_order(SYSTEM, data, counter_id=counter_id(counter_code))
    assert created
    return order


def make_user(username: str, role: Role = Role.COUNTER_STAFF, counter_code: str | None = "HTI-DUCTHO",
              locale: str = "vi") -> None:
    create_user(username=username, full_name="Nguyễn Thị Thử", password=DEMO_PASSWORD, role=role,
                counter_code=counter_code, locale=locale)
    db.session.commit()


def order_count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(DeliveryOrder))


def form_data(client, **changes: Any) -> dict[str, str]:
    """A valid new-order form for counter QNG-TTHCC; ``changes`` override fields."""
    data = {
        "csrf_token": csrf_token(client, "/counter/orders/new"),
        "direction": "result_to_citizen",
        "dossier_code": "H55.22-250101-0001",
        "procedure_code": "1.001612.000.00.00.H55",
        "procedure_name": "Cấp đổi giấy phép lái xe",
        "issuing_agency": "Sở Xây dựng tỉnh Quảng Ngãi",
        "recipient_name": "Nguyễn Thị Hoa",
        "recipient_phone": "0905 123 456",
        "recipient_id_number": "",
        "authorised_name": "",
        "authorised_phone": "",
        "authorised_id_number": "",
        "province_code": "51",
        "district_code": "",
        "commune_code": "21025",
        "address_detail": "12 Hùng Vương",
        "postage_vnd": "26.000",
        "payer": "citizen",
        "exemption": "none",
        "collect_vnd": "",
        "appointment_date": (dt.date.today() + dt.timedelta(days=2)).isoformat(),
        "note": "",
    }
    data.update(changes)
    return data


def field_error(html: str, name: str) -> str:
    """The error text shown under a form field, or ''."""
    match = re.search(rf'<p class="field-error" id="e-{name}">([^<]*)</p>', html)
    return match.group(1) if match else ""


def field_value(html: str, name: str) -> str | None:
    match = re.search(rf'<input id="f-{name}" name="{name}"[^>]*value="([^"]*)"', html)
    return match.group(1) if match else None
