"""A story another replica grew is loaded into the assigner's index by reading
only the members the index lacks (scheduler/story_assignment.py
`StoryAssigner._load`), and the index ends exactly as if every member had been
read again (what the assigner did before), on the fake and both databases:
same stories, same members (the `max_story_members` latest of each), same
bounds, same decisions."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from alerts.embedding import HashingEncoder
from alerts.stories import ItemFeatures, StoryIndex, params_for
from crawler.crawl_records import Item
from scheduler.story_assignment import StoryAssigner, _assign, assign_new, encode
from storage.protocol import Store
from storage.stories import StoredMember, StoryHead, StoryReader
from tests.integration.test_store_contract import match, watchlist
from tests.integration.test_story_index_cache import source, titled

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
WINDOW = timedelta(hours=72)
ENCODER = HashingEncoder()
CAP = 3  # members of one story held: small, so that most stories are capped
HELD = 14  # members held in all: small, so that the index trims

EVENTS = [
    "SAM battery moved to Crimea, satellite images show",
    "Typhoon Haishen makes landfall on Okinawa",
    "Central bank raises its policy rate again",
    "Election results announced in the capital city",
]
WORDS = ["report", "update", "latest", "analysis", "live", "sources", "officials", "video"]


def small_index() -> StoryIndex:
    return StoryIndex(params_for(ENCODER.name), WINDOW, max_members=HELD, max_story_members=CAP)


def assigner() -> StoryAssigner:
    a = StoryAssigner(lambda: ENCODER, WINDOW)
    a._index = small_index()
    return a


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


class Counting:
    """The reader of one locked assignment, counting the members it reads
    whole and the stories whose members it lists (`keyed`: stories loaded)."""

    def __init__(self, reader: StoryReader) -> None:
        self.r, self.whole, self.keyed = reader, 0, 0

    def heads(self) -> list[StoryHead]:
        return self.r.heads()

    def window(self) -> tuple[datetime, datetime]:
        return self.r.window()

    def heads_between(self, since: datetime, until: datetime) -> list[StoryHead]:
        return self.r.heads_between(since, until)

    def changes(self, after: int) -> list[StoryHead]:
        return self.r.changes(after)

    def number(self) -> int:
        return self.r.number()

    def members(self, story_ids: Sequence[int]) -> dict[int, list[StoredMember]]:
        got = self.r.members(story_ids)
        self.whole += sum(len(v) for v in got.values())
        return got

    def member_keys(self, story_ids: Sequence[int]) -> dict[int, list[tuple[datetime, int]]]:
        self.keyed += len(story_ids)
        return self.r.member_keys(story_ids)

    def members_of(self, item_ids: Sequence[int]) -> list[StoredMember]:
        got = self.r.members_of(item_ids)
        self.whole += len(got)
        return got

    def concepts_of(self, item_ids: Sequence[int]) -> dict[int, frozenset[str]]:
        return self.r.concepts_of(item_ids)

    def stories_of(self, item_ids: Sequence[int]) -> dict[int, int | None]:
        return self.r.stories_of(item_ids)


def full_read(reader: StoryReader, fresh: StoryAssigner) -> StoryIndex:
    """The index as the assigner built it before: every member of every story
    of the window read again (`members`), loaded in (published, id) order."""
    index = small_index()
    since, until = reader.window()
    heads = reader.heads_between(since - timedelta(hours=24), until + timedelta(hours=24))
    loaded = reader.members([h.story_id for h in heads])
    for h in heads:
        members = loaded.get(h.story_id, [])
        index.load(
            h.story_id,
            h.first_seen,
            [fresh.features(m, frozenset()) for m in members],
            keys=[m.item_id for m in members],
        )
    index.trim()
    return index


def view(f: ItemFeatures) -> tuple[object, ...]:
    fields = dataclasses.asdict(f)
    vector = fields.pop("vector")
    return (fields, np.asarray(vector).tobytes())


def snapshot(index: StoryIndex) -> dict[int, tuple[object, ...]]:
    out: dict[int, tuple[object, ...]] = {}
    for sid in sorted(index.story_ids()):
        story = index.story(sid)
        assert story is not None
        held = index.held(sid)
        out[sid] = (
            story.first_seen,
            tuple(view(m) for m in story.members),
            tuple(sorted(held)),
        )
    return out


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

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        counting = Counting(reader)
        got = mine.refresh(counting)
        seen["whole"] = counting.whole
        seen["got"] = snapshot(got)
        seen["want"] = snapshot(full_read(reader, StoryAssigner(lambda: ENCODER, WINDOW)))
        held = {k for sid in got.story_ids() for k in got.held(sid)}
        seen["lacked"] = held - set(first)  # kept members this replica did not assign
        # the same decisions for new items, from either index
        probes = [mine.features(m, frozenset()) for m in items]
        want = full_read(reader, StoryAssigner(lambda: ENCODER, WINDOW))
        seen["decisions"] = (
            [d.story_id for _, d in got.assign_batch(probes, lambda _i: -1)],
            [d.story_id for _, d in want.assign_batch(probes, lambda _i: -1)],
        )
        return [-(k + 1) for k in range(len(items))]

    with store.transaction() as tx:
        ids = tx.store_items(src, [item(n, hours=20 + n) for n in range(41, 45)], T0)
        vectors = encode(mine, [(item(n, 0).title, "", "") for n in range(41, 45)])
        assert vectors is not None
        tx.save_story_vectors(
            [(i, vectors[k]) for k, i in enumerate(ids.values())], encoder=mine.identity()
        )
        tx.assign_stories(list(ids.values()), probe, window=WINDOW, now=T0, encoder=mine.identity())

    assert seen["got"] == seen["want"]
    assert seen["got"]  # not vacuous: stories held
    decisions = seen["decisions"]
    assert isinstance(decisions, tuple) and decisions[0] == decisions[1]
    # only the members it lacked were read whole (a full read: every member of
    # every changed story, 41 here, most of them capped away again)
    lacked = seen["lacked"]
    assert isinstance(lacked, set)
    assert seen["whole"] == len(lacked)
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

    seen: dict[str, object] = {}

    def probe(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        got = mine.refresh(reader)
        seen["got"] = snapshot(got)
        seen["want"] = snapshot(full_read(reader, StoryAssigner(lambda: ENCODER, WINDOW)))
        seen["concepts"] = {
            i for sid in got.story_ids() for i, f in got.held(sid).items() if f.concepts
        }
        return [-(k + 1) for k in range(len(items))]

    with store.transaction() as tx:
        ids = tx.store_items(src, [item(41, hours=30)], T0)
        tx.assign_stories(list(ids.values()), probe, window=WINDOW, now=T0, encoder=mine.identity())

    assert seen["concepts"]  # not vacuous: held members carry the backfilled concepts
    assert seen["got"] == seen["want"]


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
        counting = Counting(reader)
        got = mine.refresh(counting)
        seen["whole"] = counting.whole
        seen["new"] = sum(
            len(set(got.held(sid)) - before.get(sid, set())) for sid in got.story_ids()
        )
        seen["kept"] = anchored & {k for sid in got.story_ids() for k in got.held(sid)}
        seen["got"] = snapshot(got)
        seen["want"] = snapshot(full_read(reader, StoryAssigner(lambda: ENCODER, WINDOW)))
        return [-(k + 1) for k in range(len(items))]

    with store.transaction() as tx:
        ids = tx.store_items(src, [item(41, hours=30)], T0)
        tx.assign_stories(list(ids.values()), probe, window=WINDOW, now=T0, encoder=mine.identity())

    assert seen["kept"]  # the anchored members are still held after the refresh
    assert seen["got"] == seen["want"]
    new = seen["new"]
    assert isinstance(new, int) and new > 0  # the later members were read
    assert seen["whole"] == new  # and only they
