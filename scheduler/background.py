"""One-time builds started early, in a thread of their own.

A first crawl starts some work before it needs it (the story encoder and
feature tables, `StoryAssigner.load_soon`; the matcher's screen,
`scheduler.crawl.warm_matcher`) while its parse workers start and its saver
has nothing to save. `start_soon` is their one way of doing so:

- the thread is not a daemon: a crawl that ends before the work does (every
  source failed) must not leave a thread compiling, or logging, while the
  interpreter shuts down (a daemon thread writing to stderr then aborts the
  process); the process exits once the work is done;
- a failure is logged at debug level only: whoever needs the result later
  meets the same failure and reports it there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable


def start_soon(
    name: str, work: Callable[[], object], event: str, log: logging.Logger
) -> threading.Thread:
    """Run `work()` now in a non-daemon thread called `name`; a failure is
    logged to `log` as `<event> status=failed`. The thread, started."""

    def run() -> None:
        try:
            work()
        except Exception as e:  # reported by the caller that needs the result
            log.debug("%s status=failed error=%r", event, str(e)[:200])

    thread = threading.Thread(target=run, name=name, daemon=False)
    thread.start()
    return thread
