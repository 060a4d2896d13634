"""A crawl keeps at most POLLS_PER_FETCH_SLOT x concurrency polls between
their fetch and their save (scheduler.crawl.poll_and_save): while the saver
is busy, polls that are fetched and parsed wait for it instead of piling
up in memory, and none is lost once it is free again."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import func, select

from scheduler.crawl import POLLS_PER_FETCH_SLOT, crawl
from scheduler.saver import in_saver
from storage.tables import ItemRow
from tests.conftest import Database
from tests.integration.test_shared_host import Host, add_sources, make_app
from tests.support.httpserver import LocalHTTPServer

FEEDS = 12


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_busy_saver_holds_back_the_fetches(
    db: Database, http_server: LocalHTTPServer, concurrency: int
) -> None:
    host = Host(http_server, FEEDS)
    app = make_app(db, per_host_delay=0, per_host_concurrency=8, concurrency=concurrency)
    add_sources(app, [http_server.url(p) for p in host.paths], every=900)
    bound = POLLS_PER_FETCH_SLOT * concurrency
    assert bound < FEEDS
    release = threading.Event()

    async def go() -> tuple[int, int]:
        blocker = asyncio.ensure_future(in_saver(release.wait, 60))  # the saver is busy
        crawling = asyncio.ensure_future(crawl(app.crawl_context(), parse_workers=0))
        # Wait until the fetches stop coming (or all of them came): with
        # nothing saved, a crawl without the bound fetches every feed.
        seen, quiet_since = 0, time.monotonic()
        while time.monotonic() - quiet_since < 1.5 and seen < FEEDS:
            await asyncio.sleep(0.05)
            now_seen = len(host.all_starts())
            if now_seen != seen:
                seen, quiet_since = now_seen, time.monotonic()
        release.set()
        await blocker
        report = await crawling
        return seen, report.new_items

    fetched_while_busy, new_items = asyncio.run(go())

    assert 0 < fetched_while_busy <= bound
    assert new_items == 2 * FEEDS  # nothing held back is lost
    with app.session() as s:
        assert s.scalar(select(func.count()).select_from(ItemRow)) == 2 * FEEDS
