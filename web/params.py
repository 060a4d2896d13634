"""Query parameters to filters: pure, with one-line errors for bad input."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from storage.views import API_LIMIT, MatchFilter

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
        return now - timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    try:
        day = datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        raise BadParameter(f"since: {text[:40]!r} is not a duration like 2d or a date") from None
    return day.replace(tzinfo=UTC)


def _field(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name, "").strip()
    if len(value) > MAX_FIELD:
        raise BadParameter(f"{name}: longer than {MAX_FIELD} characters")
    return value or None


def match_filter(query: Mapping[str, str], now: datetime) -> MatchFilter:
    since = _field(query, "since")
    return MatchFilter(
        watchlist=_field(query, "watchlist"),
        term=_field(query, "term"),
        language=_field(query, "language"),
        source=_field(query, "source"),
        since=parse_since(since, now) if since else None,
    )


def limit(query: Mapping[str, str], default: int = API_LIMIT) -> int:
    raw = query.get("limit", "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= API_LIMIT:
        raise BadParameter(f"limit: must be a number from 1 to {API_LIMIT}")
    return int(raw)


def trend_days(query: Mapping[str, str]) -> int:
    raw = query.get("days", "30").strip()
    if raw not in {str(d) for d in TREND_DAYS}:
        raise BadParameter("days: must be 30 or 90")
    return int(raw)
