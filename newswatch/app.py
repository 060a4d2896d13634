"""The composition root: builds the engine, clock and clients from Settings.

Tests build an `App` with their own clock or environment; nothing below the
CLI reads the environment or the wall clock on its own.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from alerts.watchlists import reference_env
from newswatch.config import Settings
from storage.db import make_engine, session_factory, transaction

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
    # NEWSWATCH_* and outside NEWSWATCH_WATCHLIST_ENV (alerts.watchlists).
    env: Mapping[str, str] = field(default_factory=lambda: reference_env(os.environ, ""))
    # Alerts a channel accepted whose "sent" mark could not be written (the
    # database was down): (outbox ids, lease token, sent at). Delivery writes
    # these first once the database answers, so an outage repeats no alert.
    unrecorded_sends: list[tuple[tuple[int, ...], str, datetime]] = field(default_factory=list)
    owner: str = field(
        default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    )

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
        with transaction(self.sessions) as session:
            yield session

    def http_client(self) -> HttpClient:
        from crawler.fetch import FetchPolicy, HttpClient

        return HttpClient(FetchPolicy.from_settings(self.settings))

    def close(self) -> None:
        self.engine.dispose()
