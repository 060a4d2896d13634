"""Outbox delivery end to end on SQLite and PostgreSQL, with real local peers:
aiosmtpd for email and a local HTTP server (through the real HttpClient) for
Slack and webhooks. The clock is the App's, moved by hand."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from alerts.alert_records import Hit, Recipient, Term, Watchlist, WatchlistMatch
from crawler.crawl_records import Item
from crawler.fetch import FetchPolicy, HttpClient
from newswatch.app import App, build_app
from newswatch.config import Settings
from scheduler.deliver import DeliveryReport, deliver_due
from scheduler.http_poster import HttpPoster
from storage import outbox as repo
from storage.items import store_items
from storage.matches import record_matches
from storage.repository import SqlStore
from storage.sources import add_source
from storage.tables import ItemRow, OutboxRow
from storage.watchlists import active_watchlists, save_watchlists
from tests.conftest import Database
from tests.support.httpserver import LocalHTTPServer, Request, Response
from tests.support.smtpserver import smtp_server

T0 = datetime(2026, 11, 22, 2, 10, tzinfo=UTC)


@dataclass
class Clock:
    at: datetime = T0

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


def make_app(
    db: Database,
    clock: Clock,
    *,
    smtp: str | None = None,
    env: dict[str, str] | None = None,
    max_attempts: int = 8,
    owner: str = "test",
    **tuning: Any,
) -> App:
    settings = Settings(
        database_url=db.url,
        smtp_url=smtp,
        mail_from="nw@example.org",
        allow_private_addresses="127.0.0.1",
        max_attempts=max_attempts,
        **tuning,
    )
    app = build_app(settings, clock=clock, env=env or {}, store=SqlStore(db.engine, db.factory))
    app.owner = owner
    return app


def deliver(app: App, limit: int = 200) -> DeliveryReport:
    async def main() -> DeliveryReport:
        policy = FetchPolicy(timeout=5, address_policy=app.settings.address_policy)
        async with HttpClient(policy) as client:
            return await deliver_due(app.delivery_context(), HttpPoster(client), limit=limit)

    return asyncio.run(main())


def setup(app: App, notify: Sequence[Recipient], *, digest: str = "none") -> int:
    with app.session() as s:
        src = add_source(
            s,
            name="isw",
            url="https://example.org/feed",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=app.now(),
        )
        save_watchlists(
            s,
            [
                Watchlist(
                    name="air-defence", rules=(Term("SAM"),), notify=tuple(notify), digest=digest
                )
            ],  # type: ignore[arg-type]
            app.now(),
        )
    return src.id


def add_items(
    app: App,
    source_id: int,
    n: int,
    *,
    start: int = 0,
    source: str | None = None,
    published: datetime | None = None,
) -> None:
    """Store n items that match, and record their matches (as the crawl does)."""
    with app.session() as s:
        if source is not None:
            source_id = add_source(
                s,
                name=source,
                url=f"https://{source}.example/feed",
                kind="feed",
                every_seconds=900,
                links_css=None,
                now=app.now(),
            ).id
        items = [
            Item(
                url=f"https://example.org/{source or 'a'}/{i}",
                guid=str(i),
                title=f"Item {i} <b>SAM</b>",
                summary="",
                text="the SAM system",
                published=published or app.now() - timedelta(minutes=60 - i),
                language="en",
                content_hash=str(i),
            )
            for i in range(start, start + n)
        ]
        store_items(s, source_id, items, app.now())
        # Every item, new or not: record_matches must itself create nothing twice.
        ids = s.scalars(select(ItemRow.id).where(ItemRow.url.in_([it.url for it in items])))
        [active] = active_watchlists(s)
        hit = Hit(rule="SAM", spelling="SAM", field="body", start=4, end=7)
        for item_id in ids:
            record_matches(
                s,
                item_id,
                [(active, WatchlistMatch("air-defence", ("SAM",), (hit,), ("the SAM system",)))],
                app.now(),
            )


def rows(app: App) -> list[OutboxRow]:
    with app.session() as s:
        return list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))


def hook_counter(
    server: LocalHTTPServer, path: str, secret: str | None = None, delay: float = 0.0
) -> Counter[str]:
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(req: Request) -> Response:
        if secret is not None:
            ts = req.headers.get("X-Newswatch-Timestamp", "")
            signed = ts.encode() + b"." + req.body
            good = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(req.headers.get("X-Newswatch-Signature", ""), good):
                return 401, {}, b"bad signature"
        time.sleep(delay)
        with lock:
            doc = json.loads(req.body)
            seen[doc["item"]["url"] if "item" in doc else doc["blocks"][1]["text"]["text"]] += 1
        return 200, {}, b"ok"

    server.route(path, handler)
    return seen


def test_each_alert_once_across_runs_and_repolls(
    db: Database, http_server: LocalHTTPServer
) -> None:
    clock = Clock()
    hooks = hook_counter(http_server, "/hook", secret="k3y")
    slack = hook_counter(http_server, "/services/T/B/X")
    with smtp_server() as (smtp, url):
        app = make_app(db, clock, smtp=url, env={"HOOK": http_server.url("/hook"), "K": "k3y"})
        sid = setup(
            app,
            [
                Recipient("email", "analyst@example.org"),
                Recipient("slack", http_server.url("/services/T/B/X")),
                Recipient("webhook", "${HOOK}", "${K}"),
            ],
        )
        add_items(app, sid, 3)
        first = deliver(app)
        add_items(app, sid, 3)  # the same items again: a re-poll creates nothing new
        second = deliver(app)
    assert (first.sent, first.retried, first.failed, second.sent) == (9, 0, 0, 0)
    assert len(smtp.messages) == 3 and all(
        m.rcpt_tos == ["analyst@example.org"] for m in smtp.messages
    )
    assert sorted(hooks.values()) == [1, 1, 1] and sorted(slack.values()) == [1, 1, 1]
    assert {r.status for r in rows(app)} == {"sent"} and len(rows(app)) == 9
    assert all(r.attempts == 1 and r.sent_at == T0 for r in rows(app))


def test_concurrent_deliverers_never_share_an_alert(
    pg_db: Database, http_server: LocalHTTPServer
) -> None:
    """Concurrent replicas need PostgreSQL (SQLite serialises writers). Four
    recipients: each recipient's alerts go out in order, one deliverer at a
    time, so replicas share the work across recipients."""
    db = pg_db
    clock = Clock()
    paths = [f"/hook{i}" for i in range(4)]
    hooks = [hook_counter(http_server, p, delay=0.005) for p in paths]
    base = make_app(db, clock)
    sid = setup(base, [Recipient("webhook", http_server.url(p)) for p in paths])
    add_items(base, sid, 10)
    results: list[int] = []

    def pending() -> int:
        return sum(1 for r in rows(base) if r.status == "pending")

    def worker(name: str) -> None:
        app = make_app(db, clock, owner=name)
        total = 0
        for _ in range(200):
            total += deliver(app, limit=3).sent
            if pending() == 0:
                break
        results.append(total)

    threads = [threading.Thread(target=worker, args=(f"replica-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(results) == 40 and all(n > 0 for n in results), results
    assert all(len(h) == 10 and set(h.values()) == {1} for h in hooks)
    order = [f"https://example.org/a/{i}" for i in range(10)]
    assert all(list(h) == order for h in hooks), [list(h) for h in hooks]


def test_retries_back_off_then_fail_and_retry_command(
    db: Database, http_server: LocalHTTPServer
) -> None:
    clock = Clock()
    url = http_server.serve("/down/t0ken-secret", "busy", "text/plain", 503)
    app = make_app(db, clock, max_attempts=3)
    sid = setup(app, [Recipient("webhook", url)])
    add_items(app, sid, 1)
    assert deliver(app).retried == 1
    [r] = rows(app)
    assert r.status == "pending" and r.attempts == 1
    assert timedelta(seconds=24) <= r.next_attempt_at - T0 <= timedelta(seconds=36)
    assert "503" in (r.last_error or "") and "t0ken-secret" not in (r.last_error or "")
    assert deliver(app).handled == 0  # not due yet: no tight loop
    clock.advance(seconds=40)
    assert deliver(app).retried == 1
    [r] = rows(app)
    assert timedelta(seconds=48) <= r.next_attempt_at - clock.at <= timedelta(seconds=72)
    clock.advance(seconds=80)
    report = deliver(app)
    assert report.failed == 1 and "503" in report.errors[0]
    [r] = rows(app)
    assert (r.status, r.attempts) == ("failed", 3)
    clock.advance(hours=7)
    assert deliver(app).handled == 0 and len(http_server.requests) == 3
    with app.session() as s:
        assert repo.retry_failed(s, now=clock.at) == 1
        assert repo.backlog(s, now=clock.at) == repo.BacklogCounts(1, 1, 0, 0)
    [r] = rows(app)
    assert (r.status, r.attempts) == ("pending", 0)


def test_smtp_451_then_accepts_and_550_fails(db: Database) -> None:
    clock = Clock()
    with smtp_server(fail_first=1, reject={"gone@example.org"}) as (smtp, url):
        app = make_app(db, clock, smtp=url)
        sid = setup(
            app, [Recipient("email", "a@example.org"), Recipient("email", "gone@example.org")]
        )
        add_items(app, sid, 1)
        first = deliver(app)
        clock.advance(minutes=1)
        second = deliver(app)
    by_target = {r.recipient_id: r for r in rows(app)}
    assert (first.retried, first.failed, second.sent) == (1, 1, 1), (first, second)
    statuses = sorted((r.status, r.attempts) for r in by_target.values())
    assert statuses == [("failed", 1), ("sent", 2)]
    failed = next(r for r in by_target.values() if r.status == "failed")
    assert "550" in (failed.last_error or "")
    assert len(smtp.messages) == 1 and smtp.messages[0].rcpt_tos == ["a@example.org"]


def test_slack_429_retry_after_then_ok_and_revoked_hook(
    db: Database, http_server: LocalHTTPServer
) -> None:
    """A short Retry-After is waited out in the same pass (exactly, not the 30 s
    backoff) and is no attempt; a revoked hook fails at once."""
    clock = Clock()
    calls: list[float] = []

    def limited(req: Request) -> Response:
        calls.append(time.monotonic())
        return (429, {"Retry-After": "1"}, b"rate_limited") if len(calls) == 1 else (200, {}, b"ok")

    ok = http_server.route("/services/T/B/ok", limited)
    gone = http_server.serve("/services/T/B/gone", "no_service", "text/plain", 404)
    app = make_app(db, clock)
    sid = setup(app, [Recipient("slack", ok), Recipient("slack", gone)])
    add_items(app, sid, 1)
    first = deliver(app)
    assert (first.sent, first.retried, first.paced, first.failed) == (1, 0, 0, 1), first
    assert len(calls) == 2 and 0.95 <= calls[1] - calls[0] <= 3.0, calls
    assert len(http_server.hits("/services/T/B/gone")) == 1
    states = sorted((r.status, r.attempts, r.last_error or "") for r in rows(app))
    assert states[0][:2] == ("failed", 1) and "404" in states[0][2]
    assert "/services/T/B/gone" not in states[0][2]
    assert states[1] == ("sent", 1, "")  # the 429 used up no attempt


def test_long_retry_after_reschedules_exactly_without_an_attempt(
    db: Database, http_server: LocalHTTPServer
) -> None:
    """Retry-After beyond what a pass waits out: the alert is due again exactly
    then (no jitter, no 30 s floor), attempts stay 0 however often it happens,
    the recipient's later alerts wait behind it, another recipient does not."""
    clock = Clock()
    answers = {"status": 429, "retry_after": "120"}
    got: list[str] = []

    def limited(req: Request) -> Response:
        if answers["status"] != 200:
            return answers["status"], {"Retry-After": answers["retry_after"]}, b"slow down"
        got.append(json.loads(req.body)["item"]["url"])
        return 200, {}, b"ok"

    healthy = hook_counter(http_server, "/healthy")
    url = http_server.route("/limited", limited)
    app = make_app(db, clock, max_attempts=2)
    sid = setup(app, [Recipient("webhook", url), Recipient("webhook", http_server.url("/healthy"))])
    add_items(app, sid, 3)
    order = [f"https://example.org/a/{i}" for i in range(3)]
    for status in (429, 503, 429):  # more rate limits than max_attempts: none is a failure
        answers["status"] = status
        report = deliver(app)
        assert (report.paced, report.retried, report.failed) == (1, 0, 0), report
        limited_rows = [r for r in rows(app) if r.status == "pending"]
        assert len(limited_rows) == 3 and all(r.attempts == 0 for r in limited_rows)
        first = min(limited_rows, key=lambda r: r.id)
        assert first.next_attempt_at == clock.at + timedelta(seconds=120)
        assert "Retry-After 120" in (first.last_error or "")
        clock.advance(seconds=119)
        assert deliver(app).handled == 0  # not before the peer said
        clock.advance(seconds=1)
    assert list(healthy) == order  # never held back
    answers["status"] = 200
    assert deliver(app).sent == 3 and got == order
    assert len(http_server.hits("/limited")) == 3 + 3


def test_a_slack_url_is_paced_in_order_and_other_recipients_are_not(
    db: Database, http_server: LocalHTTPServer
) -> None:
    """Sends to one Slack URL are spaced by 1/NEWSWATCH_SLACK_PER_SECOND (5/s
    here), in match order; a webhook recipient does not queue behind them."""
    clock = Clock()
    arrivals: list[tuple[float, str]] = []

    def slack(req: Request) -> Response:
        arrivals.append((time.monotonic(), json.loads(req.body)["text"]))
        return 200, {}, b"ok"

    url = http_server.route("/services/T/B/paced", slack)
    hook = hook_counter(http_server, "/hook")
    app = make_app(db, clock, slack_per_second=5.0)
    sid = setup(app, [Recipient("slack", url), Recipient("webhook", http_server.url("/hook"))])
    add_items(app, sid, 6)
    report = deliver(app)
    assert report.sent == 12 and len(arrivals) == 6 and len(hook) == 6
    # Sends start 0.2 s apart; arrivals jitter by the request's own latency.
    times = [t for t, _ in arrivals]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.1 and times[-1] - times[0] >= 5 * 0.2 - 0.05, gaps
    order = [f"https://example.org/a/{i}" for i in range(6)]
    assert [next(u for u in order if f"<{u}|" in text) for _, text in arrivals] == order
    assert list(hook) == order


def test_missing_configuration_keeps_rows_pending(
    db: Database, http_server: LocalHTTPServer
) -> None:
    clock = Clock()
    seen = hook_counter(http_server, "/hook", secret="k")
    app = make_app(db, clock)  # no SMTP, no HOOK variable
    sid = setup(app, [Recipient("email", "a@example.org"), Recipient("webhook", "${HOOK}", "k")])
    add_items(app, sid, 2)
    for _ in range(2):
        report = deliver(app)
        assert (report.handled, report.waiting) == (0, 4)
    errors = sorted({(r.status, r.attempts, r.last_error) for r in rows(app)}, key=str)
    assert errors == [
        ("pending", 0, "NEWSWATCH_SMTP_URL is not set"),
        (
            "pending",
            0,
            "environment variable HOOK is not set (or not permitted by NEWSWATCH_WATCHLIST_ENV)",
        ),
    ]
    with smtp_server() as (smtp, url):
        configured = make_app(db, clock, smtp=url, env={"HOOK": http_server.url("/hook")})
        assert deliver(configured).sent == 4
    assert len(smtp.messages) == 2 and sum(seen.values()) == 2


def test_digest_one_message_per_recipient_and_period(
    db: Database, http_server: LocalHTTPServer
) -> None:
    clock = Clock()
    bodies: list[dict[str, Any]] = []
    http_server.route("/hook", lambda req: (bodies.append(json.loads(req.body)), (200, {}, b""))[1])
    with smtp_server() as (smtp, url):
        app = make_app(db, clock, smtp=url)
        sid = setup(
            app,
            [Recipient("email", "a@example.org"), Recipient("webhook", http_server.url("/hook"))],
            digest="hourly",
        )
        add_items(app, sid, 2, published=T0 - timedelta(hours=3))  # older, source isw
        clock.advance(minutes=5)
        add_items(app, sid, 2, start=10, source="rusi", published=T0)  # newer, source rusi
        assert deliver(app).handled == 0  # the period (02:00-03:00) is not over
        clock.at = T0.replace(hour=3, minute=0, second=1)
        report = deliver(app)
        clock.advance(hours=2)
        again = deliver(app)
    assert (report.sent, again.handled) == (8, 0)
    assert len(smtp.messages) == 1 and len(bodies) == 1
    msg = smtp.messages[0].message
    assert msg["Subject"] == "[newswatch] air-defence: 4 new matches (2026-11-22 02:00–03:00 UTC)"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.index("== rusi ==") < text.index("== isw ==")
    titles = [m["item"]["title"] for m in bodies[0]["matches"]]
    sources = [m["item"]["source"] for m in bodies[0]["matches"]]
    assert sources == ["rusi", "rusi", "isw", "isw"] and len(set(titles)) == 4
    assert bodies[0]["digest"] == "2026-11-22T02"
    assert {r.status for r in rows(app)} == {"sent"}


def test_a_failing_recipient_gets_its_alerts_in_match_order(
    db: Database, http_server: LocalHTTPServer
) -> None:
    """A temporary failure holds the recipient's later alerts back (they would
    overtake it), in the same pass and in later passes while it backs off;
    other recipients are not held up."""
    clock = Clock()
    app = make_app(db, clock)
    down = {"now": True}
    got: list[str] = []

    def flaky(req: Request) -> Response:
        if down["now"]:
            return 503, {}, b"down"
        got.append(json.loads(req.body)["item"]["url"])
        return 200, {}, b"ok"

    healthy = hook_counter(http_server, "/healthy")
    sid = setup(
        app,
        [
            Recipient("webhook", http_server.route("/flaky", flaky)),
            Recipient("webhook", http_server.url("/healthy")),
        ],
    )
    add_items(app, sid, 1)
    clock.advance(seconds=1)
    add_items(app, sid, 2, start=1)
    order = [f"https://example.org/a/{i}" for i in range(3)]

    first = deliver(app)
    assert (first.sent, first.retried) == (3, 1)  # healthy got 3; flaky's 1st failed
    assert len(http_server.hits("/flaky")) == 1 and sorted(healthy) == order
    down["now"] = False
    second = deliver(app)  # the later two are due, but wait behind the backing-off first
    assert second.handled == 0 and len(http_server.hits("/flaky")) == 1
    clock.advance(hours=7)
    third = deliver(app)
    assert third.sent == 3 and got == order
    assert {r.status for r in rows(app)} == {"sent"}


def test_database_outage_between_send_and_mark_repeats_nothing(
    pg_db: Database, http_server: LocalHTTPServer
) -> None:
    """The receiver accepts the alert and the database goes away before the
    "sent" mark is written (a TCP proxy is cut from inside the receiver). Once
    the database is back, the mark is written first: even after the lease
    would have expired, the alert is not sent again."""
    from sqlalchemy.engine import make_url

    from storage.db import make_engine
    from tests.support.tcpproxy import TcpProxy

    target = make_url(pg_db.url)
    proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432)).start()
    via = target.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
    engine = make_engine(via)
    try:
        clock = Clock()
        app = make_app(pg_db, clock)
        app.store = SqlStore(engine, before_transaction=app.store.before_transaction)
        seen: list[str] = []

        def receiver(req: Request) -> Response:
            seen.append(json.loads(req.body)["item"]["url"])
            if len(seen) == 1:
                proxy.cut()
            return 200, {}, b"ok"

        sid = setup(app, [Recipient("webhook", http_server.route("/hook", receiver))])
        add_items(app, sid, 1)
        first = deliver(app)
        assert first.sent == 0 and "could not record sent" in first.errors[0]
        assert len(app.unrecorded.pending) == 1
        proxy.restore()
        clock.advance(minutes=30)  # past the lease: without the remembered mark, a resend
        second = deliver(app)
        assert len(seen) == 1, "the alert was sent twice"
        assert second.handled == 0 and app.unrecorded.pending == []
        assert [(r.status, r.sent_at) for r in rows(make_app(pg_db, clock))] == [("sent", T0)]
    finally:
        engine.dispose()
        proxy.stop()
