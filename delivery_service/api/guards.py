"""Checks on every request before a view runs: addresses too long, text PostgreSQL cannot store,
ids beyond 64 bits.

PostgreSQL refuses NUL in text, and a lone UTF-16 surrogate (``"\\ud800"`` in JSON) cannot even be
encoded for it: either would reach the database as a server error. So, for pages and API alike:

- a path with one of them is not found (404);
- a query string or form value (or name) with one is unprocessable (422), the field named;
- a JSON body with one in any string or key is unprocessable (422), the field named by its path;
- ``<int:…>`` path parameters above BIGINT (2^63 - 1) are not found (404), and documented as such;
- a path and query string longer than MAX_URL_LENGTH is 414.

SQLite would store them, but both databases answer alike.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask, request
from flask_smorest import abort
from werkzeug.exceptions import NotFound, RequestURITooLarge
from werkzeug.routing import IntegerConverter, Map

from delivery_service.errors import coded

INT64_MAX = 2**63 - 1
# The longest path and query string the service reads (414 above it, in the service's own error
# format). gunicorn's request line limit (``serve``: GUNICORN_REQUEST_LINE) is set above it, so
# that gunicorn's plain-text 414 is only for a line longer still.
MAX_URL_LENGTH = 4096
GUNICORN_REQUEST_LINE = 8190  # gunicorn's largest
# In a JSON text, NUL and surrogates can only come as \u escapes (raw control characters and
# surrogates encoded in UTF-8 are malformed JSON): bodies without these escapes need no parsing here.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_MESSAGE = "Contains a NUL character or an unpaired surrogate."


class Int64Converter(IntegerConverter):
    """Flask's ``int`` converter, bounded to a signed 64-bit integer (the database's BIGINT ids)."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,  # noqa: A002
                 max: int | None = INT64_MAX, signed: bool = False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def unstorable(text: str) -> bool:
    """True for text with NUL or a lone surrogate (what PostgreSQL cannot store)."""
    if text.isprintable():  # the usual case; NUL and surrogates are never printable
        return False
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


def _bad_path(data: Any, path: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """Where in parsed JSON the first unstorable string (value or key) is, or None."""
    if isinstance(data, str):
        return path if unstorable(data) else None
    if isinstance(data, dict):
        for key, value in data.items():
            if unstorable(key):
                return (*path, key.encode("utf-8", "backslashreplace").decode())
            found = _bad_path(value, (*path, key))
            if found is not None:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = _bad_path(value, (*path, i))
            if found is not None:
                return found
    return None


def _refuse(location: str, path: tuple[Any, ...]) -> None:
    errors: Any = [coded("invalid_characters", _MESSAGE)]
    for key in reversed(path or ("_schema",)):
        errors = {key: errors}
    abort(422, messages={location: errors})


def _check_request() -> None:
    environ = request.environ
    if len(environ.get("PATH_INFO", "")) + len(environ.get("QUERY_STRING", "")) > MAX_URL_LENGTH:
        raise RequestURITooLarge(f"The address (path and query) is longer than {MAX_URL_LENGTH} characters.")
    if unstorable(request.path):
        raise NotFound()
    sources = (("query", request.args),) if request.environ.get("QUERY_STRING") else ()  # none: nothing
    for location, values in sources + ((("form", request.form),) if request.mimetype in _FORM_TYPES else ()):
        for name, value in values.items(multi=True):
            if unstorable(name) or unstorable(value):
                _refuse(location, (name.encode("utf-8", "backslashreplace").decode(),))
    if request.mimetype == "multipart/form-data":
        for name, upload in request.files.items(multi=True):
            if upload.filename and unstorable(upload.filename):
                _refuse("files", (name,))
    if request.is_json:
        body = request.get_data(cache=True)  # kept for the parsers; its size was checked first
        if _SUSPECT_ESCAPE.search(body):
            try:
                data = json.loads(body)
            except ValueError:
                return  # malformed JSON: the operation's parser says so
            found = _bad_path(data)
            if found is not None:
                _refuse("json", found)


_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def init_app(app: Flask) -> None:
    """Before the blueprints: the converter is taken when their rules are added."""
    app.url_map.converters["int"] = Int64Converter
    app.before_request(_check_request)
