"""Administration of staff accounts: /admin/users. Thin views over ``user_services``."""

from __future__ import annotations

from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from delivery_service.accounts.models import Role, User
from delivery_service.admin import shown_once, tr
from delivery_service.admin import user_services as svc
from delivery_service.errors import InvalidInput, NotFound
from delivery_service.extensions import db
from delivery_service.fields import page_number, whole_number
from delivery_service.web.access import roles_required

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")

admin_required = roles_required(Role.ADMIN)
FIELDS = ("username", "full_name", "role", "counter_id", "post_office_id", "area_code", "province_id",
          "password")


def labels() -> dict[str, str]:
    return {
        "username": tr("Tên đăng nhập", "User name"),
        "full_name": tr("Họ và tên", "Full name"),
        "role": tr("Vai trò", "Role"),
        "counter_id": tr("Quầy một cửa (nhân viên quầy)", "Counter (counter staff)"),
        "post_office_id": tr("Bưu cục (trưởng bưu cục; bưu cục nhà của bưu tá)",
                             "Post office (supervisors; a courier's home office)"),
        "area_code": tr("Mã đơn vị hành chính (cán bộ địa bàn)",
                        "Administrative unit code (district officers)"),
        "province_id": tr("Tỉnh (quản trị cấp tỉnh; để trống: toàn quốc)",
                          "Province (province admin; empty: national)"),
        "password": tr("Mật khẩu tạm (để trống để tạo tự động)", "Temporary password (empty: generated)"),
        "active": tr("Trạng thái", "Status"),
    }


# The services' English messages, in Vietnamese; password policy messages go through the account
# pages' own translation.
MESSAGES_VI = {
    "Counter staff need a counter.": "Nhân viên quầy cần có quầy một cửa.",
    "This counter is outside your province.": "Quầy này nằm ngoài tỉnh của bạn.",
    "Supervisors need a post office.": "Trưởng bưu cục cần có bưu cục.",
    "Choose the courier's post office.": "Hãy chọn bưu cục của bưu tá.",
    "This post office is outside your province.": "Bưu cục này nằm ngoài tỉnh của bạn.",
    "District officers need the code of a current province or commune.":
        "Cán bộ địa bàn cần mã của một tỉnh hoặc xã đang có hiệu lực.",
    "This unit is outside your province.": "Đơn vị này nằm ngoài tỉnh của bạn.",
    "You can only give your own province.": "Bạn chỉ có thể giao tỉnh của mình.",
    "Choose a province, or none for a national administrator.":
        "Hãy chọn một tỉnh, hoặc để trống cho quản trị toàn quốc.",
    "User name must be 1-64 characters without spaces.": "Tên đăng nhập dài 1–64 ký tự, không có dấu cách.",
    "This user name is taken.": "Tên đăng nhập này đã có người dùng.",
    "Full name must be 1-200 characters.": "Họ và tên dài 1–200 ký tự.",
    "Choose a role.": "Hãy chọn vai trò.",
    "You cannot change your own role or scope.": "Bạn không thể đổi vai trò hay phạm vi của chính mình.",
    "You cannot deactivate your own account.": "Bạn không thể ngừng hoạt động tài khoản của chính mình.",
}


def translate(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    from delivery_service.accounts.views import _translated

    def one(message: str) -> str:
        if message in MESSAGES_VI:
            return tr(MESSAGES_VI[message], message)
        return _translated(message)

    return {field: [one(m) for m in messages] for field, messages in errors.items()}


def _page() -> int:
    return page_number(request.args.get("page"))


def _user(user_id: int) -> User:
    try:
        return svc.get_user(_me(), user_id)
    except NotFound:
        abort(404)


def _me() -> User:
    return db.session.get(User, current_user.id)


def _scope_args(form: dict[str, str]) -> dict[str, object]:
    return {"counter_id": whole_number(form.get("counter_id")),
            "post_office_id": whole_number(form.get("post_office_id")),
            "area_code": form.get("area_code") or "", "province_id": whole_number(form.get("province_id"))}


def _values(user: User | None) -> dict[str, str]:
    if user is None:
        return {"role": Role.COUNTER_STAFF.value}
    return {"username": user.username, "full_name": user.full_name, "role": user.role.value,
            "counter_id": str(user.counter_id or ""), "post_office_id": str(user.post_office_id or ""),
            "area_code": user.area_unit.code if user.area_unit and user.role is Role.DISTRICT_OFFICER else "",
            "province_id": str(user.area_unit_id or "") if user.role is Role.ADMIN else ""}


@bp.get("")
@admin_required
def index():
    """Users, searched by user name or full name, filtered by role and status."""
    q = (request.args.get("q") or "").strip()[:100]
    role = request.args.get("role") or ""
    role = role if role in {r.value for r in Role} else ""
    status = request.args.get("active") or ""
    active = {"1": True, "0": False}.get(status)
    page = svc.list_users(_me(), q=q, role=role or None, active=active, page=_page())
    locked = {u.id for u in page.rows if svc.is_locked(u)}
    return render_template("admin/users.html", page=page, q=q, role_filter=role, status=status, locked=locked,
                           roles=list(Role), province=_province_name())


def _province_name() -> str | None:
    from delivery_service.admin.scope import province_of

    unit = province_of(current_user)
    return unit.name if unit else None


def _options() -> dict[str, list[tuple[str, str]]]:
    from delivery_service.web.display import ROLE

    choices = svc.scope_choices(_me())
    return {
        "role": [(r.value, str(ROLE.get(r, r.value))) for r in Role],
        "counter_id": [("", "—")] + [(str(c.id), f"{c.code} · {c.name}") for c in choices.counters],
        "post_office_id": [("", "—")] + [(str(o.id), f"{o.code} · {o.name}") for o in choices.offices],
        "province_id": ([("", tr("Toàn quốc", "National"))] if choices.national else [])
        + [(str(p.id), f"{p.code} · {p.name}") for p in choices.provinces],
    }


def _form(user: User | None, values: dict[str, str], errors: dict[str, list[str]], status: int = 200):
    return render_template("admin/user_form.html", user=user, values=values, errors=errors,
                           labels=labels(), options=_options(),
                           focus=next(iter(errors), "username" if user is None else "full_name"),
                           routes=svc.routes_of(user) if user is not None else []), status


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def create():
    """A new account with a temporary password, which its owner changes at the first log-in."""
    if request.method == "GET":
        return _form(None, _values(None), {})
    form = request.form
    values = {k: form.get(k, "") for k in FIELDS if k != "password"}
    try:
        user, generated = svc.create_account(
            _me(), username=form.get("username", ""), full_name=form.get("full_name", ""),
            role=form.get("role", ""), password=form.get("password") or None, ip=request.remote_addr,
            **_scope_args(form))  # type: ignore[arg-type]
    except InvalidInput as exc:
        db.session.rollback()
        return _form(None, values, translate(exc.errors), 422)
    if generated:
        return _show_once(user, generated, tr(f"Đã tạo tài khoản {user.username}.",
                                              f"Account {user.username} created."))
    db.session.commit()
    flash(tr(f"Đã tạo tài khoản {user.username}.", f"Account {user.username} created."), "success")
    return redirect(url_for("admin_users.show", user_id=user.id), code=303)


def _show_once(user: User, password: str, done: str):
    """Answer a form that generated a password with a redirect to the page that shows it once
    (Post/Redirect/Get, ``shown_once``): reloading that page resubmits nothing, and shows the
    password no more."""
    token, pad = svc.hold_password(_me(), user, password)
    db.session.commit()
    shown_once.remember(f"password:{user.id}", token, pad)
    flash(done, "success")
    return redirect(url_for("admin_users.temporary_password", user_id=user.id), code=303)


@bp.get("/<int:user_id>/temporary-password")
@admin_required
def temporary_password(user_id: int):
    """The generated temporary password, once; a reload (or another tab) says it was shown already."""
    user = _user(user_id)
    password = None
    held = shown_once.recall(f"password:{user_id}")
    if held is not None:
        password = svc.take_password(_me(), user_id, *held)
        db.session.commit()
    response = make_response(render_template("admin/user_password.html", user=user, password=password))
    response.headers["Cache-Control"] = "no-store"  # neither the browser nor a proxy keeps the page
    return response


@bp.get("/<int:user_id>")
@admin_required
def show(user_id: int):
    """One account: role, scope, status, the courier's routes, and the actions."""
    user = _user(user_id)
    return render_template("admin/user.html", user=user, routes=svc.routes_of(user),
                           locked=svc.is_locked(user), labels=labels(), errors={})


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(user_id: int):
    """Change the full name, role and scope."""
    user = _user(user_id)
    if request.method == "GET":
        return _form(user, _values(user), {})
    form = request.form
    values = {**{k: form.get(k, "") for k in FIELDS if k not in ("password", "username")},
              "username": user.username}
    try:
        svc.update_account(_me(), user, full_name=form.get("full_name", ""), role=form.get("role", ""),
                           ip=request.remote_addr, **_scope_args(form))  # type: ignore[arg-type]
    except InvalidInput as exc:
        db.session.rollback()
        return _form(db.session.get(User, user_id), values, translate(exc.errors), 422)
    db.session.commit()
    flash(tr("Đã lưu thay đổi.", "Changes saved."), "success")
    return redirect(url_for("admin_users.show", user_id=user_id), code=303)


def _set_active(user_id: int, active: bool):
    user = _user(user_id)
    try:
        svc.set_active(_me(), user, active=active, ip=request.remote_addr)
    except InvalidInput as exc:
        db.session.rollback()
        flash(" ".join(translate(exc.errors)["active"]), "error")
        return redirect(url_for("admin_users.show", user_id=user_id), code=303)
    db.session.commit()
    flash(tr("Đã cho tài khoản hoạt động lại.", "Account reactivated.") if active else
          tr("Đã ngừng hoạt động tài khoản; mọi phiên đăng nhập của người này đã kết thúc.",
             "Account deactivated; all of its sessions have ended."), "success")
    return redirect(url_for("admin_users.show", user_id=user_id), code=303)


@bp.post("/<int:user_id>/deactivate")
@admin_required
def deactivate(user_id: int):
    """Deactivate: the account cannot log in, and its open sessions end."""
    return _set_active(user_id, False)


@bp.post("/<int:user_id>/reactivate")
@admin_required
def reactivate(user_id: int):
    """Let a deactivated account log in again."""
    return _set_active(user_id, True)


@bp.post("/<int:user_id>/password")
@admin_required
def reset_password(user_id: int):
    """A temporary password (typed, or generated and shown once); changed at the next log-in."""
    user = _user(user_id)
    try:
        generated = svc.reset_password(_me(), user, password=request.form.get("password") or None,
                                       ip=request.remote_addr)
    except InvalidInput as exc:
        db.session.rollback()
        user = _user(user_id)
        return render_template("admin/user.html", user=user, routes=svc.routes_of(user),
                               locked=svc.is_locked(user), labels=labels(),
                               errors=translate(exc.errors)), 422
    if generated:
        return _show_once(user, generated, tr("Đã đặt mật khẩu tạm mới.", "A new temporary password is set."))
    db.session.commit()
    flash(tr("Đã đặt mật khẩu tạm; người dùng phải đổi mật khẩu khi đăng nhập lần tới.",
             "Temporary password set; the user must change it at the next log-in."), "success")
    return redirect(url_for("admin_users.show", user_id=user_id), code=303)


@bp.post("/<int:user_id>/unlock")
@admin_required
def unlock(user_id: int):
    """Forget the failed log-ins that lock the account."""
    user = _user(user_id)
    if svc.unlock(_me(), user, ip=request.remote_addr):
        db.session.commit()
        flash(tr("Đã mở khóa đăng nhập.", "Log-in unlocked."), "success")
    else:
        flash(tr("Tài khoản này không bị khóa đăng nhập: không có gì thay đổi.",
                 "This account's log-in is not locked: nothing changed."), "info")
    return redirect(url_for("admin_users.show", user_id=user_id), code=303)
