"""Spider sources: user spiders under Scrapy's engine in a child process, against local sites.

The site runs on 127.0.0.3 and the allowlist is 127.0.0.3/32 alone, so a
canary on 127.0.0.1 (reachable as "localhost" and in a dozen spellings) is a
refused address: it must see 0 connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from crawler.addresses import AddressPolicy
from crawler.crawl_records import PollOutcome, Source
from crawler.fetch import FetchPolicy, HttpClient
from crawler.poll import poll_source
from crawler.spiders import SpiderLimits, poll_spider
from tests.support.canary import Canary
from tests.support.httpserver import LocalHTTPServer
from tests.support.thinktank import PUBLICATIONS, serve_site

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = f"{ROOT}/examples/spiders/thinktank.py:PublicationsSpider"
HOSTILE = f"{ROOT}/tests/fixtures/spiders/hostile.py"
SITE_HOST = "127.0.0.3"
NOW = datetime(2025, 7, 10, tzinfo=UTC)
POLICY = FetchPolicy(
    timeout=5.0,
    address_policy=AddressPolicy(allowed=(ipaddress.ip_network(f"{SITE_HOST}/32"),)),
    per_host_delay=0.0,
    per_host_concurrency=4,
)
LIMITS = SpiderLimits(run_seconds=20.0, grace_seconds=5.0)
# Each test starts a Python with Scrapy and Twisted (~1.5 s idle, more under load).
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def site() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer(host=SITE_HOST).start()
    serve_site(server)
    yield server
    server.stop()


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary().start()
    yield c
    c.stop()


def spider_source(url: str, spider: str) -> Source:
    return Source(id=7, name="spidered", url=url, kind="spider", every_seconds=900, spider=spider)


def run(source: Source, limits: SpiderLimits = LIMITS) -> PollOutcome:
    return asyncio.run(poll_spider(source, POLICY, limits=limits, now=NOW))


def test_example_spider_follows_pagination_and_yields_each_publication_once(
    site: LocalHTTPServer,
) -> None:
    outcome = run(spider_source(site.url("/publications"), EXAMPLE))
    assert outcome.status == "ok", outcome.error
    by_url = {i.url: i for i in outcome.items}
    assert sorted(by_url) == sorted(site.url(f"/publications/{p.slug}") for p in PUBLICATIONS)
    assert len(outcome.items) == len(PUBLICATIONS)
    hq9 = by_url[site.url("/publications/hq9-strait")]
    assert hq9.title == "HQ-9 batteries on the strait"
    assert "The PLA moved HQ-9 launchers." in hq9.text
    assert hq9.published == datetime(2025, 7, 8, 9, tzinfo=UTC)
    assert hq9.language == "en"
    assert site.hits("/publications?page=3") and site.hits("/robots.txt")


def test_poll_source_dispatches_spider_kind(site: LocalHTTPServer) -> None:
    source = spider_source(site.url("/publications"), f"{HOSTILE}:GoodItem")

    async def go() -> PollOutcome:
        async with HttpClient(POLICY) as client:
            return await poll_source(source, client, now=NOW, spider_limits=LIMITS)

    outcome = asyncio.run(go())
    assert outcome.status == "ok", outcome.error
    assert [(i.url, i.title) for i in outcome.items] == [
        (site.url("/publications"), "A valid item")
    ]


def test_a_spider_that_gets_only_errors_fails(site: LocalHTTPServer) -> None:
    outcome = run(spider_source(site.url("/gone"), f"{HOSTILE}:GoodItem"))
    assert outcome.status == "failed"
    assert outcome.error is not None and "HTTP 404" in outcome.error


def test_robots_txt_is_obeyed_even_when_the_spider_turns_it_off(site: LocalHTTPServer) -> None:
    before = len(site.hits("/private/report"))
    target = quote(site.url("/private/report"), safe="")
    outcome = run(spider_source(site.url(f"/start?target={target}"), f"{HOSTILE}:CanarySeeker"))
    assert len(site.hits("/private/report")) == before
    assert outcome.status == "failed" and outcome.items == ()
    assert outcome.error is not None and "robots.txt forbids" in outcome.error


CANARY_SPELLINGS = ["localhost", "127.0.0.1", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]"]


def test_requests_and_redirects_to_refused_addresses_make_no_connection(
    site: LocalHTTPServer, canary: Canary
) -> None:
    site.route("/hop", (302, {"Location": f"http://localhost:{canary.port}/admin"}, b""))
    site.route("/hop-ip", (301, {"Location": f"http://127.0.0.1:{canary.port}/admin"}, b""))
    targets = [f"http://{host}:{canary.port}/admin" for host in CANARY_SPELLINGS]
    targets += [site.url("/hop"), site.url("/hop-ip")]
    query = "&".join(f"target={quote(t, safe='')}" for t in targets)
    outcome = run(spider_source(site.url(f"/start?{query}"), f"{HOSTILE}:CanarySeeker"))
    assert canary.connections == 0
    assert outcome.status == "failed" and outcome.items == ()
    assert outcome.error is not None and "refused" in outcome.error
    assert site.hits("/hop") and site.hits("/hop-ip")  # the site itself was reachable


def test_a_raising_spider_fails_its_source_with_the_error_line(site: LocalHTTPServer) -> None:
    outcome = run(spider_source(site.url("/publications"), f"{HOSTILE}:Raising"))
    assert outcome.status == "failed"
    assert outcome.error is not None and "ValueError" in outcome.error
    assert "no ul.publications" in outcome.error and "\n" not in outcome.error


@pytest.mark.slow
def test_a_hanging_spider_is_killed_at_the_deadline(site: LocalHTTPServer) -> None:
    limits = SpiderLimits(run_seconds=1.0, grace_seconds=2.0)
    started = time.monotonic()
    outcome = run(spider_source(site.url("/publications"), f"{HOSTILE}:Hanging"), limits)
    elapsed = time.monotonic() - started
    assert outcome.status == "failed"
    assert outcome.error is not None and "killed" in outcome.error
    assert elapsed < 3.0 + 5.0


def test_a_spider_killed_by_a_signal_fails_its_source(site: LocalHTTPServer) -> None:
    outcome = run(spider_source(site.url("/publications"), f"{HOSTILE}:Suicidal"))
    assert outcome.status == "failed" and outcome.items == ()
    assert outcome.error is not None and "exited with code -9" in outcome.error


def test_junk_items_are_dropped_and_valid_ones_kept(site: LocalHTTPServer) -> None:
    outcome = run(spider_source(site.url("/publications"), f"{HOSTILE}:Junk"))
    assert outcome.status == "ok", outcome.error
    assert [(i.url, i.title) for i in outcome.items] == [(site.url("/bad-date"), "Valid one")]
    assert outcome.items[0].published == NOW  # unreadable date: the fetch time


def test_only_junk_fails_with_the_reason(site: LocalHTTPServer) -> None:
    outcome = run(spider_source(site.url("/publications"), f"{HOSTILE}:OnlyJunk"))
    assert outcome.status == "failed"
    assert outcome.error is not None and "2 invalid items" in outcome.error


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (f"{HOSTILE}:NotASpider", "not a scrapy.Spider subclass"),
        (f"{HOSTILE}:Missing", "not a scrapy.Spider subclass"),
        ("no_such_module_xyz:Spider", "cannot import no_such_module_xyz"),
        (f"{ROOT}/tests/fixtures/spiders/absent.py:Spider", "no spider file"),
        ("just-a-name", "is not module:Class"),
    ],
)
def test_unloadable_spider_fails_with_a_reason(
    site: LocalHTTPServer, spec: str, reason: str
) -> None:
    outcome = run(spider_source(site.url("/"), spec))
    assert outcome.status == "failed"
    assert outcome.error is not None and reason in outcome.error


def test_spider_sees_no_secrets_or_proxies(
    site: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSWATCH_DATABASE_URL", "postgresql://u:secret@db/newswatch")
    monkeypatch.setenv("NEWSWATCH_SMTP_PASSWORD", "hunter2")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9/")
    outcome = run(spider_source(site.url("/publications"), f"{HOSTILE}:EnvReader"))
    assert [i.title for i in outcome.items] == ["env: clean"]


def test_item_cap_is_applied(site: LocalHTTPServer) -> None:
    limits = SpiderLimits(run_seconds=20.0, max_items=7)
    outcome = run(spider_source(site.url("/publications"), f"{HOSTILE}:Many"), limits)
    assert outcome.status == "ok", outcome.error
    assert len(outcome.items) == 7
