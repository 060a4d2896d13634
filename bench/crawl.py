"""Crawl throughput: the real pipeline vs a plain sequential loop, in the same run.

1,000 generated feeds × 30 entries (tests/support/feedgen.py: RSS 2.0, Atom,
RSS 1.0 and JSON Feed in en/ru/ko/zh, ~100 KB each, every one with an ETag)
are served by aiohttp.web in a separate process on 127.0.0.1, so the server
never competes for the crawler's GIL (it still shares the machine's cores).

    (a) first crawl   scheduler.crawl.crawl into a fresh database
    (b) second crawl  the same again: every feed answers 304
    (b') third crawl  the same again, but the server now sends no ETag and
                      ignores If-None-Match: every body is fetched again,
                      unchanged (servers without validators)
    (c) baseline      urllib fetch → feedparser.parse (defaults) → one INSERT
                      and one commit per item into a separate SQLite file
                      (WAL, synchronous=NORMAL, like our engine), sequentially;
                      run twice: the second pass (INSERT OR IGNORE, nothing
                      new) is the baseline of the re-crawls

Politeness is relaxed for the bench only: all 1,000 feeds live on one host,
so per_host_delay=0 and per_host_concurrency=64 (the defaults, 1 s and 2,
would make the crawl measure the delay, not the code).

Each crawl and the baseline run in their own child process, so peak memory
(ru_maxrss) is the crawler's own: the crawling process plus its parse
workers, each worker's own peak (VmHWM, sampled from /proc while it runs;
the total counts the largest once per worker). RUSAGE_CHILDREN's ru_maxrss
is printed beside it but is not a worker's own figure: a spawned child's
ru_maxrss starts at its parent's high-water mark at fork time (Linux keeps
it across execve), so a worker started by a 375 MB crawling process
reports at least 375 MB whatever it uses.

Two peak-memory lines, both in MB:

- "peak memory" is the SUM of high-water marks: the crawling process's
  peak over all its crawls and drain, plus each worker's own peak. An upper
  bound of what is resident at once, since the peaks can fall at different
  times: the parse workers exit at the end of each crawl (the pool is shut
  down there), before the drain, where the crawler reaches its own peak.
- "concurrent peak" is what the first crawl and its drain hold at one
  moment: the VmRSS of the crawling process plus that of its live
  descendants (the parse workers), summed, sampled from /proc every 25 ms
  (`TotalRss`), with the largest sample of each phase (crawl: crawler +
  worker; drain: the crawler alone). What the machine must have; a spike
  shorter than a sample can be missed (the crawler's VmHWM bounds it).

Both samplers run in the bench's own process, which only waits while a
crawl child runs (`in_child(..., sampled=True)`), not in the crawling
process: there they took its GIL ~90 times a second and ~2 % of a core
(~0.4 ms a sample), which the crawl's time then included.

    .venv/bin/python bench/crawl.py [--feeds 1000] [--entries 30] [--postgres]
                                    [--profile FILE] [--workers N] [--stories-off]
                                    [--stories-inline] [--no-stories]

Stories: the crawl assigns the items that matched a watchlist in its save
transaction and leaves the others pending; `newswatch crawl` then drains
them (scheduler.story_assignment.drain_pending) after delivering. The first
crawl's row is the crawl alone (when every alert is queued); the "drain"
line after it is the pending items' assignment, timed separately, and
"alerts queued" gives when the crawl's outbox rows were written (seconds
after its start: median and last). `--stories-off` adds a SQLite crawl
without the story step in the same run (the issue #12 comparison: first
crawl with stories / without); `--stories-inline` adds one that assigns
every new item in the save transaction (the design before the drain).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import multiprocessing as mp
import os
import resource
import sqlite3
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.feedgen import etag, feed_bytes  # noqa: E402

POSTGRES_ADMIN = os.environ.get("NEWSWATCH_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
WATCHLISTS = """\
watchlists:
  - name: air-defence
    terms:
      - term: Pantsir
        aliases: ["Панцирь", "판치르", "铠甲-S1"]
      - term: SAM
        aliases: ["surface-to-air missile", "지대공 미사일", "地对空导弹", "ЗРК"]
      - term: S-400
        aliases: ["С-400"]
    notify:
      - email: analyst@example.org
  - name: brics
    terms:
      - term: BRICS
        aliases: ["브릭스", "金砖国家", "БРИКС"]
      - query: '(Pantsir OR Панцирь OR 판치르) AND ("North Korea" OR 북한 OR КНДР OR 朝鲜)'
    notify:
      - email: analyst@example.org
"""


# --- the server (its own process) -------------------------------------------------


def serve(feeds: int, entries: int, ready: Any, validators: Any) -> None:
    from aiohttp import web

    bodies = [feed_bytes(n, entries) for n in range(feeds)]
    tags = [etag(b) for b in bodies]
    types = [_content_type(b) for b in bodies]

    async def handler(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if not validators.value:
            return web.Response(body=bodies[n], headers={"Content-Type": types[n]})
        if request.headers.get("If-None-Match") == tags[n]:
            return web.Response(status=304, headers={"ETag": tags[n]})
        return web.Response(body=bodies[n], headers={"ETag": tags[n], "Content-Type": types[n]})

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{n}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        ready.put((server.sockets[0].getsockname()[1], sum(map(len, bodies))))
        await asyncio.Event().wait()

    asyncio.run(main())


def _content_type(body: bytes) -> str:
    head = body[:400]
    if head.startswith(b"{"):
        return "application/feed+json"
    if b"<feed" in head:
        return "application/atom+xml; charset=utf-8"
    if b"<rdf:RDF" in head:
        return "application/rdf+xml"
    return "application/rss+xml; charset=utf-8"


# --- (a) and (b): the real pipeline (its own process) --------------------------------


def bench_app(database_url: str, base: str, feeds: int, **settings: Any) -> Any:
    """The bench's app on a new database: `feeds` sources served at `base`, the
    bench watchlists; every match queues its alert, so the alert path is timed."""
    from alerts.watchlist_files import parse_watchlists
    from newswatch.app import build_app
    from newswatch.config import Settings
    from storage.db import upgrade
    from storage.sources import add_source
    from storage.watchlists import save_watchlists

    config = Settings(
        database_url=database_url,
        allow_private_addresses="127.0.0.1",
        per_host_delay=0,
        per_host_concurrency=64,
        concurrency=64,
        **settings,
    )
    app = build_app(config)
    upgrade(app.store.engine)
    with app.session() as s:
        for n in range(feeds):
            add_source(
                s,
                name=f"feed-{n}",
                url=f"{base}/feed/{n}",
                kind="feed",
                every_seconds=3600,
                links_css=None,
                now=app.now(),
                alert_backlog=True,
            )
        save_watchlists(s, parse_watchlists(WATCHLISTS), app.now())
    return app


def run_crawls(
    base: str,
    feeds: int,
    database_url: str,
    profile: str | None,
    workers: int | None,
    validators: Any,
    stories: str,
    phase: Any,
    out: Any,
) -> None:
    """`stories`: "deferred" (the default crawl), "inline" (every item in the
    save transaction, as before the drain) or "off" (no story step). `phase`
    (a shared int, `PHASES`) tells the samplers of the process that started
    this one (`in_child`) what runs: the first crawl, its drain, or neither."""
    import dataclasses
    import logging

    from scheduler.crawl import crawl, drain_stories

    logging.basicConfig(level=logging.ERROR)  # failures are counted in the summary
    app = bench_app(database_url, base, feeds)
    results: dict[str, Any] = {}
    validators.value = 1
    for label in ("first", "second", "third"):
        if label == "third":
            validators.value = 0  # the same bodies, without ETag: fetch + hash
        cpu_before = _cpu()
        started = time.perf_counter()
        profiler = _profiler(profile if label != "second" else None)
        ctx = app.crawl_context()
        if stories == "off":  # the same crawl without the story step (issue #12's comparison)
            ctx = dataclasses.replace(ctx, stories=None)
        elif stories == "inline" and ctx.stories is not None:
            ctx.stories.defer_unmatched = False
        wall_start = app.now()
        if label == "first":
            phase.value = PHASES.index("crawl")
        report = asyncio.run(crawl(ctx, parse_workers=workers))
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(f"{profile}.{label}")
        elapsed = time.perf_counter() - started
        cpu = [after - before for after, before in zip(_cpu(), cpu_before, strict=True)]
        results[label] = (
            elapsed,
            _summary(report) + f"; cpu: crawler {cpu[0]:.1f} s, workers {cpu[1]:.1f} s",
        )
        if label == "first":
            results["alerts"] = _alert_latency(app, wall_start)
            pending = _pending(app)
            crawled_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            cpu_before, started = _cpu(), time.perf_counter()
            phase.value = PHASES.index("drain")
            drained = drain_stories(ctx, one_shot=True)  # as `newswatch crawl` does
            phase.value = 0
            results["drain"] = (
                time.perf_counter() - started,
                _cpu()[0] - cpu_before[0],
                pending,
                drained,
            )
            # the crawler's peak before and after the drain (issue #15's breakdown)
            results["rss_drain"] = (
                crawled_kb,
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            )
    app.close()
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # the workers' own peak is filled in by in_child's sampler (ChildPeaks)
    results["rss"] = (self_kb, 0, _workers(feeds) if workers is None else workers, child_kb)
    out.put(results)


class ChildPeaks:
    """The largest VmHWM (own peak RSS, kB) of the children of process `root`
    (default: this one), read from /proc every 20 ms while they live. Each
    child's LAST sample counts: VmHWM only grows within one program, so the
    last sample before the exit holds its peak, while a sample taken between
    the fork and the exec reads the parent's memory (vfork: the child still
    runs in it). 0 without /proc."""

    def __init__(self, root: int | None = None) -> None:
        import threading

        self.peaks: dict[str, int] = {}
        self._root = os.getpid() if root is None else root
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.sample()

    def sample(self) -> None:
        for pid in _children(self._root):
            hwm = _status_kb(pid, "VmHWM:")
            if hwm:
                self.peaks[str(pid)] = hwm

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def largest(self) -> int:
        return max(self.peaks.values(), default=0)


class TotalRss:
    """The largest total resident memory of process `root` (default: this
    one) and its live descendants (the parse workers) at one moment, per
    phase: VmRSS of each, summed, read from /proc every 25 ms by a thread.
    `peaks[phase]` is (total, root, descendants) in kB at that phase's
    largest sample.

    What the machine must hold at once, unlike the sum of each process's own
    high-water mark (VmHWM), which adds peaks reached at different times (the
    crawler's in the drain, after the workers have exited). A sample can miss
    a spike shorter than 25 ms; VmHWM bounds the crawler's. A child that has
    not exec'd yet (the same command line as its parent) is not counted: it
    shares its parent's pages. 0 without /proc.

    The phase is set with start/phase/stop, or read before each sample from
    `phase()` (a phase of "" is not recorded): how the bench samples a crawl
    from the process that started it, outside the measured processes (a
    sampling thread inside the crawling process took its GIL 90 times a
    second and ~2 % of a core)."""

    def __init__(
        self,
        every: float = 0.025,
        root: int | None = None,
        phase: Callable[[], str] | None = None,
    ) -> None:
        import threading

        self.peaks: dict[str, tuple[int, int, int]] = {}
        self._every = every
        self._root = os.getpid() if root is None else root
        self._phase_of = phase
        self._phase = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, phase: str = "") -> None:
        self._phase = phase
        self.sample()
        self._thread.start()

    def phase(self, phase: str) -> None:
        self.sample()  # the previous phase's last sample
        self._phase = phase
        self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.sample()

    def sample(self) -> None:
        phase = self._phase if self._phase_of is None else self._phase_of()
        if self._phase_of is not None and not phase:
            return
        own = _status_kb(self._root, "VmRSS:")
        kids = sum(_status_kb(pid, "VmRSS:") for pid in self._descendants(self._root))
        best = self.peaks.get(phase)
        if best is None or own + kids > best[0]:
            self.peaks[phase] = (own + kids, own, kids)

    @staticmethod
    def _descendants(pid: int) -> list[int]:
        out: list[int] = []
        todo = [pid]
        while todo:
            parent = todo.pop()
            unexeced = _cmdline(parent)  # a child not exec'd yet still has it
            for kid in _children(parent):
                if _cmdline(kid) in (b"", unexeced):
                    continue  # gone, or not exec'd yet: its parent's own pages
                out.append(kid)
                todo.append(kid)
        return out


def _children(pid: int) -> list[int]:
    """The live children of process `pid` (of every thread of it), from /proc."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(k) for k in f.read().split()]
        except (OSError, ValueError):
            continue
    return out


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def _status_kb(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status (VmRSS:, VmHWM:), 0 when gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _alert_latency(app: Any, start: Any) -> tuple[int, float, float]:
    """(outbox rows, median and last seconds after `start` at which they were queued)."""
    from sqlalchemy import select

    from storage.tables import OutboxRow

    with app.session() as s:
        stamps = sorted(
            (c - start).total_seconds() for c in s.scalars(select(OutboxRow.created_at))
        )
    if not stamps:
        return 0, 0.0, 0.0
    return len(stamps), stamps[len(stamps) // 2], stamps[-1]


def _pending(app: Any) -> int:
    from sqlalchemy import func, select

    from storage.tables import ItemRow

    with app.session() as s:
        return int(s.scalar(select(func.count()).where(ItemRow.story_id.is_(None))) or 0)


def _profiler(path: str | None) -> Any:
    if path is None:
        return None
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    return profiler


def _cpu() -> tuple[float, float]:
    """CPU seconds so far: this process, and its parse workers (counted once they exit)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime


def _summary(report: Any) -> str:
    return (
        f"{report.polled} polled, {report.not_modified} not modified, "
        f"{len(report.failed)} failed, {report.new_items} new items, "
        f"{report.new_matches} matches"
    )


def _workers(feeds: int) -> int:
    """Parse workers the crawl started (0 when it parses in-process)."""
    from crawler.parse_pool import MIN_SOURCES_FOR_POOL, default_workers

    return default_workers() if feeds >= MIN_SOURCES_FOR_POOL else 0


# --- (c) the baseline (its own process) ---------------------------------------------


def run_baseline(base: str, feeds: int, path: str, out: Any) -> None:
    import feedparser

    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, url TEXT UNIQUE, guid TEXT, "
        "title TEXT, summary TEXT, body TEXT, published TEXT)"
    )
    db.commit()
    started = time.perf_counter()
    items = 0
    for n in range(feeds):
        with urllib.request.urlopen(f"{base}/feed/{n}", timeout=30) as response:
            body = response.read()
        parsed = feedparser.parse(io.BytesIO(body))
        for e in parsed.entries:
            content = e.get("content") or [{}]
            db.execute(
                "INSERT OR IGNORE INTO items (url, guid, title, summary, body, published) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    e.get("link"),
                    e.get("id"),
                    e.get("title"),
                    e.get("summary"),
                    content[0].get("value"),
                    e.get("published"),
                ),
            )
            db.commit()
            items += 1
    elapsed = time.perf_counter() - started
    db.close()
    out.put((elapsed, items, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


# --- orchestration --------------------------------------------------------------------


# What a crawl child runs, as `run_crawls` tells in_child's samplers ("" = not sampled).
PHASES = ("", "crawl", "drain")


def in_child(target: Any, *args: Any, sampled: bool = False) -> Any:
    """`target(*args, out)` in a spawned process; what it puts in `out`.

    `sampled` (run_crawls): the memory of the child and its parse workers is
    sampled from this process, which only waits meanwhile, so that no
    sampling thread runs in the crawling process itself: the target gets a
    shared `phase` before `out`, its result gets "concurrent" (TotalRss's
    peaks of the first crawl and its drain) and the workers' own peak
    (ChildPeaks) in "rss"."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    phase = ctx.Value("i", 0) if sampled else None
    proc = ctx.Process(target=target, args=(*args, phase, out) if sampled else (*args, out))
    proc.start()
    samplers = None
    if phase is not None:
        assert proc.pid is not None
        together = TotalRss(root=proc.pid, phase=lambda: PHASES[phase.value])
        together.start()
        samplers = (together, ChildPeaks(root=proc.pid))
    result = out.get()
    proc.join()
    if samplers is not None:
        together, workers_peak = samplers
        together.stop()
        workers_peak.stop()
        result["concurrent"] = dict(together.peaks)
        self_kb, _, workers, child_kb = result["rss"]
        result["rss"] = (self_kb, workers_peak.largest() or child_kb, workers, child_kb)
    if proc.exitcode != 0:
        raise SystemExit(f"{target.__name__} failed with exit code {proc.exitcode}")
    return result


def postgres_database() -> tuple[str, Any]:
    import psycopg

    name = f"newswatch_bench_{os.getpid()}"
    with psycopg.connect(f"{POSTGRES_ADMIN}/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(f"{POSTGRES_ADMIN}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    url = POSTGRES_ADMIN.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{url}/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=30)
    parser.add_argument("--postgres", action="store_true", help="also crawl into Postgres")
    parser.add_argument(
        "--profile", help="cProfile the first and third SQLite crawls into FILE.first, FILE.third"
    )
    parser.add_argument("--workers", type=int, help="parse workers (default: the crawl decides)")
    parser.add_argument(
        "--no-stories",
        action="store_true",
        help="diagnostic: the measured crawls run without story assignment",
    )
    parser.add_argument(
        "--stories-off",
        action="store_true",
        help="also crawl SQLite without the story step, in the same run (stories on vs off)",
    )
    parser.add_argument(
        "--stories-inline",
        action="store_true",
        help="also crawl SQLite assigning every new item in the save (the design before the drain)",
    )
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ready = ctx.Queue()
    validators = ctx.Value("b", 1)
    server = ctx.Process(
        target=serve, args=(args.feeds, args.entries, ready, validators), daemon=True
    )
    server.start()
    try:
        port, size = ready.get(timeout=300)
        base = f"http://127.0.0.1:{port}"
        print(
            f"{args.feeds} feeds x {args.entries} entries, {size / 1e6:.0f} MB, "
            f"{os.cpu_count()} cores, served by aiohttp.web in its own process"
        )
        with tempfile.TemporaryDirectory(prefix="nw-bench-") as tmp:
            rows = measure(args, base, tmp, validators)
    finally:
        server.kill()
        server.join()
    print_table(rows)


def measure(
    args: argparse.Namespace, base: str, tmp: str, validators: Any
) -> list[tuple[str, Any]]:
    validators.value = 0  # the loop sends no conditional GET anyway
    baseline = in_child(run_baseline, base, args.feeds, f"{tmp}/baseline.db")
    again = in_child(run_baseline, base, args.feeds, f"{tmp}/baseline.db")
    print(f"baseline: {baseline[0]:.1f} s, {baseline[1]} items; again {again[0]:.1f} s", flush=True)
    rows: list[tuple[str, Any]] = [("baseline", (*baseline, again[0]))]
    url = f"sqlite:///{tmp}/crawl.db"
    crawls = in_child(
        run_crawls,
        base,
        args.feeds,
        url,
        args.profile,
        args.workers,
        validators,
        "off" if args.no_stories else "deferred",
        sampled=True,
    )
    rows.append(("sqlite", crawls))
    if args.stories_inline:
        inline = in_child(
            run_crawls, base, args.feeds, f"sqlite:///{tmp}/inline.db", None, args.workers,
            validators, "inline", sampled=True,
        )  # fmt: skip
        rows.append(("sqlite-inline", inline))
    if args.stories_off:
        plain = in_child(
            run_crawls, base, args.feeds, f"sqlite:///{tmp}/plain.db", None, args.workers,
            validators, "off", sampled=True,
        )  # fmt: skip
        rows.append(("sqlite-nostories", plain))
    if args.postgres:
        pg_url, drop = postgres_database()
        try:
            crawled = in_child(
                run_crawls, base, args.feeds, pg_url, None, args.workers, validators, "deferred",
                sampled=True,
            )  # fmt: skip
            rows.append(("postgres", crawled))
        finally:
            drop()
    return rows


def print_table(rows: list[tuple[str, Any]]) -> None:
    base_s, base_items, base_kb, again_s = rows[0][1]
    print()
    print(f"{'run':<22} {'seconds':>8} {'ratio':>7}  {'aim':>6}  result")
    print(f"{'baseline (loop)':<22} {base_s:8.2f} {1:7.3f}  {'':>6}  {base_items} items")
    print(f"{'baseline again':<22} {again_s:8.2f} {1:7.3f}  {'':>6}  nothing new")
    for db, result in rows[1:]:
        for label, aim, against in (
            ("first", 0.2, base_s),
            ("second", 0.05, again_s),
            ("third", 0.1, again_s),
        ):
            secs, summary = result[label]
            ratio = secs / against
            mark = "ok" if ratio <= aim else "MISSED"
            print(f"{db + ' ' + label:<22} {secs:8.2f} {ratio:7.3f}  ≤{aim:<5} {mark}  {summary}")
            if label == "first" and "drain" in result:
                wall, cpu, pending, drained = result["drain"]
                n, mid, last = result["alerts"]
                print(
                    f"{db + ' drain':<22} {wall:8.2f} {'':>7}  {'':>6}  "
                    f"{pending} items pending after the crawl, {drained} assigned; "
                    f"cpu {cpu:.1f} s"
                )
                if "rss_drain" in result:
                    before_kb, after_kb = result["rss_drain"]
                    print(
                        f"{db + ' drain memory':<22} {'':>8} {'':>7}  {'':>6}  crawler peak "
                        f"{before_kb / 1024:.0f} MB after the crawl, {after_kb / 1024:.0f} MB "
                        f"after the drain; {1000 * cpu / max(drained, 1):.2f} ms cpu per item"
                    )
                print(
                    f"{db + ' alerts queued':<22} {'':>8} {'':>7}  {'':>6}  "
                    f"{n} outbox rows, median {mid:.2f} s, last {last:.2f} s after the start"
                )
        self_kb, child_kb, workers, inherited_kb = result["rss"]
        total = (self_kb + workers * child_kb) / 1024
        print(
            f"{db + ' peak memory':<22} {total:7.0f} MB  (crawler {self_kb / 1024:.0f} MB + "
            f"{workers} worker(s) x ≤{child_kb / 1024:.0f} MB own peak; aim < 300 MB; "
            f"the worker's ru_maxrss {inherited_kb / 1024:.0f} MB)"
        )
        if result.get("concurrent"):
            phases = result["concurrent"]
            top = max(peak[0] for peak in phases.values())
            parts = ", ".join(
                f"{phase} {t / 1024:.0f} MB (crawler {own / 1024:.0f} + children {kids / 1024:.0f})"
                for phase, (t, own, kids) in phases.items()
            )
            print(
                f"{db + ' concurrent peak':<22} {top / 1024:7.0f} MB  (first crawl and its drain, "
                f"total RSS sampled every 25 ms: {parts}; aim < 300 MB)"
            )
    print(f"{'baseline peak memory':<22} {base_kb / 1024:7.0f} MB")
    named = dict(rows[1:])
    if "sqlite-nostories" in named:
        off = named["sqlite-nostories"]["first"][0]
        for db in ("sqlite", "sqlite-inline"):
            if db not in named:
                continue
            on, drain = named[db]["first"][0], named[db]["drain"][0]
            print(
                f"first crawl, {db} / stories off: {on:.2f} s / {off:.2f} s = {on / off:.3f}; "
                f"with the drain {on + drain:.2f} s = {(on + drain) / off:.3f}"
            )
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
