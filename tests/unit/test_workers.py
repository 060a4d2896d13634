"""crawler.parse_pool and poll's executor fallback: parsing goes on when workers cannot."""

from __future__ import annotations

import asyncio
import fcntl
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import crawler.parse_pool
from crawler.fetch import FetchResult
from crawler.parse_pool import parse_pool, release_workers
from crawler.poll import _parse

FEEDS = Path(__file__).parent.parent / "fixtures" / "feeds"
NOW = datetime(2025, 7, 10, tzinfo=UTC)


def test_no_pool_when_zero_workers_are_asked() -> None:
    with parse_pool(0) as pool:
        assert pool is None


def test_no_pool_when_processes_cannot_start(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OSError("no processes here")

    monkeypatch.setattr(crawler.parse_pool.ProcessPoolExecutor, "__init__", refuse)
    with parse_pool(2) as pool:
        assert pool is None


def test_default_workers_leave_a_core_to_the_main_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(crawler.parse_pool.os, "cpu_count", lambda: 8)
    assert crawler.parse_pool.default_workers() == 7
    monkeypatch.setattr(crawler.parse_pool.os, "cpu_count", lambda: 1)
    assert crawler.parse_pool.default_workers() == 1


class BrokenPool(Executor):
    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        raise BrokenProcessPool("a worker died")


def result(name: str) -> Any:
    return FetchResult(
        url="https://www.rand.org/feed",
        status=200,
        headers={"Content-Type": "application/atom+xml"},
        body=(FEEDS / name).read_bytes(),
        not_modified=False,
        etag=None,
        last_modified=None,
        retry_after=None,
        max_age=None,
    )


def test_a_broken_pool_falls_back_to_parsing_in_process() -> None:
    fetched = result("atom.xml")
    parsed = asyncio.run(_parse(fetched, NOW, BrokenPool()))
    same = asyncio.run(_parse(fetched, NOW, None))
    assert parsed == same and parsed.items


def test_a_real_pool_parses_the_same_as_in_process() -> None:
    fetched = result("rss20.xml")
    with parse_pool(1) as pool:
        assert pool is not None
        parsed = asyncio.run(_parse(fetched, NOW, pool))
    assert parsed == asyncio.run(_parse(fetched, NOW, None))


def test_workers_do_not_run_the_parents_main_script() -> None:
    """A spawned child normally runs the parent's main script first (here
    pytest's, for `newswatch` the whole CLI); the parse workers need none of
    it. The check runs in the worker (eval of a string: nothing of this
    process is pickled but the text)."""
    with parse_pool(1) as pool:
        assert pool is not None
        main = "getattr(__import__('sys').modules.get('__mp_main__'), '__file__', None)"
        ran_main = pool.submit(eval, main).result()
        imported = pool.submit(eval, "sorted(__import__('sys').modules)").result()
    assert ran_main is None
    assert "pytest" not in imported and "sqlalchemy" not in imported
    assert "crawler.feeds" in imported  # what parsing needs was imported (_warm_up)


def test_a_pool_starts_no_worker_before_its_first_task() -> None:
    """A re-crawl that parses nothing must not pay for a worker's start."""
    with parse_pool(1) as pool:
        assert isinstance(pool, crawler.parse_pool.ProcessPoolExecutor)
        assert not pool._processes


def test_a_parsed_feed_crosses_the_process_boundary_unchanged() -> None:
    """ParsedFeed pickles as tuples (crawler.feeds.ParsedFeed.__reduce__):
    every field of every item comes back, dates and None included."""
    import pickle

    from crawler.crawl_records import Item
    from crawler.feeds import ParsedFeed

    items = (
        Item("https://a.example/1", "g1", "T", "S", "Текст", NOW, "ru", "h1", dated=True),
        Item("https://a.example/2", "g2", "", "", "", NOW, None, "h2", dated=False),
    )
    feed = ParsedFeed(items, ttl_seconds=60, title=None, skipped=3, encoding="koi8-r")
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        again = pickle.loads(pickle.dumps(feed, protocol=protocol))
        assert again == feed and again.items[1].dated is False
        assert [type(it) for it in again.items] == [Item, Item]


@pytest.mark.skipif(
    not hasattr(fcntl, "F_GETPIPE_SZ"), reason="pipe sizes are a Linux fcntl (F_GETPIPE_SZ)"
)
def test_the_pools_pipes_hold_parsed_feeds_larger_than_64_kb() -> None:
    """A worker writes a parsed feed and goes on parsing, instead of waiting
    for the crawling process's result thread (GIL-bound) to drain 64 KB pipes."""
    limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    with parse_pool(1) as pool:
        assert isinstance(pool, ProcessPoolExecutor)
        for queue in (pool._call_queue, pool._result_queue):  # type: ignore[attr-defined]
            size = fcntl.fcntl(queue._reader.fileno(), fcntl.F_GETPIPE_SZ)
            assert size >= min(crawler.parse_pool.PIPE_SIZE, limit) > 64 * 1024
        # and the pool still parses through them
        assert pool.submit(len, b"x" * (3 * 1024 * 1024)).result(timeout=60) == 3 * 1024 * 1024


def test_a_worker_uses_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker is one core of parsing: numpy's OpenBLAS loads with one thread
    there (a second one spun while the language model loaded). Checked in the
    worker with threadpoolctl, whatever this process's environment says."""
    for name in crawler.parse_pool._BLAS_THREADS:
        monkeypatch.delenv(name, raising=False)
    query = (
        "[i['num_threads'] for i in __import__('threadpoolctl').threadpool_info()"
        " if i['user_api'] == 'blas']"
    )
    with parse_pool(1) as pool:
        assert pool is not None
        threads = pool.submit(eval, query).result()
    assert threads and set(threads) == {1}


def test_a_blas_thread_count_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with parse_pool(1) as pool:
        assert pool is not None
        got = pool.submit(eval, "__import__('os').environ['OPENBLAS_NUM_THREADS']").result()
    assert got == "2"


def _workers(pool: Any) -> list[Any]:
    return list((pool._processes or {}).values())


def _until(check: Any, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_released_workers_exit_while_the_pool_is_still_open() -> None:
    """A crawl whose every poll is parsed lets its workers go
    (`release_workers`): they exit at once, before the pool's own end."""
    with parse_pool(1) as pool:
        assert pool is not None
        assert pool.submit(len, b"abc").result(timeout=60) == 3
        (worker,) = _workers(pool)
        release_workers(pool)
        assert _until(lambda: not worker.is_alive())
    assert worker.exitcode == 0


def test_a_released_pool_still_waits_for_its_workers_at_its_end() -> None:
    """ProcessPoolExecutor.shutdown(wait=False) forgets its processes, so its
    later shutdown(wait=True) would return while a worker still runs its
    job: the parse pool keeps them and joins them at its end."""
    with parse_pool(1) as pool:
        assert pool is not None
        assert pool.submit(len, b"").result(timeout=60) == 0  # the worker has started
        (worker,) = _workers(pool)
        job = pool.submit(time.sleep, 1.0)
        release_workers(pool)
        assert worker.is_alive()
    assert job.done() and worker.exitcode == 0  # joined: not still sleeping


def test_releasing_other_executors_does_nothing() -> None:
    with ThreadPoolExecutor(1) as threads:
        release_workers(threads)
        assert threads.submit(len, b"ab").result(timeout=10) == 2
