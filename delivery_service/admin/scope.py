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
