"""Digest periods: which digest a match belongs to and when it is due. Pure.

In alerts (not in the use-cases) because storage computes the due time when
it writes a match's outbox rows, and storage may import alerts but no use-case.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from alerts.alert_records import Digest


def digest_period(
    digest: Digest, at: datetime, daily_at: time = time(0, 0)
) -> tuple[str | None, datetime]:
    """The digest period a match at `at` (UTC) belongs to, and when it is due.

    Pure. Hourly digests are due at the top of the next hour. Daily digests
    are due at the next `daily_at` (UTC, NEWSWATCH_DAILY_DIGEST_AT): the
    digest sent at 08:00 lists the matches since the previous 08:00. The
    period is named after the day it is sent.
    """
    if digest == "hourly":
        start = at.replace(minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%dT%H"), start + timedelta(hours=1)
    if digest == "daily":
        due = at.replace(hour=daily_at.hour, minute=daily_at.minute, second=0, microsecond=0)
        if due <= at:
            due += timedelta(days=1)
        return due.strftime("%Y-%m-%d"), due
    return None, at
