"""How a crawl takes finished polls for its next save (scheduler.crawl._next_batch):
what is ready at once, and with a linger, what finishes soon after the first."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from scheduler.crawl import _next_batch


def _queue(ready: int) -> asyncio.Queue[Any]:
    done: asyncio.Queue[Any] = asyncio.Queue()
    for n in range(ready):
        done.put_nowait(("source", n))
    return done


def _later(done: asyncio.Queue[Any], delay: float, item: Any) -> None:
    asyncio.get_running_loop().call_later(delay, done.put_nowait, item)


@pytest.mark.parametrize("ready", [1, 2, 5])
def test_without_linger_a_batch_is_what_is_ready(ready: int) -> None:
    async def go() -> list[Any]:
        done = _queue(ready)
        _later(done, 0.05, ("source", "late"))
        return await _next_batch(done, 10)

    assert asyncio.run(go()) == [("source", n) for n in range(ready)]


@pytest.mark.parametrize("limit", [1, 3, 8])
def test_a_batch_never_exceeds_its_limit(limit: int) -> None:
    async def go() -> list[Any]:
        return await _next_batch(_queue(10), limit, 5.0)

    started = time.monotonic()
    assert len(asyncio.run(go())) == limit
    assert time.monotonic() - started < 2.5  # full at once: no wait for the linger


def test_a_linger_takes_the_polls_that_finish_soon_and_returns_when_full() -> None:
    async def go() -> list[Any]:
        done = _queue(1)
        _later(done, 0.05, ("source", "soon"))
        _later(done, 0.1, ("source", "sooner or later"))
        return await _next_batch(done, 3, 10.0)

    started = time.monotonic()
    batch = asyncio.run(go())
    assert batch == [("source", 0), ("source", "soon"), ("source", "sooner or later")]
    assert time.monotonic() - started < 5  # returned when full, not at the deadline


def test_a_linger_ends_at_its_deadline() -> None:
    async def go() -> list[Any]:
        done = _queue(1)
        _later(done, 0.05, ("source", "soon"))
        _later(done, 30, ("source", "too late"))
        return await _next_batch(done, 5, 0.5)

    started = time.monotonic()
    assert asyncio.run(go()) == [("source", 0), ("source", "soon")]
    assert 0.5 <= time.monotonic() - started < 20


def test_an_error_among_the_polls_is_raised_without_waiting_out_the_linger() -> None:
    async def go() -> list[Any]:
        done = _queue(1)
        _later(done, 0.05, RuntimeError("a bug in one poll"))
        return await _next_batch(done, 5, 30.0)

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="a bug in one poll"):
        asyncio.run(go())
    assert time.monotonic() - started < 20
