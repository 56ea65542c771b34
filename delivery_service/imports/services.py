"""Batch import of orders: the file checks at upload, the job that stores the rows, the template.

A file is refused as a whole (InvalidInput on ``file``) when it cannot be read as a table of orders:
wrong type or encoding, unknown or missing columns, too big. Otherwise every row is validated on
its own; good rows are stored, bad rows are reported with the file's line and column names.
The column set and the rules are documented in docs/import-format.md.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import functools
import gc
import hashlib
import io
import logging
import re
import secrets
import time
import unicodedata
import warnings
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import current_app
from marshmallow import ValidationError
from sqlalchemy.exc import IntegrityError

from delivery_service import metrics
from delivery_service.accounts.models import ApiClient, Role, User
from delivery_service.accounts.services import SYSTEM, Actor
from delivery_service.db import utcnow
from delivery_service.errors import Forbidden, InvalidInput, NotFound, coded
from delivery_service.extensions import db
from delivery_service.imports.models import (
    STALLED_PREFIX,
    STOPPED_PREFIX,
    ImportBatch,
    ImportRow,
    ImportState,
)
from delivery_service.jobs import enqueue_after_commit, no_worker_for, queue_of
from delivery_service.orders.fast_load import fast_load, fast_phone  # noqa: F401  (fast_phone: tests)
from delivery_service.orders.models import DeliveryOrder
from delivery_service.orders.schemas import FLAT_FIELDS, OrderIn
from delivery_service.orders.services import (
    add_order,
    add_orders,
    find_duplicate,
    insert_many,
    local_today,
    read_order_address,
)
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.models import Counter
from delivery_service.routing.bulk import PlacementRaced
from delivery_service.stalled import runs_counted, stall_after, times
from delivery_service.units.models import UnitLevel
from delivery_service.units.services import CODE_WIDTH, resolve_address

log = logging.getLogger(__name__)

# The columns of an import file, in template order.
COLUMNS: tuple[str, ...] = tuple(FLAT_FIELDS)
# Without these every row would fail, so a file lacking one is refused as a whole.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "direction", "dossier_code", "procedure_name", "issuing_agency", "recipient_name", "recipient_phone",
    "province_code", "commune_code", "address_detail",
)
CODE_REQUIRED = ("province_code", "commune_code", "address_detail")  # the address as codes
# Instead of the code columns: the address in one column (read by the address parser), or the units'
# names. Not in the template; a file with "dia_chi" (address_detail) but neither codes nor names
# has the whole address there, and that column is read as address_text.
ADDRESS_COLUMNS: tuple[str, ...] = ("address_text", "province_name", "district_name", "commune_name")
KNOWN_COLUMNS = frozenset(COLUMNS + ADDRESS_COLUMNS)
NAME_COLUMNS = ("commune_name", "district_name", "province_name")  # in the order an address is written
# Vietnamese headers (compared without diacritics, case or punctuation: "Mã hồ sơ" is ma_ho_so).
ALIASES: dict[str, str] = {
    "chieu": "direction", "ma_ho_so": "dossier_code", "ma_thu_tuc": "procedure_code",
    "ten_thu_tuc": "procedure_name", "co_quan_giai_quyet": "issuing_agency",
    "ten_nguoi_nhan": "recipient_name", "sdt_nguoi_nhan": "recipient_phone",
    "cccd_nguoi_nhan": "recipient_id_number", "ten_nguoi_duoc_uy_quyen": "authorised_name",
    "sdt_nguoi_duoc_uy_quyen": "authorised_phone", "cccd_nguoi_duoc_uy_quyen": "authorised_id_number",
    "ma_tinh": "province_code", "ma_huyen": "district_code", "ma_xa": "commune_code",
    "dia_chi": "address_detail", "cuoc_phi": "postage_vnd", "nguoi_tra_cuoc": "payer",
    "mien_giam": "exemption", "thu_ho": "collect_vnd", "ngay_hen_tra": "appointment_date",
    "khoi_luong": "weight_g", "khoi_luong_g": "weight_g", "trong_luong": "weight_g",
    "ghi_chu": "note", "khung_gio": "delivery_window", "khung_gio_giao": "delivery_window",
    "address": "address_text", "full_address": "address_text", "dia_chi_day_du": "address_text",
    "ten_tinh": "province_name", "tinh": "province_name", "tinh_thanh_pho": "province_name",
    "ten_huyen": "district_name", "huyen": "district_name", "quan_huyen": "district_name",
    "ten_xa": "commune_name", "xa": "commune_name", "xa_phuong": "commune_name", "phuong_xa": "commune_name",
}
# Where a flat column goes in OrderIn's nested structure (the others keep their name at the top).
NESTED: dict[str, tuple[str, ...]] = {col: path for col, path in FLAT_FIELDS.items() if len(path) == 2}
NESTED["address_text"] = ("address", "text")
COLUMN_OF_PATH: dict[tuple[str, ...], str] = {
    **{path: col for col, path in NESTED.items()},
    **{(col,): col for col in COLUMNS},
}
CODE_COLUMNS = {"province_code": UnitLevel.PROVINCE, "district_code": UnitLevel.DISTRICT,
                "commune_code": UnitLevel.COMMUNE}
ID_COLUMNS = {"recipient_id_number", "authorised_id_number"}
MONEY_COLUMNS = {"postage_vnd", "collect_vnd", "weight_g"}  # whole numbers, "1.200" read as 1200
ENUM_COLUMNS = {"direction", "payer", "exemption"}
ROW = "_row"  # the error key of a problem that belongs to no single column
# Rows per transaction in the job (IMPORT_CHUNK_ROWS in the config overrides it). On SQLite a chunk
# holds the database's write lock from its first write to its commit, and an intake request waits for
# it: 500 rows take about 40 ms of it (p90 50 ms; the benchmark's rows, validated before the first
# write), where 250 took 30 ms when they were validated under the lock. Twice the rows, half the commits.
CHUNK_ROWS = 500

CREATED, EXISTING, ERROR = "created", "existing", "error"
_MONEY = re.compile(r"\d+|\d{1,3}(?:([.,\s])\d{3})(?:\1\d{3})*")


# Said with missing address columns (a message of its own, translated as one: web.messages)
ADDRESS_HINT = "Or give the address in one column: address_text / dia_chi_day_du."


def _refuse(*messages: str, code: str = "unreadable_file") -> InvalidInput:
    """A file refused whole: under ``files`` (where the upload is, like a bad file name), each message
    with its code (``unsupported_file_type``, ``invalid_encoding``, ``malformed_file``, ``empty_file``,
    ``invalid_columns``, ``too_many_rows``, ``file_too_large``)."""
    return InvalidInput({"file": [coded(code, m) for m in messages]}, location="files")


# --- reading a file into rows -----------------------------------------------------------------

@dataclass
class Row:
    line: int  # as the user sees it: the header is line 1 (the Excel row number)
    values: dict[str, Any]  # canonical column -> raw cell value
    problem: str | None = None  # a defect of the row as a whole (wrong number of values)


@dataclass
class Table:
    kind: str
    headers: dict[str, str]  # canonical column -> the header as written in the file
    rows: list[Row] = field(default_factory=list)

    def label(self, column: str) -> str:
        """The name the file uses for ``column``."""
        return self.headers.get(column, column)


def canonical_column(header: str) -> str:
    """The column a header names: lower case, no diacritics, runs of other characters as ``_``."""
    text = unicodedata.normalize("NFD", header.strip()).replace("đ", "d").replace("Đ", "D")
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return ALIASES.get(text, text)


def _column_letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def detect_kind(filename: str, content: bytes) -> str:
    """``csv`` or ``xlsx``, by the extension and the first bytes; InvalidInput otherwise."""
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    is_zip = content[:2] == b"PK"
    is_ole = content[:4] == b"\xd0\xcf\x11\xe0"  # the old binary Excel format (.xls)
    if ext == "xls" or is_ole:
        raise _refuse("Old Excel files (.xls) cannot be read: save the sheet as .xlsx or as CSV UTF-8.",
                      code="unsupported_file_type")
    if ext == "xlsx":
        if not is_zip:
            raise _refuse("This .xlsx file is not an Excel workbook: save it again from Excel as .xlsx.",
                          code="unsupported_file_type")
        return "xlsx"
    if ext == "csv":
        if is_zip:
            raise _refuse("This file is an Excel workbook, not CSV: upload it with the .xlsx extension.",
                          code="unsupported_file_type")
        return "csv"
    raise _refuse("Only .csv and .xlsx files can be imported.", code="unsupported_file_type")


def _check_text(content: bytes) -> None:
    """Refuse a CSV file that is not UTF-8 text, without decoding it as a whole (a copy as big as
    the file, four times over once in a StringIO): checked 1 MB at a time."""
    if content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise _refuse("The file is UTF-16 text: in Excel choose Save As, “CSV UTF-8 (Comma delimited)”.",
                      code="invalid_encoding")
    decoder = codecs.getincrementaldecoder("utf-8")()
    skip = 3 if content.startswith(codecs.BOM_UTF8) else 0  # positions as utf-8-sig counts them
    step = 1 << 20
    for start in range(skip, max(len(content), skip + 1), step):
        pending = len(decoder.getstate()[0])
        try:
            decoder.decode(content[start:start + step], final=start + step >= len(content))
        except UnicodeDecodeError as exc:
            for legacy in ("cp1258", "cp1252"):
                try:
                    content.decode(legacy)
                except UnicodeDecodeError:
                    continue
                raise _refuse("The file is not in UTF-8 (it looks like a Windows code page such as cp1258): "
                              "in Excel choose Save As, “CSV UTF-8 (Comma delimited)”.",
                              code="invalid_encoding") from None
            position = start - skip - pending + exc.start
            raise _refuse(f"The file is not valid UTF-8 text (byte {position + 1}): save it as CSV UTF-8.",
                          code="invalid_encoding") \
                from None
    if b"\x00" in content:  # in UTF-8 the byte 0 is the character NUL and nothing else
        raise _refuse("The file contains NUL characters: it is not a CSV text file.", code="invalid_encoding")


def _csv_records(content: bytes, checked: bool = False) -> Iterator[list[str]]:
    """The records of a CSV file, its text decoded as it is read. ``checked``: the file passed
    ``_check_text`` at its upload."""
    if not checked:
        _check_text(content)
    end = content.find(b"\n")
    first = content[:end if end >= 0 else len(content)].decode("utf-8-sig", errors="replace")
    stream = io.TextIOWrapper(io.BytesIO(content), encoding="utf-8-sig", newline="")
    # Excel writes ";" where the list separator is ",", as in Vietnamese regional settings.
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _refuse(f"The CSV is malformed in the record starting at line {start} ({exc}): "
                          "check the quotes (\") there.", code="malformed_file") from None
        yield record


def _xlsx_records(content: bytes) -> Iterator[list[Any]]:
    import openpyxl

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # style and extension warnings say nothing about the data
            book = openpyxl.load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception:  # noqa: BLE001  (any defect of an untrusted file means the same to the user)
        raise _refuse("The file cannot be read as an Excel workbook (.xlsx).",
                      code="malformed_file") from None
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # some writers record a wrong sheet size; read to the real end
        rows = sheet.iter_rows(values_only=True)
        while True:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    values = next(rows)
            except StopIteration:
                return
            except Exception:  # noqa: BLE001
                raise _refuse("The file cannot be read as an Excel workbook (.xlsx).",
                              code="malformed_file") from None
            yield list(values)
    finally:
        book.close()


def read_table(kind: str, content: bytes, max_rows: int | None = None) -> Table:
    """The header and the non-blank rows of a file; InvalidInput on ``file`` if it is not a table."""
    with open_table(kind, content, max_rows) as (table, rows):
        table.rows = list(rows)
    if not table.rows:
        raise _refuse("The file has a header but no rows of orders.", code="empty_file")
    return table


def count_rows(kind: str, content: bytes, max_rows: int | None = None,
               keep: int = 0) -> tuple[Table, int]:
    """The header and the number of non-blank rows of a file, read as ``read_table`` reads it (the
    same refusals); the rows are kept in the table if there are at most ``keep`` of them."""
    count = 0
    # The rows kept would set off a full collection of the process's objects (see _gc_paused): the
    # collector waits while they are read, and for the rest of a longer file (not kept) works again.
    paused = keep > 0 and gc.isenabled()
    if paused:
        gc.disable()
    try:
        with open_table(kind, content, max_rows) as (table, rows):
            for row in rows:
                count += 1
                if count <= keep:
                    table.rows.append(row)
                elif table.rows:
                    table.rows = []
                    if paused:
                        gc.enable()
                        paused = False
    finally:
        if paused:
            gc.enable()
    if not count:
        raise _refuse("The file has a header but no rows of orders.", code="empty_file")
    return table, count


@contextmanager
def open_table(kind: str, content: bytes, max_rows: int | None = None, *,
               checked: bool = False) -> Iterator[tuple[Table, Iterator[Row]]]:
    """The file's header (a Table without rows) and an iterator over its non-blank rows, read as
    they are needed (the job reads a file of any length in constant memory). ``checked``: the file
    was checked at its upload (see ``_csv_records``)."""
    records = _csv_records(content, checked) if kind == "csv" else _xlsx_records(content)
    with closing(records):
        table, index = _header(kind, records)
        yield table, _rows(kind, index, records, max_rows)


def _header(kind: str, records: Iterator[list[Any]]) -> tuple[Table, list[str | None]]:
    header_cells = next(records, None)
    if header_cells is None:
        raise _refuse("The file is empty.", code="empty_file")
    if all(_blank(c) for c in header_cells):
        raise _refuse("The first line must hold the column names (download the template).",
                      code="invalid_columns")
    headers: dict[str, str] = {}
    index: list[str | None] = []  # the column at each position; None under an empty header cell
    unknown, problems = [], []
    for cell in header_cells:
        written = "" if cell is None else str(cell).strip()
        if not written:
            index.append(None)
            continue
        column = canonical_column(written)
        if column not in KNOWN_COLUMNS:
            unknown.append(written)
        elif column in headers:
            problems.append(f"The column {column} appears twice ({headers[column]!r} and {written!r}).")
        headers.setdefault(column, written)
        index.append(column)
    if unknown:
        problems.append(f"Unknown columns: {', '.join(unknown)}. "
                        f"The columns are: {', '.join(COLUMNS)} (see the template).")
    if "address_detail" in headers and not {"address_text", "province_code", "commune_code",
                                            "province_name", "commune_name"} & headers.keys():
        headers["address_text"] = headers.pop("address_detail")  # the whole address in one column
        index = ["address_text" if c == "address_detail" else c for c in index]
    address_form = ("address_text",) if "address_text" in headers else (
        ("province_name", "commune_name", "address_detail") if "province_name" in headers
        or "commune_name" in headers else CODE_REQUIRED)
    missing = [c for c in REQUIRED_COLUMNS if c not in headers and (c not in CODE_REQUIRED
                                                                     or c in address_form)]
    missing += [c for c in address_form if c not in headers and c not in missing]
    if missing:
        problems.append(f"Missing required columns: {', '.join(missing)}.")
        if set(missing) & set(address_form):
            problems.append(ADDRESS_HINT)
    if problems:
        raise _refuse(*problems, code="invalid_columns")

    # Where the messages about a row's address are shown, in a file without the code columns: under
    # the address column, or the names (an unclear reading under the commune's name).
    labels = (dict.fromkeys(CODE_REQUIRED, "address_text") if address_form == ("address_text",) else
              {"province_code": "province_name", "commune_code": "commune_name",
               "address_text": "commune_name"} if address_form != CODE_REQUIRED else {})
    for column, shown in labels.items():
        if shown in headers:
            headers.setdefault(column, headers[shown])
    return Table(kind=kind, headers=headers), index


def _rows(kind: str, index: list[str | None], records: Iterator[list[Any]],
          max_rows: int | None) -> Iterator[Row]:
    width = len(index)
    needed = max(pos for pos, column in enumerate(index) if column) + 1
    named = None not in index  # every column has a name: a row of the header's width maps one to one
    count = 0
    for line, cells in enumerate(records, start=2):
        if max_rows is not None and line > 2 * max_rows + 1000:
            # Blank rows cost nothing to compress: stop a small workbook that unpacks into millions.
            raise _refuse(f"The file has more than {2 * max_rows + 1000} lines, most of them blank.",
                          code="too_many_rows")
        try:  # the usual record, all text: blank when its text joined is
            blank = not "".join(cells).strip()
        except TypeError:  # a workbook's numbers, dates, empty cells
            blank = all(_blank(c) for c in cells)
        if blank:
            continue
        if max_rows is not None and count >= max_rows:
            raise _refuse(f"The file has more than {max_rows} rows: split it into several files.",
                          code="too_many_rows")
        count += 1
        if named and len(cells) == width:  # the usual row
            yield Row(line=line, values=dict(zip(index, cells, strict=True)))  # type: ignore[arg-type]
            continue
        row = Row(line=line, values={})
        if kind == "csv" and not needed <= len(cells) <= width:
            # A missing or extra separator shifts the values into the wrong columns: refuse the row.
            row.problem = (f"This line has {len(cells)} values but the header has {width} columns: "
                           "check the separators and the quotes.")
        for pos, cell in enumerate(cells):
            column = index[pos] if pos < width else None
            if column is not None:
                row.values[column] = cell
            elif not _blank(cell) and row.problem is None:
                row.problem = f"Column {_column_letter(pos)} has a value but no name in the first line."
        yield row


# --- a row to OrderIn's input ------------------------------------------------------------------

def _text(value: Any) -> str | None:
    """A cell as text: numbers without a spurious ``.0``, dates as ISO dates, blank as None."""
    if type(value) is str:  # the usual cell, first
        return value if value.strip() else None
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None


def _code(value: Any, level: UnitLevel) -> str | None:
    text = _text(value)
    if text is None:
        return None
    text = text.strip()
    return text.zfill(CODE_WIDTH[level]) if text.isdigit() else text


def _id_number(value: Any) -> str | None:
    """Spreadsheets drop the leading 0 of ID numbers (every CCCD starts with one): put it back."""
    text = _text(value)
    if text is None:
        return None
    digits = "".join(text.split())
    if digits.isdigit() and len(digits) == 8:
        return digits.zfill(9)
    if digits.isdigit() and len(digits) in (10, 11):
        return digits.zfill(12)
    return text


def _money(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, str):
        return value
    text = value.strip()
    if _MONEY.fullmatch(text):
        return int(re.sub(r"\D", "", text))
    return text  # OrderIn reports "Not a valid integer."


def _date(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = _text(value)
    if text is None:
        return None
    day = _day_text(text.strip())
    if day is None:
        raise ValidationError("Not a valid date.")
    return day


@functools.lru_cache(maxsize=1024)
def _day_text(text: str) -> str | None:
    """A date written as YYYY-MM-DD or DD/MM/YYYY in ISO form, or None (the rows of a file share a
    few dates: each is read once)."""
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    return None


def _enum(value: Any) -> str | None:
    text = _text(value)
    return text.strip().lower() if text else None


def _money_cell(value: Any) -> Any:
    return None if _blank(value) else _money(value)


# How each column's cell is read (any other column: as text).
_READ_CELL: dict[str, Any] = {
    **{column: functools.partial(_code, level=level) for column, level in CODE_COLUMNS.items()},
    **dict.fromkeys(ID_COLUMNS, _id_number),
    **dict.fromkeys(MONEY_COLUMNS, _money_cell),
    "appointment_date": _date,
    **dict.fromkeys(ENUM_COLUMNS, _enum),
}


# Per column: its reader (None: read as text, inline) and where its value goes in OrderIn's input:
# (parent, key) under a nested object, (None, column) at the top, ("", column) for a unit's name (the
# names are joined into an address text).
_NAMES = ""


def _memo(read: Any) -> Any:
    """``read`` with its answers for short text cells kept (a file's rows repeat their codes, amounts
    and choices: each distinct text is read once); other cells, and a text it refuses, read each time."""
    cached = functools.lru_cache(maxsize=1024)(read)

    def read_cell(raw: Any) -> Any:
        return cached(raw) if type(raw) is str and len(raw) <= 64 else read(raw)

    return read_cell


_CELL_PLAN: dict[str, tuple[Any, str | None, str]] = {
    # ID numbers are read each time: personal data is not kept beyond its row in a long-lived process
    column: (None if _READ_CELL.get(column, _text) is _text
             else _READ_CELL[column] if column in ID_COLUMNS else _memo(_READ_CELL[column]),
             *(NESTED[column] if column in NESTED else (_NAMES, column) if column in NAME_COLUMNS
               else (None, column)))
    for column in KNOWN_COLUMNS
}


def row_input(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """OrderIn's nested input from a row's flat cells, and the errors of cells that cannot be read."""
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {"recipient": {}, "address": {}}
    names: dict[str, Any] | None = None
    plan = _CELL_PLAN.get
    for column, raw in values.items():
        if raw is None or raw == "":  # every reader reads an empty cell as no value
            continue
        read, parent, key = plan(column) or (None, None, column)
        if read is None:  # _text, inline for the usual cell (a string)
            if type(raw) is str:
                if raw.isspace():
                    continue
                value = raw
            else:
                value = _text(raw)
                if value is None:
                    continue
        else:
            try:
                value = read(raw)
            except ValidationError as exc:
                errors[column] = list(exc.messages) if isinstance(exc.messages, list) else [str(exc.messages)]
                continue
            if value is None:
                continue
        if parent is None:
            data[key] = value
        elif parent == _NAMES:
            if names is None:
                names = {}
            names[key] = value
        else:
            nested = data.get(parent)
            if nested is None:
                nested = data[parent] = {}
            nested[key] = value
    if names:  # read like a written address, unless the row has one
        data["address"].setdefault("text", ", ".join(names[c] for c in NAME_COLUMNS if c in names))
    return data, errors


# A row OrderIn would accept is loaded by ``orders.fast_load.fast_load`` (OrderIn's output without
# marshmallow, shared with the API's intake); any other row by OrderIn, which words its errors.


def column_errors(errors: dict[str, Any]) -> dict[str, list[str]]:
    """OrderIn's or build_order's errors keyed by the flat column names."""
    out: dict[str, list[str]] = {}

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, path if key == "_schema" else (*path, str(key)))
            return
        column = COLUMN_OF_PATH.get(path) or COLUMN_OF_PATH.get(path[-1:]) or ROW
        messages = node if isinstance(node, list) else [node]
        out.setdefault(column, []).extend(str(m) for m in messages)

    walk(errors, ())
    return out


def _merge(into: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for key, messages in more.items():
        known = into.setdefault(key, [])
        known.extend(m for m in list(messages) if m not in known)


def _key_of(values: dict[str, Any]) -> tuple[str, str] | None:
    """A row's (dossier_code, direction) as OrderIn normalises them; None if either is empty."""
    dossier, direction = _text(values.get("dossier_code")), _text(values.get("direction"))
    if not dossier or not direction:
        return None
    return " ".join(unicodedata.normalize("NFC", dossier).split()), direction.strip().lower()


# --- upload, lookup, template ------------------------------------------------------------------

def _clean_filename(filename: str) -> str:
    name = unicodedata.normalize("NFC", (filename or "").replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    return name[-255:] or "import"


def start_import(actor: Actor, *, counter_id: int, filename: str, content: bytes) -> ImportBatch:
    """Check and store an uploaded file and start its import after the commit; commits.

    Without Redis the import has run when this returns; with Redis the batch is still pending.
    """
    if actor.role is not Role.ADMIN and actor.counter_id != counter_id:
        raise Forbidden("You can only import orders for your own counter.")
    if db.session.get(Counter, counter_id) is None:
        raise InvalidInput({"counter_id": ["No such counter."]})
    cfg = current_app.config
    if not content:
        raise _refuse("The file is empty.", code="empty_file")
    if len(content) > cfg["MAX_IMPORT_BYTES"]:
        limit = cfg["MAX_IMPORT_BYTES"]
        size = f"{limit / 2**20:g} MB" if limit >= 2**20 else f"{limit:,} bytes"
        raise _refuse(f"The file is larger than {size}: split it into several files.", code="file_too_large")
    name = _clean_filename(filename)
    kind = detect_kind(name, content)
    table, total = count_rows(kind, content, cfg["MAX_IMPORT_ROWS"], keep=KEEP_PARSED_ROWS)
    batch = ImportBatch(counter_id=counter_id, api_client_id=actor.client_id, created_by_id=actor.user_id,
                        filename=name, content_type=kind, content=content, state=ImportState.PENDING,
                        total_rows=total)
    db.session.add(batch)
    db.session.flush()
    _PARSED.clear()  # at most the last upload's rows are kept
    if table.rows:
        _PARSED[batch.id] = (hashlib.sha256(content).digest(), table)
    enqueue_after_commit(RUN_IMPORT, batch.id, 1, on_failure=ON_FAILURE)
    db.session.commit()
    db.session.refresh(batch)  # an in-process job has finished it in its own session
    return batch


# The rows of the last upload, parsed, if it had at most KEEP_PARSED_ROWS: when this process runs its
# job (no Redis) the file is not read a second time. batch id -> (SHA-256 of the file, its table).
# A longer file is read again by the job, as it goes (memory flat).
_PARSED: dict[int, tuple[bytes, Table]] = {}
KEEP_PARSED_ROWS = 5_000


@contextmanager
def _job_rows(batch_id: int, kind: str, content: bytes) -> Iterator[tuple[Table, Iterator[Row]]]:
    """The batch's header and rows: kept from its upload in this process, or read from its file."""
    kept = _PARSED.pop(batch_id, None)
    if kept is not None and kept[0] == hashlib.sha256(content).digest():
        yield kept[1], iter(kept[1].rows)
        return
    with open_table(kind, content, checked=True) as opened:
        yield opened


NO_WORKER = "No import worker is running: tell the administrator."


def no_worker(batch: ImportBatch) -> bool:
    """Whether the import waits for a background worker that is not running: not started yet, with
    Redis, and Redis does not answer or no live worker listens to its queue (jobs.no_worker_for, what
    /ready, /admin/jobs and a label batch read). Said at once, not after JOBS_STALL_S; never without
    Redis (the web processes run the imports)."""
    return batch.state is ImportState.PENDING and no_worker_for(current_app, queue_of(RUN_IMPORT))


def get_import(actor: Actor, import_id: int) -> ImportBatch:
    """The batch if the actor may see it: its own counter's, or any for an admin; NotFound otherwise."""
    batch = db.session.get(ImportBatch, import_id) if 0 < import_id < 2**63 else None
    if batch is None or (actor.role is not Role.ADMIN and batch.counter_id != actor.counter_id):
        raise NotFound(f"No import {import_id}")
    return batch


def template_csv() -> bytes:
    """The import template: UTF-8 with a BOM (so Excel reads the diacritics), header and one example."""
    appointment = local_today() + dt.timedelta(days=3)
    example = {
        "direction": "result_to_citizen",
        "dossier_code": "000.00.18.H55-261121-0042",
        "procedure_code": "1.011442.000.00.00.H55",
        "procedure_name": "Cấp đổi giấy phép lái xe",
        "issuing_agency": "Sở Xây dựng tỉnh Quảng Ngãi",
        "recipient_name": "Nguyễn Thị Hoa",
        "recipient_phone": "0905123456",
        "recipient_id_number": "",
        "authorised_name": "",
        "authorised_phone": "",
        "authorised_id_number": "",
        "province_code": "51",
        "district_code": "",
        "commune_code": "21025",
        "address_detail": "12 Hùng Vương, tổ 3",
        "postage_vnd": "26000",
        "payer": "citizen",
        "exemption": "none",
        "collect_vnd": "0",
        "weight_g": "250",
        "appointment_date": appointment.strftime("%d/%m/%Y"),
        "delivery_window": "sáng",
        "note": "Gọi trước khi giao",
    }
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow([example[c] for c in COLUMNS])
    return out.getvalue().encode("utf-8-sig")


# --- the job ------------------------------------------------------------------------------------

def _actor_of(batch: Any) -> Actor:
    """The actor who uploaded the batch, rebuilt from its ids (jobs take ids, not objects)."""
    if batch.created_by_id is not None:
        user = db.session.get(User, batch.created_by_id)
        if user is not None:
            return Actor.of_user(user)
    if batch.api_client_id is not None:
        client = db.session.get(ApiClient, batch.api_client_id)
        if client is not None:
            return Actor(label=f"api:{client.name}", role=Role.COUNTER_STAFF, client_id=client.id,
                         counter_id=client.counter_id)
    return SYSTEM


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector held off for a chunk (~50 ms): a chunk allocates ~100,000
    objects, most of them living until its end, and the collections they set off (a full one about
    once a file, over every object of the process) were ~15 % of an import's time. Garbage
    (reference counting frees nearly all of it) is collected as usual between chunks. The switch is
    the process's: a web process running the job inline holds its other threads' collections too."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Superseded(Exception):
    """The run no longer holds its batch: the sweeper gave it to another run, or closed it."""


class _Run:
    """One execution of an import job: validates rows and stores them chunk by chunk.

    The file is read as the chunks need its rows, and each chunk's results go to import_rows with it:
    the memory a run holds does not grow with the file (but for a 16-byte key per row to find the
    rows that repeat an earlier one, and the lines done before a resumed run)."""

    def __init__(self, batch: Any, runner: str) -> None:
        self.batch_id: int = batch.id
        self.runner = runner
        self.counter_id: int = batch.counter_id
        self.actor = _actor_of(batch)
        self.kind: str = batch.content_type
        self.content: bytes = batch.content
        self.total: int = batch.total_rows
        self.table = Table(kind=self.kind, headers={})
        self.schema = OrderIn()
        self.seen: dict[bytes, int] = {}  # digest of (dossier_code, direction) -> first line
        self.done = set(db.session.scalars(sa.select(ImportRow.line).where(ImportRow.batch_id == batch.id)))
        self.counts = _result_counts(batch.id)  # of the results committed before (a resumed run)
        self.today = local_today()
        # SQLite rewrites a whole row at each update, the file it holds included: for a big file the
        # batch's counts and heartbeat are saved every PROGRESS_EVERY seconds, not at every chunk (the
        # results, in import_rows, are committed with each chunk all the same).
        self.sqlite = db.session.get_bind().dialect.name == "sqlite"
        self.throttled = self.sqlite and len(self.content) > PROGRESS_BYTES
        self.next_save = 0.0
        self.unanalysed = 0  # orders this run stored since it last had PostgreSQL analyse the table

    def run(self) -> None:
        """Process the rows without a result (all of them, unless this re-runs a crashed job)."""
        chunk_rows = current_app.config.get("IMPORT_CHUNK_ROWS", CHUNK_ROWS)
        pending: list[tuple[Row, int | None]] = []
        total = 0
        with _job_rows(self.batch_id, self.kind, self.content) as (table, rows):
            self.table = table
            for row in rows:
                total += 1
                key = _key_of(row.values)
                digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest() if key else None
                duplicate_of = self.seen.get(digest) if digest else None
                if digest and duplicate_of is None:
                    self.seen[digest] = row.line
                if row.line in self.done:
                    continue
                pending.append((row, duplicate_of))
                if len(pending) >= chunk_rows:
                    with _gc_paused():
                        self._chunk(pending)
                    pending = []
            if pending:
                with _gc_paused():
                    self._chunk(pending)
        self.total = total

    def finish(self) -> None:
        self._save_progress(state=ImportState.DONE, finished_at=utcnow(), error=None)
        db.session.commit()

    def _beat(self) -> None:
        """The heartbeat of the run holding the batch; _Superseded once another run holds it.
        Throttled (a big file on SQLite): the check only, and a write that changes nothing to open
        the transaction."""
        if self.throttled:
            held = db.session.scalar(sa.select(ImportBatch.id).where(
                ImportBatch.id == self.batch_id, ImportBatch.runner == self.runner,
                ImportBatch.state == ImportState.RUNNING))
            if held is None:
                raise _Superseded
            db.session.execute(sa.update(ImportBatch).where(sa.false()).values(heartbeat_at=utcnow())
                               .execution_options(synchronize_session=False))
            return
        beat = db.session.execute(sa.update(ImportBatch).where(
            ImportBatch.id == self.batch_id, ImportBatch.runner == self.runner,
            ImportBatch.state == ImportState.RUNNING,
        ).values(heartbeat_at=utcnow()).execution_options(synchronize_session=False))
        if beat.rowcount != 1:
            raise _Superseded

    def _validate(self, row: Row, duplicate_of: int | None) -> tuple[dict[str, Any] | None,
                                                                     dict[str, list[str]]]:
        """OrderIn's output for a good row, or None; and the row's errors by column."""
        data, errors = row_input(row.values)
        loaded: dict[str, Any] | None = None
        if not errors and row.problem is None and duplicate_of is None:
            loaded = fast_load(data, self.today)  # OrderIn's output, when it can tell cheaply
            if loaded is not None:
                return loaded, errors
        if row.problem:
            errors.setdefault(ROW, []).append(row.problem)
        unreadable = set(errors)  # cells that could not be read are left out of ``data``, so OrderIn
        try:                       # would call them missing too ("Required…"): their first error is enough
            loaded = self.schema.load(data)
        except ValidationError as exc:
            _merge(errors, {column: messages for column, messages
                            in column_errors(exc.normalized_messages()).items() if column not in unreadable})
            self._check_address(data, errors)
        if duplicate_of is not None:
            errors.setdefault("dossier_code", []).append(
                f"Duplicate of line {duplicate_of} (same dossier_code and direction).")
        return (None if errors else loaded), errors

    @staticmethod
    def _check_address(data: dict[str, Any], errors: dict[str, list[str]]) -> None:
        """Report a wrong address along with the other errors, not only once they are fixed."""
        address = data.get("address") or {}
        if address.get("text"):  # only rows written as text are read by the parser
            if "address_text" not in errors and not any(c in address for c in CODE_COLUMNS):
                try:
                    read_order_address(address, local_today())
                except InvalidInput as exc:
                    _merge(errors, column_errors(exc.errors))
            return
        if any(c in errors for c in CODE_COLUMNS) or not address.get("province_code") \
                or not address.get("commune_code"):
            return
        try:
            resolve_address(address["province_code"], address.get("district_code"),
                            address["commune_code"], local_today())
        except InvalidInput as exc:
            _merge(errors, column_errors(exc.errors))

    def _chunk(self, rows: list[tuple[Row, int | None]]) -> None:
        # Validate before the chunk's first write: on SQLite that write takes the database's write lock
        # until the chunk commits (an intake request waits for it), so the lock covers the writes only.
        self.today = local_today()
        checked = [(row, *self._validate(row, duplicate_of)) for row, duplicate_of in rows]
        # Then write first: SQLite's driver opens its transaction only at a write, and a SAVEPOINT
        # issued outside one would become the transaction itself and commit at its release. On
        # PostgreSQL the write also locks the batch's row until the chunk commits: a sweeper waits.
        self._beat()
        codes = {data["dossier_code"] for _row, data, _errors in checked if data}
        stored: dict[tuple[str, Direction], str] = {}
        if codes:
            stored = {(code, direction): item_id for code, direction, item_id in db.session.execute(
                sa.select(DeliveryOrder.dossier_code, DeliveryOrder.direction, DeliveryOrder.item_id)
                .where(DeliveryOrder.counter_id == self.counter_id, DeliveryOrder.dossier_code.in_(codes),
                       DeliveryOrder.status != Status.CANCELLED))}  # a cancelled order gives its dossier back
        new = [(i, row, data) for i, (row, data, _errors) in enumerate(checked) if data is not None
               and (data["dossier_code"], Direction(data["direction"])) not in stored]
        outcomes = self._store_all(new)
        results: list[dict[str, Any]] = []
        for i, (row, data, errors) in enumerate(checked):
            status, item_id = ERROR, None
            if data is not None:
                item_id = stored.get((data["dossier_code"], Direction(data["direction"])))
                if item_id is not None:
                    status = EXISTING
                else:
                    status, item_id, errors = outcomes[i]
            self.counts[status] += 1
            results.append({"batch_id": self.batch_id, "line": row.line, "status": status, "item_id": item_id,
                            "errors": {self.table.label(col): msgs for col, msgs in errors.items()} or None})
        insert_many(ImportRow.__table__, results)
        if not self.throttled or time.monotonic() >= self.next_save:
            self._save_progress()
            self.next_save = time.monotonic() + PROGRESS_EVERY
        db.session.commit()
        created = sum(1 for outcome in outcomes.values() if outcome[0] == CREATED)
        metrics.order_created("import", created)
        self.unanalysed += created
        if not self.sqlite and self.unanalysed >= ANALYZE_MIN:
            # A big import can grow delivery_orders faster than autovacuum updates its statistics; on
            # statistics from before it, PostgreSQL plans each chunk's look-up of existing dossiers
            # as a read of all the counter's orders (a slower chunk after every chunk). Once the run
            # has added half as many orders as the statistics count, they are taken again.
            counted = db.session.scalar(_COUNTED_ORDERS) or 0.0  # -1: never analysed
            if self.unanalysed >= counted / 2:
                self.unanalysed = 0
                # The look-up's columns only (a fifth of the time of the whole table's 40-odd columns);
                # the table's row count is taken all the same. The owner only; others: a warning.
                db.session.execute(sa.text("ANALYZE delivery_orders (counter_id, dossier_code)"))
            db.session.commit()

    def _store_all(self, rows: list[tuple[int, Row, dict[str, Any]]]) -> dict[int, tuple[str, str | None,
                                                                                       dict[str, list[str]]]]:
        """Store the chunk's new rows at once (``orders.services.add_orders``: one insert per table)
        under one savepoint; should the database refuse one of them (another request stored the same
        dossier meanwhile) or a route's capacity be taken meanwhile, undo the chunk's writes and store
        its rows again one savepoint each, so that only that row is reported."""
        if not rows:
            return {}
        try:
            with db.session.begin_nested():
                added = self._store_chunk(rows)
        except (IntegrityError, PlacementRaced):
            return {i: self._store(row, data) for i, row, data in rows}
        return {i: (CREATED, got, {}) if isinstance(got, str) else (ERROR, None, column_errors(got.errors))
                for (i, _row, _data), got in zip(rows, added, strict=True)}

    def _store_chunk(self, rows: list[tuple[int, Row, dict[str, Any]]]) -> list[str | InvalidInput]:
        """Write the chunk's new rows (one insert per table; ``orders.services.add_orders``): per row its
        item id, or the InvalidInput that refused it. One call per chunk with new rows."""
        items = [(data, f"Import #{self.batch_id}, line {row.line}") for _i, row, data in rows]
        return add_orders(self.actor, items, counter_id=self.counter_id)

    def _store(self, row: Row, data: dict[str, Any], *,
               savepoint: bool = True) -> tuple[str, str | None, dict[str, list[str]]]:
        """Store one order and its first event, both or neither: under a savepoint of its own, or
        (``savepoint`` False) under the chunk's, which an IntegrityError then leaves to undo."""
        if not savepoint:
            try:
                order = add_order(self.actor, data, counter_id=self.counter_id,
                                  event_note=f"Import #{self.batch_id}, line {row.line}")
            except InvalidInput as exc:
                return ERROR, None, column_errors(exc.errors)
            return CREATED, order.item_id, {}
        try:
            with db.session.begin_nested():
                order = add_order(self.actor, data, counter_id=self.counter_id,
                                  event_note=f"Import #{self.batch_id}, line {row.line}")
            return CREATED, order.item_id, {}
        except InvalidInput as exc:
            return ERROR, None, column_errors(exc.errors)
        except IntegrityError:
            # Stored meanwhile by another request (the unique counter/dossier/direction decides).
            existing = find_duplicate(self.counter_id, data["dossier_code"], Direction(data["direction"]),
                                      None)
            if existing is None:
                return ERROR, None, {ROW: ["The database refused this row."]}
            return EXISTING, existing.item_id, {}

    def _save_progress(self, **extra: Any) -> None:
        """The counts so far, with the chunk's rows (same transaction); _Superseded if not ours."""
        saved = db.session.execute(sa.update(ImportBatch).where(
            ImportBatch.id == self.batch_id, ImportBatch.runner == self.runner,
            ImportBatch.state == ImportState.RUNNING,
        ).values(
            total_rows=self.total, created_rows=self.counts[CREATED], existing_rows=self.counts[EXISTING],
            error_rows=self.counts[ERROR], heartbeat_at=utcnow(), **extra,
        ).execution_options(synchronize_session=False))
        if saved.rowcount != 1:
            raise _Superseded


RUN_IMPORT = "delivery_service.imports.services:run_import"
ON_FAILURE = "delivery_service.imports.services:mark_failed"
MAX_ATTEMPTS = 3  # times a batch is queued before the sweeper gives up on it


ANALYZE_MIN = 1_000  # PostgreSQL: orders a run stores before it looks at delivery_orders' statistics
_COUNTED_ORDERS = sa.text("SELECT reltuples FROM pg_class WHERE oid = 'delivery_orders'::regclass")
PROGRESS_BYTES = 1 << 20  # SQLite: a file over this size has its progress saved every ...
PROGRESS_EVERY = 2.0  # ... seconds (the page reloads itself every 2 s)


def _result_counts(import_id: int) -> dict[str, int]:
    """The batch's committed results by status (exact: rows and results commit together)."""
    counts = dict.fromkeys((CREATED, EXISTING, ERROR), 0)
    counts.update(db.session.execute(sa.select(ImportRow.status, sa.func.count()).where(
        ImportRow.batch_id == import_id).group_by(ImportRow.status)).all())
    return counts


def _stopped(import_id: int, reason: str) -> str:
    """The failure message with the batch's committed counts, which it also writes on the batch
    (its counts may be a few seconds old: see _Run.throttled)."""
    counts = _result_counts(import_id)
    db.session.execute(sa.update(ImportBatch).where(ImportBatch.id == import_id).values(
        created_rows=counts[CREATED], existing_rows=counts[EXISTING], error_rows=counts[ERROR],
    ).execution_options(synchronize_session=False))
    total = db.session.scalar(sa.select(ImportBatch.total_rows).where(ImportBatch.id == import_id))
    created, existing, errors = counts[CREATED], counts[EXISTING], counts[ERROR]
    done = created + existing + errors
    return (f"{reason} after {done} of {total} rows: {created} created, {existing} existing, {errors} with "
            "errors. These are stored; upload the file again to import the rest (stored rows are reported as "
            "existing).")[:500]


def mark_failed(import_id: int, attempt: int | None = None) -> None:
    """The jobs' ``on_failure``: close a batch whose job died without saying so (killed worker,
    timeout), with its exact counts. No-op once closed, or when the sweeper has queued the batch
    again since (``attempt`` older than the batch's)."""
    stmt = sa.update(ImportBatch).where(
        ImportBatch.id == import_id, ImportBatch.state.in_([ImportState.PENDING, ImportState.RUNNING]))
    if attempt is not None:
        stmt = stmt.where(ImportBatch.attempts == attempt)
    if db.session.scalar(sa.select(ImportBatch.id).where(ImportBatch.id == import_id)) is None:
        return
    db.session.execute(stmt.values(
        state=ImportState.FAILED, finished_at=utcnow(),
        error=_stopped(import_id, f"{STOPPED_PREFIX} before it finished (its job was given up: a timeout "
                                  "or a killed worker)"),
    ).execution_options(synchronize_session=False))


def _claim(import_id: int, attempt: int | None, now: dt.datetime) -> str | None:
    """Take the batch for this run (commits): a pending one, or a running one whose run died, or
    (a re-run by hand, ``attempt`` None) a failed one. ``attempt`` (given by queued runs) must match
    the batch's: a run queued before the sweeper requeued the batch does nothing. The run's token,
    or None when there is nothing to do."""
    runner = secrets.token_hex(8)
    dead = sa.func.coalesce(ImportBatch.heartbeat_at, ImportBatch.created_at) < now - stall_after()
    claimable = sa.or_(ImportBatch.state == ImportState.PENDING,
                       sa.and_(ImportBatch.state == ImportState.RUNNING, dead))
    stmt = sa.update(ImportBatch).where(ImportBatch.id == import_id)
    if attempt is None:
        claimable = sa.or_(claimable, ImportBatch.state == ImportState.FAILED)
    else:
        stmt = stmt.where(ImportBatch.attempts == attempt)
    taken = db.session.execute(stmt.where(claimable).values(
        state=ImportState.RUNNING, runner=runner, heartbeat_at=now, error=None, finished_at=None,
        attempts=runs_counted(ImportBatch, ImportState),  # a dead run's batch taken over: one more
    ).execution_options(synchronize_session=False))
    db.session.commit()
    return runner if taken.rowcount == 1 else None


def run_import(import_id: int, attempt: int | None = None) -> None:
    """The job: import the rows of a stored batch. Idempotent; a re-run resumes after a crash.

    Each chunk of rows commits with its results, so a run that dies loses only its current chunk
    (rolled back whole); the next run goes on from the first row without a result. A done batch, or
    one a live run holds, is left alone.
    """
    if db.session.scalar(sa.select(ImportBatch.id).where(ImportBatch.id == import_id)) is None:
        log.warning("import %s does not exist", import_id)
        return
    runner = _claim(import_id, attempt, utcnow())
    if runner is None:
        return
    batch = db.session.get(ImportBatch, import_id)
    started = time.monotonic()
    try:
        job = _Run(batch, runner)
        db.session.expunge(batch)  # keep the file's bytes out of the reloads after each commit
        job.run()
        job.finish()
    except _Superseded:
        db.session.rollback()
        log.warning("import %s: taken over by another run; this one stopped", import_id)
        return
    except Exception as exc:  # noqa: BLE001
        # The message and the log name the exception only: its text can quote the rows' personal data.
        db.session.rollback()
        log.error("import %s failed: %s", import_id, exc.__class__.__name__)
        message = (exc.errors["file"][0] if isinstance(exc, InvalidInput) and "file" in exc.errors else
                   _stopped(import_id, f"{STOPPED_PREFIX} ({exc.__class__.__name__})"))
        db.session.execute(sa.update(ImportBatch).where(
            ImportBatch.id == import_id, ImportBatch.runner == runner,
            ImportBatch.state == ImportState.RUNNING,
        ).values(state=ImportState.FAILED, error=message[:500], finished_at=utcnow())
         .execution_options(synchronize_session=False))
        db.session.commit()
        return
    log.info("import %s done: %d rows in %.1f s", import_id, job.total, time.monotonic() - started)


def sweep_stalled(now: dt.datetime, *, stale_after: dt.timedelta | None = None,
                  max_attempts: int = MAX_ATTEMPTS,
                  pending_after: dt.timedelta | None = None) -> dict[str, list[int]]:
    """Requeue (to resume after the last committed chunk), or fail with the exact counts, the imports
    whose run died (stalled.sweep); commits. For a periodic caller."""
    from delivery_service import stalled

    return stalled.sweep(
        ImportBatch, ImportState, now, stale_after=stale_after or stall_after(), max_attempts=max_attempts,
        pending_after=pending_after,
        requeue=lambda import_id, attempt: enqueue_after_commit(RUN_IMPORT, import_id, attempt,
                                                                on_failure=ON_FAILURE),
        failed_error=lambda import_id, attempts: _stopped(
            import_id, f"{STALLED_PREFIX} {times(attempts)} (killed or out of memory)"))
