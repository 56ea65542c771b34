"""Staff pages for printing: one order's label and receipt, batches of labels, manifests, run sheets."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user, login_required

from delivery_service.errors import Conflict, DomainError, InvalidInput
from delivery_service.extensions import db
from delivery_service.fields import whole_number
from delivery_service.orders.services import local_today
from delivery_service.orders.status import Status
from delivery_service.orgs.models import Counter
from delivery_service.printing import services
from delivery_service.printing.api import send
from delivery_service.printing.models import JobState, ManifestKind
from delivery_service.privacy import access
from delivery_service.web import display
from delivery_service.web.access import page_actor
from delivery_service.web.messages import translate_message
from delivery_service.web.views import desk_required

bp = Blueprint("printing", __name__)


def _problem(exc: DomainError) -> str:
    """A refusal in the reader's language, one line."""
    if isinstance(exc, InvalidInput):
        return " ".join(translate_message(m) for msgs in exc.errors.values() for m in msgs)
    return translate_message(str(exc))


@bp.get("/counter/orders/<item_id>/label")
@desk_required
def label(item_id: str):
    """The order's label (same query as the API: ?format=pdf|zpl&size=100x150|100x100|a6|a4)."""
    try:
        doc = services.print_label(page_actor(), item_id, request.args.get("format"),
                                   request.args.get("size"))
    except (Conflict, InvalidInput) as exc:
        db.session.rollback()
        flash(_problem(exc), "error")
        return redirect(url_for("counter.order", item_id=item_id), code=303)
    access.opened(page_actor(), "label", orders=access.by_item(item_id))
    return send(doc)


@bp.get("/counter/orders/<item_id>/receipt")
@desk_required
def receipt(item_id: str):
    """The citizen's receipt (?size=a5|a4)."""
    try:
        doc = services.receipt(page_actor(), item_id, request.args.get("size", "a5"))
        access.opened(page_actor(), "receipt", orders=access.by_item(item_id))
        return send(doc)
    except InvalidInput as exc:
        flash(_problem(exc), "error")
        return redirect(url_for("counter.order", item_id=item_id), code=303)


def _counter() -> Counter | None:
    """The counter the page works for: the user's own; an admin's ?counter_id, else the only active
    counter, else None (the admin chooses one on ``_choose_counter``)."""
    if current_user.role.value != "admin":
        counter = db.session.get(Counter, current_user.counter_id or 0)
        if counter is None:
            abort(404)
        return counter
    raw = request.values.get("counter_id")
    if raw:  # an id a database holds (int() takes 20 digits, SQLite's INTEGER does not)
        return db.session.get(Counter, whole_number(raw) or 0) or abort(404)
    first = list(db.session.scalars(sa.select(Counter).where(Counter.active).order_by(Counter.code).limit(2)))
    return first[0] if len(first) == 1 else None


def _choose_counter(endpoint: str, title: str):
    """An admin's page to pick the counter to work for (the header's links carry no counter)."""
    counters = db.session.scalars(sa.select(Counter).where(Counter.active).order_by(Counter.code))
    return render_template("printing/choose_counter.html", counters=list(counters), endpoint=endpoint,
                           title=title)


@bp.route("/counter/labels", methods=["GET", "POST"])
@desk_required
def labels_page():
    """Items not yet handed over, printed or not: print the chosen labels or all unprinted ones, as PDF
    or ZPL; hand the ticked items over to a route's courier on a manifest."""
    counter = _counter()
    if counter is None:
        return _choose_counter("printing.labels_page", gettext("Labels and handover"))
    actor = page_actor()
    if request.method == "POST":
        chosen = request.form.getlist("item_ids") if request.form.get("which") == "selected" else None
        if chosen is not None and not chosen:
            flash(gettext("Tick the orders to print first."), "error")
            return redirect(url_for("printing.labels_page", counter_id=counter.id), code=303)
        try:
            result = services.start_batch(actor, counter_id=counter.id, item_ids=chosen,
                                          fmt=request.form.get("format"), size=request.form.get("size"))
        except (InvalidInput, Conflict) as exc:
            db.session.rollback()
            flash(_problem(exc), "error")
            return redirect(url_for("printing.labels_page", counter_id=counter.id), code=303)
        if result.document is not None:
            return send(result.document, inline=False)
        return redirect(url_for("printing.job", job_id=result.job.id), code=303)
    rows = services.awaiting_handover(actor, counter.id, limit=500)
    # a bag goes to the courier of the items' route: only those routes are offered
    routes = services.handover_routes([r.order for r in rows])
    return render_template("printing/labels.html", counter=counter, rows=rows, routes=routes,
                           unprinted=services.unprinted_count(actor, counter.id),
                           sizes=services.SIZES, formats=services.FORMATS,
                           threshold=current_app.config["LABEL_ASYNC_THRESHOLD"],
                           max_batch=services.MAX_BATCH,
                           refusals={r.order.id: services.refusal(r.order, counter) for r in rows},
                           batches=services.recent_jobs(actor, counter.id))


@bp.get("/counter/labels/jobs/<int:job_id>")
@desk_required
def job(job_id: int):
    """A big batch being rendered: progress (the page refreshes itself), then the download."""
    found = services.get_job(page_actor(), job_id)
    running = found.state in (JobState.PENDING, JobState.RUNNING)
    # "Print all" takes MAX_BATCH labels at most: a batch that full says how many are left for a next one
    # (a batch of ticked orders, fewer, says nothing of the counter's other labels)
    full = found.counter_id and found.total >= services.MAX_BATCH
    remaining = services.still_to_print(page_actor(), found.counter_id) if full else 0
    return render_template("printing/job.html", job=found, running=running,
                           left_out=services.left_out(found), remaining=remaining,
                           max_batch=services.MAX_BATCH, no_worker=services.no_worker(found))


@bp.get("/counter/labels/jobs/<int:job_id>/file")
@desk_required
def job_file(job_id: int):
    try:
        doc = services.job_file(page_actor(), job_id)
        access.opened(page_actor(), "label_batch", orders=access.of_print_job(job_id))
        return send(doc, inline=False)
    except Conflict as exc:
        flash(_problem(exc), "error")
        return redirect(url_for("printing.job", job_id=job_id), code=303)


@bp.get("/counter/returns")
@desk_required
def returns_page():
    """Items sent back after failed attempts: the courier hands them over on a return manifest."""
    counter = _counter()
    if counter is None:
        return _choose_counter("printing.returns_page", gettext("Returned items"))
    orders = services.returned_orders(page_actor(), counter.id)
    return render_template("printing/returns.html", counter=counter, orders=orders,
                           routes=services.handover_routes(orders))


@bp.post("/counter/manifests")
@desk_required
def create_manifest():
    """A handover manifest of the ticked orders: counter → the route's courier, or (returns) back."""
    items = request.form.getlist("item_ids")
    returns = request.form.get("kind") == ManifestKind.COURIER_TO_COUNTER.value
    kind = ManifestKind.COURIER_TO_COUNTER if returns else ManifestKind.COUNTER_TO_COURIER
    back = "printing.returns_page" if kind is ManifestKind.COURIER_TO_COUNTER else "printing.labels_page"
    counter_id = whole_number(request.form.get("counter_id")) if current_user.role.value == "admin" else None
    try:
        result = services.create_manifest(page_actor(), kind=kind.value, item_ids=items,
                                          route=request.form.get("route") or None,
                                          note=request.form.get("note") or None)
    except Conflict as exc:
        db.session.rollback()
        said = {"already_handed_over": _handed_over, "wrong_status": _wrong_status}.get(exc.error, _problem)
        flash(said(exc), "error")
        return redirect(url_for(back, counter_id=counter_id), code=303)
    except InvalidInput as exc:
        db.session.rollback()
        flash(_manifest_problem(exc), "error")
        return redirect(url_for(back, counter_id=counter_id), code=303)
    code = result.manifest.code
    if result.created:
        flash(gettext("Manifest %(code)s recorded.", code=code), "success")
    else:
        flash(gettext("These items were handed over on manifest %(code)s already: here it is again.",
                      code=code), "success")
    return redirect(url_for("printing.manifest_pdf", code=code), code=303)


def _handed_over(exc: Conflict) -> str:
    """services.create_manifest's already_handed_over, in the reader's language."""
    if exc.details.get("kind") != ManifestKind.COUNTER_TO_COURIER.value:
        return " ".join(gettext(
            "%(items)s: handed back by route %(route)s's courier on manifest %(code)s already. "
            "An item is handed back once: print that manifest again, or untick these items.",
            items=", ".join(on["item_ids"]), route=exc.details["route"], code=on["manifest"])
            for on in exc.details["handed_over"])
    return " ".join(gettext(
        "%(items)s: handed over to route %(route)s's courier on manifest %(code)s already. "
        "An item is handed over once: print that manifest again, or untick these items.",
        items=", ".join(on["item_ids"]), route=exc.details["route"], code=on["manifest"])
        for on in exc.details["handed_over"])


def _wrong_status(exc: Conflict) -> str:
    """services.create_manifest's wrong_status (items a manifest of that kind cannot list), in the
    reader's language, each item with its status as the pages name it."""
    items = ", ".join(f"{i['item_id']} ({display.STATUS[Status(i['status'])]})" for i in exc.details["items"])
    if exc.details["kind"] == ManifestKind.COUNTER_TO_COURIER.value:
        return gettext("These items cannot be handed to a courier in their status: %(items)s. A bag for a "
                       "courier holds what the counter still has: results not yet out for delivery, and "
                       "dossiers still to pick up.", items=items)
    return gettext("These items cannot be handed back in their status: %(items)s. A courier hands back the "
                   "results returned after the last failed attempt and the dossiers picked up; an item "
                   "with a next attempt stays with the courier.", items=items)


def _manifest_problem(exc: InvalidInput) -> str:
    """A refused manifest (422) in the reader's language: the services' own route message for a
    courier's manifest back, the shared messages otherwise."""
    if any(m == services.CHOOSE_BACK_ROUTE for msgs in exc.errors.values() for m in msgs):
        others = {k: [m for m in msgs if m != services.CHOOSE_BACK_ROUTE] for k, msgs in exc.errors.items()}
        rest = _problem(InvalidInput({k: v for k, v in others.items() if v}))
        choose = gettext("Choose the route of the courier handing the items back.")
        return " ".join(p for p in (choose, rest) if p)
    return _problem(exc)


@bp.get("/counter/manifests/<code>.pdf")
@login_required
def manifest_pdf(code: str):
    doc = services.manifest_pdf(page_actor(), code)
    access.opened(page_actor(), "manifest", orders=access.of_manifest(code))
    return send(doc)


@bp.get("/routes/<code>/run/sheet.pdf")
@login_required
def run_sheet(code: str):
    """The printable run sheet of a route's day (?date=YYYY-MM-DD, default today)."""
    raw = request.args.get("date")
    try:
        day = dt.date.fromisoformat(raw) if raw else local_today()
    except ValueError:
        abort(404)
    doc = services.run_sheet(page_actor(), code, day)
    access.opened(page_actor(), "run_sheet", orders=access.of_run(code, day))
    return send(doc)
