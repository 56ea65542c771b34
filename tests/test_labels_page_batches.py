"""The labels page lists the counter's recent label batches (outside review: a batch prepared in the
background was "kept for download" but nothing linked to it once its page was left), and the counts on
the labels pages read in English with a plural form ("1 label", not "1 labels")."""

from __future__ import annotations

import re

import pytest
import test_courier_browser
from conftest import csrf_token, login
from web_helpers import HTI, counter_id, make_order, make_user

from delivery_service.extensions import db
from delivery_service.printing.models import STALLED_PREFIX, JobState, LabelFormat, PrintJob
from delivery_service.printing.services import MAX_BATCH

browser = test_courier_browser.browser  # the fixtures: Playwright's chromium, the service in a thread
live_server = test_courier_browser.live_server


def _print_all(client) -> int:
    """Press "Print all unprinted" on the labels page: a batch prepared in the background; its id."""
    resp = client.post("/counter/labels", data={"csrf_token": csrf_token(client, "/counter/labels"), "which": "all",
                                                "format": "pdf", "size": "a6"})
    assert resp.status_code == 303, resp.get_data(as_text=True)[:500]
    found = re.search(r"/counter/labels/jobs/(\d+)$", resp.headers["Location"])
    assert found, resp.headers["Location"]
    return int(found.group(1))


def _recent(html: str) -> str:
    """The text of the page's list of recent batches, or ''."""
    found = re.search(r'<section class="card" id="recent-batches".*?</section>', html, re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", found.group(0)).split()) if found else ""


def _job(code: str, state: JobState, **fields) -> int:
    job = PrintJob(counter_id=counter_id(code), actor_label="test", format=LabelFormat.ZPL, size="100x100",
                   order_ids=[], state=state, **{"total": 3, **fields})
    db.session.add(job)
    db.session.commit()
    return job.id


@pytest.mark.config(LABEL_ASYNC_THRESHOLD=1)
def test_each_counter_lists_its_own_recent_batches_with_links(app, client):
    login(client, "counter")
    page = client.get("/counter/labels").get_data(as_text=True)
    assert "Lô nhãn gần đây" not in page and 'id="recent-batches"' not in page  # none yet: nothing said

    for _ in range(2):
        make_order()
    mine = _print_all(client)  # no Redis: prepared once the request commits
    failed = _job("QNG-TTHCC", JobState.FAILED, error="Rendering stopped")
    preparing = _job("QNG-TTHCC", JobState.RUNNING)
    make_user("ductho")
    make_order("HTI-DUCTHO", address=HTI)
    other = _job("HTI-DUCTHO", JobState.DONE, done=1)

    page = client.get("/counter/labels").get_data(as_text=True)
    listed = _recent(page)
    assert listed.startswith("Lô nhãn gần đây"), listed
    # newest first, each with its number, format, size, time (Vietnam) and state in words
    assert re.fullmatch(
        rf"Lô nhãn gần đây Lô nhãn {preparing} · ZPL · .+? · \d\d/\d\d/\d{{4}} \d\d:\d\d · đang chuẩn bị "
        rf"Lô nhãn {failed} · ZPL · .+? · .+? · không chuẩn bị được "
        rf"Lô nhãn {mine} · PDF · .+? · .+? · sẵn sàng \(2 nhãn\)", listed), listed
    links = re.findall(r'href="(/counter/labels/jobs/\d+)"', page)
    assert links == [f"/counter/labels/jobs/{n}" for n in (preparing, failed, mine)]
    assert f"/counter/labels/jobs/{other}" not in page  # nothing of the other counter
    opened = client.get(f"/counter/labels/jobs/{mine}")
    assert opened.status_code == 200 and f"Lô nhãn {mine}" in opened.get_data(as_text=True)

    # the other counter sees its batch only
    ductho = app.test_client()
    login(ductho, "ductho")
    page = ductho.get("/counter/labels").get_data(as_text=True)
    assert re.findall(r'href="(/counter/labels/jobs/\d+)"', page) == [f"/counter/labels/jobs/{other}"]
    assert "sẵn sàng (1 nhãn)" in _recent(page)
    assert ductho.get(f"/counter/labels/jobs/{mine}").status_code == 404

    # in English
    page = ductho.get("/counter/labels?lang=en").get_data(as_text=True)
    assert re.fullmatch(rf"Recent label batches Label batch {other} · ZPL · .+? · .+? · ready \(1 label\)",
                        _recent(page)), _recent(page)
    english = _recent(client.get("/counter/labels?lang=en").get_data(as_text=True))
    assert " · preparing " in english and " · failed " in english and english.endswith("· ready (2 labels)")
    assert str(other) not in re.findall(r"Label batch (\d+)", english)


def test_the_list_holds_the_last_ten_batches_and_an_admin_sees_the_chosen_counters(app, client):
    jobs = [_job("QNG-TTHCC", JobState.DONE, done=3) for _ in range(12)]
    other = _job("HTI-DUCTHO", JobState.PENDING)
    login(client, "counter")
    page = client.get("/counter/labels").get_data(as_text=True)
    assert re.findall(r"/counter/labels/jobs/(\d+)", page) == [str(n) for n in reversed(jobs[2:])]
    admin = app.test_client()
    login(admin, "admin")
    page = admin.get(f"/counter/labels?counter_id={counter_id('HTI-DUCTHO')}").get_data(as_text=True)
    assert re.findall(r"/counter/labels/jobs/(\d+)", page) == [str(other)]


@pytest.mark.config(LABEL_ASYNC_THRESHOLD=1)
def test_counts_on_the_labels_pages_have_a_plural_form(client):
    make_order()
    login(client, "counter")
    vietnamese = client.get("/counter/labels").get_data(as_text=True)
    # the Vietnamese sentence is the one it was
    assert ("Các bưu gửi của quầy chưa bàn giao cho bưu tá, đã in nhãn hay chưa (1 nhãn chưa in). Tối đa 1 nhãn "
            "được in ngay; lô lớn hơn được chuẩn bị ở chế độ nền và lưu lại để tải về.") in vietnamese
    english = client.get("/counter/labels?lang=en").get_data(as_text=True)
    assert "(1 label not printed)" in english and "Up to 1 label prints at once;" in english
    assert "1 labels" not in english
    make_order()
    english = client.get("/counter/labels").get_data(as_text=True)
    assert "(2 labels not printed)" in english

    # a batch's page: one label ready; a full batch with one more label to print; one stop
    ready = _job("QNG-TTHCC", JobState.DONE, total=1, done=1)
    full = _job("QNG-TTHCC", JobState.DONE, total=MAX_BATCH, done=MAX_BATCH)
    stopped = _job("QNG-TTHCC", JobState.FAILED, error=f"{STALLED_PREFIX} 1 time", attempts=1)
    texts = {n: " ".join(client.get(f"/counter/labels/jobs/{n}").get_data(as_text=True).split())
             for n in (ready, full, stopped)}
    assert "1 label is ready." in texts[ready]
    assert "2 more labels of the counter remain to print: print them" in texts[full]
    assert "The process preparing it stopped 1 time (killed" in texts[stopped]
    assert not any("1 labels" in t or "1 times" in t for t in texts.values())
    client.get("/counter/labels?lang=vi")
    texts = {n: " ".join(client.get(f"/counter/labels/jobs/{n}").get_data(as_text=True).split())
             for n in (ready, full, stopped)}
    assert "Đã sẵn sàng 1 nhãn." in texts[ready]
    assert ("Lô này gồm 5.000 nhãn: mỗi lô in tối đa 5.000 nhãn. Quầy còn 2 nhãn chưa in: hãy in chúng trong lô "
            "tiếp theo") in texts[full]
    assert "Tiến trình chuẩn bị lô đã dừng 1 lần" in texts[stopped]
    # one label left: singular in English
    client.post("/counter/labels", data={"csrf_token": csrf_token(client, "/counter/labels"), "which": "selected",
                                         "item_ids": [re.search(r'data-item="(\w+)"', client.get(
                                             "/counter/labels").get_data(as_text=True)).group(1)]})
    client.get("/counter/labels?lang=en")
    text = " ".join(client.get(f"/counter/labels/jobs/{full}").get_data(as_text=True).split())
    assert "1 more label of the counter remains to print: print it in a next batch" in text


# --- the courier app: a long refusal flag reads as one box ------------------------------------------

def test_a_long_refusal_flag_is_one_box_on_a_phone(app, live_server, browser):
    from test_courier_app_texts import _fill_delivery, _start, _submit_delivery
    from test_courier_browser import _wait

    context, page, errors, (_a, _b, c, _d) = _start(browser, live_server)
    try:
        _wait(page, "navigator.serviceWorker.controller !== null")
        context.set_offline(True)
        _fill_delivery(page, c, "0000")  # wrong ID digits: refused at sync, with a sentence of why
        _submit_delivery(page)
        context.set_offline(False)
        page.wait_for_selector('#outbox-badge[data-parked="1"]', timeout=20000)
        page.wait_for_selector("#sheet[open]")  # the refused order opens again, saying why
        for where in ("#sheet-body", "#parked-list"):
            if where == "#parked-list":
                page.locator("#sheet-close").tap()
            page.wait_for_selector(f"{where} .c-flag-rejected")
            # measured in one go: the app redraws the sheet and the list as the run refreshes
            shape = page.evaluate("""sel => { const f = document.querySelector(sel), r = f.getBoundingClientRect();
                return {rects: f.getClientRects().length, height: r.height, left: r.left, right: r.right,
                        line: parseFloat(getComputedStyle(f).lineHeight)}; }""", f"{where} .c-flag-rejected")
            assert shape["height"] > 1.5 * shape["line"], shape  # the sentence does wrap here
            assert shape["rects"] == 1, (where, shape)  # and its highlight is one box
            assert 0 <= shape["left"] and shape["right"] <= 390, shape
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not errors, errors
    finally:
        context.close()
