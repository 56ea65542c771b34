"""routes.assign: rules, capacity and backups, on plain data."""

from __future__ import annotations

import pytest

from routes import InvalidRoute, OrderAddress, Outcome, RouteDef, RouteTable, Rule, RuleKind, assign

HAMLET, STREET = RuleKind.HAMLET, RuleKind.STREET


def table(*routes: RouteDef, strict: bool = False) -> RouteTable:
    return RouteTable.build(routes, strict=strict)


def test_whole_commune_and_refinements():
    t = table(
        RouteDef("A", (Rule("100"),)),
        RouteDef("B", (Rule("100", HAMLET, "Thôn Phú Lộc"), Rule("200", STREET, "Trần Hưng Đạo"))),
    )
    got = assign(t, [
        OrderAddress(1, "100", "Số 5, thôn Phú Lộc"),
        OrderAddress(2, "100", "THÔN  PHÚ-LỘC 2"),  # folds to the same words
        OrderAddress(3, "100", "Thôn Phú Lợi"),  # another hamlet: the whole-commune route
        OrderAddress(4, "200", "12/3 đường Trần Hưng Đạo"),
        OrderAddress(5, "200", "Đường Lê Lợi"),  # commune covered only in part, nothing matches
        OrderAddress(6, "999", "Anywhere"),
    ])
    assert [(a.key, a.route, a.outcome) for a in got] == [
        (1, "B", Outcome.HAMLET), (2, "B", Outcome.HAMLET), (3, "A", Outcome.COMMUNE),
        (4, "B", Outcome.STREET), (5, None, Outcome.NO_RULE), (6, None, Outcome.UNKNOWN_COMMUNE),
    ]
    assert [a.needs_dispatch for a in got] == [False] * 4 + [True] * 2


def test_whole_words_only_and_longest_phrase_wins():
    t = table(RouteDef("A", (Rule("1", HAMLET, "Thôn 1"),)), RouteDef("B", (Rule("1", HAMLET, "Thôn 12"),)),
              RouteDef("C", (Rule("1", STREET, "Thôn 12 đường Hùng Vương"),)))
    got = assign(t, [OrderAddress("x", "1", "thôn 12"), OrderAddress("y", "1", "Thôn 1, xã X"),
                     OrderAddress("z", "1", "thôn 12 đường Hùng Vương số 3")])
    assert [a.route for a in got] == ["B", "A", "C"]


def test_capacity_overflows_to_backup_then_to_dispatch():
    t = table(RouteDef("A", (Rule("1"),), capacity=2, backup="B"), RouteDef("B", (Rule("2"),), capacity=1))
    load = {"A": 1}
    got = assign(t, [OrderAddress(i, "1", "") for i in range(4)], load)
    assert [(a.route, a.outcome) for a in got] == [
        ("A", Outcome.COMMUNE), ("B", Outcome.OVERFLOW), (None, Outcome.OVER_CAPACITY),
        (None, Outcome.OVER_CAPACITY)]
    assert got[2].matched == "A"
    assert load == {"A": 2, "B": 1}


def test_backup_cycles_end():
    t = table(RouteDef("A", (Rule("1"),), capacity=0, backup="B"),
              RouteDef("B", (Rule("2"),), capacity=0, backup="A"))
    assert assign(t, [OrderAddress(1, "1", "")])[0].outcome is Outcome.OVER_CAPACITY


def test_shared_area_goes_to_the_least_loaded_route():
    t = table(RouteDef("A", (Rule("1"),)), RouteDef("B", (Rule("1"),)))
    got = assign(t, [OrderAddress(i, "1", "") for i in range(5)], {"A": 2})
    assert [a.route for a in got] == ["B", "B", "A", "B", "A"]


def test_unusable_routes_are_skipped_with_a_warning_or_refused_when_strict():
    routes = (RouteDef("EMPTY", ()), RouteDef("A", (Rule("1"),), backup="NOPE"), RouteDef("B", (Rule("1"),)))
    t = RouteTable.build(routes)
    assert set(t.routes) == {"B"}
    assert any("EMPTY covers no commune" in w for w in t.warnings)
    assert any("backup route NOPE" in w for w in t.warnings)
    assert assign(t, [OrderAddress(1, "1", "")])[0].route == "B"
    with pytest.raises(InvalidRoute, match="EMPTY covers no commune"):
        RouteTable.build(routes, strict=True)
    with pytest.raises(InvalidRoute, match="used twice"):
        RouteTable.build([RouteDef("A", (Rule("1"),)), RouteDef("A", (Rule("2"),))], strict=True)
    with pytest.raises(InvalidRoute, match="needs a name"):
        Rule("1", HAMLET, " - ")


def test_empty_input():
    assert assign(table(RouteDef("A", (Rule("1"),))), []) == []
    assert assign(RouteTable.build([]), [OrderAddress(1, "1", "x")])[0].outcome is Outcome.UNKNOWN_COMMUNE
