"""Polling one source: fetch (conditionally) → skip if unchanged → parse → PollOutcome.

`poll_source` never raises (but for cancellation): a poll of one source is
a unit of containment. Every expected failure (timeout, refused address, too
large, HTTP status, parse error, bad encoding) becomes status "failed" with
a one-line error, and so does any other exception raised while fetching,
parsing or normalising that source (a bug, or a hostile input nobody
foresaw): it is logged at critical with its traceback, and the source fails
alone with the exception's type name in its error, so it is retried with
backoff like any failure and never stops the others.
A source whose host has no free request slot within `slot_wait` becomes
status "deferred": it was not tried, so it is not a failure
(crawler.fetch.SlotUnavailable).

Sitemap sources skip the conditional GET and the unchanged-body shortcut:
their root is often an index or a robots.txt that stays the same while the
files it names change; what keeps a repeat poll cheap is the url → version
memory (`seen_versions`, see crawler.sitemaps). Spider sources do not use
the client at all: the spider runs under Scrapy's engine in a child process
(crawler.spiders) with the client's policy.

Parsing a feed is the CPU cost of a crawl, so it is skipped whenever
possible: a 304, or a body whose sha256 equals the last one (servers that
ignore conditional GET or send a new ETag for the same bytes). Pass an
`executor` (e.g. a ProcessPoolExecutor) to run `parse_feed` off the event
loop; its arguments and result are plain picklable values.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
from collections.abc import Callable, Container, Mapping
from concurrent.futures import BrokenExecutor, Executor
from datetime import datetime
from types import MappingProxyType

from crawler import CrawlError
from crawler.crawl_records import Item, PollOutcome, SeenVersion, Source, SourceKind
from crawler.detect import sniff_kind
from crawler.feeds import ParsedFeed, parse_feed
from crawler.fetch import FetchResult, HttpClient, HTTPStatusError, SlotUnavailable
from crawler.listings import crawl_listing
from crawler.robots import RobotsCache
from crawler.sitemaps import crawl_sitemap
from crawler.spiders import SpiderLimits, poll_spider

log = logging.getLogger(__name__)
_NO_VERSIONS: Mapping[str, datetime | None] = MappingProxyType({})


async def poll_source(
    source: Source,
    client: HttpClient,
    *,
    now: datetime,
    seen_links: Container[str] = frozenset(),
    robots: RobotsCache | None = None,
    executor: Executor | None = None,
    slot_wait: float | None = None,
    on_fetched: Callable[[], None] | None = None,
    seen_versions: Mapping[str, datetime | None] = _NO_VERSIONS,
    spider_limits: SpiderLimits | None = None,
) -> PollOutcome:
    """Poll `source` once; see the module docstring for the contract.

    `on_fetched` is called once the source's own request is over (answered,
    failed or deferred), before parsing: the host is free for others then.
    """
    try:
        if source.kind == "spider":
            limits = spider_limits or SpiderLimits()
            return await poll_spider(source, client.policy, limits=limits, now=now)
        if source.kind == "sitemap":
            return await _poll_sitemap(source, client, now, seen_versions, robots)
        return await _poll(
            source,
            client,
            now=now,
            seen_links=seen_links,
            robots=robots,
            executor=executor,
            slot_wait=slot_wait,
            on_fetched=on_fetched,
            seen_versions=seen_versions,
        )
    except Exception as e:
        return crashed(source, e)


def crashed(source: Source, error: Exception) -> PollOutcome:
    """The failed outcome of a poll that raised something unexpected (a bug).

    Logged at critical with the traceback so that it gets fixed; the error
    line names the exception type, since its message alone may be empty.
    """
    log.critical(
        "poll_crashed status=bug source=%s error=%r", source.name, repr(error), exc_info=error
    )
    return _failed(source, f"internal error: {type(error).__name__}: {error}")


async def _poll(
    source: Source,
    client: HttpClient,
    *,
    now: datetime,
    seen_links: Container[str],
    robots: RobotsCache | None,
    executor: Executor | None,
    slot_wait: float | None,
    on_fetched: Callable[[], None] | None,
    seen_versions: Mapping[str, datetime | None],
) -> PollOutcome:
    try:
        result = await client.get(
            source.url, etag=source.etag, last_modified=source.last_modified, slot_wait=slot_wait
        )
    except SlotUnavailable as e:
        log.info("polled status=deferred source=%s reason=%r", source.name, str(e))
        return PollOutcome(
            source.id,
            "deferred",
            etag=source.etag,
            last_modified=source.last_modified,
            body_hash=source.body_hash,
        )
    except HTTPStatusError as e:
        return _failed(source, str(e), retry_after=e.retry_after)
    except CrawlError as e:
        return _failed(source, str(e))
    finally:
        if on_fetched is not None:
            on_fetched()
    etag = result.etag or source.etag
    last_modified = result.last_modified or source.last_modified
    body_hash = source.body_hash if result.not_modified else _sha256(result.body)
    if result.not_modified or body_hash == source.body_hash:
        # 304, or a body that did not change although the validators say so
        # (some servers lie about ETag): either way, no parsing.
        reason = "304" if result.not_modified else "same_body"
        log.info("polled status=not_modified source=%s reason=%s", source.name, reason)
        return PollOutcome(
            source.id,
            "not_modified",
            etag=etag,
            last_modified=last_modified,
            body_hash=body_hash,
            min_interval_seconds=result.max_age,
        )
    kind: SourceKind = source.kind or sniff_kind(result.body, result.content_type)
    try:
        found = await _read(
            kind, source, client, result, now, executor, robots, seen_links, seen_versions
        )
    except CrawlError as e:
        return _failed(source, str(e), detected=None if source.kind else kind)
    items, links, versions, ttl = found
    log.info("polled status=ok source=%s kind=%s items=%d", source.name, kind, len(items))
    return PollOutcome(
        source.id,
        "ok",
        items=items,
        etag=etag,
        last_modified=last_modified,
        body_hash=body_hash,
        retry_after_seconds=result.retry_after,
        min_interval_seconds=_min_interval(ttl, result.max_age),
        detected_kind=None if source.kind else kind,
        seen_links=links,
        seen_versions=versions,
    )


_Found = tuple[tuple[Item, ...], tuple[str, ...], tuple[SeenVersion, ...], int | None]


async def _read(
    kind: SourceKind,
    source: Source,
    client: HttpClient,
    result: FetchResult,
    now: datetime,
    executor: Executor | None,
    robots: RobotsCache | None,
    seen_links: Container[str],
    seen_versions: Mapping[str, datetime | None],
) -> _Found:
    """(items, seen links, seen versions, feed TTL) of a fetched body of `kind`."""
    if kind == "feed":
        parsed = await _parse(result, now, executor)
        return parsed.items, (), (), parsed.ttl_seconds
    if kind == "sitemap":  # detected on this poll; later polls take _poll_sitemap
        found = await crawl_sitemap(client, result, now=now, seen=seen_versions, robots=robots)
        return found.items, (), found.seen, None
    crawl = await crawl_listing(
        client, result, now=now, css=source.links_css, seen_links=seen_links, robots=robots
    )
    return crawl.items, crawl.fetched_links, (), None


async def _poll_sitemap(
    source: Source,
    client: HttpClient,
    now: datetime,
    seen: Mapping[str, datetime | None],
    robots: RobotsCache | None,
) -> PollOutcome:
    """A sitemap source: the root unconditionally, then crawl_sitemap."""
    try:
        result = await client.get(source.url, accept="application/xml, text/xml;q=0.9, */*;q=0.1")
        crawl = await crawl_sitemap(client, result, now=now, seen=seen, robots=robots)
    except HTTPStatusError as e:
        return _failed(source, str(e), retry_after=e.retry_after)
    except CrawlError as e:
        return _failed(source, str(e))
    log.info("polled status=ok source=%s kind=sitemap items=%d", source.name, len(crawl.items))
    return PollOutcome(
        source.id,
        "ok",
        items=crawl.items,
        retry_after_seconds=result.retry_after,
        min_interval_seconds=result.max_age,
        seen_versions=crawl.seen,
    )


async def _parse(result: FetchResult, now: datetime, executor: Executor | None) -> ParsedFeed:
    """parse_feed in `executor` if given; in-process when there is none or it broke.

    A pool breaks when its workers cannot start or one dies; polling must go
    on, so the feed is then parsed here, as without an executor.
    """
    call = functools.partial(
        parse_feed, result.body, url=result.url, headers=dict(result.headers), fetched_at=now
    )
    if executor is None:
        return call()
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, call)
    except (BrokenExecutor, OSError) as e:
        log.warning("parse_pool status=broken error=%r; parsing in-process", str(e))
        return call()


def _min_interval(ttl: int | None, max_age: float | None) -> float | None:
    """The larger of the feed's TTL and the response's max-age; a server may
    send any number there (`max-age=` and 400 nines reads as infinity), so
    only finite, positive values count (the policy caps them in any case)."""
    values = [float(v) for v in (ttl, max_age) if v is not None and 0 < float(v) < math.inf]
    return max(values) if values else None


def _failed(
    source: Source,
    error: str,
    *,
    retry_after: float | None = None,
    detected: SourceKind | None = None,
) -> PollOutcome:
    line = " ".join(error.split())[:300] or "unknown error"
    log.warning("polled status=failed source=%s error=%s", source.name, line)
    return PollOutcome(
        source.id,
        "failed",
        error=line,
        etag=source.etag,
        last_modified=source.last_modified,
        body_hash=source.body_hash,
        retry_after_seconds=retry_after,
        detected_kind=detected,
    )


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
