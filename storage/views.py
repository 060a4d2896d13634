"""Read queries for the web view, behind a small read-only interface.

`WebReader` is everything the web package may ask of the database; it has no
method that writes. `SqlWebReader` implements it over a session factory, one
short read transaction per call. Records out are frozen dataclasses; ORM rows
never leave this module.

Grouping: the matches page shows *groups* of matched items. Until stories are
stored, a group is one item (`MatchGroup.key` is the item id); once items
carry a story id, only the `group_key` column of `_LIST_COLUMNS` and the key
condition of `story_page` change (see docs/notes/web.md), the dataclasses
and the templates stay as they are.

Every list is bounded (`limit`), so a page costs the same with 10 or 100,000
items.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Date, Select, Text, cast, func, literal, select, text
from sqlalchemy.orm import Session, load_only, sessionmaker

from alerts.alert_records import StoredMatch
from storage.db import transaction
from storage.matches import stored_match
from storage.outbox import AlertListing, list_alerts
from storage.tables import ItemRow, MatchRow, RuleRow, SourceRow, WatchlistRow

MAX_GROUPS = 100
MAX_MATCHES_SCANNED = 500
API_LIMIT = 1000
API_DEFAULT = 100


@dataclass(frozen=True, slots=True)
class MatchFilter:
    """The filters of the matches page and of `/api/matches` (all optional)."""

    watchlist: str | None = None
    term: str | None = None
    language: str | None = None
    source: str | None = None
    since: datetime | None = None


@dataclass(frozen=True, slots=True)
class GroupItem:
    """One item of a group as the list and the story page show it."""

    id: int
    url: str
    title: str
    source: str
    language: str | None
    published: datetime
    snippets: tuple[str, ...] = ()
    highlights: tuple[str, ...] = ()  # the spellings found, marked in the snippets
    terms: tuple[str, ...] = ()
    watchlists: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MatchGroup:
    """Matched items that report one event (today: one item), newest match first."""

    key: int
    title: str
    last_matched: datetime
    items: tuple[GroupItem, ...]
    sources: tuple[str, ...]
    languages: tuple[str, ...]
    terms: tuple[str, ...]
    watchlists: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FilterChoices:
    """What the filter form offers."""

    watchlists: tuple[str, ...]
    terms: tuple[str, ...]
    languages: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TrendSeries:
    """Mentions of one term per day (oldest first), one count list per language."""

    term: str
    days: tuple[datetime, ...]
    by_language: dict[str, tuple[int, ...]] = field(hash=False)

    @property
    def total(self) -> int:
        return sum(sum(v) for v in self.by_language.values())


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    url: str
    kind: str | None
    enabled: bool
    last_success_at: datetime | None
    last_polled_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    items: int
    next_poll_at: datetime | None
    interval_seconds: int

    @property
    def failing(self) -> bool:
        return self.last_error is not None or self.consecutive_failures > 0


class WebReader(Protocol):
    """The read-only interface the web view is given. No method writes."""

    def match_groups(self, f: MatchFilter) -> list[MatchGroup]: ...
    def story_page(self, key: int) -> MatchGroup | None: ...
    def matches(self, f: MatchFilter, limit: int) -> list[StoredMatch]: ...
    def filter_choices(self) -> FilterChoices: ...
    def trends(self, now: datetime, days: int, watchlist: str | None) -> list[TrendSeries]: ...
    def source_health(self) -> list[SourceHealth]: ...
    def alerts(self, status: str, limit: int) -> list[AlertListing]: ...


class SqlWebReader:
    """`WebReader` over SQLAlchemy sessions (SQLite or PostgreSQL)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with transaction(self._sessions) as session:
            yield session

    def match_groups(self, f: MatchFilter) -> list[MatchGroup]:
        with self._read() as s:
            return match_groups(s, f)

    def story_page(self, key: int) -> MatchGroup | None:
        with self._read() as s:
            return story_page(s, key)

    def matches(self, f: MatchFilter, limit: int) -> list[StoredMatch]:
        with self._read() as s:
            return filtered_matches(s, f, limit)

    def filter_choices(self) -> FilterChoices:
        with self._read() as s:
            return filter_choices(s)

    def trends(self, now: datetime, days: int, watchlist: str | None) -> list[TrendSeries]:
        with self._read() as s:
            return trends(s, now=now, days=days, watchlist=watchlist)

    def source_health(self) -> list[SourceHealth]:
        with self._read() as s:
            return source_health(s)

    def alerts(self, status: str, limit: int) -> list[AlertListing]:
        with self._read() as s:
            return list_alerts(s, status=status, limit=limit)


# ---------------------------------------------------------------- matches


def _has_term(session: Session, term: str) -> Any:
    """`term` is one of the JSON array `matches.terms` (exact, as the CLI prints it)."""
    if session.get_bind().dialect.name == "postgresql":
        return text("CAST(matches.terms AS jsonb) ? :term").bindparams(term=term)
    return text(
        "EXISTS (SELECT 1 FROM json_each(matches.terms) WHERE json_each.value = :term)"
    ).bindparams(term=term)


def _where(session: Session, stmt: Select[Any], f: MatchFilter) -> Select[Any]:
    """The filters on a select that joins matches, watchlists, items and sources."""
    if f.watchlist:
        stmt = stmt.where(WatchlistRow.name == f.watchlist)
    if f.since is not None:
        stmt = stmt.where(MatchRow.matched_at >= f.since)
    if f.language:
        stmt = stmt.where(ItemRow.language == f.language)
    if f.source:
        stmt = stmt.where(SourceRow.name == f.source)
    if f.term:
        stmt = stmt.where(_has_term(session, f.term))
    return stmt


def _joined(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .order_by(MatchRow.matched_at.desc(), MatchRow.id.desc())
    )


def filtered_matches(session: Session, f: MatchFilter, limit: int) -> list[StoredMatch]:
    """Matches newest first as `matches --json` reads them (the same converter,
    `stored_match`), without loading the item bodies it does not show."""
    stmt = _joined(MatchRow, WatchlistRow.name, ItemRow, SourceRow.name).options(
        load_only(MatchRow.id, MatchRow.terms, MatchRow.snippets, MatchRow.matched_at),
        load_only(ItemRow.id, ItemRow.url, ItemRow.title, ItemRow.published, ItemRow.language),
    )
    rows = session.execute(_where(session, stmt, f).limit(limit))
    return [stored_match(m, item, src, wl) for m, wl, item, src in rows]


def _highlights(hits: Sequence[Any] | None) -> tuple[str, ...]:
    spellings = (h.get("spelling") for h in hits or () if isinstance(h, dict))
    return tuple(dict.fromkeys(s for s in spellings if isinstance(s, str) and s))


# What a group row needs; the story page adds the snippets and hits.
_LIST_COLUMNS = (
    MatchRow.item_id.label("group_key"),  # stories: ItemRow.story_id
    MatchRow.item_id,
    MatchRow.terms,
    MatchRow.matched_at,
    WatchlistRow.name.label("watchlist"),
    ItemRow.url,
    ItemRow.title,
    ItemRow.language,
    ItemRow.published,
    SourceRow.name.label("source"),
)
_PAGE_COLUMNS = (*_LIST_COLUMNS, MatchRow.snippets, MatchRow.hits)


def _groups(rows: Sequence[Any], limit: int) -> list[MatchGroup]:
    """Fold match rows (newest first) into groups, keeping the order of each
    group's newest match and, inside a group, one entry per item."""
    order: dict[int, dict[int, list[Any]]] = {}
    for row in rows:
        if row.group_key not in order and len(order) >= limit:
            continue
        order.setdefault(row.group_key, {}).setdefault(row.item_id, []).append(row)
    return [_group(key, by_item) for key, by_item in order.items()]


def _group_item(rows: Sequence[Any]) -> GroupItem:
    first = rows[0]
    detailed = "snippets" in first._fields
    return GroupItem(
        id=first.item_id,
        url=first.url,
        title=first.title,
        source=first.source,
        language=first.language,
        published=first.published,
        snippets=tuple(dict.fromkeys(s for r in rows for s in r.snippets)) if detailed else (),
        highlights=tuple(dict.fromkeys(h for r in rows for h in _highlights(r.hits)))
        if detailed
        else (),
        terms=tuple(dict.fromkeys(t for r in rows for t in r.terms)),
        watchlists=tuple(dict.fromkeys(r.watchlist for r in rows)),
    )


def _group(key: int, by_item: dict[int, list[Any]]) -> MatchGroup:
    items = [_group_item(rows) for rows in by_item.values()]
    return MatchGroup(
        key=key,
        title=items[0].title,
        last_matched=next(iter(by_item.values()))[0].matched_at,
        items=tuple(items),
        sources=tuple(dict.fromkeys(i.source for i in items)),
        languages=tuple(dict.fromkeys(i.language for i in items if i.language)),
        terms=tuple(dict.fromkeys(t for i in items for t in i.terms)),
        watchlists=tuple(dict.fromkeys(w for i in items for w in i.watchlists)),
    )


def match_groups(session: Session, f: MatchFilter, limit: int = MAX_GROUPS) -> list[MatchGroup]:
    """The newest groups that matched under `f`. Scans at most
    MAX_MATCHES_SCANNED matches (newest first, by index), so the page's cost
    does not grow with the database."""
    stmt = _where(session, _joined(*_LIST_COLUMNS), f).limit(MAX_MATCHES_SCANNED)
    return _groups(list(session.execute(stmt)), limit)


def story_page(session: Session, key: int) -> MatchGroup | None:
    """Every matched item of one group, with their snippets and hits."""
    stmt = _joined(*_PAGE_COLUMNS).where(MatchRow.item_id == key)  # stories: story_id == key
    groups = _groups(list(session.execute(stmt)), 1)
    return groups[0] if groups else None


# A loose index scan over ix_items_language: one index seek per distinct
# language instead of reading 100,000 rows (SQLite and Postgres alike).
_DISTINCT_LANGUAGES = text(
    "WITH RECURSIVE langs(lang) AS ("
    " SELECT min(language) FROM items"
    " UNION ALL"
    " SELECT (SELECT min(language) FROM items WHERE language > langs.lang)"
    " FROM langs WHERE langs.lang IS NOT NULL)"
    " SELECT lang FROM langs WHERE lang IS NOT NULL"
)


def filter_choices(session: Session) -> FilterChoices:
    """The watchlists, terms, sources, and the languages of stored items."""
    watchlists = session.scalars(
        select(WatchlistRow.name)
        .where(WatchlistRow.removed_at.is_(None))
        .order_by(WatchlistRow.name)
    )
    terms = session.scalars(
        select(RuleRow.text)
        .join(WatchlistRow, WatchlistRow.id == RuleRow.watchlist_id)
        .where(WatchlistRow.removed_at.is_(None))
        .distinct()
        .order_by(RuleRow.text)
    )
    languages = session.scalars(_DISTINCT_LANGUAGES)
    sources = session.scalars(select(SourceRow.name).order_by(SourceRow.name))
    return FilterChoices(
        tuple(watchlists), tuple(terms), tuple(x for x in languages if x), tuple(sources)
    )


# ---------------------------------------------------------------- trends


def _day(session: Session) -> Any:
    """The UTC day of an item's publication: a date (Postgres) or the text
    'YYYY-MM-DD' (SQLite stores naive UTC text)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", ItemRow.published), Date)
    return func.substr(ItemRow.published, 1, 10)


def trends(
    session: Session, *, now: datetime, days: int, watchlist: str | None = None
) -> list[TrendSeries]:
    """Mentions (matched items) per UTC day of publication per term, split by
    language, over the `days` days up to `now`, most mentioned term first.

    Counted in the database (one row per terms/day/language); the bound on
    `matched_at` uses its index and drops nothing, since an item is matched
    after it is published."""
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    day = _day(session).label("day")
    terms = cast(MatchRow.terms, Text).label("terms")
    stmt = (
        select(terms, day, ItemRow.language, func.count())
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .where(MatchRow.matched_at >= start, ItemRow.published >= start)
        .where(ItemRow.published <= now)
        .group_by(terms, day, ItemRow.language)
    )
    if watchlist:
        wanted = select(WatchlistRow.id).where(WatchlistRow.name == watchlist)
        stmt = stmt.where(MatchRow.watchlist_id.in_(wanted.scalar_subquery()))
    counts: Counter[tuple[str, str, int]] = Counter()
    first = start.date()
    for raw, on, language, n in session.execute(stmt):
        offset = ((on if isinstance(on, date) else date.fromisoformat(on)) - first).days
        for term in dict.fromkeys(_terms(raw)):
            counts[(term, language or "?", offset)] += int(n)
    return _series(counts, start, days)


@lru_cache(maxsize=4096)
def _terms(raw: str | None) -> tuple[str, ...]:
    try:
        value = json.loads(raw) if raw else []
    except ValueError:
        return ()
    return tuple(str(t) for t in value) if isinstance(value, list) else ()


def _series(counts: Counter[tuple[str, str, int]], start: datetime, days: int) -> list[TrendSeries]:
    axis = tuple(start + timedelta(days=d) for d in range(days))
    per_term: dict[str, dict[str, list[int]]] = {}
    for (term, language, day), n in counts.items():
        if 0 <= day < days:
            per_term.setdefault(term, {}).setdefault(language, [0] * days)[day] += n
    series = [
        TrendSeries(term, axis, {lang: tuple(v) for lang, v in sorted(langs.items())})
        for term, langs in per_term.items()
    ]
    return sorted(series, key=lambda s: (-s.total, s.term))


# ---------------------------------------------------------------- sources


def source_health(session: Session) -> list[SourceHealth]:
    """Every source, failing ones first (most consecutive failures first), then by name."""
    counts = (
        select(ItemRow.source_id, func.count().label("n")).group_by(ItemRow.source_id).subquery()
    )
    stmt = select(SourceRow, func.coalesce(counts.c.n, literal(0))).outerjoin(
        counts, counts.c.source_id == SourceRow.id
    )
    out = [
        SourceHealth(
            name=row.name,
            url=row.url,
            kind=row.kind,
            enabled=row.enabled,
            last_success_at=row.last_success_at,
            last_polled_at=row.last_polled_at,
            last_error=row.last_error,
            consecutive_failures=row.consecutive_failures,
            items=int(n),
            next_poll_at=row.next_poll_at,
            interval_seconds=row.current_interval_seconds or row.every_seconds,
        )
        for row, n in session.execute(stmt)
    ]
    return sorted(out, key=lambda h: (not h.failing, -h.consecutive_failures, h.name))
