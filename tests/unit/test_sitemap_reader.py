"""Reading sitemaps and deciding what to fetch: pure, hostile inputs included."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.sitemaps import (
    SitemapEntry,
    SitemapError,
    newest_first,
    parse_w3c_date,
    read_sitemap,
    robots_sitemaps,
    wanted,
)
from tests.support.canary import gzip_bomb

NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
IMAGE = 'xmlns:image="http://www.google.com/schemas/sitemap-image/1.1"'
NEWS_SITEMAP = f"""<?xml version="1.0" encoding="UTF-8"?>
<urlset {NS} {NEWS} {IMAGE}>
<url><loc>https://www.example.org/a?utm_source=feed</loc><lastmod>2025-07-03</lastmod>
  <image:image><image:loc>https://www.example.org/a.jpg</image:loc>
  <image:title>A photo caption</image:title></image:image>
  <news:news><news:publication><news:name>Example</news:name>
  <news:language>de</news:language></news:publication>
  <news:publication_date>2025-07-04T10:00:00+02:00</news:publication_date>
  <news:title>Eine   Schlagzeile</news:title></news:news></url>
<url><loc> https://www.example.org/b </loc></url>
</urlset>""".encode()


def test_news_sitemap_fields_come_from_the_news_namespace_only() -> None:
    parsed = read_sitemap(NEWS_SITEMAP)
    assert parsed.kind == "urlset" and parsed.invalid == 0
    a, b = parsed.entries
    assert a.url == "https://www.example.org/a"  # canonical: tracking parameter dropped
    assert a.news_title == "Eine Schlagzeile"  # not the image:title
    assert a.news_language == "de"
    assert a.news_published == datetime(2025, 7, 4, 8, tzinfo=UTC)
    assert a.lastmod == datetime(2025, 7, 3, tzinfo=UTC)
    assert a.version == a.news_published
    assert b == SitemapEntry("https://www.example.org/b")


def test_gzip_is_recognised_by_its_magic_bytes() -> None:
    assert read_sitemap(gzip.compress(NEWS_SITEMAP)) == read_sitemap(NEWS_SITEMAP)


def test_index_and_namespace_free_sitemaps() -> None:
    index = b"<sitemapindex><sitemap><loc>https://e.org/s1.xml.gz</loc></sitemap></sitemapindex>"
    parsed = read_sitemap(index)
    assert parsed.kind == "index" and [e.url for e in parsed.entries] == ["https://e.org/s1.xml.gz"]


@pytest.mark.parametrize(
    "loc",
    ["javascript:alert(1)", "ftp://e.org/a", "file:///etc/passwd", "/relative/path", "", "http://"],
)
def test_unusable_locs_are_counted_not_kept(loc: str) -> None:
    body = (
        f"<urlset {NS}><url><loc>{loc}</loc></url><url><loc>https://e.org/ok</loc></url></urlset>"
    )
    parsed = read_sitemap(body.encode())
    assert [e.url for e in parsed.entries] == ["https://e.org/ok"] and parsed.invalid == 1


def test_only_direct_children_of_the_root_are_entries() -> None:
    body = f"<urlset {NS}><x><url><loc>https://e.org/nested</loc></url></x></urlset>"
    assert read_sitemap(body.encode()).entries == ()


HOSTILE_XML = [
    # billion laughs
    b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;'
    b'&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
    b"<urlset><url><loc>https://e.org/&c;</loc></url></urlset>",
    # external entity (XXE)
    b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<urlset><url><loc>https://e.org/&x;</loc></url></urlset>",
    # external DTD over the network
    b'<?xml version="1.0"?><!DOCTYPE urlset SYSTEM "http://127.0.0.1:9/evil.dtd">'
    b"<urlset><url><loc>https://e.org/a</loc></url></urlset>",
    # parameter entities
    b'<?xml version="1.0"?><!DOCTYPE u [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p">%p;]><urlset/>',
]


@pytest.mark.parametrize("body", HOSTILE_XML)
def test_document_type_declarations_are_refused(body: bytes) -> None:
    with pytest.raises(SitemapError, match=r"document type|bad XML"):
        read_sitemap(body)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Not found</body></html>",
        b'<rss version="2.0"><channel/></rss>',
        b'<feed xmlns="http://www.w3.org/2005/Atom"/>',
        b"not xml at all",
        b"",
        b"<urlset><url><loc>https://e.org/a</loc>",  # truncated
        b"\x1f\x8b\x08\x00garbage",  # corrupt gzip
    ],
)
def test_what_is_not_a_sitemap_is_a_one_line_error(body: bytes) -> None:
    with pytest.raises(SitemapError) as info:
        read_sitemap(body)
    assert "\n" not in str(info.value)


def test_gzip_bomb_is_refused_at_the_cap() -> None:
    bomb = b"".join(gzip_bomb(8 << 20))
    assert len(bomb) < 100_000
    with pytest.raises(SitemapError, match="larger than"):
        read_sitemap(bomb, max_bytes=4 << 20)


def test_plain_body_over_the_cap_is_refused() -> None:
    body = f"<urlset {NS}>" + "<url><loc>https://e.org/a</loc></url>" * 1000 + "</urlset>"
    with pytest.raises(SitemapError, match="larger than"):
        read_sitemap(body.encode(), max_bytes=10_000)


def test_url_cap_per_file() -> None:
    rows = "".join(f"<url><loc>https://e.org/{i}</loc></url>" for i in range(30))
    parsed = read_sitemap(f"<urlset {NS}>{rows}</urlset>".encode(), max_urls=10)
    assert len(parsed.entries) == 10 and parsed.truncated


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2025-07", datetime(2025, 7, 1, tzinfo=UTC)),
        ("2025-07-03", datetime(2025, 7, 3, tzinfo=UTC)),
        ("2025-07-03T10:00Z", datetime(2025, 7, 3, 10, tzinfo=UTC)),
        ("2025-07-03T10:00:00+02:00", datetime(2025, 7, 3, 8, tzinfo=UTC)),
        ("2025-07-03T10:00:00.123-05:00", datetime(2025, 7, 3, 15, 0, 0, 123000, tzinfo=UTC)),
        ("yesterday", None),
        ("2025-13-01", None),
        ("", None),
        ("9" * 100, None),
    ],
)
def test_w3c_dates(text: str, expected: datetime | None) -> None:
    assert parse_w3c_date(text) == expected


def test_robots_sitemap_lines() -> None:
    robots = (
        b"User-agent: *\nDisallow: /private/\nSitemap: https://e.org/news.xml\n"
        b"sitemap: /relative.xml\nSitemap: ftp://e.org/x.xml\nSitemap: https://e.org/news.xml\n"
    )
    found = robots_sitemaps(robots, "https://e.org/robots.txt")
    assert found == ("https://e.org/news.xml", "https://e.org/relative.xml")


NOW = datetime(2025, 7, 10, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=7)
dates = st.none() | st.datetimes(
    min_value=datetime(2025, 6, 1), max_value=datetime(2025, 7, 20), timezones=st.just(UTC)
)


@given(version=dates, previous=dates, known=st.booleans())
def test_wanted_is_new_or_newer_and_inside_the_window(
    version: datetime | None, previous: datetime | None, known: bool
) -> None:
    entry = SitemapEntry("https://e.org/a", lastmod=version)
    seen = {entry.url: previous} if known else {}
    result = wanted(entry, seen, cutoff=CUTOFF)
    if version is not None and version < CUTOFF:
        assert not result
    elif not known:
        assert result
    else:
        assert result == (version is not None and (previous is None or version > previous))
    # Once fetched and remembered, the same version is never wanted again.
    assert not wanted(entry, {entry.url: version}, cutoff=CUTOFF)


@given(st.lists(dates, max_size=30), st.integers(min_value=0, max_value=40))
def test_newest_first_keeps_the_newest_dated_entries(
    versions: list[datetime | None], limit: int
) -> None:
    entries = [SitemapEntry(f"https://e.org/{i}", lastmod=v) for i, v in enumerate(versions)]
    chosen = newest_first(entries, limit)
    assert len(chosen) == min(limit, len(entries))
    dated = [e.version for e in chosen if e.version is not None]
    assert dated == sorted(dated, reverse=True)
    undated_seen = False
    for e in chosen:  # undated ones only after every dated one
        undated_seen = undated_seen or e.version is None
        assert not (undated_seen and e.version is not None)
    left_out = [e.version for e in entries if e not in chosen and e.version is not None]
    assert all(v <= d for v in left_out for d in dated)


def test_since_leaves_out_old_entries_before_reading_their_url() -> None:
    rows = (
        "<url><loc>https://e.org/old</loc><lastmod>2025-06-01</lastmod></url>"
        "<url><loc>https://e.org/new</loc><lastmod>2025-07-09</lastmod></url>"
        "<url><loc>https://e.org/undated</loc></url>"
        "<url><loc>javascript:old()</loc><lastmod>2025-06-01</lastmod></url>"
    )
    parsed = read_sitemap(f"<urlset {NS}>{rows}</urlset>".encode(), since=CUTOFF)
    assert [e.url for e in parsed.entries] == ["https://e.org/new", "https://e.org/undated"]
    assert parsed.old == 2 and parsed.invalid == 0


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (NEWS_SITEMAP, "sitemap"),
        (gzip.compress(NEWS_SITEMAP), "sitemap"),
        (b"<?xml version='1.0'?><sitemapindex><sitemap/></sitemapindex>", "sitemap"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>', "feed"),
        (b"<html><body><p>see urlset <urlset> here</p></body></html>", "page"),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>urlset</title></feed>', "feed"),
    ],
)
def test_sniffing_recognises_sitemaps(body: bytes, kind: str) -> None:
    from crawler.detect import sniff_kind

    assert sniff_kind(body, "application/xml") == kind


xml_pieces = st.sampled_from(
    [
        "<urlset>",
        "</urlset>",
        "<sitemapindex>",
        "<url>",
        "</url>",
        "<loc>",
        "</loc>",
        "<lastmod>",
        "</lastmod>",
        "https://e.org/a",
        "2025-07-09",
        "&amp;",
        "&x;",
        "<![CDATA[x]]>",
        "<!--c-->",
        "<?pi x?>",
        "<!DOCTYPE u>",
        "\x00",
        "é",
    ]
)


@given(st.lists(xml_pieces, max_size=30).map("".join) | st.binary(max_size=300))
def test_any_bytes_either_read_or_a_sitemap_error(body: str | bytes) -> None:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    try:
        parsed = read_sitemap(data)
    except SitemapError as e:
        assert "\n" not in str(e)
        return
    assert all(e.url.startswith(("http://", "https://")) for e in parsed.entries)
