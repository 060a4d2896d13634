"""Sources for tests that store items by hand."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawler.crawl_records import Source
from storage.sources import add_source
from storage.tables import SourceRow


def feed_source_id(s: Session, name: str, now: datetime) -> int:
    """The id of the feed source `name` (https://NAME.example/feed), added if missing."""
    sid = s.scalar(select(SourceRow.id).where(SourceRow.name == name))
    if sid is not None:
        return sid
    return feed_source(s, name, now).id


def feed_source(s: Session, name: str, now: datetime) -> Source:
    """A new feed source `name` (https://NAME.example/feed, every 15 minutes)."""
    return add_source(
        s,
        name=name,
        url=f"https://{name}.example/feed",
        kind="feed",
        every_seconds=900,
        links_css=None,
        now=now,
    )
