"""marshmallow fields shared by the API and the pages: NFC text, Vietnamese phone numbers, days; and
the base of the API's query-string schemas."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

import phonenumbers
from marshmallow import RAISE, Schema, ValidationError, fields, pre_load, validate
from webargs.multidictproxy import MultiDictProxy
from werkzeug.datastructures import MultiDict

from delivery_service.errors import coded

_CONTROL = {"Cc", "Cf", "Cs", "Co", "Cn"}
_WHOLE = re.compile(r"[0-9]{1,18}")  # fits a BIGINT; str.isdigit() also takes "²", which int() refuses


def whole_number(raw: str | None) -> int | None:
    """A form or query value that is a whole number of ASCII digits (an id, a count, a page), as an int
    a database column holds; None for anything else (empty, signs, other scripts' digits, 19+ digits)."""
    raw = (raw or "").strip()
    return int(raw) if _WHOLE.fullmatch(raw) else None


MAX_PAGE = 100_000  # the last page a list serves (API and pages): an offset far beyond is no query to run


def page_number(raw: str | None) -> int:
    """A page's ``page`` value: 1 to MAX_PAGE; anything else (missing, bad, 0, negative) is page 1, and
    a page beyond MAX_PAGE is MAX_PAGE (an empty page, as any page past the end)."""
    return min(whole_number(raw) or 1, MAX_PAGE)


class Text(fields.String):
    """Text stored in Unicode NFC, trimmed and with runs of whitespace collapsed.

    Empty text counts as missing. Control characters are refused.
    """

    def __init__(self, *args: Any, max_length: int, multiline: bool = False, **kwargs: Any) -> None:
        self.max_length = max_length
        self.multiline = multiline
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("maxLength", max_length)
        super().__init__(*args, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        text = super()._deserialize(value, attr, data, **kwargs)
        text = unicodedata.normalize("NFC", text)
        # isprintable() is false for every control character (and for spaces other than " "), so the
        # per-character check only runs on the rare text that needs it.
        if not text.isprintable():
            allowed = {"\n", "\t"} if self.multiline else set()
            if any(unicodedata.category(ch) in _CONTROL and ch not in allowed for ch in text):
                raise ValidationError(coded("invalid_characters", "Contains control or invalid characters."))
        text = text.strip() if self.multiline else " ".join(text.split())
        if not text:
            if self.required:
                raise ValidationError(coded("required", "Must not be empty."))
            return None
        if len(text) > self.max_length:
            raise ValidationError(coded("too_long", f"Longer than {self.max_length} characters."))
        return text


class Phone(fields.String):
    """A Vietnamese phone number (mobile or landline), stored in national form: 0912345678."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("example", "0912345678")
        super().__init__(*args, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        raw = super()._deserialize(value, attr, data, **kwargs).strip()
        if not raw:
            if self.required:
                raise ValidationError(coded("required", "Must not be empty."))
            return None
        return normalise_phone(raw)


# What may follow a phone number's first digit. phonenumbers.parse also reads letters there as a
# keypad's digits ("090abc1234" is 0902221234): a typo would reach a stranger's phone.
_PHONE_REST = re.compile(r"[0-9().\-/\s]*")
_DASHES = str.maketrans(dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"))


def phone_text(raw: str) -> str | None:
    """A written phone number as phonenumbers should read it, or None when anything but digits,
    spaces, dots, dashes, slashes or brackets follows its first digit. Full-width digits and the
    dashes word processors put in are read as such; invisible characters copied along (a BOM, a
    zero-width space) and the apostrophe a spreadsheet keeps before a number typed as text go; a
    label before the number ("SĐT: 0905 123 456") is left to phonenumbers, which skips it."""
    text = unicodedata.normalize("NFKC", raw).translate(_DASHES)
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf").strip().lstrip("'")
    first = next((i for i, ch in enumerate(text) if "0" <= ch <= "9"), None)
    if first is None or len(text) - first > 20 or _PHONE_REST.fullmatch(text, first) is None:
        return None
    return text


def normalise_phone(raw: str) -> str:
    """National form of a valid Vietnamese number, or ValidationError."""
    text = phone_text(raw) if len(raw) <= 64 else None
    if text is None:
        raise ValidationError(coded("invalid_phone", "Not a valid Vietnamese phone number."))
    try:
        number = phonenumbers.parse(text, "VN")
    except phonenumbers.NumberParseException:
        raise ValidationError(coded("invalid_phone", "Not a valid Vietnamese phone number.")) from None
    if number.country_code != 84 or not phonenumbers.is_valid_number(number):
        raise ValidationError(coded("invalid_phone", "Not a valid Vietnamese phone number."))
    return "0" + str(number.national_number)


class IdNumber(fields.String):
    """A citizen identity card number (CCCD, 12 digits) or an old ID card number (9 digits)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str | None:
        raw = "".join(super()._deserialize(value, attr, data, **kwargs).split())
        if not raw:
            return None
        if not (raw.isascii() and raw.isdigit()) or len(raw) not in (9, 12):
            raise ValidationError(coded("invalid_id_number",
                                          "An ID number has 12 digits (CCCD) or 9 digits (old ID card)."))
        return raw


# Days the service takes: anything else is a typo or a probe, and day arithmetic near year 1 or 9999
# (a default span before or after it) would overflow.
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
_DAY_RANGE = validate.Range(EARLIEST, LATEST)


class Day(fields.Date):
    """A calendar day (YYYY-MM-DD) from EARLIEST to LATEST; the field's own validators come after."""

    def __init__(self, *args: Any, validate: Any = None, **kwargs: Any) -> None:  # noqa: A002
        own = [] if validate is None else list(validate) if isinstance(validate, list | tuple) else [validate]
        super().__init__(*args, validate=[_DAY_RANGE, *own], **kwargs)


class QueryArgs(Schema):
    """The query string of an API endpoint. A parameter it does not name is refused (422, under
    ``errors.query``, saying which ones it takes), never ignored: a filter the endpoint does not have
    (``?status=delivered`` on a list) would answer everything as if it were filtered. ``ALSO``: the
    names read elsewhere (``lang`` by the locale; the paginator's ``page`` and ``page_size`` for a
    paginated endpoint's schema). The API's parser leaves unknown parameters to the schema
    (``api._Parser``: webargs ignores them in a query string by default)."""

    ALSO: frozenset[str] = frozenset({"lang"})

    class Meta:
        unknown = RAISE

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        names = sorted({f.data_key or name for name, f in self.load_fields.items()} | self.ALSO)
        self.error_messages = {**self.error_messages, "unknown": coded(
            "unknown_parameter", "Not a parameter of this endpoint; it takes " + ", ".join(names) + ".")}

    @pre_load
    def _without_others(self, data: Any, **kwargs: Any) -> Any:
        if isinstance(data, MultiDictProxy) and any(k in self.ALSO for k in data):
            rest = data.data.items(multi=True) if isinstance(data.data, MultiDict) else data.data.items()
            return MultiDictProxy(MultiDict([(k, v) for k, v in rest if k not in self.ALSO]), self)
        return data
