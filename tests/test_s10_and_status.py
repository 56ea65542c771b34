"""The pure parts: S10 identifiers and the status machine."""

from __future__ import annotations

import pytest

from delivery_service.orders import status as machine
from delivery_service.orders.status import Direction, Status
from labels import s10


@pytest.mark.parametrize("serial,digit", [(12345678, 5), (47312482, 9), (0, 5), (11111111, 5), (10000000, 3)])
def test_check_digit_known_values(serial, digit):
    # RR123456785VN is the UPU's own example; the others were worked by hand with weights 86423597.
    assert s10.check_digit(serial) == digit


def test_make_parse_round_trip_and_rejects():
    item = s10.make("RH", 12345678)
    assert item == "RH123456785VN" and s10.is_valid(item)
    assert s10.parse(item) == ("RH", 12345678, "VN")
    assert not s10.is_valid("RH123456784VN")  # wrong check digit
    with pytest.raises(s10.S10Error, match="reserved"):
        s10.make("SA", 1)
    with pytest.raises(s10.S10Error):
        s10.make("RH", s10.MAX_SERIAL + 1)
    assert s10.normalize(" rh 1234-5678 5vn ") == "RH123456785VN"


def test_a_wrong_check_digit_is_always_detected():
    for serial in range(0, 100_000_000, 999_983):
        good = s10.make("RR", serial)
        assert s10.is_valid(good)
        for d in "0123456789":
            if d != good[10]:
                assert not s10.is_valid(good[:10] + d + good[11:])


def test_result_leg_happy_path_and_retry():
    path = [Status.CREATED, Status.ASSIGNED, Status.HANDED_TO_COURIER, Status.OUT_FOR_DELIVERY,
            Status.FAILED_ATTEMPT, Status.OUT_FOR_DELIVERY, Status.DELIVERED]
    for a, b in zip(path, path[1:], strict=False):
        machine.check(Direction.RESULT_TO_CITIZEN, a, b)
    assert machine.allowed_targets(Direction.RESULT_TO_CITIZEN, Status.DELIVERED) == set()


def test_impossible_moves_give_reasons():
    with pytest.raises(machine.TransitionRefused, match="allowed next"):
        machine.check(Direction.RESULT_TO_CITIZEN, Status.CREATED, Status.DELIVERED)
    with pytest.raises(machine.TransitionRefused, match="closed"):
        machine.check(Direction.RESULT_TO_CITIZEN, Status.DELIVERED, Status.CANCELLED)
    with pytest.raises(machine.TransitionRefused):  # dossier statuses do not exist on the result leg
        machine.check(Direction.RESULT_TO_CITIZEN, Status.CREATED, Status.PICKUP_SCHEDULED)
    with pytest.raises(machine.TransitionRefused):
        machine.check(Direction.DOSSIER_TO_AGENCY, Status.HANDED_TO_COURIER, Status.DELIVERED)


def test_both_directions_run_dossier_leg_then_result_leg():
    d = Direction.BOTH
    for a, b in [(Status.CREATED, Status.PICKUP_SCHEDULED), (Status.PICKUP_SCHEDULED, Status.PICKED_UP),
                 (Status.PICKED_UP, Status.DELIVERED_TO_AGENCY)]:
        machine.check(d, a, b)
    machine.check(d, Status.DELIVERED_TO_AGENCY, Status.ASSIGNED)
    # once the results leg started, the dossier statuses are gone
    assert Status.PICKUP_SCHEDULED not in machine.allowed_targets(d, Status.ASSIGNED, results_started=True)
    assert Status.HANDED_TO_COURIER in machine.allowed_targets(d, Status.ASSIGNED, results_started=True)
    assert machine.allowed_targets(Direction.DOSSIER_TO_AGENCY, Status.DELIVERED_TO_AGENCY) == set()


def test_make_many_is_make_of_each_serial() -> None:
    """A batch's identifiers (check digits by table) against s10.make, over serials with every check
    digit (the remainders 0 and 1 mapped to 5 and 0 among them) and the ends of the range."""
    import random


    rng = random.Random(15)
    serials = [0, 1, 9_999, 10_000, 99_999_999, *range(12_345_670, 12_345_700),
               *(rng.randrange(s10.MAX_SERIAL + 1) for _ in range(20_000))]
    got = s10.make_many("rr", serials, "vn")
    assert got == [s10.make("RR", n, "VN") for n in serials]
    assert {int(g[10]) for g in got} == set(range(10))
    assert s10.make_many("RR", [], "VN") == []
    with pytest.raises(s10.S10Error):
        s10.make_many("SR", [5, 6], "VN")  # a reserved service indicator, refused as s10.make does
    with pytest.raises(s10.S10Error):
        s10.make_many("RR", [s10.MAX_SERIAL + 1], "VN")
    with pytest.raises(s10.S10Error):
        s10.make_many("RR", [1, s10.MAX_SERIAL + 1], "VN")  # any serial out of range, not the first only
