"""What an administrator may see: everything, or one province.

A province admin is a user with role ``admin`` whose ``area_unit_id`` is a province-level unit.
Every administration query goes through these helpers, so that a province admin never lists, opens
or changes a user, counter, post office, route or API client of another province."""

from __future__ import annotations

import sqlalchemy as sa

from delivery_service.accounts.models import Role, User
from delivery_service.extensions import db
from delivery_service.units.models import AdminUnit


def province_of(user: User) -> AdminUnit | None:
    """The province an admin is limited to, or None for a national admin."""
    if user.role != Role.ADMIN or user.area_unit_id is None:
        return None
    return db.session.get(AdminUnit, user.area_unit_id)


def province_code_of(user: User) -> str | None:
    unit = province_of(user)
    return unit.code if unit is not None else None


def units_in_province(province: AdminUnit) -> sa.Select[tuple[int]]:
    """Ids of the province and every unit under it (districts and communes, old and new)."""
    below = sa.select(AdminUnit.id).where(AdminUnit.parent_id == province.id)
    return sa.select(AdminUnit.id).where(
        sa.or_(AdminUnit.id == province.id, AdminUnit.id.in_(below), AdminUnit.parent_id.in_(below)))


# --- users (admin-users work) --------------------------------------------------------------------

def users_in_province(province: AdminUnit) -> sa.ColumnElement[bool]:
    """Users whose scope lies in ``province``: counter staff by their counter's unit, supervisors
    (and couriers with a home post office) by the office's unit, district officers and province
    admins by their area, couriers by the post office of the routes they drive."""
    from delivery_service.orgs.models import Counter, PostalRoute, PostOffice

    units = units_in_province(province)
    offices = sa.select(PostOffice.id).where(PostOffice.unit_id.in_(units))
    return sa.or_(
        User.counter_id.in_(sa.select(Counter.id).where(Counter.unit_id.in_(units))),
        User.post_office_id.in_(offices),
        User.area_unit_id.in_(units),
        User.id.in_(sa.select(PostalRoute.courier_id).where(PostalRoute.post_office_id.in_(offices))),
    )


def scope_users(stmt: sa.Select, admin: User) -> sa.Select:
    """``stmt`` (over User) limited to the users ``admin`` may see and change."""
    province = province_of(admin)
    return stmt if province is None else stmt.where(users_in_province(province))


def unit_in_province(unit_id: int | None, province: AdminUnit) -> bool:
    if unit_id is None:
        return False
    return db.session.scalar(sa.select(sa.literal(True)).where(
        sa.literal(unit_id).in_(units_in_province(province)))) is not None


def national_admin_required(view):  # noqa: ANN001, ANN201
    """Logged in as an admin with no province (pages over the whole country's data: jobs, webhooks,
    business rules); province admins and other roles get 403."""
    from functools import wraps

    from flask import abort
    from flask_login import current_user, login_required

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if current_user.role is not Role.ADMIN or province_of(current_user) is not None:
            abort(403)
        return view(*args, **kwargs)

    return wrapped
