"""Order locations, positions learnt from couriers, and the geocoding server's cached answers."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import ID, UTCDateTime, intpk, str_enum, utcnow
from delivery_service.extensions import db

ADDRESS_KEY_LENGTH = 320  # a commune code, "|", and an address detail of up to 255 characters folded
QUERY_KEY_LENGTH = 700  # detail, commune, district, province and country, folded


class LocationSource(enum.StrEnum):
    """Where a coordinate came from, best first."""

    MANUAL = "manual"  # set by a person on purpose
    COURIER = "courier"  # learnt from couriers' fixes at successful deliveries to the same address
    NOMINATIM = "nominatim"
    PHOTON = "photon"
    COMMUNE_CENTROID = "commune_centroid"
    PROVINCE_CENTROID = "province_centroid"


def _range_checks(nullable: bool = False) -> tuple[sa.CheckConstraint, ...]:
    checks = (
        sa.CheckConstraint("latitude >= -90 AND latitude <= 90", name="latitude_range"),
        sa.CheckConstraint("longitude >= -180 AND longitude <= 180", name="longitude_range"),
    )
    if nullable:  # NULL passes a CHECK, so only the pairing needs saying
        checks += (sa.CheckConstraint("(latitude IS NULL) = (longitude IS NULL)", name="both_or_neither"),)
    return checks


class OrderLocation(db.Model):
    """The best known position of one order's delivery address, its source and its precision."""

    __tablename__ = "order_locations"
    __table_args__ = (
        *_range_checks(),
        sa.CheckConstraint("precision_m > 0", name="precision_positive"),
    )

    order_id: Mapped[int] = mapped_column(
        ID, sa.ForeignKey("delivery_orders.id", ondelete="CASCADE"), primary_key=True)
    latitude: Mapped[float]
    longitude: Mapped[float]
    source: Mapped[LocationSource] = mapped_column(str_enum(LocationSource, 24))
    # Approximate radius in metres within which the address lies (see geo.services PRECISION_M).
    precision_m: Mapped[int]
    address_key: Mapped[str] = mapped_column(sa.String(ADDRESS_KEY_LENGTH))
    located_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class KnownPlace(db.Model):
    """Where couriers stood when they delivered successfully to one normalised address."""

    __tablename__ = "known_places"
    __table_args__ = (
        *_range_checks(),
        sa.CheckConstraint("samples > 0", name="samples_positive"),
        sa.CheckConstraint("accuracy_m > 0", name="accuracy_positive"),
    )

    id: Mapped[intpk]
    address_key: Mapped[str] = mapped_column(sa.String(ADDRESS_KEY_LENGTH), unique=True)
    latitude: Mapped[float]
    longitude: Mapped[float]
    samples: Mapped[int]  # fixes accepted so far, including those no longer kept in ``fixes``
    accuracy_m: Mapped[float]
    # The most recent accepted fixes as [latitude, longitude, accuracy_m]: the position is their
    # median, so one bad fix cannot drag it away as it would drag a mean.
    fixes: Mapped[list[Any]] = mapped_column(sa.JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class GeocodeCache(db.Model):
    """One answer of the geocoding server; a "not found" (no coordinates) is kept too."""

    __tablename__ = "geocode_cache"
    __table_args__ = (
        sa.UniqueConstraint("backend", "query_key"),
        *_range_checks(nullable=True),
    )

    id: Mapped[intpk]
    backend: Mapped[str] = mapped_column(sa.String(16))
    query_key: Mapped[str] = mapped_column(sa.String(QUERY_KEY_LENGTH))
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    precision_m: Mapped[int | None]
    label: Mapped[str | None] = mapped_column(sa.String(64))  # the server's class:type, e.g. place:hamlet
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class GeoCursor(db.Model):
    """The geocoding scanner's place in the event log (one row) and its lease (geo.services.locate_new)."""

    __tablename__ = "geo_cursor"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=False)
    cursor_event_id: Mapped[int] = mapped_column(ID, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(sa.String(32))  # the run holding the lease


# The commit hook that queues the scan: subscribed with the models, which every app imports.
from delivery_service.geo import hooks  # noqa: E402
from delivery_service.orders import watch  # noqa: E402

watch.subscribe(hooks.events_written)
