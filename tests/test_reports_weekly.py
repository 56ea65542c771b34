"""The weekly PDF reports: the numbers in the PDF are those of figures() for the same week, scope and
level (on the hand-computed data set of test_reports), stored once per week and scope, scheduled on
rq's scheduler under one job id per run, listed and downloaded only within the reader's area."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import test_reports
from conftest import DEMO_PASSWORD, csrf_token, login
from pypdf import PdfReader
from test_reports import ADMIN, TODAY, WEEK, unit

from delivery_service.accounts.models import Role, User
from delivery_service.accounts.services import create_user
from delivery_service.cli import main
from delivery_service.extensions import db
from delivery_service.reports import jobs, weekly
from delivery_service.reports.figures import Filters, figures, weekly_trend
from delivery_service.reports.models import ReportArea, WeeklyReport, report_area_communes
from delivery_service.units.models import UnitLevel

book = test_reports.book  # the hand-computed data set, as a fixture of this module too
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
FRIDAY_7 = (4, 7, 0)


@pytest.fixture
def files(app, tmp_path: Path) -> Path:
    folder = tmp_path / "weekly"
    app.config["REPORT_FILES_DIR"] = str(folder)
    return folder


@pytest.fixture
def ids(book) -> dict[str, int]:
    """The scopes of the data set: province 51 (2025), former district 522, and an area of two
    communes (21025 and 21028, where QNG-01 delivers)."""
    area = ReportArea(code="KV-CT", name="Khu vực Cẩm Thành – Nghĩa Lộ",
                      owner_unit_id=unit("51", level=UnitLevel.PROVINCE).id)
    db.session.add(area)
    db.session.flush()
    db.session.execute(sa.insert(report_area_communes), [{"area_id": area.id, "unit_id": unit(c).id}
                                                         for c in ("21025", "21028")])
    db.session.commit()
    return {"province": unit("51", level=UnitLevel.PROVINCE).id,
            "district": unit("522", legacy=True, level=UnitLevel.DISTRICT).id, "area": area.id}


def pdf_lines(path: Path) -> list[str]:
    """The PDF's text, one table row a line, blanks collapsed."""
    text = "\n".join(page.extract_text(extraction_mode="layout") for page in PdfReader(path).pages)
    return [re.sub(r"\s+", " ", line).strip() for line in text.splitlines() if line.strip()]


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}".replace(".", ",") + " %"


def unit_line(row, label: str | None = None) -> str:
    """A row of the units table: the unit, seven counts, and two rates with their bands' words."""
    if label is None:
        label = f"{row.label} ({row.code})" if row.code else row.label
    counts = [str(getattr(row, a)) for a in ("received", "delivered", "on_time", "failed_attempts", "returned",
                                             "open", "overdue")]
    return " ".join([label, *counts, pct(row.delivery_rate), pct(row.on_time_rate)])


def has_unit_line(lines: list[str], expected: str) -> bool:
    """The row is there: its counts and rates after the unit's name, or after the first words of a
    name that wraps in its cell."""
    words = expected.split(" ")
    figures_part = " ".join(words[-11:])
    return any(line.endswith(figures_part) and line[: -len(figures_part)].strip()
               and expected.startswith(line[: -len(figures_part)].strip()) for line in lines)


# --- bands, weeks and the schedule ----------------------------------------------------------------

def test_bands_follow_the_configured_thresholds(app):
    assert app.config["REPORT_BANDS"]["delivery_rate"] == [0.95, 0.90, 0.80]
    assert weekly.band("delivery_rate", 0.95) == ("green", "Tốt", "Good")
    assert weekly.band("delivery_rate", 0.9499) == ("yellow", "Khá", "Fair")
    assert weekly.band("delivery_rate", 0.80) == ("orange", "Cần chú ý", "Watch")
    assert weekly.band("delivery_rate", 0.7999) == ("red", "Kém", "Poor")
    assert weekly.band("on_time_rate", 0.85).colour == "yellow"
    assert weekly.band("post_share", 0.05).colour == "red"
    assert weekly.band("delivery_rate", None) is None
    with pytest.raises(ValueError):
        weekly.band("speed", 0.5)


@pytest.mark.config(REPORT_BANDS="delivery_rate:0.5,0.4,0.3")
def test_bands_read_the_settings(app):
    assert weekly.band("delivery_rate", 0.45).colour == "yellow"
    assert weekly.band("on_time_rate", 0.85).colour == "yellow"  # the others keep their defaults


def test_the_week_a_run_covers():
    friday = dt.date(2026, 11, 27)
    assert weekly.last_full_week(friday) == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    assert weekly.last_full_week(dt.date(2026, 11, 23)) == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))
    assert weekly.last_full_week(dt.date(2026, 11, 22)) == (dt.date(2026, 11, 9), dt.date(2026, 11, 15))
    assert weekly.week_of(dt.date(2026, 3, 8)) == WEEK
    assert weekly.period_words(*WEEK) == "02/03–08/03/2026"
    assert weekly.period_words(dt.date(2026, 12, 28), dt.date(2027, 1, 3)) == "28/12/2026–03/01/2027"


@pytest.mark.parametrize(("now", "expected"), [
    # Saturday afternoon (UTC): next Friday 07:00 in Viet Nam.
    (dt.datetime(2026, 11, 21, 15, 22, tzinfo=dt.UTC), dt.datetime(2026, 11, 27, 7, 0, tzinfo=TZ)),
    # Friday 06:59 local: today.
    (dt.datetime(2026, 11, 27, 6, 59, tzinfo=TZ), dt.datetime(2026, 11, 27, 7, 0, tzinfo=TZ)),
    # Friday 07:00 exactly, and after: next week.
    (dt.datetime(2026, 11, 27, 7, 0, tzinfo=TZ), dt.datetime(2026, 12, 4, 7, 0, tzinfo=TZ)),
    (dt.datetime(2026, 11, 27, 9, 30, tzinfo=TZ), dt.datetime(2026, 12, 4, 7, 0, tzinfo=TZ)),
    # Thursday 23:30 UTC is already Friday 06:30 in Viet Nam.
    (dt.datetime(2026, 11, 26, 23, 30, tzinfo=dt.UTC), dt.datetime(2026, 11, 27, 7, 0, tzinfo=TZ)),
    # Naive: UTC. Across a year's end.
    (dt.datetime(2026, 12, 31, 12, 0), dt.datetime(2027, 1, 1, 7, 0, tzinfo=TZ)),
])
def test_next_run(now, expected):
    run_at = jobs.next_run(now, FRIDAY_7, TZ)
    assert run_at == expected and run_at.tzinfo is not None
    assert run_at.utcoffset() == dt.timedelta(hours=7)


def test_next_run_other_schedules():
    monday = dt.datetime(2026, 11, 23, 0, 0, tzinfo=TZ)
    assert jobs.next_run(monday, (0, 0, 0), TZ) == dt.datetime(2026, 11, 30, 0, 0, tzinfo=TZ)
    assert jobs.next_run(monday, (6, 23, 59), TZ) == dt.datetime(2026, 11, 29, 23, 59, tzinfo=TZ)


# --- the PDF against figures() --------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["province", "district", "all", "area"])
def test_pdf_numbers_are_those_of_figures(ids, files, kind):
    scope = "all" if kind == "all" else f"{kind}:{ids[kind]}"
    report = weekly.build_weekly(scope, *WEEK, today=TODAY)
    db.session.commit()
    level = weekly.LEVEL_OF[kind]
    filters = Filters() if kind == "all" else Filters(**{kind: ids[kind]})
    expected = figures(ADMIN, *WEEK, level, filters, today=TODAY)
    # Not vacuous: the hand-computed week (test_reports.test_routes_in_a_week), or the area's share.
    t = expected.total
    if kind == "area":
        assert (t.received, t.delivered, t.on_time, t.failed_attempts, t.returned, t.open) == (5, 2, 1, 2, 1, 2)
    else:
        assert (t.received, t.delivered, t.on_time, t.failed_attempts, t.returned, t.cancelled, t.open,
                t.overdue) == (7, 3, 2, 2, 1, 1, 2, 1)
    lines = pdf_lines(files / report.file_name)

    assert lines[0].startswith("Báo cáo tuần dịch vụ BCCI — ") and report.title.endswith("02/03–08/03/2026")
    for vi, en, value in (("Đã nhận", "Received", t.received), ("Đã phát", "Delivered", t.delivered),
                          ("Phát đúng hạn", "Delivered on time", t.on_time),
                          ("Số lần phát không thành công", "Failed attempts", t.failed_attempts),
                          ("Chuyển hoàn", "Returned", t.returned), ("Đã hủy", "Cancelled", t.cancelled),
                          ("Chưa xong", "Still open", t.open), ("Quá hạn", "Overdue", t.overdue)):
        assert f"{vi} / {en} {value}" in lines, vi
    delivery, on_time = weekly.band("delivery_rate", t.delivery_rate), weekly.band("on_time_rate", t.on_time_rate)
    assert (f"Tỷ lệ phát thành công / Delivery rate {pct(t.delivery_rate)} "
            f"{delivery.label_vi} / {delivery.label_en}") in lines
    assert (f"Tỷ lệ đúng hạn / On-time rate {pct(t.on_time_rate)} "
            f"{on_time.label_vi} / {on_time.label_en}") in lines
    median = f"{t.median_hours:.1f}".replace(".", ",")
    assert f"Thời gian phát: trung vị / Delivery time: median {median} giờ / h" in lines

    # One line per unit one level down, and the total.
    assert expected.rows
    for row in expected.rows:
        assert has_unit_line(lines, unit_line(row)), unit_line(row)
    assert unit_line(t, "Tổng cộng / Total") in lines

    # The trend: eight weeks, the last being this one, as weekly_trend() sums it.
    trend = dict(weekly_trend(ADMIN, dt.date(2026, 1, 12), WEEK[1], filters))
    week_row = trend[WEEK[0]]
    # The trend's last week is the headline's week, read from report_weeks rather than the days.
    assert (week_row.received, week_row.delivered, week_row.on_time, week_row.returned) == (
        t.received, t.delivered, t.on_time, t.returned)
    assert (f"02/03–08/03/2026 {week_row.received} {week_row.delivered} {week_row.on_time} "
            f"{week_row.returned} {pct(week_row.delivery_rate)} {pct(week_row.on_time_rate)}") in lines
    assert "12/01–18/01/2026 0 0 0 0 — —" in lines
    assert any("Định nghĩa" in line for line in lines)
    assert report.size_bytes == (files / report.file_name).stat().st_size


def test_unit_names_in_the_tables(ids, files):
    province = weekly.build_weekly(f"province:{ids['province']}", *WEEK, today=TODAY)
    district = weekly.build_weekly(f"district:{ids['district']}", *WEEK, today=TODAY)
    everything = weekly.build_weekly("all", *WEEK, today=TODAY)
    assert province.title == "Báo cáo tuần dịch vụ BCCI — Tỉnh Quảng Ngãi — 02/03–08/03/2026"
    assert " (cũ), Tỉnh Quảng Ngãi — " in district.title
    assert everything.title == "Báo cáo tuần dịch vụ BCCI — Toàn bộ dịch vụ — 02/03–08/03/2026"
    assert any(line.startswith("Tỉnh Quảng Ngãi (51) 7 3") for line in pdf_lines(files / everything.file_name))
    communes = pdf_lines(files / district.file_name)
    assert all(f"({code})" in " ".join(communes) for code in ("21025", "21028", "21172"))


def test_rebuilding_a_week_replaces_its_file_and_row(ids, files):
    scope = f"province:{ids['province']}"
    first = weekly.build_weekly(scope, *WEEK, today=TODAY)
    db.session.commit()
    first_id, first_name = first.id, first.file_name
    again = weekly.build_weekly(scope, *WEEK, today=dt.date(2026, 3, 25))
    db.session.commit()
    assert again.id == first_id and again.file_name == first_name
    rows = db.session.scalars(sa.select(WeeklyReport).where(WeeklyReport.scope == scope)).all()
    assert len(rows) == 1
    assert sorted(p.name for p in files.iterdir()) == [first_name]  # no temporary file left either
    assert rows[0].size_bytes == (files / first_name).stat().st_size
    # Built again on 25 Mar: o7 (due 20 Mar) is overdue now too.
    assert "Quá hạn / Overdue 2" in pdf_lines(files / first_name)


def test_scopes_of_a_week_come_from_the_rollups(ids, files):
    weekly.build_scopes(*WEEK, scopes=[])  # folds the log
    scopes = [str(s) for s in weekly.scopes_with_figures(*WEEK)]
    assert scopes == ["all", f"province:{ids['province']}", f"district:{ids['district']}", f"area:{ids['area']}"]
    quiet = [str(s) for s in weekly.scopes_with_figures(dt.date(2026, 3, 16), dt.date(2026, 3, 22))]
    assert quiet == ["all", f"area:{ids['area']}"]
    built = weekly.build_scopes(*WEEK, today=TODAY)
    assert sorted(r.scope for r in built) == sorted(scopes)
    assert len(list(files.iterdir())) == 4


def test_unknown_scopes_are_refused(ids, files):
    from delivery_service.errors import InvalidInput, NotFound

    with pytest.raises(InvalidInput):
        weekly.build_weekly("commune:5", *WEEK)
    with pytest.raises(NotFound):
        weekly.build_weekly(f"province:{ids['district']}", *WEEK)  # a district is no province
    with pytest.raises(NotFound):
        weekly.build_weekly("area:999999", *WEEK)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WeeklyReport)) == 0


# --- the CLI --------------------------------------------------------------------------------------

def run(app, *args):
    return app.test_cli_runner().invoke(main, list(args), catch_exceptions=False)


def test_cli_builds_a_week_now(app, ids, files):
    result = run(app, "reports", "weekly", "--week", "2026-03-05")
    assert result.exit_code == 0, result.output
    assert "4 weekly reports stored for 2026-03-02..2026-03-08" in result.output
    assert f"weekly-2026-03-02-province-{ids['province']}.pdf" in result.output
    one = run(app, "reports", "weekly", "--week", "2026-03-08", "--scope", f"district:{ids['district']}")
    assert one.exit_code == 0 and "1 weekly reports stored" in one.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WeeklyReport)) == 4
    bad = run(app, "reports", "weekly", "--scope", "commune:1")
    assert bad.exit_code != 0 and "province:ID" in bad.output
    assert run(app, "reports", "weekly", "--week", "5 March").exit_code == 2


def test_cli_schedule_needs_redis(app):
    result = run(app, "reports", "schedule")
    assert result.exit_code == 1 and "REDIS_URL is not set" in result.output


# --- rq -------------------------------------------------------------------------------------------

def scheduled_ids(queue) -> list[str]:
    from rq.registry import ScheduledJobRegistry

    return ScheduledJobRegistry(queue=queue).get_job_ids()


@pytest.mark.redis
def test_scheduling_twice_keeps_one_job(rq_app):
    with rq_app.app_context():
        queue = rq_app.extensions["rq_queue"]
        now = dt.datetime(2026, 11, 27, 7, 0, tzinfo=TZ) + dt.timedelta(days=3650)  # far ahead of any clock
        first = jobs.schedule_next(now)
        again = jobs.schedule_next(now + dt.timedelta(hours=1))
        assert first.created and not again.created and first.job_id == again.job_id
        assert first.job_id == f"weekly-report-{queue.name}-{first.run_at.date().isoformat()}"
        assert first.run_at.weekday() == 4 and (first.run_at.hour, first.run_at.minute) == (7, 0)
        assert scheduled_ids(queue) == [first.job_id]
        from rq.registry import ScheduledJobRegistry

        at = ScheduledJobRegistry(queue=queue).get_scheduled_time(first.job_id)
        assert at == first.run_at.astimezone(dt.UTC)
        result = run(rq_app, "reports", "schedule")
        assert result.exit_code == 0 and "weekly reports scheduled" in result.output
        assert len(scheduled_ids(queue)) == 2  # the next run after the real now, and the far one


@pytest.mark.redis
def test_the_scheduled_job_builds_the_week_and_schedules_the_next(rq_app, ids, tmp_path):
    from rq import SimpleWorker

    rq_app.config["REPORT_FILES_DIR"] = str(tmp_path / "rq")
    with rq_app.app_context():
        queue = rq_app.extensions["rq_queue"]
        # Due on Friday 13 Mar 2026 07:00 (past): the scheduler hands it to the worker at once.
        due = jobs.schedule_next(dt.datetime(2026, 3, 10, 12, 0, tzinfo=TZ))
        assert due.run_at == dt.datetime(2026, 3, 13, 7, 0, tzinfo=TZ) and due.week == WEEK
        SimpleWorker([queue], connection=queue.connection).work(burst=True, with_scheduler=True)
        from rq.job import Job

        assert Job.fetch(due.job_id, connection=queue.connection).get_status() == "finished"
        db.session.remove()
    stored = db.session.scalars(sa.select(WeeklyReport).order_by(WeeklyReport.scope)).all()
    assert sorted(r.scope for r in stored) == sorted(
        ["all", f"province:{ids['province']}", f"district:{ids['district']}", f"area:{ids['area']}"])
    assert all(r.period_start == WEEK[0] and (tmp_path / "rq" / r.file_name).is_file() for r in stored)
    # The chain goes on: the run after now is scheduled.
    later = [j for j in scheduled_ids(rq_app.extensions["rq_queue"]) if j != due.job_id]
    assert len(later) == 1
    day = dt.date.fromisoformat(later[0][-10:])
    assert day.weekday() == 4 and day > dt.datetime.now(TZ).date() - dt.timedelta(days=1)


# --- the pages ------------------------------------------------------------------------------------

def _officer(username: str, area_code: str) -> None:
    create_user(username=username, full_name="Nguyễn Văn Cán Bộ", password=DEMO_PASSWORD,
                role=Role.DISTRICT_OFFICER, area_code=area_code)
    db.session.commit()


def fetch(client, report_id: int):
    """GET a report's download, closing the response (it streams the stored file)."""
    resp = client.get(f"/reports/weekly/{report_id}.pdf")
    resp.get_data()
    resp.close()
    return resp


def _logout(client) -> None:
    client.post("/logout", data={"csrf_token": csrf_token(client, "/reports/weekly/")})


def test_list_and_download_within_the_readers_area(app, client, ids, files):
    built = {r.scope: r.id for r in weekly.build_scopes(*WEEK, today=TODAY)}
    province, district, area = (f"province:{ids['province']}", f"district:{ids['district']}",
                                f"area:{ids['area']}")

    login(client, "admin")
    page = client.get("/reports/weekly/").get_data(as_text=True)
    assert all(f"/reports/weekly/{i}.pdf" in page for i in built.values())
    assert "Tỉnh Quảng Ngãi" in page and "Toàn bộ dịch vụ" in page
    resp = fetch(client, built[province])
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith("attachment;")
    assert "bao-cao-tuan-2026-03-02-tinh-quang-ngai.pdf" in resp.headers["Content-Disposition"]
    assert resp.headers["Cache-Control"] == "private"
    stored = files / f"weekly-2026-03-02-province-{ids['province']}.pdf"
    assert resp.data.startswith(b"%PDF") and resp.data == stored.read_bytes()
    _logout(client)

    # The demo officer's area is province 51: its report, district 522's and the area's, not the
    # whole service's.
    login(client, "district")
    page = client.get("/reports/weekly/").get_data(as_text=True)
    for scope in (province, district, area):
        assert f"/reports/weekly/{built[scope]}.pdf" in page
    assert f"/reports/weekly/{built['all']}.pdf" not in page
    assert fetch(client, built[district]).status_code == 200
    assert fetch(client, built["all"]).status_code == 404
    assert "Build last week" not in page and "Lập báo cáo tuần trước" not in page
    _logout(client)

    # An officer of another province sees none of them, and cannot tell they exist.
    _officer("hatinh", "42")
    login(client, "hatinh")
    page = client.get("/reports/weekly/")
    assert page.status_code == 200 and "/reports/weekly/" + str(built[province]) not in page.get_data(as_text=True)
    assert fetch(client, built[province]).status_code == 404
    assert fetch(client, 999999).status_code == 404
    _logout(client)

    login(client, "supervisor")
    assert client.get("/reports/weekly/").status_code == 403
    assert fetch(client, built[province]).status_code == 404


def test_a_former_district_officer_sees_only_that_district(app, client, ids, files):
    built = {r.scope: r.id for r in weekly.build_scopes(*WEEK, today=TODAY)}
    _officer("former", "51")  # a new account (the demo officer's scope stays as other tests expect)
    officer = db.session.scalar(sa.select(User).where(User.username == "former"))
    officer.area_unit_id = ids["district"]  # an officer kept on the former district (data from before)
    db.session.commit()
    from delivery_service.accounts.services import Actor

    assert weekly.visible_scopes(Actor.of_user(officer)) >= {f"district:{ids['district']}"}
    assert f"province:{ids['province']}" not in weekly.visible_scopes(Actor.of_user(officer))
    district, province = built[f"district:{ids['district']}"], built[f"province:{ids['province']}"]
    login(client, "former")
    assert fetch(client, district).status_code == 200
    assert fetch(client, province).status_code == 404


def test_admin_builds_last_week_from_the_page(app, client, files):
    login(client, "admin")
    assert client.post("/reports/weekly/build").status_code == 400  # no CSRF token
    resp = client.post("/reports/weekly/build", data={"csrf_token": csrf_token(client, "/reports/weekly/")})
    assert resp.status_code == 303
    start, _end = weekly.last_full_week(weekly.local_today())
    assert f"week={start.isoformat()}" in resp.headers["Location"]
    # Without Redis the job ran after the request's commit: at least the whole service's report.
    stored = db.session.scalars(sa.select(WeeklyReport.scope).where(WeeklyReport.period_start == start)).all()
    assert "all" in stored
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "Toàn bộ dịch vụ" in page
    # the reports are listed: the page says they are built, not "being built", and stops refreshing
    assert "Đã lập xong báo cáo kỳ" in page
    assert "Đang lập" not in page and 'http-equiv="refresh"' not in page
    _logout(client)
    login(client, "district")
    token = csrf_token(client, "/reports/weekly/")
    assert client.post("/reports/weekly/build", data={"csrf_token": token}).status_code == 403


def test_the_list_page_in_english(app, client, ids, files):
    weekly.build_scopes(*WEEK, today=TODAY)
    login(client, "admin")
    page = client.get("/reports/weekly/?lang=en&week=2026-03-04").get_data(as_text=True)
    assert "Weekly reports" in page and "Download PDF" in page and "Former district" in page
    assert client.get("/reports/weekly/?week=nope").status_code == 404


def test_the_list_is_in_vietnamese_alphabetical_order(app, client, files):
    """Reports of a week by kind (whole service, provinces, districts, areas), then by title with ICU's
    Vietnamese collation: "Tỉnh Điện Biên" after "Tỉnh Đắk Lắk" and before "Tỉnh Vĩnh Long" (a byte
    order puts Đ after V)."""
    start, end = dt.date(2026, 3, 2), dt.date(2026, 3, 8)
    names = ["Tỉnh Vĩnh Long", "Tỉnh Điện Biên", "Tỉnh An Giang", "Tỉnh Đắk Lắk", "Tỉnh Ê Đê"]
    for n, name in enumerate(names):
        db.session.add(WeeklyReport(period_start=start, period_end=end, scope=f"province:{9000 + n}",
                                    title=f"{weekly.SERVICE} — {name} — {weekly.period_words(start, end)}",
                                    file_name=f"weekly-test-{n}.pdf", size_bytes=1))
    db.session.add(WeeklyReport(period_start=start, period_end=end, scope="all", file_name="weekly-test-all.pdf",
                                title=f"{weekly.SERVICE} — Toàn bộ dịch vụ — {weekly.period_words(start, end)}",
                                size_bytes=1))
    db.session.add(WeeklyReport(period_start=start, period_end=end, scope="district:9100", size_bytes=1,
                                title=f"{weekly.SERVICE} — An Nhơn (huyện cũ) — {weekly.period_words(start, end)}",
                                file_name="weekly-test-d.pdf"))
    db.session.commit()
    expected = ["Toàn bộ dịch vụ", "Tỉnh An Giang", "Tỉnh Đắk Lắk", "Tỉnh Điện Biên", "Tỉnh Ê Đê",
                "Tỉnh Vĩnh Long", "An Nhơn (huyện cũ)"]
    from delivery_service.accounts.services import Actor

    admin = db.session.scalar(sa.select(User).where(User.username == "admin"))
    _weeks, _shown, reports = weekly.stored_listing(Actor.of_user(admin), start)
    assert [r.title.split(" — ")[1] for r in reports] == expected
    login(client, "admin")
    page = client.get(f"/reports/weekly/?week={start.isoformat()}").get_data(as_text=True)
    shown = [t.split(" — ")[1] for t in re.findall(r"<td>([^<]* — [^<]* — [^<]*)</td>", page)]
    assert shown == expected
