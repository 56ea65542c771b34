"""The service's local time (``SERVICE_TIMEZONE``, Vietnam by default): days, midnights, moments."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from flask import current_app


def service_timezone() -> ZoneInfo:
    return ZoneInfo(current_app.config["SERVICE_TIMEZONE"])


def local_now() -> dt.datetime:
    return dt.datetime.now(service_timezone())


def local_today() -> dt.date:
    """Today's date where the service runs."""
    return local_now().date()


def local_moment(moment: dt.datetime) -> dt.datetime:
    """A stored (UTC) moment in the service's time zone."""
    return moment.astimezone(service_timezone())


def day_start(day: dt.date) -> dt.datetime:
    """The local midnight that starts ``day`` (an aware moment, comparable with stored times)."""
    return dt.datetime.combine(day, dt.time(), service_timezone())
