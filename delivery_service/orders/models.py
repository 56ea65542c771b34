"""Delivery orders, their append-only event log, and the item-serial allocator."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from delivery_service.db import ID, UTCDateTime, created_at, fk, intpk, str_enum, utcnow
from delivery_service.extensions import db
from delivery_service.orders.status import Direction, Status
from delivery_service.orgs.models import Counter, PostalRoute
from delivery_service.units.models import AdminUnit
from delivery_service.vietnamese import search_key


class Payer(enum.StrEnum):
    CITIZEN = "citizen"
    AGENCY = "agency"


class Exemption(enum.StrEnum):
    """Postage exemptions of Circular 22/2017/TT-BTTTT, with the share of postage waived."""

    NONE = "none"
    PRE_1945_REVOLUTIONARY = "pre_1945_revolutionary"
    HEROIC_MOTHER = "heroic_mother"
    WAR_HERO = "war_hero"
    WAR_INVALID = "war_invalid"
    AGENT_ORANGE = "agent_orange"
    MARTYR_FAMILY = "martyr_family"
    POOR_HOUSEHOLD = "poor_household"
    DISADVANTAGED_AREA = "disadvantaged_area"

    @property
    def waived_percent(self) -> int:
        if self is Exemption.NONE:
            return 0
        if self in (Exemption.PRE_1945_REVOLUTIONARY, Exemption.HEROIC_MOTHER):
            return 100
        return 50


class ItemSerial(db.Model):
    """The source of S10 serials: its auto-increment key never hands out a number twice.

    SQLite writes one row per serial; PostgreSQL draws blocks from the key's sequence (no rows).
    """

    __tablename__ = "item_serials"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[intpk]
    allocated_at: Mapped[created_at]


OPEN_WHERE = "status NOT IN ('delivered', 'returned_to_agency', 'cancelled')"
# Closed (a status of orders.status.TERMINAL, for some direction) and not erased: the orders the daily
# erasure looks at (privacy.erasure.erasable repeats this text, so that SQLite uses the index too).
CLOSED_STATUSES = "status IN ('cancelled', 'delivered', 'delivered_to_agency', 'returned_to_agency')"
ERASABLE_WHERE = f"personal_data_erased_at IS NULL AND {CLOSED_STATUSES}"
DISPATCH_WHERE = "dispatch IS NOT NULL"
NOT_CANCELLED = "status <> 'cancelled'"


class DeliveryOrder(db.Model):
    """One order from a counter: deliver a result, carry a dossier, or both."""

    __tablename__ = "delivery_orders"
    __table_args__ = (
        sa.UniqueConstraint("counter_id", "idempotency_key", name="uq_orders_idempotency_key"),
        sa.CheckConstraint("postage_vnd >= 0", name="postage_positive"),
        sa.CheckConstraint("postage_due_vnd >= 0 AND postage_due_vnd <= postage_vnd", name="postage_due"),
        sa.CheckConstraint("collect_vnd >= 0", name="collect_positive"),
        sa.CheckConstraint("weight_g IS NULL OR (weight_g >= 1 AND weight_g <= 30000)", name="weight_range"),
        sa.CheckConstraint("(window_from_min IS NULL AND window_to_min IS NULL) OR (window_from_min >= 360 "
                           "AND window_to_min <= 1260 AND window_to_min - window_from_min >= 30)",
                           name="window_range"),
        # A dossier has one order a direction at a counter, but a cancelled order gives it back: the
        # counter sends it again with the right data (migration 0029).
        sa.Index("uq_orders_dossier", "counter_id", "dossier_code", "direction", unique=True,
                 postgresql_where=sa.text(NOT_CANCELLED), sqlite_where=sa.text(NOT_CANCELLED)),
        sa.Index("ix_orders_counter_created", "counter_id", "created_at"),
        # The order search's phone term (PostgreSQL's bitmap OR); SQLite scans for that search anyway
        # (its name term is a LIKE '%…%'), so it has no such index (migration 0028).
        sa.Index("ix_orders_phone", "recipient_phone").ddl_if(dialect="postgresql"),
        sa.Index("ix_orders_dossier_code", "dossier_code"),
        sa.Index("ix_orders_commune_status", "commune_id", "status"),
        # A route's day loads (routing.services.day_loads, recount), its run (run_orders: status read
        # from the index), the privacy run look-up, and the route foreign key's ON DELETE SET NULL.
        sa.Index("ix_orders_route_run", "route_id", "run_date", "status"),
        # The dispatch queue (routing.services.dispatch_queue): the few orders waiting for a person
        # (migration 0026; every order wrote it before).
        sa.Index("ix_orders_dispatch", "dispatch", postgresql_where=sa.text(DISPATCH_WHERE),
                 sqlite_where=sa.text(DISPATCH_WHERE)),
        # Reports count open and overdue orders now: a small part of all orders, read from this
        # index alone (it holds every column the count groups or filters by).
        sa.Index("ix_orders_open_created", "created_at", "commune_id", "route_id", "counter_id", "due_date",
                 "status", "direction",
                 postgresql_where=sa.text(OPEN_WHERE), sqlite_where=sa.text(OPEN_WHERE)),
        # The daily erasure of personal data (privacy.erasure): closed orders only (migration 0026;
        # before, ix_orders_not_erased held every order, a new one included).
        sa.Index("ix_orders_erasable", "updated_at", postgresql_where=sa.text(ERASABLE_WHERE),
                 sqlite_where=sa.text(ERASABLE_WHERE)),
    )

    id: Mapped[intpk]
    item_id: Mapped[str] = mapped_column(sa.String(13), unique=True)
    counter_id: Mapped[int] = mapped_column(fk("counters.id"))
    api_client_id: Mapped[int | None] = mapped_column(fk("api_clients.id"))
    created_by_id: Mapped[int | None] = mapped_column(fk("users.id"))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(128))
    # SHA-256 of the create call's validated body: a retry must repeat it (orders.services.request_digest)
    request_digest: Mapped[str | None] = mapped_column(sa.String(64))

    direction: Mapped[Direction] = mapped_column(str_enum(Direction, 24))
    status: Mapped[Status] = mapped_column(str_enum(Status, 24), default=Status.CREATED)
    dossier_code: Mapped[str] = mapped_column(sa.String(64))
    procedure_code: Mapped[str | None] = mapped_column(sa.String(64))
    procedure_name: Mapped[str] = mapped_column(sa.String(500))
    issuing_agency: Mapped[str] = mapped_column(sa.String(255))

    recipient_name: Mapped[str] = mapped_column(sa.String(200))
    # NFC, case-folded (the search reads recipient_search_key since migration 0015; its trigram index
    # of migration 0002 went in 0028)
    recipient_name_key: Mapped[str] = mapped_column(sa.String(200))
    # Lower case without diacritics (vietnamese.search_key): "anh tuyet" finds "Ánh Tuyết" (migration 0015)
    recipient_search_key: Mapped[str] = mapped_column(
        sa.String(200), default=lambda ctx: search_key(ctx.get_current_parameters().get("recipient_name")))
    recipient_phone: Mapped[str] = mapped_column(sa.String(16))
    recipient_id_number: Mapped[str | None] = mapped_column(sa.String(12))
    authorised_name: Mapped[str | None] = mapped_column(sa.String(200))
    authorised_phone: Mapped[str | None] = mapped_column(sa.String(16))
    authorised_id_number: Mapped[str | None] = mapped_column(sa.String(12))

    province_id: Mapped[int] = mapped_column(fk("admin_units.id"))
    district_id: Mapped[int | None] = mapped_column(fk("admin_units.id"))
    commune_id: Mapped[int] = mapped_column(fk("admin_units.id"))
    address_detail: Mapped[str] = mapped_column(sa.String(255))

    postage_vnd: Mapped[int] = mapped_column(default=0)
    payer: Mapped[Payer] = mapped_column(str_enum(Payer, 16), default=Payer.CITIZEN)
    exemption: Mapped[Exemption] = mapped_column(str_enum(Exemption), default=Exemption.NONE)
    postage_due_vnd: Mapped[int] = mapped_column(default=0)
    collect_vnd: Mapped[int] = mapped_column(default=0)
    weight_g: Mapped[int | None]  # optional, whole grams (1..30000), printed on the label (migration 0014)

    appointment_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    # The delivery window (migration 0022): minutes after local midnight, both or neither.
    window_from_min: Mapped[int | None] = mapped_column(sa.SmallInteger)
    window_to_min: Mapped[int | None] = mapped_column(sa.SmallInteger)
    due_date: Mapped[dt.date] = mapped_column(sa.Date)
    route_id: Mapped[int | None] = mapped_column(fk("postal_routes.id", ondelete="SET NULL"))
    # The day the order is planned on its route's run (capacity counts per route and day).
    run_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    # Why a person must dispatch the order (routes.Outcome: unknown_commune, no_rule,
    # over_capacity); NULL once it is on a route.
    dispatch: Mapped[str | None] = mapped_column(sa.String(24))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    dossier_delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # When the recipient's personal data was erased after the retention period (privacy.erasure)
    personal_data_erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    created_at: Mapped[created_at]
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    counter: Mapped[Counter] = relationship()
    route: Mapped[PostalRoute | None] = relationship()
    province: Mapped[AdminUnit] = relationship(foreign_keys=[province_id])
    district: Mapped[AdminUnit | None] = relationship(foreign_keys=[district_id])
    commune: Mapped[AdminUnit] = relationship(foreign_keys=[commune_id])
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.id", viewonly=True
    )


def hhmm(minutes: int) -> str:
    """Minutes after midnight as "HH:MM"."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def window_between(start: int | None, end: int | None) -> str | None:
    """A delivery window from its minutes after local midnight as "08:00–12:00", or None."""
    if start is None or end is None:
        return None
    return f"{hhmm(start)}–{hhmm(end)}"


def window_text(order: DeliveryOrder) -> str | None:
    """An order's delivery window as "08:00–12:00", or None: what documents and pages print."""
    return window_between(order.window_from_min, order.window_to_min)


def window_json(order: DeliveryOrder) -> dict[str, str] | None:
    """An order's delivery window as the APIs give it, {"from": "08:00", "to": "12:00"}, or None."""
    if order.window_from_min is None or order.window_to_min is None:
        return None
    return {"from": hhmm(order.window_from_min), "to": hhmm(order.window_to_min)}


class OrderEvent(db.Model):
    """One status change. Append-only: the database refuses UPDATE and DELETE (see migrations)."""

    __tablename__ = "order_events"
    __table_args__ = (
        sa.CheckConstraint(
            "actor_user_id IS NOT NULL OR actor_client_id IS NOT NULL OR actor_label = 'system'",
            name="has_actor",
        ),
        sa.Index("ix_order_events_order", "order_id", "id"),
    )

    id: Mapped[intpk]
    order_id: Mapped[int] = mapped_column(ID, sa.ForeignKey("delivery_orders.id", ondelete="RESTRICT"))
    client_event_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    status_from: Mapped[Status | None] = mapped_column(str_enum(Status, 24, "status_from"))
    status_to: Mapped[Status] = mapped_column(str_enum(Status, 24, "status_to"))
    actor_user_id: Mapped[int | None] = mapped_column(fk("users.id"))
    actor_client_id: Mapped[int | None] = mapped_column(fk("api_clients.id"))
    actor_label: Mapped[str] = mapped_column(sa.String(200))
    device_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    server_time: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    accuracy_m: Mapped[float | None]
    reason: Mapped[str | None] = mapped_column(sa.String(64))
    note: Mapped[str | None] = mapped_column(sa.String(500))
    # The route the order is on after this event, when the event placed or moved it. No foreign
    # key: the log is history, and must not stop a route from ever being removed.
    route_id: Mapped[int | None] = mapped_column(ID)

    order: Mapped[DeliveryOrder] = relationship(back_populates="events")
