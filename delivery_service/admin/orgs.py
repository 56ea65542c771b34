"""Administration pages of counters, post offices and postal routes (replacing `delivery-service
counters labels` and the demo seed's hand-made rows). A province admin sees only their province's."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from delivery_service.accounts.models import Role, User
from delivery_service.admin import in_language, tr
from delivery_service.admin import org_services as svc
from delivery_service.admin.scope import province_of
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.orgs.models import Counter, CounterLevel, PostalRoute, PostOffice
from delivery_service.web.access import page_actor, roles_required

bp = Blueprint("admin_orgs", __name__, url_prefix="/admin")
admin_required = roles_required(Role.ADMIN)

SIZES = [("100x150", "100 × 150 mm"), ("100x100", "100 × 100 mm"), ("a6", "A6"), ("a4", "A4")]


def levels() -> list[tuple[str, str]]:
    return [
        (CounterLevel.PROVINCE_CENTRE.value, tr("Trung tâm PVHCC tỉnh", "Province centre")),
        (CounterLevel.DISTRICT.value, tr("Bộ phận một cửa cấp huyện (đến 30/6/2025)", "District")),
        (CounterLevel.COMMUNE.value, tr("Bộ phận một cửa cấp xã", "Commune")),
    ]


def formats() -> list[tuple[str, str]]:
    return [("pdf", "PDF"), ("zpl", tr("ZPL (máy in nhãn)", "ZPL (label printer)"))]


def labels() -> dict[str, str]:
    """The form fields' names in the reader's language."""
    return {
        "code": tr("Mã", "Code"),
        "name": tr("Tên", "Name"),
        "level": tr("Cấp", "Level"),
        "unit": tr("Mã đơn vị hành chính", "Administrative unit code"),
        "post_office": tr("Bưu cục", "Post office"),
        "hotline": tr("Đường dây nóng", "Hotline"),
        "label_format": tr("Định dạng nhãn", "Label format"),
        "label_size": tr("Khổ nhãn", "Label size"),
        "address": tr("Địa chỉ", "Address"),
        "latitude": tr("Vĩ độ", "Latitude"),
        "longitude": tr("Kinh độ", "Longitude"),
        "courier": tr("Bưu tá", "Courier"),
        "capacity_per_day": tr("Số đơn tối đa mỗi ngày", "Capacity per day"),
        "backup": tr("Tuyến dự phòng", "Backup route"),
    }


def _admin() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined,no-any-return]


def _page(template: str, **context: Any) -> str:
    province = province_of(_admin())
    return render_template(template, province=province, labels=labels(), focus=None, **context)


def _or_404(fn: Any, *args: Any) -> Any:
    try:
        return fn(_admin(), *args)
    except NotFound:
        abort(404)


def _office_choices(offices: list[PostOffice] | None = None) -> list[tuple[str, str]]:
    if offices is None:
        offices = list(db.session.scalars(svc.offices_query(_admin())))
    return [("", "—")] + [(o.code, f"{o.code} · {o.name}") for o in offices]


# --- counters ---------------------------------------------------------------------------------------


@bp.get("/counters")
@admin_required
def counters():
    rows = db.session.scalars(svc.counters_query(_admin())).all()
    return _page("admin/counters.html", rows=rows)


def _counter_values(counter: Counter | None) -> dict[str, Any]:
    if counter is None:
        return {
            "level": CounterLevel.COMMUNE.value,
            "label_format": "pdf",
            "label_size": "100x150",
            "active": True,
        }
    return {
        "code": counter.code,
        "name": counter.name,
        "level": counter.level.value,
        "unit": counter.unit.code,
        "post_office": counter.post_office.code if counter.post_office else "",
        "hotline": counter.hotline or "",
        "label_format": counter.label_format,
        "label_size": counter.label_size,
        "label_requires_route": counter.label_requires_route,
        "active": counter.active,
    }


def _counter_form(counter: Counter | None):  # noqa: ANN202
    values, errors = _counter_values(counter), {}
    if request.method == "POST":
        values = {
            **request.form.to_dict(),
            "label_requires_route": "label_requires_route" in request.form,
            "active": "active" in request.form,
        }
        try:
            saved = svc.save_counter(_admin(), counter, request.form, ip=request.remote_addr)
        except InvalidInput as exc:
            db.session.rollback()
            errors = in_language(exc.errors)
        else:
            db.session.commit()
            flash(tr(f"Đã lưu bộ phận một cửa {saved.code}.", f"Counter {saved.code} saved."), "success")
            return redirect(url_for("admin_orgs.counters"), code=303)
    return _page(
        "admin/counters_form.html",
        counter=counter,
        values=values,
        errors=errors,
        levels=levels(),
        formats=formats(),
        sizes=SIZES,
        offices=_office_choices(),
    ), (422 if errors else 200)


@bp.route("/counters/new", methods=["GET", "POST"])
@admin_required
def counter_new():
    return _counter_form(None)


@bp.route("/counters/<int:counter_id>", methods=["GET", "POST"])
@admin_required
def counter_edit(counter_id: int):
    return _counter_form(_or_404(svc.get_counter, counter_id))


# --- post offices -----------------------------------------------------------------------------------


@bp.get("/offices")
@admin_required
def offices():
    rows = db.session.scalars(svc.offices_query(_admin())).all()
    return _page("admin/offices.html", rows=rows)


def _office_form(office: PostOffice | None):  # noqa: ANN202
    values: dict[str, Any] = {}
    if office is not None:
        values = {
            "code": office.code,
            "name": office.name,
            "unit": office.unit.code,
            "address": office.address or "",
            "latitude": "" if office.latitude is None else str(office.latitude),
            "longitude": "" if office.longitude is None else str(office.longitude),
        }
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = request.form.to_dict()
        try:
            saved = svc.save_office(_admin(), office, request.form, ip=request.remote_addr)
        except InvalidInput as exc:
            db.session.rollback()
            errors = in_language(exc.errors)
        else:
            db.session.commit()
            flash(tr(f"Đã lưu bưu cục {saved.code}.", f"Post office {saved.code} saved."), "success")
            return redirect(url_for("admin_orgs.offices"), code=303)
    return _page("admin/offices_form.html", office=office, values=values, errors=errors), (
        422 if errors else 200
    )


@bp.route("/offices/new", methods=["GET", "POST"])
@admin_required
def office_new():
    return _office_form(None)


@bp.route("/offices/<int:office_id>", methods=["GET", "POST"])
@admin_required
def office_edit(office_id: int):
    return _office_form(_or_404(svc.get_office, office_id))


# --- postal routes ----------------------------------------------------------------------------------


@bp.get("/routes")
@admin_required
def routes():
    rows = db.session.scalars(svc.routes_query(_admin())).all()
    couriers = {
        u.id: u
        for u in db.session.scalars(
            sa.select(User).where(User.id.in_([r.courier_id for r in rows if r.courier_id]))
        )
    }
    return _page("admin/routes.html", rows=rows, couriers=couriers)


def _route_form(route: PostalRoute | None):  # noqa: ANN202
    values: dict[str, Any] = {"active": True, "return_to_office": True}
    if route is not None:
        courier = db.session.get(User, route.courier_id) if route.courier_id else None
        values = {
            "code": route.code,
            "name": route.name,
            "post_office": route.post_office.code,
            "courier": courier.username if courier else "",
            "capacity_per_day": "" if route.capacity_per_day is None else str(route.capacity_per_day),
            "backup": route.backup.code if route.backup else "",
            "active": route.active,
            "return_to_office": route.return_to_office,
        }
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {
            **request.form.to_dict(),
            "active": "active" in request.form,
            "return_to_office": "return_to_office" in request.form,
        }
        try:
            saved = svc.save_route(_admin(), route, request.form, ip=request.remote_addr)
        except InvalidInput as exc:
            db.session.rollback()
            errors = in_language(exc.errors)
        else:
            db.session.commit()
            if route is None:  # a new route covers nothing yet: its coverage is the next step
                flash(
                    tr(
                        f"Đã tạo tuyến {saved.code}. Bây giờ chọn các xã, thôn, đường phố mà tuyến phát.",
                        f"Route {saved.code} created: now choose the communes, hamlets and streets.",
                    ),
                    "success",
                )
                return redirect(url_for("admin_orgs.route_coverage", route_id=saved.id), code=303)
            flash(
                tr(
                    f"Đã lưu tuyến {saved.code}. Phạm vi phát (các xã) sửa ở trang phạm vi.",
                    f"Route {saved.code} saved. Its communes are edited on the coverage page.",
                ),
                "success",
            )
            return redirect(url_for("admin_orgs.routes"), code=303)
    couriers, courier_groups = _courier_choices(route, values)
    offices = list(db.session.scalars(svc.offices_query(_admin())))
    backups = [("", "—")] + [
        (r.code, f"{r.code} · {r.name}")
        for r in db.session.scalars(svc.routes_query(_admin()))
        if route is None or r.id != route.id
    ]
    return _page(
        "admin/routes_form.html",
        route=route,
        values=values,
        errors=errors,
        offices=_office_choices(offices),
        couriers=couriers,
        courier_groups=courier_groups,
        # with JavaScript, a new route's couriers narrow to those of the office chosen (its province)
        office_provinces=svc.office_homes(offices) if courier_groups else {},
        backups=backups,
    ), (422 if errors else 200)


def _courier_choices(
    route: PostalRoute | None, values: dict[str, Any]
) -> tuple[list[tuple[str, str]], list[tuple[str, dict[str, str], list[tuple[str, str]]]]]:
    """The courier list: a route's, the couriers its post office's routes may have (those of the
    office the form names, once posted); a new route's, grouped by office and province (the office
    is chosen beside it), as the save checks them (org_services._may_drive), each group with what
    it fits for static/js/admin-routes.js: its office's code, or its province's (none: any office)."""

    def option(user: User) -> tuple[str, str]:
        return user.username, f"{user.full_name} ({user.username})"

    if route is None:
        groups = []
        for group in svc.courier_groups(_admin()):
            province = group.province or ""
            if group.office is not None:
                name = f"{group.office.code} · {group.office.name}"  # an office's name says where it is
            elif province:
                name = tr(f"Chưa thuộc bưu cục nào, phát tuyến ở {province}",
                          f"No post office, driving routes in {province}")
            else:
                name = tr("Chưa thuộc bưu cục nào, chưa phát tuyến nào", "No post office, no route yet")
            fits = ({"data-office": group.office.code} if group.office is not None
                    else {"data-province": group.home or ""} if group.province else {})
            groups.append((name, fits, [option(u) for u in group.couriers]))
        return [("", "—")], groups
    office = db.session.scalar(svc.offices_query(_admin()).where(
        PostOffice.code == str(values.get("post_office") or "").strip().upper())) or route.post_office
    couriers = [("", "—")] + [option(u) for u in svc.couriers_for(_admin(), office)]
    current = db.session.get(User, route.courier_id) if route.courier_id else None
    if current is not None and all(value != current.username for value, _text in couriers):
        # kept as it is, not silently dropped by the list: saving it says why it does not fit
        name = f"{current.full_name} ({current.username})"
        couriers.append((current.username, tr(f"{name}: không còn hợp với tuyến này",
                                              f"{name}: no longer fits this route")))
    return couriers, []


@bp.route("/routes/new", methods=["GET", "POST"])
@admin_required
def route_new():
    return _route_form(None)


@bp.route("/routes/<int:route_id>", methods=["GET", "POST"])
@admin_required
def route_edit(route_id: int):
    return _route_form(_or_404(svc.get_route, route_id))


@bp.route("/routes/<int:route_id>/coverage", methods=["GET", "POST"])
@admin_required
def route_coverage(route_id: int):
    """The route's communes, hamlets and streets, capacity and backup: the supervisors' coverage
    editor, on the administration's side (a province admin edits their province's routes, with its
    communes only, which routing.services.set_coverage enforces; the supervisors' page
    /routes/<code>/coverage is not theirs)."""
    from delivery_service.routing.views import coverage_form  # the routing pages import the admin's

    route = _or_404(svc.get_route, route_id)
    return coverage_form(page_actor(), route, action=url_for("admin_orgs.route_coverage", route_id=route.id),
                         done=url_for("admin_orgs.routes"))
