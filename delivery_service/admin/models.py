"""What the administration pages keep for a moment: a temporary password between the form that set it
and the page that shows it once."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import UTCDateTime, fk
from delivery_service.extensions import db


class ShownOnce(db.Model):
    """A temporary password waiting to be shown once to the admin who set it (Post/Redirect/Get).

    Stored sealed: XORed with a one-time pad of its length that only the admin's session cookie
    holds (with the token whose SHA-256 is the key here), so neither the database nor the cookie
    alone reveals it. Deleted when shown; one that was never shown is useless after ``expires_at``
    and swept at the next reset."""

    __tablename__ = "shown_once"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    admin_id: Mapped[int] = mapped_column(fk("users.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(fk("users.id", ondelete="CASCADE"))
    sealed: Mapped[bytes] = mapped_column(sa.LargeBinary(512))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
