"""The audit log: who changed what and when, searched by administrators (/admin/audit)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from flask_login import current_user

from delivery_service.accounts.models import Role, User
from delivery_service.admin import label, tr
from delivery_service.admin import user_services as svc
from delivery_service.extensions import db
from delivery_service.fields import page_number, whole_number
from delivery_service.vietnamese import sorted_vi
from delivery_service.web.access import roles_required

bp = Blueprint("admin_audit", __name__, url_prefix="/admin/audit")

# action: (Vietnamese, English). Actions recorded by other modules show their code when not here.
ACTIONS = {
    "login": ("Đăng nhập", "Log-in"),
    "login_failed": ("Đăng nhập thất bại", "Failed log-in"),
    "logout": ("Đăng xuất", "Log-out"),
    "password_change": ("Đổi mật khẩu", "Password changed"),
    "password_change_failed": ("Đổi mật khẩu thất bại", "Failed password change"),
    "totp_enabled": ("Bật xác thực hai lớp", "Two-factor log-in on"),
    "totp_disabled": ("Tắt xác thực hai lớp", "Two-factor log-in off"),
    "user.create": ("Tạo tài khoản", "Account created"),
    "user.update": ("Sửa tài khoản", "Account changed"),
    "user.deactivate": ("Ngừng hoạt động tài khoản", "Account deactivated"),
    "user.reactivate": ("Cho hoạt động lại tài khoản", "Account reactivated"),
    "user.password_reset": ("Đặt lại mật khẩu", "Password reset"),
    "user.unlock": ("Mở khóa đăng nhập", "Log-in unlocked"),
    "counter.create": ("Tạo quầy một cửa", "Counter created"),
    "counter.update": ("Sửa quầy một cửa", "Counter changed"),
    "post_office.create": ("Tạo bưu cục", "Post office created"),
    "post_office.update": ("Sửa bưu cục", "Post office changed"),
    "route.create": ("Tạo tuyến phát", "Route created"),
    "route.update": ("Sửa tuyến phát", "Route changed"),
    "route.coverage": ("Sửa phạm vi phát của tuyến", "Route's coverage changed"),
    "report_area.create": ("Tạo khu vực báo cáo", "Reporting area created"),
    "report_area.update": ("Sửa khu vực báo cáo", "Reporting area changed"),
    "report_area.delete": ("Xóa khu vực báo cáo", "Reporting area deleted"),
    "api_client.create": ("Tạo phần mềm kết nối", "API client created"),
    "api_client.revoke": ("Thu hồi phần mềm kết nối", "API client revoked"),
    "api_client.report_scope": ("Đổi phạm vi báo cáo của phần mềm kết nối",
                                "API client's report scope changed"),
    "webhook.update": ("Sửa webhook", "Webhook changed"),
    "webhook.clear": ("Xóa webhook", "Webhook removed"),
    "webhook.pause": ("Tạm dừng webhook", "Webhook paused"),
    "webhook.resume": ("Chạy lại webhook", "Webhook resumed"),
    "webhook.rotate_secret": ("Đổi khóa ký webhook", "Webhook secret rotated"),
    "settings.update": ("Sửa quy tắc nghiệp vụ", "Business rules changed"),
    "notification_template.update": ("Sửa mẫu tin nhắn", "Message template changed"),
    "privacy.citizen_export": ("Trích xuất dữ liệu của công dân", "Citizen's data exported"),
}
# object_type: (Vietnamese, English). The code stays in the row's title and data-object.
OBJECT_TYPES = {
    "user": ("Người dùng", "User"),
    "counter": ("Quầy một cửa", "Counter"),
    "post_office": ("Bưu cục", "Post office"),
    "route": ("Tuyến phát", "Postal route"),
    "report_area": ("Khu vực báo cáo", "Reporting area"),
    "api_client": ("Phần mềm kết nối (API)", "API client"),
    "notification_template": ("Mẫu tin nhắn", "Message template"),
    "business_rules": ("Quy tắc nghiệp vụ", "Business rules"),
    "privacy_export": ("Trích xuất dữ liệu cá nhân", "Personal data export"),
}
FIELDS = {
    "username": ("Tên đăng nhập", "User name"),
    "full_name": ("Họ và tên", "Full name"),
    "role": ("Vai trò", "Role"),
    "counter": ("Quầy", "Counter"),
    "post_office": ("Bưu cục", "Post office"),
    "area_unit": ("Địa bàn", "Area"),
    "active": ("Đang hoạt động", "Active"),
    "must_change_password": ("Phải đổi mật khẩu", "Must change password"),
    "password": ("Mật khẩu", "Password"),
    "locked": ("Bị khóa đăng nhập", "Log-in locked"),
    "second_factor": ("Lớp xác thực thứ hai", "Second factor"),
    "code": ("Mã", "Code"),
    "name": ("Tên", "Name"),
    "courier": ("Bưu tá", "Courier"),
    "capacity_per_day": ("Số đơn tối đa mỗi ngày", "Orders per day at most"),
    "backup": ("Tuyến dự phòng", "Backup route"),
    "return_to_office": ("Kết thúc chuyến tại bưu cục", "Run ends at the post office"),
    "communes": ("Các xã, phường", "Communes"),
    "rules": ("Thôn, đường phố", "Hamlets and streets"),
    "token_prefix": ("Đầu mã khóa", "Token prefix"),
    "revoked": ("Đã thu hồi", "Revoked"),
    "webhook_url": ("Địa chỉ webhook", "Webhook address"),
    "webhook_active": ("Webhook đang gửi", "Webhook sending"),
    "old_secret_valid_until": ("Khóa ký cũ còn dùng đến", "Old signing secret valid until"),
    "overlap_hours": ("Số giờ dùng song song hai khóa", "Hours both secrets sign"),
    "report_unit_id": ("Phạm vi báo cáo", "Reporting scope"),
    # counters and post offices (admin.org_services COUNTER_FIELDS, OFFICE_FIELDS)
    "level": ("Cấp", "Level"),
    "unit": ("Đơn vị hành chính", "Administrative unit"),
    "hotline": ("Đường dây nóng", "Hotline"),
    "label_format": ("Định dạng nhãn", "Label format"),
    "label_size": ("Khổ nhãn", "Label size"),
    "label_requires_route": ("Chỉ in nhãn cho đơn đã có tuyến", "Labels only for orders on a route"),
    "address": ("Địa chỉ", "Address"),
    "latitude": ("Vĩ độ", "Latitude"),
    "longitude": ("Kinh độ", "Longitude"),
    # message templates, personal data exports
    "text": ("Nội dung", "Text"),
    "zns_template_id": ("Mã mẫu ZNS", "ZNS template id"),
    "by": ("Tìm theo", "Found by"),
    "orders": ("Các đơn", "Orders"),
    "count": ("Số đơn", "Number of orders"),
    # business rules (rules.services.as_values)
    "FAILURE_REASONS": ("Lý do phát không thành công", "Failure reasons"),
    "RETIRED_REASONS": ("Lý do ngừng dùng", "Retired reasons"),
    "DELIVERY_TARGET_DAYS": ("Số ngày phát sau ngày hẹn trả", "Days after the appointment date"),
    "DELIVERY_TARGET_WORKING_DAYS": ("Tính theo ngày làm việc", "Count working days"),
    "MAX_FAILED_ATTEMPTS": ("Số lần phát không thành công tối đa", "Maximum failed attempts"),
    "CORRECTION_WINDOW_MIN": ("Thời gian được sửa sự kiện (phút)", "Correction window (minutes)"),
    "DELIVERY_ID_CHECK": ("Kiểm tra danh tính khi phát", "Identity check at delivery"),
    "REPORT_BANDS": ("Dải màu báo cáo", "Report colour bands"),
}
# field: {stored code: (Vietnamese, English)}: the coded values the audited fields hold.
VALUES = {
    "level": {
        "province_centre": ("Trung tâm PVHCC tỉnh", "Province centre"),
        "district": ("Bộ phận một cửa cấp huyện", "District counter"),
        "commune": ("Bộ phận một cửa cấp xã", "Commune counter"),
    },
    "label_format": {"pdf": ("PDF", "PDF"), "zpl": ("ZPL (máy in nhãn)", "ZPL (label printer)")},
    "label_size": {"100x150": ("100 × 150 mm", "100 × 150 mm"), "100x100": ("100 × 100 mm", "100 × 100 mm"),
                   "a6": ("A6", "A6"), "a4": ("A4", "A4")},
    "second_factor": {"totp": ("mã từ ứng dụng xác thực", "authenticator code"),
                      "recovery": ("mã dự phòng", "recovery code"), "wrong": ("mã sai", "wrong code")},
    "by": {"phone": ("Số điện thoại", "Phone number"), "dossier": ("Mã hồ sơ", "Dossier code")},
    "password": {"generated": ("tạo tự động", "generated"),
                 "set by administrator": ("quản trị viên đặt", "set by an administrator")},
    # a rule's kind (routing.models.PartKind), inside a route's "rules"
    "rules": {"hamlet": ("thôn/ấp/xóm", "hamlet"), "street": ("đường/phố", "street")},
}


def action_label(action: str) -> str:
    return label(ACTIONS, action)


def object_label(object_type: str | None) -> str:
    if not object_type:
        return ""
    return label(OBJECT_TYPES, object_type)


# object_type: the model whose rows the events name, shown by their code (a user: user name and full name)
def _models() -> dict[str, Any]:
    from delivery_service.accounts.models import ApiClient
    from delivery_service.orgs.models import Counter, PostalRoute, PostOffice
    from delivery_service.reports.models import ReportArea

    return {"user": (User, User.username, User.full_name), "counter": (Counter, Counter.code, Counter.name),
            "post_office": (PostOffice, PostOffice.code, PostOffice.name),
            "route": (PostalRoute, PostalRoute.code, PostalRoute.name),
            "report_area": (ReportArea, ReportArea.code, ReportArea.name),
            "api_client": (ApiClient, ApiClient.name, ApiClient.name)}


def _objects(events: list[Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """{(object type, id as the events store it): (code, name)} of the objects an audit page names
    that still exist, in one query for the page (a deleted one is not there: the page shows its id)."""
    models = _models()
    wanted: dict[str, set[int]] = {}
    for e in events:
        if e.object_type in models and (n := whole_number(e.object_id)) is not None:
            wanted.setdefault(e.object_type, set()).add(n)
    if not wanted:
        return {}
    selects = [sa.select(sa.literal(kind).label("kind"), model.id.label("id"), code.label("code"),
                         name.label("name")).where(model.id.in_(sorted(ids)))
               for kind, ids in wanted.items() for model, code, name in [models[kind]]]
    rows = db.session.execute(selects[0] if len(selects) == 1 else sa.union_all(*selects))
    return {(kind, str(row_id)): (code, name or code) for kind, row_id, code, name in rows}


def object_name(object_type: str | None, object_id: str | None) -> str:
    """An object with no row to look up, as people read it: a message template's kind."""
    if object_type == "notification_template" and object_id:
        from delivery_service.notifications.texts import KIND_LABELS

        return label(KIND_LABELS, object_id)
    if object_type in ("business_rules", "privacy_export"):  # one set of rules; an export names no row
        return ""
    return object_id or ""


def deleted(object_type: str | None) -> bool:
    """Whether an object of this type missing from ``_objects`` was deleted (its id is shown)."""
    return object_type in _models()


def field_label(field: str) -> str:
    return label(FIELDS, field)


def value_label(field: str, value: object) -> str:
    """A before/after value as people read it: yes/no, a role's, a counter level's or a label size's
    name, a route rule's kind in words, a dash for nothing; a code with no name as it is."""
    from delivery_service.web.display import ROLE

    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return tr("Có", "Yes") if value else tr("Không", "No")
    if field == "FAILURE_REASONS" and isinstance(value, list):  # [{code, label, label_en}]
        return "; ".join(_reason(r) if isinstance(r, dict) else str(r) for r in value) or "—"
    if field == "rules" and isinstance(value, list):  # "commune code | kind | name"
        return "; ".join(_rule(str(r)) for r in value) or "—"
    if isinstance(value, list):  # a route's or an area's communes, an export's orders
        return "; ".join(map(str, value)) or "—"
    if isinstance(value, dict):  # REPORT_BANDS: {figure: thresholds}
        from delivery_service.admin.rules import BAND_LABELS

        return "; ".join(f"{label(BAND_LABELS, str(k))}: "
                         f"{', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in value.items()) or "—"
    if field == "role":
        try:
            return str(ROLE[Role(value)])
        except ValueError:
            return str(value)
    if field == "password":
        return label(VALUES["password"], str(value)) if str(value) in VALUES["password"] else "…"
    if field == "DELIVERY_ID_CHECK":
        from delivery_service.admin.rules import ID_CHECK_LABELS

        return label(ID_CHECK_LABELS, str(value))
    if field == "report_unit_id":  # an administrative unit's id: its code and name (unit index, no query)
        from delivery_service.units.services import unit_index

        unit = unit_index().by_id.get(value) if isinstance(value, int) else None
        return f"{unit.code} · {unit.name}" if unit else str(value)
    if field == "old_secret_valid_until":
        from delivery_service.web.display import format_moment

        try:
            return format_moment(dt.datetime.fromisoformat(str(value)))
        except ValueError:
            return str(value)
    if field in VALUES:
        return label(VALUES[field], str(value))
    return str(value)


def _reason(reason: dict[str, Any]) -> str:
    """A failure reason as the rules keep it, {code, label, label_en}: its code and its label."""
    vi = str(reason.get("label") or "")
    return f"{reason.get('code')}: {tr(vi, str(reason.get('label_en') or vi))}"


def _rule(line: str) -> str:
    """A route rule as the audit keeps it, "commune code | hamlet | name", with its kind in words."""
    parts = line.split(" | ", 2)
    if len(parts) == 3:
        parts[1] = label(VALUES["rules"], parts[1])
    return " | ".join(parts)


def _date(raw: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat((raw or "").strip())
    except ValueError:
        return None


@bp.get("")
@roles_required(Role.ADMIN)
def index():
    """Audit events, newest first: actor, action, object, dates (local days)."""
    args = {k: (request.args.get(k) or "").strip()[:64]
            for k in ("actor", "action", "object_type", "object_id")}
    date_from, date_to = _date(request.args.get("from")), _date(request.args.get("to"))
    page_no = page_number(request.args.get("page"))
    me = db.session.get(User, current_user.id)
    page = svc.search_audit(me, date_from=date_from, date_to=date_to, page=page_no, **args)
    actions = sorted_vi(set(svc.known_actions()) | set(ACTIONS), key=action_label)
    query = {**args, "from": date_from.isoformat() if date_from else "",
             "to": date_to.isoformat() if date_to else ""}
    objects = _objects(page.rows)
    object_types = sorted_vi(set(OBJECT_TYPES) | set(svc.known_object_types()), key=object_label)
    return render_template("admin/audit.html", page=page, query=query, actions=actions, objects=objects,
                           object_types=object_types, object_label=object_label,
                           action_label=action_label, field_label=field_label, value_label=value_label,
                           object_name=object_name, deleted=deleted, changes=svc.changes)
