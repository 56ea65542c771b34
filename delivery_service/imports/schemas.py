"""The import batch as it crosses the HTTP edge."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_smorest.fields import Upload
from marshmallow import Schema, fields, post_dump, validate

from delivery_service.fields import QueryArgs
from delivery_service.imports.models import ImportBatch, ImportState
from delivery_service.imports.services import NO_WORKER, no_worker


class ImportUpload(Schema):
    file = Upload(required=True, metadata={"description": "A .csv (UTF-8) or .xlsx file; see the template"})


class ImportQuery(QueryArgs):
    results_offset = fields.Integer(load_default=0, validate=validate.Range(0, 2**31), metadata={
        "description": "Skip this many row results (in line order)"})
    results_limit = fields.Integer(load_default=None, validate=validate.Range(1, 100_000), metadata={
        "description": "At most this many row results (default: the import's row limit, "
                       "MAX_IMPORT_ROWS: every row of a file within it)"})


class RowResult(Schema):
    line = fields.Integer(metadata={"description": "Line (Excel row) in the file; the header is line 1"})
    status = fields.String(validate=validate.OneOf(["created", "existing", "error"]))
    item_id = fields.String(allow_none=True, metadata={"description": "S10 id of the stored order"})
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()),
                         metadata={"description": "Messages by the file's column name; _row: the whole line"})


class ImportOut(Schema):
    """A batch: its state, counts and the result of every row."""

    id = fields.Integer()
    state = fields.Enum(ImportState, by_value=True,
                        metadata={"description": "pending → running → done, or failed (see error)"})
    filename = fields.String()
    content_type = fields.String(metadata={"description": "csv or xlsx"})
    total_rows = fields.Integer()
    created_rows = fields.Integer()
    existing_rows = fields.Integer(metadata={"description": "Rows whose order was stored before"})
    error_rows = fields.Integer()
    error = fields.String(allow_none=True, metadata={"description": "Why a failed import stopped"})
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    heartbeat_at = fields.DateTime(allow_none=True, metadata={
        "description": "Last sign of life of the run importing it; a running import silent for over a "
                       "minute has lost its process and is queued again (it resumes after the last "
                       "stored chunk) or failed with its counts"})
    attempts = fields.Integer(metadata={
        "description": "How many runs were started: the first, and one more each time a run died (queued "
                       "again, or its import taken over by the same attempt handed again)"})
    results = fields.Function(lambda b: b.results_shown if hasattr(b, "results_shown") else b.results,
                              metadata={"description": "One per non-blank row, in line order (a page: "
                                                       "see results_offset, results_limit, links)"})
    links = fields.Method("_links")
    # Filled in by _worker (one look at the workers for both)
    no_worker = fields.Boolean(dump_only=True, metadata={
        "description": "True while the import waits (pending) and no worker runs it: Redis does not answer, "
                       "or no live rq worker listens to its queue. Said at once, not after JOBS_STALL_S; "
                       "always false when the service runs its jobs itself (no Redis)"})
    notice = fields.String(dump_only=True, allow_none=True, metadata={
        "description": f"What to do while no_worker: \"{NO_WORKER}\"; else null"})

    @post_dump(pass_original=True)
    def _worker(self, data: dict[str, Any], batch: ImportBatch, **_kwargs: Any) -> dict[str, Any]:
        missing = no_worker(batch)
        return {**data, "no_worker": missing, "notice": NO_WORKER if missing else None}

    def _links(self, batch: ImportBatch) -> dict[str, Any]:
        links = {"self": url_for("imports.get_import", import_id=batch.id),
                 "template": url_for("imports.template")}
        following = getattr(batch, "results_following", None)
        if following is not None:  # more results than this answer holds
            links["next_results"] = url_for("imports.get_import", import_id=batch.id, **following)
        return links
