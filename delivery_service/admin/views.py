"""The administration index (/admin/): the sections this installation has."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from delivery_service.accounts.models import Role
from delivery_service.admin import SECTIONS, tr
from delivery_service.admin.scope import province_of
from delivery_service.web.access import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.app_template_global("tr")
def _tr(vi: str, en: str) -> str:
    return tr(vi, en)


@bp.app_template_global("national_admin")
def _national_admin() -> bool:
    """Whether the logged-in user administers the whole country (the navigation's national pages)."""
    return (current_user.is_authenticated and current_user.role is Role.ADMIN
            and province_of(current_user) is None)


@bp.get("/")
@roles_required(Role.ADMIN)
def index():
    """The sections registered in SECTIONS whose pages exist; national-only ones for national admins."""
    province = province_of(current_user)
    sections = [s for s in SECTIONS if s.endpoint in current_app.view_functions
                and not (s.national_only and province is not None)]
    return render_template("admin/index.html", sections=sections, province=province)
