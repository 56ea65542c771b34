"""Administration of API clients (the counters' one-stop software): create with the token shown
once (after a redirect: ``shown_once``), revoke, and their webhook: address, pause and resume, the
signing secret's rotation with an overlap. The delivery log stays on the webhooks page
(webhooks.index)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from delivery_service.accounts.models import ApiClient, Role, User
from delivery_service.accounts.services import Actor
from delivery_service.admin import in_language, shown_once, tr
from delivery_service.admin import org_services as svc
from delivery_service.admin.scope import province_of, unit_in_province
from delivery_service.db import utcnow
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.localtime import local_today
from delivery_service.reports import figures_api
from delivery_service.web.access import roles_required
from delivery_service.webhooks import services as webhooks
from delivery_service.webhooks.models import WebhookEndpoint

bp = Blueprint("admin_clients", __name__, url_prefix="/admin/clients")
admin_required = roles_required(Role.ADMIN)


def labels() -> dict[str, str]:
    """The form fields' names in the reader's language."""
    return {
        "name": tr("Tên hệ thống", "System name"),
        "counter": tr("Bộ phận một cửa", "Counter"),
        "url": tr("Địa chỉ webhook", "Webhook URL"),
        "overlap_hours": tr("Thời gian chồng lấn (giờ)", "Overlap (hours)"),
        "unit": tr("Đơn vị được xem số liệu", "Unit whose figures it reads"),
    }


def _admin() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _client(client_id: int) -> ApiClient:
    try:
        return svc.get_client(_admin(), client_id)
    except NotFound:
        abort(404)


def _index(
    values: dict[str, Any] | None = None,
    errors: dict[str, Any] | None = None,
    client_errors: dict[int, dict[str, Any]] | None = None,
    status: int = 200,
):  # noqa: ANN202
    admin = _admin()
    clients = db.session.scalars(svc.clients_query(admin)).all()
    endpoints = {
        e.api_client_id: e
        for e in db.session.scalars(
            sa.select(WebhookEndpoint).where(WebhookEndpoint.api_client_id.in_([c.id for c in clients]))
        )
    }
    counters = [("", "—")] + [
        (c.code, f"{c.code} · {c.name}") for c in db.session.scalars(svc.counters_query(admin)) if c.active
    ]
    return render_template(
        "admin/clients.html",
        clients=clients,
        endpoints=endpoints,
        state=webhooks.state,
        counters=counters,
        values=values or {},
        errors=errors or {},
        labels=labels(),
        focus=None,
        client_errors=client_errors or {},
        province=province_of(admin),
    ), status


def _refused(client: ApiClient, exc: InvalidInput):  # noqa: ANN202
    """The list again, 422, with the client's form as typed and its errors (nothing was changed)."""
    db.session.rollback()
    return _index(client_errors={client.id: {"values": request.form.to_dict(),
                                             "errors": in_language(exc.errors)}},
                  status=422)


# The kinds of secret shown once (the first part of their subject), and the page that shows each.
TOKEN, WEBHOOK_SECRET = "api-token", "webhook-secret"
SECRET_PAGES = {TOKEN: "admin_clients.token", WEBHOOK_SECRET: "admin_clients.webhook_secret"}


def _show_once(client: ApiClient, kind: str, secret: str):  # noqa: ANN202
    """Answer a form that made a token or a signing secret with a redirect to the page that shows it
    once (Post/Redirect/Get): reloading that page posts nothing again, and shows the secret no more.
    The caller has made the change; it is committed here with the secret held."""
    admin = _admin()
    subject = f"{kind}:{client.id}"
    token, pad = shown_once.hold(admin, secret, subject=subject, user_id=admin.id)
    db.session.commit()
    shown_once.remember(subject, token, pad)
    return redirect(url_for(SECRET_PAGES[kind], client_id=client.id), code=303)


def _secret_page(client_id: int, kind: str):  # noqa: ANN202
    """The token or signing secret held for this client, once; afterwards "shown once already"."""
    client = _client(client_id)
    admin = _admin()
    subject, secret = f"{kind}:{client.id}", None
    held = shown_once.recall(subject)
    if held is not None:
        secret = shown_once.take(admin, *held, subject=subject, user_id=admin.id)
        db.session.commit()
    endpoint = db.session.scalar(sa.select(WebhookEndpoint).where(WebhookEndpoint.api_client_id == client.id))
    until = endpoint.previous_secret_until if kind == WEBHOOK_SECRET and endpoint else None
    response = make_response(render_template(
        "admin/clients_secret.html", client=client, kind=kind, secret=secret,
        until=until if until and until > utcnow() else None, province=province_of(admin)))
    response.headers["Cache-Control"] = "no-store"  # neither the browser nor a proxy keeps the page
    return response


@bp.get("")
@admin_required
def index():
    return _index()


@bp.post("")
@admin_required
def create():
    try:
        client, token = svc.create_client(_admin(), request.form, ip=request.remote_addr)
    except InvalidInput as exc:
        db.session.rollback()
        return _index(request.form.to_dict(), in_language(exc.errors), status=422)
    # The token is shown once on the next page: never logged, flashed or put in the session as is.
    return _show_once(client, TOKEN, token)


@bp.get("/<int:client_id>/token")
@admin_required
def token(client_id: int):
    """A new client's API token, once."""
    return _secret_page(client_id, TOKEN)


@bp.get("/<int:client_id>/webhook/secret")
@admin_required
def webhook_secret(client_id: int):
    """A webhook's new signing secret (saved address or rotation), once."""
    return _secret_page(client_id, WEBHOOK_SECRET)


@bp.post("/<int:client_id>/revoke")
@admin_required
def revoke(client_id: int):
    client = _client(client_id)
    svc.revoke_client(_admin(), client, ip=request.remote_addr)
    db.session.commit()
    flash(
        tr(
            f"Đã thu hồi khóa API của {client.name}: các lệnh gọi bằng khóa này bị từ chối.",
            f"{client.name}'s token is revoked: calls with it are refused.",
        ),
        "success",
    )
    return redirect(url_for("admin_clients.index"), code=303)


@bp.post("/<int:client_id>/webhook")
@admin_required
def set_webhook(client_id: int):
    client = _client(client_id)
    try:
        secret = svc.set_webhook(_admin(), client, request.form.get("url", ""), ip=request.remote_addr)
    except InvalidInput as exc:
        return _refused(client, exc)
    return _show_once(client, WEBHOOK_SECRET, secret)


@bp.post("/<int:client_id>/webhook/clear")
@admin_required
def clear_webhook(client_id: int):
    client = _client(client_id)
    svc.clear_webhook(_admin(), client, ip=request.remote_addr)
    db.session.commit()
    flash(tr(f"Đã xóa webhook của {client.name}.", f"{client.name}'s webhook is removed."), "success")
    return redirect(url_for("admin_clients.index"), code=303)


@bp.post("/<int:client_id>/webhook/pause")
@admin_required
def pause_webhook(client_id: int):
    return _pause(client_id, True)


@bp.post("/<int:client_id>/webhook/resume")
@admin_required
def resume_webhook(client_id: int):
    return _pause(client_id, False)


def _pause(client_id: int, pause: bool):  # noqa: ANN202
    client = _client(client_id)
    try:
        svc.pause_webhook(_admin(), client, pause, ip=request.remote_addr)
    except NotFound:
        abort(404)
    db.session.commit()
    flash(
        tr("Đã tạm dừng webhook; các sự kiện được giữ lại.", "Webhook paused; its events are kept.")
        if pause
        else tr("Đã tiếp tục webhook: gửi các sự kiện còn nợ.",
                "Webhook resumed: what is owed is being sent."),
        "success",
    )
    return redirect(url_for("admin_clients.index"), code=303)


@bp.post("/<int:client_id>/report-scope")
@admin_required
def set_report_scope(client_id: int):
    """The unit whose figures the client reads from GET /api/v1/reports/figures (blank: its counter's);
    a province admin may only give a unit of their province."""
    client = _client(client_id)
    admin = _admin()
    code = request.form.get("unit", "").strip() or None
    try:
        figures_api.set_report_scope(Actor.of_user(admin, administering=True), client.id, code,
                                     today=local_today(), ip=request.remote_addr)
        province = province_of(admin)
        if province is not None and client.report_unit_id is not None \
                and not unit_in_province(client.report_unit_id, province):
            raise InvalidInput({"unit": [tr("Đơn vị không thuộc tỉnh của bạn.",
                                            "The unit is not in your province.")]})
    except InvalidInput as exc:
        return _refused(client, exc)
    db.session.commit()
    flash(tr("Đã lưu phạm vi số liệu.", "The reporting scope is saved."), "success")
    return redirect(url_for("admin_clients.index"), code=303)


@bp.post("/<int:client_id>/webhook/rotate")
@admin_required
def rotate_secret(client_id: int):
    client = _client(client_id)
    try:
        secret, _until = svc.rotate_webhook_secret(
            _admin(), client, request.form.get("overlap_hours", ""), ip=request.remote_addr
        )
    except NotFound:
        abort(404)
    except InvalidInput as exc:
        return _refused(client, exc)
    return _show_once(client, WEBHOOK_SECRET, secret)
