"""SQLite's item inserts as driver SQL store exactly what the Core statement stored.

storage.items `_store_sqlite` renders the multi-row INSERT itself and binds
the datetimes with the column type's processor; the reference here is the
code it replaced: `_STORE_ITEMS["sqlite"]` executed with `_row` dicts
(SQLAlchemy's insertmanyvalues), and search_pending written through
`Session.execute`. Every row of both tables (ids included), the returned
{url: id}, and the errors must be the same.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from crawler.crawl_records import Item, PollOutcome
from storage import items as items_module
from storage.db import StorageError, session_factory, transaction
from storage.items import BATCH, MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, store_items
from storage.repository import SqlStore
from tests.support.sources import feed_source
from tests.support.sqlitedb import migrated_sqlite
from tests.support.sqlwrites import rolled_back, writes_sent

NOW = datetime(2026, 11, 30, 23, 5, 7, 123456, tzinfo=UTC)


def reference_store_items(
    session: Session, source_id: int, items: Sequence[Item], fetched_at: datetime
) -> dict[str, int]:
    """store_items on SQLite before the driver-SQL path (Core statement, ORM session)."""
    unique = list({it.url: it for it in items}.values())
    new_ids: dict[str, int] = {}
    stmt = items_module._STORE_ITEMS["sqlite"]
    for start in range(0, len(unique), BATCH):
        chunk = unique[start : start + BATCH]
        rows = [items_module._row(source_id, it, fetched_at) for it in chunk]
        new_ids.update((url, item_id) for item_id, url in session.execute(stmt, rows))
    if new_ids:
        session.execute(
            text(
                "INSERT INTO search_pending (item_id) SELECT value FROM json_each(:ids) "
                "WHERE true ON CONFLICT DO NOTHING"
            ),
            {"ids": json.dumps(list(new_ids.values()))},
        )
    return new_ids


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    with migrated_sqlite(tmp_path_factory.mktemp("store-items") / "items.db") as eng:
        with transaction(session_factory(eng)) as s:
            for name in ("a", "b"):
                feed_source(s, name, NOW)
        yield eng


def _snapshot(session: Session) -> tuple[list[Any], list[Any]]:
    items = session.execute(text("SELECT * FROM items ORDER BY id")).all()
    pending = session.execute(text("SELECT * FROM search_pending ORDER BY item_id")).all()
    return [tuple(r) for r in items], [tuple(r) for r in pending]


def _run(
    engine: Engine,
    store: Any,
    existing: Sequence[Item],
    batch: Sequence[Item],
    fetched_at: datetime,
    max_parameters: int | None,
) -> tuple[dict[str, int], tuple[list[Any], list[Any]]]:
    """Store `existing` (by the reference) then `batch` with `store`; the
    returned ids and every row, then roll back (the ids start over)."""
    dialect = engine.dialect
    saved = dialect.insertmanyvalues_max_parameters
    session = sessionmaker(engine)()
    try:
        if max_parameters is not None:  # smaller pages, for both paths alike
            dialect.insertmanyvalues_max_parameters = max_parameters
        session.begin()
        reference_store_items(session, 2, existing, NOW)
        got = store(session, 1, batch, fetched_at)
        return got, _snapshot(session)
    finally:
        dialect.insertmanyvalues_max_parameters = saved
        session.rollback()
        session.close()


ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-3, minutes=-30))]
)
MOMENTS = st.datetimes(
    min_value=datetime(1901, 1, 1), max_value=datetime(2099, 12, 31), timezones=ZONES
)
# Any text SQLite's driver can encode (a lone surrogate cannot: see below).
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)


def _long(limit: int) -> st.SearchStrategy[str]:
    """Text around `limit` characters: cut with an ellipsis, or just not."""
    return st.builds(
        lambda unit, extra: (unit * (limit // len(unit) + 2))[: limit + extra],
        st.text(alphabet="ab Жй한\x00", min_size=1, max_size=3),
        st.integers(-2, 2),
    )


ITEMS = st.builds(
    Item,
    url=st.one_of(st.sampled_from([f"https://e.org/{n}" for n in range(8)]), TEXT),
    guid=TEXT,
    title=st.one_of(TEXT, _long(MAX_TITLE_CHARS)),
    summary=st.one_of(TEXT, _long(MAX_SUMMARY_CHARS)),
    text=TEXT,
    published=st.one_of(MOMENTS, st.just(datetime(2026, 1, 1, tzinfo=UTC))),
    language=st.one_of(st.none(), st.sampled_from(["en", "ko", "zh-Hant"])),
    content_hash=st.text(alphabet="0123456789abcdef", max_size=64),
    dated=st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(ITEMS, max_size=12),
    st.lists(ITEMS, max_size=4),
    st.one_of(MOMENTS, st.just(NOW)),
    st.sampled_from([None, 10, 25, 35]),
)
def test_the_same_rows_as_the_core_statement(
    engine: Engine,
    batch: list[Item],
    existing: list[Item],
    fetched_at: datetime,
    max_parameters: int | None,
) -> None:
    """Duplicates in the batch, URLs stored before (by another source), titles
    and summaries at their caps, datetimes in any zone with and without
    microseconds, NULs, pages of 1-3 rows when the parameter limit is low."""
    expected = _run(engine, reference_store_items, existing, batch, fetched_at, max_parameters)
    assert _run(engine, store_items, existing, batch, fetched_at, max_parameters) == expected


def test_a_feed_larger_than_a_batch(engine: Engine) -> None:
    many = [
        Item(f"https://e.org/big/{n}", f"g{n}", f"t{n}", "s", "b", NOW, "en", "h")
        for n in range(BATCH * 2 + 7)
    ]
    expected = _run(engine, reference_store_items, many[:5], many, NOW, None)
    assert _run(engine, store_items, many[:5], many, NOW, None) == expected
    assert len(expected[0]) == BATCH * 2 + 2


@pytest.mark.parametrize(
    "bad",
    [
        {"published": datetime(2026, 1, 1)},  # naive
        {"title": "lone \ud800 surrogate"},
        {"text": "\udfff"},
    ],
)
def test_data_the_database_refuses_is_refused_alike(engine: Engine, bad: dict[str, Any]) -> None:
    """A naive datetime or a lone surrogate: the same StorageError (type and
    message) from the transaction, so the crawl fails that source alone."""
    good = Item("https://e.org/ok", "g", "t", "s", "b", NOW, "en", "h")
    bad_item = dataclasses.replace(good, url="https://e.org/bad", **bad)
    errors = []
    for store in (reference_store_items, store_items):
        with pytest.raises(StorageError) as caught, transaction(session_factory(engine)) as s:
            store(s, 1, [good, bad_item], NOW)
        errors.append((type(caught.value), str(caught.value)))
    assert errors[0] == errors[1]
    with engine.connect() as conn:  # nothing of either attempt stayed
        assert conn.execute(text("SELECT count(*) FROM items")).scalar() == 0


def test_buffered_polls_are_written_before_the_items(engine: Engine) -> None:
    """SqlTransaction writes buffered fetch state before any statement; the
    driver-SQL insert runs no session hook, so store_items writes them first."""
    with writes_sent(engine) as writes, rolled_back(SqlStore(engine)) as tx:
        outcome = PollOutcome(1, "ok", etag='"e"', body_hash="0" * 64)
        tx.record_poll(outcome, now=NOW, next_poll_at=NOW + timedelta(hours=1), interval=900)
        item = Item("https://e.org/order", "g", "t", "s", "b", NOW, "en", "h")
        tx.store_items(1, [item], NOW)
    assert writes[:2] == ["UPDATE sources", "INSERT INTO items"]
