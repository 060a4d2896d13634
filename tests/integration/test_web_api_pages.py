"""The JSON APIs in pages: at most API_PAGE objects per response, the rest
behind `Link: <…>; rel="next"` (a keyset cursor), on SQLite and PostgreSQL
through a real socket. Old requests (`limit` up to 1,000) keep working."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.render import match_object
from storage.db import transaction
from storage.matches import list_matches
from storage.stories import list_stories
from storage.views import API_PAGE, SqlWebReader
from tests.conftest import Database
from tests.support.webdata import bulk
from tests.support.webserver import ServedApp, fetch
from web.server import WebConfig, create_app

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
STORIES, MATCHES = 620, 1_230
NEXT = re.compile(r'^<(/api/[^>]+)>; rel="next"$')


@pytest.fixture
def site(db: Database) -> Iterator[ServedApp]:
    bulk(db.engine, NOW, items=4_000, matches=MATCHES, sources=20, stories=STORIES)
    served = ServedApp(create_app(SqlWebReader(db.factory), WebConfig(clock=lambda: NOW))).start()
    yield served
    served.stop()


def _walk(site: ServedApp, path: str) -> list[list[Any]]:
    """Every page from `path` on, following the Link headers."""
    pages: list[list[Any]] = []
    while True:
        r = fetch(site.url + path)
        assert r.status == 200, (path, r.body[:200])
        assert r.headers["Content-Type"].startswith("application/json")
        pages.append(json.loads(r.body))
        link = r.headers.get("Link")
        if link is None:
            return pages
        m = NEXT.match(link)
        assert m, link
        path = m.group(1)
        assert len(pages) < 50, "the links must end"


def test_stories_page_by_page_are_the_whole_listing(site: ServedApp, db: Database) -> None:
    with transaction(db.factory) as s:
        want = [v.as_json() for v in list_stories(s, limit=10_000)]
    assert len(want) == STORIES
    for path, size in [("/api/stories?limit=1000", API_PAGE), ("/api/stories?limit=170", 170),
                       ("/api/stories?limit=500", 500), ("/api/stories?limit=1", 1)]:  # fmt: skip
        if size == 1:
            pages = _walk(site, "/api/stories?limit=1&since=2d")
            with transaction(db.factory) as s:
                recent = [v.as_json() for v in list_stories(s, since=_days_ago(2), limit=10_000)]
            assert [o for p in pages for o in p] == recent
            continue
        pages = _walk(site, path)
        assert all(len(p) == size for p in pages[:-1]) and len(pages[-1]) <= size
        assert [o for p in pages for o in p] == want  # no story twice, none left out


def test_old_requests_keep_working(site: ServedApp) -> None:
    """`limit` up to 1,000 is still accepted: a response holds API_PAGE and
    says where the rest is; the default and small limits are unchanged."""
    r = fetch(site.url + "/api/stories?limit=1000")
    assert r.status == 200 and len(json.loads(r.body)) == API_PAGE and "Link" in r.headers
    r = fetch(site.url + "/api/stories")
    assert len(json.loads(r.body)) == 100
    r = fetch(site.url + "/api/matches?limit=1000")
    assert r.status == 200 and len(json.loads(r.body)) == API_PAGE and "Link" in r.headers
    assert fetch(site.url + "/api/matches?limit=1001").status == 400


def _days_ago(n: int) -> datetime:
    return NOW - timedelta(days=n)


@pytest.mark.parametrize(
    "query", ["limit=1000", "limit=333", "watchlist=brics&limit=400", "term=SAM&limit=250",
              "language=ko&since=30d&limit=120"],
)  # fmt: skip
def test_matches_page_by_page_are_the_whole_listing(
    site: ServedApp, db: Database, query: str
) -> None:
    pages = _walk(site, "/api/matches?" + query)
    got = [o for p in pages for o in p]
    if query.startswith("limit=") or query.startswith("watchlist="):
        watchlist = "brics" if "brics" in query else None
        with transaction(db.factory) as s:
            want = [match_object(m) for m in list_matches(s, watchlist=watchlist)]
        assert got == want
    else:
        assert got and all(("SAM" in o["terms"]) == ("term" in query) or "language" in query
                           for o in got)  # fmt: skip
        assert len({json.dumps(o, sort_keys=True) for o in got}) == len(got)


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",
        "1.",
        ".5",
        "1.2.3",
        "1e5.3",
        "%00",
        "999999999999999999.1",
        "%EF%BC%91.%EF%BC%92",
        "-.1",
        "1.-2",
    ],
)  # fmt: skip
@pytest.mark.parametrize("api", ["/api/stories", "/api/matches"])
def test_a_bad_cursor_is_a_400(site: ServedApp, api: str, cursor: str) -> None:
    r = fetch(f"{site.url}{api}?cursor={cursor}")
    assert r.status == 400 and "cursor" in json.loads(r.body)["error"]
