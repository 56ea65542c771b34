"""Domain exceptions, and the one place where they become HTTP responses.

Every error the API answers has one shape (documented as ``ErrorOut`` in the OpenAPI document)::

    {"code": 422, "status": "Unprocessable Entity", "error": "invalid_input", "message": "…",
     "errors": {"json": {"address": {"commune_code": ["Unknown commune code '1' on 2026-12-04."]}}},
     "details": [{"location": "json", "field": "address.commune_code", "code": "unknown_unit",
                  "message": "Unknown commune code '1' on 2026-12-04."}]}

``code`` is the HTTP status, ``error`` a stable machine-readable name of what went wrong, ``errors``
the per-field messages at each field's own path (as webargs gives them), and ``details`` the same
messages as a flat list, each with a stable ``code`` that counter software and the pages can act on
instead of matching the English text. Domain errors add their own keys (``current_status``,
``item_id`` …).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import marshmallow as ma
from flask import Flask, current_app, jsonify, render_template, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException


class Message(str):
    """A validation message that carries its stable machine-readable code (a ``str`` everywhere else)."""

    code: str

    def __new__(cls, code: str, text: str) -> Message:
        msg = super().__new__(cls, text)
        msg.code = code
        return msg

    def format(self, *args: Any, **kwargs: Any) -> Message:  # marshmallow formats error templates
        return Message(self.code, str.format(self, *args, **kwargs))

    def __reduce__(self) -> tuple[Any, ...]:  # stays a Message through pickling (rq, sessions)
        return Message, (self.code, str(self))


def coded(code: str, text: str) -> Message:
    """A message with its code: ``raise ValidationError(coded("unknown_unit", "…"))``."""
    return Message(code, text)


class Text(NamedTuple):
    """A message in both languages, kept whole until the page that shows it picks the reader's
    (services raise these in InvalidInput for the administration pages, which show them through
    ``admin.in_language``). Here beside InvalidInput so that a domain's services need not import the
    pages' package; the JSON API does not take these (its messages are English)."""

    vi: str
    en: str


class DomainError(Exception):
    """Base of the errors a service raises on purpose; carries its HTTP status and error code."""

    status = 400
    error = "bad_request"

    def __init__(self, message: str, *, error: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if error is not None:
            self.error = error


class InvalidInput(DomainError):
    """Input that fails validation: ``errors`` maps field names (nested for nested fields) to messages;
    ``location`` is where the fields were (json, query, headers, path, files, form)."""

    status = 422
    error = "invalid_input"

    def __init__(self, errors: dict[str, Any], message: str = "Invalid input", *,
                 location: str = "json", error: str | None = None, **details: Any) -> None:
        super().__init__(message, error=error, **details)
        self.errors = errors
        self.location = location


class NotFound(DomainError):
    status = 404
    error = "not_found"


class Forbidden(DomainError):
    status = 403
    error = "forbidden"


class Conflict(DomainError):
    """The request is well formed but cannot be applied to the current state."""

    status = 409
    error = "conflict"


_STORAGE_FULL = re.compile(r"database or disk is full|No space left on device|could not extend file", re.I)
HTTP_ERRORS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 406: "not_acceptable", 409: "conflict",
               411: "length_required", 413: "payload_too_large", 414: "uri_too_long",
               415: "unsupported_media_type", 422: "invalid_input", 428: "precondition_required",
               429: "rate_limited", 500: "internal_error", 503: "unavailable", 507: "storage_full"}


# --- the codes of marshmallow's own messages, read from its classes (never typed by hand) -----------

_FIELD_CODES = {"required": "required", "null": "null", "validator_failed": "invalid",
                "too_large": "out_of_range", "special": "invalid_number", "invalid_utf8": "invalid_encoding",
                "unknown": "not_one_of", "format": "invalid_format", "type": "invalid_type"}
# marshmallow.validate's messages are built from templates with operators: matched by their start
_VALIDATOR_CODES = [
    (r"Shorter than minimum length ", "too_short"), (r"Longer than maximum length ", "too_long"),
    (r"Length must be ", "wrong_length"), (r"Must be (greater|less) than ", "out_of_range"),
    (r"Must be one of: ", "not_one_of"), (r"String does not match expected pattern", "invalid_format"),
    (r"Not a valid (date|datetime|time|aware datetime|naive datetime)\.", "invalid_date"),
]


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[^{}]*\}", template)
    return re.compile(".*?".join(re.escape(p) for p in parts) + r"\Z", re.S)


def _builtin_codes() -> list[tuple[re.Pattern[str], str]]:
    table: dict[str, str] = {}
    for cls in vars(ma.fields).values():
        if isinstance(cls, type) and issubclass(cls, ma.fields.Field):
            for key, text in getattr(cls, "default_error_messages", {}).items():
                if isinstance(text, str) and text not in table:
                    table[text] = _FIELD_CODES.get(key) or (
                        "invalid_type" if key == "invalid" else key)
    for key, text in ma.Schema._default_error_messages.items():
        table[text] = {"unknown": "unknown_field", "type": "invalid_type"}.get(key, key)
    exact = [(re.compile(re.escape(text) + r"\Z"), code) for text, code in table.items() if "{" not in text]
    templates = [(_template_pattern(text), code) for text, code in table.items() if "{" in text]
    return [(re.compile(p), code) for p, code in _VALIDATOR_CODES] + exact + templates


_BUILTIN: list[tuple[re.Pattern[str], str]] = _builtin_codes()


def code_of(message: Any) -> str:
    """The stable code of one validation message."""
    code = getattr(message, "code", None)
    if isinstance(code, str):
        return code
    text = str(message)
    for pattern, builtin in _BUILTIN:
        if pattern.match(text):
            return builtin
    return "invalid"


def error_details(errors: dict[str, Any]) -> list[dict[str, str]]:
    """The nested per-field messages ({location: {field: {sub: [msg]}}}) as a flat list with codes."""

    def walk(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, path if key == "_schema" else (*path, str(key)))
        elif isinstance(node, list | tuple):
            for item in node:
                yield from walk(item, path)
        else:
            yield path, node

    out = []
    for path, message in walk(errors, ()):
        location, field = (path[0], ".".join(path[1:])) if path else ("json", "")
        entry = {"location": location, "field": field, "code": code_of(message), "message": str(message)}
        entry.update(getattr(message, "extra", None) or {})  # e.g. an address's candidates
        out.append(entry)
    return out


def error_body(status: int, /, *, message: str | None = None, errors: dict[str, Any] | None = None,
               error: str | None = None, **extra: Any) -> dict[str, Any]:
    """The API's one error shape (see the module's docstring); ``extra`` never replaces its keys."""
    from werkzeug.http import HTTP_STATUS_CODES

    body: dict[str, Any] = {"code": status, "status": HTTP_STATUS_CODES.get(status, "Error"),
                            "error": error or HTTP_ERRORS.get(status, "error")}
    if message:
        body["message"] = message
    if errors:
        body["errors"] = errors
        body["details"] = error_details(errors)
    for key, value in extra.items():
        body.setdefault(key, value)
    return body


class ErrorDetailOut(ma.Schema):
    location = ma.fields.String(metadata={"description": "json, query, headers, path, files or form"})
    field = ma.fields.String(metadata={"description": "The field's path, dotted (address.commune_code); "
                                                      "empty for the whole body"})
    code = ma.fields.String(metadata={"description": "Stable machine-readable code, e.g. required, "
                                                     "too_long, unknown_unit, invalid_phone"})
    message = ma.fields.String(metadata={"description": "The message in English"})
    candidates = ma.fields.List(ma.fields.Dict(), metadata={
        "description": "With ambiguous_address (address.text): the ranked readings of the text, each "
                       "{province, district, commune: {code, name} or null, score, legacy}"})


class ErrorOut(ma.Schema):
    """Every error of the API (documentation only: ``error_body`` writes it)."""

    class Meta:
        unknown = ma.INCLUDE

    code = ma.fields.Integer(required=True, metadata={"description": "The HTTP status"})
    status = ma.fields.String(required=True, metadata={"description": "The HTTP status's name"})
    error = ma.fields.String(required=True, metadata={
        "description": "Stable machine-readable name: invalid_input, not_found, conflict, "
                       "transition_refused, status_changed, already_changed, event_id_reused, "
                       "address_locked, dossier_exists, idempotency_key_reused, payload_too_large, "
                       "unsupported_media_type, unauthorized, forbidden, rate_limited …"})
    message = ma.fields.String(metadata={"description": "What went wrong, in English"})
    errors = ma.fields.Dict(metadata={"description": "Per-field messages by location and field path"})
    details = ma.fields.List(ma.fields.Nested(ErrorDetailOut), metadata={
        "description": "The per-field messages as a list, each with its code"})


def _first_message(errors: Any) -> str | None:
    """The first message in nested per-field errors, as text."""
    if isinstance(errors, dict):
        return next((m for v in errors.values() if (m := _first_message(v))), None)
    if isinstance(errors, list | tuple):
        return next((m for v in errors if (m := _first_message(v))), None)
    return str(errors) if errors else None


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def register(app: Flask) -> None:
    """Map domain errors and HTTP errors to JSON (API) or a page (browser)."""

    @app.errorhandler(DomainError)
    def handle_domain(exc: DomainError):
        errors = {exc.location: exc.errors} if isinstance(exc, InvalidInput) else None
        if _wants_json():
            return jsonify(error_body(exc.status, message=exc.message, errors=errors, error=exc.error,
                                      **exc.details)), exc.status
        return render_template("error.html", code=exc.status, message=exc.message,
                               errors=getattr(exc, "errors", None)), exc.status

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        code = exc.code or 500
        data = getattr(exc, "data", None)  # webargs/flask-smorest validation details
        errors = data["messages"] if data and "messages" in data else None
        # Every error says what went wrong in a sentence (a client may show ``message`` only).
        message = (data or {}).get("message") or ("Invalid input" if errors else exc.description)
        headers = dict(data.get("headers") or {}) if data else {}
        if code == 400 and request.path.startswith("/api/"):
            # Malformed bodies (bad JSON, bad encoding) are unprocessable input, not protocol errors.
            code = 422
            malformed = coded("malformed_body", exc.description or "Malformed body")
            errors = errors or {"json": {"_schema": [malformed]}}
        if _wants_json():
            response = jsonify(error_body(code, message=message, errors=errors))
            response.status_code = code
            for name, value in (exc.get_headers() if code == exc.code else []):
                if name.lower() != "content-type":
                    response.headers[name] = value
            response.headers.update(headers)
            return response
        if code == 422 and errors:  # a page's form refused before its view (api.guards): say what is wrong
            message = _first_message(errors)
        else:
            message = exc.description
        return render_template("error.html", code=code, message=message), code

    @app.errorhandler(RecursionError)
    def handle_too_deep(exc: RecursionError):
        if request.path.startswith("/api/"):  # a body nested deeper than the JSON parser can follow
            too_deep = "The body is nested too deeply."
            return jsonify(error_body(422, message=too_deep, errors={"json": {"_schema": [
                coded("malformed_body", too_deep)]}})), 422
        return handle_unexpected(exc)

    @app.errorhandler(sa_exc.OperationalError)
    def handle_storage(exc: sa_exc.OperationalError):
        # A full disk (SQLite: "database or disk is full"; PostgreSQL: "No space left on device") is
        # the operator's to fix, and the client's to retry later: the transaction rolled back whole.
        if not _STORAGE_FULL.search(str(exc.orig)):
            return handle_unexpected(exc)
        from delivery_service.extensions import db

        db.session.rollback()
        current_app.logger.error("storage full on %s %s: answered 503", request.method, request.path)
        message = "The service's storage is full; nothing was stored. Try again later."
        if _wants_json():
            response = jsonify(error_body(503, message=message, error="storage_full"))
            response.status_code = 503
        else:
            response = app.make_response((render_template("error.html", code=503, message=message), 503))
        response.headers["Retry-After"] = "60"
        return response

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        if current_app.testing and current_app.config.get("PROPAGATE_EXCEPTIONS", True):
            raise exc
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        from delivery_service.extensions import db

        # A failed statement leaves the session unusable until rolled back: the error page reads the
        # user (language, menu) through it, and would fail too, into the server's bare "Internal
        # Server Error" without the layout or the reader's language.
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001  (the database itself is gone: the page is shown without it)
            current_app.logger.warning("no rollback after the error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify(error_body(500)), 500
        return render_template("error.html", code=500, message="Internal Server Error"), 500
