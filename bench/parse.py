"""Per-item CPU of the parse path (what a parse worker does for each feed), by stage.

The same generated feeds as bench/crawl.py (tests/support/feedgen.py: RSS 2.0,
Atom, RSS 1.0 and JSON Feed in en/ru/ko/zh), parsed in this process, no
server and no database: CPU time (`time.process_time`), best of `--repeat`
passes, per item.

- `parse_feed`: the whole call, bytes to Items, as the worker runs it;
- the stages, each timed alone over the inputs the previous ones produced:
  decoding + DOCTYPE strip (`decode`), the feed XML to entry dicts
  (`read_feed`, feedparser where lxml declines, JSON Feed's json.loads),
  entry dicts to EntryFields with dates (`fields`), the item URL
  (`item_url`), title / summary / body to text (`html_to_text` or
  `collapse_whitespace`), `detect_language` (one text at a time) and
  `detect_languages` (a feed's items at once, as parse_feed does), the
  content hash, and `build_items` (all of the above from the fields, per feed).

    .venv/bin/python bench/parse.py [--feeds 200] [--entries 30] [--repeat 3]
                                    [--profile FILE] [--digest]

`--digest` times nothing: it prints a sha256 of every ParsedFeed field (each
result's repr, or the exception) of parse_feed over the `--feeds` bench
feeds and every fixture feed (tests/fixtures/feeds) under three content
types, to check that an optimisation leaves the output as it was.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from itertools import accumulate, pairwise
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler import entries, feeds  # noqa: E402
from crawler.charsets import decode_document, xml_declared_encoding  # noqa: E402
from crawler.feeds_lxml import read_feed  # noqa: E402
from crawler.http_bodies import content_type_charset  # noqa: E402
from crawler.normalize import (  # noqa: E402
    collapsed_content_hash,
    detect_language,
    detect_languages,
    simple_canonical_url,
)
from crawler.simple_html import simple_text  # noqa: E402
from tests.support.feedgen import feed_bytes  # noqa: E402

FETCHED = datetime(2025, 7, 10, tzinfo=UTC)


def best(fn: Callable[[], object], repeat: int) -> float:
    """Least CPU seconds of `repeat` calls of fn."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def content_type(body: bytes) -> str:
    return "application/feed+json" if body.startswith(b"{") else "application/xml; charset=utf-8"


def prepared(body: bytes, ctype: str) -> bytes:
    """What parse_feed hands to read_feed (feeds.parse_feed's first lines)."""
    decoded = decode_document(
        body, declared=(xml_declared_encoding(body), content_type_charset(ctype))
    )
    return feeds.xml_for_parsers(body, decoded)


def entry_dicts(body: bytes, data: bytes | None) -> tuple[Any, list[Any], bool]:
    """(feed, entries, is_json) as parse_feed reads them."""
    if data is None:
        doc = json.loads(body)
        return doc, doc["items"], True
    feed, found = read_feed(data) or feeds._feedparser(data)
    return feed, list(found), False


def fields_of(feed: Any, found: Sequence[Any], is_json: bool, url: str) -> list[Any]:
    if is_json:
        lang = feeds._primary_language(feed.get("language"))
        return [feeds._json_fields(raw, url, lang) for raw in found]
    lang = feeds._primary_language(feed.get("language"))
    return [feeds._rss_fields(e, url, lang) for e in found]


DIGEST_TYPES = (
    "application/xml",
    "application/rss+xml; charset=utf-8",
    "text/xml; charset=windows-1251",
)


def digest(count: int, entries_per_feed: int) -> str:
    """sha256 over the repr of every parse_feed result (or its exception):
    the bench feeds with their own content type, then every fixture feed
    under each of DIGEST_TYPES."""
    inputs = [
        (feed_bytes(n, entries_per_feed), f"http://127.0.0.1:8080/feed/{n}", None)
        for n in range(count)
    ]
    fixtures = sorted((ROOT / "tests" / "fixtures" / "feeds").glob("*"))
    for path in fixtures:
        if path.suffix != ".py":
            inputs += [
                (path.read_bytes(), f"https://example.com/{path.name}", t) for t in DIGEST_TYPES
            ]
    sha = hashlib.sha256()
    for body, url, ctype in inputs:
        try:
            result = repr(
                feeds.parse_feed(
                    body,
                    url=url,
                    headers={"content-type": ctype or content_type(body)},
                    fetched_at=FETCHED,
                )
            )
        except Exception as e:  # the exception is part of the output
            result = f"{type(e).__name__}: {e}"
        sha.update(result.encode("utf-8", "surrogatepass"))
    return f"{len(inputs)} bodies: {sha.hexdigest()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", help="cProfile one parse_feed pass into FILE")
    parser.add_argument("--digest", action="store_true", help="print the outputs' digest only")
    args = parser.parse_args()
    if args.digest:
        print(digest(args.feeds, args.entries))
        return

    bodies = [feed_bytes(n, args.entries) for n in range(args.feeds)]
    urls = [f"http://127.0.0.1:8080/feed/{n}" for n in range(args.feeds)]
    types = [content_type(b) for b in bodies]
    detect_language("warm up the language model before timing anything")

    def whole() -> int:
        count = 0
        for body, url, ctype in zip(bodies, urls, types, strict=True):
            parsed = feeds.parse_feed(
                body, url=url, headers={"content-type": ctype}, fetched_at=FETCHED
            )
            count += len(parsed.items)
        return count

    items = whole()
    if args.profile:
        import cProfile

        cProfile.runctx("whole()", globals(), {"whole": whole}, args.profile)

    json_feed = [feeds.is_json_feed(b, t) for b, t in zip(bodies, types, strict=True)]
    datas = [
        None if j else prepared(b, t) for b, t, j in zip(bodies, types, json_feed, strict=True)
    ]
    dicts = [entry_dicts(b, d) for b, d in zip(bodies, datas, strict=True)]
    per_feed = [
        fields_of(feed, found, is_json, url)
        for (feed, found, is_json), url in zip(dicts, urls, strict=True)
    ]
    fields = [f for feed_fields in per_feed for f in feed_fields]
    titles = [entries.to_text(f.title) for f in fields]
    summaries = [entries.to_text(f.summary) for f in fields]
    texts = [entries.to_text(f.body) or s for f, s in zip(fields, summaries, strict=True)]
    samples = [f"{t}\n{x[: entries.LANGUAGE_SAMPLE]}" for t, x in zip(titles, texts, strict=True)]
    bounds = list(accumulate(map(len, per_feed), initial=0))
    feed_samples = [samples[a:b] for a, b in pairwise(bounds)]

    def link(f: Any) -> str | None:
        return entries._item_url(f.base, f.link) or entries._item_url(
            f.base, entries._url_like(f.guid)
        )

    stages: list[tuple[str, Callable[[], object]]] = [
        (
            "parse_feed (whole)",
            whole,
        ),
        (
            "decode + strip (XML feeds)",
            lambda: [
                prepared(b, t) for b, t, j in zip(bodies, types, json_feed, strict=True) if not j
            ],
        ),
        (
            "feed to entry dicts",
            lambda: [entry_dicts(b, d) for b, d in zip(bodies, datas, strict=True)],
        ),
        (
            "entry dicts to fields",
            lambda: [
                fields_of(feed, found, is_json, url)
                for (feed, found, is_json), url in zip(dicts, urls, strict=True)
            ],
        ),
        ("item url", lambda: [link(f) for f in fields]),
        ("title to text", lambda: [entries.to_text(f.title) for f in fields]),
        ("summary to text", lambda: [entries.to_text(f.summary) for f in fields]),
        ("body to text", lambda: [entries.to_text(f.body) for f in fields]),
        ("detect_language (one by one)", lambda: [detect_language(s) for s in samples]),
        ("detect_languages (per feed)", lambda: [detect_languages(f) for f in feed_samples]),
        (
            "content hash",
            lambda: [collapsed_content_hash(t, x) for t, x in zip(titles, texts, strict=True)],
        ),
        (
            "build_items (all of it)",
            lambda: [entries.build_items(f, fetched_at=FETCHED) for f in per_feed],
        ),
    ]
    print(
        f"{args.feeds} feeds x {args.entries} entries = {items} items, "
        f"{sum(map(len, bodies)) / 1e6:.1f} MB; CPU, best of {args.repeat}"
    )
    print(f"{'stage':<28} {'µs/item':>8}")
    for name, fn in stages:
        print(f"{name:<28} {best(fn, args.repeat) / items * 1e6:8.1f}", flush=True)
    html_fields = [
        v for f in fields for v, is_html in (f.title, f.summary, f.body) if v and is_html
    ]
    declined = sum(simple_text(v) is None for v in html_fields if "<" in v or "&" in v)
    slow_urls = sum(simple_canonical_url(f.link or "") is None for f in fields)
    print(f"html fields: {len(html_fields)}, declined by the fast path: {declined}")
    print(f"links outside the canonical URL fast path: {slow_urls} of {len(fields)}")


if __name__ == "__main__":
    main()
