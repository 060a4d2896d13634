"""Sources of kind `sitemap`: sitemap indexes, urlsets, Google News sitemaps, robots.txt.

Reading (pure, `read_sitemap`): lxml's incremental parser, namespace-aware,
with entities, DTDs, network access and huge trees off, so a hostile file
costs at most its capped size. gzip is recognised by its magic bytes (a
`.xml.gz` arrives as application/gzip, not as Content-Encoding) and undone
through the same bounded decoder as HTTP bodies, refused past
MAX_SITEMAP_BYTES (the protocol's 50 MB, uncompressed). At most
MAX_URLS_PER_FILE entries are read from one file. News fields are taken only
from the Google News namespace (an `image:title` is not a headline).

Crawling (`crawl_sitemap`): the root (already fetched by the caller) → child
sitemaps of an index, breadth first, at most `max_depth` levels below the
root and MAX_FILES files per poll, each URL once (loop guard) → the article
URLs that are wanted (`wanted`) → newest first, at most `max_articles`,
robots-allowed → fetched and extracted like a page source's articles, the
news sitemap's title, date and language taking precedence. Every fetch goes
through the caller's HttpClient, so the SSRF guard, size caps and per-host
politeness apply. Child sitemaps and articles must be on the site of the
file that lists them (the protocol's rule; it also keeps a hostile sitemap
from sending us around the web); sitemaps named by robots.txt may be
anywhere, as the protocol allows.

Memory across polls is a map url → version (the newer of `lastmod` and
`news:publication_date`), given by the caller and returned as `seen`: an
article is fetched when it is not in the map, or its version is newer than
the remembered one, and (when dated) not older than the window. A child
sitemap whose `lastmod` did not move is not fetched again; it is remembered
only once every wanted article it listed was fetched, so a capped or failed
poll does not hide articles from the next one.
"""

from __future__ import annotations

import asyncio
import io
import logging
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal

from lxml import etree
from protego import Protego

from crawler import CrawlError
from crawler.articles import extract_article
from crawler.crawl_records import Item, SeenVersion
from crawler.entries import usable_date
from crawler.fetch import FetchResult, HttpClient
from crawler.guard import parse_url
from crawler.links import same_site
from crawler.listings import HTML_ACCEPT, decode_html
from crawler.normalize import canonical_url, content_hash, one_line
from crawler.robots import RobotsCache, robots_for

log = logging.getLogger(__name__)

MAX_URLS_PER_FILE = 50_000
MAX_SITEMAP_BYTES = 50 * 1024 * 1024
MAX_DEPTH = 2  # root index → index → urlset; the protocol itself allows one level
MAX_FILES = 100
MAX_ARTICLES = 50
MAX_CANDIDATES = 50_000  # wanted URLs held in one poll (memory bound across files)
DEFAULT_WINDOW = timedelta(days=7)
MAX_TITLE_CHARS = 1000
SITEMAP_ACCEPT = "application/xml, text/xml;q=0.9, application/gzip;q=0.8, */*;q=0.1"
NEWS_NS_PREFIX = "http://www.google.com/schemas/sitemap-news/"
_GZIP_MAGIC = b"\x1f\x8b"
_NO_SEEN: Mapping[str, datetime | None] = MappingProxyType({})


class _Old:
    """Marker: an entry dated before the window, skipped while reading."""


OLD = _Old()


class SitemapError(CrawlError):
    """A body that is not a readable sitemap (bad XML, wrong root, too large)."""


@dataclass(frozen=True, slots=True)
class SitemapEntry:
    """One `<url>` or `<sitemap>` of a file; `url` is canonical, dates are UTC."""

    url: str
    lastmod: datetime | None = None
    news_title: str | None = None
    news_published: datetime | None = None
    news_language: str | None = None

    @property
    def version(self) -> datetime | None:
        """The newest date the file gives for this URL: what "changed" is measured by."""
        dates = [d for d in (self.lastmod, self.news_published) if d is not None]
        return max(dates) if dates else None


@dataclass(frozen=True, slots=True)
class ParsedSitemap:
    kind: Literal["index", "urlset"]
    entries: tuple[SitemapEntry, ...]
    truncated: bool = False  # more than MAX_URLS_PER_FILE entries; the rest ignored
    invalid: int = 0  # entries without a usable http(s) <loc>
    old: int = 0  # entries dated before `since`, left out


@dataclass(frozen=True, slots=True)
class SitemapCrawl:
    items: tuple[Item, ...]
    seen: tuple[SeenVersion, ...]  # (url, version) to remember: articles fetched, files done
    files: int = 0
    failed_files: int = 0
    failed_articles: int = 0
    first_error: str | None = None


# --------------------------------------------------------------------- reading


def read_sitemap(
    body: bytes,
    *,
    max_bytes: int = MAX_SITEMAP_BYTES,
    max_urls: int = MAX_URLS_PER_FILE,
    since: datetime | None = None,
) -> ParsedSitemap:
    """Entries of a sitemap index or urlset (gzip or not); SitemapError if unreadable.

    With `since`, entries dated before it are left out (counted in `old`):
    most of a large sitemap is old, and skipping it before canonicalising
    its URL is what makes reading fast.
    """
    data = gunzip_capped(body, max_bytes) if body[:2] == _GZIP_MAGIC else body
    if len(data) > max_bytes:
        raise SitemapError(f"sitemap larger than {max_bytes} bytes")
    entries: list[SitemapEntry] = []
    invalid = old = 0
    truncated = False
    parser = etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    root = None
    try:
        for element in _entry_elements(parser):
            root = element.getparent()
            if len(entries) >= max_urls:
                truncated = True
                break
            entry = _entry(element, since)
            if entry is None:
                invalid += 1
            elif isinstance(entry, _Old):
                old += 1
            else:
                entries.append(entry)
            _release(element)
        root = root if root is not None else parser.root
    except etree.XMLSyntaxError as e:
        raise SitemapError(f"not a sitemap: bad XML ({_one_line(e)})") from e
    if root is not None and root.getroottree().docinfo.internalDTD is not None:
        raise SitemapError("not a sitemap: a document type declaration is refused")
    kind = _root_kind(root)
    return ParsedSitemap(kind, tuple(entries), truncated, invalid, old)


def gunzip_capped(body: bytes, max_bytes: int) -> bytes:
    """gzip undone with at most `max_bytes + 1` bytes ever produced (bomb-safe).

    Truncated or corrupt streams are refused rather than read in part: a
    partial urlset would silently lose its tail.
    """
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = decoder.decompress(body, max_bytes + 1)
    except zlib.error as e:
        raise SitemapError("corrupt gzip sitemap") from e
    if len(data) > max_bytes:
        raise SitemapError(f"sitemap larger than {max_bytes} bytes after gunzip")
    if not decoder.eof:
        raise SitemapError("truncated gzip sitemap")
    return data


def robots_sitemaps(body: bytes, robots_url: str) -> tuple[str, ...]:
    """The `Sitemap:` URLs of a robots.txt, absolute, http(s) only, once each."""
    text = body[: 512 * 1024].decode("utf-8", "replace")
    found: list[str] = []
    for raw in Protego.parse(text).sitemaps:
        url = _absolute(str(raw), robots_url)
        if url is not None and url not in found:
            found.append(url)
    return tuple(found)


def is_robots_url(url: str) -> bool:
    return parse_url(url).path == "/robots.txt"


def _entry_elements(parser: etree.iterparse) -> Iterator[etree._Element]:
    """`<url>` / `<sitemap>` elements that are direct children of the root."""
    for _event, element in parser:
        tag = element.tag
        if not isinstance(tag, str) or _local(tag) not in ("url", "sitemap"):
            continue
        parent = element.getparent()
        if parent is not None and parent.getparent() is None:
            yield element


def _entry(element: etree._Element, since: datetime | None) -> SitemapEntry | _Old | None:
    """The entry, None when its <loc> is unusable, OLD when dated before `since`."""
    loc = lastmod = None
    title = published = language = None
    for child in element:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        name = _local(tag)
        if name == "loc" and not tag.startswith("{" + NEWS_NS_PREFIX):
            loc = (child.text or "").strip()
        elif name == "lastmod":
            lastmod = parse_w3c_date(child.text or "")
        elif name == "news" and _namespace(tag).startswith(NEWS_NS_PREFIX):
            title, published, language = _news(child)
    if since is not None:
        dates = [d for d in (lastmod, published) if d is not None]
        if dates and max(dates) < since:
            return OLD  # decided before the (costly) URL canonicalisation
    url = _absolute(loc, None) if loc else None
    if url is None:
        return None
    return SitemapEntry(url, lastmod, title, published, language)


def _news(element: etree._Element) -> tuple[str | None, datetime | None, str | None]:
    """(title, publication date, language) of a <news:news> element."""
    title = published = language = None
    for child in element.iter():
        tag = child.tag
        if not isinstance(tag, str) or not _namespace(tag).startswith(NEWS_NS_PREFIX):
            continue
        name = _local(tag)
        if name == "title":
            title = one_line(child.text or "")[:MAX_TITLE_CHARS] or None
        elif name == "publication_date":
            published = parse_w3c_date(child.text or "")
        elif name == "language":
            language = _language(child.text or "")
    return title, published, language


def _release(element: etree._Element) -> None:
    """Free what was parsed so far: memory stays flat on a 50,000-URL file."""
    element.clear()
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


def _root_kind(root: etree._Element | None) -> Literal["index", "urlset"]:
    name = _local(root.tag) if root is not None and isinstance(root.tag, str) else ""
    if name == "sitemapindex":
        return "index"
    if name == "urlset":
        return "urlset"
    raise SitemapError(f"not a sitemap: root element <{name[:40] or '?'}>")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


def _absolute(url: str | None, base: str | None) -> str | None:
    """The canonical absolute http(s) URL, or None for anything else."""
    if not url:
        return None
    from urllib.parse import urljoin

    text = urljoin(base, url.strip()) if base else url.strip()
    try:
        parse_url(text)
        return canonical_url(text)
    except (CrawlError, ValueError):
        return None


def parse_w3c_date(text: str) -> datetime | None:
    """A W3C datetime (YYYY, YYYY-MM, YYYY-MM-DD, with time and zone) in UTC, or None."""
    text = text.strip()
    if not text or len(text) > 40:
        return None
    try:
        if len(text) == 4 and text.isdigit():
            parsed = datetime(int(text), 1, 1)
        elif len(text) == 7 and text[4] == "-":
            parsed = datetime(int(text[:4]), int(text[5:]), 1)
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _language(text: str) -> str | None:
    code = text.strip().lower()
    return code[:2] if len(code) >= 2 and code[:2].isalpha() and code[:2].isascii() else None


# ------------------------------------------------------------------- deciding


def wanted(entry: SitemapEntry, seen: Mapping[str, datetime | None], *, cutoff: datetime) -> bool:
    """Fetch this URL? New or newer than remembered, and not dated before `cutoff`."""
    version = entry.version
    if version is not None and version < cutoff:
        return False
    if entry.url not in seen:
        return True
    previous = seen[entry.url]
    return version is not None and (previous is None or version > previous)


def newest_first(entries: list[SitemapEntry], limit: int) -> list[SitemapEntry]:
    """At most `limit` entries, dated ones newest first, undated ones after them."""
    floor = datetime.min.replace(tzinfo=UTC)
    ordered = sorted(entries, key=lambda e: (e.version is not None, e.version or floor))
    return list(reversed(ordered))[:limit]


# ------------------------------------------------------------------- crawling


@dataclass
class _Walk:
    """Mutable state of one crawl (local to crawl_sitemap)."""

    queue: deque[tuple[str, int]]  # (sitemap file url, depth below the root)
    visited: set[str]
    candidates: dict[str, tuple[SitemapEntry, str]]  # url → (entry, file that listed it)
    listed: dict[str, datetime | None]  # child file → its lastmod in the index
    files_done: dict[str, datetime | None]  # child files read, with that lastmod
    overflow: set[str] = field(default_factory=set)  # files whose wanted URLs did not fit
    files: int = 0
    urlsets: int = 0
    failed_files: int = 0
    first_error: str | None = None


async def crawl_sitemap(
    client: HttpClient,
    root: FetchResult,
    *,
    now: datetime,
    seen: Mapping[str, datetime | None] = _NO_SEEN,
    robots: RobotsCache | None = None,
    window: timedelta = DEFAULT_WINDOW,
    max_articles: int = MAX_ARTICLES,
    max_depth: int = MAX_DEPTH,
    max_files: int = MAX_FILES,
) -> SitemapCrawl:
    """Items of the sitemap's new articles (see the module docstring).

    SitemapError when the root itself is unreadable, or when every sitemap
    file failed; a failed child file or article is logged and skipped.
    """
    robots = robots or robots_for(client)
    walk = _Walk(deque(), {canonical_url(root.url)}, {}, {}, {})
    if is_robots_url(root.url):
        for url in robots_sitemaps(root.body, root.url):
            walk.queue.append((url, 0))
    else:
        first = await asyncio.to_thread(read_sitemap, root.body, since=now - window)
        _take(walk, root.url, first, 0, seen, now - window, max_depth)
        walk.files = 1
    while walk.queue and walk.files < max_files and len(walk.candidates) < MAX_CANDIDATES:
        url, depth = walk.queue.popleft()
        if url in walk.visited:
            continue
        walk.visited.add(url)
        parsed = await _read_file(client, url, walk, now - window)
        if parsed is not None:
            walk.files_done[url] = walk.listed.get(url)
            _take(walk, url, parsed, depth, seen, now - window, max_depth)
    if walk.urlsets == 0 and walk.failed_files:
        raise SitemapError(f"no sitemap could be read: {walk.first_error}")
    chosen = newest_first([e for e, _ in walk.candidates.values()], max_articles)
    return await _fetch_articles(client, robots, walk, chosen, now)


async def _read_file(
    client: HttpClient, url: str, walk: _Walk, since: datetime
) -> ParsedSitemap | None:
    try:
        result = await client.get(url, accept=SITEMAP_ACCEPT)
        parsed = await asyncio.to_thread(read_sitemap, result.body, since=since)
    except CrawlError as e:
        walk.failed_files += 1
        walk.first_error = walk.first_error or _one_line(e)
        log.warning("sitemap_file status=failed url=%s error=%s", url, _one_line(e))
        return None
    walk.files += 1
    return parsed


def _take(
    walk: _Walk,
    file_url: str,
    parsed: ParsedSitemap,
    depth: int,
    seen: Mapping[str, datetime | None],
    cutoff: datetime,
    max_depth: int,
) -> None:
    """Queue an index's children, or collect a urlset's wanted articles."""
    walk.urlsets += parsed.kind == "urlset"
    for entry in parsed.entries:
        if not same_site(entry.url, file_url):
            continue
        if parsed.kind == "urlset":
            if entry.url in walk.candidates or not wanted(entry, seen, cutoff=cutoff):
                continue
            if len(walk.candidates) >= MAX_CANDIDATES:
                walk.overflow.add(file_url)
                return
            walk.candidates[entry.url] = (entry, file_url)
        elif depth < max_depth and entry.url not in walk.visited:
            if entry.lastmod is not None and not wanted(entry, seen, cutoff=cutoff):
                continue  # unchanged since it was last read completely, or too old
            walk.queue.append((entry.url, depth + 1))
            walk.listed.setdefault(entry.url, entry.lastmod)


async def _fetch_articles(
    client: HttpClient,
    robots: RobotsCache,
    walk: _Walk,
    chosen: list[SitemapEntry],
    now: datetime,
) -> SitemapCrawl:
    allowed = [e for e in chosen if await robots.allowed(e.url)]
    results = await asyncio.gather(*(_article(client, e, now) for e in allowed))
    items = tuple(item for _, item, ok in results if ok and item is not None)
    done: list[SeenVersion] = [(e.url, e.version) for e, _, ok in results if ok]
    incomplete = {walk.candidates[e.url][1] for e, _, ok in results if not ok}
    chosen_urls = {e.url for e in chosen}
    incomplete |= {src for url, (_, src) in walk.candidates.items() if url not in chosen_urls}
    incomplete |= walk.overflow
    files: list[SeenVersion] = [
        (u, v) for u, v in walk.files_done.items() if u not in incomplete and v is not None
    ]
    failed = sum(1 for _, _, ok in results if not ok)
    log.info(
        "sitemap status=ok files=%d failed_files=%d candidates=%d items=%d failed=%d",
        walk.files,
        walk.failed_files,
        len(walk.candidates),
        len(items),
        failed,
    )
    return SitemapCrawl(
        items, tuple(done + files), walk.files, walk.failed_files, failed, walk.first_error
    )


async def _article(
    client: HttpClient, entry: SitemapEntry, now: datetime
) -> tuple[SitemapEntry, Item | None, bool]:
    """(entry, item or None, fetched?) — the news fields override what the page says."""
    try:
        result = await client.get(entry.url, accept=HTML_ACCEPT)
    except CrawlError as e:
        log.warning("article status=failed url=%s error=%s", entry.url, e)
        return entry, None, False
    item = None
    if "html" in result.content_type.lower() or not result.content_type:
        html = decode_html(result)
        item = await asyncio.to_thread(extract_article, html, entry.url, fetched_at=now)
    return entry, with_news(item, entry, now), True


def with_news(item: Item | None, entry: SitemapEntry, now: datetime) -> Item | None:
    """The article's item with the news sitemap's title, date and language on top.

    A news entry whose page has no extractable text still yields an item
    (its headline), since the headline is what the publisher announced.
    """
    if entry.news_title is None and item is None:
        return None
    base = item or Item(entry.url, entry.url, "", "", "", now, None, "", dated=False)
    title = entry.news_title or base.title
    news_date = usable_date(entry.news_published, now)
    return replace(
        base,
        title=title,
        published=news_date or base.published,
        dated=news_date is not None or base.dated,
        language=entry.news_language or base.language,
        content_hash=content_hash(title, base.text),
    )


def _one_line(error: object) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__
