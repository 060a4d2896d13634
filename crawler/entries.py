"""From the fields of one feed entry (or article) to an Item, pure.

The rules every source shares: the link is resolved against the feed URL
and canonicalised (it is the item's identity); an entry without a usable
link falls back to a GUID that is an http(s) URL, else it is skipped; a
missing GUID falls back to the canonical link; a missing, invalid or
far-future date falls back to the fetch time; text is plain text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urljoin, urlsplit

from crawler.crawl_records import Item
from crawler.normalize import (
    canonical_url,
    collapse_whitespace,
    collapsed_content_hash,
    detect_language,
    detect_languages,
    html_to_text,
    simple_canonical_url,
    storable,
)

FUTURE_TOLERANCE = timedelta(days=1)
LANGUAGE_SAMPLE = 600

TypedText = tuple[str, bool]  # (value, is_html)


@dataclass(frozen=True, slots=True)
class EntryFields:
    base: str
    link: str | None
    guid: str | None
    title: TypedText
    summary: TypedText
    body: TypedText
    published: datetime | None
    feed_language: str | None = None


def build_item(fields: EntryFields, *, fetched_at: datetime) -> Item | None:
    """The Item for one entry, or None when it has no usable link."""
    texts = _texts(fields)
    if texts is None:
        return None
    language = detect_language(_language_sample(texts))
    return _item(fields, texts, language, fetched_at)


def build_items(entries: Sequence[EntryFields], *, fetched_at: datetime) -> list[Item | None]:
    """`[build_item(f, fetched_at=fetched_at) for f in entries]`, the
    languages detected for all entries at once (`detect_languages`: the
    model's walk over a feed's items in one batch)."""
    prepared = [_texts(fields) for fields in entries]
    kept = [texts for texts in prepared if texts is not None]
    languages = iter(detect_languages([_language_sample(texts) for texts in kept]))
    return [
        None if texts is None else _item(fields, texts, next(languages), fetched_at)
        for fields, texts in zip(entries, prepared, strict=True)
    ]


_Texts = tuple[str, str, str, str]  # url, title, summary, text


def _texts(fields: EntryFields) -> _Texts | None:
    url = _item_url(fields.base, fields.link) or _item_url(fields.base, _url_like(fields.guid))
    if url is None:
        return None
    title = to_text(fields.title)
    summary = to_text(fields.summary)
    return url, title, summary, to_text(fields.body) or summary


def _language_sample(texts: _Texts) -> str:
    _url, title, _summary, text = texts
    return f"{title}\n{text[:LANGUAGE_SAMPLE]}"


def _item(fields: EntryFields, texts: _Texts, language: str | None, fetched_at: datetime) -> Item:
    url, title, summary, text = texts
    published = usable_date(fields.published, fetched_at)
    return Item(
        url=url,
        guid=storable(fields.guid or "").strip() or url,
        title=title,
        summary=summary,
        text=text,
        published=published or fetched_at,
        language=language or fields.feed_language,
        content_hash=collapsed_content_hash(title, text),
        dated=published is not None,
    )


def to_text(value: TypedText) -> str:
    text, is_html = value
    if not text:
        return ""
    return html_to_text(text) if is_html else collapse_whitespace(text)


def sane_date(value: datetime | None, fetched_at: datetime) -> datetime:
    """The published date in UTC, or the fetch time when missing, in the
    future, or not representable in UTC (year 1 at +14:00: comparing it
    overflows)."""
    usable = usable_date(value, fetched_at)
    return fetched_at if usable is None else usable


def usable_date(value: datetime | None, fetched_at: datetime) -> datetime | None:
    """The published date in UTC, or None where sane_date falls back to the
    fetch time (an Item built from None is `dated=False`)."""
    if value is None:
        return None
    try:
        value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
        if value > fetched_at + FUTURE_TOLERANCE:
            return None
    except OverflowError:
        return None
    return value


def _url_like(guid: str | None) -> str | None:
    if guid and guid.strip().lower().startswith(("http://", "https://")):
        return guid.strip()
    return None


def _item_url(base: str, link: str | None) -> str | None:
    if not link or not link.strip():
        return None
    simple = simple_canonical_url(link)  # absolute http(s): urljoin would keep it
    if simple is not None:
        return simple
    try:
        absolute = urljoin(base, link.strip())
        if urlsplit(absolute).scheme not in ("http", "https"):
            return None
        return canonical_url(absolute)
    except ValueError:
        return None
