"""How a crawl takes finished polls for its next save (scheduler.crawl._next_batch):
what is ready at once, and with a linger, what finishes soon after the first."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import pytest

from scheduler import crawl as crawl_module
from scheduler.crawl import POLLS_PER_FETCH_SLOT, SAVE_BATCH, _next_batch, save_batch_limit
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer
from tests.unit.usecase_support import Clock, add_source, add_watchlist, crawl_context, rss


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


@pytest.mark.parametrize(
    ("concurrency", "limit"), [(1, SAVE_BATCH), (16, SAVE_BATCH), (32, 32), (64, 64), (256, 256)]
)
def test_a_save_takes_up_to_half_the_polls_in_flight_and_never_fewer_than_save_batch(
    concurrency: int, limit: int
) -> None:
    assert save_batch_limit(concurrency) == limit
    assert save_batch_limit(concurrency) <= max(SAVE_BATCH, POLLS_PER_FETCH_SLOT * concurrency)


def test_a_crawl_with_many_polls_in_flight_saves_them_in_larger_batches(
    http_server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first save is held until every feed was served, so the other polls
    have finished when the next save takes its batch: with 40 x 2 polls in
    flight it takes 40 of them."""
    store = MemoryStore()
    add_watchlist(store, [])
    for n in range(70):
        add_source(
            store,
            f"s{n}",
            http_server.route(f"/f{n}", (200, {}, rss(f"SAM {n}", host=f"h{n}.example"))),
        )
    ctx = crawl_context(store, Clock())
    ctx = dataclasses.replace(ctx, limits=dataclasses.replace(ctx.limits, concurrency=40))
    sizes: list[int] = []
    real = crawl_module.save_together

    def served(n: int) -> list[Any]:
        return http_server.hits(f"/f{n}")

    async def held(ctx: Any, polls: Any, compiled: Any, rng: Any) -> Any:
        if not sizes:  # until every feed was served, then a moment to parse the last
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and sum(map(len, map(served, range(70)))) < 70:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
        sizes.append(len(polls))
        return await real(ctx, polls, compiled, rng)

    monkeypatch.setattr(crawl_module, "save_together", held)
    report = asyncio.run(crawl_module.crawl(ctx, parse_workers=0))
    assert (report.polled, report.new_items) == (70, 70)
    assert sum(sizes) == 70
    assert SAVE_BATCH < max(sizes) <= save_batch_limit(40) == 40
