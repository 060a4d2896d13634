"""What StoryIndex and the features hold (issue #15, memory; measured in
bench/crawl.py, never here): float16 rows where the vectors are float16
already, with the same decisions as float32 rows; a matrix bounded by the
members held, not by how many came and went; empty feature sets shared."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from alerts.stories import PARAMS, ItemFeatures, StoryIndex, features
from scheduler.story_assignment import StoryAssigner

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
USEM3 = PARAMS["usem3"]


def stream(n: int, *, events: int, seed: int = 7, dim: int = 64) -> list[ItemFeatures]:
    """`n` items reporting `events` events (a direction each, plus noise), with
    float16 vectors as StoryAssigner gives them, two languages, a number now
    and then, one every minute."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(events, dim))
    out = []
    for i in range(n):
        v = centres[rng.integers(events)] + 0.35 * rng.normal(size=dim)
        v16 = (v / np.linalg.norm(v)).astype(np.float16)
        out.append(
            features(
                f"Report {i % 13} of the day" if i % 5 else "Report of the day",
                "",
                "",
                vector=v16,
                published=T0 + timedelta(minutes=i),
                language="en" if i % 3 else "ko",
            )
        )
    return out


def decisions(index: StoryIndex, items: list[ItemFeatures]) -> list[tuple[int, float]]:
    ids = iter(range(1, 100_000))
    return [
        (sid, got.score)
        for sid, got in index.assign_batch(items, lambda _: next(ids), keys=range(len(items)))
    ]


def test_float16_rows_decide_exactly_as_float32_rows_for_float16_vectors() -> None:
    items = stream(900, events=60)
    wide = decisions(StoryIndex(USEM3, max_members=300), items)
    half = StoryIndex(USEM3, max_members=300, dtype=np.float16)
    assert decisions(half, items) == wide
    assert half._vec.dtype == np.float16
    assert len({sid for sid, _ in wide}) not in (1, len(items))  # joins and new stories both


def test_the_assigners_index_holds_float16_rows() -> None:
    from alerts.embedding import HashingEncoder

    encoder = HashingEncoder()
    assert StoryAssigner(lambda: encoder, timedelta(hours=72)).index().dtype == np.float16


def test_the_matrix_is_bounded_by_the_members_held_not_by_the_stream() -> None:
    """3,000 items through an index that holds 256: dead rows are compacted
    away before the matrix grows once they are a quarter of it, so it holds
    at most 8/3 rows per member (it grew while up to half its rows were dead:
    4x, 1,024 rows here, 16,384 rows of 2 KB for the default 4,096 members)."""
    index = StoryIndex(USEM3, max_members=256, dtype=np.float16)
    decisions(index, stream(3000, events=400))
    assert index.members == 256
    assert index._vec.shape[0] <= 256 * 8 // 3


def test_empty_feature_sets_are_one_shared_object() -> None:
    a = features("Storm hits the coast", "", "", vector=np.ones(4), published=T0)
    b = features("Markets close higher", "", "", vector=np.ones(4), published=T0)
    empty = [a.concepts, a.numbers, a.quantities, a.kinds, a.sites, a.periods, b.incidents]
    assert all(s == frozenset() for s in empty)
    assert len({id(s) for s in empty}) == 1
    c = features("Magnitude 6.4 quake hits Japan", "", "", vector=np.ones(4), published=T0)
    assert c.quantities and c.kinds and c.countries  # non-empty ones are the item's own
