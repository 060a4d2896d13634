"""The crawl pipeline's save step on both databases: one transaction per
batch of polls, and a source whose data the database refuses fails alone."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from crawler.crawl_records import Item, PollOutcome
from newswatch.app import build_app
from newswatch.config import Settings
from scheduler.crawl import CompiledWatchlists, save_outcomes
from storage import sources as source_repo
from storage.items import count_items
from storage.repository import SqlStore
from tests.conftest import Database

NOW = datetime(2026, 11, 22, 2, 10, tzinfo=UTC)


def item(url: str, title: str) -> Item:
    return Item(
        url=url,
        guid=url,
        title=title,
        summary="",
        text="body",
        published=NOW,
        language="en",
        content_hash="0" * 64,
    )


def test_a_refused_source_fails_alone_and_the_batch_is_saved(db: Database) -> None:
    app = build_app(
        Settings(database_url=db.url),
        clock=lambda: NOW,
        env={},
        store=SqlStore(db.engine, db.factory),
    )
    with app.session() as s:
        good = source_repo.add_source(
            s,
            name="good",
            url="https://good.org/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=NOW,
        )
        bad = source_repo.add_source(
            s,
            name="bad",
            url="https://bad.org/f",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=NOW,
        )
    polls = [
        (
            good,
            PollOutcome(good.id, "ok", items=(item("https://good.org/1", "fine"),), etag='"g1"'),
        ),
        # a lone surrogate: no database driver can encode it
        (
            bad,
            PollOutcome(
                bad.id, "ok", items=(item("https://bad.org/1", "bad \ud800"),), etag='"b1"'
            ),
        ),
    ]
    counts = save_outcomes(
        app.crawl_context(), polls, CompiledWatchlists.build([]), random.Random(1)
    )
    assert counts == [(1, 0), (0, 0)]
    with app.session() as s:
        assert count_items(s) == 1
        rows = {x.name: x for x in source_repo.list_sources(s)}
    assert rows["good"].etag == '"g1"' and rows["good"].last_error is None
    assert rows["bad"].etag is None and rows["bad"].consecutive_failures == 1
    assert (rows["bad"].last_error or "").startswith("could not store items:")
