"""Polls handed over by separate poll_and_save calls (the daemon makes one
per source) share a save transaction when they queue behind the saver
(scheduler.crawl.save_together), each call still gets its own counts, and
a call cancelled before its save begins saves nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from crawler.crawl_records import Item, PollOutcome, Source
from newswatch.app import App
from scheduler.crawl import CrawlContext, claim, load_watchlists, save_together
from scheduler.saver import in_saver
from storage.tables import ItemRow
from tests.conftest import Database
from tests.integration.test_shared_host import add_sources, make_app

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


@pytest.fixture
def app(db: Database) -> App:
    return make_app(db)


def ticking(ctx: CrawlContext) -> CrawlContext:
    """The context with a clock that moves a second at every reading: a save
    reads it once, so items saved together share their fetched_at."""
    seconds = itertools.count()
    return dataclasses.replace(ctx, clock=lambda: NOW + timedelta(seconds=next(seconds)))


def sources(app: App, count: int) -> list[Source]:
    add_sources(app, [f"http://127.0.0.1:9/{i}.xml" for i in range(count)], every=3600)
    return claim(app.crawl_context(), names=None, due_only=False, limit=count)


def poll(src: Source, words: list[str]) -> tuple[Source, PollOutcome]:
    items = tuple(
        Item(
            url=f"http://127.0.0.1:9/{src.id}/{k}",
            guid=f"{src.id}-{k}",
            title=f"{word} report {src.id}-{k}",
            summary="",
            text=f"{word} seen near the border",
            published=NOW - timedelta(minutes=5),
            language="en",
            content_hash=hashlib.sha256(f"{src.id}-{k}-{word}".encode()).hexdigest(),
        )
        for k, word in enumerate(words)
    )
    return src, PollOutcome(src.id, "ok", items=items, body_hash=f"h{src.id}")


def fetched_at(app: App) -> dict[str, datetime]:
    with app.session() as s:
        return {url: at for url, at in s.execute(select(ItemRow.url, ItemRow.fetched_at))}


def test_calls_that_queue_behind_the_saver_share_one_transaction(app: App) -> None:
    srcs = sources(app, 6)
    ctx = ticking(app.crawl_context())
    compiled = load_watchlists(app.store)
    # words per source: how many items, and how many of them match
    words = [["Pantsir"], ["calm", "Pantsir"], ["calm"], ["Pantsir", "Pantsir", "calm"], [], ["x"]]
    polls = [poll(src, w) for src, w in zip(srcs, words, strict=True)]
    release = threading.Event()

    async def go() -> list[list[tuple[int, int]]]:
        blocker = asyncio.ensure_future(in_saver(release.wait, 30))
        first = asyncio.ensure_future(save_together(ctx, [polls[0]], compiled, random.Random(1)))
        await asyncio.sleep(0.05)  # its save has begun: it waits in the saver behind the blocker
        rest = [
            asyncio.ensure_future(save_together(ctx, [p], compiled, random.Random(1)))
            for p in polls[1:]
        ]
        await asyncio.sleep(0.05)
        release.set()
        await blocker
        return [await first, *[await r for r in rest]]

    counts = asyncio.run(go())
    assert counts == [[(1, 1)], [(2, 1)], [(1, 0)], [(3, 2)], [(0, 0)], [(1, 0)]]
    at = fetched_at(app)
    first_at = {at[f"http://127.0.0.1:9/{srcs[0].id}/0"]}
    rest_at = {
        v for url, v in at.items() if not url.startswith(f"http://127.0.0.1:9/{srcs[0].id}/")
    }
    # two transactions: the first call's, then the five that queued meanwhile
    assert len(first_at) == 1 and len(rest_at) == 1 and first_at != rest_at
    assert len(at) == 8


def test_a_lone_call_is_saved_at_once_and_calls_apart_are_apart(app: App) -> None:
    srcs = sources(app, 3)
    ctx = ticking(app.crawl_context())
    compiled = load_watchlists(app.store)

    async def go() -> list[list[tuple[int, int]]]:
        return [
            await save_together(ctx, [poll(src, ["Pantsir"])], compiled, random.Random(1))
            for src in srcs
        ]

    assert asyncio.run(go()) == [[(1, 1)]] * 3
    assert len(set(fetched_at(app).values())) == 3  # nothing waited: one transaction each


def test_a_call_cancelled_before_its_save_begins_saves_nothing(app: App) -> None:
    srcs = sources(app, 3)
    ctx = ticking(app.crawl_context())
    compiled = load_watchlists(app.store)
    polls = [poll(src, ["Pantsir"]) for src in srcs]
    release = threading.Event()

    async def go() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        blocker = asyncio.ensure_future(in_saver(release.wait, 30))
        first = asyncio.ensure_future(save_together(ctx, [polls[0]], compiled, random.Random(1)))
        await asyncio.sleep(0.05)
        gone = asyncio.ensure_future(save_together(ctx, [polls[1]], compiled, random.Random(1)))
        kept = asyncio.ensure_future(save_together(ctx, [polls[2]], compiled, random.Random(1)))
        await asyncio.sleep(0.05)
        gone.cancel()
        release.set()
        await blocker
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await first, await kept

    assert asyncio.run(go()) == ([(1, 1)], [(1, 1)])
    urls = set(fetched_at(app))
    assert f"http://127.0.0.1:9/{srcs[1].id}/0" not in urls
    assert {f"http://127.0.0.1:9/{srcs[i].id}/0" for i in (0, 2)} <= urls
