"""The import's fast paths against the general ones they stand for, on the same inputs: reading a row's
cells into OrderIn's input (``row_input`` against the reading it replaced, kept here), the usual CSV
row mapped at once (``_rows``), and the erasure index's statuses against orders.status.TERMINAL."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from delivery_service.imports.services import (
    _READ_CELL,
    KNOWN_COLUMNS,
    NAME_COLUMNS,
    NESTED,
    _blank,
    _column_letter,
    _rows,
    _text,
    row_input,
)
from delivery_service.orders.models import CLOSED_STATUSES, DeliveryOrder
from delivery_service.orders.status import TERMINAL


def general_row_input(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """row_input as it was before its single pass (commit 6dd3456): every cell through its reader
    into a flat dict, the units' names joined, then nested."""
    flat: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    read_cell = _READ_CELL.get
    for column, raw in values.items():
        if raw is None or raw == "":
            continue
        try:
            value = read_cell(column, _text)(raw)
        except ValidationError as exc:
            errors[column] = list(exc.messages) if isinstance(exc.messages, list) else [str(exc.messages)]
            continue
        if value is not None:
            flat[column] = value
    if "province_name" in flat or "commune_name" in flat or "district_name" in flat:
        names = ", ".join(flat.pop(c) for c in NAME_COLUMNS if c in flat)
        flat.setdefault("address_text", names)
    data: dict[str, Any] = {"recipient": {}, "address": {}}
    for column, value in flat.items():
        if column in NESTED:
            parent, child = NESTED[column]
            data.setdefault(parent, {})[child] = value
        else:
            data[column] = value
    return data, errors


def same(got: Any, expected: Any) -> None:
    """Equal, and in the same key order (the errors are stored and shown in that order)."""
    assert got == expected
    assert json.dumps(got, default=repr) == json.dumps(expected, default=repr)


CELLS = st.one_of(
    st.none(), st.just(""), st.sampled_from([" ", "\t", "  \u00a0", "\u3000"]),
    st.sampled_from(["51", "021025", "21025", " 51 ", "0905123456", "079123456789", "1.200", "26,000", "26000",
                     "abc", "31/12/2026", "2026-12-31", "2026-02-30", "result_to_citizen", " BOTH ", "Hà Nội",
                     "Phường 1", "12 Hùng Vương", "sáng", "08:00-12:00", "3.5", "-1", "1 200 000"]),
    st.text(max_size=12),
    st.integers(min_value=-10, max_value=10**12), st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(), st.dates(min_value=dt.date(2020, 1, 1), max_value=dt.date(2030, 12, 31)),
    st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2030, 12, 31)),
)
COLUMN_NAMES = sorted(KNOWN_COLUMNS) + ["something_else"]


@given(st.dictionaries(st.sampled_from(COLUMN_NAMES), CELLS, max_size=len(COLUMN_NAMES)))
def test_row_input_reads_cells_as_the_general_reading(values: dict[str, Any]) -> None:
    try:
        expected = general_row_input(dict(values))
    except Exception as exc:  # noqa: BLE001  (the fast reading must fail alike)
        try:
            row_input(dict(values))
        except type(exc):
            return
        raise AssertionError(f"general reading raised {exc!r}, the fast one did not") from None
    same(row_input(dict(values)), expected)


def test_row_input_of_the_usual_rows() -> None:
    usual = {"direction": "result_to_citizen", "dossier_code": "H55-1", "procedure_name": "Cấp đổi",
             "issuing_agency": "Sở", "recipient_name": "Nguyễn Thị Hoa", "recipient_phone": "0905123456",
             "recipient_id_number": "", "authorised_name": "", "province_code": "51", "district_code": "",
             "commune_code": "21025", "address_detail": "12 Hùng Vương", "postage_vnd": "26.000",
             "appointment_date": "31/12/2026", "note": "  ", "weight_g": 250.0}
    by_names = {**usual, "province_code": "", "commune_code": "", "province_name": "Quảng Ngãi",
                "commune_name": "Phường 1", "district_name": "Tư Nghĩa"}
    with_text = {**by_names, "address_text": "12 Hùng Vương, Phường 1"}
    bad = {**usual, "appointment_date": "31/02/2026", "authorised_phone": "0905 123 456"}
    for values in (usual, by_names, with_text, bad, {}):
        same(row_input(values), general_row_input(values))
    assert row_input(by_names)[0]["address"]["text"] == "Phường 1, Tư Nghĩa, Quảng Ngãi"


def general_rows(kind: str, index: list[str | None], records: list[list[Any]]) -> list[tuple[int, dict, Any]]:
    """_rows' mapping of cells to columns, cell by cell (as it was before the usual row's shortcut)."""
    width = len(index)
    needed = max(pos for pos, column in enumerate(index) if column) + 1
    out = []
    for line, cells in enumerate(records, start=2):
        if all(_blank(c) for c in cells):
            continue
        values: dict[str, Any] = {}
        problem = None
        if kind == "csv" and not needed <= len(cells) <= width:
            problem = (f"This line has {len(cells)} values but the header has {width} columns: "
                       "check the separators and the quotes.")
        for pos, cell in enumerate(cells):
            column = index[pos] if pos < width else None
            if column is not None:
                values[column] = cell
            elif not _blank(cell) and problem is None:
                problem = f"Column {_column_letter(pos)} has a value but no name in the first line."
        out.append((line, values, problem))
    return out


@given(st.sampled_from(["csv", "xlsx"]),
       st.lists(st.sampled_from(["direction", "dossier_code", "note", None]), min_size=1, max_size=4,
                unique_by=lambda c: c or object()).filter(lambda index: any(index)),
       st.lists(st.lists(st.sampled_from(["", " ", "\t", "\u00a0", "\u3000", "x", "0905", None, 0, 1.5]),
                         max_size=6), max_size=6))
def test_rows_map_cells_as_the_general_mapping(kind: str, index: list[str | None],
                                               records: list[list[Any]]) -> None:
    got = [(r.line, r.values, r.problem) for r in _rows(kind, index, iter(records), None)]
    same(got, general_rows(kind, index, records))


def test_the_erasure_index_holds_every_closed_status() -> None:
    closed = sorted({status.value for statuses in TERMINAL.values() for status in statuses})
    assert CLOSED_STATUSES == "status IN (" + ", ".join(f"'{s}'" for s in closed) + ")"
    index = next(i for i in DeliveryOrder.__table__.indexes if i.name == "ix_orders_erasable")
    assert CLOSED_STATUSES in str(index.dialect_options["sqlite"]["where"])
    assert CLOSED_STATUSES in str(index.dialect_options["postgresql"]["where"])
