"""Sitemap sources against a local site: indexes, gzip, news sitemaps, robots.txt, repeat polls.

The site runs on 127.0.0.3 and the allowlist is 127.0.0.3/32 alone, so a
canary on 127.0.0.1 (reachable as "localhost") is a refused address.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from crawler.addresses import AddressPolicy
from crawler.crawl_records import PollOutcome, Source
from crawler.fetch import FetchPolicy, HttpClient
from crawler.poll import poll_source
from crawler.sitemaps import SitemapCrawl, crawl_sitemap
from tests.support.canary import Canary
from tests.support.httpserver import LocalHTTPServer
from tests.support.thinktank import (
    PUBLICATIONS,
    Publication,
    article_html,
    gz,
    serve_site,
    sitemap_index,
    urlset,
)

SITE_HOST = "127.0.0.3"
NOW = datetime(2025, 7, 10, tzinfo=UTC)
POLICY = FetchPolicy(
    timeout=3.0,
    address_policy=AddressPolicy(allowed=(ipaddress.ip_network(f"{SITE_HOST}/32"),)),
    per_host_delay=0.0,
    per_host_concurrency=8,
)
NEWS, OLDER = PUBLICATIONS[:2], PUBLICATIONS[2:]
FRESH = Publication(
    "drones-sahel", "Drones over the Sahel", "Turkish drones reached Mali.", "2025-07-09"
)


@pytest.fixture
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


def serve_index(site: LocalHTTPServer, news_lastmod: str = "2025-07-08") -> str:
    site.serve("/sitemap-pubs.xml.gz", gz(urlset(site, OLDER, news=False)), "application/gzip")
    site.serve("/news-sitemap.xml", urlset(site, NEWS, news=True))
    index = sitemap_index(
        [
            (site.url("/sitemap-pubs.xml.gz"), "2025-07-06"),
            (site.url("/news-sitemap.xml"), news_lastmod),
        ]
    )
    return site.serve("/sitemap_index.xml", index)


def sitemap_source(url: str) -> Source:
    return Source(id=3, name="institute-sitemap", url=url, kind="sitemap", every_seconds=900)


def poll(source: Source, seen: Mapping[str, datetime | None] | None = None) -> PollOutcome:
    async def go() -> PollOutcome:
        async with HttpClient(POLICY) as client:
            return await poll_source(source, client, now=NOW, seen_versions=seen or {})

    return asyncio.run(go())


def crawl(root_url: str, **kwargs: Any) -> SitemapCrawl:
    async def go() -> SitemapCrawl:
        async with HttpClient(POLICY) as client:
            root = await client.get(root_url)
            return await crawl_sitemap(client, root, now=NOW, **kwargs)

    return asyncio.run(go())


def article_hits(site: LocalHTTPServer) -> int:
    return sum(1 for r in site.requests if r.path.startswith("/publications/"))


def test_index_with_gzip_and_news_sitemaps_crawled_three_times(site: LocalHTTPServer) -> None:
    source = sitemap_source(serve_index(site))
    first = poll(source)
    assert first.status == "ok", first.error
    by_url = {i.url: i for i in first.items}
    assert sorted(by_url) == sorted(site.url(f"/publications/{p.slug}") for p in PUBLICATIONS)
    news = by_url[site.url("/publications/hq9-strait")]
    assert news.title == "HQ-9 batteries on the strait (news)"  # news:title wins
    assert news.published == datetime(2025, 7, 8, 9, tzinfo=UTC) and news.language == "en"
    assert "The PLA moved HQ-9 launchers." in news.text
    plain = by_url[site.url("/publications/arctic-bases")]
    assert plain.title == "Arctic bases reopened"  # extracted from the page
    assert article_hits(site) == len(PUBLICATIONS)

    # Second poll, nothing changed: no article and no child sitemap is fetched again.
    seen = dict(first.seen_versions)
    second = poll(source, seen)
    assert second.status == "ok" and second.items == ()
    assert article_hits(site) == len(PUBLICATIONS)
    assert len(site.hits("/sitemap-pubs.xml.gz")) == 1
    assert len(site.hits("/news-sitemap.xml")) == 1

    # Third poll: one new article in the news sitemap, whose lastmod moved.
    site.serve(f"/publications/{FRESH.slug}", article_html(FRESH), "text/html")
    site.serve("/news-sitemap.xml", urlset(site, (FRESH, *NEWS), news=True))
    site.serve(
        "/sitemap_index.xml",
        sitemap_index(
            [
                (site.url("/sitemap-pubs.xml.gz"), "2025-07-06"),
                (site.url("/news-sitemap.xml"), "2025-07-09"),
            ]
        ),
    )
    third = poll(source, {**seen, **dict(second.seen_versions)})
    assert [i.url for i in third.items] == [site.url(f"/publications/{FRESH.slug}")]
    assert article_hits(site) == len(PUBLICATIONS) + 1
    assert len(site.hits("/sitemap-pubs.xml.gz")) == 1  # unchanged lastmod: not read again


def test_a_newer_lastmod_refetches_an_article(site: LocalHTTPServer) -> None:
    url = site.serve("/sitemap.xml", urlset(site, OLDER, news=False))
    first = poll(sitemap_source(url))
    assert len(first.items) == len(OLDER)
    updated = (replace(OLDER[0], date="2025-07-09"), *OLDER[1:])
    site.serve("/sitemap.xml", urlset(site, updated, news=False))
    second = poll(sitemap_source(url), dict(first.seen_versions))
    assert [i.url for i in second.items] == [site.url(f"/publications/{OLDER[0].slug}")]


def test_window_skips_old_entries_and_keeps_undated_ones(site: LocalHTTPServer) -> None:
    old = replace(PUBLICATIONS[0], date="2025-05-01")
    body = urlset(site, (old,), news=False).replace(
        b"</urlset>",
        f"<url><loc>{site.url('/publications/' + PUBLICATIONS[1].slug)}</loc></url>".encode()
        + b"</urlset>",
    )
    outcome = poll(sitemap_source(site.serve("/sitemap.xml", body)))
    assert [i.url for i in outcome.items] == [site.url(f"/publications/{PUBLICATIONS[1].slug}")]
    assert site.hits(f"/publications/{old.slug}") == []


def test_robots_txt_sitemap_lines_are_followed(site: LocalHTTPServer, canary: Canary) -> None:
    site.serve("/news-sitemap.xml", urlset(site, NEWS, news=True))
    robots = (
        "User-agent: *\nDisallow: /private/\n"
        f"Sitemap: {site.url('/news-sitemap.xml')}\n"
        f"Sitemap: http://localhost:{canary.port}/sitemap.xml\n"
    )
    site.serve("/robots.txt", robots, "text/plain")
    outcome = poll(sitemap_source(site.url("/robots.txt")))
    assert outcome.status == "ok", outcome.error
    assert sorted(i.url for i in outcome.items) == sorted(
        site.url(f"/publications/{p.slug}") for p in NEWS
    )
    assert canary.connections == 0


def test_loc_and_redirect_at_a_refused_address_make_no_connection(
    site: LocalHTTPServer, canary: Canary
) -> None:
    site.route("/publications/moved", (302, {"Location": f"http://localhost:{canary.port}/"}, b""))
    rows = "".join(
        f"<url><loc>{loc}</loc><lastmod>2025-07-09</lastmod></url>"
        for loc in (
            f"http://localhost:{canary.port}/admin",
            f"http://127.0.0.1:{canary.port}/admin",
            f"http://2130706433:{canary.port}/admin",
            site.url("/publications/moved"),
            site.url(f"/publications/{PUBLICATIONS[0].slug}"),
        )
    )
    index = sitemap_index([(f"http://127.0.0.1:{canary.port}/child.xml", None)])
    site.serve("/index.xml", index)
    site.serve("/sitemap.xml", f"<urlset>{rows}</urlset>")
    outcome = poll(sitemap_source(site.url("/sitemap.xml")))
    assert [i.url for i in outcome.items] == [site.url(f"/publications/{PUBLICATIONS[0].slug}")]
    assert site.hits("/publications/moved")  # fetched, its redirect refused
    assert site.url("/publications/moved") not in dict(outcome.seen_versions)  # retried later
    failed_index = poll(sitemap_source(site.url("/index.xml")))
    assert failed_index.items == ()
    assert canary.connections == 0


def test_index_loops_and_depth_are_bounded(site: LocalHTTPServer) -> None:
    site.serve("/a.xml", sitemap_index([(site.url("/b.xml"), None), (site.url("/a.xml"), None)]))
    site.serve("/b.xml", sitemap_index([(site.url("/a.xml"), None), (site.url("/c.xml"), None)]))
    site.serve("/c.xml", sitemap_index([(site.url("/d.xml"), None)]))
    site.serve("/d.xml", urlset(site, NEWS, news=True))
    outcome = poll(sitemap_source(site.url("/a.xml")))
    assert outcome.status == "ok" and outcome.items == ()
    assert len(site.hits("/a.xml")) == 1 and len(site.hits("/b.xml")) == 1
    assert len(site.hits("/c.xml")) == 1 and site.hits("/d.xml") == []  # depth 3: not read


def test_article_cap_leaves_the_rest_for_the_next_poll(site: LocalHTTPServer) -> None:
    root = serve_index(site)
    first = crawl(root, max_articles=2)
    assert len(first.items) == 2
    seen = dict(first.seen)
    assert site.url("/sitemap-pubs.xml.gz") not in seen  # not every wanted article was read
    second = crawl(root, max_articles=2, seen=seen)
    third = crawl(root, max_articles=2, seen={**seen, **dict(second.seen)})
    urls = [i.url for c in (first, second, third) for i in c.items]
    assert sorted(urls) == sorted(site.url(f"/publications/{p.slug}") for p in PUBLICATIONS)
    assert [i.url for i in first.items] == [
        site.url(f"/publications/{p.slug}") for p in PUBLICATIONS[:2]
    ]  # newest first


def test_robots_disallowed_articles_are_not_fetched(site: LocalHTTPServer) -> None:
    private = Publication("private/draft", "Draft", "Never to be fetched politely.", "2025-07-09")
    site.serve("/private/draft", article_html(private), "text/html")
    url = site.serve("/sitemap.xml", urlset(site, (*NEWS, private), news=False))
    outcome = poll(sitemap_source(url))
    assert len(outcome.items) == len(NEWS) and site.hits("/private/draft") == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body>Moved</body></html>", "not a sitemap"),
        (b"\x1f\x8b\x08\x00\x00\x00", "gzip"),
        (sitemap_index([("http://127.0.0.3:1/gone.xml", None)]), "no sitemap could be read"),
    ],
)
def test_unreadable_sitemaps_fail_with_one_line(
    site: LocalHTTPServer, body: bytes, reason: str
) -> None:
    outcome = poll(sitemap_source(site.serve("/sitemap.xml", body)))
    assert outcome.status == "failed"
    assert outcome.error is not None and reason in outcome.error and "\n" not in outcome.error


def test_one_failing_child_does_not_fail_the_others(site: LocalHTTPServer) -> None:
    site.serve("/news-sitemap.xml", urlset(site, NEWS, news=True))
    index = sitemap_index([(site.url("/missing.xml"), None), (site.url("/news-sitemap.xml"), None)])
    outcome = poll(sitemap_source(site.serve("/sitemap_index.xml", index)))
    assert outcome.status == "ok" and len(outcome.items) == len(NEWS)


def test_a_sitemap_added_without_kind_is_detected_and_crawled(site: LocalHTTPServer) -> None:
    from crawler.detect import detect_kind

    url = serve_index(site)
    source = replace(sitemap_source(url), kind=None)
    outcome = poll(source)
    assert outcome.status == "ok" and outcome.detected_kind == "sitemap"
    assert len(outcome.items) == len(PUBLICATIONS) and outcome.seen_versions

    async def detect(target: str) -> str:
        async with HttpClient(POLICY) as client:
            return (await detect_kind(client, target)).kind

    assert asyncio.run(detect(url)) == "sitemap"
    assert asyncio.run(detect(site.url("/sitemap-pubs.xml.gz"))) == "sitemap"
    assert asyncio.run(detect(site.url("/publications"))) == "page"


def test_candidates_are_bounded_across_files_and_the_rest_waits(
    site: LocalHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import crawler.sitemaps

    monkeypatch.setattr(crawler.sitemaps, "MAX_CANDIDATES", 2)
    root = serve_index(site)
    seen: dict[str, datetime | None] = {}
    found: list[str] = []
    for _ in range(3):
        result = crawl(root, seen=seen)
        assert len(result.items) <= 2
        found += [i.url for i in result.items]
        if not found[2:]:  # first crawl: the gzip file overflowed, the news file was not read
            assert not {site.url("/news-sitemap.xml"), site.url("/sitemap-pubs.xml.gz")} & set(
                dict(result.seen)
            )
        seen |= dict(result.seen)
    assert sorted(found) == sorted(site.url(f"/publications/{p.slug}") for p in PUBLICATIONS)
