"""The list's grouping (storage.views._fold), as a property over any rows:
one group per story, one per item without a story, newest first, bounded."""

from __future__ import annotations

from typing import NamedTuple

from hypothesis import given
from hypothesis import strategies as st

from storage.views import _fold


class Row(NamedTuple):
    story_id: int | None
    item_id: int


# Items 1-30, each in one of stories 1-6 or in none (a fixed map per example).
stories_of = st.dictionaries(
    st.integers(1, 30), st.one_of(st.none(), st.integers(1, 6)), min_size=1
)


@given(stories_of, st.data(), st.integers(1, 8))
def test_fold_one_group_per_story_or_lone_item(
    story_of: dict[int, int | None], data: st.DataObject, limit: int
) -> None:
    order = data.draw(st.lists(st.sampled_from(sorted(story_of)), max_size=60))
    rows = [Row(story_of[i], i) for i in order]  # newest match first
    folded = _fold(rows, limit)
    expected: list[tuple[bool, int]] = []
    for r in rows:
        key = (True, r.story_id) if r.story_id is not None else (False, r.item_id)
        if key not in expected:
            expected.append(key)
    assert list(folded) == expected[:limit]  # first-seen order, at most `limit`
    for (is_story, key), by_item in folded.items():
        for item_id, item_rows in by_item.items():
            assert all(r.item_id == item_id for r in item_rows)
            assert story_of[item_id] == (key if is_story else None)
            if not is_story:
                assert item_id == key
        assert sum(map(len, by_item.values())) == sum(
            1
            for r in rows
            if (r.story_id == key if is_story else (r.story_id is None and r.item_id == key))
        )
