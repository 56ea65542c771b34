"""/api/v1: labels (one, or batches), receipts, handover manifests and run sheets as files."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint

from delivery_service.api import current_actor, protected
from delivery_service.errors import Forbidden
from delivery_service.printing import services
from delivery_service.printing.schemas import (
    BatchIn,
    LabelPrintOut,
    LabelQuery,
    ManifestIn,
    ManifestOut,
    PrintBatchOut,
    PrintJobOut,
    ReceiptQuery,
)
from delivery_service.privacy import access
from delivery_service.routing.schemas import RunQuery

orders = protected(
    Blueprint("order_prints", __name__, url_prefix="/orders", description="Result-delivery orders")
)
batches = protected(Blueprint("labels", __name__, url_prefix="/labels", description="Label batches"))
manifests = protected(
    Blueprint(
        "manifests", __name__, url_prefix="/manifests", description="Handover manifests (biên bản giao nhận)"
    )
)
sheets = protected(
    Blueprint("run_sheets", __name__, url_prefix="/routes", description="Postal delivery routes")
)

PDF = {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}
FILE = {**PDF, "application/zpl": {"schema": {"type": "string", "format": "binary"}}}


def send(doc: services.Document, *, inline: bool = True) -> Response:
    """A rendered document as the response (the API and the staff pages alike)."""
    disposition = "inline" if inline else "attachment"
    return Response(
        doc.content,
        mimetype=doc.mimetype,
        headers={
            "Content-Disposition": f'{disposition}; filename="{doc.filename}"',
            "Cache-Control": "no-store",
        },
    )


@orders.route("/<item_id>/label", methods=["GET"])
@orders.arguments(LabelQuery, location="query")
@orders.doc(
    responses={
        "200": {"description": "The label (recorded as a print)", "content": FILE},
        "409": {"description": "Cancelled, or not routed where the counter requires it"},
        "422": {"description": "Unknown format or size"},
    }
)
def label(query: dict[str, Any], item_id: str):
    """The label of one order: PDF or ZPL, in the counter's size unless another is asked."""
    doc = services.print_label(current_actor(), item_id, query.get("format"), query.get("size"))
    access.opened(current_actor(), "label", orders=access.by_item(item_id))
    return send(doc)


@orders.route("/<item_id>/label/prints", methods=["GET"])
@orders.response(200, LabelPrintOut(many=True))
def label_prints(item_id: str):
    """Every print of the order's label, oldest first (a reprint shows the data printed on it)."""
    return services.prints_of(current_actor(), item_id)


@orders.route("/<item_id>/receipt", methods=["GET"])
@orders.arguments(ReceiptQuery, location="query")
@orders.doc(responses={"200": {"description": "The citizen's receipt", "content": PDF}})
def receipt(query: dict[str, Any], item_id: str):
    """The citizen's receipt (A5 or A4 PDF)."""
    doc = services.receipt(current_actor(), item_id, query["size"])
    access.opened(current_actor(), "receipt", orders=access.by_item(item_id))
    return send(doc)


@batches.route("/batches", methods=["POST"])
@batches.arguments(BatchIn())
@batches.doc(
    responses={
        "200": {"description": "A small batch: the file itself (X-Remaining: the orders print all left "
                "for a next batch)", "content": FILE},
        "202": {"description": "A big batch: the job rendering it (poll it, then get its file), and in "
                "remaining (and X-Remaining) the orders print all left for a next batch",
                "content": {"application/json": {"schema": PrintBatchOut}}},
    }
)
def start_batch(data: dict[str, Any]):
    """Print the chosen orders, or every unprinted one of the counter, as one PDF or ZPL stream."""
    actor = current_actor()
    if actor.counter_id is None:
        raise Forbidden("Batches are printed for a counter: use a counter's token or account.")
    result = services.start_batch(
        actor,
        counter_id=actor.counter_id,
        item_ids=data.get("item_ids"),
        fmt=data.get("format"),
        size=data.get("size"),
    )
    if result.document is not None:
        response = send(result.document, inline=False)
        response.headers["X-Left-Out"] = str(result.left_out)
        response.headers["X-Remaining"] = str(result.remaining)
        return response
    body = {**PrintJobOut().dump(result.job), "remaining": result.remaining}  # PrintBatchOut
    return (
        body,
        202,
        {"Location": f"/api/v1/labels/batches/{result.job.id}", "X-Left-Out": str(result.left_out),
         "X-Remaining": str(result.remaining)},
    )


@batches.route("/batches/<int:job_id>", methods=["GET"])
@batches.response(200, PrintJobOut)
def get_batch(job_id: int):
    """A batch being rendered: state and progress."""
    return services.get_job(current_actor(), job_id)


@batches.route("/batches/<int:job_id>/file", methods=["GET"])
@batches.doc(
    responses={
        "200": {"description": "The batch's file", "content": FILE},
        "409": {"description": "Not rendered yet"},
    }
)
def batch_file(job_id: int):
    """The file of a finished batch."""
    doc = services.job_file(current_actor(), job_id)
    access.opened(current_actor(), "label_batch", orders=access.of_print_job(job_id))
    return send(doc, inline=False)


@manifests.route("", methods=["POST"])
@manifests.arguments(ManifestIn())
@manifests.response(201, ManifestOut)
@manifests.alt_response(200, schema=ManifestOut, description=(
    "The same items of the same kind for the same route were handed over on a manifest already (a "
    "retry, a double click, two staff printing the bag's manifest): that manifest, unchanged"))
@manifests.doc(responses={"409": {"description": (
    "already_handed_over: some of the items were handed over at that step (to the route's courier; "
    "back, to the agency or to the counter) on another manifest, or with other items (handed_over names "
    "the manifests and items, kind the kind asked for): an item is handed over once, and back once. "
    "wrong_status: some items are in a status the kind does not list (items: item_id and status): "
    "counter_to_courier lists what the counter still holds: results (created, assigned, handed_to_courier; "
    "delivered_to_agency for an order in both directions) and dossiers still to pick up (created, "
    "assigned, pickup_scheduled); courier_to_agency and courier_to_counter "
    "list dossiers picked up (picked_up, delivered_to_agency) and results returned after the last "
    "failed attempt (returned_to_agency)")}})
def create_manifest(data: dict[str, Any]):
    """Record a handover of a batch of items (counter → courier, courier → agency or counter)."""
    result = services.create_manifest(
        current_actor(),
        kind=data["kind"].value,
        item_ids=data["item_ids"],
        route=data.get("route"),
        note=data.get("note"),
    )
    code = result.manifest.code
    return result.manifest, 201 if result.created else 200, {"Location": f"/api/v1/manifests/{code}.pdf"}


@manifests.route("/<code>.pdf", methods=["GET"])
@manifests.doc(responses={"200": {"description": "The manifest", "content": PDF}})
def manifest_pdf(code: str):
    """A manifest as PDF: one line per item, totals, signature boxes, its own barcode."""
    doc = services.manifest_pdf(current_actor(), code)
    access.opened(current_actor(), "manifest", orders=access.of_manifest(code))
    return send(doc)


@sheets.route("/<code>/run/sheet", methods=["GET"])
@sheets.arguments(RunQuery, location="query")
@sheets.doc(responses={"200": {"description": "The run sheet", "content": PDF}})
def run_sheet(query: dict[str, Any], code: str):
    """A courier's printable run for a day: stops in order, what to collect and sign."""
    from delivery_service.orders.services import local_today

    day = query.get("date") or local_today()
    doc = services.run_sheet(current_actor(), code, day)
    access.opened(current_actor(), "run_sheet", orders=access.of_run(code, day))
    return send(doc)
