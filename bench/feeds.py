"""Feed parsing throughput: our parse_feed vs plain feedparser.parse defaults, same run.

Generated RSS 2.0 feeds (30 entries, HTML descriptions and content:encoded,
mixed English/Russian/Korean/Chinese text). parse_feed does more work than
the baseline (encoding confirmation, DOCTYPE check, HTML to text, canonical
URLs, language detection, content hashes) and skips feedparser's sanitiser
and relative-URI resolution, which we redo ourselves.

    .venv/bin/python bench/feeds.py [--feeds 200] [--entries 30]
"""

from __future__ import annotations

import argparse
import html
import io
import time
from datetime import UTC, datetime

import feedparser

from crawler.feeds import parse_feed

TEXTS = [
    "North Korea fielded the <b>Pantsir</b> system near Pyongyang, officials said.",
    "Северная Корея развернула комплекс <i>Панцирь</i> возле Пхеньяна.",
    "북한이 평양 인근에 <b>판치르</b> 방공 시스템을 배치했다.",
    "朝鲜在平壤附近部署了<b>铠甲</b>防空系统。",
]


def make_feed(n: int, entries: int) -> bytes:
    items = []
    for i in range(entries):
        text = TEXTS[(n + i) % len(TEXTS)]
        body = "".join(f"<p>{text} Paragraph {k}.</p>" for k in range(8))
        items.append(
            f"<item><title>Report {n}-{i}: {html.escape(text[:30])}</title>"
            f"<link>https://site{n % 50}.example/pubs/{n}/{i}?utm_source=rss</link>"
            f"<guid>urn:x:{n}:{i}</guid><pubDate>Wed, 09 Jul 2025 13:{i:02d}:00 GMT</pubDate>"
            f"<description><![CDATA[{text}]]></description>"
            f"<content:encoded><![CDATA[{body}<script>x()</script>]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Feed {n}</title><link>https://site{n}.example/</link><ttl>60</ttl>"
        + "".join(items)
        + "</channel></rss>"
    ).encode()


def bench(name: str, fn: object, feeds: list[bytes], entries: int) -> float:
    start = time.perf_counter()
    for body in feeds:
        fn(body)  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    rate = len(feeds) * entries / elapsed
    print(f"{name:<42} {elapsed:7.2f} s  {rate:9.0f} entries/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=30)
    args = parser.parse_args()
    feeds = [make_feed(n, args.entries) for n in range(args.feeds)]
    now = datetime.now(UTC)
    ours = lambda b: parse_feed(b, url="https://x.example/feed", headers={}, fetched_at=now)  # noqa: E731
    ours(feeds[0])  # warm up: language model load, lazy imports
    feedparser.parse(io.BytesIO(feeds[0]))
    print(f"{args.feeds} feeds x {args.entries} entries, {sum(map(len, feeds)) / 1e6:.1f} MB")
    base = bench(
        "feedparser.parse (defaults)",
        lambda b: feedparser.parse(io.BytesIO(b)),
        feeds,
        args.entries,
    )
    fast = bench(
        "feedparser.parse (no sanitize/resolve)",
        lambda b: feedparser.parse(io.BytesIO(b), sanitize_html=False, resolve_relative_uris=False),
        feeds,
        args.entries,
    )
    mine = bench("crawler.feeds.parse_feed (-> Items)", ours, feeds, args.entries)
    print(f"ratio parse_feed / feedparser defaults: {mine / base:.2f}x")
    print(f"ratio feedparser fast / defaults:      {fast / base:.2f}x")


if __name__ == "__main__":
    main()
