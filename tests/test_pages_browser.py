"""Every staff page in a real browser, as each role, under the app's own Content-Security-Policy.

Playwright drives Debian's chromium at a phone's width (360 px) against the service running in a
thread on the test database, SQLite and PostgreSQL. The pages come from the app's url_map: every GET
rule without arguments, and the rules with arguments filled with ids of demo data made here (an
order, a route's run and coverage, a print job, an import, a week of weekly reports, a citizen's
opt-out link), plus a search that lists several orders over two pages. A page fails on any console
error, CSP violation, failed or refused request of its own, or when it is wider than the 360 px
viewport; a page that answers 5xx fails without being opened. The manifest flow of /counter/labels
is clicked through: tick two items (one printed, one not), print the handover manifest, get a PDF.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import DEMO_PASSWORD
from flask import Flask
from test_courier_browser import browser, live_server  # noqa: F401  (fixtures)
from web_helpers import make_order

from delivery_service.accounts.models import User
from delivery_service.accounts.services import Actor
from delivery_service.extensions import db
from delivery_service.notifications.services import optout_token
from delivery_service.orders.services import local_today
from delivery_service.orgs.models import PostalRoute
from delivery_service.printing import services as printing
from delivery_service.printing.models import Manifest, PrintJob, manifest_items
from delivery_service.reports import weekly
from delivery_service.reports.models import WeeklyReport
from delivery_service.routing.services import sequence_run
from delivery_service.web import views as web_views

ROLES = ("counter", "courier", "supervisor", "district", "admin")
# Search result pages (no diacritics typed, two pages at SEARCH_PAGE_SIZE 2) and what each must list.
SEARCHES = {"/counter/search?q=nguyen": ("Nguyễn", 'rel="next"'),
            "/counter/search?q=nguyen&page=2": ("Nguyễn", 'rel="prev"')}
WIDTH = 360
# Rules that are not pages: files, feeds and the API (its own tests cover it).
NOT_PAGES = ("/api/", "/static/", "/health", "/ready", "/courier/sw.js", "/courier/manifest.webmanifest",
             ".csv", ".xlsx", ".svg", ".css", ".pdf", "/reports/export.")
# Reports every CSP violation to the page's console, where the test collects it.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"} `
                + `at ${e.sourceFile || location.pathname}:${e.lineNumber}`);
});
"""

# What the policy blocks without a word until it is used: handlers, javascript: links, inline code.
INLINE_CODE = """() => [...document.querySelectorAll('*')].flatMap((e) => [
  ...[...e.attributes].filter((a) => a.name.startsWith('on')).map((a) => `inline handler ${a.name} on <${e.localName}>`),
  ...(e.matches('[href^="javascript:" i], [action^="javascript:" i], [formaction^="javascript:" i]')
      ? [`javascript: URL on <${e.localName}>`] : []),
  ...(e.matches('script:not([src]):not([type]), script:not([src])[type="module"], script:not([src])[type*="javascript"]')
      && e.textContent.trim() ? ['inline <script>'] : []),
  ...(e.hasAttribute('style') ? [`style attribute on <${e.localName}>`] : []),
])"""
TEMPLATES = Path(__file__).resolve().parents[1] / "delivery_service" / "templates"
INLINE_IN_TEMPLATE = re.compile(
    r"""\son[a-z]+\s*=|javascript:|<script(?![^>]*\s(?:src=|type="application/json"))|\sstyle\s*=""", re.I)


def test_no_template_has_inline_code():
    """The staff and tracking templates (the courier app is checked by its own tests)."""
    found = [f"{path.relative_to(TEMPLATES)}:{n}: {line.strip()}"
             for path in sorted(TEMPLATES.rglob("*.html")) if path.parent.name != "courier"
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
             if INLINE_IN_TEMPLATE.search(line)]
    assert not found, "\n".join(found)


def _actor(username: str) -> Actor:
    return Actor.of_user(db.session.scalar(sa.select(User).where(User.username == username)))


def _office_of(route_code: str) -> int:
    return db.session.scalar(sa.select(PostalRoute.post_office_id).where(PostalRoute.code == route_code))


def _user_id(username: str) -> int:
    return db.session.scalar(sa.select(User.id).where(User.username == username))


def _demo(app: Flask) -> dict[str, Any]:
    """Orders (printed and not), a print job, an import, a sequenced run, a week of weekly reports."""
    today = local_today()
    orders = [make_order(recipient={"name": name, "phone": "0905123456"},
                         dossier_code=f"H55.22-PAGES-{n:04d}", appointment_date=today.isoformat())
              for n, name in enumerate(["Nguyễn Thị Hoa", "Trần Văn Bình", "Lê Thị Cúc", "Phạm Minh Đức"])]
    items = [o.item_id for o in orders]
    for n, name in enumerate(["Nguyễn Văn An", "Nguyễn Thị Bích Ngọc"]):  # a search with two pages
        make_order(recipient={"name": name, "phone": "0905123457"}, dossier_code=f"H55.22-SEARCH-{n}",
                   appointment_date=today.isoformat())
    optout = optout_token("0905123456")
    counter_staff = _actor("counter")
    printing.print_label(counter_staff, items[0])
    db.session.commit()
    threshold = app.config["LABEL_ASYNC_THRESHOLD"]
    app.config["LABEL_ASYNC_THRESHOLD"] = 1  # two labels: a background job, whose page is walked
    try:
        job = printing.start_batch(counter_staff, counter_id=orders[0].counter_id, item_ids=items[2:]).job
    finally:
        app.config["LABEL_ASYNC_THRESHOLD"] = threshold
    assert job is not None
    sequence_run(_actor("admin"), "QNG-01", today)
    week_start, week_end = weekly.last_full_week(today)
    weekly.build_scopes(week_start, week_end, scopes=[weekly.Scope.parse("all")])
    db.session.remove()
    client = app.test_client()
    auth = {"Authorization": f"Bearer {app.config['DEMO_TOKEN']}"}
    template = client.get("/api/v1/imports/template.csv", headers=auth).data
    imported = client.post("/api/v1/imports", data={"file": (io.BytesIO(template), "orders.csv")},
                           headers=auth, content_type="multipart/form-data")
    assert imported.status_code == 202, imported.get_data(as_text=True)
    db.session.remove()
    return {"items": items, "unprinted": items[1], "job_id": job.id, "import_id": imported.json["id"],
            "week": week_start, "report_id": db.session.scalar(sa.select(WeeklyReport.id)), "optout": optout}


def _pages(app: Flask, demo: dict[str, Any]) -> list[str]:
    """Every page the app serves: GET rules without arguments, and those with arguments filled in."""
    item, week = demo["items"][0], demo["week"].isoformat()
    filled = {
        "counter.order": f"/counter/orders/{item}",
        "counter.import_result": f"/counter/imports/{demo['import_id']}",
        "printing.job": f"/counter/labels/jobs/{demo['job_id']}",
        "routing.run": "/routes/QNG-01/run",
        "routing.edit_coverage": "/routes/QNG-01/coverage",
        "routing_plan.show": f"/routing/plan/{_office_of('QNG-01')}/{local_today().isoformat()}",
        "tracking.item_form": f"/t/{item}",
        "admin_orgs.counter_edit": "/admin/counters/1", "admin_orgs.office_edit": "/admin/offices/1",
        "admin_orgs.route_edit": "/admin/routes/1",
        "admin_users.show": f"/admin/users/{_user_id('counter')}",
        "admin_users.edit": f"/admin/users/{_user_id('counter')}/edit",
        "notifications.optout_form": f"/t/optout/{demo['optout']}",
    }
    pages = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or any(part in rule.rule for part in NOT_PAGES):
            continue
        if not rule.arguments:
            pages.append(rule.rule)
        elif rule.endpoint in filled:
            pages.append(filled[rule.endpoint])
    pages += [f"/reports/weekly/?week={week}", f"/routes/QNG-01/run?date={local_today().isoformat()}",
              "/reports/orders?level=province&unit=51", f"/counter/search?q={item}",
              "/reports/?view=routes", *SEARCHES]
    return sorted(set(pages))


class Watch:
    """What went wrong on the page since the last ``take``: console errors, CSP violations (sent to
    the console by CSP_LISTENER), failed requests and HTTP errors of the page's own resources."""

    def __init__(self, page: Any, origin: str) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: self.problems.append(f"console {m.type}: {m.text} at {m.location}")
                if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}")
                if r.url.startswith(origin) else None)
        page.on("response", lambda r: self.problems.append(f"HTTP {r.status}: {r.url}")
                if r.status >= 400 and r.url.startswith(origin) else None)

    def take(self) -> list[str]:
        found, self.problems = self.problems, []
        return found


def _log_in(page: Any, origin: str, username: str) -> None:
    page.goto(origin + "/login")
    page.fill("#username", username)
    page.fill("#password", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("load")
    assert "/login" not in page.url, f"{username} could not log in"


def _walk(page: Any, watch: Watch, origin: str, path: str) -> list[str]:
    """Open ``path``; the problems seen, with the page's width when wider than the viewport."""
    page.goto(origin + path, wait_until="load")
    page.wait_for_timeout(150)  # late console messages and module scripts
    problems = watch.take()
    # Inline handlers are refused only when they fire: find them in the DOM before anyone clicks.
    problems += page.evaluate(INLINE_CODE)
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > WIDTH:
        culprits = page.evaluate(
            """(w) => [...document.querySelectorAll('body *')]
                 .filter((e) => e.getBoundingClientRect().right > w + 1
                          && !e.closest('.table-wrap, pre, .scroll-x'))
                 .slice(0, 3).map((e) => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                          + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : ''))""",
            WIDTH)
        problems.append(f"{width} px wide at {WIDTH} px: {culprits}")
    return problems


def test_every_page_of_every_role_works_under_the_csp_at_360_px(app, live_server, browser, monkeypatch):  # noqa: F811
    monkeypatch.setattr(web_views, "SEARCH_PAGE_SIZE", 2)  # three "Nguyễn": two pages of results
    demo = _demo(app)
    pages = _pages(app, demo)
    shows = {**SEARCHES, f"/t/optout/{demo['optout']}": ("Xác nhận ngừng nhận tin",)}
    failures: dict[str, list[str]] = {}
    walked: dict[str, list[str]] = {}
    for role in ROLES:
        context = browser.new_context(viewport={"width": WIDTH, "height": 740}, locale="vi-VN",
                                      timezone_id="Asia/Ho_Chi_Minh", service_workers="block")
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()
        watch = Watch(page, live_server)
        try:
            _log_in(page, live_server, role)
            watch.take()
            walked[role] = []
            for path in pages:
                response = context.request.get(live_server + path, max_redirects=0)
                if response.status >= 500:
                    failures[f"{role} {path}"] = [f"HTTP {response.status}: {response.text()[:300]}"]
                    continue
                if response.status != 200 or not response.headers.get("content-type", "").startswith("text/html"):
                    continue  # not this role's page (403, 404, a redirect to log in) or not a page
                walked[role].append(path)
                problems = _walk(page, watch, live_server, path)
                html = page.content()
                problems += [f"does not show {part!r}" for part in shows.get(path, ()) if part not in html]
                if problems:
                    failures[f"{role} {path}"] = problems
        finally:
            context.close()
    print("\npages walked per role:")
    for role, paths in walked.items():
        print(f"  {role} ({len(paths)}): {' '.join(paths)}")
    assert walked["counter"] and "/counter/labels" in walked["counter"]
    assert "/reports/weekly/" in walked["district"] and "/routes" in walked["supervisor"]
    assert set(SEARCHES) <= set(walked["counter"]) and f"/t/optout/{demo['optout']}" in walked["counter"]
    assert not failures, "\n".join(f"{where}: {problem}" for where, problems in failures.items()
                                   for problem in problems)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_manifest_of_ticked_items_printed_or_not_from_the_labels_page(app, live_server, browser):  # noqa: F811
    today = local_today()
    orders = [make_order(dossier_code=f"H55.22-BAG-{n}", appointment_date=today.isoformat()) for n in range(3)]
    printed, unprinted = orders[0].item_id, orders[1].item_id
    printing.print_label(_actor("counter"), printed)
    db.session.commit()
    db.session.remove()
    context = browser.new_context(viewport={"width": WIDTH, "height": 740}, locale="vi-VN")
    context.add_init_script(CSP_LISTENER)
    page = context.new_page()
    watch = Watch(page, live_server)
    try:
        _log_in(page, live_server, "counter")
        page.goto(live_server + "/counter/labels")
        rows = page.locator("tbody tr")
        assert page.locator(f'tr[data-item="{printed}"]').get_attribute("data-printed") == "1"
        assert page.locator(f'tr[data-item="{unprinted}"]').get_attribute("data-printed") == "0"
        # "Tick all" ticks every item, and unticks them again.
        page.check("#tick-all")
        assert page.locator('input[name="item_ids"]:checked').count() == rows.count() == 3
        page.uncheck("#tick-all")
        assert page.locator('input[name="item_ids"]:checked').count() == 0
        page.check(f'input[name="item_ids"][value="{printed}"]')
        page.check(f'input[name="item_ids"][value="{unprinted}"]')
        page.select_option('select[name="route"]', "QNG-01")
        with page.expect_response(lambda r: r.url.endswith(".pdf")) as pdf:
            try:
                page.click("#manifest-button")
            except Exception:  # noqa: BLE001  (a PDF may open as a download, which aborts the navigation)
                pass
        response = pdf.value
        assert response.status == 200 and response.headers["content-type"] == "application/pdf"
        # chromium hands the body to its PDF viewer; fetch the same address with the page's session
        assert context.request.get(response.url).body().startswith(b"%PDF")
        # chromium's PDF viewer asks for /favicon.ico (a PDF has no <link rel=icon>, the pages do)
        assert not [p for p in watch.take() if "/favicon.ico" not in p]
    finally:
        context.close()
    db.session.remove()
    on_manifest = db.session.scalars(
        sa.select(manifest_items.c.order_id).join(Manifest, Manifest.id == manifest_items.c.manifest_id)
        .order_by(manifest_items.c.position)).all()
    assert on_manifest == [orders[0].id, orders[1].id]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PrintJob)) == 0
