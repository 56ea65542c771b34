"""Bare extension singletons, wired to the app in create_app()."""

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
# Storage: Redis when REDIS_URL is set (shared by all processes), else per-process memory.
limiter = Limiter(key_func=get_remote_address)
