"""Deterministic crash points for the fault-injection suite (tests/faults).

`CrashPoints.crash(name)` kills the current process with SIGKILL when its
spec (NEWSWATCH_CRASH_AT, read by the composition root) names this point:
`name` crashes the first time the point is reached, `name:N` the N-th time.
Otherwise it returns at once: a production run pays one comparison per call.
SIGKILL (not an exception) is the point: nothing gets a chance to clean up,
exactly as with `kill -9`, an OOM kill or a power cut.

`CrashPoints.raise_at(name, subject)` raises `InjectedBug` when the second
spec (NEWSWATCH_RAISE_AT) is `name=subject`. The specs are given, never read
from the environment here: nothing under scheduler/ reads os.environ.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

__all__ = ["CrashPoints", "InjectedBug"]


def _parse(spec: str) -> tuple[str | None, int]:
    name, _, nth = spec.strip().partition(":")
    if not name:
        return None, 0
    try:
        count = int(nth) if nth else 1
    except ValueError:
        count = 1
    return name, max(count, 1)


def _parse_raise(spec: str) -> tuple[str, str] | None:
    point, sep, subject = spec.strip().partition("=")
    return (point, subject) if sep and point and subject else None


class InjectedBug(Exception):
    """An exception no code expects, raised by `raise_at` to prove containment."""


@dataclass
class CrashPoints:
    """The crash and raise points of one process (inactive by default)."""

    target: str | None = None
    nth: int = 0
    raise_spec: tuple[str, str] | None = None
    seen: int = field(default=0, compare=False)

    @classmethod
    def from_spec(cls, crash_at: str = "", raise_at: str = "") -> CrashPoints:
        target, nth = _parse(crash_at)
        return cls(target, nth, _parse_raise(raise_at))

    def crash(self, name: str) -> None:
        """SIGKILL this process if the spec selects this call; else nothing."""
        if self.target is None or name != self.target:
            return
        self.seen += 1
        if self.seen >= self.nth:
            os.kill(os.getpid(), signal.SIGKILL)

    def raise_at(self, name: str, subject: str) -> None:
        """Raise InjectedBug if the raise spec is `name=subject` (e.g. `poll=feed-3`):
        the fault suite's stand-in for a bug or a hostile input nobody foresaw."""
        if self.raise_spec is not None and (name, subject) == self.raise_spec:
            raise InjectedBug(f"injected at {name} for {subject}")
