"""Declarative base, column aliases and the UTC datetime type shared by all models."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated

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
