"""The crawl pipeline: poll → store → match → matches + outbox, per source.

For each polled source, ONE transaction writes the new items, the source's
fetch state (ETag, Last-Modified, body hash, next poll), the matches of the
new items, the stories of the matched ones and their outbox rows (polls that
finish together share one transaction, see save_outcomes; a source is never
split). So a crash anywhere leaves either all of it or none of it: if none,
the validators were not saved either, the source is fetched again and the
items are new again, and no match is ever lost between "stored" and
"matched". New items that matched nothing are stored without a story
("pending"): scheduler.story_assignment.drain_pending gives them one later,
off the crawl's critical path (no alert waits for their story).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import random
import threading
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from alerts.alert_records import Document, WatchlistMatch
from crawler.crawl_records import Item, PollOutcome, Source
from crawler.fetch import HttpClient
from crawler.parse_pool import MIN_SOURCES_FOR_POOL, default_workers, release_workers
from scheduler import heap
from scheduler.background import start_soon
from scheduler.collector import fewer_collections
from scheduler.compiled_watchlists import (
    CRAWL_BYTES_PER_SOURCE,
    CompiledWatchlists,
    document,
    load_watchlists,
)
from scheduler.context import CrawlContext
from scheduler.first_poll import alerts_on
from scheduler.poll_policy import (
    PollPolicy,
    deferred_poll_at,
    next_interval,
    next_poll_at,
)
from scheduler.saver import in_saver
from scheduler.spider_leases import LeaseLost, leased_run
from scheduler.story_assignment import (
    ONE_SHOT_BATCH,
    Prepared,
    assign_new,
    assigned_now,
    concepts_of,
    drain_pending,
    prepare,
)
from storage.db import DatabaseRefused, DatabaseUnavailable
from storage.protocol import ActiveWatchlist, StoreTransaction
from storage.sources import HostQuota, SourceNotFound, normalize_name

log = logging.getLogger("newswatch.crawl")

# Polls in flight per global fetch slot: enough to keep fetches and parsers
# busy, few enough that waiting bodies stay a few MB.
POLLS_PER_FETCH_SLOT = 2
# Most polls saved in one transaction (see save_outcomes); a one-shot crawl
# with more polls in flight saves up to half of them (`save_batch_limit`).
SAVE_BATCH = 32
# How long a crawl with more polls to come waits for a save to fill up
# (_next_batch), and how often it looks.
SAVE_LINGER = 0.1
_LINGER_STEP = 0.01


@dataclass
class CrawlReport:
    polled: int = 0
    not_modified: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    new_items: int = 0
    new_matches: int = 0
    deferred: int = 0

    @property
    def sources(self) -> int:
        return self.polled + self.not_modified + len(self.failed) + self.deferred


def poll_policy(ctx: CrawlContext) -> PollPolicy:
    return PollPolicy(min_interval=ctx.limits.min_interval, max_interval=ctx.limits.max_interval)


def save_outcome(
    ctx: CrawlContext,
    source: Source,
    outcome: PollOutcome,
    compiled: CompiledWatchlists,
    rng: random.Random,
) -> tuple[int, int]:
    """Persist one poll (see the module docstring); return (new items, new matches).
    The entry point of the Scrapy item pipeline (newswatch/scrapy.py)."""
    return save_outcomes(ctx, [(source, outcome)], compiled, rng)[0]


def save_outcomes(
    ctx: CrawlContext,
    polls: Sequence[tuple[Source, PollOutcome]],
    compiled: CompiledWatchlists,
    rng: random.Random,
) -> list[tuple[int, int]]:
    """Persist several polls in ONE transaction; (new items, new matches) for each.

    Every source's items, matches, outbox rows and fetch state are still
    written together (a batch never splits a source), so the module's
    invariant holds; one commit per batch instead of per source is what
    makes a 1,000-feed crawl cheap on the database.
    """
    now = ctx.clock()

    def match(item: Item) -> list[WatchlistMatch]:
        return compiled.matcher.match(document(item))

    try:
        # outside the transaction (CPU), but inside the try: an item the matcher
        # cannot take (a lone surrogate) fails its own source, as it does inside
        prepared = prepare(ctx.stories, ctx.store, polls, match)
        with ctx.store.transaction() as tx:
            counts = _save_polls(ctx, tx, polls, compiled, rng, now, prepared)
            ctx.crash.crash("after_store")
    except Exception as e:
        if is_outage(e):
            raise  # an outage: nothing was saved, every source is polled again later
        if len(polls) > 1:  # find the source that failed; save the others
            return [save_outcomes(ctx, [poll], compiled, rng)[0] for poll in polls]
        return [_refused(ctx, polls[0], e, compiled, rng)]
    ctx.crash.crash("after_commit")
    return counts


# What the database may refuse in one source's data (the rest of the batch is
# fine): constraint and data errors, text a driver cannot encode. Anything
# else raised while saving one source (matching its items, say) is a bug,
# but it too fails that source alone, logged at critical.
UNSTORABLE = (DatabaseRefused, UnicodeError, ValueError)


def is_outage(error: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached", not "a query is wrong"
    (the store translates a dropped connection into DatabaseUnavailable)."""
    return isinstance(error, DatabaseUnavailable)


def _refused(
    ctx: CrawlContext,
    poll: tuple[Source, PollOutcome],
    error: BaseException,
    compiled: CompiledWatchlists,
    rng: random.Random,
) -> tuple[int, int]:
    """Record a source whose data the database refused as failed (its
    validators unchanged, so the next poll fetches it again), and go on."""
    source = poll[0]
    reason = " ".join(str(getattr(error, "orig", None) or error).split())[:200]
    if isinstance(error, UNSTORABLE):
        log.error("store_refused status=failed source=%s error=%r", source.name, reason)
    else:
        reason = f"internal error: {type(error).__name__}: {reason}"
        log.critical(
            "save_crashed status=bug source=%s error=%r", source.name, reason, exc_info=error
        )
    failed = PollOutcome(source.id, "failed", error=f"could not store items: {reason}")
    with ctx.store.transaction() as tx:
        return _save_one(ctx, tx, source, failed, compiled, rng, ctx.clock())


def _save_one(
    ctx: CrawlContext,
    tx: StoreTransaction,
    source: Source,
    outcome: PollOutcome,
    compiled: CompiledWatchlists,
    rng: random.Random,
    now: datetime,
) -> tuple[int, int]:
    return _save_polls(ctx, tx, [(source, outcome)], compiled, rng, now, Prepared())[0]


def _save_polls(
    ctx: CrawlContext,
    tx: StoreTransaction,
    polls: Sequence[tuple[Source, PollOutcome]],
    compiled: CompiledWatchlists,
    rng: random.Random,
    now: datetime,
    prepared: Prepared,
) -> list[tuple[int, int]]:
    """Items of every poll and their fetch state, then the stories of those
    that matched (one assignment per batch), then matches and outbox rows: an
    outbox row may read its item's story. Items that matched nothing stay
    pending (story_id NULL) for drain_pending.

    The assignment takes the store's assignment lock, held until the commit
    (every replica's saves of matched items and drains queue on it), so what
    does not depend on a story is written before it: the fetch state's
    executemany ran inside the lock, ~a third of the lock's hold in a save
    (py-spy, bench/scale.py with two replicas at 10,000 feeds every 10 s)."""
    staged = [_store_new(tx, src, outcome, compiled, now, prepared) for src, outcome in polls]
    for (src, outcome), st in zip(polls, staged, strict=True):
        _record_state(ctx, tx, src, outcome, st, rng, now)
    matched = [(i, it, c) for st in staged for i, it, c, _ in st if assigned_now(ctx.stories, c)]
    # (SqlTransaction buffers the fetch state and writes it at the next
    # statement: assign_new's first, before the lock.)
    assign_new(ctx.stories, tx, matched, prepared.vectors, now)
    return [
        _finish_one(ctx, tx, src, outcome, st, now)
        for (src, outcome), st in zip(polls, staged, strict=True)
    ]


# (item id, item, its story concepts, the matches found in it) of a poll's new items
Staged = list[tuple[int, Item, frozenset[str], list[tuple[ActiveWatchlist, WatchlistMatch]]]]


def _store_new(
    tx: StoreTransaction,
    source: Source,
    outcome: PollOutcome,
    compiled: CompiledWatchlists,
    now: datetime,
    prepared: Prepared,
) -> Staged:
    if outcome.status == "deferred" or not outcome.items:
        return []
    new = tx.store_items(source.id, outcome.items, now)
    by_url = {it.url: it for it in outcome.items}
    out: Staged = []
    for url, item_id in new.items():
        if url in prepared.checked:  # matched before the transaction
            found = prepared.found.get(url, [])
        else:
            found = compiled.matcher.match(document(by_url[url]))
        pairs = [(compiled.by_name[m.watchlist], m) for m in found]
        out.append((item_id, by_url[url], concepts_of(found), pairs))
    return out


def _finish_one(
    ctx: CrawlContext,
    tx: StoreTransaction,
    source: Source,
    outcome: PollOutcome,
    staged: Staged,
    now: datetime,
) -> tuple[int, int]:
    """A poll's matches and outbox rows (after its items' stories); (new items, new matches)."""
    if outcome.status == "deferred":
        return 0, 0
    new_matches = 0
    for item_id, item, _, pairs in staged:
        if pairs:
            new_matches += tx.record_matches(
                item_id,
                pairs,
                now,
                daily_at=ctx.limits.daily_digest_at,
                alert=_alerts_on(ctx, source, item, now),
            )
    return len(staged), new_matches


def _record_state(
    ctx: CrawlContext,
    tx: StoreTransaction,
    source: Source,
    outcome: PollOutcome,
    staged: Staged,
    rng: random.Random,
    now: datetime,
) -> None:
    """A poll's fetch state: its next poll, validators, seen links and versions."""
    if outcome.status == "deferred":
        limits = ctx.limits
        when = deferred_poll_at(now, limits.per_host_delay, limits.per_host, rng)
        tx.defer_poll(source.id, ctx.owner, next_poll_at=when)
        return
    interval = next_interval(
        source, outcome, len(staged), poll_policy(ctx), source.current_interval_seconds
    )
    tx.record_poll(
        outcome,
        now=now,
        interval=interval,
        next_poll_at=next_poll_at(interval, now, poll_policy(ctx), rng),
        owner=ctx.owner,
    )
    if outcome.seen_links:
        tx.add_seen_links(source.id, outcome.seen_links, now)
    if outcome.seen_versions:  # a sitemap's url → lastmod memory, with its items
        tx.add_seen_versions(source.id, outcome.seen_versions, now)


def _alerts_on(ctx: CrawlContext, source: Source, item: Item, now: datetime) -> bool:
    """The first-poll rule (scheduler.first_poll) for one new item of `source`."""
    return alerts_on(
        item.published,
        dated=item.dated,
        now=now,
        window=ctx.limits.first_poll_alerts,
        baseline=source.baseline_pending,
    )


def claim(
    ctx: CrawlContext,
    *,
    names: Sequence[str] | None,
    due_only: bool,
    limit: int,
    hosts: HostQuota | None = None,
    free_dead: bool = True,
) -> list[Source]:
    with ctx.store.transaction() as tx:
        if names:
            names = [normalize_name(n) for n in names]
            known = tx.source_names()
            missing = [n for n in names if n not in known]
            if missing:
                raise SourceNotFound(f"no source named {missing[0]!r}")
        return tx.claim_due_sources(
            now=ctx.clock(),
            owner=ctx.owner,
            lease=ctx.limits.lease,
            limit=limit,
            names=names,
            due_only=due_only,
            hosts=hosts,
            free_dead=free_dead,
        )


async def poll_and_save(
    ctx: CrawlContext,
    client: HttpClient,
    sources: Sequence[Source],
    compiled: CompiledWatchlists,
    report: CrawlReport,
    on_done: Callable[[Source, PollOutcome], None] | None = None,
    *,
    executor: Executor | None = None,
    slot_wait: float | None = None,
    on_fetched: Callable[[Source], None] | None = None,
    on_polled: Callable[[], None] | None = None,
) -> None:
    """Poll sources concurrently (the client bounds requests in flight) and
    save each outcome as soon as it arrives.

    `slot_wait` bounds how long a poll waits for a request slot before it is
    deferred (crawler.fetch.SlotUnavailable); None: every poll waits its turn.
    `on_fetched(source)` is called when a source's own request is over, and
    `on_polled()` once every source's poll is over (fetched and parsed), while
    the last of them may still be saving.

    Feeds are parsed in `executor` when given (see crawler.parse_pool), else in
    the event loop. At most POLLS_PER_FETCH_SLOT x `concurrency` polls are
    in flight, counted from the fetch until the poll is saved, so neither
    fetched bodies waiting for a parser nor parsed feeds waiting for the saver
    can pile up in memory when fetching or parsing outpaces saving.
    """
    from crawler.poll import crashed, poll_source

    rng = random.Random()
    in_flight = asyncio.Semaphore(polls_in_flight(ctx.limits.concurrency))
    batch_limit = save_batch_limit(ctx.limits.concurrency)

    async def one(src: Source) -> tuple[Source, PollOutcome]:
        try:
            seen, versions = _memory(ctx, src)
            async with _spider_slot(ctx, src):
                outcome = await poll_source(
                    src,
                    client,
                    now=ctx.clock(),
                    seen_links=seen,
                    executor=executor,
                    slot_wait=slot_wait,
                    on_fetched=None if on_fetched is None else functools.partial(on_fetched, src),
                    seen_versions=versions,
                    spider_limits=ctx.spider_limits,
                )
            ctx.crash.raise_at("poll", src.name)
        except LeaseLost as e:  # the other process polls it: leave its lease alone
            outcome = PollOutcome(src.id, "deferred", error=str(e))
        except Exception as e:
            if is_outage(e):
                raise
            outcome = crashed(src, e)  # this source fails alone, with backoff
        return src, outcome

    done: asyncio.Queue[tuple[Source, PollOutcome] | BaseException] = asyncio.Queue()
    unpolled = len(sources)

    async def deliver(src: Source) -> None:
        nonlocal unpolled
        await in_flight.acquire()  # released once the poll is saved (below)
        try:
            done.put_nowait(await one(src))
        except BaseException as e:  # a bug in one poll must reach the caller, not hang it
            in_flight.release()
            done.put_nowait(e)
            raise
        unpolled -= 1
        if not unpolled and on_polled is not None:
            on_polled()

    tasks = [asyncio.create_task(deliver(src)) for src in sources]
    try:
        remaining = len(tasks)
        while remaining:
            # one-shot crawls wait for their saves to fill; the daemon's calls
            # poll one source each (limit 1), so they never wait
            batch = await _next_batch(done, min(remaining, batch_limit), SAVE_LINGER)
            remaining -= len(batch)
            for _ in batch:
                ctx.crash.crash("after_fetch")
            counts = await save_together(ctx, batch, compiled, rng)
            for (src, outcome), (new_items, new_matches) in zip(batch, counts, strict=True):
                in_flight.release()
                _report(report, src, outcome, new_items, new_matches)
                if on_done is not None:
                    on_done(src, outcome)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def save_batch_limit(concurrency: int) -> int:
    """The most polls one save of a crawl takes: SAVE_BATCH, or half of the
    polls it lets be in flight when that is more (POLLS_PER_FETCH_SLOT x
    `concurrency`, which bounds what is in memory whatever the batch).

    With stories on a save pays a fixed cost (the story index's refresh, the
    assignment's queries and lock, the encoder's call), and the saver is
    the crawling process's busiest thread: on the bench's first crawl
    (concurrency 64, 128 polls in flight) saves of up to 64 polls instead of
    32 took 0.1-0.35 s less CPU in the crawling process, in four interleaved
    pairs (docs/notes/crawl-profile.md, step 13). At the default
    concurrency (16) the limit stays 32."""
    return max(SAVE_BATCH, polls_in_flight(concurrency) // 2)


def polls_in_flight(concurrency: int) -> int:
    """The most polls poll_and_save keeps between fetch and save."""
    return POLLS_PER_FETCH_SLOT * concurrency


@dataclass(eq=False)
class _Handed:
    """Polls one poll_and_save call handed over to be saved, and where their counts go."""

    ctx: CrawlContext
    polls: list[tuple[Source, PollOutcome]]
    compiled: CompiledWatchlists
    rng: random.Random
    result: asyncio.Future[list[tuple[int, int]]]


@dataclass(eq=False)
class _SaveQueue:
    """The saves handed over by the poll_and_save calls of one event loop,
    written in the order given, several calls' polls in one save_outcomes
    transaction (up to SAVE_BATCH polls) when they queue up.

    The daemon runs one poll_and_save per source, so without this every poll
    was a transaction of its own: one commit, one take of the assignment lock
    and one refresh of the story index per poll even while dozens of polls
    waited behind the saver. Batches grow only when the saver is behind (what
    queues while a save runs goes into the next); a lone poll is saved at once."""

    waiting: collections.deque[_Handed] = field(default_factory=collections.deque)
    flusher: asyncio.Task[None] | None = None

    async def flush(self) -> None:
        group: list[_Handed] = []
        try:
            while self.waiting:
                group = self._next_group()
                if not group:
                    continue
                first = group[0]
                merged = [poll for handed in group for poll in handed.polls]
                try:
                    counts = await in_saver(
                        _save_and_count, first.ctx, merged, first.compiled, first.rng
                    )
                except Exception as e:  # an outage: every caller of the batch sees it
                    for handed in group:
                        if not handed.result.done():
                            handed.result.set_exception(e)
                    continue
                at = 0
                for handed in group:
                    part, at = counts[at : at + len(handed.polls)], at + len(handed.polls)
                    if not handed.result.done():
                        handed.result.set_result(part)
                group = []
        except BaseException:  # the loop is closing: nobody is left waiting unanswered
            for handed in [*group, *self.waiting]:
                if not handed.result.done():
                    handed.result.cancel()
            self.waiting.clear()
            raise

    def _next_group(self) -> list[_Handed]:
        """The oldest waiting call and those after it with the same context and
        watchlists, up to SAVE_BATCH polls (calls whose caller gave up are dropped)."""
        group: list[_Handed] = []
        size = 0
        while self.waiting:
            handed = self.waiting[0]
            if handed.result.done():  # its caller was cancelled before its save began
                self.waiting.popleft()
                continue
            if group and (
                handed.ctx is not group[0].ctx
                or handed.compiled is not group[0].compiled
                or size + len(handed.polls) > SAVE_BATCH
            ):
                break
            group.append(self.waiting.popleft())
            size += len(handed.polls)
        return group


def _save_and_count(
    ctx: CrawlContext,
    polls: Sequence[tuple[Source, PollOutcome]],
    compiled: CompiledWatchlists,
    rng: random.Random,
) -> list[tuple[int, int]]:
    """save_outcomes, then the polls' items counted toward the heap's next
    trim (scheduler.heap: what they took is free once they are saved)."""
    try:
        return save_outcomes(ctx, polls, compiled, rng)
    finally:
        heap.ITEMS.passed(sum(len(outcome.items) for _, outcome in polls))


_SAVE_QUEUES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SaveQueue] = (
    weakref.WeakKeyDictionary()
)


async def save_together(
    ctx: CrawlContext,
    polls: Sequence[tuple[Source, PollOutcome]],
    compiled: CompiledWatchlists,
    rng: random.Random,
) -> list[tuple[int, int]]:
    """save_outcomes(ctx, polls, compiled, rng) in the saver thread, sharing its
    transaction with the polls other poll_and_save calls of this event loop
    handed over meanwhile (see _SaveQueue); (new items, new matches) of each
    of `polls`. Cancelling the caller before its save has begun drops its
    polls; once begun, the save commits or rolls back as a whole."""
    loop = asyncio.get_running_loop()
    queue = _SAVE_QUEUES.get(loop)
    if queue is None:
        queue = _SAVE_QUEUES[loop] = _SaveQueue()
    handed = _Handed(ctx, list(polls), compiled, rng, loop.create_future())
    queue.waiting.append(handed)
    if queue.flusher is None or queue.flusher.done():
        queue.flusher = loop.create_task(queue.flush())
    return await handed.result


def _memory(ctx: CrawlContext, src: Source) -> tuple[frozenset[str], dict[str, datetime | None]]:
    """What a source remembers between polls: a page's fetched links, a
    sitemap's url → lastmod (a kind-less source may turn out to be either)."""
    if src.kind in ("feed", "spider"):
        return frozenset(), {}
    with ctx.store.transaction() as tx:
        if src.kind == "sitemap":
            return frozenset(), tx.seen_versions(src.id)
        if src.kind == "page":
            return tx.seen_links(src.id), {}
        return tx.seen_links(src.id), tx.seen_versions(src.id)


def _spider_slot(ctx: CrawlContext, src: Source) -> AbstractAsyncContextManager[None]:
    """A spider run waits for one of the process's spider slots, its lease kept
    until it ends (scheduler.spider_leases); others go on."""
    return leased_run(ctx, src) if src.kind == "spider" else nullcontext()


async def _next_batch(
    done: asyncio.Queue[tuple[Source, PollOutcome] | BaseException],
    limit: int,
    linger: float = 0.0,
) -> list[tuple[Source, PollOutcome]]:
    """The next finished poll, plus any others already waiting (up to `limit`),
    and those that finish within `linger` seconds of the first while fewer
    than `limit` are taken.

    Batches grow by themselves when saving is the bottleneck and stay at one
    poll when polls trickle in (`linger` 0), so nothing waits to be saved.
    With stories on, a save also pays a fixed cost (the story index's
    refresh, the assignment's queries, the encoder's call): ~17 ms a save on
    the bench's first crawl, whose saves then stayed at ~6 polls because
    small saves end quickly. A crawl that knows more polls are coming lingers
    a little so that its saves fill up (see poll_and_save)."""
    items = [await done.get()]
    deadline = asyncio.get_running_loop().time() + linger
    while len(items) < limit and not isinstance(items[-1], BaseException):
        if not done.empty():
            items.append(done.get_nowait())
        elif asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(_LINGER_STEP)
        else:
            break
    for item in items:
        if isinstance(item, BaseException):
            raise item
    return items  # type: ignore[return-value]


def _report(
    report: CrawlReport, src: Source, outcome: PollOutcome, new_items: int, new_matches: int
) -> None:
    report.new_items += new_items
    report.new_matches += new_matches
    if outcome.status == "failed":
        report.failed.append((src.name, outcome.error or "failed"))
    elif outcome.status == "deferred":
        report.deferred += 1
    elif outcome.status == "not_modified":
        report.not_modified += 1
    else:
        report.polled += 1
    template = "polled source=%s status=%s new_items=%d matches=%d"
    args: tuple[object, ...] = (src.name, outcome.status, new_items, new_matches)
    if outcome.error:  # a field of its own: the formatters quote it (newswatch.logs)
        template, args = template + " error=%s", (*args, outcome.error)
    log.info(template, *args)


async def crawl(
    ctx: CrawlContext,
    *,
    names: Sequence[str] | None = None,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[Source, PollOutcome], None] | None = None,
    parse_workers: int | None = None,
) -> CrawlReport:
    """Poll every enabled source (or the named ones) now, whatever their schedule.

    `parse_workers`: processes that parse feeds; None means
    crawler.parse_pool.default_workers() when there are at least
    MIN_SOURCES_FOR_POOL sources (fewer are parsed in-process: starting
    workers would cost more than it saves), 0 means always in-process.
    Leases are released at the end only for sources whose poll was not
    saved (saving a poll clears its lease already).
    """
    report = CrawlReport()
    sources: list[Source] = []
    saved: set[int] = set()

    def done(src: Source, outcome: PollOutcome) -> None:
        saved.add(src.id)
        if on_done is not None:
            on_done(src, outcome)

    try:  # everything after the claim, so that a failure hands the leases back
        sources = claim(ctx, names=names, due_only=False, limit=100_000)
        ctx.crash.raise_at("crawl", "after_claim")
        if on_start is not None:
            on_start(len(sources))
        if not sources:
            return report
        first_poll = any(src.last_success_at is None for src in sources)
        if ctx.stories is not None and first_poll:
            ctx.stories.load_soon()  # a first poll: every item it brings is new
        compiled = load_watchlists(ctx.store, expected_bytes=len(sources) * CRAWL_BYTES_PER_SOURCE)
        if first_poll:
            warm_matcher(compiled)
        if parse_workers is None:
            parse_workers = ctx.limits.parse_workers
        if parse_workers is None:
            parse_workers = default_workers() if len(sources) >= MIN_SOURCES_FOR_POOL else 0
        async with ctx.http() as client:
            with ctx.pool(parse_workers) as executor, fewer_collections():
                # once every poll is parsed, the workers exit during the last saves
                polled = None if executor is None else functools.partial(release_workers, executor)
                await poll_and_save(
                    ctx,
                    client,
                    sources,
                    compiled,
                    report,
                    done,
                    executor=executor,
                    on_polled=polled,
                )
        heap.trim_heap()  # what the crawl's polls took, before the drain or the next crawl
    finally:
        unsaved = [src for src in sources if src.id not in saved]
        if unsaved:
            _release_leases(ctx, unsaved)
    return report


# What `warm_matcher` matches: text in every script, so that whatever the
# matcher builds on its first item is built.
_WARM_DOCUMENT = Document(title="warm up", summary="Москва", body="서울 北京")


def warm_matcher(compiled: CompiledWatchlists) -> threading.Thread:
    """Match a sample text now, in a thread of its own, so that what the
    matcher builds on its first item (the screen's Hyperscan database:
    ~35 ms for the bench's watchlists, ~0.8 s for 1,000 terms) is built while
    the parse workers start and the saver has nothing to save, not in the
    first save, while every parsed feed queues behind it. A crawl of
    sources never polled calls this (its items are new, so they are all
    matched); a re-crawl that fetches nothing new never pays for the screen.
    The thread is scheduler.background's (not a daemon; a failure is one
    debug line)."""
    return start_soon(
        "newswatch-matcher-warm",
        lambda: compiled.matcher.match(_WARM_DOCUMENT),
        "matcher_warm",
        log,
    )


def drain_stories(
    ctx: CrawlContext,
    *,
    budget: float | None = None,
    keep_going: Callable[[], bool] = lambda: True,
    one_shot: bool = False,
) -> int:
    """Give the items stored without a story (they matched nothing) one: the
    daemon's `stories` job, and `newswatch crawl` after delivering
    (`one_shot`: larger transactions, nothing else of the process waits). How many."""
    return drain_pending(
        ctx.stories,
        ctx.store,
        ctx.clock,
        budget=budget,
        keep_going=keep_going,
        crash=ctx.crash.crash,
        batch=ONE_SHOT_BATCH if one_shot else None,
        wait=one_shot,  # a crawl's items get stories before it exits; a daemon skips
    )


def _release_leases(ctx: CrawlContext, sources: Sequence[Source]) -> None:
    """Hand back the leases of sources not saved, best effort: this runs while
    an error or a SIGTERM unwinds, maybe on a connection it interrupted, and
    must not replace that exit with its own. A lease not handed back expires."""
    try:
        with ctx.store.transaction() as tx:
            for src in sources:
                tx.release_lease(src.id, ctx.owner)
    except Exception as e:
        log.warning("lease_release status=failed sources=%d error=%r", len(sources), str(e))
