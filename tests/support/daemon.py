"""Helpers for daemon tests: a `newswatch run` subprocess, a feed whose items a
test can add while it is polled, a webhook receiver that counts deliveries.

Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from alerts.watchlist_files import parse_watchlists
from storage.db import make_engine, session_factory, transaction
from storage.sources import add_source
from storage.watchlists import save_watchlists
from tests.support.env import clean_env
from tests.support.httpserver import LocalHTTPServer, Request, Response

NEWSWATCH = str(Path(sys.executable).parent / "newswatch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(every)
    return check()


@dataclass
class Feed:
    """An RSS feed at `path` whose items grow while the daemon polls it.

    Each request is held for `hold` seconds so that two polls of the same
    source at once would overlap; `max_overlap` records the worst case.
    """

    server: LocalHTTPServer
    path: str
    hold: float = 0.0
    items: list[tuple[str, str]] = field(default_factory=list)  # (guid, title)
    in_flight: int = 0
    max_overlap: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.route(self.path, self.handle)

    @property
    def url(self) -> str:
        return self.server.url(self.path)

    def publish(self, guid: str, title: str) -> str:
        with self._lock:
            self.items.append((guid, title))
        return self.server.url(f"/a{self.path}/{guid}")

    def body(self) -> bytes:
        base = self.server.url("/")
        entries = "".join(
            f"<item><title>{t}</title><link>{base}a{self.path}/{g}</link><guid>{g}</guid>"
            f"<description>{t}</description></item>"
            for g, t in self.items
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{self.path}</title><link>{base}</link>{entries}</channel></rss>"
        ).encode()

    def handle(self, req: Request) -> Response:
        with self._lock:
            self.in_flight += 1
            self.max_overlap = max(self.max_overlap, self.in_flight)
        try:
            if self.hold:
                time.sleep(self.hold)
            with self._lock:
                body = self.body()  # after the hold: what was published meanwhile is in it
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            if req.headers.get("If-None-Match") == etag:
                return 304, {"ETag": etag}, b""
            return 200, {"Content-Type": "application/rss+xml", "ETag": etag}, body
        finally:
            with self._lock:
                self.in_flight -= 1


@dataclass
class Webhook:
    """Counts the webhook deliveries it receives, per item URL."""

    server: LocalHTTPServer
    path: str = "/hook"
    received: list[dict[str, object]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.server.route(self.path, self.handle)

    @property
    def url(self) -> str:
        return self.server.url(self.path)

    def handle(self, req: Request) -> Response:
        self.received.append(json.loads(req.body))
        return 200, {"Content-Type": "text/plain"}, b"ok"

    def per_item(self) -> Counter[str]:
        return Counter(str(r["item"]["url"]) for r in self.received)  # type: ignore[index]


def watchlist_yaml(hook_url: str, term: str = "Pantsir") -> str:
    return (
        "watchlists:\n  - name: air-defence\n"
        f"    terms: [{term}]\n    notify:\n      - webhook: {hook_url}\n"
    )


def seed(url: str, feeds: list[Feed], hook_url: str, every: int = 2) -> None:
    """Sources and a watchlist, written directly (faster than one CLI run each)."""
    engine = make_engine(url)
    try:
        now = datetime.now(UTC)
        with transaction(session_factory(engine)) as s:
            save_watchlists(s, parse_watchlists(watchlist_yaml(hook_url)), now)
            for i, f in enumerate(feeds):
                add_source(
                    s,
                    name=f"src{i}",
                    url=f.url,
                    kind="feed",
                    every_seconds=every,
                    links_css=None,
                    now=now,
                    alert_backlog=True,  # these tests count alerts of every item
                )
    finally:
        engine.dispose()


def daemon_env(database_url: str, http_port: int | None, **extra: str) -> dict[str, str]:
    env = clean_env(
        NEWSWATCH_DATABASE_URL=database_url,
        NEWSWATCH_ALLOW_PRIVATE_ADDRESSES="127.0.0.1",
        NEWSWATCH_MIN_INTERVAL="1",
        NEWSWATCH_MAX_INTERVAL="3",
        NEWSWATCH_POLL_TICK="0.5",
        NEWSWATCH_DELIVER_EVERY="1",
        NEWSWATCH_PER_HOST_DELAY="0",
        NEWSWATCH_PER_HOST_CONCURRENCY="16",
        NEWSWATCH_FETCH_TIMEOUT="5",
    )
    if http_port is not None:
        env["NEWSWATCH_HTTP_PORT"] = str(http_port)
    env.update(extra)
    return env


@dataclass
class Daemon:
    """`newswatch run` in a subprocess; its stderr (the log) goes to a file."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.env["NEWSWATCH_HTTP_PORT"])

    def start(self) -> Daemon:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [NEWSWATCH, "run"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, name: str) -> list[str]:
        """Log lines whose event (first word of the message) is `name`."""
        return [line for line in self.log().splitlines() if f" {name} " in f" {line} "]

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def wait_healthy(self, timeout: float = 15.0) -> None:
        if not wait_for(lambda: self.get("/healthz")[0] == 200, timeout, 0.2):
            raise AssertionError(f"daemon not healthy in {timeout}s; log:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> tuple[int, float]:
        """Send `sig`, wait; return (exit status, seconds it took)."""
        assert self.proc is not None
        started = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"daemon did not exit in {timeout}s; log:\n{self.log()}") from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
