"""OrderIn's output without marshmallow, for the bodies and rows it would accept.

``OrderIn().load`` (marshmallow, about 20 fields and three nested schemas) cost about 15 % of an
order's intake through the API and about as much as the rest of a row's import. ``fast_load`` gives
the same output for the input whose acceptance plain checks can tell: codes or text for the address,
a valid phone number, ISO dates, whole numbers in range, enum values, printable texts, a delivery
window in any of its forms; and None for everything else, which OrderIn then loads (and words the
errors of) as before. So a fast answer is always OrderIn's answer, and every refusal is OrderIn's.

tests/test_intake_fast_load.py holds the two equal over many bodies, valid and not (hypothesis-made
ones too), and checks that the fields known here are OrderIn's: a field added to OrderIn (or to its
nested schemas) must be added here, else the tests fail.

Used by the API's ``POST /api/v1/orders`` (orders/api.py) and fit for the import's rows (the shapes
``imports.services.row_input`` builds are a subset of the API's).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from typing import Any

import phonenumbers
from marshmallow import ValidationError

from delivery_service.fields import normalise_phone
from delivery_service.orders.models import Exemption, Payer
from delivery_service.orders.schemas import ADDRESS_TEXT_MAX, MAX_VND, MAX_WEIGHT_G, parse_window
from delivery_service.orders.status import Direction

_NO: Any = object()  # "OrderIn must look at this input"
_DIRECTIONS = {d.value: d for d in Direction}
_PAYERS = {p.value: p for p in Payer}
_EXEMPTIONS = {e.value: e for e in Exemption}
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only (marshmallow takes more: it decides)
TOP_KEYS = frozenset({"direction", "dossier_code", "procedure_code", "procedure_name", "issuing_agency",
                      "recipient", "authorised_person", "address", "postage_vnd", "payer", "exemption",
                      "collect_vnd", "appointment_date", "weight_g", "delivery_window", "note"})
ADDRESS_CODE_KEYS = frozenset({"province_code", "district_code", "commune_code", "detail"})
ADDRESS_TEXT_KEYS = frozenset({"text", "detail"})
PERSON_KEYS = frozenset({"name", "phone", "id_number"})


def _read_str(value: str, max_length: int, multiline: bool) -> Any:
    """fields.Text's output for a printable string: the text, "" when it is empty once trimmed, or _NO
    (too long, or not printable: OrderIn decides)."""
    text = unicodedata.normalize("NFC", value)
    if not text.isprintable():
        return _NO
    text = text.strip() if multiline else " ".join(text.split())
    return _NO if len(text) > max_length else text


# A file's rows repeat most of their texts (procedure, agency, note): those are read once. Personal
# texts (names, addresses, phones, ID numbers) are never kept: each belongs to one citizen, repeats
# little, and must not outlive its request in a long-running process (the erasure policy).
_kept_str = functools.lru_cache(maxsize=1024)(_read_str)


def _fast_text(value: Any, max_length: int, *, required: bool = True, multiline: bool = False,
               personal: bool = False) -> Any:
    """fields.Text's output (``required``: a required field, or one without a default that may not be
    null), else _NO. An optional field (load_default None) takes null and empty text as None."""
    if type(value) is not str:
        return None if value is None and not required else _NO
    if len(value) > 2 * max_length:  # surely too long once trimmed: OrderIn says so (and it is not kept)
        return _NO
    text = (_read_str if personal else _kept_str)(value, max_length, multiline)
    if text == "":
        return _NO if required else None
    return text


def _plan_check() -> Any:
    """``phonenumbers.is_valid_number`` for a Vietnamese national significant number (digits, no
    leading 0), from the library's own metadata for VN and by its own rule (``_number_type_helper``:
    the general description matches, and so does one number type's, each with its possible lengths),
    its patterns joined per length: one regular expression instead of up to ten
    (tests/test_imports.py holds the two equal)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region("VN")
    types = [d for d in (meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip, meta.personal_number,
                         meta.pager, meta.uan, meta.voicemail, meta.fixed_line, meta.mobile)
             if d is not None and d.national_number_pattern]
    general = meta.general_desc

    def fits(desc: Any, length: int) -> bool:
        return not desc.possible_length or length in desc.possible_length

    by_length: dict[int, re.Pattern[str]] = {}
    for length in range(1, 18):
        alike = [d.national_number_pattern for d in types if fits(d, length)]
        if alike and general.national_number_pattern and fits(general, length):
            by_length[length] = re.compile(f"(?=(?:{general.national_number_pattern})$)"
                                           f"(?:{'|'.join(f'(?:{p})' for p in alike)})$")

    def valid(nsn: str) -> bool:
        pattern = by_length.get(len(nsn))
        return pattern is not None and pattern.match(nsn) is not None

    return valid


_VALID_NSN = _plan_check()


def fast_phone(raw: str) -> str | None:
    """fields.normalise_phone's answer for a number it accepts, None for one it refuses. The usual
    national form (0 and 9 digits) is checked against the numbering plan without parsing the text:
    ``phonenumbers.parse`` strips that 0 and keeps the rest when the rest is a valid number. Nothing
    is kept between calls (a phone number is personal data)."""
    if len(raw) == 10 and raw[0] == "0" and raw[1] != "0" and raw.isascii() and raw.isdigit():
        if _VALID_NSN(raw[1:]):
            return raw
    try:
        return normalise_phone(raw)
    except ValidationError:
        return None


def _fast_phone(value: Any, *, required: bool) -> Any:
    """fields.Phone's output: required (recipient) or optional with load_default None (authorised)."""
    if type(value) is not str:
        return None if value is None and not required else _NO
    raw = value.strip()
    if not raw:
        return _NO if required else None
    return fast_phone(raw) or _NO


def _fast_id(value: Any) -> Any:
    """fields.IdNumber's output (always optional, load_default None)."""
    if value is None:
        return None
    if type(value) is not str:
        return _NO
    raw = "".join(value.split())
    if not raw:
        return None
    return raw if raw.isascii() and raw.isdigit() and len(raw) in (9, 12) else _NO


def _fast_int(value: Any, low: int, high: int) -> Any:
    return value if type(value) is int and low <= value <= high else _NO  # strict: no bool, float, text


def _fast_code(value: Any) -> Any:
    return value if type(value) is str and 1 <= len(value) <= 16 else _NO


def _fast_person(person: Any, *, recipient: bool) -> Any:
    if type(person) is not dict or not person.keys() <= PERSON_KEYS:
        return _NO
    out = {"name": _fast_text(person.get("name"), 200, personal=True),
           "phone": _fast_phone(person.get("phone"), required=recipient),
           "id_number": _fast_id(person.get("id_number"))}
    return _NO if _NO in out.values() else out


def _fast_address(address: Any) -> Any:
    if type(address) is not dict:
        return _NO
    keys = address.keys()
    if "text" in keys:  # the address as written; no code may come with it
        if not keys <= ADDRESS_TEXT_KEYS:
            return _NO
        out = {"text": _fast_text(address["text"], ADDRESS_TEXT_MAX, multiline=True, personal=True),
               "district_code": None}
        if "detail" in keys:
            out["detail"] = _fast_text(address["detail"], 255, personal=True)
    else:
        if not keys <= ADDRESS_CODE_KEYS:
            return _NO
        district = address.get("district_code")
        out = {"province_code": _fast_code(address.get("province_code")),
               "district_code": None if district is None else _fast_code(district),
               "commune_code": _fast_code(address.get("commune_code")),
               "detail": _fast_text(address.get("detail"), 255, personal=True)}
    return _NO if _NO in out.values() else out


def _enum(values: dict[str, Any], value: Any) -> Any:
    return values.get(value, _NO) if type(value) is str else _NO


def fast_load(data: Any, today: dt.date) -> dict[str, Any] | None:
    """What ``OrderIn().load(data)`` returns, for the input whose acceptance plain checks can tell;
    None for any other (``data`` a parsed JSON body or ``row_input``'s output; ``today`` the local
    date, ``localtime.local_today()``)."""
    if type(data) is not dict or not data.keys() <= TOP_KEYS:
        return None
    get = data.get
    out: dict[str, Any] = {
        "direction": _enum(_DIRECTIONS, get("direction")),
        "dossier_code": _fast_text(get("dossier_code"), 64),
        "procedure_code": _fast_text(get("procedure_code"), 64, required=False),
        "procedure_name": _fast_text(get("procedure_name"), 500),
        "issuing_agency": _fast_text(get("issuing_agency"), 255),
        "recipient": _fast_person(get("recipient"), recipient=True),
        "authorised_person": None,
        "address": _fast_address(get("address")),
        "postage_vnd": _fast_int(get("postage_vnd", 0), 0, MAX_VND),
        "payer": _enum(_PAYERS, get("payer", "citizen")),
        "exemption": _enum(_EXEMPTIONS, get("exemption", "none")),
        "collect_vnd": _fast_int(get("collect_vnd", 0), 0, MAX_VND),
        "appointment_date": None,
        "weight_g": None if get("weight_g") is None else _fast_int(data["weight_g"], 1, MAX_WEIGHT_G),
        "note": _fast_text(get("note"), 500, required=False, multiline=True, personal=True),  # free text
    }
    authorised = get("authorised_person")
    if authorised is not None:
        out["authorised_person"] = _fast_person(authorised, recipient=False)
    if _NO in out.values():
        return None
    appointment = get("appointment_date")
    if appointment is None:
        if out["direction"] is Direction.RESULT_TO_CITIZEN:
            return None  # required when delivering a result: OrderIn says so
    else:
        if type(appointment) is not str or not _ISO_DAY.fullmatch(appointment):
            return None
        try:
            day = dt.date.fromisoformat(appointment)
        except ValueError:
            return None
        if day < today or (day - today).days > 366:
            return None
        out["appointment_date"] = day
    window = get("delivery_window")
    if window is not None and not (type(window) is str and not window.strip()):  # none: no key (OrderIn's)
        try:
            start, end = parse_window(window)
        except ValidationError:
            return None
        out["delivery_window"] = {"from": start, "to": end}
    return out
