"""/api/v1/orders: intake, lookup and status changes."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import current_app, request, url_for
from flask_smorest import Blueprint
from werkzeug.exceptions import UnprocessableEntity

from delivery_service.api import current_actor, json_body_doc, load_json_body, protected
from delivery_service.errors import ErrorOut, Forbidden, InvalidInput, coded
from delivery_service.extensions import db
from delivery_service.fields import MAX_PAGE
from delivery_service.localtime import local_today
from delivery_service.orders import services
from delivery_service.orders.fast_load import fast_load
from delivery_service.orders.schemas import (
    AddressChangeIn,
    EventIn,
    EventOut,
    OrderIn,
    OrderOut,
    OrderQuery,
    order_out,
)
from delivery_service.orders.status import Direction
from delivery_service.privacy import access
from delivery_service.webhooks import polling

blp = protected(Blueprint("orders", __name__, url_prefix="/orders",
                          description="Result-delivery orders"))


_ORDER_IN = OrderIn()  # one instance: building a schema per request costs more than loading


def _order_in() -> dict[str, Any]:
    """The body as ``@blp.arguments(OrderIn())`` would load it: the usual one by ``fast_load``
    (OrderIn's output without marshmallow), any other by webargs and OrderIn."""
    try:
        return load_json_body(blp, _ORDER_IN, lambda body: fast_load(body, local_today()))
    except UnprocessableEntity as exc:
        # The address's units are checked by the service, after the schema: when other fields fail,
        # check them too, so that the client sees every mistake in one answer, not one round at a time.
        errors = (getattr(exc, "data", None) or {}).get("messages", {}).get("json")
        body = request.get_json(silent=True)
        if isinstance(errors, dict) and "address" not in errors and isinstance(body, dict):
            errors.update(services.raw_address_errors(body.get("address"), local_today()))
        raise


@blp.route("", methods=["POST"])
# The body's documentation as @blp.arguments(OrderIn) gives it (the view loads it itself, _order_in)
@blp.doc(requestBody=json_body_doc(OrderIn))
@blp.response(201, OrderOut, description="The new order")
@blp.alt_response(200, schema=OrderOut, description="A retry: the order stored earlier, by the same body")
@blp.alt_response(409, schema=ErrorOut, description="The dossier already has an order that is not "
                  "cancelled, created with another body (`error`: `dossier_exists`, `item_id` names it); "
                  "a cancelled order gives its dossier back")
@blp.alt_response(422, schema=ErrorOut, description="Invalid input, or the Idempotency-Key was used "
                  "with another body (`error`: `idempotency_key_reused`, `item_id` names the order)")
@blp.doc(parameters=[{"in": "header", "name": "Idempotency-Key", "required": False,
                      "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                      "description": "Repeat it, with the same body, on retries: the same key never "
                                     "creates a second order, and is bound to the body it first came with"}])
def create_order():
    """Create an order (idempotent)."""
    data = _order_in()  # first, as @blp.arguments did: a bad body is 422 whoever sends it
    actor = current_actor()
    if actor.counter_id is None:
        raise Forbidden("Only a counter's staff or software can create orders.")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not (1 <= len(key.strip()) <= 128 and key.isascii() and key.isprintable()):
        raise InvalidInput({"Idempotency-Key": [coded("invalid_format",
                                                      "Must be 1-128 printable ASCII characters.")]},
                           location="headers")
    order, created = services.create_order(actor, data, counter_id=actor.counter_id,
                                           idempotency_key=key.strip() if key else None,
                                           digest=services.request_digest(data))
    # The answer OrderOut documents, written by order_out (equal to the schema's dump, without its cost)
    return (current_app.json.response(order_out(order)), (201 if created else 200),
            {"Location": f"/api/v1/orders/{order.item_id}"})


def document(components: dict[str, Any]) -> None:
    """Say in the OpenAPI document which fields each direction requires (OrderIn's cross-field rule)."""
    components["OrderIn"]["oneOf"] = [
        {"title": "result_to_citizen", "required": ["appointment_date"],
         "properties": {"direction": {"enum": [Direction.RESULT_TO_CITIZEN.value]},
                        "appointment_date": {"type": "string", "format": "date"}}},  # a date, never null
        {"title": "dossier_to_agency or both",
         "properties": {"direction": {"enum": [Direction.DOSSIER_TO_AGENCY.value, Direction.BOTH.value]}}},
    ]


@blp.route("", methods=["GET"])
@blp.arguments(OrderQuery, location="query")
@blp.response(200, OrderOut(many=True))
@blp.paginate()
def list_orders(query: dict[str, Any], pagination_parameters):
    """List the caller's orders, newest first; search by item id, dossier code, phone or name."""
    if pagination_parameters.page > MAX_PAGE:
        raise InvalidInput({"page": [coded("out_of_range", f"Must be at most {MAX_PAGE}.")]},
                           location="query")
    if query.get("updated_since") is not None or query.get("cursor") is not None:
        return _changed_orders(query, pagination_parameters)
    stmt = services.find_orders(current_actor(), q=query.get("q"), created_on=query.get("created_on"),
                                status=query.get("status"))
    pagination_parameters.item_count = db.session.scalar(
        sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    return db.session.scalars(stmt.offset(pagination_parameters.first_item)
                              .limit(pagination_parameters.page_size)).all()


def _changed_orders(query: dict[str, Any], pagination_parameters):
    """Keyset mode for polling systems: orders by their latest event, after the cursor.

    The answer's ``X-Next-Cursor`` (also a ``Link: rel="next"``) is where to continue, now or at the
    next poll; an order changed again later comes again. X-Pagination then describes this page only.
    """
    if pagination_parameters.page != 1:
        raise InvalidInput({"page": [coded("invalid", "Use cursor, not page, with updated_since.")]},
                           location="query")
    after = polling.decode_cursor(query["cursor"]) if query.get("cursor") else None
    orders, next_after = polling.changed_orders(
        current_actor(), after=after, since=query.get("updated_since"), q=query.get("q"),
        created_on=query.get("created_on"), status=query.get("status"), limit=pagination_parameters.page_size)
    pagination_parameters.item_count = len(orders)
    cursor = polling.encode_cursor(next_after)
    args = {k: v for k, v in request.args.items() if k not in ("cursor", "updated_since", "page")}
    link = url_for("orders.list_orders", _external=True, **args, cursor=cursor)
    return orders, 200, {"X-Next-Cursor": cursor, "Link": f'<{link}>; rel="next"'}


@blp.route("/<item_id>", methods=["GET"])
@blp.response(200, OrderOut)
def get_order(item_id: str):
    """One order by its item id."""
    order = services.get_order(current_actor(), item_id)
    access.opened(current_actor(), "api_order", order_ids=[order.id])
    return order


@blp.route("/<item_id>/events", methods=["GET"])
@blp.response(200, EventOut(many=True))
def list_events(item_id: str):
    """The order's status history, oldest first."""
    return services.get_order(current_actor(), item_id).events


@blp.route("/<item_id>/events", methods=["POST"])
@blp.arguments(EventIn())
@blp.response(201, EventOut, description="The status changed")
@blp.alt_response(200, schema=EventOut, description="A replay of an event already stored")
@blp.alt_response(403, schema=ErrorOut, description="The role cannot set this status here (a courier's "
                  "delivered, picked_up and failed_attempt come through POST /api/v1/courier/sync)")
@blp.alt_response(409, description="The move is impossible from the current status; the reason says why")
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
def add_event(data: dict[str, Any], item_id: str):
    """Change the order's status (a courier's deliveries, pickups and failed attempts come through
    POST /api/v1/courier/sync, with their proof)."""
    services.check_general_event(current_actor(), data["status"])
    event, created = services.change_status(
        current_actor(), item_id, data.pop("status"), client_event_id=data.pop("event_id"), check_time=True,
        **data)
    return event, (201 if created else 200)


@blp.route("/<item_id>/address", methods=["PUT"])
@blp.arguments(AddressChangeIn())
@blp.response(200, OrderOut, description="The corrected order, placed again on the route covering it")
@blp.alt_response(409, description="The order is with a courier or closed")
def change_address(data: dict[str, Any], item_id: str):
    """Correct the delivery address (the order is re-assigned and re-located)."""
    return services.change_address(current_actor(), item_id, data["address"], note=data.get("note"))
