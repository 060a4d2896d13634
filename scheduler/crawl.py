"""The crawl pipeline: poll → store → match → matches + outbox, per source.

For each polled source, ONE transaction writes the new items, the source's
fetch state (ETag, Last-Modified, body hash, next poll), the matches of the
new items and their outbox rows (polls that finish together share one
transaction, see save_outcomes; a source is never split). So a crash
anywhere leaves either all of it or none of it: if none, the validators
were not saved either, the source is fetched again and the items are new
again, and no match is ever lost between "stored" and "matched".
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from alerts.alert_records import Document
from alerts.matching.backends import BackendName
from alerts.matching.engine import Matcher, compile_watchlists
from crawler.crawl_records import Item, PollOutcome, Source
from crawler.parse_pool import MIN_SOURCES_FOR_POOL, default_workers, parse_pool
from newswatch.app import App
from newswatch.config import Settings
from scheduler.crash_points import crash_point, raise_point
from scheduler.poll_policy import PollPolicy, next_interval, next_poll_at
from storage import sources as source_repo
from storage.db import DatabaseRefused, DatabaseUnavailable
from storage.items import store_items
from storage.matches import record_matches
from storage.watchlists import ActiveWatchlist, active_watchlists

log = logging.getLogger("newswatch.crawl")

# Polls in flight per global fetch slot: enough to keep fetches and parsers
# busy, few enough that waiting bodies stay a few MB.
POLLS_PER_FETCH_SLOT = 2
# Most polls saved in one transaction (see save_outcomes).
SAVE_BATCH = 32


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


@dataclass(frozen=True)
class CompiledWatchlists:
    matcher: Matcher
    by_name: dict[str, ActiveWatchlist]

    @classmethod
    def build(
        cls,
        actives: Sequence[ActiveWatchlist],
        backend: BackendName | None = None,
        *,
        skip_invalid: bool = True,
    ) -> CompiledWatchlists:
        """Compile the active watchlists; one that cannot compile is skipped
        with an error naming it, and the others match (never stop the crawl).
        With `skip_invalid=False` it raises InvalidWatchlistError instead."""
        matcher = compile_watchlists(
            [a.watchlist for a in actives], backend, skip_invalid=skip_invalid
        )
        for name, reason in matcher.skipped:
            log.error("watchlist_skipped status=invalid watchlist=%s error=%r", name, reason)
        return cls(matcher, {a.watchlist.name: a for a in actives})


def document(item: Item) -> Document:
    return Document(title=item.title, summary=item.summary, body=item.text, language=item.language)


# For one-shot commands. Hyperscan scans faster but compiles slowly (~1 s for
# 200 terms with aliases, ~5 s for 1,000; pyahocorasick: 4 and 16 ms), and a
# crawl matches a few MB of new text, which pyahocorasick does in well under
# a second at that size. The daemon compiles once per watchlist change and
# keeps the default (Hyperscan where available). Results are identical.
ONE_SHOT_BACKEND: BackendName = "aho"


def load_watchlists(app: App, backend: BackendName | None = None) -> CompiledWatchlists:
    with app.transaction() as s:
        return CompiledWatchlists.build(active_watchlists(s), backend)


def poll_policy(app: App) -> PollPolicy:
    return PollPolicy(
        min_interval=app.settings.min_interval, max_interval=app.settings.max_interval
    )


def save_outcome(
    app: App,
    source: Source,
    outcome: PollOutcome,
    compiled: CompiledWatchlists,
    rng: random.Random,
) -> tuple[int, int]:
    """Persist one poll (see the module docstring); return (new items, new matches)."""
    return save_outcomes(app, [(source, outcome)], compiled, rng)[0]


def save_outcomes(
    app: App,
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
    now = app.now()
    try:
        with app.transaction() as s:
            counts = [_save_one(app, s, src, outcome, compiled, rng, now) for src, outcome in polls]
            crash_point("after_store")
    except Exception as e:
        if is_outage(e):
            raise  # an outage: nothing was saved, every source is polled again later
        if len(polls) > 1:  # find the source that failed; save the others
            return [save_outcomes(app, [poll], compiled, rng)[0] for poll in polls]
        return [_refused(app, polls[0], e, compiled, rng)]
    crash_point("after_commit")
    return counts


# What the database may refuse in one source's data (the rest of the batch is
# fine): constraint and data errors, text a driver cannot encode. Anything
# else raised while saving one source (matching its items, say) is a bug,
# but it too fails that source alone, logged at critical.
UNSTORABLE = (SQLAlchemyError, DatabaseRefused, UnicodeError, ValueError)


def is_outage(error: BaseException) -> bool:
    """True for errors that mean "the database cannot be reached", not "a query is wrong"."""
    if isinstance(error, DatabaseUnavailable):
        return True
    return isinstance(error, DBAPIError) and bool(error.connection_invalidated)


def _refused(
    app: App,
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
    with app.transaction() as s:
        return _save_one(app, s, source, failed, compiled, rng, app.now())


def _save_one(
    app: App,
    s: Session,
    source: Source,
    outcome: PollOutcome,
    compiled: CompiledWatchlists,
    rng: random.Random,
    now: datetime,
) -> tuple[int, int]:
    if outcome.status == "deferred":
        when = deferred_poll_at(now, app.settings, rng)
        source_repo.defer_poll(s, source.id, app.owner, next_poll_at=when)
        return 0, 0
    new_matches = 0
    new = store_items(s, source.id, outcome.items, now) if outcome.items else {}
    by_url = {it.url: it for it in outcome.items}
    for url, item_id in new.items():
        found = compiled.matcher.match(document(by_url[url]))
        pairs = [(compiled.by_name[m.watchlist], m) for m in found]
        if pairs:
            new_matches += record_matches(
                s, item_id, pairs, now, daily_at=app.settings.daily_digest_time
            )
    interval = next_interval(
        source, outcome, len(new), poll_policy(app), source.current_interval_seconds
    )
    source_repo.record_poll(
        s,
        outcome,
        now=now,
        interval=interval,
        next_poll_at=next_poll_at(interval, now, poll_policy(app), rng),
    )
    if outcome.seen_links:
        source_repo.add_seen_links(s, source.id, outcome.seen_links, now)
    return len(new), new_matches


def deferred_poll_at(now: datetime, settings: Settings, rng: random.Random) -> datetime:
    """When a deferred source (no request slot in time) is due again: soon,
    after about the time its host needs to start `per_host_concurrency`
    requests, spread by a random factor of 1 to 2 so that the sources a busy
    host deferred together do not all come back at the same tick."""
    base = max(1.0, settings.per_host_delay * settings.per_host_concurrency)
    return now + timedelta(seconds=base * rng.uniform(1.0, 2.0))


def lease_duration(settings: Settings) -> timedelta:
    """How long a claim on a source lasts; a poll must end well before it does."""
    return timedelta(seconds=max(300.0, settings.fetch_timeout * 10))


def claim(
    app: App,
    *,
    names: Sequence[str] | None,
    due_only: bool,
    limit: int,
    hosts: source_repo.HostQuota | None = None,
) -> list[Source]:
    lease = lease_duration(app.settings)
    with app.transaction() as s:
        if names:
            names = [source_repo.normalize_name(n) for n in names]
            known = source_repo.source_names(s)
            missing = [n for n in names if n not in known]
            if missing:
                raise source_repo.SourceNotFound(f"no source named {missing[0]!r}")
        return source_repo.claim_due_sources(
            s,
            now=app.now(),
            owner=app.owner,
            lease=lease,
            limit=limit,
            names=names,
            due_only=due_only,
            hosts=hosts,
        )


async def poll_and_save(
    app: App,
    client: object,
    sources: Sequence[Source],
    compiled: CompiledWatchlists,
    report: CrawlReport,
    on_done: Callable[[Source, PollOutcome], None] | None = None,
    *,
    executor: Executor | None = None,
    slot_wait: float | None = None,
    on_fetched: Callable[[Source], None] | None = None,
) -> None:
    """Poll sources concurrently (the client bounds requests in flight) and
    save each outcome as soon as it arrives.

    `slot_wait` bounds how long a poll waits for a request slot before it is
    deferred (crawler.fetch.SlotUnavailable); None: every poll waits its turn.
    `on_fetched(source)` is called when a source's own request is over.

    Feeds are parsed in `executor` when given (see crawler.parse_pool), else in
    the event loop. At most POLLS_PER_FETCH_SLOT x `concurrency` polls are
    in flight, so fetched bodies waiting for a parser cannot pile up in
    memory when fetching outpaces parsing.
    """
    from crawler.poll import crashed, poll_source

    rng = random.Random()
    in_flight = asyncio.Semaphore(POLLS_PER_FETCH_SLOT * app.settings.concurrency)

    async def one(src: Source) -> tuple[Source, PollOutcome]:
        async with in_flight:
            try:
                seen: frozenset[str] = frozenset()
                if src.kind != "feed":
                    with app.transaction() as s:
                        seen = source_repo.seen_links(s, src.id)
                outcome = await poll_source(
                    src,
                    client,  # type: ignore[arg-type]
                    now=app.now(),
                    seen_links=seen,
                    executor=executor,
                    slot_wait=slot_wait,
                    on_fetched=None if on_fetched is None else functools.partial(on_fetched, src),
                )
                raise_point("poll", src.name)
            except Exception as e:
                if is_outage(e):
                    raise
                outcome = crashed(src, e)  # this source fails alone, with backoff
            return src, outcome

    done: asyncio.Queue[tuple[Source, PollOutcome] | BaseException] = asyncio.Queue()

    async def deliver(src: Source) -> None:
        try:
            done.put_nowait(await one(src))
        except BaseException as e:  # a bug in one poll must reach the caller, not hang it
            done.put_nowait(e)
            raise

    tasks = [asyncio.create_task(deliver(src)) for src in sources]
    try:
        remaining = len(tasks)
        while remaining:
            batch = await _next_batch(done, min(remaining, SAVE_BATCH))
            remaining -= len(batch)
            for _ in batch:
                crash_point("after_fetch")
            counts = save_outcomes(app, batch, compiled, rng)
            for (src, outcome), (new_items, new_matches) in zip(batch, counts, strict=True):
                _report(report, src, outcome, new_items, new_matches)
                if on_done is not None:
                    on_done(src, outcome)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _next_batch(
    done: asyncio.Queue[tuple[Source, PollOutcome] | BaseException], limit: int
) -> list[tuple[Source, PollOutcome]]:
    """The next finished poll, plus any others already waiting (up to `limit`).

    Batches grow by themselves when saving is the bottleneck and stay at one
    poll when polls trickle in, so nothing waits to be saved."""
    items = [await done.get()]
    while len(items) < limit and not done.empty():
        items.append(done.get_nowait())
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
    app: App,
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
        sources = claim(app, names=names, due_only=False, limit=100_000)
        raise_point("crawl", "after_claim")
        if on_start is not None:
            on_start(len(sources))
        if not sources:
            return report
        compiled = load_watchlists(app, ONE_SHOT_BACKEND)
        if parse_workers is None:
            parse_workers = app.settings.parse_workers
        if parse_workers is None:
            parse_workers = default_workers() if len(sources) >= MIN_SOURCES_FOR_POOL else 0
        async with app.http_client() as client:
            with parse_pool(parse_workers) as executor:
                await poll_and_save(app, client, sources, compiled, report, done, executor=executor)
    finally:
        unsaved = [src for src in sources if src.id not in saved]
        if unsaved:
            _release_leases(app, unsaved)
    return report


def _release_leases(app: App, sources: Sequence[Source]) -> None:
    """Hand back the leases of sources not saved, best effort: this runs while
    an error or a SIGTERM unwinds, maybe on a connection it interrupted, and
    must not replace that exit with its own. A lease not handed back expires."""
    try:
        with app.transaction() as s:
            for src in sources:
                source_repo.release_lease(s, src.id, app.owner)
    except Exception as e:
        log.warning("lease_release status=failed sources=%d error=%r", len(sources), str(e))
