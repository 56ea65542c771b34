"""Templates, their placeholders, rendering, and the SMS forms of a text (GSM-7 without diacritics,
or UCS-2 with them)."""

from __future__ import annotations

import datetime as dt
import re
import string
import unicodedata
from typing import Any

from delivery_service.errors import Text

KINDS = ("handed", "out_for_delivery", "failed_attempt", "delivered", "returned")
KIND_LABELS = {
    "handed": ("Đã giao bưu tá", "Handed to the courier"),
    "out_for_delivery": ("Đang phát", "Out for delivery"),
    "failed_attempt": ("Phát không thành công", "Failed attempt"),
    "delivered": ("Đã phát", "Delivered"),
    "returned": ("Chuyển trả", "Returned"),
}
PLACEHOLDERS = {
    "item_id": ("Mã bưu gửi", "Item id"),
    "dossier_code": ("Mã hồ sơ", "Dossier code"),
    "eta": ("Khung giờ dự kiến", "ETA window"),
    "reason": ("Lý do", "Reason"),
    "next_attempt": ("Ngày phát lại", "Next attempt"),
    "hotline": ("Đường dây nóng", "Hotline"),
    "link": ("Liên kết tra cứu", "Tracking link"),
    "optout_link": ("Liên kết ngừng nhận tin", "Opt-out link"),
}
# Defaults (migration 0021 seeds them; an admin may change them on /admin/notifications).
DEFAULT_TEMPLATES = {
    "handed": "Bưu điện: hồ sơ {dossier_code} (bưu gửi {item_id}) đã giao bưu tá để phát. "
              "Tra cứu {link} Hotline {hotline}",
    "out_for_delivery": "Bưu điện: bưu gửi {item_id} đang được phát hôm nay, dự kiến {eta}. "
                        "Vui lòng giữ máy. Hotline {hotline}",
    "failed_attempt": "Bưu điện: chưa phát được bưu gửi {item_id} ({reason}). Phát lại: {next_attempt}. "
                      "Hotline {hotline}",
    "delivered": "Bưu điện: bưu gửi {item_id} (hồ sơ {dossier_code}) đã phát thành công. "
                 "Cảm ơn Ông/Bà. Hotline {hotline}",
    "returned": "Bưu điện: bưu gửi {item_id} không phát được, đã chuyển trả nơi tiếp nhận hồ sơ. "
                "Hotline {hotline}",
}
SAMPLE = {"item_id": "RH000000014VN", "dossier_code": "H55.22-000123", "eta": "09:30-10:30",
          "reason": "Không có người nhận", "next_attempt": "08/12/2026", "hotline": "1900 545481",
          "link": "https://buudien.example.vn/t/RH000000014VN",
          "optout_link": "https://buudien.example.vn/t/optout/IjNmY2Ei.x1Y2"}
MAX_TEMPLATE = 500
SMS_GSM_LIMIT = 160
UCS2_SEGMENT = 70
UCS2_MULTIPART_SEGMENT = 67

# GSM 03.38 basic set (one septet each) and its extension table (two septets each).
_GSM_BASIC = set("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                 "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXT = set("^{}\\[~]|€")


class TemplateError(ValueError):
    """A template refused: ``text`` says why in both languages (the page shows the reader's); the
    exception's own message is the English."""

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(en)
        self.text = Text(vi, en)


def parse_quiet_hours(raw: str | None) -> tuple[dt.time, dt.time] | None:
    """"21:00-07:00" → (21:00, 07:00) in SERVICE_TIMEZONE; "" → None (no quiet hours)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", raw)
    if (not m or int(m[1]) > 23 or int(m[3]) > 23 or int(m[2]) > 59 or int(m[4]) > 59
            or m.group(1, 2) == m.group(3, 4)):
        raise ValueError(f"NOTIFY_QUIET_HOURS must be like '21:00-07:00', got {raw!r}")
    return dt.time(int(m[1]), int(m[2])), dt.time(int(m[3]), int(m[4]))


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def check_template(text: str) -> str:
    """The template in NFC, or TemplateError whose ``text`` tells people why, in both languages."""
    text = nfc((text or "").replace("\r\n", "\n")).strip()
    if not text:
        raise TemplateError("Không được để trống.", "Must not be empty.")
    if len(text) > MAX_TEMPLATE:
        raise TemplateError(f"Tối đa {MAX_TEMPLATE} ký tự.", f"At most {MAX_TEMPLATE} characters.")
    try:
        fields = [name for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError:
        raise TemplateError("Dấu { } không khớp.", "Unbalanced { } braces.") from None
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        raise TemplateError("Không có biến " + ", ".join("{" + u + "}" for u in unknown)
                            + ". Được dùng: " + ", ".join("{" + p + "}" for p in PLACEHOLDERS),
                            "Unknown placeholder.")
    if any(spec or conv for _, name, spec, conv in string.Formatter().parse(text) if name is not None):
        raise TemplateError("Biến chỉ viết {ten}.", "Write placeholders as {name} only.")
    return text


def render(template: str, values: dict[str, Any]) -> str:
    return nfc(template.format_map({k: str(values.get(k) or "") for k in PLACEHOLDERS}))


def strip_diacritics(text: str) -> str:
    """Vietnamese without diacritics: "Đã phát" → "Da phat" (đ/Đ are letters of their own)."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def gsm_length(text: str) -> int:
    """Septets the text takes in GSM-7 (extension characters count twice)."""
    return sum(2 if c in _GSM_EXT else 1 for c in text)


def is_gsm(text: str) -> bool:
    return all(c in _GSM_BASIC or c in _GSM_EXT for c in text)


def gsm_text(text: str, limit: int = SMS_GSM_LIMIT) -> str:
    """The plain form for one GSM-7 SMS: no diacritics, other characters made plain or dropped, cut
    at a word (with "..") to fit ``limit`` septets."""
    plain = strip_diacritics(text)
    plain = "".join(c if (c in _GSM_BASIC or c in _GSM_EXT) else
                    ("-" if c in "–—" else "'" if c in "‘’" else '"' if c in "“”" else " ")
                    for c in plain)
    plain = re.sub(r"[ \t]+", " ", plain).strip()
    if gsm_length(plain) <= limit:
        return plain
    cut = plain
    while gsm_length(cut) > limit - 2:
        cut = cut[: cut.rstrip().rfind(" ")] if " " in cut.rstrip() else cut[: limit - 2]
    return cut.rstrip(" .,;:") + ".."


def ucs2_segments(text: str) -> int:
    n = len(text.encode("utf-16-le")) // 2
    return 1 if n <= UCS2_SEGMENT else -(-n // UCS2_MULTIPART_SEGMENT)


def sms_text(text: str, unicode_allowed: bool) -> tuple[str, bool]:
    """(the text to send, whether it is sent as UCS-2)."""
    if is_gsm(text) and gsm_length(text) <= SMS_GSM_LIMIT:
        return text, False
    if unicode_allowed:
        return text, True
    return gsm_text(text), False
