"""`stories: fold | each` and the story lines of alerts, end to end on SQLite
and PostgreSQL: real outbox rows, the real deliver use-case, a local HTTP
server for webhooks and Slack, aiosmtpd for email.

Items are put into stories with storage.stories.assign_story BEFORE their
matches are recorded, the order the crawl keeps (assignment, then matches and
outbox rows, in one transaction).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from alerts.alert_records import Hit, Recipient, Term, Watchlist, WatchlistMatch
from crawler.crawl_records import Item
from newswatch.app import App
from storage.items import store_items
from storage.matches import record_matches
from storage.sources import add_source
from storage.stories import assign_story
from storage.tables import ItemRow, OutboxRow, WatchlistRow
from storage.watchlists import active_watchlists, save_watchlists
from tests.conftest import Database
from tests.integration.test_outbox import T0, Clock, deliver, make_app
from tests.support.httpserver import LocalHTTPServer, Request
from tests.support.smtpserver import smtp_server
from tests.support.sources import feed_source_id

WINDOW = timedelta(hours=72)


def watchlists(app: App, *specs: tuple[str, str, str, Sequence[Recipient]]) -> None:
    """(name, stories, digest, recipients) per watchlist, all matching "SAM"."""
    with app.session() as s:
        save_watchlists(
            s,
            [
                Watchlist(
                    name=name,
                    rules=(Term("SAM"),),
                    notify=tuple(notify),
                    digest=digest,  # type: ignore[arg-type]
                    stories=mode,  # type: ignore[arg-type]
                )
                for name, mode, digest, notify in specs
            ],
            app.now(),
        )


def post(
    app: App,
    source: str,
    n: int,
    *,
    story: int | None,
    title: str = "",
    language: str = "en",
    published: datetime = T0,
    matched: bool = True,
) -> int:
    """Store one item of `source`, put it into `story` (None: a new one), then
    record its matches with every watchlist, as the crawl does. Returns its story."""
    with app.session() as s:
        sid = feed_source_id(s, source, app.now())
        url = f"https://{source}.example/a/{n}"
        it = Item(
            url=url,
            guid=url,
            title=title or f"SAM story {n} ({source})",
            summary="",
            text="surface-to-air missile (SAM)",
            published=published,
            language=language,
            content_hash=f"h{source}{n}",
        )
        item_id = store_items(s, sid, [it], app.now())[url]
        got = assign_story(s, item_id, lambda _i, _c: story, window=WINDOW, now=app.now())
        if matched:
            hit = Hit(rule="SAM", spelling="SAM", field="body", start=0, end=3)
            found = [
                (a, WatchlistMatch(a.watchlist.name, ("SAM",), (hit,), ("… SAM …",)))
                for a in active_watchlists(s)
            ]
            record_matches(s, item_id, found, app.now())
        return got.story_id


def collect(http_server: LocalHTTPServer, path: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []

    def handle(req: Request) -> tuple[int, dict[str, str], bytes]:
        bodies.append(json.loads(req.body))
        return 200, {}, b"ok"

    http_server.route(path, handle)
    return bodies


def alerts_of(app: App, watchlist: str) -> int:
    with app.session() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(OutboxRow)
                .join(WatchlistRow, WatchlistRow.id == OutboxRow.watchlist_id)
                .where(WatchlistRow.name == watchlist)
            )
            or 0
        )


def test_fold_alerts_once_per_story_and_recipient_each_per_item(
    db: Database, http_server: LocalHTTPServer
) -> None:
    app = make_app(db, Clock())
    a, b, c = (collect(http_server, p) for p in ("/a", "/b", "/c"))
    watchlists(
        app,
        (
            "folded",
            "fold",
            "none",
            [Recipient("webhook", http_server.url(p)) for p in ("/a", "/b")],
        ),
        ("every", "each", "none", [Recipient("webhook", http_server.url("/c"))]),
    )
    story = post(app, "isw", 1, story=None)
    post(app, "yonhap", 2, story=story, language="ko", published=T0 + timedelta(hours=1))
    post(app, "tass", 3, story=story, language="ru", published=T0 + timedelta(hours=2))
    assert (alerts_of(app, "folded"), alerts_of(app, "every")) == (2, 3)
    assert deliver(app).sent == 5
    assert len(a) == len(b) == 1 and len(c) == 3
    assert a[0]["item"]["source"] == b[0]["item"]["source"] == "isw"  # the first item alerts
    assert {x["story"] for x in a + b + c} == {story}
    # A re-run of the same items (a re-poll, a second daemon) owes nothing new.
    with app.session() as s:
        found = [(w, WatchlistMatch(w.watchlist.name, ("SAM",), ())) for w in active_watchlists(s)]
        for item_id in s.scalars(select(ItemRow.id)):
            record_matches(s, item_id, found, app.now())
    assert (alerts_of(app, "folded"), alerts_of(app, "every")) == (2, 3)


def test_fold_loses_no_storys_alert(db: Database, http_server: LocalHTTPServer) -> None:
    """Two launches of the same kind a day apart are two stories: each alerts."""
    app = make_app(db, Clock())
    got = collect(http_server, "/hook")
    watchlists(app, ("folded", "fold", "none", [Recipient("webhook", http_server.url("/hook"))]))
    first = post(app, "isw", 1, story=None, title="North Korea fires SAM test")
    post(app, "yonhap", 2, story=first, language="ko", published=T0 + timedelta(minutes=30))
    second = post(app, "isw", 3, story=None, published=T0 + timedelta(days=1))
    post(app, "tass", 4, story=second, language="ru", published=T0 + timedelta(days=1, hours=1))
    assert first != second
    assert deliver(app).sent == 2
    assert sorted(x["story"] for x in got) == sorted([first, second])
    assert [x["item"]["url"] for x in got] == ["https://isw.example/a/1", "https://isw.example/a/3"]


def test_an_item_without_a_story_still_alerts_under_fold(
    db: Database, http_server: LocalHTTPServer
) -> None:
    """The crawl may leave an item unassigned (encoder down): it must alert."""
    app = make_app(db, Clock())
    got = collect(http_server, "/hook")
    watchlists(app, ("folded", "fold", "none", [Recipient("webhook", http_server.url("/hook"))]))
    with app.session() as s:
        src = add_source(
            s,
            name="isw",
            url="https://isw.example/feed",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=app.now(),
        )
        items = [
            Item(f"https://isw.example/u/{n}", f"u{n}", f"SAM {n}", "", "SAM", T0, "en", f"u{n}")
            for n in range(2)
        ]
        ids = store_items(s, src.id, items, app.now())
        hit = Hit(rule="SAM", spelling="SAM", field="body", start=0, end=3)
        for item_id in ids.values():
            found = [(w, WatchlistMatch("folded", ("SAM",), (hit,))) for w in active_watchlists(s)]
            record_matches(s, item_id, found, app.now())
    assert deliver(app).sent == 2
    assert [x["story"] for x in got] == [None, None] and [x["also"] for x in got] == [[], []]


def test_every_channel_names_the_other_outlets_known_at_send_time(
    db: Database, http_server: LocalHTTPServer
) -> None:
    hooks = collect(http_server, "/hook")
    slack = collect(http_server, "/services/T/B/X")
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        watchlists(
            app,
            (
                "folded",
                "fold",
                "none",
                [
                    Recipient("email", "analyst@example.org"),
                    Recipient("slack", http_server.url("/services/T/B/X")),
                    Recipient("webhook", http_server.url("/hook")),
                ],
            ),
        )
        story = post(app, "isw", 1, story=None)
        # Reported after the alert was queued, before it is sent: named anyway.
        post(app, "yonhap", 2, story=story, language="ko", published=T0 + timedelta(hours=1))
        post(app, "tass", 3, story=story, language="ru", matched=False)
        post(app, "isw", 4, story=story, published=T0 + timedelta(hours=3))  # same outlet
        assert deliver(app).sent == 3
    line = "also reported by: tass (ru), yonhap (ko)"  # published order: tass at T0
    assert [(x["source"], x["language"]) for x in hooks[0]["also"]] == [
        ("tass", "ru"),
        ("yonhap", "ko"),
    ]
    assert hooks[0]["also"][1]["url"] == "https://yonhap.example/a/2"
    assert hooks[0]["story"] == story
    assert line in json.dumps(slack[0], ensure_ascii=False)
    msg = smtp.messages[0].message
    assert line in msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert line in msg.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_a_korean_hit_shows_the_english_headline_of_its_story(
    db: Database, http_server: LocalHTTPServer
) -> None:
    hooks = collect(http_server, "/hook")
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        watchlists(
            app,
            (
                "ko-watch",
                "each",
                "none",
                [
                    Recipient("email", "a@example.org"),
                    Recipient("webhook", http_server.url("/hook")),
                ],
            ),
        )
        story = post(app, "yonhap", 1, story=None, title="북한, SAM 발사", language="ko")
        post(app, "isw", 2, story=story, title="North Korea launches SAM", matched=False)
        assert deliver(app).sent == 2
    text = smtp.messages[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "English headline: North Korea launches SAM" in text
    assert "also reported by: isw (en)" in text
    assert hooks[0]["also"][0]["title"] == "North Korea launches SAM"


def test_digests_group_their_items_by_story(db: Database, http_server: LocalHTTPServer) -> None:
    clock = Clock()
    hooks = collect(http_server, "/hook")
    with smtp_server() as (smtp, url):
        app = make_app(db, clock, smtp=url)
        watchlists(
            app,
            (
                "daily",
                "each",
                "hourly",
                [
                    Recipient("email", "a@example.org"),
                    Recipient("webhook", http_server.url("/hook")),
                ],
            ),
        )
        hour = timedelta(minutes=10)
        a = post(app, "isw", 1, story=None, title="Alpha: SAM sale", published=T0)
        b = post(app, "rusi", 2, story=None, title="Beta: SAM test", published=T0 + hour)
        post(app, "tass", 3, story=a, title="Альфа SAM", language="ru", published=T0 + 2 * hour)
        post(app, "yonhap", 4, story=b, title="베타 SAM", language="ko", published=T0 + 3 * hour)
        clock.at = T0.replace(hour=3, minute=0, second=1)
        assert deliver(app).sent == 8
    text = smtp.messages[0].message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    lines = [line.strip() for line in text.splitlines()]
    heads = [line for line in lines if line.startswith("== ")]
    assert heads == ["== story: Beta: SAM test ==", "== story: Alpha: SAM sale =="]
    at = lines.index
    assert at(heads[0]) < at("베타 SAM") < at("Beta: SAM test") < at(heads[1])
    assert at(heads[1]) < at("Альфа SAM") < at("Alpha: SAM sale")
    got = [(m["item"]["source"], m["story"]) for m in hooks[0]["matches"]]
    assert got == [("yonhap", b), ("tass", a), ("rusi", b), ("isw", a)]  # newest first
