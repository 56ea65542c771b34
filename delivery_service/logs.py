"""Logs: JSON lines (production) or text, each line of a request carrying its request id.

The id is the client's or proxy's ``X-Request-ID`` when it is a short token, else a new one; it is
sent back in the answer's ``X-Request-ID``. Lines never carry names, phones, ID digits or addresses:
the request line below has the Flask endpoint and status, not the path or query (a search for a phone
number is in the query), and the services log ids and counts only.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request

FORMATS = ("json", "text")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
log = logging.getLogger("delivery_service.requests")


class RequestIdFilter(logging.Filter):
    """Put the current request's id (or "-") on every record that passes a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        return True


def note(what: str, **fields: int | str | None) -> None:
    """Add ``fields`` (ids and counts only) to this request's access line: one line a request carries
    its outcome (a courier sync's counts), instead of a second line of its own. Outside a request (a
    command, a job) they make a line of their own, ``what`` first."""
    if not has_request_context():
        log.info("%s %s", what, _pairs(fields), extra=fields)
    elif (noted := g.get("log_fields")) is None:
        g.log_fields = fields
    else:
        noted.update(fields)


def _pairs(fields: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items())


def init_app(app: Flask) -> None:
    """Configure the root handlers once, then give every request an id."""
    fmt = app.config.get("LOG_FORMAT") or ("json" if app.config["ENV"] == "production" else "text")
    if fmt not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, not {fmt!r}")
    root = logging.getLogger()
    if not root.handlers or app.config["ENV"] == "production":
        logging.basicConfig(level=logging.INFO)
    for handler in root.handlers:  # ours (basicConfig's); a test runner's keep their format
        if type(handler) is logging.StreamHandler:
            _configure(handler, fmt)
        elif not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())

    from delivery_service import metrics

    observe = metrics.request_observer()
    info, record_line, handle = logging.INFO, log.makeRecord, log.handle
    src = __file__

    # The request's bracket, one hook on each side (they were four: the id and the log line here, the
    # timer and its histogram in metrics): the id, one clock for the access line's duration and the
    # latency histogram, the X-Request-ID header.
    @app.before_request
    def _request_started() -> None:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _VALID_ID.match(given) else uuid.uuid4().hex
        g.request_started = time.perf_counter()

    @app.after_request
    def _request_done(response: Response) -> Response:
        started = g.pop("request_started", None)
        if started is None:  # the bracket did not open (an earlier hook refused the request)
            return response
        seconds = time.perf_counter() - started
        response.headers["X-Request-ID"] = g.request_id
        endpoint, method, status = request.endpoint, request.method, response.status_code
        observe(endpoint or "unmatched", method, status, seconds)
        if log.isEnabledFor(info):  # log.info's record, without looking up the caller's frame
            fields = {"endpoint": endpoint, "method": method, "status": status,
                      "duration_ms": round(seconds * 1000, 1)}
            msg, args = "request %s %s %s", (method, endpoint or "unmatched", status)
            if noted := g.pop("log_fields", None):  # also in the message, for the text format
                fields.update(noted)
                msg, args = msg + " %s", (*args, _pairs(noted))
            handle(record_line(log.name, info, src, line, msg, args, None, "_request_done", fields))
        return response

    line = _request_done.__code__.co_firstlineno


def _configure(handler: logging.Handler, fmt: str) -> None:
    """Give ``handler`` the request id filter and the ``fmt`` ("json" or "text") formatter."""
    if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
        handler.addFilter(RequestIdFilter())
    if fmt == "json":
        formatter = _json_formatter()
        handler.setFormatter(formatter("%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                                       rename_fields={"levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"))


def _json_formatter() -> Any:
    from pythonjsonlogger.json import JsonFormatter

    class Json(JsonFormatter):
        """python-json-logger's lines; the date part of ``asctime`` formatted once a second, not once
        a line (``time.strftime`` was a fifth of the access line's cost). The same text as
        ``logging.Formatter.formatTime``: a whole second has one local date and time."""

        _second: tuple[int, str] = (-1, "")

        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            if datefmt or not self.default_msec_format:
                return super().formatTime(record, datefmt)
            second = int(record.created)
            if self._second[0] != second:
                self._second = (second, time.strftime(self.default_time_format, self.converter(second)))
            return self.default_msec_format % (self._second[1], record.msecs)

    return Json
