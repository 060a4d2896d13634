"""Leases of provably dead owners are taken back at once, live ones are
honoured (storage.leases), for source and outbox claims, on SQLite and
PostgreSQL. Owners are real processes: children started and killed here."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import text, update

from alerts.alert_records import Recipient
from storage import outbox as repo
from storage.leases import OwnerId, lock_key, machine_id, owner_id, parse_owner, process_start
from storage.sources import claim_due_sources, held_sources
from storage.tables import OutboxRow, SourceRow
from tests.conftest import Database
from tests.integration.test_outbox import Clock, add_items, make_app, setup

LEASE = timedelta(minutes=10)


def _process_owner() -> tuple[subprocess.Popen[bytes], str]:
    """A live process on this machine and an owner id naming it."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    me = parse_owner(owner_id())
    assert me is not None
    return proc, str(OwnerId(me.host, proc.pid, process_start(proc.pid), machine_id(), "ch1ld"))


def _lease_everything(db: Database, owner: str, until: datetime) -> None:
    with db.factory.begin() as s:
        s.execute(update(SourceRow).values(lease_owner=owner, lease_until=until))
        s.execute(update(OutboxRow).values(lease_owner=f"{owner}/0c1a1m00", lease_until=until))


def _claims(db: Database, now: datetime) -> tuple[int, int]:
    with db.factory.begin() as s:
        sources = claim_due_sources(s, now=now, owner="me", lease=LEASE, limit=10, due_only=False)
        batches = repo.claim_due(s, now=now, owner="me/1", lease=LEASE, limit=10)
        return len(sources), sum(len(b.alerts) for b in batches)


def test_leases_of_a_killed_process_are_free_at_once_a_live_ones_are_not(db: Database) -> None:
    clock = Clock(datetime.now(UTC))
    app = make_app(db, clock)
    sid = setup(app, [Recipient("webhook", "http://127.0.0.1:9/hook")])
    add_items(app, sid, 3)
    proc, owner = _process_owner()
    try:
        _lease_everything(db, owner, clock.at + LEASE)
        assert _claims(db, clock.at) == (0, 0)  # alive: honoured
        with db.factory.begin() as s:
            held = held_sources(s, now=clock.at, owner="me")
            left = repo.pending_summary(s, now=clock.at, owner_prefix="me/")
        assert (held.count, held.until) == (1, clock.at + LEASE)
        assert (left.held, left.held_until, left.pending) == (3, clock.at + LEASE, 0)
    finally:
        proc.kill()
        proc.wait()
    assert _claims(db, clock.at) == (1, 3)  # dead: taken back without waiting 10 minutes


def test_leases_of_unknown_owners_are_honoured_until_they_expire(db: Database) -> None:
    clock = Clock(datetime.now(UTC))
    app = make_app(db, clock)
    sid = setup(app, [Recipient("webhook", "http://127.0.0.1:9/hook")])
    add_items(app, sid, 2)
    for owner in ("replica-7", "oldhost:1234:abcdef", f"{owner_id()}x:extra"):
        _lease_everything(db, owner, clock.at + LEASE)
        assert _claims(db, clock.at) == (0, 0), owner
    assert _claims(db, clock.at + LEASE + timedelta(seconds=1)) == (1, 2)  # expired


def test_postgres_owner_on_another_host_lives_as_long_as_its_lock(pg_db: Database) -> None:
    """Another machine's pid means nothing here: its session advisory lock
    (which the server drops with its connection) is the proof of life."""
    clock = Clock(datetime.now(UTC))
    app = make_app(pg_db, clock)
    sid = setup(app, [Recipient("webhook", "http://127.0.0.1:9/hook")])
    add_items(app, sid, 2)
    other = OwnerId("replica-host-b", 4242, "123456", "0badf00d", "a1b2c3")
    anchor = pg_db.engine.connect()
    backend = anchor.execute(text("SELECT pg_backend_pid()")).scalar_one()
    try:
        anchor.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock_key(other)})
        anchor.commit()
        _lease_everything(pg_db, str(other), clock.at + LEASE)
        assert _claims(pg_db, clock.at) == (0, 0)  # its lock is held: alive
    finally:
        # The owner's process dies. The server frees its locks when its
        # backend exits, which happens after the client's socket closes, not
        # with it, so wait for the backend to be gone (a plain close raced the
        # next claim in CI). pg_terminate_backend with a timeout returns once
        # the backend has exited.
        with pg_db.engine.connect() as killer:
            gone = killer.execute(text("SELECT pg_terminate_backend(:p, 10000)"), {"p": backend})
            assert gone.scalar_one() is True
        anchor.invalidate()
        anchor.close()
    assert _claims(pg_db, clock.at) == (1, 2)


def test_an_app_on_postgres_holds_its_owner_lock_until_closed(pg_db: Database) -> None:
    from newswatch.app import build_app
    from storage.repository import SqlStore

    app = make_app(pg_db, Clock(datetime.now(UTC)))
    # a real owner id
    app = build_app(app.settings, clock=app.clock, store=SqlStore(pg_db.engine, pg_db.factory))
    key = lock_key(parse_owner(app.owner))  # type: ignore[arg-type]

    def held() -> bool:
        with pg_db.engine.connect() as c:
            rows = c.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = :k"
                ),
                {"k": key},
            )
            return bool(rows.scalar())

    with app.session():
        pass
    assert not held()  # a command that claims nothing holds no lock
    app.hold_owner_lock()
    assert held()
    with app.session():
        pass
    assert held()
    assert app.owner_lock is not None
    app.owner_lock.close()
    assert not held()
