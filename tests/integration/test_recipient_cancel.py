"""A recipient removed from a watchlist (re-import of an edited file) or a
removed watchlist gets none of the alerts still owed to it: its undelivered
outbox rows become `cancelled` in the import's transaction
(storage.cancellations), and every claim cancels any such row a crawl wrote
later. On SQLite and PostgreSQL, with aiosmtpd for email, a local HTTP server
for webhooks and the Slack stand-in, through the real deliver use-case."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from alerts.alert_records import Hit, Recipient, Term, Watchlist, WatchlistMatch
from newswatch.app import App
from storage.cancellations import RECIPIENT_REMOVED, WATCHLIST_REMOVED
from storage.matches import record_matches
from storage.outbox import ClaimedBatch, claim_due, list_alerts, retry_failed
from storage.tables import OutboxRow, RecipientRow, WatchlistRow
from storage.watchlists import active_watchlists, remove_watchlist, save_watchlists
from tests.conftest import Database
from tests.integration.test_address_fold import collect, define, post
from tests.integration.test_outbox import Clock, deliver, make_app
from tests.support.httpserver import LocalHTTPServer
from tests.support.smtpserver import smtp_server

KEEP = "keep@example.org"
GONE = "gone@example.org"


def by_status(app: App) -> dict[str, Counter[int]]:
    """status -> Counter of recipient ids."""
    out: dict[str, Counter[int]] = {}
    with app.session() as s:
        for status, rid in s.execute(select(OutboxRow.status, OutboxRow.recipient_id)):
            out.setdefault(status, Counter())[rid] += 1
    return out


def recipient_id(app: App, target: str, watchlist: str | None = None) -> int:
    with app.session() as s:
        found = [
            rid
            for a in active_watchlists(s)
            for rid, r in a.recipient_ids
            if r.target == target and watchlist in (None, a.watchlist.name)
        ]
    assert len(found) == 1, found
    return found[0]


def watchlist(
    name: str, notify: Sequence[Recipient], stories: str = "each", **kw: str
) -> Watchlist:
    return Watchlist(name=name, rules=(Term(name),), notify=tuple(notify), stories=stories, **kw)  # type: ignore[arg-type]


def reimport(app: App, *specs: tuple[str, str, Sequence[Recipient]]) -> int:
    """`watchlist import` of an edited file: what the CLI calls, in one transaction."""
    with app.session() as s:
        return save_watchlists(s, [watchlist(n, r, m) for n, m, r in specs], app.now())


def cancelled_reasons(app: App) -> Counter[tuple[str, str]]:
    with app.session() as s:
        return Counter((a.target, a.last_error or "") for a in list_alerts(s, status="cancelled"))


# Several payloads per class: the removed recipient on each channel, next to
# a kept one on the same channel.
CHANNELS = ["email", "slack", "webhook"]


def _recipients(channel: str, http_server: LocalHTTPServer) -> tuple[Recipient, Recipient]:
    if channel == "email":
        return Recipient("email", KEEP), Recipient("email", GONE)
    if channel == "slack":
        return (
            Recipient("slack", http_server.url("/services/T/B/KEEP")),
            Recipient("slack", http_server.url("/services/T/B/GONE")),
        )
    return (
        Recipient("webhook", http_server.url("/keep"), "s3cret"),
        Recipient("webhook", http_server.url("/gone"), "s3cret"),
    )


@pytest.mark.parametrize("channel", CHANNELS)
def test_removed_recipient_receives_nothing_the_other_everything(
    db: Database, http_server: LocalHTTPServer, channel: str
) -> None:
    keep, gone = _recipients(channel, http_server)
    hooks = {p: collect(http_server, p) for p in ("/services/T/B/KEEP", "/services/T/B/GONE")}
    hooks |= {p: collect(http_server, p) for p in ("/keep", "/gone")}
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        define(app, ("air-defence", "each", [keep, gone]))
        for n in range(3):
            post(app, "isw", n, ["air-defence"])
        gone_id = recipient_id(app, gone.target)
        assert by_status(app)["pending"][gone_id] == 3
        assert reimport(app, ("air-defence", "each", [keep])) == 3
        report = deliver(app)
    assert report.sent == 3
    got = by_status(app)
    assert got["cancelled"] == Counter({gone_id: 3}) and "pending" not in got
    assert sum(got["sent"].values()) == 3 and gone_id not in got["sent"]
    assert cancelled_reasons(app) == Counter({(gone.target, RECIPIENT_REMOVED): 3})
    with app.store.transaction() as tx:  # what /metrics' newswatch_outbox_backlog reports
        backlog = tx.backlog(now=app.now())
    assert (backlog.cancelled, backlog.sent, backlog.pending) == (3, 3, 0)
    if channel == "email":
        assert [m.rcpt_tos for m in smtp.messages] == [[KEEP]] * 3
    else:
        keep_path = "/services/T/B/KEEP" if channel == "slack" else "/keep"
        gone_path = "/services/T/B/GONE" if channel == "slack" else "/gone"
        assert len(hooks[keep_path]) == 3 and hooks[gone_path] == []
        assert smtp.messages == []


def test_sent_rows_stay_and_readding_does_not_realert(db: Database) -> None:
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        both = [Recipient("email", KEEP), Recipient("email", GONE)]
        define(app, ("air-defence", "each", both))
        post(app, "isw", 1, ["air-defence"])
        assert deliver(app).sent == 2
        post(app, "isw", 2, ["air-defence"])
        gone_id = recipient_id(app, GONE)
        assert reimport(app, ("air-defence", "each", both[:1])) == 1
        assert deliver(app).sent == 1
        # Back in the file: what was cancelled stays cancelled (not owed twice).
        assert reimport(app, ("air-defence", "each", both)) == 0
        assert deliver(app).sent == 0
    got = by_status(app)
    assert got["sent"][gone_id] == 1 and got["cancelled"] == Counter({gone_id: 1})
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == [GONE, KEEP, KEEP]


@pytest.mark.parametrize("stories", ["each", "fold"])
def test_shared_address_still_gets_the_other_watchlists_message(
    db: Database, http_server: LocalHTTPServer, stories: str
) -> None:
    """Two watchlists name one address, so their alerts of one item go as one
    message. Removing the address from one watchlist cancels that row only;
    the other watchlist's alert still goes, naming only it."""
    hooks = collect(http_server, "/hook")
    hook = Recipient("webhook", http_server.url("/hook"))
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        a = ("air-defence", stories, [Recipient("email", KEEP), hook])
        b = ("brics", stories, [Recipient("email", KEEP), hook])
        define(app, a, b)
        post(app, "isw", 1, ["air-defence", "brics"], title="Pantsir at the BRICS summit")
        post(app, "isw", 2, ["air-defence", "brics"], title="Second")
        assert reimport(app, ("air-defence", stories, [Recipient("email", "other@example.org")]))
        report = deliver(app)
    assert report.sent == 4  # brics: 2 items x 2 addresses
    subjects = sorted(str(m.message["Subject"]) for m in smtp.messages)
    assert len(subjects) == 2 and all(s.startswith("[newswatch] brics: ") for s in subjects)
    assert all("air-defence" not in s for s in subjects)
    assert len(hooks) == 2 and all(h["watchlist"] == "brics" for h in hooks)
    assert all("matches" not in h for h in hooks)  # one match each: not a group
    with app.session() as s:
        rows = list(s.scalars(select(OutboxRow).order_by(OutboxRow.id)))
    assert Counter(r.status for r in rows) == Counter({"sent": 4, "cancelled": 4})
    assert all(r.folded_into is None for r in rows)


def test_shared_address_digest_keeps_the_other_watchlist(db: Database) -> None:
    clock = Clock()
    with smtp_server() as (smtp, url):
        app = make_app(db, clock, smtp=url)
        define(
            app,
            ("air-defence", "each", [Recipient("email", KEEP)]),
            ("brics", "each", [Recipient("email", KEEP)]),
            digest="hourly",
        )
        post(app, "isw", 1, ["air-defence", "brics"])
        post(app, "isw", 2, ["air-defence", "brics"])
        with app.session() as s:
            assert (
                save_watchlists(s, [watchlist("air-defence", [], digest="hourly")], app.now()) == 2
            )
        clock.advance(hours=1)
        assert deliver(app).sent == 2
    assert len(smtp.messages) == 1
    msg = smtp.messages[0].message
    assert str(msg["Subject"]).startswith("[newswatch] brics: 2 new matches")
    body = msg.get_body(("plain",))
    assert body is not None and "air-defence" not in body.get_content()


def test_removed_watchlist_alerts_are_cancelled_the_others_go(
    db: Database, http_server: LocalHTTPServer
) -> None:
    slack = collect(http_server, "/services/T/B/X")
    shared = Recipient("slack", http_server.url("/services/T/B/X"))
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        define(
            app,
            ("air-defence", "each", [Recipient("email", GONE), shared]),
            ("brics", "each", [Recipient("email", KEEP), shared]),
        )
        post(app, "isw", 1, ["air-defence"])
        assert deliver(app).sent == 2  # history: stays sent
        post(app, "isw", 2, ["air-defence", "brics"])
        post(app, "isw", 3, ["air-defence"])
        with app.session() as s:
            assert remove_watchlist(s, "air-defence", app.now()) == 4
        report = deliver(app)
    assert report.sent == 2
    assert [m.rcpt_tos for m in smtp.messages] == [[GONE], [KEEP]]
    assert len(slack) == 2 and slack[1]["text"].find("air-defence") == -1
    with app.session() as s:
        cancelled = list_alerts(s, status="cancelled")
    assert {(a.watchlist, a.last_error) for a in cancelled} == {("air-defence", WATCHLIST_REMOVED)}
    assert len(cancelled) == 4


def test_retry_pending_and_failed_rows_are_cancelled(db: Database) -> None:
    clock = Clock()
    with smtp_server(fail_first=1, reject={"bounce@example.org"}) as (smtp, url):
        app = make_app(db, clock, smtp=url)
        define(
            app,
            (
                "air-defence",
                "each",
                [Recipient("email", GONE), Recipient("email", "bounce@example.org")],
            ),
        )
        post(app, "isw", 1, ["air-defence"])
        first = deliver(app)
        assert first.retried == 1 and first.failed == 1
        gone_id = recipient_id(app, GONE)
        with app.session() as s:
            waiting = s.scalar(select(OutboxRow).where(OutboxRow.recipient_id == gone_id))
            assert waiting is not None and waiting.status == "pending" and waiting.attempts == 1
        keep = [Recipient("email", KEEP)]
        assert reimport(app, ("air-defence", "each", keep)) == 2  # the retry and the failed one
        clock.advance(hours=7)  # past every backoff
        assert deliver(app).handled == 0
        with app.session() as s:
            assert retry_failed(s, now=clock.at) == 0  # nothing revived
        assert deliver(app).handled == 0
    assert smtp.messages == []
    assert by_status(app) == {"cancelled": Counter({gone_id: 1, gone_id + 1: 1})}


def test_a_crawl_with_stale_watchlists_cannot_queue_for_a_removed_recipient(
    db: Database,
) -> None:
    """A crawl that loaded its watchlists before the import commits rows for
    the removed recipient after it: the next claim cancels them."""
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        define(app, ("air-defence", "each", [Recipient("email", KEEP), Recipient("email", GONE)]))
        post(app, "isw", 1, ["air-defence"], title="before")
        with app.session() as s:
            stale = active_watchlists(s)  # the crawl's copy
        assert reimport(app, ("air-defence", "each", [Recipient("email", KEEP)])) == 1
        item_id, _ = post(app, "isw", 2, [], title="after")
        with app.session() as s:
            hit = Hit("air-defence", "air-defence", "body", 0, 1)
            match = WatchlistMatch("air-defence", ("air-defence",), (hit,), ("…",))
            record_matches(s, item_id, [(stale[0], match)], app.now())
        assert by_status(app)["pending"][recipient_id(app, KEEP)] == 2
        assert deliver(app).sent == 2
    assert [m.rcpt_tos for m in smtp.messages] == [[KEEP], [KEEP]]
    assert cancelled_reasons(app) == Counter({(GONE, RECIPIENT_REMOVED): 2})


def test_rows_left_by_an_older_version_are_cancelled_at_claim(db: Database) -> None:
    """Before this change a removal left the rows pending (or failed): the
    first claim (or `alerts retry`) after the upgrade cancels them."""
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        define(
            app,
            ("air-defence", "each", [Recipient("email", KEEP), Recipient("email", GONE)]),
            ("brics", "each", [Recipient("email", "b@example.org")]),
        )
        post(app, "isw", 1, ["air-defence", "brics"])
        post(app, "isw", 2, ["air-defence"])
        gone_id = recipient_id(app, GONE)
        b_id = recipient_id(app, "b@example.org")
        with app.session() as s:  # what the old code did, and nothing more
            s.execute(update(RecipientRow).where(RecipientRow.id == gone_id).values(active=False))
            s.execute(
                update(OutboxRow)
                .where(OutboxRow.recipient_id == gone_id, OutboxRow.item_id == 1)
                .values(status="failed", last_error="550 no")
            )
            s.execute(
                update(WatchlistRow)
                .where(WatchlistRow.name == "brics")
                .values(removed_at=app.now())
            )
        with app.session() as s:
            assert retry_failed(s, now=app.now()) == 0
        assert deliver(app).sent == 2
    assert [m.rcpt_tos for m in smtp.messages] == [[KEEP], [KEEP]]
    assert cancelled_reasons(app) == Counter(
        {(GONE, RECIPIENT_REMOVED): 2, ("b@example.org", WATCHLIST_REMOVED): 1}
    )
    assert by_status(app)["cancelled"][b_id] == 1


def test_no_claim_between_the_import_reconciliation_and_its_commit(db: Database) -> None:
    """The import holds the claim's lock (PostgreSQL: the advisory lock;
    SQLite: the write lock) from its reconciliation to its commit: a claim
    started meanwhile waits, then sees the rows cancelled."""
    app = make_app(db, Clock(), smtp="smtp://127.0.0.1:9")
    define(app, ("air-defence", "each", [Recipient("email", KEEP), Recipient("email", GONE)]))
    post(app, "isw", 1, ["air-defence"])
    gone_id = recipient_id(app, GONE)
    claimed: list[ClaimedBatch] = []
    errors: list[BaseException] = []
    importing = db.session()
    try:
        keep = watchlist("air-defence", [Recipient("email", KEEP)])
        assert save_watchlists(importing, [keep], app.now()) == 1  # reconciled, not committed

        def claim() -> None:
            try:
                with db.session() as s, s.begin():
                    got = claim_due(
                        s, now=app.now(), owner="t/1", lease=timedelta(minutes=10), limit=10
                    )
                    claimed.extend(got)
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        t = threading.Thread(target=claim)
        t.start()
        time.sleep(0.5)
        assert t.is_alive()  # waiting for the import
        importing.commit()
    finally:
        importing.close()
    t.join(30)
    assert not errors
    ids = [a.id for b in claimed for a in b.alerts]
    assert len(ids) == 1 and [b.recipient.target for b in claimed] == [KEEP]
    assert by_status(app)["cancelled"] == Counter({gone_id: 1})


def test_a_row_committed_during_the_claim_is_not_handed_out(pg_db: Database) -> None:
    """PostgreSQL reads each statement's own snapshot: a crawl with stale
    watchlists that commits a row for a removed recipient after the claim's
    first sweep and before its pick must not have that row delivered (the
    claim sweeps again among the rows it took)."""
    from sqlalchemy import event

    app = make_app(pg_db, Clock(), smtp="smtp://127.0.0.1:9")
    define(app, ("air-defence", "each", [Recipient("email", KEEP), Recipient("email", GONE)]))
    item_id, _ = post(app, "isw", 1, [], title="late")
    with app.session() as s:
        stale = active_watchlists(s)
    assert reimport(app, ("air-defence", "each", [Recipient("email", KEEP)])) == 0
    hit = Hit("air-defence", "air-defence", "body", 0, 1)
    match = WatchlistMatch("air-defence", ("air-defence",), (hit,), ("…",))
    crawled: list[str] = []

    def crawl_commits(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not crawled and statement.lstrip().startswith("UPDATE outbox"):
            crawled.append(statement)  # the claim's first sweep just ran
            with pg_db.session() as s, s.begin():
                record_matches(s, item_id, [(stale[0], match)], app.now())

    with pg_db.session() as s, s.begin():
        event.listen(s.connection(), "after_cursor_execute", crawl_commits)
        got = claim_due(s, now=app.now(), owner="t/2", lease=timedelta(minutes=10), limit=10)
    assert crawled and "last_error=CASE" in crawled[0]  # it was the sweep
    assert [b.recipient.target for b in got] == [KEEP]
    assert cancelled_reasons(app) == Counter({(GONE, RECIPIENT_REMOVED): 1})
