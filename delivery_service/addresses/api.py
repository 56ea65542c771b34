"""/api/v1/addresses/parse: a free-text address to the units valid on a day (offline parser)."""

from __future__ import annotations

import datetime as dt
import threading
from functools import lru_cache
from typing import Any

from flask import Flask, current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from delivery_service.addresses.parser import AddressParser, ParseResult, package_aliases
from delivery_service.api import current_actor, protected
from delivery_service.fields import Day, Text
from delivery_service.orders.services import local_today
from delivery_service.units.services import UnitIndex, unit_index
from delivery_service.units.succession import split_successors, successors

MAX_TEXT = 500

blp = protected(Blueprint("addresses", __name__, url_prefix="/addresses",
                          description="Addresses written as text, read as administrative units"))


class AddressParseIn(Schema):
    text = Text(required=True, max_length=MAX_TEXT, multiline=True,
                metadata={"description": "The address as written",
                          "example": "Số 12 Hùng Vương, P. Cẩm Thành, TP. Quảng Ngãi"})
    on = Day(load_default=None, metadata={"description": "The day the units must be valid on "
                                          "(today in Vietnam by default)"})


class AddressUnitOut(Schema):
    id = fields.Integer()
    level = fields.String()
    code = fields.String()
    name = fields.String()
    kind = fields.String()


class AddressReadingOut(Schema):
    """One reading of the text: units of one structure (three levels before 1 Jul 2025, two after)."""

    province = fields.Nested(AddressUnitOut, allow_none=True)
    district = fields.Nested(AddressUnitOut, allow_none=True)
    commune = fields.Nested(AddressUnitOut, allow_none=True)
    score = fields.Float()
    legacy = fields.Boolean(metadata={"description": "Units of a structure that ended before the day"})


class AddressParseOut(Schema):
    on = fields.Date()
    province = fields.Nested(AddressUnitOut, allow_none=True, metadata={"description": "Valid on the day"})
    district = fields.Nested(AddressUnitOut, allow_none=True,
                             metadata={"description": "Before 1 Jul 2025 only (no district level after)"})
    commune = fields.Nested(AddressUnitOut, allow_none=True, metadata={"description": "Valid on the day"})
    detail = fields.String(metadata={"description": "What remains: house number, street, hamlet, "
                                     "notes in brackets"})
    confidence = fields.Float(metadata={"description": "0 to 1"})
    sure = fields.Boolean(metadata={"description": "False: ask, and offer the candidates"})
    province_sure = fields.Boolean(metadata={"description": "The province is read with certainty even "
                                             "when the commune is not (sure implies it): it may be set, "
                                             "the commune chosen"})
    written = fields.Nested(AddressReadingOut, allow_none=True,
                            metadata={"description": "The pre-reform units the text names, when the day "
                                      "is after the reform (the answer is then their successor)"})
    successor = fields.Nested(AddressUnitOut, allow_none=True,
                              metadata={"description": "The 2025 commune that succeeded the pre-reform "
                                        "commune of the text"})
    candidates = fields.List(fields.Nested(AddressReadingOut),
                             metadata={"description": "Ranked readings when not sure (at most 5)"})


_lock = threading.Lock()


@lru_cache(maxsize=1)
def _aliases() -> dict[tuple[str, str, dt.date], list[str]]:
    return package_aliases()


def _signature(index: UnitIndex) -> int:
    return hash(frozenset((u.id, u.code, u.name, u.kind, u.parent_id, u.valid_from, u.valid_to)
                          for u in index.by_id.values()))


def address_parser(app: Flask | None = None) -> AddressParser:
    """The app's parser, built from the units of the database.

    Building it takes about a second for the whole country, so it is kept while the units are the
    same: when the unit index is reloaded (every few minutes, or after an import) the units are
    compared, in a few milliseconds, and the parser is rebuilt only if they changed.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    index: UnitIndex = unit_index(app)
    cached: tuple[UnitIndex, int, AddressParser] | None = app.extensions.get("address_parser")
    if cached is None or cached[0] is not index:
        with _lock:
            signature = _signature(index)
            if cached is not None and cached[1] == signature:
                parser = cached[2]
            else:
                parser = AddressParser(index.by_id.values(), successors(), _aliases(), split_successors())
            cached = (index, signature, parser)
            app.extensions["address_parser"] = cached
    return cached[2]


def as_json(result: ParseResult) -> dict[str, Any]:
    return {"on": result.on, "province": result.province, "district": result.district,
            "commune": result.commune, "detail": result.detail, "confidence": result.confidence,
            "sure": result.sure, "province_sure": result.province_sure, "written": result.written,
            "successor": result.successor, "candidates": result.candidates}


@blp.route("/parse", methods=["POST"])
@blp.arguments(AddressParseIn)
@blp.response(200, AddressParseOut)
def parse(data: dict[str, Any]):
    """Read a written address: province, commune (and district before 1 Jul 2025), the rest.

    Full names, abbreviations (TP., Q., H., TX., P., X., TT.), text without diacritics, any case,
    former names, one-letter typos in the commune, phone numbers, postcodes and notes (a note in
    brackets stays in ``detail``, for the courier). A pre-reform address (a former district, a
    merged commune) dated after 1 Jul 2025 is answered with the 2025 commune that succeeded it
    (``written`` keeps what the text said); a pre-reform commune split between several 2025
    communes is not sure, its parts first among the candidates. A district written that the
    commune is not in makes the answer not sure too. When ``sure`` is false, the ranked
    ``candidates`` say what else the text could mean.
    """
    current_actor()
    return as_json(address_parser().parse(data["text"], data["on"] or local_today()))
