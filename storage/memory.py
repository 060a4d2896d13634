"""`MemoryStore`: an in-memory `storage.protocol.Store` for fast use-case tests.

It keeps the same rows as the database (sources, page links, items,
watchlists and recipients, matches, outbox) in dicts and applies the same
rules as the SQL in storage/*.py: identity by unique key, leases, the order
in which alerts are claimed, whole digests, owner-guarded outcomes.
tests/unit/test_store_contract.py runs one set of scenarios against this
and against `SqlStore` on SQLite and PostgreSQL, so the two cannot drift.

A transaction works on a deep copy of the tables and replaces them only
when its block ends without an exception: all or nothing, like the
database. It is single-threaded (no lock waits, no SKIP LOCKED): concurrency
between replicas stays proven by the PostgreSQL suites.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from alerts.address_keys import recipient_key
from alerts.alert_records import (
    AlsoReported,
    Query,
    Recipient,
    Rule,
    StoredMatch,
    StoryContext,
    Term,
    Watchlist,
    WatchlistMatch,
)
from alerts.digests import digest_period
from crawler.crawl_records import (
    Item,
    PollOutcome,
    SeenVersion,
    Source,
    SourceKind,
    StoredItem,
)
from storage.alert_groups import GroupRow, plan
from storage.cancellations import CANCELLED, RECIPIENT_REMOVED, UNDELIVERED, WATCHLIST_REMOVED
from storage.outbox import (
    STATUSES,
    BacklogCounts,
    ClaimedAlert,
    ClaimedBatch,
    PendingSummary,
    RecipientRef,
)
from storage.protocol import Store
from storage.sources import HostQuota, SourceExists, pick_per_host
from storage.stories import (
    DecideBatch,
    StoredMember,
    StoryHead,
    StoryStorageError,
    Vectors,
    Warm,
)
from storage.story_context import build_context
from storage.watchlists import ActiveWatchlist, WatchlistNotFound


@dataclass
class _SourceRow:
    record: Source  # everything but the lease
    lease_owner: str | None = None
    lease_until: datetime | None = None


@dataclass
class _ItemRow:
    id: int
    source_id: int
    item: Item
    fetched_at: datetime
    story_id: int | None = None


@dataclass
class _RecipientRow:
    id: int
    watchlist_id: int
    recipient: Recipient
    position: int
    active: bool = True


@dataclass
class _WatchlistRow:
    id: int
    watchlist: Watchlist  # its `notify` is rebuilt from the active recipients
    created_at: datetime
    updated_at: datetime
    removed_at: datetime | None = None


@dataclass
class _MatchRow:
    id: int
    item_id: int
    watchlist_id: int
    terms: list[str]
    hits: list[dict[str, Any]]
    snippets: list[str]
    matched_at: datetime


@dataclass
class _OutboxRow:
    id: int
    match_id: int
    item_id: int
    watchlist_id: int
    recipient_id: int
    next_attempt_at: datetime
    created_at: datetime
    digest_period: str | None
    status: str = "pending"
    attempts: int = 0
    lease_owner: str | None = None
    lease_until: datetime | None = None
    last_error: str | None = None
    sent_at: datetime | None = None
    story_id: int | None = None  # set only under `stories: fold`
    address_key: str | None = None  # immediate rows: alerts.address_keys
    folded_into: int | None = None


@dataclass
class _StoryRow:
    id: int
    first_seen: datetime
    last_seen: datetime
    title: str
    en_title: str | None = None


@dataclass
class _Tables:
    sources: dict[int, _SourceRow] = field(default_factory=dict)
    page_links: dict[tuple[int, str], datetime] = field(default_factory=dict)
    link_versions: dict[tuple[int, str], datetime | None] = field(default_factory=dict)
    items: dict[int, _ItemRow] = field(default_factory=dict)
    item_ids: dict[str, int] = field(default_factory=dict)  # unique: canonical URL
    watchlists: dict[int, _WatchlistRow] = field(default_factory=dict)
    recipients: dict[int, _RecipientRow] = field(default_factory=dict)
    matches: dict[int, _MatchRow] = field(default_factory=dict)
    match_ids: dict[tuple[int, int], int] = field(default_factory=dict)  # (item, watchlist)
    outbox: dict[int, _OutboxRow] = field(default_factory=dict)
    outbox_keys: set[tuple[int, int, int]] = field(default_factory=set)  # (item, wl, recipient)
    fold_keys: set[tuple[int, int, int]] = field(default_factory=set)  # (story, wl, recipient)
    stories: dict[int, _StoryRow] = field(default_factory=dict)
    last_id: dict[str, int] = field(default_factory=dict)
    vectors: dict[int, tuple[tuple[str, str], Vectors]] = field(default_factory=dict)

    def next_id(self, table: str) -> int:
        self.last_id[table] = self.last_id.get(table, 0) + 1
        return self.last_id[table]


def _lease_free(lease_until: datetime | None, now: datetime) -> bool:
    return lease_until is None or lease_until < now


class _MemoryStories:
    """The stories part of MemoryTransaction (storage.stories' rules, in dicts)."""

    _t: _Tables

    def known_urls(self, urls: Sequence[str]) -> set[str]:
        return {u for u in urls if u in self._t.item_ids}

    def save_story_vectors(
        self, vectors: Sequence[tuple[int, Vectors]], *, encoder: tuple[str, str]
    ) -> None:
        for item_id, v in vectors:
            self._t.vectors[item_id] = (encoder, v.astype("<f2").astype("float32"))

    def _member(self, item_id: int, encoder: tuple[str, str] | None) -> StoredMember:
        row = self._t.items[item_id]
        names = {w.id: w.watchlist.name for w in self._t.watchlists.values()}
        concepts = frozenset(
            f"{names[m.watchlist_id]}/{term}"
            for m in self._t.matches.values()
            if m.item_id == item_id
            for term in m.terms
        )
        stored = self._t.vectors.get(item_id)
        vector = stored[1] if stored is not None and stored[0] == encoder else None
        it = row.item
        return StoredMember(
            item_id, row.story_id, it.title, it.summary, it.text,
            it.language, it.published, vector, concepts,
        )  # fmt: skip

    def unassigned_item_ids(
        self,
        limit: int,
        *,
        since: datetime | None = None,
        fetched_since: datetime | None = None,
    ) -> list[int]:
        return [
            m.item_id
            for m in self.items_without_story(limit, since=since, fetched_since=fetched_since)
        ]

    def items_without_story(
        self,
        batch: int,
        *,
        since: datetime | None = None,
        encoder: tuple[str, str] | None = None,
        ids: Sequence[int] | None = None,
        fetched_since: datetime | None = None,
    ) -> list[StoredMember]:
        rows = sorted(
            (
                r
                for r in self._t.items.values()
                if r.story_id is None
                and (ids is None or r.id in ids)
                and (since is None or r.item.published >= since)
                and (fetched_since is None or r.fetched_at >= fetched_since)
            ),
            key=lambda r: (r.item.published, r.id),
        )[:batch]
        return [self._member(r.id, encoder) for r in rows]

    def _heads(self, since: datetime, until: datetime) -> list[StoryHead]:
        counts: dict[int, int] = {}
        for r in self._t.items.values():
            if r.story_id is not None:
                counts[r.story_id] = counts.get(r.story_id, 0) + 1
        return [
            StoryHead(story.id, story.first_seen, counts.get(story.id, 0))
            for story in sorted(self._t.stories.values(), key=lambda s: s.id)
            if since <= story.first_seen <= until
        ]

    def _story_members(
        self, story_ids: Sequence[int], encoder: tuple[str, str]
    ) -> dict[int, list[StoredMember]]:
        wanted = set(story_ids)
        out: dict[int, list[StoredMember]] = {}
        for i, r in self._t.items.items():
            if r.story_id in wanted:
                out.setdefault(r.story_id, []).append(self._member(i, encoder))
        for members in out.values():
            members.sort(key=lambda m: (m.published, m.item_id))
        return out

    def assign_stories(
        self,
        item_ids: Sequence[int],
        decide: DecideBatch,
        *,
        window: timedelta,
        now: datetime,
        encoder: tuple[str, str],
        warm: Warm | None = None,  # one process: nothing to load before the lock
        known: Mapping[int, StoredMember] | None = None,  # reading here costs nothing
    ) -> dict[int, int]:
        items = self.items_without_story(len(item_ids), encoder=encoder, ids=item_ids)
        if not items:
            return {}
        since = min(m.published for m in items) - window
        until = max(m.published for m in items) + window
        heads = self._heads(since, until)
        t = self._t

        class Reader:
            def heads(_self) -> list[StoryHead]:
                return heads

            def window(_self) -> tuple[datetime, datetime]:
                return since, until

            def heads_between(_self, a: datetime, b: datetime) -> list[StoryHead]:
                return self._heads(a, b)

            def changes(_self, after: int) -> list[StoryHead]:
                # No assignment numbers in the fake: every story counts as changed
                # (a cache compares heads and reloads only those that differ).
                return self._heads(
                    datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
                )

            def number(_self) -> int:
                return 0

            def members(_self, story_ids: Sequence[int]) -> dict[int, list[StoredMember]]:
                return self._story_members(story_ids, encoder)

            def member_keys(
                _self, story_ids: Sequence[int]
            ) -> dict[int, list[tuple[datetime, int]]]:
                wanted = set(story_ids)
                out: dict[int, list[tuple[datetime, int]]] = {}
                for i, r in t.items.items():
                    if r.story_id in wanted:
                        out.setdefault(r.story_id, []).append((r.item.published, i))
                return {sid: sorted(rows) for sid, rows in out.items()}

            def members_of(_self, item_ids: Sequence[int]) -> list[StoredMember]:
                found = [self._member(i, encoder) for i in item_ids if i in t.items]
                return sorted(found, key=lambda m: (m.published, m.item_id))

            def concepts_of(_self, item_ids: Sequence[int]) -> dict[int, frozenset[str]]:
                found = {i: self._member(i, encoder).concepts for i in item_ids if i in t.items}
                return {i: c for i, c in found.items() if c}

            def stories_of(_self, ids: Sequence[int]) -> dict[int, int | None]:
                return {i: (t.items[i].story_id if i in t.items else None) for i in ids}

        choices = decide(items, Reader())
        listed = {h.story_id for h in heads}
        created: dict[int, int] = {}
        out: dict[int, int] = {}
        for item, choice in zip(items, choices, strict=True):
            if choice < 0 and choice not in created:
                sid = created[choice] = self._t.next_id("stories")
                self._t.stories[sid] = _StoryRow(sid, item.published, item.published, item.title)
            else:
                sid = created[choice] if choice < 0 else choice
                if choice >= 0 and choice not in listed:
                    raise StoryStorageError(f"decide chose story {choice}, not a candidate")
                story = self._t.stories[sid]
                story.first_seen = min(story.first_seen, item.published)
                story.last_seen = max(story.last_seen, item.published)
            self._t.items[item.item_id].story_id = out[item.item_id] = sid
            lang = (item.language or "").split("-")[0].lower()
            if self._t.stories[sid].en_title is None and lang == "en":
                self._t.stories[sid].en_title = item.title
        return out


class MemoryTransaction(_MemoryStories):
    """The protocol's operations on one copy of the tables."""

    def __init__(self, tables: _Tables) -> None:
        self._t = tables

    # -- sources
    def source_names(self) -> set[str]:
        return {r.record.name for r in self._t.sources.values()}

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
        def takeable(r: _SourceRow) -> bool:
            s = r.record
            due = s.next_poll_at is None or s.next_poll_at <= now
            named = not names or s.name in names
            fed_from_outside = s.kind == "spider" and not s.spider
            if fed_from_outside or not s.enabled:
                return False
            return _lease_free(r.lease_until, now) and named and (due or not due_only)

        def order(r: _SourceRow) -> tuple[bool, datetime | None, int]:
            at = r.record.next_poll_at
            return (at is not None, at, r.record.id)  # NULL first, as SQLite sorts it

        rows = sorted(filter(takeable, self._t.sources.values()), key=order)
        if hosts is not None:
            picked = set(
                pick_per_host(
                    ((r.record.id, r.record.url, r.record.kind) for r in rows), hosts, limit
                )
            )
            rows = [r for r in rows if r.record.id in picked]
        rows = rows[:limit]
        for r in rows:
            r.lease_owner, r.lease_until = owner, now + lease
        return [r.record for r in rows]

    def release_lease(self, source_id: int, owner: str) -> None:
        row = self._t.sources.get(source_id)
        if row is not None and row.lease_owner == owner:
            row.lease_owner = row.lease_until = None

    def renew_lease(self, source_id: int, owner: str, *, until: datetime) -> bool:
        row = self._t.sources.get(source_id)
        if row is None or row.lease_owner != owner:
            return False
        row.lease_until = until
        return True

    def defer_poll(self, source_id: int, owner: str, *, next_poll_at: datetime) -> None:
        row = self._t.sources.get(source_id)
        if row is not None and row.lease_owner == owner:
            row.lease_owner = row.lease_until = None
            row.record = replace(row.record, next_poll_at=next_poll_at)

    def record_poll(
        self,
        outcome: PollOutcome,
        *,
        now: datetime,
        next_poll_at: datetime,
        interval: int | None = None,
        owner: str | None = None,
    ) -> None:
        row = self._t.sources.get(outcome.source_id)
        if row is None:
            return
        if owner is not None and row.lease_owner not in (None, owner):
            return  # another owner claimed it since: the fence of RECORD_POLL
        s = replace(
            row.record,
            last_polled_at=now,
            next_poll_at=next_poll_at,
            current_interval_seconds=interval,
        )
        if outcome.status == "failed":
            s = replace(
                s, last_error=outcome.error, consecutive_failures=s.consecutive_failures + 1
            )
        else:
            s = replace(
                s,
                last_success_at=now,
                last_error=None,
                consecutive_failures=0,
                baseline_pending=False,
            )
            if outcome.status == "ok":
                s = replace(
                    s,
                    etag=outcome.etag,
                    last_modified=outcome.last_modified,
                    body_hash=outcome.body_hash,
                )
            if outcome.detected_kind is not None:
                s = replace(s, kind=outcome.detected_kind)
        row.record, row.lease_owner, row.lease_until = s, None, None

    def seen_links(self, source_id: int) -> frozenset[str]:
        return frozenset(url for sid, url in self._t.page_links if sid == source_id)

    def add_seen_links(self, source_id: int, links: Sequence[str], now: datetime) -> None:
        for url in links:
            self._t.page_links.setdefault((source_id, url), now)

    def seen_versions(self, source_id: int) -> dict[str, datetime | None]:
        return {
            url: self._t.link_versions.get((sid, url))
            for sid, url in self._t.page_links
            if sid == source_id
        }

    def add_seen_versions(
        self, source_id: int, pairs: Sequence[SeenVersion], now: datetime
    ) -> None:
        for url, version in pairs:
            self._t.page_links.setdefault((source_id, url), now)
            self._t.link_versions[(source_id, url)] = version

    def prune_seen_versions(self, *, before: datetime) -> int:
        old = [k for k, v in self._t.link_versions.items() if v is not None and v < before]
        for key in old:
            del self._t.link_versions[key]
            self._t.page_links.pop(key, None)
        return len(old)

    # -- items
    def store_items(
        self, source_id: int, items: Sequence[Item], fetched_at: datetime
    ) -> dict[str, int]:
        new: dict[str, int] = {}
        for it in {it.url: it for it in items}.values():
            if it.url in self._t.item_ids:
                continue
            item_id = self._t.next_id("items")
            self._t.items[item_id] = _ItemRow(item_id, source_id, it, fetched_at)
            self._t.item_ids[it.url] = new[it.url] = item_id
        return new

    def index_search_pending(self, batch: int) -> int:
        return 0  # no search index in memory: `newswatch search` needs a database

    def prune_items(self, *, before: datetime) -> int:
        matched = {m.item_id for m in self._t.matches.values()}
        gone = [r for r in self._t.items.values() if r.fetched_at < before and r.id not in matched]
        for r in gone:
            del self._t.items[r.id]
            del self._t.item_ids[r.item.url]
            self._t.vectors.pop(r.id, None)
        return len(gone)

    # -- watchlists and matches
    def _active(self, row: _WatchlistRow) -> ActiveWatchlist:
        recipients = sorted(
            (r for r in self._t.recipients.values() if r.watchlist_id == row.id and r.active),
            key=lambda r: r.position,
        )
        pairs = tuple((r.id, r.recipient) for r in recipients)
        wl = replace(row.watchlist, notify=tuple(rec for _, rec in pairs))
        return ActiveWatchlist(row.id, wl, pairs)

    def active_watchlists(self, names: Sequence[str] | None = None) -> list[ActiveWatchlist]:
        rows = [
            r
            for r in self._t.watchlists.values()
            if r.removed_at is None and (names is None or r.watchlist.name in names)
        ]
        return [self._active(r) for r in sorted(rows, key=lambda r: r.watchlist.name)]

    def get_watchlist(self, name: str) -> ActiveWatchlist:
        found = self.active_watchlists([name])
        if not found:
            raise WatchlistNotFound(f"no watchlist named {name!r}")
        return found[0]

    def watchlists_version(self) -> tuple[object, ...]:
        rows = self._t.watchlists.values()
        removed = [r.removed_at for r in rows if r.removed_at is not None]
        return (
            len(rows),
            max((r.updated_at for r in rows), default=None),
            max(removed, default=None),
        )

    def record_matches(
        self,
        item_id: int,
        found: Sequence[tuple[ActiveWatchlist, WatchlistMatch]],
        now: datetime,
        *,
        daily_at: time = time(0, 0),
        alert: bool = True,
    ) -> int:
        new = 0
        for active, match in found:
            known = self._t.match_ids.get((item_id, active.id))
            if known is not None:
                if not alert:
                    continue
                match_id = known  # matched before, maybe without alerts: owe them now
            else:
                match_id = self._t.next_id("matches")
                self._t.matches[match_id] = _MatchRow(
                    match_id,
                    item_id,
                    active.id,
                    list(match.terms),
                    [asdict(h) for h in match.hits[:50]],
                    list(match.snippets),
                    now,
                )
                self._t.match_ids[(item_id, active.id)] = match_id
                new += 1
            period, due = digest_period(active.watchlist.digest, now, daily_at)
            story = self._t.items[item_id].story_id if active.watchlist.stories == "fold" else None
            for rid, recipient in active.recipient_ids if alert else ():
                key = (item_id, active.id, rid)
                fold = None if story is None else (story, active.id, rid)
                if key in self._t.outbox_keys or fold in self._t.fold_keys:
                    continue
                oid = self._t.next_id("outbox")
                self._t.outbox[oid] = _OutboxRow(
                    oid,
                    match_id,
                    item_id,
                    active.id,
                    rid,
                    due,
                    now,
                    period,
                    story_id=story,
                    address_key=recipient_key(recipient),
                )
                self._t.outbox_keys.add(key)
                if fold is not None:
                    self._t.fold_keys.add(fold)
        return new

    def story_contexts(self, item_ids: Collection[int]) -> dict[int, StoryContext]:
        t = self._t
        out: dict[int, StoryContext] = {}
        for item_id in set(item_ids):
            row = t.items.get(item_id)
            if row is None or row.story_id is None:
                continue
            story = t.stories[row.story_id]
            members = sorted(
                (r for r in t.items.values() if r.story_id == story.id),
                key=lambda r: (r.item.published, r.id),
            )
            pairs = [
                (
                    r.id,
                    AlsoReported(
                        t.sources[r.source_id].record.name,
                        r.item.language,
                        r.item.title,
                        r.item.url,
                    ),
                )
                for r in members
            ]
            out[item_id] = build_context(story.id, story.title, story.en_title, item_id, pairs)
        return out

    def count_matches(self, watchlist_id: int, item_ids: Collection[int]) -> int:
        wanted = set(item_ids)
        return sum(
            1
            for m in self._t.matches.values()
            if m.watchlist_id == watchlist_id and m.item_id in wanted
        )

    def count_matches_without_alerts(self, watchlist_id: int, item_ids: Collection[int]) -> int:
        wanted = set(item_ids)
        owed = {o.match_id for o in self._t.outbox.values()}
        return sum(
            1
            for m in self._t.matches.values()
            if m.watchlist_id == watchlist_id and m.item_id in wanted and m.id not in owed
        )

    def count_alerts(self, watchlist_id: int) -> int:
        return sum(1 for o in self._t.outbox.values() if o.watchlist_id == watchlist_id)

    # -- delivery
    def _ref(self, rid: int) -> RecipientRef:
        r = self._t.recipients[rid]
        rec = r.recipient
        return RecipientRef(r.id, r.watchlist_id, rec.channel, rec.target, rec.secret)

    def pending_recipients(self) -> list[RecipientRef]:
        owed = {o.recipient_id for o in self._t.outbox.values() if o.status == "pending"}
        return [self._ref(rid) for rid in sorted(owed)]

    def note_waiting(self, recipient_ids: Collection[int], error: str) -> int:
        mine = [
            o
            for o in self._t.outbox.values()
            if o.status == "pending" and o.recipient_id in set(recipient_ids)
        ]
        for o in mine:
            o.last_error = error
        return len(mine)

    def claim_due_alerts(
        self,
        *,
        now: datetime,
        owner: str,
        lease: timedelta,
        limit: int,
        exclude_recipients: Collection[int] = (),
    ) -> list[ClaimedBatch]:
        self._cancel_orphans()
        excluded = set(exclude_recipients)
        due = [
            o
            for o in self._t.outbox.values()
            if o.status == "pending" and o.next_attempt_at <= now and o.recipient_id not in excluded
        ]
        singles = [
            o
            for o in due
            if o.digest_period is None
            and _lease_free(o.lease_until, now)
            and not self._waits_behind(o, now)
            and not self._waits_for_its_group(o, now)
        ]
        for o in sorted(singles, key=lambda o: (o.created_at, o.id))[:limit]:
            o.lease_owner, o.lease_until = owner, now + lease
        leaders = self._group_singles(now, owner, lease)
        self._claim_digests(due, now, owner, lease, limit // 10 + 1)
        mine = [
            o for o in self._t.outbox.values() if o.lease_owner == owner and o.status == "pending"
        ]
        return self._batches(sorted(mine, key=lambda o: (o.created_at, o.id)), leaders)

    def _cancel_orphans(self) -> int:
        """See storage.cancellations.cancel_orphans."""
        n = 0
        for r in self._t.recipients.values():
            if self._t.watchlists[r.watchlist_id].removed_at is not None:
                n += self._cancel({r.id}, WATCHLIST_REMOVED)
            elif not r.active:
                n += self._cancel({r.id}, RECIPIENT_REMOVED)
        return n

    def _cancel(self, recipient_ids: Collection[int], reason: str) -> int:
        mine = [
            o
            for o in self._t.outbox.values()
            if o.recipient_id in recipient_ids and o.status in UNDELIVERED
        ]
        for o in mine:
            o.status, o.last_error, o.lease_owner, o.lease_until = CANCELLED, reason, None, None
        return len(mine)

    def _group_singles(self, now: datetime, owner: str, lease: timedelta) -> dict[int, int]:
        """See storage.outbox._group_singles (the same plan, storage.alert_groups)."""
        rows = [
            GroupRow(
                o.id,
                o.address_key,
                o.item_id,
                o.story_id,
                o.status,
                o.lease_owner,
                o.lease_until,
                o.next_attempt_at,
                o.created_at,
                o.folded_into,
            )
            for o in self._t.outbox.values()
            if o.digest_period is None
            and o.address_key is not None
            and o.status in ("pending", "sent")
        ]
        decided = plan(rows, owner=owner, now=now)
        for i, into in decided.fold.items():
            o = self._t.outbox[i]
            o.status, o.sent_at, o.folded_into, o.last_error = "sent", now, into, None
            o.lease_owner = o.lease_until = None
        self._finish(decided.release, owner)
        for i in decided.take:
            o = self._t.outbox[i]
            if o.status == "pending" and _lease_free(o.lease_until, now):
                o.lease_owner, o.lease_until = owner, now + lease
        return decided.leader

    def _waits_for_its_group(self, row: _OutboxRow, now: datetime) -> bool:
        """See storage.outbox._waits_for_its_group."""
        return row.address_key is not None and any(
            e.address_key == row.address_key
            and e.item_id == row.item_id
            and e.id != row.id
            and e.status == "pending"
            and e.digest_period is None
            and (e.next_attempt_at > now or (e.lease_until is not None and e.lease_until >= now))
            for e in self._t.outbox.values()
        )

    def _waits_behind(self, row: _OutboxRow, now: datetime) -> bool:
        """See storage.outbox._waits_behind: an earlier single alert to the same
        recipient, pending and not takeable now, holds this one back."""
        return any(
            e.recipient_id == row.recipient_id
            and e.status == "pending"
            and e.digest_period is None
            and (e.created_at, e.id) < (row.created_at, row.id)
            and (e.next_attempt_at > now or (e.lease_until is not None and e.lease_until >= now))
            for e in self._t.outbox.values()
        )

    def _claim_digests(
        self, due: list[_OutboxRow], now: datetime, owner: str, lease: timedelta, groups: int
    ) -> None:
        by_key: dict[tuple[object, ...], list[_OutboxRow]] = {}
        for o in due:
            if o.digest_period is not None:
                by_key.setdefault(_digest_key(o), []).append(o)
        free_keys = [
            k for k, rows in by_key.items() if any(_lease_free(o.lease_until, now) for o in rows)
        ]
        free_keys.sort(key=lambda k: min(o.created_at for o in by_key[k]))
        for key in free_keys[:groups]:
            rows = by_key[key]
            if all(_lease_free(o.lease_until, now) for o in rows):  # the whole digest or nothing
                for o in rows:
                    o.lease_owner, o.lease_until = owner, now + lease

    def _batches(
        self, rows: list[_OutboxRow], leaders: dict[int, int] | None = None
    ) -> list[ClaimedBatch]:
        batches: dict[tuple[Any, ...], ClaimedBatch] = {}
        for o in rows:
            m = self._t.matches[o.match_id]
            wl_name = self._t.watchlists[o.watchlist_id].watchlist.name
            alert = ClaimedAlert(o.id, o.attempts, self._stored_match(m, wl_name), _spellings(m))
            key = ((leaders or {}).get(o.id, o.id),) if o.digest_period is None else _digest_key(o)
            batch = batches.get(key)
            if batch is None:
                ref = self._ref(o.recipient_id)
                batches[key] = ClaimedBatch(ref, o.watchlist_id, wl_name, o.digest_period, (alert,))
            else:
                batches[key] = replace(batch, alerts=(*batch.alerts, alert))
        return list(batches.values())

    def _stored_match(self, m: _MatchRow, watchlist: str) -> StoredMatch:
        row = self._t.items[m.item_id]
        return StoredMatch(
            id=m.id,
            watchlist=watchlist,
            terms=tuple(m.terms),
            snippets=tuple(m.snippets),
            matched_at=m.matched_at,
            item_id=row.id,
            item_url=row.item.url,
            item_title=row.item.title,
            source_name=self._t.sources[row.source_id].record.name,
            published=row.item.published,
            language=row.item.language,
            story_id=row.story_id,
        )

    def _finish(self, ids: Sequence[int], owner: str, **values: Any) -> int:
        """Apply an outcome to rows this owner still holds; how many it held."""
        held = [
            o
            for i in dict.fromkeys(ids)
            if (o := self._t.outbox.get(i)) is not None
            and o.lease_owner == owner
            and o.status == "pending"
        ]
        for o in held:
            o.lease_owner = o.lease_until = None
            for name, value in values.items():
                setattr(o, name, value(o) if callable(value) else value)
        return len(held)

    def mark_sent(self, ids: Sequence[int], *, owner: str, now: datetime) -> int:
        return self._finish(
            ids, owner, status="sent", sent_at=now, last_error=None, attempts=_plus_one
        )

    def schedule_retry(
        self, ids: Sequence[int], *, owner: str, error: str, next_attempt_at: datetime
    ) -> int:
        return self._finish(
            ids, owner, attempts=_plus_one, next_attempt_at=next_attempt_at, last_error=error
        )

    def mark_failed(self, ids: Sequence[int], *, owner: str, error: str) -> int:
        return self._finish(ids, owner, status="failed", attempts=_plus_one, last_error=error)

    def release_alerts(self, ids: Sequence[int], *, owner: str) -> int:
        return self._finish(ids, owner)

    def postpone(
        self, ids: Sequence[int], *, owner: str, note: str, next_attempt_at: datetime
    ) -> int:
        return self._finish(ids, owner, next_attempt_at=next_attempt_at, last_error=note)

    def next_due_after(
        self, *, now: datetime, exclude_recipients: Collection[int] = ()
    ) -> datetime | None:
        times = [
            o.next_attempt_at
            for o in self._t.outbox.values()
            if o.status == "pending"
            and o.next_attempt_at > now
            and _lease_free(o.lease_until, now)
            and o.recipient_id not in exclude_recipients
        ]
        return min(times, default=None)

    def pending_summary(self, *, now: datetime, owner_prefix: str) -> PendingSummary:
        def held(o: _OutboxRow) -> bool:
            return (
                o.lease_owner is not None
                and o.lease_until is not None
                and o.lease_until >= now
                and not o.lease_owner.startswith(owner_prefix)
            )

        pending = [o for o in self._t.outbox.values() if o.status == "pending"]
        mine = [o for o in pending if not held(o)]
        theirs = [o for o in pending if held(o)]
        return PendingSummary(
            len(mine),
            min((o.next_attempt_at for o in mine), default=None),
            len(theirs),
            max((o.lease_until for o in theirs if o.lease_until is not None), default=None),
        )

    def backlog(self, *, now: datetime) -> BacklogCounts:
        counts = dict.fromkeys(STATUSES, 0)
        for o in self._t.outbox.values():
            counts[o.status] += 1
        due = sum(
            1 for o in self._t.outbox.values() if o.status == "pending" and o.next_attempt_at <= now
        )
        return BacklogCounts(
            counts["pending"], due, counts["sent"], counts["failed"], counts["cancelled"]
        )

    # -- administration
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
    ) -> Source:
        if name in self.source_names():
            raise SourceExists(f"a source named {name!r} already exists")
        sid = self._t.next_id("sources")
        record = Source(
            id=sid,
            name=name,
            url=url,
            kind=kind,
            spider=spider,
            every_seconds=every_seconds,
            links_css=links_css,
            next_poll_at=now,
            baseline_pending=not alert_backlog,
        )
        self._t.sources[sid] = _SourceRow(record)
        return record

    def save_watchlists(self, watchlists: Sequence[Watchlist], now: datetime) -> int:
        cancelled = 0
        by_name = {r.watchlist.name: r for r in self._t.watchlists.values()}
        for wl in watchlists:
            row = by_name.get(wl.name)
            if row is None:
                row = _WatchlistRow(self._t.next_id("watchlists"), wl, now, now)
                self._t.watchlists[row.id] = by_name[wl.name] = row
            row.watchlist = replace(wl, rules=tuple(_stored_rule(r) for r in wl.rules))
            row.updated_at, row.removed_at = now, None
            cancelled += self._sync_recipients(row.id, wl.notify)
        return cancelled

    def _sync_recipients(self, watchlist_id: int, notify: Sequence[Recipient]) -> int:
        existing = {
            (r.recipient.channel, r.recipient.target): r
            for r in self._t.recipients.values()
            if r.watchlist_id == watchlist_id
        }
        for r in existing.values():
            r.active = False
        for pos, rec in enumerate(notify):
            row = existing.get((rec.channel, rec.target))
            if row is None:
                row = _RecipientRow(self._t.next_id("recipients"), watchlist_id, rec, pos)
                self._t.recipients[row.id] = existing[(rec.channel, rec.target)] = row
            row.recipient, row.position, row.active = rec, pos, True
        gone = {r.id for r in existing.values() if not r.active}
        return self._cancel(gone, RECIPIENT_REMOVED)

    def remove_watchlist(self, name: str, now: datetime) -> int:
        for row in self._t.watchlists.values():
            if row.watchlist.name == name and row.removed_at is None:
                row.removed_at = now
                mine = {r.id for r in self._t.recipients.values() if r.watchlist_id == row.id}
                return self._cancel(mine, WATCHLIST_REMOVED)
        raise WatchlistNotFound(f"no watchlist named {name!r}")


def _digest_key(o: _OutboxRow) -> tuple[object, ...]:
    """See storage.outbox: one digest per address and period, across watchlists."""
    if o.address_key is None:
        return ("recipient", o.watchlist_id, o.recipient_id, o.digest_period)
    return ("address", o.address_key, o.digest_period)


def _plus_one(row: _OutboxRow) -> int:
    return row.attempts + 1


def _spellings(m: _MatchRow) -> tuple[str, ...]:
    spellings = (h.get("spelling") for h in m.hits if isinstance(h, dict))
    return tuple(dict.fromkeys(s for s in spellings if isinstance(s, str) and s))


def _stored_rule(rule: Rule) -> Rule:
    """A rule as the database gives it back (aliases as a tuple)."""
    if isinstance(rule, Query):
        return Query(rule.query, rule.case_sensitive)
    return Term(rule.term, tuple(rule.aliases), rule.case_sensitive)


class MemoryStore:
    """The fake store: one process, no database, same answers."""

    def __init__(self) -> None:
        self._tables = _Tables()
        self._sections: dict[str, threading.Lock] = {}

    @contextmanager
    def transaction(self) -> Iterator[MemoryTransaction]:
        work = copy.deepcopy(self._tables)
        yield MemoryTransaction(work)
        self._tables = work  # reached only when the block raised nothing: commit

    @contextmanager
    def exclusive(self, name: str, *, wait: bool) -> Iterator[bool]:
        lock = self._sections.setdefault(name, threading.Lock())
        got = lock.acquire(blocking=wait)
        try:
            yield got
        finally:
            if got:
                lock.release()

    def join_story(self, item_ids: Sequence[int], story_id: int | None = None) -> int:
        """Put items into a story (a new one when `story_id` is None), as
        storage.stories.assign_story does: the title is the first item's, the
        English headline the first English item's. For tests: the fake has no
        story engine, the crawl's assignment is the database's."""
        t = self._tables
        if story_id is None:
            story_id = t.next_id("stories")
            first = t.items[item_ids[0]].item
            t.stories[story_id] = _StoryRow(story_id, first.published, first.published, first.title)
        story = t.stories[story_id]
        for item_id in item_ids:
            row = t.items[item_id]
            row.story_id = story_id
            story.first_seen = min(story.first_seen, row.item.published)
            story.last_seen = max(story.last_seen, row.item.published)
            lang = (row.item.language or "").split("-")[0].lower()
            if story.en_title is None and lang == "en":
                story.en_title = row.item.title
        return story_id

    def items_since(
        self, since: datetime | None, *, batch: int = 500
    ) -> Iterator[list[StoredItem]]:
        last_id = 0
        while True:
            t = self._tables
            rows = sorted(
                (
                    r
                    for r in t.items.values()
                    if r.id > last_id and (since is None or r.fetched_at >= since)
                ),
                key=lambda r: r.id,
            )[:batch]
            if not rows:
                return
            yield [
                StoredItem(
                    r.id, r.source_id, t.sources[r.source_id].record.name, r.item, r.fetched_at
                )
                for r in rows
            ]
            last_id = rows[-1].id

    def text_bytes_since(self, since: datetime | None) -> int:
        return sum(
            len(r.item.title.encode()) + len(r.item.summary.encode()) + len(r.item.text.encode())
            for r in self._tables.items.values()
            if since is None or r.fetched_at >= since
        )


def as_store(store: MemoryStore) -> Store:
    """mypy proves here that MemoryStore implements the protocol."""
    return store
