"""The one HTTP client: every byte the crawler and the webhook channels fetch goes through it.

One policy, in one place: http/https only; the SSRF guard on every hop, after
DNS resolution and again at connect time (see crawler.guard); a timeout on
the whole response, redirects included; a size cap after decompression that
is enforced while streaming; redirects followed by hand with a limit and loop
detection; a User-Agent on every request; a global bound on requests in
flight; per host, a concurrency limit and a minimum delay between request
starts. Errors are CrawlError subclasses with one-line messages that never
carry URL credentials.

Two clocks, never mixed: the fetch timeout measures the requests themselves
(connect, headers, body, summed over the redirect hops) and starts only once
a request holds its host slot and a global slot; waiting for those slots (the
politeness queue) has its own, optional bound, `slot_wait`. Past it the GET
raises SlotUnavailable before sending anything: the source was not tried, so
the caller defers it instead of counting a failure. A one-shot crawl passes
no bound (every source waits its turn); the daemon passes one (see
scheduler.jobs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import aiohttp
from yarl import URL

from crawler import CrawlError
from crawler.addresses import AddressPolicy
from crawler.guard import (
    GuardedResolver,
    InvalidURL,
    RefusedAddress,
    RefusedConnectError,
    UnsupportedScheme,
    check_url,
    guarded_socket_factory,
    redact,
)
from crawler.http_bodies import (
    ACCEPT_ENCODING,
    BadEncoding,
    BodyDecoder,
    parse_max_age,
    parse_retry_after,
)

__all__ = [
    "FetchError",
    "FetchPolicy",
    "FetchResult",
    "FetchTimeout",
    "HTTPStatusError",
    "HttpClient",
    "InsecureRedirect",
    "InvalidURL",
    "PostResult",
    "RefusedAddress",
    "ResponseTooLarge",
    "SlotUnavailable",
    "TooManyRedirects",
    "UnsupportedScheme",
    "host_key",
]

log = logging.getLogger(__name__)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, "
    "text/xml;q=0.9, text/html;q=0.8, */*;q=0.5"
)
POST_BODY_CAP = 64 * 1024


class FetchError(CrawlError):
    """A network or protocol failure (connection refused, reset, bad response)."""


class ResponseTooLarge(FetchError):
    """The body, after decompression, is larger than the cap."""


class FetchTimeout(FetchError):
    """The whole response did not arrive within the timeout."""


class SlotUnavailable(CrawlError):
    """No host slot (or global slot) within the caller's `slot_wait`: nothing
    was sent. Not a FetchError: the source did not fail, it was not tried."""


class InsecureRedirect(FetchError):
    """A redirect from https to http: the source was configured over TLS and
    is never silently downgraded to plain text."""


class TooManyRedirects(FetchError):
    """The redirect chain is longer than the limit or loops."""


class HTTPStatusError(FetchError):
    """The server answered with an error status (4xx, 5xx, or a redirect without Location)."""

    def __init__(self, status: int, retry_after: float | None = None, message: str = "") -> None:
        super().__init__(message or f"HTTP {status}")
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    timeout: float = 30.0
    max_bytes: int = 10_000_000
    user_agent: str = "newswatch"
    address_policy: AddressPolicy = field(default_factory=AddressPolicy)
    max_redirects: int = 5
    per_host_concurrency: int = 2
    per_host_delay: float = 1.0
    concurrency: int = 16


@dataclass(frozen=True, slots=True)
class FetchResult:
    """A successful GET: 2xx with its body, or 304 (`not_modified`, empty body)."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    not_modified: bool
    etag: str | None
    last_modified: str | None
    retry_after: float | None
    max_age: float | None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int
    headers: Mapping[str, str]
    body: bytes
    retry_after: float | None


def host_key(url: str | URL) -> str:
    """The key per-host politeness is counted under: the URL's host, lower case
    (a string that is no URL is its own key: counting must never raise)."""
    try:
        host = (url if isinstance(url, URL) else URL(url)).host
    except (ValueError, TypeError):
        return str(url)
    return (host or "").lower()


class _HostSlot:
    """Per-host politeness state: a concurrency limit and the earliest next
    start (event-loop time)."""

    def __init__(self, concurrency: int) -> None:
        self.semaphore = asyncio.Semaphore(concurrency)
        self.lock = asyncio.Lock()
        self.next_start = 0.0


class HttpClient:
    """Async context manager around one aiohttp session built for our policy."""

    def __init__(self, policy: FetchPolicy) -> None:
        self.policy = policy
        self._session: aiohttp.ClientSession | None = None
        self._global: asyncio.Semaphore | None = None
        self._hosts: dict[str, _HostSlot] = {}

    async def __aenter__(self) -> HttpClient:
        policy = self.policy
        connector = aiohttp.TCPConnector(
            resolver=GuardedResolver(policy.address_policy),
            socket_factory=guarded_socket_factory(policy.address_policy),
            limit=policy.concurrency * 2,
            ttl_dns_cache=60,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=policy.timeout),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            headers={"User-Agent": policy.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        )
        self._global = asyncio.Semaphore(policy.concurrency)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        slot_wait: float | None = None,
    ) -> FetchResult:
        """GET following redirects; 2xx and 304 return, anything else raises FetchError.

        The timeout covers only the requests (see the module docstring): each
        hop gets what the previous hops left of it, and the time queued for
        a slot, before the first hop or between hops, is never charged.
        `slot_wait` bounds each hop's wait for its slots (None: no bound);
        past it, SlotUnavailable.
        """
        headers = {"Accept": accept or DEFAULT_ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        current = check_url(url, self.policy.address_policy)
        visited = {str(current)}
        budget = self.policy.timeout
        for _hop in range(self.policy.max_redirects + 1):
            async with self._polite(current, slot_wait):
                started = time.monotonic()
                try:
                    result, location = await self._get_once(current, headers, budget)
                finally:
                    budget -= time.monotonic() - started
            if result is not None:
                log.debug("fetched status=%s url=%s", result.status, redact(current))
                return result
            assert location is not None
            previous, current = current, check_url(location, self.policy.address_policy)
            if previous.scheme == "https" and current.scheme == "http":
                raise InsecureRedirect(f"refused redirect from https to http: {redact(current)}")
            if str(current) in visited:
                raise TooManyRedirects(f"redirect loop at {redact(current)}")
            visited.add(str(current))
        raise TooManyRedirects(
            f"more than {self.policy.max_redirects} redirects from {redact(url)}"
        )

    async def _get_once(
        self, url: URL, headers: dict[str, str], remaining: float
    ) -> tuple[FetchResult | None, URL | None]:
        """One hop within `remaining` seconds: (result, None) when final, (None,
        next URL) for a redirect."""
        if remaining <= 0:
            raise FetchTimeout(f"timed out after {self.policy.timeout:g}s: {redact(url)}")
        session = self._require_session()
        async with (
            self._errors(url),
            asyncio.timeout(remaining),
            session.get(url, headers=headers, allow_redirects=False) as resp,
        ):
            if resp.status in REDIRECT_STATUSES:
                location = resp.headers.get("Location")
                if not location:
                    raise HTTPStatusError(resp.status, None, f"HTTP {resp.status} no Location")
                return None, url.join(URL(location))
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if resp.status >= 400 or resp.status < 200 or resp.status == 300:
                reason = (resp.reason or "").replace("\n", " ")[:80]
                raise HTTPStatusError(
                    resp.status, retry_after, f"HTTP {resp.status} {reason}: {redact(url)}"
                )
            not_modified = resp.status == 304
            body = b"" if not_modified else await self._read(resp, self.policy.max_bytes)
            return FetchResult(
                url=redact(url),
                status=resp.status,
                headers=resp.headers,
                body=body,
                not_modified=not_modified,
                etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
                retry_after=retry_after,
                max_age=parse_max_age(resp.headers.get("Cache-Control")),
            ), None

    async def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> PostResult:
        """POST once, no redirects followed; any status returns (the caller decides).

        For webhooks: the URL may be a secret, so messages name only its host.
        The response body is truncated at 64 KiB (it is only for diagnostics).
        """
        target = check_url(url, self.policy.address_policy, secret=True)
        # Built, not formatted: an IPv6 literal keeps its brackets (http://[::1]).
        shown = URL.build(scheme=target.scheme, host=target.host or "")
        started = time.monotonic()
        assert self._global is not None, "HttpClient used outside 'async with'"
        session = self._require_session()
        async with (
            self._global,
            self._errors(shown),
            asyncio.timeout(self.policy.timeout),
            session.post(target, data=body, headers=dict(headers), allow_redirects=False) as resp,
        ):
            data = await self._read(resp, POST_BODY_CAP, truncate=True)
            log.debug(
                "posted status=%s host=%s ms=%d",
                resp.status,
                target.host,
                (time.monotonic() - started) * 1000,
            )
            return PostResult(
                status=resp.status,
                headers=resp.headers,
                body=data,
                retry_after=parse_retry_after(resp.headers.get("Retry-After")),
            )

    async def _read(
        self, resp: aiohttp.ClientResponse, cap: int, *, truncate: bool = False
    ) -> bytes:
        """The decoded body, streamed; ResponseTooLarge (or truncation) past `cap`."""
        declared = resp.content_length
        if declared is not None and declared > cap and not truncate:
            raise ResponseTooLarge(f"response larger than {cap} bytes (Content-Length {declared})")
        parts: list[bytes] = []
        raw = 0
        try:
            decoder = BodyDecoder(resp.headers.get("Content-Encoding"), cap)
            async for chunk in resp.content.iter_any():
                raw += len(chunk)
                parts.append(decoder.feed(chunk))
                if decoder.exceeded or raw > cap:
                    if truncate:
                        break
                    raise ResponseTooLarge(f"response larger than {cap} bytes")
        except BadEncoding as e:
            raise FetchError(str(e)) from e
        return b"".join(parts)[:cap]

    def _require_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient used outside 'async with'")
        return self._session

    @asynccontextmanager
    async def _polite(self, url: URL, slot_wait: float | None = None) -> AsyncIterator[None]:
        """Per-host concurrency and spacing, then the global bound; the caller's
        request starts inside, once both slots are held and the spacing is kept.

        Order matters: the host semaphore first, so one busy host never holds
        more than `per_host_concurrency` of the global slots while it waits.
        Spacing is measured between request starts: each request reserves its
        start under the lock and sleeps outside it. With `slot_wait`, a request
        whose start would come later than that raises SlotUnavailable and
        reserves nothing (the next one in the queue is not pushed back).
        """
        assert self._global is not None, "HttpClient used outside 'async with'"
        host = host_key(url)
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = _HostSlot(self.policy.per_host_concurrency)
        loop = asyncio.get_running_loop()
        limit = None if slot_wait is None else loop.time() + slot_wait
        async with (
            _acquired(slot.semaphore, limit, url),
            _acquired(self._global, limit, url),
        ):
            async with slot.lock:
                start = max(slot.next_start, loop.time())
                if limit is not None and start > limit:
                    raise _unavailable(url)
                slot.next_start = start + self.policy.per_host_delay
            wait = start - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            yield

    @asynccontextmanager
    async def _errors(self, url: URL) -> AsyncIterator[None]:
        """Library exceptions become CrawlError subclasses with one-line messages."""
        try:
            yield
        except CrawlError:
            raise
        except TimeoutError as e:
            raise FetchTimeout(f"timed out after {self.policy.timeout:g}s: {redact(url)}") from e
        except aiohttp.ClientConnectorError as e:
            refused = _refused_cause(e)
            if refused is not None:
                raise RefusedAddress(f"{refused} for {redact(url)}") from e
            raise FetchError(f"cannot connect to {url.host}: {_one_line(e.os_error)}") from e
        except aiohttp.InvalidURL as e:
            raise InvalidURL(f"invalid URL: {redact(url)}") from e
        except (aiohttp.ClientError, OSError, ValueError) as e:
            raise FetchError(f"{type(e).__name__}: {_one_line(e)}: {redact(url)}") from e


@asynccontextmanager
async def _acquired(
    semaphore: asyncio.Semaphore, limit: float | None, url: URL
) -> AsyncIterator[None]:
    """Hold `semaphore`, acquired before loop time `limit` (None: no bound)."""
    try:
        async with asyncio.timeout_at(limit):
            await semaphore.acquire()
    except TimeoutError:
        raise _unavailable(url) from None
    try:
        yield
    finally:
        semaphore.release()


def _unavailable(url: URL) -> SlotUnavailable:
    return SlotUnavailable(f"no request slot for host {url.host} in time; deferred")


def _refused_cause(error: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, RefusedConnectError) or "refused address" in str(current):
            return _one_line(current)
        os_error: Any = getattr(current, "os_error", None)
        current = os_error if isinstance(os_error, BaseException) else current.__cause__
    return None


def _one_line(error: object) -> str:
    text = " ".join(str(error).split())
    return text[:200] or type(error).__name__
