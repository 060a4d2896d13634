"""SQLAlchemy 2.x models. ORM classes never leave `storage/`.

Invariants held by constraints rather than by code:
- an item's canonical URL is unique (the identity across sources and re-polls);
- one match per (item, watchlist);
- one outbox row per (item, watchlist, recipient): a re-poll, a restart or a
  second daemon cannot create a second alert.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite and Postgres alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to storage; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = datetime.fromisoformat(value) if isinstance(value, str) else value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class SourceRow(Base):
    __tablename__ = "sources"
    __table_args__ = (
        # The due-source claim (storage.sources.claim_due_sources): enabled
        # sources in poll order. The predicate is the query's own
        # (`enabled.is_(True)`), so both planners see that the query implies it.
        Index(
            "ix_sources_due",
            "next_poll_at",
            "id",
            sqlite_where=text("enabled IS 1"),
            postgresql_where=text("enabled IS true"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(10))
    # kind "spider": "package.module:Class" or "/abs/path/file.py:Class"; NULL:
    # fed from outside (newswatch.scrapy.NewswatchPipeline), never polled.
    spider: Mapped[str | None] = mapped_column(Text)
    every_seconds: Mapped[int] = mapped_column(Integer, default=900)
    links_css: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    next_poll_at: Mapped[datetime | None]
    last_polled_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    # Adaptive polling: the interval the scheduler last chose (seconds).
    current_interval_seconds: Mapped[int | None] = mapped_column(Integer)
    # A new or re-enabled source: its next successful poll is a baseline.
    baseline_pending: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())
    # Labels for filtering: an imported OPML's folders (storage.source_edits).
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    # Replicas: a source is polled only by the holder of an unexpired lease.
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime]


class ItemRow(Base):
    __tablename__ = "items"
    __table_args__ = (
        Index("ix_items_source_guid", "source_id", "guid"),
        Index("ix_items_fetched_at", "fetched_at"),
        Index("ix_items_language", "language"),  # the web view's language filter list
        # Covers the trends join (matches -> items by id): no heap or table row read.
        Index("ix_items_id_published_language", "id", "published", "language"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text, unique=True)
    guid: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    published: Mapped[datetime]
    fetched_at: Mapped[datetime]
    language: Mapped[str | None] = mapped_column(String(16))
    content_hash: Mapped[str] = mapped_column(String(64))
    # NULL until the story step (crawl, backfill or `stories rebuild`) assigns it.
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"), index=True)


class StoryRow(Base):
    """One event reported by one or more items. Never merged or split once
    created, so an alert that names a story keeps naming the same one."""

    __tablename__ = "stories"
    __table_args__ = (
        Index("ix_stories_first_seen", "first_seen"),  # the assignment window
        Index("ix_stories_last_seen", "last_seen"),  # `stories --since`, newest first
        Index("ix_stories_changed_seq", "changed_seq"),  # what changed since a cache's last look
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_seen: Mapped[datetime]  # published time of the earliest member
    last_seen: Mapped[datetime]  # published time of the latest member
    title: Mapped[str] = mapped_column(Text)  # the first assigned item's title
    title_language: Mapped[str | None] = mapped_column(String(16))
    # The first English member's title: the headline shown next to a foreign hit.
    en_title: Mapped[str | None] = mapped_column(Text)
    item_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
    # The assignment that last wrote this row (story_assign_lock.n, bumped
    # under the assignment lock): a process's story cache reads the rows
    # changed since its last batch instead of every story in the window.
    changed_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")


def include_name(name: str | None, type_: str, _parents: object) -> bool:
    """For Alembic's comparison: the search index tables (FTS5 on SQLite,
    tsvector on PostgreSQL, migration 0011) are made by SQL, not by models."""
    prefixes = ("search_fts", "search_terms")
    return not (type_ == "table" and name is not None and name.startswith(prefixes))


class SearchPendingRow(Base):
    """An item whose search terms are not indexed yet: every search treats it
    as a candidate (storage.search_index). The index itself (search_fts on
    SQLite, search_terms on PostgreSQL) is made by migration 0011, not here."""

    __tablename__ = "search_pending"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )


class ItemVectorRow(Base):
    """An item's sentence vector: float16 little-endian bytes of one encoder
    release; a row of another (encoder, version) is re-encoded before use."""

    __tablename__ = "item_vectors"

    item_id: Mapped[int] = mapped_column(
        ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )
    encoder: Mapped[str] = mapped_column(String(40))
    encoder_version: Mapped[str] = mapped_column(String(20))
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class StoryAssignLockRow(Base):
    """One row (id 1) that every assignment UPDATEs first: on SQLite so the
    write lock is held before candidates are read (PostgreSQL takes an
    advisory lock before it), and on both so `n` numbers the assignments in
    commit order (stories.changed_seq)."""

    __tablename__ = "story_assign_lock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(BigInteger)


class PageLinkRow(Base):
    """Article links already fetched for a `page` source (fetched once, ever),
    and a `sitemap` source's url → lastmod memory (`version`, NULL: undated)."""

    __tablename__ = "page_links"
    __table_args__ = (UniqueConstraint("source_id", "url"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime]
    version: Mapped[datetime | None]


class WatchlistRow(Base):
    __tablename__ = "watchlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    digest: Mapped[str] = mapped_column(String(10), default="none")
    # "fold" (one alert per story, watchlist and recipient) or "each" (per item).
    stories: Mapped[str] = mapped_column(String(10), default="each", server_default="each")
    languages: Mapped[list[Any]] = mapped_column(JSON, default=list)
    exclude: Mapped[list[Any]] = mapped_column(JSON, default=list)
    examples: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Removal is soft so that matches and alerts keep their watchlist.
    removed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RuleRow(Base):
    __tablename__ = "watchlist_rules"
    __table_args__ = (Index("ix_rules_watchlist", "watchlist_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))  # "term" | "query"
    text: Mapped[str] = mapped_column(Text)
    aliases: Mapped[list[Any]] = mapped_column(JSON, default=list)
    case_sensitive: Mapped[bool | None] = mapped_column(Boolean)


class RecipientRow(Base):
    """A recipient of one watchlist. Kept (inactive) when dropped from the file,
    so that its outbox rows stay valid and re-adding it does not re-alert."""

    __tablename__ = "recipients"
    __table_args__ = (UniqueConstraint("watchlist_id", "channel", "target"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str] = mapped_column(String(10))  # email | slack | webhook
    target: Mapped[str] = mapped_column(Text)
    secret: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class MatchRow(Base):
    __tablename__ = "matches"
    __table_args__ = (
        UniqueConstraint("item_id", "watchlist_id"),
        Index("ix_matches_matched_at", "matched_at"),
        # The web view's watchlist filter, newest first (migration 0012).
        Index("ix_matches_watchlist", "watchlist_id", "matched_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"))
    terms: Mapped[list[Any]] = mapped_column(JSON)
    hits: Mapped[list[Any]] = mapped_column(JSON, default=list)
    snippets: Mapped[list[Any]] = mapped_column(JSON)
    matched_at: Mapped[datetime]


class MatchTermRow(Base):
    """One term of one match, dated by its item's UTC day of publication
    ('YYYY-MM-DD') with the item's language and the match's `matched_at`: the
    trends page's counts read one range of `ix_match_terms_day` instead of
    joining every match to its item, and the web view's term filter walks
    `ix_match_terms_term` newest first (testing watchlist and language on the
    index entry) instead of every match. Derived data: database triggers
    (migrations 0010 and 0012) write it in the transaction that writes the
    match; nothing in Python writes it."""

    __tablename__ = "match_terms"
    __table_args__ = (
        Index("ix_match_terms_day", "day", "term", "language", "watchlist_id"),
        Index("ix_match_terms_term", "term", "matched_at", "match_id", "watchlist_id", "language"),
    )

    match_id: Mapped[int] = mapped_column(
        ForeignKey("matches.id", ondelete="CASCADE"), primary_key=True
    )
    term: Mapped[str] = mapped_column(Text, primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(Integer)
    day: Mapped[str] = mapped_column(String(10))
    language: Mapped[str | None] = mapped_column(String(16))
    matched_at: Mapped[datetime]  # the match's (a copy, kept by the triggers)


class OutboxRow(Base):
    """One alert owed to one recipient. Never deleted; `status` moves
    pending -> sent, or pending -> failed (and back to pending on retry)."""

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("item_id", "watchlist_id", "recipient_id"),
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_recipient_order", "recipient_id", "status", "created_at"),
        # `stories: fold`: one alert per (story, watchlist, recipient). Rows of
        # `each` watchlists leave story_id NULL and are outside this index.
        Index(
            "ux_outbox_story_fold",
            "story_id",
            "watchlist_id",
            "recipient_id",
            unique=True,
            sqlite_where=text("story_id IS NOT NULL"),
            postgresql_where=text("story_id IS NOT NULL"),
        ),
        # One message per address and item (or folded story) across watchlists:
        # the claim finds a row's relatives through these (storage.alert_groups).
        Index("ix_outbox_address_item", "address_key", "item_id"),
        Index("ix_outbox_address_story", "address_key", "story_id"),
        # The web view's /alerts: the newest rows of one status (migration 0012).
        Index("ix_outbox_status_created", "status", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    match_id: Mapped[int] = mapped_column(ForeignKey("matches.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id", ondelete="CASCADE"))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("recipients.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    # Digest rows carry the period they belong to ("2026-11-22T02" / "2026-11-22").
    digest_period: Mapped[str | None] = mapped_column(String(20))
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None]
    # Set only under `stories: fold` (the fold key); NULL for `each` rows.
    story_id: Mapped[int | None] = mapped_column(ForeignKey("stories.id"))
    # alerts.address_keys.address_key of the recipient (storage.alert_groups;
    # digests are one per address and period). NULL: never written (rows are
    # filled by migration 0009); such a row is grouped by itself/its recipient.
    address_key: Mapped[str | None] = mapped_column(String(32))
    # Marked sent without a message of its own: the row whose message named
    # this item to the same address already (storage.alert_groups).
    folded_into: Mapped[int | None] = mapped_column(Integer)
