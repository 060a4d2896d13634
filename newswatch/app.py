"""The composition root: builds the engine, clock and clients from Settings.

Tests build an `App` with their own clock or environment; nothing below the
CLI reads the environment or the wall clock on its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alerts.pacing import Pacer
from alerts.watchlist_files import reference_env
from newswatch.config import Settings
from storage.db import make_engine, session_factory, transaction
from storage.leases import OwnerLock, owner_id

if TYPE_CHECKING:
    from crawler.fetch import HttpClient


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Callable[[], datetime] = utcnow
    # What `${NAME}` in a watchlist may read: the environment without
    # NEWSWATCH_* and outside NEWSWATCH_WATCHLIST_ENV (alerts.watchlist_files).
    env: Mapping[str, str] = field(default_factory=lambda: reference_env(os.environ, ""))
    # Alerts a channel accepted whose "sent" mark could not be written (the
    # database was down): (outbox ids, lease token, sent at). Delivery writes
    # these first once the database answers, so an outage repeats no alert.
    unrecorded_sends: list[tuple[tuple[int, ...], str, datetime]] = field(default_factory=list)
    # host:pid:start:machine:tag (storage.leases): a lease whose owner is
    # provably dead is taken back at once rather than when it expires.
    owner: str = field(default_factory=owner_id)
    # Send slots per webhook URL, kept across delivery passes (alerts.pacing).
    pacer: Pacer = field(default_factory=Pacer)
    owner_lock: OwnerLock | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        env: Mapping[str, str] | None = None,
    ) -> App:
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            clock=clock,
            env=reference_env(os.environ if env is None else env, settings.watchlist_env),
        )

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        if self.owner_lock is not None:  # a claimer: keep the lock that proves us alive
            self.owner_lock.keep(self.engine)
        with transaction(self.sessions) as session:
            yield session

    def hold_owner_lock(self) -> None:
        """Call before claiming leases (crawl, daemon, delivery): on Postgres, take
        the session lock that proves this process alive (storage.leases) and keep
        it before every transaction from then on. Commands that claim nothing
        never open its connection."""
        if self.owner_lock is None:
            self.owner_lock = OwnerLock(self.owner)
        self.owner_lock.keep(self.engine)

    def http_client(self) -> HttpClient:
        from crawler.fetch import FetchPolicy, HttpClient

        return HttpClient(FetchPolicy.from_settings(self.settings))

    def close(self) -> None:
        if self.owner_lock is not None:
            self.owner_lock.close()
        self.engine.dispose()
