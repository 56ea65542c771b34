"""Orders into the label library's inputs, and the records of what was printed.

Labels, receipts, manifests and run sheets are drawn by the framework-free ``labels`` library; this
module checks who may print what, turns orders into its dataclasses and keeps the history.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import defer

import labels
from delivery_service import metrics
from delivery_service.accounts.models import Role
from delivery_service.accounts.services import Actor
from delivery_service.courier.services import delivery_code, on_result_leg, to_collect
from delivery_service.db import utcnow
from delivery_service.errors import Conflict, Forbidden, InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.jobs import enqueue_after_commit, no_worker_for
from delivery_service.localtime import local_moment, local_now
from delivery_service.orders.models import DeliveryOrder, Exemption, OrderEvent, window_text
from delivery_service.orders.services import get_order, scope
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.models import Counter, PostalRoute
from delivery_service.orgs.services import route_code
from delivery_service.printing.models import (
    STALLED_PREFIX,
    HandoverStep,
    JobState,
    LabelFormat,
    LabelPrint,
    Manifest,
    ManifestKind,
    PrintJob,
    manifest_handovers,
    manifest_items,
)
from delivery_service.routing.services import sequenced_stops
from delivery_service.stalled import runs_counted, stall_after, times
from delivery_service.tracking import links
from delivery_service.units.services import unit_index
from labels import model as lm
from labels import s10

log = logging.getLogger(__name__)
SIZES = tuple(s.value for s in lm.LabelSize)
FORMATS = tuple(f.value for f in LabelFormat)
MIME = {LabelFormat.PDF: "application/pdf", LabelFormat.ZPL: "application/zpl"}
MAX_BATCH = 5000
MAX_MANIFEST = 1000
CHUNK = 200  # labels rendered and counted at a time in a background job (LABEL_CHUNK overrides)
JOB_TIMEOUT = 1800
RUN_JOB = "delivery_service.printing.services:run_print_job"
ON_FAILURE = "delivery_service.printing.services:mark_job_failed"
MAX_ATTEMPTS = 3  # times a print job is queued before the sweeper gives up on it
QUEUE = "interactive"  # the outbox queue of RUN_JOB: someone waits for the file
# What a batch's page (in the reader's language) and the API (as is) say while it waits for a print
# worker that is not running.
NO_WORKER = "No print worker is running: tell the administrator."


@dataclass(frozen=True)
class Document:
    """A rendered file: its bytes, media type and a download name."""

    content: bytes
    mimetype: str
    filename: str


# --- orders into the library's data ---------------------------------------------------------------

def tracking_url(item_id: str) -> str:
    return links.tracking_url(item_id)


def address_lines(order: DeliveryOrder) -> tuple[str, ...]:
    """The full Vietnamese address, most specific first: detail, commune, (district), province."""
    units = unit_index().by_id
    names = [units[u].name for u in (order.commune_id, order.district_id, order.province_id)
             if u is not None and u in units]
    return (order.address_detail, *names)


def _counter_lines(counter: Counter) -> tuple[str, ...]:
    units = unit_index().by_id
    lines: list[str] = []
    unit = units.get(counter.unit_id)
    while unit is not None:
        lines.append(unit.name)
        unit = units.get(unit.parent_id) if unit.parent_id else None
    return tuple(lines)


def _counter_party(counter: Counter) -> lm.Party:
    return lm.Party(name=counter.name, address=_counter_lines(counter), phone=_hotline(counter))


def postage_to_collect(order: DeliveryOrder) -> int:
    """The postage part of what the courier collects (courier.services.to_collect is the one rule:
    the label prints it whole, the receipt as its last line, manifests and run sheets as postage
    plus fees per item, ``ManifestLine.to_collect_vnd``)."""
    return to_collect(order) - order.collect_vnd


def _hotline(counter: Counter) -> str | None:
    return counter.hotline or current_app.config.get("COMPLAINTS_HOTLINE")


def label_data(order: DeliveryOrder, counter: Counter, copy_no: int, now: dt.datetime,
               stop_no: int | None) -> lm.LabelData:
    """The label of the order's current leg. On the dossier leg (dossier_to_agency, and both until
    the dossier reaches the agency) the citizen sends and the agency, through the counter, receives."""
    citizen = lm.Party(order.recipient_name, address_lines(order), order.recipient_phone)
    pickup = not on_result_leg(order)
    if pickup:
        sender = citizen
        agency_at = (counter.name, *_counter_lines(counter))  # the counter takes it in for the agency
        recipient = lm.Party(order.issuing_agency, agency_at, _hotline(counter))
    else:
        sender, recipient = _counter_party(counter), citizen
    postage = postage_to_collect(order)
    return lm.LabelData(
        item_id=order.item_id,
        tracking_url=tracking_url(order.item_id),
        service=lm.Service(order.direction.value),
        sender=sender,
        recipient=recipient,
        pickup=pickup,
        issuing_agency=order.issuing_agency,
        weight_g=order.weight_g,
        postage_paid_vnd=order.postage_due_vnd if not postage else 0,
        dossier_code=order.dossier_code,
        printed_at=now,
        route_code=route_code(order.route_id),
        stop_no=stop_no,
        appointment_date=order.appointment_date,
        due_date=order.due_date,
        postage_vnd=postage,
        collect_vnd=to_collect(order),  # the courier app's figure, and the run sheet's
        hotline=_hotline(counter),
        procedure_name=order.procedure_name,
        reprint=max(copy_no - 1, 0),
        window=window_text(order),
    )


# --- checks ----------------------------------------------------------------------------------------

def choose(counter: Counter, fmt: str | None, size: str | None) -> tuple[LabelFormat, str]:
    """The format and size to print in: the request's, else the counter's defaults; checked."""
    errors: dict[str, list[str]] = {}
    fmt = (fmt or counter.label_format or "pdf").lower()
    size = (size or counter.label_size or "100x150").lower()
    if fmt not in FORMATS:
        errors["format"] = ["Unknown label format: choose pdf or zpl."]
    if size not in SIZES:
        errors["size"] = ["Unknown label size: choose 100x150, 100x100, a6 or a4."]
    elif fmt == "zpl" and size == "a4":
        errors["size"] = ["ZPL is for label printers: choose 100x150, 100x100 or a6."]
    if errors:
        raise InvalidInput(errors)
    return LabelFormat(fmt), size


def refusal(order: DeliveryOrder, counter: Counter) -> str | None:
    """Why this order cannot be labelled now, or None."""
    if order.status is Status.CANCELLED:
        return f"Order {order.item_id} is cancelled: it gets no label."
    if counter.label_requires_route and order.route_id is None:
        return (f"Order {order.item_id} is not on a route yet, and this counter prints labels only "
                "with the route: dispatch it first.")
    return None


def _may_print(actor: Actor) -> None:
    if actor.role not in (Role.ADMIN, Role.COUNTER_STAFF, Role.SUPERVISOR):
        raise Forbidden("Your role cannot print labels.")


# --- one label ----------------------------------------------------------------------------------

def print_label(actor: Actor, item_id: str, fmt: str | None = None, size: str | None = None) -> Document:
    """One order's label, recorded as a print (a reprint shows the order's current data); commits."""
    _may_print(actor)
    order = get_order(actor, item_id)
    counter = db.session.get(Counter, order.counter_id)
    chosen_format, chosen_size = choose(counter, fmt, size)
    problem = refusal(order, counter)
    if problem:
        raise Conflict(problem, current_status=order.status.value)
    content = _render([order], counter, chosen_format, chosen_size, actor)
    db.session.commit()
    ext = chosen_format.value
    return Document(content, MIME[chosen_format], f"nhan-{order.item_id}.{ext}")


def _render(orders: Sequence[DeliveryOrder], counter: Counter, fmt: LabelFormat, size: str,
            actor: Actor) -> bytes:
    """Render labels and record one print per order (current transaction)."""
    content, records = _render_labels(orders, counter, fmt, size, actor, _copies([o.id for o in orders]))
    db.session.execute(sa.insert(LabelPrint), records)
    metrics.labels_rendered(fmt.value, len(orders))
    return content


def _render_labels(orders: Sequence[DeliveryOrder], counter: Counter, fmt: LabelFormat, size: str,
                   actor: Actor, copies: dict[int, int],
                   job_id: int | None = None) -> tuple[bytes, list[dict[str, Any]]]:
    """The labels' bytes and the print records to write once the labels reach the person: at once
    for a download, with the batch's file for a background job."""
    now = local_now()
    stops = sequenced_stops(orders)
    items = [label_data(o, counter, copies.get(o.id, 0) + 1, now, stops.get(o.id, (None, None))[1])
             for o in orders]
    try:
        if fmt is LabelFormat.ZPL:
            content = labels.render_zpl(items, lm.LabelSize(size), dpi=current_app.config["LABEL_DPI"])
        else:
            content = labels.render_labels(items, lm.LabelSize(size), dpi=current_app.config["LABEL_DPI"])
    except lm.LabelError as exc:
        raise InvalidInput({"label": [str(exc)]}) from None
    records = [{
        "order_id": o.id, "printed_at": utcnow(), "actor_label": actor.label, "user_id": actor.user_id,
        "client_id": actor.client_id, "format": fmt, "size": size, "copy_no": copies.get(o.id, 0) + 1,
        "route_id": o.route_id, "stop_no": item.stop_no, "address": ", ".join(item.recipient.address)[:400],
        "print_job_id": job_id,
    } for o, item in zip(orders, items, strict=True)]
    return content, records


def _copies(order_ids: Sequence[int]) -> dict[int, int]:
    """How many times each order's label was printed already."""
    if not order_ids:
        return {}
    rows = db.session.execute(sa.select(LabelPrint.order_id, sa.func.count()).where(
        LabelPrint.order_id.in_(list(order_ids))).group_by(LabelPrint.order_id))
    return {order_id: n for order_id, n in rows}


def prints_of(actor: Actor, item_id: str) -> list[LabelPrint]:
    """The order's label prints, oldest first."""
    order = get_order(actor, item_id)
    return list(db.session.scalars(sa.select(LabelPrint).where(LabelPrint.order_id == order.id)
                                   .order_by(LabelPrint.id)))


# --- batches ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchResult:
    """Either the rendered file (small batches) or the job rendering it (big ones)."""

    document: Document | None
    job: PrintJob | None
    left_out: int  # unprinted orders that cannot be labelled (cancelled, not routed where required)
    # "Print all" takes MAX_BATCH orders at most: the counter's unprinted orders beyond them, for a
    # next batch (0 for the ticked orders)
    remaining: int = 0


def _unprinted(actor: Actor, counter_id: int) -> sa.Select[tuple[DeliveryOrder]]:
    """The labels still to print, oldest first: the items awaiting handover (``_awaiting``, what
    "Nhãn chưa in" lists) and the dossiers still to be picked up at the citizen's (their pickup
    label goes out with the courier), whose label was never printed. Nothing already with a courier."""
    printed = sa.select(LabelPrint.order_id)
    pickup = sa.and_(DeliveryOrder.direction.in_([Direction.DOSSIER_TO_AGENCY, Direction.BOTH]),
                     DeliveryOrder.dossier_delivered_at.is_(None),
                     DeliveryOrder.status.in_([Status.CREATED, Status.ASSIGNED, Status.PICKUP_SCHEDULED]))
    waiting = _awaiting(actor, counter_id).with_only_columns(DeliveryOrder.id).order_by(None)
    return (scope(sa.select(DeliveryOrder), actor)
            .where(DeliveryOrder.counter_id == counter_id, DeliveryOrder.id.not_in(printed),
                   sa.or_(DeliveryOrder.id.in_(waiting), pickup))
            .order_by(DeliveryOrder.id))


def unprinted_orders(actor: Actor, counter_id: int, limit: int = MAX_BATCH) -> list[DeliveryOrder]:
    """``_unprinted``: the page's count, "print all" and the API's empty batch."""
    return list(db.session.scalars(_unprinted(actor, counter_id).limit(limit)))


def start_batch(actor: Actor, *, counter_id: int, item_ids: Sequence[str] | None = None,
                fmt: str | None = None, size: str | None = None) -> BatchResult:
    """Print the chosen orders (or all unprinted ones) as one PDF or ZPL stream; commits.

    Up to LABEL_ASYNC_THRESHOLD labels are rendered now; more go to a background job whose file
    is kept for download.
    """
    _may_print(actor)
    if actor.role is not Role.ADMIN and actor.counter_id not in (None, counter_id):
        raise Forbidden("You can only print your own counter's labels.")
    counter = db.session.get(Counter, counter_id)
    if counter is None:
        raise NotFound(f"No counter {counter_id}")
    chosen_format, chosen_size = choose(counter, fmt, size)
    left_out = remaining = 0
    if item_ids:
        orders = _selected(actor, counter_id, item_ids)
        problems = [p for o in orders if (p := refusal(o, counter))]
        if problems:
            raise InvalidInput({"item_ids": problems})
    else:
        # "Print all" once at a time per counter (two clicks, two systems): the second waits for the
        # first's commit (PostgreSQL: the counter's row, locked FOR NO KEY UPDATE, which new orders'
        # foreign keys do not wait for; SQLite: its write lock, taken by a write that changes
        # nothing); then its batch leaves out what a job still rendering holds (its prints are
        # recorded with its file), and every label gets one first copy.
        if db.session.get_bind().dialect.name == "postgresql":
            db.session.execute(sa.select(Counter.id).where(Counter.id == counter_id)
                               .with_for_update(key_share=True))
        else:
            db.session.execute(sa.update(Counter).where(Counter.id == counter_id).values(id=Counter.id)
                               .execution_options(synchronize_session=False))
        running = db.session.execute(sa.select(PrintJob.id, PrintJob.order_ids).where(
            PrintJob.counter_id == counter_id,
            PrintJob.state.in_([JobState.PENDING, JobState.RUNNING]))).all()
        busy = [i for _job, ids in running for i in ids or ()]
        free = _unprinted(actor, counter_id).where(DeliveryOrder.id.not_in(busy))
        candidates = list(db.session.scalars(free.limit(MAX_BATCH)))
        if len(candidates) == MAX_BATCH:  # the batch is full: say what is left for the next one
            remaining = _count(free) - MAX_BATCH
        orders = [o for o in candidates if refusal(o, counter) is None]
        left_out = len(candidates) - len(orders)
        if not orders and running:  # all of it is in a batch still being prepared: that batch, again
            db.session.commit()
            return BatchResult(None, db.session.get(PrintJob, max(job for job, _ids in running)), left_out,
                               remaining)
    if not orders:
        raise InvalidInput({"item_ids": ["There is no label to print: every order of the counter is printed "
                                         "already, or none can be labelled yet."]})
    if len(orders) <= current_app.config["LABEL_ASYNC_THRESHOLD"]:
        content = _render(orders, counter, chosen_format, chosen_size, actor)
        db.session.commit()
        stamp = local_now().strftime("%Y%m%d-%H%M")
        return BatchResult(Document(content, MIME[chosen_format],
                                    f"nhan-{counter.code}-{stamp}.{chosen_format.value}"), None, left_out,
                           remaining)
    job = PrintJob(counter_id=counter_id, created_by_id=actor.user_id, client_id=actor.client_id,
                   actor_label=actor.label, format=chosen_format, size=chosen_size,
                   order_ids=[o.id for o in orders], total=len(orders),
                   public_base_url=links.public_base_url())  # the worker prints the asker's links
    db.session.add(job)
    db.session.flush()
    enqueue_after_commit(RUN_JOB, job.id, 1, timeout=JOB_TIMEOUT, on_failure=ON_FAILURE, queue=QUEUE)
    db.session.commit()
    db.session.refresh(job)  # an in-process job (no Redis) has finished it already
    return BatchResult(None, job, left_out, remaining)


def _selected(actor: Actor, counter_id: int, item_ids: Sequence[str]) -> list[DeliveryOrder]:
    wanted = list(dict.fromkeys(s10.normalize(i) for i in item_ids))
    if len(wanted) > MAX_BATCH:
        raise InvalidInput({"item_ids": [f"At most {MAX_BATCH} orders in one batch."]})
    found = {o.item_id: o for o in db.session.scalars(
        scope(sa.select(DeliveryOrder), actor).where(DeliveryOrder.item_id.in_(wanted),
                                                     DeliveryOrder.counter_id == counter_id))}
    missing = [i for i in wanted if i not in found]
    if missing:
        raise InvalidInput({"item_ids": [f"No such order at this counter: {', '.join(missing[:20])}"]})
    return [found[i] for i in wanted]


def _sees_jobs_of(actor: Actor, counter_id: int | None) -> bool:
    """Whether the actor may see a counter's print jobs: their own counter's, or any for an admin."""
    return actor.role is Role.ADMIN or counter_id == actor.counter_id


def get_job(actor: Actor, job_id: int) -> PrintJob:
    """A print job the actor may see (their counter's, or any for an admin)."""
    job = db.session.get(PrintJob, job_id)
    if job is None or not _sees_jobs_of(actor, job.counter_id):
        raise NotFound(f"No print job {job_id}")
    return job


def no_worker(job: PrintJob) -> bool:
    """Whether the batch waits for a print worker that is not running: not started yet, with Redis, and
    Redis does not answer or no live worker listens to its queue (jobs.no_worker_for, what /ready and
    /admin/jobs read). Its page and the API say so at once, not after JOBS_STALL_S; never without Redis
    (the web processes run the batches)."""
    return job.state is JobState.PENDING and no_worker_for(current_app, QUEUE)


def recent_jobs(actor: Actor, counter_id: int, limit: int = 10) -> list[PrintJob]:
    """The counter's last print jobs, newest first, if the actor may see them (``get_job``'s rule)."""
    if not _sees_jobs_of(actor, counter_id):
        return []
    # order_ids holds up to MAX_BATCH ids a job: the list does not need them
    return list(db.session.scalars(sa.select(PrintJob).options(defer(PrintJob.order_ids))
                                   .where(PrintJob.counter_id == counter_id)
                                   .order_by(PrintJob.id.desc()).limit(limit)))


def left_out(job: PrintJob) -> list[DeliveryOrder]:
    """The orders a finished batch was asked for but left out of its file: cancelled, or otherwise no
    longer printable, between the asking and the rendering (``refusal``); its ``done`` counts the rest."""
    if job.state is not JobState.DONE or job.done == job.total:  # every label asked for is in the file
        return []
    printed = sa.select(LabelPrint.order_id).where(LabelPrint.print_job_id == job.id)
    return list(db.session.scalars(sa.select(DeliveryOrder).where(
        DeliveryOrder.id.in_(job.order_ids or []), DeliveryOrder.id.not_in(printed))
        .order_by(DeliveryOrder.id)))


def job_file(actor: Actor, job_id: int) -> Document:
    job = get_job(actor, job_id)
    if job.state is not JobState.DONE or not job.file_name:
        raise Conflict("The file is not ready yet.", state=job.state.value, done=job.done, total=job.total)
    path = Path(current_app.config["PRINT_FILES_DIR"]) / job.file_name
    if not path.exists():
        raise NotFound("The file of this print job is no longer kept; print the batch again.")
    return Document(path.read_bytes(), MIME[job.format], f"nhan-lo-{job.id}.{job.format.value}")


class _Superseded(Exception):
    """The run no longer holds its job: the sweeper gave it to another run, or closed it."""


def _claim(job_id: int, attempt: int | None, now: dt.datetime) -> str | None:
    """Take the job for this run (commits): a pending job, or a running one whose run died.

    ``attempt`` (given by queued runs) must match the job's: a run queued before the sweeper
    requeued the job does nothing. Returns the run's token, or None when there is nothing to do.
    """
    runner = secrets.token_hex(8)
    dead = sa.func.coalesce(PrintJob.heartbeat_at, PrintJob.created_at) < now - stall_after()
    claimable = sa.or_(PrintJob.state == JobState.PENDING, sa.and_(PrintJob.state == JobState.RUNNING, dead))
    stmt = sa.update(PrintJob).where(PrintJob.id == job_id, claimable)
    if attempt is not None:
        stmt = stmt.where(PrintJob.attempts == attempt)
    taken = db.session.execute(stmt.values(
        state=JobState.RUNNING, runner=runner, heartbeat_at=now, done=0, error=None,
        attempts=runs_counted(PrintJob, JobState),  # a dead run's job taken over: one more
    ).execution_options(synchronize_session=False))
    db.session.commit()
    return runner if taken.rowcount == 1 else None


def _beat(job_id: int, runner: str, **values: Any) -> None:
    """Write the heartbeat (and progress) of the run holding the job; _Superseded if it lost it."""
    beat = db.session.execute(sa.update(PrintJob).where(
        PrintJob.id == job_id, PrintJob.runner == runner, PrintJob.state == JobState.RUNNING,
    ).values(heartbeat_at=utcnow(), **values).execution_options(synchronize_session=False))
    if beat.rowcount != 1:
        raise _Superseded


def run_print_job(job_id: int, attempt: int | None = None) -> None:
    """The job: render a big batch in chunks, counting progress, and keep the file. Idempotent.

    The prints are recorded in the transaction that marks the job done with its file: a run that
    dies records nothing, and the orders stay on the unprinted list. A re-run starts again from the
    first label (a partial file is dropped); a done or failed job, or one a live run holds, is left
    alone.
    """
    runner = _claim(job_id, attempt, utcnow())
    if runner is None:
        return
    job = db.session.get(PrintJob, job_id)
    folder = Path(current_app.config["PRINT_FILES_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f".job-{job.id}-*.part"):  # left by a run that died
        stale.unlink(missing_ok=True)
    name = f"job-{job.id}-{runner}.{job.format.value}"
    tmp = folder / f".{name}.part"
    try:
        records = _render_job(job, runner, tmp)
        _beat(job.id, runner)  # still ours: publish the file, then record it with the prints
        tmp.rename(folder / name)
        if records:
            db.session.execute(sa.insert(LabelPrint), records)
        # done: the labels in the file (fewer than asked for when orders were cancelled meanwhile)
        _beat(job.id, runner, file_name=name, state=JobState.DONE, finished_at=utcnow(), done=len(records))
        db.session.commit()
    except _Superseded:
        db.session.rollback()
        tmp.unlink(missing_ok=True)
        (folder / name).unlink(missing_ok=True)
        log.warning("print job %d: taken over by another run; this one stopped", job_id)
        return
    except Exception as exc:
        db.session.rollback()
        tmp.unlink(missing_ok=True)
        (folder / name).unlink(missing_ok=True)
        log.error("print job %d failed: %s", job_id, exc.__class__.__name__)
        db.session.execute(sa.update(PrintJob).where(
            PrintJob.id == job_id, PrintJob.runner == runner, PrintJob.state == JobState.RUNNING,
        ).values(state=JobState.FAILED, finished_at=utcnow(),
                 error=f"Rendering stopped ({exc.__class__.__name__}); no label of this batch is recorded as "
                       "printed: print the batch again."[:500]))
        db.session.commit()
        return
    except BaseException:  # SystemExit, KeyboardInterrupt: the process is going; the sweeper follows up
        tmp.unlink(missing_ok=True)
        raise
    log.info("print job %d: %d labels", job_id, job.total)


def _render_job(job: PrintJob, runner: str, tmp: Path) -> list[dict[str, Any]]:
    """Render the job's labels into ``tmp`` chunk by chunk, beating; the print records to write."""
    counter = db.session.get(Counter, job.counter_id)
    links.use_base_url(job.public_base_url)
    actor = Actor(label=job.actor_label, role=Role.ADMIN, user_id=job.created_by_id, client_id=job.client_id)
    chunk_size = current_app.config.get("LABEL_CHUNK", CHUNK)
    order_ids, total, fmt, size, job_id = list(job.order_ids), job.total, job.format, job.size, job.id
    copies = _copies(order_ids)
    records: list[dict[str, Any]] = []
    parts: list[bytes] = []  # PDF chunks, joined at the end; ZPL goes to the file as it comes
    with tmp.open("wb") as out:
        for start in range(0, total, chunk_size):
            ids = order_ids[start:start + chunk_size]
            rows = db.session.scalars(sa.select(DeliveryOrder).where(DeliveryOrder.id.in_(ids)))
            by_id = {o.id: o for o in rows}
            orders = [by_id[i] for i in ids if i in by_id and refusal(by_id[i], counter) is None]
            if orders:
                chunk, chunk_records = _render_labels(orders, counter, fmt, size, actor, copies, job_id)
                records.extend(chunk_records)
                if fmt is LabelFormat.ZPL:
                    out.write(chunk)
                else:
                    parts.append(chunk)
            _beat(job_id, runner, done=min(start + chunk_size, total))
            db.session.commit()  # the progress the page shows (no print is recorded before the file exists)
        if parts:
            with _beating(job_id, runner):  # joining thousands of pages takes a while: no chunk beats
                out.write(parts[0] if len(parts) == 1 else _join(parts))
        out.flush()
        os.fsync(out.fileno())
    return records


@contextlib.contextmanager
def _beating(job_id: int, runner: str) -> Iterator[None]:
    """Heartbeats from a thread while one long step runs (every third of JOBS_STALL_S), so that the
    sweeper does not take a live run for a dead one; the thread dies with the process, as it should."""
    engine, every_s = db.engine, max(1.0, int(current_app.config["JOBS_STALL_S"]) / 3)
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every_s):
            try:
                with engine.begin() as conn:
                    conn.execute(sa.update(PrintJob).where(
                        PrintJob.id == job_id, PrintJob.runner == runner, PrintJob.state == JobState.RUNNING,
                    ).values(heartbeat_at=utcnow()))
            except Exception as exc:  # noqa: BLE001 (a missed beat only brings the sweep closer)
                log.warning("print job %d: heartbeat not written (%s)", job_id, exc.__class__.__name__)

    thread = threading.Thread(target=beat, name=f"print-job-{job_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def _join(parts: list[bytes]) -> bytes:
    """One PDF of several rendered chunks."""
    import io

    from pypdf import PdfWriter

    writer = PdfWriter()
    for part in parts:
        writer.append(io.BytesIO(part))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def mark_job_failed(job_id: int, attempt: int | None = None) -> None:
    """The jobs' ``on_failure``: close a job whose run died or timed out (rq gave it up).

    No-op once the job is closed, or when the sweeper has queued it again since (``attempt`` older
    than the job's). The orders keep no print: they are on the unprinted list again.
    """
    stmt = sa.update(PrintJob).where(PrintJob.id == job_id,
                                     PrintJob.state.in_([JobState.PENDING, JobState.RUNNING]))
    if attempt is not None:
        stmt = stmt.where(PrintJob.attempts == attempt)
    db.session.execute(stmt.values(state=JobState.FAILED, finished_at=utcnow(),
                                   error="Rendering stopped before the end; print the batch again.")
                       .execution_options(synchronize_session=False))


def sweep_stalled(now: dt.datetime, *, stale_after: dt.timedelta | None = None,
                  max_attempts: int = MAX_ATTEMPTS,
                  pending_after: dt.timedelta | None = None) -> dict[str, list[int]]:
    """Requeue (from the first label: nothing of it was recorded), or fail with the reason, the print
    jobs whose run died (stalled.sweep); commits. For a periodic caller."""
    from delivery_service import stalled

    return stalled.sweep(
        PrintJob, JobState, now, stale_after=stale_after or stall_after(), max_attempts=max_attempts,
        pending_after=pending_after, reset={"done": 0},
        requeue=lambda job_id, attempt: enqueue_after_commit(RUN_JOB, job_id, attempt, timeout=JOB_TIMEOUT,
                                                             on_failure=ON_FAILURE, queue=QUEUE),
        failed_error=lambda _job_id, attempts: (
            f"{STALLED_PREFIX} {times(attempts)} (killed or out of memory); no label of this batch is "
            "recorded as printed: print the batch again, in smaller batches if it keeps stopping."))


# --- receipts -------------------------------------------------------------------------------------

EXEMPTION_TEXT = {
    Exemption.PRE_1945_REVOLUTIONARY: "Người hoạt động cách mạng trước 01/01/1945 (miễn 100 %)",
    Exemption.HEROIC_MOTHER: "Bà mẹ Việt Nam anh hùng (miễn 100 %)",
    Exemption.WAR_HERO: "Anh hùng LLVTND, Anh hùng Lao động trong kháng chiến (giảm 50 %)",
    Exemption.WAR_INVALID: "Thương binh, người hưởng chính sách như thương binh (giảm 50 %)",
    Exemption.AGENT_ORANGE: "Người hoạt động kháng chiến bị nhiễm chất độc hóa học (giảm 50 %)",
    Exemption.MARTYR_FAMILY: "Thân nhân liệt sĩ (giảm 50 %)",
    Exemption.POOR_HOUSEHOLD: "Hộ nghèo (giảm 50 %)",
    Exemption.DISADVANTAGED_AREA: "Người dân vùng đặc biệt khó khăn (giảm 50 %)",
}


def _cancelled_at(order: DeliveryOrder) -> dt.datetime | None:
    """When the order was cancelled (local time), or None if it is not."""
    if order.status is not Status.CANCELLED:
        return None
    at = db.session.scalar(sa.select(sa.func.max(OrderEvent.server_time)).where(
        OrderEvent.order_id == order.id, OrderEvent.status_to == Status.CANCELLED))
    return local_moment(at or order.updated_at)


def receipt(actor: Actor, item_id: str, size: str = "a5") -> Document:
    """The citizen's receipt for an order. A cancelled order's receipt still prints (the citizen
    keeps proof of what was registered and that it was cancelled) but is marked "ĐÃ HỦY / CANCELLED"
    on every page, collects nothing and shows no delivery code."""
    order = get_order(actor, item_id)
    counter = db.session.get(Counter, order.counter_id)
    if size not in ("a5", "a4"):
        raise InvalidInput({"size": ["Must be a5 or a4."]})
    cancelled_at = _cancelled_at(order)
    postage = postage_to_collect(order)
    data = lm.ReceiptData(
        item_id=order.item_id, tracking_url=tracking_url(order.item_id),
        service=lm.Service(order.direction.value), counter=_counter_party(counter),
        recipient=lm.Party(order.recipient_name, address_lines(order), order.recipient_phone),
        dossier_code=order.dossier_code, procedure_name=order.procedure_name,
        issuing_agency=order.issuing_agency, created_at=local_moment(order.created_at),
        appointment_date=order.appointment_date, due_date=order.due_date, postage_vnd=order.postage_vnd,
        postage_due_vnd=order.postage_due_vnd, exemption=EXEMPTION_TEXT.get(order.exemption),
        collect_vnd=order.collect_vnd, hotline=_hotline(counter),
        to_collect_vnd=to_collect(order),  # the label's and the manifest's figure
        postage_paid_vnd=order.postage_due_vnd if not postage else 0, cancelled_at=cancelled_at,
        window=window_text(order),
        delivery_code=(None if order.direction is Direction.DOSSIER_TO_AGENCY or cancelled_at
                       else delivery_code(order.item_id)))
    try:
        content = labels.render_receipt(data, size=size)
    except lm.LabelError as exc:
        raise InvalidInput({"receipt": [str(exc)]}) from None
    return Document(content, "application/pdf", f"bien-nhan-{order.item_id}.pdf")


# --- manifests ------------------------------------------------------------------------------------

def _line(order: DeliveryOrder, *, window: bool = True) -> lm.ManifestLine:
    """An order as a row of a manifest or run sheet; ``window``: with the citizen's delivery window."""
    lines = address_lines(order)
    return lm.ManifestLine(item_id=order.item_id, dossier_code=order.dossier_code,
                               recipient_name=order.recipient_name, address=", ".join(lines[:2]),
                               postage_vnd=postage_to_collect(order), collect_vnd=order.collect_vnd,
                               note=order.note, pickup=not on_result_leg(order),
                               window=window_text(order) if window else None)


# What each kind of manifest may list, by the item's status (the handover it records, once per item
# and route): the counter hands its courier the results it still holds (before the bag's pickup is
# confirmed, or just after: the courier scanning the bag before both sign), a both-direction order's
# result once its dossier is at the agency, and the dossiers still to pick up at the citizen's (their
# pickup labels go out with the courier); a courier hands back, to the agency or to the counter
# taking it in for the agency, a dossier picked up (delivered_to_agency when recorded first) and a
# result returned after the last failed attempt. An item on a failed attempt with a next attempt stays
# with the courier; a delivered or cancelled one goes on no manifest.
BACK_KINDS = (ManifestKind.COURIER_TO_AGENCY, ManifestKind.COURIER_TO_COUNTER)
TO_COURIER_STATUSES = (Status.CREATED, Status.ASSIGNED, Status.HANDED_TO_COURIER, Status.DELIVERED_TO_AGENCY)
TO_PICK_UP_STATUSES = (Status.CREATED, Status.ASSIGNED, Status.PICKUP_SCHEDULED)
BACK_STEPS = {Status.PICKED_UP: HandoverStep.DOSSIER, Status.DELIVERED_TO_AGENCY: HandoverStep.DOSSIER,
              Status.RETURNED_TO_AGENCY: HandoverStep.RETURN}
CHOOSE_BACK_ROUTE = "Choose the route of the courier handing the items back."


def handover_step(kind: ManifestKind, order: DeliveryOrder) -> HandoverStep | None:
    """The handover a manifest of ``kind`` records for ``order`` now, or None when it cannot list it."""
    if kind is ManifestKind.COUNTER_TO_COURIER:
        ok = order.status in (TO_COURIER_STATUSES if on_result_leg(order) else TO_PICK_UP_STATUSES)
        return HandoverStep.TO_COURIER if ok else None
    return BACK_STEPS.get(order.status)


def _wrong_status(kind: ManifestKind, orders: Sequence[DeliveryOrder]) -> Conflict:
    """The refusal of items a manifest of ``kind`` cannot list, naming each with its status."""
    listed = ", ".join(f"{o.item_id} ({o.status.value})" for o in orders[:20])
    if len(orders) > 20:
        listed += f" and {len(orders) - 20} more"
    if kind is ManifestKind.COUNTER_TO_COURIER:
        rule = ("A counter → courier manifest lists what the counter still holds: results created, assigned "
                "or handed_to_courier (delivered_to_agency for an order in both directions), and dossiers "
                "still to pick up (created, assigned, pickup_scheduled).")
    else:
        rule = ("A courier's manifest back lists dossiers picked up (picked_up, delivered_to_agency) and "
                "results returned after the last failed attempt (returned_to_agency); an item with a next "
                "attempt stays with the courier.")
    return Conflict(f"Not in a status this manifest lists: {listed}. {rule}", error="wrong_status",
                    kind=kind.value, items=[{"item_id": o.item_id, "status": o.status.value} for o in orders])


@dataclass(frozen=True)
class ManifestResult:
    """The manifest recorded, or (``created`` False) the one that recorded the same handover before."""

    manifest: Manifest
    created: bool


def create_manifest(actor: Actor, *, kind: str, item_ids: Sequence[str], route: str | None = None,
                    note: str | None = None) -> ManifestResult:
    """Record a handover of these items; commits. Counter staff hand their counter's items to a
    route's courier; couriers hand dossiers to agencies, or them and returns back to the counter.

    Each kind lists items in the statuses of its handover (``handover_step``; others are a Conflict,
    ``wrong_status``, naming them with their statuses). An item is handed over once per step and route
    (``manifest_handovers``): the same items of the same kind for the same route again answer the
    manifest made then (its note as first written), and an item already on another manifest of that
    step and route is a Conflict (``already_handed_over``) naming it."""
    try:
        manifest_kind = ManifestKind(kind)
    except ValueError:
        kinds = ", ".join(k.value for k in ManifestKind)
        raise InvalidInput({"kind": [f"Must be one of: {kinds}."]}) from None
    allowed = {Role.ADMIN: set(ManifestKind), Role.SUPERVISOR: set(ManifestKind),
               Role.COUNTER_STAFF: {ManifestKind.COUNTER_TO_COURIER, ManifestKind.COURIER_TO_COUNTER},
               Role.COURIER: {ManifestKind.COURIER_TO_AGENCY, ManifestKind.COURIER_TO_COUNTER}}
    if manifest_kind not in allowed.get(actor.role, set()):
        raise Forbidden("Your role cannot make this kind of manifest.")
    wanted = list(dict.fromkeys(s10.normalize(i) for i in item_ids))
    if not wanted:
        raise InvalidInput({"item_ids": ["A manifest needs at least one item."]})
    if len(wanted) > MAX_MANIFEST:
        raise InvalidInput({"item_ids": [f"At most {MAX_MANIFEST} items on one manifest."]})
    found = {o.item_id: o for o in db.session.scalars(scope(sa.select(DeliveryOrder), actor)
                                                       .where(DeliveryOrder.item_id.in_(wanted)))}
    missing = [i for i in wanted if i not in found]
    cancelled = [i for i in wanted if i in found and found[i].status is Status.CANCELLED]
    errors: dict[str, list[str]] = {}
    if missing:
        errors["item_ids"] = [f"No such order: {', '.join(missing[:20])}"]
    if cancelled:
        errors.setdefault("item_ids", []).append(f"Cancelled, not handed over: {', '.join(cancelled[:20])}")
    route_row = None
    if route:
        route_row = db.session.scalar(sa.select(PostalRoute).where(PostalRoute.code == route.strip().upper()))
        if route_row is None:
            errors["route"] = [f"No route {route}."]
    orders = [found[i] for i in wanted if i in found]
    if route_row is None and "route" not in errors:
        on = {o.route_id for o in orders}
        if len(on) == 1 and None not in on:  # one bag for one courier: the items' route
            route_row = db.session.get(PostalRoute, on.pop())
        elif orders:  # the manifest names one courier, who signs for every item of it
            errors["route"] = ["Choose the route of the courier taking the bag."
                               if manifest_kind is ManifestKind.COUNTER_TO_COURIER else CHOOSE_BACK_ROUTE]
    if route_row is not None:
        # the courier named on the manifest carries every item of it: an item of another route
        # (another courier, even another province) would be signed for by the wrong person
        wrong = [_off_route(o, route_row) for o in orders if o.route_id != route_row.id]
        if wrong:
            errors.setdefault("item_ids", []).extend(wrong[:20])
            if len(wrong) > 20:
                more = len(wrong) - 20
                errors["item_ids"].append(f"… and {more} more.")
    if errors:
        raise InvalidInput(errors)
    order_ids, route_id = [o.id for o in orders], route_row.id
    for _attempt in range(3):
        steps = {o.id: handover_step(manifest_kind, o) for o in orders}
        earlier = _handed_over(manifest_kind, steps, route_id)
        if earlier is not None:  # the same manifest again (its items' statuses may have moved on since)
            return ManifestResult(earlier, created=False)
        wrong = [o for o in orders if steps[o.id] is None]
        if wrong:
            raise _wrong_status(manifest_kind, wrong)
        try:
            made = _record_manifest(actor, manifest_kind, orders, steps, route_id, note)
            return ManifestResult(made, created=True)
        except sa.exc.IntegrityError:
            # Another request recorded one of these handovers meanwhile (PostgreSQL: this insert
            # waited for its commit): start again, and find it.
            db.session.rollback()
            orders = list(db.session.scalars(sa.select(DeliveryOrder).where(DeliveryOrder.id.in_(order_ids))
                                             .execution_options(populate_existing=True)))
            orders.sort(key=lambda o: order_ids.index(o.id))
    raise Conflict("The manifest could not be recorded: other manifests of these items were being recorded "
                   "at the same time. Try again.")


def _record_manifest(actor: Actor, kind: ManifestKind, orders: Sequence[DeliveryOrder],
                     steps: dict[int, HandoverStep | None], route_id: int, note: str | None) -> Manifest:
    """Insert the manifest, its lines and its handovers (``steps``: each order's); commits.
    IntegrityError when one of the handovers is recorded already (manifest_handovers' key).
    The courier who signs is kept on it: its maker if a courier, else the route's courier now (None
    when the route has none), whoever drives the route later."""
    counters = {o.counter_id for o in orders}
    courier_id: int | None
    if actor.role is Role.COURIER and actor.user_id is not None:
        courier_id = actor.user_id
    else:
        route = db.session.get(PostalRoute, route_id)
        courier_id = route.courier_id if route is not None else None
    manifest = Manifest(code="pending", kind=kind, counter_id=counters.pop() if len(counters) == 1 else None,
                        route_id=route_id, created_by_id=actor.user_id, courier_id=courier_id,
                        client_id=actor.client_id, actor_label=actor.label, note=note)
    db.session.add(manifest)
    db.session.flush()
    manifest.code = f"BB{local_now():%y%m%d}{manifest.id:06d}"
    db.session.execute(sa.insert(manifest_items), [
        {"manifest_id": manifest.id, "order_id": o.id, "position": n} for n, o in enumerate(orders, start=1)])
    db.session.execute(sa.insert(manifest_handovers), [
        {"order_id": o.id, "step": steps[o.id].value, "route_id": route_id, "manifest_id": manifest.id}
        for o in orders])
    db.session.commit()
    return manifest


def _handed_over(kind: ManifestKind, steps: dict[int, HandoverStep | None], route_id: int) -> Manifest | None:
    """The manifest of ``kind`` that handed exactly these orders over for the route (the same handover
    asked for again: that manifest), None when none of them was handed over at its step (``steps``:
    each order's now; an order the kind cannot list, None, is looked for at every step of the kind);
    Conflict, naming the manifests, when some were, on other manifests or with other items."""
    order_ids = list(steps)
    kind_steps = [HandoverStep.TO_COURIER] if kind is ManifestKind.COUNTER_TO_COURIER else [
        HandoverStep.DOSSIER, HandoverStep.RETURN]
    rows = [row for row in db.session.execute(
        sa.select(manifest_handovers.c.order_id, manifest_handovers.c.step, Manifest.id, Manifest.code,
                  Manifest.kind)
        .join(Manifest, Manifest.id == manifest_handovers.c.manifest_id)
        .where(manifest_handovers.c.route_id == route_id, manifest_handovers.c.order_id.in_(order_ids),
               manifest_handovers.c.step.in_([s.value for s in kind_steps]))
        .order_by(Manifest.id, manifest_handovers.c.order_id)).all()
        if steps[row.order_id] in (None, HandoverStep(row.step))]
    if not rows:
        return None
    manifest_ids = {row.id for row in rows}
    if len(manifest_ids) == 1 and rows[0].kind is kind:
        manifest_id = manifest_ids.pop()
        listed = set(db.session.scalars(sa.select(manifest_items.c.order_id)
                                        .where(manifest_items.c.manifest_id == manifest_id)))
        if listed == set(order_ids):
            return db.session.get(Manifest, manifest_id)
    items = dict(db.session.execute(sa.select(DeliveryOrder.id, DeliveryOrder.item_id)
                                    .where(DeliveryOrder.id.in_([row.order_id for row in rows]))).all())
    on: dict[str, list[str]] = {}
    for row in rows:
        on.setdefault(row.code, []).append(items[row.order_id])
    route = route_code(route_id)
    listed_text = "; ".join(f"{', '.join(ids[:20])} on {code}" for code, ids in on.items())
    if kind is ManifestKind.COUNTER_TO_COURIER:
        said = (f"Already handed over to route {route}'s courier on another manifest: {listed_text}. "
                "An item is handed over once")
    else:
        said = (f"Already handed back by route {route}'s courier on another manifest: {listed_text}. "
                "An item is handed back once")
    raise Conflict(f"{said}: print that manifest again, or leave these items out.",
                   error="already_handed_over", route=route, kind=kind.value,
                   handed_over=[{"manifest": code, "item_ids": ids} for code, ids in on.items()])


def _off_route(order: DeliveryOrder, route: PostalRoute) -> str:
    """Why an item cannot go on a manifest of ``route`` (the API's English; the counter page shows it
    in the reader's language, web.messages)."""
    if order.route_id is None:
        return f"{order.item_id} is not on a route yet, so not on route {route.code}'s manifest."
    return f"{order.item_id} is on route {route_code(order.route_id)}, not on route {route.code}."


@dataclass(frozen=True)
class AwaitingHandover:
    """An item the counter still holds: whether its label was printed, and its latest manifest."""

    order: DeliveryOrder
    printed: bool
    manifest_code: str | None


def _awaiting(actor: Actor, counter_id: int) -> sa.Select[tuple[DeliveryOrder]]:
    """The counter's items not yet handed to a courier, printed or not, oldest first: results before
    the handover (created or assigned), and results of both-direction orders back from the agency;
    none already handed to its route's courier on a manifest (``manifest_handovers``: the order stays
    ``assigned`` until the courier confirms the bag's pickup, but the counter no longer holds it). An
    item moved since to another route is listed again, for that route's courier."""
    result_leg = sa.or_(
        sa.and_(DeliveryOrder.direction == Direction.RESULT_TO_CITIZEN,
                DeliveryOrder.status.in_([Status.CREATED, Status.ASSIGNED])),
        sa.and_(DeliveryOrder.direction == Direction.BOTH,
                DeliveryOrder.status == Status.DELIVERED_TO_AGENCY))
    both_back = sa.exists().where(OrderEvent.order_id == DeliveryOrder.id,
                                  OrderEvent.status_to == Status.DELIVERED_TO_AGENCY)
    both_result = sa.and_(DeliveryOrder.direction == Direction.BOTH, DeliveryOrder.status == Status.ASSIGNED,
                          both_back)
    handed = sa.exists().where(manifest_handovers.c.order_id == DeliveryOrder.id,
                               manifest_handovers.c.step == HandoverStep.TO_COURIER.value,
                               manifest_handovers.c.route_id == DeliveryOrder.route_id)
    return (scope(sa.select(DeliveryOrder), actor)
            .where(DeliveryOrder.counter_id == counter_id, sa.or_(result_leg, both_result), ~handed)
            .order_by(DeliveryOrder.id))


def awaiting_handover(actor: Actor, counter_id: int, limit: int = 500) -> list[AwaitingHandover]:
    """The counter's items not yet handed to a courier (``_awaiting``), whether each one's label was
    printed, and its latest manifest."""
    orders = list(db.session.scalars(_awaiting(actor, counter_id).limit(limit)))
    ids = [o.id for o in orders]
    printed = set(db.session.scalars(sa.select(LabelPrint.order_id).where(LabelPrint.order_id.in_(ids))))
    latest: dict[int, str] = {}
    for order_id, code in db.session.execute(
            sa.select(manifest_items.c.order_id, Manifest.code)
            .join(Manifest, Manifest.id == manifest_items.c.manifest_id)
            .where(manifest_items.c.order_id.in_(ids), Manifest.kind == ManifestKind.COUNTER_TO_COURIER)
            .order_by(Manifest.id)):
        latest[order_id] = code
    return [AwaitingHandover(o, o.id in printed, latest.get(o.id)) for o in orders]


def unprinted_count(actor: Actor, counter_id: int) -> int:
    """How many labels ``_unprinted`` holds (what "print all" prints, refusals aside)."""
    return _count(_unprinted(actor, counter_id))


def still_to_print(actor: Actor, counter_id: int) -> int:
    """The counter's unprinted labels that no batch being prepared holds: what a next "print all"
    would take (MAX_BATCH of them at most), refusals aside."""
    running = db.session.scalars(sa.select(PrintJob.order_ids).where(
        PrintJob.counter_id == counter_id, PrintJob.state.in_([JobState.PENDING, JobState.RUNNING])))
    busy = [i for ids in running for i in ids or ()]
    return _count(_unprinted(actor, counter_id).where(DeliveryOrder.id.not_in(busy)))


def _count(stmt: sa.Select[Any]) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())) or 0


def handover_routes(orders: Sequence[DeliveryOrder]) -> list[PostalRoute]:
    """The routes these orders are on, by code: the couriers a bag of them can go to."""
    ids = {o.route_id for o in orders if o.route_id is not None}
    if not ids:
        return []
    return list(db.session.scalars(sa.select(PostalRoute).where(PostalRoute.id.in_(ids))
                                   .order_by(PostalRoute.code)))


def returned_orders(actor: Actor, counter_id: int, limit: int = 500) -> list[DeliveryOrder]:
    """The counter's orders sent back after failed attempts and not yet handed back on a manifest (to
    the counter or to the agency: ``manifest_handovers``' return step)."""
    on_returns = (sa.select(manifest_handovers.c.order_id)
                  .where(manifest_handovers.c.step == HandoverStep.RETURN.value))
    return list(db.session.scalars(
        scope(sa.select(DeliveryOrder), actor)
        .where(DeliveryOrder.counter_id == counter_id, DeliveryOrder.status == Status.RETURNED_TO_AGENCY,
               DeliveryOrder.id.not_in(on_returns))
        .order_by(DeliveryOrder.updated_at).limit(limit)))


def get_manifest(actor: Actor, code: str) -> Manifest:
    manifest = db.session.scalar(sa.select(Manifest).where(Manifest.code == code.strip().upper()))
    if manifest is None or not _may_see_manifest(actor, manifest):
        raise NotFound(f"No manifest {code}")
    return manifest


def _may_see_manifest(actor: Actor, manifest: Manifest) -> bool:
    if actor.role is Role.ADMIN or manifest.actor_label == actor.label:
        return True
    items = sa.select(manifest_items.c.order_id).where(manifest_items.c.manifest_id == manifest.id)
    visible = db.session.scalar(sa.select(sa.func.count()).select_from(
        scope(sa.select(DeliveryOrder.id), actor).where(DeliveryOrder.id.in_(items)).subquery()))
    total = db.session.scalar(sa.select(sa.func.count()).select_from(manifest_items)
                              .where(manifest_items.c.manifest_id == manifest.id))
    return bool(total) and visible == total


def manifest_pdf(actor: Actor, code: str) -> Document:
    """The manifest's PDF (one line per item, totals, signature boxes, its own barcode)."""
    manifest = get_manifest(actor, code)
    orders = list(db.session.scalars(
        sa.select(DeliveryOrder).join(manifest_items, manifest_items.c.order_id == DeliveryOrder.id)
        .where(manifest_items.c.manifest_id == manifest.id).order_by(manifest_items.c.position)))
    counter = db.session.get(Counter, manifest.counter_id) if manifest.counter_id else None
    route = manifest.route
    courier_name, staff_name = _signers(manifest)
    courier = lm.Party(f"Bưu tá tuyến {route.code}" if route else "Bưu tá")
    office = lm.Party(counter.name) if counter else lm.Party("Bưu cục")
    agency = lm.Party(orders[0].issuing_agency if orders else "Cơ quan")
    (giver, giver_person), (receiver, receiver_person) = {
        ManifestKind.COUNTER_TO_COURIER: ((office, staff_name), (courier, courier_name)),
        ManifestKind.COURIER_TO_AGENCY: ((courier, courier_name), (agency, None)),
        ManifestKind.COURIER_TO_COUNTER: ((courier, courier_name), (office, staff_name)),
    }[manifest.kind]
    data = lm.ManifestData(
        manifest_id=manifest.code, kind=lm.ManifestKind(manifest.kind.value), giver=giver,
        receiver=receiver, created_at=local_moment(manifest.created_at),
        # The window matters to the courier taking the bag; once handed to the agency or back to the
        # counter it is past.
        lines=tuple(_line(o, window=manifest.kind is ManifestKind.COUNTER_TO_COURIER) for o in orders),
        route_code=route.code if route else None, note=manifest.note,
        giver_person=giver_person, receiver_person=receiver_person)
    try:
        content = labels.render_manifest(data)
    except lm.LabelError as exc:
        raise InvalidInput({"manifest": [str(exc)]}, "The manifest cannot be printed") from None
    return Document(content, "application/pdf", f"bien-ban-{manifest.code}.pdf")


def _signers(manifest: Manifest) -> tuple[str | None, str | None]:
    """The full names of the courier and of the counter's staff signing the manifest: the courier kept
    on it when it was made (its maker if a courier, else the route's courier then: never the route's
    courier now, who may not be the one who signed); the counter staff who made it. None where the
    service does not know the person (made by an admin, a supervisor or a counter's software; a route
    with no courier): the name is then written by hand."""
    from delivery_service.accounts.models import User

    maker = db.session.get(User, manifest.created_by_id) if manifest.created_by_id else None
    courier = db.session.get(User, manifest.courier_id) if manifest.courier_id else None
    staff = maker if maker is not None and maker.role is Role.COUNTER_STAFF else None
    return (courier.full_name if courier else None), (staff.full_name if staff else None)


# --- run sheets -----------------------------------------------------------------------------------

def run_sheet(actor: Actor, code: str, day: dt.date) -> Document:
    """A courier's printable run for a day: the stops in order, what to collect and sign."""
    from delivery_service.courier.services import run_money
    from delivery_service.routing.services import get_run

    view = get_run(actor, code, day)
    cash = run_money([o for s in view.stops for o in s["orders"]] + list(view.unsequenced), day)
    money = cash.orders

    def line(o: DeliveryOrder) -> lm.ManifestLine:  # with what was collected on a delivery or pickup
        got = money[o.id]
        return replace(_line(o), delivered=got.done, collected_vnd=got.collected, cash_on=got.other_day)

    stops = tuple(lm.RunSheetStop(
        stop_no=s["number"], lines=tuple(line(o) for o in s["orders"]),
        phone=s["orders"][0].recipient_phone if s["orders"] else None, leg_m=s["leg_m"],
        estimated=s["estimated"]) for s in view.stops)
    data = lm.RunSheetData(
        route_code=view.route.code, route_name=view.route.name,
        courier_name=view.courier.full_name if view.courier else None, day=day, stops=stops,
        total_m=view.run.total_m if view.run else 0.0, printed_at=local_now(),
        office=lm.Party(view.route.post_office.name),
        unsequenced=tuple(line(o) for o in view.unsequenced),
        cash=(cash.still_to_collect, cash.due, cash.collected, cash.difference))
    try:
        content = labels.render_run_sheet(data)
    except lm.LabelError as exc:
        raise InvalidInput({"run_sheet": [str(exc)]}, "The run sheet cannot be printed") from None
    return Document(content, "application/pdf", f"lo-trinh-{view.route.code}-{day}.pdf")
