"""A story another replica grew is loaded into the assigner's index by reading
only the members the index lacks (scheduler/story_assignment.py
`StoryAssigner._load`), and the index ends exactly as if every member had been
read again (what the assigner did before), on the fake and both databases:
same stories, same members (the `max_story_members` latest of each), same
bounds, same decisions."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import numpy as np
import pytest

from crawler.crawl_records import Item
from scheduler.story_assignment import StoryAssigner, _assign, assign_new, encode
from storage.protocol import Store
from storage.stories import StoredMember, StoryReader
from tests.integration.test_store_contract import match, watchlist
from tests.integration.test_story_index_cache import source, titled
from tests.support.story_index import (
    CAP,
    ENCODER,
    WINDOW,
    Counting,
    Refreshed,
    assigner,
    full_read,
    no_story,
    refresh_and_full_read,
    small_index,
    snapshot,
    view,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
EVENTS = [
    "SAM battery moved to Crimea, satellite images show",
    "Typhoon Haishen makes landfall on Okinawa",
    "Central bank raises its policy rate again",
    "Election results announced in the capital city",
]
WORDS = ["report", "update", "latest", "analysis", "live", "sources", "officials", "video"]


def item(n: int, hours: float) -> Item:
    title = f"{EVENTS[n % len(EVENTS)]} {WORDS[(n // len(EVENTS)) % len(WORDS)]}"
    return titled(n, title, "en", hours)


def crawl(a: StoryAssigner, store: Store, src: int, items: Sequence[Item]) -> dict[int, int]:
    """Store and assign items as the crawl does (assign_new): {item id: story}."""
    vectors = encode(a, [(it.title, it.summary, it.text) for it in items])
    assert vectors is not None
    with store.transaction() as tx:
        ids = tx.store_items(src, list(items), T0)
        by_url = {it.url: it for it in items}
        new = [(item_id, by_url[url], frozenset[str]()) for url, item_id in ids.items()]
        got = {it.url: vectors[k] for k, it in enumerate(items)}
        return assign_new(a, tx, new, got, T0)


def assign_encoded(
    store: Store,
    src: int,
    mine: StoryAssigner,
    numbers: range,
    hours: float,
    probe: Callable[[Sequence[StoredMember], StoryReader], list[int]],
) -> None:
    """Store items `numbers` (published `hours` + n hours before T0) with
    their vectors, then run the locked assignment with `probe` deciding."""
    with store.transaction() as tx:
        ids = tx.store_items(src, [item(n, hours=hours + n) for n in numbers], T0)
        vectors = encode(mine, [(item(n, 0).title, "", "") for n in numbers])
        assert vectors is not None
        tx.save_story_vectors(
            [(i, vectors[k]) for k, i in enumerate(ids.values())], encoder=mine.identity()
        )
        tx.assign_stories(list(ids.values()), probe, window=WINDOW, now=T0, encoder=mine.identity())


def test_a_grown_story_reads_only_its_new_members_and_ends_as_a_full_read(
    store: Store,
) -> None:
    src = source(store)
    mine, other = assigner(), assigner()
    # this replica assigns the first items: its index holds their stories
    first = crawl(mine, store, src, [item(n, hours=n) for n in range(16)])
    # another replica grows them (and makes new stories), one older item
    # moving a story's first_seen earlier (a late-published member)
    grown = crawl(other, store, src, [item(n, hours=n) for n in range(16, 40)])
    late = crawl(other, store, src, [item(40, hours=-2)])
    assert set(grown.values()) & set(first.values())  # stories this replica holds grew
    assert set(late.values()) & set(first.values())

    seen: dict[str, object] = {}
    refreshes: list[Refreshed] = []

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        r = refresh_and_full_read(mine, reader)
        refreshes.append(r)
        got = r.index
        held = {k for sid in got.story_ids() for k in got.held(sid)}
        seen["lacked"] = held - set(first)  # kept members this replica did not assign
        # the same decisions for new items, from either index
        probes = [mine.features(m, frozenset()) for m in items]
        want = full_read(reader, StoryAssigner(lambda: ENCODER, WINDOW))
        seen["decisions"] = (
            [d.story_id for _, d in got.assign_batch(probes, lambda _i: -1)],
            [d.story_id for _, d in want.assign_batch(probes, lambda _i: -1)],
        )
        return no_story(items)

    assign_encoded(store, src, mine, range(41, 45), 20, probe)

    (r,) = refreshes
    assert r.got == r.want
    assert r.got  # not vacuous: stories held
    decisions = seen["decisions"]
    assert isinstance(decisions, tuple) and decisions[0] == decisions[1]
    # only the members it lacked were read whole (a full read: every member of
    # every changed story, 41 here, most of them capped away again)
    lacked = seen["lacked"]
    assert isinstance(lacked, set)
    assert r.whole == len(lacked)
    assert 0 < len(lacked) < 41 - CAP


def test_a_held_member_whose_matches_changed_is_read_again(store: Store) -> None:
    """A backfill records matches for items already in stories: when another
    replica grows such a story, the members this replica holds with their old
    concepts are read again, so the index still ends as a full read (the
    concepts count in the story score)."""
    src = source(store)
    mine, other = assigner(), assigner()
    first = crawl(mine, store, src, [item(n, hours=n) for n in range(16)])
    with store.transaction() as tx:  # the backfill: a match on every item mine assigned
        tx.save_watchlists([watchlist("w", "https://hook/1")], T0)
        active = tx.get_watchlist("w")
        for item_id in first:
            tx.record_matches(item_id, [(active, match("w"))], T0, alert=False)
    # another replica grows them with earlier items: the members mine holds
    # stay the latest, the ones kept
    grown = crawl(other, store, src, [item(n, hours=-1 - n) for n in range(16, 24)])
    assert set(grown.values()) & set(first.values())

    refreshes: list[Refreshed] = []
    concepts: set[int] = set()

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        r = refresh_and_full_read(mine, reader)
        refreshes.append(r)
        concepts.update(
            i for sid in r.index.story_ids() for i, f in r.index.held(sid).items() if f.concepts
        )
        return no_story(items)

    with store.transaction() as tx:
        ids = tx.store_items(src, [item(41, hours=30)], T0)
        tx.assign_stories(list(ids.values()), probe, window=WINDOW, now=T0, encoder=mine.identity())

    (r,) = refreshes
    assert concepts  # not vacuous: held members carry the backfilled concepts
    assert r.got == r.want


def test_held_lists_the_members_by_key() -> None:
    index = small_index()
    f = dataclasses.replace(
        StoryAssigner(lambda: ENCODER, WINDOW).features(
            StoredMember(
                7, None, "t", "", "", "en", T0, np.ones(ENCODER.dim, np.float32), frozenset()
            ),
            frozenset(),
        )
    )
    index.load(3, T0, [f], keys=[7])
    assert index.held(3) == {7: f}
    assert index.held(4) == {}
    index.remove(3)
    assert index.held(3) == {}


@pytest.mark.parametrize("differs", [False, True], ids=["same", "vector_differs"])
def test_features_computed_before_the_lock_are_used_under_it(store: Store, differs: bool) -> None:
    """The drain computes its batch's features before the assignment lock
    (`StoryAssigner.ready`); the decision under the lock uses them for an item
    read there with the same key and vector, and computes them anew otherwise."""
    src = source(store)
    a = assigner()
    its = [item(n, hours=n) for n in range(3)]
    vectors = encode(a, [(it.title, it.summary, it.text) for it in its])
    assert vectors is not None
    with store.transaction() as tx:
        ids = list(tx.store_items(src, its, T0).values())
        tx.save_story_vectors(list(zip(ids, vectors, strict=True)), encoder=a.identity())
    with store.transaction() as tx:
        stored = tx.items_without_story(10, encoder=a.identity(), ids=ids)
    seen = stored
    if differs:  # as if another process had stored another vector meanwhile
        seen = [dataclasses.replace(m, vector=-np.asarray(m.vector)) for m in stored]
    ready = a.ready(seen)
    with store.transaction() as tx:
        done = _assign(a, tx, ids, {}, T0, a.identity(), ready)
    assert len(done) == len(ids)
    fresh = StoryAssigner(lambda: ENCODER, WINDOW)
    for m in stored:
        used = a.index().held(done[m.item_id])[m.item_id]
        assert (used is ready[m.item_id][2]) is not differs
        assert view(used) == view(fresh.features(m, frozenset()))  # what the lock reads


@pytest.mark.parametrize("capped", [False, True])
def test_a_story_whose_first_seen_a_late_item_moved_is_loaded_from_the_index(
    store: Store, capped: bool
) -> None:
    """One assigner alone (a first crawl, feeds in any order): items older than
    the stories they join move those stories' first_seen. The index then
    loads each story again from the members it holds instead of reading them
    at the next batch; the index is still exactly a full read. A story with a
    member it no longer holds (`capped`: 4 members, 3 held) is read again."""
    src = source(store)
    mine = assigner() if capped else StoryAssigner(lambda: ENCODER, WINDOW)
    first = crawl(mine, store, src, [item(n, hours=10 + n) for n in range(4 * (2 + capped))])
    late = crawl(mine, store, src, [item(n, hours=-n) for n in range(40, 44)])
    assert set(late.values()) <= set(first.values())  # every late item joined a story
    seen: dict[str, object] = {}

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        counting = Counting(reader)
        got = mine.refresh(counting)
        seen["whole"] = counting.whole
        want = small_index() if capped else StoryAssigner(lambda: ENCODER, WINDOW).index()
        full_read(reader, StoryAssigner(lambda: ENCODER, WINDOW), want)
        seen["got"], seen["want"] = snapshot(got), snapshot(want)
        probes = [mine.features(m, frozenset()) for m in items]
        seen["decisions"] = (
            [d.story_id for _, d in got.assign_batch(probes, lambda _i: -1)],
            [d.story_id for _, d in want.assign_batch(probes, lambda _i: -1)],
        )
        return [-(k + 1) for k in range(len(items))]

    assign_encoded(store, src, mine, range(50, 54), 5, probe)

    assert seen["got"] == seen["want"]
    assert seen["got"]
    decisions = seen["decisions"]
    assert isinstance(decisions, tuple) and decisions[0] == decisions[1]
    if capped:
        assert seen["whole"] > 0  # a member not held: read from the database
    else:
        assert seen["whole"] == 0  # nothing read whole: every moved story came from the index


def test_a_moved_story_whose_held_matches_changed_is_read_again(store: Store) -> None:
    """A backfill recorded matches for members this assigner holds; then an
    older item joins their story (first_seen moves): the story is read from
    the database, not loaded from the stale features, and the index still
    ends as a full read (the concepts count in the story score)."""
    src = source(store)
    mine = StoryAssigner(lambda: ENCODER, WINDOW)
    first = crawl(mine, store, src, [item(n, hours=10 + n) for n in range(8)])
    with store.transaction() as tx:  # the backfill: a match on every item mine assigned
        tx.save_watchlists([watchlist("w", "https://hook/1")], T0)
        active = tx.get_watchlist("w")
        for item_id in first:
            tx.record_matches(item_id, [(active, match("w"))], T0, alert=False)
    late = crawl(mine, store, src, [item(n, hours=-n) for n in range(40, 44)])
    assert set(late.values()) <= set(first.values())
    seen: dict[str, object] = {}

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        got = mine.refresh(reader)
        want = StoryAssigner(lambda: ENCODER, WINDOW).index()
        full_read(reader, StoryAssigner(lambda: ENCODER, WINDOW), want)
        seen["got"], seen["want"] = snapshot(got), snapshot(want)
        seen["concepts"] = {
            i for sid in got.story_ids() for i, f in got.held(sid).items() if f.concepts
        }
        return [-(k + 1) for k in range(len(items))]

    with store.transaction() as tx:
        ids = tx.store_items(src, [item(50, hours=30)], T0)
        tx.assign_stories(list(ids.values()), probe, window=WINDOW, now=T0, encoder=mine.identity())

    assert seen["concepts"]  # not vacuous: held members carry the backfilled concepts
    assert seen["got"] == seen["want"]


def test_held_members_naming_places_are_not_read_again(store: Store) -> None:
    """A held member whose features carry gazetteer anchors ("gazetteer/Crimea":
    not stored, the gazetteer adds them to the watchlist concepts) keeps its
    features when another replica grows its story: only the members the
    index lacks are read whole. Before, such a member was read again at every
    change of its story (its features' concepts, anchors included, were
    compared with the stored watchlist concepts, which never hold anchors)."""
    src = source(store)
    mine, other = assigner(), assigner()
    # "Crimea", "Okinawa": two of the four events name a place of the gazetteer
    first = crawl(mine, store, src, [item(n, hours=n) for n in range(16)])
    # another replica grows them: earlier items (capped away: the members mine
    # holds stay the latest) and later ones (kept: read whole)
    grown = crawl(other, store, src, [item(n, hours=-1 - n) for n in range(16, 24)])
    grown |= crawl(other, store, src, [item(n, hours=20 + n) for n in range(24, 26)])
    assert set(grown.values()) & set(first.values())
    index = mine.index()
    before = {sid: set(index.held(sid)) for sid in index.story_ids()}
    anchored = {
        i
        for sid in index.story_ids()
        if sid in set(grown.values())
        for i, f in index.held(sid).items()
        if any(c.startswith("gazetteer/") for c in f.concepts)
    }
    assert anchored  # not vacuous: grown stories hold members naming places

    seen: dict[str, object] = {}

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        r = refresh_and_full_read(mine, reader)
        got = r.index
        seen["whole"], seen["got"], seen["want"] = r.whole, r.got, r.want
        seen["new"] = sum(
            len(set(got.held(sid)) - before.get(sid, set())) for sid in got.story_ids()
        )
        seen["kept"] = anchored & {k for sid in got.story_ids() for k in got.held(sid)}
        return no_story(items)

    with store.transaction() as tx:
        ids = tx.store_items(src, [item(41, hours=30)], T0)
        tx.assign_stories(list(ids.values()), probe, window=WINDOW, now=T0, encoder=mine.identity())

    assert seen["kept"]  # the anchored members are still held after the refresh
    assert seen["got"] == seen["want"]
    new = seen["new"]
    assert isinstance(new, int) and new > 0  # the later members were read
    assert seen["whole"] == new  # and only they
