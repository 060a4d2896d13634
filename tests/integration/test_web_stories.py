"""The web view grouped by story (issue #13 with stories), on SQLite and
PostgreSQL through a real socket. Stories are assigned through
`storage.stories.assign_story`, as the crawl assigns them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from storage.db import transaction
from storage.source_edits import set_tags
from storage.stories import list_stories
from storage.tables import ItemRow
from storage.views import SqlWebReader
from tests.conftest import Database
from tests.support.webdata import HOSTILE_TITLES, STORY_OF, Scenario, assign_stories, scenario
from tests.support.webserver import ServedApp, fetch
from web.server import WebConfig, create_app

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
GROUP = re.compile(r'<li class="group">.*?</li>', re.S)


@pytest.fixture
def world(db: Database) -> Scenario:
    return scenario(db.engine, NOW, stories=True)


@pytest.fixture
def site(db: Database, world: Scenario) -> Iterator[ServedApp]:
    served = ServedApp(create_app(SqlWebReader(db.factory), WebConfig(clock=lambda: NOW))).start()
    yield served
    served.stop()


def _rows(body: str) -> list[str]:
    return GROUP.findall(_plain(body))


def _plain(body: str) -> str:
    """The page without the `<bdi>` wrappers every feed string gets."""
    return body.replace("<bdi>", "").replace("</bdi>", "")


def _sid(world: Scenario, label: str) -> int:
    assert world.stories is not None
    return world.stories[label]


def test_one_row_per_story_with_every_outlet_and_language(site: ServedApp, world: Scenario) -> None:
    rows = _rows(fetch(site.url + "/").body)
    # 2 stories, 8 hostile one-item stories, and item 4 that has no story yet
    assert len(rows) == len(set(STORY_OF.values())) + 1
    pantsir = [r for r in rows if f'href="/stories/{_sid(world, "pantsir")}"' in r]
    assert len(pantsir) == 1
    row = pantsir[0]
    # the headline is the story's (its first item, Korean), the English one beside it
    assert world.titles["pantsir_ko"] in row and world.titles["pantsir_en"] in row
    assert world.titles["pantsir_ru"] not in row
    for outlet in ("isw", "yonhap", "tass"):
        assert f'<span class="outlet">{outlet}</span>' in row
    for lang in ("en", "ko", "ru"):
        assert f'<span class="lang">{lang}</span>' in row
    assert '<span class="term">Pantsir</span>' in row and "<time" in row
    alone = [r for r in rows if 'href="/items/4"' in r]
    assert len(alone) == 1 and world.titles["sam_en"] in alone[0]


def test_an_english_headline_shows_no_second_title(site: ServedApp, world: Scenario) -> None:
    rows = _rows(fetch(site.url + "/").body)
    assert not [r for r in rows if "en-title" in r and "hostile" in r]
    assert sum("en-title" in r for r in rows) == 2  # the two foreign-headed stories


@pytest.mark.parametrize(
    ("query", "expected"),
    [("language=ru", {"pantsir"}), ("source=tass", {"pantsir"}), ("term=BRICS", {"brics"}),
     ("watchlist=brics", {"brics"}), ("language=en&term=BRICS", {"brics"}),
     ("tag=russia", {"pantsir"}), ("tag=nowhere", set()), ("since=3h", {"pantsir"}),
     ("term=SAM", {"item-4"})],
)  # fmt: skip
def test_filters_keep_a_story_when_one_of_its_items_passes(
    db: Database, site: ServedApp, world: Scenario, query: str, expected: set[str]
) -> None:
    with transaction(db.factory) as session:
        set_tags(session, "tass", ("russia",))
    hrefs = {f"/stories/{sid}": label for label, sid in (world.stories or {}).items()}
    hrefs["/items/4"] = "item-4"
    body = fetch(f"{site.url}/?{query}").body
    shown = {hrefs[h] for h in re.findall(r'<h2><a href="([^"]+)"', body)}
    assert shown == expected, query
    assert '<option value="russia"' in body  # the tag is offered


def test_story_page_lists_every_item_matched_or_not(
    db: Database, site: ServedApp, world: Scenario
) -> None:
    # a fourth outlet joins the story without matching anything
    with db.engine.begin() as conn:
        conn.execute(insert(ItemRow), [{
            "id": 50, "source_id": 4, "url": "http://wire.example/x?a=1&b=2", "guid": "g50",
            "title": "Air defence systems seen in the north", "summary": "", "body": "",
            "published": NOW - timedelta(hours=30), "fetched_at": NOW, "language": "en",
            "content_hash": "f" * 64}])  # fmt: skip
    assign_stories(db.engine, NOW, {50: "pantsir", **STORY_OF})
    body = _plain(fetch(f"{site.url}/stories/{_sid(world, 'pantsir')}").body)
    articles = re.findall(r'<article class="item">.*?</article>', body, re.S)
    assert len(articles) == 4
    for key, outlet, lang, mark in [("pantsir_en", "isw", "en", "Pantsir"),
                                    ("pantsir_ko", "yonhap", "ko", "판치르"),
                                    ("pantsir_ru", "tass", "ru", "Панцирь")]:  # fmt: skip
        (art,) = [a for a in articles if world.titles[key] in a]
        assert f'<span class="outlet">{outlet}</span>' in art
        assert f'<span class="lang">{lang}</span>' in art and f"<mark>{mark}</mark>" in art
        assert 'href="https://news' in art
    (plain,) = [a for a in articles if "Air defence systems" in a]
    assert 'href="http://wire.example/x?a=1&amp;b=2"' in plain and "<mark>" not in plain
    assert world.titles["pantsir_en"] in body.split("</h1>")[1].split("</p>")[0]  # en beside


def test_item_links_lead_to_their_story_and_lone_items_still_open(
    site: ServedApp, world: Scenario
) -> None:
    for item in (1, 2, 3):
        r = fetch(f"{site.url}/items/{item}")
        assert r.status == 302 and r.headers["Location"] == f"/stories/{_sid(world, 'pantsir')}"
    lone = fetch(site.url + "/items/4")
    assert lone.status == 200 and world.titles["sam_en"] in lone.body
    for path in ["/stories/999", "/stories/abc", "/stories/-1", "/stories/%C2%B2",
                 "/stories/99999999999999999999999", "/items/999"]:  # fmt: skip
        assert fetch(site.url + path).status == 404, path


def test_hostile_story_titles_render_as_text(site: ServedApp, world: Scenario) -> None:
    ids = [_sid(world, f"hostile-{j}") for j in range(100, 108)]
    pages = ["/", *(f"/stories/{i}" for i in ids), "/?term=Pantsir"]
    joined = "\n".join(fetch(site.url + p).body for p in pages)
    for needle in ["<script>window", "<img src=x", "<svg onload", "\u202e", 'href="javascript',
                   'href="data:', 'onmouseover="alert', '<a href="javascript']:  # fmt: skip
        assert needle not in joined, needle
    assert "&lt;script&gt;window.__pwned" in joined and "&lt;img src=x" in joined
    assert len(set(HOSTILE_TITLES)) == 5 and joined.count("<script") == 0


@pytest.mark.parametrize(
    "query", ["", "?watchlist=brics", "?watchlist=air-defence&limit=2", "?since=2d",
              "?since=2026-11-29", "?limit=1", "?watchlist=nobody"],
)  # fmt: skip
def test_api_stories_returns_the_stories_json_objects(
    db: Database, site: ServedApp, world: Scenario, query: str
) -> None:
    r = fetch(site.url + "/api/stories" + query)
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    got = json.loads(r.body)
    params = dict(p.split("=") for p in query.lstrip("?").split("&") if p)
    since = {"2d": NOW - timedelta(days=2), "2026-11-29": datetime(2026, 11, 29, tzinfo=UTC)}
    with transaction(db.factory) as session:
        want = [s.as_json() for s in list_stories(
            session, watchlist=params.get("watchlist"), since=since.get(params.get("since", "")),
            limit=int(params.get("limit", 100)))]  # fmt: skip
    assert got == want
    assert query == "?watchlist=nobody" or got  # the comparison is not of two empty lists
    for story in got:
        assert set(story) == {"id", "title", "first_seen", "last_seen", "languages", "sources",
                              "watchlists", "items"}  # fmt: skip


def test_api_stories_groups_the_three_outlets(site: ServedApp, world: Scenario) -> None:
    got = json.loads(fetch(site.url + "/api/stories?watchlist=air-defence").body)
    (story,) = [s for s in got if s["id"] == _sid(world, "pantsir")]
    assert story["sources"] == ["isw", "tass", "yonhap"] and story["languages"] == [
        "en",
        "ko",
        "ru",
    ]
    assert story["title"] == world.titles["pantsir_ko"] and len(story["items"]) == 3


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=1001", "limit=%C2%B2", "since=yesterday", "watchlist=%00",
              "since=99999999d"],
)  # fmt: skip
def test_api_stories_bad_parameters_are_400(site: ServedApp, query: str) -> None:
    r = fetch(f"{site.url}/api/stories?{query}")
    assert r.status == 400 and json.loads(r.body)["error"], query


def test_api_matches_takes_the_source_tag_too(db: Database, site: ServedApp) -> None:
    with transaction(db.factory) as session:
        set_tags(session, "tass", ("russia", "state media"))
    tagged = json.loads(fetch(site.url + "/api/matches?tag=state%20media").body)
    assert [m["item"]["source"] for m in tagged] == ["tass"]
    assert json.loads(fetch(site.url + "/api/matches?tag=nowhere").body) == []
    assert len(json.loads(fetch(site.url + "/api/matches").body)) == 14
