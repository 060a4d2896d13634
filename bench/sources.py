"""Sources beyond feeds: sitemap parsing rate, and a spider run's overhead against a feed poll.

    python bench/sources.py                 # our reader; usp too if importable
    USP_PYTHON=/path/to/python python bench/sources.py   # usp from another venv

1. Sitemap URLs per second on a 50,000-URL Google News sitemap (the
   protocol's maximum), plain and gzip: crawler.sitemaps.read_sitemap
   (lxml iterparse) against ultimate-sitemap-parser 1.8.1 (expat, its own
   date parsing) fed from memory by a custom web client, same bytes.
2. A spider run (child process, Scrapy engine) against a feed poll
   (HttpClient + feedparser), both against one local server: the example
   think-tank spider (8 requests) and a feed of the same 5 articles.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
N_URLS = 50_000


def news_sitemap(n: int = N_URLS) -> bytes:
    start = datetime(2025, 7, 10, tzinfo=UTC)
    rows = []
    for i in range(n):
        when = (start - timedelta(minutes=i)).isoformat()
        rows.append(
            f"<url><loc>https://www.example.org/news/{i}/some-headline-slug</loc>"
            f"<lastmod>{when}</lastmod><news:news><news:publication><news:name>Example</news:name>"
            f"<news:language>en</news:language></news:publication>"
            f"<news:publication_date>{when}</news:publication_date>"
            f"<news:title>Headline number {i} about air defence</news:title></news:news></url>"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><urlset '
        'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">' + "".join(rows) + "</urlset>"
    ).encode()


def best_of(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def ours(body: bytes, since: datetime | None = None) -> float:
    """URLs read per second (every <url>, whether kept or left out as old)."""
    from crawler.sitemaps import read_sitemap

    parsed = read_sitemap(body, since=since)
    assert len(parsed.entries) + parsed.old == N_URLS
    return N_URLS / best_of(lambda: read_sitemap(body, since=since))


def usp(body: bytes) -> float:
    """usp's SitemapFetcher with an in-memory web client (no network).

    usp decides "gzip" from the URL's extension or the Content-Type, not the
    bytes, so the gzip case is served as sitemap.xml.gz, application/gzip.
    """
    packed = body[:2] == b"\x1f\x8b"
    name = "https://www.example.org/sitemap.xml" + (".gz" if packed else "")
    ctype = "application/gzip" if packed else "application/xml"
    from usp.fetch_parse import SitemapFetcher
    from usp.web_client.abstract_client import (
        AbstractWebClient,
        AbstractWebClientSuccessResponse,
    )

    class Response(AbstractWebClientSuccessResponse):
        def status_code(self) -> int:
            return 200

        def status_message(self) -> str:
            return "OK"

        def header(self, name: str) -> str | None:
            return ctype if name.lower() == "content-type" else None

        def raw_data(self) -> bytes:
            return body

        def url(self) -> str:
            return name

    class Client(AbstractWebClient):
        def set_max_response_data_length(self, max_response_data_length: int | None) -> None:
            pass

        def get(self, url: str) -> Response:
            return Response()

    def run() -> int:
        fetcher = SitemapFetcher(url=name, recursion_level=0, web_client=Client())
        sitemap = fetcher.sitemap()
        return len(list(sitemap.all_pages()))

    n = run()
    assert n == N_URLS, n
    return n / best_of(run)


def usp_elsewhere(path: Path) -> dict[str, float] | None:
    python = os.environ.get("USP_PYTHON")
    if not python:
        return None
    out = subprocess.run(
        [python, __file__, "--usp-only", str(path)], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def sitemap_bench() -> None:
    plain = news_sitemap()
    packed = gzip.compress(plain)
    print(
        f"news sitemap: {N_URLS} URLs, {len(plain) / 1e6:.1f} MB, gzip {len(packed) / 1e6:.1f} MB"
    )
    mine = {"plain": ours(plain), "gzip": ours(packed)}
    week = datetime(2025, 7, 10, tzinfo=UTC) - timedelta(days=7)
    windowed = {"plain": ours(plain, week), "gzip": ours(packed, week)}
    theirs: dict[str, float] | None
    try:
        theirs = {"plain": usp(plain), "gzip": usp(packed)}
    except ImportError:
        tmp = Path("/tmp/newswatch-bench-sitemap.xml")
        tmp.write_bytes(plain)
        theirs = usp_elsewhere(tmp)
    for kind in ("plain", "gzip"):
        line = f"  {kind:5}  read_sitemap (lxml) {mine[kind]:>9,.0f} URLs/s"
        if theirs:
            ratio = mine[kind] / theirs[kind]
            line += f"   usp 1.8.1 {theirs[kind]:>9,.0f} URLs/s   ratio {ratio:.1f}x"
        print(line)
        print(f"         with the 7-day window   {windowed[kind]:>9,.0f} URLs/s (~20% kept)")
    if not theirs:
        print("  (ultimate-sitemap-parser not importable; set USP_PYTHON to compare)")


async def feed_poll(url: str) -> float:
    from crawler.addresses import AddressPolicy
    from crawler.crawl_records import Source
    from crawler.fetch import FetchPolicy, HttpClient
    from crawler.poll import poll_source

    policy = FetchPolicy(
        address_policy=AddressPolicy(allowed=(ipaddress.ip_network("127.0.0.1/32"),)),
        per_host_delay=0.0,
    )
    started = time.perf_counter()
    async with HttpClient(policy) as client:
        outcome = await poll_source(
            Source(1, "feed", url, "feed", 900), client, now=datetime.now(UTC)
        )
    assert outcome.status == "ok" and len(outcome.items) == 5, outcome
    return time.perf_counter() - started


async def spider_poll(url: str) -> float:
    from crawler.addresses import AddressPolicy
    from crawler.crawl_records import Source
    from crawler.fetch import FetchPolicy
    from crawler.spiders import SpiderLimits, poll_spider

    policy = FetchPolicy(
        address_policy=AddressPolicy(allowed=(ipaddress.ip_network("127.0.0.1/32"),)),
        per_host_delay=0.0,
        per_host_concurrency=4,
    )
    spec = f"{ROOT}/examples/spiders/thinktank.py:PublicationsSpider"
    started = time.perf_counter()
    outcome = await poll_spider(
        Source(1, "spider", url, "spider", 900, spider=spec),
        policy,
        limits=SpiderLimits(run_seconds=60),
    )
    assert outcome.status == "ok" and len(outcome.items) == 5, outcome.error
    return time.perf_counter() - started


def spider_bench() -> None:
    from tests.support.httpserver import LocalHTTPServer
    from tests.support.thinktank import PUBLICATIONS, serve_site

    server = LocalHTTPServer().start()
    serve_site(server)
    entries = "".join(
        f"<item><title>{p.title}</title><link>{server.url('/publications/' + p.slug)}</link>"
        f"<description>{p.body}</description>"
        "<pubDate>Tue, 08 Jul 2025 09:00:00 GMT</pubDate></item>"
        for p in PUBLICATIONS
    )
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>'
        f"{entries}</channel></rss>"
    )
    feed_url = server.serve("/feed.xml", rss, "application/rss+xml")
    try:
        feeds = [asyncio.run(feed_poll(feed_url)) for _ in range(5)]
        spiders = [asyncio.run(spider_poll(server.url("/publications"))) for _ in range(3)]
    finally:
        server.stop()
    feed_ms, spider_ms = statistics.median(feeds) * 1000, statistics.median(spiders) * 1000
    print("spider run vs feed poll (same 5 articles, local server, median):")
    print(f"  feed poll (HttpClient + feedparser, 1 request)   {feed_ms:8.1f} ms")
    print(f"  spider run (child process + Scrapy, 8 requests)  {spider_ms:8.1f} ms")
    print(
        f"  ratio {spider_ms / feed_ms:.0f}x; overhead per spider run ~{spider_ms - feed_ms:.0f} ms"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--usp-only":
        plain = Path(sys.argv[2]).read_bytes()
        print(json.dumps({"plain": usp(plain), "gzip": usp(gzip.compress(plain))}))
        return
    sitemap_bench()
    spider_bench()


if __name__ == "__main__":
    main()
