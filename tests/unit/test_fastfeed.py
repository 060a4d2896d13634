"""crawler.feeds_lxml gives EXACTLY the Items feedparser gives, or steps aside.

Each feed is parsed twice by `parse_feed`: once as shipped (fast path when
it applies) and once with the fast path switched off (feedparser). The two
ParsedFeeds must be equal field by field, dates included. Tests also check
which path ran, so an equality can never hold only because both runs used
feedparser.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import crawler.feeds
from crawler.feeds import ParsedFeed, parse_feed
from crawler.feeds_lxml import read_feed
from tests.support.feedgen import feed_bytes

FIXTURES = Path(__file__).parent.parent / "fixtures" / "feeds"
FEED_URL = "https://www.example.org/feeds/main"
FETCHED_AT = datetime(2025, 7, 10, tzinfo=UTC)
FIXTURE_FILES = sorted(p for p in FIXTURES.iterdir() if p.suffix in (".xml", ".rdf", ".json"))


def both(
    body: bytes, monkeypatch: pytest.MonkeyPatch, headers: dict[str, str] | None = None
) -> tuple[Any, Any]:
    """(fast-path result, feedparser result); each is a ParsedFeed or the exception raised."""

    def run() -> Any:
        try:
            return parse_feed(body, url=FEED_URL, headers=headers or {}, fetched_at=FETCHED_AT)
        except Exception as e:
            return (type(e), str(e))

    fast = run()
    with monkeypatch.context() as m:
        m.setattr(crawler.feeds, "read_feed", lambda data: None)
        slow = run()
    return fast, slow


def assert_same(fast: Any, slow: Any) -> None:
    if isinstance(slow, ParsedFeed) and isinstance(fast, ParsedFeed):
        for a, b in zip(fast.items, slow.items, strict=True):
            for field in a.__dataclass_fields__:
                assert getattr(a, field) == getattr(b, field), field
    assert fast == slow


def used_fast_path(body: bytes) -> bool:
    calls: list[bool] = []

    def spy(data: bytes) -> Any:
        result = read_feed(data)
        calls.append(result is not None)
        return result

    with pytest.MonkeyPatch.context() as m:
        m.setattr(crawler.feeds, "read_feed", spy)
        with contextlib.suppress(Exception):  # only the path taken matters here
            parse_feed(body, url=FEED_URL, headers={}, fetched_at=FETCHED_AT)
    return any(calls)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_every_fixture_gives_the_same_items(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    body = path.read_bytes()
    for headers in ({}, {"Content-Type": "text/xml; charset=ISO-8859-1"}):
        fast, slow = both(body, monkeypatch, headers)
        assert_same(fast, slow)


@pytest.mark.parametrize(
    "name", ["rss20.xml", "atom.xml", "rss10.rdf", "dates-guids.xml", "cp1251.xml"]
)
def test_common_fixtures_take_the_fast_path(name: str) -> None:
    assert used_fast_path((FIXTURES / name).read_bytes())


@pytest.mark.parametrize("n", range(0, 240, 3))
def test_generated_feeds_give_the_same_items(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    body = feed_bytes(n, entries=12)
    fast, slow = both(body, monkeypatch)
    assert isinstance(slow, ParsedFeed) and len(slow.items) == 12
    assert_same(fast, slow)
    if not body.startswith(b"{"):  # JSON Feed has its own path
        assert used_fast_path(body)


def rss(items: str, channel: str = "<title>T</title>", root: str = 'version="2.0"') -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss {root} '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">'
        f"<channel>{channel}{items}</channel></rss>"
    ).encode()


def atom(entries: str, head: str = "<title>A</title>", root: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom" {root}>'
        f"{head}{entries}</feed>"
    ).encode()


L = "<link>https://ex.org/a?b=1&amp;c=2</link>"
FAST_CASES = {
    "title looks like html": rss(f"<item><title>A &lt;b&gt;bold&lt;/b&gt; move</title>{L}</item>"),
    "title with an entity": rss(f"<item><title>AT&amp;amp;T &amp;#8217;s</title>{L}</item>"),
    "title unknown tag": rss(f"<item><title>a &lt;foo&gt;x&lt;/foo&gt;</title>{L}</item>"),
    "guid permalink no link": rss("<item><title>x</title><guid>https://ex.org/g#f</guid></item>"),
    "guid not permalink": rss(
        '<item><title>x</title><guid isPermaLink="false">https://ex.org/g</guid></item>'
    ),
    "guid True capital": rss('<item><guid isPermaLink="True">https://ex.org/g</guid></item>'),
    "guid before link": rss(f"<item><guid>https://ex.org/g</guid>{L}</item>"),
    "empty link and guid": rss("<item><link></link><guid>https://ex.org/g</guid></item>"),
    "relative link": rss("<item><link> /rel/path?x=1 </link><title>t</title></item>"),
    "link triple slash": rss("<item><link>http:///ex.org/x</link></item>"),
    "link entity leftover": rss("<item><link>https://ex.org/?a=1&amp;b;=2</link></item>"),
    "content before description": rss(
        f"<item>{L}<content:encoded><![CDATA[<p>Body</p>]]></content:encoded>"
        "<description>Sum</description></item>"
    ),
    "content only": rss(
        f"<item>{L}<content:encoded>&lt;p&gt;Only&lt;/p&gt;</content:encoded></item>"
    ),
    "mojibake repaired": rss(f"<item>{L}<title>cafÃ© Ã\u00a0 Paris</title></item>"),
    "cp1252 controls": rss(f"<item>{L}<title>quote \u0093x\u0094 \u0080</title></item>"),
    "whitespace everywhere": rss(f"<item>\n {L}\n <title>\n  spaced \n </title>\n</item>\n"),
    "comment between fields": rss(f"<item><!-- hi -->{L}<?pi x?><title>t</title></item>"),
    "dates: dc only": rss(f"<item>{L}<dc:date>2025-07-01T10:00:00+03:00</dc:date></item>"),
    "dates: bad pubDate, dc ok": rss(
        f"<item>{L}<pubDate>someday</pubDate><dc:date>2025-07-01</dc:date></item>"
    ),
    "dates: odd zones": rss(f"<item>{L}<pubDate>Tue, 1 Jul 2025 10:00:00 EST</pubDate></item>"),
    "dates: far future": rss(f"<item>{L}<pubDate>Sat, 01 Jan 2999 00:00:00 GMT</pubDate></item>"),
    "language and ttl": rss(
        f"<item>{L}</item>", "<title> My  feed </title><language>ko_KR</language><ttl> 45 </ttl>"
    ),
    "xml:lang root": rss(
        f"<item>{L}<title>hello there friends</title></item>", root='version="2.0" xml:lang="ru"'
    ),
    "dc:language": rss(f"<item>{L}</item>", "<title>t</title><dc:language>zh-CN</dc:language>"),
    "image in channel": rss(
        f"<item>{L}</item>",
        "<image><title>Logo</title><url>https://ex.org/l.png</url><link>https://ex.org/</link>"
        "</image><title>Real</title>",
    ),
    "ignored extras": rss(
        f'<item>{L}<category domain="x">c</category><dc:creator>me</dc:creator>'
        '<enclosure url="https://ex.org/a.mp3" length="1" type="audio/mpeg"/></item>',
        '<title>t</title><atom:link href="https://ex.org/feed" rel="self"/>'
        "<generator>g</generator>",
    ),
    "atom basic": atom(
        '<entry><title type="html">A &amp;lt;i&amp;gt;b&amp;lt;/i&amp;gt;</title>'
        '<link href="https://ex.org/1"/><id>urn:1</id><updated>2025-07-05T12:00:00Z</updated>'
        '<summary>S</summary><content type="html">&lt;p&gt;C&lt;/p&gt;</content></entry>'
    ),
    "atom id as link": atom("<entry><title>t</title><id>https://ex.org/by-id</id></entry>"),
    "atom links": atom(
        '<entry><id>urn:2</id><link rel="self" href="https://ex.org/self"/>'
        '<link rel="alternate" type="application/pdf" href="https://ex.org/pdf"/>'
        '<link rel="alternate" href="https://ex.org/first"/>'
        '<link rel="ALTERNATE" type="TEXT/HTML" href="https://ex.org/last"/></entry>'
    ),
    "atom link before id": atom(
        '<entry><link href="https://ex.org/l"/><id>https://ex.org/i</id></entry>'
    ),
    "atom text content only": atom(
        '<entry><id>urn:3</id><link href="/rel"/>'
        '<content type="text">plain &lt;b&gt;</content></entry>'
    ),
    "atom content before summary": atom(
        '<entry><id>urn:4</id><link href="https://ex.org/4"/><content type="html">&lt;p&gt;Body'
        "&lt;/p&gt;</content><summary>Sum</summary><published>2025-07-01T00:00:00+02:00</published>"
        "</entry>"
    ),
    "atom people and lang": atom(
        '<entry xml:lang="de"><id>urn:5</id><link href="https://ex.org/5"/><author><name>N</name>'
        '<uri>https://ex.org/me</uri></author><category term="x"/></entry>',
        '<title type="text">Feed</title><author><name>X</name></author><id>urn:f</id>',
        root='xml:lang="en-GB"',
    ),
}
FALLBACK_CASES = {
    "markup in description": rss(f"<item>{L}<description><p>x</p></description></item>"),
    "comment in title": rss(f"<item>{L}<title>a<!-- c -->b</title></item>"),
    "unknown item element": rss(
        f"<item>{L}<media:title xmlns:media='http://search.yahoo.com/mrss/'>m</media:title></item>"
    ),
    "repeated title": rss(f"<item>{L}<title>a</title><title>b</title></item>"),
    "title in enclosure": rss(f"<item>{L}<enclosure><title>z</title></enclosure></item>"),
    "xml:base": atom('<entry xml:base="https://other.org/"><id>urn:6</id><link href="x"/></entry>'),
    "doctype": b'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "x.dtd"><rss version="2.0">'
    b"<channel><title>t</title></channel></rss>",
    "rss 0.91": rss(f"<item>{L}</item>", root='version="0.91"'),
    "atom xhtml title": atom(
        '<entry><id>urn:7</id><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">x</div></title></entry>'
    ),
    "atom content src": atom('<entry><id>urn:8</id><content src="https://ex.org/c"/></entry>'),
    "not well formed": b'<?xml version="1.0"?><rss version="2.0"><channel><item>'
    b"<title>a & b</title></item></channel></rss>",
    "undefined entity": rss(f"<item>{L}<title>a&nbsp;b</title></item>"),
    "namespaced rss": b'<?xml version="1.0"?><rss version="2.0" '
    b'xmlns="http://backend.userland.com/rss2"><channel><title>t</title></channel></rss>',
}


@pytest.mark.parametrize("name", sorted(FAST_CASES))
def test_tricky_feeds_take_the_fast_path_and_match(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = FAST_CASES[name]
    fast, slow = both(body, monkeypatch)
    assert isinstance(slow, ParsedFeed)
    assert_same(fast, slow)
    assert used_fast_path(body), name


@pytest.mark.parametrize("name", sorted(FALLBACK_CASES))
def test_unusual_feeds_fall_back_to_feedparser(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = FALLBACK_CASES[name]
    assert not used_fast_path(body), name
    fast, slow = both(body, monkeypatch)
    assert_same(fast, slow)
