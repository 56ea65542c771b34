"""/api/v1/courier: the courier app's run, offline sync and uploads; /api/v1/orders/<id>/proof for the
back office; and the order page's proof images. Contract: docs/courier-api.md."""

from __future__ import annotations

from typing import Any

from flask import Blueprint as PageBlueprint
from flask import Response, abort, current_app, request, url_for
from flask_login import current_user, login_required
from flask_smorest import Blueprint

from delivery_service.accounts.services import Actor
from delivery_service.api import current_actor, json_body_doc, load_json_body, protected
from delivery_service.courier import services
from delivery_service.courier.models import ProofFile
from delivery_service.courier.schemas import (
    CourierFileOut,
    CourierFileQuery,
    CourierRunOut,
    CourierRunQuery,
    CourierSyncIn,
    CourierSyncOut,
    sync_out,
)
from delivery_service.errors import InvalidInput
from delivery_service.orders.services import get_order
from delivery_service.privacy import access

blp = protected(Blueprint("courier_api", __name__, url_prefix="/courier",
                          description="The courier app: run, offline sync, photos and signatures"))
proof = protected(Blueprint("order_proof", __name__, url_prefix="/orders",
                            description="Proof of delivery, for the back office"))
pages = PageBlueprint("courier_proof", __name__, url_prefix="/counter")


@blp.route("/run", methods=["GET"])
@blp.arguments(CourierRunQuery, location="query")
@blp.response(200, CourierRunOut)
@blp.alt_response(404, description="The courier has no route")
def run(query: dict[str, Any]):
    """The courier's own run for a day (default today): stops in order, each with its orders."""
    return services.run_for(current_actor(), query.get("date"))


@blp.route("/orders/<item_id>", methods=["GET"])
@blp.response(200, description="ORDER (docs/courier-api.md)")
@blp.alt_response(404, description="Not on the courier's route")
def order(item_id: str):
    """One order on the courier's route, any day (a scanned label)."""
    return services.order_for(current_actor(), item_id)


_SYNC_IN = CourierSyncIn()  # one instance: building a schema per request costs more than loading


def _usual_sync(body: Any) -> dict[str, Any] | None:
    """CourierSyncIn's output for the usual body (only ``events``: a list of 1 to SYNC_MAX_EVENTS
    values, none null: each event is checked by services.sync), else None."""
    if type(body) is dict and body.keys() == {"events"}:
        events = body["events"]
        if (type(events) is list and 1 <= len(events) <= current_app.config["SYNC_MAX_EVENTS"]
                and all(e is not None for e in events)):
            return {"events": events}
    return None


def _sync_in() -> dict[str, Any]:
    """The body as ``@blp.arguments(CourierSyncIn())`` would load it (tests/test_sync_lean.py)."""
    return load_json_body(blp, _SYNC_IN, _usual_sync)


@blp.route("/sync", methods=["POST"])
# The body's documentation as @blp.arguments(CourierSyncIn) gives it (the view loads it itself, _sync_in)
@blp.doc(requestBody=json_body_doc(CourierSyncIn))
@blp.alt_response(422, response="UNPROCESSABLE_ENTITY")
@blp.response(200, CourierSyncOut, description="One result per event, in the order sent")
def sync():
    """Apply events from the phone's outbox: de-duplicated by event_id, applied in device-time order."""
    data = _sync_in()  # first, as @blp.arguments did: a bad body is 422 whoever sends it
    # The answer CourierSyncOut documents, written by sync_out (equal to the schema's dump, without its cost)
    return current_app.json.response(sync_out(services.sync(current_actor(), data["events"])))


@blp.route("/files/<file_id>", methods=["PUT"])
@blp.arguments(CourierFileQuery, location="query")
@blp.response(201, CourierFileOut, description="Stored")
@blp.alt_response(200, schema=CourierFileOut, description="A replay of the same upload")
@blp.alt_response(404, description="The order is not on the courier's route")
@blp.alt_response(413, description="Larger than MAX_PROOF_BYTES")
@blp.alt_response(422, description="Not a JPEG, PNG or WebP image (checked by content)")
@blp.doc(requestBody={"required": True, "content": {
    m: {"schema": {"type": "string", "format": "binary"}} for m in ("image/jpeg", "image/png", "image/webp")
}})
def upload(query: dict[str, Any], file_id: str):
    """Upload a photo or signature with the phone's own uuid; attached to its event whenever it comes."""
    actor = current_actor()
    services.require_courier(actor)
    if services.UUID_RE.match(file_id) is None:
        raise InvalidInput({"file_id": ["Must be a UUID."]})
    body = request.get_data(cache=False)  # bounded by the limit set in api._authenticate
    stored, created = services.store_file(actor, file_id.lower(), item_id=query["item_id"],
                                          event_id=query["event_id"], kind=query["kind"], body=body)
    return {"id": stored.id, "attached": stored.attached_event_id is not None}, (201 if created else 200)


def _api_file_url(item_id: str, file_id: str) -> str:
    return f"/api/v1/orders/{item_id}/proof/files/{file_id}"


@proof.route("/<item_id>/proof", methods=["GET"])
@proof.response(200, description="Deliveries and pickups with their proof, failed attempts, corrections")
def order_proof(item_id: str):
    """Proof of delivery: receiver, identity check (never the ID number), amounts, location, times, files."""
    order = get_order(current_actor(), item_id)
    access.opened(current_actor(), "proof", order_ids=[order.id])
    return services.proof_json(order, _api_file_url)


@proof.route("/<item_id>/proof/files/<file_id>", methods=["GET"])
@proof.response(200, description="The image")
def order_proof_file(item_id: str, file_id: str):
    """One photo or signature of the order's proof."""
    order = get_order(current_actor(), item_id)
    found = services.proof_file(order, file_id.lower())
    access.opened(current_actor(), "proof_file", order_ids=[order.id])
    return _image(found)


def _image(found: ProofFile) -> Response:
    return Response(found.content, mimetype=found.mime, headers={
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'inline; filename="{found.id}"'})


@pages.get("/orders/<item_id>/proof/<file_id>")
@login_required
def proof_image(item_id: str, file_id: str):
    """An image of the order page's proof card (same scope as the order page)."""
    from delivery_service.web.views import DESK_ROLES

    if current_user.role not in DESK_ROLES:
        abort(403)
    order = get_order(Actor.of_user(current_user), item_id)
    found = services.proof_file(order, file_id.lower())
    access.opened(Actor.of_user(current_user), "proof_file", order_ids=[order.id])
    return _image(found)


@pages.app_template_global("proof_of_order")
def proof_of_order(order: Any) -> dict[str, Any]:
    """The order page's proof card (the page has already checked the order's scope)."""
    return services.proof_json(order, lambda item_id, file_id: url_for(
        "courier_proof.proof_image", item_id=item_id, file_id=file_id), iso=False)
