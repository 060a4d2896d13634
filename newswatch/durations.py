"""Durations as users write them: 30s, 15m, 2h, 1d, 1w, 1h30m. Pure."""

from __future__ import annotations

import re

from crawler.crawl_records import MAX_EVERY_SECONDS, MIN_EVERY_SECONDS

_PART = re.compile(r"([0-9]+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


# Longer than any sensible `--since` and far inside what a datetime can add.
MAX_DURATION_SECONDS = 100 * 366 * 86_400


def parse_duration(text: str) -> int:
    """Seconds in `text`; ValueError with a readable message when it is not a
    duration, is zero, or is longer than a century (a datetime would overflow)."""
    s = text.strip().lower()
    if len(s) > 40:  # int() of a 5,000-digit string is slow, and no duration needs it
        raise ValueError(f"{text[:40]!r}… is not a duration like 30s, 15m, 2h, 1d or 1h30m")
    if s.isascii() and s.isdigit():
        total = int(s)
    else:
        pos, total = 0, 0
        for m in _PART.finditer(s):
            if m.start() != pos:
                break
            total += int(m.group(1)) * _UNITS[m.group(2)]
            pos = m.end()
        if pos != len(s) or not s:
            raise ValueError(f"{text!r} is not a duration like 30s, 15m, 2h, 1d or 1h30m")
    if total <= 0:
        raise ValueError(f"{text!r} is zero: give a duration like 30s, 15m, 2h, 1d or 1h30m")
    if total > MAX_DURATION_SECONDS:
        raise ValueError(f"{text!r} is longer than 100 years")
    return total


def parse_interval(text: str | int) -> int:
    """A polling interval (`--every`, OPML `every`, YAML `every`) in seconds,
    between MIN_EVERY_SECONDS and MAX_EVERY_SECONDS; ValueError otherwise.

    One parser for the three ways in, so that none of them can store an
    interval the scheduler cannot add to a date (or a Postgres integer hold).
    """
    seconds = parse_duration(str(text))
    if not MIN_EVERY_SECONDS <= seconds <= MAX_EVERY_SECONDS:
        raise ValueError(
            f"interval {str(text)!r} must be between {format_duration(MIN_EVERY_SECONDS)} "
            f"and {MAX_EVERY_SECONDS // 86_400}d"
        )
    return seconds


def format_duration(seconds: int) -> str:
    if seconds <= 0:
        return "0s"
    out = []
    for unit in "wdhms":
        n, seconds = divmod(seconds, _UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def parse_every(text: str) -> int:
    """`--every` as typed on the command line: a duration WITH a unit.

    A bare number is refused (`--every 15` used to mean 15 seconds, which
    nobody who typed it meant); files written by older versions keep their
    numbers as seconds through `parse_interval`.
    """
    s = text.strip()
    if s.isascii() and s.isdigit() and len(s) <= 40:
        fits = [
            f"{s}{unit}"
            for unit in ("s", "m", "h")
            if MIN_EVERY_SECONDS <= int(s) * _UNITS[unit] <= MAX_EVERY_SECONDS
        ]
        hint = f", e.g. {' or '.join(fits[:2])}" if fits else " (s, m, h, d or w)"
        raise ValueError(f"--every {s}: give a unit{hint}")
    return parse_interval(s)
