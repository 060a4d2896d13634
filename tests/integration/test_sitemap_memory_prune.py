"""The daemon's prune job forgets sitemap URLs whose lastmod is older than the
sitemap memory (twice the window), on both databases; forgetting them changes
no decision of crawler.sitemaps.wanted for a dated listing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from crawler.sitemaps import DEFAULT_WINDOW, SitemapEntry, wanted
from scheduler.context import HousekeepingContext
from scheduler.jobs import prune
from storage.repository import SqlStore
from tests.conftest import Database

NOW = datetime(2026, 11, 30, 8, tzinfo=UTC)
DAY = timedelta(days=1)


def test_prune_job_forgets_old_sitemap_versions(db: Database) -> None:
    store = SqlStore(db.engine, db.factory)
    ctx = HousekeepingContext(store, lambda: NOW, timedelta(days=30))
    assert ctx.sitemap_memory == 2 * DEFAULT_WINDOW
    with store.transaction() as tx:
        page = tx.add_source(
            name="page",
            url="https://p.example/",
            kind="page",
            every_seconds=900,
            links_css=None,
            now=NOW,
        )
        site = tx.add_source(
            name="site",
            url="https://s.example/sitemap.xml",
            kind="sitemap",
            every_seconds=900,
            links_css=None,
            now=NOW,
        )
        tx.add_seen_links(page.id, ["https://p.example/old"], NOW - 400 * DAY)
        tx.add_seen_versions(
            site.id,
            [
                ("https://s.example/a", NOW - 15 * DAY),  # past the memory: forgotten
                ("https://s.example/b", NOW - 13 * DAY),  # within it: kept
                ("https://s.example/c", NOW - DAY),
                ("https://s.example/undated", None),  # forgetting it would fetch it again
            ],
            NOW - 400 * DAY,
        )
    prune(ctx)
    with store.transaction() as tx:
        assert tx.seen_links(page.id) == {"https://p.example/old"}
        assert set(tx.seen_versions(site.id)) == {
            "https://s.example/b",
            "https://s.example/c",
            "https://s.example/undated",
        }
    prune(ctx)  # nothing more to forget
    with store.transaction() as tx:
        assert len(tx.seen_versions(site.id)) == 3


dates = st.none() | st.integers(min_value=-60 * 24, max_value=24).map(
    lambda hours: NOW + timedelta(hours=hours)
)


@given(
    remembered=st.integers(min_value=0, max_value=10 * 365 * 24).map(
        lambda hours: NOW - 2 * DEFAULT_WINDOW - timedelta(hours=hours)
    ),
    lastmod=dates,
    news=dates,
)
def test_a_pruned_url_is_wanted_exactly_when_it_was_before(
    remembered: datetime, lastmod: datetime | None, news: datetime | None
) -> None:
    """Any dated listing of a URL remembered with a version past the memory is
    decided the same with and without the memory (undated listings of such a
    URL are fetched once more, and stored once by URL)."""
    entry = SitemapEntry("https://s.example/a", lastmod=lastmod, news_published=news)
    cutoff = NOW - DEFAULT_WINDOW
    with_memory = wanted(entry, {entry.url: remembered}, cutoff=cutoff)
    if entry.version is not None:
        assert wanted(entry, {}, cutoff=cutoff) == with_memory
