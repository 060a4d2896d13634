"""The crawl use-case on the in-memory store: one transaction per source, a
refused source fails alone, unsaved sources get their leases back. The fast
twins of the subprocess and crash tests (tests/faults, test_daemon), which
stay in `make test-all`."""

from __future__ import annotations

import asyncio

import pytest

from scheduler.crash_points import CrashPoints
from scheduler.crawl import crawl
from storage.db import DatabaseRefused
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer
from tests.unit.usecase_support import (
    Clock,
    RiggedStore,
    add_source,
    add_watchlist,
    crawl_context,
    rss,
    sources,
)

FEED = rss("SAM site seen", "Weather today", "Another SAM battery")


class CrashAt(CrashPoints):
    """Raises (instead of SIGKILL) at one point: the transaction is left by an exception."""

    def __init__(self, point: str) -> None:
        super().__init__()
        self.point = point

    def crash(self, name: str) -> None:
        if name == self.point:
            raise RuntimeError(f"crash at {name}")


def pending_alerts(store: MemoryStore) -> int:
    with store.transaction() as tx:
        return tx.backlog(now=Clock()()).pending


def test_crawl_stores_items_matches_and_alerts(http_server: LocalHTTPServer) -> None:
    store = MemoryStore()
    add_watchlist(store, [])
    add_source(store, "isw", http_server.route("/f", (200, {}, FEED)))
    report = asyncio.run(crawl(crawl_context(store, Clock()), parse_workers=0))
    assert (report.polled, report.new_items, report.new_matches) == (1, 3, 2)
    again = asyncio.run(crawl(crawl_context(store, Clock()), parse_workers=0))
    assert (again.new_items, again.new_matches) == (0, 0)  # identity by canonical URL


@pytest.mark.parametrize("point", ["after_store"])
def test_a_failure_inside_the_save_leaves_nothing_of_that_source(
    http_server: LocalHTTPServer, point: str
) -> None:
    """Items, matches, outbox rows and fetch state are one transaction: a
    failure before the commit stores none of them, so the next crawl finds
    the same items new (no match lost between "stored" and "matched")."""
    store = MemoryStore()
    from alerts.alert_records import Recipient

    add_watchlist(store, [Recipient("webhook", "http://127.0.0.1:9/hook")])
    add_source(store, "isw", http_server.route("/f", (200, {}, FEED)))
    broken = asyncio.run(crawl(crawl_context(store, Clock(), crash=CrashAt(point))))
    assert broken.new_items == 0
    stored = sources(store)["isw"]
    assert stored.consecutive_failures == 1 and "crash at after_store" in (stored.last_error or "")
    assert pending_alerts(store) == 0
    report = asyncio.run(crawl(crawl_context(store, Clock()), parse_workers=0))
    assert (report.new_items, report.new_matches) == (3, 2)
    assert pending_alerts(store) == 2


def test_refused_data_fails_its_source_alone(http_server: LocalHTTPServer) -> None:
    inner = MemoryStore()
    add_watchlist(inner, [])
    bad = add_source(
        inner, "bad", http_server.route("/bad", (200, {}, rss("SAM bad", host="b.org")))
    )
    add_source(inner, "good", http_server.route("/good", (200, {}, FEED)))
    store = RiggedStore(inner)

    def refuse(tx, source_id, items, now):  # type: ignore[no-untyped-def]
        if source_id == bad:
            raise DatabaseRefused("database refused the operation: NotNullViolation")
        return tx.store_items(source_id, items, now)

    store.overrides["store_items"] = refuse
    report = asyncio.run(crawl(crawl_context(store, Clock()), parse_workers=0))
    assert report.new_items == 3  # the good source's items
    stored = sources(inner)
    assert stored["bad"].consecutive_failures == 1
    assert "could not store items" in (stored["bad"].last_error or "")
    assert stored["good"].consecutive_failures == 0


def test_unsaved_sources_get_their_leases_back(http_server: LocalHTTPServer) -> None:
    """A crawl that fails after its claim (here: the HTTP client cannot start)
    hands every lease back, so another process may poll at once."""
    store = MemoryStore()
    add_watchlist(store, [])
    add_source(store, "a", http_server.route("/a", (200, {}, FEED)))
    add_source(store, "b", http_server.route("/b", (200, {}, FEED)))
    ctx = crawl_context(store, Clock())

    def no_client() -> object:
        raise OSError("no sockets left")

    from dataclasses import replace

    with pytest.raises(OSError):
        asyncio.run(crawl(replace(ctx, http=no_client), parse_workers=0))  # type: ignore[arg-type]
    with store.transaction() as tx:
        from datetime import timedelta

        taken = tx.claim_due_sources(
            now=Clock()(), owner="other", lease=timedelta(minutes=5), limit=10, due_only=False
        )
    assert sorted(s.name for s in taken) == ["a", "b"]
