"""Citizen notifications for national admins: the message templates per event kind (validated
placeholders, a preview with a sample order, every save an audit event) and the latest messages with
their state, phone numbers masked to the last 3 digits."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from delivery_service.admin import in_language, label, tr
from delivery_service.admin.scope import national_admin_required
from delivery_service.errors import InvalidInput
from delivery_service.extensions import db
from delivery_service.notifications import services, texts
from delivery_service.web.access import page_actor

bp = Blueprint("admin_notifications", __name__, url_prefix="/admin/notifications")

# A message's state (notifications.models.NotificationMessage.state): (Vietnamese, English).
STATE_LABELS = {
    "pending": ("Chờ gửi", "Waiting to be sent"),
    "deferred": ("Hoãn (giờ yên lặng)", "Deferred (quiet hours)"),
    "sent": ("Đã gửi", "Sent"),
    "failed": ("Gửi không được", "Failed"),
    "opted_out": ("Đã từ chối nhận tin", "Opted out"),
    "skipped": ("Bỏ qua (không có số hợp lệ, hoặc tin đã lỗi thời)",
                "Skipped (no valid number, or out of date)"),
}


# Where messages go (config NOTIFY_PROVIDER), in words for the staff who read the page.
PROVIDER_LABELS = {
    "log": ("chỉ ghi vào nhật ký máy chủ (chưa gửi tin thật cho công dân)",
            "the server's log only (no real message reaches citizens)"),
    "sms": ("SMS thương hiệu", "brand-name SMS"),
    "zns": ("tin Zalo (ZNS)", "Zalo messages (ZNS)"),
}
# What the server's operator must set up for citizens to get real messages.
OPERATOR_HINT = ("Để gửi tin thật, người vận hành máy chủ cần cấu hình một cổng SMS thương hiệu "
                 "hoặc Zalo ZNS (địa chỉ và khóa truy cập do nhà cung cấp cấp).",
                 "For real messages, the server's operator must set up a brand-name SMS gateway or Zalo ZNS "
                 "(the address and access key the provider gives).")


def provider_label(name: str, brandname: str | None = None) -> str:
    """The provider in the reader's language; an SMS gateway with its brand name."""
    text = label(PROVIDER_LABELS, name)
    return f"{text} ({brandname})" if name == "sms" and brandname else text


def kind_label(kind: str) -> str:
    """The event a message is about, in the reader's language (its code when unknown)."""
    return label(texts.KIND_LABELS, kind)


def state_label(state: str) -> str:
    return label(STATE_LABELS, state)


def _preview(text: str) -> dict[str, Any] | None:
    try:
        checked = texts.check_template(text)
    except texts.TemplateError:
        return None
    rendered = texts.render(checked, texts.SAMPLE)
    plain = texts.gsm_text(rendered)
    return {"text": rendered, "chars": len(rendered), "segments": texts.ucs2_segments(rendered),
            "plain": plain, "plain_chars": texts.gsm_length(plain),
            "cut": plain != texts.strip_diacritics(rendered).strip()}


def _page(typed: dict[str, dict[str, str]] | None = None,
          errors: dict[str, dict[str, list[str]]] | None = None, status: int = 200):
    typed, errors = typed or {}, errors or {}
    rows = []
    for kind, row in services.templates().items():
        values = typed.get(kind) or {"text": row.text if row else texts.DEFAULT_TEMPLATES[kind],
                                     "zns_template_id": (row.zns_template_id if row else "") or ""}
        rows.append({"kind": kind, "label": texts.KIND_LABELS[kind], "values": values, "row": row,
                     "errors": errors.get(kind, {}), "preview": _preview(values["text"])})
    cfg = current_app.config
    return render_template("admin/notifications.html", rows=rows, recent=services.recent(),
                           placeholders={name: tr(*text) for name, text in texts.PLACEHOLDERS.items()},
                           provider=provider_label(cfg["NOTIFY_PROVIDER"], cfg.get("NOTIFY_SMS_BRANDNAME")),
                           operator_hint=tr(*OPERATOR_HINT) if cfg["NOTIFY_PROVIDER"] == "log" else "",
                           unicode=cfg["NOTIFY_SMS_UNICODE"], quiet=cfg.get("NOTIFY_QUIET_HOURS_TEXT") or "",
                           enabled=cfg["NOTIFY_ENABLED"], kind_label=kind_label,
                           state_label=state_label, optouts=services.optout_count()), status


@bp.get("")
@national_admin_required
def index():
    return _page()


@bp.post("/<kind>")
@national_admin_required
def save(kind: str):
    """Save the kind's template, or (``action=preview``) show the typed text rendered, saving nothing."""
    if kind not in texts.KINDS:
        return _page(status=404)
    typed = {"text": request.form.get("text", ""), "zns_template_id": request.form.get("zns_template_id", "")}
    if request.form.get("action") == "preview":
        errors = {}
        try:
            texts.check_template(typed["text"])
        except texts.TemplateError as exc:
            errors = {kind: {"text": [tr(*exc.text)]}}
        return _page({kind: typed}, errors, 422 if errors else 200)
    try:
        services.save_template(page_actor(), kind, typed["text"], typed["zns_template_id"],
                               ip=request.remote_addr)
    except InvalidInput as exc:
        db.session.rollback()
        return _page({kind: typed}, {kind: in_language(exc.errors)}, 422)
    db.session.commit()
    flash(tr("Đã lưu mẫu tin nhắn.", "The template was saved."), "success")
    return redirect(url_for("admin_notifications.index") + f"#tpl-{kind}", 303)
