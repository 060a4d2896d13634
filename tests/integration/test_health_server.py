"""The daemon's HTTP port under hostile clients (issue #16): idle and slow
connections time out, open connections are capped, and /healthz keeps
answering promptly. Loopback only, a bounded number of sockets; both
databases behind the probe."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from scheduler.health import DatabaseProbe, HealthServer
from scheduler.metrics import Metrics
from storage.db import check_connection
from tests.conftest import Database


@contextmanager
def serving(db: Database, **kw: float) -> Iterator[tuple[HealthServer, int]]:
    loop = asyncio.new_event_loop()
    server = HealthServer(
        "127.0.0.1",
        0,
        probe=DatabaseProbe(lambda: check_connection(db.engine)),
        scheduler_running=lambda: True,
        metrics=Metrics(),
        **kw,  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield server, port
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def healthz(port: int, timeout: float = 3.0) -> tuple[int, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return int(data.split(b" ", 2)[1]), time.monotonic() - started


# Slow clients, as a class: silent, a partial request line, a header trickle,
# an unterminated header block, and a keep-alive connection left idle.
SLOW = [
    b"",
    b"GET /hea",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a",
    b"GET /metrics HTTP/1.1\r\nHost: x\r\n",
]


def _open_slow(stack: ExitStack, port: int, n: int) -> list[socket.socket]:
    socks = []
    for i in range(n):
        s = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        if SLOW[i % len(SLOW)]:
            s.sendall(SLOW[i % len(SLOW)])
        socks.append(s)
    return socks


def _closed_by_server(s: socket.socket, within: float) -> bool:
    s.settimeout(within)
    try:
        while s.recv(4096):
            pass  # a 400/408 reply may come first; then EOF
    except TimeoutError:
        return False
    except OSError:
        return True
    return True


def test_slow_connections_time_out(db: Database) -> None:
    with serving(db, idle_timeout=0.5) as (server, port), ExitStack() as stack:
        socks = _open_slow(stack, port, 12)
        keep = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=5))
        keep.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        assert all(_closed_by_server(s, 3.0) for s in [*socks, keep])
        assert time.monotonic() - started < 3.0
        assert server.server is not None and server.server.open_connections == 0


def test_healthz_answers_under_a_connection_flood(db: Database) -> None:
    cap = 32
    with serving(db, max_connections=cap, idle_timeout=30) as (server, port), ExitStack() as st:
        assert healthz(port)[0] == 200
        _open_slow(st, port, cap * 4)
        time.sleep(0.2)
        assert server.server is not None
        assert server.server.open_connections <= cap
        for _ in range(5):  # each check evicts an old slow client, never waits for one
            status, took = healthz(port)
            assert status == 200 and took < 2.0
        assert server.server.evicted >= cap * 3
        assert server.server.open_connections <= cap


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n",
        b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,  # a TLS hello
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    ],
)
def test_oversized_or_odd_requests_are_refused(request_head: bytes, db: Database) -> None:
    with serving(db) as (_server, port):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(request_head)
            reply = s.recv(4096)
        assert reply == b"" or int(reply.split(b" ", 2)[1]) >= 400
        assert healthz(port)[0] == 200
