"""The saver thread: where every poll's save transaction runs.

Saving a poll (items, matches, outbox, fetch state) is synchronous database
and matching work, ~35 ms for a new 30-item feed. Run on the event loop it
stalled every fetch in flight and left the parse workers without input
until it was done; in this thread, fetching and parsing go on while a batch
is written (docs/notes/crawl-profile.md, item 5).

Why one thread for the whole process, not `asyncio.to_thread`: saves then
never race each other for SQLite's single write lock (a deferred
transaction that reads, then writes, fails at once on a lock it cannot
upgrade), polls are saved in the order they are handed over, and the
daemon's polls that finish together queue behind one another instead of
opening several transactions at once.

A save that has started is not interrupted by cancelling the task awaiting
it: it commits or rolls back as a whole, so the module invariant of
scheduler.crawl (one transaction per poll's data) holds; the caller only
misses its counts, and the lease it would hand back is already cleared.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_SAVER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="newswatch-save")


async def in_saver(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run `fn(*args, **kwargs)` in the saver thread (with the caller's
    context variables) and return its result or raise its error."""
    call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_SAVER, call)
