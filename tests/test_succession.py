"""Legacy units → 2025 units, checked against the ``vietnamadminunits`` package (no database, no app).

The expected codes were looked up in the package's tables; the tables are read again here, apart from
the module under test, so that a change of the package shows as a failure and not as a silent shift.
"""

from __future__ import annotations

import pytest
from vietnamadminunits.database import get_data

from delivery_service.units.succession import former_districts, province_successors, successors


@pytest.fixture(scope="module")
def legacy() -> dict[str, dict]:
    """Legacy commune code → its row (province, district, commune)."""
    rows = get_data(fields=["provinceKey", "districtKey", "wardKey", "provinceCode", "districtCode",
                            "wardCode"], table="admin_units_legacy")
    return {r["wardCode"]: r for r in rows if r["wardCode"]}


@pytest.fixture(scope="module")
def current() -> dict[str, str]:
    """2025 commune code → its province code."""
    return {r["wardCode"]: r["provinceCode"]
            for r in get_data(fields=["wardCode", "provinceCode"], table="admin_units")}


def test_coverage_of_legacy_communes(legacy: dict[str, dict]) -> None:
    mapped = successors()
    assert len(legacy) > 10_000  # about 10,600 communes before the reform (DOMAIN.md)
    assert set(mapped) == set(legacy)  # ≥ 99 % asked; the package maps every one
    assert all(len(code) == 5 and code.isdigit() for code in mapped)


def test_every_successor_is_a_2025_commune(current: dict[str, str]) -> None:
    assert len(current) == 3_321
    assert set(successors().values()) <= set(current)
    # every 2025 commune is some legacy commune's successor but the five special zones that were island
    # districts without communes, and Phường Yên Sở, made only of non-default parts of split communes
    islands = {"11948", "19742", "20333", "21548", "26732"}  # Bạch Long Vĩ, Cồn Cỏ, Hoàng Sa, Lý Sơn, Côn Đảo
    assert set(current) - set(successors().values()) == islands | {"00340"}


def test_hoi_an_communes_went_to_da_nang(current: dict[str, str]) -> None:
    s = successors()
    assert s["20398"] == "20410"  # Phường Minh An (Hội An, Quảng Nam) → Phường Hội An (Đà Nẵng)
    assert s["20401"] == "20401"  # Phường Tân An → Phường Hội An Tây
    assert s["20413"] == "20413"  # Phường Cẩm Châu → Phường Hội An Đông
    assert {current[s[c]] for c in ("20398", "20401", "20413")} == {"48"}


def test_split_commune_takes_the_default_successor() -> None:
    from vietnamadminunits import convert_address
    from vietnamadminunits.converter.converter_2025 import DICT_PROVINCE_WARD_DIVIDED

    parts = DICT_PROVINCE_WARD_DIVIDED["thanhphohanoi"]["thanhphohanoi_quanhoangmai_phuongyenso"]
    assert [p["newWardKey"] for p in parts if p["isDefaultNewWard"]] == ["phuonghoangmai"]
    assert len(parts) == 4
    # Phường Yên Sở (Hoàng Mai) → Phường Hoàng Mai 00331, though the new Phường Yên Sở kept code 00340
    assert successors()["00340"] == "00331"
    # Thị trấn Tây Đằng (Ba Vì), split between Minh Châu (default) and Quảng Oai 09619
    assert successors()["09619"] == "09661"
    # the package's own converter agrees for an address without a street
    assert convert_address("Phường Yên Sở, Quận Hoàng Mai, Hà Nội").ward == "Phường Hoàng Mai"
    assert convert_address("Thị trấn Tây Đằng, Huyện Ba Vì, Hà Nội").ward == "Xã Minh Châu"


def test_province_successors() -> None:
    from vietnamadminunits.converter.converter_2025 import DICT_PROVINCE

    p = province_successors()
    assert len(p) == 63
    assert p["49"] == "48"  # Quảng Nam → Đà Nẵng
    assert p["48"] == "48"
    assert p["74"] == p["77"] == p["79"] == "79"  # Bình Dương, Bà Rịa–Vũng Tàu → Hồ Chí Minh
    assert p["01"] == "01"
    assert len(set(p.values())) == 34
    # the same as the package's province table, read through the keys
    old = {r["provinceKey"]: r["provinceCode"]
           for r in get_data(fields=["provinceKey", "provinceCode"], table="admin_units_legacy")}
    new = {r["provinceKey"]: r["provinceCode"]
           for r in get_data(fields=["provinceKey", "provinceCode"], table="admin_units")}
    assert p == {old[o]: new[n] for n, olds in DICT_PROVINCE.items() for o in olds}


def test_each_legacy_commune_stays_in_its_provinces_successor(legacy: dict[str, dict],
                                                               current: dict[str, str]) -> None:
    p = province_successors()
    assert all(current[new] == p[legacy[old]["provinceCode"]] for old, new in successors().items())


def test_former_districts(current: dict[str, str]) -> None:
    f = former_districts()
    assert set(f) == set(current)
    districts = {r["districtCode"]: r["provinceCode"]
                 for r in get_data(fields=["districtCode", "provinceCode"], table="admin_units_legacy")}
    assert len(districts) == 696
    assert set(f.values()) <= set(districts)
    p = province_successors()
    assert all(p[districts[d]] == current[c] for c, d in f.items())
    assert f["20410"] == "503"  # Phường Hội An ← Thành phố Hội An
    assert f["00004"] == "001"  # Phường Ba Đình ← Quận Ba Đình
    assert f["00340"] == "008"  # Phường Yên Sở: 4 parts from Hoàng Mai, 1 from Thanh Trì (020)
    assert f["21548"] == "536"  # Đặc khu Lý Sơn ← Huyện Lý Sơn, an island district without communes
    # Phường Hải Vân: two communes of Liên Chiểu (490), two of Hòa Vang (497, one in part) → the lowest
    assert f["20194"] == "490"


def test_results_are_cached() -> None:
    assert successors() is successors()
    assert former_districts() is former_districts()
    assert province_successors() is province_successors()
