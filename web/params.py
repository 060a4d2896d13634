"""Query parameters to filters: pure, with one-line errors for bad input."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from storage.views import API_DEFAULT, API_LIMIT, API_PAGE, Cursor, MatchFilter

_DURATION = re.compile(r"^\s*(\d{1,6})\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
TREND_DAYS = (30, 90)
MAX_FIELD = 200


class BadParameter(ValueError):
    """A query parameter that cannot be understood; the message names it."""


def parse_since(text: str, now: datetime) -> datetime:
    """`2d`, `12h`, `90m`, `1w` (as the CLI's --since) or a date `2026-11-20` (UTC)."""
    m = _DURATION.match(text)
    if m:
        try:
            return now - timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
        except OverflowError:
            raise BadParameter(f"since: {text[:40]!r} reaches before year 1") from None
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        raise BadParameter(f"since: {text[:40]!r} is not a duration like 2d or a date") from None
    return day.replace(tzinfo=UTC)


def text_field(query: Mapping[str, str], name: str) -> str | None:
    """A free-text parameter, or None when empty. Control characters (NUL
    included, which PostgreSQL refuses in a string) are a bad parameter."""
    value = query.get(name, "").strip()
    if len(value) > MAX_FIELD:
        raise BadParameter(f"{name}: longer than {MAX_FIELD} characters")
    if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise BadParameter(f"{name}: holds control characters")
    return value or None


def number(text: str) -> int | None:
    """A plain ASCII number that fits a database integer, else None."""
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def match_filter(query: Mapping[str, str], now: datetime) -> MatchFilter:
    since = text_field(query, "since")
    return MatchFilter(
        watchlist=text_field(query, "watchlist"),
        term=text_field(query, "term"),
        language=text_field(query, "language"),
        source=text_field(query, "source"),
        since=parse_since(since, now) if since else None,
        tag=text_field(query, "tag"),
    )


def limit(query: Mapping[str, str], default: int = API_DEFAULT) -> int:
    raw = query.get("limit", "").strip()
    if not raw:
        return default
    n = number(raw)
    if n is None or not 1 <= n <= API_LIMIT:
        raise BadParameter(f"limit: must be a number from 1 to {API_LIMIT}")
    return n


def page_size(query: Mapping[str, str]) -> int:
    """`limit` (1 to 1,000, as before) capped at API_PAGE objects per response;
    the rest follows the `Link: rel="next"` header."""
    return min(limit(query), API_PAGE)


_CURSOR = re.compile(r"^(-?[0-9]{1,18})\.([0-9]{1,18})$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cursor_text(at: datetime, last: int) -> str:
    """The `cursor` of a listing position: microseconds since 1970 (UTC) and the id."""
    micros = (at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{last}"


def cursor(query: Mapping[str, str]) -> Cursor | None:
    """The `cursor` parameter of a `Link: rel="next"` URL, or None."""
    raw = query.get("cursor", "").strip()
    if not raw:
        return None
    m = _CURSOR.match(raw)
    if m is None:
        raise BadParameter("cursor: not a cursor from a Link header")
    try:
        at = _EPOCH + timedelta(microseconds=int(m.group(1)))
    except OverflowError:
        raise BadParameter("cursor: out of range") from None
    return at, int(m.group(2))


def trend_days(query: Mapping[str, str]) -> int:
    raw = query.get("days", "30").strip()
    if raw not in {str(d) for d in TREND_DAYS}:
        raise BadParameter("days: must be 30 or 90")
    return int(raw)
