"""A warm story cache reads what changed, not the whole window (migration 0014).

Every assignment bumps `story_assign_lock.n` under the assignment lock and
stamps the stories it writes with it (`stories.changed_seq`); a cache that
has read the window once reads only the stories stamped after its last look,
and the whole window again only when a batch's window leaves the range it
covered (or every FULL_READ_EVERY seconds). On SQLite and PostgreSQL (and the
fake, which has no numbers): the same stories as a cache that reads the
whole window at every batch, for two replicas taking turns."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import event, select

import scheduler.story_assignment as story_assignment
from storage.memory import MemoryStore
from storage.protocol import Store
from storage.repository import SqlStore
from storage.tables import StoryAssignLockRow, StoryRow
from tests.conftest import BACKENDS, Database, _empty
from tests.integration.test_story_index_cache import (
    STREAM,
    T0,
    WINDOW,
    assigner,
    crawl_one,
    partition,
    source,
)


@pytest.fixture(params=["memory", *BACKENDS])
def fresh_store(request: pytest.FixtureRequest) -> Callable[[], Store]:
    """A function giving an empty store of the backend (each call empties it)."""
    if request.param == "memory":
        return MemoryStore
    databases: dict[str, Database] = request.getfixturevalue("_databases")
    database = databases[request.param]

    def make() -> Store:
        _empty(database)
        return SqlStore(database.engine, database.factory)

    return make


def two_replicas_taking_turns(store: Store) -> list[int]:
    src = source(store)
    replicas = [assigner(), assigner()]
    return [crawl_one(replicas[n % 2], store, src, n) for n in range(len(STREAM))]


def test_reading_changes_gives_the_stories_of_reading_everything(
    fresh_store: Callable[[], Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    warm = two_replicas_taking_turns(fresh_store())
    monkeypatch.setattr(story_assignment, "FULL_READ_EVERY", -1.0)  # a full read every batch
    every = two_replicas_taking_turns(fresh_store())
    assert partition(warm) == partition(every)
    assert warm[0] == warm[2] == warm[6] and warm[1] == warm[4] != warm[8]


def test_assignments_are_numbered_in_commit_order(db: Database) -> None:
    store = SqlStore(db.engine, db.factory)
    src = source(store)
    a = assigner()
    stamps = []
    for n in (0, 1, 2):
        sid = crawl_one(a, store, src, n)
        with db.session() as s:
            number = s.scalar(select(StoryAssignLockRow.n))
            stamps.append(
                (s.scalar(select(StoryRow.changed_seq).where(StoryRow.id == sid)), number)
            )
    # each assignment's stories carry its number, and the numbers grow
    assert [seq for seq, _ in stamps] == [number for _, number in stamps]
    assert stamps[0][1] < stamps[1][1] < stamps[2][1]
    with pytest.raises(RuntimeError), store.transaction() as tx:  # a rolled-back assignment
        tx.assign_stories([], lambda items, reader: [], window=WINDOW, now=T0, encoder=a.identity())
        raise RuntimeError("rolled back")
    with db.session() as s:
        assert s.scalar(select(StoryAssignLockRow.n)) == stamps[2][1]  # its number is given again


def test_a_warm_cache_does_not_read_the_whole_window(db: Database) -> None:
    store = SqlStore(db.engine, db.factory)
    src = source(store)
    full_reads: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "stories.item_count \nFROM stories" in statement and "first_seen >=" in statement:
            full_reads.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        a = assigner()
        first = crawl_one(a, store, src, 0)
        assert len(full_reads) == 1  # a cold cache reads its window once
        for n in (1, 3, 4):  # within 5 hours: inside the range that read covered
            crawl_one(a, store, src, n)
        assert len(full_reads) == 1
        assert crawl_one(a, store, src, 2) == first  # the warm cache joins the event
        assert len(full_reads) == 1
        assert crawl_one(a, store, src, 6) == first  # +40 h: the window leaves the range
        assert len(full_reads) == 2
        crawl_one(a, store, src, 8)  # +100 h: and again
        assert len(full_reads) == 3
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
