"""Pages for routes: the office's routes, a route's daily run, orders waiting for dispatch, and the
coverage editor. Thin: the work is in routing.services; this module shapes forms and messages."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import effective_role
from delivery_service.courier.services import run_money
from delivery_service.errors import Conflict, InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.fields import whole_number
from delivery_service.orders.services import local_today
from delivery_service.orgs.models import PostalRoute
from delivery_service.routing import services
from delivery_service.routing.models import PartKind
from delivery_service.units.models import UnitLevel
from delivery_service.units.services import Unit, unit_index
from delivery_service.vietnamese import sort_key
from delivery_service.web.access import page_actor, roles_required
from delivery_service.web.messages import translate_message
from routes import Outcome
from routes.text import fold

bp = Blueprint("routing", __name__, url_prefix="/routes")

DISPATCHERS = (Role.SUPERVISOR, Role.ADMIN)
RUN_ROLES = (Role.SUPERVISOR, Role.ADMIN, Role.COURIER)
PLACED = {o.value for o in Outcome if not o.needs_dispatch}
# The word the page writes for each kind of rule, in the reader's language ("thôn/ấp/xóm",
# "đường/phố"); what is stored stays the PartKind ("hamlet", "street") that routes.RuleKind and the
# API use, so rules saved before read and match as they did.
KIND_LABELS = {PartKind.HAMLET: _l("hamlet"), PartKind.STREET: _l("street")}
# Words people may type for the kind of a rule, folded (routes.text.fold, no spaces around "/"):
# both languages' labels, and the words addresses use.
KIND_WORDS = {
    PartKind.HAMLET: {"hamlet", "thon", "xom", "to", "to dan pho", "khu pho", "ap", "ban", "lang", "khoi",
                      "thon/xom/to", "thon/ap/xom", "thon/xom", "thon/ap"},
    PartKind.STREET: {"street", "duong", "pho", "duong/pho", "ngo", "hem", "kiet"},
}


def kind_words() -> dict[str, str]:
    """{stored kind: the word the page writes for it}, in the reader's language."""
    return {kind.value: str(label) for kind, label in KIND_LABELS.items()}


def _kind(text: str) -> str:
    """The stored kind a typed word means (either language), or the text as typed (the service
    refuses it, in words)."""
    folded = re.sub(r"\s*/\s*", "/", fold(text))
    return next((k.value for k, words in KIND_WORDS.items() if folded in words), text)


def _users(ids: Iterable[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i}
    if not wanted:
        return {}
    return {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(wanted)))}


def _day(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


# --- the routes of the office --------------------------------------------------------------------

@bp.get("")
@roles_required(*RUN_ROLES)
def index():
    """Routes with their courier, capacity, backup, today's load and coverage; couriers go to their run."""
    actor = page_actor()
    today = local_today()
    if actor.role is Role.COURIER:
        mine = services.list_routes(actor, mine=True)
        if len(mine) == 1:
            return redirect(url_for("routing.run", code=mine[0].code))
        routes = mine
    else:
        routes = services.list_routes(actor)
    ids = [r.id for r in routes]
    return render_template("routing/index.html", routes=routes, coverage=services.coverage(ids),
                           loads=services.day_loads(ids, today),
                           couriers=_users(r.courier_id for r in routes), today=today,
                           can_edit=actor.role in DISPATCHERS)


# --- a route's run on a day -----------------------------------------------------------------------

@bp.get("/<code>/run")
@roles_required(*RUN_ROLES)
def run(code: str):
    """The stops of a route's run in order, for the courier's phone and the supervisor's desk."""
    today = local_today()
    day = _day(request.args.get("date"))
    if day is None:
        if request.args.get("date"):
            flash(gettext("Not a valid date; showing today's run."), "warning")
        day = today
    view = services.get_run(page_actor(), code, day)
    if view.route.code != code:
        return redirect(url_for("routing.run", code=view.route.code, date=request.args.get("date")))
    by_id = view.run.sequenced_by_id if view.run else None
    by = _users([by_id]).get(by_id) if by_id else None
    # what is due and what the courier collected, per order and for the day (counting the cash)
    money = run_money([o for s in view.stops for o in s["orders"]] + list(view.unsequenced), day)
    return render_template("routing/run.html", view=view, route=view.route, day=day, today=today,
                           sequenced_by=by, courier=view.courier,
                           prev_day=day - dt.timedelta(days=1), next_day=day + dt.timedelta(days=1),
                           index=unit_index(), money=money)


@bp.post("/<code>/run/sequence")
@roles_required(*RUN_ROLES)
def resequence(code: str):
    """Sequence the run again (orders added since are placed among the stops), then show it."""
    day = _day(request.form.get("date")) or local_today()
    try:
        run = services.sequence_run(page_actor(), code, day)
    except Conflict as exc:
        db.session.rollback()
        flash(translate_message(exc.message), "error")
    else:
        flash(gettext("The run is sequenced: %(stops)s stops, %(orders)s orders.", stops=run.stops,
                      orders=run.orders), "success")
    return redirect(url_for("routing.run", code=code.strip().upper(), date=day.isoformat()), code=303)


# --- orders waiting for a person to choose their route --------------------------------------------

@bp.get("/dispatch")
@roles_required(*DISPATCHERS)
def dispatch():
    """Orders nothing placed automatically, with the reason, and a form per order to place it."""
    actor = page_actor()
    orders = services.dispatch_queue(actor)
    routes = [r for r in services.list_routes(actor) if r.active]
    # each order is offered the routes of its own province only: move_order refuses any other
    return render_template("routing/dispatch.html", orders=orders,
                           choices=services.move_choices(orders, routes))


@bp.post("/dispatch/move")
@roles_required(*DISPATCHERS)
def move():
    """Put one order on the chosen route."""
    item_id = (request.form.get("item_id") or "").strip()
    code = (request.form.get("route") or "").strip()
    note = (request.form.get("note") or "").strip() or None
    back = _safe_back(request.form.get("next")) or url_for("routing.dispatch")
    if not code:
        flash(gettext("Choose a route for order %(item_id)s.", item_id=item_id), "error")
        return redirect(back, code=303)
    try:
        services.move_order(page_actor(), item_id, code, note=note[:300] if note else None)
    except InvalidInput as exc:
        db.session.rollback()
        flash(" ".join(translate_message(m) for ms in exc.errors.values() for m in ms), "error")
    except (Conflict, NotFound) as exc:
        db.session.rollback()
        flash(translate_message(exc.message), "error")
    else:
        flash(gettext("Order %(item_id)s is now on route %(code)s.", item_id=item_id.upper(),
                      code=code.upper()), "success")
    return redirect(back, code=303)


@bp.post("/dispatch/auto")
@roles_required(*DISPATCHERS)
def auto_assign():
    """Run the automatic assignment again, e.g. after a coverage edit."""
    counts = services.assign_pending(page_actor())
    placed = sum(n for outcome, n in counts.items() if outcome in PLACED)
    waiting = sum(counts.values()) - placed
    flash(gettext("Automatic assignment: %(placed)s orders placed on a route, %(waiting)s still waiting "
                  "for dispatch.", placed=placed, waiting=waiting), "success" if placed else "info")
    return redirect(url_for("routing.dispatch"), code=303)


def _safe_back(target: str | None) -> str | None:
    """A page of this blueprint to return to; anything else is ignored."""
    return target if target and target.startswith("/routes/") and "//" not in target else None


# --- coverage editor ------------------------------------------------------------------------------

@bp.route("/<code>/coverage", methods=["GET", "POST"])
@roles_required(*DISPATCHERS)
def edit_coverage(code: str):
    """Communes, hamlet/street rules, capacity, backup and open run of one route."""
    actor = page_actor()
    return coverage_form(actor, services.get_route(actor, code),
                         action=url_for("routing.edit_coverage", code=code), done=url_for("routing.index"))


def coverage_form(actor: Any, route: PostalRoute, *, action: str, done: str):
    """The coverage editor of ``route`` (GET: the form; POST: saved, then to ``done``), for the
    supervisors' page and the administration's. What may be covered (the communes and backup routes
    of the route's post office's province) is the service's to refuse; this only presents it.
    A POST by the commune filter's button (``filter``, what it does without JavaScript) saves
    nothing: the form comes back as posted, ticks and all, with the communes narrowed to ``q``."""
    today = local_today()
    errors: dict[str, list[str]] = {}
    current = services.coverage([route.id])[route.id]
    if request.method == "GET":
        query = request.args.get("q") or ""
        values = {
            "communes": {u.id for u in current["communes"]},
            "rules": "\n".join(_rule_line(r.commune_id, r.kind, r.phrase) for r in current["rules"]),
            "capacity_per_day": "" if route.capacity_per_day is None else str(route.capacity_per_day),
            "backup": route.backup.code if route.backup else "",
            "open_run": not route.return_to_office,
        }
    else:
        query = request.form.get("q") or ""
        values = {
            "communes": {n for v in request.form.getlist("communes") if (n := whole_number(v)) is not None},
            # as typed: its lines are the ones the errors name (leading blank lines count too)
            "rules": request.form.get("rules") or "",
            "capacity_per_day": (request.form.get("capacity_per_day") or "").strip(),
            "backup": (request.form.get("backup") or "").strip(),
            "open_run": request.form.get("open_run") == "1",
        }
        if "filter" not in request.form:  # the filter's button: shown again as posted, not saved
            rules, lines = _parse_rules(values["rules"], today)
            try:
                services.set_coverage(actor, route.code, communes=sorted(values["communes"]), rules=rules,
                                      capacity=_capacity(values["capacity_per_day"]),
                                      backup=values["backup"] or None,
                                      return_to_office=not values["open_run"], ip=request.remote_addr)
            except InvalidInput as exc:
                db.session.rollback()
                errors = _coverage_errors(exc.errors, rules, lines)
            else:
                flash(_saved_message(route), "success")
                return redirect(done, code=303)
    query = query[:100]
    communes = _commune_choices(route, values["communes"], today)
    keys = {u.id: f"{fold(u.name)} {u.code}" for u in communes}  # what the filter compares, folded
    wanted = fold(query)  # without JavaScript the server filters; static/js/coverage.js does the same
    return render_template("routing/coverage.html", route=route, values=values, errors=errors,
                           communes=communes, shown={i for i, key in keys.items() if wanted in key},
                           query=query, filter_keys=keys,
                           backups=services.backup_choices(actor, route), kind_words=kind_words(),
                           action=action, done=done), (422 if errors else 200)


def _saved_message(route: PostalRoute) -> Markup:
    """What the coverage editor says once saved, about the orders waiting for dispatch that the new
    coverage may now place: to whoever may open the dispatch page, its button, with a link there; to
    a province admin (the page answers them 403: outside the administration pages they read as the
    province's officer), who places them instead: the supervisor of the route's post office, or a
    national administrator, with that button."""
    if effective_role(current_user, administering=False) in DISPATCHERS:
        page = Markup('<a href="{}">{}</a>').format(url_for("routing.dispatch"),
                                                    gettext("Waiting for dispatch"))
        text = gettext("Route %(code)s saved. Orders already on routes stay where they are; for the orders "
                       "waiting for dispatch, use “Auto-assign again” on the page %(page)s.")
        return Markup(escape(text)) % {"code": route.code, "page": page}
    text = gettext("Route %(code)s saved. Orders already on routes stay where they are. The orders waiting "
                   "for dispatch are placed again by the supervisor of post office %(office)s or a national "
                   "administrator, with “Auto-assign again” on their dispatch page: ask them to.")
    return Markup(escape(text)) % {"code": route.code, "office": route.post_office.code}


def _rule_line(commune_id: int, kind: PartKind, phrase: str) -> str:
    unit = unit_index().by_id.get(commune_id)
    return f"{unit.code if unit else commune_id} | {KIND_LABELS[kind]} | {phrase}"


def _parse_rules(text: str, today: dt.date) -> tuple[list[dict[str, Any]], list[int]]:
    """Lines ``commune code | kind | name`` (the kind in either language) to the service's rules,
    with each rule's line number. A line that cannot be split becomes a rule with no commune, which
    the service refuses (so nothing is saved), while it reports every other mistake of the form at
    the same time."""
    rules: list[dict[str, Any]] = []
    lines: list[int] = []
    index = unit_index()
    # lines as the text box shows them: only line breaks split (str.splitlines also splits at \f,
    # \x1c or U+2028, which a textarea does not show as new lines)
    for number, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 3:
            rules.append({"commune_id": None, "kind": "", "phrase": "", "malformed": True})
        else:
            commune_code, kind_text, phrase = parts
            unit = index.find(UnitLevel.COMMUNE, commune_code, today)
            rules.append({"commune_id": unit.id if unit else None, "kind": _kind(kind_text),
                          "phrase": phrase})
        lines.append(number)
    return rules, lines


def _capacity(raw: str) -> int | str | None:
    """Empty: no limit; digits: a number; anything else goes to the service, which says what is wrong."""
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return raw


def _coverage_errors(errors: dict[str, Any], rules: list[dict[str, Any]],
                     lines: list[int]) -> dict[str, list[str]]:
    """The service's errors by form field, translated; a rule's errors name its line in the text box,
    and a rule that repeats another (``services.repeated_rule``) the line of that one too."""
    out: dict[str, list[str]] = {}
    told: set[int] = set()

    def line_of(i: int) -> int:
        return lines[i] if i < len(lines) else i + 1

    for key, messages in errors.items():
        messages = messages if isinstance(messages, list) else [messages]
        texts = [translate_message(m) for m in messages]
        if key.startswith("rules."):
            i = int(key.split(".")[1])
            line = line_of(i)
            if i < len(rules) and rules[i].get("malformed"):
                if i in told:
                    continue
                told.add(i)
                texts = [gettext("Line %(line)s: write “commune code | hamlet or street | name”.", line=line)]
            else:
                worded = []
                for message, text in zip(messages, texts, strict=True):
                    same_as = (getattr(message, "extra", None) or {}).get("same_as")  # "rules.<j>"
                    if same_as:  # the service names the rule it repeats; the page, that rule's line
                        worded.append(gettext("Line %(line)s: the same hamlet or street as line %(first)s.",
                                              line=line, first=line_of(int(same_as.split(".")[1]))))
                    else:
                        worded.append(gettext("Line %(line)s: %(message)s", line=line, message=text))
                texts = worded
            key = "rules"
        out.setdefault(key if key in ("communes", "rules", "capacity_per_day", "backup") else "_form",
                       []).extend(texts)
    return out


def _commune_choices(route: PostalRoute, chosen: set[int], today: dt.date) -> list[Unit]:
    """The communes in force in the province of the route's post office (as of 2025, as the service
    checks them), and any the route covers elsewhere (saving them is refused, saying which)."""
    index = unit_index()
    code = services.office_province(route.post_office)
    province = index.find(UnitLevel.PROVINCE, code, today) if code else None
    units: dict[int, Unit] = {}
    queue = index.children_of(province.id, today) if province else []
    while queue:
        unit = queue.pop()
        if unit.level is UnitLevel.COMMUNE:
            units[unit.id] = unit
        else:  # communes under districts (before the 2025 reform)
            queue.extend(index.children_of(unit.id, today))
    for unit_id in chosen:
        if unit_id not in units and (unit := index.by_id.get(unit_id)) is not None:
            units[unit_id] = unit
    return sorted(units.values(), key=lambda u: (u.id not in chosen, sort_key(u.name)))
