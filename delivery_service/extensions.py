"""Bare extension singletons, wired to the app in create_app()."""

from flask import request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect

from delivery_service.db import Base
from delivery_service.errors import ErrorOut

# Sessions live for one request or job; keeping values after commit spares a reload per response.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()


class _Api(Api):
    ERROR_SCHEMA = ErrorOut  # the one error shape of errors.error_body, documented on every operation


api = _Api()
# Storage (create_app): Redis when REDIS_URL is set, shared by every node; else the service's own
# database (ratelimits.py), shared by every process on it. When the storage fails (Redis stopped or
# frozen), the limiter counts in the service's database instead (ratelimits.fall_back_to_database,
# set up by jobs.init_app: shared by the processes on it, not per process), and goes back to Redis by
# itself once it answers (checked after 1, 2, 4 ... 32 s); any other storage error is logged, never
# a 500 for a log-in or a tracking look-up.
limiter = Limiter(key_func=get_remote_address, in_memory_fallback_enabled=True, swallow_errors=True)


@limiter.request_filter
def _skip_api() -> bool:
    """The API has no per-address limits (its blueprint is exempt); filtering its requests out first
    spares most of the limiter's work on each (the whole check cost a fifth of an order's CPU; the
    filtered one about 25 µs)."""
    return request.path.startswith("/api/")
