"""Durations as users write them: 30s, 15m, 2h, 1d, 1w, 1h30m. Pure."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> int:
    """Seconds in `text`; ValueError with a readable message when it is not a duration."""
    s = text.strip().lower()
    if s.isdigit():
        return int(s)
    pos, total = 0, 0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += int(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s or total <= 0:
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 2h, 1d or 1h30m")
    return total


def format_duration(seconds: int) -> str:
    if seconds <= 0:
        return "0s"
    out = []
    for unit in "wdhms":
        n, seconds = divmod(seconds, _UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
