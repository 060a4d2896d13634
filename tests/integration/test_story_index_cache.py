"""The assigner's in-process story index (scheduler/story_assignment.py) on
the fake and both databases: kept across batches, refreshed under the lock
from what other replicas wrote, reset when its own batch was rolled back,
and giving the same stories as a fresh process per batch."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from alerts.embedding import HashingEncoder
from crawler.crawl_records import Item
from scheduler.story_assignment import StoryAssigner, assign_new, assign_unassigned, encode
from storage.db import make_engine, session_factory
from storage.memory import MemoryStore
from storage.protocol import Store
from storage.repository import SqlStore
from storage.tables import ItemRow
from tests.conftest import Database

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)
ENCODER = HashingEncoder()

# (title, language, hours after T0): three events retold, plus singletons;
# spread over more than the window, so stories leave the index.
STREAM = [
    ("SAM battery moved to Crimea, satellite images show", "en", 0),
    ("Typhoon Haishen makes landfall on Okinawa", "en", 1),
    ("SAM battery moved to Crimea, satellite images show it", "en", 2),
    ("Weather today", "en", 3),
    ("Typhoon Haishen makes landfall on Okinawa, 2 dead", "en", 5),
    ("Central bank raises rates by 0.25 points", "en", 30),
    ("SAM battery moved to Crimea satellite images", "en", 40),
    ("Central bank raises rates by 0.25 points, again", "en", 80),
    ("Typhoon Haishen makes landfall on Okinawa", "en", 100),
    ("Election results announced in the capital", "en", 101),
    ("Election results announced in the capital city", "en", 102),
]


def assigner() -> StoryAssigner:
    return StoryAssigner(lambda: ENCODER, WINDOW)


def item(n: int) -> Item:
    title, lang, hours = STREAM[n]
    return titled(n, title, lang, hours)


def titled(n: int, title: str, lang: str, hours: float) -> Item:
    """Item n of the news.example wire, published `hours` after T0."""
    return Item(
        url=f"https://news.example/s/{n}",
        guid=f"g{n}",
        title=title,
        summary="",
        text="",
        published=T0 + timedelta(hours=hours),
        language=lang,
        content_hash=f"h{n}",
    )


def source(store: Store) -> int:
    with store.transaction() as tx:
        return tx.add_source(
            name="wire",
            url="https://news.example/feed",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
        ).id


def crawl_one(a: StoryAssigner, store: Store, src: int, n: int) -> int:
    """Store item n and assign it as the crawl does (assign_new); its story."""
    it = item(n)
    vectors = encode(a, [(it.title, it.summary, it.text)])
    assert vectors is not None
    with store.transaction() as tx:
        ids = tx.store_items(src, [it], T0)
        [(url, item_id)] = ids.items()
        done = assign_new(a, tx, [(item_id, it, frozenset())], {url: vectors[0]}, T0)
    return done[item_id]


def partition(stories: list[int]) -> list[list[int]]:
    groups: dict[int, list[int]] = {}
    for n, sid in enumerate(stories):
        groups.setdefault(sid, []).append(n)
    return sorted(groups.values())


def test_one_long_lived_assigner_gives_the_stories_of_fresh_ones(store: Store) -> None:
    src = source(store)
    kept = assigner()
    got = [crawl_one(kept, store, src, n) for n in range(len(STREAM))]
    assert kept._index is not None and len(kept._index) > 0  # kept across batches

    other = MemoryStore()
    other_src = source(other)
    fresh = [crawl_one(assigner(), other, other_src, n) for n in range(len(STREAM))]
    assert partition(got) == partition(fresh)
    # the events are joined within the window only: the typhoon at +100 h is new
    assert got[0] == got[2] == got[6] and got[1] == got[4] != got[8]
    assert got[9] == got[10] and got[5] == got[7]


def test_a_story_written_by_another_replica_is_joined(store: Store) -> None:
    """Replica A's index is warm; replica B starts a story A has never seen;
    A's next item of that event joins it (A refreshed under the lock)."""
    src = source(store)
    a, b = assigner(), assigner()
    crawl_one(a, store, src, 3)  # A warms its index on an unrelated item
    by_b = crawl_one(b, store, src, 0)
    assert crawl_one(a, store, src, 2) == by_b
    assert crawl_one(b, store, src, 6) == by_b  # and B sees A's member


def test_a_rolled_back_batch_is_forgotten(store: Store) -> None:
    src = source(store)
    a = assigner()
    crawl_one(a, store, src, 3)
    it = item(0)
    vectors = encode(a, [(it.title, it.summary, it.text)])
    assert vectors is not None
    with pytest.raises(RuntimeError), store.transaction() as tx:
        [(url, item_id)] = tx.store_items(src, [it], T0).items()
        assign_new(a, tx, [(item_id, it, frozenset())], {url: vectors[0]}, T0)
        raise RuntimeError("the save failed after the assignment")
    # the phantom story must not be chosen (storage would refuse a non-candidate)
    first = crawl_one(a, store, src, 2)
    assert crawl_one(a, store, src, 6) == first
    assert assign_unassigned(a, store, lambda: T0) == 0


def test_concurrent_cached_assigners_make_one_story_of_one_event(db: Database) -> None:
    """Two replicas (own engine, own thread, own warm index) assign one item
    each of one event at the same moment: the lock orders them and the
    second refreshes its index under it, so one story comes out."""
    main = SqlStore(db.engine, db.factory)
    src = source(main)
    engines = [make_engine(db.url) for _ in range(2)]
    stores = [SqlStore(e, session_factory(e)) for e in engines]
    replicas = [SlowAssigner(lambda: ENCODER, WINDOW) for _ in stores]
    for r, s, n in zip(replicas, stores, (3, 5), strict=True):
        crawl_one(r, s, src, n)  # warm: each index holds an unrelated story
    with main.transaction() as tx:  # the two items, stored but not assigned yet
        ids = tx.store_items(src, [item(0), item(2)], T0)
    start = threading.Barrier(2)
    done: list[int] = []
    errors: list[BaseException] = []

    def run(r: StoryAssigner, s: Store, item_id: int) -> None:
        try:
            start.wait()
            done.append(assign_unassigned(r, s, lambda: T0, ids=[item_id]))
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=(r, s, ids[item(n).url]))
        for r, s, n in zip(replicas, stores, (0, 2), strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for e in engines:
        e.dispose()
    assert errors == [] and done == [1, 1]
    with db.session() as session:
        stories = list(session.scalars(select(ItemRow.story_id).order_by(ItemRow.id)))
    assert None not in stories and len(set(stories)) == 3  # two unrelated + ONE event story
    assert stories[2] == stories[3]


class SlowAssigner(StoryAssigner):
    """Holds the lock a while after refreshing, so the other replica waits on it."""

    def refresh(self, reader):  # type: ignore[no-untyped-def]
        index = super().refresh(reader)
        time.sleep(0.3)
        return index
