"""The web view over real SQLite and PostgreSQL, through a real local socket:
what each page lists, the headers, the token, and that reading changes nothing."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from newswatch.webapp import build_web_app
from scheduler.health import DatabaseProbe, HealthServer
from scheduler.metrics import Metrics
from storage.db import check_connection
from storage.tables import Base
from storage.views import MatchFilter, MatchGroup, SqlWebReader
from tests.conftest import Database
from tests.support.daemon import free_port
from tests.support.env import clean_env
from tests.support.webdata import SLACK_SECRET, Scenario, scenario
from tests.support.webserver import ServedApp, fetch
from web.server import CSP, WebConfig, create_app

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
TOKEN = "t0ken-for-the-web-view-4242"
NEWSWATCH = str(Path(sys.executable).parent / "newswatch")


@pytest.fixture
def world(db: Database) -> Scenario:
    return scenario(db.engine, NOW)


def _serve(db: Database, token: str | None = None) -> Iterator[ServedApp]:
    served = ServedApp(
        create_app(SqlWebReader(db.factory), WebConfig(token=token, clock=lambda: NOW))
    ).start()
    yield served
    served.stop()


@pytest.fixture
def site(db: Database, world: Scenario) -> Iterator[ServedApp]:
    yield from _serve(db)


@pytest.fixture
def locked(db: Database, world: Scenario) -> Iterator[ServedApp]:
    yield from _serve(db, TOKEN)


PAGES = ["/", "/items/1", "/trends", "/trends?days=90", "/sources", "/alerts", "/api/matches"]


@pytest.mark.parametrize("path", [*PAGES, "/static/style.css", "/nope", "/items/999"])
def test_every_response_carries_the_strict_headers(site: ServedApp, path: str) -> None:
    r = fetch(site.url + path)
    assert r.status in (200, 404)
    assert r.headers["Content-Security-Policy"] == CSP
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "same-origin"  # nothing leaks to other sites
    assert r.headers["X-Frame-Options"] == "DENY"


def test_index_lists_groups_newest_first_and_filters(site: ServedApp, world: Scenario) -> None:
    page = fetch(site.url + "/").body
    t = world.titles
    order = [page.index(t[k]) for k in ("pantsir_en", "pantsir_ko", "pantsir_ru", "brics_en")]
    assert order == sorted(order)
    cases = {
        "term=BRICS": ({"brics_ko", "brics_en"}),
        "watchlist=brics": ({"brics_ko", "brics_en"}),
        "language=ko": ({"pantsir_ko", "brics_ko"}),
        "source=tass": ({"pantsir_ru"}),
        "term=Pantsir&language=ru": ({"pantsir_ru"}),
        "since=3h": ({"pantsir_en", "pantsir_ko", "pantsir_ru"}),
        "since=0001-01-01": set(t),
    }
    for query, expected in cases.items():
        body = fetch(f"{site.url}/?{query}").body
        shown = {k for k, title in t.items() if title in body}
        assert shown == expected, query


def test_bad_filter_is_a_400_with_one_line(site: ServedApp) -> None:
    r = fetch(site.url + "/?since=yesterday")
    assert r.status == 400 and "is not a duration" in r.body
    r = fetch(site.url + "/api/matches?since=yesterday")
    assert r.status == 400 and "since" in json.loads(r.body)["error"]
    assert fetch(site.url + "/api/matches?limit=0").status == 400


@pytest.mark.parametrize(
    "path",
    ["/items/%C2%B2", "/?since=999999d",
     "/items/99999999999999999999999", "/items/-1", "/items/1.0", "/?term=%00",
     "/?source=a%1Bb", "/?watchlist=" + "x" * 201, "/api/matches?limit=%C2%B2",
     "/api/matches?term=%00", "/api/matches?limit=99999999999999999999", "/trends?watchlist=%00",
     "/trends?days=%C2%B3%C2%B0", "/?since=99999999d"],
)  # fmt: skip
def test_hostile_parameters_are_4xx_never_500(site: ServedApp, path: str) -> None:
    r = fetch(site.url + path)
    assert 400 <= r.status < 500, (path, r.status, r.body[:300])


def test_story_page_shows_outlet_language_snippet_and_link(
    site: ServedApp, world: Scenario
) -> None:
    body = fetch(site.url + "/items/2").body
    assert world.titles["pantsir_ko"] in body and "yonhap" in body
    assert '<span class="lang">ko</span>' in body and "<mark>판치르</mark>" in body
    assert 'href="https://news2.example/a/2"' in body
    assert fetch(site.url + "/items/999").status == 404
    assert fetch(site.url + "/items/abc").status == 404


def test_hostile_feed_text_renders_as_text_everywhere(site: ServedApp) -> None:
    bodies = [fetch(site.url + p).body for p in ["/", *(f"/items/{i}" for i in range(100, 108))]]
    joined = "\n".join(bodies)
    for needle in ["<script>window", "<img src=x", "<svg onload", "\u202e", 'href="javascript',
                   'href="data:', "onmouseover=\"alert"]:  # fmt: skip
        assert needle not in joined, needle
    assert "&lt;script&gt;window.__pwned" in joined
    assert joined.count("<script") == 0
    # links that are not plain http(s) are shown, not linked
    assert "javascript:alert(5)//pantsir" in bodies[6]


def test_sources_failing_first_with_reason(site: ServedApp, world: Scenario) -> None:
    body = fetch(site.url + "/sources").body
    rows = body.split("<tbody>")[1]
    assert rows.index(world.failing_source) < rows.index("isw") < rows.index("yonhap")
    assert world.failing_error in body and "failing ×3" in body


def test_alerts_show_reasons_and_next_attempt_never_secrets(site: ServedApp) -> None:
    body = fetch(site.url + "/alerts").body
    assert "slack: HTTP 404 no_service" in body and "smtp: connection refused" in body
    assert "2026-11-30 03:07" in body  # the pending alert's next attempt
    assert SLACK_SECRET not in body and "xoxsecrettoken" not in body
    assert "https://hooks.slack.com/…" in body


def test_trends_draw_one_chart_per_term_split_by_language(site: ServedApp) -> None:
    body = fetch(site.url + "/trends").body
    assert body.count("<svg") == 3  # Pantsir, BRICS, SAM
    pantsir = body[body.index("Pantsir</bdi></span>") :].split("</figure>")[0]
    assert 'data-series="en"' in pantsir and 'data-series="ko"' in pantsir
    assert 'data-series="ru"' in pantsir
    assert fetch(site.url + "/trends?days=7").status == 400


def test_api_matches_equals_the_cli_json(site: ServedApp, db: Database) -> None:
    cli = subprocess.run(
        [NEWSWATCH, "matches", "--json"],
        env=clean_env(NEWSWATCH_DATABASE_URL=db.url),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    expected = [json.loads(line) for line in cli.stdout.splitlines()]
    api = json.loads(fetch(site.url + "/api/matches").body)
    assert api == expected and len(api) == 14
    only = json.loads(fetch(site.url + "/api/matches?watchlist=brics&limit=1").body)
    assert only == [m for m in expected if m["watchlist"] == "brics"][:1]


def _snapshot(db: Database) -> dict[str, list[tuple[object, ...]]]:
    with db.engine.connect() as conn:
        return {
            t.name: sorted(map(tuple, conn.execute(text(f"SELECT * FROM {t.name}"))), key=repr)
            for t in Base.metadata.sorted_tables
        }


def test_no_get_changes_anything(site: ServedApp, db: Database) -> None:
    before = _snapshot(db)
    for path in [*PAGES, "/?term=BRICS&since=2d", "/login", "/api/stories"]:
        fetch(site.url + path)
        fetch(site.url + path, method="HEAD")
    assert _snapshot(db) == before
    assert fetch(site.url + "/", method="POST", data=b"x").status == 405


@pytest.mark.parametrize("path", PAGES)
def test_with_a_token_everything_needs_it(locked: ServedApp, path: str) -> None:
    r = fetch(locked.url + path)
    assert r.status == 401 and TOKEN not in r.body
    if path.startswith("/api/"):
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    else:
        assert 'action="/login"' in r.body
    for wrong in [f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", "Bearer "]:
        assert fetch(locked.url + path, headers={"Authorization": wrong}).status == 401
    ok = fetch(locked.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200 and TOKEN not in ok.body


def test_login_sets_a_strict_httponly_cookie(locked: ServedApp) -> None:
    form = f"token={TOKEN}&next=/trends".encode()
    r = fetch(locked.url + "/login", data=form, headers={"Origin": locked.url})
    assert r.status == 303 and r.headers["Location"] == "/trends"
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and TOKEN not in cookie
    value = cookie.split(";")[0]
    assert fetch(locked.url + "/sources", headers={"Cookie": value}).status == 200
    bad = fetch(locked.url + "/login", data=b"token=nope&next=/", headers={"Origin": locked.url})
    assert bad.status == 401 and "Set-Cookie" not in bad.headers
    for origin in ["http://evil.example", "null", locked.url.replace("127.0.0.1", "localhost")]:
        evil = fetch(locked.url + "/login", data=form, headers={"Origin": origin})
        assert evil.status == 403 and "Set-Cookie" not in evil.headers, origin
    away = fetch(locked.url + "/login", data=f"token={TOKEN}&next=//evil.example/".encode())
    assert away.status == 303 and away.headers["Location"] == "/"


def test_the_daemon_http_server_mounts_the_view_beside_its_probes(
    db: Database, world: Scenario
) -> None:
    async def scenario_() -> tuple[int, int, int, int]:
        health = HealthServer(
            "127.0.0.1",
            0,
            probe=DatabaseProbe(lambda: check_connection(db.engine)),
            scheduler_running=lambda: True,
            metrics=Metrics(),
            web_app=create_app(SqlWebReader(db.factory), WebConfig(token=TOKEN)),
        )
        port = await health.start()
        try:
            codes = []
            for path, headers in [("/healthz", {}), ("/metrics", {}), ("/", {}),
                                  ("/", {"Authorization": f"Bearer {TOKEN}"})]:  # fmt: skip
                r = await asyncio.to_thread(
                    fetch, f"http://127.0.0.1:{port}{path}", headers=headers
                )
                codes.append(r.status)
            return tuple(codes)  # type: ignore[return-value]
        finally:
            await health.stop()

    # A thread of its own: safe whatever event loop this thread may have.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, scenario_()).result(60) == (200, 200, 401, 200)


def test_build_web_app_refuses_a_public_bind_without_token(db: Database) -> None:
    from newswatch.app import build_app
    from newswatch.config import load_settings
    from web import WebError

    app = build_app(load_settings(env={"NEWSWATCH_DATABASE_URL": db.url}))
    try:
        with pytest.raises(WebError, match="NEWSWATCH_WEB_TOKEN"):
            build_web_app(app, "0.0.0.0")
        build_web_app(app, "127.0.0.1")
    finally:
        app.close()


def test_newswatch_web_command(db: Database, world: Scenario, tmp_path: Path) -> None:
    env = clean_env(NEWSWATCH_DATABASE_URL=db.url)
    refused = subprocess.run(
        [NEWSWATCH, "web", "--host", "0.0.0.0", "--port", "0"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and "NEWSWATCH_WEB_TOKEN" in refused.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = subprocess.run(
            [NEWSWATCH, "web", "--port", str(taken.getsockname()[1])],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert busy.returncode == 1 and busy.stderr.count("\n") == 1, busy.stderr
    assert "cannot listen on 127.0.0.1" in busy.stderr
    port = free_port()
    proc = subprocess.Popen(
        [NEWSWATCH, "web", "--port", str(port)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = fetch(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
                time.sleep(0.2)
        assert r.status == 200 and "Pantsir batteries moved near Pyongyang" in r.body
    finally:
        proc.terminate()
        proc.wait(10)


class BlockedReader(SqlWebReader):
    """The real reader, held at the start of each list read until released: a
    database that has stopped answering, for as long as the test wants."""

    def __init__(self, db: Database) -> None:
        super().__init__(db.factory)
        self.release = threading.Event()

    def match_groups(self, f: MatchFilter) -> list[MatchGroup]:
        self.release.wait(30)
        return super().match_groups(f)


def test_slow_pages_do_not_starve_the_health_probe(db: Database, world: Scenario) -> None:
    reader = BlockedReader(db)

    async def scenario_() -> tuple[int, list[int]]:
        health = HealthServer(
            "127.0.0.1", 0, probe=DatabaseProbe(lambda: check_connection(db.engine)),
            scheduler_running=lambda: True,
            metrics=Metrics(), web_app=create_app(reader, WebConfig()),
        )  # fmt: skip
        port = await health.start()
        base = f"http://127.0.0.1:{port}"
        loop = asyncio.get_running_loop()
        clients = ThreadPoolExecutor(16)  # not the server loop's default executor
        try:
            pages = [loop.run_in_executor(clients, fetch, base + "/") for _ in range(12)]
            await asyncio.sleep(0.5)  # every page is now waiting on the database
            probe = await asyncio.wait_for(
                loop.run_in_executor(clients, fetch, base + "/healthz"), 10
            )
            reader.release.set()
            return probe.status, [(await p).status for p in pages]
        finally:
            reader.release.set()
            await health.stop()
            clients.shutdown()

    with ThreadPoolExecutor(1) as pool:
        probe, pages = pool.submit(asyncio.run, scenario_()).result(60)
    assert probe == 200
    assert pages == [200] * 12


def test_alert_listing_limit_keeps_the_newest(db: Database, world: Scenario) -> None:
    from datetime import timedelta

    from sqlalchemy import insert

    from storage.outbox import list_alerts
    from storage.tables import OutboxRow

    with db.engine.begin() as conn:
        conn.execute(insert(OutboxRow), [
            {"match_id": m, "item_id": m, "watchlist_id": 1, "recipient_id": 1, "status": status,
             "attempts": 1, "next_attempt_at": NOW, "last_error": f"e{m}",
             "created_at": NOW + timedelta(minutes=m)}
            for m, status in [(3, "failed"), (100, "failed"), (101, "sent"), (102, "failed")]
        ])  # fmt: skip
    with db.factory() as s:
        failed = list_alerts(s, status="failed", limit=2)
        anything = list_alerts(s, limit=3)
        every = list_alerts(s)
    assert [a.last_error for a in failed] == ["e102", "e100"]
    assert [a.last_error for a in anything] == ["e102", "e101", "e100"]
    assert len(every) == 6 and every[:3] == anything


@pytest.mark.parametrize(
    "path", ["/", "/items/1", "/trends", "/sources", "/alerts", "/api/matches"]
)
def test_database_down_is_a_503_without_details(path: str) -> None:
    from storage.db import make_engine, session_factory

    url = f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{free_port()}/gone"
    engine = make_engine(url)
    served = ServedApp(create_app(SqlWebReader(session_factory(engine)), WebConfig())).start()
    try:
        r = fetch(served.url + path)
    finally:
        served.stop()
        engine.dispose()
    assert r.status == 503 and "not answering" in r.body
    assert "hunter2" not in r.body and "127.0.0.1" not in r.body.replace(served.url, "")


def test_newswatch_run_serves_the_view_beside_its_probes(
    db: Database, world: Scenario, tmp_path: Path
) -> None:
    from tests.support.daemon import Daemon, daemon_env

    d = Daemon(daemon_env(db.url, free_port(), NEWSWATCH_WEB_TOKEN=TOKEN), tmp_path / "log")
    try:
        d.start().wait_healthy()
        assert d.get("/")[0] == 401  # the token is asked for
        r = fetch(f"http://127.0.0.1:{d.port}/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status == 200 and world.titles["pantsir_en"] in r.body
        assert d.get("/metrics")[0] == 200
        code, _ = d.stop()
        assert code == 0
    finally:
        d.kill()
    assert TOKEN not in d.log()


def test_the_daemon_leaves_the_view_out_on_a_public_address_without_token(db: Database) -> None:
    """No socket is opened here: only the wiring's decision is checked."""
    from newswatch.app import build_app
    from newswatch.config import load_settings
    from newswatch.webapp import daemon_web_app

    def built(**env: str) -> object:
        app = build_app(load_settings(env={"NEWSWATCH_DATABASE_URL": db.url, **env}))
        try:
            return daemon_web_app(app)
        finally:
            app.close()

    assert built(NEWSWATCH_HTTP_HOST="0.0.0.0") is None
    assert built(NEWSWATCH_HTTP_HOST="10.1.2.3") is None
    assert built(NEWSWATCH_HTTP_HOST="0.0.0.0", NEWSWATCH_WEB_TOKEN=TOKEN) is not None
    assert built() is not None  # 127.0.0.1 by default
