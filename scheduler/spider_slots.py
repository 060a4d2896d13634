"""How many spider runs one process has at once (crawler.spiders).

Each run is a Python process with Scrapy and Twisted (~100 MB, ~1.5 s to
start) that may last minutes; a daemon with many due spider sources must not
start them all at once. A plain asyncio.Semaphore cannot be shared across the
event loops a process runs one after another (the CLI's `crawl` runs one per
command, tests many), so this keeps one per loop: the bound holds within each
loop, which is where runs overlap.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class SpiderSlots:
    """At most `size` spider runs at a time in the running event loop."""

    def __init__(self, size: int = 1) -> None:
        if size < 1:
            raise ValueError("at least one spider slot")
        self.size = size
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._by_loop = weakref.WeakKeyDictionary()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        sem = self._by_loop.get(loop)
        if sem is None:
            sem = self._by_loop[loop] = asyncio.Semaphore(self.size)
        async with sem:
            yield
