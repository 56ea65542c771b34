"""Notification jobs: idempotent (the cursor's lease, the messages' unique key and their claims make
a repeated or concurrent run harmless).

``sweep`` is listed in jobs.SWEEPERS: every process's maintenance pass (every JOBS_MAINTENANCE_S,
and in ``delivery-service worker``'s loop) scans the event log and sends what is due, retries and
the end of quiet hours included, with no other traffic needed.
"""

from __future__ import annotations

import datetime as dt

from delivery_service.notifications import services


def run() -> dict[str, dict[str, int]]:
    """Scan the log and send what is due (a job queued by hand or by a CLI)."""
    return services.run()


def sweep(now: dt.datetime) -> dict[str, list[str]]:
    """The maintenance pass's hook: outcomes as lists (the pass reports their lengths)."""
    done = services.run(now)
    return {part: [k for k, n in counts.items() for _ in range(n)] for part, counts in done.items()}
