"""crawler.feeds: fixture feeds paired with their expected results, and hostile feeds.

Each tests/fixtures/feeds/NAME has an expectation module NAME.py (as in
lemon24/reader's full.rss + full.rss.py) giving TITLE, TTL_SECONDS, SKIPPED
and ITEMS (dicts of the Item fields to check), optionally HEADERS and
MAX_TEXT.
"""

from __future__ import annotations

import os
import pickle
import runpy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler import CrawlError
from crawler.charsets import decode_document, wide_encoding
from crawler.detect import sniff_kind
from crawler.feeds import FeedParseError, parse_feed, strip_doctype
from crawler.normalize import content_hash

FIXTURES = Path(__file__).parent.parent / "fixtures" / "feeds"
FEED_URL = "https://www.understandingwar.org/feed"
FETCHED_AT = datetime(2025, 7, 10, tzinfo=UTC)
CASES = sorted(p.name[: -len(".py")] for p in FIXTURES.glob("*.py") if p.stem != "generate_encoded")


def parse(name: str, headers: dict[str, str] | None = None) -> Any:
    body = (FIXTURES / name).read_bytes()
    return parse_feed(body, url=FEED_URL, headers=headers or {}, fetched_at=FETCHED_AT)


@pytest.mark.parametrize("name", CASES)
def test_fixture_matches_expectation(name: str) -> None:
    expected = runpy.run_path(str(FIXTURES / f"{name}.py"))
    feed = parse(name, expected.get("HEADERS"))
    if "TITLE" in expected:
        assert feed.title == expected["TITLE"]
    else:
        assert feed.title.startswith(expected["TITLE_PREFIX"])
    assert feed.ttl_seconds == expected["TTL_SECONDS"]
    assert feed.skipped == expected["SKIPPED"]
    assert len(feed.items) == len(expected["ITEMS"])
    for item, want in zip(feed.items, expected["ITEMS"], strict=True):
        got = {key: getattr(item, key) for key in want}
        assert got == want
        assert item.published.tzinfo is not None
        assert item.content_hash == content_hash(item.title, item.text)
        assert len(item.text) <= expected.get("MAX_TEXT", 1_000_000)
        assert "\ufffd" not in item.title + item.text  # no replacement characters


@pytest.mark.parametrize(
    "name", ["euckr-declared-utf8.xml", "euckr-declared-latin1.xml", "cp1251-declared-latin1.xml"]
)
def test_mislabelled_encodings_are_not_mojibake(name: str) -> None:
    item = parse(name, {"Content-Type": "text/xml; charset=ISO-8859-1"}).items[0]
    assert not any("\u00c0" <= c <= "\u00ff" for c in item.title + item.text), item.title


def test_json_feed_detected_by_body_whatever_the_content_type() -> None:
    feed = parse("jsonfeed.json", {"Content-Type": "text/plain"})
    assert [i.guid for i in feed.items] == ["2", "1"]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        os.urandom(4096),
        b"<html><body><p>Not a feed</p></body></html>",
        b"{not json at all",
        b'{"version": "https://jsonfeed.org/version/1.1", "items": 5}',
        b"<?xml version='1.0'?><!DOCTYPE rss [<!ENTITY a 'unterminated",
    ],
)
def test_not_a_feed_is_a_parse_error(body: bytes) -> None:
    with pytest.raises(FeedParseError) as info:
        parse_feed(body, url=FEED_URL, headers={}, fetched_at=FETCHED_AT)
    assert isinstance(info.value, CrawlError)
    assert "\n" not in str(info.value)


def test_generated_entity_bomb_is_cheap() -> None:
    # 10 levels x 10 references: 10^10 "lol"s if anything expanded it.
    levels = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 11))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{levels}]>'
        "<rss version='2.0'><channel><title>t</title><item><link>https://x.example/1</link>"
        "<description>&l10;</description></item></channel></rss>"
    ).encode()
    feed = parse_feed(body, url=FEED_URL, headers={}, fetched_at=FETCHED_AT)
    assert len(feed.items) == 1 and len(feed.items[0].text) < 100


def test_strip_doctype_honours_quotes_and_keeps_external_only_doctype() -> None:
    text = '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "]>">]><rss/>'
    assert strip_doctype(text) == '<?xml version="1.0"?><rss/>'
    netscape = '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" "x.dtd"><rss/>'
    assert strip_doctype(netscape) == netscape


def test_relative_links_resolve_against_feed_url() -> None:
    body = (
        b"<rss version='2.0'><channel><item><link>/a/b?utm_medium=x</link></item></channel></rss>"
    )
    feed = parse_feed(body, url="https://news.example/feeds/all", headers={}, fetched_at=FETCHED_AT)
    assert feed.items[0].url == "https://news.example/a/b"


def test_rss091_and_http_charset_disagreeing_with_declaration() -> None:
    text = (
        '<?xml version="1.0" encoding="windows-1251"?><rss version="0.91"><channel>'
        "<title>Старый канал</title><item><title>Новость дня о ПВО</title>"
        "<link>https://old.example/1</link></item></channel></rss>"
    )
    feed = parse_feed(
        text.encode("cp1251"),
        url=FEED_URL,
        headers={"content-type": "text/xml; charset=utf-8"},
        fetched_at=FETCHED_AT,
    )
    assert feed.title == "Старый канал"
    assert feed.items[0].title == "Новость дня о ПВО"


def test_decode_document_prefers_confirmed_labels() -> None:
    assert decode_document("é".encode(), declared=("iso-8859-1",)).text == "é"
    latin = "Déjà vu à Genève, où l'été est très chaud".encode("latin-1")
    decoded = decode_document(latin, declared=("iso-8859-1",))
    assert decoded.how == "declared" and decoded.text.startswith("Déjà vu")
    assert decode_document(b"\xef\xbb\xbfabc", declared=("latin-1",)).text == "abc"


def test_parsed_feed_pickles_for_worker_processes() -> None:
    feed = parse("rss20.xml")
    assert pickle.loads(pickle.dumps(feed)) == feed


def test_naive_fetch_time_is_taken_as_utc() -> None:
    body = (FIXTURES / "dates-guids.xml").read_bytes()
    feed = parse_feed(body, url=FEED_URL, headers={}, fetched_at=datetime(2025, 7, 10))
    assert feed.items[0].published == FETCHED_AT


# Issue #10, part 3: `<!DOCTYPE` as text, and wide encodings without a BOM.

DOCTYPE_AS_TEXT = [
    "<!DOCTYPE html>",
    "<!DOCTYPE rss [",
    "<!DOCTYPE's job",
    '<!DOCTYPE html PUBLIC "unterminated',
    '<!doctype note [<!ENTITY w "word">]>',
    "<!DOCTYPE",
]


def _atom(summary_cdata: str, head_comment: str = "") -> bytes:
    return (
        f'<?xml version="1.0"?>{head_comment}<feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>t</title><id>urn:t</id><updated>2025-07-09T00:00:00Z</updated>"
        "<entry><title>Doc</title><id>urn:t:1</id><link href='https://x.example/1'/>"
        "<updated>2025-07-09T00:00:00Z</updated>"
        f'<summary type="text"><![CDATA[About {summary_cdata} here.]]></summary></entry></feed>'
    ).encode()


@pytest.mark.parametrize("payload", DOCTYPE_AS_TEXT)
def test_doctype_inside_cdata_is_text(payload: str) -> None:
    feed = parse_feed(_atom(payload), url=FEED_URL, headers={}, fetched_at=FETCHED_AT)
    assert feed.items[0].text == f"About {payload} here."


@pytest.mark.parametrize("payload", DOCTYPE_AS_TEXT)
@pytest.mark.parametrize("where", ["prolog", "after the root"])
def test_doctype_inside_a_comment_is_ignored(payload: str, where: str) -> None:
    comment = f"<!-- template: {payload} -->"
    body = (
        _atom("x", comment)
        if where == "prolog"
        else _atom("x").replace(b"<title>t</title>", f"<title>t</title>{comment}".encode())
    )
    feed = parse_feed(body, url=FEED_URL, headers={}, fetched_at=FETCHED_AT)
    assert feed.title == "t" and feed.items[0].text == "About x here."


def test_only_the_real_prolog_doctype_is_stripped_wherever_it_starts() -> None:
    """After comments, PIs and more than 4 KB of prolog, the real DOCTYPE is still
    found; a `<!DOCTYPE` in a comment before it does not hide it."""
    subset = '<!DOCTYPE rss [<!ENTITY a "b">]>'
    for prolog in [
        "<!-- x -->",
        "<!-- <!DOCTYPE rss [ -->",
        '<?xml-stylesheet href="s.css"?><!-- c -->\n',
        "<!--" + "x" * 5000 + "-->",
    ]:
        out = strip_doctype(f'<?xml version="1.0"?>{prolog}{subset}<rss>&a;</rss>')
        assert "DOCTYPE" not in out and "ENTITY" not in out and out.endswith("<rss>&a;</rss>")
    body = "<rss><!-- <!DOCTYPE rss [ --><![CDATA[<!DOCTYPE x [<!ENTITY y 'z'>]>]]></rss>"
    assert strip_doctype(body) == body  # after the root element nothing is touched


@pytest.mark.parametrize(
    "head",
    [
        # feedparser's loose parser reads declarations inside head comments too
        '<!--\n<!DOCTYPE x [\n<!ENTITY big "BIGBIG">\n]>\n-->',
        '<!DOCTYPE rss SYSTEM "x.dtd">\n<!ENTITY big "BIGBIG">\n',  # a stray declaration
        '<!-- never closed\n<!DOCTYPE x [<!ENTITY big "BIGBIG">]>\n',
    ],
)
def test_no_entity_declaration_survives_in_the_head(head: str) -> None:
    out = strip_doctype(f'<?xml version="1.0"?>{head}<rss><channel>&big;</channel></rss>')
    assert "ENTITY" not in out and out.endswith("<rss><channel>&big;</channel></rss>")
    feed = parse_feed(
        f'<?xml version="1.0"?>{head}<rss version="2.0"><channel><title>t</title><item>'
        "<link>https://x.example/1</link><description>&big; &big;</description></item>"
        "</channel></rss>".encode(),
        url=FEED_URL,
        headers={},
        fetched_at=FETCHED_AT,
    )
    assert "BIGBIG" not in feed.items[0].text


@pytest.mark.parametrize("opener", ["<!--", "<?", "<![CDATA[", "<!x>", "<", "<!DOCTYPE x>"])
def test_head_scan_of_many_unterminated_openers_is_linear(opener: str) -> None:
    """A quadratic scan of 1 MB of openers would not end within the test timeout."""
    text = opener * (1_000_000 // len(opener)) + "<rss/>"
    assert strip_doctype(text).endswith("<rss/>")


@given(
    first=st.sampled_from("< \t\r\n"),
    second=st.characters(max_codepoint=127, blacklist_categories=("Cs",)).filter(
        lambda c: c != "\x00"
    ),
    rest=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")),
    encoding=st.sampled_from(["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"]),
)
def test_wide_encodings_without_bom_are_told_by_their_nul_bytes(
    first: str, second: str, rest: str, encoding: str
) -> None:
    text = first + second + rest
    body = text.encode(encoding)
    assert wide_encoding(body) == encoding
    decoded = decode_document(body, declared=(None, "utf-8"))
    assert (decoded.text, decoded.encoding) == (text, encoding)


@pytest.mark.parametrize(
    "body",
    [
        b"<rss/>",
        "<rss>Déjà</rss>".encode(),
        b"abc\x00",  # a stray NUL in ASCII
        b"\x00\x00\x00\x00",
        b"x\x00y\x00",  # no XML document starts with "x"
        b"\x00\x00\xfe\xff",
        b"<\x00",
    ],
)
def test_other_bodies_are_not_taken_for_wide_encodings(body: bytes) -> None:
    assert wide_encoding(body) is None


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("bom", [False, True])
def test_wide_encoded_feeds_are_sniffed_as_feeds(encoding: str, bom: bool) -> None:
    """A source added without --kind: a UTF-16/32 feed is a feed, HTML a page."""
    prefix = "\ufeff" if bom else ""
    feed = f'{prefix}<?xml version="1.0"?>\n<rss version="2.0"><channel/></rss>'
    page = f"{prefix}<!DOCTYPE html><html><body><rss>quoted</rss></body></html>"
    assert sniff_kind(feed.encode(encoding)) == "feed"
    assert sniff_kind(page.encode(encoding)) == "page"
