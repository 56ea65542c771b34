"""The access log: one row per order whose personal data a person or a counter system opened.

Views call ``opened`` once, after the data was read: one INSERT (a single statement for any number
of orders: a list is sent as one multi-row insert, a select is copied by INSERT … SELECT) and the
commit. Rows carry ids, a kind and an address, never the data itself.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from flask import has_request_context, request

from delivery_service.accounts.services import Actor
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.privacy.models import PersonalDataAccess

# What was opened (the access log's ``what``), with the words the admin page shows: (Vietnamese,
# English), the page picks the reader's.
WHAT = {
    "order_page": ("Trang đơn", "Order page"),
    "proof": ("Bằng chứng giao", "Proof of delivery"),
    "proof_file": ("Ảnh, chữ ký", "Photo, signature"),
    "api_order": ("API: đơn", "API: order"),
    "label": ("Nhãn", "Label"),
    "receipt": ("Biên nhận", "Receipt"),
    "label_batch": ("Tệp nhãn", "Label batch file"),
    "manifest": ("Biên bản giao nhận", "Manifest"),
    "run_sheet": ("Lộ trình phát", "Run sheet"),
    "citizen_export": ("Xuất dữ liệu công dân", "Citizen export"),
}


def _ip() -> str | None:
    return (request.remote_addr or None) if has_request_context() else None


def opened(actor: Actor, what: str, *, order_ids: Iterable[int] = (), orders: sa.Select | None = None,
           commit: bool = True) -> None:
    """Log that ``actor`` opened the personal data of ``order_ids`` (or of the orders whose ids
    ``orders`` selects, one column) as ``what``; commits unless told not to."""
    if what not in WHAT:
        raise ValueError(f"unknown access kind {what!r}")
    table = PersonalDataAccess.__table__
    common = {"at": utcnow(), "user_id": actor.user_id, "client_id": actor.client_id,
              "actor_label": actor.label[:100], "what": what, "ip": _ip()}
    if orders is not None:
        ids = orders.subquery()
        id_column = next(iter(ids.c))
        cols = [sa.literal(v, type_=table.c[k].type).label(k) for k, v in common.items()]
        db.session.execute(sa.insert(table).from_select(
            [*common, "order_id"], sa.select(*cols, id_column.label("order_id"))))
    else:
        rows = [{**common, "order_id": order_id} for order_id in dict.fromkeys(order_ids)]
        if not rows:
            return
        db.session.execute(sa.insert(table), rows)
    if commit:
        db.session.commit()


# Selects of the order ids a document holds, for ``opened(..., orders=...)`` (copied by the INSERT).

def by_item(item_id: str) -> sa.Select:
    """The order with this item id."""
    from delivery_service.orders.models import DeliveryOrder
    from labels import s10

    return sa.select(DeliveryOrder.id).where(DeliveryOrder.item_id == s10.normalize(item_id))


def of_manifest(code: str) -> sa.Select:
    """The orders listed on a manifest."""
    from delivery_service.printing.models import Manifest, manifest_items

    return (sa.select(manifest_items.c.order_id).join(Manifest, Manifest.id == manifest_items.c.manifest_id)
            .where(Manifest.code == code.strip().upper()))


def of_run(route_code: str, day: object) -> sa.Select:
    """The orders planned on a route's run of that day (what its run sheet lists)."""
    from delivery_service.orders.models import DeliveryOrder
    from delivery_service.orgs.models import PostalRoute

    return (sa.select(DeliveryOrder.id).join(PostalRoute, PostalRoute.id == DeliveryOrder.route_id)
            .where(PostalRoute.code == route_code.strip().upper(), DeliveryOrder.run_date == day))


def of_print_job(job_id: int) -> sa.Select:
    """The orders whose labels a batch file holds."""
    from delivery_service.printing.models import LabelPrint

    return sa.select(LabelPrint.order_id).where(LabelPrint.print_job_id == job_id)
