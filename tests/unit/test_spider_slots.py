"""SpiderSlots: at most `size` spider runs at once within an event loop, and
usable from one event loop after another (the CLI runs one per command)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.spider_slots import SpiderSlots


async def peak(slots: SpiderSlots, runs: int) -> int:
    inside = top = 0

    async def run() -> None:
        nonlocal inside, top
        async with slots.slot():
            inside += 1
            top = max(top, inside)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(run() for _ in range(runs)))
    return top


@settings(max_examples=30, deadline=None)
@given(size=st.integers(1, 4), runs=st.integers(0, 12))
def test_never_more_runs_than_slots(size: int, runs: int) -> None:
    slots = SpiderSlots(size)
    assert asyncio.run(peak(slots, runs)) == min(size, runs)
    assert asyncio.run(peak(slots, runs)) == min(size, runs)  # a second loop, same slots


def test_at_least_one_slot() -> None:
    with pytest.raises(ValueError):
        SpiderSlots(0)
