"""The reports dashboard for district and province offices (pages under /reports): the figures of
every unit of a level for a period, drill-down to the orders, charts and exports.

Thin: the figures come from reports.figures, the charts from reports.charts, the files from
reports.exports. This module reads the query string (every choice lives there, so that any view can
be bookmarked or sent by e-mail) and shapes the links between views.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from babel.numbers import get_decimal_symbol, get_group_symbol
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import force_locale, format_decimal, format_percent, get_locale, gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup, escape
from marshmallow import EXCLUDE, Schema, ValidationError, validate
from marshmallow import fields as mf

from delivery_service import rules
from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import Actor
from delivery_service.db import utcnow
from delivery_service.extensions import db
from delivery_service.orders.models import DeliveryOrder, window_between
from delivery_service.orders.services import local_today
from delivery_service.orders.status import TERMINAL
from delivery_service.orgs.models import Counter, PostalRoute, PostOffice
from delivery_service.orgs.services import route_code
from delivery_service.reports import charts, exports
from delivery_service.reports.bands import colour, colour_of
from delivery_service.reports.bands import label as band_label
from delivery_service.reports.figures import (
    CHART_MEASURES,
    READERS,
    Filters,
    Level,
    Report,
    Row,
    figures,
    orders_query,
    unit_name,
    weekly_trend,
)
from delivery_service.reports.models import ReportArea
from delivery_service.units.services import unit_index
from delivery_service.web.access import page_actor, roles_required
from delivery_service.web.display import format_day, format_moment
from delivery_service.web.views import DESK_ROLES

bp = Blueprint("reports", __name__, url_prefix="/reports")

MAX_DAYS = 366
TREND_WEEKS = 8  # the trend chart shows at least this many weeks, ending with the period's
ORDERS_PER_PAGE = 50
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
MAX_ID = 2**53
FILTERS = tuple(f.name for f in fields(Filters))  # the same names as the levels
# Where a unit's row leads: the next level down, filtered by the unit (a route's row: its orders).
DRILL = {Level.PROVINCE: Level.DISTRICT, Level.DISTRICT: Level.COMMUNE, Level.COMMUNE: Level.ROUTE,
         Level.AREA: Level.ROUTE, Level.POST_OFFICE: Level.ROUTE, Level.COUNTER: Level.ROUTE,
         Level.COURIER: Level.ROUTE}
LEVELS = {
    Level.PROVINCE: _l("Province"),
    Level.DISTRICT: _l("District"),
    Level.COMMUNE: _l("Commune / ward"),
    Level.AREA: _l("Reporting area"),
    Level.POST_OFFICE: _l("Post office"),
    Level.ROUTE: _l("Postal route"),
    Level.COUNTER: _l("Counter"),
    Level.COURIER: _l("Courier"),
}
# The row of what belongs to no unit of the level (figures' key None).
NO_UNIT = {
    Level.ROUTE: _l("Not on any route"),
    Level.COURIER: _l("No courier (counter and post-office work)"),
    Level.POST_OFFICE: _l("Not on any post office's route"),
    Level.DISTRICT: _l("No former district"),
}
BAND_TONES = {"green": "done", "yellow": "progress", "orange": "warn", "red": "bad"}
SVG_HEADERS = {"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
FILE_HEADERS = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


readers_required = roles_required(*READERS)  # figures.READERS


# --- the query string -----------------------------------------------------------------------------

def _unit_id() -> mf.Integer:
    return mf.Integer(load_default=None, strict=False, validate=validate.Range(1, MAX_ID))


class ReportQuery(Schema):
    """The query string of every dashboard address; unknown keys (``lang``) are left alone."""

    class Meta:
        unknown = EXCLUDE

    start = mf.Date(load_default=None, validate=validate.Range(FIRST_DAY, LAST_DAY))
    end = mf.Date(load_default=None, validate=validate.Range(FIRST_DAY, LAST_DAY))
    level = mf.Enum(Level, by_value=True, load_default=Level.DISTRICT)
    page = mf.Integer(load_default=1, validate=validate.Range(1, 1_000_000))
    province = _unit_id()
    district = _unit_id()
    commune = _unit_id()
    area = _unit_id()
    post_office = _unit_id()
    route = _unit_id()
    counter = _unit_id()
    courier = _unit_id()


@dataclass(frozen=True)
class Query:
    """What a dashboard address asks for."""

    start: dt.date
    end: dt.date
    level: Level = Level.DISTRICT
    filters: Filters = Filters()
    page: int = 1

    def args(self, **changes: Any) -> dict[str, Any]:
        """This address's query string with ``changes`` (a None value drops the key)."""
        args: dict[str, Any] = {"start": self.start.isoformat(), "end": self.end.isoformat(),
                                "level": self.level.value, **dict(self.filters.items())}
        if self.page > 1:
            args["page"] = self.page
        for key, value in changes.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = value
        return args


class BadQuery(Exception):
    """The query string cannot be read; ``messages`` say why, in the reader's language."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def this_week(today: dt.date) -> Query:
    return Query(today - dt.timedelta(days=today.weekday()), today)


def parse_query(raw: Mapping[str, str], today: dt.date) -> Query:
    """The Query of a query string; the period defaults to this week, Monday to today. Raises
    BadQuery for dates that cannot be read, a period that ends before it starts or is longer than
    MAX_DAYS, an unknown level or an id that is not a number."""
    try:
        data = ReportQuery().load({k: v for k, v in raw.items() if v.strip()})
    except ValidationError as exc:
        raise BadQuery([_message(name) for name in sorted(exc.messages)]) from None
    start, end = data["start"], data["end"]
    if end is None:
        end = today if start is None or start <= today else start
    if start is None:
        start = end - dt.timedelta(days=end.weekday())
    if end < start:
        raise BadQuery([gettext("The period ends (%(end)s) before it starts (%(start)s).",
                                end=format_day(end), start=format_day(start))])
    if (end - start).days + 1 > MAX_DAYS:
        raise BadQuery([gettext("A period can be at most %(days)s days long: choose a shorter one.",
                                days=MAX_DAYS)])
    filters = Filters(**{name: data[name] for name in FILTERS})
    return Query(start, end, data["level"], filters, data["page"])


def _message(field: str) -> str:
    if field == "start":
        return gettext("The start of the period is not a valid date: write it as YYYY-MM-DD, "
                       "for example 2026-03-02.")
    if field == "end":
        return gettext("The end of the period is not a valid date: write it as YYYY-MM-DD, "
                       "for example 2026-03-08.")
    if field == "level":
        return gettext("Unknown level of units: choose one from the list.")
    if field == "page":
        return gettext("Not a valid page number.")
    if field in FILTERS:
        return gettext("The filter “%(name)s” in the address is not a valid id.", name=LEVELS[Level(field)])
    return gettext("The address has a value that cannot be read: %(name)s.", name=field)


def _query() -> Query:
    """The address's query, its filters within what the reader may see: a filter naming a route,
    counter, office or courier beyond the reader's scope is refused as the figures API refuses it,
    not shown by name (its figures would be empty, but its name, a person's among them, would show)."""
    from delivery_service.reports.figures_api import in_scope  # it imports this module

    q = parse_query(request.args, local_today())
    actor = page_actor()
    outside = [name for name, value in q.filters.items() if not in_scope(actor, Level(name), value)]
    if outside:
        raise BadQuery([gettext("The filter “%(name)s” in the address is outside what you may see.",
                                name=LEVELS[Level(name)]) for name in outside])
    return q


def _bad_query(exc: BadQuery, template: str, endpoint: str):
    """The page again, with what is wrong and the form to fix it (400)."""
    today = local_today()
    typed = {"start": request.args.get("start", ""), "end": request.args.get("end", "")}
    return render_template(template, errors=exc.messages,
                           **_common(this_week(today), today, endpoint, form=typed)), 400


# --- names and links ------------------------------------------------------------------------------

def _admin_unit(unit_id: int | None) -> str | None:
    unit = unit_index().by_id.get(unit_id) if unit_id else None
    return unit_name(unit.kind, unit.name) if unit else None


def _name(name: str, value: int) -> str:
    """The name of the unit, area, office, route, counter or courier a filter names."""
    text: str | None
    if name in ("province", "district", "commune"):
        text = _admin_unit(value)
    elif name == "route":
        found = db.session.get(PostalRoute, value)
        text = f"{found.code} – {found.name}" if found else None
    else:
        model, attr = {"area": (ReportArea, "name"), "post_office": (PostOffice, "name"),
                       "counter": (Counter, "name"), "courier": (User, "full_name")}[name]
        found = db.session.get(model, value)
        text = getattr(found, attr) if found else None
    return text or f"#{value}"


def scope_label(actor: Actor) -> Any:
    """What the reader may see, in words: a name, or a lazy string."""
    if actor.role is Role.DISTRICT_OFFICER:
        return _admin_unit(actor.area_unit_id) or _l("No area assigned")
    if actor.role is Role.SUPERVISOR and actor.post_office_id:
        return _name("post_office", actor.post_office_id)
    if actor.role is Role.COUNTER_STAFF and actor.counter_id:
        return _name("counter", actor.counter_id)
    return _l("The whole service")


def row_label(level: Level, row: Row) -> str:
    if row.key is None:
        return str(NO_UNIT.get(level, _l("Unknown")))
    return row.label


def drill_url(q: Query, row: Row) -> str | None:
    """The next step down from a unit's row: the next level filtered by it, or a route's orders."""
    if row.key is None:
        return None
    if q.level is Level.ROUTE:
        return url_for("reports.orders", **q.args(route=row.key))
    return url_for("reports.index", **q.args(level=DRILL[q.level].value, **{q.level.value: row.key}))


def _crumbs(q: Query, endpoint: str) -> list[dict[str, str]]:
    """The active filters with their names, each with the address that drops it."""
    return [{"what": str(LEVELS[Level(name)]), "name": _name(name, value),
             "remove": url_for(endpoint, **q.args(**{name: None, "page": None}))}
            for name, value in q.filters.items()]


def _periods(q: Query, today: dt.date, endpoint: str) -> list[dict[str, Any]]:
    monday = today - dt.timedelta(days=today.weekday())
    spans = [
        (gettext("This week"), monday, today),
        (gettext("Last week"), monday - dt.timedelta(days=7), monday - dt.timedelta(days=1)),
        (gettext("This month"), today.replace(day=1), today),
        (gettext("Last 30 days"), today - dt.timedelta(days=29), today),
        (gettext("This year"), today.replace(month=1, day=1), today),
    ]
    return [{"label": label, "current": (a, b) == (q.start, q.end),
             "url": url_for(endpoint, **q.args(start=a.isoformat(), end=b.isoformat(), page=None))}
            for label, a, b in spans]


def _common(q: Query, today: dt.date, endpoint: str, form: dict[str, str] | None = None) -> dict[str, Any]:
    """What the pages share: the period form (``form``: the dates as typed, when they were refused),
    the quick periods, the filters, the formatters."""
    form = form or {"start": q.start.isoformat(), "end": q.end.isoformat()}
    return {"q": q, "today": today, "endpoint": endpoint, "form": form,
            "periods": _periods(q, today, endpoint),
            "levels": LEVELS, "scope": scope_label(page_actor()), "crumbs": _crumbs(q, endpoint),
            "clear_filters": url_for(endpoint, **q.args(page=None, **dict.fromkeys(FILTERS))),
            "fmt_count": format_decimal,
            "fmt_rate": fmt_rate, "fmt_hours": fmt_hours, "band_of": colour_of, "band_tones": BAND_TONES,
            "band_label": band_label}


# --- formatting for the page -----------------------------------------------------------------------

def fmt_rate(value: float | None) -> str:
    return "—" if value is None else format_percent(value, "#,##0.0%")


def fmt_hours(hours: float | None) -> str:
    """Hours up to two days, then days, one decimal: "8,0 giờ", "2,8 ngày"; "—" without any."""
    if hours is None:
        return "—"
    if hours < 48:
        return gettext("%(num)s h", num=format_decimal(hours, "#,##0.0"))
    return gettext("%(num)s days", num=format_decimal(hours / 24, "#,##0.0"))


# --- pages ----------------------------------------------------------------------------------------

@bp.get("/")
@readers_required
def index():
    """The figures of every unit of a level for a period, with totals, bands, charts and links down."""
    try:
        q = _query()
    except BadQuery as exc:
        return _bad_query(exc, "reports/dashboard.html", "reports.index")
    report = figures(page_actor(), q.start, q.end, q.level, q.filters, memo=True)
    rates = [r for r in report.rows if r.delivery_rate is not None]
    common = _common(q, local_today(), "reports.index")
    show_share = any(r.post_share is not None or r.share_inconsistent for r in [*report.rows, report.total])
    return render_template(
        "reports/dashboard.html", report=report, errors=[], rows=report.rows,
        rows_html=_rows_html(report, q, show_share),
        chart_cut=len(rates) > charts.UNIT_LIMIT, charted=len(rates),
        chart_limit=charts.UNIT_LIMIT, show_share=show_share,
        share_cell=lambda row: share_cell(row, format_decimal, TableFormats(rules.current().report_bands)),
        pending_note=_pending_note(report), **common)


def _rows_html(report: Report, q: Query, show_share: bool) -> Markup:
    """The table's rows, rendered once per report, language, query and colour bands: a report
    reused by ``figures(memo=True)`` keeps its rows' HTML. Written here rather than by a template:
    hundreds of rows of thirteen cells through Jinja macros and Babel cost as much as computing the
    figures (0.3 ms a row); each cell is formatted once by ``TableFormats`` and joined."""
    bands = rules.current().report_bands
    key = (str(get_locale()), tuple(sorted(q.args().items())), show_share,
           tuple(sorted((name, tuple(limits)) for name, limits in bands.items())))
    with _ROWS_LOCK:
        html = report.rendered.pop(key, None)
        if html is not None:
            report.rendered[key] = html  # the most recently used last
    if html is None:
        html = Markup("\n".join(_rendered_rows(report, q, show_share, bands, key)))
        with _ROWS_LOCK:
            report.rendered[key] = html
            while len(report.rendered) > RENDERED_KEPT:  # a kept report's pages, sorts, languages
                report.rendered.pop(next(iter(report.rendered)))
    return html


ROWS_KEPT = 8  # tables whose rows' HTML a process keeps for the next report of the same query
RENDERED_KEPT = 4  # the rows' HTML a kept report keeps (its pages, languages…), the last used
_ROWS_LOCK = threading.Lock()  # a process's request threads share them


def _rendered_rows(report: Report, q: Query, show_share: bool, bands: Mapping[str, Any],
                   key: tuple[Any, ...]) -> list[str]:
    """Each row's HTML. A row whose figures, name and key are those of a row of the last table
    rendered for the same language, query and bands (a report recomputed after a change: most units
    did not change) is not written again: its HTML depends on nothing else."""
    kept = current_app.extensions.setdefault("report_rows_html", {})
    before: dict[tuple[Any, ...], str] = kept.get(key, {})
    now: dict[tuple[Any, ...], str] = {}
    made: tuple[TableFormats, Callable[[Row], str | None]] | None = None
    out = []
    for row in report.rows:
        sign = (row.key, row.label, row.code, row.received, row.received_results, row.delivered, row.on_time,
                row.failed_attempts, row.returned, row.cancelled, row.abandoned, row.open, row.overdue,
                row.results_total, *row.histogram)
        html = before.get(sign)
        if html is None:
            if made is None:
                made = TableFormats(bands), _drill_links(q)
            html = _row_html(row, row_label(q.level, row), made[1](row), made[0], show_share)
        now[sign] = html
        out.append(html)
    with _ROWS_LOCK:
        kept.pop(key, None)
        kept[key] = now  # the most recent last
        while len(kept) > ROWS_KEPT:
            kept.pop(next(iter(kept)))
    return out


def _drill_links(q: Query) -> Callable[[Row], str | None]:
    """``drill_url`` for every row of a table: the address is built once with a stand-in for the
    key, which each row replaces (url_for for each of hundreds of rows was a tenth of the page)."""
    stand_in = "0000000000"
    if q.level is Level.ROUTE:
        shape = url_for("reports.orders", **q.args(route=stand_in))
    else:
        shape = url_for("reports.index", **q.args(level=DRILL[q.level].value, **{q.level.value: stand_in}))
    if shape.count(stand_in) != 1:  # cannot happen with numeric ids; the slow way just in case
        return lambda row: drill_url(q, row)
    before, after = shape.split(stand_in)
    return lambda row: None if row.key is None else f"{before}{int(row.key)}{after}"


def _row_html(row: Row, label: str, url: str | None, f: TableFormats, show_share: bool) -> str:
    name = f'<a href="{escape(url)}">{escape(label)}</a>' if url else str(escape(label))
    if row.code:
        name += f' <span class="muted">{escape(row.code)}</span>'
    count = f.count
    overdue = f'<span class="mark mark-bad">{count(row.overdue)}</span>' if row.overdue else "0"
    key = "" if row.key is None else escape(str(row.key))
    cells = [f'<tr data-key="{key}">', f'<th scope="row">{name}</th>',
             f"<td>{count(row.received)}</td>", f"<td>{count(row.delivered)}</td>",
             f"<td>{count(row.on_time)}</td>", f"<td>{count(row.failed_attempts)}</td>",
             f"<td>{count(row.returned)}</td>", f"<td>{count(row.cancelled)}</td>",
             f"<td>{count(row.open)}</td>", f"<td>{overdue}</td>",
             f.rate_cell("delivery_rate", row.delivery_rate), f.rate_cell("on_time_rate", row.on_time_rate),
             f"<td>{f.hours(row.median_hours)}</td>", f"<td>{f.hours(row.p90_hours)}</td>"]
    if show_share:
        cells.append(share_cell(row, count, f))
    cells.append("</tr>")
    return "".join(cells)


def share_cell(row: Row, count: Callable[[int], str], f: TableFormats) -> Markup:
    """The share sent by post, banded; where more went by post than the counter's reported total, no
    share and no band: the figures and what to check."""
    if not row.share_inconsistent:
        return Markup(f.rate_cell("post_share", row.post_share))
    text = gettext("check the counter's total of results (%(sent)s sent by post, total reported %(total)s)",
                   sent=count(row.received_results), total=count(row.results_total or 0))
    return Markup('<td class="rate share-inconsistent"><span class="badge badge-bad">&gt; 100%</span> {}</td>'
                  ).format(text)


class TableFormats:
    """The dashboard's cell formats for the reader's language, as fmt_count, fmt_rate, fmt_hours and
    the ``rate_cell`` macro write them, without a Babel call per cell: numbers are rounded as Babel
    rounds them (the value's shortest decimal form, half to even) and written with the locale's
    symbols. Checked against Babel when made; a locale that differs is formatted by Babel itself."""

    def __init__(self, bands: Mapping[str, Any]) -> None:
        locale = get_locale()
        self.bands = {name: tuple(limits) for name, limits in bands.items()}
        group, decimal = get_group_symbol(locale), get_decimal_symbol(locale)
        self._symbols = str.maketrans({",": group, ".": decimal})
        self._percent = format_percent(0, "#,##0.0%").replace(self._fixed(0, 1), "", 1)
        self._hour_text, self._day_text = gettext("%(num)s h"), gettext("%(num)s days")
        self._labels = {name: band_label(name) for name in BAND_TONES}
        self._babel = False
        self._babel = not self._agrees()

    def _fixed(self, value: Any, places: int) -> str:
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
        return f"{exact.quantize(_QUANTUM[places]):,.{places}f}".translate(self._symbols)

    def count(self, value: int) -> str:
        return format_decimal(value) if self._babel else f"{value:,}".translate(self._symbols)

    def _rate(self, value: float) -> str:
        if self._babel:
            return format_percent(value, "#,##0.0%")
        return self._fixed(Decimal(str(value)).scaleb(2), 1) + self._percent

    def _one_decimal(self, value: float) -> str:
        return format_decimal(value, "#,##0.0") if self._babel else self._fixed(value, 1)

    def rate(self, value: float | None) -> str:
        return "—" if value is None else self._rate(value)

    def hours(self, hours: float | None) -> str:
        if hours is None:
            return "—"
        if hours < 48:
            return self._hour_text % {"num": self._one_decimal(hours)}
        return self._day_text % {"num": self._one_decimal(hours / 24)}

    def rate_cell(self, rate: str, value: float | None) -> str:
        b = colour(value, self.bands[rate]) if rate in self.bands else colour_of(rate, value)
        if b is None:
            return f'<td class="rate">{self.rate(value)}</td>'
        return (f'<td class="rate band band-{b}">{self.rate(value)} '
                f'<span class="badge badge-{BAND_TONES[b]}">{escape(self._labels[b])}</span></td>')

    def _agrees(self) -> bool:
        samples = (0, 7, 1234, 1234567)
        fractions = (0.0, 0.05, 0.25, 0.6665, 1.0, 12.35, 1234.25)
        return (all(self.count(n) == format_decimal(n) for n in samples)
                and all(self._rate(v) == format_percent(v, "#,##0.0%") for v in fractions)
                and all(self._one_decimal(v) == format_decimal(v, "#,##0.0") for v in fractions))


_QUANTUM = {0: Decimal(1), 1: Decimal("0.1")}


def _pending_note(report: Report) -> str | None:
    if report.pending_events <= 0:
        return None
    return ngettext("Figures are as of the last counted event (no. %(event)s); %(num)s more event is "
                    "still being counted.",
                    "Figures are as of the last counted event (no. %(event)s); %(num)s more events are "
                    "still being counted.", report.pending_events, event=report.as_of_event)


@bp.get("/orders")
@readers_required
def orders():
    """The orders behind a row (the drill-down's last step), 50 a page, without personal data."""
    try:
        q = _query()
    except BadQuery as exc:
        return _bad_query(exc, "reports/orders.html", "reports.orders")
    stmt = orders_query(page_actor(), q.start, q.end, q.filters)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery()))
    pages = max(1, math.ceil(total / ORDERS_PER_PAGE))
    page_stmt = stmt.limit(ORDERS_PER_PAGE).offset((q.page - 1) * ORDERS_PER_PAGE)
    return render_template(
        "reports/orders.html", errors=[], lines=list(order_lines(page_stmt, local_today())), total=total,
        pages=pages, can_open=current_user.role in DESK_ROLES,
        back=url_for("reports.index", **q.args(
            route=None, page=None, level=Level.ROUTE.value if q.filters.route else q.level.value)),
        page_url=lambda n: url_for("reports.orders", **q.args(page=n if n > 1 else None)),
        **_common(q, local_today(), "reports.orders"))


def order_lines(stmt: sa.Select, today: dt.date) -> Iterator[exports.OrderLine]:
    """The orders of ``stmt`` as list lines: only the columns shown are read (no recipient data)."""
    o = DeliveryOrder
    cols = stmt.with_only_columns(o.item_id, o.status, o.direction, o.commune_id, o.route_id, o.created_at,
                                  o.due_date, o.window_from_min, o.window_to_min, maintain_column_froms=False)
    for (item_id, status, direction, commune_id, route_id, created_at, due, window_from,
         window_to) in db.session.execute(cols):
        done = status in TERMINAL[direction]
        yield exports.OrderLine(item_id=item_id, status=status, commune=_admin_unit(commune_id) or "",
                                route=route_code(route_id) or "", received_at=format_moment(created_at),
                                due_date=due, overdue=not done and due is not None and due < today,
                                window=window_between(window_from, window_to))


@bp.get("/dashboard.css")
def stylesheet():
    """The dashboard's few styles (the table's layout, the bands), next to app.css."""
    return Response(render_template("reports/dashboard.css"), mimetype="text/css",
                    headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


# --- charts ---------------------------------------------------------------------------------------

@bp.get("/chart/trend.svg")
@readers_required
def trend_chart():
    """Received, delivered and the delivery rate per week of the period, and of the weeks before
    it when it is shorter than TREND_WEEKS (a trend needs a few weeks to say anything) (SVG)."""
    q = _query_or_400()
    monday = q.end - dt.timedelta(days=q.end.weekday())
    start = min(q.start, monday - dt.timedelta(weeks=TREND_WEEKS - 1))
    weeks = [charts.Week(week, row.received, row.delivered, row.delivery_rate)
             for week, row in weekly_trend(page_actor(), start, q.end, q.filters, memo=True,
                                              measures=CHART_MEASURES)]
    subtitle = f"{format_day(start)} – {format_day(q.end)}"
    return Response(charts.trend_svg(weeks, subtitle), mimetype="image/svg+xml", headers=SVG_HEADERS)


@bp.get("/chart/units.svg")
@readers_required
def units_chart():
    """The delivery rate of each unit of the level, coloured by band (SVG)."""
    q = _query_or_400()
    report = figures(page_actor(), q.start, q.end, q.level, q.filters, memo=True)
    limits = rules.current().report_bands["delivery_rate"]  # as colour_of reads them, once
    with force_locale("vi"):  # the images are Vietnamese for everyone
        bars = [charts.Bar(row_label(q.level, row), rate, colour(rate, limits))
                for row in report.rows if (rate := row.delivery_rate) is not None]
    return Response(charts.units_svg(bars, _period_vi(q)), mimetype="image/svg+xml", headers=SVG_HEADERS)


def _query_or_400() -> Query:
    """The query of a file or a chart; a bad one answers the error page with what is wrong (the messages
    are in the reader's language already, as the dashboard shows them)."""
    try:
        return _query()
    except BadQuery as exc:
        abort(Response(render_template("error.html", code=400, message=" ".join(exc.messages),
                                       translated=True), status=400))


def _period_vi(q: Query) -> str:
    return f"{format_day(q.start)} – {format_day(q.end)}"


# --- exports --------------------------------------------------------------------------------------

@bp.get("/export.<any(csv, xlsx):fmt>")
@readers_required
def export(fmt: str):
    """The dashboard's table as CSV or Excel, with a header saying the period and the scope."""
    q = _query_or_400()
    actor = page_actor()
    report = figures(actor, q.start, q.end, q.level, q.filters)
    header = _file_header(q, actor) + [
        (_l("Figures as of event no."), str(report.as_of_event)),
        (_l("Events still being counted"), str(report.pending_events)),
    ]
    bands = rules.current().report_bands

    def label_of(row: Row) -> str:
        return exports.bilingual(NO_UNIT.get(q.level, _l("Unknown"))) if row.key is None else row.label

    name = exports.filename(q.level.value, q.start, q.end, fmt)
    if fmt == "csv":
        # (Werkzeug adds "; charset=utf-8" to text types itself: naming it here sent it twice)
        body, mimetype = exports.report_csv(report, header, bands, label_of), "text/csv"
    else:
        body = exports.report_xlsx(report, header, bands, label_of)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, mimetype=mimetype, headers={**FILE_HEADERS, **_attachment(name)})


@bp.get("/orders.csv")
@readers_required
def orders_export():
    """The drill-down's orders as CSV (every page), streamed; no personal data."""
    q = _query_or_400()
    actor = page_actor()
    stmt = orders_query(actor, q.start, q.end, q.filters).execution_options(yield_per=1000)
    body = exports.orders_csv(_file_header(q, actor, level=False), order_lines(stmt, local_today()))
    name = exports.filename("don", q.start, q.end, "csv")
    return Response(stream_with_context(body), mimetype="text/csv",
                    headers={**FILE_HEADERS, **_attachment(name)})


def _file_header(q: Query, actor: Actor, level: bool = True) -> list[tuple[Any, str]]:
    own = scope_label(actor)
    scope = [own if isinstance(own, str) else exports.bilingual(own)]
    scope += [f"{exports.bilingual(LEVELS[Level(name)])}: {_name(name, value)}"
              for name, value in q.filters.items()]
    lines: list[tuple[Any, str]] = [
        (_l("Report"), exports.bilingual(_l("Results of administrative procedures delivered by post"))),
        (_l("Period"), _period_vi(q)),
    ]
    if level:
        lines.append((_l("Units by"), exports.bilingual(LEVELS[q.level])))
    lines += [(_l("Scope"), "; ".join(scope)),
              (_l("Exported at"), format_moment(utcnow()))]
    return lines


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}
