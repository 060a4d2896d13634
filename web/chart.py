"""A small server-side SVG line chart: counts per day, one line per series.

Pure: data in, SVG text out. Every label is escaped and stripped of control
characters (term and language names come from watchlist files and feeds).
Colours come from CSS classes (`series-0` … `series-7`) so the stylesheet
can switch them for dark mode and the strict Content-Security-Policy needs no
inline style.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime

from markupsafe import Markup, escape

from web.format import plain

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 40, 12, 12, 28
PALETTE = 8


def nice_max(value: int) -> int:
    """The smallest 1/2/5 × 10^k at or above `value` (at least 1): a round top line."""
    if value <= 1:
        return 1
    exp = int(10 ** math.floor(math.log10(value)))
    for step in (1, 2, 5, 10):
        if step * exp >= value:
            return step * exp
    return 10 * exp  # pragma: no cover


def _x(i: int, n: int) -> float:
    return LEFT + (WIDTH - LEFT - RIGHT) * (i / (n - 1) if n > 1 else 0.5)


def _y(v: int, top: int) -> float:
    return TOP + (HEIGHT - TOP - BOTTOM) * (1 - v / top)


def _axes(days: Sequence[datetime], top: int) -> list[str]:
    out = []
    for v in sorted({0, top // 2, top}):
        y = _y(v, top)
        out.append(
            f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{v}</text>'
        )
    n = len(days)
    for i in sorted({0, n // 2, n - 1}) if n else ():
        anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"
        out.append(
            f'<text class="tick" x="{_x(i, n):.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
            f"{days[i]:%m-%d}</text>"
        )
    return out


def line_chart(title: str, days: Sequence[datetime], series: Mapping[str, Sequence[int]]) -> Markup:
    """An accessible SVG: a <title>, one <polyline> per series (class
    `series-k`), with each series' points listed in its <title> for screen
    readers and tooltips."""
    n = len(days)
    top = nice_max(max((max(v, default=0) for v in series.values()), default=0))
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(plain(title))}</title>",
        *_axes(days, top),
    ]
    for k, (name, values) in enumerate(series.items()):
        points = " ".join(f"{_x(i, n):.1f},{_y(v, top):.1f}" for i, v in enumerate(values))
        label = escape(plain(name))
        parts.append(
            f'<polyline class="line series-{k % PALETTE}" data-series="{label}" '
            f'points="{points}"><title>{label}: {sum(values)}</title></polyline>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label above went through escape()
