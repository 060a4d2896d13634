"""The drain's batch is read whole once, before its transaction; under the
assignment lock storage reads again only what can change of its items (their
vector and matches), not their texts (storage.stories `_as_now`), and the
stories come out as before."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import event

from crawler.crawl_records import Item
from scheduler.story_assignment import drain_pending, encode
from storage.memory import MemoryStore
from storage.protocol import Store
from storage.repository import SqlStore
from storage.stories import StoredMember, StoryReader
from tests.conftest import Database
from tests.integration.test_store_contract import match, watchlist
from tests.integration.test_story_incremental_load import T0, WINDOW, assigner, item
from tests.integration.test_story_index_cache import partition, source


def stored(store: Store, src: int, items: Sequence[Item]) -> list[int]:
    """Store items without a story, as the crawl stores what matched no watchlist."""
    with store.transaction() as tx:
        return list(tx.store_items(src, list(items), T0).values())


def test_under_the_lock_the_drain_reads_no_item_text(db: Database) -> None:
    """On SQLite and PostgreSQL: every statement from the lock on (PostgreSQL's
    advisory lock; SQLite's first write, the bump of story_assign_lock) reads
    no item's title, summary or body; the drain's own read before the
    transaction does. Before, the batch was read whole again under the lock."""
    store = SqlStore(db.engine, db.factory)
    src = source(store)
    # a story the drain joins, and items that start stories of their own
    stored(store, src, [item(n, hours=n) for n in range(24)])
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(" ".join(statement.split()))

    a = assigner()
    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        assert drain_pending(a, store, lambda: T0 + timedelta(hours=1)) == 24
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)

    # PostgreSQL takes the advisory lock, then bumps the row (SQLite: the bump only)
    bumps = [k for k, s in enumerate(statements) if "UPDATE story_assign_lock" in s]
    assert len(bumps) == 1  # one batch, one lock
    marks = ("advisory_xact_lock(", "UPDATE story_assign_lock")  # not the drain's own lease
    locked = next(k for k, s in enumerate(statements) if any(m in s for m in marks))
    texts = [k for k, s in enumerate(statements) if s.startswith("SELECT") and "items.title" in s]
    assert [k for k in texts if k < locked], "not vacuous: the batch was read before"
    assert [statements[k] for k in texts if k > locked] == []


def test_the_drain_makes_the_stories_it_made_reading_everything_again(store: Store) -> None:
    """The same stories on the fake (which reads everything under its
    "lock") and on both databases, from one drain of 60 items."""
    numbers = list(range(60))
    got = _stories_after_drain(store, numbers)
    want = _stories_after_drain(MemoryStore(), numbers)
    assert partition(got) == partition(want)
    assert len(set(want)) < len(want)  # not vacuous: items joined stories


def _stories_after_drain(store: Store, numbers: Sequence[int]) -> list[int]:
    """One drain of items `numbers`: their stories, in item order."""
    src = source(store)
    ids = stored(store, src, [item(n, hours=n % 30) for n in numbers])
    a = assigner()
    assert drain_pending(a, store, lambda: T0 + timedelta(hours=1)) == len(ids)
    seen: dict[int, int | None] = {}

    def look(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        seen.update(reader.stories_of(ids))  # what the drain committed
        return [-(k + 1) for k in range(len(items))]

    last = stored(store, src, [item(1000, hours=1)])
    with store.transaction() as tx:
        tx.assign_stories(last, look, window=WINDOW, now=T0, encoder=a.identity())
    out = [seen[i] for i in ids]
    assert None not in out
    return [sid for sid in out if sid is not None]


def test_known_items_come_with_the_vector_and_matches_stored_now(store: Store) -> None:
    """`assign_stories(known=...)`: the items `decide` gets carry the matches
    recorded and the vector stored after the caller read them (a backfill, a
    re-encode), with the texts as read, on the fake and both databases."""
    src = source(store)
    a = assigner()
    ids = stored(store, src, [item(n, hours=n) for n in range(3)])
    with store.transaction() as tx:
        before = tx.items_without_story(10, encoder=a.identity(), ids=ids)
    assert [m.vector for m in before] == [None, None, None]
    assert all(not m.concepts for m in before)
    # after the read: a backfill matches the first item, the second is encoded
    vectors = encode(a, [(item(1, 0).title, "", "")])
    assert vectors is not None
    with store.transaction() as tx:
        tx.save_watchlists([watchlist("w", "https://hook/1")], T0)
        tx.record_matches(ids[0], [(tx.get_watchlist("w"), match("w"))], T0, alert=False)
        tx.save_story_vectors([(ids[1], vectors[0])], encoder=a.identity())
    with store.transaction() as tx:
        want = tx.items_without_story(10, encoder=a.identity(), ids=ids)

    got: list[StoredMember] = []

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        got.extend(items)
        return [-(k + 1) for k in range(len(items))]

    with store.transaction() as tx:
        tx.assign_stories(
            ids,
            probe,
            window=WINDOW,
            now=T0,
            encoder=a.identity(),
            known={m.item_id: m for m in before},
        )

    assert [_fields(m) for m in got] == [_fields(m) for m in want]
    assert want[0].concepts == {"w/Acme"} and want[1].vector is not None  # not vacuous


def _fields(m: StoredMember) -> tuple[object, ...]:
    vector = None if m.vector is None else m.vector.tobytes()
    return (m.item_id, m.story_id, m.title, m.summary, m.body, m.language, m.published, vector,
            m.concepts)  # fmt: skip
