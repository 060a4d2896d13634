"""StoryIndex under hostile batches (alerts/stories.py): the bounds on members
held, members per story and stories scored keep the cost per item bounded,
and below them the decisions stay exactly the reference's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alerts.stories as engine
from alerts.stories import PARAMS, Candidate, ItemFeatures, StoryIndex, assign, features

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
USEM3 = PARAMS["usem3"]


def templated(n: int, title: str, *, seed: int = 1, noise: float = 0.01) -> list[ItemFeatures]:
    """`n` items whose vectors are one direction plus a little noise (templated text)."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=64)
    out = []
    for i in range(n):
        v = base + noise * rng.normal(size=64)
        out.append(
            features(
                title.format(i=i),
                "",
                "",
                vector=(v / np.linalg.norm(v)).astype(np.float32),
                published=T0 + timedelta(seconds=i),
                language="en",
            )
        )
    return out


def sequential(items: list[ItemFeatures]) -> list[int]:
    """The reference (`assign` over every story so far), item by item."""
    stories: dict[int, Candidate] = {}
    out = []
    for it in items:
        sid = assign(it, list(stories.values()), USEM3).story_id
        if sid is None:
            sid = len(stories) + 1
            stories[sid] = Candidate(sid, it.published, (it,))
        else:
            old = stories[sid]
            stories[sid] = Candidate(sid, old.first_seen, (*old.members, it))
        out.append(sid)
    return out


class CountingDecide:
    """Counts the stories scored in full (calls of the reference `_decide`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.stories = 0
        real = engine._decide

        def counted(item, plausible, params):  # type: ignore[no-untyped-def]
            plausible = list(plausible)
            self.stories += len(plausible)
            return real(item, plausible, params)

        monkeypatch.setattr(engine, "_decide", counted)


@pytest.mark.parametrize("title", ["Item {i}", "Item {i} of the feed: {i} dead"])
def test_a_templated_feed_of_numbered_items_scores_at_most_the_cap_per_item(
    monkeypatch: pytest.MonkeyPatch, title: str
) -> None:
    """Every title carries its own number (a veto against every other): all
    stories are plausible by cosine, all vetoed. Each item scores at most
    `max_scored` stories and the index holds at most `max_members`; the
    stories are still the reference's (each item alone)."""
    items = templated(600, title)
    counter = CountingDecide(monkeypatch)
    index, ids = StoryIndex(USEM3, max_members=100, max_scored=4), iter(range(1, 10_000))
    got = [sid for sid, _ in index.assign_batch(items, lambda _: next(ids))]
    assert counter.stories <= 4 * len(items)
    assert index.members <= 100 and len(index) <= 100
    assert got == list(range(1, 601))
    monkeypatch.undo()
    assert got == sequential(items)


def test_one_headline_repeated_makes_one_story_with_bounded_members() -> None:
    items = templated(700, "Breaking news from the front", noise=0.0)
    index, ids = StoryIndex(USEM3, max_story_members=16), iter(range(1, 10_000))
    got = [sid for sid, _ in index.assign_batch(items, lambda _: next(ids))]
    assert set(got) == {1}
    story = index.story(1)
    assert story is not None and len(story.members) == 16
    assert [m.published for m in story.members] == [i.published for i in items[-16:]]
    assert got == sequential(items[:50]) + [1] * 650


def test_trim_keeps_the_latest_members_by_time_then_key() -> None:
    index = StoryIndex(USEM3, max_members=3)
    items = templated(5, "Item {i}")
    same_time = [features("x", "", "", vector=i.vector, published=T0) for i in items]
    for k, (sid, it) in enumerate(zip([1, 2, 3, 4, 5], same_time, strict=True)):
        index.add(sid, it.published, it, key=[50, 10, 40, 20, 30][k])
    index.trim()
    assert sorted(index.story_ids()) == [1, 3, 5]  # keys 50, 40, 30
    later = features("x", "", "", vector=items[0].vector, published=T0 + timedelta(hours=1))
    index.add(6, later.published, later, key=1)
    index.trim()
    assert sorted(index.story_ids()) == [1, 3, 6]  # later published beats any key


def test_load_remove_rename_and_evict_keep_rows_consistent() -> None:
    a, b, c = templated(3, "Item {i}", noise=0.5)
    index = StoryIndex(USEM3)
    index.load(7, T0, [a, b], keys=[1, 2])
    index.load(-1, T0, [c], keys=[3])
    index.rename(-1, 9)
    assert sorted(index.story_ids()) == [7, 9] and index.members == 3
    index.load(7, T0, [a], keys=[1])  # replaced: one member now
    assert index.members == 2
    index.remove(9)
    assert index.story_ids() == [7] and index.members == 1
    index.evict(T0 + timedelta(seconds=1))
    assert len(index) == 0 and index.members == 0
    # rows of removed stories are reused after compaction, decisions still right
    fresh = templated(300, "Storm hits the coast", noise=0.0)
    ids = iter(range(100, 10_000))
    assert {sid for sid, _ in index.assign_batch(fresh, lambda _: next(ids))} == {100}


unit = st.lists(st.floats(-1, 1, allow_nan=False), min_size=8, max_size=8).filter(
    lambda v: float(np.linalg.norm(v)) > 0.1
)


@given(st.lists(st.tuples(unit, st.integers(0, 100), st.booleans()), min_size=1, max_size=40))
@settings(max_examples=60, deadline=None)
def test_bounds_that_do_not_bind_change_nothing(raw) -> None:  # type: ignore[no-untyped-def]
    """Caps above the batch's size: exactly the reference (any chunking)."""
    items = []
    for v, hours, numbered in sorted(raw, key=lambda r: r[1]):
        a = np.array(v, dtype=np.float32)
        items.append(
            features(
                f"Launch {hours} reported" if numbered else "Launch reported",
                "",
                "",
                vector=a / np.linalg.norm(a),
                published=T0 + timedelta(hours=hours),
                language="en" if hours % 2 else "ko",
            )
        )
    index, ids = StoryIndex(USEM3, max_members=100, max_scored=50), iter(range(1, 1000))
    got = [sid for sid, _ in index.assign_batch(items, lambda _: next(ids))]
    assert got == sequential(items)
