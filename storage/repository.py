"""`SqlStore`: the `storage.protocol.Store` over SQLAlchemy (SQLite and PostgreSQL).

It delegates to the query modules (storage.sources, items, matches, outbox,
watchlists) that already hold the SQL; what it adds is the boundary: a
session never leaves this module, and SQLAlchemy errors are translated into
`StorageError`s on the way out (`DatabaseUnavailable` for an unreachable
database or a dropped connection, `DataRefused` for data the database
refused), so the use-cases catch only errors of ours.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, time, timedelta

from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from alerts.alert_records import StoryContext, Watchlist, WatchlistMatch
from crawler.crawl_records import (
    Item,
    PollOutcome,
    SeenVersion,
    Source,
    SourceKind,
    StoredItem,
)
from storage import (
    items,
    matches,
    outbox,
    search_index,
    sources,
    stories,
    story_context,
    watchlists,
)
from storage.db import database_error, session_factory, transaction
from storage.leases import exclusive_section
from storage.outbox import BacklogCounts, ClaimedBatch, PendingSummary, RecipientRef
from storage.protocol import Store
from storage.sources import HostQuota
from storage.stories import DecideBatch, StoredMember, Vectors, Warm
from storage.tables import MatchRow, OutboxRow, WatchlistRow
from storage.watchlists import ActiveWatchlist

# The session events before which a SqlTransaction writes its buffered polls.
_HOOKS = ("do_orm_execute", "before_flush", "before_commit")
_TRANSACTION = "newswatch.sql_transaction"  # the session.info key of its SqlTransaction


def _write_buffered(first: object, *_args: object) -> None:
    """A session event: the session's SqlTransaction (if any) writes its
    buffered polls (see SqlTransaction._write_polls)."""
    session = first.session if isinstance(first, ORMExecuteState) else first
    assert isinstance(session, Session)
    tx = session.info.get(_TRANSACTION)
    if tx is not None:
        tx._write_polls()


# Registered once, on Session itself: every session of the process has them
# (a sessionmaker's sessions are of a subclass it makes, which inherits
# them). Not per factory: SQLAlchemy's registry keys a listener by id() of
# its target, so a factory created where a collected one had been was taken
# for already hooked (`event.contains` said yes) and its sessions dropped
# the buffered fetch state of a save with no later statement (a failed
# poll's) at commit. That lost writes in a process that makes stores one
# after another (the tests' in-process CLI runs): tests/integration/test_store_hooks.py.
for _hook in _HOOKS:
    if not event.contains(Session, _hook, _write_buffered):
        event.listen(Session, _hook, _write_buffered)


class SqlTransaction:
    """The protocol's operations on one session (see storage.protocol.StoreTransaction)."""

    def __init__(self, session: Session) -> None:
        """The session's events find this transaction through `session.info`
        (the listeners above) and write its buffered polls first."""
        self._s = session
        # Fetch-state writes waiting for one executemany (see record_poll).
        self._polls: list[dict[str, object]] = []
        session.info[_TRANSACTION] = self

    def _write_polls(self, *_args: object) -> None:
        """Write the buffered polls before anything else runs on the session
        (any statement, flush or the commit), so the transaction reads and
        commits exactly what it would have with one UPDATE per poll."""
        if self._polls:
            batch, self._polls = self._polls, []
            sources.record_polls(self._s, batch)

    # -- sources
    def source_names(self) -> set[str]:
        return sources.source_names(self._s)

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
        return sources.claim_due_sources(
            self._s,
            now=now,
            owner=owner,
            lease=lease,
            limit=limit,
            names=names,
            due_only=due_only,
            hosts=hosts,
            free_dead=free_dead,
        )

    def defer_poll(self, source_id: int, owner: str, *, next_poll_at: datetime) -> None:
        sources.defer_poll(self._s, source_id, owner, next_poll_at=next_poll_at)

    def release_lease(self, source_id: int, owner: str) -> None:
        sources.release_lease(self._s, source_id, owner)

    def renew_lease(self, source_id: int, owner: str, *, until: datetime) -> bool:
        return sources.renew_lease(self._s, source_id, owner, until=until)

    def record_poll(
        self,
        outcome: PollOutcome,
        *,
        now: datetime,
        next_poll_at: datetime,
        interval: int | None = None,
        owner: str | None = None,
    ) -> None:
        """Buffered: the polls of a save batch that touch nothing else (an
        unchanged feed) go out as one executemany at the next statement or the
        commit; a rollback drops them with the rest of the transaction."""
        params = sources.poll_params(
            outcome, now=now, next_poll_at=next_poll_at, interval=interval, owner=owner
        )
        self._polls.append(params)

    def seen_links(self, source_id: int) -> frozenset[str]:
        return sources.seen_links(self._s, source_id)

    def add_seen_links(self, source_id: int, links: Sequence[str], now: datetime) -> None:
        sources.add_seen_links(self._s, source_id, links, now)

    def seen_versions(self, source_id: int) -> dict[str, datetime | None]:
        return sources.seen_versions(self._s, source_id)

    def add_seen_versions(
        self, source_id: int, pairs: Sequence[SeenVersion], now: datetime
    ) -> None:
        sources.add_seen_versions(self._s, source_id, pairs, now)

    def prune_seen_versions(self, *, before: datetime) -> int:
        return sources.prune_seen_versions(self._s, before=before)

    # -- items
    def store_items(
        self, source_id: int, new: Sequence[Item], fetched_at: datetime
    ) -> dict[str, int]:
        # storage.items writes SQLite's rows as driver SQL, which runs no
        # do_orm_execute hook: the buffered polls go first, as before any statement.
        self._write_polls()
        return items.store_items(self._s, source_id, new, fetched_at)

    def prune_items(self, *, before: datetime) -> int:
        return items.prune_items(self._s, before=before)

    def index_search_pending(self, batch: int) -> int:
        return search_index.index_pending(self._s, batch)

    # -- watchlists and matches
    def active_watchlists(self, names: Sequence[str] | None = None) -> list[ActiveWatchlist]:
        return watchlists.active_watchlists(self._s, names)

    def get_watchlist(self, name: str) -> ActiveWatchlist:
        return watchlists.get_watchlist(self._s, name)

    def watchlists_version(self) -> tuple[object, ...]:
        w = WatchlistRow
        row = self._s.execute(
            select(func.count(), func.max(w.updated_at), func.max(w.removed_at))
        ).one()
        return tuple(row)

    def record_matches(
        self,
        item_id: int,
        found: Sequence[tuple[ActiveWatchlist, WatchlistMatch]],
        now: datetime,
        *,
        daily_at: time = time(0, 0),
        alert: bool = True,
    ) -> int:
        self._write_polls()  # SQLite's inserts there are driver SQL: no hook runs
        return matches.record_matches(self._s, item_id, found, now, daily_at=daily_at, alert=alert)

    def count_matches(self, watchlist_id: int, item_ids: Collection[int]) -> int:
        if not item_ids:
            return 0
        stmt = (
            select(func.count())
            .select_from(MatchRow)
            .where(MatchRow.watchlist_id == watchlist_id, MatchRow.item_id.in_(list(item_ids)))
        )
        return int(self._s.scalar(stmt) or 0)

    def count_matches_without_alerts(self, watchlist_id: int, item_ids: Collection[int]) -> int:
        if not item_ids:
            return 0
        owed = select(OutboxRow.id).where(OutboxRow.match_id == MatchRow.id).exists()
        stmt = (
            select(func.count())
            .select_from(MatchRow)
            .where(
                MatchRow.watchlist_id == watchlist_id,
                MatchRow.item_id.in_(list(item_ids)),
                ~owed,
            )
        )
        return int(self._s.scalar(stmt) or 0)

    def count_alerts(self, watchlist_id: int) -> int:
        stmt = (
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.watchlist_id == watchlist_id)
        )
        return int(self._s.scalar(stmt) or 0)

    # -- delivery
    def pending_recipients(self) -> list[RecipientRef]:
        return outbox.pending_recipients(self._s)

    def note_waiting(self, recipient_ids: Collection[int], error: str) -> int:
        return outbox.note_waiting(self._s, recipient_ids, error)

    def claim_due_alerts(
        self,
        *,
        now: datetime,
        owner: str,
        lease: timedelta,
        limit: int,
        exclude_recipients: Collection[int] = (),
    ) -> list[ClaimedBatch]:
        return outbox.claim_due(
            self._s,
            now=now,
            owner=owner,
            lease=lease,
            limit=limit,
            exclude_recipients=exclude_recipients,
        )

    def story_contexts(self, item_ids: Collection[int]) -> dict[int, StoryContext]:
        return story_context.story_contexts(self._s, item_ids)

    def mark_sent(self, ids: Sequence[int], *, owner: str, now: datetime) -> int:
        return outbox.mark_sent(self._s, ids, owner=owner, now=now)

    def schedule_retry(
        self, ids: Sequence[int], *, owner: str, error: str, next_attempt_at: datetime
    ) -> int:
        return outbox.schedule_retry(
            self._s, ids, owner=owner, error=error, next_attempt_at=next_attempt_at
        )

    def mark_failed(self, ids: Sequence[int], *, owner: str, error: str) -> int:
        return outbox.mark_failed(self._s, ids, owner=owner, error=error)

    def release_alerts(self, ids: Sequence[int], *, owner: str) -> int:
        return outbox.release(self._s, ids, owner=owner)

    def postpone(
        self, ids: Sequence[int], *, owner: str, note: str, next_attempt_at: datetime
    ) -> int:
        return outbox.postpone(
            self._s, ids, owner=owner, note=note, next_attempt_at=next_attempt_at
        )

    def next_due_after(
        self, *, now: datetime, exclude_recipients: Collection[int] = ()
    ) -> datetime | None:
        return outbox.next_due_after(self._s, now=now, exclude_recipients=exclude_recipients)

    def pending_summary(self, *, now: datetime, owner_prefix: str) -> PendingSummary:
        return outbox.pending_summary(self._s, now=now, owner_prefix=owner_prefix)

    def backlog(self, *, now: datetime) -> BacklogCounts:
        return outbox.backlog(self._s, now=now)

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
        return sources.add_source(
            self._s,
            name=name,
            url=url,
            kind=kind,
            every_seconds=every_seconds,
            links_css=links_css,
            now=now,
            spider=spider,
            alert_backlog=alert_backlog,
        )

    def save_watchlists(self, new: Sequence[Watchlist], now: datetime) -> int:
        return watchlists.save_watchlists(self._s, new, now)

    def remove_watchlist(self, name: str, now: datetime) -> int:
        return watchlists.remove_watchlist(self._s, name, now)

    # -- stories
    def known_urls(self, urls: Sequence[str]) -> set[str]:
        return stories.known_urls(self._s, urls)

    def save_story_vectors(
        self, vectors: Sequence[tuple[int, Vectors]], *, encoder: tuple[str, str]
    ) -> None:
        stories.save_vectors(self._s, vectors, encoder=encoder[0], version=encoder[1])

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
        return stories.assign_batch(
            self._s,
            item_ids,
            decide,
            window=window,
            now=now,
            encoder=encoder,
            warm=warm,
            known=known,
        )

    def unassigned_item_ids(
        self,
        limit: int,
        *,
        since: datetime | None = None,
        fetched_since: datetime | None = None,
    ) -> list[int]:
        return stories.unassigned_ids(self._s, limit, since=since, fetched_since=fetched_since)

    def items_without_story(
        self,
        batch: int,
        *,
        since: datetime | None = None,
        encoder: tuple[str, str] | None = None,
        ids: Sequence[int] | None = None,
        fetched_since: datetime | None = None,
    ) -> list[StoredMember]:
        return stories.items_without_story(
            self._s, batch, since=since, encoder=encoder, ids=ids, fetched_since=fetched_since
        )


# The session type of the CLI's admin queries (listings, import, export in
# storage/*.py take one and return records); the root names it through here,
# never importing SQLAlchemy itself.
AdminSession = Session


class SqlStore:
    """The real store. Built by the composition root from an engine."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session] | None = None,
        *,
        before_transaction: Callable[[], None] | None = None,
    ) -> None:
        self.engine = engine
        self.sessions = sessions or session_factory(engine)
        # The root's hook run before every unit of work: a claiming process
        # keeps its owner lock there (storage.leases.OwnerLock.keep).
        self.before_transaction = before_transaction

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        if self.before_transaction is not None:
            self.before_transaction()
        try:
            with transaction(self.sessions) as session:
                yield SqlTransaction(session)
        except SQLAlchemyError as e:  # storage.db.transaction translated the statement errors
            raise database_error(e) from None

    def exclusive(self, name: str, *, wait: bool) -> AbstractContextManager[bool]:
        return exclusive_section(self.engine, name, wait=wait)

    @contextmanager
    def session(self) -> Iterator[AdminSession]:
        """One unit of work for the CLI's admin queries, outside the protocol:
        the use-cases never get a session."""
        if self.before_transaction is not None:
            self.before_transaction()
        with transaction(self.sessions) as session:
            yield session

    def items_since(
        self, since: datetime | None, *, batch: int = items.BATCH
    ) -> Iterator[list[StoredItem]]:
        with self.sessions() as reader:
            yield from items.iter_items_since(reader, since, batch=batch)

    def text_bytes_since(self, since: datetime | None) -> int:
        with self.sessions() as reader:
            return items.text_bytes_since(reader, since)


def as_store(store: SqlStore) -> Store:
    """mypy proves here that SqlStore implements the protocol."""
    return store
