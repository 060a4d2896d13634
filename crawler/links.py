"""Article links and the next page of a listing page, pure (parsel selectors).

"Same site" is approximated without the public-suffix list: hosts are equal
after dropping a leading "www.", or one is a subdomain of the other. That
keeps www.rand.org ↔ rand.org and news.example.co.uk ↔ example.co.uk
together and keeps other.co.uk out.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from cssselect import SelectorError
from parsel import Selector
from parsel.csstranslator import HTMLTranslator

from crawler import CrawlError
from crawler.normalize import canonical_url, join_url

# Without a CSS selector, links in these regions are navigation, not articles.
_DEFAULT_LINKS = (
    "//a[@href][not(ancestor::nav or ancestor::header or ancestor::footer or ancestor::aside"
    " or ancestor::*[@role='navigation'])]"
)
_NOT_ARTICLE_EXT = re.compile(
    r"\.(pdf|jpe?g|png|gif|webp|svg|zip|gz|mp3|mp4|avi|mov|docx?|xlsx?|pptx?|css|js|xml|rss)$",
    re.IGNORECASE,
)
_NOT_ARTICLE_SECTION = frozenset(
    {"tag", "tags", "category", "categories", "author", "authors", "search", "login", "page"}
)
NEXT_WORDS = frozenset(
    {
        "next",
        "next page",
        "older",
        "older posts",
        "older entries",
        "more",
        "›",
        "»",
        "next ›",
        "next »",
        "다음",
        "다음 페이지",
        "下一页",
        "下页",
        "далее",
        "следующая",
        "вперед",
        "вперёд",
    }
)


def site_host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return host.removeprefix("www.")


def same_site(url: str, site_url: str) -> bool:
    a, b = site_host(url), site_host(site_url)
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


def extract_links(html: str, base_url: str, *, css: str | None = None) -> list[str]:
    """Canonical same-site article links of a listing page, in page order, once each.

    With `css`, the selector names the links (an `a` element, an element
    containing links, or `::attr(href)`); without it, links outside
    navigation, header, footer and aside regions are taken, minus obvious
    non-articles (files, tag/category/author pages, the listing itself).
    """
    selector = Selector(text=html)
    base = _base_href(selector, base_url)
    hrefs = _css_hrefs(selector, css) if css else selector.xpath(_DEFAULT_LINKS + "/@href").getall()
    listing = _canonical(base_url)
    links: list[str] = []
    seen = {listing}
    for href in hrefs:
        link = _join(base, href)
        if link is None or link in seen or not same_site(link, base_url):
            continue
        if _NOT_ARTICLE_EXT.search(urlsplit(link).path):
            continue
        if not css and not _looks_like_article(link, listing):
            continue
        seen.add(link)
        links.append(link)
    return links


def find_next_page(html: str, base_url: str) -> str | None:
    """The next page of a listing: rel=next, else a link whose text says "next"."""
    selector = Selector(text=html)
    base = _base_href(selector, base_url)
    candidates = selector.xpath(
        "//link[contains(concat(' ', normalize-space(@rel), ' '), ' next ')]/@href"
        " | //a[contains(concat(' ', normalize-space(@rel), ' '), ' next ')]/@href"
    ).getall()
    for anchor in selector.xpath("//a[@href]"):
        text = " ".join(" ".join(anchor.xpath(".//text()").getall()).split()).lower()
        label = (anchor.attrib.get("aria-label") or "").strip().lower()
        if text in NEXT_WORDS or label in NEXT_WORDS:
            candidates.append(anchor.attrib["href"])
    for href in candidates:
        link = _join(base, href)
        if link is not None and link != _canonical(base_url) and same_site(link, base_url):
            return link
    return None


def check_css(css: str) -> str:
    """`css` if it is a selector `extract_links` can use (parsel's dialect,
    `::attr(href)` included); else CrawlError with the parser's reason.

    Checked when a source is added or imported, so a typo is a one-line
    error then rather than a failed poll every time the source is due.
    """
    css = css.strip()
    if not css or len(css) > 1_000:
        raise CrawlError("the links selector must be 1 to 1,000 characters")
    try:
        HTMLTranslator().css_to_xpath(css)
    except SelectorError as e:
        raise CrawlError(f"links selector {css!r} is not valid CSS: {e}") from e
    return css


def _css_hrefs(selector: Selector, css: str) -> list[str]:
    hrefs: list[str] = []
    for node in selector.css(css):
        if isinstance(node.root, str):
            hrefs.append(node.root)
        elif node.root.tag == "a":
            hrefs.extend(node.xpath("@href").getall())
        else:
            hrefs.extend(node.xpath(".//a/@href").getall())
    return hrefs


def _base_href(selector: Selector, url: str) -> str:
    """The page's `<base href>` resolved against its URL; the URL itself when
    there is none or it is malformed (`http://[::1`: urljoin raises)."""
    base = selector.xpath("//head/base/@href").get()
    return (join_url(url, base) or url) if base else url


def _join(base: str, href: str) -> str | None:
    joined = join_url(base, href)
    return None if joined is None else _canonical(joined)


def _looks_like_article(link: str, listing: str | None) -> bool:
    path = urlsplit(link).path
    if listing is not None and path == urlsplit(listing).path:
        return False  # the listing itself under another query: pagination, sorting
    segments = [s for s in path.split("/") if s]
    return bool(segments) and segments[0].lower() not in _NOT_ARTICLE_SECTION


def _canonical(url: str) -> str | None:
    try:
        if urlsplit(url).scheme not in ("http", "https"):
            return None
        return canonical_url(url)
    except ValueError:
        return None
