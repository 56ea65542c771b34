"""What the administration pages keep for a moment: a secret (a temporary password, a new API token,
a webhook signing secret) between the form that made it and the page that shows it once
(``admin.shown_once``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from delivery_service.db import UTCDateTime, fk
from delivery_service.extensions import db


class ShownOnce(db.Model):
    """A secret waiting to be shown once to the admin who made it (Post/Redirect/Get).

    Stored sealed: XORed with a one-time pad of its length that only the admin's session cookie
    holds (with the token whose SHA-256, with what the secret is, is the key here), so neither the
    database nor the cookie alone reveals it. ``user_id``: the account whose password it is, or the
    admin's own for an API client's token or signing secret. Deleted when shown; one that was never
    shown is useless after ``expires_at`` and swept when the next one is kept."""

    __tablename__ = "shown_once"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    admin_id: Mapped[int] = mapped_column(fk("users.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(fk("users.id", ondelete="CASCADE"))
    sealed: Mapped[bytes] = mapped_column(sa.LargeBinary(512))
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
