"""robots.txt for page crawling, through our HttpClient, cached per origin.

Feeds are not checked: a feed is published for machines to poll. Listing
pages and the articles they link to are. Policy when robots.txt cannot be
read: missing or 4xx means everything is allowed (RFC 9309); 5xx, a timeout
or a network error is also treated as allowed, and logged, because a source
whose robots.txt is flaky must not silently stop being monitored (RFC 9309
would have us assume "disallow all" for 5xx; we chose availability and
document it). The cache lives as long as the client (one crawl or one
daemon run), so robots.txt is read at most once per origin per client.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from protego import Protego
from yarl import URL

from crawler import CrawlError
from crawler.fetch import HttpClient, HTTPStatusError

log = logging.getLogger(__name__)

MAX_ROBOTS_BYTES = 512 * 1024  # what Google reads; the rest is ignored
_caches: weakref.WeakKeyDictionary[HttpClient, RobotsCache] = weakref.WeakKeyDictionary()


class RobotsCache:
    """robots.txt rules per origin (scheme, host, port) for one client."""

    def __init__(self, client: HttpClient) -> None:
        self._client = client
        self._rules: dict[str, asyncio.Task[Protego]] = {}

    async def allowed(self, url: str) -> bool:
        """May our User-Agent fetch `url`?"""
        parsed = URL(url)
        origin = str(parsed.origin())
        task = self._rules.get(origin)
        if task is None:
            task = asyncio.ensure_future(self._load(origin))
            self._rules[origin] = task
        rules = await asyncio.shield(task)
        return bool(rules.can_fetch(url, self._client.policy.user_agent))

    async def _load(self, origin: str) -> Protego:
        robots_url = f"{origin}/robots.txt"
        try:
            result = await self._client.get(robots_url, accept="text/plain")
        except HTTPStatusError as e:
            if e.status >= 500:
                log.warning("robots status=unavailable http=%d origin=%s", e.status, origin)
            return Protego.parse("")
        except CrawlError as e:
            log.warning("robots status=unavailable origin=%s error=%s", origin, e)
            return Protego.parse("")
        text = result.body[:MAX_ROBOTS_BYTES].decode("utf-8", "replace")
        return Protego.parse(text)


def robots_for(client: HttpClient) -> RobotsCache:
    """The client's robots cache (created on first use, dropped with the client)."""
    cache = _caches.get(client)
    if cache is None:
        cache = _caches[client] = RobotsCache(client)
    return cache
