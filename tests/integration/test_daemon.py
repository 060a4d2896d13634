"""`newswatch run` as a user runs it: a subprocess against local feeds and a local
webhook receiver, on SQLite and PostgreSQL.

The shared PostgreSQL server is never stopped here (other tests use it in
parallel): an outage is simulated by a TCP proxy between the daemon and the
database that the test cuts and restores.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.db import make_engine, upgrade
from tests.conftest import PG_ADMIN, Database
from tests.support.daemon import (
    NEWSWATCH,
    Daemon,
    Feed,
    Webhook,
    daemon_env,
    free_port,
    seed,
    wait_for,
)
from tests.support.httpserver import LocalHTTPServer
from tests.support.tcpproxy import TcpProxy


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test started; any still running at the end is killed."""
    started: list[Daemon] = []
    yield started
    for d in started:
        d.kill()


def start(daemons: list[Daemon], url: str, log: Path, **env: str) -> Daemon:
    d = Daemon(daemon_env(url, free_port(), **env), log).start()
    daemons.append(d)
    d.wait_healthy()
    return d


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_new_item_becomes_alert_and_sigterm_exits_0(
    db: Database, http_server: LocalHTTPServer, daemons: list[Daemon], tmp_path: Path
) -> None:
    feed, hook = Feed(http_server, "/isw.xml"), Webhook(http_server)
    feed.publish("old-1", "Pantsir seen last week")  # matched on the first poll too
    seed(db.url, [feed], hook.url)
    d = start(daemons, db.url, tmp_path / "log", NEWSWATCH_LOG_FORMAT="json")

    status, body = d.get("/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "scheduler": "running", "database": "up"}
    assert wait_for(lambda: len(hook.received) == 1, 10)

    published = time.monotonic()
    url = feed.publish("new-1", "Pantsir battery moved north")
    assert wait_for(lambda: url in hook.per_item(), 10), d.log()
    assert time.monotonic() - published < 8  # 2 s interval + jitter + delivery

    polls = len(http_server.hits("/isw.xml"))
    assert polls >= 2
    wait_for(lambda: metric(d.get("/metrics")[1], "newswatch_alerts_sent_total") >= 2, 3)
    text = d.get("/metrics")[1]
    assert metric(text, "newswatch_items_stored_total") == 2
    assert metric(text, "newswatch_matches_total") == 2
    assert metric(text, "newswatch_alerts_sent_total") == 2
    assert metric(text, 'newswatch_polls_total{status="ok"}') >= 2
    assert metric(text, "newswatch_poll_duration_seconds_count") >= 2
    assert "newswatch_outbox_backlog" in text
    sent = 'newswatch_outbox_backlog{status="sent"}'  # refreshed by the delivery, not in 15 s
    assert wait_for(lambda: metric(d.get("/metrics")[1], sent) == 2, 5), d.get("/metrics")[1]
    assert metric(text, 'newswatch_source_consecutive_failures{source="src0"}') == 0
    assert metric(text, 'newswatch_source_seconds_since_success{source="src0"}') < 60

    code, took = d.stop(signal.SIGTERM)
    assert code == 0 and took < 10, d.log()
    assert hook.per_item() == {url: 1, feed.server.url("/a/isw.xml/old-1"): 1}
    lines = [json.loads(line) for line in d.log().splitlines() if line.startswith("{")]
    assert {"daemon_started", "polled", "shutdown"} <= {x["event"] for x in lines}
    levels = {x["event"]: x["level"] for x in lines}
    assert (levels["daemon_started"], levels["shutdown"]) == ("info", "warning")


@pytest.mark.slow  # ~12 s and ~4 s of subprocess daemons: make test-all
def test_second_daemon_on_one_sqlite_file_exits_with_one_line(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    url = f"sqlite:///{tmp_path / 'nw.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    first = start(daemons, url, tmp_path / "log1")
    second = subprocess.run(
        [NEWSWATCH, "run"],
        env=daemon_env(url, free_port()),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode != 0
    message = second.stderr.strip().splitlines()
    assert len(message) == 1 and "already running" in message[0], second.stderr
    assert first.get("/healthz")[0] == 200  # the first one is unharmed
    code, _ = first.stop(signal.SIGINT)
    assert code == 0


def test_daemon_refuses_missing_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    r = subprocess.run(
        [NEWSWATCH, "run"], env=daemon_env(url, None), capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "newswatch init" in r.stderr


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A throwaway PostgreSQL database of this test's own, dropped at the end."""
    name = f"newswatch_daemon_{uuid.uuid4().hex[:10]}"
    admin = make_engine(PG_ADMIN).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_database_outage_loses_nothing_and_is_logged_once(
    pg_url: str, http_server: LocalHTTPServer, daemons: list[Daemon], tmp_path: Path
) -> None:
    target = make_url(pg_url)
    proxy = TcpProxy((target.host or "127.0.0.1", target.port or 5432)).start()
    try:
        via_proxy = target.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        feed, hook = Feed(http_server, "/tass.xml", hold=1.0), Webhook(http_server)
        before = feed.publish("before", "Pantsir before the outage")
        seed(pg_url, [feed], hook.url)
        d = start(daemons, via_proxy, tmp_path / "log")
        assert wait_for(lambda: before in hook.per_item(), 10), d.log()

        # Cut while a poll is in flight: it fetches the new item, then cannot save it.
        assert wait_for(lambda: feed.in_flight == 1, 10)
        during = feed.publish("during", "Pantsir during the outage")
        proxy.cut()
        assert wait_for(lambda: feed.in_flight == 0, 5)
        assert wait_for(lambda: d.get("/healthz")[0] == 503, 8), d.log()
        time.sleep(2)  # the outage goes on: ticks and delivery passes fail quietly
        assert d.proc is not None and d.proc.poll() is None  # still running
        assert during not in hook.per_item()

        proxy.restore()
        assert wait_for(lambda: during in hook.per_item(), 15), d.log()
        assert d.get("/healthz")[0] == 200
        assert hook.per_item() == {before: 1, during: 1}
        assert len(d.events("database_unavailable")) == 1, d.log()
        assert len(d.events("database_available")) == 1, d.log()
        code, took = d.stop(signal.SIGTERM)
        assert code == 0 and took < 10
    finally:
        proxy.stop()


@pytest.mark.slow
def test_two_daemons_share_50_sources_without_double_polls_or_alerts(
    pg_db: Database, http_server: LocalHTTPServer, daemons: list[Daemon], tmp_path: Path
) -> None:
    """Replicas share one PostgreSQL; on SQLite a second daemon refuses to run (tested apart)."""
    db = pg_db
    feeds = [Feed(http_server, f"/f{i}.xml", hold=0.15) for i in range(50)]
    hook = Webhook(http_server)
    expected = {f.publish("a", f"Pantsir sighting {i}") for i, f in enumerate(feeds)}
    seed(db.url, feeds, hook.url)
    a = start(daemons, db.url, tmp_path / "a.log")
    b = start(daemons, db.url, tmp_path / "b.log")
    assert wait_for(lambda: set(hook.per_item()) == expected, 20), (a.log(), b.log())

    expected |= {f.publish("b", f"Pantsir again {i}") for i, f in enumerate(feeds)}
    assert wait_for(lambda: set(hook.per_item()) == expected, 20)
    time.sleep(3)  # more rounds of polls, and time for any duplicate to show up
    for d in (a, b):
        code, took = d.stop(signal.SIGTERM)
        assert code == 0 and took < 10, d.log()

    assert all(n == 1 for n in hook.per_item().values()), hook.per_item().most_common(3)
    assert max(f.max_overlap for f in feeds) == 1
    assert all(len(http_server.hits(f.path)) >= 3 for f in feeds)
    assert a.events("polled") and b.events("polled")  # both did part of the work


@pytest.mark.slow
def test_hung_source_delays_no_other_and_shutdown_abandons_it(
    tmp_path: Path, http_server: LocalHTTPServer, daemons: list[Daemon]
) -> None:
    url = f"sqlite:///{tmp_path / 'nw.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    hung, quick = Feed(http_server, "/hung.xml", hold=30), Feed(http_server, "/quick.xml")
    hook = Webhook(http_server)
    seed(url, [hung, quick], hook.url)
    d = start(daemons, url, tmp_path / "log", NEWSWATCH_FETCH_TIMEOUT="60")
    assert wait_for(lambda: hung.in_flight == 1, 10)
    assert wait_for(lambda: len(http_server.hits("/quick.xml")) >= 3, 10), d.log()
    assert len(http_server.hits("/hung.xml")) == 1

    code, took = d.stop(signal.SIGTERM)
    assert code == 0 and took < 10, d.log()
    assert d.events("shutdown") and "status=abandoned" in d.log()


@pytest.mark.slow  # ~12 s and ~4 s of subprocess daemons: make test-all
def test_second_signal_exits_at_once(
    tmp_path: Path, http_server: LocalHTTPServer, daemons: list[Daemon]
) -> None:
    url = f"sqlite:///{tmp_path / 'nw.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    hung = Feed(http_server, "/hung.xml", hold=30)
    seed(url, [hung], Webhook(http_server).url)
    d = start(daemons, url, tmp_path / "log")
    assert wait_for(lambda: hung.in_flight == 1, 10)
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    code, took = d.stop(signal.SIGTERM)
    assert code == 128 + signal.SIGTERM and took < 2, d.log()


@pytest.mark.slow
def test_the_stories_job_gives_unmatched_items_their_story(
    db: Database, http_server: LocalHTTPServer, daemons: list[Daemon], tmp_path: Path
) -> None:
    """A matched item has its story when its alert is queued; the items that
    matched nothing are stored without one and the daemon's `stories` job
    (every 10 s) assigns them: the same event's unmatched report joins the
    matched item's story, another event gets its own."""
    from sqlalchemy import select

    from storage.db import session_factory, transaction
    from storage.tables import ItemRow

    feed, hook = Feed(http_server, "/isw.xml"), Webhook(http_server)
    feed.publish("m", "Pantsir battery moved to Crimea, satellite images show")
    feed.publish("u", "Air-defence battery moved to Crimea, satellite images show")
    feed.publish("x", "Typhoon Haishen makes landfall on Okinawa")
    seed(db.url, [feed], hook.url)
    d = start(daemons, db.url, tmp_path / "log", NEWSWATCH_STORY_ENCODER="hashing")
    assert wait_for(lambda: len(hook.received) == 1, 15), d.log()

    def stories() -> dict[str, int | None]:
        with transaction(session_factory(db.engine)) as s:
            rows = s.execute(select(ItemRow.guid, ItemRow.story_id)).all()
        return dict(rows)  # type: ignore[arg-type]

    assert stories()["m"] is not None  # before its alert went out
    assert wait_for(lambda: None not in stories().values() and len(stories()) == 3, 25), d.log()
    got = stories()
    assert got["u"] == got["m"] != got["x"]
    assert len(hook.received) == 1
    code, _ = d.stop(signal.SIGTERM)
    assert code == 0, d.log()
