"""A crawl whose lease ran out while it polled, and which another owner
claimed meanwhile, stores the items it fetched but writes no fetch state:
the other owner's lease and the source's state stay as that owner left them
(storage.sources.RECORD_POLL's fence). Before the fence, the late save
cleared the other owner's lease mid-poll, so a third could claim the source
and poll it at the same time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from crawler.crawl_records import Source
from scheduler.crawl import crawl
from storage.protocol import Store
from tests.support.httpserver import LocalHTTPServer, Request
from tests.unit.usecase_support import T0, Clock, crawl_context

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Pantsir battery moved north</title><link>https://wire.example/a/1</link>
<guid>https://wire.example/a/1</guid><pubDate>Sun, 01 Mar 2026 11:00:00 GMT</pubDate></item>
</channel></rss>"""


@pytest.mark.parametrize("status", [200, 500])
def test_a_poll_that_lost_its_lease_leaves_the_new_holder_alone(
    store: Store, http_server: LocalHTTPServer, status: int
) -> None:
    clock = Clock()
    ctx = crawl_context(store, clock, owner="slow")
    lease = ctx.limits.lease
    taken: list[Source] = []

    def respond(_req: Request) -> tuple[int, dict[str, str], bytes]:
        # While "slow" waits for this response, its lease runs out and
        # "fast" claims the source (with its own long lease).
        clock.advance(seconds=lease.total_seconds() + 60)
        with store.transaction() as tx:
            taken.extend(
                tx.claim_due_sources(
                    now=clock(), owner="fast", lease=timedelta(hours=1), limit=1, due_only=False
                )
            )
        return status, {"Content-Type": "application/rss+xml"}, RSS.encode()

    url = http_server.route("/feed.xml", respond)
    with store.transaction() as tx:
        tx.add_source(name="wire", url=url, kind="feed", every_seconds=900, links_css=None, now=T0)
    report = asyncio.run(crawl(ctx))
    assert [s.name for s in taken] == ["wire"]  # "fast" holds it now
    assert report.new_items == (1 if status == 200 else 0)  # what was fetched is kept
    with store.transaction() as tx:  # "fast"'s lease is intact: nobody else gets the source
        assert tx.claim_due_sources(now=clock(), owner="third", lease=lease, limit=5) == []
        assert not tx.claim_due_sources(
            now=clock(), owner="third", lease=lease, limit=5, due_only=False
        )
    with store.transaction() as tx:  # and its state is not the late poll's
        (wire,) = tx.claim_due_sources(
            now=clock() + timedelta(hours=2), owner="third", lease=lease, limit=5, due_only=False
        )
    assert (wire.last_polled_at, wire.last_error, wire.consecutive_failures) == (None, None, 0)
