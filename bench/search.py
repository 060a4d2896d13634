"""`newswatch search` over stored items: the streamed scan that ships vs an
SQLite FTS5 trigram prefilter (confirmed by the same matcher), same run.

Generates N items (en/ru/ko/zh text of ~600 characters, one in ~1,000
holding the rare term) into a fresh SQLite file through storage.items, then
times, for a rare and a common query:

    (a) scan       storage.search.iter_items_newest_first → the matcher
                   (what `newswatch search` does)
    (b) fts5       a trigram FTS5 table over title+summary+body as the
                   prefilter, each candidate confirmed by the same matcher
                   (index build time reported apart)

and prints items/s, the ratio, and the projected scan time at 1 M items.
The third query ("방공", two Hangul syllables) shows the trigram limit: a
literal under three characters (common in Korean and Chinese) cannot use
the index, so an index plan must fall back to the scan for it.

    .venv/bin/python bench/search.py [--items 100000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crawler.crawl_records import Item
from newswatch.cli_search import compile_query, found_items
from storage.db import make_engine, session_factory, transaction, upgrade
from storage.items import store_items
from storage.search import ItemFilter, iter_items_newest_first
from storage.sources import add_source

WORDS = {
    "en": [
        "the",
        "army",
        "moved",
        "air",
        "defence",
        "systems",
        "toward",
        "the",
        "border",
        "said",
        "officials",
        "on",
        "monday",
    ],
    "ru": [
        "армия",
        "перебросила",
        "системы",
        "противовоздушной",
        "обороны",
        "к",
        "границе",
        "заявили",
        "чиновники",
    ],
    "ko": [
        "군은",
        "방공",
        "체계를",
        "국경",
        "쪽으로",
        "이동했다고",
        "관계자들이",
        "월요일",
        "밝혔다",
    ],
    "zh": ["军队", "将", "防空", "系统", "移向", "边境", "官员", "周一", "表示"],
}
RARE = "Pantsir"


def generate(n: int, rng: random.Random) -> list[Item]:
    out = []
    for i in range(n):
        lang = ("en", "ru", "ko", "zh")[i % 4]
        words = [rng.choice(WORDS[lang]) for _ in range(80)]
        if i % 1000 == 7:
            words.insert(rng.randrange(80), RARE)
        body = " ".join(words)
        out.append(
            Item(
                url=f"https://example.org/{i}",
                guid=str(i),
                title=" ".join(words[:8]),
                summary=" ".join(words[8:30]),
                text=body,
                published=datetime(2026, 11, 1, tzinfo=UTC),
                language=lang,
                content_hash=f"{i:064x}",
            )
        )
    return out


def scan(url: str, query: str) -> tuple[int, float]:
    engine = make_engine(url)
    started = time.perf_counter()
    with transaction(session_factory(engine)) as s:
        found = list(
            found_items(compile_query(query), iter_items_newest_first(s, ItemFilter()), 10**9)
        )
    engine.dispose()
    return len(found), time.perf_counter() - started


def fts_build(path: Path) -> float:
    started = time.perf_counter()
    con = sqlite3.connect(path)
    con.execute(
        "CREATE VIRTUAL TABLE items_fts USING fts5(title, summary, body, "
        "content='items', content_rowid='id', tokenize='trigram')"
    )
    con.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")
    con.commit()
    con.close()
    return time.perf_counter() - started


def fts(url: str, path: Path, query: str, needle: str) -> tuple[int, float]:
    """Prefilter by one literal of the query (what an index plan would extract)."""
    from alerts.matching.engine import Matcher
    from storage.items import get_items

    started = time.perf_counter()
    con = sqlite3.connect(path)
    ids = [
        r[0]
        for r in con.execute(
            "SELECT rowid FROM items_fts WHERE items_fts MATCH ?", (f'"{needle}"',)
        )
    ]
    con.close()
    matcher = compile_query(query)
    assert isinstance(matcher, Matcher)
    engine = make_engine(url)
    with transaction(session_factory(engine)) as s:
        candidates = get_items(s, sorted(ids, reverse=True))
    found = list(found_items(matcher, iter([candidates]), 10**9))
    engine.dispose()
    return len(found), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        upgrade(engine)
        started = time.perf_counter()
        with transaction(session_factory(engine)) as s:
            src = add_source(
                s,
                name="b",
                url="https://example.org/f",
                kind="feed",
                every_seconds=900,
                links_css=None,
                now=datetime.now(UTC),
            )
        items = generate(args.items, random.Random(17))
        for start in range(0, len(items), 5_000):
            with transaction(session_factory(engine)) as s:
                store_items(s, src.id, items[start : start + 5_000], datetime.now(UTC))
        engine.dispose()
        print(f"stored {args.items:,} items in {time.perf_counter() - started:.1f} s")
        build = fts_build(path)
        print(f"fts5 trigram index built in {build:.1f} s, db {path.stat().st_size / 1e6:.0f} MB")
        for query, needle in ((RARE, RARE), ("관계자들이", "관계자들이"), ("방공", "방공")):
            n_scan, t_scan = scan(url, query)
            n_fts, t_fts = fts(url, path, query, needle)
            if n_scan != n_fts:  # trigrams: a needle under 3 characters finds nothing
                print(
                    f"query {query!r}: scan {n_scan:,} hits in {t_scan:.2f} s; "
                    f"fts5 trigram finds {n_fts:,}: no prefilter for it"
                )
                continue
            print(
                f"query {query!r}: {n_scan:,} hits | scan {t_scan:.2f} s "
                f"({args.items / t_scan:,.0f} items/s, 1 M ≈ {t_scan * 1e6 / args.items:.0f} s) "
                f"| fts5 prefilter {t_fts:.2f} s | ratio scan/fts5 {t_scan / t_fts:.1f}x"
            )


if __name__ == "__main__":
    main()
