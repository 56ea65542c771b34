"""Human labels for enum values and the Jinja filters that format values for people.

Labels are lazy strings with English msgids; the Vietnamese catalog translates them.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import Flask, g
from flask_babel import format_decimal, get_locale, gettext
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context

from delivery_service import rules
from delivery_service.accounts.models import Role, User
from delivery_service.extensions import db
from delivery_service.imports.models import ImportState
from delivery_service.localtime import local_moment
from delivery_service.orders.models import Exemption, Payer, hhmm
from delivery_service.orders.schemas import NAMED_WINDOWS, WINDOW_EARLIEST, WINDOW_LATEST
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.services import route_code
from delivery_service.routing.models import PartKind
from delivery_service.vietnamese import sorted_vi
from routes import Outcome

STATUS = {
    Status.CREATED: _l("Created"),
    Status.ASSIGNED: _l("Assigned to a route"),
    Status.HANDED_TO_COURIER: _l("Handed to the courier"),
    Status.OUT_FOR_DELIVERY: _l("Out for delivery"),
    Status.DELIVERED: _l("Delivered"),
    Status.FAILED_ATTEMPT: _l("Delivery attempt failed"),
    Status.RETURNED_TO_AGENCY: _l("Returned to the agency"),
    Status.CANCELLED: _l("Cancelled"),
    Status.PICKUP_SCHEDULED: _l("Dossier pickup scheduled"),
    Status.PICKED_UP: _l("Dossier picked up"),
    Status.DELIVERED_TO_AGENCY: _l("Dossier delivered to the agency"),
}

# The same statuses as a citizen reads them on the public tracking page: what the post office does,
# not its internal steps ("assigned to a route").
CITIZEN_STATUS = {
    **STATUS,
    Status.CREATED: _l("Received at the counter"),
    Status.ASSIGNED: _l("The post office is preparing the delivery"),
    Status.HANDED_TO_COURIER: _l("With the courier"),
}

DIRECTION = {
    Direction.RESULT_TO_CITIZEN: _l("Deliver the result"),
    Direction.DOSSIER_TO_AGENCY: _l("Send the dossier"),
    Direction.BOTH: _l("Send the dossier and receive the result"),
}

PAYER = {
    Payer.CITIZEN: _l("The citizen"),
    Payer.AGENCY: _l("The agency"),
}

# Wording of Circular 22/2017/TT-BTTTT on postage exemptions for administrative procedures.
EXEMPTION = {
    Exemption.NONE: _l("No exemption"),
    Exemption.PRE_1945_REVOLUTIONARY: _l("Revolutionary active before 1 January 1945 (free)"),
    Exemption.HEROIC_MOTHER: _l("Vietnamese Heroic Mother (free)"),
    Exemption.WAR_HERO: _l("Hero of the People's Armed Forces or Labour Hero of the resistance (half price)"),
    Exemption.WAR_INVALID: _l("War invalid or person under the same policy (half price)"),
    Exemption.AGENT_ORANGE: _l("Resistance activist exposed to toxic chemicals (half price)"),
    Exemption.MARTYR_FAMILY: _l("Relative of a martyr (half price)"),
    Exemption.POOR_HOUSEHOLD: _l("Poor household (half price)"),
    Exemption.DISADVANTAGED_AREA: _l("Resident of an extremely disadvantaged area (half price)"),
}

ROLE = {
    Role.COUNTER_STAFF: _l("Counter staff"),
    Role.COURIER: _l("Courier"),
    Role.SUPERVISOR: _l("Post-office supervisor"),
    Role.DISTRICT_OFFICER: _l("Area officer"),
    Role.ADMIN: _l("Administrator"),
}

IMPORT_STATE = {
    ImportState.PENDING: _l("Waiting to start"),
    ImportState.RUNNING: _l("Importing"),
    ImportState.DONE: _l("Finished"),
    ImportState.FAILED: _l("Failed"),
}

# Why an order waits for a person to choose its route (DeliveryOrder.dispatch).
DISPATCH_REASON = {
    Outcome.UNKNOWN_COMMUNE: _l("No route covers this commune"),
    Outcome.NO_RULE: _l("Routes cover parts of this commune, but no hamlet or street rule matches "
                        "the address"),
    Outcome.OVER_CAPACITY: _l("The route and its backups are full on that day"),
}

# Why an event happened (OrderEvent.reason), other than a failed attempt's reason (FAILURE_REASONS).
EVENT_REASON = {
    Outcome.COMMUNE.value: _l("Placed by the route covering the whole commune"),
    Outcome.HAMLET.value: _l("Placed by a hamlet rule"),
    Outcome.STREET.value: _l("Placed by a street rule"),
    Outcome.OVERFLOW.value: _l("The route was full: placed on its backup route"),
    Outcome.UNKNOWN_COMMUNE.value: _l("No route covers this commune"),
    Outcome.NO_RULE.value: _l("Routes cover parts of this commune, but no hamlet or street rule matches "
                              "the address"),
    Outcome.OVER_CAPACITY.value: _l("The route and its backups are full on that day"),
    "moved": _l("Moved to another route"),
    "unassigned": _l("Taken off its route"),
    "address_changed": _l("Address changed"),
    "correction": _l("Correction of the courier's last record"),
    "max_failed_attempts": _l("Too many failed attempts: returned to the agency"),
}

PART_KIND = {
    PartKind.HAMLET: _l("Hamlet / village / residential group"),
    PartKind.STREET: _l("Street"),
}

ROW_STATUS = {
    "created": _l("Order created"),
    "existing": _l("Already existed"),
    "error": _l("Error"),
}

# A colour family per status for the badge; the text label is always shown beside it.
STATUS_TONE = {
    Status.CREATED: "new",
    Status.ASSIGNED: "progress",
    Status.HANDED_TO_COURIER: "progress",
    Status.OUT_FOR_DELIVERY: "progress",
    Status.PICKUP_SCHEDULED: "progress",
    Status.PICKED_UP: "progress",
    Status.DELIVERED: "done",
    Status.DELIVERED_TO_AGENCY: "done",
    Status.FAILED_ATTEMPT: "warn",
    Status.RETURNED_TO_AGENCY: "bad",
    Status.CANCELLED: "bad",
}


def _label(table: dict, value: object) -> str:
    if value is None:
        return ""
    return str(table.get(value, value))


def _local(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return local_moment(moment)


def format_day(day: dt.date | None) -> str:
    """Dates as Vietnamese offices write them (dd/mm/yyyy), in both languages."""
    return day.strftime("%d/%m/%Y") if day else ""


def format_moment(moment: dt.datetime | None) -> str:
    """A stored UTC time in the service's time zone."""
    local = _local(moment)
    return local.strftime("%d/%m/%Y %H:%M") if local else ""


def format_vnd(amount: int | None) -> str:
    """An amount of đồng with the locale's digit grouping: 26.000 ₫ / 26,000 ₫."""
    return f"{format_decimal(amount or 0)} ₫"


def format_km(metres: float | None) -> str:
    """A distance in kilometres with one decimal: 12,3 km / 12.3 km."""
    return f"{format_decimal((metres or 0) / 1000, format='#,##0.0')} km"


def format_hours(hours: float | None) -> str:
    """A duration in hours with one decimal: 1,5 h / 1.5 h."""
    return f"{format_decimal(hours or 0, format='#,##0.0')} h"


def format_distance(metres: float | None) -> str:
    """A short distance: metres below one kilometre (850 m), else kilometres (1,2 km)."""
    if metres is not None and metres < 1000:
        return f"{format_decimal(round(metres))} m"
    return format_km(metres)


LABEL_SIZE = {
    "100x150": _l("100 × 150 mm (4 × 6 in)"),
    "100x100": _l("100 × 100 mm"),
    "a6": _l("A6 (105 × 148 mm)"),
    "a4": _l("A4 sheet, 4 labels a page"),
}

CHOICES = {"direction": DIRECTION, "payer": PAYER, "exemption": EXEMPTION}


def choices(kind: str) -> list[tuple[str, str]]:
    """(value, label) pairs for a select, in the reader's language."""
    return [(value.value, str(label)) for value, label in CHOICES[kind].items()]


def failure_reason_label(code: str | None) -> str:
    """A failed attempt's reason (FAILURE_REASONS) in the reader's language, else its code."""
    if not code:
        return ""
    reason = rules.current().reason(code)
    if reason is None:
        return code
    return reason.label_en if str(get_locale() or "vi") == "en" else reason.label


def event_reason_label(code: str | None) -> str:
    """Why an event happened, in the reader's language: a failure reason, a routing reason, or the code."""
    if not code:
        return ""
    if code in EVENT_REASON:
        return str(EVENT_REASON[code])
    return failure_reason_label(code)


SYSTEM_ACTOR = _l("System (automatic)")


def actor_name(label: str | None) -> str:
    """Who did something, as people know them: a user's full name, "System", the API client's name, or
    the operator's OS account for a command run on the server.

    Events and prints keep the actor's account name (accounts.services.Actor.label); the full names
    of one page are read in one query per request.
    """
    if not label:
        return ""
    if label == "system":
        return str(SYSTEM_ACTOR)
    if label.startswith("api:"):
        return gettext("%(name)s (API)", name=label[4:])
    if label.startswith("cli:"):  # an operator's command (delivery-service users …), by OS account
        return gettext("%(name)s (command line)", name=label[4:])
    names: dict[str, str] | None = g.get("_actor_names")
    if names is None:
        names = g._actor_names = {}
    if label not in names:
        full = db.session.scalar(sa.select(User.full_name).where(User.username == label))
        names[label] = full or label
    return names[label]


def _label_filter(table: dict) -> object:
    # pass_context keeps Jinja from folding ``"literal"|label`` into the template at compile time,
    # in whatever language the first reader had.
    return pass_context(lambda _ctx, value: _label(table, value))


def init_app(app: Flask) -> None:
    """Register the filters and the functions the templates use."""
    app.jinja_env.filters.update(
        status_label=_label_filter(STATUS),
        citizen_status=_label_filter(CITIZEN_STATUS),
        status_tone=lambda v: STATUS_TONE.get(v, "new"),
        direction_label=_label_filter(DIRECTION),
        payer_label=_label_filter(PAYER),
        exemption_label=_label_filter(EXEMPTION),
        role_label=_label_filter(ROLE),
        import_state_label=_label_filter(IMPORT_STATE),
        row_status_label=_label_filter(ROW_STATUS),
        dispatch_label=_label_filter(DISPATCH_REASON),
        part_kind_label=_label_filter(PART_KIND),
        label_size=_label_filter(LABEL_SIZE),
        event_reason=pass_context(lambda _ctx, code: event_reason_label(code)),
        failure_reason=pass_context(lambda _ctx, code: failure_reason_label(code)),
        actor=pass_context(lambda _ctx, label: actor_name(label)),
        route_code_of=route_code,
        vi_sorted=lambda items, attribute="name": sorted_vi(items, key=lambda x: getattr(x, attribute)),
        day=format_day,
        moment=format_moment,
        vnd=format_vnd,
        km=format_km,
        hours=format_hours,
        distance=format_distance,
    )
    app.jinja_env.globals["choices"] = choices
    # The delivery window's limits, defined once (orders.schemas): the counter form's choices and times
    app.jinja_env.globals["windows"] = {"named": NAMED_WINDOWS, "earliest": hhmm(WINDOW_EARLIEST),
                                        "latest": hhmm(WINDOW_LATEST)}
