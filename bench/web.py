"""Server time of each web-view page with 100,000 items, 20,000 matches and
5,000 stories, on SQLite and on PostgreSQL.

    .venv/bin/python bench/web.py [--items 100000] [--matches 20000] [--stories 5000]
                                  [--backends sqlite,postgres]

Each page is requested through a real local socket (the same aiohttp app the
daemon mounts), `--rounds` times after one warm-up. The server time is the
page's own `Server-Timing` header (handler and database, without the client),
median and worst round in ms; the round trip is what the client saw. The
baseline in the same run is the static stylesheet (no database): `ratio` is
page/baseline. `cpu` is the CPU time of this process per request (server,
client, and on SQLite the database itself): what the page costs without
contention. The machine's load average is printed: on a shared machine
every figure scales with it.
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

from sqlalchemy import text

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
    "/api/matches?term=SAM&limit=100",
    "/api/stories",
    "/api/stories?limit=1000",
    "/api/stories?watchlist=brics&since=7d",
]


def _time(url: str, rounds: int) -> tuple[float, float, float, float]:
    """Server time (the page's Server-Timing header) median and worst, and
    the client's round trip and the CPU time this process spent (server,
    client and, on SQLite, the database), medians, in ms."""
    fetch(url)  # warm-up (template compile, plan caches)
    server, client, cpu = [], [], []
    for _ in range(rounds):
        start, start_cpu = time.perf_counter(), time.process_time()
        reply = fetch(url)
        client.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
        assert reply.status == 200, (url, reply.status, reply.body[:200])
        timing = reply.headers.get("Server-Timing", "app;dur=0")
        server.append(float(timing.split("dur=")[1]))
    return (
        statistics.median(server),
        max(server),
        statistics.median(client),
        statistics.median(cpu),
    )


def run(backend: str, url: str, items: int, matches: int, stories: int, rounds: int) -> list[str]:
    engine = make_engine(url)
    upgrade(engine)
    start = time.perf_counter()
    bulk(engine, NOW, items=items, matches=matches, stories=stories)
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
    lines = [
        f"\n{backend}: {items:,} items, {matches:,} matches, {stories:,} stories"
        f" (loaded in {load:.0f} s)"
    ]
    head = f"{'page':44} {'server ms':>10} {'worst':>7} {'ratio':>6} {'round trip':>11} {'cpu':>6}"
    lines.append(head)
    try:
        base = None
        for page in PAGES:
            med, worst, trip, cpu = _time(served.url + page.format(item=item, story=story), rounds)
            base = base or max(med, 0.1)
            flag = "" if med <= 200 else "  OVER 200 ms"
            figures = f"{med:10.1f} {worst:7.1f} {med / base:6.0f} {trip:11.1f} {cpu:6.1f}"
            lines.append(f"{page:44} {figures}{flag}")
    finally:
        served.stop()
        engine.dispose()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--matches", type=int, default=20_000)
    ap.add_argument("--stories", type=int, default=5_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    out = [f"load average before: {os.getloadavg()[0]:.1f} (cores: {os.cpu_count()})"]
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                url = f"sqlite:///{tmp}/bench.db"
                out += run(backend, url, args.items, args.matches, args.stories, args.rounds)
        else:
            name = f"newswatch_bench_{uuid.uuid4().hex[:8]}"
            admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            try:
                url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
                out += run(backend, url, args.items, args.matches, args.stories, args.rounds)
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                admin.dispose()
    print("\n".join(out))
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
