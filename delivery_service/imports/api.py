"""/api/v1/imports: batch import of CSV and XLSX files."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, url_for
from flask_smorest import Blueprint

from delivery_service.api import current_actor, protected
from delivery_service.errors import Forbidden
from delivery_service.imports import services
from delivery_service.imports.schemas import ImportOut, ImportQuery, ImportUpload

blp = protected(Blueprint("imports", __name__, url_prefix="/imports", description="Batch imports"))


@blp.route("", methods=["POST"])
@blp.arguments(ImportUpload, location="files")
@blp.response(202, ImportOut, description="The batch; poll its self link until the state is done")
@blp.alt_response(422, description="The file cannot be imported; errors.json.file says why")
def create_import(files: dict[str, Any]):
    """Upload a CSV or XLSX file of orders (multipart field `file`): good rows stored, bad rows reported."""
    actor = current_actor()
    if actor.counter_id is None:
        raise Forbidden("Only a counter's staff or software can import orders.")
    upload = files["file"]
    batch = services.start_import(actor, counter_id=actor.counter_id, filename=upload.filename or "",
                                  content=upload.read())
    return batch, 202, {"Location": url_for("imports.get_import", import_id=batch.id)}


@blp.route("/template.csv", methods=["GET"])
@blp.doc(responses={"200": {"description": "CSV UTF-8 (with BOM): the column names and one example row",
                             "content": {"text/csv": {"schema": {"type": "string"}}}}})
def template():
    """The import template."""
    return Response(services.template_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="import-template.csv"'})


@blp.route("/<int:import_id>", methods=["GET"])
@blp.arguments(ImportQuery, location="query")
@blp.response(200, ImportOut)
def get_import(query: dict[str, Any], import_id: int):
    """A batch with its per-row results (all of them for a file within MAX_IMPORT_ROWS; else a page,
    and links.next_results names the next)."""
    batch = services.get_import(current_actor(), import_id)
    offset = query["results_offset"]
    limit = query["results_limit"] or current_app.config["MAX_IMPORT_ROWS"]
    shown = batch.result_rows(offset=offset, limit=limit + 1)
    if len(shown) > limit:
        shown = shown[:limit]
        batch.results_following = {"results_offset": offset + limit, "results_limit": limit}
    batch.results_shown = shown
    return batch
