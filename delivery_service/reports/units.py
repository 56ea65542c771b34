"""Where each commune counts in reports, across the 2025 reform (``report_units``).

An order keeps the commune valid on its date. Reports group by the 2025 structure: a legacy commune
counts for the 2025 commune it became (``units.succession``; a split commune for the part the data
package names its default) and that commune's province. Districts exist only before the reform; a
2025 commune counts for the former district most of it came from, so that "per district" reporting
goes on across 1 Jul 2025 (a reporting area gives an office an exact definition instead).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from flask import current_app

from delivery_service.extensions import db
from delivery_service.reports.models import ReportUnit
from delivery_service.units.models import REFORM_DATE, AdminUnit, UnitLevel


def rebuild_unit_map() -> int:
    """Recompute ``report_units`` from the units in the database; returns the number of communes."""
    from delivery_service.units.succession import former_districts, successors

    units = db.session.execute(sa.select(AdminUnit.id, AdminUnit.level, AdminUnit.code, AdminUnit.parent_id,
                                         AdminUnit.valid_from)).all()
    by_id = {u.id: u for u in units}
    new_ids = {(u.level, u.code): u.id for u in units if u.valid_from >= REFORM_DATE}
    old_ids = {(u.level, u.code): u.id for u in units if u.valid_from < REFORM_DATE}
    succ, former = successors(), former_districts()

    def province_of(unit_id: int) -> int:
        unit = by_id[unit_id]
        while unit.parent_id is not None:
            unit = by_id[unit.parent_id]
        return unit.id

    rows = []
    for u in units:
        if u.level is not UnitLevel.COMMUNE:
            continue
        if u.valid_from >= REFORM_DATE:
            commune = u.id
            district = old_ids.get((UnitLevel.DISTRICT, former.get(u.code, "")))
        else:
            commune = new_ids.get((UnitLevel.COMMUNE, succ.get(u.code, "")), u.id)
            parent = by_id.get(u.parent_id) if u.parent_id else None
            district = parent.id if parent is not None and parent.level is UnitLevel.DISTRICT else None
        rows.append({"unit_id": u.id, "commune_id": commune, "province_id": province_of(commune),
                     "district_id": district})
    from delivery_service.reports.fold import units_changed

    db.session.execute(sa.delete(ReportUnit))
    if rows:
        db.session.execute(sa.insert(ReportUnit), rows)
    units_changed()  # the figures processes keep are grouped by the old map
    db.session.commit()
    return len(rows)


def ensure_unit_map() -> None:
    """Build the map when communes were imported since (two counts, at most once a minute per
    process)."""
    cache = current_app.extensions.setdefault("report_units_checked", [0.0])
    if cache[0] > time.monotonic():
        return
    cache[0] = time.monotonic() + 60
    communes = db.session.scalar(sa.select(sa.func.count()).where(AdminUnit.level == UnitLevel.COMMUNE))
    mapped = db.session.scalar(sa.select(sa.func.count()).select_from(ReportUnit))
    if communes != mapped:
        rebuild_unit_map()


def successor_communes(unit_ids: list[int]) -> list[int]:
    """The 2025 communes that ``unit_ids`` (communes, or districts and provinces: all their communes)
    count for in reports."""
    ensure_unit_map()
    ids = set(unit_ids)
    frontier = set(ids)
    while frontier:  # descend to communes
        frontier = set(db.session.scalars(sa.select(AdminUnit.id).where(AdminUnit.parent_id.in_(frontier))))
        ids |= frontier
    stmt = sa.select(ReportUnit.commune_id).where(ReportUnit.unit_id.in_(ids))
    return sorted(set(db.session.scalars(stmt)))
