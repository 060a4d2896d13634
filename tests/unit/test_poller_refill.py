"""The daemon's poll job refills a poll slot as soon as a poll ends, not only
on the next tick: a tick that filled every slot keeps claiming for its
refill window, so one replica is not capped at concurrency / poll_tick
polls/s (docs/scaling.md). The fast twin of bench/scale.py's ceiling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from scheduler.jobs import DatabaseState, Poller
from scheduler.metrics import Metrics
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer
from tests.unit.usecase_support import Clock, add_source, add_watchlist, crawl_context, http, rss

FEEDS = 7


async def one_tick(store: MemoryStore, refill_window: float) -> float:
    """Run one tick of a 2-slot poller and wait for the polls it started."""
    ctx = crawl_context(store, Clock())
    ctx = replace(ctx, limits=replace(ctx.limits, concurrency=2, per_host=100))
    metrics = Metrics()
    async with http() as client:
        poller = Poller(ctx, client, DatabaseState(metrics), metrics, refill_window=refill_window)
        started = time.monotonic()
        await poller.tick()
        took = time.monotonic() - started
        await asyncio.gather(*poller.tasks.values())
    return took


def setup(http_server: LocalHTTPServer) -> MemoryStore:
    store = MemoryStore()
    add_watchlist(store)
    for n in range(FEEDS):
        add_source(store, f"f{n}", http_server.route(f"/f{n}", (200, {}, rss(f"story {n}"))))
    return store


def polled(http_server: LocalHTTPServer) -> int:
    return sum(1 for n in range(FEEDS) if http_server.hits(f"/f{n}"))


def test_a_tick_refills_free_slots_until_nothing_is_due(http_server: LocalHTTPServer) -> None:
    took = asyncio.run(one_tick(setup(http_server), refill_window=30.0))
    assert polled(http_server) == FEEDS  # 2 slots, 7 due sources, one tick
    assert took < 30.0  # it ended because nothing more was due, not at the window's end


def test_without_a_window_a_tick_claims_once(http_server: LocalHTTPServer) -> None:
    asyncio.run(one_tick(setup(http_server), refill_window=0.0))
    assert polled(http_server) == 2  # the old behaviour: one claim per tick


def test_the_window_bounds_a_tick(http_server: LocalHTTPServer) -> None:
    """Polls that never end within the window: the tick returns at its end
    (so ticks never overlap), with the slots still full."""
    store = setup(http_server)
    for n in range(FEEDS):

        def slow(_request: object, n: int = n) -> tuple[int, dict[str, str], bytes]:
            time.sleep(1.5)
            return 200, {}, rss(f"story {n}")

        http_server.route(f"/f{n}", slow)  # type: ignore[arg-type]
    took = asyncio.run(one_tick(store, refill_window=0.5))
    assert 0.4 < took < 1.4
    assert polled(http_server) == 2


class SpyStore(MemoryStore):
    """The real in-memory store, recording what each claim transaction asks."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with super().transaction() as tx:
            yield _Spy(tx, self.calls)


class _Spy:
    def __init__(self, tx: Any, calls: list[str]) -> None:
        self._tx, self._calls = tx, calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def claim_due_sources(self, **kw: Any) -> Any:
        got = self._tx.claim_due_sources(**kw)
        self._calls.append(f"claim free_dead={kw.get('free_dead', True)} got={len(got)}")
        return got

    def watchlists_version(self) -> Any:
        self._calls.append("watchlists_version")
        return self._tx.watchlists_version()


@pytest.mark.parametrize("feeds", [12, 25])
def test_refills_gather_several_sources_per_claim(http_server: LocalHTTPServer, feeds: int) -> None:
    """A refill waits `refill_gather` after a slot frees: all four polls of a
    claim end within it, so the next claim takes four again, not one. Only
    the first claim of the tick frees dead leases and checks the watchlists'
    version; the refills reuse what it found."""
    store = SpyStore()
    add_watchlist(store)
    for n in range(feeds):
        add_source(store, f"f{n}", http_server.route(f"/f{n}", (200, {}, rss(f"story {n}"))))

    async def go() -> Poller:
        ctx = crawl_context(store, Clock())
        ctx = replace(ctx, limits=replace(ctx.limits, concurrency=4, per_host=100))
        metrics = Metrics()
        async with http() as client:
            poller = Poller(
                ctx,
                client,
                DatabaseState(metrics),
                metrics,
                refill_window=30.0,
                refill_gather=0.5,
            )
            await poller.tick()
            await asyncio.gather(*poller.tasks.values())
        return poller

    poller = asyncio.run(go())
    assert sum(1 for n in range(feeds) if http_server.hits(f"/f{n}")) == feeds
    claims = [c for c in store.calls if c.startswith("claim")]
    assert poller.claims == len(claims) <= -(-feeds // 4) + 2  # ~4 per claim, not 1
    assert claims[0] == "claim free_dead=True got=4"
    assert all("free_dead=False" in c for c in claims[1:])
    assert store.calls.count("watchlists_version") == 1


def test_a_tick_that_starts_with_every_slot_busy_still_refills(
    http_server: LocalHTTPServer,
) -> None:
    """Saturated, the last tick's refills leave every slot busy when the next
    tick starts; that tick must wait for a slot within its window, not end at
    once (which left one tick in two without refills)."""
    store = setup(http_server)
    for n in range(FEEDS):

        def slow(_request: object, n: int = n) -> tuple[int, dict[str, str], bytes]:
            time.sleep(0.6)
            return 200, {}, rss(f"story {n}")

        http_server.route(f"/f{n}", slow)  # type: ignore[arg-type]

    async def go() -> int:
        ctx = crawl_context(store, Clock())
        ctx = replace(ctx, limits=replace(ctx.limits, concurrency=2, per_host=100))
        metrics = Metrics()
        async with http() as client:
            poller = Poller(ctx, client, DatabaseState(metrics), metrics, refill_window=0.1)
            await poller.tick()  # fills both slots, its window ends first
            assert len(poller.tasks) == 2
            poller.refill_window = 30.0
            await poller.tick()  # starts with both slots busy
            await asyncio.gather(*poller.tasks.values())
        return polled(http_server)

    assert asyncio.run(go()) == FEEDS
