"""`newswatch search` with the prefilter index finds exactly what the scan
finds, in the same order, on SQLite (FTS5) and PostgreSQL (tsvector/GIN):
for generated items (four languages, case/width variants) and generated
queries, with part of the items still pending (not indexed yet), after a
reindex, through filters and limits, and for items too large for a tsvector.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

import storage.search_index as search_index
from crawler.crawl_records import Item
from newswatch.cli_common import UsageProblem
from newswatch.cli_search import compile_query, found_items, search_plan
from storage.db import transaction
from storage.items import prune_items, store_items
from storage.search import ItemFilter, iter_candidate_items, iter_items_newest_first
from storage.search_index import index_pending, pending_count, reset_index
from storage.sources import add_source
from tests.conftest import Database
from tests.unit.test_search_prefilter import BASE_WORDS, QUERY, SEP, _variant

T0 = datetime(2026, 11, 30, 8, tzinfo=UTC)
LANGUAGES = ("en", "ru", "ko", "zh")
VARIANTS = ["same", "upper", "lower", "title", "wide", "shy", "spaced"]


def corpus(n: int, seed: int) -> list[Item]:
    rng = random.Random(seed)
    seps = [" ", "\n", "-", ", ", "을 ", "를", "的", "s ", "es ", "'s ", " (", ") "]

    def field(k: int) -> str:
        return "".join(
            _variant(rng.choice(BASE_WORDS), rng.choice(VARIANTS)) + rng.choice(seps)
            for _ in range(rng.randrange(k))
        )

    return [
        Item(
            url=f"https://news.example/{seed}/{i}",
            guid=str(i),
            title=field(4),
            summary=field(8),
            text=field(20),
            published=T0,
            language=LANGUAGES[i % 4],
            content_hash=f"{i:064x}",
        )
        for i in range(n)
    ]


@pytest.fixture
def stored(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """120 items from two sources; the older half pending, as after migration 0011."""
    monkeypatch.setattr(search_index, "PAGE", 7)  # many pages of candidates
    with transaction(db.factory) as s:
        a = add_source(
            s,
            name="a",
            url="https://a.example/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
        )
        b = add_source(
            s,
            name="b",
            url="https://b.example/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
        )
        items = corpus(120, 17)
        store_items(s, a.id, items[:60], T0 - timedelta(days=2))
        store_items(s, b.id, items[60:], T0)
    with transaction(db.factory) as s:
        reset_index(s)
    with transaction(db.factory) as s:
        assert index_pending(s, batch=60) == 60  # the newer half
        assert pending_count(s) == 60
    yield db


def both(db: Database, query: str, where: ItemFilter, limit: int) -> tuple[list[int], list[int]]:
    matcher = compile_query(query)
    plan = search_plan(query)
    with transaction(db.factory) as s:
        scan = [
            x.id for x, _ in found_items(matcher, iter_items_newest_first(s, where, batch=9), limit)
        ]
        if plan is None:
            return scan, scan
        batches = iter_candidate_items(s, where, plan, batch=9)
        index = [x.id for x, _ in found_items(matcher, batches, limit)]
    return scan, index


def _valid(query: str) -> bool:
    try:
        compile_query(query)
    except UsageProblem:  # a generated query the matcher refuses (e.g. only "€")
        return False
    return True


WHERE = st.sampled_from(
    [
        ItemFilter(),
        ItemFilter(language="ko"),
        ItemFilter(source="a"),
        ItemFilter(since=T0 - timedelta(hours=1)),
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=QUERY, where=WHERE, limit=st.sampled_from([10**6, 3]))
def test_index_finds_what_the_scan_finds(
    stored: Database, query: str, where: ItemFilter, limit: int
) -> None:
    if not _valid(query):
        return
    scan, index = both(stored, query, where, limit)
    assert index == scan, (query, where)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(word=st.sampled_from(BASE_WORDS), how=st.sampled_from(VARIANTS), sep=SEP)
def test_index_finds_what_the_scan_finds_for_single_words(
    stored: Database, word: str, how: str, sep: str
) -> None:
    query = _variant(word, how).replace('"', "")
    query = f'"{query}"' if any(c.isspace() for c in query) else query
    if not _valid(query):
        return
    scan, index = both(stored, query, ItemFilter(), 10**6)
    assert index == scan, query


FIXED = [
    "Pantsir",
    "방공",
    "판치르",
    "地对空",
    "Панцир*",
    "F-35",
    "SAM",
    "north NEAR/2 Korea",
    "Pantsir NEAR/3 (SAM OR 방공)",
]


def test_the_corpus_has_matches_and_the_index_narrows(stored: Database) -> None:
    """The generated corpus is not trivial: fixed queries hit some items, not all."""
    with transaction(stored.factory) as s:
        total = len([x for b in iter_items_newest_first(s, ItemFilter()) for x in b])
    for query in FIXED:
        scan, index = both(stored, query, ItemFilter(), 10**6)
        assert index == scan and 0 < len(scan) < total, query
    with transaction(stored.factory) as s:
        while index_pending(s):
            pass
        plan = search_plan("방공")
        assert plan is not None
        candidates = [x.id for b in iter_candidate_items(s, ItemFilter(), plan) for x in b]
    assert len(candidates) < total


def test_fully_indexed_and_after_prune_and_new_items(stored: Database) -> None:
    with transaction(stored.factory) as s:
        while index_pending(s):
            pass
        assert pending_count(s) == 0
        # Items deleted (stale FTS5 rows stay) and new ones stored (maybe reusing ids).
        prune_items(s, before=T0 - timedelta(days=1))
        src = add_source(
            s,
            name="c",
            url="https://c.example/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
        )
        store_items(s, src.id, corpus(30, 99), T0)
    for query in FIXED:
        scan, index = both(stored, query, ItemFilter(), 10**6)
        assert index == scan, query


def test_reindex_drops_stale_terms_and_keeps_results(stored: Database) -> None:
    with transaction(stored.factory) as s:
        total = reset_index(s)
    assert total == 120
    for query in FIXED:  # all pending: the index names every item, results unchanged
        scan, index = both(stored, query, ItemFilter(), 10**6)
        assert index == scan, query
    with transaction(stored.factory) as s:
        while index_pending(s, batch=50):
            pass
    for query in FIXED:
        scan, index = both(stored, query, ItemFilter(), 10**6)
        assert index == scan, query


def test_postgres_item_too_large_for_a_tsvector_is_always_a_candidate(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_index, "PG_MAX_LEXEME_BYTES", 50)
    with transaction(pg_db.factory) as s:
        src = add_source(
            s,
            name="a",
            url="https://a.example/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
        )
        big = Item(
            url="https://a.example/big",
            guid="big",
            title="Pantsir",
            summary="",
            text=" ".join(f"w{i}" for i in range(100)),
            published=T0,
            language="en",
            content_hash="0" * 64,
        )
        small = Item(
            url="https://a.example/small",
            guid="small",
            title="Pantsir",
            summary="",
            text="",
            published=T0,
            language="en",
            content_hash="1" * 64,
        )
        empty = Item(
            url="https://a.example/empty",
            guid="empty",
            title="",
            summary="",
            text="",
            published=T0,
            language=None,
            content_hash="2" * 64,
        )
        store_items(s, src.id, [big, small, empty], T0)
        assert index_pending(s) == 3
        marked = s.execute(
            text("SELECT count(*) FROM search_terms WHERE terms = array_to_tsvector(ARRAY['§§'])")
        ).scalar()
    assert marked == 1
    plan = search_plan("Pantsir")
    assert plan is not None
    with transaction(pg_db.factory) as s:
        candidates = [x.item.url for b in iter_candidate_items(s, ItemFilter(), plan) for x in b]
    assert sorted(candidates) == ["https://a.example/big", "https://a.example/small"]
    scan, index = both(pg_db, "Pantsir", ItemFilter(), 10**6)
    assert index == scan and len(scan) == 2
