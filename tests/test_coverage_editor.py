"""A route's coverage editor: a province admin's limits are the service's (whatever page or API
calls it), the commune list's filter without JavaScript, and the kinds of rules in the reader's
language while what is stored stays "hamlet"/"street". On SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from conftest import csrf_token, login
from test_province_admin import _province_admin
from test_web_routing import coverage_state, route_id, text_of

from delivery_service.accounts.models import AuditEvent, User
from delivery_service.accounts.services import Actor
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.orgs.models import PostalRoute
from delivery_service.routing import services
from delivery_service.routing.models import PartKind, RouteRule
from delivery_service.units.models import UnitLevel
from delivery_service.units.services import unit_index

HA_TINH = "18229"  # a commune of Hà Tĩnh (province 42): outside Quảng Ngãi (51)


def _unit_id(code: str) -> int:
    return unit_index().find(UnitLevel.COMMUNE, code, local_today()).id


def _audits() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == "route.coverage"))


# --- a province admin's limits, in the service -------------------------------------------------------

def test_the_service_refuses_a_province_admin_what_lies_outside_their_province(app):
    admin = Actor.of_user(_province_admin("51"), administering=True)
    before, audits = coverage_state("QNG-01"), _audits()
    inside = [_unit_id("21025")]
    with pytest.raises(InvalidInput) as whole:
        services.set_coverage(admin, "QNG-01", communes=[*inside, _unit_id(HA_TINH)])
    assert list(whole.value.errors) == ["communes"]
    assert whole.value.errors["communes"][0].startswith("Outside your province: ")
    with pytest.raises(InvalidInput) as part:
        services.set_coverage(admin, "QNG-01", communes=inside, rules=[
            {"commune_id": _unit_id("21220"), "kind": "hamlet", "phrase": "Thôn Trường Thọ"},
            {"commune_id": _unit_id(HA_TINH), "kind": "hamlet", "phrase": "Xóm 4"}])
    assert list(part.value.errors) == ["rules.1.commune_id"]
    assert part.value.errors["rules.1.commune_id"][0].startswith("Outside your province: ")
    with pytest.raises(InvalidInput) as backup:
        services.set_coverage(admin, "QNG-01", communes=inside, backup="HTI-01")
    assert backup.value.errors == {"backup": ["Outside your province: HTI-01."]}
    with pytest.raises(NotFound):  # another province's route is not theirs to change at all
        services.set_coverage(admin, "HTI-01", capacity=5)
    db.session.rollback()
    assert coverage_state("QNG-01") == before and _audits() == audits
    assert "HTI-01" not in {r.code for r in services.backup_choices(admin, db.session.scalar(
        sa.select(PostalRoute).where(PostalRoute.code == "QNG-01")))}

    # within the province it goes through; a national admin is held to the route's post office's
    # province too (tests/test_coverage_province.py), in its words
    services.set_coverage(admin, "QNG-01", communes=inside, backup="QNG-02")
    assert coverage_state("QNG-01")[0] == inside and _audits() == audits + 1
    national = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "admin")))
    with pytest.raises(InvalidInput) as refused:
        services.set_coverage(national, "QNG-01", communes=[*inside, _unit_id(HA_TINH)], backup="HTI-01")
    assert refused.value.errors["backup"] == [
        "Outside Tỉnh Quảng Ngãi, the province of post office BC-QNG: HTI-01."]


def _form(client, path: str, communes: list[int], **changes: str) -> dict:
    return {"csrf_token": csrf_token(client, path), "communes": [str(c) for c in communes], "rules": "",
            "capacity_per_day": "60", "backup": "", "open_run": "", **changes}


def test_the_administration_page_shows_the_services_refusal_beside_each_field(client):
    _province_admin("51")
    qng = route_id("QNG-01")
    before, audits = coverage_state("QNG-01"), _audits()
    login(client, "qt.51")
    path = f"/admin/routes/{qng}/coverage"
    resp = client.post(path, data=_form(client, path, [_unit_id("21025")],
                                         rules=f"21220 | thôn | Thôn Trường Thọ\n{HA_TINH} | xóm | Xóm 4",
                                         backup="HTI-01"))
    html = text_of(resp.get_data(as_text=True))
    assert resp.status_code == 422
    assert "Dòng 2: Ngoài tỉnh của bạn:" in html and "Ngoài tỉnh của bạn: HTI-01." in html
    db.session.rollback()
    assert coverage_state("QNG-01") == before and _audits() == audits


def test_the_api_refuses_a_province_admin_another_provinces_commune_and_changes_nothing(client):
    _province_admin("51")
    before = coverage_state("QNG-01")
    login(client, "qt.51")
    headers = {"X-CSRFToken": csrf_token(client, "/reports/")}
    # outside the administration pages a province admin acts as the province's officer: no route
    # changes through the API with their session, whatever the body
    for body in ({"communes": ["21025", HA_TINH]}, {"communes": ["21025"]}, {"backup_route": "HTI-01"}):
        resp = client.put("/api/v1/routes/QNG-01/coverage", headers=headers, json=body)
        assert resp.status_code == 403, resp.get_data(as_text=True)
    # a supervisor's call with a commune that does not exist: 422 at the field
    supervisor = client.application.test_client()
    login(supervisor, "supervisor")
    headers = {"X-CSRFToken": csrf_token(supervisor, "/routes")}
    resp = supervisor.put("/api/v1/routes/QNG-01/coverage", headers=headers, json={"communes": ["21025", "00000"]})
    assert resp.status_code == 422 and list(resp.json["errors"]["json"]) == ["communes.1"]
    db.session.rollback()
    assert coverage_state("QNG-01") == before


# --- the commune filter without JavaScript -----------------------------------------------------------

def _shown(html: str) -> list[str]:
    return re.findall(r'<label class="check" data-filter="[^"]*"><input type="checkbox" name="communes" '
                      r'value="\d+" ?(?:checked)?> ([^<]+?) <', html)


def test_the_filter_narrows_the_communes_accent_insensitive_and_keeps_the_hidden_ones_in_the_form(client):
    login(client, "supervisor")
    full = client.get("/routes/QNG-02/coverage").get_data(as_text=True)
    every = len(re.findall(r'name="communes" value=', full))
    assert every > 50 and len(_shown(full)) == every
    html = client.get("/routes/QNG-02/coverage?q=PHUONG dak").get_data(as_text=True)
    assert _shown(html) == ["Phường Đăk Bla", "Phường Đăk Cấm"]
    assert f"<output id=\"commune-shown\">2</output> / {every}" in html
    # the communes the filter hides are still in the form, ticked as they were
    assert len(re.findall(r'name="communes" value=', html)) == every
    assert len(re.findall(r'name="communes" value="\d+" checked', html)) == 2
    assert _shown(client.get("/routes/QNG-02/coverage?q=21025").get_data(as_text=True)) == ["Phường Cẩm Thành"]
    none = client.get("/routes/QNG-02/coverage?q=khong co xa nay").get_data(as_text=True)
    assert _shown(none) == [] and '<strong id="commune-none">' in none


# --- the kinds of rules in the reader's language -------------------------------------------------------

def test_rules_are_written_in_vietnamese_and_stored_as_the_routing_rules_understand(client):
    login(client, "supervisor")
    before = coverage_state("QNG-02")
    html = client.get("/routes/QNG-02/coverage").get_data(as_text=True)
    assert "21220 | thôn/ấp/xóm | Thôn Trường Thọ" in html and "| hamlet |" not in html
    assert "21220 | hamlet | Thôn Trường Thọ" in client.get("/routes/QNG-02/coverage?lang=en").get_data(as_text=True)
    client.get("/routes/QNG-02/coverage?lang=vi")
    # saved as shown: nothing changes (the stored kind is still "hamlet"), nothing is audited
    rules = re.search(r'<textarea id="f-rules"[^>]*>([^<]*)</textarea>', html).group(1)
    audits = _audits()
    form = _form(client, "/routes/QNG-02/coverage", before[0], rules=rules, capacity_per_day="",
                 backup="QNG-01" if before[3] == route_id("QNG-01") else "")
    assert client.post("/routes/QNG-02/coverage", data=form).status_code == 303
    assert _audits() == audits
    # both languages' words, and the old English ones, are read
    form["rules"] = ("21220 | thôn/ấp/xóm | Thôn Trường Thọ\n21025 | Đường / Phố | Hùng Vương\n"
                     "21034 | hamlet | Thôn Phú Hòa\n21034 | street | Quang Trung")
    resp = client.post("/routes/QNG-02/coverage", data=form)
    assert resp.status_code == 303, text_of(resp.get_data(as_text=True))[-2000:]
    db.session.rollback()
    stored = {(r.phrase, r.kind) for r in db.session.scalars(
        sa.select(RouteRule).where(RouteRule.route_id == route_id("QNG-02")))}
    assert stored == {("Thôn Trường Thọ", PartKind.HAMLET), ("Hùng Vương", PartKind.STREET),
                      ("Thôn Phú Hòa", PartKind.HAMLET), ("Quang Trung", PartKind.STREET)}
    raw = set(db.session.scalars(sa.text("SELECT DISTINCT kind FROM route_rules WHERE route_id = :r"),
                                 {"r": route_id("QNG-02")}))
    assert raw == {"hamlet", "street"}  # in the table: the words routes.RuleKind and the API use
    # a word that is neither: refused in Vietnamese words
    form["rules"] = "21220 | sông | Sông Trà"
    refused = text_of(client.post("/routes/QNG-02/coverage", data=form).get_data(as_text=True))
    assert "Dòng 1: Loại phải là “thôn/ấp/xóm” hoặc “đường/phố”." in refused


# --- the filter without JavaScript keeps what is not saved yet -----------------------------------------

def test_filtering_re_renders_the_posted_form_and_saves_nothing(client):
    login(client, "supervisor")
    before, audits = coverage_state("QNG-02"), _audits()
    dak_bla = _unit_id("23302")
    rules = "\r\n21025 | phố | Hùng Vương"  # as a browser sends a textarea: CRLF, a blank first line
    form = _form(client, "/routes/QNG-02/coverage", [*before[0], dak_bla], rules=rules, capacity_per_day="45",
                 backup="QNG-01", open_run="1", q="tra cau", filter="1")
    resp = client.post("/routes/QNG-02/coverage", data=form)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200, text_of(html)[-1000:]
    db.session.rollback()
    assert coverage_state("QNG-02") == before and _audits() == audits  # nothing saved, nothing audited
    shown = _shown(html)
    assert shown and all("Trà Câu" in name for name in shown), shown
    assert 'name="q" type="search" value="tra cau"' in html
    # what was posted, unsaved, is what the form holds again: the hidden commune ticked, the rules as
    # typed (the blank first line too), capacity, backup, open run
    checked = {int(v) for v in re.findall(r'name="communes" value="(\d+)" checked', html)}
    assert checked == {*before[0], dak_bla}
    assert re.search(r'<textarea id="f-rules"[^>]*>\n\r?\n21025 \| phố \| Hùng Vương</textarea>', html)
    assert 'name="capacity_per_day" type="text" inputmode="numeric" value="45"' in html
    assert '<option value="QNG-01" selected>' in html
    assert re.search(r'name="open_run" value="1" checked', html)
    assert "Dòng" not in text_of(html)  # not checked either: filtering is not saving


# --- rule errors name the line as the text box shows it ------------------------------------------------

def test_rule_errors_name_the_line_as_the_text_box_shows_it_blank_lines_counted(client):
    login(client, "admin")
    hti = route_id("HTI-01")
    path = f"/admin/routes/{hti}/coverage"
    hti_before, audits = coverage_state("HTI-01"), _audits()
    rules = "\r\n\r\n18229 | thôn | Trung Lưu\r\n\r\n21025 | thôn | Phú Lộc"  # 21025: Quảng Ngãi's
    resp = client.post(path, data=_form(client, path, hti_before[0], rules=rules))
    html = resp.get_data(as_text=True)
    text = text_of(html)
    assert resp.status_code == 422
    assert "Dòng 5: Ngoài Tỉnh Hà Tĩnh" in text and "Dòng 3" not in text, text[-1500:]
    # the text box holds the text as sent, so line 5 is the fifth line the user sees
    assert re.search(r'<textarea id="f-rules"[^>]*>\n\r?\n\r?\n18229 \| thôn \| Trung Lưu', html)
    db.session.rollback()
    assert coverage_state("HTI-01") == hti_before and _audits() == audits


def test_a_repeated_rule_names_its_line_and_the_first_ones(client):
    login(client, "supervisor")
    audits = _audits()
    path = "/routes/QNG-02/coverage"
    before = coverage_state("QNG-02")
    rules = ("21220 | thôn | Thôn Trường Thọ\n21025 | đường | Hùng Vương\n\n"
             "21220 | xóm | thon  truong tho\n21025 | phố | Hùng Vương\n21220 | thôn | Thôn Trường Thọ")
    resp = client.post(path, data=_form(client, path, before[0], rules=rules))
    text = text_of(resp.get_data(as_text=True))
    assert resp.status_code == 422
    assert "Dòng 4: trùng thôn/xóm hoặc đường phố với dòng 1." in text, text[-1500:]
    assert "Dòng 5: trùng thôn/xóm hoặc đường phố với dòng 2." in text
    assert "Dòng 6: trùng thôn/xóm hoặc đường phố với dòng 1." in text
    assert "được ghi hai lần" not in text  # the message without a line is gone
    db.session.rollback()
    assert coverage_state("QNG-02") == before and _audits() == audits


def test_the_service_names_each_repeated_rule_and_the_rule_it_repeats(app):
    """set_coverage says which rule repeats which (same commune, kind and folded name), at the
    repeating rule's name: before, only 'The same hamlet or street is listed twice.' for all rules."""
    supervisor = Actor.of_user(db.session.scalar(sa.select(User).where(User.username == "supervisor")))
    before, audits = coverage_state("QNG-02"), _audits()
    truong_tho = {"commune_id": _unit_id("21220"), "kind": "hamlet", "phrase": "Thôn Trường Thọ"}
    hung_vuong = {"commune_id": _unit_id("21025"), "kind": "street", "phrase": "Hùng Vương"}
    with pytest.raises(InvalidInput) as refused:
        services.set_coverage(supervisor, "QNG-02", rules=[
            truong_tho, hung_vuong, {**truong_tho, "phrase": "thon  TRUONG tho"},
            {**hung_vuong, "kind": "hamlet"},  # another kind: not the same rule
            hung_vuong, truong_tho])
    errors = refused.value.errors
    assert errors == {"rules.2.phrase": ["The same hamlet or street as rule 1."],
                      "rules.4.phrase": ["The same hamlet or street as rule 2."],
                      "rules.5.phrase": ["The same hamlet or street as rule 1."]}
    assert [m.extra["same_as"] for m in (errors[k][0] for k in errors)] == ["rules.0", "rules.1", "rules.0"]
    db.session.rollback()
    assert coverage_state("QNG-02") == before and _audits() == audits


def test_the_api_says_which_rule_repeats_which(client):
    before = coverage_state("QNG-02")
    login(client, "supervisor")
    headers = {"X-CSRFToken": csrf_token(client, "/routes")}
    rules = [{"commune_code": "21220", "kind": "hamlet", "phrase": "Thôn Trường Thọ"},
             {"commune_code": "21025", "kind": "street", "phrase": "Hùng Vương"},
             {"commune_code": "21220", "kind": "hamlet", "phrase": "Thon Truong Tho"}]
    resp = client.put("/api/v1/routes/QNG-02/coverage", headers=headers, json={"rules": rules})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert resp.json["errors"]["json"] == {"rules.2.phrase": ["The same hamlet or street as rule 1."]}
    assert resp.json["details"] == [{"location": "json", "field": "rules.2.phrase", "code": "repeated_rule",
                                     "message": "The same hamlet or street as rule 1.", "same_as": "rules.0"}]
    db.session.rollback()
    assert coverage_state("QNG-02") == before
