"""Backfill chooses its automaton by the stored text's volume, on both databases.

`choose_backend` picks pyahocorasick unless Hyperscan's slower compile is
paid back by its faster scan over the text to match (`break_even_bytes`);
the backfill measures that text with `Store.text_bytes_since` (UTF-8 bytes,
not characters: the items here are Russian, Korean and Chinese too). The
matches must not depend on the choice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.alert_records import Recipient, Term, Watchlist
from alerts.matching import engine
from alerts.matching.backends import HYPERSCAN_AVAILABLE, break_even_bytes
from newswatch.app import App, build_app
from newswatch.config import Settings
from scheduler.backfill import backfill
from storage.repository import SqlStore
from storage.sources import add_source
from storage.tables import ItemRow
from storage.watchlists import save_watchlists
from tests.conftest import Database

NOW = datetime(2025, 7, 10, tzinfo=UTC)
WATCHLIST = Watchlist(
    "air-defence",
    (Term("Pantsir", aliases=("Панцирь", "판치르")),),
    notify=(Recipient("email", "analyst@example.org"),),
)
KEYS = 3  # distinct search keys of WATCHLIST
FILLERS = [
    "Weather in the valley stays mild all week, farmers say. ",
    "Погода в долине остаётся мягкой всю неделю, говорят фермеры. ",
    "계곡의 날씨는 일주일 내내 온화하다고 농부들이 말했다. ",
    "农民说山谷里的天气整个星期都很温和。",
]
HITS = [
    "A Pantsir battery was seen near the port.",
    "У порта заметили батарею Панцирь.",
    "항구 근처에서 판치르 포대가 목격됐다.",
]


def app_for(db: Database) -> App:
    return build_app(
        Settings(database_url=db.url),
        clock=lambda: NOW,
        env={},
        store=SqlStore(db.engine, db.factory),
    )


def store_items(app: App, first: int, count: int, repeat: int) -> tuple[int, set[str]]:
    """`count` items (every fifth with a watched spelling), fetched an hour
    ago; their UTF-8 text bytes and the URLs that must match."""
    size, expected = 0, set()
    with app.session() as s:
        for i in range(first, first + count):
            body = FILLERS[i % len(FILLERS)] * repeat
            if i % 5 == 0:
                body += HITS[i % len(HITS)]
                expected.add(f"https://example.org/{i}")
            title, summary = f"Item {i}", FILLERS[(i + 1) % len(FILLERS)]
            size += sum(len(x.encode()) for x in (title, summary, body))
            s.add(
                ItemRow(
                    source_id=1,
                    url=f"https://example.org/{i}",
                    guid=str(i),
                    title=title,
                    summary=summary,
                    body=body,
                    published=NOW - timedelta(hours=1),
                    fetched_at=NOW - timedelta(hours=1),
                    language=None,
                    content_hash=f"{i:064x}",
                )
            )
    return size, expected


@pytest.fixture
def app(db: Database) -> App:
    app = app_for(db)
    with app.session() as s:
        add_source(
            s,
            name="feed",
            url="https://example.org/feed",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=NOW,  # type: ignore[arg-type]
        )
        save_watchlists(s, [WATCHLIST], NOW)
    return app


def test_backfill_picks_the_backend_by_stored_volume_and_matches_the_same(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "DEFAULT_BACKEND", "auto")  # what the CLI runs with
    since = NOW - timedelta(days=1)
    size, expected = store_items(app, 0, 40, repeat=2)
    assert app.store.text_bytes_since(since) == size  # bytes, not characters
    assert app.store.text_bytes_since(NOW) == 0  # nothing fetched since then
    assert size < break_even_bytes(KEYS)
    small = backfill(app.backfill_context(), WATCHLIST.name, since=since, dry_run=True)
    assert small.backend == "aho"
    assert small.matched == len(expected)

    # Enough stored text for Hyperscan's compile to pay off (where installed).
    more, more_expected = store_items(app, 40, 120, repeat=40)
    size += more
    expected |= more_expected
    assert app.store.text_bytes_since(since) == size
    assert size >= break_even_bytes(KEYS)
    large = backfill(app.backfill_context(), WATCHLIST.name, since=since, dry_run=True)
    assert large.backend == ("hyperscan" if HYPERSCAN_AVAILABLE else "aho")
    assert large.matched == len(expected)

    # The same backfill forced onto the other automaton finds the same items.
    other = "aho"  # the chosen one is Hyperscan where installed
    monkeypatch.setattr(engine, "DEFAULT_BACKEND", other)
    forced = backfill(
        app.backfill_context(), WATCHLIST.name, since=since, dry_run=True, sample_size=1000
    )
    monkeypatch.setattr(engine, "DEFAULT_BACKEND", "auto")
    chosen = backfill(
        app.backfill_context(), WATCHLIST.name, since=since, dry_run=True, sample_size=1000
    )
    assert forced.backend == other
    assert {url for _, url in forced.sample} == {url for _, url in chosen.sample} == expected
