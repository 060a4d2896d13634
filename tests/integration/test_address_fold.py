"""One message per address and item (or folded story) across watchlists
(issue #17 part 2, storage.alert_groups), on SQLite and PostgreSQL: real
outbox rows, the real deliver use-case, aiosmtpd for email, a local HTTP
server for webhooks and the Slack stand-in.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import timedelta
from itertools import count
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from alerts.alert_records import Hit, Recipient, Term, Watchlist, WatchlistMatch
from crawler.crawl_records import Item
from newswatch.app import App
from storage.items import store_items
from storage.matches import record_matches
from storage.outbox import claim_due, list_alerts, mark_sent
from storage.stories import assign_story
from storage.tables import OutboxRow
from storage.watchlists import active_watchlists, save_watchlists
from tests.conftest import Database
from tests.integration.test_outbox import T0, Clock, deliver, make_app
from tests.support.httpserver import LocalHTTPServer, Request
from tests.support.smtpserver import smtp_server
from tests.support.sources import feed_source_id

EMAIL = "analyst@example.org"
WINDOW = timedelta(hours=72)


def define(app: App, *specs: tuple[str, str, Sequence[Recipient]], digest: str = "none") -> None:
    """(name, stories, recipients) per watchlist; each matches its own name as a term."""
    with app.session() as s:
        save_watchlists(
            s,
            [
                Watchlist(
                    name=name,
                    rules=(Term(name),),
                    notify=tuple(notify),
                    stories=mode,  # type: ignore[arg-type]
                    digest=digest,  # type: ignore[arg-type]
                )
                for name, mode, notify in specs
            ],
            app.now(),
        )


def post(
    app: App,
    source: str,
    n: int,
    matching: Sequence[str],
    *,
    story: int | None = None,
    title: str = "",
) -> tuple[int, int]:
    """Store one item, assign it to `story` (None: a new one), record its
    matches with the watchlists named in `matching`, as the crawl does.
    Returns (item id, story id)."""
    with app.session() as s:
        sid = feed_source_id(s, source, app.now())
        url = f"https://{source}.example/a/{n}"
        it = Item(
            url=url,
            guid=url,
            title=title or f"story {n} ({source})",
            summary="",
            text=" ".join(matching),
            published=T0,
            language="en",
            content_hash=f"h{source}{n}",
        )
        item_id = store_items(s, sid, [it], app.now())[url]
        got = assign_story(s, item_id, lambda _i, _c: story, window=WINDOW, now=app.now())
        record(app, item_id, matching, s)
        return item_id, got.story_id


def record(app: App, item_id: int, matching: Sequence[str], s: Any = None) -> None:
    def run(session: Any) -> None:
        found = [
            (
                a,
                WatchlistMatch(
                    a.watchlist.name,
                    (a.watchlist.name,),
                    (Hit(a.watchlist.name, a.watchlist.name, "body", 0, 1),),
                    (f"… {a.watchlist.name} …",),
                ),
            )
            for a in active_watchlists(session)
            if a.watchlist.name in matching
        ]
        record_matches(session, item_id, found, app.now())

    if s is not None:
        run(s)
    else:
        with app.session() as session:
            run(session)


def collect(http_server: LocalHTTPServer, path: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []

    def handle(req: Request) -> tuple[int, dict[str, str], bytes]:
        bodies.append(json.loads(req.body))
        return 200, {}, b"ok"

    http_server.route(path, handle)
    return bodies


def statuses(app: App) -> Counter[str]:
    with app.session() as s:
        return Counter(s.scalars(select(OutboxRow.status)))


def test_two_watchlists_one_address_get_one_message_naming_both(
    db: Database, http_server: LocalHTTPServer
) -> None:
    hooks = collect(http_server, "/hook")
    slack = collect(http_server, "/services/T/B/X")
    notify = [
        Recipient("email", EMAIL),
        Recipient("webhook", http_server.url("/hook")),
        Recipient("slack", http_server.url("/services/T/B/X")),
    ]
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        # The same address spelled with another domain case is the same mailbox.
        define(
            app,
            ("air-defence", "each", notify),
            ("brics", "each", [Recipient("email", "analyst@EXAMPLE.org"), *notify[1:]]),
        )
        post(app, "isw", 1, ["air-defence", "brics"], title="Pantsir at the BRICS summit")
        report = deliver(app)
        assert report.sent == 6  # rows: 2 watchlists x 3 addresses
    assert len(smtp.messages) == 1 and len(hooks) == 1 and len(slack) == 1
    msg = smtp.messages[0].message
    assert msg["Subject"] == "[newswatch] air-defence, brics: Pantsir at the BRICS summit"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Matched terms: air-defence: air-defence; brics: brics" in text
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "air-defence, brics" in html
    assert msg["Message-ID"].startswith("<newswatch.alert.")
    body = hooks[0]
    assert body["watchlist"] == "air-defence"  # the old single-watchlist fields still there
    assert body["terms"] == ["air-defence"]
    assert body["watchlists"] == ["air-defence", "brics"]
    assert [m["watchlist"] for m in body["matches"]] == ["air-defence", "brics"]
    assert [m["terms"] for m in body["matches"]] == [["air-defence"], ["brics"]]
    assert "air-defence, brics" in slack[0]["text"]
    assert statuses(app) == Counter(sent=6)


def test_one_watchlist_alone_is_unchanged(db: Database, http_server: LocalHTTPServer) -> None:
    hooks = collect(http_server, "/hook")
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        notify = [Recipient("email", EMAIL), Recipient("webhook", http_server.url("/hook"))]
        define(app, ("air-defence", "each", notify), ("brics", "each", notify))
        item, _ = post(app, "isw", 1, ["air-defence"], title="Pantsir seen")
        assert deliver(app).sent == 2
    msg = smtp.messages[0].message
    assert msg["Subject"] == "[newswatch] air-defence: Pantsir seen"
    with app.session() as s:
        row = s.scalars(select(OutboxRow).where(OutboxRow.item_id == item)).first()
        assert row is not None
        wl, rcpt = row.watchlist_id, row.recipient_id
    assert msg["Message-ID"] == f"<newswatch.alert.{item}.{wl}.{rcpt}@example.org>"
    assert "matches" not in hooks[0] and hooks[0]["watchlists"] == ["air-defence"]


def test_different_addresses_are_not_grouped(db: Database, http_server: LocalHTTPServer) -> None:
    """Same URL with another secret, or another URL: separate messages."""
    a, b = collect(http_server, "/a"), collect(http_server, "/b")
    app = make_app(db, Clock())
    define(
        app,
        ("one", "each", [Recipient("webhook", http_server.url("/a"))]),
        ("two", "each", [Recipient("webhook", http_server.url("/a"), secret="s2")]),
        ("three", "each", [Recipient("webhook", http_server.url("/b"))]),
    )
    post(app, "isw", 1, ["one", "two", "three"])
    assert deliver(app).sent == 3
    assert sorted(x["watchlists"][0] for x in a) == ["one", "two"] and len(b) == 1


def test_fold_two_sources_of_one_story_one_message(
    db: Database, http_server: LocalHTTPServer
) -> None:
    hooks = collect(http_server, "/hook")
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        notify = [Recipient("email", EMAIL), Recipient("webhook", http_server.url("/hook"))]
        define(app, ("air-defence", "fold", notify), ("brics", "fold", notify))
        # isw's item matches one watchlist, yonhap's (same story) the other and both.
        _, story = post(app, "isw", 1, ["air-defence"])
        post(app, "yonhap", 2, ["air-defence", "brics"], story=story)
        report = deliver(app)
        assert report.sent == 4  # (story, watchlist, recipient): 2 x 2
    assert len(smtp.messages) == 1 and len(hooks) == 1
    assert hooks[0]["watchlists"] == ["air-defence", "brics"]
    assert [m["item"]["source"] for m in hooks[0]["matches"]] == ["isw", "yonhap"]
    assert hooks[0]["item"]["source"] == "isw"  # the story's first alerting item leads
    text = smtp.messages[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "matched 2 items of one story" in text


def test_a_late_row_after_the_message_sends_nothing_more(
    db: Database, http_server: LocalHTTPServer
) -> None:
    """A watchlist imported later and backfilled, or a folded story's later item
    matching another watchlist: the address has the message already."""
    hooks = collect(http_server, "/hook")
    app = make_app(db, Clock())
    notify = [Recipient("webhook", http_server.url("/hook"))]
    define(app, ("air-defence", "fold", notify), ("brics", "fold", notify))
    item, story = post(app, "isw", 1, ["air-defence"])
    assert deliver(app).sent == 1
    record(app, item, ["brics"])  # the same item, another watchlist (a backfill)
    post(app, "tass", 2, ["brics"], story=story)  # already blocked by brics' fold key
    assert deliver(app).handled == 0
    assert len(hooks) == 1
    with app.session() as s:
        rows = s.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
        assert [(r.status, r.folded_into) for r in rows] == [("sent", None), ("sent", rows[0].id)]
        listed = {a.id: a.folded_into for a in list_alerts(s)}  # `alerts --json`: "sent_with"
        assert listed == {rows[0].id: None, rows[1].id: rows[0].id}


def test_a_row_arriving_while_its_group_is_in_flight_waits_then_folds(
    db: Database, http_server: LocalHTTPServer
) -> None:
    hooks = collect(http_server, "/hook")
    clock = Clock()
    app = make_app(db, clock)
    notify = [Recipient("webhook", http_server.url("/hook"))]
    define(app, ("air-defence", "each", notify), ("brics", "each", notify))
    item, _ = post(app, "isw", 1, ["air-defence"])
    with app.session() as s:  # another deliverer holds the first alert (sending it)
        (held,) = claim_due(s, now=clock(), owner="other/1", lease=timedelta(minutes=10), limit=9)
    record(app, item, ["brics"])
    assert deliver(app).handled == 0 and hooks == []  # waits: no second message
    with app.session() as s:
        assert mark_sent(s, held.ids, owner="other/1", now=clock()) == 1
    assert deliver(app).handled == 0 and hooks == []
    assert statuses(app) == Counter(sent=2)


def test_a_waiting_row_takes_no_claim_slot(db: Database, http_server: LocalHTTPServer) -> None:
    """With `limit=1`, a row that must wait for its group does not keep a
    newer, unrelated alert of the same address from going out."""
    hooks = collect(http_server, "/hook")
    clock = Clock()
    app = make_app(db, clock)
    notify = [Recipient("webhook", http_server.url("/hook"))]
    define(app, ("air-defence", "each", notify), ("brics", "each", notify))
    item, _ = post(app, "isw", 1, ["air-defence"])
    with app.session() as s:
        claim_due(s, now=clock(), owner="other/1", lease=timedelta(minutes=10), limit=9)
    record(app, item, ["brics"])  # waits for the held one
    clock.advance(seconds=1)
    post(app, "isw", 2, ["brics"], title="unrelated")
    assert deliver(app, limit=1).sent == 1
    assert [h["item"]["title"] for h in hooks] == ["unrelated"]


def test_a_group_retries_and_fails_together(db: Database, http_server: LocalHTTPServer) -> None:
    calls: list[bytes] = []

    def refuse(req: Request) -> tuple[int, dict[str, str], bytes]:
        calls.append(req.body)
        return 503, {}, b"busy"

    http_server.route("/hook", refuse)
    clock = Clock()
    app = make_app(db, clock, max_attempts=2)
    notify = [Recipient("webhook", http_server.url("/hook"))]
    define(app, ("air-defence", "each", notify), ("brics", "each", notify))
    post(app, "isw", 1, ["air-defence", "brics"])
    assert deliver(app).retried == 2 and len(calls) == 1
    clock.advance(hours=1)
    assert deliver(app).failed == 2 and len(calls) == 2
    assert statuses(app) == Counter(failed=2)


def test_digests_of_two_watchlists_to_one_address_are_one_per_period(
    db: Database, http_server: LocalHTTPServer
) -> None:
    hooks = collect(http_server, "/hook")
    other = collect(http_server, "/other")
    clock = Clock()
    with smtp_server() as (smtp, url):
        app = make_app(db, clock, smtp=url)
        notify = [Recipient("email", EMAIL), Recipient("webhook", http_server.url("/hook"))]
        define(
            app,
            ("air-defence", "each", notify),
            ("brics", "each", [*notify, Recipient("webhook", http_server.url("/other"))]),
            digest="hourly",
        )
        post(app, "isw", 1, ["air-defence", "brics"], title="Pantsir at BRICS")
        post(app, "isw", 2, ["brics"], title="BRICS summit opens")
        assert deliver(app).handled == 0  # not before the end of the hour
        clock.at = T0.replace(hour=3, minute=0, second=1)
        assert deliver(app).sent == 3 + 3 + 2  # rows: email 3, /hook 3, /other 2
    assert len(smtp.messages) == 1 and len(hooks) == 1 and len(other) == 1
    msg = smtp.messages[0].message
    assert msg["Subject"].startswith("[newswatch] air-defence, brics: 2 new matches")
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    lines = [line.strip() for line in text.splitlines()]
    assert lines.count("Pantsir at BRICS") == 1  # the item once, both watchlists named
    assert lines.count("Matched terms: air-defence: air-defence; brics: brics") == 1
    assert "Matched terms: brics: brics" in text
    assert hooks[0]["watchlists"] == ["air-defence", "brics"] and hooks[0]["count"] == 3
    assert other[0]["watchlists"] == ["brics"] and other[0]["watchlist"] == "brics"


# ---------------------------------------------------------------- property

_examples = count()


@st.composite
def overlaps(draw: st.DrawFn) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """(addresses each watchlist names, watchlists each item matches at first,
    watchlists each item matches later): indexes into 4 watchlists and 4 addresses."""
    wls = draw(st.lists(st.sets(st.integers(0, 3), max_size=3), min_size=1, max_size=4))
    n = len(wls)
    first = draw(st.lists(st.sets(st.integers(0, n - 1)), min_size=1, max_size=3))
    later = [draw(st.sets(st.integers(0, n - 1))) for _ in first]
    return [sorted(w) for w in wls], [sorted(f) for f in first], [sorted(x) for x in later]


def _settings() -> Any:
    return settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@_settings()
@given(case=overlaps())
def test_one_message_per_address_and_item_whatever_the_overlap(
    db: Database,
    http_server: LocalHTTPServer,
    case: tuple[list[list[int]], list[list[int]], list[list[int]]],
) -> None:
    wls, first, later = case
    ex = next(_examples)
    got: dict[int, list[dict[str, Any]]] = {}  # address index -> bodies (webhooks 0-2)
    for a in range(3):
        got[a] = collect(http_server, f"/p{ex}/{a}")

    def recipient(a: int, smtp_url: str) -> Recipient:
        if a == 3:
            return Recipient("email", f"e{ex}@example.org")
        return Recipient("webhook", http_server.url(f"/p{ex}/{a}"))

    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        names = [f"w{ex}x{i}" for i in range(len(wls))]
        define(
            app,
            *[(names[i], "each", [recipient(a, url) for a in w]) for i, w in enumerate(wls)],
        )
        items = [
            post(app, f"s{ex}", n, [names[i] for i in f], title=f"item {ex}-{n}")[0]
            for n, f in enumerate(first)
        ]
        deliver(app)
        for item, x in zip(items, later, strict=True):
            record(app, item, [names[i] for i in x])
        deliver(app)
        emails = [m.message for m in smtp.messages]

    def owed(item_n: int) -> Iterator[int]:
        for a in range(4):
            if any(a in wls[i] for i in {*first[item_n], *later[item_n]}):
                yield a

    for n in range(len(first)):
        for a in owed(n):
            if a == 3:
                mine = [m for m in emails if m["Subject"].endswith(f": item {ex}-{n}")]
                named = [str(m["Subject"]) for m in mine]
            else:
                mine = [b for b in got[a] if b["item"]["title"] == f"item {ex}-{n}"]
                named = [str(b["watchlists"]) for b in mine]
            assert len(mine) == 1, (a, n, named)
            # The message names every watchlist owed to this address at its send.
            now = [names[i] for i in first[n] if a in wls[i]] or [
                names[i] for i in later[n] if a in wls[i]
            ]
            for name in now:
                assert name in named[0]
    assert statuses(app)["pending"] == 0 and statuses(app)["failed"] == 0
