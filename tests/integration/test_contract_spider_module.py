"""CONTRACT.md, "Sources beyond feeds": `--spider module:Class` (not only
`path/to/file.py:Class`) names a spider that newswatch runs, imported with
the working directory on the path (README). A package in a temporary
working directory, against the local think-tank site."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crawler.addresses import AddressPolicy
from crawler.crawl_records import Source
from crawler.fetch import FetchPolicy
from crawler.spiders import SpiderLimits, poll_spider
from tests.support.httpserver import LocalHTTPServer
from tests.support.thinktank import PUBLICATIONS, serve_site

ROOT = Path(__file__).parents[2]
HOST = "127.0.0.3"
POLICY = FetchPolicy(
    timeout=5.0,
    address_policy=AddressPolicy(allowed=(ipaddress.ip_network(f"{HOST}/32"),)),
    per_host_delay=0.0,
    per_host_concurrency=4,
)
pytestmark = pytest.mark.slow  # a Python with Scrapy and Twisted: ~1.5 s, more under load


@pytest.fixture
def site() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer(host=HOST).start()
    serve_site(server)
    yield server
    server.stop()


def test_a_spider_named_by_module_and_class_runs_from_the_working_directory(
    site: LocalHTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "contract_desk_spiders"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    shutil.copy(ROOT / "examples" / "spiders" / "thinktank.py", package / "institute.py")
    monkeypatch.chdir(tmp_path)
    source = Source(
        id=7,
        name="institute",
        url=site.url("/publications"),
        kind="spider",
        every_seconds=900,
        spider="contract_desk_spiders.institute:PublicationsSpider",
    )
    outcome = asyncio.run(
        poll_spider(
            source,
            POLICY,
            limits=SpiderLimits(run_seconds=20.0, grace_seconds=5.0),
            now=datetime(2025, 7, 10, tzinfo=UTC),
        )
    )
    assert outcome.status == "ok", outcome.error
    assert sorted(i.url for i in outcome.items) == sorted(
        site.url(f"/publications/{p.slug}") for p in PUBLICATIONS
    )
