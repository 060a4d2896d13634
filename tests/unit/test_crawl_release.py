"""A crawl lets its parse workers go once every poll is parsed
(scheduler.crawl's `on_polled` → crawler.parse_pool.release_workers): they
exit while its last saves run, not after them, and every poll is still saved."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

import pytest

from crawler.parse_pool import _WorkerProcess
from scheduler import crawl as crawl_module
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer
from tests.unit.usecase_support import Clock, add_source, add_watchlist, crawl_context, rss

SOURCES = 24


def _parse_workers() -> list[Any]:
    return [p for p in multiprocessing.active_children() if isinstance(p, _WorkerProcess)]


def test_the_workers_exit_before_the_last_save_ends(
    http_server: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    add_watchlist(store, [])  # the term SAM
    for n in range(SOURCES):
        add_source(
            store,
            f"s{n}",
            http_server.route(f"/f{n}", (200, {}, rss(f"SAM {n}", host=f"h{n}.example"))),
        )
    ctx = crawl_context(store, Clock())
    saved: list[int] = []
    seen: dict[str, Any] = {}
    real = crawl_module.save_together

    async def watched(ctx: Any, polls: Any, compiled: Any, rng: Any) -> Any:
        if _parse_workers():
            seen["worker"] = True  # a parse worker ran in this crawl
        if sum(saved) + len(polls) == SOURCES:  # the last save: every poll is parsed
            deadline = time.monotonic() + 30
            while _parse_workers() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            seen["workers at the last save"] = len(_parse_workers())
        saved.append(len(polls))
        return await real(ctx, polls, compiled, rng)

    monkeypatch.setattr(crawl_module, "save_together", watched)
    report = asyncio.run(crawl_module.crawl(ctx, parse_workers=1))
    assert (report.polled, report.new_items, report.new_matches) == (SOURCES, SOURCES, SOURCES)
    assert seen == {"worker": True, "workers at the last save": 0}
    assert not _parse_workers()  # and none is left after the crawl
