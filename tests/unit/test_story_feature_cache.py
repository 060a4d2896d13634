"""StoryAssigner computes a member's features once per process for the same
inputs (a story another replica grew is read again with all its members, and
each used to be computed again under the assignment lock), and anew when any
input changes: text, language, time, concepts, or a vector appearing."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from alerts.embedding import HashingEncoder
from scheduler.story_assignment import StoryAssigner
from storage.stories import StoredMember

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
ENCODER = HashingEncoder()


def assigner() -> StoryAssigner:
    return StoryAssigner(lambda: ENCODER, timedelta(hours=72))


def member(item_id: int = 1, **changes: object) -> StoredMember:
    base = StoredMember(
        item_id=item_id,
        story_id=None,
        title="North Korea fires 2 missiles from Pyongyang into the East Sea",
        summary="The JCS said two short-range ballistic missiles flew 600 km.",
        body="",
        language="en",
        published=T0,
        vector=ENCODER.encode(["North Korea fires 2 missiles"])[0],
        concepts=frozenset({"dprk/missile"}),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def fresh(m: StoredMember, extra: frozenset[str] = frozenset()) -> object:
    """What an assigner with nothing cached computes."""
    return assigner().features(m, extra)


def same(a: object, b: object) -> bool:
    fa, fb = dataclasses.asdict(a), dataclasses.asdict(b)  # type: ignore[call-overload]
    va, vb = fa.pop("vector"), fb.pop("vector")
    return bool(fa == fb and np.array_equal(va, vb))


def test_the_same_member_is_computed_once() -> None:
    a = assigner()
    first = a.features(member(), frozenset())
    again = a.features(member(), frozenset())  # a new row object, same values (a re-read)
    assert again is first
    assert same(first, fresh(member()))


CHANGES = [
    {"title": "North Korea fires 3 missiles from Sinpo into the East Sea"},
    {"summary": "The JCS said one cruise missile flew 1,500 km."},
    {"body": "Seoul, 30 November: a third launch site, Sohae, was used."},
    {"language": "ko"},
    {"published": T0 + timedelta(hours=5)},
    {"concepts": frozenset({"dprk/missile", "brics/BRICS"})},
    {"vector": None},
]


@pytest.mark.parametrize("change", CHANGES, ids=[next(iter(c)) for c in CHANGES])
def test_a_changed_input_is_computed_anew(change: dict[str, object]) -> None:
    a = assigner()
    before = a.features(member(), frozenset())
    changed = member(**change)
    after = a.features(changed, frozenset())
    assert after is not before
    assert same(after, fresh(changed))


def test_extra_concepts_count_as_concepts() -> None:
    a = assigner()
    stored_later = member(concepts=frozenset({"dprk/missile", "sam/SAM"}))
    decided = a.features(member(), frozenset({"sam/SAM"}))  # concepts not stored yet
    assert "sam/SAM" in decided.concepts
    assert a.features(stored_later, frozenset()) is decided  # the same inputs once stored
    assert same(decided, fresh(stored_later))


def test_another_item_with_the_same_text_is_its_own_entry() -> None:
    a = assigner()
    assert a.features(member(1), frozenset()) is not a.features(member(2), frozenset())


def test_the_cache_stays_bounded_by_the_index() -> None:
    a = assigner()
    for i in range(30_000):
        a.features(member(i, title=f"Item {i}"), frozenset())
    held = len(a._known) + len(a._known_old)
    assert held <= 2 * (a.index().members + 512) + 2
    a.reset()
    assert len(a._known) + len(a._known_old) == 0
