"""When to poll a source next: a pure decision over the source and its last poll.

- success: the source's interval, adapted to how often it publishes (new
  items shorten it, empty polls lengthen it, up to 4x the source's own
  interval), within [min_interval, max_interval]; the first success after
  failures starts again from the source's own interval (backoff is reset);
- failure: exponential backoff from the interval, doubling per consecutive
  failure, capped at max_interval;
- Retry-After, Cache-Control max-age and RSS <ttl> are lower bounds, but
  never beyond the ceiling: a server cannot switch a source off by sending
  `max-age=31536000`;
- a jitter of ±10% spreads sources that were added together.

A source's own interval (`--every`) outside [min_interval, max_interval]
widens the range for that source: the user asked for it explicitly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from crawler.crawl_records import MAX_EVERY_SECONDS, PollOutcome, Source


@dataclass(frozen=True, slots=True)
class PollPolicy:
    min_interval: int = 300
    max_interval: int = 86_400
    jitter: float = 0.1


def next_interval(
    source: Source,
    outcome: PollOutcome,
    new_items: int,
    policy: PollPolicy,
    current: int | None = None,
) -> int:
    """Seconds until the next poll (before jitter)."""
    # A stored interval outside the bounds `--every` accepts (a row written
    # before they existed) must not overflow a datetime: clamp it.
    base = max(1, min(source.every_seconds, MAX_EVERY_SECONDS))
    floor = min(policy.min_interval, base)
    ceiling = max(policy.max_interval, base)
    if outcome.status == "failed":
        failures = source.consecutive_failures + 1
        interval = min(base * 2 ** min(failures, 16), ceiling)
    else:
        interval = base if source.consecutive_failures else (current or base)
        if new_items > 0:
            interval = max(int(interval / 1.5), floor, min(base, policy.min_interval))
            interval = min(interval, base)
        else:
            interval = min(int(interval * 1.25) + 1, ceiling, base * 4)
    interval = max(floor, min(interval, ceiling))  # a stale `current` may lie outside
    for bound in (outcome.retry_after_seconds, outcome.min_interval_seconds):
        if bound and bound > 0:  # NaN and infinity are the server's to send
            interval = max(interval, int(min(bound, ceiling)))
    return max(1, int(interval))


def next_poll_at(interval: int, now: datetime, policy: PollPolicy, rng: random.Random) -> datetime:
    spread = interval * policy.jitter
    return now + timedelta(seconds=interval + rng.uniform(-spread, spread))


def lease_duration(fetch_timeout: float) -> timedelta:
    """How long a claim on a source lasts; a poll must end well before it does."""
    return timedelta(seconds=max(300.0, fetch_timeout * 10))


def deferred_poll_at(
    now: datetime, per_host_delay: float, per_host: int, rng: random.Random
) -> datetime:
    """When a deferred source (no request slot in time) is due again: soon,
    after about the time its host needs to start `per_host` requests, spread
    by a random factor of 1 to 2 so that the sources a busy host deferred
    together do not all come back at the same tick."""
    base = max(1.0, per_host_delay * per_host)
    return now + timedelta(seconds=base * rng.uniform(1.0, 2.0))


def slot_wait(per_host_delay: float, per_host: int, poll_tick: float) -> float:
    """How long a daemon poll waits for a request slot before it is deferred.

    Twice what a host needs to start the requests it allows at once (the
    claim never takes more of its sources than that), and at least two poll
    ticks: a poll waits out ordinary spacing, never a queue.
    """
    return 2 * max(per_host_delay * per_host, poll_tick)


# Past a spider run's hard kill: the child's start, the parent reading its
# last lines, and the save that clears the lease.
SPIDER_LEASE_MARGIN = 120.0


def spider_lease_duration(lease: timedelta, run_seconds: float, grace_seconds: float) -> timedelta:
    """How long a spider source stays leased from the moment its run starts:
    past the run's hard kill (run limit + grace, crawler.spiders) by a
    margin, and never less than an ordinary poll's lease."""
    return max(lease, timedelta(seconds=run_seconds + grace_seconds + SPIDER_LEASE_MARGIN))
