"""A spider source is never run by two replicas at once, on both databases.

A spider run may outlast the poll lease (it waits for the process's spider
slot, then runs up to NEWSWATCH_SPIDER_RUN_SECONDS): scheduler.spider_leases
keeps the lease while it waits and runs, and a run whose source was taken
meanwhile does not start. Two replicas here are two CrawlContexts (two lease
owners) on one database, each crawling in its own thread and event loop; the
spider writes when each run starts and ends into a file beside itself.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crawler.spiders import SpiderLimits
from scheduler.context import CrawlContext
from scheduler.crawl import CrawlReport, crawl
from scheduler.spider_leases import spider_lease
from scheduler.spider_slots import SpiderSlots
from storage.repository import SqlStore
from tests.conftest import Database
from tests.unit.usecase_support import crawl_context

pytestmark = pytest.mark.slow  # each run starts a Python with Scrapy (~1.5 s idle)

LEASE = timedelta(seconds=2)
SPIDER = """
import os, time
from pathlib import Path
import scrapy

LOG = Path(__file__).with_name("runs.log")


class Slow(scrapy.Spider):
    name = "slow"

    async def start(self):
        with LOG.open("a") as f:
            f.write(f"start {time.time()} {os.getpid()}\\n")
        time.sleep({seconds})
        with LOG.open("a") as f:
            f.write(f"end {time.time()} {os.getpid()}\\n")
        yield {"url": f"https://think.example/run/{os.getpid()}", "title": "a run"}
"""


def now() -> datetime:
    return datetime.now(UTC)


def replica(store: SqlStore, owner: str) -> CrawlContext:
    """A replica with a 2-second poll lease and one spider slot."""
    ctx = crawl_context(store, now, owner=owner)  # type: ignore[arg-type]
    limits = ctx.limits.__class__(**{**_fields(ctx.limits), "lease": LEASE})
    return CrawlContext(
        store=store,
        clock=now,
        owner=owner,
        http=ctx.http,
        pool=ctx.pool,
        limits=limits,
        spider_limits=SpiderLimits(run_seconds=30, grace_seconds=5),
        spider_slots=SpiderSlots(1),
    )


def _fields(obj: object) -> dict[str, object]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]


def spider_source(store: SqlStore, tmp_path: Path, seconds: float) -> Path:
    (tmp_path / "slow.py").write_text(SPIDER.replace("{seconds}", str(seconds)), encoding="utf-8")
    with store.transaction() as tx:
        tx.add_source(
            name="think",
            url="spider:think",
            kind="spider",
            every_seconds=900,
            links_css=None,
            now=now(),
            spider=f"{tmp_path / 'slow.py'}:Slow",
        )
    return tmp_path / "runs.log"


def runs(log: Path) -> list[tuple[float, float]]:
    """(start, end) of every run, by child pid; a run without an end ends never."""
    starts: dict[str, float] = {}
    ends: dict[str, float] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        what, at, pid = line.split()
        (starts if what == "start" else ends)[pid] = float(at)
    return sorted((at, ends.get(pid, float("inf"))) for pid, at in starts.items())


def overlapping(spans: list[tuple[float, float]]) -> list[tuple[float, float]]:
    return [b for a, b in itertools.pairwise(spans) if b[0] < a[1]]


def in_thread(fn: Callable[[], CrawlReport]) -> tuple[threading.Thread, list[CrawlReport]]:
    out: list[CrawlReport] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


async def crawl_with_slot_busy(
    ctx: CrawlContext, busy_for: float, claimed: threading.Event
) -> CrawlReport:
    """A crawl of the spider while this replica's one spider slot is taken
    (by another spider run, say) for `busy_for` seconds: longer than the lease."""

    async def occupy() -> None:
        async with ctx.spider_slots.slot():
            await asyncio.sleep(busy_for)

    blocker = asyncio.create_task(occupy())
    await asyncio.sleep(0)
    report = await crawl(ctx, names=["think"], on_start=lambda _: claimed.set())
    await blocker
    return report


def test_a_spider_that_waits_and_runs_past_the_lease_is_never_run_twice_at_once(
    db: Database, tmp_path: Path
) -> None:
    store = SqlStore(db.engine, db.factory)
    log = spider_source(store, tmp_path, seconds=3 * LEASE.total_seconds())
    a, b = replica(store, "replica-a"), replica(store, "replica-b")
    assert spider_lease(a) > timedelta(seconds=35)  # covers a whole run, not just a poll
    claimed = threading.Event()
    thread, reports_a = in_thread(
        lambda: asyncio.run(crawl_with_slot_busy(a, 2 * LEASE.total_seconds(), claimed))
    )
    assert claimed.wait(30)
    b_claims: list[tuple[float, int]] = []  # (wall time just after b's claim, sources it got)

    def b_claimed(n: int) -> None:
        b_claims.append((time.time(), n))

    while thread.is_alive():  # replica b tries all along: waiting, running, saving
        asyncio.run(crawl(b, names=["think"], on_start=b_claimed))
        time.sleep(0.2)
    thread.join()
    spans = runs(log)
    assert overlapping(spans) == [], spans
    assert reports_a and reports_a[0].polled == 1, reports_a
    a_run = spans[0]
    assert a_run[1] - a_run[0] > LEASE.total_seconds(), spans
    # b got the source only once a's run had ended (its poll saved, the lease
    # cleared) and a's thread was still winding down; never while a held it.
    assert [t for t, n in b_claims if n and t < a_run[1]] == [], (b_claims, spans)
    late = sum(n for _, n in b_claims)
    assert len(spans) == 1 + late, spans
    # Its poll saved, the source is free: b runs it now, after a's run.
    assert asyncio.run(crawl(b, names=["think"])).polled == 1
    assert len(runs(log)) == 2 + late and overlapping(runs(log)) == []


def test_a_run_whose_source_was_taken_while_it_waited_does_not_start(
    db: Database, tmp_path: Path
) -> None:
    store = SqlStore(db.engine, db.factory)
    log = spider_source(store, tmp_path, seconds=0.1)
    a = replica(store, "replica-a")
    claimed = threading.Event()
    thread, reports_a = in_thread(lambda: asyncio.run(crawl_with_slot_busy(a, 2.0, claimed)))
    assert claimed.wait(30)
    deadline = time.monotonic() + 30
    while True:  # a holds the lease while it waits; take it from a by force
        with store.transaction() as tx:
            taken = tx.claim_due_sources(
                now=now(), owner="replica-b", lease=timedelta(hours=1), limit=1, due_only=False
            )
            if not taken:
                tx.release_lease(1, "replica-a")
        if taken or time.monotonic() > deadline:
            break
    assert taken, "a never claimed the source"
    thread.join()
    assert reports_a and reports_a[0].deferred == 1 and reports_a[0].polled == 0, reports_a
    assert runs(log) == []  # a did not run it
    with store.transaction() as tx:  # b's lease is intact: a third replica gets nothing
        assert not tx.claim_due_sources(
            now=now(), owner="replica-c", lease=LEASE, limit=1, due_only=False
        )
