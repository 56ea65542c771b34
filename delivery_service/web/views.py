"""The counter desk: scanner search, today's orders, the new-order form, order pages, batch import."""

from __future__ import annotations

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from delivery_service.accounts.models import Role
from delivery_service.errors import Conflict, InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.fields import page_number
from delivery_service.imports.models import ImportState
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.services import (
    address_changeable,
    change_address,
    change_status,
    create_order,
    get_order,
    local_today,
    orders_created_on,
    search_orders,
    sent_again,
)
from delivery_service.orders.status import Status
from delivery_service.orgs.models import Counter
from delivery_service.privacy import access
from delivery_service.routing.services import sequenced_stops
from delivery_service.units.services import unit_index
from delivery_service.web import forms
from delivery_service.web.access import page_actor, roles_required
from labels import s10

bp = Blueprint("counter", __name__, url_prefix="/counter")

DESK_ROLES = (Role.COUNTER_STAFF, Role.ADMIN)


desk_required = roles_required(*DESK_ROLES)


def _is_admin() -> bool:
    return current_user.role is Role.ADMIN


@bp.app_template_filter("unit_name")
def unit_name(unit_id: int | None) -> str:
    """A unit's name from the in-memory index (no query per table row)."""
    unit = unit_index().by_id.get(unit_id) if unit_id else None
    return unit.name if unit else ""


@bp.get("")
@desk_required
def desk():
    """Search box for the scanner, and the orders the counter created today."""
    today = local_today()
    return render_template("counter/desk.html", orders=orders_created_on(page_actor(), today), today=today)


SEARCH_PAGE_SIZE = 50


@bp.route("/search", methods=["GET", "POST"])
@desk_required
def search():
    """A scanned item id opens its order; other text lists matches by dossier code, phone or name.

    The box posts its text, and the matches are shown in the answer to the post (pages too are
    posted): a phone number or a name never goes into an address, where the browser history of a
    shared counter PC would keep it. A GET with ``q`` (old bookmarks, a link to an item id) still works.
    """
    source = request.form if request.method == "POST" else request.args
    query = (source.get("q") or "").strip()
    if not query:
        return redirect(url_for("counter.desk"))
    item_id = s10.normalize(query)
    if s10.is_valid(item_id):
        try:
            found = get_order(page_actor(), item_id)
        except NotFound:
            found = None  # not ours, or not issued: say "nothing found" like any other search
        if found is not None:
            return redirect(url_for("counter.order", item_id=found.item_id), code=303)
    page = page_number(source.get("page"))
    found_page = search_orders(page_actor(), query, page=page, per_page=SEARCH_PAGE_SIZE)
    return render_template("counter/search.html", query=query, result=found_page, orders=found_page.orders)


@bp.route("/orders/new", methods=["GET", "POST"])
@desk_required
def new_order():
    """The order form. Errors come back beside their fields with status 422, values kept."""
    today = local_today()
    own_counter: Counter | None = current_user.counter
    if request.method == "GET":
        values = forms.initial_values(own_counter, today)
        return _order_form(values, {}, own_counter.id if own_counter else None)

    values = forms.form_values(request.form)
    counter = own_counter
    errors: dict[str, list[str]] = {}
    if _is_admin():
        counter = forms.chosen_counter(request.form.get("counter_id"))
        if counter is None:
            errors["counter_id"] = [gettext("Choose the counter this order belongs to.")]
    data, form_errors = forms.load_order(values, today)
    errors.update(form_errors)
    if data is not None and counter is not None and not errors:
        try:
            order, created = create_order(page_actor(), data, counter_id=counter.id)
        except InvalidInput as exc:
            db.session.rollback()  # nothing of a refused order may be left in the session
            errors = forms.translate_errors(exc.errors)
        else:
            if created:
                flash(gettext("Order %(item_id)s created.", item_id=order.item_id), "success")
            elif differing := forms.differing_fields(page_actor(), order, data, counter_id=counter.id):
                # what the desk can do about it: cancel the order and send the dossier again, while
                # the status machine lets it go; after that, only the post office can
                if forms.can_cancel(page_actor(), order):
                    flash(gettext("This dossier already has an order at this counter: %(item_id)s. "
                                  "Nothing new was created, and the data you typed was NOT saved: it differs "
                                  "from that order in %(fields)s. If the data has changed, cancel that order "
                                  "(on its page, with the reason) and create the order again.",
                                  item_id=order.item_id, fields=", ".join(differing)), "error")
                else:
                    flash(gettext("This dossier already has an order at this counter: %(item_id)s. "
                                  "Nothing new was created, and the data you typed was NOT saved: it differs "
                                  "from that order in %(fields)s. That order is already with the courier or "
                                  "closed, so the counter can no longer cancel it: if its data is wrong, "
                                  "contact the post office.",
                                  item_id=order.item_id, fields=", ".join(differing)), "error")
            else:
                flash(gettext("This dossier already has an order at this counter: %(item_id)s. "
                              "Nothing new was created.", item_id=order.item_id), "warning")
            return redirect(url_for("counter.order", item_id=order.item_id), code=303)
    return _order_form(values, errors, counter.id if counter else None, status=422)


def _order_form(values: dict[str, str], errors: dict[str, list[str]], counter_id: int | None,
                status: int = 200):
    order = ["counter_id", *forms.FIELDS]
    focus = next((name for name in order if name in errors), "counter_id" if _is_admin() else "dossier_code")
    return render_template(
        "counter/order_form.html", values=values, errors=errors, labels=forms.LABELS,
        units=forms.address_options(values, local_today()), today=local_today(),
        counters=forms.all_counters() if _is_admin() else [], counter_id=counter_id, focus=focus,
    ), status


@bp.get("/orders/<item_id>")
@desk_required
def order(item_id: str):
    """One order: every field, its status and its history."""
    found = get_order(page_actor(), item_id)
    if found.item_id != item_id:
        return redirect(url_for("counter.order", item_id=found.item_id))
    return _order_page(found)


def _order_page(found: DeliveryOrder, *, cancel_errors: dict[str, list[str]] | None = None,
                cancel_note: str = "", status: int = 200):
    from delivery_service.printing.services import prints_of

    stop = sequenced_stops([found]).get(found.id) if found.run_date else None
    access.opened(page_actor(), "order_page", order_ids=[found.id])
    return render_template("counter/order.html", order=found, stop=stop,
                           prints=prints_of(page_actor(), found.item_id),
                           again=sent_again(page_actor(), found),  # a cancelled order's successor
                           can_cancel=forms.can_cancel(page_actor(), found),
                           can_correct_address=address_changeable(page_actor(), found),
                           cancel_errors=cancel_errors or {}, cancel_note=cancel_note), status


@bp.post("/orders/<item_id>/cancel")
@desk_required
def cancel_order(item_id: str):
    """Cancel an order that the status machine still lets go (not yet with a courier), with the
    reason typed; the reason goes into the order's history."""
    found = get_order(page_actor(), item_id)
    note, errors = forms.load_cancel_note(request.form)
    if errors:
        return _order_page(found, cancel_errors=errors, cancel_note=request.form.get("note", ""), status=422)
    try:
        change_status(page_actor(), found.item_id, Status.CANCELLED, note=note)
    except Conflict:
        db.session.rollback()
        flash(gettext("The order could not be cancelled: its status has changed (it may already be with a "
                      "courier). Its current status is shown below."), "error")
    else:
        flash(gettext("Order %(item_id)s cancelled.", item_id=found.item_id), "success")
    return redirect(url_for("counter.order", item_id=found.item_id), code=303)


@bp.route("/orders/<item_id>/address", methods=["GET", "POST"])
@desk_required
def correct_address(item_id: str):
    """Correct the order's address (orders.services.change_address: the order is placed again on the
    route covering it). Errors come back beside their fields with status 422 and nothing changed; a
    status that no longer allows it, the service's refusal, is said on the order's page."""
    found = get_order(page_actor(), item_id)  # another counter's order: 404
    if request.method == "GET":
        if found.item_id != item_id:
            return redirect(url_for("counter.correct_address", item_id=found.item_id))
        if not address_changeable(page_actor(), found):
            flash(_address_locked(found.item_id, found.status), "error")
            return redirect(url_for("counter.order", item_id=found.item_id), code=303)
        return _address_form(found, forms.address_values(found, local_today()), {})

    values = forms.address_form_values(request.form)
    data, errors = forms.load_address_change(values, local_today())
    if data is not None:
        try:
            changed = change_address(page_actor(), found.item_id, data["address"], note=data["note"])
        except InvalidInput as exc:
            db.session.rollback()  # nothing of a refused change may be left in the session
            errors = forms.translate_errors(exc.errors)
        except Conflict as exc:
            db.session.rollback()
            flash(_address_locked(found.item_id, exc.details.get("current_status")), "error")
            return redirect(url_for("counter.order", item_id=found.item_id), code=303)
        else:
            flash(_address_corrected(changed), "success")
            return redirect(url_for("counter.order", item_id=changed.item_id), code=303)
    return _address_form(found, values, errors, status=422)


def _address_form(found: DeliveryOrder, values: dict[str, str], errors: dict[str, list[str]],
                  status: int = 200):
    focus = next((name for name in forms.ADDRESS_FIELDS if name in errors), "province_code")
    access.opened(page_actor(), "order_page", order_ids=[found.id])  # the page shows the address
    return render_template(
        "counter/address_form.html", order=found, values=values, errors=errors, labels=forms.ADDRESS_LABELS,
        units=forms.address_options(values, local_today()), focus=focus,
    ), status


def _address_locked(item_id: str, current: Status | str | None) -> str:
    """The service's refusal (``address_locked``), in the reader's words."""
    from delivery_service.web.display import STATUS

    status = STATUS.get(Status(current), current) if current else ""
    return gettext("The address of order %(item_id)s was not corrected: its status is now “%(status)s”, and "
                   "the address of an order that is with a courier or closed can no longer change. Nothing "
                   "was changed. If the address is wrong, contact the post office.",
                   item_id=item_id, status=status)


def _address_corrected(order: DeliveryOrder) -> str:
    """What the correction did: the route the order is on now, or why it waits for dispatch."""
    from delivery_service.printing.services import prints_of
    from delivery_service.web.display import DISPATCH_REASON

    if order.route is not None:
        route = " · ".join((order.route.code, order.route.name))
        said = gettext("The address of order %(item_id)s was corrected. It is on route %(route)s.",
                       item_id=order.item_id, route=route)
    elif order.dispatch:
        said = gettext("The address of order %(item_id)s was corrected. No route takes it (%(reason)s): it "
                       "waits for the post office to dispatch it.", item_id=order.item_id,
                       reason=DISPATCH_REASON.get(order.dispatch, order.dispatch))
    else:
        said = gettext("The address of order %(item_id)s was corrected. It is not on a route yet: it waits "
                       "for the post office to dispatch it.", item_id=order.item_id)
    if prints_of(page_actor(), order.item_id):
        said += " " + gettext("Its label was printed with the old address: print it again.")
    return said


# --- batch import --------------------------------------------------------------------------------

@bp.route("/imports/new", methods=["GET", "POST"])
@desk_required
def new_import():
    """Upload a CSV or XLSX file of orders."""
    from delivery_service.imports.services import start_import

    own_counter: Counter | None = current_user.counter
    counter_id = own_counter.id if own_counter else None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        counter = own_counter
        if _is_admin():
            counter = forms.chosen_counter(request.form.get("counter_id"))
            if counter is None:
                errors["counter_id"] = [gettext("Choose the counter these orders belong to.")]
            counter_id = counter.id if counter else None
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            errors["file"] = [gettext("Choose a CSV or XLSX file.")]
        if counter is not None and not errors:
            try:
                batch = start_import(page_actor(), counter_id=counter.id, filename=upload.filename,
                                     content=upload.read())
            except InvalidInput as exc:
                db.session.rollback()
                errors = forms.translate_errors(exc.errors)
            else:
                return redirect(url_for("counter.import_result", import_id=batch.id), code=303)
    return render_template(
        "counter/import_form.html", errors=errors, labels=forms.LABELS,
        counters=forms.all_counters() if _is_admin() else [], counter_id=counter_id,
    ), (422 if errors else 200)


@bp.get("/imports/template.csv")
@desk_required
def import_template():
    """The template file: the column headers and one example row."""
    from delivery_service.imports.services import template_csv

    return Response(template_csv(), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="mau-nhap-don.csv"'})


@bp.get("/imports/<int:import_id>")
@desk_required
def import_result(import_id: int):
    """Totals and per-row results; the page reloads itself every 2 s while the import runs."""
    from delivery_service.imports.services import get_import, no_worker

    batch = get_import(page_actor(), import_id)
    running = batch.state in (ImportState.PENDING, ImportState.RUNNING)
    return render_template("counter/import_result.html", batch=batch, running=running,
                           no_worker=no_worker(batch), column_label=forms.column_label)
