"""Postal public-utility delivery of administrative-procedure results (dịch vụ bưu chính công ích)."""

from __future__ import annotations

import functools
import time
from copy import deepcopy
from typing import Any

import sqlalchemy as sa
from flask import Flask, Request, Response, request, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

__version__ = "0.1.0"
LOCALES = ("vi", "en")


def create_app(config_override: dict[str, Any] | None = None) -> Flask:
    """Build the application. Nothing connects or reads settings until this is called."""
    from delivery_service import config, errors, extensions, jobs, logs, metrics, ratelimits
    from delivery_service.api import PageBounds, guards

    app = _App(__name__, instance_relative_config=True)
    app.session_interface = _CookieSessions()
    settings = config.load(app.instance_path, config_override)
    app.config.update(settings)
    app.config.update(
        SQLALCHEMY_DATABASE_URI=settings["DATABASE_URL"],
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings["DATABASE_URL"]),
        MAX_CONTENT_LENGTH=settings["MAX_IMPORT_BYTES"] + 64 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["ENV"] == "production",
        WTF_CSRF_TIME_LIMIT=None,
        API_TITLE="Delivery service API",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/api/v1/docs/assets/",
        BABEL_TRANSLATION_DIRECTORIES="translations",
        RATELIMIT_STORAGE_URI=settings["REDIS_URL"] or f"{ratelimits.SCHEME}://",
        # A stopped or frozen Redis costs a log-in at most 0.3 s before the limiter falls back
        # (extensions.limiter); redis-py does not retry on this client. Redis answers in well under a
        # millisecond, so a longer wait is a fault; a log-in already spends 0.1-0.3 s on argon2.
        RATELIMIT_STORAGE_OPTIONS={"socket_connect_timeout": 0.3, "socket_timeout": 0.3}
        if settings["REDIS_URL"] else {},
        RATELIMIT_HEADERS_ENABLED=True,
        API_SPEC_OPTIONS={
            "info": {"description": "Result-delivery orders from one-stop counters. "
                     "Authenticate with `Authorization: Bearer <token>`."},
            "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
            "security": [{"bearer": []}],
        },
    )
    app.json.ensure_ascii = False  # Vietnamese stays readable in API answers (UTF-8, not \u escapes)
    if app.config["ENV"] != "production":
        app.config.setdefault("TESTING", False)
    logs.init_app(app)
    metrics.init_app(app)

    extensions.db.init_app(app)
    _sqlite_pragmas(app)
    import delivery_service.models  # noqa: F401  (register every table)

    extensions.migrate.init_app(app, extensions.db, directory=_migrations_dir(),
                                render_as_batch=True, compare_type=True)
    extensions.csrf.init_app(app)
    extensions.login_manager.init_app(app)
    extensions.limiter.init_app(app)
    # init_app gives the (process-wide) limiter this app's storage; "storage dead" was about the last
    # app's (a test's frozen Redis): left set, this app's first requests would skip its own Redis.
    extensions.limiter._storage_dead = False
    _limit_pages_only(app, extensions.limiter)
    _trust_proxies(app, settings["TRUSTED_PROXIES"])
    extensions.babel.init_app(app, locale_selector=_select_locale)
    extensions.api.init_app(app, spec_kwargs={"extra_plugins": [PageBounds()]})
    jobs.init_app(app)
    errors.register(app)
    guards.init_app(app)  # before the blueprints: their <int:…> rules take its bounded converter
    _register_blueprints(app)

    @app.after_request
    def security_headers(response):  # noqa: ANN001, ANN202
        headers = response.headers  # nothing else sets these three, so add without searching
        headers.add("X-Content-Type-Options", "nosniff")
        headers.add("X-Frame-Options", "DENY")
        headers.add("Referrer-Policy", "same-origin")
        if request.method != "GET" and request.path.startswith("/api/"):
            headers.setdefault("Cache-Control", "no-store")
        return response

    @app.get("/health")
    def health():
        extensions.db.session.execute(sa.text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        # Whether the service is fit: the database (migrated), Redis when configured, and background
        # jobs not piling up; ?scope=node: whether this node should get traffic (jobs.readiness).
        # /health stays "the process is alive".
        ok, body = jobs.readiness(app, node=request.args.get("scope") == "node")
        return body, 200 if ok else 503

    return app


def _limit_pages_only(app: Flask, limiter: Any) -> None:
    """Run the limiter's per-request check (and its after-request and teardown hooks) for the pages
    only. The API has no per-address limits: its blueprints are exempt (api.protected) and its paths
    filtered out first (extensions._skip_api, the same test as here), yet the check cost about 2 % of
    an order's intake before it found that out (the view's name, the exemption scopes, an empty
    evaluation)."""
    hooks = app.before_request_funcs.setdefault(None, [])
    for i, hook in enumerate(hooks):
        if (getattr(hook, "__self__", None) is limiter
                and getattr(hook, "__name__", "") == "_check_request_limit"):
            def check_limits(check: Any = hook) -> None:
                if not request.path.startswith("/api/"):
                    check()

            hooks[i] = check_limits
    # Its after-request hook too: on an API path no limit was evaluated (the same filter), so it has
    # no header to add and no conditional deduction to make, only its look-ups to pay.
    after = app.after_request_funcs.setdefault(None, [])
    for i, hook in enumerate(after):
        func = getattr(hook, "func", None)  # a functools.partial of the limiter's method
        if (getattr(hook, "args", (None,))[:1] == (limiter,)
                and getattr(func, "__name__", "").endswith("__inject_headers")):
            def inject_headers(response: Response, inject: Any = hook) -> Response:
                return response if request.path.startswith("/api/") else inject(response)

            after[i] = inject_headers
    # And its teardown, which made the request's limiter context only to reset it (~1 % of an order).
    teardown = app.teardown_request_funcs.setdefault(None, [])
    for i, hook in enumerate(teardown):
        if (getattr(hook, "__self__", None) is limiter
                and getattr(hook, "__name__", "").endswith("__release_context")):
            def release_context(exc: BaseException | None = None, release: Any = hook) -> None:
                if not request.path.startswith("/api/"):
                    release(exc)

            teardown[i] = release_context


class _App(Flask):
    """Flask, remembering ``ensure_sync``'s answer per function: Flask asks it for every hook and the
    view of every request (about 20 times for an API call), and inspect's coroutine check was 2-3 %
    of an order's intake. The service has no ``async def`` views; one would still be wrapped."""

    _sync: dict[Any, Any]

    def ensure_sync(self, func: Any) -> Any:
        sync = self.__dict__.setdefault("_sync", {})
        try:
            return sync[func]
        except KeyError:
            if len(sync) > 4096:  # hooks and views are a few hundred; anything else is not kept
                sync.clear()
            got = sync[func] = super().ensure_sync(func)
            return got
        except TypeError:  # not hashable
            return super().ensure_sync(func)


_PLAIN = frozenset({str, int, float, bool, type(None)})  # session values a shallow copy cannot share


class _CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions; a request without the cookie (every API call) gets its empty
    session without the signing serializer being built for it, as Flask would answer it anyway.

    The signing serializer is built once per secret key (and SECRET_KEY_FALLBACKS), not per request;
    a cookie value whose signature was verified is remembered (the last ``VERIFIED`` ones, per
    process) with its data and the time it was signed, so the courier app's next call with the same
    cookie skips the HMACs: the cookie's age is still checked against the session lifetime at every
    use, only the exact signed text hits (anything forged or changed is verified, and refused, as
    before), each request gets its own copy of the data, and another key forgets them all."""

    VERIFIED = 1024

    def __init__(self) -> None:
        self._signing: tuple[tuple[Any, ...], URLSafeTimedSerializer] | None = None
        # keyed by (serializer, cookie value); an error (a bad signature) is never remembered
        self._verified = functools.lru_cache(maxsize=self.VERIFIED)(self._verify)

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        signing = self._signing
        if signing is None or signing[0] != keys:
            serializer = super().get_signing_serializer(app)
            assert serializer is not None
            self._verified.cache_clear()  # nothing verified with other keys is trusted any more
            signing = self._signing = (keys, serializer)
        return signing[1]

    @staticmethod
    def _verify(serializer: URLSafeTimedSerializer, value: str) -> tuple[dict[str, Any], int, bool]:
        """The cookie's data, when it was signed (seconds) and whether its values are all plain;
        BadSignature when it is not ours."""
        data, signed = serializer.loads(value, return_timestamp=True)
        return data, int(signed.timestamp()), all(type(v) in _PLAIN for v in data.values())

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and (not request.environ.get("HTTP_COOKIE")  # no cookies at all: none parsed
                               or not request.cookies.get(self.get_cookie_name(app))):
            return self.session_class()
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return self.session_class()
        max_age = int(app.permanent_session_lifetime.total_seconds())
        try:
            data, signed_at, plain = self._verified(serializer, value)
        except BadSignature:
            return self.session_class()
        age = int(time.time()) - signed_at  # itsdangerous' SignatureExpired, at every use
        if age > max_age or age < 0:
            return self.session_class()
        # the session copies the top level; a nested dict or list is copied here, not shared
        return self.session_class(data if plain else deepcopy(data))

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        if not session and not session.modified:
            # What Flask's own does for an empty session left empty (every API call: Flask-Login's
            # hook reads it): "Vary: Cookie" if it was read, no cookie; without reading the settings.
            if session.accessed:
                if "Vary" in response.headers:
                    response.vary.add("Cookie")
                else:  # the header response.vary.add writes, without parsing and rewriting a set
                    response.headers.add("Vary", "Cookie")
            return
        super().save_session(app, session, response)


def _trust_proxies(app: Flask, proxies: int) -> None:
    """Behind ``proxies`` reverse proxies, the client's address (for the rate limits, the access log
    and ``request.remote_addr``) and scheme are the ones the nearest proxies put in X-Forwarded-For
    and X-Forwarded-Proto; anything a client wrote further left in those headers is ignored. The
    Host header is not taken from X-Forwarded-Host: links citizens get use PUBLIC_BASE_URL, and a
    proxy that does not set that header would let a client choose the host. With 0 nothing changes."""
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]


def _engine_options(url: str) -> dict[str, Any]:
    # hide_parameters: database errors must not print names, phones or ID numbers into the logs.
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 15}, "hide_parameters": True}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 5, "hide_parameters": True}


def _sqlite_pragmas(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    from pathlib import Path

    from delivery_service.db import private_file
    from delivery_service.extensions import db

    with app.app_context():
        engine = db.engine

    @sa.event.listens_for(engine, "do_connect")
    def _make_folder(_dialect, _record, cargs, _cparams):  # noqa: ANN001, ANN202
        # The database's folder (instance/ by default) and file are made when it is first opened, so
        # that a command that never opens it (``--help``) writes nothing; readable by this account only.
        database = engine.url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            private_file(Path(database))

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # noqa: ANN001
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=15000")
        cur.close()


def _migrations_dir() -> str:
    from pathlib import Path

    return str(Path(__file__).parent / "migrations")


def _select_locale() -> str:
    chosen = request.args.get("lang") or session.get("lang")
    if chosen in LOCALES:
        return chosen
    if current_user and getattr(current_user, "is_authenticated", False):
        return current_user.locale if current_user.locale in LOCALES else "vi"
    return "vi"


def _register_blueprints(app: Flask) -> None:
    from delivery_service.api import register as register_api
    from delivery_service.web import register as register_web

    register_api(app)
    register_web(app)
