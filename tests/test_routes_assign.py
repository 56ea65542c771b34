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


def _reference(t: RouteTable, orders: list[OrderAddress], load: dict[str, int]) -> list[tuple]:
    """The rule as documented, walked naively: the chain built again for every order."""
    out = []
    for o in orders:
        candidates, how = t.match(o.commune, o.detail)
        if not candidates:
            out.append((o.key, None, how, None))
            continue
        primary = min(candidates, key=lambda c: (load.get(c, 0), c))
        room = [c for c in t.chain(primary)
                if t.routes[c].capacity is None or load.get(c, 0) < t.routes[c].capacity]
        if not room:
            out.append((o.key, None, Outcome.OVER_CAPACITY, primary))
            continue
        load[room[0]] = load.get(room[0], 0) + 1
        out.append((o.key, room[0], how if room[0] == primary else Outcome.OVERFLOW, primary))
    return out


def test_long_backup_chain_fills_in_order_and_then_goes_to_dispatch():
    n = 300
    t = table(*[RouteDef(f"R{i:03d}", (Rule(f"{i}"),), capacity=2,
                         backup=f"R{i + 1:03d}" if i + 1 < n else None) for i in range(n)])
    assert t.chain("R000") == [f"R{i:03d}" for i in range(n)]
    got = assign(t, [OrderAddress(k, "0", "") for k in range(2 * n + 3)])
    assert [a.route for a in got[:2 * n]] == [f"R{i // 2:03d}" for i in range(2 * n)]
    assert [a.outcome for a in got[2:4]] == [Outcome.OVERFLOW] * 2
    assert [(a.route, a.outcome, a.matched) for a in got[2 * n:]] == [(None, Outcome.OVER_CAPACITY, "R000")] * 3
    # a route half-way down the chain now finds every backup after it full too
    assert assign(t, [OrderAddress("x", "150", "")], {f"R{i:03d}": 2 for i in range(n)})[0].route is None


def test_cyclic_backup_chain_wraps_around_once():
    n = 50
    t = table(*[RouteDef(f"C{i:02d}", (Rule(f"{i}"),), capacity=1, backup=f"C{(i + 1) % n:02d}")
                for i in range(n)])
    assert t.chain("C10") == [f"C{(10 + i) % n:02d}" for i in range(n)]
    got = assign(t, [OrderAddress(k, "10", "") for k in range(n + 2)])
    assert [a.route for a in got[:n]] == [f"C{(10 + i) % n:02d}" for i in range(n)]
    assert {(a.route, a.outcome) for a in got[n:]} == {(None, Outcome.OVER_CAPACITY)}
    # a tail leading into a full cycle: its own room first, then over capacity
    t2 = table(RouteDef("T", (Rule("t"),), capacity=1, backup="C00"), *t.routes.values())
    got = assign(t2, [OrderAddress(k, "t", "") for k in range(3)], {c: 1 for c in t.routes})
    assert [(a.route, a.outcome) for a in got] == [("T", Outcome.COMMUNE)] + [(None, Outcome.OVER_CAPACITY)] * 2


def test_mixed_chains_match_the_rule_walked_naively():
    import random

    rng = random.Random(7)
    for _ in range(20):
        n = rng.randint(2, 40)
        codes = [f"R{i:02d}" for i in range(n)]
        defs = [RouteDef(c, (Rule(str(rng.randrange(8))),), capacity=rng.choice([None, 0, 1, 2, 3, 3, 5]),
                         backup=rng.choice([None, *[b for b in codes if b != c]])) for c in codes]
        t = table(*defs)
        orders = [OrderAddress(k, str(rng.randrange(9)), "") for k in range(rng.randint(0, 120))]
        start = {c: rng.randrange(3) for c in codes if rng.random() < 0.3}
        load = dict(start)
        got = [(a.key, a.route, a.outcome, a.matched) for a in assign(t, orders, load)]
        ref_load = dict(start)
        assert got == _reference(t, orders, ref_load)
        assert load == ref_load
