"""Declarative base, column aliases and the UTC datetime type shared by all models."""

from __future__ import annotations

import datetime as dt
import enum
import os
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware datetimes stored in UTC on every backend (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def private_file(path: Path) -> None:
    """Before SQLite first opens ``path``: its folder is made readable by this account only (0700)
    and the file is made empty with mode 0600 (an empty file is an empty database to SQLite, whose
    journal files then take its mode), whatever the umask: the database holds citizens' names, phones
    and ID numbers. An existing file or folder keeps the modes its operator gave it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")  # SQLite only auto-increments INTEGER keys
intpk = Annotated[int, mapped_column(ID, primary_key=True)]
created_at = Annotated[dt.datetime, mapped_column(UTCDateTime, default=utcnow, nullable=False)]
str64 = Annotated[str, mapped_column(sa.String(64))]
str255 = Annotated[str, mapped_column(sa.String(255))]


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)


def str_enum(cls: type[enum.Enum], length: int = 32, name: str | None = None) -> sa.Enum:
    """An enum stored by value as a VARCHAR with a CHECK, the same on SQLite and PostgreSQL."""
    return sa.Enum(cls, native_enum=False, length=length, create_constraint=True, name=name,
                   values_callable=lambda e: [m.value for m in e])


def fk(target: str, **kw) -> sa.ForeignKey:
    """A foreign key with a deliberate ON DELETE rule (RESTRICT unless told)."""
    kw.setdefault("ondelete", "RESTRICT")
    return sa.ForeignKey(target, **kw)


class DriverSQL:
    """A fixed Core statement run as the driver's own SQL: compiled once per dialect, its parameters
    converted by their types' bind processors as SQLAlchemy converts them, and run by
    ``exec_driver_sql``, so that the statement events, the wrapping of driver errors (IntegrityError)
    and ``hide_parameters`` stay SQLAlchemy's. No compile-and-bind work per execution: the write paths
    of intake, imports and courier sync use it for their few fixed statements.

    Column defaults are not applied: every column written must be a parameter. A parameter missing from
    the values raises KeyError, or is bound as NULL with ``missing_as_none`` (optional columns of an
    INSERT compiled for ``column_keys``). ``execute`` gives the driver's rows (no result processing:
    read ids and plain text only); ``rows`` converts each value by its column's type, as a Core SELECT
    would. Relies on two compiled attributes SQLAlchemy keeps private (``_bind_processors``,
    ``_result_columns``); the callers' tests compare what it stores with the ORM's path."""

    def __init__(self, stmt: Any, *, column_keys: tuple[str, ...] | None = None,
                 missing_as_none: bool = False) -> None:
        self.stmt, self.column_keys, self.missing_as_none = stmt, column_keys, missing_as_none
        self._compiled: dict[tuple[str, str], tuple[str, tuple[str, ...], bool, tuple[Any, ...],
                                                    tuple[Any, ...]]] = {}

    def _for(self, dialect: Any) -> tuple[str, tuple[str, ...], bool, tuple[Any, ...], tuple[Any, ...]]:
        key = (dialect.name, dialect.driver)
        got = self._compiled.get(key)
        if got is None:
            compiled = self.stmt.compile(dialect=dialect, column_keys=list(self.column_keys or ()) or None)
            names = (tuple(compiled.positiontup or ()) if compiled.positional
                     else tuple(compiled.bind_names.values()))
            assert not compiled.escaped_bind_names and not compiled.literal_execute_params, compiled.string
            processors = compiled._bind_processors  # noqa: SLF001
            columns = tuple((c.keyname, c.type._cached_result_processor(dialect, None))  # noqa: SLF001
                            for c in compiled._result_columns)  # noqa: SLF001
            got = self._compiled[key] = (compiled.string, names, compiled.positional,
                                         tuple(processors.get(n) for n in names), columns)
        return got

    def execute(self, conn: sa.Connection,
                params: dict[str, Any] | list[dict[str, Any]]) -> sa.CursorResult[Any]:
        """Run it with one set of values (a dict) or several (a list: the driver's executemany)."""
        sql, names, positional, processors, _ = self._for(conn.dialect)
        missing_as_none = self.missing_as_none

        def bound(values: dict[str, Any]) -> Any:
            got = [values.get(n) for n in names] if missing_as_none else [values[n] for n in names]
            got = [v if p is None or v is None else p(v) for v, p in zip(got, processors, strict=True)]
            return tuple(got) if positional else dict(zip(names, got, strict=True))

        if isinstance(params, dict):
            return conn.exec_driver_sql(sql, bound(params))
        return conn.exec_driver_sql(sql, [bound(values) for values in params])

    def rows(self, conn: sa.Connection, params: dict[str, Any]) -> list[dict[str, Any]]:
        """A SELECT's rows as dicts by column key, each value converted by its column's type."""
        columns = self._for(conn.dialect)[4]
        return [{key: v if p is None or v is None else p(v) for (key, p), v in zip(columns, row, strict=True)}
                for row in self.execute(conn, params)]


def sqlite_rebuild_triggers(conn: sa.Connection, table: str) -> list[str]:
    """For a migration that rebuilds ``table`` on SQLite (Alembic's batch mode: a new copy, the old
    one dropped, the copy renamed): drops the triggers whose SQL names the table, which SQLite checks
    when the copy is renamed, and returns their CREATE statements, to run again after the rebuild."""
    rows = conn.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND sql LIKE ?",
                                (f"%{table}%",)).all()
    for name, _sql in rows:
        conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
    return [sql for _name, sql in rows]
