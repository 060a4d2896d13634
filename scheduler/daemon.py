"""`newswatch run`: APScheduler's AsyncIOScheduler driving the crawl pipeline.

Why AsyncIOScheduler: fetching and delivery are asyncio (aiohttp), so the
jobs are coroutines on the one event loop that also owns the shared
HttpClient (its connection pool, per-host politeness and global concurrency
limit) and the /healthz server. A thread-pool scheduler would need a loop per
thread and could not share those limits.

Jobs (all with the in-memory job store: the database, not APScheduler, holds
the schedule of each source, so replicas and restarts need no job store):

- poll, every `poll_tick` s: claims due sources and starts their polls as
  tasks (see scheduler.jobs). max_instances=1: the tick itself is short, and
  two ticks at once would only race for the same free slots; coalesce=True
  and misfire_grace_time=None: after the loop was held up, run once, late,
  rather than skip or run a burst of missed ticks.
- deliver, every `deliver_every` s (and at once after a poll found matches):
  max_instances=1, coalesce=True, misfire_grace_time=None for the same reason.
- digests, at minute 0 of every hour and at `daily_digest_at` (UTC): a
  delivery pass, so digest rows (due at the end of their period) go out on
  time even with a long `deliver_every`. misfire_grace_time=3600: a digest
  late by up to an hour is still sent at once, and it is never lost anyway
  (the next delivery pass sends any due row).
- prune (hourly) and backlog (every 15 s): housekeeping in worker threads.
- stories (every 10 s): assigns, in a worker thread, the stories of the new
  items the polls stored without one (they matched no watchlist; matched
  items get theirs in the save transaction, before their alerts), in
  transactions of 250 items, for about 5 s a run (scheduler.story_assignment
  .drain_pending). Its lag is what a new unmatched item waits before it
  shows in its story; no alert waits for it.
- search-index (every 30 s): indexes, in a worker thread, the items the crawl
  only listed as pending for `newswatch search` (storage.search_index), in
  transactions of 500 items, for about 5 s a run (a sixth of one core at most:
  ~3,000 items a run on this kind of machine, far above the crawl's rate);
  polls go on meanwhile, their saves wait at most one batch on SQLite.

Shutdown: the first SIGTERM/SIGINT stops taking new work (no new tick, no new
delivery pass), waits up to SHUTDOWN_GRACE for in-flight polls and a running
delivery, cancels what is left (a cancelled poll saved nothing, so its
source is polled again; its lease is handed back), and exits 0. A watchdog
thread ends the process with 0 at HARD_DEADLINE if that hangs (e.g. inside a
blocking database connect): what was in flight is safe to abandon. A second
signal exits at once (128 + signal number).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from types import FrameType

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from crawler.parse_pool import default_workers
from scheduler import SchedulerError, lock
from scheduler.context import DaemonContext
from scheduler.crawl import drain_stories
from scheduler.health import DatabaseProbe, HealthServer
from scheduler.http_poster import HttpPoster
from scheduler.jobs import (
    DatabaseState,
    Deliverer,
    Poller,
    guarded,
    index_search,
    prune,
    refresh_backlog,
)
from scheduler.metrics import Metrics
from storage.db import DatabaseUnavailable

log = logging.getLogger("newswatch.daemon")

SHUTDOWN_GRACE = 6.0
# Share of a poll tick during which the tick refills poll slots as polls end
# (scheduler.jobs.Poller._tick); the rest keeps ticks from overlapping.
REFILL = 0.8
# After a poll ends, a refill waits this share of a tick for others to end,
# so one claim transaction takes several sources (bench/scale.py: one claim
# per ended poll cost more than the poll's own save).
REFILL_GATHER = 0.05
HARD_DEADLINE = 9.5
PRUNE_EVERY = 3600.0
BACKLOG_EVERY = 15.0
SEARCH_INDEX_EVERY = 30.0
STORIES_EVERY = 10.0
STORIES_BUDGET = 5.0  # seconds of draining per run: half of one core at most


class Stopper:
    """Signal handling that works even while the event loop is blocked.

    Installed with signal.signal (not loop.add_signal_handler), so the handler
    runs in the main thread at the next bytecode even inside a synchronous
    database call: the first signal wakes the loop thread-safely, the second
    calls os._exit.
    """

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.event: asyncio.Event | None = None
        self.signalled = 0

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)

    def attach(self, loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
        self.loop, self.event = loop, event
        if self.signalled:
            event.set()

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        self.signalled += 1
        name = signal.Signals(signum).name
        if self.signalled > 1:
            os.write(2, f"newswatch: {name} again, exiting now\n".encode())
            os._exit(128 + signum)
        log.warning("shutdown status=stopping signal=%s", name)
        watchdog = threading.Timer(HARD_DEADLINE, _forced_exit)
        watchdog.daemon = True
        watchdog.start()
        if self.loop is not None and self.event is not None:
            self.loop.call_soon_threadsafe(self.event.set)


def _forced_exit() -> None:
    os.write(2, b"newswatch: shutdown did not finish in time; in-flight work abandoned\n")
    os._exit(0)


@dataclass(frozen=True)
class Parts:
    scheduler: AsyncIOScheduler
    poller: Poller
    deliverer: Deliverer
    health: HealthServer | None


def run_daemon(ctx: DaemonContext) -> int:
    """Run until signalled; return the exit status. Raises SchedulerError when
    another daemon holds the SQLite database."""
    held = lock.acquire(ctx.sqlite_lock)
    stopper = Stopper()
    stopper.install()
    try:
        _check_schema(ctx)
        asyncio.run(_serve(ctx, stopper))
    finally:
        if held is not None:
            held.release()
    log.warning("shutdown status=done")
    return 0


def _check_schema(ctx: DaemonContext) -> None:
    """A missing schema is a setup mistake (exit); an unreachable database is an
    outage (keep running, the jobs reconnect)."""
    try:
        ctx.check_database()
    except DatabaseUnavailable as e:
        log.warning("database_unavailable status=down error=%r", str(e))
        return
    if not ctx.schema_ready():
        raise SchedulerError(f"no newswatch schema in {ctx.database}: run `newswatch init` first")


async def _serve(ctx: DaemonContext, stopper: Stopper) -> None:
    stop = asyncio.Event()
    stopper.attach(asyncio.get_running_loop(), stop)
    metrics = Metrics()
    db = DatabaseState(metrics)
    workers = ctx.crawl.limits.parse_workers
    with ctx.crawl.pool(default_workers() if workers is None else workers) as executor:
        await _run(ctx, stop, metrics, db, executor)


async def _run(
    ctx: DaemonContext,
    stop: asyncio.Event,
    metrics: Metrics,
    db: DatabaseState,
    executor: Executor | None,
) -> None:
    async with ctx.crawl.http() as client:
        poller = Poller(
            ctx.crawl,
            client,
            db,
            metrics,
            executor,
            refill_window=REFILL * ctx.poll_tick,
            refill_gather=REFILL_GATHER * ctx.poll_tick,
        )
        deliverer = Deliverer(ctx.delivery, HttpPoster(client), db, metrics)
        scheduler = AsyncIOScheduler(timezone=UTC)
        parts = Parts(scheduler, poller, deliverer, _health(ctx, scheduler, db, metrics))
        _add_jobs(ctx, parts, db, metrics)
        if parts.health is not None:
            await parts.health.start()
        scheduler.start()
        log.info(  # a normal start is no warning; shutdown and outages are
            "daemon_started status=running owner=%s database=%s tick=%gs",
            ctx.crawl.owner,
            ctx.database,
            ctx.poll_tick,
        )
        await stop.wait()
        await _shutdown(parts)


def _health(
    ctx: DaemonContext, scheduler: AsyncIOScheduler, db: DatabaseState, metrics: Metrics
) -> HealthServer | None:
    if ctx.health is None:
        return None
    host, port = ctx.health
    return HealthServer(
        host,
        port,
        probe=DatabaseProbe(ctx.check_database),
        scheduler_running=lambda: scheduler.state == STATE_RUNNING,
        metrics=metrics,
        on_database=lambda up: db.ok() if up else None,
        web_app=ctx.web_app(),
    )


def _add_jobs(ctx: DaemonContext, parts: Parts, db: DatabaseState, metrics: Metrics) -> None:
    s = parts.scheduler
    now = datetime.now(UTC)
    common = {"max_instances": 1, "coalesce": True}
    s.add_job(
        parts.poller.tick,
        IntervalTrigger(seconds=ctx.poll_tick),
        id="poll",
        next_run_time=now,
        misfire_grace_time=None,
        **common,
    )
    # Jobs that other work wakes (`_wake`) rerun when woken during a run.
    deliver = RerunOnWake("deliver", parts.deliverer.run)
    s.add_job(
        deliver.run,
        IntervalTrigger(seconds=ctx.deliver_every),
        id=deliver.job_id,
        next_run_time=now,
        misfire_grace_time=None,
        **common,
    )
    parts.poller.on_matches.append(lambda: _wake(s, deliver))
    hour, minute = ctx.daily_digest_at.hour, ctx.daily_digest_at.minute
    for job_id, trigger in (
        ("digest-hourly", CronTrigger(minute=0, second=5, timezone=UTC)),
        ("digest-daily", CronTrigger(hour=hour, minute=minute, second=5, timezone=UTC)),
    ):
        s.add_job(parts.deliverer.run, trigger, args=["digest"], id=job_id, misfire_grace_time=3600)

    async def housekeeping() -> None:
        with guarded("prune", db, metrics):
            await asyncio.to_thread(prune, ctx.housekeeping)

    async def refresh() -> None:
        with guarded("backlog", db, metrics):
            await asyncio.to_thread(refresh_backlog, ctx.housekeeping, metrics)

    # The backlog gauge follows every change at once, not the next 15 s tick.
    backlog = RerunOnWake("backlog", refresh)
    parts.poller.on_matches.append(lambda: _wake(s, backlog))
    parts.deliverer.on_handled.append(lambda: _wake(s, backlog))

    async def search_index() -> None:
        with guarded("search-index", db, metrics):
            await asyncio.to_thread(
                index_search, ctx.housekeeping, keep_going=lambda: parts.poller.accepting
            )

    async def stories() -> None:
        with guarded("stories", db, metrics):
            await asyncio.to_thread(
                drain_stories,
                ctx.crawl,
                budget=STORIES_BUDGET,
                keep_going=lambda: parts.poller.accepting,
            )

    s.add_job(housekeeping, IntervalTrigger(seconds=PRUNE_EVERY), id="prune", **common)
    s.add_job(stories, IntervalTrigger(seconds=STORIES_EVERY), id="stories", **common)
    s.add_job(
        search_index, IntervalTrigger(seconds=SEARCH_INDEX_EVERY), id="search-index", **common
    )
    s.add_job(
        backlog.run,
        IntervalTrigger(seconds=BACKLOG_EVERY),
        id=backlog.job_id,
        next_run_time=now,
        **common,
    )


class RerunOnWake:
    """An interval job's coroutine that runs again at once when it was wanted
    while it ran. With max_instances=1, APScheduler skips a run that falls due
    while the job's one instance still runs, so a wake then (`_wake`) was lost
    and what it was for waited for the next interval: the backlog gauge up to
    15 s behind a delivery, new matches' alerts up to a delivery interval."""

    def __init__(self, job_id: str, job: Callable[[], Awaitable[None]]) -> None:
        self.job_id = job_id  # the scheduler's id of the job this runs
        self._job = job
        self._wanted = False

    def want(self) -> None:
        """Called with `_wake`: the next run, or the one running now, runs again after."""
        self._wanted = True

    async def run(self) -> None:
        """The job (a bound coroutine method: APScheduler's AsyncIOExecutor
        awaits coroutine functions only, and runs any other callable in a thread)."""
        while True:
            self._wanted = False
            await self._job()
            if not self._wanted:
                return


def _wake(s: AsyncIOScheduler, runner: RerunOnWake) -> None:
    """Run an interval job now (its interval then continues from now), or, if
    it is running (a run that read before the change that woke it), once more
    right after that run."""
    runner.want()
    job = s.get_job(runner.job_id)
    if job is not None and s.running:
        job.modify(next_run_time=datetime.now(UTC))


async def _shutdown(parts: Parts) -> None:
    """Stop new work, let in-flight work finish within the grace, cancel the rest.

    The scheduler is paused, not shut down, while draining: shutting down
    AsyncIOScheduler cancels running job tasks, and a delivery cancelled
    between a send and its "sent" mark would send that alert again later.
    """
    poller, deliverer = parts.poller, parts.deliverer
    poller.accepting = deliverer.accepting = False
    parts.scheduler.pause()
    running = [*poller.tasks.values(), *(t for t in (poller.current, deliverer.current) if t)]
    log.warning("shutdown status=draining polls=%d", len(poller.tasks))
    still: set[asyncio.Task[None]] = set()
    if running:
        _done, still = await asyncio.wait(running, timeout=SHUTDOWN_GRACE)
    for task in still:
        task.cancel()
    parts.scheduler.shutdown(wait=False)
    if still:
        await asyncio.wait(still, timeout=1.0)
        log.warning("shutdown status=abandoned tasks=%d", len(still))
    if poller.unreleased:
        with guarded("shutdown", poller.db, poller.metrics):
            try:
                await asyncio.wait_for(asyncio.to_thread(poller.release_leases), timeout=1.5)
            except TimeoutError:
                log.warning("shutdown status=leases_kept sources=%d", len(poller.unreleased))
    if parts.health is not None:
        await parts.health.stop()
