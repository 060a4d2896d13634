"""The story index a locked refresh leaves, against a full read of the window:
the reader that counts what it reads whole, the reference read, and the
snapshot they are compared by (tests/integration/test_story_incremental_load.py
and test_story_warm.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from alerts.embedding import HashingEncoder
from alerts.stories import ItemFeatures, StoryIndex, params_for
from scheduler.story_assignment import StoryAssigner
from storage.stories import StoredMember, StoryHead, StoryReader

WINDOW = timedelta(hours=72)
ENCODER = HashingEncoder()
CAP = 3  # members of one story held: small, so that most stories are capped
HELD = 14  # members held in all: small, so that the index trims


def small_index() -> StoryIndex:
    return StoryIndex(params_for(ENCODER.name), WINDOW, max_members=HELD, max_story_members=CAP)


def assigner() -> StoryAssigner:
    a = StoryAssigner(lambda: ENCODER, WINDOW)
    a._index = small_index()
    return a


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


def full_read(
    reader: StoryReader, fresh: StoryAssigner, index: StoryIndex | None = None
) -> StoryIndex:
    """The index as the assigner built it before: every member of every story
    of the window read again (`members`), loaded in (published, id) order,
    into `index` (a small one by default)."""
    index = small_index() if index is None else index
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


# story id: (first_seen, its members' features, the keys held)
Snapshot = dict[int, tuple[datetime, tuple[tuple[object, ...], ...], tuple[int, ...]]]


def snapshot(index: StoryIndex) -> Snapshot:
    out: Snapshot = {}
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


@dataclass(frozen=True)
class Refreshed:
    """A locked refresh of an assigner's index, and a full read's index."""

    index: StoryIndex  # what the refresh left
    whole: int  # members it read whole
    keyed: int  # stories whose members it listed (loaded again)
    got: Snapshot  # snapshot(index)
    want: Snapshot  # the snapshot of a full read of the window, in the same transaction


def refresh_and_full_read(a: StoryAssigner, reader: StoryReader) -> Refreshed:
    """`a.refresh` through a Counting `reader`, then a fresh assigner's full
    read of the window through `reader` (the index the refresh must equal)."""
    counting = Counting(reader)
    index = a.refresh(counting)
    want = full_read(reader, StoryAssigner(lambda: ENCODER, WINDOW))
    return Refreshed(index, counting.whole, counting.keyed, snapshot(index), snapshot(want))


def no_story(items: Sequence[StoredMember]) -> list[int]:
    """A probe's decision that assigns nothing (negative story ids)."""
    return [-(k + 1) for k in range(len(items))]
