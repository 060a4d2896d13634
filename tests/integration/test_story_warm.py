"""Stories other replicas assigned are loaded BEFORE the assignment lock
(`StoryAssigner.warm`, called by storage.stories.assign_batch on PostgreSQL):
the locked refresh then reads only what was committed meanwhile, the index
ends as a full read of the window, and the decisions are those of fresh
assigners, on the fake and both databases. A story that grows while it is
being warmed is loaded again under the lock."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence

from sqlalchemy import event

from scheduler.story_assignment import StoryAssigner, _by_members, encode
from storage.memory import MemoryStore
from storage.protocol import Store
from storage.repository import SqlStore
from storage.stories import StoredMember, StoryHead, StoryReader
from tests.conftest import Database
from tests.integration.test_story_incremental_load import T0, crawl, item
from tests.integration.test_story_index_cache import partition, source
from tests.support.story_index import (
    WINDOW,
    Counting,
    Refreshed,
    assigner,
    no_story,
    refresh_and_full_read,
)


def _store_and_vectors(
    store: Store, tx: object, src: int, numbers: Sequence[int], hours: float, a: StoryAssigner
) -> list[int]:
    """Store items `numbers` (published from `hours` on) with their vectors; their ids."""
    items = [item(n, hours=hours + k) for k, n in enumerate(numbers)]
    ids = tx.store_items(src, items, T0)  # type: ignore[attr-defined]
    vectors = encode(a, [(it.title, it.summary, it.text) for it in items])
    assert vectors is not None
    tx.save_story_vectors(  # type: ignore[attr-defined]
        [(i, vectors[k]) for k, i in enumerate(ids.values())], encoder=a.identity()
    )
    return list(ids.values())


def test_other_replicas_stories_are_loaded_before_the_lock(pg_db: Database) -> None:
    """Through the crawl's own path (assign_new): every statement after
    pg_advisory_xact_lock reads no item whole (title, summary, body), though
    another replica grew this replica's stories and made new ones since its
    last batch. Before, all of them were read under the lock."""
    store = SqlStore(pg_db.engine, pg_db.factory)
    src = source(store)
    mine, other = assigner(), assigner()
    crawl(mine, store, src, [item(n, hours=n) for n in range(16)])
    grown = crawl(other, store, src, [item(n, hours=n) for n in range(16, 40)])
    assert grown

    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(pg_db.engine, "before_cursor_execute", seen)
    try:
        crawl(mine, store, src, [item(n, hours=20 + n) for n in range(41, 45)])
    finally:
        event.remove(pg_db.engine, "before_cursor_execute", seen)

    locked = next(k for k, s in enumerate(statements) if "pg_advisory_xact_lock" in s)
    whole = [
        k
        for k, s in enumerate(statements)
        if s.startswith("SELECT items.id, items.story_id, items.title")
    ]
    # under the lock, only the batch's own items (assign_batch reads them there)
    assert len([k for k in whole if k > locked]) == 1
    assert [k for k in whole if k < locked], "not vacuous: the warm read members whole"


def test_long_lived_replicas_give_the_stories_of_fresh_assigners(store: Store) -> None:
    """Two replicas taking turns, each keeping its index (and warming it on
    PostgreSQL), make the stories that a fresh assigner per batch makes."""
    src = source(store)
    mine, other = assigner(), assigner()
    batches = [list(range(k, k + 5)) for k in range(0, 60, 5)]
    got: list[int] = []
    for turn, numbers in enumerate(batches):
        a = mine if turn % 2 == 0 else other
        done = crawl(a, store, src, [item(n, hours=n % 30) for n in numbers])
        got += [done[i] for i in sorted(done)]

    fresh_store = MemoryStore()
    fresh_src = source(fresh_store)
    want: list[int] = []
    for numbers in batches:
        done = crawl(assigner(), fresh_store, fresh_src, [item(n, hours=n % 30) for n in numbers])
        want += [done[i] for i in sorted(done)]
    assert len(got) == len(want) == 60
    assert partition(got) == partition(want)
    assert len(set(want)) < 60  # not vacuous: items joined stories


def test_a_story_grown_while_warming_is_loaded_again_under_the_lock(pg_db: Database) -> None:
    """Another replica commits a member to a story after the warm read the
    story's head and before it read the members: the warm recorded the older
    head, so the locked refresh reads the story again and the index ends as
    a full read, with the new member."""
    store = SqlStore(pg_db.engine, pg_db.factory)
    src = source(store)
    mine, other = assigner(), assigner()
    crawl(mine, store, src, [item(n, hours=n) for n in range(8)])
    crawl(other, store, src, [item(n, hours=n) for n in range(8, 16)])

    raced: dict[str, object] = {}

    class Racing(Counting):
        def member_keys(self, story_ids: Sequence[int]) -> dict[int, list[tuple[object, int]]]:
            if "grown" not in raced:  # the other replica commits, in its own transaction
                raced["grown"] = crawl(other, store, src, [item(16, hours=16)])
            return self.r.member_keys(story_ids)  # type: ignore[return-value]

    def warm(reader: StoryReader) -> None:
        racing = Racing(reader)
        mine.warm(racing)
        raced["warm_whole"] = racing.whole

    refreshes: list[Refreshed] = []

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        refreshes.append(refresh_and_full_read(mine, reader))
        return no_story(items)

    with store.transaction() as tx:
        ids = _store_and_vectors(store, tx, src, [41], 3, mine)
        tx.assign_stories(ids, probe, window=WINDOW, now=T0, encoder=mine.identity(), warm=warm)

    grown = raced["grown"]
    assert isinstance(grown, dict) and grown  # the race happened
    assert isinstance(raced["warm_whole"], int) and raced["warm_whole"] > 0  # the warm loaded
    (r,) = refreshes
    # and the lock loaded the story again (its members listed; the new one,
    # read by the warm, is not read whole again)
    assert r.keyed > 0
    assert r.got == r.want
    new_member = next(iter(grown))
    assert any(new_member in held for _, _, held in r.got.values())


def test_a_warm_never_waits_for_nor_enters_another_threads_batch(store: Store) -> None:
    """While another thread of the process holds the index (a batch being
    decided, or its own warm), `warm` returns at once and reads nothing."""
    src = source(store)
    mine = assigner()
    crawl(mine, store, src, [item(n, hours=n) for n in range(8)])
    other = assigner()
    crawl(other, store, src, [item(n, hours=n) for n in range(8, 16)])

    def warm_reads(n: int) -> int:
        """What mine's warm reads whole in a batch of item n (then rolled back)."""
        with store.transaction() as tx:
            ids = _store_and_vectors(store, tx, src, [n], 2, mine)
            reads: list[int] = []

            def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
                counting = Counting(reader)
                mine.warm(counting)
                reads.append(counting.whole)
                raise _Stop

            with contextlib.suppress(_Stop):  # decided nothing; the item stays pending
                tx.assign_stories(ids, probe, window=WINDOW, now=T0, encoder=mine.identity())
            assert len(reads) == 1
            return reads[0]

    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with mine._guard:
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    try:
        assert warm_reads(50) == 0  # another thread holds the index: skipped, not waited
    finally:
        release.set()
        t.join()
    mine._reader = object()  # a batch of this process is being decided
    assert warm_reads(51) == 0
    mine._reader = None
    assert warm_reads(52) > 0  # not vacuous: free, it loads the other replica's stories


class _Stop(Exception):
    pass


def test_a_warm_stopped_for_a_locked_batch_leaves_the_full_read_to_the_lock(
    store: Store,
) -> None:
    """A batch under the database lock waits for the index (`_wanted`): a warm
    stops before its next chunk. When a full read was due, the range it
    covers is not recorded, so the locked refresh reads the window again and
    the index ends as a full read."""
    src = source(store)
    mine, other = assigner(), assigner()
    # stories far from what mine has read, committed before mine's last batch
    crawl(other, store, src, [item(n, hours=150 + n) for n in range(16, 24)])
    crawl(mine, store, src, [item(n, hours=n) for n in range(8)])
    covered = mine._covered

    seen: dict[str, object] = {}
    refreshes: list[Refreshed] = []

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        counting = Counting(reader)
        mine._wanted.set()
        try:
            mine.warm(counting)  # +150 h: outside the range covered, a full read is due
        finally:
            mine._wanted.clear()
        seen["warm_whole"], seen["covered"] = counting.whole, mine._covered
        refreshes.append(refresh_and_full_read(mine, reader))
        return no_story(items)

    with store.transaction() as tx:
        ids = _store_and_vectors(store, tx, src, [41], 152, mine)
        tx.assign_stories(ids, probe, window=WINDOW, now=T0, encoder=mine.identity())

    assert seen["warm_whole"] == 0  # stopped before reading any story
    assert seen["covered"] == covered  # its range not recorded
    (r,) = refreshes
    assert r.got == r.want
    assert r.got  # not vacuous


def test_a_warm_loads_in_steps_of_about_64_members() -> None:
    heads = [StoryHead(k, T0, n) for k, n in enumerate([10, 30, 30, 500, 1, 64, 2])]
    steps = [[h.story_id for h in step] for step in _by_members(heads, cap=64)]
    assert steps == [[0, 1], [2], [3], [4], [5], [6]]
    assert [h for step in _by_members(heads, cap=64) for h in step] == heads
