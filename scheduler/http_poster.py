"""The channels' Poster port over the one HTTP client (crawler.fetch.HttpClient).

alerts/ knows nothing of the crawler: a channel posts through `Poster` and
catches `PostFailed`. This adapter is the only place that turns the client's
`CrawlError`s into it: an address the SSRF guard refuses, a scheme or URL it
cannot use are permanent (trying again cannot help); anything else (refused
connection, timeout, reset) is temporary.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from alerts.channels import IPAddress, PostFailed, PostResponse
from crawler import CrawlError
from crawler.addresses import AddressPolicy, is_public
from crawler.fetch import HttpClient

PERMANENT = frozenset({"RefusedAddress", "UnsupportedScheme", "InvalidURL"})


class HttpPoster:
    """`alerts.channels.Poster` over an open HttpClient."""

    def __init__(self, client: HttpClient) -> None:
        self.client = client

    async def post(self, url: str, *, body: bytes, headers: Mapping[str, str]) -> PostResponse:
        try:
            return await self.client.post(url, body=body, headers=headers)
        except CrawlError as e:
            names = {cls.__name__ for cls in type(e).__mro__}
            raise PostFailed(str(e), permanent=bool(names & PERMANENT)) from e


def permits_private(policy: AddressPolicy) -> Callable[[IPAddress], bool]:
    """Slack's rule for a non-Slack host: every address non-public and permitted."""
    return lambda ip: not is_public(ip) and policy.permits(ip)
