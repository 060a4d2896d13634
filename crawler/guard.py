"""The SSRF guard: which URLs and addresses the HTTP client may reach.

Three checks, so that the address that is checked is the address connected:

1. `check_url` before any I/O: http/https only, a host is required, and a
   host written as an IP address (in any spelling the C library would
   accept: `2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`, `[::ffff:127.0.0.1]`)
   is judged by the address it means. Non-canonical numeric spellings are
   refused outright: they exist to fool filters.
2. `GuardedResolver`: the connector's DNS resolver drops every resolved
   address the policy refuses and fails when none is left, so a name that
   resolves to 127.0.0.1 (or rebinds to it) is never connected.
3. `guarded_socket_factory`: the connector creates each socket through this
   factory, which sees the exact sockaddr about to be connected and refuses
   it again. This covers IP literals (which aiohttp does not resolve), cached
   DNS answers and anything a future aiohttp might do differently.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from crawler import CrawlError
from crawler.addresses import AddressPolicy, IPAddress, embedded_ipv4

ALLOWED_SCHEMES = frozenset({"http", "https"})
_NUMERIC_HOST = re.compile(r"[0-9a-fA-FxX.]+")


class UnsupportedScheme(CrawlError):
    """The URL is not http or https (file:, ftp:, data:, gopher: …)."""


class RefusedAddress(CrawlError):
    """The URL's host is, or resolves to, an address the policy refuses."""


class InvalidURL(CrawlError):
    """The URL cannot be parsed or has no host."""


class RefusedConnectError(OSError):
    """Raised inside the connector; the client turns it into RefusedAddress."""


def redact(url: URL | str) -> str:
    """The URL without userinfo, for messages and logs."""
    try:
        parsed = url if isinstance(url, URL) else URL(url)
        return str(parsed.with_user(None)) if parsed.user or parsed.password else str(parsed)
    except (ValueError, TypeError):
        return "<invalid URL>"


def parse_url(url: str | URL) -> URL:
    """A yarl URL, or InvalidURL / UnsupportedScheme with a one-line message."""
    try:
        parsed = url if isinstance(url, URL) else URL(url.strip())
    except (ValueError, TypeError) as e:
        raise InvalidURL("invalid URL") from e
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = scheme or "(none)"
        raise UnsupportedScheme(f"unsupported URL scheme {shown}: only http and https")
    if not parsed.raw_host:
        raise InvalidURL("URL has no host")
    return parsed


def check_url(url: str | URL, policy: AddressPolicy, *, secret: bool = False) -> URL:
    """Validate scheme and, for IP-literal hosts, the address; no I/O.

    With `secret` (webhook URLs), messages name only scheme and host.
    """
    parsed = parse_url(url)
    shown = f"{parsed.scheme}://{parsed.raw_host}" if secret else redact(parsed)
    host = (parsed.raw_host or "").strip("[]")
    literal = literal_address(host)
    if literal is None:
        return parsed
    ip, canonical = literal
    if not canonical:
        raise RefusedAddress(f"refused non-canonical IP address {host!r} (means {ip})")
    if not policy.permits(ip):
        raise RefusedAddress(f"refused address {ip} ({describe(ip)}) for {shown}")
    return parsed


def literal_address(host: str) -> tuple[IPAddress, bool] | None:
    """(address, written canonically?) when the host is an IP address in any spelling."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]), True
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host) or not any(c.isdigit() for c in host):
        return None
    if not all(_is_number(part) for part in host.rstrip(".").split(".")):
        return None
    try:
        packed = socket.inet_aton(host)
    except OSError:
        return None
    return ipaddress.IPv4Address(packed), False


def _is_number(part: str) -> bool:
    lowered = part.lower()
    if lowered.startswith("0x"):
        return all(c in "0123456789abcdef" for c in lowered[2:])
    return part.isdigit()


def describe(ip: IPAddress) -> str:
    """Why an address is not public, in one word."""
    ip = embedded_ipv4(ip)
    for name in ("loopback", "unspecified", "link_local", "multicast", "private", "reserved"):
        if getattr(ip, f"is_{name}"):
            return name.replace("_", "-")
    return "non-public"


class GuardedResolver(AbstractResolver):
    """DNS resolution that returns only addresses the policy permits."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        permitted = [r for r in results if self._policy.permits(_sockaddr_ip(r["host"]))]
        if not permitted:
            shown = ", ".join(sorted({r["host"] for r in results}))
            reasons = {describe(_sockaddr_ip(r["host"])) for r in results}
            raise RefusedAddress(
                f"refused address {shown} ({', '.join(sorted(reasons))}) for host {host}"
            )
        return permitted

    async def close(self) -> None:
        await self._inner.close()


def guarded_socket_factory(policy: AddressPolicy) -> Any:
    """A socket factory for aiohttp's connector that refuses forbidden peers."""

    def create(addr_info: tuple[Any, ...]) -> socket.socket:
        family, type_, proto, _canon, sockaddr = addr_info
        ip = _sockaddr_ip(str(sockaddr[0]))
        if not policy.permits(ip):
            raise RefusedConnectError(f"refused address {ip} ({describe(ip)}) at connect time")
        return socket.socket(family=family, type=type_, proto=proto)

    return create


def _sockaddr_ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text.split("%", 1)[0])
