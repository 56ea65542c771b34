"""/admin/privacy: a citizen's request for their data (a JSON export of everything held about one
phone number or dossier code), the access log's search, and the retention in force. Admins only; a
province admin sees only the orders of their province. docs/privacy.md."""

from __future__ import annotations

import json

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, render_template, request
from flask_login import current_user

from delivery_service.accounts.models import Role
from delivery_service.accounts.services import record
from delivery_service.admin import tr
from delivery_service.admin.scope import province_of
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db
from delivery_service.privacy import access, export
from delivery_service.privacy.models import PrivacyRun
from delivery_service.web.access import page_actor, roles_required

bp = Blueprint("admin_privacy", __name__, url_prefix="/admin/privacy")
admin_required = roles_required(Role.ADMIN)


def _page(values: dict[str, str], errors: dict[str, list[str]], status: int = 200):
    province = province_of(current_user)
    query = {"order": request.args.get("order", "").strip()[:64],
             "user": request.args.get("user", "").strip()[:64]}
    searched = bool(query["order"] or query["user"])
    rows = export.search_access(order=query["order"], username=query["user"], province=province)
    runs = list(db.session.scalars(sa.select(PrivacyRun).order_by(PrivacyRun.day.desc()).limit(7)))
    db.session.rollback()
    return render_template("admin/privacy.html", values=values, errors=errors, query=query, rows=rows,
                           searched=searched, province=province, runs=runs,
                           retention_days=current_app.config["PERSONAL_DATA_RETENTION_DAYS"]), status


@bp.get("")
@admin_required
def index():
    """The export form, the access log (the latest opens, or those searched for), the last erasures."""
    return _page({"kind": "phone", "value": ""}, {})


@bp.post("/export")
@admin_required
def citizen_export():
    """Everything held about one phone number or dossier code, as a JSON download; audited, and each
    order's opening logged in the access log."""
    values = {"kind": request.form.get("kind", "phone"), "value": (request.form.get("value") or "")[:64]}
    actor = page_actor()
    try:
        data, ids = export.citizen_export(actor, values["kind"], values["value"], province_of(current_user))
    except InvalidInput as exc:
        db.session.rollback()
        errors = {name: [_message(m) for m in msgs] for name, msgs in exc.errors.items()}
        return _page(values, errors, 422)
    item_ids = [o["item_id"] for o in data["orders"]]
    # The audit names the kind of request and the orders, never the phone number asked about.
    record("privacy.citizen_export", actor=actor, object_type="privacy_export",
           after={"by": values["kind"], "orders": item_ids[:100], "count": len(item_ids)},
           ip=request.remote_addr)
    access.opened(actor, "citizen_export", order_ids=ids, commit=False)
    db.session.commit()
    body = json.dumps(data, ensure_ascii=False, indent=2)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="du-lieu-ca-nhan.json"', "Cache-Control": "no-store"})


MESSAGES = {
    "Choose a phone number or a dossier code.": ("Chọn số điện thoại hoặc mã hồ sơ.", None),
    "Must not be empty.": ("Không được để trống.", None),
    "Not a valid Vietnamese phone number.": ("Số điện thoại Việt Nam không hợp lệ.", None),
    "A dossier code has at most 64 characters.": ("Mã hồ sơ dài tối đa 64 ký tự.", None),
}


def _message(message: object) -> str:
    text = str(message)
    vi = MESSAGES.get(text, (text, None))[0]
    return tr(vi, text)
