"""Per-destination send pacing, in-process: at most one send per `interval` to
one webhook URL, and none before the time a peer's Retry-After named.

Why here and not in the database: pacing is about the next second, and one
process holds a recipient's claimed alerts while it sends them; across
replicas, the peer's Retry-After (rescheduled in the outbox) does the rest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

MAX_KEYS = 4096  # destinations remembered; entries in the past are dropped first


class Pacer:
    """Send slots per destination key on a monotonic clock. `reserve` books the
    next free slot and says how long to wait for it, so concurrent senders to
    one URL (two recipients, one Slack channel) are spaced too."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next: dict[str, float] = {}

    @staticmethod
    def key(url: str) -> str:
        """The URL itself is a secret: only its digest is kept."""
        return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def wait_for(self, key: str) -> float:
        """Seconds until `key` may be sent to (0 when free), booking nothing."""
        return max(self._next.get(key, 0.0) - self._clock(), 0.0)

    def reserve(self, key: str, interval: float) -> float:
        """Book the next slot for `key`; return the seconds to wait for it."""
        now = self._clock()
        at = max(now, self._next.get(key, now))
        self._set(key, at + interval)
        return at - now

    def hold(self, key: str, seconds: float) -> None:
        """The peer asked for `seconds` of quiet (Retry-After)."""
        self._set(key, max(self._next.get(key, 0.0), self._clock() + seconds))

    def _set(self, key: str, at: float) -> None:
        if key not in self._next and len(self._next) >= MAX_KEYS:
            now = self._clock()
            self._next = {k: t for k, t in self._next.items() if t > now}
        self._next[key] = at
