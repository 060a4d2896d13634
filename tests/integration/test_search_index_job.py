"""The search index off the crawl path (issue #15): `store_items` only lists
new items as pending, the daemon's search-index job indexes them in batches.

On both databases: after a store the items are pending and not indexed, and
search is exact (pending items are scanned); after the job they are indexed
and the results are the same; the job is idempotent and resumable (a run cut
short by its budget leaves the rest pending); a batch that fails or a
process killed mid-batch loses nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

import storage.search_index as search_index
from newswatch.cli_search import search_plan
from scheduler.context import HousekeepingContext
from scheduler.jobs import index_search
from storage.db import transaction
from storage.items import store_items
from storage.repository import SqlStore
from storage.search import ItemFilter
from storage.search_index import index_pending, pending_count
from storage.sources import add_source
from tests.conftest import Database
from tests.integration.test_search_index import FIXED, T0, both, corpus

ROOT = Path(__file__).resolve().parents[2]


def _index_only_candidates(db: Database, query: str) -> set[int]:
    """The ids the index itself names for `query` (pending ones left out)."""
    plan = search_plan(query)
    assert plan is not None
    with transaction(db.factory) as s:
        return set(search_index._paged(s, lambda s2, b: search_index._indexed_page(s2, plan, b)))


def results(db: Database) -> dict[str, list[int]]:
    out = {}
    for query in FIXED:
        scan, index = both(db, query, ItemFilter(), 10**6)
        assert index == scan, query
        out[query] = index
    return out


@pytest.fixture
def crawled(db: Database) -> Iterator[tuple[Database, HousekeepingContext]]:
    """90 items stored by the crawl path into an empty index."""
    with transaction(db.factory) as s:
        if db.backend == "sqlite":  # drop the terms other tests left (contentless FTS5)
            s.execute(text("INSERT INTO search_fts (search_fts) VALUES ('delete-all')"))
        else:
            s.execute(text("DELETE FROM search_terms"))
        src = add_source(
            s,
            name="a",
            url="https://a.example/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
        )
        items = corpus(90, 23)
        store_items(s, src.id, items[:50], T0)
        store_items(s, src.id, items[50:], T0)
    ctx = HousekeepingContext(
        store=SqlStore(db.engine, db.factory), clock=lambda: T0, retention=timedelta(days=30)
    )
    yield db, ctx


def test_crawl_only_lists_items_pending_and_search_stays_exact(
    crawled: tuple[Database, HousekeepingContext],
) -> None:
    db, _ = crawled
    with transaction(db.factory) as s:
        assert pending_count(s) == 90
    assert _index_only_candidates(db, "Pantsir OR 방공 OR SAM") == set()
    found = results(db)
    assert any(found.values()), found  # the queries do hit pending items


def test_the_job_indexes_everything_and_results_do_not_change(
    crawled: tuple[Database, HousekeepingContext],
) -> None:
    db, ctx = crawled
    before = results(db)
    assert index_search(ctx, batch=1_000) == 90
    with transaction(db.factory) as s:
        assert pending_count(s) == 0
    assert _index_only_candidates(db, "Pantsir OR 방공 OR SAM")  # through the index alone
    assert results(db) == before
    assert index_search(ctx) == 0  # idempotent: nothing left, nothing changes
    assert results(db) == before


def test_the_job_is_resumable_batch_by_batch(
    crawled: tuple[Database, HousekeepingContext],
) -> None:
    db, ctx = crawled
    before = results(db)
    left = 90
    while left:
        n = index_search(ctx, batch=7, budget=0.0)  # one batch per run
        assert n == min(7, left)
        left -= n
        with transaction(db.factory) as s:
            assert pending_count(s) == left
        assert results(db) == before  # exact at every step, part indexed, part pending
    assert index_search(ctx, batch=7) == 0


def test_a_batch_that_fails_midway_loses_nothing(
    crawled: tuple[Database, HousekeepingContext], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, ctx = crawled
    before = results(db)
    real = search_index.document_terms
    calls = 0

    def fails_on_the_fifth(fields: tuple[str, str, str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("injected: mid-batch")
        return real(fields)

    monkeypatch.setattr(search_index, "document_terms", fails_on_the_fifth)
    with pytest.raises(RuntimeError, match="mid-batch"):
        index_search(ctx, batch=10)
    with transaction(db.factory) as s:
        assert pending_count(s) == 90
    assert results(db) == before
    monkeypatch.setattr(search_index, "document_terms", real)
    assert index_search(ctx, batch=10) == 90
    assert results(db) == before


def test_a_process_killed_mid_batch_loses_nothing(
    crawled: tuple[Database, HousekeepingContext],
) -> None:
    db, ctx = crawled
    before = results(db)
    script = textwrap.dedent(
        f"""
        import os, signal
        from storage.db import make_engine, session_factory
        from storage.search_index import index_pending
        s = session_factory(make_engine({db.url!r}))()
        assert index_pending(s, batch=40) == 40
        s.flush()
        os.kill(os.getpid(), signal.SIGKILL)  # before the commit
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, timeout=120)
    assert r.returncode == -9
    with transaction(db.factory) as s:
        assert pending_count(s) == 90
    assert results(db) == before
    assert index_search(ctx) == 90
    assert results(db) == before


def test_postgres_concurrent_indexers_take_disjoint_batches(pg_db: Database) -> None:
    with transaction(pg_db.factory) as s:
        s.execute(text("DELETE FROM search_terms"))
        src = add_source(
            s,
            name="a",
            url="https://a.example/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
        )
        store_items(s, src.id, corpus(30, 5), T0)
    first, second = pg_db.factory(), pg_db.factory()
    try:
        assert index_pending(first, batch=20) == 20
        assert index_pending(second, batch=20) == 10  # skips the first's locked rows
        second.commit()
        first.commit()
    finally:
        first.close()
        second.close()
    with transaction(pg_db.factory) as s:
        assert pending_count(s) == 0
        assert s.scalar(text("SELECT count(*) FROM search_terms")) == 30
    assert any(results(pg_db).values())
