"""Pure delivery decisions: retry backoff, pacing waits, and which recipients
must wait for configuration. No I/O, no clock: `rng` and the configuration
are parameters.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Protocol

from alerts import AlertError
from alerts.watchlist_files import resolve_refs

BASE_DELAY = 30.0
MAX_DELAY = 6 * 3600.0
MAX_RETRY_AFTER = 24 * 3600.0
MIN_RETRY_AFTER = 1.0  # "Retry-After: 0" must not become a tight loop
JITTER = 0.2
SMTP_NOT_SET = "NEWSWATCH_SMTP_URL is not set"


class Recipient(Protocol):
    """What the decision reads of a recipient (storage.outbox.RecipientRef)."""

    @property
    def id(self) -> int: ...
    @property
    def channel(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def secret(self) -> str | None: ...


def backoff_delay(attempts: int, retry_after: float | None, rng: random.Random) -> float:
    """Seconds before the next try after `attempts` failed ones:
    30 s · 2^(attempts-1), capped at 6 h, ±20 %; never less than Retry-After."""
    base = min(BASE_DELAY * 2.0 ** max(attempts - 1, 0), MAX_DELAY)
    delay = base * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def pacing_wait(retry_after: float) -> float:
    """Seconds to wait for a peer that asked for `retry_after`: exactly that,
    bounded to [MIN_RETRY_AFTER, MAX_RETRY_AFTER]."""
    return min(max(retry_after, MIN_RETRY_AFTER), MAX_RETRY_AFTER)


def blocked_recipients(
    recipients: Sequence[Recipient], smtp_problem: str | None, env: Mapping[str, str]
) -> dict[int, str]:
    """Recipients this process cannot deliver to for want of configuration, and
    why. `smtp_problem`: why email cannot be sent (scheduler.deliver.smtp_problem)."""
    problem = smtp_problem
    blocked: dict[int, str] = {}
    for r in recipients:
        try:
            resolve_refs(r.target, env)
            if r.secret:
                resolve_refs(r.secret, env)
        except AlertError as e:
            blocked[r.id] = str(e)
            continue
        if r.channel == "email" and problem:
            blocked[r.id] = problem
    return blocked
