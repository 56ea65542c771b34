"""What people and counter systems feed the reports: counters' daily totals of results handed out
(the denominator of the share sent by post) and reporting areas (sets of 2025 communes).

Services in the house manner: explicit actor and validated data in, English messages out (the pages
translate them), no flask.request; the caller commits.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from delivery_service.accounts.models import ApiClient, Role, User
from delivery_service.accounts.services import Actor, record
from delivery_service.db import utcnow
from delivery_service.errors import Forbidden, InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.status import Direction
from delivery_service.reports.fold import upsert
from delivery_service.reports.models import CounterDailyTotal, ReportArea, ReportUnit, report_area_communes
from delivery_service.reports.units import ensure_unit_map, successor_communes
from delivery_service.units.models import REFORM_DATE, AdminUnit, UnitLevel
from delivery_service.units.services import CODE_WIDTH, UnitIndex, _norm_code, unit_index
from delivery_service.vietnamese import sorted_vi

log = logging.getLogger(__name__)

MAX_TOTAL = 1_000_000  # results a counter hands out in a day: far above any real counter, below a typo
MAX_PAST_DAYS = 400  # a late total is still welcome for last year's report, not for older ones
MAX_DAYS = 366  # days in one bulk write or one listing
PAGE_DAYS = 14  # days the counter's page shows
LAST_LEGACY_DAY = REFORM_DATE - dt.timedelta(days=1)
RESULT_DIRECTIONS = (Direction.RESULT_TO_CITIZEN, Direction.BOTH)

# Messages the pages translate (the reports' part of delivery_service/web/messages.py).
DAY_IN_FUTURE = "The day is in the future."
DAY_TOO_OLD = f"The day is more than {MAX_PAST_DAYS} days ago."
TOTAL_RANGE = f"Must be a whole number from 0 to {MAX_TOTAL}."
DAY_TWICE = "This day is given twice."


# --- counters' daily totals ----------------------------------------------------------------------

@dataclass(frozen=True)
class DayTotal:
    """All the results a counter handed out on one local day."""

    day: dt.date
    results_total: int


def day_problem(day: dt.date, today: dt.date) -> str | None:
    """Why a counter may not report a total for ``day`` (None: it may)."""
    if day > today:
        return DAY_IN_FUTURE
    if (today - day).days > MAX_PAST_DAYS:
        return DAY_TOO_OLD
    return None


def reporting_counter(actor: Actor) -> int:
    """The counter whose totals the actor reports: its own (staff or the counter's software)."""
    if actor.role is not Role.COUNTER_STAFF or actor.counter_id is None:
        raise Forbidden("Only a counter's staff or software report its daily totals.")
    return actor.counter_id


def _total_errors(total: DayTotal, today: dt.date) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    problem = day_problem(total.day, today)
    if problem:
        errors["day"] = [problem]
    if isinstance(total.results_total, bool) or not isinstance(total.results_total, int) \
            or not 0 <= total.results_total <= MAX_TOTAL:
        errors["results_total"] = [TOTAL_RANGE]
    return errors


def save_total(actor: Actor, total: DayTotal, *, today: dt.date) -> CounterDailyTotal:
    """Store (or replace) the actor's counter's total for one day."""
    counter_id = reporting_counter(actor)
    errors = _total_errors(total, today)
    if errors:
        raise InvalidInput(errors)
    _store(actor, counter_id, [total])
    return _stored(counter_id, [total.day])[0]


def save_totals(actor: Actor, totals: Sequence[DayTotal], *, today: dt.date) -> list[CounterDailyTotal]:
    """Store (or replace) the actor's counter's totals for several days: all of them, or none when
    any is wrong (errors by position in the list)."""
    counter_id = reporting_counter(actor)
    if not totals:
        raise InvalidInput({"_schema": ["Give at least one day."]})
    if len(totals) > MAX_DAYS:
        raise InvalidInput({"_schema": [f"At most {MAX_DAYS} days at once."]})
    errors: dict[str, dict[str, list[str]]] = {}
    seen: set[dt.date] = set()
    for i, total in enumerate(totals):
        item = _total_errors(total, today)
        if total.day in seen:
            item.setdefault("day", []).append(DAY_TWICE)
        seen.add(total.day)
        if item:
            errors[str(i)] = item
    if errors:
        raise InvalidInput(errors)
    _store(actor, counter_id, totals)
    return _stored(counter_id, [t.day for t in totals])


def _store(actor: Actor, counter_id: int, totals: Sequence[DayTotal]) -> None:
    # One INSERT … ON CONFLICT (the primary key): two writers of the same day never make two rows,
    # the later one's value and author win.
    now = utcnow()
    rows = [{"counter_id": counter_id, "day": t.day, "results_total": t.results_total,
             "reported_by_user_id": actor.user_id, "reported_by_client_id": actor.client_id,
             "updated_at": now} for t in totals]
    upsert(CounterDailyTotal.__table__, rows, ("counter_id", "day"), add=())
    log.info("counter %s reported daily totals for %d day(s)", counter_id, len(rows))


def _stored(counter_id: int, days: list[dt.date]) -> list[CounterDailyTotal]:
    # populate_existing: the session may hold these rows as they were before the upsert.
    rows = list(db.session.scalars(sa.select(CounterDailyTotal).where(
        CounterDailyTotal.counter_id == counter_id, CounterDailyTotal.day.in_(days))
        .order_by(CounterDailyTotal.day).execution_options(populate_existing=True)))
    _name_reporters(rows)
    return rows


def list_totals(actor: Actor, start: dt.date, end: dt.date) -> list[CounterDailyTotal]:
    """The actor's counter's totals from ``start`` to ``end`` (both included), oldest first."""
    counter_id = reporting_counter(actor)
    errors: dict[str, list[str]] = {}
    if end < start:
        errors["to"] = ["Must not be before from."]
    elif (end - start).days + 1 > MAX_DAYS:
        errors["to"] = [f"At most {MAX_DAYS} days at once."]
    if errors:
        raise InvalidInput(errors, location="query")
    rows = list(db.session.scalars(sa.select(CounterDailyTotal).where(
        CounterDailyTotal.counter_id == counter_id, CounterDailyTotal.day.between(start, end))
        .order_by(CounterDailyTotal.day)))
    _name_reporters(rows)
    return rows


def _name_reporters(rows: list[CounterDailyTotal]) -> None:
    """Set ``reported_by`` on each row: {"kind": "user"|"api_client", "name": …} (two queries at most)."""
    user_ids = {r.reported_by_user_id for r in rows if r.reported_by_user_id}
    client_ids = {r.reported_by_client_id for r in rows if r.reported_by_client_id}
    users = dict(db.session.execute(sa.select(User.id, User.username).where(User.id.in_(user_ids))).all()) \
        if user_ids else {}
    clients = dict(db.session.execute(sa.select(ApiClient.id, ApiClient.name)
                                      .where(ApiClient.id.in_(client_ids))).all()) if client_ids else {}
    for r in rows:
        if r.reported_by_client_id:
            r.reported_by = {"kind": "api_client", "name": clients.get(r.reported_by_client_id)}
        elif r.reported_by_user_id:
            r.reported_by = {"kind": "user", "name": users.get(r.reported_by_user_id)}
        else:
            r.reported_by = None


@dataclass
class DayRow:
    """One day of the counter's page: results sent by post beside the total the counter reported."""

    day: dt.date
    sent_by_post: int
    results_total: int | None
    updated_at: dt.datetime | None = None

    @property
    def share(self) -> float | None:
        return self.sent_by_post / self.results_total if self.results_total else None


def recent_days(actor: Actor, today: dt.date, timezone: str, days: int = PAGE_DAYS) -> list[DayRow]:
    """The last ``days`` local days of the actor's counter, newest first."""
    counter_id = reporting_counter(actor)
    start = today - dt.timedelta(days=days - 1)
    sent = sent_by_post(counter_id, start, today, timezone)
    totals = {t.day: t for t in db.session.scalars(sa.select(CounterDailyTotal).where(
        CounterDailyTotal.counter_id == counter_id, CounterDailyTotal.day.between(start, today)))}
    rows = []
    for i in range(days):
        day = today - dt.timedelta(days=i)
        total = totals.get(day)
        rows.append(DayRow(day, sent.get(day, 0), total.results_total if total else None,
                           total.updated_at if total else None))
    return rows


def sent_by_post(counter_id: int, start: dt.date, end: dt.date, timezone: str) -> dict[dt.date, int]:
    """Orders for a result (to the citizen, or both ways) the counter created on each local day, in
    one GROUP BY. The day is found by comparing with each local midnight as a UTC time, so that it
    is exact on SQLite (which knows no time zones) and on PostgreSQL alike, and uses the
    (counter_id, created_at) index."""
    tz = ZoneInfo(timezone)
    n = (end - start).days + 1
    midnights = [dt.datetime.combine(start + dt.timedelta(days=i), dt.time(), tz) for i in range(n + 1)]
    o = DeliveryOrder
    offset = sa.case(*[(o.created_at < midnights[i + 1], i) for i in range(n)], else_=n)
    stmt = (sa.select(offset.label("i"), sa.func.count()).where(
        o.counter_id == counter_id, o.direction.in_(RESULT_DIRECTIONS),
        o.created_at >= midnights[0], o.created_at < midnights[-1]).group_by("i"))
    return {start + dt.timedelta(days=i): count for i, count in db.session.execute(stmt).all()}


# --- reporting areas -----------------------------------------------------------------------------

AREA_ROLES = (Role.ADMIN, Role.DISTRICT_OFFICER)


@dataclass(frozen=True)
class UnitRef:
    """A unit named by its code: a 2025 commune (``on`` None), or a commune or district valid on
    ``on``, a day before 1 Jul 2025."""

    level: UnitLevel
    code: str
    on: dt.date | None = None


def _check_area_actor(actor: Actor) -> None:
    if actor.client_id is not None:
        raise Forbidden("Counter systems cannot manage reporting areas.")
    if actor.role not in AREA_ROLES:
        raise Forbidden("Only administrators and district officers manage reporting areas.")


def allowed_communes(actor: Actor) -> set[int] | None:
    """The 2025 communes an actor's areas may hold (None: any). The same rule as the figures' scope
    (figures.scope_conditions): a district officer's unit and every 2025 commune that counts for it."""
    _check_area_actor(actor)
    if actor.role is Role.ADMIN:
        return None
    if actor.area_unit_id is None:
        return set()
    allowed = set(successor_communes([actor.area_unit_id]))
    unit = db.session.get(AdminUnit, actor.area_unit_id)
    if unit is not None and unit.level is UnitLevel.DISTRICT:
        # 2025 communes that came mostly from this former district count for it in the figures.
        allowed |= set(db.session.scalars(sa.select(ReportUnit.unit_id).where(
            ReportUnit.district_id == unit.id, ReportUnit.unit_id == ReportUnit.commune_id)))
    return allowed


def _visible(actor: Actor) -> sa.Select:
    stmt = sa.select(ReportArea).order_by(ReportArea.code)
    allowed = allowed_communes(actor)
    if allowed is not None:
        rac = report_area_communes
        outside = sa.exists().where(rac.c.area_id == ReportArea.id,
                                    rac.c.unit_id.not_in(sorted(allowed)) if allowed else sa.true())
        stmt = stmt.where(~outside)
    return stmt


def list_areas(actor: Actor) -> list[ReportArea]:
    """The areas the actor may see: all for an administrator; for a district officer, those whose
    communes all lie in their own area."""
    return list(db.session.scalars(_visible(actor).options(selectinload(ReportArea.communes))))


def get_area(actor: Actor, area_id: int) -> ReportArea:
    area = db.session.scalar(_visible(actor).where(ReportArea.id == area_id))
    if area is None:
        raise NotFound(f"No reporting area {area_id}.")
    return area


def resolve_units(refs: Sequence[UnitRef], today: dt.date) -> tuple[list[set[int]], dict[str, list[str]]]:
    """The 2025 communes each reference counts for, and errors by position ("3": [...])."""
    index = unit_index()
    errors: dict[str, list[str]] = {}
    seen: dict[int, int] = {}  # unit -> its position
    for i, ref in enumerate(refs):
        unit, problem = _find(index, ref, today)
        if problem:
            errors[str(i)] = [problem]
        elif unit in seen:
            errors[str(i)] = [f"Given twice (also item {seen[unit] + 1})."]
        else:
            seen[unit] = i
    if errors:
        return [], errors
    # Each unit (in the order of refs) with the units below it (a former district: its communes), all
    # mapped to 2025 communes in one query.
    below = {unit: _and_below(index, unit) for unit in seen}
    ensure_unit_map()
    communes = dict(db.session.execute(sa.select(ReportUnit.unit_id, ReportUnit.commune_id)
                                       .where(ReportUnit.unit_id.in_(set().union(*below.values())))).all())
    result = []
    for i, (ref, unit) in enumerate(zip(refs, below, strict=True)):
        ids = {communes[u] for u in below[unit] if u in communes}
        if not ids:
            errors[str(i)] = [f"{ref.level.value.capitalize()} {ref.code} has no communes."]
        result.append(ids)
    return result, errors


def _and_below(index: UnitIndex, unit_id: int) -> set[int]:
    """A unit and every unit below it, at any depth."""
    ids, frontier = {unit_id}, [unit_id]
    while frontier:
        frontier = [child.id for parent in frontier for child in index.children.get(parent, ())]
        ids.update(frontier)
    return ids


def _find(index: UnitIndex, ref: UnitRef, today: dt.date) -> tuple[int | None, str | None]:
    code = _norm_code(ref.code, ref.level) or ""
    if ref.level not in (UnitLevel.COMMUNE, UnitLevel.DISTRICT):
        return None, "Give communes or former districts."
    if ref.on is None:
        if ref.level is UnitLevel.DISTRICT:
            return None, (f"There are no districts since 1 Jul 2025: mark district {code} as legacy "
                          "(its communes as they were on 30 Jun 2025).")
        unit = index.find(UnitLevel.COMMUNE, code, today)
        return (unit.id, None) if unit else (None, f"Unknown commune code {code} (2025 structure).")
    if ref.on >= REFORM_DATE:
        return None, "A legacy code is looked up on a day before 1 Jul 2025."
    unit = index.find(ref.level, code, ref.on)
    if unit is None:
        return None, f"Unknown {ref.level.value} code {code} on {ref.on.isoformat()}."
    return unit.id, None


@dataclass(frozen=True)
class AreaInput:
    code: str
    name: str
    units: Sequence[UnitRef]


def create_area(actor: Actor, data: AreaInput, *, today: dt.date, ip: str | None = None) -> ReportArea:
    """A new reporting area; a district officer's must lie in their own area, and is theirs."""
    code, name, communes = _checked(data, allowed_communes(actor), today, exclude=None)
    area = ReportArea(code=code, name=name,
                      owner_unit_id=actor.area_unit_id if actor.role is Role.DISTRICT_OFFICER else None,
                      created_by_id=actor.user_id)
    area.communes = communes
    _flush_unique(area)
    record("report_area.create", actor=actor, object_type="report_area", object_id=area.id,
           after=_area_state(area), ip=ip)
    return area


def update_area(actor: Actor, area_id: int, data: AreaInput, *, today: dt.date,
                ip: str | None = None) -> ReportArea:
    """Replace an area's code, name and communes (the actor must see it before and after)."""
    area = get_area(actor, area_id)
    before = _area_state(area)
    area.code, area.name, area.communes = _checked(data, allowed_communes(actor), today, exclude=area.id)
    _flush_unique(area)
    after = _area_state(area)
    if changed := [k for k in after if after[k] != before[k]]:
        record("report_area.update", actor=actor, object_type="report_area", object_id=area.id,
               before={k: before[k] for k in changed}, after={k: after[k] for k in changed}, ip=ip)
    return area


def delete_area(actor: Actor, area_id: int, *, ip: str | None = None) -> None:
    area = get_area(actor, area_id)
    record("report_area.delete", actor=actor, object_type="report_area", object_id=area.id,
           before=_area_state(area), ip=ip)
    db.session.delete(area)
    db.session.flush()


def _area_state(area: ReportArea) -> dict[str, object]:
    """An area as the audit log keeps it (the communes by code)."""
    return {"code": area.code, "name": area.name, "communes": sorted(u.code for u in area.communes)}


def _area_code(code: str) -> str:
    return code.strip().upper()


CODE_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")


def _checked(data: AreaInput, allowed: set[int] | None, today: dt.date,
             exclude: int | None) -> tuple[str, str, list[AdminUnit]]:
    """The area's code, name and communes, or InvalidInput naming each wrong field (Forbidden when a
    unit lies outside ``allowed``)."""
    errors: dict[str, object] = {}
    code = _area_code(data.code)
    if not CODE_PATTERN.fullmatch(code):
        errors["code"] = ["Use 1-32 letters, digits, dots, dashes or underscores, starting with a letter "
                          "or digit."]
    elif _code_taken(code, exclude):
        errors["code"] = [f"An area with code {code} exists already."]
    name = " ".join(unicodedata.normalize("NFC", data.name or "").split())
    if not name:
        errors["name"] = ["Must not be empty."]
    elif len(name) > 200:
        errors["name"] = ["Longer than 200 characters."]
    if not data.units:
        errors["units"] = ["Give at least one commune or former district."]
        per_ref: list[set[int]] = []
    else:
        per_ref, unit_errors = resolve_units(data.units, today)
        if unit_errors:
            errors["units"] = unit_errors
    if errors:
        raise InvalidInput(errors)
    if allowed is not None:
        outside = [str(i) for i, ids in enumerate(per_ref) if not ids <= allowed]
        if outside:
            raise Forbidden("Some of these units lie outside your area: a district officer's areas hold "
                            "only communes of their own area.", units=outside)
    ids = set().union(*per_ref)
    # In Vietnamese order, as a GET answers them (reports.schemas.AreaOut) and the pages show them.
    return code, name, sorted_vi(db.session.scalars(sa.select(AdminUnit).where(AdminUnit.id.in_(ids))),
                                 key=lambda u: u.name)


def _code_taken(code: str, exclude: int | None) -> bool:
    stmt = sa.select(ReportArea.id).where(sa.func.upper(ReportArea.code) == code)
    if exclude is not None:
        stmt = stmt.where(ReportArea.id != exclude)
    return db.session.scalar(stmt) is not None


def _flush_unique(area: ReportArea) -> None:
    # Two offices saving the same code at once: the unique index decides, the loser hears why.
    try:
        with db.session.begin_nested():
            db.session.add(area)
            db.session.flush()
    except IntegrityError:
        raise InvalidInput({"code": [f"An area with code {area.code} exists already."]}) from None


def refs_from_text(text: str, today: dt.date) -> list[tuple[str, UnitRef]]:
    """Codes typed in a text box (separated by spaces, commas, semicolons or lines), each with what it
    names: up to 3 digits a former district; 4-5 digits a 2025 commune or, when no 2025 commune has
    that code, a commune before 1 Jul 2025. "cũ:" or "old:" before a code forces the former unit."""
    index = unit_index()
    result = []
    for token in re.split(r"[\s,;]+", text or ""):
        if not token:
            continue
        raw = token
        legacy = False
        prefix, sep, rest = token.partition(":")
        if sep and prefix.strip().lower() in ("cũ", "cu", "old", "legacy"):
            legacy, token = True, rest
        if token.isdigit() and len(token) <= CODE_WIDTH[UnitLevel.DISTRICT]:
            result.append((raw, UnitRef(UnitLevel.DISTRICT, token, LAST_LEGACY_DAY)))
            continue
        code = _norm_code(token, UnitLevel.COMMUNE) or ""
        if not legacy and index.find(UnitLevel.COMMUNE, code, today) is None \
                and index.find(UnitLevel.COMMUNE, code, LAST_LEGACY_DAY) is not None:
            legacy = True
        result.append((raw, UnitRef(UnitLevel.COMMUNE, token, LAST_LEGACY_DAY if legacy else None)))
    return result
