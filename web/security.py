"""Pure security decisions of the web view: where it may bind, who may read.

Invariants:
- a non-loopback bind needs a token (`check_bind`), so the view is never open
  to a network by accident;
- tokens and session cookies are compared in constant time;
- the session cookie holds an HMAC of the token, never the token itself, so a
  leaked cookie jar does not leak the bearer token;
- a post-login redirect only goes to a path of this site.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from urllib.parse import urlsplit

from web import WebError

COOKIE = "newswatch_session"
_COOKIE_CONTEXT = b"newswatch-web-session-v1"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`; anything else (0.0.0.0,
    a LAN address, a name) counts as reachable from elsewhere."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise WebError(
            f"refusing to serve the web view on {host}: a non-loopback address "
            "needs NEWSWATCH_WEB_TOKEN"
        )


def session_value(token: str) -> str:
    """What the login cookie holds: derived from the token, not the token."""
    return hmac.new(token.encode(), _COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def bearer(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def authorized(token: str | None, authorization: str | None, cookie: str | None) -> bool:
    """No token configured: open (loopback only, see check_bind). Otherwise the
    bearer header or the session cookie must match."""
    if not token:
        return True
    return same_secret(bearer(authorization), token) or same_secret(cookie, session_value(token))


def local_path(target: str | None) -> str:
    """`target` if it is a path on this site, else `/` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return "/"
    return target


def same_origin(origin: str | None, host: str | None) -> bool:
    """A POST's Origin header, when sent, must name this host. Browsers send
    it on every POST; a missing one (curl, old clients) is accepted."""
    if origin is None:
        return True
    parts = urlsplit(origin)
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc == host
