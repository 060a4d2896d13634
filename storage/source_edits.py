"""Editing a source's settings: `source edit`, `source enable|disable`, and
the reschedule an interval change owes.

Invariant: after a change of `every`, the next poll is at most one new
interval away (`next_poll_at = min(old next poll, now + every)`) and the
adaptive interval starts again from the new value, so a shorter `every`
takes effect at once and a longer one at the next poll.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from crawler.crawl_records import Source
from storage.sources import SourceExists, SourceNotFound, normalize_name, to_record
from storage.tables import SourceRow

_UNSET: object = object()


def rescheduled_at(old_next: datetime | None, now: datetime, every_seconds: int) -> datetime:
    """When a source whose interval became `every_seconds` is polled next. Pure."""
    soonest = now + timedelta(seconds=every_seconds)
    return soonest if old_next is None or old_next > soonest else old_next


def _row(session: Session, name: str) -> SourceRow:
    name = normalize_name(name)
    row = session.scalar(select(SourceRow).where(SourceRow.name == name))
    if row is None:
        raise SourceNotFound(f"no source named {name!r}")
    return row


def set_every(row: SourceRow, every_seconds: int, now: datetime) -> None:
    """A new interval on `row`, rescheduled (see the module's invariant)."""
    if row.every_seconds == every_seconds:
        return
    row.every_seconds = every_seconds
    row.current_interval_seconds = None
    row.next_poll_at = rescheduled_at(row.next_poll_at, now, every_seconds)


def edit_source(
    session: Session,
    name: str,
    *,
    now: datetime,
    every_seconds: int | None = None,
    new_name: str | None = None,
    links_css: str | object | None = _UNSET,
    enabled: bool | None = None,
) -> Source:
    """Change what was given, leave the rest; SourceNotFound / SourceExists."""
    row = _row(session, name)
    if every_seconds is not None:
        set_every(row, every_seconds, now)
    if links_css is not _UNSET:
        row.links_css = links_css  # type: ignore[assignment]
    if enabled is not None and enabled != row.enabled:
        row.enabled = enabled
        if enabled:  # back on: due now rather than at a date long past or far away
            row.next_poll_at = now
            row.baseline_pending = True  # what piled up meanwhile is a backlog, not news
    if new_name is not None and normalize_name(new_name) != row.name:
        new = normalize_name(new_name)
        if session.scalar(select(SourceRow.id).where(SourceRow.name == new)) is not None:
            raise SourceExists(f"a source named {new!r} already exists")
        row.name = new
    try:
        session.flush()
    except IntegrityError as e:  # a concurrent rename to the same name
        raise SourceExists(f"a source named {new_name!r} already exists") from e
    return to_record(row)


def reschedule(session: Session, name: str, every_seconds: int, now: datetime) -> None:
    """`every` of an existing source set again (import): reschedule if it changed."""
    set_every(_row(session, name), every_seconds, now)


MAX_TAGS = 20
MAX_TAG_CHARS = 200


def set_tags(session: Session, name: str, tags: tuple[str, ...]) -> None:
    """Replace a source's tags (an OPML import's folders)."""
    _row(session, name).tags = list(tags[:MAX_TAGS])


def tags_by_name(session: Session) -> dict[str, tuple[str, ...]]:
    """Every source's tags by source name (`source list`)."""
    rows = session.execute(select(SourceRow.name, SourceRow.tags))
    return {n: tuple(str(t) for t in (tags or []) if isinstance(t, str)) for n, tags in rows}


def names_with_url(session: Session, url: str) -> list[str]:
    """Sources polling `url` already (one feed under two names polls it twice)."""
    return list(session.scalars(select(SourceRow.name).where(SourceRow.url == url)))
