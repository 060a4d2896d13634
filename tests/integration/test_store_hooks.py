"""A save's buffered fetch state is written at its commit by every SqlStore a
process makes, however many it makes one after another.

SqlTransaction.record_poll buffers a poll's state and writes it before the
session's next statement or at the commit (session events). Those listeners
were registered per session factory, behind `event.contains`; SQLAlchemy's
registry keys a listener by the id() of its target, so a factory created at
the address of a collected one was taken for hooked and got no listener: a
save with no statement after its polls (a failed poll has no items) committed
without them. The tests' in-process CLI runs (a store per command) lost a
failed poll's state that way, now and then, late in a long run.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from crawler.crawl_records import PollOutcome
from storage.db import session_factory
from storage.repository import SqlStore
from storage.tables import SourceRow
from tests.conftest import Database

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
STORES = 60  # CPython reuses a collected factory's address within a few


def test_every_store_made_after_another_writes_a_lone_failed_poll(db: Database) -> None:
    with SqlStore(db.engine, session_factory(db.engine)).transaction() as tx:
        source = tx.add_source(
            name="gone",
            url="https://gone.example/feed",
            kind="feed",
            every_seconds=600,
            links_css=None,
            now=T0,
        ).id
    lost = []
    for k in range(STORES):
        store = SqlStore(db.engine, session_factory(db.engine))  # a factory of its own
        with store.transaction() as tx:  # the poll alone: nothing else runs before the commit
            tx.record_poll(
                PollOutcome(source, "failed", error=f"failure {k}"),
                now=T0 + timedelta(minutes=k),
                next_poll_at=T0 + timedelta(minutes=k + 10),
            )
        with db.factory() as s:
            row = s.scalars(select(SourceRow).where(SourceRow.id == source)).one()
            if (row.last_error, row.consecutive_failures) != (f"failure {k}", k + 1):
                lost.append((k, row.last_error, row.consecutive_failures))
        del store, tx
        gc.collect()  # the factory goes; the next may be made at its address
    assert lost == []
