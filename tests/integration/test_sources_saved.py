"""Sitemap and spider polls saved through the one save path, on both databases.

Until storage keeps a sitemap source's url → version map (see
docs/notes/sources-beyond-feeds.md), the test carries it between polls as
the scheduler will. Items are stored once and alerted once either way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from alerts.alert_records import Recipient, Term, Watchlist
from crawler.addresses import AddressPolicy
from crawler.crawl_records import PollOutcome, Source
from crawler.fetch import FetchPolicy, HttpClient
from crawler.poll import poll_source
from crawler.spiders import SpiderLimits
from newswatch.app import App, build_app
from newswatch.config import Settings
from scheduler.compiled_watchlists import load_watchlists
from scheduler.crawl import save_outcome
from storage.repository import SqlStore
from storage.sources import add_source
from storage.tables import ItemRow, MatchRow, OutboxRow
from storage.watchlists import save_watchlists
from tests.conftest import Database
from tests.support.httpserver import LocalHTTPServer
from tests.support.thinktank import PUBLICATIONS, gz, serve_site, sitemap_index, urlset

ROOT = Path(__file__).parent.parent.parent
NOW = datetime(2025, 7, 10, tzinfo=UTC)
POLICY = FetchPolicy(
    timeout=5.0,
    address_policy=AddressPolicy(allowed=(ipaddress.ip_network("127.0.0.1/32"),)),
    per_host_delay=0.0,
    per_host_concurrency=4,
)


@pytest.fixture(scope="module")
def site() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer().start()
    serve_site(server)
    server.serve("/news.xml", urlset(server, PUBLICATIONS[:2], news=True))
    server.serve(
        "/older.xml.gz", gz(urlset(server, PUBLICATIONS[2:], news=False)), "application/gzip"
    )
    server.serve(
        "/sitemap_index.xml",
        sitemap_index(
            [(server.url("/news.xml"), "2025-07-08"), (server.url("/older.xml.gz"), None)]
        ),
    )
    yield server
    server.stop()


def app_for(db: Database) -> App:
    return build_app(
        Settings(database_url=db.url),
        clock=lambda: NOW,
        env={},
        store=SqlStore(db.engine, db.factory),
    )


def add(app: App, name: str, kind: str, url: str, spider: str | None = None) -> Source:
    with app.session() as s:
        source = add_source(
            s,
            name=name,
            url=url,
            kind=kind,
            every_seconds=900,
            links_css=None,
            now=NOW,  # type: ignore[arg-type]
            alert_backlog=True,  # dated 2025: a baseline would alert on none
        )
        save_watchlists(
            s,
            [
                Watchlist(
                    "air-defence",
                    (Term("Pantsir"), Term("S-400")),
                    notify=(Recipient("email", "analyst@example.org"),),
                )
            ],
            NOW,
        )
    return Source(**{**{n: getattr(source, n) for n in Source.__slots__}, "spider": spider})


def poll(source: Source, seen: dict[str, datetime | None]) -> PollOutcome:
    async def go() -> PollOutcome:
        async with HttpClient(POLICY) as client:
            return await poll_source(
                source,
                client,
                now=NOW,
                seen_versions=seen,
                spider_limits=SpiderLimits(run_seconds=30.0),
            )

    return asyncio.run(go())


def counts(db: Database) -> tuple[int, int, int]:
    with db.session() as s:
        return tuple(  # type: ignore[return-value]
            s.scalar(select(func.count()).select_from(t)) or 0
            for t in (ItemRow, MatchRow, OutboxRow)
        )


def save(app: App, source: Source, outcome: PollOutcome) -> tuple[int, int]:
    ctx = app.crawl_context()
    return save_outcome(ctx, source, outcome, load_watchlists(app.store, "aho"), random.Random(1))


def test_sitemap_polled_twice_stores_and_alerts_once(db: Database, site: LocalHTTPServer) -> None:
    app = app_for(db)
    source = add(app, "institute-sitemap", "sitemap", site.url("/sitemap_index.xml"))
    first = poll(source, {})
    assert save(app, source, first) == (len(PUBLICATIONS), 2)
    seen = dict(first.seen_versions)
    second = poll(source, seen)
    assert second.items == () and save(app, source, second) == (0, 0)
    assert counts(db) == (len(PUBLICATIONS), 2, 2)


@pytest.mark.slow
def test_spider_run_twice_stores_and_alerts_once(db: Database, site: LocalHTTPServer) -> None:
    app = app_for(db)
    spec = f"{ROOT}/examples/spiders/thinktank.py:PublicationsSpider"
    source = add(app, "institute-pubs", "spider", site.url("/publications"), spec)
    for expected in ((len(PUBLICATIONS), 2), (0, 0)):
        outcome = poll(source, {})
        assert outcome.status == "ok", outcome.error
        assert save(app, source, outcome) == expected
    assert counts(db) == (len(PUBLICATIONS), 2, 2)
