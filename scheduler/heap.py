"""Give the C heap's free pages back to the system after a burst of items.

Parsed items pass through the crawling process by the thousand: a first
crawl of 1,000 feeds unpickles 30,000 of them in the pool's result thread,
saves them in the saver thread and drops them. Python frees them, but
glibc's malloc keeps most of what it got for them (every thread allocates
from an arena of its own, and an arena gives pages back only from its top),
so the process's resident size only grows: on the bench's first crawl the
crawling process went from 185 to 222 MB, 32 MB of it free and kept, which
`malloc_trim` handed back (222 -> 190 MB), and the story drain that follows
in `newswatch crawl` then peaked at 277 MB instead of 293 MB
(docs/notes/story-memory.md, "Free pages handed back").

`Churn.passed(n)` counts items as they go through and calls `trim_heap()`
once `after` of them have since its last call: ~1.2 ms of CPU a call (the
C call releases the GIL), 15-17 calls in the bench's first crawl, one per
~6 s of a daemon saving 11 polls of 30 items a second. `trim_heap()` does
nothing where the C library has no `malloc_trim` (musl, macOS).
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable

# Items between two trims: about 10 MB of parsed text and its objects.
TRIM_AFTER_ITEMS = 2_000


def _load_malloc_trim() -> Callable[[], object] | None:
    try:
        fn = ctypes.CDLL(None).malloc_trim  # the process's own symbols: its C library
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_size_t]
    fn.restype = ctypes.c_int
    return lambda: fn(0)


_MALLOC_TRIM = _load_malloc_trim()


def trim_heap() -> bool:
    """Hand the heap's free pages back to the system now; False where the C
    library cannot (the pages then stay with the process, as before)."""
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM()
    return True


class Churn:
    """Items that went through since the last trim; trims every `after`."""

    def __init__(self, after: int = TRIM_AFTER_ITEMS, trim: Callable[[], bool] = trim_heap) -> None:
        self._after = after
        self._trim = trim
        self._seen = 0
        self._lock = threading.Lock()

    def passed(self, items: int) -> bool:
        """Count `items` more; trim when `after` have passed since the last
        trim. Whether this call trimmed."""
        with self._lock:
            self._seen += max(items, 0)
            if self._seen < self._after:
                return False
            self._seen = 0
        return self._trim()


# The process's count: the saver's saves and the story drain's batches.
ITEMS = Churn()
