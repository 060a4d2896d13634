"""A bulk write refreshes PostgreSQL's planner statistics in its own transaction.

Without it a 100,000-item feed was planned with an empty table's statistics
for the rest of the crawl (each 500-id lookup scanned whole tables; the
hostile 100,000-item test was killed at 540 s). `refresh_statistics` runs
ANALYZE after writes of at least STATS_AFTER_ROWS rows; small writes leave the
statistics to autovacuum. PostgreSQL only: SQLite keeps no statistics unless
ANALYZE was run, and plans by its indexes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy import text

from crawler.crawl_records import Item
from storage.db import STATS_AFTER_ROWS, transaction
from storage.items import store_items
from storage.stories import save_vectors
from tests.conftest import Database
from tests.support.sources import feed_source_id

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _items(first: int, count: int) -> list[Item]:
    return [
        Item(
            url=f"https://bulk.example/a/{n}",
            guid=f"g{n}",
            title=f"bulk item {n}",
            summary="",
            text="",
            published=T0,
            language="en",
            content_hash=f"h{n}",
        )
        for n in range(first, first + count)
    ]


def _analyzed(db: Database, table: str) -> int:
    with db.engine.connect() as c:
        count = c.execute(
            text("SELECT analyze_count FROM pg_stat_user_tables WHERE relname = :t"), {"t": table}
        ).scalar_one()
        return int(count)


@pytest.mark.parametrize(
    ("count", "analyzed"), [(10, False), (STATS_AFTER_ROWS - 1, False), (STATS_AFTER_ROWS, True)]
)
def test_bulk_item_writes_analyze_items(pg_db: Database, count: int, analyzed: bool) -> None:
    before = _analyzed(pg_db, "items")
    with transaction(pg_db.factory) as s:
        sid = feed_source_id(s, "bulk", T0)
        assert len(store_items(s, sid, _items(0, count), T0)) == count
    assert (_analyzed(pg_db, "items") > before) is analyzed


@pytest.mark.parametrize(("count", "analyzed"), [(100, False), (STATS_AFTER_ROWS, True)])
def test_bulk_vector_writes_analyze_item_vectors(
    pg_db: Database, count: int, analyzed: bool
) -> None:
    with transaction(pg_db.factory) as s:
        sid = feed_source_id(s, "bulk", T0)
        ids = list(store_items(s, sid, _items(0, count), T0).values())
    before = _analyzed(pg_db, "item_vectors")
    vector = np.ones(512, dtype=np.float32) / np.sqrt(512)
    with transaction(pg_db.factory) as s:
        save_vectors(s, [(i, vector) for i in ids], encoder="test", version="1")
    assert (_analyzed(pg_db, "item_vectors") > before) is analyzed
