"""crawler.fetch against a real local HTTP server: limits, SSRF guard, politeness.

The local server is on 127.0.0.1, so the client is built with a policy
that allows exactly 127.0.0.1/32; SSRF tests use the default policy (or
this one) and a canary that counts TCP connections to prove nothing was sent.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import itertools
import resource
import threading
import time
from collections.abc import Iterator
from typing import Any

import brotli
import pytest

from crawler.addresses import AddressPolicy
from crawler.fetch import (
    FetchError,
    FetchPolicy,
    FetchTimeout,
    HttpClient,
    HTTPStatusError,
    RefusedAddress,
    ResponseTooLarge,
    SlotUnavailable,
    TooManyRedirects,
    UnsupportedScheme,
)
from crawler.guard import RefusedConnectError, guarded_socket_factory
from tests.support.canary import Canary, gzip_bomb
from tests.support.httpserver import LocalHTTPServer, Request, trickle

LOCAL = AddressPolicy(allowed=(ipaddress.ip_network("127.0.0.1/32"),))


def policy(**overrides: Any) -> FetchPolicy:
    base: dict[str, Any] = dict(
        timeout=2.0,
        max_bytes=1_000_000,
        user_agent="newswatch-test/1 (+https://t.example)",
        address_policy=LOCAL,
        per_host_delay=0.0,
        per_host_concurrency=8,
        concurrency=16,
    )
    return FetchPolicy(**{**base, **overrides})


def fetch(url: str, **overrides: Any) -> Any:
    async def go() -> Any:
        async with HttpClient(policy(**overrides)) as client:
            return await client.get(url)

    return asyncio.run(go())


@pytest.fixture(scope="module")
def http_server() -> Iterator[LocalHTTPServer]:
    """One server for the module (routes are per path): its shutdown costs 0.5 s each time."""
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary().start()
    yield c
    c.stop()


def test_get_sends_user_agent_and_returns_body(http_server: LocalHTTPServer) -> None:
    url = http_server.serve("/feed", "<rss/>", headers={"Cache-Control": "public, max-age=600"})
    result = fetch(url)
    assert (result.status, result.body, result.not_modified) == (200, b"<rss/>", False)
    assert result.max_age == 600
    sent = http_server.hits("/feed")[0].headers
    assert sent["User-Agent"] == "newswatch-test/1 (+https://t.example)"
    assert "gzip" in sent["Accept-Encoding"]


def test_conditional_get_304(http_server: LocalHTTPServer) -> None:
    def handler(req: Request) -> Any:
        if req.headers.get("If-None-Match") == '"v1"':
            return 304, {"ETag": '"v1"'}, b""
        return 200, {"ETag": '"v1"', "Last-Modified": "Wed, 09 Jul 2025 13:00:00 GMT"}, b"body"

    url = http_server.route("/c", handler)
    first = fetch(url)
    assert (first.etag, first.last_modified) == ('"v1"', "Wed, 09 Jul 2025 13:00:00 GMT")

    async def again() -> Any:
        async with HttpClient(policy()) as client:
            return await client.get(url, etag='"v1"', last_modified=first.last_modified)

    second = asyncio.run(again())
    assert second.not_modified and second.status == 304 and second.body == b""
    assert http_server.hits("/c")[1].headers["If-Modified-Since"] == first.last_modified


@pytest.mark.parametrize(
    ("status", "header", "low", "high"),
    [(429, "120", 120, 120), (503, "Wed, 21 Oct 2015 07:28:00 GMT", 0, 0), (503, None, None, None)],
)
def test_retry_after_on_429_and_503(
    http_server: LocalHTTPServer, status: int, header: str | None, low: Any, high: Any
) -> None:
    headers = {"Retry-After": header} if header else {}
    url = http_server.route("/busy", (status, headers, b"busy"))
    with pytest.raises(HTTPStatusError) as info:
        fetch(url)
    assert info.value.status == status
    if low is None:
        assert info.value.retry_after is None
    else:
        assert low <= info.value.retry_after <= high


def test_http_date_retry_after_in_future(http_server: LocalHTTPServer) -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    url = http_server.route("/later", (429, {"Retry-After": when}, b""))
    with pytest.raises(HTTPStatusError) as info:
        fetch(url)
    assert 290 <= info.value.retry_after <= 301


@pytest.mark.parametrize("status", [404, 500])
def test_error_status_message_has_no_credentials(http_server: LocalHTTPServer, status: int) -> None:
    http_server.route("/e", (status, {}, b"x"))
    with pytest.raises(HTTPStatusError) as info:
        fetch(f"http://analyst:s3cret@127.0.0.1:{http_server.port}/e")
    assert "s3cret" not in str(info.value) and str(status) in str(info.value)
    assert "\n" not in str(info.value)


def test_server_that_never_answers_times_out(http_server: LocalHTTPServer) -> None:
    http_server.route("/hang", lambda req: (time.sleep(3), (200, {}, b"late"))[1])
    start = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(http_server.url("/hang"), timeout=0.5)
    assert time.monotonic() - start < 1.5


def test_trickling_server_is_cut_off_at_the_whole_response_timeout(
    http_server: LocalHTTPServer,
) -> None:
    http_server.route("/slow", (200, {"Content-Type": "text/xml"}, trickle(b"x" * 100, 0.05)))
    start = time.monotonic()
    with pytest.raises(FetchTimeout):
        fetch(http_server.url("/slow"), timeout=0.8)
    assert time.monotonic() - start < 1.6


def test_gzip_bomb_of_one_gib_is_stopped_early_with_bounded_memory(
    http_server: LocalHTTPServer,
) -> None:
    http_server.route("/bomb", lambda req: (200, {"Content-Encoding": "gzip"}, gzip_bomb(1 << 30)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    with pytest.raises(ResponseTooLarge):
        fetch(http_server.url("/bomb"), max_bytes=10_000_000)
    assert time.monotonic() - start < 3
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 100


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_compressed_bodies_are_decoded_and_capped_after_decompression(
    http_server: LocalHTTPServer, coding: str
) -> None:
    import zlib

    data = b"<rss>" + b"a" * 2_000_000 + b"</rss>"
    packed = {"gzip": gzip.compress, "deflate": zlib.compress, "br": brotli.compress}[coding](data)
    url = http_server.route("/z", (200, {"Content-Encoding": coding}, packed))
    assert len(packed) < 100_000
    with pytest.raises(ResponseTooLarge):
        fetch(url, max_bytes=1_000_000)
    assert fetch(url, max_bytes=3_000_000).body == data


def test_streamed_body_without_length_is_capped(http_server: LocalHTTPServer) -> None:
    chunks = (b"x" * 65536 for _ in range(1000))  # 64 MB, no Content-Length
    http_server.route("/big", lambda req: (200, {}, chunks))
    with pytest.raises(ResponseTooLarge):
        fetch(http_server.url("/big"), max_bytes=1_000_000)


def test_lying_content_length_does_not_matter(http_server: LocalHTTPServer) -> None:
    # Claims 4 bytes, sends 5 MB: we read 4 (the rest is garbage on the connection and
    # may surface as a protocol error); never more than the claim, never past the cap.
    small_claim = http_server.route(
        "/lie", (200, {"Content-Length": "4"}, b"abcd" + b"z" * 5_000_000)
    )
    try:
        assert fetch(small_claim).body == b"abcd"
    except FetchError as e:
        assert "\n" not in str(e) and len(str(e)) < 400
    big_claim = http_server.route("/huge", (200, {"Content-Length": "999999999"}, b"tiny"))
    with pytest.raises(ResponseTooLarge):
        fetch(big_claim)


def test_redirect_chain_followed_loop_and_long_chain_refused(http_server: LocalHTTPServer) -> None:
    for i in range(10):
        http_server.route(f"/r{i}", (302, {"Location": f"/r{i + 1}"}, b""))
    http_server.serve("/r10", "end")
    http_server.route("/loop-a", (301, {"Location": "/loop-b"}, b""))
    http_server.route("/loop-b", (308, {"Location": "/loop-a"}, b""))
    result = fetch(http_server.url("/r7"))
    assert result.body == b"end" and result.url.endswith("/r10")
    with pytest.raises(TooManyRedirects, match="more than 5"):
        fetch(http_server.url("/r0"))
    with pytest.raises(TooManyRedirects, match="loop"):
        fetch(http_server.url("/loop-a"))


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.org/x", "data:text/plain,hi", "gopher://x/", "feed:x"],
)
def test_non_http_schemes_refused_before_io(url: str) -> None:
    with pytest.raises(UnsupportedScheme):
        fetch(url)


def test_redirect_to_other_scheme_or_private_address_refused(
    http_server: LocalHTTPServer, canary: Canary
) -> None:
    other = Canary(host="127.0.0.2").start()
    try:
        http_server.route("/to-file", (302, {"Location": "file:///etc/passwd"}, b""))
        http_server.route(
            "/to-private", (302, {"Location": f"http://127.0.0.2:{other.port}/"}, b"")
        )
        http_server.route("/to-dns", (302, {"Location": f"http://localhost:{canary.port}/"}, b""))
        with pytest.raises(UnsupportedScheme):
            fetch(http_server.url("/to-file"))
        with pytest.raises(RefusedAddress, match=r"127\.0\.0\.2"):
            fetch(http_server.url("/to-private"))
        assert other.connections == 0
    finally:
        other.stop()


SPELLINGS = [
    "127.0.0.1",
    "2130706433",
    "0x7f.1",
    "0x7f000001",
    "017700000001",
    "0177.0.0.1",
    "127.1",
    "127.0.1",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "0.0.0.0",
    "0",
    "localhost",
    "LocalHost",
]


@pytest.mark.parametrize("host", SPELLINGS)
def test_ssrf_odd_spellings_refused_and_nothing_sent(host: str, canary: Canary) -> None:
    with pytest.raises(RefusedAddress) as info:
        fetch(f"http://{host}:{canary.port}/admin", address_policy=AddressPolicy())
    assert "\n" not in str(info.value)
    assert canary.connections == 0


def test_ssrf_ipv6_loopback_refused_and_nothing_sent() -> None:
    import socket

    canary6 = Canary(host="::1", family=socket.AF_INET6).start()
    try:
        for url in (f"http://[::1]:{canary6.port}/", f"http://[0:0:0:0:0:0:0:1]:{canary6.port}/"):
            with pytest.raises(RefusedAddress):
                fetch(url, address_policy=AddressPolicy())
        assert canary6.connections == 0
    finally:
        canary6.stop()


def test_allow_list_permits_only_listed_addresses(http_server: LocalHTTPServer) -> None:
    url = http_server.serve("/ok", "fine")
    assert fetch(url).body == b"fine"  # 127.0.0.1/32 is allowed
    assert fetch(url, address_policy=AddressPolicy(allow_all=True)).body == b"fine"
    with pytest.raises(RefusedAddress):
        fetch(url, address_policy=AddressPolicy())


def test_connect_time_guard_refuses_the_address_actually_connected() -> None:
    import socket

    factory = guarded_socket_factory(LOCAL)
    with pytest.raises(RefusedConnectError):
        factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.1", 80)))
    with pytest.raises(RefusedConnectError):
        factory((socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:10.0.0.1", 80, 0, 0)))
    factory((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))).close()


def test_connection_refused_is_a_fetch_error() -> None:
    with pytest.raises(FetchError, match="cannot connect"):
        fetch("http://127.0.0.1:1/")


def _timed_handler(stamps: list[float], active: list[int], peak: list[int], pause: float) -> Any:
    lock = threading.Lock()

    def handler(req: Request) -> Any:
        with lock:
            stamps.append(time.monotonic())
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(pause)
        with lock:
            active[0] -= 1
        return 200, {}, b"ok"

    return handler


def _many(urls: list[str], **overrides: Any) -> None:
    async def go() -> None:
        async with HttpClient(policy(**overrides)) as client:
            await asyncio.gather(*(client.get(u) for u in urls))

    asyncio.run(go())


def test_per_host_delay_spaces_request_starts(http_server: LocalHTTPServer) -> None:
    stamps: list[float] = []
    http_server.route("/p", _timed_handler(stamps, [0], [0], 0.0))
    _many([http_server.url(f"/p?i={i}") for i in range(5)], per_host_delay=0.2)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert len(stamps) == 5 and min(gaps) >= 0.18, gaps


def test_per_host_and_global_concurrency_bounds(http_server: LocalHTTPServer) -> None:
    peak = [0]
    http_server.route("/q", _timed_handler([], [0], peak, 0.15))
    _many([http_server.url(f"/q?i={i}") for i in range(8)], per_host_concurrency=2)
    assert peak[0] == 2
    peak[0] = 0
    _many([http_server.url(f"/q?i={i}") for i in range(8)], per_host_concurrency=8, concurrency=3)
    assert peak[0] == 3


@pytest.mark.parametrize(
    ("overrides", "pause"),
    [
        (dict(per_host_delay=0.25, per_host_concurrency=2), 0.0),  # queued by spacing
        (dict(per_host_delay=0.0, per_host_concurrency=1), 0.2),  # queued behind slow requests
        (dict(per_host_delay=0.0, per_host_concurrency=8, concurrency=1), 0.2),  # global slot
    ],
)
def test_timeout_covers_the_request_never_the_politeness_queue(
    http_server: LocalHTTPServer, overrides: dict[str, Any], pause: float
) -> None:
    """Each request takes well under the timeout; the queue in front of the last
    ones is several timeouts long. None of them may time out (issue #10, part 1)."""
    stamps: list[float] = []
    http_server.route("/queued", _timed_handler(stamps, [0], [0], pause))
    started = time.monotonic()
    _many([http_server.url(f"/queued?i={i}") for i in range(8)], timeout=0.5, **overrides)
    assert len(stamps) == 8 and time.monotonic() - started > 1.0  # the queue was longer


def test_redirect_hops_share_one_timeout(http_server: LocalHTTPServer) -> None:
    """Two hops of 0.35 s each: each within a 0.5 s timeout, together not."""
    http_server.route(
        "/slow-hop", lambda req: (time.sleep(0.35), (302, {"Location": "/end"}, b""))[1]
    )
    http_server.route("/end", lambda req: (time.sleep(0.35), (200, {}, b"end"))[1])
    with pytest.raises(FetchTimeout):
        fetch(http_server.url("/slow-hop"), timeout=0.5)
    assert fetch(http_server.url("/slow-hop"), timeout=1.5).body == b"end"


def _get_all(calls: list[tuple[str, float | None]], **overrides: Any) -> list[Any]:
    """GET each (url, slot_wait) in order, all at once; each result or exception."""

    async def go() -> list[Any]:
        async with HttpClient(policy(**overrides)) as client:
            tasks = []
            for url, wait in calls:
                tasks.append(asyncio.create_task(client.get(url, slot_wait=wait)))
                await asyncio.sleep(0.02)  # a known queue order
            return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(go())


def test_no_slot_in_time_is_slot_unavailable_and_sends_nothing(
    http_server: LocalHTTPServer,
) -> None:
    """Host busy (its one slot held 0.6 s) or its next start too far away
    (1 s spacing): a GET bounded at 0.2 s gives up without a request; an
    unbounded one behind it waits and is not pushed back by the one that
    gave up."""
    stamps: list[float] = []
    http_server.route("/busy", _timed_handler(stamps, [0], [0], 0.6))
    url = http_server.url("/busy")
    first, bounded, patient = _get_all(
        [(url, None), (url, 0.2), (url, None)], per_host_concurrency=1
    )
    assert isinstance(bounded, SlotUnavailable) and "deferred" in str(bounded)
    assert not isinstance(first, BaseException) and not isinstance(patient, BaseException)
    assert len(stamps) == 2

    stamps.clear()
    http_server.route("/spaced", _timed_handler(stamps, [0], [0], 0.0))
    url = http_server.url("/spaced")
    started = time.monotonic()
    results = _get_all([(url, None), (url, 0.2), (url, 0.2), (url, None)], per_host_delay=1.0)
    assert [type(r) for r in results[1:3]] == [SlotUnavailable, SlotUnavailable]
    assert len(stamps) == 2 and stamps[1] - started < 1.6  # second start not pushed to 3 s


def test_post_same_guard_no_redirects_capped_body(http_server: LocalHTTPServer) -> None:
    canary = Canary(host="127.0.0.2").start()
    http_server.route("/hook", (200, {"Retry-After": "5"}, b"y" * 200_000))
    http_server.route("/moved", (302, {"Location": "/hook"}, b""))

    async def go() -> Any:
        async with HttpClient(policy()) as client:
            ok = await client.post(http_server.url("/hook"), body=b'{"a":1}', headers={"X": "1"})
            moved = await client.post(http_server.url("/moved"), body=b"{}", headers={})
            with pytest.raises(RefusedAddress) as info:
                await client.post(
                    f"http://127.0.0.2:{canary.port}/services/T0/B0/SECRET", body=b"", headers={}
                )
            return ok, moved, str(info.value)

    try:
        ok, moved, message = asyncio.run(go())
    finally:
        canary.stop()
    assert ok.status == 200 and len(ok.body) == 64 * 1024 and ok.retry_after == 5
    assert moved.status == 302 and len(http_server.hits("/hook")) == 1
    assert http_server.hits("/hook")[0].body == b'{"a":1}'
    assert "SECRET" not in message and canary.connections == 0
