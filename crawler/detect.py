"""What kind of source a URL is: a feed, a sitemap, an HTML page advertising a feed, or a
listing page.

Sniffing looks at the body, not only the Content-Type: many servers send
feeds as text/html or text/plain, and HTML as text/xml.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from parsel import Selector

from crawler import CrawlError
from crawler.charsets import narrow_head
from crawler.crawl_records import SourceKind
from crawler.feeds import is_json_feed, parse_feed
from crawler.fetch import HttpClient
from crawler.listings import decode_html
from crawler.normalize import join_url

log = logging.getLogger(__name__)

FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
_FEED_ROOT = re.compile(rb"<(?:[A-Za-z0-9_-]+:)?(rss|feed|RDF)[\s>]")
_HTML_ROOT = re.compile(rb"<(?:!doctype\s+html|html[\s>])", re.IGNORECASE)
_SITEMAP_ROOT = re.compile(rb"<(?:[A-Za-z0-9_-]+:)?(urlset|sitemapindex)[\s>]")
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class Detected:
    kind: SourceKind
    url: str
    title: str | None


def sniff_kind(body: bytes, content_type: str = "") -> SourceKind:
    """ "feed" if the body is RSS, Atom or JSON Feed, "sitemap" if it is a
    urlset or sitemap index (or gzip data, as `.xml.gz` sitemaps arrive),
    else "page"; pure."""
    if is_json_feed(body, content_type):
        return "feed"
    if body[:2] == _GZIP_MAGIC:
        return "sitemap"
    head = narrow_head(body)
    feed = _FEED_ROOT.search(head)
    html = _HTML_ROOT.search(head)
    sitemap = _SITEMAP_ROOT.search(head)
    first = min((m for m in (feed, html, sitemap) if m), key=lambda m: m.start(), default=None)
    if first is not None and first is feed:
        return "feed"
    if first is not None and first is sitemap:
        return "sitemap"
    return "page"


def advertised_feed(html: str, page_url: str) -> str | None:
    """The first feed a page advertises with <link rel="alternate" type=…>; pure."""
    selector = Selector(text=html)
    for link in selector.xpath("//link[@href]"):
        rel = (link.attrib.get("rel") or "").lower().split()
        kind = (link.attrib.get("type") or "").lower().split(";")[0].strip()
        if "alternate" in rel and kind in FEED_TYPES:
            joined = join_url(page_url, link.attrib["href"])
            if joined is not None:  # a malformed href is skipped, not fatal
                return joined
    return None


async def detect_kind(client: HttpClient, url: str) -> Detected:
    """Fetch `url` and decide; an advertised feed is fetched once to confirm it.

    Raises CrawlError when `url` itself cannot be fetched.
    """
    result = await client.get(url)
    sniffed = sniff_kind(result.body, result.content_type)
    if sniffed == "sitemap":
        return Detected("sitemap", url, None)
    if sniffed == "feed":
        parsed = parse_feed(
            result.body, url=result.url, headers=result.headers, fetched_at=datetime.now(UTC)
        )
        return Detected("feed", url, parsed.title)
    html = decode_html(result)
    title = _page_title(html)
    feed_url = advertised_feed(html, result.url)
    if feed_url is not None:
        try:
            feed = await client.get(feed_url)
            if sniff_kind(feed.body, feed.content_type) == "feed":
                parsed = parse_feed(
                    feed.body, url=feed.url, headers=feed.headers, fetched_at=datetime.now(UTC)
                )
                return Detected("feed", feed_url, parsed.title or title)
        except CrawlError as e:
            log.info("detect status=feed_unusable url=%s error=%s", feed_url, e)
    return Detected("page", url, title)


def _page_title(html: str) -> str | None:
    title = Selector(text=html).xpath("//title/text()").get()
    return " ".join(title.split()) or None if title else None
