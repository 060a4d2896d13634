"""Hostile text against output, logs and secrets (issue #16), through the real
console script: one `newswatch crawl --verbose` per backend with JSON logs,
over sources whose HTTP reason phrases and feed titles hold forged log
fields, terminal escapes and rich markup, a watchlist whose webhook on [::1]
is signed with a secret from `${NAME}`; then `matches`, `alerts` and
`source list` on a pseudo-terminal.

Checks: every log line is one JSON object whose base keys no payload set;
no raw control character reaches stdout or stderr; no secret appears
anywhere; the webhook deliveries verify over timestamp and body.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.conftest import Database
from tests.e2e.test_terminal_output import RAW, _on_tty
from tests.faults.conftest import base_env, run_newswatch
from tests.integration.test_channels import _signature_ok
from tests.integration.test_ipv6_delivery import v6_receiver  # noqa: F401 - fixture
from tests.support.httpserver import LocalHTTPServer, Request

pytestmark = pytest.mark.faults

SMTP_PASSWORD = "SMTPPASSWORDa81f"
HOOK_SECRET = "HOOKSECRETc0ffee"
# Reason phrases (no CR/LF: the status line ends there), as a class.
REASONS = [
    "Unavailable level=debug source=evil logger=root status=ok",
    '" status="ok" level="info',
    "\x1b]8;;http://evil.example\x07Click\x1b]8;;\x07",
    "\x1b[2J\x1b[31mred\x07",
    "[link=http://evil.example]x[/link] [/link]",
    "tab\tand=equals and \\backslash",
]
TITLES = [
    "SAM one level=debug source=evil status=ok",
    "SAM two \x1b]8;;http://evil.example/x\x07Click\x1b]8;;\x07",
    "SAM three [link=http://evil.example/x]Click me[/link]",
    "[/link]",
    "SAM five \x9b31m \x85 \u202e bidi",
    "SAM six [bold]x[/] \x07",
]


def _reason_server(reasons: list[str]) -> tuple[int, threading.Thread, socket.socket]:
    """A raw HTTP server: path /r/N answers 503 with reason phrase N."""
    srv = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                head = conn.recv(65536).decode("latin-1")
                path = head.split(" ", 2)[1] if " " in head else "/r/0"
                n = int(path.rsplit("/", 1)[1]) if path.rsplit("/", 1)[1].isdigit() else 0
                reason = reasons[n % len(reasons)].encode()
                conn.sendall(
                    b"HTTP/1.1 503 "
                    + reason
                    + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return srv.getsockname()[1], thread, srv


@pytest.fixture
def reason_port() -> Iterator[int]:
    port, thread, srv = _reason_server(REASONS)
    yield port
    srv.close()
    thread.join(2)


def _rss(base: str) -> str:
    # Dated now: a new source's first poll alerts only on recent items (first-poll baseline).
    now = format_datetime(datetime.now(UTC))
    items = "".join(
        f"<item><title>{t.replace('&', '&amp;').replace('<', '&lt;')}</title>"
        f"<link>{base}/a/{i}</link><pubDate>{now}</pubDate>"
        f"<description>the SAM system</description></item>"
        for i, t in enumerate(TITLES)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>f</title>{items}</channel></rss>'
    )


def test_hostile_text_in_logs_terminal_and_deliveries(
    db: Database,
    http_server: LocalHTTPServer,
    reason_port: int,
    v6_receiver: tuple[int, list[Request]],  # noqa: F811
    tmp_path: Path,
) -> None:
    v6_port, received = v6_receiver
    base = http_server.url("").rstrip("/")
    http_server.serve("/feed.xml", _rss(base).encode(), "application/rss+xml")
    env = base_env(
        db.url,
        NEWSWATCH_ALLOW_PRIVATE_ADDRESSES="127.0.0.1,::1",
        NEWSWATCH_LOG_FORMAT="json",
        NEWSWATCH_SMTP_URL=f"smtp://nw:{SMTP_PASSWORD}@127.0.0.1:9",
        NEWSWATCH_WATCHLIST_ENV="NW_*",
        NW_HOOK=f"http://[::1]:{v6_port}/collect?token=t0k3n",
        NW_SECRET=HOOK_SECRET,
    )
    wl = tmp_path / "w.yaml"
    wl.write_text(
        "watchlists:\n  - name: w\n    terms: [SAM]\n    notify:\n"
        "      - webhook: ${NW_HOOK}\n        secret: ${NW_SECRET}\n",
        encoding="utf-8",
    )
    sources = tmp_path / "s.yaml"
    rows = [("feed", http_server.url("/feed.xml"))] + [
        (f"r{i}", f"http://127.0.0.1:{reason_port}/r/{i}") for i in range(len(REASONS))
    ]
    sources.write_text(
        "sources:\n" + "".join(f"  - {{name: {n}, url: '{u}', kind: feed}}\n" for n, u in rows),
        encoding="utf-8",
    )
    outputs = []
    for args in (["watchlist", "import", str(wl)], ["source", "import", str(sources)]):
        p = run_newswatch(args, env)
        assert p.code == 0, p.err
        outputs += [p.out, p.err]
    crawl = run_newswatch(["crawl", "--verbose"], env)
    assert crawl.code == 0, crawl.err
    outputs += [crawl.out, crawl.err]
    names = {"feed", *(f"r{i}" for i in range(len(REASONS)))}
    lines = crawl.err.splitlines()
    assert all(line.startswith(("{", "newswatch: ")) for line in lines), crawl.err
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records
    for r in records:
        assert r["level"] in {"info", "warning", "error"}
        assert r["logger"].split(".")[0] in {
            "alerts",
            "crawler",
            "newswatch",
            "scheduler",
            "storage",
        }
        assert r.get("source", "feed") in names and r.get("status", "ok") != "forged"
    failed = [r for r in records if r.get("status") == "failed" and r.get("event") == "polled"]
    assert {r["source"] for r in failed} == names - {"feed"}
    assert sum(1 for r in records if r.get("source") == "evil") == 0
    # Deliveries: one per matching item, to [::1], signed over timestamp and body.
    assert len(received) == len(TITLES)  # every item: its description says SAM
    assert all(
        _signature_ok(HOOK_SECRET, req, float(req.headers["X-Newswatch-Timestamp"]))
        for req in received
    )
    for args in (["matches"], ["alerts"], ["source", "list"]):
        code, out = _on_tty(list(args), db)
        assert code == 0, out.decode(errors="replace")
        assert [r for r in RAW if r in out] == []
        outputs.append(out.decode("utf-8", "replace"))
    for text in outputs:
        assert SMTP_PASSWORD not in text and HOOK_SECRET not in text and "t0k3n" not in text
        assert "\x1b" not in text.replace("\x1b[", "") or text in outputs[-3:]  # rich's own SGR
        assert "\x07" not in text and "\x9b" not in text
