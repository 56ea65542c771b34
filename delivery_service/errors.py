"""Domain exceptions, and the one place where they become HTTP responses."""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException


class DomainError(Exception):
    """Base of the errors a service raises on purpose; carries its HTTP status."""

    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class InvalidInput(DomainError):
    """Input that fails validation: ``errors`` maps field names to messages."""

    status = 422

    def __init__(self, errors: dict[str, Any], message: str = "Invalid input") -> None:
        super().__init__(message)
        self.errors = errors


class NotFound(DomainError):
    status = 404


class Forbidden(DomainError):
    status = 403


class Conflict(DomainError):
    """The request is well formed but cannot be applied to the current state."""

    status = 409


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def register(app: Flask) -> None:
    """Map domain errors and HTTP errors to JSON (API) or a page (browser)."""

    @app.errorhandler(DomainError)
    def handle_domain(exc: DomainError):
        body: dict[str, Any] = {"code": exc.status, "message": exc.message}
        if isinstance(exc, InvalidInput):
            body["errors"] = {"json": exc.errors}
        if exc.details:
            body.update(exc.details)
        if _wants_json():
            return jsonify(body), exc.status
        return render_template("error.html", code=exc.status, message=exc.message,
                               errors=getattr(exc, "errors", None)), exc.status

    @app.errorhandler(HTTPException)
    def handle_http(exc: HTTPException):
        code = exc.code or 500
        body: dict[str, Any] = {"code": code, "status": exc.name}
        data = getattr(exc, "data", None)  # webargs/flask-smorest validation details
        if data and "messages" in data:
            body["errors"] = data["messages"]
        elif exc.description:
            body["message"] = exc.description
        if code == 400 and request.path.startswith("/api/"):
            # Malformed bodies (bad JSON, bad encoding) are unprocessable input, not protocol errors.
            code = body["code"] = 422
            body["status"] = "Unprocessable Entity"
            body.setdefault("errors", {"json": {"_schema": [exc.description or "Malformed body"]}})
        if _wants_json():
            return jsonify(body), code
        return render_template("error.html", code=code, message=exc.description), code

    @app.errorhandler(RecursionError)
    def handle_too_deep(exc: RecursionError):
        if request.path.startswith("/api/"):  # a body nested deeper than the JSON parser can follow
            return jsonify({"code": 422, "status": "Unprocessable Entity",
                            "errors": {"json": {"_schema": ["The body is nested too deeply."]}}}), 422
        return handle_unexpected(exc)

    @app.errorhandler(Exception)
    def handle_unexpected(exc: Exception):
        if current_app.testing and current_app.config.get("PROPAGATE_EXCEPTIONS", True):
            raise exc
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify({"code": 500, "status": "Internal Server Error"}), 500
        return render_template("error.html", code=500, message="Internal Server Error"), 500
