"""Users with a role and a scope; API clients whose tokens are kept only as hashes."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from delivery_service.db import UTCDateTime, created_at, fk, intpk, str_enum
from delivery_service.extensions import db
from delivery_service.orgs.models import Counter, PostOffice
from delivery_service.units.models import AdminUnit


class Role(enum.StrEnum):
    COUNTER_STAFF = "counter_staff"
    COURIER = "courier"
    SUPERVISOR = "supervisor"  # trưởng bưu cục: the routes and orders of one post office
    DISTRICT_OFFICER = "district_officer"
    ADMIN = "admin"


class User(db.Model):
    """A person who logs in. Scope by role: counter staff their counter, couriers the routes
    they drive (postal_routes.courier_id), supervisors the routes of their post office, district
    officers an area unit, admins everything."""

    __tablename__ = "users"
    __table_args__ = (
        sa.CheckConstraint(
            "(role <> 'counter_staff' OR counter_id IS NOT NULL)"
            " AND (role <> 'district_officer' OR area_unit_id IS NOT NULL)"
            " AND (role <> 'supervisor' OR post_office_id IS NOT NULL)",
            name="scope_by_role",
        ),
    )

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    counter_id: Mapped[int | None] = mapped_column(fk("counters.id"), index=True)
    area_unit_id: Mapped[int | None] = mapped_column(fk("admin_units.id"), index=True)
    post_office_id: Mapped[int | None] = mapped_column(fk("post_offices.id"), index=True)
    locale: Mapped[str] = mapped_column(sa.String(8), default="vi")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[created_at]
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Kept in the session at log-in; bumped at log-out and password change, so that a copied
    # session cookie stops working (the cookie is signed, not stored: this is its server side).
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set when an administrator creates the account or resets its password: every page sends the
    # user to /account/password until they choose their own.
    must_change_password: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # Two-factor log-in (TOTP, RFC 6238): the shared secret (base32), when it was confirmed, the
    # last time step accepted (a code is good once), and the argon2 hashes of unused recovery codes.
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_enabled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    totp_last_step: Mapped[int | None]
    recovery_code_hashes: Mapped[list[str] | None] = mapped_column(sa.JSON)

    counter: Mapped[Counter | None] = relationship()
    area_unit: Mapped[AdminUnit | None] = relationship()
    post_office: Mapped[PostOffice | None] = relationship()

    # Flask-Login protocol
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)


class ApiClient(db.Model):
    """A counter's one-stop software. Only the SHA-256 of its token is stored."""

    __tablename__ = "api_clients"

    id: Mapped[intpk]
    counter_id: Mapped[int] = mapped_column(fk("counters.id"), index=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    token_prefix: Mapped[str] = mapped_column(sa.String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[created_at]
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The unit whose figures it may read (GET /api/v1/reports/figures), as a district officer of it;
    # None: its counter's (reports.figures_api).
    report_unit_id: Mapped[int | None] = mapped_column(fk("admin_units.id"))

    counter: Mapped[Counter] = relationship()
    report_unit: Mapped[AdminUnit | None] = relationship()


class AuditEvent(db.Model):
    """Who did what, when, from where: log-ins, failures, log-outs, password and account changes.
    Never passwords, tokens or the personal data of citizens (before/after hold field values of
    staff accounts and settings only)."""

    __tablename__ = "audit_events"

    id: Mapped[intpk]
    at: Mapped[created_at] = mapped_column(index=True)
    actor_user_id: Mapped[int | None] = mapped_column(fk("users.id", ondelete="SET NULL"), index=True)
    actor_label: Mapped[str] = mapped_column(sa.String(100))
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    object_type: Mapped[str | None] = mapped_column(sa.String(64))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    before: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
    ip: Mapped[str | None] = mapped_column(sa.String(45))
