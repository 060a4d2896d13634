"""Deterministic crash points for the fault-injection suite (tests/faults).

`crash_point(name)` kills the current process with SIGKILL when the
environment variable NEWSWATCH_CRASH_AT names this point: `name` crashes the
first time the point is reached, `name:N` the N-th time. Otherwise it returns
at once: the variable is read once, at import, so a production run pays one
comparison per call. SIGKILL (not an exception) is the point: nothing gets a
chance to clean up, exactly as with `kill -9`, an OOM kill or a power cut.
"""

from __future__ import annotations

import os
import signal

__all__ = ["InjectedBug", "crash_point", "raise_point"]


def _parse(spec: str) -> tuple[str | None, int]:
    name, _, nth = spec.strip().partition(":")
    if not name:
        return None, 0
    try:
        count = int(nth) if nth else 1
    except ValueError:
        count = 1
    return name, max(count, 1)


_TARGET, _NTH = _parse(os.environ.get("NEWSWATCH_CRASH_AT", ""))
_seen = 0


def crash_point(name: str) -> None:
    """SIGKILL this process if NEWSWATCH_CRASH_AT selects this call; else nothing."""
    global _seen
    if _TARGET is None or name != _TARGET:
        return
    _seen += 1
    if _seen >= _NTH:
        os.kill(os.getpid(), signal.SIGKILL)


class InjectedBug(Exception):
    """An exception no code expects, raised by `raise_point` to prove containment."""


def _parse_raise(spec: str) -> tuple[str, str] | None:
    point, sep, subject = spec.strip().partition("=")
    return (point, subject) if sep and point and subject else None


_RAISE = _parse_raise(os.environ.get("NEWSWATCH_RAISE_AT", ""))


def raise_point(name: str, subject: str) -> None:
    """Raise InjectedBug if NEWSWATCH_RAISE_AT is `name=subject` (e.g. `poll=feed-3`).

    The fault suite's stand-in for a bug or a hostile input nobody foresaw:
    an exception of a type the code cannot know, at a chosen point for one
    chosen source. Read once at import, like NEWSWATCH_CRASH_AT.
    """
    if _RAISE is not None and (name, subject) == _RAISE:
        raise InjectedBug(f"injected at {name} for {subject}")
