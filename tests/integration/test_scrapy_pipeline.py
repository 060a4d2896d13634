"""newswatch.scrapy.NewswatchPipeline inside a plain `scrapy runspider` and a Scrapy
project's `scrapy crawl`, on both databases.

The example spider crawls the local think-tank site twice; its items are
stored once, matched once and queued for alerting once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from alerts.alert_records import Recipient, Term, Watchlist
from storage.sources import add_source
from storage.tables import ItemRow, MatchRow, OutboxRow
from storage.watchlists import save_watchlists
from tests.conftest import Database
from tests.support.env import clean_env
from tests.support.httpserver import LocalHTTPServer
from tests.support.thinktank import PUBLICATIONS, serve_site

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "spiders" / "thinktank.py"
NOW = datetime(2025, 7, 10, tzinfo=UTC)
pytestmark = pytest.mark.slow  # each crawl starts Scrapy in a subprocess


@pytest.fixture(scope="module")
def site() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer().start()
    serve_site(server)
    yield server
    server.stop()


def seed(db: Database) -> None:
    with db.session() as s, s.begin():
        add_source(
            s,
            name="institute-pubs",
            url="https://www.example-institute.org/publications",
            kind="spider",
            every_seconds=900,
            links_css=None,
            now=NOW,
            alert_backlog=True,  # the site's publications are old: alert on them all
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


def scrapy_crawl(
    db: Database, site: LocalHTTPServer, source: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "runspider",
            str(EXAMPLE),
            "-a",
            f"url={site.url('/publications')}",
            "-s",
            'ITEM_PIPELINES={"newswatch.scrapy.NewswatchPipeline": 800}',
            "-s",
            f"NEWSWATCH_SOURCE={source}",
            "-s",
            "NEWSWATCH_BATCH_SIZE=2",
            "-s",
            "TELNETCONSOLE_ENABLED=False",
            "-s",
            "LOG_LEVEL=INFO",
        ],
        env=clean_env(NEWSWATCH_DATABASE_URL=db.url),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
        cwd=ROOT,
    )


def counts(db: Database) -> tuple[int, int, int]:
    with db.session() as s:
        return (
            s.scalar(select(func.count()).select_from(ItemRow)) or 0,
            s.scalar(select(func.count()).select_from(MatchRow)) or 0,
            s.scalar(select(func.count()).select_from(OutboxRow)) or 0,
        )


def test_items_from_a_plain_scrapy_crawl_are_stored_and_alerted_once(
    db: Database, site: LocalHTTPServer
) -> None:
    seed(db)
    first = scrapy_crawl(db, site, "institute-pubs")
    assert first.returncode == 0, first.stderr[-2000:]
    # Pantsir and S-400 each match one publication: two matches, one alert each.
    assert counts(db) == (len(PUBLICATIONS), 2, 2)
    second = scrapy_crawl(db, site, "institute-pubs")
    assert second.returncode == 0, second.stderr[-2000:]
    assert counts(db) == (len(PUBLICATIONS), 2, 2)
    with db.session() as s:
        titles = set(s.scalars(select(ItemRow.title)))
    assert titles == {p.title for p in PUBLICATIONS}


def test_an_unknown_source_fails_the_crawl_loudly(db: Database, site: LocalHTTPServer) -> None:
    result = scrapy_crawl(db, site, "no-such-source")
    assert "no newswatch source named 'no-such-source'" in result.stderr
    assert counts(db) == (0, 0, 0)


def scrapy_project(root: Path, source: str) -> Path:
    """A plain Scrapy project (`scrapy startproject` layout) holding the example
    spider, with newswatch's pipeline in its settings.py."""
    package = root / "institute"
    (package / "spiders").mkdir(parents=True)
    (root / "scrapy.cfg").write_text("[settings]\ndefault = institute.settings\n")
    (package / "__init__.py").write_text("")
    (package / "spiders" / "__init__.py").write_text("")
    (package / "spiders" / "publications.py").write_bytes(EXAMPLE.read_bytes())
    (package / "settings.py").write_text(
        'BOT_NAME = "institute"\n'
        'SPIDER_MODULES = ["institute.spiders"]\n'
        "ROBOTSTXT_OBEY = True\n"
        "TELNETCONSOLE_ENABLED = False\n"
        'ITEM_PIPELINES = {"newswatch.scrapy.NewswatchPipeline": 800}\n'
        f"NEWSWATCH_SOURCE = {source!r}\n"
    )
    return root


def test_the_pipeline_in_a_scrapy_project_stores_and_alerts_once(
    db: Database, site: LocalHTTPServer, tmp_path: Path
) -> None:
    """`scrapy crawl` inside a project, the pipeline set in its settings.py."""
    seed(db)
    project = scrapy_project(tmp_path, "institute-pubs")
    start = site.url("/publications")

    def crawl() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "scrapy", "crawl", "publications", "-a", f"url={start}"],
            env=clean_env(NEWSWATCH_DATABASE_URL=db.url),
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
            cwd=project,
        )

    first = crawl()
    assert first.returncode == 0, first.stderr[-2000:]
    assert counts(db) == (len(PUBLICATIONS), 2, 2)
    second = crawl()
    assert second.returncode == 0, second.stderr[-2000:]
    assert counts(db) == (len(PUBLICATIONS), 2, 2)
