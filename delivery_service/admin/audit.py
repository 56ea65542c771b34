"""The audit log: who changed what and when, searched by administrators (/admin/audit)."""

from __future__ import annotations

import datetime as dt

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
    "user.deactivate": ("Khóa tài khoản", "Account deactivated"),
    "user.reactivate": ("Mở lại tài khoản", "Account reactivated"),
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
}


def action_label(action: str) -> str:
    return label(ACTIONS, action)


def object_label(object_type: str | None) -> str:
    if not object_type:
        return ""
    return label(OBJECT_TYPES, object_type)


def _people(object_ids: list[str | None]) -> dict[str, tuple[str, str]]:
    """(user name, full name) of the users an audit page names, by id as the events store it."""
    ids = {n for i in object_ids if (n := whole_number(i)) is not None}
    if not ids:
        return {}
    return {str(uid): (name, full or name) for uid, name, full in db.session.execute(
        sa.select(User.id, User.username, User.full_name).where(User.id.in_(ids)))}


def field_label(field: str) -> str:
    return label(FIELDS, field)


def value_label(field: str, value: object) -> str:
    """A before/after value as people read it: yes/no, a role's name, a dash for nothing."""
    from delivery_service.web.display import ROLE

    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return tr("Có", "Yes") if value else tr("Không", "No")
    if isinstance(value, list):  # a route's communes or rules, an area's communes
        return "; ".join(map(str, value)) or "—"
    if field == "role":
        try:
            return str(ROLE[Role(value)])
        except ValueError:
            return str(value)
    if field == "password":
        return {"generated": tr("tạo tự động", "generated"),
                "set by administrator": tr("quản trị viên đặt", "set by an administrator"),
                }.get(str(value), "…")
    return str(value)


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
    users = _people([e.object_id for e in page.rows if e.object_type == "user"])
    object_types = sorted_vi(set(OBJECT_TYPES) | set(svc.known_object_types()), key=object_label)
    return render_template("admin/audit.html", page=page, query=query, actions=actions, users=users,
                           object_types=object_types, object_label=object_label,
                           action_label=action_label, field_label=field_label, value_label=value_label,
                           changes=svc.changes)
