"""Rate-limit counters in the service's own database, for when there is no Redis.

Flask-Limiter's memory storage counts per process, so with gunicorn's workers (and several `serve`s)
each one granted the whole allowance again. The `limits` library ships no storage on a SQL database
(memory, Redis, memcached, MongoDB only), so this is one, behind its documented ``Storage`` interface,
for the fixed-window strategy the limiter uses: one row per key with a count and the end of its
window; an increment is one atomic upsert, so every process on the database shares one allowance.
It uses the current app's engine (requests and CLI commands run in an app context), each call in a
short transaction of its own, never the request's session.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import sqlalchemy as sa
from limits.storage import Storage
from sqlalchemy.dialects import postgresql, sqlite

from delivery_service.db import Base

SCHEME = "delivery-service-db"
MAX_KEY = 255
SWEEP_EVERY_S = 60.0

# The window's end as epoch seconds (a float), as `limits` hands it out and reads it back: the same
# arithmetic as its own storages, with no time zone to convert.
rate_limit_counters = sa.Table(
    "rate_limit_counters", Base.metadata,
    sa.Column("key", sa.String(MAX_KEY), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False, index=True),
)


def _key(key: str) -> str:
    # Keys carry what a client sent (the username of a log-in); a long one is hashed rather than
    # refused, since a storage error would send every process to its per-process fallback.
    if len(key) <= MAX_KEY:
        return key
    return key[:MAX_KEY - 65] + "#" + hashlib.sha256(key.encode()).hexdigest()


class DatabaseStorage(Storage):
    """`limits` storage on the app's database (SQLite or PostgreSQL): ``delivery-service-db://``."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **_options: object) -> None:
        # Options meant for another storage (Redis timeouts) may be passed along by the limiter.
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self._next_sweep = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return sa.exc.SQLAlchemyError

    @staticmethod
    def _engine() -> sa.Engine:
        from delivery_service.extensions import db

        return db.engine

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the key's count in its window; a new window of ``expiry`` seconds starts
        when there is none or the last one has ended. Returns the count."""
        engine = self._engine()
        now = time.time()
        insert = (postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert)(
            rate_limit_counters)
        table = rate_limit_counters.c
        ended = table.expires_at <= now
        stmt = insert.values(key=_key(key), count=amount, expires_at=now + expiry).on_conflict_do_update(
            index_elements=[table.key],
            # Both expressions read the row as it was before this update.
            set_={"count": sa.case((ended, amount), else_=table.count + amount),
                  "expires_at": sa.case((ended, now + expiry), else_=table.expires_at)},
        ).returning(table.count)
        with engine.begin() as conn:
            count = conn.execute(stmt).scalar_one()
        if now >= self._next_sweep:
            # Ended windows go now and then, in a transaction of their own: holding no counter's
            # lock while it waits for others, a sweep cannot deadlock with increments.
            self._next_sweep = now + SWEEP_EVERY_S
            with engine.begin() as conn:
                conn.execute(sa.delete(rate_limit_counters).where(ended))
        return int(count)

    def get(self, key: str) -> int:
        """The key's count in its current window, 0 when there is none."""
        table = rate_limit_counters.c
        with self._engine().connect() as conn:
            count = conn.scalar(sa.select(table.count).where(table.key == _key(key),
                                                             table.expires_at > time.time()))
        return int(count or 0)

    def get_expiry(self, key: str) -> float:
        """When the key's window ends (epoch seconds); now when there is none."""
        now = time.time()
        table = rate_limit_counters.c
        with self._engine().connect() as conn:
            expires = conn.scalar(sa.select(table.expires_at).where(table.key == _key(key),
                                                                    table.expires_at > now))
        return float(expires or now)

    def check(self) -> bool:
        """Whether the database answers (the limiter asks before it leaves its fallback)."""
        try:
            with self._engine().connect() as conn:
                conn.execute(sa.select(sa.func.count()).select_from(rate_limit_counters).where(sa.false()))
            return True
        except Exception:  # noqa: BLE001  (any failure means "not healthy")
            return False

    def reset(self) -> int | None:
        """Forget every counter; returns how many there were."""
        with self._engine().begin() as conn:
            return conn.execute(sa.delete(rate_limit_counters)).rowcount

    def clear(self, key: str) -> None:
        """Forget one key's counter."""
        with self._engine().begin() as conn:
            conn.execute(sa.delete(rate_limit_counters).where(rate_limit_counters.c.key == _key(key)))


def fall_back_to_database(limiter: Any) -> None:
    """With Redis as the limiter's storage: while Redis fails, count in the database (shared by every
    process and node on it) instead of Flask-Limiter's per-process memory, where each gunicorn worker
    would grant the whole allowance again. Call after ``limiter.init_app`` (which sets the memory
    fallback); the limiter still goes back to Redis by itself once it answers."""
    from limits.strategies import STRATEGIES

    if not getattr(limiter, "_in_memory_fallback_enabled", False):
        return
    storage = DatabaseStorage()
    limiter._fallback_storage = storage
    limiter._fallback_limiter = STRATEGIES[limiter._strategy or "fixed-window"](storage)
    if limiter._storage is not None:
        _no_second_wait(limiter._storage)


# A failed call this recent means the storage is down: asking it again would only wait once more.
RECHECK_AFTER_FAILURE_S = 1.0


def _no_second_wait(storage: Any) -> None:
    """Flask-Limiter asks a storage whether it is back (``check``) right after the call that failed,
    in the same request: with Redis frozen, that request waited for two timeouts (0.6 s, not 0.3).
    Within RECHECK_AFTER_FAILURE_S of a failed call, ``check`` answers "not yet" without asking; later
    checks (after 2, 4 … 32 s) ask Redis as before, so the limiter still goes back by itself."""
    failed_at = [-RECHECK_AFTER_FAILURE_S]

    def noted(method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except Exception:
                failed_at[0] = time.monotonic()
                raise
        return call

    for name in ("incr", "get", "get_expiry", "clear", "get_moving_window", "get_sliding_window",
                 "acquire_entry", "acquire_sliding_window_entry"):
        if hasattr(storage, name):
            setattr(storage, name, noted(getattr(storage, name)))
    check = storage.check

    def checked() -> bool:
        if time.monotonic() - failed_at[0] < RECHECK_AFTER_FAILURE_S:
            return False
        return bool(check())

    storage.check = checked
