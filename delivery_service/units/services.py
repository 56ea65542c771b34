"""Loading administrative units from the data package, and resolving unit codes for intake."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Flask, current_app

from delivery_service.errors import InvalidInput, coded
from delivery_service.extensions import db
from delivery_service.units.models import REFORM_DATE, AdminUnit, UnitLevel
from delivery_service.vietnamese import sort_key

LEGACY_VALID_FROM = dt.date(2008, 8, 1)  # Hà Tây joined Hà Nội: the 63-province structure begins
LEGACY_VALID_TO = REFORM_DATE - dt.timedelta(days=1)
CODE_WIDTH = {UnitLevel.PROVINCE: 2, UnitLevel.DISTRICT: 3, UnitLevel.COMMUNE: 5}
SOURCES = ("2025", "legacy")


@dataclass(frozen=True)
class UnitRow:
    level: UnitLevel
    code: str
    name: str
    kind: str
    parent_code: str | None
    latitude: float | None
    longitude: float | None


def _province_kind(name: str) -> str:
    return "thành phố" if name.startswith("Thành phố") else "tỉnh"


def package_rows(source: str, provinces: set[str] | None = None) -> list[UnitRow]:
    """Units of one structure as the ``vietnamadminunits`` package carries them.

    ``2025``: 34 provinces and 3,321 communes; ``legacy``: 63 provinces, districts and communes.
    """
    from vietnamadminunits.database import get_data

    legacy = source == "legacy"
    table = "admin_units_legacy" if legacy else "admin_units"
    fields = ["province", "provinceCode", "provinceLat", "provinceLon", "ward", "wardCode", "wardType",
              "wardLat", "wardLon"]
    if legacy:
        fields += ["district", "districtCode", "districtType", "districtLat", "districtLon"]
    seen: dict[tuple[UnitLevel, str], UnitRow] = {}
    for r in get_data(fields=fields, table=table):
        pcode = r["provinceCode"]
        if provinces and pcode not in provinces:
            continue
        seen.setdefault((UnitLevel.PROVINCE, pcode), UnitRow(
            UnitLevel.PROVINCE, pcode, r["province"], _province_kind(r["province"]), None,
            r["provinceLat"], r["provinceLon"]))
        parent = pcode
        if legacy and r["districtCode"]:
            seen.setdefault((UnitLevel.DISTRICT, r["districtCode"]), UnitRow(
                UnitLevel.DISTRICT, r["districtCode"], r["district"], r["districtType"].lower(), pcode,
                r["districtLat"], r["districtLon"]))
            parent = r["districtCode"]
        if r["wardCode"]:
            seen.setdefault((UnitLevel.COMMUNE, r["wardCode"]), UnitRow(
                UnitLevel.COMMUNE, r["wardCode"], r["ward"], r["wardType"].lower(), parent,
                r["wardLat"], r["wardLon"]))
    return list(seen.values())


def import_units(source: str, provinces: Iterable[str] | None = None) -> dict[str, int]:
    """Insert or update the units of ``source``; returns counts of created and updated rows."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    wanted = {p.zfill(2) for p in provinces} if provinces else None
    valid_from, valid_to = (LEGACY_VALID_FROM, LEGACY_VALID_TO) if source == "legacy" else (REFORM_DATE, None)
    rows = package_rows(source, wanted)
    existing = {
        (u.level, u.code): u
        for u in db.session.scalars(sa.select(AdminUnit).where(AdminUnit.valid_from == valid_from))
    }
    ids: dict[tuple[UnitLevel, str], int] = {k: u.id for k, u in existing.items()}
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    parent_level = {UnitLevel.DISTRICT: UnitLevel.PROVINCE,
                    UnitLevel.COMMUNE: UnitLevel.DISTRICT if source == "legacy" else UnitLevel.PROVINCE}
    for level in (UnitLevel.PROVINCE, UnitLevel.DISTRICT, UnitLevel.COMMUNE):
        for row in (r for r in rows if r.level is level):
            parent_id = None
            if row.parent_code is not None:
                plevel = parent_level[level]
                if level is UnitLevel.COMMUNE and source == "legacy" and len(row.parent_code) == 2:
                    plevel = UnitLevel.PROVINCE
                parent_id = ids[(plevel, row.parent_code)]
            values = dict(name=row.name, kind=row.kind, parent_id=parent_id, valid_to=valid_to,
                          latitude=row.latitude, longitude=row.longitude)
            unit = existing.get((level, row.code))
            if unit is None:
                unit = AdminUnit(level=level, code=row.code, valid_from=valid_from, **values)
                db.session.add(unit)
                db.session.flush()
                counts["created"] += 1
            elif any(getattr(unit, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(unit, k, v)
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
            ids[(level, row.code)] = unit.id
    db.session.commit()
    invalidate_index()
    return counts


# --- an in-memory index of units, so that intake validates addresses without queries ---------

@dataclass(frozen=True)
class Unit:
    id: int
    level: UnitLevel
    code: str
    name: str
    kind: str
    parent_id: int | None
    valid_from: dt.date
    valid_to: dt.date | None

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class UnitIndex:
    """All units of the database, by id and by (level, code). Rebuilt when older than ``ttl``."""

    def __init__(self, units: list[Unit], ttl: float = 300.0) -> None:
        self.by_id = {u.id: u for u in units}
        self.by_code: dict[tuple[UnitLevel, str], list[Unit]] = {}
        self.children: dict[int | None, list[Unit]] = {}
        for u in units:
            self.by_code.setdefault((u.level, u.code), []).append(u)
            self.children.setdefault(u.parent_id, []).append(u)
        for kids in self.children.values():
            kids.sort(key=lambda u: sort_key(u.name))  # Vietnamese order, on every page and in the API
        self.expires = time.monotonic() + ttl

    def find(self, level: UnitLevel, code: str, day: dt.date) -> Unit | None:
        for u in self.by_code.get((level, code), ()):
            if u.valid_on(day):
                return u
        return None

    def children_of(self, parent_id: int | None, day: dt.date) -> list[Unit]:
        return [u for u in self.children.get(parent_id, ()) if u.valid_on(day)]


_lock = threading.Lock()


def unit_index(app: Flask | None = None) -> UnitIndex:
    """The app's unit index, loaded on first use."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    index: UnitIndex | None = app.extensions.get("unit_index")
    if index is None or index.expires < time.monotonic():
        with _lock:
            rows = db.session.execute(sa.select(
                AdminUnit.id, AdminUnit.level, AdminUnit.code, AdminUnit.name, AdminUnit.kind,
                AdminUnit.parent_id, AdminUnit.valid_from, AdminUnit.valid_to)).all()
            index = UnitIndex([Unit(*r) for r in rows])
            app.extensions["unit_index"] = index
    return index


def invalidate_index() -> None:
    current_app.extensions.pop("unit_index", None)


def province_code_2025(unit_id: int | None) -> str | None:
    """The code of the 2025 province a unit lies in, whichever structure the unit is of: the province
    above it, and for a unit of before the reform the 2025 province its province became
    (``succession.province_successors``; the 2025 reform merged provinces whole, so a legacy
    province, and all it held, went to one). None for a unit that is not there or not mapped."""
    index = unit_index()
    unit = index.by_id.get(unit_id) if unit_id is not None else None
    while unit is not None and unit.parent_id is not None:
        unit = index.by_id.get(unit.parent_id)
    if unit is None or unit.valid_from >= REFORM_DATE:
        return unit.code if unit is not None else None
    from delivery_service.units.succession import province_successors

    return province_successors().get(unit.code)


def _norm_code(code: str | None, level: UnitLevel) -> str | None:
    if code is None or code == "":
        return None
    code = str(code).strip()
    return code.zfill(CODE_WIDTH[level]) if code.isdigit() else code


def resolve_address(province_code: str, district_code: str | None, commune_code: str,
                    day: dt.date) -> tuple[Unit, Unit | None, Unit]:
    """The province, district and commune valid on ``day``; InvalidInput names each wrong field."""
    index = unit_index()
    errors: dict[str, list[str]] = {}

    def wrong(field: str, code: str, message: str) -> None:
        errors[field] = [coded(code, message)]

    pcode = _norm_code(province_code, UnitLevel.PROVINCE)
    dcode = _norm_code(district_code, UnitLevel.DISTRICT)
    ccode = _norm_code(commune_code, UnitLevel.COMMUNE)
    province = index.find(UnitLevel.PROVINCE, pcode or "", day)
    if province is None:
        wrong("province_code", "unknown_unit",
              f"Unknown province code {province_code!r} on {day.isoformat()}.")
    district = None
    if dcode is not None:
        district = index.find(UnitLevel.DISTRICT, dcode, day)
        if district is None:
            msg = f"Unknown district code {district_code!r} on {day.isoformat()}."
            if day >= REFORM_DATE:
                msg += " Since 1 Jul 2025 there is no district level: leave district_code empty."
            wrong("district_code", "unknown_unit", msg)
        elif province and district.parent_id != province.id:
            wrong("district_code", "unit_mismatch", f"District {dcode} is not in province {pcode}.")
    commune = index.find(UnitLevel.COMMUNE, ccode or "", day)
    if commune is None:
        wrong("commune_code", "unknown_unit",
              f"Unknown commune code {commune_code!r} on {day.isoformat()}.")
    elif district is not None and commune.parent_id != district.id:
        wrong("commune_code", "unit_mismatch", f"Commune {ccode} is not in district {dcode}.")
    elif province is not None and district is None:
        parent = index.by_id.get(commune.parent_id) if commune.parent_id else None
        if parent is not None and parent.level is UnitLevel.DISTRICT:
            if "district_code" not in errors:
                wrong("district_code", "required",
                      "This commune belongs to a district: give district_code.")
            if parent.parent_id != province.id:
                wrong("commune_code", "unit_mismatch", f"Commune {ccode} is not in province {pcode}.")
        elif commune.parent_id != province.id:
            wrong("commune_code", "unit_mismatch", f"Commune {ccode} is not in province {pcode}.")
    if errors:
        raise InvalidInput(errors)
    assert province is not None and commune is not None
    return province, district, commune
