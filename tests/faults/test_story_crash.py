"""kill -9 of `newswatch crawl` between saving new items and giving the
unmatched ones their story (scheduler.story_assignment.drain_pending), on
SQLite and PostgreSQL.

The crawl gives a matched item its story in the save transaction and leaves
the others pending; it drains them after delivering. Whatever the point of
the kill (right after the save's commit, before delivery; when the drain
starts, after delivery; after the drain's batch committed), the next clean
crawl leaves every item in exactly one story, the `fold` watchlist's alert
for the event arrives exactly once, and a matched item of the same event
from another outlet in a later crawl joins that story without a second alert.
"""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from alerts.watchlist_files import parse_watchlists
from storage.db import transaction
from storage.sources import add_source
from storage.tables import ItemRow
from storage.watchlists import save_watchlists
from tests.conftest import Database
from tests.faults.conftest import base_env, run_newswatch
from tests.support.httpserver import LocalHTTPServer

pytestmark = pytest.mark.faults

FEED_A = [
    ("m1", "SAM battery moved to Crimea, satellite images show"),
    ("u1", "Air-defence battery moved to Crimea, satellite images show"),
    ("u2", "Battery of air defence moved to Crimea, satellite images show"),
    ("x", "Typhoon Haishen makes landfall on Okinawa"),
]
FEED_B = [("m2", "SAM battery moved to Crimea, new satellite images show")]


def rss(base: str, entries: list[tuple[str, str]]) -> str:
    items = "".join(
        f"<item><title>{title}</title><link>{base}/a/{key}</link><guid>{key}</guid></item>"
        for key, title in entries
    )
    return f'<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'


def stories(db: Database) -> dict[str, int | None]:
    with transaction(db.factory) as s:
        rows = s.execute(select(ItemRow.url, ItemRow.story_id)).all()
    return {url.rsplit("/", 1)[1]: sid for url, sid in rows}


def add_feed(db: Database, name: str, url: str) -> None:
    with transaction(db.factory) as s:
        add_source(
            s,
            name=name,
            url=url,
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=datetime.now(UTC),
            alert_backlog=True,
        )


@pytest.mark.parametrize("point", ["after_commit", "story_drain", "story_drain:2"])
def test_a_kill_between_save_and_story_loses_no_story_and_no_alert(
    db: Database, point: str
) -> None:
    server = LocalHTTPServer().start()
    try:
        received: list[dict[str, Any]] = []
        hook = server.route(
            "/hook", lambda r: (received.append(json.loads(r.body)), (200, {}, b"ok"))[1]
        )
        base = server.url("").rstrip("/")
        with transaction(db.factory) as s:
            save_watchlists(
                s,
                parse_watchlists(
                    "watchlists:\n  - name: w\n    stories: fold\n    terms: [SAM]\n"
                    f"    notify:\n      - webhook: {hook}\n"
                ),
                datetime.now(UTC),
            )
        add_feed(db, "a", server.serve("/a.xml", rss(base, FEED_A)))
        env = base_env(db.url, NEWSWATCH_STORY_ENCODER="hashing")
        crashed = run_newswatch(["crawl"], {**env, "NEWSWATCH_CRASH_AT": point}, timeout=120)
        assert crashed.code == -signal.SIGKILL, crashed.err[-2000:]
        got = stories(db)
        assert len(got) == 4 and got["m1"] is not None  # saved, the matched item storied
        if point == "after_commit":
            assert got["u1"] is None and got["u2"] is None and not received

        clean = run_newswatch(["crawl"], env, timeout=120)
        assert clean.code == 0, clean.err[-2000:]
        got = stories(db)
        assert None not in got.values(), got
        assert got["m1"] == got["u1"] == got["u2"] != got["x"]
        assert len(received) == 1 and received[0]["story"] == got["m1"]

        add_feed(db, "b", server.serve("/b.xml", rss(base, FEED_B)))
        later = run_newswatch(["crawl"], env, timeout=120)
        assert later.code == 0 and "1 new items, 1 new matches" in later.out, later.out
        got = stories(db)
        assert got["m2"] == got["m1"] and None not in got.values()
        assert len(received) == 1  # joined the story silently
    finally:
        server.stop()
