"""What the crawling process imports: trafilatura and its dependencies
(~0.23 s, ~9 MB resident) only with the first article page, never for a
crawl of feeds or any other command (crawler.articles)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTICLE_ONLY = ("trafilatura", "htmldate", "courlan", "justext")


def imported_after(code: str) -> set[str]:
    script = textwrap.dedent(
        f"""
        import sys
        {code}
        print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}})))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(done.stdout.split())


@pytest.mark.parametrize(
    "code",
    [
        "import newswatch.cli",
        "import scheduler.crawl, scheduler.daemon, crawler.poll, crawler.parse_pool",
        "import crawler.listings, crawler.sitemaps, crawler.articles",
        "from crawler.feeds import parse_feed",
    ],
)
def test_importing_the_crawl_does_not_import_the_article_extractor(code: str) -> None:
    assert imported_after(code).isdisjoint(ARTICLE_ONLY)


def test_the_first_article_imports_it_and_extracts() -> None:
    from crawler.articles import extract_article

    body = "The battery was moved overnight to a new position near the coast. " * 5
    html = (
        "<html><head><title>SAM battery moved</title></head>"
        f"<body><article><p>{body}</p></article></body></html>"
    )
    item = extract_article(
        html, "https://example.org/a", fetched_at=datetime(2026, 12, 1, tzinfo=UTC)
    )
    assert item is not None
    assert "battery was moved" in item.text
    assert "trafilatura" in sys.modules
