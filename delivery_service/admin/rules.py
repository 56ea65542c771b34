"""The business rules page: what were environment variables (failure reasons, service level,
attempts, correction window, identity check, colour bands), changed by a national admin, read-only
for a province admin. Every save is a ``settings.update`` audit event."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from delivery_service import config, rules
from delivery_service.accounts.models import Role
from delivery_service.admin import in_language, tr
from delivery_service.admin.scope import province_of
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db
from delivery_service.rules.services import as_values, may_change, stored_values
from delivery_service.web.access import page_actor, roles_required

bp = Blueprint("admin_rules", __name__, url_prefix="/admin/settings")
NEW_REASON_ROWS = 2
# (Vietnamese, English), shown in the reader's language
ID_CHECK_LABELS = {
    "id_last4": ("4 số cuối CCCD", "Last 4 digits of the ID card"),
    "otp": ("Mã một lần", "One-time code"),
    "none": ("Không kiểm tra", "No check"),
}
BAND_LABELS = {
    "delivery_rate": ("Tỷ lệ phát thành công", "Delivery rate"),
    "on_time_rate": ("Tỷ lệ đúng hạn", "On-time rate"),
    "post_share": ("Tỷ lệ qua bưu chính", "Postal share"),
}


def _form_values(current: rules.Rules) -> dict[str, Any]:
    values = as_values(current)
    return {
        "reasons": [
            {**r, "retired": r["code"] in values["RETIRED_REASONS"], "existing": True}
            for r in values["FAILURE_REASONS"]
        ]
        + [
            {"code": "", "label": "", "label_en": "", "retired": False, "existing": False}
            for _ in range(NEW_REASON_ROWS)
        ],
        "delivery_target_days": str(current.delivery_target_days),
        "delivery_target_working_days": current.delivery_target_working_days,
        "max_failed_attempts": str(current.max_failed_attempts),
        "correction_window_min": str(current.correction_window_min),
        "delivery_id_check": current.delivery_id_check,
        **{f"bands_{k}": ", ".join(f"{x:.2f}" for x in v) for k, v in current.report_bands.items()},
    }


def _posted() -> tuple[dict[str, Any], dict[str, Any]]:
    """(the form as typed, the changes for rules.save)."""
    form = request.form
    reasons, retired = [], []
    typed = []
    i = 0
    while f"reasons-{i}-code" in form:
        row = {
            "code": form.get(f"reasons-{i}-code", "").strip(),
            "label": form.get(f"reasons-{i}-label", ""),
            "label_en": form.get(f"reasons-{i}-label_en", ""),
            "retired": f"reasons-{i}-retired" in form,
            "existing": f"reasons-{i}-existing" in form,
            "delete": f"reasons-{i}-delete" in form,
        }
        typed.append(row)
        if row["code"] or row["label"] or row["label_en"]:
            if not row["delete"]:
                reasons.append(
                    {"code": row["code"], "label": row["label"], "label_en": row["label_en"], "row": i}
                )
                if row["retired"]:
                    retired.append(row["code"])
        i += 1
    bands: dict[str, list[str]] = {}
    for name in config.BAND_RATES:
        bands[name] = [x for x in form.get(f"bands_{name}", "").replace(";", ",").split(",") if x.strip()]
    changes = {
        "FAILURE_REASONS": reasons,
        "RETIRED_REASONS": retired,
        "DELIVERY_TARGET_DAYS": form.get("delivery_target_days", ""),
        "DELIVERY_TARGET_WORKING_DAYS": "delivery_target_working_days" in form,
        "MAX_FAILED_ATTEMPTS": form.get("max_failed_attempts", ""),
        "CORRECTION_WINDOW_MIN": form.get("correction_window_min", ""),
        "DELIVERY_ID_CHECK": form.get("delivery_id_check", ""),
        "REPORT_BANDS": bands,
    }
    values = {
        **form.to_dict(),
        "reasons": typed,
        "delivery_target_working_days": "delivery_target_working_days" in form,
    }
    return values, changes


@bp.route("", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def index():
    actor = page_actor()
    editable = may_change(actor)
    errors: dict[str, Any] = {}
    if request.method == "POST":
        if not editable:
            abort(403)
        values, changes = _posted()
        try:
            rules.save(actor, changes, ip=request.remote_addr)
        except InvalidInput as exc:
            db.session.rollback()
            errors = in_language(exc.errors)
        else:
            flash(
                tr(
                    "Đã lưu quy tắc nghiệp vụ; mọi máy chủ áp dụng trong vòng 1 giây.",
                    "Business rules saved; every web node applies them within a second.",
                ),
                "success",
            )
            return redirect(url_for("admin_rules.index"), code=303)
    else:
        values = _form_values(rules.current())
    saved = stored_values()
    return render_template(
        "admin/settings.html",
        values=values,
        errors=errors,
        editable=editable,
        saved_keys=set(saved),
        id_checks={value: tr(*text) for value, text in ID_CHECK_LABELS.items()},
        band_labels={name: tr(*text) for name, text in BAND_LABELS.items()},
        province=province_of(current_user),
        focus=None,
        labels={},
    ), (422 if errors else 200)
