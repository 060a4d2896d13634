"""Server time of each web-view page with 100,000 items, 20,000 matches and
5,000 stories, on SQLite and on PostgreSQL.

    .venv/bin/python bench/web.py [--items 100000] [--matches 20000] [--stories 5000]
                                  [--backends sqlite,postgres]

Each page is requested through a real local socket (the same aiohttp app the
daemon mounts), `--rounds` times after one warm-up, and the whole list of
pages is gone through `--repeat` times (interleaved, so a burst of load on
the shared machine does not land on one page only). The server time is the
page's own `Server-Timing` header (handler and database, without the client):
p50 and p95 of each pass in ms, and the median of those over the passes; the
round trip is what the client saw. The
baseline in the same run is the static stylesheet (no database): `ratio` is
page/baseline. `cpu` is the CPU time of this process per request (server,
client, and on SQLite the database itself): what the page costs without
contention. On PostgreSQL `db cpu` adds the CPU time the database server's
backends spent per request (read from /proc for the backends connected to
the bench's database; `cpu` + `db cpu` is what a request costs there). The
machine's load average is printed before and after each backend: on a
shared machine every time scales with it, the CPU figures do not.
The target is ≤ 200 ms per page. Each story is a matched item joined by
1-5 other items (~17,500 items in stories); the rest have no story, as items
the story step has not reached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool

from storage.db import make_engine, session_factory, upgrade
from storage.views import SqlWebReader
from tests.support.webdata import bulk
from tests.support.webserver import ServedApp, fetch
from web.server import WebConfig, create_app

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
PG_ADMIN = os.environ.get(
    "NEWSWATCH_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PAGES = [
    "/static/style.css",
    "/",
    "/?term=Kazan",
    "/?language=ko&since=7d",
    "/?source=source-007",
    "/?watchlist=brics&term=SAM&language=ru",
    "/?tag=none-such",
    "/stories/{story}",
    "/items/{item}",
    "/trends",
    "/trends?days=90",
    "/trends?days=90&watchlist=brics",
    "/sources",
    "/alerts",
    "/api/matches",
    "/api/matches?limit=1000",
    "/api/matches?limit=500&cursor={match_cursor}",
    "/api/matches?term=SAM&limit=100",
    "/api/stories",
    "/api/stories?limit=1000",
    "/api/stories?limit=500&cursor={story_cursor}",
    "/api/stories?watchlist=brics&since=7d",
]


class DatabaseCpu:
    """CPU time (ms) spent so far by the PostgreSQL backends connected to one
    database, from /proc/PID/stat (the server runs on this machine); 0 on
    SQLite, whose work is done in this process and counted in `cpu`."""

    def __init__(self, engine: Engine) -> None:
        # its own connection, outside the pool the pages use: never counted
        self._conn = (
            create_engine(engine.url, poolclass=NullPool).connect()
            if engine.dialect.name == "postgresql"
            else None
        )
        self._tick = 1000 / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()

    def __call__(self) -> float:
        if self._conn is None:
            return 0.0
        pids = self._conn.scalars(
            text(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).all()
        self._conn.rollback()
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # a backend that just ended
            total += (int(fields[11]) + int(fields[12])) * self._tick  # utime + stime
        return total


def _time(
    url: str, rounds: int, db_cpu: DatabaseCpu
) -> tuple[list[float], list[float], list[float], float]:
    """Server times (the page's Server-Timing header), the client's round
    trips and the CPU time this process spent (server, client and, on SQLite,
    the database) of `rounds` requests, in ms; and the database server's CPU
    per request (PostgreSQL)."""
    server, client, cpu = [], [], []
    db_start = db_cpu()
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        reply = fetch(url)
        client.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert reply.status == 200, (url, reply.status, reply.body[:200])
        timing = reply.headers.get("Server-Timing", "app;dur=0")
        server.append(float(timing.split("dur=")[1]))
    return server, client, cpu, (db_cpu() - db_start) / rounds


def _cursor(url: str) -> str:
    """The cursor in the Link header of `url` with limit=500 (10 for a small world)."""
    for n in (500, 10):
        link = fetch(f"{url}?limit={n}").headers.get("Link")
        if link:
            return link.split("cursor=")[1].split(">")[0]
    raise SystemExit(f"no next page at {url}")


def _p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]
    )


def run(
    backend: str, url: str, items: int, matches: int, stories: int, rounds: int, repeat: int
) -> list[str]:
    engine = make_engine(url)
    upgrade(engine)
    start = time.perf_counter()
    bulk(engine, NOW, items=items, matches=matches, stories=stories)
    if engine.dialect.name == "postgresql":
        # What autovacuum does after a bulk insert (it is off on the development
        # server): statistics, and the visibility map that index-only scans
        # need. Without it `/sources` counts items by a sequential scan of the
        # whole table (measured: 110-210 ms under load, 24 ms after VACUUM).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        item = conn.scalar(
            text(
                "SELECT m.item_id FROM matches m JOIN items i ON i.id = m.item_id"
                " WHERE i.story_id IS NULL ORDER BY m.id LIMIT 1"
            )
        )
        story = conn.scalar(text("SELECT id FROM stories ORDER BY item_count DESC, id LIMIT 1"))
    load = time.perf_counter() - start
    served = ServedApp(
        create_app(SqlWebReader(session_factory(engine)), WebConfig(clock=lambda: NOW))
    ).start()
    # the cursors of the second page of each API (from the first page's Link)
    links = {name: _cursor(served.url + path) for name, path in (
        ("story_cursor", "/api/stories"), ("match_cursor", "/api/matches"))}  # fmt: skip
    urls = [served.url + p.format(item=item, story=story, **links) for p in PAGES]
    lines = [
        f"\n{backend}: {items:,} items, {matches:,} matches, {stories:,} stories"
        f" (loaded in {load:.0f} s); {repeat} passes of {rounds} rounds",
        f"load average before: {_load()}",
    ]
    head = (
        f"{'page':46} {'p50 ms':>7} {'p95 ms':>7} {'ratio':>6} {'round trip':>11} {'cpu':>6}"
        f" {'db cpu':>7}"
    )
    lines.append(head)
    db_cpu = DatabaseCpu(engine)
    p50s: dict[str, list[float]] = {u: [] for u in urls}
    p95s: dict[str, list[float]] = {u: [] for u in urls}
    trips: dict[str, list[float]] = {u: [] for u in urls}
    cpus: dict[str, list[float]] = {u: [] for u in urls}
    db_cpus: dict[str, list[float]] = {u: [] for u in urls}
    try:
        for u in urls:
            fetch(u)  # warm-up (template compile, plan caches)
        for _ in range(repeat):
            for u in urls:
                server, client, cpu, db = _time(u, rounds, db_cpu)
                db_cpus[u].append(db)
                p50s[u].append(statistics.median(server))
                p95s[u].append(_p95(server))
                trips[u].append(statistics.median(client))
                cpus[u].append(statistics.median(cpu))
        base = max(statistics.median(p50s[urls[0]]), 0.1)
        for page, u in zip(PAGES, urls, strict=True):
            p50, p95 = statistics.median(p50s[u]), statistics.median(p95s[u])
            flag = "" if p95 <= 200 else "  p95 OVER 200 ms"
            figures = (
                f"{p50:7.1f} {p95:7.1f} {p50 / base:6.0f} {statistics.median(trips[u]):11.1f}"
                f" {statistics.median(cpus[u]):6.1f} {statistics.median(db_cpus[u]):7.1f}"
            )
            lines.append(f"{page:46} {figures}{flag}")
        lines.append(f"load average after: {_load()}")
    finally:
        db_cpu.close()
        served.stop()
        engine.dispose()
    return lines


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " (1/5/15 min)"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--matches", type=int, default=20_000)
    ap.add_argument("--stories", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    out = [f"cores: {os.cpu_count()}"]
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{tmp}/bench.db"
                out += run(
                    backend, url, args.items, args.matches, args.stories, args.rounds, args.repeat
                )
        else:
            name = f"newswatch_bench_{uuid.uuid4().hex[:8]}"
            admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
                out += run(
                    backend, url, args.items, args.matches, args.stories, args.rounds, args.repeat
                )
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
    print("\n".join(out))


if __name__ == "__main__":
    main()
