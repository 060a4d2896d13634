"""The first poll of a new (or re-enabled) source is a baseline (issue #17,
part 1), crawled from a real local server into both databases: everything is
stored and matched, only recent dated items alert; later polls alert on
every new item whatever its date."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from sqlalchemy import func, select

from alerts.alert_records import Recipient, Term, Watchlist
from newswatch.app import App, build_app
from newswatch.config import Settings
from scheduler.crawl import crawl
from storage import sources as source_repo
from storage.repository import SqlStore
from storage.source_edits import edit_source
from storage.tables import ItemRow, MatchRow, OutboxRow, WatchlistRow
from storage.watchlists import save_watchlists
from tests.conftest import Database
from tests.support.httpserver import LocalHTTPServer

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FIRST = {
    "/2009": NOW.replace(year=2009),
    "/yesterday": NOW - timedelta(hours=30),
    "/hour-ago": NOW - timedelta(hours=1),
    "/undated": None,
}


def rss(server: LocalHTTPServer, entries: dict[str, datetime | None]) -> str:
    def one(path: str, when: datetime | None) -> str:
        date = f"<pubDate>{format_datetime(when)}</pubDate>" if when else ""
        return (
            f"<item><title>Pantsir seen {path}</title><link>{server.url(path)}</link>"
            f"<description>A Pantsir battery, report {path}.</description>{date}</item>"
        )

    body = "".join(one(p, w) for p, w in entries.items())
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}</channel></rss>'
    )


def setup(db: Database, server: LocalHTTPServer, *, alert_backlog: bool = False) -> App:
    settings = Settings(database_url=db.url, allow_private_addresses="127.0.0.1", per_host_delay=0)
    app = build_app(settings, clock=lambda: NOW, env={}, store=SqlStore(db.engine, db.factory))
    url = server.serve("/feed.xml", rss(server, FIRST))
    with app.session() as s:
        source_repo.add_source(
            s,
            name="wire",
            url=url,
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=NOW,
            alert_backlog=alert_backlog,
        )
        save_watchlists(s, [watchlist("air", "a@example.org")], NOW)
    return app


def watchlist(name: str, address: str) -> Watchlist:
    return Watchlist(name, (Term("Pantsir"),), notify=(Recipient("email", address),))


def run(app: App) -> None:
    report = asyncio.run(crawl(app.crawl_context(), parse_workers=0))
    assert report.failed == []


def state(app: App) -> tuple[set[str], set[str], list[str]]:
    """(stored item paths, matched item paths, alerted item paths)."""
    with app.session() as s:
        items = {i: u.rsplit("/", 1)[1] for i, u in s.execute(select(ItemRow.id, ItemRow.url))}
        matched = {items[i] for i in s.scalars(select(MatchRow.item_id))}
        alerted = sorted(items[i] for i in s.scalars(select(OutboxRow.item_id)))
    return set(items.values()), matched, alerted


ALL = {"2009", "yesterday", "hour-ago", "undated"}


def test_first_poll_alerts_only_recent_dated_items_and_later_polls_alert_all(
    db: Database, http_server: LocalHTTPServer
) -> None:
    app = setup(db, http_server)
    run(app)
    assert state(app) == (ALL, ALL, ["hour-ago"])
    http_server.serve("/feed.xml", rss(http_server, {**FIRST, "/2010": NOW.replace(year=2010)}))
    run(app)
    assert state(app) == (ALL | {"2010"}, ALL | {"2010"}, ["2010", "hour-ago"])


def test_alert_backlog_alerts_on_every_item_of_the_first_poll(
    db: Database, http_server: LocalHTTPServer
) -> None:
    app = setup(db, http_server, alert_backlog=True)
    run(app)
    assert state(app) == (ALL, ALL, sorted(ALL))


def test_a_re_enabled_source_baselines_again(db: Database, http_server: LocalHTTPServer) -> None:
    app = setup(db, http_server)
    run(app)
    with app.session() as s:
        edit_source(s, "wire", now=NOW, enabled=False)
        edit_source(s, "wire", now=NOW, enabled=True)
        assert source_repo.list_sources(s)[0].baseline_pending
    backlog = {"/2011": NOW.replace(year=2011), "/fresh": NOW - timedelta(minutes=5)}
    http_server.serve("/feed.xml", rss(http_server, {**FIRST, **backlog}))
    run(app)
    assert state(app)[2] == ["fresh", "hour-ago"]
    with app.session() as s:
        assert not source_repo.list_sources(s)[0].baseline_pending


def test_a_failed_first_poll_keeps_the_baseline_pending(
    db: Database, http_server: LocalHTTPServer
) -> None:
    app = setup(db, http_server)
    http_server.serve("/feed.xml", "gone", status=500)
    run_report = asyncio.run(crawl(app.crawl_context(), parse_workers=0))
    assert len(run_report.failed) == 1
    http_server.serve("/feed.xml", rss(http_server, FIRST))
    run(app)
    assert state(app)[2] == ["hour-ago"]


def test_a_new_watchlist_matches_only_items_stored_after_it(
    db: Database, http_server: LocalHTTPServer
) -> None:
    """Importing a watchlist does not match what is stored (that is
    `backfill`), so it cannot flood the inbox either."""
    app = setup(db, http_server, alert_backlog=True)
    run(app)
    with app.session() as s:
        save_watchlists(s, [watchlist("late", "b@example.org")], NOW)
    run(app)  # the same feed: nothing new
    assert alerts_by_watchlist(app) == {"air": len(ALL)}
    http_server.serve("/feed.xml", rss(http_server, {**FIRST, "/2012": NOW.replace(year=2012)}))
    run(app)
    assert alerts_by_watchlist(app) == {"air": len(ALL) + 1, "late": 1}


def alerts_by_watchlist(app: App) -> dict[str, int]:
    with app.session() as s:
        rows = s.execute(
            select(WatchlistRow.name, func.count())
            .join(OutboxRow, OutboxRow.watchlist_id == WatchlistRow.id)
            .group_by(WatchlistRow.name)
        )
        return {name: n for name, n in rows}
