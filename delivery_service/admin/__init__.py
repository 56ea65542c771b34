"""Administration pages: what an IT officer runs from the browser instead of `delivery-service`
commands. An admin with no area sees everything; an admin whose ``area_unit_id`` is a province (a
province admin) sees and changes only what lies in that province (see ``scope``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from flask_babel import get_locale

from delivery_service.errors import Text  # re-exported: the admin services raise these


class Section(NamedTuple):
    """One entry of the /admin/ index and of the administration's menu (admin/_nav.html): shown only
    when its endpoint exists in the running app. ``current``: the endpoints (a prefix) of its pages,
    which the menu marks as the current section; by default its blueprint's."""

    endpoint: str
    label_vi: str
    label_en: str
    national_only: bool
    current: str = ""

    def is_current(self, endpoint: str | None) -> bool:
        """Whether the page of ``endpoint`` belongs to this section."""
        prefix = self.current or self.endpoint.partition(".")[0] + "."
        return bool(endpoint) and endpoint.startswith(prefix)  # type: ignore[union-attr]


# (endpoint, Vietnamese label, English label, national admins only). Sections built in other modules
# are listed here up front; the index skips those whose endpoint is not registered.
SECTIONS: list[Section] = [
    Section("admin_users.index", "Người dùng", "Users", False),
    Section("admin_orgs.counters", "Bộ phận một cửa", "Counters", False, "admin_orgs.counter"),
    Section("admin_orgs.offices", "Bưu cục", "Post offices", False, "admin_orgs.office"),
    Section("admin_orgs.routes", "Tuyến phát", "Postal routes", False, "admin_orgs.route"),
    Section("admin_clients.index", "Khóa API và webhook", "API clients and webhooks", False),
    Section("admin_rules.index", "Quy tắc nghiệp vụ", "Business rules", False),  # read-only for a province
    Section("admin_privacy.index", "Dữ liệu cá nhân", "Personal data", False),
    Section("webhooks.index", "Webhook", "Webhooks", True),
    Section("admin_notifications.index", "Tin nhắn cho công dân", "Citizen notifications", True),
    Section("admin_jobs.index", "Tác vụ nền", "Background jobs", True),
    Section("admin_audit.index", "Nhật ký kiểm tra", "Audit log", False),
]


def tr(vi: str, en: str) -> str:
    """The text in the reader's language (Vietnamese unless English was chosen). The administration
    pages carry their texts in both languages here rather than in the shared message catalogue."""
    return en if str(get_locale() or "vi") == "en" else vi


def in_language(errors: Mapping[str, list[object]]) -> dict[str, list[str]]:
    """Per-field messages in the reader's language: a Text through ``tr``, any other message as is."""
    return {
        field: [tr(*m) if isinstance(m, Text) else str(m) for m in messages]
        for field, messages in errors.items()
    }


def label(names: Mapping[str, tuple[str, str]], code: str) -> str:
    """A code's (Vietnamese, English) name from ``names`` in the reader's language; the code itself
    when it has none."""
    pair = names.get(code)
    return tr(*pair) if pair else code
