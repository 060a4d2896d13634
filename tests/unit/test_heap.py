"""Free heap pages handed back after a burst of items (scheduler.heap): the
trim itself on a real fragmented heap, the count that decides when, and that
a crawl's saves, its end and the story drain's batches all count."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest

from alerts.alert_records import Recipient
from alerts.embedding import HashingEncoder
from scheduler import heap
from scheduler.crawl import crawl, drain_stories
from scheduler.heap import Churn, trim_heap
from scheduler.story_assignment import StoryAssigner
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer
from tests.unit.usecase_support import Clock, add_source, add_watchlist, crawl_context, rss

PAGE = 4096


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def fragment(megabytes: int, size: int, keep_every: int) -> list[bytes]:
    """In a thread of its own (an arena of its own, as the result thread's),
    allocate `megabytes` in blocks of `size` bytes (above pymalloc's 512: from
    malloc), free all but every `keep_every`-th. What is kept pins the arena's
    top, so free() alone gives nothing back. The survivors."""
    kept: list[bytes] = []

    def run() -> None:
        blocks = [bytes([n % 251]) * size for n in range(megabytes * 2**20 // size)]
        kept.extend(blocks[::keep_every])
        blocks.clear()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return kept


needs_glibc = pytest.mark.skipif(
    heap._MALLOC_TRIM is None, reason="the C library has no malloc_trim (not glibc)"
)


@needs_glibc
@pytest.mark.parametrize(("size", "keep_every"), [(3_000, 8), (5_000, 4), (20_000, 3), (1_100, 16)])
def test_a_trim_hands_back_the_free_pages_between_survivors(size: int, keep_every: int) -> None:
    kept = fragment(64, size, keep_every)
    before = resident_bytes()
    assert trim_heap() is True
    after = resident_bytes()
    freed = 64 * 2**20 * (keep_every - 1) // keep_every
    # whole free pages between survivors go back; partly used pages stay
    assert before - after > freed // 3, (before, after)
    assert all(block == bytes([block[0]]) * size for block in kept[:: max(len(kept) // 50, 1)])


@needs_glibc
def test_trimming_twice_is_harmless_and_memory_is_reused_after_it() -> None:
    kept = fragment(16, 4_000, 4)
    assert trim_heap() and trim_heap()
    again = fragment(16, 4_000, 4)  # the pages handed back are taken again on demand
    assert len(again) == len(kept)
    assert all(len(block) == 4_000 for block in again)


class Recorder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return trim_heap()


@pytest.mark.parametrize(
    ("after", "counts", "trims"),
    [
        (3, [1, 1, 1], 1),
        (3, [1, 1], 0),
        (3, [5, 1, 1], 1),  # a big count trims once and starts again from zero
        (3, [5, 1, 1, 1], 2),
        (2, [0, 0, -4, 1, 1], 1),  # nothing and negative counts count for nothing
        (1, [1] * 10, 10),
    ],
)
def test_a_churn_trims_once_every_after_items(after: int, counts: list[int], trims: int) -> None:
    recorder = Recorder()
    churn = Churn(after=after, trim=recorder)
    for n in counts:
        churn.passed(n)
    assert recorder.calls == trims


def test_a_churn_shared_by_threads_counts_every_item_once() -> None:
    recorder = Recorder()
    churn = Churn(after=100, trim=recorder)
    start = threading.Barrier(8)

    def one() -> None:
        start.wait()
        for _ in range(2_500):
            churn.passed(1)

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert recorder.calls == 8 * 2_500 // 100


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], tuple[Recorder, Recorder]]:
    """The process's Churn replaced by one trimming every `after` items, and
    the crawl's own end-of-crawl trim recorded: (churn's trims, direct trims)."""

    def install(after: int) -> tuple[Recorder, Recorder]:
        churned, direct = Recorder(), Recorder()
        monkeypatch.setattr(heap, "ITEMS", Churn(after=after, trim=churned))
        monkeypatch.setattr(heap, "trim_heap", direct)
        return churned, direct

    return install


def test_a_crawl_counts_every_saved_item_and_trims_when_it_ends(
    http_server: LocalHTTPServer, counted: Callable[[int], tuple[Recorder, Recorder]]
) -> None:
    churned, direct = counted(6)  # exactly the crawl's items: one trim from the count
    store = MemoryStore()
    add_watchlist(store, [])
    for name in ("a", "b"):
        add_source(
            store,
            name,
            http_server.route(f"/{name}", (200, {}, rss("x", "y", "SAM", host=f"{name}.org"))),
        )
    report = asyncio.run(crawl(crawl_context(store, Clock()), parse_workers=0))
    assert report.new_items == 6
    assert (churned.calls, direct.calls) == (1, 1)


def test_a_crawl_of_failures_counts_nothing_and_still_trims_at_its_end(
    http_server: LocalHTTPServer, counted: Callable[[int], tuple[Recorder, Recorder]]
) -> None:
    churned, direct = counted(1)
    store = MemoryStore()
    add_watchlist(store, [])
    add_source(store, "gone", http_server.route("/gone", (404, {}, b"")))
    report = asyncio.run(crawl(crawl_context(store, Clock()), parse_workers=0))
    assert len(report.failed) == 1
    assert (churned.calls, direct.calls) == (0, 1)


def test_the_story_drain_counts_its_batches(
    http_server: LocalHTTPServer, counted: Callable[[int], tuple[Recorder, Recorder]]
) -> None:
    store = MemoryStore()
    add_watchlist(store, [Recipient("webhook", "https://hook.example/")])
    titles = [f"report {n} on the weather" for n in range(5)]  # none matches: all pending
    add_source(store, "a", http_server.route("/a", (200, {}, rss(*titles))))
    ctx = dataclasses.replace(
        crawl_context(store, Clock()),
        stories=StoryAssigner(HashingEncoder, timedelta(hours=72)),
    )
    assert asyncio.run(crawl(ctx, parse_workers=0)).new_items == 5
    churned, _ = counted(5)  # counted from here: the drain's five items, one trim
    assert drain_stories(ctx, one_shot=True) == 5
    assert churned.calls == 1
