"""Sources of kind `page`: a listing page whose article links are followed.

Why not Scrapy's engine: every fetch must go through our one HttpClient so
that the SSRF guard, size cap, timeouts and per-host politeness are one
policy; running Twisted's reactor inside our asyncio crawl would mean a
second HTTP stack with its own rules (and it measured ~13x slower here). We
use the Scrapy project's own libraries for the page work instead: parsel for
selectors (crawler.links), protego for robots.txt (crawler.robots), w3lib
for URLs (crawler.normalize).

A poll: the listing (already fetched by the caller, with conditional GET)
→ its links (same site, optional CSS selector) → up to MAX_PAGINATION_DEPTH
further pages while they still yield unseen links → at most MAX_ARTICLES
unseen, robots-allowed articles, fetched concurrently (the client enforces
per-host limits) → trafilatura. A link whose fetch failed is not reported as
seen, so it is tried again next poll; a page without main text is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container
from dataclasses import dataclass
from datetime import datetime

from crawler import CrawlError
from crawler.articles import extract_article
from crawler.charsets import decode_document, html_declared_encoding
from crawler.crawl_records import Item
from crawler.fetch import FetchResult, HttpClient
from crawler.http_bodies import content_type_charset
from crawler.links import extract_links, find_next_page
from crawler.normalize import canonical_url
from crawler.robots import RobotsCache, robots_for

log = logging.getLogger(__name__)

MAX_ARTICLES = 50
MAX_PAGINATION_DEPTH = 2
HTML_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"


@dataclass(frozen=True, slots=True)
class ListingCrawl:
    items: tuple[Item, ...]
    fetched_links: tuple[str, ...]  # canonical links fetched to the end (with or without text)
    failed: int = 0
    disallowed: int = 0


def decode_html(result: FetchResult) -> str:
    declared = (html_declared_encoding(result.body), content_type_charset(result.content_type))
    return decode_document(result.body, declared=declared).text


async def crawl_listing(
    client: HttpClient,
    listing: FetchResult,
    *,
    now: datetime,
    css: str | None = None,
    seen_links: Container[str] = frozenset(),
    robots: RobotsCache | None = None,
    max_articles: int = MAX_ARTICLES,
    max_depth: int = MAX_PAGINATION_DEPTH,
) -> ListingCrawl:
    """Items of the listing's unseen articles (see the module docstring)."""
    robots = robots or robots_for(client)
    links = await _collect_links(client, listing, css, seen_links, robots, max_articles, max_depth)
    allowed: list[str] = []
    disallowed = 0
    for link in links:
        if await robots.allowed(link):
            allowed.append(link)
        else:
            disallowed += 1
    results = await asyncio.gather(*(_article(client, link, now) for link in allowed))
    items = tuple(item for _, item, ok in results if ok and item is not None)
    fetched = tuple(link for link, _, ok in results if ok)
    failed = sum(1 for _, _, ok in results if not ok)
    log.info(
        "listing status=ok url=%s articles=%d items=%d failed=%d disallowed=%d",
        listing.url,
        len(allowed),
        len(items),
        failed,
        disallowed,
    )
    return ListingCrawl(items, fetched, failed, disallowed)


async def _collect_links(
    client: HttpClient,
    page: FetchResult,
    css: str | None,
    seen_links: Container[str],
    robots: RobotsCache,
    max_articles: int,
    max_depth: int,
) -> list[str]:
    """Unseen article links from the listing and up to `max_depth` next pages."""
    wanted: list[str] = []
    visited = {canonical_url(page.url)}
    for depth in range(max_depth + 1):
        html = decode_html(page)
        next_page = find_next_page(html, page.url)
        new = [
            link
            for link in extract_links(html, page.url, css=css)
            if link not in seen_links and link not in wanted and link != next_page
        ]
        wanted.extend(new[: max_articles - len(wanted)])
        if len(wanted) >= max_articles or not new or depth == max_depth:
            break
        if next_page is None or next_page in visited or not await robots.allowed(next_page):
            break
        visited.add(next_page)
        try:
            page = await client.get(next_page, accept=HTML_ACCEPT)
        except CrawlError as e:
            log.warning("listing_page status=failed url=%s error=%s", next_page, e)
            break
    return wanted


async def _article(client: HttpClient, link: str, now: datetime) -> tuple[str, Item | None, bool]:
    """(link, item or None, fetched?) — fetch errors are logged, never raised."""
    try:
        result = await client.get(link, accept=HTML_ACCEPT)
    except CrawlError as e:
        log.warning("article status=failed url=%s error=%s", link, e)
        return link, None, False
    if "html" not in result.content_type.lower() and result.content_type:
        return link, None, True
    html = decode_html(result)
    item = await asyncio.to_thread(extract_article, html, link, fetched_at=now)
    return link, item, True
