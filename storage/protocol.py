"""What the use-cases (crawl, deliver, backfill, housekeeping) need from storage.

A `typing.Protocol`, so that the use-cases depend on this and not on
SQLAlchemy: `storage.repository.SqlStore` is the real thing (SQLite and
PostgreSQL), `storage.memory.MemoryStore` an in-memory fake for fast
use-case tests. tests/unit/test_store_contract.py runs the same scenarios
against both, so the fake cannot drift from the database.

Invariants every implementation keeps:
- `transaction()` is one unit of work: everything written inside it is
  committed together when the block ends, or nothing is (any exception rolls
  it back). The crawl relies on this: a source's items, matches, outbox rows
  and fetch state are written in ONE transaction.
- records that cross this boundary are frozen dataclasses (the existing
  records of crawler.crawl_records, alerts.alert_records, storage.outbox and
  storage.watchlists); no ORM row and no SQLAlchemy error ever leaves it.
- errors are `StorageError`s: `DatabaseUnavailable` when the database cannot
  be reached (an outage: retry later), `DataRefused` when it refused this
  data (a constraint, a value the driver cannot encode: skip that source).
- identity lives in the store: items by canonical URL, matches by (item,
  watchlist), alerts by (item, watchlist, recipient); writing any of them
  twice creates nothing twice, and the return values say what was new.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, time, timedelta
from typing import Protocol

from alerts.alert_records import StoryContext, Watchlist, WatchlistMatch
from crawler.crawl_records import (
    Item,
    PollOutcome,
    SeenVersion,
    Source,
    SourceKind,
    StoredItem,
)
from storage.db import DatabaseRefused
from storage.outbox import BacklogCounts, ClaimedBatch, PendingSummary, RecipientRef
from storage.sources import HostQuota
from storage.stories import DecideBatch, StoredMember, Vectors, Warm
from storage.watchlists import ActiveWatchlist

__all__ = [
    "ActiveWatchlist",
    "BacklogCounts",
    "ClaimedBatch",
    "DataRefused",
    "RecipientRef",
    "Store",
    "StoreTransaction",
]


# The database refused this data (the rest of the work is fine): one class
# with storage.db's, so the use-cases catch one error whatever raised it.
DataRefused = DatabaseRefused


class StoreTransaction(Protocol):
    """The operations of one unit of work (see `Store.transaction`)."""

    # -- sources: claiming, fetch state, page links (the crawl use-case)
    def source_names(self) -> set[str]: ...

    def claim_due_sources(
        self,
        *,
        now: datetime,
        owner: str,
        lease: timedelta,
        limit: int,
        names: Sequence[str] | None = None,
        due_only: bool = True,
        hosts: HostQuota | None = None,
        free_dead: bool = True,
    ) -> list[Source]:
        """Lease up to `limit` enabled sources whose lease is free (and that
        are due, when `due_only`), the earliest next poll first; with `hosts`,
        no host beyond its quota (storage.sources.pick_per_host). With
        `free_dead`, leases of provably dead owners are freed first (a claimer
        that claims many times a second does it once per tick)."""
        ...

    def defer_poll(self, source_id: int, owner: str, *, next_poll_at: datetime) -> None:
        """Hand back `owner`'s lease on a source not tried (no request slot in
        time) and set its next poll; nothing else changes (no poll happened)."""
        ...

    def release_lease(self, source_id: int, owner: str) -> None:
        """Clear the lease if `owner` still holds it; else change nothing."""
        ...

    def renew_lease(self, source_id: int, owner: str, *, until: datetime) -> bool:
        """Set the lease's end to `until` if `owner` still holds it (expired or
        not: nobody else claimed it meanwhile); False, changing nothing, if not."""
        ...

    def record_poll(
        self,
        outcome: PollOutcome,
        *,
        now: datetime,
        next_poll_at: datetime,
        interval: int | None = None,
        owner: str | None = None,
    ) -> None:
        """Write a poll's result into the source's fetch state and clear its
        lease; nothing if another owner than `owner` holds the lease now (it
        claimed the source after ours ran out). `owner` None: not fenced."""
        ...

    def seen_links(self, source_id: int) -> frozenset[str]: ...

    def add_seen_links(self, source_id: int, links: Sequence[str], now: datetime) -> None: ...

    def seen_versions(self, source_id: int) -> dict[str, datetime | None]:
        """A sitemap source's url → lastmod memory (crawler.sitemaps)."""
        ...

    def add_seen_versions(
        self, source_id: int, pairs: Sequence[SeenVersion], now: datetime
    ) -> None:
        """Remember (url, lastmod); a URL already known takes the new lastmod."""
        ...

    def prune_seen_versions(self, *, before: datetime) -> int:
        """Forget sitemap URLs whose remembered lastmod is before `before` (undated
        ones and page links, whose version is NULL, stay); how many went."""
        ...

    # -- items
    def store_items(
        self, source_id: int, items: Sequence[Item], fetched_at: datetime
    ) -> dict[str, int]:
        """Insert the items new by canonical URL; {url: id} of the new ones only."""
        ...

    def prune_items(self, *, before: datetime) -> int:
        """Delete unmatched items fetched before `before`; how many went."""
        ...

    def index_search_pending(self, batch: int) -> int:
        """Index up to `batch` items not in the search index yet; how many."""
        ...

    # -- watchlists, matches and the outbox rows they owe
    def active_watchlists(self, names: Sequence[str] | None = None) -> list[ActiveWatchlist]: ...

    def get_watchlist(self, name: str) -> ActiveWatchlist:
        """Raises WatchlistNotFound (a StorageError)."""
        ...

    def watchlists_version(self) -> tuple[object, ...]:
        """Changes whenever a watchlist is saved or removed (recompile then)."""
        ...

    def record_matches(
        self,
        item_id: int,
        found: Sequence[tuple[ActiveWatchlist, WatchlistMatch]],
        now: datetime,
        *,
        daily_at: time = time(0, 0),
        alert: bool = True,
    ) -> int:
        """Store one item's matches and one pending outbox row per active
        recipient (due at the end of its digest period); how many matches were new.
        `alert=False`: the matches only, no outbox row (a first poll's old item).
        A match already stored gets the outbox rows it lacks (backfill reaches a
        first poll's old items); rows already owed are never written twice."""
        ...

    def count_matches(self, watchlist_id: int, item_ids: Collection[int]) -> int:
        """How many of these items already match this watchlist (backfill --dry-run)."""
        ...

    def count_matches_without_alerts(self, watchlist_id: int, item_ids: Collection[int]) -> int:
        """How many of these items match this watchlist with no outbox row at all
        (a first poll's old items): a backfill queues their alerts (--dry-run)."""
        ...

    def count_alerts(self, watchlist_id: int) -> int:
        """Outbox rows of a watchlist, whatever their status (backfill's report)."""
        ...

    # -- delivery (the deliver use-case)
    def pending_recipients(self) -> list[RecipientRef]: ...

    def note_waiting(self, recipient_ids: Collection[int], error: str) -> int: ...

    def claim_due_alerts(
        self,
        *,
        now: datetime,
        owner: str,
        lease: timedelta,
        limit: int,
        exclude_recipients: Collection[int] = (),
    ) -> list[ClaimedBatch]:
        """Lease due alerts to `owner`: up to `limit` single alerts (oldest
        first, none overtaking an earlier one of its recipient that is
        backing off or leased), and whole digests only."""
        ...

    def story_contexts(self, item_ids: Collection[int]) -> dict[int, StoryContext]:
        """{item id: its story as known now} for the items that have one: the
        other outlets' items (one per source and language, published order)
        and the English headline. Read at send time, for rendering."""
        ...

    def mark_sent(self, ids: Sequence[int], *, owner: str, now: datetime) -> int: ...

    def schedule_retry(
        self, ids: Sequence[int], *, owner: str, error: str, next_attempt_at: datetime
    ) -> int: ...

    def mark_failed(self, ids: Sequence[int], *, owner: str, error: str) -> int: ...

    def release_alerts(self, ids: Sequence[int], *, owner: str) -> int:
        """Give claimed alerts back untouched; how many this owner held."""
        ...

    def postpone(
        self, ids: Sequence[int], *, owner: str, note: str, next_attempt_at: datetime
    ) -> int:
        """The peer asked us to wait (Retry-After): due again then, no attempt counted."""
        ...

    def next_due_after(
        self, *, now: datetime, exclude_recipients: Collection[int] = ()
    ) -> datetime | None:
        """The earliest time after `now` a pending alert not held by a deliverer falls due."""
        ...

    def pending_summary(self, *, now: datetime, owner_prefix: str) -> PendingSummary:
        """Pending alerts after a run: those another process holds (lease
        tokens not starting with `owner_prefix`) and the rest."""
        ...

    def backlog(self, *, now: datetime) -> BacklogCounts: ...

    # -- administration (the CLI, and test set-up)
    def add_source(
        self,
        *,
        name: str,
        url: str,
        kind: SourceKind | None,
        every_seconds: int,
        links_css: str | None,
        now: datetime,
        spider: str | None = None,
        alert_backlog: bool = False,
    ) -> Source: ...

    def save_watchlists(self, watchlists: Sequence[Watchlist], now: datetime) -> int:
        """Create or replace each watchlist, matched by name (ids stay stable);
        cancel the undelivered alerts of recipients no longer in it (how many)."""
        ...

    def remove_watchlist(self, name: str, now: datetime) -> int:
        """Stop matching `name`; cancel its undelivered alerts (how many)."""
        ...

    # -- stories (storage.stories; the decision itself is the use-case's)
    def known_urls(self, urls: Sequence[str]) -> set[str]:
        """The URLs among `urls` already stored (so that only new items are encoded)."""
        ...

    def save_story_vectors(
        self, vectors: Sequence[tuple[int, Vectors]], *, encoder: tuple[str, str]
    ) -> None:
        """Store (item id, vector) of encoder (name, version), replacing older ones."""
        ...

    def assign_stories(
        self,
        item_ids: Sequence[int],
        decide: DecideBatch,
        *,
        window: timedelta,
        now: datetime,
        encoder: tuple[str, str],
        warm: Warm | None = None,
        known: Mapping[int, StoredMember] | None = None,
    ) -> dict[int, int]:
        """Under the assignment lock (held to the commit): give each item without a
        story one, as `decide(items, candidates)` chooses; {item id: story id}.
        `warm(reader)`, where the store can, runs before the lock takes
        (storage.stories.assign_batch). `known`: some of the items as the
        caller read them before (`items_without_story`); the store may take
        their texts from there (they never change) and read under the lock
        only what can change (vector, concepts): `decide` gets the same items."""
        ...

    def unassigned_item_ids(
        self,
        limit: int,
        *,
        since: datetime | None = None,
        fetched_since: datetime | None = None,
    ) -> list[int]:
        """Ids of up to `limit` items without a story, oldest (published, id) first."""
        ...

    def items_without_story(
        self,
        batch: int,
        *,
        since: datetime | None = None,
        encoder: tuple[str, str] | None = None,
        ids: Sequence[int] | None = None,
        fetched_since: datetime | None = None,
    ) -> list[StoredMember]:
        """Up to `batch` items without a story, oldest (published, id) first;
        `since` bounds their published time, `fetched_since` when they were stored."""
        ...


class Store(Protocol):
    """Where the use-cases keep their state."""

    def transaction(self) -> AbstractContextManager[StoreTransaction]:
        """One unit of work: commit when the block ends, roll back on any exception."""
        ...

    def exclusive(self, name: str, *, wait: bool) -> AbstractContextManager[bool]:
        """Whether this process alone may run section `name` (e.g. "story_drain")
        until the block ends, across every process on the database; with
        `wait=False`, False at once when another holds it."""
        ...

    def items_since(
        self, since: datetime | None, *, batch: int = 500
    ) -> Iterator[list[StoredItem]]:
        """Stored items oldest first, in batches (keyset pagination: a backfill
        over millions of items never holds them all)."""
        ...

    def text_bytes_since(self, since: datetime | None) -> int:
        """UTF-8 bytes of the title, summary and body of the items that
        `items_since(since)` yields (a backfill chooses its automaton by it)."""
        ...
