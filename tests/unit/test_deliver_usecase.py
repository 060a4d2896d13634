"""The deliver use-case on the in-memory store: send, retry with backoff in
order per recipient, and the "sent" marks an outage kept from being written.
The fast twins of tests/integration/test_outbox.py (which proves the SQL)."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

from alerts.alert_records import Hit, Recipient, WatchlistMatch
from crawler.crawl_records import Item
from scheduler.deliver import DeliveryReport, deliver_due
from scheduler.http_poster import HttpPoster
from storage.db import DatabaseUnavailable
from storage.memory import MemoryStore
from tests.support.httpserver import LocalHTTPServer, Request, Response
from tests.unit.usecase_support import (
    T0,
    Clock,
    RiggedStore,
    add_source,
    add_watchlist,
    delivery_context,
    http,
)

HIT = Hit(rule="SAM", spelling="SAM", field="body", start=4, end=7)


def add_matches(store: MemoryStore, n: int, at: datetime) -> None:
    """n matching items, each with its match and outbox rows (as the crawl writes them)."""
    sid = add_source(store, "isw", "https://example.org/feed")
    with store.transaction() as tx:
        items = [
            Item(
                f"https://example.org/{i}",
                str(i),
                f"Item {i}",
                "",
                "the SAM system",
                at,
                "en",
                str(i),
            )
            for i in range(n)
        ]
        ids = tx.store_items(sid, items, at)
        [active] = tx.active_watchlists()
        for item in items:
            found = WatchlistMatch("air-defence", ("SAM",), (HIT,), ("the SAM system",))
            tx.record_matches(ids[item.url], [(active, found)], at)


def deliver(ctx) -> DeliveryReport:  # type: ignore[no-untyped-def]
    async def main() -> DeliveryReport:
        async with http() as client:
            return await deliver_due(ctx, HttpPoster(client))

    return asyncio.run(main())


def test_alerts_are_sent_once(http_server: LocalHTTPServer) -> None:
    got: list[str] = []

    def hook(req: Request) -> Response:
        got.append(json.loads(req.body)["item"]["url"])
        return 200, {}, b"ok"

    store = MemoryStore()
    add_watchlist(store, [Recipient("webhook", http_server.route("/hook", hook))])
    add_matches(store, 3, T0)
    clock = Clock()
    assert deliver(delivery_context(store, clock)).sent == 3
    assert deliver(delivery_context(store, clock)).handled == 0
    assert got == [f"https://example.org/{i}" for i in range(3)]


def test_a_failing_recipient_retries_with_backoff_in_match_order(
    http_server: LocalHTTPServer,
) -> None:
    got: list[str] = []
    answers = [500]

    def hook(req: Request) -> Response:
        status = answers.pop(0) if answers else 200
        if status == 200:
            got.append(json.loads(req.body)["item"]["url"])
        return status, {}, b""

    store = MemoryStore()
    add_watchlist(store, [Recipient("webhook", http_server.route("/hook", hook))])
    add_matches(store, 3, T0)
    clock = Clock()
    first = deliver(delivery_context(store, clock))
    assert (first.sent, first.retried) == (0, 1)  # the later two wait behind it
    assert deliver(delivery_context(store, clock)).handled == 0  # backing off
    clock.advance(minutes=2)  # past 30 s ± 20 %
    assert deliver(delivery_context(store, clock)).sent == 3
    assert got == [f"https://example.org/{i}" for i in range(3)]


def test_the_last_attempt_fails_the_alert(http_server: LocalHTTPServer) -> None:
    store = MemoryStore()
    add_watchlist(store, [Recipient("webhook", http_server.route("/hook", (503, {}, b"")))])
    add_matches(store, 1, T0)
    clock = Clock()
    assert deliver(delivery_context(store, clock, max_attempts=2)).retried == 1
    clock.advance(hours=1)
    report = deliver(delivery_context(store, clock, max_attempts=2))
    assert report.failed == 1 and "HTTP 503" in report.errors[0]


def test_a_send_whose_mark_was_lost_is_recorded_first_and_not_repeated(
    http_server: LocalHTTPServer,
) -> None:
    """The database went away between the send and its "sent" mark: the
    mark is kept in the context and written first on the next pass, so the
    alert is not sent again when its lease expires."""
    got: list[Request] = []

    def hook(req: Request) -> Response:
        got.append(req)
        return 200, {}, b"ok"

    inner = MemoryStore()
    add_watchlist(inner, [Recipient("webhook", http_server.route("/hook", hook))])
    add_matches(inner, 1, T0)
    store = RiggedStore(inner)

    def down(tx, ids, *, owner, now):  # type: ignore[no-untyped-def]
        raise DatabaseUnavailable("database unavailable: connection reset")

    store.overrides["mark_sent"] = down
    clock = Clock()
    ctx = delivery_context(store, clock)
    first = deliver(ctx)
    assert first.sent == 0 and "could not record sent" in first.errors[0]
    assert len(ctx.unrecorded.pending) == 1
    del store.overrides["mark_sent"]
    clock.advance(minutes=30)  # past the lease: without the kept mark, a resend
    second = deliver(ctx)
    assert second.handled == 0 and ctx.unrecorded.pending == []
    assert len(got) == 1
    with inner.transaction() as tx:
        assert tx.backlog(now=clock()).sent == 1
