"""Read queries for the web view, behind a small read-only interface.

`WebReader` is everything the web package may ask of the database; it has no
method that writes. `SqlWebReader` implements it over a session factory, one
short read transaction per call. Records out are frozen dataclasses; ORM rows
never leave this module.

Grouping: the matches page shows *groups* of matched items, one per story
(`MatchGroup.story_id`, the page `/stories/{id}`); an item the story step has
not reached yet (`items.story_id` NULL) is a group of its own
(`MatchGroup.story_id` None, `key` the item id, the page `/items/{id}`).
`/api/stories` returns `storage.stories.list_stories` records, whose
`as_json` is what `stories --json` prints.

Every list is bounded (`limit`), so a page costs the same with 10 or 100,000
items.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, Protocol

from sqlalchemy import Integer, Select, func, literal, or_, select, text
from sqlalchemy.orm import Session, sessionmaker

from alerts.alert_records import StoredMatch
from storage.db import transaction
from storage.outbox import AlertListing, list_alerts
from storage.stories import StoryView, list_stories
from storage.tables import (
    ItemRow,
    MatchRow,
    MatchTermRow,
    RuleRow,
    SourceRow,
    StoryRow,
    WatchlistRow,
)

MAX_GROUPS = 100
MAX_MATCHES_SCANNED = 500
API_LIMIT = 1000  # the largest `limit` accepted (as before the page cap)
API_PAGE = 500  # the most objects one API response holds; `Link: rel="next"` goes on
API_DEFAULT = 100
# A position in a newest-first listing: (time, id) of the last object served.
Cursor = tuple[datetime, int]


@dataclass(frozen=True, slots=True)
class MatchFilter:
    """The filters of the matches page and of `/api/matches` (all optional)."""

    watchlist: str | None = None
    term: str | None = None
    language: str | None = None
    source: str | None = None
    since: datetime | None = None
    tag: str | None = None  # a source tag (an OPML folder)
    before: Cursor | None = None  # only matches after this one (newest first): the API's cursor


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
    """Items that report one event (a story, or one item not yet in a story),
    newest match first. `title` is the story's headline (its first item's
    title); `en_title` the English one shown beside a foreign headline."""

    key: int  # the story id, or the item id when `story_id` is None
    title: str
    last_matched: datetime
    items: tuple[GroupItem, ...]
    sources: tuple[str, ...]
    languages: tuple[str, ...]
    terms: tuple[str, ...]
    watchlists: tuple[str, ...]
    story_id: int | None = None
    en_title: str | None = None


@dataclass(frozen=True, slots=True)
class FilterChoices:
    """What the filter form offers."""

    watchlists: tuple[str, ...]
    terms: tuple[str, ...]
    languages: tuple[str, ...]
    sources: tuple[str, ...]
    tags: tuple[str, ...] = ()


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
    def item_page(self, item_id: int) -> MatchGroup | int | None: ...
    def stories(
        self,
        watchlist: str | None,
        since: datetime | None,
        limit: int,
        before: Cursor | None = None,
    ) -> list[StoryView]: ...
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

    def item_page(self, item_id: int) -> MatchGroup | int | None:
        with self._read() as s:
            return item_page(s, item_id)

    def stories(
        self,
        watchlist: str | None,
        since: datetime | None,
        limit: int,
        before: Cursor | None = None,
    ) -> list[StoryView]:
        with self._read() as s:
            return list_stories(s, watchlist=watchlist, since=since, limit=limit, before=before)

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


def _json_has(session: Session, column: str, value: str, name: str) -> Any:
    """`value` is one of the JSON array in `column` (exact)."""
    if session.get_bind().dialect.name == "postgresql":
        return text(f"CAST({column} AS jsonb) ? :{name}").bindparams(**{name: value})
    return text(
        f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = :{name})"
    ).bindparams(**{name: value})


def _tagged_sources(session: Session, tag: str) -> list[int]:
    """The ids of the sources carrying `tag`, read once (sources are few), so
    the listing tests a source id per row rather than a JSON array (a tag
    that no source carries cost 98 ms of CPU per page on SQLite)."""
    has = _json_has(session, "sources.tags", tag, "tag")
    stmt = text(f"SELECT sources.id FROM sources WHERE {has.text}").bindparams(tag=tag)
    return [int(i) for i in session.scalars(stmt.columns(id=Integer))]


def _one_id(session: Session, column: Any, where: Any) -> int | None:
    found = session.scalar(select(column).where(where))
    return None if found is None else int(found)


def _listing(session: Session, f: MatchFilter, *columns: Any) -> Select[Any] | None:
    """`columns` of the matches passing `f`, newest first (matched_at, id),
    or None when a name in `f` names nothing (nothing passes).

    The rows are read from the index that reaches the passing matches first,
    so a filter that passes few of them does not read every match:
    - `term`: `ix_match_terms_term` (term, matched_at, match_id, watchlist_id,
      language), that term's matches newest first, with the watchlist and
      language filters tested on the index entry (migration 0012);
    - else `watchlist`: `ix_matches_watchlist` (watchlist_id, matched_at, id);
    - else `ix_matches_matched_at`.
    The watchlist, source and tag are resolved to ids first (one key lookup
    each), so each is a test of a column of the rows read, not a join filter."""
    watchlist = source = None
    if f.watchlist:
        watchlist = _one_id(session, WatchlistRow.id, WatchlistRow.name == f.watchlist)
        if watchlist is None:
            return None
    if f.source:
        source = _one_id(session, SourceRow.id, SourceRow.name == f.source)
        if source is None:
            return None
    tagged = _tagged_sources(session, f.tag) if f.tag else None
    if tagged == []:
        return None
    if f.term:
        at, key = MatchTermRow.matched_at, MatchTermRow.match_id
        stmt = (
            select(*columns)
            .select_from(MatchTermRow)
            .join(MatchRow, MatchRow.id == MatchTermRow.match_id)
            .where(MatchTermRow.term == f.term)
        )
        if watchlist is not None:
            stmt = stmt.where(MatchTermRow.watchlist_id == watchlist)
        if f.language:  # the item's language, kept in match_terms by the triggers
            stmt = stmt.where(MatchTermRow.language == f.language)
    else:
        at, key = MatchRow.matched_at, MatchRow.id
        stmt = select(*columns).select_from(MatchRow)
        if watchlist is not None:
            stmt = stmt.where(MatchRow.watchlist_id == watchlist)
        if f.language:
            stmt = stmt.where(ItemRow.language == f.language)
    stmt = (
        stmt.join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .order_by(at.desc(), key.desc())
    )
    if f.since is not None:
        stmt = stmt.where(at >= f.since)
    if source is not None:
        stmt = stmt.where(ItemRow.source_id == source)
    if tagged is not None:
        stmt = stmt.where(ItemRow.source_id.in_(tagged))
    if f.before is not None:
        # `<=` on the indexed column bounds the range; the OR breaks ties by id
        last_at, last = f.before
        stmt = stmt.where(at <= last_at, or_(at < last_at, key < last))
    return stmt


def _joined(*columns: Any) -> Select[Any]:
    return (
        select(*columns)
        .join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
        .join(ItemRow, ItemRow.id == MatchRow.item_id)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .order_by(MatchRow.matched_at.desc(), MatchRow.id.desc())
    )


# What `matches --json` prints of a match (`storage.matches.stored_match`
# reads the same fields from ORM rows): plain columns, no ORM objects.
_API_COLUMNS = (
    MatchRow.id,
    WatchlistRow.name.label("watchlist"),
    MatchRow.terms,
    MatchRow.snippets,
    MatchRow.matched_at,
    MatchRow.item_id,
    ItemRow.url,
    ItemRow.title,
    SourceRow.name.label("source"),
    ItemRow.published,
    ItemRow.language,
    ItemRow.story_id,
)


def filtered_matches(session: Session, f: MatchFilter, limit: int) -> list[StoredMatch]:
    """Matches newest first as `matches --json` reads them (the records of
    `stored_match`, compared with the CLI's output by the tests), from plain
    columns: ORM rows cost 500 matches ~10 ms of CPU more."""
    stmt = _listing(session, f, *_API_COLUMNS)
    if stmt is None:
        return []
    return [
        StoredMatch(
            id=mid,
            watchlist=wl,
            terms=tuple(terms),
            snippets=tuple(snippets),
            matched_at=at,
            item_id=item,
            item_url=url,
            item_title=title,
            source_name=src,
            published=published,
            language=language,
            story_id=story,
        )
        for mid, wl, terms, snippets, at, item, url, title, src, published, language, story in (
            session.execute(stmt.limit(limit))
        )
    ]


def _highlights(hits: Sequence[Any] | None) -> tuple[str, ...]:
    spellings = (h.get("spelling") for h in hits or () if isinstance(h, dict))
    return tuple(dict.fromkeys(s for s in spellings if isinstance(s, str) and s))


# What a group row needs; the story page adds the snippets and hits.
_LIST_COLUMNS = (
    ItemRow.story_id,
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
# The group of a match row: its story, or the item alone while it has none.
GroupKey = tuple[bool, int]


def _key(row: Any) -> GroupKey:
    return (True, row.story_id) if row.story_id is not None else (False, row.item_id)


def _fold(rows: Sequence[Any], limit: int) -> dict[GroupKey, dict[int, list[Any]]]:
    """Match rows (newest first) by group, then by item, in the order of each
    group's newest match; at most `limit` groups."""
    order: dict[GroupKey, dict[int, list[Any]]] = {}
    for row in rows:
        key = _key(row)
        if key not in order and len(order) >= limit:
            continue
        order.setdefault(key, {}).setdefault(row.item_id, []).append(row)
    return order


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


@dataclass(frozen=True, slots=True)
class _Story:
    """What a story row adds to its matched items: the headline and every
    member's outlet and language (matched or not)."""

    title: str
    en_title: str | None
    sources: tuple[str, ...]
    languages: tuple[str, ...]


def _group(
    key: GroupKey, items: Sequence[GroupItem], last: datetime, story: _Story | None
) -> MatchGroup:
    own_sources = tuple(dict.fromkeys(i.source for i in items))
    own_languages = tuple(dict.fromkeys(i.language for i in items if i.language))
    return MatchGroup(
        key=key[1],
        title=story.title if story else items[0].title,
        last_matched=last,
        items=tuple(items),
        sources=tuple(dict.fromkeys((*own_sources, *(story.sources if story else ())))),
        languages=tuple(dict.fromkeys((*own_languages, *(story.languages if story else ())))),
        terms=tuple(dict.fromkeys(t for i in items for t in i.terms)),
        watchlists=tuple(dict.fromkeys(w for i in items for w in i.watchlists)),
        story_id=key[1] if key[0] else None,
        en_title=story.en_title if story else None,
    )


def _stories(session: Session, ids: Sequence[int]) -> dict[int, _Story]:
    """Headlines and member outlets/languages of `ids`: two `IN` queries, by
    the primary key and `ix_items_story_id`."""
    if not ids:
        return {}
    heads = session.execute(
        select(StoryRow.id, StoryRow.title, StoryRow.title_language, StoryRow.en_title).where(
            StoryRow.id.in_(ids)
        )
    ).all()
    members: dict[int, list[tuple[str, str | None]]] = {}
    for sid, source, language in session.execute(
        select(ItemRow.story_id, SourceRow.name, ItemRow.language)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .where(ItemRow.story_id.in_(ids))
        .order_by(ItemRow.published, ItemRow.id)
    ):
        members.setdefault(sid or 0, []).append((source, language))
    return {
        sid: _Story(
            title=title,
            en_title=en_title if en_title and en_title != title and not _english(lang) else None,
            sources=tuple(dict.fromkeys(s for s, _ in members.get(sid, ()))),
            languages=tuple(dict.fromkeys(lg for _, lg in members.get(sid, ()) if lg)),
        )
        for sid, title, lang, en_title in heads
    }


def _english(language: str | None) -> bool:
    return language is not None and language.split("-")[0].lower() == "en"


def match_groups(session: Session, f: MatchFilter, limit: int = MAX_GROUPS) -> list[MatchGroup]:
    """The newest groups (stories, or items without one) with a match under
    `f`. Scans at most MAX_MATCHES_SCANNED matches (newest first, by index),
    so the page's cost does not grow with the database; a story is listed
    when one of its items passes the filters, with every member's outlet and
    language."""
    stmt = _listing(session, f, *_LIST_COLUMNS)
    if stmt is None:
        return []
    folded = _fold(list(session.execute(stmt.limit(MAX_MATCHES_SCANNED))), limit)
    stories = _stories(session, [k for is_story, k in folded if is_story])
    return [
        _group(
            key,
            [_group_item(rows) for rows in by_item.values()],
            next(iter(by_item.values()))[0].matched_at,
            stories.get(key[1]) if key[0] else None,
        )
        for key, by_item in folded.items()
    ]


def story_page(session: Session, key: int) -> MatchGroup | None:
    """Every item of story `key` (matched or not, newest match first, then by
    publication), with the snippets and hits of its matches."""
    stories = _stories(session, [key])
    if key not in stories:
        return None
    matched = _fold(
        list(session.execute(_joined(*_PAGE_COLUMNS).where(ItemRow.story_id == key))), 1
    )
    by_item = matched.get((True, key), {})
    items = [_group_item(rows) for rows in by_item.values()]
    others = session.execute(
        select(ItemRow.id, ItemRow.url, ItemRow.title, SourceRow.name, ItemRow.language)
        .add_columns(ItemRow.published)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .where(ItemRow.story_id == key, ItemRow.id.not_in(list(by_item) or [-1]))
        .order_by(ItemRow.published.desc(), ItemRow.id.desc())
    )
    items += [GroupItem(i, url, title, src, lang, pub) for i, url, title, src, lang, pub in others]
    if not items:
        return None
    last = next(iter(by_item.values()))[0].matched_at if by_item else items[0].published
    return _group((True, key), items, last, stories[key])


def item_page(session: Session, item_id: int) -> MatchGroup | int | None:
    """An item's story id when it has one (its page is the story's), else the
    item alone as a group of its matches; None when it has no match and no story."""
    story_id = session.scalar(select(ItemRow.story_id).where(ItemRow.id == item_id))
    if story_id is not None:
        return int(story_id)
    rows = list(session.execute(_joined(*_PAGE_COLUMNS).where(MatchRow.item_id == item_id)))
    folded = _fold(rows, 1)
    if not folded:
        return None
    key, by_item = next(iter(folded.items()))
    items = [_group_item(r) for r in by_item.values()]
    return _group(key, items, rows[0].matched_at, None)


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
        tuple(watchlists),
        tuple(terms),
        tuple(x for x in languages if x),
        tuple(sources),
        tuple(session.scalars(_distinct_tags(session))),
    )


def _distinct_tags(session: Session) -> Any:
    """Every source tag, sorted (counted in the database; sources are few)."""
    if session.get_bind().dialect.name == "postgresql":
        return text(
            "SELECT DISTINCT t FROM sources,"
            " jsonb_array_elements_text(CAST(sources.tags AS jsonb)) AS t"
            " WHERE jsonb_typeof(CAST(sources.tags AS jsonb)) = 'array' ORDER BY t"
        )
    return text(
        "SELECT DISTINCT j.value FROM sources, json_each(sources.tags) AS j"
        " WHERE json_type(sources.tags) = 'array' AND j.type = 'text' ORDER BY j.value"
    )


# ---------------------------------------------------------------- trends


def trends(
    session: Session, *, now: datetime, days: int, watchlist: str | None = None
) -> list[TrendSeries]:
    """Mentions (matches) per UTC day of publication per term, split by
    language, over the `days` days up to `now`'s day, most mentioned term first.

    Read from `match_terms` (one row per match and term, dated and with its
    item's language, kept by triggers; migration 0009): one range of the
    covering index `ix_match_terms_day`, counted in the database, so the page
    neither joins matches to items nor parses their term lists."""
    start = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    stmt = (
        select(MatchTermRow.day, MatchTermRow.term, MatchTermRow.language, func.count())
        .where(MatchTermRow.day >= start.date().isoformat())
        .where(MatchTermRow.day <= now.date().isoformat())
        .group_by(MatchTermRow.day, MatchTermRow.term, MatchTermRow.language)
    )
    if watchlist:
        wanted = select(WatchlistRow.id).where(WatchlistRow.name == watchlist)
        stmt = stmt.where(MatchTermRow.watchlist_id.in_(wanted.scalar_subquery()))
    counts: Counter[tuple[str, str, int]] = Counter()
    first = start.date()
    for on, term, language, n in session.execute(stmt):
        counts[(term, language or "?", (_date(on) - first).days)] += int(n)
    return _series(counts, start, days)


@lru_cache(maxsize=1024)
def _date(day: str) -> date:
    return date.fromisoformat(day)


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
    stmt = select(  # plain columns, not ORM rows (200 sources: ~3 ms of CPU less)
        SourceRow.name,
        SourceRow.url,
        SourceRow.kind,
        SourceRow.enabled,
        SourceRow.last_success_at,
        SourceRow.last_polled_at,
        SourceRow.last_error,
        SourceRow.consecutive_failures,
        SourceRow.next_poll_at,
        SourceRow.current_interval_seconds,
        SourceRow.every_seconds,
        func.coalesce(counts.c.n, literal(0)).label("n"),
    ).outerjoin(counts, counts.c.source_id == SourceRow.id)
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
            items=int(row.n),
            next_poll_at=row.next_poll_at,
            interval_seconds=row.current_interval_seconds or row.every_seconds,
        )
        for row in session.execute(stmt)
    ]
    return sorted(out, key=lambda h: (not h.failing, -h.consecutive_failures, h.name))
