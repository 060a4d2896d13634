"""A local think-tank site: a paginated publication list, its articles, and sitemaps.

Used by the spider tests (examples/spiders/thinktank.py runs against it) and
the sitemap tests. Everything is served by tests.support.httpserver on
127.0.0.1.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

from tests.support.httpserver import LocalHTTPServer

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"


@dataclass(frozen=True)
class Publication:
    slug: str
    title: str
    body: str
    date: str  # ISO 8601


PUBLICATIONS = (
    Publication(
        "hq9-strait", "HQ-9 batteries on the strait", "The PLA moved HQ-9 launchers.", "2025-07-08"
    ),
    Publication(
        "s400-belarus",
        "S-400 in Belarus",
        "Belarus hosts S-400 batteries near Minsk.",
        "2025-07-07",
    ),
    Publication(
        "pantsir-korea",
        "Pantsir in North Korea",
        "North Korea fielded the Pantsir system.",
        "2025-07-06",
    ),
    Publication(
        "baltic-cables",
        "Baltic cable incidents",
        "Anchors dragged across Baltic cables again.",
        "2025-07-05",
    ),
    Publication(
        "arctic-bases",
        "Arctic bases reopened",
        "Russia reopened Soviet-era Arctic airfields.",
        "2025-07-04",
    ),
)
PER_PAGE = 2


def article_html(pub: Publication) -> str:
    paragraphs = "".join(f"<p>{pub.body} Paragraph {i} adds analysis.</p>" for i in range(4))
    return f"""<html lang="en"><head><title>{pub.title} | Example Institute</title>
    <meta property="article:published_time" content="{pub.date}T09:00:00Z"></head>
    <body><nav><a href="/">Home</a></nav><main><article><h1>{pub.title}</h1>
    <time datetime="{pub.date}T09:00:00Z">{pub.date}</time>
    <p class="lede">{pub.body}</p><div class="body">{paragraphs}</div></article></main>
    <footer>Copyright Example Institute</footer></body></html>"""


def listing_html(page: int, pages: int) -> str:
    pubs = PUBLICATIONS[(page - 1) * PER_PAGE : page * PER_PAGE]
    items = "".join(f'<li><a href="/publications/{p.slug}">{p.title}</a></li>' for p in pubs)
    more = f'<a rel="next" href="/publications?page={page + 1}">Next</a>' if page < pages else ""
    return f"""<html><body><nav><a href="/about">About</a></nav><main>
    <ul class="publications">{items}</ul>{more}</main></body></html>"""


def serve_site(
    server: LocalHTTPServer, robots: str = "User-agent: *\nDisallow: /private/\n"
) -> None:
    """The publication list (paginated), the articles and robots.txt."""
    pages = -(-len(PUBLICATIONS) // PER_PAGE)
    server.serve("/publications", listing_html(1, pages), "text/html; charset=utf-8")
    for page in range(2, pages + 1):
        body = listing_html(page, pages).encode()
        server.route(f"/publications?page={page}", (200, {"Content-Type": "text/html"}, body))
    for pub in PUBLICATIONS:
        server.serve(f"/publications/{pub.slug}", article_html(pub), "text/html; charset=utf-8")
    server.serve("/robots.txt", robots, "text/plain")


def urlset(server: LocalHTTPServer, pubs: tuple[Publication, ...], *, news: bool) -> bytes:
    """A urlset for `pubs`; with `news`, as a Google News sitemap."""
    rows = []
    for pub in pubs:
        extra = (
            f"<news:news><news:publication><news:name>Example</news:name>"
            f"<news:language>en</news:language></news:publication>"
            f"<news:publication_date>{pub.date}T09:00:00Z</news:publication_date>"
            f"<news:title>{pub.title} (news)</news:title></news:news>"
            if news
            else f"<lastmod>{pub.date}</lastmod>"
        )
        rows.append(f"<url><loc>{server.url('/publications/' + pub.slug)}</loc>{extra}</url>")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><urlset xmlns="{SITEMAP_NS}" '
        f'xmlns:news="{NEWS_NS}">{"".join(rows)}</urlset>'
    ).encode()


def sitemap_index(entries: list[tuple[str, str | None]]) -> bytes:
    rows = "".join(
        f"<sitemap><loc>{loc}</loc>" + (f"<lastmod>{mod}</lastmod>" if mod else "") + "</sitemap>"
        for loc, mod in entries
    )
    return f'<?xml version="1.0"?><sitemapindex xmlns="{SITEMAP_NS}">{rows}</sitemapindex>'.encode()


def gz(data: bytes) -> bytes:
    return gzip.compress(data)
