"""What each use-case receives: small frozen contexts, never Settings.

`newswatch/app.py` (the composition root) is the only code that builds
these, from Settings and the environment; the use-cases (scheduler/crawl.py,
deliver.py, backfill.py, the daemon's jobs) read only what is here. Tests
build them directly, with `storage.memory.MemoryStore` and a fixed clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from aiohttp import web

from alerts.channels import Poster, SlackChannel, WebhookChannel
from alerts.pacing import Pacer
from crawler.fetch import HttpClient
from crawler.sitemaps import DEFAULT_WINDOW as SITEMAP_WINDOW
from crawler.spiders import SpiderLimits
from scheduler.crash_points import CrashPoints
from scheduler.spider_slots import SpiderSlots
from scheduler.story_assignment import StoryAssigner
from storage.protocol import Store

Clock = Callable[[], datetime]  # aware UTC


def no_lock() -> None:
    """The owner-lock hook of a store that needs none (SQLite, the fake)."""


@dataclass(frozen=True, slots=True)
class CrawlLimits:
    concurrency: int  # requests in flight; polls in flight are 2 per slot
    min_interval: int  # seconds: the poll-interval range of PollPolicy
    max_interval: int
    lease: timedelta  # a claim on a source; a poll must end well before it lapses
    daily_digest_at: time  # UTC: when daily digests are due
    parse_workers: int | None  # None: decided by the number of sources
    per_host: int = 2  # requests at once per host (the daemon's claim quota)
    per_host_delay: float = 1.0  # seconds between request starts to one host
    slot_wait: float | None = None  # daemon: how long a poll waits for a request slot
    # A baseline poll alerts only on items published this recently (scheduler.first_poll).
    first_poll_alerts: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class CrawlContext:
    store: Store
    clock: Clock
    owner: str  # lease owner id of this process
    http: Callable[[], HttpClient]  # opens a client (one-shot runs); the daemon shares one
    pool: Callable[[int | None], AbstractContextManager[Executor | None]]  # feed parsers
    limits: CrawlLimits
    crash: CrashPoints = field(default_factory=CrashPoints)
    # Called before claiming leases: on Postgres, takes the lock that proves
    # this process alive to other claimers (storage.leases.OwnerLock).
    hold_owner_lock: Callable[[], None] = no_lock
    # Spider sources (crawler.spiders): per-run limits, and runs at once in
    # this process (the daemon keeps one context, so one set of slots).
    spider_limits: SpiderLimits = field(default_factory=SpiderLimits)
    spider_slots: SpiderSlots = field(default_factory=SpiderSlots)
    # Assigns new items to stories (scheduler.story_assignment); None: no stories.
    stories: StoryAssigner | None = None


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    max_attempts: int
    lease: timedelta = timedelta(minutes=10)
    parallel_recipients: int = 8
    slack_per_second: float = 1.0  # sends per second to one Slack webhook URL
    webhook_per_second: float = 0.0  # to one JSON webhook URL (0: unpaced)


@dataclass(frozen=True)
class Channels:
    """The channels of one delivery run, bound to the run's Poster (HTTP client)."""

    slack: SlackChannel
    webhook: WebhookChannel


@dataclass
class UnrecordedSends:
    """Alerts a channel accepted whose "sent" mark could not be written (the
    database was down): (outbox ids, lease token, sent at). Delivery writes
    these first once the database answers, so an outage repeats no alert.
    The one mutable part of a delivery context: it outlives a pass."""

    pending: list[tuple[tuple[int, ...], str, datetime]] = field(default_factory=list)


@dataclass(frozen=True)
class DeliveryContext:
    store: Store
    clock: Clock
    owner: str
    channels: Callable[[Poster], Channels]
    http: Callable[[], HttpClient]  # opens a client (one-shot runs); the daemon shares one
    env: Mapping[str, str]  # resolves ${NAME} in targets and secrets
    limits: DeliveryLimits
    smtp_url: str | None  # the secret value; None: email recipients wait
    mail_from: str
    unrecorded: UnrecordedSends = field(default_factory=UnrecordedSends)
    # Send slots per webhook URL, kept across delivery passes (alerts.pacing).
    pacer: Pacer = field(default_factory=Pacer)
    crash: CrashPoints = field(default_factory=CrashPoints)
    hold_owner_lock: Callable[[], None] = no_lock


@dataclass(frozen=True)
class BackfillContext:
    store: Store
    clock: Clock
    daily_digest_at: time
    stories: StoryAssigner | None = None  # assigns stories to items that have none


@dataclass(frozen=True)
class HousekeepingContext:
    store: Store
    clock: Clock
    retention: timedelta  # unmatched items older than this are pruned
    # A sitemap URL whose remembered lastmod is older than this is forgotten
    # (twice crawler.sitemaps' window: it can never be wanted again).
    sitemap_memory: timedelta = 2 * SITEMAP_WINDOW


@dataclass(frozen=True)
class DaemonContext:
    crawl: CrawlContext
    delivery: DeliveryContext
    housekeeping: HousekeepingContext
    poll_tick: float  # seconds between looks for due sources
    deliver_every: float
    daily_digest_at: time
    health: tuple[str, int] | None  # (host, port) of /healthz and /metrics, or off
    database: str  # the database URL with its password hidden, for log lines
    sqlite_lock: Path | None  # the lock file of a SQLite database; None on PostgreSQL
    check_database: Callable[[], None]  # raises DatabaseUnavailable
    schema_ready: Callable[[], bool]
    web_app: Callable[[], web.Application | None] = lambda: None  # the web view, or none
