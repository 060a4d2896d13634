"""Pure records that cross package boundaries (no I/O, no ORM).

Every datetime here is timezone-aware UTC; code that builds a record is
responsible for that invariant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SourceKind = Literal["feed", "page", "sitemap", "spider"]
# A URL a sitemap source has dealt with, and the version (newest lastmod or
# news:publication_date) it had then; None when the sitemap gave no date.
SeenVersion = tuple[str, datetime | None]

# The polling intervals a user may ask for (`--every`, OPML, YAML): at least a
# minute (politeness), at most 30 days (and never a datetime overflow).
MIN_EVERY_SECONDS = 60
MAX_EVERY_SECONDS = 30 * 86_400


@dataclass(frozen=True, slots=True)
class Source:
    """A source as the crawler and the CLI see it, with its fetch state."""

    id: int
    name: str
    url: str
    kind: SourceKind | None
    every_seconds: int
    links_css: str | None = None
    spider: str | None = None  # kind "spider": "package.module:Class" or "path/file.py:Class"
    enabled: bool = True
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    next_poll_at: datetime | None = None
    last_polled_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    items_count: int = 0
    current_interval_seconds: int | None = None
    # The next successful poll is a baseline (a new or re-enabled source):
    # it stores everything but alerts only on recent items (scheduler.first_poll).
    baseline_pending: bool = False


@dataclass(frozen=True, slots=True)
class Item:
    """One article or feed entry, normalised.

    `url` is canonical and is the identity of the item across sources;
    `text` is the body as plain text (markup removed, entities decoded).
    """

    url: str
    guid: str
    title: str
    summary: str
    text: str
    published: datetime
    language: str | None
    content_hash: str
    # False when the feed gave no usable date and `published` is the fetch
    # time: a first poll counts such an item as old (scheduler.first_poll).
    dated: bool = True


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as read back from storage, with its id and source."""

    id: int
    source_id: int
    source_name: str
    item: Item
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """What polling one source produced, for storage and reporting.

    status: "ok" (parsed), "not_modified" (304 or unchanged body), "failed",
    or "deferred": no request slot for the source's host within the poll's
    bound, so nothing was sent; the source is polled again soon and this
    counts neither as a poll nor as a failure.
    """

    source_id: int
    status: Literal["ok", "not_modified", "failed", "deferred"]
    items: tuple[Item, ...] = ()
    error: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    retry_after_seconds: float | None = None
    min_interval_seconds: float | None = None
    detected_kind: SourceKind | None = None
    seen_links: tuple[str, ...] = field(default=())
    seen_versions: tuple[SeenVersion, ...] = field(default=())
