"""One process drains pending stories at a time (Store.exclusive("story_drain")).

Two replicas draining together read the same oldest pending items, encoded
them both and queued on the assignment lock (bench/scale.py: CPU per poll
6.4 -> 15 ms with two replicas). Now a daemon's drain that finds another one
running returns at once, a crawl's one-shot drain waits for it, and a holder
that dies frees the section with its session. PostgreSQL for the exclusion
(what several processes share); SQLite for "a drain still runs"."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from crawler.crawl_records import Item, PollOutcome
from newswatch.app import App, build_app
from newswatch.config import Settings
from scheduler.compiled_watchlists import load_watchlists
from scheduler.crawl import drain_stories, save_outcomes
from storage.leases import SECTION_KEYS
from storage.repository import SqlStore
from storage.tables import ItemRow
from tests.conftest import Database
from tests.support.sources import feed_source

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
TITLES = [
    "Typhoon Haishen makes landfall on Okinawa",
    "태풍 하이선 오키나와 상륙",
    "Central bank holds rates at 3.5 percent",
    "Ракета упала в Балтийском море",
    "中国发射遥感卫星",
]


def make_app(db: Database) -> App:
    settings = Settings(database_url=db.url, story_encoder="hashing")
    return build_app(settings, clock=lambda: T0, env={}, store=SqlStore(db.engine, db.factory))


def store_pending(app: App, n: int) -> None:
    """`n` items matched by no watchlist: stored without a story (pending)."""
    with app.session() as s:
        src = feed_source(s, "wire", T0)
    items = tuple(
        Item(
            url=f"https://wire.example/a/{i}",
            guid=f"g{i}",
            title=f"{TITLES[i % len(TITLES)]} ({i})",
            summary="",
            text="",
            published=T0 - timedelta(minutes=i),
            language="en",
            content_hash=f"h{i}",
        )
        for i in range(n)
    )
    save_outcomes(
        app.crawl_context(),
        [(src, PollOutcome(src.id, "ok", items=items))],
        load_watchlists(app.store),
        random.Random(1),
    )


def pending(app: App) -> int:
    with app.session() as s:
        return int(s.scalar(select(func.count()).where(ItemRow.story_id.is_(None))) or 0)


def test_a_daemon_drain_skips_while_another_process_drains(pg_db: Database) -> None:
    holder, other = make_app(pg_db), make_app(pg_db)
    store_pending(holder, 12)
    assert pending(holder) == 12
    with holder.store.exclusive("story_drain", wait=False) as mine:
        assert mine
        with other.store.exclusive("story_drain", wait=False) as theirs:
            assert not theirs  # a second process is refused, not queued
        assert drain_stories(other.crawl_context()) == 0  # the daemon's job: skip
        assert pending(other) == 12
    assert drain_stories(other.crawl_context()) == 12  # free again: it drains
    assert pending(other) == 0


def test_a_crawl_drain_waits_for_the_running_one(pg_db: Database) -> None:
    holder, crawl = make_app(pg_db), make_app(pg_db)
    store_pending(holder, 7)
    done: list[int] = []
    with holder.store.exclusive("story_drain", wait=False) as mine:
        assert mine
        t = threading.Thread(
            target=lambda: done.append(drain_stories(crawl.crawl_context(), one_shot=True))
        )
        t.start()
        time.sleep(1.0)
        assert t.is_alive() and not done  # waiting, not skipped
    t.join(30)
    assert done == [7]
    assert pending(crawl) == 0


def test_a_dead_holder_frees_the_section(pg_db: Database) -> None:
    holder, other = make_app(pg_db), make_app(pg_db)
    key = SECTION_KEYS["story_drain"]
    with holder.store.exclusive("story_drain", wait=False) as mine:
        assert mine
        with pg_db.engine.connect() as admin:  # the holder's backend dies (kill -9, a lost link)
            killed = admin.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND classid = :hi AND objid = :lo"
                    # this database's holder only: the other xdist worker's
                    # database has its own holders of the same key, and killing
                    # them broke whatever that worker was running
                    " AND database = (SELECT oid FROM pg_database"
                    " WHERE datname = current_database())"
                ),
                {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
            )
            admin.commit()
        assert killed == 1
        deadline = time.monotonic() + 10
        while True:
            with other.store.exclusive("story_drain", wait=False) as theirs:
                if theirs:
                    break
            assert time.monotonic() < deadline, "the dead holder's section was never freed"
            time.sleep(0.1)


def test_sections_are_per_name_and_released_after_an_error(pg_db: Database) -> None:
    a, b = make_app(pg_db), make_app(pg_db)
    try:
        with a.store.exclusive("story_drain", wait=False) as mine:
            assert mine
            raise RuntimeError("the drain failed")
    except RuntimeError:
        pass
    with b.store.exclusive("story_drain", wait=False) as theirs:
        assert theirs  # released by the failure, not held until the process exits


def test_on_sqlite_and_postgres_a_lone_drain_runs(db: Database) -> None:
    app = make_app(db)
    store_pending(app, 9)
    assert drain_stories(app.crawl_context()) == 9
    assert drain_stories(app.crawl_context(), one_shot=True) == 0
    assert pending(app) == 0
