"""The collector's pause during a one-shot crawl (scheduler.collector): what it
changes while a crawl runs, and that the process gets its own settings back
after the last of any overlapping crawls, whatever ends them."""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Iterator

import pytest

from scheduler.collector import CRAWL_THRESHOLD, fewer_collections
from scheduler.crawl import crawl
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer
from tests.unit.usecase_support import Clock, add_source, add_watchlist, crawl_context, rss


@pytest.fixture(autouse=True)
def _restore_gc() -> Iterator[None]:
    """Each test starts with nothing frozen (an earlier web view test in this
    process froze its heap), and a failing test must not leave the suite's
    process with a changed collector."""
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    gc.unfreeze()
    yield
    gc.set_threshold(*before)
    gc.unfreeze()
    if frozen:
        gc.freeze()


@pytest.mark.parametrize("young", [100, 700, 5_000])
def test_a_crawl_freezes_and_raises_the_threshold_then_puts_both_back(young: int) -> None:
    gc.set_threshold(young, 9, 8)
    frozen_before = gc.get_freeze_count()
    with fewer_collections():
        assert gc.get_threshold() == (max(young, CRAWL_THRESHOLD), 9, 8)
        assert gc.get_freeze_count() > frozen_before
    assert gc.get_threshold() == (young, 9, 8)
    assert gc.get_freeze_count() == frozen_before


def test_a_process_already_collecting_less_often_is_not_made_to_collect_more() -> None:
    gc.set_threshold(50_000, 10, 10)
    with fewer_collections():
        assert gc.get_threshold()[0] == 50_000
    assert gc.get_threshold() == (50_000, 10, 10)


@pytest.mark.parametrize(
    "error", [RuntimeError("bug"), KeyboardInterrupt(), asyncio.CancelledError()]
)
def test_whatever_ends_the_crawl_the_settings_come_back(error: BaseException) -> None:
    before = gc.get_threshold()
    with pytest.raises(type(error)), fewer_collections():
        raise error
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("order", ["first ends first", "last ends first"])
def test_overlapping_crawls_share_one_pause_until_the_last_ends(order: str) -> None:
    before = gc.get_threshold()
    a, b = fewer_collections(), fewer_collections()
    a.__enter__()
    b.__enter__()
    first, second = (a, b) if order == "first ends first" else (b, a)
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == CRAWL_THRESHOLD  # the other crawl still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_crawls_in_threads_leave_the_settings_as_they_found_them() -> None:
    before = gc.get_threshold()
    start = threading.Barrier(8)

    def one() -> None:
        start.wait()
        for _ in range(50):
            with fewer_collections():
                assert gc.get_threshold()[0] == CRAWL_THRESHOLD

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_heap_frozen_before_the_crawl_stays_frozen() -> None:
    """The web view freezes its heap at start (web.server.freeze_heap); a crawl
    in the same process must not thaw it when it ends."""
    gc.freeze()
    frozen = gc.get_freeze_count()
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == max(before[0], CRAWL_THRESHOLD)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() >= frozen > 0


def test_cycles_made_during_a_crawl_are_collected_after_it() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self

    with fewer_collections():
        import weakref

        ref = weakref.ref(Node())
    gc.collect()
    assert ref() is None


def test_the_crawl_polls_inside_the_pause_and_ends_it(http_server: LocalHTTPServer) -> None:
    store = MemoryStore()
    add_watchlist(store, [])
    add_source(store, "isw", http_server.route("/f", (200, {}, rss("SAM site seen"))))
    seen: list[tuple[int, int, int]] = []
    before = gc.get_threshold()

    def on_done(*_: object) -> None:
        seen.append(gc.get_threshold())

    report = asyncio.run(crawl(crawl_context(store, Clock()), parse_workers=0, on_done=on_done))
    assert report.new_items == 1
    assert [t[0] for t in seen] == [max(before[0], CRAWL_THRESHOLD)]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
