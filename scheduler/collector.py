"""Fewer cyclic garbage collections while a one-shot crawl runs.

A first crawl allocates container objects by the hundred thousand (rows,
items, tuples, dicts) that reference counting frees at once. CPython's
cyclic collector still runs on their count: a young collection every 700
net allocations, and now and then a full one, which walks every object the
process holds (modules, SQLAlchemy's caches, the story index, the encoder's
tables). On the bench's 1,000-feed first crawl with stories that was 240
collections and ~0.27 s of the crawling process's ~4.4 s of CPU, all of it
holding the GIL that the saver, the event loop and the result thread share
(`gc.callbacks`, docs/notes/crawl-profile.md step 13).

`fewer_collections()` moves what exists when the crawl starts out of the
collector's view (`gc.freeze`: it lives as long as the process anyway) and
raises the young generation's threshold to CRAWL_THRESHOLD: 5 collections
and ~0.02 s in the same crawl. Both are put back when the last crawl of
the process ends (`gc.unfreeze` hands the frozen objects back to the oldest
generation), so cycles made meanwhile are still collected, only later, and
a daemon or a test process that crawls keeps the default behaviour
outside of crawls. Overlapping crawls in one process share one pause. A
process whose heap was frozen before (the web view's) keeps it frozen.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Net allocations between young collections during a crawl (CPython's default
# is 700). 10,000 objects wait at most one collection: a few MB at worst.
CRAWL_THRESHOLD = 10_000

_lock = threading.Lock()
_active = 0
_saved: tuple[int, int, int] | None = None
_thaw = False


@contextmanager
def fewer_collections(threshold: int = CRAWL_THRESHOLD) -> Iterator[None]:
    """Freeze the objects that exist now and collect young objects every
    `threshold` net allocations until the last overlapping use ends.

    A process that had frozen its heap already (the web view does at its
    start, web.server.freeze_heap) keeps it frozen: `gc.unfreeze` cannot
    tell its objects from the crawl's, and the crawl's are its heap before
    the crawl, frozen for the same reason."""
    global _active, _saved, _thaw
    with _lock:
        if _active == 0:
            _saved = gc.get_threshold()
            _thaw = gc.get_freeze_count() == 0
            gc.freeze()
            gc.set_threshold(max(threshold, _saved[0]), _saved[1], _saved[2])
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                if _thaw:
                    gc.unfreeze()
                _saved = None
