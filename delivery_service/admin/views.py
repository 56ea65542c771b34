"""The administration index (/admin/): the sections this installation has."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from delivery_service.accounts.models import Role
from delivery_service.admin import SECTIONS, Section, tr
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


@bp.app_template_global("admin_sections")
def sections() -> list[Section]:
    """The sections registered in SECTIONS whose pages exist and that the logged-in admin may open
    (national-only ones for national admins): the index and the menu of every administration page
    (admin/_nav.html) list these, so neither offers a page that would answer 403."""
    if not (current_user.is_authenticated and current_user.role is Role.ADMIN):
        return []
    province = province_of(current_user)
    return [s for s in SECTIONS if s.endpoint in current_app.view_functions
            and not (s.national_only and province is not None)]


@bp.app_template_global("admin_may_open")
def may_open(endpoint: str) -> bool:
    """Whether the logged-in admin may open the section of ``endpoint`` (a page may mention it)."""
    return any(s.endpoint == endpoint for s in sections())


@bp.get("/")
@roles_required(Role.ADMIN)
def index():
    """The administration's sections."""
    return render_template("admin/index.html", sections=sections(), province=province_of(current_user))
