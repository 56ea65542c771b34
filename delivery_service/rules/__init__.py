"""Business rules (failure reasons, service level, attempts, correction window, identity check,
colour bands): the environment's values are the defaults until a national admin saves others.

``current()`` is the one way to read them. It costs no query per order or courier event: each
process keeps the rules and compares the stored ``version`` at most once every ``RULES_CHECK_S``
seconds (default 1), so a change saved on one web node is seen by the others within that time.
"""

from delivery_service.rules.services import FailureReason, Rules, current, invalidate, save

__all__ = ["FailureReason", "Rules", "current", "invalidate", "save"]
