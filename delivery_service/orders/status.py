"""One status machine for both directions: results to citizens and dossiers to agencies.

Result leg:   created → assigned → handed_to_courier → out_for_delivery → delivered;
              out_for_delivery → failed_attempt → out_for_delivery (retry) or returned_to_agency.
Dossier leg:  created → assigned → pickup_scheduled → picked_up → delivered_to_agency;
              pickup_scheduled → failed_attempt → pickup_scheduled (retry) or cancelled.
An order in both directions runs the dossier leg first, then the result leg from delivered_to_agency.
Orders not yet with a courier may be cancelled.
"""

from __future__ import annotations

import enum


class Direction(enum.StrEnum):
    RESULT_TO_CITIZEN = "result_to_citizen"
    DOSSIER_TO_AGENCY = "dossier_to_agency"
    BOTH = "both"


class Status(enum.StrEnum):
    CREATED = "created"
    ASSIGNED = "assigned"
    HANDED_TO_COURIER = "handed_to_courier"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    FAILED_ATTEMPT = "failed_attempt"
    RETURNED_TO_AGENCY = "returned_to_agency"
    CANCELLED = "cancelled"
    PICKUP_SCHEDULED = "pickup_scheduled"
    PICKED_UP = "picked_up"
    DELIVERED_TO_AGENCY = "delivered_to_agency"


R, D = Direction.RESULT_TO_CITIZEN, Direction.DOSSIER_TO_AGENCY
S = Status

# (from, to) -> the legs on which the move is allowed.
_RESULT_LEG = {
    (S.CREATED, S.ASSIGNED),
    (S.ASSIGNED, S.HANDED_TO_COURIER),
    (S.HANDED_TO_COURIER, S.OUT_FOR_DELIVERY),
    (S.OUT_FOR_DELIVERY, S.DELIVERED),
    (S.OUT_FOR_DELIVERY, S.FAILED_ATTEMPT),
    (S.FAILED_ATTEMPT, S.OUT_FOR_DELIVERY),
    (S.FAILED_ATTEMPT, S.RETURNED_TO_AGENCY),
    (S.HANDED_TO_COURIER, S.RETURNED_TO_AGENCY),
    (S.CREATED, S.CANCELLED),
    (S.ASSIGNED, S.CANCELLED),
    (S.ASSIGNED, S.ASSIGNED),  # reassignment to another route
}
_DOSSIER_LEG = {
    (S.CREATED, S.ASSIGNED),
    (S.CREATED, S.PICKUP_SCHEDULED),
    (S.ASSIGNED, S.PICKUP_SCHEDULED),
    (S.PICKUP_SCHEDULED, S.PICKED_UP),
    (S.PICKUP_SCHEDULED, S.FAILED_ATTEMPT),
    (S.FAILED_ATTEMPT, S.PICKUP_SCHEDULED),
    (S.FAILED_ATTEMPT, S.CANCELLED),
    (S.PICKED_UP, S.DELIVERED_TO_AGENCY),
    (S.CREATED, S.CANCELLED),
    (S.ASSIGNED, S.CANCELLED),
    (S.PICKUP_SCHEDULED, S.CANCELLED),
    (S.ASSIGNED, S.ASSIGNED),
}
# After the dossier has reached the agency, an order in both directions goes on with the result.
_BOTH_HANDOVER = {
    (S.DELIVERED_TO_AGENCY, S.ASSIGNED),
    (S.DELIVERED_TO_AGENCY, S.HANDED_TO_COURIER),
}

TERMINAL = {
    Direction.RESULT_TO_CITIZEN: {S.DELIVERED, S.RETURNED_TO_AGENCY, S.CANCELLED},
    Direction.DOSSIER_TO_AGENCY: {S.DELIVERED_TO_AGENCY, S.CANCELLED},
    Direction.BOTH: {S.DELIVERED, S.RETURNED_TO_AGENCY, S.CANCELLED},
}


class TransitionRefused(Exception):
    """The move is impossible; ``reason`` says why in words a person can act on."""

    def __init__(self, current: Status, target: Status, reason: str) -> None:
        super().__init__(reason)
        self.current, self.target, self.reason = current, target, reason


def allowed_targets(direction: Direction, current: Status, results_started: bool = False) -> set[Status]:
    """Every status the order may move to next.

    ``results_started``: an order in both directions has delivered its dossier to the agency, so
    it is on its result leg now.
    """
    if current in TERMINAL[direction]:
        return set()
    if direction is Direction.RESULT_TO_CITIZEN:
        moves = _RESULT_LEG
    elif direction is Direction.DOSSIER_TO_AGENCY:
        moves = _DOSSIER_LEG
    elif not (results_started or current is S.DELIVERED_TO_AGENCY):
        moves = _DOSSIER_LEG
    else:
        moves = (_RESULT_LEG - {(S.CREATED, S.ASSIGNED), (S.CREATED, S.CANCELLED)}) | _BOTH_HANDOVER
    return {to for frm, to in moves if frm is current}


def check(direction: Direction, current: Status, target: Status, results_started: bool = False) -> None:
    """Raise TransitionRefused unless ``current`` → ``target`` is allowed for ``direction``."""
    if current in TERMINAL[direction]:
        raise TransitionRefused(current, target, f"the order is already {current.value}; it is closed")
    targets = allowed_targets(direction, current, results_started)
    if target not in targets:
        allowed = ", ".join(sorted(t.value for t in targets)) or "none"
        raise TransitionRefused(
            current, target,
            f"cannot go from {current.value} to {target.value} for a {direction.value} order; "
            f"allowed next: {allowed}",
        )
