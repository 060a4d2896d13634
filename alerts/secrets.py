"""Secrets never reach output: `mask_secret` for what we show, `scrub` for
what a peer or a library said (an error message may quote a webhook URL).

Pure (no I/O): the CLI, the channels and the deliver use-case all import it
here, so the alerts package needs nothing of the composition root.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

SHOWN_TAIL = 4  # characters of a long secret shown, to tell secrets apart
SHORT_SECRET = 16  # a secret this long or shorter shows none of itself


def mask_secret(value: str | None) -> str:
    """Show enough of a secret to recognise it, never the whole of it.

    Invariant: the last SHOWN_TAIL characters of a secret (of a URL: of its
    path, where webhook tokens live) are shown only when it is longer than
    SHORT_SECRET characters; a shorter one shows none, since 4 of 8 or 12
    characters is too large a share of it. A URL's query is never shown."""
    if not value:
        return ""
    if "://" in value:
        try:
            parts = urlsplit(value)
        except ValueError:
            return "***"
        host = parts.hostname or ""
        scheme = parts.scheme
        if parts.path and len(parts.path) > 1:
            return f"{scheme}://{host}/…{_tail(parts.path)}"
        return f"{scheme}://{host}"
    return _tail(value)


def _tail(secret: str) -> str:
    return "***" + secret[-SHOWN_TAIL:] if len(secret) > SHORT_SECRET else "***"


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every secret (and a URL's path and query) replaced by its mask."""
    out = text
    for secret in secrets:
        if not secret or len(secret) < 4:
            continue
        out = out.replace(secret, mask_secret(secret))
        if "://" in secret:
            parts = urlsplit(secret)
            for piece in (parts.path, parts.query, unquote(parts.path)):
                if len(piece) > 1:
                    out = out.replace(piece, "/…")
    return out


_URL_PARTS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)(.*)\Z", re.S)


def mask_url_password(url: str) -> str:
    """A source URL as a listing shows it: a password in its userinfo (a
    private feed's basic auth) as `***`, `https://user:***@host/feed`; any
    other URL unchanged."""
    m = _URL_PARTS.match(url)
    if m is None:
        return url
    userinfo, at, hostport = m.group(2).rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{m.group(1)}{userinfo.split(':', 1)[0]}:***@{hostport}{m.group(3)}"
