"""What each use-case receives: small frozen contexts, never Settings.

`newswatch/app.py` (the composition root) is the only code that builds
these, from Settings and the environment; the use-cases (scheduler/crawl.py,
deliver.py, backfill.py, the daemon's jobs) read only what is here. Tests
build them directly, with `storage.memory.MemoryStore` and a fixed clock.

Written ahead of the redesign (docs/notes/redesign-plan.md §3): nothing uses
it yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path

from alerts.channels import Poster, SlackChannel, WebhookChannel
from crawler.fetch import HttpClient
from storage.protocol import Store

Clock = Callable[[], datetime]  # aware UTC
CrashHook = Callable[[str], None]  # scheduler.crash_points: SIGKILL at a named point in tests


def no_crash(_point: str) -> None:
    """The crash hook of every run that is not a fault-injection test."""


@dataclass(frozen=True, slots=True)
class CrawlLimits:
    concurrency: int  # requests in flight; polls in flight are 2 per slot
    min_interval: int  # seconds: the poll-interval range of PollPolicy
    max_interval: int
    lease: timedelta  # a claim on a source; a poll must end well before it lapses
    daily_digest_at: time  # UTC: when daily digests are due
    parse_workers: int | None  # None: decided by the number of sources


@dataclass(frozen=True)
class CrawlContext:
    store: Store
    clock: Clock
    owner: str  # lease owner id of this process
    http: Callable[[], HttpClient]  # opens a client (one-shot runs); the daemon shares one
    pool: Callable[[int | None], AbstractContextManager[Executor | None]]  # feed parsers
    limits: CrawlLimits
    crash: CrashHook = no_crash


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    max_attempts: int
    lease: timedelta = timedelta(minutes=10)
    parallel_recipients: int = 8


@dataclass(frozen=True)
class Channels:
    """The channels of one delivery run, bound to the run's Poster (HTTP client)."""

    slack: SlackChannel
    webhook: WebhookChannel
    smtp_url: str | None  # the secret value; None: email recipients wait
    mail_from: str


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
    env: Mapping[str, str]  # resolves ${NAME} in targets and secrets
    limits: DeliveryLimits
    unrecorded: UnrecordedSends = field(default_factory=UnrecordedSends)
    crash: CrashHook = no_crash


@dataclass(frozen=True)
class BackfillContext:
    store: Store
    clock: Clock
    daily_digest_at: time


@dataclass(frozen=True)
class HousekeepingContext:
    store: Store
    clock: Clock
    retention: timedelta  # unmatched items older than this are pruned


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
