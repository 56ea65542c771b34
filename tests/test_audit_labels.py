"""The audit log reads like the rest of the pages: every field name and coded value that the code
records is shown by its name in Vietnamese and in English, and the object column names a counter, a
route, a post office… by its code while it exists (its id once deleted). On SQLite and PostgreSQL."""

from __future__ import annotations

import html as htmllib
import re

import sqlalchemy as sa
from conftest import csrf_token, login

from delivery_service import rules
from delivery_service.accounts.models import AuditEvent, User
from delivery_service.accounts.services import Actor
from delivery_service.admin import audit
from delivery_service.admin import org_services as orgs
from delivery_service.admin import user_services as users
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.notifications.services import save_template
from delivery_service.orgs.models import CounterLevel
from delivery_service.reports import inputs
from delivery_service.reports.figures_api import set_report_scope
from delivery_service.routing import services as routing
from delivery_service.routing.models import PartKind
from delivery_service.units.models import UnitLevel
from delivery_service.units.services import unit_index


def _admin() -> User:
    return db.session.scalar(sa.select(User).where(User.username == "admin"))


def _commune(code: str) -> int:
    return unit_index().find(UnitLevel.COMMUNE, code, local_today()).id


def _record_every_kind_of_change(client) -> None:  # noqa: ANN001
    """What the administration pages and services record, one of each kind, as they record it."""
    admin = _admin()
    actor = Actor.of_user(admin, administering=True)
    counter = orgs.save_counter(admin, None, {
        "code": "QNG-TEST", "name": "Bộ phận một cửa xã thử", "level": "commune", "unit": "21025",
        "post_office": "BC-QNG", "hotline": "0255 3822 123", "label_format": "pdf", "label_size": "100x150",
        "label_requires_route": "1"})
    orgs.save_counter(admin, counter, {
        "name": "Bộ phận một cửa xã thử", "level": "commune", "unit": "21025", "post_office": "",
        "label_format": "zpl", "label_size": "a6", "active": "1"})
    office = orgs.save_office(admin, None, {"code": "BC-TEST", "name": "Bưu cục thử", "unit": "21025",
                                            "address": "1 Hùng Vương", "latitude": "15.1", "longitude": "108.8"})
    orgs.save_office(admin, office, {"name": "Bưu cục thử", "unit": "21025", "latitude": "", "longitude": ""})
    route = orgs.save_route(admin, None, {"code": "QNG-TEST", "name": "Tuyến thử", "post_office": "BC-QNG",
                                          "capacity_per_day": "10", "return_to_office": "1"})
    orgs.save_route(admin, route, {"name": "Tuyến thử", "post_office": "BC-QNG", "backup": "QNG-02",
                                   "capacity_per_day": "12", "active": "1"})
    db.session.commit()
    routing.set_coverage(actor, "QNG-TEST", communes=[_commune("21025")], rules=[
        {"commune_id": _commune("21220"), "kind": "hamlet", "phrase": "Thôn Trường Thọ"},
        {"commune_id": _commune("21220"), "kind": "street", "phrase": "Đường Phạm Văn Đồng"}],
        capacity=15, return_to_office=False)
    client_row, _token = orgs.create_client(admin, {"name": "Phần mềm một cửa thử", "counter": "QNG-TEST"})
    orgs.set_webhook(admin, client_row, "http://127.0.0.1:9/hook")
    orgs.pause_webhook(admin, client_row, True)
    orgs.pause_webhook(admin, client_row, False)
    orgs.rotate_webhook_secret(admin, client_row, "24")
    orgs.clear_webhook(admin, client_row)
    set_report_scope(actor, client_row.id, "51", today=local_today())
    orgs.revoke_client(admin, client_row)
    user, _secret = users.create_account(admin, username="nv.kiemtra", full_name="Nguyễn Văn Kiểm Tra",
                                         role="counter_staff", counter_id=counter.id)
    users.update_account(admin, user, full_name="Nguyễn Văn Kiểm Tra", role="supervisor",
                         post_office_id=office.id)
    users.set_active(admin, user, active=False)
    users.reset_password(admin, user)
    db.session.commit()
    save_template(actor, "delivered", "Bưu gửi {item_id} đã phát.", "zns-1")
    db.session.commit()
    rules.save(actor, {"DELIVERY_TARGET_DAYS": "5", "DELIVERY_TARGET_WORKING_DAYS": True,
                       "DELIVERY_ID_CHECK": "otp"})
    area = inputs.create_area(actor, inputs.AreaInput("KV-TEST", "Khu vực thử",
                                                      [inputs.UnitRef(UnitLevel.COMMUNE, "21025")]),
                              today=local_today())
    inputs.update_area(actor, area.id, inputs.AreaInput("KV-TEST", "Khu vực thử 2",
                                                        [inputs.UnitRef(UnitLevel.COMMUNE, "21220")]),
                       today=local_today())
    db.session.commit()
    inputs.delete_area(actor, area.id)
    db.session.commit()
    login(client, "admin")
    resp = client.post("/admin/privacy/export", data={"csrf_token": csrf_token(client, "/admin/privacy"),
                                                       "kind": "phone", "value": "0905123456"})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]


def _changes(html: str) -> tuple[list[str], list[str]]:
    """The field names (<dt>) and the values (<dd>) the audit page shows, as text."""
    def text(fragment: str) -> str:
        return htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", fragment))).strip()

    return ([text(f) for f in re.findall(r"<dt>(.*?)</dt>", html, re.S)],
            [text(v) for v in re.findall(r"<dd>(.*?)</dd>", html, re.S)])


def test_every_recorded_field_and_value_reads_by_its_name_in_both_languages(client):
    _record_every_kind_of_change(client)
    db.session.rollback()
    events = list(db.session.scalars(sa.select(AuditEvent)))
    recorded = {e.action for e in events}
    assert {"counter.create", "counter.update", "post_office.update", "route.create", "route.coverage",
            "api_client.create", "webhook.rotate_secret", "api_client.report_scope", "user.update",
            "settings.update", "notification_template.update", "report_area.delete",
            "privacy.citizen_export"} <= recorded
    # whatever a recorded event holds has a name: the next field recorded without one fails here
    keys = {k for e in events for k in (*(e.before or {}), *(e.after or {}))}
    assert keys - set(audit.FIELDS) == set()
    assert recorded - set(audit.ACTIONS) == set()
    assert {e.object_type for e in events if e.object_type} - set(audit.OBJECT_TYPES) == set()

    for lang in ("vi", "en"):
        pages = []
        for page in range(1, len(events) // 50 + 2):
            pages.append(client.get(f"/admin/audit?page={page}&lang={lang}").get_data(as_text=True))
        html = "\n".join(pages)
        assert html.count("<tr data-action") == len(events)
        names, values = _changes(html)
        assert names and set(names) & keys == set(), set(names) & keys
        shown = " ; ".join(values)
        for raw in ("100x150", "province_centre", "label_requires_route", "webhook_active", "report_unit_id",
                    "'code':", "delivery_rate", "T0", "+00:00"):
            assert raw not in shown, (lang, raw)
        assert re.search(r"\b(pdf|zpl|a6|otp)\b", shown) is None, lang
        if lang == "vi":
            assert re.search(r"\b(hamlet|street|commune|generated)\b", shown) is None
            assert "21220 | thôn/ấp/xóm | Thôn Trường Thọ" in shown and "21220 | đường/phố |" in shown
            assert "Định dạng nhãn" in names and "Webhook đang gửi" in names and "Khổ nhãn" in names
            assert "100 × 150 mm" in shown and "Bộ phận một cửa cấp xã" in shown and "Mã một lần" in shown
            assert "51 · Tỉnh Quảng Ngãi" in shown
            # a deactivated account reads as on the users' pages; "khóa" is the log-in lock only
            assert ">Ngừng hoạt động tài khoản<" in html and "Khóa tài khoản" not in html
        else:
            assert "Label format" in names and "Webhook sending" in names and "Commune counter" in shown
            assert "21220 | street | Đường Phạm Văn Đồng" in shown and "One-time code" in shown


def test_every_coded_value_the_code_records_has_a_name(app):
    """The codes the audited fields take (a counter's level and label defaults, a rule's kind, a
    second factor, an export's key) each have a name: a new one without a name fails here."""
    assert set(audit.VALUES["level"]) == {lv.value for lv in CounterLevel}
    assert set(audit.VALUES["label_format"]) == set(orgs.LABEL_FORMATS)
    assert set(audit.VALUES["label_size"]) == set(orgs.LABEL_SIZES)
    assert set(audit.VALUES["rules"]) == {k.value for k in PartKind}
    from delivery_service.privacy.export import KINDS

    assert set(audit.VALUES["by"]) == set(KINDS)
    for field in (*orgs.COUNTER_FIELDS, *orgs.OFFICE_FIELDS, *orgs.ROUTE_FIELDS, *rules.services.as_values(
            rules.current())):
        assert field in audit.FIELDS, field


def test_the_object_column_names_objects_by_code_and_a_deleted_one_by_id(client):
    admin = _admin()
    actor = Actor.of_user(admin, administering=True)
    counter = orgs.save_counter(admin, None, {"code": "QNG-TEST", "name": "Quầy thử", "level": "commune",
                                              "unit": "21025"})
    db.session.commit()
    routing.set_coverage(actor, "QNG-02", capacity=7)
    area = inputs.create_area(actor, inputs.AreaInput("KV-TEST", "Khu vực thử",
                                                      [inputs.UnitRef(UnitLevel.COMMUNE, "21025")]),
                              today=local_today())
    db.session.commit()
    area_id = area.id
    inputs.delete_area(actor, area_id)
    db.session.commit()
    login(client, "admin")
    html = client.get("/admin/audit").get_data(as_text=True)

    def cell(action: str) -> str:
        row = re.search(rf'<tr data-action="{re.escape(action)}".*?</tr>', html, re.S).group(0)
        return re.sub(r"\s+", " ", re.search(r'<td class="object"[^>]*>(.*?)</td>', row, re.S).group(1)).strip()

    assert cell("counter.create") == "Quầy một cửa QNG-TEST", cell("counter.create")
    assert cell("route.coverage") == "Tuyến phát QNG-02"
    assert cell("report_area.delete").startswith(f"Khu vực báo cáo {area_id} ")
    assert "(đã xóa)" in cell("report_area.delete")
    assert f'data-object="counter:{counter.id}"' in html  # the id stays searchable
    english = client.get("/admin/audit?lang=en").get_data(as_text=True)
    assert "Postal route QNG-02" in english and "(deleted)" in english
