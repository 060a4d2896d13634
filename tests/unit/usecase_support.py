"""Use-case contexts on the in-memory store (storage.memory.MemoryStore), for
fast tests of the crawl and deliver logic: a real local HTTP server, a fixed
clock, no database. tests/integration/test_store_contract.py keeps the fake
honest against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from alerts.alert_records import Recipient, Term, Watchlist
from alerts.channels import Poster, SlackChannel, WebhookChannel
from crawler.addresses import AddressPolicy
from crawler.fetch import FetchPolicy, HttpClient
from crawler.parse_pool import parse_pool
from scheduler.context import (
    Channels,
    CrawlContext,
    CrawlLimits,
    DeliveryContext,
    DeliveryLimits,
)
from scheduler.crash_points import CrashPoints
from scheduler.http_poster import permits_private
from storage.memory import MemoryStore, MemoryTransaction

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LOCAL = AddressPolicy.parse("127.0.0.1")


@dataclass
class Clock:
    at: datetime = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


def http() -> HttpClient:
    return HttpClient(FetchPolicy(timeout=5, address_policy=LOCAL, per_host_delay=0.0))


def crawl_context(
    store: Any, clock: Clock, *, crash: CrashPoints | None = None, owner: str = "me"
) -> CrawlContext:
    limits = CrawlLimits(
        concurrency=4,
        min_interval=300,
        max_interval=86_400,
        lease=timedelta(minutes=5),
        daily_digest_at=time(8, 0),
        parse_workers=0,
    )
    return CrawlContext(
        store=store,
        clock=clock,
        owner=owner,
        http=http,
        pool=parse_pool,
        limits=limits,
        crash=crash or CrashPoints(),
    )


def delivery_context(store: Any, clock: Clock, *, max_attempts: int = 8) -> DeliveryContext:
    def channels(poster: Poster) -> Channels:
        return Channels(SlackChannel(poster, permits_private(LOCAL)), WebhookChannel(poster))

    return DeliveryContext(
        store=store,
        clock=clock,
        owner="me",
        channels=channels,
        http=http,
        env={},
        limits=DeliveryLimits(max_attempts=max_attempts, webhook_per_second=0.0),
        smtp_url=None,
        mail_from="nw@example.org",
    )


def add_watchlist(store: MemoryStore, notify: Sequence[Recipient] = ()) -> None:
    with store.transaction() as tx:
        tx.save_watchlists(
            [Watchlist(name="air-defence", rules=(Term("SAM"),), notify=tuple(notify))], T0
        )


def add_source(store: MemoryStore, name: str, url: str, *, alert_backlog: bool = True) -> int:
    """A source; by default one whose first poll alerts on everything (these
    tests are about the pipeline, tests/integration/test_first_poll.py about
    the baseline)."""
    with store.transaction() as tx:
        return tx.add_source(
            name=name,
            url=url,
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=T0,
            alert_backlog=alert_backlog,
        ).id


class _Rollback(Exception):
    pass


def sources(store: Any) -> dict[str, Any]:
    """Every source as stored (read by a claim that is rolled back), by name."""
    try:
        with store.transaction() as tx:
            got = tx.claim_due_sources(
                now=T0, owner="reader", lease=timedelta(minutes=1), limit=1000, due_only=False
            )
            raise _Rollback(got)
    except _Rollback as r:
        return {s.name: s for s in r.args[0]}


def rss(*titles: str, host: str = "example.org") -> bytes:
    entries = "".join(
        f"<item><title>{t}</title><link>https://{host}/{n}</link>"
        f"<description>{t}</description></item>"
        for n, t in enumerate(titles)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<link>https://{host}/</link>{entries}</channel></rss>"
    ).encode()


class _Proxy:
    """A transaction whose named methods are replaced (a refusing or failing database)."""

    def __init__(self, tx: MemoryTransaction, overrides: dict[str, Callable[..., Any]]) -> None:
        self._tx = tx
        self._overrides = overrides

    def __getattr__(self, name: str) -> Any:
        if name in self._overrides:
            return lambda *a, **kw: self._overrides[name](self._tx, *a, **kw)
        return getattr(self._tx, name)


class RiggedStore:
    """MemoryStore with some transaction methods overridden (`overrides[name](tx, ...)`)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner
        self.overrides: dict[str, Callable[..., Any]] = {}

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as tx:
            yield _Proxy(tx, self.overrides)

    def items_since(self, since: datetime | None, *, batch: int = 500) -> Any:
        return self.inner.items_since(since, batch=batch)

    def exclusive(self, name: str, *, wait: bool) -> Any:
        return self.inner.exclusive(name, wait=wait)
