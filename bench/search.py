"""`newswatch search`: the prefilter index vs the scan, same run, same data.

Generates N items into a fresh database (SQLite file, or a throwaway
PostgreSQL database at 127.0.0.1), a quarter each in English, Russian,
Korean and Chinese: ~1,000-character bodies of Zipf-distributed synthetic
words (a realistic spread of distinct terms per item, unlike a ten-word
vocabulary), with planted terms: "Pantsir" in one item of 1,000, the Korean
two-syllable word "방공" in one of 1,000, "Syria" in one of 100 (a few next
to Pantsir, for NEAR). The items are stored without the index hook, then
indexed by the backfill path (`search --reindex`: reset_index +
index_pending), which is timed as the build. Then, for each query, times

    scan    storage.search.iter_items_newest_first -> the matcher (the fallback)
    index   storage.search.iter_candidate_items    -> the matcher

asserting both return the same items, and prints the ratio. Queries: rare
word, Korean two syllables, NEAR, a common word (with the CLI's default
--limit 50 and with no limit), and a lone Han character (no index condition:
scanned either way). Finally the insert cost on the crawl path, per item,
into fresh databases: bare (no search work), the previous inline indexing,
and the shipped pending mark; then the search-index job over those items.

    .venv/bin/python bench/search.py [--items 100000] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import storage.items as items_module
from alerts.matching.prefilter import document_terms
from crawler.crawl_records import Item
from newswatch.cli_search import compile_query, found_items, search_plan
from scheduler.context import HousekeepingContext
from scheduler.jobs import SEARCH_INDEX_BATCH, index_search
from storage.db import make_engine, session_factory, transaction, upgrade
from storage.items import MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, cap, store_items
from storage.repository import SqlStore
from storage.search import ItemFilter, iter_candidate_items, iter_items_newest_first
from storage.search_index import index_items, index_pending, reset_index
from storage.sources import add_source

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CHUNK = 5_000


def _vocab(rng: random.Random, alphabet: str, n: int, lo: int, hi: int) -> list[str]:
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi))) for _ in range(n)]


class Corpus:
    """Zipf-like synthetic text per language; planted rare terms."""

    def __init__(self, seed: int = 17) -> None:
        rng = random.Random(seed)
        latin = "abcdefghijklmnopqrstuvwxyz"
        cyr = "абвгдежзийклмнопрстуфхцчшщыэюя"
        hangul = "".join(chr(c) for c in range(0xAC00, 0xAC00 + 2000, 3))
        han = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 3000))
        self.vocab = {
            "en": ["the", "of", "and", "air", "defence", *_vocab(rng, latin, 8000, 2, 10)],
            "ru": ["и", "в", "не", *_vocab(rng, cyr, 8000, 2, 11)],
            "ko": ["있다", "것으로", *_vocab(rng, hangul, 8000, 1, 4)],
            "zh": ["的", "了", *_vocab(rng, han, 6000, 1, 2)],
        }
        self.cumulative = {
            k: list(accumulate(1 / (r + 1) for r in range(len(v)))) for k, v in self.vocab.items()
        }
        self.rng = rng

    def item(self, i: int) -> Item:
        lang = ("en", "ru", "ko", "zh")[i % 4]
        n = 160 if lang in ("en", "ru") else 300 if lang == "ko" else 600
        words = self.rng.choices(self.vocab[lang], cum_weights=self.cumulative[lang], k=n)
        if i % 1000 == 7:
            words.insert(self.rng.randrange(n), "Pantsir")
        if i % 1000 == 503:
            words.insert(self.rng.randrange(n), "방공")
        if i % 100 == 42:
            at = self.rng.randrange(n)
            words.insert(at, "Syria")
            if i % 300 == 42:
                words.insert(at + 2, "Pantsir")
        sep = "" if lang == "zh" else " "
        body = sep.join(words)
        return Item(
            url=f"https://example.org/{i}",
            guid=str(i),
            title=sep.join(words[:10]),
            summary=sep.join(words[10:40]),
            text=body,
            published=datetime(2026, 11, 1, tzinfo=UTC),
            language=lang,
            content_hash=f"{i:064x}",
        )


QUERIES: list[tuple[str, str, int]] = [
    ("rare word", "Pantsir", 10**9),
    ("Korean 2 syllables", "방공", 10**9),
    ("NEAR", "Pantsir NEAR/3 Syria", 10**9),
    ("common word, --limit 50", "the", 50),
    ("common word, no limit", "the", 10**9),
    ("lone Han char (no index)", "的", 50),
]


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}"
        return
    name = f"newswatch_bench_search_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


# The crawl path's search work, as measured by `store`:
#   bare     none (the floor: items only)
#   inline   the index terms stored in the save transaction (the previous
#            design: storage.items called index_items on the new rows)
#   pending  the shipped path: the new ids listed in search_pending
MODES = ("bare", "inline", "pending")


@contextmanager
def crawl_path(mode: str) -> Iterator[None]:
    saved = getattr(items_module, "mark_pending")  # noqa: B009
    if mode != "pending":
        setattr(items_module, "mark_pending", lambda session, ids: None)  # noqa: B010
    try:
        yield
    finally:
        setattr(items_module, "mark_pending", saved)  # noqa: B010


def _inline_index(s: Session, batch: list[Item], new: dict[str, int]) -> None:
    index_items(
        s,
        (
            (new[x.url], cap(x.title, MAX_TITLE_CHARS), cap(x.summary, MAX_SUMMARY_CHARS), x.text)
            for x in batch
            if x.url in new
        ),
    )


def store(url: str, corpus: Corpus, start: int, n: int, *, mode: str = "bare") -> float:
    engine = make_engine(url)
    factory = session_factory(engine)
    with transaction(factory) as s:
        src = add_source(
            s,
            name=f"b{start}",
            url=f"https://example.org/f{start}",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=datetime.now(UTC),
        )
    spent = 0.0
    with crawl_path(mode):
        for lo in range(start, start + n, CHUNK):
            batch = [corpus.item(i) for i in range(lo, min(lo + CHUNK, start + n))]
            began = time.perf_counter()
            with transaction(factory) as s:
                new = store_items(s, src.id, batch, datetime.now(UTC))
                if mode == "inline":
                    _inline_index(s, batch, new)
            spent += time.perf_counter() - began
    engine.dispose()
    return spent


def build(url: str) -> float:
    engine = make_engine(url)
    factory = session_factory(engine)
    began = time.perf_counter()
    with transaction(factory) as s:
        reset_index(s)
    while True:
        with transaction(factory) as s:
            if not index_pending(s, batch=2_000):
                break
    engine.dispose()
    return time.perf_counter() - began


def build_pending(url: str) -> float:
    """The daemon's job over the items the crawl listed as pending."""
    engine = make_engine(url)
    ctx = HousekeepingContext(
        store=SqlStore(engine), clock=lambda: datetime.now(UTC), retention=timedelta(days=30)
    )
    began = time.perf_counter()
    while index_search(ctx, budget=1e9):
        pass
    engine.dispose()
    return time.perf_counter() - began


def run(url: str, query: str, limit: int, indexed: bool) -> tuple[list[int], float]:
    engine = make_engine(url)
    matcher = compile_query(query)
    plan = search_plan(query)
    began = time.perf_counter()
    with transaction(session_factory(engine)) as s:
        if indexed and plan is not None:
            batches = iter_candidate_items(s, ItemFilter(), plan)
        else:
            batches = iter_items_newest_first(s, ItemFilter())
        found = [x.id for x, _ in found_items(matcher, batches, limit)]
    engine.dispose()
    return found, time.perf_counter() - began


def size(url: str) -> int:
    """Bytes of the database (SQLite: the file after a checkpoint) and of the index."""
    engine = make_engine(url)
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            total = int((pages - free) * page)
        else:
            total = int(
                conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar_one()
            )
    engine.dispose()
    return total


def timed(fn: Callable[[], Any]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--insert-items", type=int, default=10_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    n = args.items
    corpus = Corpus()
    sample = [corpus.item(i) for i in range(2_000)]
    chars = sum(len(x.title) + len(x.summary) + len(x.text) for x in sample) / len(sample)
    terms = timed(lambda: [document_terms((x.title, x.summary, x.text)) for x in sample])
    print(
        f"[{args.backend}] {n:,} items, ~{chars:,.0f} characters each; "
        f"index terms computed at {len(sample) / terms:,.0f} items/s"
    )
    with tempfile.TemporaryDirectory() as tmp, database(args.backend, Path(tmp)) as url:
        upgrade(make_engine(url))
        t = store(url, corpus, 0, n, mode="bare")
        before = size(url)
        print(f"stored in {t:.0f} s ({n / t:,.0f} items/s, without index), {before / 1e6:,.0f} MB")
        t = build(url)
        grown = size(url) - before
        print(
            f"index built by the backfill path in {t:.0f} s ({n / t:,.0f} items/s); "
            f"database +{grown / 1e6:,.0f} MB ({grown / n:,.0f} bytes/item)"
        )
        for label, query, limit in QUERIES:
            found_scan, t_scan = run(url, query, limit, indexed=False)
            found_index, t_index = run(url, query, limit, indexed=True)
            assert found_scan == found_index, (query, len(found_scan), len(found_index))
            print(
                f"{label:26} {query!r:24} {len(found_scan):7,} hits | scan {t_scan:7.2f} s "
                f"(1 M ≈ {t_scan * 1e6 / n:5.0f} s) | index {t_index:6.2f} s "
                f"(1 M ≈ {t_index * 1e6 / n:5.1f} s) | scan/index {t_scan / t_index:6.1f}x"
            )
    m = args.insert_items
    with tempfile.TemporaryDirectory() as tmp:
        costs: dict[str, float] = {}
        for mode in MODES * 3:  # alternate, keep the best of three
            with database(args.backend, Path(tmp)) as url:
                upgrade(make_engine(url))
                t = store(url, corpus, 0, m, mode=mode)
                costs[mode] = min(costs.get(mode, t), t)
        us = {k: v / m * 1e6 for k, v in costs.items()}
        print(
            f"insert (crawl path), {m:,} items in batches of {CHUNK:,}, µs/item: "
            f"bare {us['bare']:,.0f}; inline index (before) {us['inline']:,.0f} "
            f"(+{us['inline'] - us['bare']:,.0f}, {costs['inline'] / costs['bare']:.2f}x); "
            f"pending mark (shipped) {us['pending']:,.0f} "
            f"(+{us['pending'] - us['bare']:,.0f}, {costs['pending'] / costs['bare']:.2f}x)"
        )
        with database(args.backend, Path(tmp)) as url:
            upgrade(make_engine(url))
            store(url, corpus, 0, m, mode="pending")
            t = build_pending(url)
            print(
                f"search-index job (batches of {SEARCH_INDEX_BATCH:,}) on those {m:,} items: "
                f"{t / m * 1e6:,.0f} µs/item, off the crawl path"
            )


if __name__ == "__main__":
    main()
