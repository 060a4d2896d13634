"""The web view's filtered listings read each filter from its own index
(migration 0012: a term from `match_terms`, a watchlist from
`ix_matches_watchlist`); whichever path a filter takes, the rows are exactly
the matches that pass every filter, newest first, on SQLite and PostgreSQL:
compared with the whole listing (`list_matches`, no index path) filtered in
Python, for every kind of filter alone and in combination, with names that
exist, names that pass nothing, and names that do not exist."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from alerts.alert_records import StoredMatch
from storage.db import transaction
from storage.matches import list_matches
from storage.tables import SourceRow
from storage.views import MAX_GROUPS, MAX_MATCHES_SCANNED, MatchFilter, filtered_matches
from storage.views import match_groups as read_groups
from tests.conftest import Database
from tests.support.webdata import bulk

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TAGGED = {"source-003", "source-004", "source-011"}
CHOICES = {
    "watchlist": [None, "brics", "air-defence", "none-such"],
    "term": [None, "SAM", "Kazan", "BRICS", "none-such"],
    "language": [None, "ru", "ko", "xx"],
    "source": [None, "source-007", "source-003", "none-such"],
    "since": [None, NOW - timedelta(days=7)],
    "tag": [None, "gov", "none-such"],
}


@pytest.fixture
def world(db: Database) -> Iterator[list[StoredMatch]]:
    bulk(db.engine, NOW, items=3_000, matches=1_400, sources=20, stories=300)
    with db.engine.begin() as conn:
        conn.execute(update(SourceRow).where(SourceRow.name.in_(TAGGED)).values(tags=["gov"]))
    with transaction(db.factory) as s:
        yield list(list_matches(s))


def _passes(m: StoredMatch, f: MatchFilter) -> bool:
    return (
        (f.watchlist is None or m.watchlist == f.watchlist)
        and (f.term is None or f.term in m.terms)
        and (f.language is None or m.language == f.language)
        and (f.source is None or m.source_name == f.source)
        and (f.since is None or m.matched_at >= f.since)
        and (f.tag is None or (f.tag == "gov" and m.source_name in TAGGED))
    )


def _filter(values: dict[str, Any]) -> MatchFilter:
    return MatchFilter(**values)


def _filters() -> list[MatchFilter]:
    """Each filter alone (every value), then a fixed sample of combinations."""
    alone = [_filter({k: v}) for k, values in CHOICES.items() for v in values]
    every = [
        _filter(dict(zip(CHOICES, values, strict=True)))
        for values in itertools.product(*CHOICES.values())
    ]
    return alone + random.Random(5).sample(every, 90)


def test_every_filter_reads_exactly_the_passing_matches(
    db: Database, world: list[StoredMatch]
) -> None:
    assert len(world) == 1_400
    nonempty = 0
    with transaction(db.factory) as s:
        for f in _filters():
            want = [m for m in world if _passes(m, f)]
            nonempty += bool(want)
            assert filtered_matches(s, f, 10_000) == want, f
            # page by page through the cursor: the same rows, none twice
            pages: list[StoredMatch] = []
            while True:
                page = filtered_matches(s, f, 97)
                pages += page
                if len(page) < 97:
                    break
                f = replace(f, before=(page[-1].matched_at, page[-1].id))
            assert pages == want, f
    assert nonempty > 25, "many combinations must pass something, or the test shows little"


def test_the_list_groups_the_newest_passing_matches(db: Database, world: list[StoredMatch]) -> None:
    """The page's groups (stories, or items without one) are those of the
    newest MAX_MATCHES_SCANNED passing matches, in the order of their newest
    match, each with exactly its passing items."""
    with transaction(db.factory) as s:
        for f in _filters()[::3]:
            scanned = [m for m in world if _passes(m, f)][:MAX_MATCHES_SCANNED]
            keys: dict[tuple[bool, int], set[int]] = {}
            for m in scanned:
                key = (True, m.story_id) if m.story_id is not None else (False, m.item_id)
                if key in keys or len(keys) < MAX_GROUPS:
                    keys.setdefault(key, set()).add(m.item_id)
            groups = read_groups(s, f)
            got = {(g.story_id is not None, g.key): {i.id for i in g.items} for g in groups}
            assert list(got) == list(keys), f
            assert got == keys, f
