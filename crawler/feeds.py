"""Feed bytes to Items: RSS 0.9x/1.0/2.0 and Atom via feedparser, JSON Feed via json.

`parse_feed` is a pure function of its arguments (bytes, str, a plain
mapping, a datetime) returning picklable records, so it can run in a worker
process. feedparser only ever sees a BytesIO: given a str or bytes it would
try them as a URL or a local file name. Before it sees anything, the body is
decoded with confirmed labels (crawler.charsets), any DOCTYPE internal
subset is removed (feedparser's loose parser expands entities without
bound), and the text is re-encoded as UTF-8 with a matching declaration.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import feedparser

from crawler import CrawlError
from crawler.charsets import Decoded, decode_document, xml_declared_encoding
from crawler.crawl_records import Item
from crawler.entries import EntryFields, build_items
from crawler.feeds_lxml import read_feed
from crawler.http_bodies import content_type_charset

log = logging.getLogger(__name__)

# What can start in a feed's head: a section (comment, PI, CDATA) that runs
# to its terminator, the DOCTYPE, another `<!` declaration, or an element.
_HEAD_MARKUP = re.compile(r"<(?:!--|\?|!\[CDATA\[|!DOCTYPE|!|[\w:])", re.IGNORECASE)
_SECTIONS = {"<!--": "-->", "<?": "?>", "<![CDATA[": "]]>"}
_XML_DECL = re.compile(r"^\s*<\?xml[^>]{0,300}?\?>")
_JSON_FEED_VERSION = re.compile(rb'"version"\s*:\s*"https?://jsonfeed\.org/version/')


class FeedParseError(CrawlError):
    """The body is not a feed we can read (or is hostile)."""


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    items: tuple[Item, ...]
    ttl_seconds: int | None
    title: str | None
    skipped: int = 0
    encoding: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as tuples of the items' fields: a parse worker sends every
        parsed feed to the crawling process, and the dataclasses' own
        pickling (a state list per item, set back field by field) cost ~13 µs
        per item for both sides together, ~8 µs this way (mostly the text)."""
        rows = tuple(map(_item_fields, self.items))
        return _parsed_feed, (rows, self.ttl_seconds, self.title, self.skipped, self.encoding)


_item_fields = attrgetter(*(f.name for f in fields(Item)))  # Item's positional order


def _parsed_feed(
    rows: tuple[tuple[Any, ...], ...],
    ttl_seconds: int | None,
    title: str | None,
    skipped: int,
    encoding: str | None,
) -> ParsedFeed:
    return ParsedFeed(tuple(Item(*row) for row in rows), ttl_seconds, title, skipped, encoding)


def parse_feed(
    body: bytes, *, url: str, headers: Mapping[str, str], fetched_at: datetime
) -> ParsedFeed:
    """Items of a feed; FeedParseError when the body is not a feed."""
    if fetched_at.tzinfo is None:
        fetched_at = fetched_at.replace(tzinfo=UTC)
    content_type = _header(headers, "content-type")
    if is_json_feed(body, content_type):
        return _parse_json_feed(body, url=url, fetched_at=fetched_at)
    decoded = decode_document(
        body, declared=(xml_declared_encoding(body), content_type_charset(content_type))
    )
    data = xml_for_parsers(body, decoded)
    feed, entries = read_feed(data) or _feedparser(data)
    feed_lang = _primary_language(feed.get("language"))
    built = build_items(
        [_rss_fields(entry, url, feed_lang) for entry in entries], fetched_at=fetched_at
    )
    items = [item for item in built if item is not None]
    skipped = len(built) - len(items)
    if skipped:
        log.debug("feed_entries_skipped count=%d url=%s", skipped, url)
    return ParsedFeed(
        items=tuple(items),
        ttl_seconds=_ttl_seconds(feed.get("ttl")),
        title=_plain(feed.get("title")),
        skipped=skipped,
        encoding=decoded.encoding,
    )


_UTF8_DECL = '<?xml version="1.0" encoding="utf-8"?>\n'
_UTF8_DECL_BYTES = _UTF8_DECL.encode("ascii")
_EXACT = frozenset({("utf-8", "declared"), ("utf-8", "utf-8"), ("ascii", "declared")})


def xml_for_parsers(body: bytes, decoded: Decoded) -> bytes:
    """What read_feed (or feedparser) parses: the text without a DOCTYPE's
    internal subset (`strip_doctype`), its own XML declaration and the
    whitespace before it, as UTF-8 under a UTF-8 declaration.

    When the text is `body` decoded strictly as UTF-8 (or ASCII) and
    `strip_doctype` removed nothing (the same length: it only removes), that
    UTF-8 is a suffix of `body` itself: its bytes are taken from `body`
    instead of encoding the whole text again (~3 µs per item on the bench's
    Cyrillic and CJK feeds)."""
    text = strip_doctype(decoded.text)
    kept = _XML_DECL.sub("", text, count=1).lstrip()
    if (decoded.encoding, decoded.how) in _EXACT and len(text) == len(decoded.text):
        cut = len(text) - len(kept)  # characters before `kept`; their UTF-8 is body's head
        return _UTF8_DECL_BYTES + body[len(text[:cut].encode("utf-8")) :]
    return (_UTF8_DECL + kept).encode("utf-8")


def _feedparser(data: bytes) -> tuple[Any, Any]:
    """(feed, entries) from feedparser, for what crawler.feeds_lxml does not copy exactly."""
    parsed = feedparser.parse(
        io.BytesIO(data),
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if not parsed.get("version") and not parsed.entries:
        reason = parsed.get("bozo_exception")
        detail = f": {' '.join(str(reason).split())[:120]}" if reason else ""
        raise FeedParseError(f"not a feed (RSS, Atom or JSON Feed){detail}")
    return parsed.feed, parsed.entries


def strip_doctype(text: str) -> str:
    """Remove what could declare entities before the root element; refuse a broken DOCTYPE.

    Only the head is read: the text before the first element (`<` and a name
    character, where feedparser ends it too). Comments, processing
    instructions and CDATA sections are taken whole, so a `<!DOCTYPE` quoted
    inside one of them (a blog post about HTML) is text, never a declaration.
    In the head:

    - a DOCTYPE with an internal subset is removed; quotes inside the subset
      are honoured, so `<!ENTITY a "]>">` cannot end it early; one without a
      subset declares no entities and is kept (RSS 0.91 uses one); one that
      never ends is refused (FeedParseError);
    - comments are removed, and any other `<!` declaration (a stray ENTITY)
      is cut: feedparser's loose parser collects `<!ENTITY` lines anywhere in
      the head, inside comments too, and expands them.

    The root element and all that follows are returned unchanged. Linear
    time: an opener without its terminator is searched for once, then the
    rest of its kind is plain text (it cannot end either).
    """
    kept: list[str] = []
    unterminated: set[str] = set()
    pos = 0
    while (m := _HEAD_MARKUP.search(text, pos)) is not None:
        start = m.start()
        kept.append(text[pos:start])
        opener = m.group().upper()
        if opener not in _SECTIONS and not opener.startswith("<!"):
            return "".join(kept) + text[start:]  # the root element: the head ends here
        if opener == "<!DOCTYPE":
            pos, has_subset = _doctype_end(text, start)
            if not has_subset:
                kept.append(text[start:pos])
            continue
        close = _SECTIONS.get(opener)
        if close is None:  # another declaration: cut up to its end
            end = text.find(">", start)
            pos = len(text) if end < 0 else end + 1
            continue
        end = -1 if opener in unterminated else text.find(close, m.end())
        if end < 0:
            unterminated.add(opener)
            end = m.end() - len(close)  # the opener alone, as text
        pos = end + len(close)
        if opener != "<!--":
            kept.append(text[start:pos])
    return "".join(kept) + text[pos:]


def _doctype_end(text: str, start: int) -> tuple[int, bool]:
    """(index after the DOCTYPE that starts at `start`, whether it has an internal subset)."""
    depth = 0
    quote = ""
    has_subset = False
    for i in range(start + 9, len(text)):
        c = text[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c == "[":
            depth += 1
            has_subset = True
        elif c == "]":
            depth -= 1
        elif c == ">" and depth <= 0:
            return i + 1, has_subset
    raise FeedParseError("unterminated DOCTYPE declaration")


def is_json_feed(body: bytes, content_type: str = "") -> bool:
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head.startswith(b"{"):
        return False
    return bool(_JSON_FEED_VERSION.search(head)) or "json" in content_type.lower()


def _parse_json_feed(body: bytes, *, url: str, fetched_at: datetime) -> ParsedFeed:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise FeedParseError(f"invalid JSON Feed: {type(e).__name__}") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise FeedParseError("invalid JSON Feed: no items list")
    feed_lang = _primary_language(doc.get("language"))
    readable = [_json_fields(raw, url, feed_lang) for raw in doc["items"] if isinstance(raw, dict)]
    items = [item for item in build_items(readable, fetched_at=fetched_at) if item is not None]
    skipped = len(doc["items"]) - len(items)
    title = doc.get("title")
    return ParsedFeed(
        items=tuple(items),
        ttl_seconds=None,
        title=title.strip() if isinstance(title, str) else None,
        skipped=skipped,
        encoding="utf-8",
    )


def _rss_fields(entry: Any, base: str, feed_lang: str | None) -> EntryFields:
    content = entry.get("content") or []
    best = max(content, key=lambda c: len(c.get("value") or ""), default=None)
    return EntryFields(
        base=base,
        link=entry.get("link"),
        guid=entry.get("id"),
        title=_typed(entry.get("title"), entry.get("title_detail")),
        summary=_typed(entry.get("summary"), entry.get("summary_detail")),
        body=_typed(best.get("value"), best) if best else ("", False),
        published=_struct_time(entry.get("published_parsed"))
        or _struct_time(entry.get("updated_parsed"))
        or _struct_time(entry.get("created_parsed")),
        feed_language=feed_lang,
    )


def _json_fields(raw: dict[str, Any], base: str, feed_lang: str | None) -> EntryFields:
    def text(key: str) -> str:
        value = raw.get(key)
        return value if isinstance(value, str) else ""

    html_body = text("content_html")
    return EntryFields(
        base=base,
        link=text("url") or text("external_url") or None,
        guid=str(raw["id"]) if isinstance(raw.get("id"), str | int) else None,
        title=(text("title"), False),
        summary=(text("summary"), False),
        body=(html_body, True) if html_body else (text("content_text"), False),
        published=_iso_date(text("date_published")) or _iso_date(text("date_modified")),
        feed_language=_primary_language(raw.get("language")) or feed_lang,
    )


def _typed(value: Any, detail: Any) -> tuple[str, bool]:
    """(text, is_html) from a feedparser value and its *_detail type."""
    if not isinstance(value, str):
        return "", False
    kind = (detail or {}).get("type", "text/html") if isinstance(detail, dict) else "text/html"
    return value, "html" in str(kind)


def _struct_time(value: Any) -> datetime | None:
    try:
        if not value:
            return None
        year, month, day, hour, minute, second = (int(v) for v in value[:6])
        return datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _iso_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        # year 1 at +14:00 or 9999 at -14:00 is outside datetime in UTC
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def _ttl_seconds(value: Any) -> int | None:
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes * 60 if 0 < minutes <= 7 * 24 * 60 else None


def _primary_language(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    primary = value.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if len(primary) == 2 and primary.isalpha() else None


def _plain(value: Any) -> str | None:
    return " ".join(value.split()) or None if isinstance(value, str) else None


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name) or headers.get(name.title())
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name), "")
    return value
