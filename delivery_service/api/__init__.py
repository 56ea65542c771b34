"""The JSON API under /api/v1: bearer-token auth for counter systems, and blueprint registration."""

from __future__ import annotations

import functools
import hmac
import json
import time
from collections.abc import Callable
from typing import Any, NoReturn

from apispec import BasePlugin
from flask import Flask, abort, current_app, g, request, session
from flask_login import current_user
from flask_smorest import Blueprint
from flask_wtf import csrf as wtf_csrf
from flask_wtf.csrf import CSRFError
from itsdangerous import BadData, URLSafeTimedSerializer
from webargs.flaskparser import FlaskParser
from webargs.flaskparser import abort as abort_with_messages
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import RequestEntityTooLarge, Unauthorized, UnsupportedMediaType
from wtforms import ValidationError

from delivery_service.accounts.services import Actor, actor_for_token
from delivery_service.errors import coded
from delivery_service.extensions import api, csrf, limiter
from delivery_service.fields import MAX_PAGE

NO_CREDENTIALS = ("Send the counter system's API token as 'Authorization: Bearer <token>' "
                  "(or log in on the service's pages).")


def unauthorized(message: str) -> NoReturn:
    """401 with the scheme the API takes (RFC 9110: a 401 names it in WWW-Authenticate)."""
    raise Unauthorized(message, www_authenticate=WWWAuthenticate("bearer", {"realm": "api"}))


def current_actor() -> Actor:
    """The caller: a counter system by its bearer token, or a logged-in staff user (reads only)."""
    actor = g.get("actor")
    if actor is None:
        unauthorized(NO_CREDENTIALS)
    return actor


# What each part of the API takes as a body (anything else with a body is 415); JSON everywhere else.
# (a proof image is checked by its content; a phone that sends no type is not refused for that)
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "application/octet-stream", ""})
_BODY_TYPES: tuple[tuple[str, frozenset[str]], ...] = (
    ("/api/v1/courier/files/", _IMAGE_TYPES),  # a photo or signature as the body
    ("/api/v1/imports", frozenset({"multipart/form-data"})),
)
_JSON = frozenset({"application/json"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def body_limit() -> int:
    """The largest body this request may carry, in bytes (limits are the MAX_*_BYTES settings)."""
    cfg = current_app.config
    path = request.path
    if not path.startswith("/api/") or request.mimetype == "multipart/form-data":
        return cfg["MAX_IMPORT_BYTES"] + 64 * 1024  # the pages' forms, and file uploads
    if path.startswith("/api/v1/courier/files/"):
        return cfg["MAX_PROOF_BYTES"]
    if path.startswith("/api/v1/courier/"):  # a whole offline batch of events
        return max(cfg["MAX_JSON_BYTES"], cfg["SYNC_MAX_EVENTS"] * 2048)
    return cfg["MAX_JSON_BYTES"]


def enforce_body_limit() -> None:
    """Refuse (413) a body over the limit, however it is sized, before anything parses it.

    A body sized by Content-Length is checked by its header. A chunked one (no Content-Length) is
    read here: Werkzeug stops reading such a stream at ``max_content_length`` without an error, so
    an over-long body would be cut at the limit and its first part parsed and stored. Reading one
    byte past the limit tells the two apart; the body read is kept for the parsers.
    """
    if request.method not in _BODY_METHODS:
        return
    limit = body_limit()
    if request.content_length is not None:
        if request.content_length > limit:
            raise RequestEntityTooLarge(f"The body is larger than {limit} bytes.")
    elif "wsgi.input_terminated" in request.environ:  # a server that de-chunks (gunicorn, werkzeug)
        request.max_content_length = limit + 1
        if len(request.get_data(cache=True)) > limit:
            raise RequestEntityTooLarge(f"The body is larger than {limit} bytes.")
    request.max_content_length = limit


def _check_content_type() -> None:
    """415 for a body the operation cannot take (instead of "missing field" for every field)."""
    if request.method not in _BODY_METHODS:
        return
    if not (request.content_length or (request.content_length is None and request.get_data(cache=True))):
        return  # no body: the operation's own checks say what is missing
    allowed = next((types for prefix, types in _BODY_TYPES if request.path.startswith(prefix)), _JSON)
    mimetype = request.mimetype
    if mimetype in allowed or (allowed is _JSON and mimetype.startswith("application/")
                               and mimetype.endswith("+json")):
        return
    raise UnsupportedMediaType(f"Send the body as {' or '.join(sorted(allowed))}"
                               f"{'' if not mimetype else f', not {mimetype}'}.")


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any case, RFC 9110)."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _authenticate() -> None:
    g.pop("actor", None)
    token = bearer_token()
    if token is not None:
        g.actor = actor_for_token(token)
        if g.actor is None:
            unauthorized("Invalid or revoked token.")
        _check_content_type()
        return
    if current_user.is_authenticated:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            # A logged-in page's script may write, with the page's CSRF token in X-CSRFToken.
            try:
                protect_csrf()
            except CSRFError:
                abort(403, "Writes with a log-in session need the page's CSRF token (X-CSRFToken).")
        g.actor = Actor.of_user(current_user)
    elif request.method not in ("GET", "HEAD", "OPTIONS"):
        # Every write needs a caller: say so before reading the body (an anonymous client learns
        # nothing of the validation rules, and costs no parsing).
        unauthorized(NO_CREDENTIALS)
    _check_content_type()


def protect_csrf() -> None:
    """``csrf.protect()`` of Flask-WTF 1.3 (its checks, messages, log lines and ``g.csrf_valid``),
    the token's signature verified once per process: a courier's phone sends the same token with
    every call. What is remembered is only what a good signature proved (the token's text as
    signed with this secret key, and when it was signed); the token is still compared with this
    session's value and its age with WTF_CSRF_TIME_LIMIT at every request."""
    if request.method not in current_app.config["WTF_CSRF_METHODS"]:
        return
    try:
        _validate_csrf(_csrf_token())
    except ValidationError as e:
        wtf_csrf.logger.info(e.args[0])
        csrf._error_response(e.args[0])
    if request.is_secure and current_app.config["WTF_CSRF_SSL_STRICT"]:
        if not request.referrer:
            csrf._error_response("The referrer header is missing.")
        good_referrer = f"https://{request.host}/"
        if not wtf_csrf.same_origin(request.referrer, good_referrer):
            csrf._error_response("The referrer does not match the host.")
    g.csrf_valid = True


_FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def _csrf_token() -> str | None:
    """Flask-WTF's ``_get_csrf_token``: a form field first, then the WTF_CSRF_HEADERS. Werkzeug
    parses a form only from these two types, so any other body (JSON) is not asked for one."""
    if request.mimetype in _FORMS:
        return csrf._get_csrf_token()  # type: ignore[no-any-return]
    for header_name in current_app.config["WTF_CSRF_HEADERS"]:
        token = request.headers.get(header_name)
        if token:
            return token  # type: ignore[no-any-return]
    return None


def _validate_csrf(data: str | None) -> None:
    """flask_wtf.csrf.validate_csrf, the signature checked by ``_csrf_signed``."""
    secret_key = wtf_csrf._get_config(None, "WTF_CSRF_SECRET_KEY", current_app.secret_key,
                                      message="A secret key is required to use CSRF.")
    field_name = wtf_csrf._get_config(None, "WTF_CSRF_FIELD_NAME", "csrf_token",
                                      message="A field name is required to use CSRF.")
    time_limit = wtf_csrf._get_config(None, "WTF_CSRF_TIME_LIMIT", 3600, required=False)
    if not data:
        raise ValidationError("The CSRF token is missing.")
    if field_name not in session:
        raise ValidationError("The CSRF session token is missing.")
    try:
        token, signed_at = _csrf_signed(secret_key, data)
    except BadData as e:
        raise ValidationError("The CSRF token is invalid.") from e
    if time_limit is not None:  # itsdangerous' SignatureExpired
        age = int(time.time()) - signed_at
        if age > time_limit or age < 0:
            raise ValidationError("The CSRF token has expired.")
    if not hmac.compare_digest(session[field_name], token):
        raise ValidationError("The CSRF tokens do not match.")


@functools.lru_cache(maxsize=1024)
def _csrf_signed(secret_key: str | bytes, data: str) -> tuple[str, int]:
    """The value a CSRF token signs and when it was signed (seconds), BadData when the signature is
    not this key's; remembered for the last 1,024 (key, token) pairs (an error never is)."""
    serializer = URLSafeTimedSerializer(secret_key, salt="wtf-csrf-token")
    token, signed = serializer.loads(data, return_timestamp=True)
    return token, int(signed.timestamp())


def load_json_body(blp: Blueprint, schema: Any,
                   fast: Callable[[Any], dict[str, Any] | None]) -> dict[str, Any]:
    """The body as ``@blp.arguments(schema)`` would load it, for a view on a hot path: a JSON body
    is parsed as webargs parses it (``json.loads`` of the UTF-8 text) and given to ``fast``, which
    returns the schema's output for the usual body or None; any other body (not JSON, malformed,
    unusual, refused) goes through webargs and the schema, for the same answer and the same 422s.
    Document the body with ``@blp.doc(requestBody=json_body_doc(schema))``."""
    if request.mimetype == "application/json":
        try:
            data = fast(json.loads(request.get_data(cache=True).decode()))
        except (ValueError, RecursionError):  # malformed: webargs answers it
            data = None
        if data is not None:
            return data
    return blp.ARGUMENTS_PARSER.parse(schema, request, location="json")


def json_body_doc(schema: Any) -> dict[str, Any]:
    """The request body's OpenAPI text as ``@blp.arguments(schema)`` writes it."""
    return {"required": True, "content": {"application/json": {"schema": schema}}}


MALFORMED_BODY = "The body is not valid JSON in UTF-8."


class _Parser(FlaskParser):
    """webargs' parser, with every body the JSON decoder refuses answered 422 ``malformed_body``
    (``errors.json._schema``): bad syntax, another encoding than UTF-8, and an integer of more digits
    than ``sys.get_int_max_str_digits()`` (4,300: a ValueError that is not a JSONDecodeError, once a
    500). webargs reads a JSONDecodeError of an empty document as "no body": a refused body must never
    pass for one (the label batch of an empty body prints every label waiting)."""

    # A query string's unknown parameters are left to its schema (fields.QueryArgs refuses them);
    # webargs ignores them by default.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,  # noqa: RUF012
                                   "query": None, "querystring": None}

    def _raw_load_json(self, req: Any) -> Any:
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except ValueError as exc:
            raise json.JSONDecodeError(str(exc), "(a refused body)", 0) from exc

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> NoReturn:
        abort_with_messages(422, exc=error, message=MALFORMED_BODY,
                            messages={"json": {"_schema": [coded("malformed_body", MALFORMED_BODY)]}})


_PARSER = _Parser()


class PageBounds(BasePlugin):
    """The OpenAPI document says what a list does with its ``page``: 1 to MAX_PAGE, and 422 beyond.

    flask-smorest's paginator declares only ``minimum: 1`` and has no setting for a last page, so the
    orders list refuses a page past MAX_PAGE itself (orders.api); undeclared, that 422 read as a broken
    contract to a schema fuzzer. apispec runs the plugins given as flask-smorest's ``extra_plugins``
    after its marshmallow plugin, so the paginator's schema is a list of parameters here."""

    def operation_helper(self, path: str | None = None, operations: dict[str, Any] | None = None,
                         **kwargs: Any) -> None:
        for operation in (operations or {}).values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", ()):
                if not isinstance(parameter, dict):
                    continue
                if parameter.get("in") == "query" and parameter.get("name") == "page":
                    parameter.setdefault("schema", {}).update(minimum=1, maximum=MAX_PAGE)


def protected(blp: Blueprint) -> Blueprint:
    """Wire token auth into a blueprint: exempt from CSRF (no cookies are trusted for writes).
    Call it before the blueprint's views are declared (``@blp.arguments`` takes the parser then)."""
    blp.ARGUMENTS_PARSER = _PARSER
    blp.before_request(_authenticate)
    csrf.exempt(blp)
    limiter.exempt(blp)  # no per-address limits on server-to-server intake
    return blp


def register(app: Flask) -> None:
    # pages and API alike, first of all (CSRFProtect's own hook reads the form)
    app.before_request_funcs.setdefault(None, []).insert(0, enforce_body_limit)
    from swagger_ui_bundle import swagger_ui_path

    from delivery_service.courier import api as courier
    from delivery_service.imports.api import blp as imports_blp
    from delivery_service.orders.api import blp as orders_blp
    from delivery_service.printing import api as printing
    from delivery_service.reports.api import blp as reports_blp
    from delivery_service.reports.figures_api import blp as figures_blp
    from delivery_service.routing.api import blp as routes_blp
    from delivery_service.routing.api import moves as moves_blp
    from delivery_service.units.api import blp as units_blp

    for blp in (orders_blp, moves_blp, printing.orders, imports_blp, units_blp, routes_blp, printing.sheets,
                printing.batches, printing.manifests, courier.blp, courier.proof, reports_blp,
                figures_blp):
        api.register_blueprint(blp, url_prefix="/api/v1" + blp.url_prefix)
    from delivery_service.addresses.api import blp as addresses_blp

    api.register_blueprint(addresses_blp, url_prefix="/api/v1" + addresses_blp.url_prefix)
    app.register_blueprint(courier.pages)  # the order page's proof images

    from flask import send_from_directory

    from delivery_service.orders.api import document

    document(api.spec.components.schemas)

    @app.get("/api/v1/docs/assets/<path:filename>")
    def swagger_assets(filename: str):
        return send_from_directory(swagger_ui_path, filename, max_age=86400)
