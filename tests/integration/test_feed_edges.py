"""Feeds that were rejected whole (issue #10, part 3), crawled into both databases.

Each fixture is served by a local server as a feed would be (no charset in
the Content-Type, so the body alone must tell its encoding) and crawled;
every expected item must be stored, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import runpy
from pathlib import Path

import pytest
from sqlalchemy import select

from crawler.crawl_records import PollOutcome
from newswatch.app import build_app
from newswatch.config import Settings
from scheduler.crawl import crawl
from storage import sources as source_repo
from storage.repository import SqlStore
from storage.tables import ItemRow
from tests.conftest import Database
from tests.support.httpserver import LocalHTTPServer

FIXTURES = Path(__file__).parent.parent / "fixtures" / "feeds"
EDGE_CASES = [
    "doctype-in-comment.xml",
    "doctype-in-cdata.xml",
    "utf16le-nobom.xml",
    "utf16be-nobom.xml",
    "utf32le-nobom.xml",
    "utf32be-nobom.xml",
]


@pytest.mark.parametrize("content_type", ["application/rss+xml", "text/xml; charset=utf-8"])
def test_edge_case_feeds_are_crawled_and_stored(
    db: Database, http_server: LocalHTTPServer, content_type: str
) -> None:
    settings = Settings(database_url=db.url, allow_private_addresses="127.0.0.1", per_host_delay=0)
    app = build_app(settings, env={}, store=SqlStore(db.engine, db.factory))
    with app.session() as s:
        for name in EDGE_CASES:
            url = http_server.serve(f"/{name}", (FIXTURES / name).read_bytes(), content_type)
            source_repo.add_source(
                s, name=name, url=url, kind="feed", every_seconds=900, links_css=None, now=app.now()
            )
    got: dict[str, list[str]] = {}
    report = asyncio.run(
        crawl(
            app.crawl_context(),
            parse_workers=0,
            on_done=lambda src, o: got.update({src.name: _titles(o)}),
        )
    )
    assert report.failed == [] and report.polled == len(EDGE_CASES)
    expected = {name: [i["title"] for i in _expected(name)] for name in EDGE_CASES}
    assert got == expected
    with app.session() as s:
        stored = set(s.scalars(select(ItemRow.url)))
    assert stored == {i["url"] for name in EDGE_CASES for i in _expected(name)}


def _expected(name: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = runpy.run_path(str(FIXTURES / f"{name}.py"))["ITEMS"]
    return items


def _titles(outcome: PollOutcome) -> list[str]:
    return [item.title for item in outcome.items]
