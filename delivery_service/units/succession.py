"""Which 2025 unit each legacy unit became, from the conversion data of ``vietnamadminunits``.

Pure functions over the package's data (no Flask, no database of ours), each built once and cached.
The package links units by *keys* (``tinhquangnam_thanhphohoian_phuongminhan`` for a legacy commune,
``phuonghoian`` within ``thanhphodanang`` for a 2025 one); the codes come from its own tables
(``admin_units_legacy`` and ``admin_units``), joined on those keys as its converter does.

Coverage, measured on the installed package: the legacy structure has 10,035 communes (63 provinces,
696 districts), and all 10,035 are mapped, 471 of them split between several 2025 communes. The five
island districts without communes (Bạch Long Vĩ, Cồn Cỏ, Hoàng Sa, Lý Sơn, Côn Đảo) have no commune
code, so they do not appear in :func:`successors`; they count as predecessors in
:func:`former_districts`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import lru_cache
from typing import NamedTuple


class _Link(NamedTuple):
    """A legacy unit (by its full key) that gave territory to a 2025 commune."""

    legacy_key: str
    commune: str  # the 2025 commune code
    default: bool  # False for the non-default parts of a split legacy commune


class _Legacy(NamedTuple):
    province: str
    district: str
    commune: str | None  # None for an island district without communes


@lru_cache(maxsize=1)
def _legacy_units() -> dict[str, _Legacy]:
    """Legacy full key ("provincekey_districtkey_wardkey") → its codes."""
    from vietnamadminunits.database import get_data

    rows = get_data(fields=["provinceKey", "districtKey", "wardKey", "provinceCode", "districtCode",
                            "wardCode"], table="admin_units_legacy")
    return {f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey'] or ''}":
            _Legacy(r["provinceCode"], r["districtCode"], r["wardCode"] or None) for r in rows}


@lru_cache(maxsize=1)
def _communes_2025() -> dict[tuple[str, str], tuple[str, str]]:
    """(province key, ward key) → (province code, commune code) in the 2025 structure.

    Ward keys repeat across provinces (2,925 distinct keys for 3,321 communes), never within one.
    """
    from vietnamadminunits.database import get_data

    rows = get_data(fields=["provinceKey", "wardKey", "provinceCode", "wardCode"], table="admin_units")
    return {(r["provinceKey"], r["wardKey"]): (r["provinceCode"], r["wardCode"]) for r in rows}


@lru_cache(maxsize=1)
def _links() -> tuple[_Link, ...]:
    """Every (legacy unit, 2025 commune) pair of the package's conversion data."""
    from vietnamadminunits.converter.converter_2025 import (
        DICT_PROVINCE_WARD_DIVIDED,
        DICT_PROVINCE_WARD_NO_DIVIDED,
    )

    communes = _communes_2025()

    def links() -> Iterator[_Link]:
        for pkey, wards in DICT_PROVINCE_WARD_NO_DIVIDED.items():
            for wkey, legacy_keys in wards.items():
                code = communes[(pkey, wkey)][1]
                yield from (_Link(k, code, True) for k in legacy_keys)
        for pkey, divided in DICT_PROVINCE_WARD_DIVIDED.items():
            for legacy_key, parts in divided.items():
                for part in parts:
                    code = communes[(pkey, part["newWardKey"])][1]
                    yield _Link(legacy_key, code, bool(part["isDefaultNewWard"]))

    return tuple(links())


@lru_cache(maxsize=1)
def successors() -> dict[str, str]:
    """Legacy commune code (5 digits) → the 2025 commune code it became.

    A legacy commune split between several 2025 communes (471 of them) maps to the one the package
    marks ``isDefaultNewWard``: the successor its converter picks for an address without a street.
    That is the package's choice, not always the 2025 commune that kept the legacy code: in 27 of the
    151 splits where one part kept it, the default is another part (Phường Yên Sở 00340 of Hoàng Mai →
    Phường Hoàng Mai 00331, not the new Phường Yên Sở 00340).
    All 10,035 legacy communes of the package are mapped; a code missing here (none today, but the
    package may change) is for the caller to handle.
    """
    legacy = _legacy_units()
    out: dict[str, str] = {}
    for link in _links():
        commune = legacy[link.legacy_key].commune
        if link.default and commune is not None:
            out[commune] = link.commune
    return out


@lru_cache(maxsize=1)
def split_successors() -> dict[str, tuple[str, ...]]:
    """Legacy commune code → every 2025 commune that received a part of it, the default first; only
    the 471 communes split between several. The package does not say which hamlet or street went
    to which part (its converter geocodes the street online), so an address alone cannot decide."""
    legacy = _legacy_units()
    parts: dict[str, list[str]] = {}
    for link in _links():
        commune = legacy[link.legacy_key].commune
        if commune is not None:
            codes = parts.setdefault(commune, [])
            if link.commune not in codes:
                codes.insert(0 if link.default else len(codes), link.commune)
    return {old: tuple(codes) for old, codes in parts.items() if len(codes) > 1}


@lru_cache(maxsize=1)
def former_districts() -> dict[str, str]:
    """2025 commune code → the legacy district code (3 digits) most of its predecessors belonged to.

    A predecessor is any legacy commune that gave it territory, including every part of a split
    commune, not only its default successor (Phường Yên Sở of 2025 is made only of non-default parts);
    an island district without communes that became a special zone counts as one predecessor in itself.
    Ties (51 communes) go to the lowest district code. All 3,321 communes of 2025 have an entry.
    """
    legacy = _legacy_units()
    counts: dict[str, Counter[str]] = {}
    for link in _links():
        counts.setdefault(link.commune, Counter())[legacy[link.legacy_key].district] += 1
    return {commune: _most_common(c) for commune, c in counts.items()}


@lru_cache(maxsize=1)
def province_successors() -> dict[str, str]:
    """Legacy province code → the 2025 province code that received most of its communes.

    Counted over :func:`successors` (the default successor of a split commune); ties go to the lowest
    code. All 63 legacy provinces map, and the result agrees with the package's own province table.
    """
    legacy = {u.commune: u.province for u in _legacy_units().values() if u.commune}
    province_of = {code: pcode for pcode, code in _communes_2025().values()}
    counts: dict[str, Counter[str]] = {}
    for old, new in successors().items():
        counts.setdefault(legacy[old], Counter())[province_of[new]] += 1
    return {province: _most_common(c) for province, c in counts.items()}


def _most_common(counter: Counter[str]) -> str:
    """The most frequent key; among equals the lowest."""
    return min(counter, key=lambda k: (-counter[k], k))
