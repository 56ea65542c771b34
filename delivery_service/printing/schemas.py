"""Printing at the HTTP edge."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, post_dump, validate

from delivery_service.fields import QueryArgs, Text
from delivery_service.printing.models import JobState, LabelFormat, ManifestKind
from delivery_service.printing.services import NO_WORKER, SIZES, left_out, no_worker

FORMAT = fields.String(
    validate=validate.OneOf([f.value for f in LabelFormat]),
    load_default=None,
    metadata={"description": "pdf or zpl (default: the counter's)"},
)
SIZE = fields.String(
    validate=validate.OneOf(list(SIZES)),
    load_default=None,
    metadata={"description": "100x150, 100x100, a6 or a4 (default: the counter's)"},
)


class LabelQuery(QueryArgs):
    format = FORMAT
    size = SIZE


class ReceiptQuery(QueryArgs):
    size = fields.String(validate=validate.OneOf(["a5", "a4"]), load_default="a5")


class BatchIn(Schema):
    """Print these orders, or every unprinted one of the counter when ``item_ids`` is left out."""

    class Meta:
        unknown = RAISE

    item_ids = fields.List(fields.String(validate=validate.Length(1, 20)), validate=validate.Length(1, 5000))
    format = FORMAT
    size = SIZE


class PrintJobOut(Schema):
    id = fields.Integer()
    state = fields.Enum(JobState, by_value=True)
    format = fields.Enum(LabelFormat, by_value=True)
    size = fields.String()
    total = fields.Integer(metadata={"description": "Labels asked for"})
    done = fields.Integer(metadata={
        "description": "Labels rendered so far; once done, the labels in the file: fewer than total when "
                       "orders were cancelled meanwhile (left_out names them)"})
    left_out = fields.Method("_left_out", metadata={
        "description": "Item ids asked for but not in the finished file (cancelled or no longer printable "
                       "since the batch was asked for)"})
    error = fields.String(allow_none=True)
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)
    heartbeat_at = fields.DateTime(allow_none=True, metadata={
        "description": "Last sign of life of the run rendering it; a running job silent for longer than "
                       "JOBS_STALL_S (30 s) has lost its process and is queued again or failed"})
    attempts = fields.Integer(metadata={
        "description": "How many runs were started: the first, and one more each time a run died (queued "
                       "again, or its job taken over by the same attempt handed again)"})
    file = fields.Function(
        lambda j: f"/api/v1/labels/batches/{j.id}/file" if j.state is JobState.DONE else None
    )
    # Filled in by _worker (one look at the workers for both)
    no_worker = fields.Boolean(dump_only=True, metadata={
        "description": "True while the batch waits (pending) and no print worker is running: Redis does not "
                       "answer, or no live rq worker listens to its queue. Said at once, not after "
                       "JOBS_STALL_S; always false when the service runs its jobs itself (no Redis)"})
    notice = fields.String(dump_only=True, allow_none=True, metadata={
        "description": f"What to do while no_worker: \"{NO_WORKER}\"; else null"})

    def _left_out(self, job: Any) -> list[str]:
        return [o.item_id for o in left_out(job)]

    @post_dump(pass_original=True)
    def _worker(self, data: dict[str, Any], job: Any, **_kwargs: Any) -> dict[str, Any]:
        missing = no_worker(job)
        return {**data, "no_worker": missing, "notice": NO_WORKER if missing else None}


class PrintBatchOut(PrintJobOut):
    """The answer to a batch asked for: the job, and what "print all" left for a next batch."""

    remaining = fields.Integer(metadata={
        "description": "Print all (no item_ids) takes at most 5,000 orders: how many more unprinted orders "
                       "of the counter remain for a next batch (ask again for them); 0 for chosen orders"})


class LabelPrintOut(Schema):
    printed_at = fields.DateTime()
    actor = fields.String(attribute="actor_label")
    format = fields.String(attribute="format.value")
    size = fields.String()
    copy_no = fields.Integer()
    stop_no = fields.Integer(allow_none=True)
    address = fields.String()


class ManifestIn(Schema):
    class Meta:
        unknown = RAISE

    kind = fields.Enum(ManifestKind, by_value=True, required=True)
    item_ids = fields.List(
        fields.String(validate=validate.Length(1, 20)), required=True, validate=validate.Length(1, 1000)
    )
    route = fields.String(load_default=None, validate=validate.Length(max=32), metadata={
        "description": "The route whose courier takes or hands over the items: every item must be on it "
                       "(422 naming each one that is not). Left out: the items' route, if they are all "
                       "on one (422 otherwise). The manifest prints the full name of that route's courier "
                       "when it is made (a courier making it: their own), also when printed again after "
                       "the route changed couriers"})
    note = Text(load_default=None, max_length=300)


class ManifestOut(Schema):
    code = fields.String()
    kind = fields.Enum(ManifestKind, by_value=True)
    created_at = fields.DateTime()
    pdf = fields.Function(lambda m: f"/api/v1/manifests/{m.code}.pdf")
