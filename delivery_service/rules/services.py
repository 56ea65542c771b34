"""Reading the business rules cheaply, and saving them (validated, audited, versioned)."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from flask import current_app

from delivery_service import config
from delivery_service.accounts.services import Actor, record
from delivery_service.db import utcnow
from delivery_service.errors import InvalidInput, Text
from delivery_service.extensions import db
from delivery_service.rules.models import BusinessRules

# The config keys that are business rules, in the order the settings page shows them.
KEYS = (
    "FAILURE_REASONS",
    "DELIVERY_TARGET_DAYS",
    "DELIVERY_TARGET_WORKING_DAYS",
    "MAX_FAILED_ATTEMPTS",
    "CORRECTION_WINDOW_MIN",
    "DELIVERY_ID_CHECK",
    "REPORT_BANDS",
)
ROW_ID = 1


@dataclass(frozen=True)
class FailureReason:
    code: str
    label: str
    label_en: str
    active: bool = True  # a retired reason still names past attempts but cannot be chosen

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "label": self.label, "label_en": self.label_en}


@dataclass(frozen=True)
class Rules:
    """The rules in force; ``failure_reasons`` includes retired ones (for labels), ``reasons`` not."""

    failure_reasons: tuple[FailureReason, ...]
    delivery_target_days: int
    delivery_target_working_days: bool
    max_failed_attempts: int
    correction_window_min: int
    delivery_id_check: str
    report_bands: Mapping[str, tuple[float, float, float]]
    version: int = 0

    @property
    def reasons(self) -> list[dict[str, str]]:
        """The reasons a courier may choose, as the courier API lists them."""
        return [r.as_dict() for r in self.failure_reasons if r.active]

    @property
    def reason_codes(self) -> frozenset[str]:
        return frozenset(r.code for r in self.failure_reasons if r.active)

    def not_a_reason(self, code: str) -> str | None:
        """Why ``code`` cannot be a failed attempt's reason (the API's message), or None when it can."""
        if code in self.reason_codes:
            return None
        return f"Must be one of: {', '.join(r['code'] for r in self.reasons)}."

    def reason(self, code: str | None) -> FailureReason | None:
        return next((r for r in self.failure_reasons if r.code == code), None)


def _defaults() -> tuple[Any, ...]:
    """The app's own values (a test may change them on a running app): compared by equality, which
    for the same objects is an identity check, so this costs a few dictionary look-ups."""
    cfg = current_app.config
    return tuple(cfg[k] for k in KEYS)


def current() -> Rules:
    """The rules in force in this process (see the package's docstring for what it costs)."""
    state = current_app.extensions.setdefault("business_rules", {})
    now = time.monotonic()
    defaults = _defaults()
    hit = state.get("rules")
    if hit is not None and hit[2] == defaults and now < state.get("check_at", 0.0):
        return hit[1]
    # No lock: two threads that miss together both read; the result is the same.
    version = db.session.scalar(sa.select(BusinessRules.version).where(BusinessRules.id == ROW_ID)) or 0
    state["check_at"] = now + float(current_app.config.get("RULES_CHECK_S", 1.0))
    hit = state.get("rules")
    if hit is not None and hit[0] == version and hit[2] == defaults:
        return hit[1]
    stored = db.session.scalar(sa.select(BusinessRules.values).where(BusinessRules.id == ROW_ID)) or {}
    rules = build(stored, version)
    state["rules"] = (version, rules, defaults)
    return rules


def invalidate() -> None:
    """Forget this process's rules (after a save: the next read asks the database)."""
    current_app.extensions.get("business_rules", {}).clear()


def build(stored: Mapping[str, Any], version: int = 0) -> Rules:
    """The rules from the stored values over the app's configuration (the environment's values)."""
    cfg = current_app.config
    value = {k: stored.get(k, cfg[k]) for k in KEYS}
    retired = set(stored.get("RETIRED_REASONS") or ())
    reasons = config.parse_failure_reasons(value["FAILURE_REASONS"])
    bands = {
        **config.parse_bands(config.DEFAULTS["REPORT_BANDS"]),
        **config.parse_bands(value["REPORT_BANDS"]),
    }
    return Rules(
        failure_reasons=tuple(
            FailureReason(r["code"], r["label"], r["label_en"], r["code"] not in retired) for r in reasons
        ),
        delivery_target_days=int(value["DELIVERY_TARGET_DAYS"]),
        delivery_target_working_days=bool(value["DELIVERY_TARGET_WORKING_DAYS"]),
        max_failed_attempts=int(value["MAX_FAILED_ATTEMPTS"]),
        correction_window_min=int(value["CORRECTION_WINDOW_MIN"]),
        delivery_id_check=str(value["DELIVERY_ID_CHECK"]),
        report_bands=MappingProxyType({k: tuple(v) for k, v in bands.items()}),
        version=version,
    )


def stored_values() -> dict[str, Any]:
    return dict(db.session.scalar(sa.select(BusinessRules.values).where(BusinessRules.id == ROW_ID)) or {})


def used_reason_codes(codes: list[str]) -> set[str]:
    """Which of these failure reasons past events carry (those can be retired, not deleted)."""
    from delivery_service.orders.models import OrderEvent

    if not codes:
        return set()
    found = db.session.scalars(sa.select(OrderEvent.reason).where(OrderEvent.reason.in_(codes)).distinct())
    return {c for c in found if c}


def _nfc(text: Any) -> str:
    return unicodedata.normalize("NFC", " ".join(str(text or "").split()))


def validate(changes: Mapping[str, Any], current_rules: Rules) -> dict[str, Any]:
    """Check the changed rules with the parsers the configuration uses; per-field errors (the form's
    names) as InvalidInput, each a Text in both languages (the page shows the reader's). Returns the
    values to store (JSON-ready)."""
    errors: dict[str, list[Text]] = {}
    out: dict[str, Any] = {}

    def bad(field: str, vi: str, en: str) -> None:
        errors.setdefault(field, []).append(Text(vi, en))

    for key, low, field in (
        ("DELIVERY_TARGET_DAYS", 0, "delivery_target_days"),
        ("MAX_FAILED_ATTEMPTS", 1, "max_failed_attempts"),
        ("CORRECTION_WINDOW_MIN", 0, "correction_window_min"),
    ):
        if key in changes:
            try:
                value = config._parse(key, str(changes[key]).strip())
            except config.ConfigError:
                bad(field, "Nhập một số nguyên.", "Enter a whole number.")
                continue
            high = {"DELIVERY_TARGET_DAYS": 60, "MAX_FAILED_ATTEMPTS": 10, "CORRECTION_WINDOW_MIN": 1440}[key]
            if not low <= value <= high:
                bad(field, f"Từ {low} đến {high}.", f"Must be from {low} to {high}.")
            else:
                out[key] = value
    if "DELIVERY_TARGET_WORKING_DAYS" in changes:
        out["DELIVERY_TARGET_WORKING_DAYS"] = bool(changes["DELIVERY_TARGET_WORKING_DAYS"])
    if "DELIVERY_ID_CHECK" in changes:
        check = str(changes["DELIVERY_ID_CHECK"]).strip().lower()
        if check not in config.ID_CHECKS:
            listed = ", ".join(config.ID_CHECKS)
            bad("delivery_id_check", f"Chọn một trong: {listed}.", f"Choose one of: {listed}.")
        else:
            out["DELIVERY_ID_CHECK"] = check
    if "REPORT_BANDS" in changes:
        bands: dict[str, list[float]] = {}
        for name, limits in dict(changes["REPORT_BANDS"]).items():
            try:
                bands.update(config.parse_bands({name: [float(x) for x in limits]}))
            except (config.ConfigError, TypeError, ValueError):
                bad(
                    f"bands_{name}",
                    "Ba ngưỡng giảm dần từ 0 đến 1, ví dụ 0.95, 0.90, 0.80.",
                    "Three falling thresholds between 0 and 1, e.g. 0.95, 0.90, 0.80.",
                )
        out["REPORT_BANDS"] = bands
    if "FAILURE_REASONS" in changes:
        given = list(changes["FAILURE_REASONS"])
        reasons = [
            {
                "code": str(r.get("code", "")).strip(),
                "label": _nfc(r.get("label")),
                "label_en": _nfc(r.get("label_en")),
            }
            for r in given
        ]
        retired = sorted(set(changes.get("RETIRED_REASONS") or ()))
        for i, (r, raw) in enumerate(zip(reasons, given, strict=True)):
            try:
                config.parse_failure_reasons([r])
            except config.ConfigError:
                # the form's row (rows left empty or deleted are not sent)
                bad(
                    f"reasons-{raw.get('row', i)}",
                    "Mã gồm 1-64 chữ, số hoặc _; cần nhãn tiếng Việt và tiếng Anh.",
                    "The code is 1-64 letters, digits or _; give a Vietnamese and an English label.",
                )
        codes = [r["code"] for r in reasons]
        if len(set(codes)) != len(codes):
            bad("reasons", "Một mã bị lặp.", "A code is listed twice.")
        removed = [r.code for r in current_rules.failure_reasons if r.code not in codes]
        used = used_reason_codes(removed)
        if used:
            bad(
                "reasons",
                f"Đã được dùng, chỉ có thể ngừng dùng: {', '.join(sorted(used))}.",
                "Used by past attempts: retire them instead of deleting them.",
            )
        if not [c for c in codes if c not in retired]:
            bad("reasons", "Cần ít nhất một lý do đang dùng.", "At least one reason must stay in use.")
        out["FAILURE_REASONS"] = reasons
        out["RETIRED_REASONS"] = [c for c in retired if c in codes]
    if errors:
        raise InvalidInput(errors)
    return out


def as_values(rules: Rules) -> dict[str, Any]:
    """The rules as stored values (for before/after in the audit log and for the form)."""
    return {
        "FAILURE_REASONS": [r.as_dict() for r in rules.failure_reasons],
        "RETIRED_REASONS": sorted(r.code for r in rules.failure_reasons if not r.active),
        "DELIVERY_TARGET_DAYS": rules.delivery_target_days,
        "DELIVERY_TARGET_WORKING_DAYS": rules.delivery_target_working_days,
        "MAX_FAILED_ATTEMPTS": rules.max_failed_attempts,
        "CORRECTION_WINDOW_MIN": rules.correction_window_min,
        "DELIVERY_ID_CHECK": rules.delivery_id_check,
        "REPORT_BANDS": {k: list(v) for k, v in rules.report_bands.items()},
    }


def may_change(actor: Actor) -> bool:
    """Rules are national: only an admin without an area changes them."""
    from delivery_service.accounts.models import Role

    return actor.role is Role.ADMIN and actor.area_unit_id is None and actor.user_id is not None


def save(actor: Actor, changes: Mapping[str, Any], *, ip: str | None = None) -> Rules:
    """Validate and store changed rules, bump the version, record ``settings.update`` with the values
    before and after (the changed keys only). Nothing is stored when nothing changed. Commits."""
    from delivery_service.errors import Forbidden

    if not may_change(actor):
        raise Forbidden("Only a national admin changes the business rules.")
    invalidate()
    before_rules = current()
    values = validate(changes, before_rules)
    before = as_values(before_rules)
    changed = {k: v for k, v in values.items() if before.get(k) != v}
    if not changed:
        db.session.rollback()
        return before_rules
    row = db.session.scalar(sa.select(BusinessRules).where(BusinessRules.id == ROW_ID).with_for_update())
    if row is None:
        row = BusinessRules(id=ROW_ID, version=0, values={})
        db.session.add(row)
    row.values = {**(row.values or {}), **changed}
    row.version = (row.version or 0) + 1
    row.updated_at = utcnow()
    row.updated_by_user_id = actor.user_id
    record(
        "settings.update",
        actor=actor,
        object_type="business_rules",
        object_id=ROW_ID,
        before={k: before.get(k) for k in changed},
        after=changed,
        ip=ip,
    )
    db.session.commit()
    invalidate()
    return current()
