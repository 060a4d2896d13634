"""Hostile input through the real `newswatch crawl`, on SQLite and PostgreSQL.

All the cases of `hostile_cases.CASES` are sources of ONE crawl per backend
(one bad source must never stop the others), run as a subprocess so its exit
status and peak RSS are measured. Then each case is its own test: its source
recorded the expected error, or stored the expected items, and what reached
the webhook receiver, the Slack stand-in and the aiosmtpd server is escaped.
A second crawl must store and send nothing new. The autouse canary check of
conftest.py asserts that nothing reached 127.0.0.2 or [::1].
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from alerts.watchlist_files import parse_watchlists
from newswatch.cli import main
from storage.db import transaction
from storage.sources import add_source
from storage.tables import ItemRow, OutboxRow, SourceRow
from storage.watchlists import save_watchlists
from tests.conftest import BACKENDS, Database
from tests.faults.conftest import MAX_RSS_MB, Proc, base_env, fresh_database, run_newswatch
from tests.faults.hostile_cases import (
    CASES,
    INJECTED_BUG_CASE,
    PANTSIR_CASES,
    Case,
    Ctx,
    Outcome,
    case_ids,
)
from tests.support.canary import Canary
from tests.support.httpserver import BusyHTTPServer, LocalHTTPServer, Request, Response
from tests.support.smtpserver import RecordingHandler, smtp_server

pytestmark = pytest.mark.faults

CRAWL_SECONDS = 60.0


@dataclass
class Deliveries:
    """What the three channel stand-ins received during one backend's crawls."""

    smtp: RecordingHandler
    webhook: list[dict[str, Any]] = field(default_factory=list)
    slack: list[dict[str, Any]] = field(default_factory=list)

    def clear(self) -> None:
        self.webhook.clear()
        self.slack.clear()
        self.smtp.messages.clear()

    def counts(self) -> tuple[int, int, int]:
        return len(self.webhook), len(self.slack), len(self.smtp.messages)

    @staticmethod
    def slack_texts(payload: dict[str, Any]) -> list[str]:
        texts = [str(payload.get("text", ""))]
        for block in payload.get("blocks", []):
            for part in [block.get("text"), *list(block.get("fields") or [])]:
                if isinstance(part, dict):
                    texts.append(str(part.get("text", "")))
            for el in block.get("elements") or []:
                if isinstance(el, dict):
                    texts.append(str(el.get("text", "")))
        return texts

    def for_case(self, name: str) -> dict[str, Any]:
        mark = f"/art/{name}/"
        hooks = [w for w in self.webhook if mark in w["item"]["url"]]
        slacks = [s for s in self.slack if mark in json.dumps(s)]
        mails = [m for m in self.smtp.messages if mark in m.data.decode("utf-8", "replace")]
        assert (len(hooks), len(slacks), len(mails)) == (1, 1, 1), (name, hooks, slacks, mails)
        msg: EmailMessage = mails[0].message
        return {
            "webhook": hooks[0],
            "slack": slacks[0],
            "email": msg,
            "email_rcpt": mails[0].rcpt_tos,
        }


@dataclass
class Site:
    server: LocalHTTPServer
    https: ThreadingHTTPServer
    https_routes: dict[str, Response]
    cafile: Path
    smtp_url: str
    deliveries: Deliveries


def _https_front(tmp: Path, routes: dict[str, Response]) -> tuple[ThreadingHTTPServer, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: Any) -> None:
            pass

        def do_GET(self) -> None:
            status, headers, body = routes.get(self.path, (404, {}, b"not found"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            assert isinstance(body, bytes)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = BusyHTTPServer(("127.0.0.1", 0), H)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, cert


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    server = LocalHTTPServer().start()
    routes: dict[str, Response] = {}
    https, cafile = _https_front(tmp_path_factory.mktemp("tls"), routes)
    with smtp_server() as (handler, smtp_url):
        deliveries = Deliveries(handler)

        def hook(req: Request) -> Response:
            deliveries.webhook.append(json.loads(req.body))
            return 200, {"Content-Type": "text/plain"}, b"ok"

        def slack(req: Request) -> Response:
            deliveries.slack.append(json.loads(req.body))
            return 200, {"Content-Type": "text/plain"}, b"ok"

        server.route("/hook", hook)
        server.route("/slack", slack)
        yield Site(server, https, routes, cafile, smtp_url, deliveries)
    https.shutdown()
    server.stop()


WATCHLIST = """\
watchlists:
  - name: hostile
    terms: [Pantsir]
    notify:
      - webhook: {hook}
      - slack: {slack}
      - email: analyst@example.org
"""


@dataclass
class CrawlRun:
    backend: str
    first: Proc
    second: Proc
    outcomes: dict[str, Outcome]
    deliveries_after_first: tuple[int, int, int]
    deliveries_after_second: tuple[int, int, int]
    pending_or_failed: int


def _seed(db: Database, site: Site, canaries: list[Canary]) -> None:
    c6 = next((c.port for c in canaries if c.host == "::1"), 9)
    now = datetime.now(UTC)
    yaml = WATCHLIST.format(hook=site.server.url("/hook"), slack=site.server.url("/slack"))
    with transaction(db.factory) as s:
        save_watchlists(s, parse_watchlists(yaml), now)
        for case in CASES:
            ctx = Ctx(
                site.server,
                canaries[0].port,
                c6,
                lambda path: f"https://127.0.0.1:{site.https.server_address[1]}{path}",
                site.https_routes,
                case.name,
            )
            url = case.setup(ctx)
            add_source(
                s,
                name=case.name,
                url=url,
                kind=case.kind,  # type: ignore[arg-type]
                every_seconds=900,
                links_css=None,
                now=now,
                alert_backlog=True,  # hostile input is under test here, not the baseline
            )


def _outcomes(db: Database, site: Site, started: datetime) -> dict[str, Outcome]:
    with transaction(db.factory) as s:
        sources = {r.id: r for r in s.scalars(select(SourceRow))}
        items: dict[int, list[dict[str, Any]]] = {sid: [] for sid in sources}
        for it in s.scalars(select(ItemRow)):
            items[it.source_id].append(
                {
                    "url": it.url,
                    "guid": it.guid,
                    "title": it.title,
                    "summary": it.summary,
                    "body": it.body,
                    "published": it.published,
                }
            )
    return {
        r.name: Outcome(
            db.backend,
            r.last_error,
            r.consecutive_failures,
            items[sid],
            site.deliveries,
            started,
            site.server,
        )
        for sid, r in sources.items()
    }


@pytest.fixture(scope="module", params=BACKENDS)
def crawled(
    request: pytest.FixtureRequest,
    _databases: dict[str, Database],
    site: Site,
    canaries: list[Canary],
) -> CrawlRun:
    db = fresh_database(_databases, request.param)
    site.deliveries.clear()
    site.server.requests.clear()
    _seed(db, site, canaries)
    env = base_env(
        db.url,
        NEWSWATCH_SMTP_URL=site.smtp_url,
        SSL_CERT_FILE=str(site.cafile),
        NEWSWATCH_FETCH_TIMEOUT="4",
        NEWSWATCH_RAISE_AT=f"poll={INJECTED_BUG_CASE}",
    )
    started = datetime.now(UTC)
    first = run_newswatch(["crawl"], env, timeout=CRAWL_SECONDS + 30)
    after_first = site.deliveries.counts()
    outcomes = _outcomes(db, site, started)
    second = run_newswatch(["crawl"], env, timeout=CRAWL_SECONDS + 30)
    with transaction(db.factory) as s:
        unsent = len(list(s.scalars(select(OutboxRow.id).where(OutboxRow.status != "sent"))))
    return CrawlRun(
        db.backend, first, second, outcomes, after_first, site.deliveries.counts(), unsent
    )


def test_crawl_survives_every_case(crawled: CrawlRun) -> None:
    """One crawl over every hostile source: exit 0, bounded time and memory,
    every failing source named, every alert sent, and a second crawl adds nothing."""
    first = crawled.first
    assert first.code == 0, first.err[-3000:]
    # The only traceback is the injected bug's, logged at critical and contained.
    crashed = [line for line in first.err.splitlines() if "poll_crashed" in line]
    assert len(crashed) == 1 and f"source={INJECTED_BUG_CASE}" in crashed[0], crashed
    assert first.err.count("Traceback") == 1, first.err[-3000:]
    assert first.seconds < CRAWL_SECONDS, first.seconds
    # The crawling process and its parse workers, each by its own high-water mark.
    assert first.peak_rss_mb < MAX_RSS_MB, first.peak_rss_mb
    failing = [c.name for c in CASES if c.error and not c.may_pass_empty]
    for name in failing:
        assert f"source {name} failed:" in first.err, name
    either = sum(1 for c in CASES if c.may_pass_empty)
    failed = int(first.out.split(" failed;")[0].rsplit(" ", 1)[-1])
    assert len(failing) <= failed <= len(failing) + either, first.out
    assert crawled.deliveries_after_first == (len(PANTSIR_CASES),) * 3, first.out
    assert crawled.pending_or_failed == 0
    second = crawled.second
    assert second.code == 0 and "0 new items" in second.out, second.out + second.err[-2000:]
    assert second.peak_rss_mb < MAX_RSS_MB, second.peak_rss_mb
    assert crawled.deliveries_after_second == crawled.deliveries_after_first


@pytest.mark.parametrize("case", CASES, ids=case_ids())
def test_case(crawled: CrawlRun, case: Case) -> None:
    outcome = crawled.outcomes[case.name]
    if case.may_pass_empty and outcome.error is None:
        assert outcome.items == [] and outcome.failures == 0
        return
    if case.errors:
        assert outcome.error is not None, f"expected an error like {case.errors}, got none"
        assert any(e.lower() in outcome.error.lower() for e in case.errors), outcome.error
        assert "\n" not in outcome.error and len(outcome.error) <= 300
        assert outcome.failures == 1
        assert outcome.items == []
    else:
        assert outcome.error is None, outcome.error
    if case.items is not None:
        assert len(outcome.items) == case.items, [i["title"][:80] for i in outcome.items]
    if case.check is not None:
        case.check(outcome)


# ------------------------------------------------------------------ 100,000 items


# Stories: the 100 matching items get theirs in the save, the other 99,900 in
# `crawl`'s drain after delivery, before it exits (scheduler.story_assignment).
# Measured (branch story-speed, SQLite, load ~5): crawl 10.5 s CPU, drain 126 s
# CPU (1.26 ms per item), peak 400 MB; 161 s for this test.
@pytest.mark.timeout(1200)
def test_hundred_thousand_item_feed(db: Database, tmp_path: Path, canaries: list[Canary]) -> None:
    """A 9 MB feed of 100,000 items: stored completely, in bounded time and memory;
    the 100 that match become 100 alerts."""
    server = LocalHTTPServer().start()
    try:
        received: list[bytes] = []
        hook = server.route("/hook", lambda r: (received.append(r.body), (200, {}, b"ok"))[1])
        base = server.url("").rstrip("/")
        entries = "".join(
            f"<item><title>{'Pantsir ' if i % 1000 == 0 else ''}Item {i}</title>"
            f"<link>{base}/big/{i}</link><guid>g{i}</guid></item>"
            for i in range(100_000)
        )
        url = server.serve(
            "/big.xml", f'<rss version="2.0"><channel><title>b</title>{entries}</channel></rss>'
        )
        with transaction(db.factory) as s:
            now = datetime.now(UTC)
            save_watchlists(
                s,
                parse_watchlists(
                    f"watchlists:\n  - name: w\n    terms: [Pantsir]\n"
                    f"    notify:\n      - webhook: {hook}\n"
                ),
                now,
            )
            add_source(
                s,
                name="big",
                url=url,
                kind="feed",
                every_seconds=900,
                links_css=None,
                now=now,
                alert_backlog=True,
            )
        run = run_newswatch(
            ["crawl"],
            base_env(db.url, NEWSWATCH_FETCH_TIMEOUT="10", NEWSWATCH_MAX_RESPONSE_BYTES="20000000"),
            timeout=540,
        )
        assert run.code == 0, run.err[-2000:]
        assert "100000 new items, 100 new matches" in run.out, run.out
        assert len(received) == 100
        assert run.peak_rss_mb < MAX_RSS_MB, run.peak_rss_mb
        # Bounded work: 100k x (parse + store + match + story), in CPU seconds of
        # the crawl and its parse worker, which do not swell with the machine's
        # load as wall time does (the database server's CPU is not counted).
        # Measured: 127-136 s of CPU, 137-154 s wall (SQLite and PostgreSQL, load ~3).
        assert run.cpu_seconds < 300, (run.cpu_seconds, run.seconds)
        again = run_newswatch(
            ["crawl"],
            base_env(db.url, NEWSWATCH_FETCH_TIMEOUT="10", NEWSWATCH_MAX_RESPONSE_BYTES="20000000"),
            timeout=120,
        )
        assert again.code == 0 and "0 new items" in again.out and len(received) == 100
    finally:
        server.stop()


# ------------------------------------------------------------------ watchlist files


def _bomb_yaml() -> str:
    lines = ["watchlists:", "  - name: w0", "    terms: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    for n in range(1, 9):
        lines += [f"  - name: w{n}", f"    terms: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]"]
    return "\n".join(lines) + "\n"


BAD_WATCHLISTS: list[tuple[str, str | bytes, str]] = [
    ("unclosed-bracket", "watchlists:\n  - name: x\n    terms: [a, b\n", "YAML syntax error"),
    ("tab-indent", "watchlists:\n\t- name: x\n", "YAML syntax error"),
    (
        "python-tag",
        "watchlists:\n  - name: !!python/object/apply:os.system ['touch /tmp/pwned']\n"
        "    terms: [a]\n",
        "YAML syntax error",
    ),
    ("alias-bomb", _bomb_yaml(), "anchors and aliases"),
    ("binary", b"\x00\x01\x02\xff\xfe", "error"),
    ("empty", "", "must be a mapping"),
    (
        "huge-term",
        "watchlists:\n  - name: x\n    terms: ['" + "a" * 100_000 + "']\n",
        "longer than",
    ),
    (
        "deep-query",
        "watchlists:\n  - name: x\n    terms:\n      - query: '"
        + "(" * 5000
        + "a"
        + ")" * 5000
        + "'\n",
        "longer than",
    ),
    (
        "webhook-file-url",
        "watchlists:\n  - name: x\n    terms: [a]\n    notify:\n"
        "      - webhook: file:///etc/passwd\n",
        "http(s) URL",
    ),
    ("not-a-list", "watchlists: 42\n", "watchlists"),
]


@pytest.fixture
def cli_env(db: Database, monkeypatch: pytest.MonkeyPatch) -> Database:
    for key in list(os.environ):
        if key.startswith("NEWSWATCH_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("NEWSWATCH_DATABASE_URL", db.url)
    return db


@pytest.mark.parametrize(
    ("name", "content", "message"), BAD_WATCHLISTS, ids=[b[0] for b in BAD_WATCHLISTS]
)
def test_bad_watchlist_file_is_refused_in_one_line(
    cli_env: Database,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str | bytes,
    message: str,
) -> None:
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    started = time.monotonic()
    code = main(["watchlist", "import", str(path)])
    err = capsys.readouterr().err
    assert time.monotonic() - started < 10
    assert code not in (0, 70), err
    assert message.lower() in err.lower(), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not Path("/tmp/pwned").exists()
    assert main(["watchlist", "list", "--json"]) == 0
    assert capsys.readouterr().out == ""  # nothing half-imported


def test_regex_looking_terms_are_literal_and_fast(
    cli_env: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    terms = [
        "(a+)+$",
        "(a|aa)*b",
        ".*.*.*=.*",
        "\\\\d+",
        "a{1,100000}",
        *[f"t{i}" for i in range(1_990)],  # scale is bench/matching.py's job
    ]
    path = tmp_path / "w.yaml"
    path.write_text(
        "watchlists:\n  - name: x\n    terms: [" + ", ".join(f"'{t}'" for t in terms) + "]\n"
    )
    started = time.monotonic()
    assert main(["watchlist", "import", str(path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["match", "--watchlist", "x", "a" * 100_000 + "!"]) == 0
    assert "no match" in capsys.readouterr().out
    assert main(["match", "--watchlist", "x", "look: (a+)+$ and t1989"]) == 0
    out = capsys.readouterr().out
    assert "(a+)+$" in out and "t1989" in out, out
    assert time.monotonic() - started < 30
