"""Read queries for the web view, behind a small read-only interface.

`WebReader` is everything the web package may ask of the database; it has no
method that writes. `SqlWebReader` implements it over a session factory, one
short read transaction per call. Records out are frozen dataclasses; ORM rows
never leave this module.

Grouping: the matches page shows *groups* of matched items. Until stories are
stored, a group is one item (`MatchGroup.key` is the item id); once items
carry a story id, only `_group_key` and `story_page` change (see
docs/notes/web.md), the dataclasses and the templates stay as they are.

Every list is bounded (`limit`), so a page costs the same with 10 or 100,000
items.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Select, func, literal, select, text
from sqlalchemy.orm import Session, sessionmaker

from alerts.models import StoredMatch
from storage.db import transaction
from storage.matches import stored_match
from storage.outbox import AlertListing, list_alerts
from storage.tables import ItemRow, MatchRow, RuleRow, SourceRow, WatchlistRow

MAX_GROUPS = 100
MAX_MATCHES_SCANNED = 2000
API_LIMIT = 1000


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


def _filtered(session: Session, f: MatchFilter) -> Select[MatchRow, str, ItemRow, str]:
    stmt = (
        select(MatchRow, WatchlistRow.name, ItemRow, SourceRow.name)
        .join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .order_by(MatchRow.matched_at.desc(), MatchRow.id.desc())
    )
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


def filtered_matches(session: Session, f: MatchFilter, limit: int) -> list[StoredMatch]:
    """Matches newest first as `matches --json` reads them (same converter)."""
    rows = session.execute(_filtered(session, f).limit(limit))
    return [stored_match(m, item, src, wl) for m, wl, item, src in rows]


def _highlights(hits: Sequence[Any] | None) -> tuple[str, ...]:
    spellings = (h.get("spelling") for h in hits or () if isinstance(h, dict))
    return tuple(dict.fromkeys(s for s in spellings if isinstance(s, str) and s))


def _group_key(item: ItemRow) -> int:
    """Which group an item belongs to. Stories: `item.story_id`."""
    return item.id


def _groups(rows: Sequence[tuple[MatchRow, str, ItemRow, str]], limit: int) -> list[MatchGroup]:
    """Fold match rows (newest first) into groups, keeping the order of each
    group's newest match and, inside a group, one entry per item."""
    order: dict[int, dict[int, list[tuple[MatchRow, str, ItemRow, str]]]] = {}
    for row in rows:
        key = _group_key(row[2])
        if key not in order and len(order) >= limit:
            continue
        order.setdefault(key, {}).setdefault(row[2].id, []).append(row)
    return [_group(key, by_item) for key, by_item in order.items()]


def _group(key: int, by_item: dict[int, list[tuple[MatchRow, str, ItemRow, str]]]) -> MatchGroup:
    items = []
    for rows in by_item.values():
        item, source = rows[0][2], rows[0][3]
        items.append(
            GroupItem(
                id=item.id,
                url=item.url,
                title=item.title,
                source=source,
                language=item.language,
                published=item.published,
                snippets=tuple(dict.fromkeys(s for m, *_ in rows for s in m.snippets)),
                highlights=tuple(dict.fromkeys(h for m, *_ in rows for h in _highlights(m.hits))),
                terms=tuple(dict.fromkeys(t for m, *_ in rows for t in m.terms)),
                watchlists=tuple(dict.fromkeys(wl for _, wl, *_ in rows)),
            )
        )
    first = next(iter(by_item.values()))[0]
    return MatchGroup(
        key=key,
        title=items[0].title,
        last_matched=first[0].matched_at,
        items=tuple(items),
        sources=tuple(dict.fromkeys(i.source for i in items)),
        languages=tuple(dict.fromkeys(i.language for i in items if i.language)),
        terms=tuple(dict.fromkeys(t for i in items for t in i.terms)),
        watchlists=tuple(dict.fromkeys(w for i in items for w in i.watchlists)),
    )


def match_groups(session: Session, f: MatchFilter, limit: int = MAX_GROUPS) -> list[MatchGroup]:
    """The newest groups that matched under `f`. Scans at most
    MAX_MATCHES_SCANNED matches, so the page's cost is bounded."""
    rows = list(session.execute(_filtered(session, f).limit(MAX_MATCHES_SCANNED)))
    return _groups(rows, limit)


def story_page(session: Session, key: int) -> MatchGroup | None:
    """Every matched item of one group, with their snippets and hits."""
    stmt = (
        select(MatchRow, WatchlistRow.name, ItemRow, SourceRow.name)
        .join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .where(ItemRow.id == key)
        .order_by(MatchRow.matched_at.desc(), MatchRow.id.desc())
    )
    groups = _groups(list(session.execute(stmt)), 1)
    return groups[0] if groups else None


def filter_choices(session: Session) -> FilterChoices:
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
    languages = session.scalars(
        select(ItemRow.language)
        .where(ItemRow.id.in_(select(MatchRow.item_id)), ItemRow.language.is_not(None))
        .distinct()
        .order_by(ItemRow.language)
    )
    sources = session.scalars(select(SourceRow.name).order_by(SourceRow.name))
    return FilterChoices(
        tuple(watchlists), tuple(terms), tuple(x for x in languages if x), tuple(sources)
    )


# ---------------------------------------------------------------- trends


def trends(
    session: Session, *, now: datetime, days: int, watchlist: str | None = None
) -> list[TrendSeries]:
    """Mentions (matched items) per UTC day of publication per term, split by
    language, over the `days` days up to `now`, most mentioned term first."""
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    stmt = (
        select(MatchRow.terms, ItemRow.published, ItemRow.language)
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .where(ItemRow.published >= start, ItemRow.published <= now)
    )
    if watchlist:
        stmt = stmt.join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id).where(
            WatchlistRow.name == watchlist
        )
    counts: Counter[tuple[str, str, int]] = Counter()
    for terms, published, language in session.execute(stmt):
        day = (published - start).days
        for term in dict.fromkeys(terms or ()):
            counts[(str(term), language or "?", day)] += 1
    return _series(counts, start, days)


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
