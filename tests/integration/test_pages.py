"""Listing pages, robots.txt, kind detection and poll_source against a local server."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crawler.addresses import AddressPolicy
from crawler.crawl_records import Source
from crawler.detect import detect_kind
from crawler.fetch import FetchPolicy, HttpClient
from crawler.poll import poll_source
from tests.support.httpserver import LocalHTTPServer

NOW = datetime(2025, 7, 10, tzinfo=UTC)
FEEDS = Path(__file__).parent.parent / "fixtures" / "feeds"
POLICY = FetchPolicy(
    timeout=2.0,
    address_policy=AddressPolicy(allowed=(ipaddress.ip_network("127.0.0.1/32"),)),
    per_host_delay=0.0,
    per_host_concurrency=4,
)
CHROME = """<header><a href="/">Home</a><a href="/about">About us</a></header>
<nav><a href="/topics/korea">Korea</a><a href="/topics/russia">Russia</a></nav>"""
FOOTER = """<footer><p>Copyright 2025 Example Institute. Contact press office.</p>
<a href="/privacy">Privacy</a></footer>"""


def article(title: str, body: str, date: str) -> str:
    related = """<aside class="related"><h3>Related</h3><ul>
    <li><a href="/pubs/older-one">An older report about fisheries policy</a></li></ul></aside>"""
    paragraphs = "".join(f"<p>{body} Paragraph {i} adds analysis and detail.</p>" for i in range(4))
    return f"""<html lang="en"><head><title>{title} | Example Institute</title>
    <meta property="article:published_time" content="{date}"></head>
    <body>{CHROME}<main><article><h1>{title}</h1>{paragraphs}</article>{related}</main>
    {FOOTER}</body></html>"""


LISTING = f"""<html><head><title>Publications</title></head><body>{CHROME}
<main><ul class="pubs">
<li><a href="/pubs/pantsir?utm_source=list">Pantsir in North Korea</a></li>
<li><a href="/pubs/s400">S-400 in Belarus</a></li>
<li><a href="/private/draft">Draft (robots disallow)</a></li>
</ul>
<div class="promo"><a href="/pubs/promo">Subscribe to our newsletter</a></div>
<a rel="next" href="/pubs?page=2">Next</a></main>{FOOTER}</body></html>"""
PAGE_2 = f"""<html><body>{CHROME}<main><ul class="pubs">
<li><a href="/pubs/hq9">HQ-9 on the strait</a></li></ul></main>{FOOTER}</body></html>"""

ARTICLES = {
    "/pubs/pantsir": ("Pantsir in North Korea", "North Korea fielded the Pantsir system."),
    "/pubs/s400": ("S-400 in Belarus", "Belarus hosts S-400 batteries near Minsk."),
    "/pubs/hq9": ("HQ-9 on the strait", "The PLA moved HQ-9 launchers to the coast."),
    "/pubs/promo": ("Subscribe", "Our newsletter brings analysis weekly to readers."),
    "/private/draft": ("Draft", "This draft must never be fetched by a polite crawler."),
}


@pytest.fixture(scope="module")
def site() -> Iterator[LocalHTTPServer]:
    server = LocalHTTPServer().start()
    server.serve("/pubs", LISTING, "text/html; charset=utf-8")
    server.route("/pubs?page=2", (200, {"Content-Type": "text/html"}, PAGE_2.encode()))
    server.serve("/robots.txt", "User-agent: *\nDisallow: /private/\n", "text/plain")
    for path, (title, body) in ARTICLES.items():
        server.serve(path, article(title, body, "2025-07-03T10:00:00Z"), "text/html")
    yield server
    server.stop()


def run(coro_fn: Any) -> Any:
    async def go() -> Any:
        async with HttpClient(POLICY) as client:
            return await coro_fn(client)

    return asyncio.run(go())


def page_source(url: str, css: str | None = None) -> Source:
    return Source(id=1, name="institute", url=url, kind="page", every_seconds=900, links_css=css)


def test_listing_with_css_selector_follows_pagination_and_extracts_main_text(
    site: LocalHTTPServer,
) -> None:
    source = page_source(site.url("/pubs"), css="ul.pubs a")
    outcome = run(lambda c: poll_source(source, c, now=NOW))
    assert outcome.status == "ok", outcome.error
    by_url = {i.url: i for i in outcome.items}
    assert sorted(by_url) == sorted(
        site.url(p) for p in ("/pubs/pantsir", "/pubs/s400", "/pubs/hq9")
    )
    pantsir = by_url[site.url("/pubs/pantsir")]
    assert pantsir.title == "Pantsir in North Korea"
    assert "North Korea fielded the Pantsir system." in pantsir.text
    for chrome in ("About us", "Copyright", "fisheries", "Related", "Privacy"):
        assert chrome not in pantsir.text
    assert pantsir.published == datetime(2025, 7, 3, 10, 0, tzinfo=UTC)  # the time is kept (#17)
    assert pantsir.language == "en"
    assert sorted(outcome.seen_links) == sorted(by_url)
    assert site.hits("/private/draft") == [] and site.hits("/pubs/promo") == []


def test_default_links_skip_navigation_and_robots_disallowed(site: LocalHTTPServer) -> None:
    outcome = run(lambda c: poll_source(page_source(site.url("/pubs")), c, now=NOW))
    urls = {i.url for i in outcome.items}
    assert site.url("/pubs/promo") in urls  # no selector: the promo box is in <main>
    assert site.url("/private/draft") not in urls and site.hits("/private/draft") == []
    assert not any("/topics/" in u or "/about" in u for u in outcome.seen_links)


def test_seen_links_are_not_fetched_again(site: LocalHTTPServer) -> None:
    seen = {site.url("/pubs/pantsir"), site.url("/pubs/s400")}
    before = len(site.hits("/pubs/pantsir"))
    source = page_source(site.url("/pubs"), css="ul.pubs a")
    outcome = run(lambda c: poll_source(source, c, now=NOW, seen_links=seen))
    assert len(site.hits("/pubs/pantsir")) == before
    assert {i.url for i in outcome.items} == {site.url("/pubs/hq9")}


def test_unchanged_listing_is_not_modified_without_parsing(site: LocalHTTPServer) -> None:
    import hashlib

    source = page_source(site.url("/pubs"))
    source = Source(
        **{**_fields(source), "body_hash": hashlib.sha256(LISTING.encode()).hexdigest()}
    )
    before = len(site.hits("/pubs/pantsir"))
    outcome = run(lambda c: poll_source(source, c, now=NOW))
    assert outcome.status == "not_modified" and len(site.hits("/pubs/pantsir")) == before


def _fields(source: Source) -> dict[str, Any]:
    return {name: getattr(source, name) for name in Source.__slots__}


def test_detect_kind(site: LocalHTTPServer) -> None:
    site.serve("/feed.xml", (FEEDS / "rss20.xml").read_bytes(), "text/html")  # wrong type
    site.serve(
        "/home",
        '<html><head><title>Home</title><link rel="alternate" type="application/rss+xml" '
        'href="/feed.xml"></head><body><p>hi</p></body></html>',
        "text/html",
    )
    site.serve("/feed.json", (FEEDS / "jsonfeed.json").read_bytes(), "application/json")

    async def detect_all(client: HttpClient) -> list[Any]:
        return [
            await detect_kind(client, site.url(p))
            for p in ("/feed.xml", "/home", "/pubs", "/feed.json")
        ]

    feed, home, listing, json_feed = run(detect_all)
    assert (feed.kind, feed.title) == ("feed", "Institute for the Study of War")
    assert (home.kind, home.url) == ("feed", site.url("/feed.xml"))
    assert (listing.kind, listing.url, listing.title) == ("page", site.url("/pubs"), "Publications")
    assert (json_feed.kind, json_feed.title) == ("feed", "Defence Blog")


def test_poll_feed_then_304_then_same_body(site: LocalHTTPServer) -> None:
    body = (FEEDS / "rss20.xml").read_bytes()

    def handler(req: Any) -> Any:
        if req.headers.get("If-None-Match") == '"e1"':
            return 304, {"ETag": '"e1"'}, b""
        return 200, {"ETag": '"e1"', "Cache-Control": "max-age=7200"}, body

    site.route("/isw", handler)
    site.serve("/isw-no-etag", body, "application/rss+xml")
    source = Source(id=7, name="isw", url=site.url("/isw"), kind=None, every_seconds=900)
    first = run(lambda c: poll_source(source, c, now=NOW))
    assert first.status == "ok" and len(first.items) == 2 and first.detected_kind == "feed"
    assert first.etag == '"e1"' and first.min_interval_seconds == 7200  # max(ttl 3600, max-age)
    again = Source(**{**_fields(source), "etag": first.etag, "body_hash": first.body_hash})
    assert run(lambda c: poll_source(again, c, now=NOW)).status == "not_modified"
    no_etag = Source(**{**_fields(again), "url": site.url("/isw-no-etag"), "etag": None})
    assert run(lambda c: poll_source(no_etag, c, now=NOW)).status == "not_modified"


@pytest.mark.parametrize(
    ("path", "response", "fragment"),
    [
        ("/gone", (404, {}, b"no"), "HTTP 404"),
        ("/boom", (500, {}, b"err"), "HTTP 500"),
        (
            "/random",
            (200, {"Content-Type": "application/rss+xml"}, bytes(range(256)) * 8),
            "not a feed",
        ),
        ("/busy", (429, {"Retry-After": "30"}, b""), "HTTP 429"),
    ],
)
def test_poll_failures_are_recorded_not_raised(
    site: LocalHTTPServer, path: str, response: Any, fragment: str
) -> None:
    site.route(path, response)
    source = Source(id=3, name="bad", url=site.url(path), kind="feed", every_seconds=900)
    outcome = run(lambda c: poll_source(source, c, now=NOW))
    assert outcome.status == "failed" and fragment in (outcome.error or "")
    assert "\n" not in (outcome.error or "")
    if path == "/busy":
        assert outcome.retry_after_seconds == 30


def test_poll_refused_address_is_recorded() -> None:
    source = Source(
        id=4, name="ssrf", url="http://169.254.169.254/latest/", kind="feed", every_seconds=60
    )
    outcome = run(lambda c: poll_source(source, c, now=NOW))
    assert outcome.status == "failed" and "refused address 169.254.169.254" in (outcome.error or "")


def test_poll_can_parse_in_a_worker_process(site: LocalHTTPServer) -> None:
    from concurrent.futures import ProcessPoolExecutor

    site.serve("/atom", (FEEDS / "atom.xml").read_bytes(), "application/atom+xml")
    source = Source(id=5, name="rand", url=site.url("/atom"), kind="feed", every_seconds=900)
    with ProcessPoolExecutor(max_workers=1) as pool:
        outcome = run(lambda c: poll_source(source, c, now=NOW, executor=pool))
    assert outcome.status == "ok" and outcome.items[0].title == "China’s Air Defence Build-up"
