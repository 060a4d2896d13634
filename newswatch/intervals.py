"""The interval a source is polled at, and why: what `source list` shows. Pure.

The scheduler (scheduler.poll_policy.next_interval) adapts a source's own
interval: it backs off after failures, stretches a quiet source up to 4x
its `every`, and obeys a server's Retry-After / max-age / <ttl>. An
explicit `every` below NEWSWATCH_MIN_INTERVAL is honoured, never clamped
(docs/notes/first-hour.md). The scheduler stores the interval it chose
(`current_interval_seconds`); this module only explains it.
"""

from __future__ import annotations

from dataclasses import dataclass

from crawler.crawl_records import Source

ADAPT_LIMIT = 4  # scheduler.poll_policy: a quiet source stretches to at most 4x `every`


@dataclass(frozen=True, slots=True)
class EffectiveInterval:
    seconds: int | None  # None: disabled
    reason: str


def effective_interval(source: Source, *, max_interval: int) -> EffectiveInterval:
    """The interval in force for `source` and a few words saying why."""
    every = source.every_seconds
    current = source.current_interval_seconds
    if not source.enabled:
        return EffectiveInterval(None, "disabled")
    if source.consecutive_failures:
        n = source.consecutive_failures
        return EffectiveInterval(current or every, f"backoff after {n} failure{'s' * (n != 1)}")
    if current is None or current == every:
        return EffectiveInterval(every, "as set")
    if current < every:
        return EffectiveInterval(current, "adapted: busy source")
    if current <= every * ADAPT_LIMIT + ADAPT_LIMIT and current < max(max_interval, every):
        return EffectiveInterval(current, "adapted: quiet source")
    return EffectiveInterval(current, "server max-age / Retry-After")
