"""The daemon's jobs: each binds its context, calls one service, applies the error policy.

Error policy (the daemon must run for months): an expected error (a
`StorageError`, `AlertError` or `CrawlError`) is logged and the job runs
again at its next tick; a database outage is logged once when it starts and
once when it ends (`DatabaseState`); anything else is a bug, logged as
critical with its traceback and counted in `newswatch_job_errors`, and the
job still runs again at its next tick.

Polling never lets one source hold up the others: the tick only claims due
sources (at most as many as there are free poll slots, so no lease is held by
a source waiting its turn) and starts one task per source; it returns at
once. Each task runs under a deadline shorter than its lease, so a source is
never polled by two processes at the same time even if its server hangs.

Sources that share a host are spread over time, not polled in bursts: a tick
claims no more of one host's sources than the host has free request slots
(`per_host_concurrency` minus this process's polls of it still fetching:
parsing and saving leave the host free), so a
host with 200 feeds is served at its politeness rate, oldest due first,
while other hosts' sources take the remaining poll slots. A poll that still
cannot start its request within `slot_wait` (e.g. many sources redirect to
one host) is deferred: its lease is handed back and it is due again within
seconds, without counting as a failure (scheduler.poll_policy.deferred_poll_at).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import Any

from alerts import AlertError
from alerts.channels import Poster
from crawler import CrawlError
from crawler.crawl_records import Source
from crawler.fetch import HttpClient, host_key
from scheduler.compiled_watchlists import CompiledWatchlists, WatchlistCache
from scheduler.context import CrawlContext, DeliveryContext, HousekeepingContext
from scheduler.crawl import CrawlReport, claim, is_outage, poll_and_save
from scheduler.deliver import DeliveryReport, deliver_due
from scheduler.metrics import Metrics
from scheduler.spider_leases import spider_lease
from storage import StorageError
from storage.sources import HostQuota

log = logging.getLogger("newswatch.daemon")

EXPECTED = (StorageError, AlertError, CrawlError)
DELIVERY_LIMIT = 200
MAX_DELIVERY_PASSES = 20


class DatabaseState:
    """Whether the database answers; logs each outage once and each recovery once."""

    def __init__(self, metrics: Metrics) -> None:
        self.up = True
        self.metrics = metrics

    def failed(self, error: BaseException) -> None:
        if self.up:
            self.up = False
            self.metrics.database_up.set(0)
            text = " ".join(str(error).split())[:300]
            log.warning("database_unavailable status=down error=%r", text)

    def ok(self) -> None:
        if not self.up:
            self.up = True
            self.metrics.database_up.set(1)
            log.warning("database_available status=up")


@contextmanager
def guarded(job: str, db: DatabaseState, metrics: Metrics) -> Iterator[None]:
    """Apply the error policy of the module docstring to one run of a job."""
    try:
        yield
    except asyncio.CancelledError:
        raise
    except Exception as e:
        if is_outage(e):
            db.failed(e)
        elif isinstance(e, EXPECTED):
            log.error("job_failed job=%s status=error error=%r", job, " ".join(str(e).split()))
        else:
            metrics.job_errors.labels(job).inc()
            log.critical("job_crashed job=%s status=bug error=%r", job, repr(e), exc_info=True)


class Poller:
    """The poll job: claims due sources and polls each in a task of its own."""

    def __init__(
        self,
        ctx: CrawlContext,
        client: HttpClient,
        db: DatabaseState,
        metrics: Metrics,
        executor: Executor | None = None,
        refill_window: float = 0.0,
        refill_gather: float = 0.0,
    ) -> None:
        self.ctx = ctx
        # How long a tick keeps refilling poll slots as polls end (see _tick).
        self.refill_window = refill_window
        # How long a refill waits after a slot frees for more to free, so that
        # one claim takes several sources rather than one per ended poll.
        self.refill_gather = refill_gather
        self.claims = 0  # claim transactions, for tests and the bench
        self.slot_freed = asyncio.Event()
        self.client = client
        self.db = db
        self.metrics = metrics
        # Feeds are parsed here, off the event loop: a big feed parsed in the
        # loop would stall every other fetch (and trip their timeouts).
        self.executor = executor
        self.slots = ctx.limits.concurrency
        self.per_host = ctx.limits.per_host
        self.slot_wait = ctx.limits.slot_wait
        self.hosts: Counter[str] = Counter()  # polls still fetching, by host
        self.fetching: dict[int, str] = {}  # those polls: source id -> host
        lease = ctx.limits.lease.total_seconds()
        # Finish (or give up) well before the lease lapses and another replica may claim it.
        self.deadline = max(1.0, min(lease * 0.8, lease - 30.0))
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.spiders: set[int] = set()  # the spider sources among them (see HostQuota.spiders)
        self.unreleased: set[int] = set()  # our leases on sources whose poll did not save
        self.watchlists = WatchlistCache(ctx.store)
        self.accepting = True
        self.on_matches: list[Callable[[], None]] = []
        self.current: asyncio.Task[Any] | None = None  # the running tick, for shutdown

    async def tick(self) -> None:
        if not self.accepting:
            return
        self.current = asyncio.current_task()
        try:
            await self._tick()
        finally:
            self.current = None

    async def _tick(self) -> None:
        """Fill the free poll slots; while every slot was filled (more may be
        due), fill each slot again as soon as a poll ends, for up to
        `refill_window` seconds. Claiming only once per tick capped a replica
        at `concurrency / poll_tick` polls/s however idle it was (docs/scaling.md);
        the window ends before the next tick, so ticks never overlap."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.refill_window
        first = True
        while True:
            # Every slot busy (also at the tick's start, the usual case when
            # saturated: the last tick's refills filled them): wait for one to
            # free within the window rather than skip the whole tick.
            if len(self.tasks) >= self.slots:
                if self.refill_window <= 0:
                    return
                self.slot_freed.clear()
                try:
                    await asyncio.wait_for(self.slot_freed.wait(), until - loop.time())
                except TimeoutError:
                    return
                # Let a few more polls end, so the claim takes several sources.
                await asyncio.sleep(max(0.0, min(self.refill_gather, until - loop.time())))
            if not await self._fill(first):
                return
            first = False
            if loop.time() >= until:
                return

    async def _fill(self, first: bool = True) -> bool:
        """Claim due sources for the free slots and start their polls; True
        when the claim filled every free slot and the refill window is open.
        The first claim of a tick also frees dead owners' leases and checks
        whether a watchlist changed; the refills after it only claim."""
        with guarded("poll", self.db, self.metrics):
            if self.unreleased:
                await asyncio.to_thread(self.release_leases)
            free = self.slots - len(self.tasks)
            if free <= 0:
                return False
            spiders_free = self.ctx.spider_slots.size - len(self.spiders)
            quota = HostQuota(host_key, self.per_host, dict(self.hosts), spiders=spiders_free)
            sources, compiled = await asyncio.to_thread(self._claim, free, quota, first)
            self.db.ok()
            if not self.accepting:  # a signal arrived while claiming: hand the leases back
                self.unreleased.update(s.id for s in sources)
                return False
            for src in sources:
                task = asyncio.create_task(self._poll(src, compiled), name=f"poll:{src.name}")
                self.tasks[src.id] = task
                if src.kind == "spider":
                    self.spiders.add(src.id)
                self.fetching[src.id] = host = host_key(src.url)
                self.hosts[host] += 1
                task.add_done_callback(functools.partial(self._forget, src.id))
            return len(sources) == free and self.accepting and self.refill_window > 0
        return False  # the claim failed: the error policy logged it; next tick

    def _fetched(self, src: Source) -> None:
        """The poll's request is over: its host slot counts as free again."""
        self._host_free(src.id)

    def _forget(self, source_id: int, _task: asyncio.Task[None]) -> None:
        self.tasks.pop(source_id, None)
        self.spiders.discard(source_id)
        self._host_free(source_id)  # a poll that ended before its fetch did
        self.slot_freed.set()

    def _host_free(self, source_id: int) -> None:
        host = self.fetching.pop(source_id, None)
        if host is not None:
            self.hosts[host] -= 1
            if self.hosts[host] <= 0:
                del self.hosts[host]

    def _claim(
        self, limit: int, hosts: HostQuota, first: bool = True
    ) -> tuple[list[Source], CompiledWatchlists | None]:
        self.claims += 1
        sources = claim(
            self.ctx, names=None, due_only=True, limit=limit, hosts=hosts, free_dead=first
        )
        if not sources:
            return [], None
        try:
            cached = self.watchlists.compiled
            return sources, cached if cached is not None and not first else self.watchlists.get()
        except BaseException:
            self.unreleased.update(s.id for s in sources)
            raise

    async def _poll(self, src: Source, compiled: CompiledWatchlists | None) -> None:
        assert compiled is not None
        report = CrawlReport()
        started = time.monotonic()
        self.metrics.polls_in_flight.inc()
        saved = False
        try:
            with guarded("poll", self.db, self.metrics):
                try:
                    async with asyncio.timeout(self._deadline(src)):
                        await poll_and_save(
                            self.ctx,
                            self.client,
                            [src],
                            compiled,
                            report,
                            executor=self.executor,
                            slot_wait=self.slot_wait,
                            on_fetched=self._fetched,
                        )
                except TimeoutError:
                    log.warning(
                        "poll_abandoned source=%s status=timeout seconds=%.0f",
                        src.name,
                        self._deadline(src),
                    )
                    return
                saved = True
                self.db.ok()
        finally:
            self.metrics.polls_in_flight.dec()
            if not saved:
                self.unreleased.add(src.id)
        if saved:
            self._count(report, time.monotonic() - started)
            self.metrics.sources.polled(
                src,
                failed=bool(report.failed),
                deferred=bool(report.deferred),
                now=self.ctx.clock(),
            )

    def _deadline(self, src: Source) -> float:
        """A feed or page poll ends well within its lease; a spider run keeps
        its lease while it waits for a slot and runs (scheduler.spider_leases),
        so it gets the same wait plus its whole run."""
        if src.kind != "spider":
            return self.deadline
        return self.deadline + spider_lease(self.ctx).total_seconds()

    def _count(self, report: CrawlReport, seconds: float) -> None:
        m = self.metrics
        m.poll_seconds.observe(seconds)
        for status, n in (
            ("ok", report.polled),
            ("not_modified", report.not_modified),
            ("failed", len(report.failed)),
            ("deferred", report.deferred),
        ):
            if n:
                m.polls.labels(status).inc(n)
        if report.failed:
            m.poll_failures.inc(len(report.failed))
        m.items.inc(report.new_items)
        m.matches.inc(report.new_matches)
        if report.new_matches:
            for callback in self.on_matches:
                callback()

    def release_leases(self) -> None:
        """Hand back the leases of polls that did not save, so the sources are
        polled again at once rather than when the lease expires."""
        ids = sorted(self.unreleased)
        with self.ctx.store.transaction() as tx:
            for sid in ids:
                tx.release_lease(sid, self.ctx.owner)
        self.unreleased.difference_update(ids)
        log.info("leases_released status=ok sources=%d", len(ids))


class Deliverer:
    """The delivery job: one pass at a time per process, repeated while a pass is full."""

    def __init__(
        self, ctx: DeliveryContext, poster: Poster, db: DatabaseState, metrics: Metrics
    ) -> None:
        self.ctx = ctx
        self.poster = poster
        self.db = db
        self.metrics = metrics
        self.lock = asyncio.Lock()
        self.accepting = True
        self.current: asyncio.Task[Any] | None = None  # the running pass, for shutdown
        self.on_handled: list[Callable[[], None]] = []  # after a pass that settled alerts
        # Before the poller's first claim: the lock that proves this process
        # alive to other replicas on Postgres (storage.leases).
        ctx.hold_owner_lock()

    async def run(self, reason: str = "interval") -> None:
        if not self.accepting:
            return
        async with self.lock:
            self.current = asyncio.current_task()
            try:
                await self._passes(reason)
            finally:
                self.current = None

    async def _passes(self, reason: str) -> None:
        handled = 0
        with guarded("deliver", self.db, self.metrics):
            for _ in range(MAX_DELIVERY_PASSES):
                report = await deliver_due(self.ctx, self.poster, limit=DELIVERY_LIMIT)
                self.db.ok()
                self._count(report, reason)
                handled += report.handled
                if report.handled < DELIVERY_LIMIT or not self.accepting:
                    break
        if handled:
            for callback in self.on_handled:
                callback()

    def _count(self, report: DeliveryReport, reason: str) -> None:
        self.metrics.alerts_sent.inc(report.sent)
        self.metrics.alerts_failed.inc(report.failed)
        self.metrics.alerts_retried.inc(report.retried)
        if report.handled or report.paced:
            log.info(
                "delivered status=ok reason=%s sent=%d retried=%d failed=%d paced=%d",
                reason,
                report.sent,
                report.retried,
                report.failed,
                report.paced,
            )


def prune(ctx: HousekeepingContext) -> int:
    """Delete unmatched items older than the retention (matched ones stay with
    their alerts) and sitemap URLs whose lastmod is older than the sitemap
    memory; return how many items went."""
    now = ctx.clock()
    before = now - ctx.retention
    with ctx.store.transaction() as tx:
        n = tx.prune_items(before=before)
        urls = tx.prune_seen_versions(before=now - ctx.sitemap_memory)
    log.info("pruned status=ok items=%d before=%s sitemap_urls=%d", n, before.isoformat(), urls)
    return n


# Items per transaction: on SQLite a batch holds the write lock while it runs
# (~1.5-2 ms per item), so a crawl's save waits at most about a second.
SEARCH_INDEX_BATCH = 500


def index_search(
    ctx: HousekeepingContext,
    *,
    batch: int = SEARCH_INDEX_BATCH,
    budget: float = 5.0,
    keep_going: Callable[[], bool] = lambda: True,
) -> int:
    """Index the items the crawl listed as pending for search, one batch per
    transaction (a crash loses nothing: a batch not committed stays pending),
    for up to `budget` seconds per run; how many were indexed."""
    done = 0
    until = time.monotonic() + budget
    while keep_going():
        with ctx.store.transaction() as tx:
            n = tx.index_search_pending(batch)
        done += n
        if n < batch or time.monotonic() >= until:
            break
    if done:
        log.info("search_indexed status=ok items=%d", done)
    return done


def refresh_backlog(ctx: HousekeepingContext, metrics: Metrics) -> None:
    with ctx.store.transaction() as tx:
        counts = tx.backlog(now=ctx.clock())
    for status in ("pending", "due", "sent", "failed", "cancelled"):
        metrics.backlog.labels(status).set(getattr(counts, status))
