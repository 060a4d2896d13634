"""Worker processes for feed parsing, so the cores parse and the event loop stays free.

Parsing is the crawl's CPU cost; run in the event loop it also stalls every
fetch in flight (a whole-response timeout keeps running while the loop
parses someone else's feed). `parse_pool` gives a ProcessPoolExecutor sized
to the machine (cores - 1), started with "spawn" (a forked child would inherit the
parent's threads, locks, sockets and database connections), or None when
processes cannot be started here (then the caller parses in-process, as
before). Workers load the language model once, at start, not on the first
feed they get. They start on the first submit, not when the pool is made:
a re-crawl that parses nothing (every feed 304 or unchanged) starts none
(starting one eagerly cost ~0.3 s of CPU per re-crawl, measured).

A spawned child normally runs the parent's main script again (as
`__mp_main__`) before it runs its task, so that functions defined there can
be unpickled. The parse workers run only importable functions
(`crawler.feeds.parse_feed`, `_warm_up`), and the main script of a
`newswatch` process is the console script, whose import is the whole CLI
(SQLAlchemy, aiohttp, typer, hyperscan, the story code: ~90 MB per worker
that a parser never uses). So the workers are started with the main
module hidden from multiprocessing (`_WorkerProcess`): a worker imports
what parsing needs and nothing else.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import threading
import types
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

log = logging.getLogger(__name__)

# From this many feeds on, `crawl` parses in a worker process. Speed alone
# would say 500: bench/crawl.py --no-stories --workers 0|1 (30 entries per
# feed, load 4-6): 10 feeds 1.25 vs 1.50 s, 100: 3.26 vs 3.83 s (in-process
# wins), 300: 7.06 vs 7.41 s (a tie), 1,000: 26.5 vs 17.8 s (the worker wins);
# docs/notes/crawl-profile.md, step 3. But the worker also contains hostile
# bodies: parsed in-process, the 88 hostile cases of tests/faults peaked at
# 659 MB in the crawling process (cap 512 MB). Containment first: 20.
MIN_SOURCES_FOR_POOL = 20


def default_workers() -> int:
    """One worker per core but one: the main process needs a core of its own.

    It fetches, stores and matches every item (~0.4 ms CPU per new item).
    On 2 cores a second worker gave ~30 % less time on a 1,000-feed first
    crawl for 150 MB more (bench/crawl.py: 14.2 s and 441 MB vs 20.6 s and
    288 MB, when a worker peaked at ~150 MB; ~65 MB since the language
    model is cached, docs/notes/crawl-profile.md step 5, not re-measured
    with two); callers who prefer speed pass `workers` explicitly.
    """
    return max(1, (os.cpu_count() or 1) - 1)


# The variables OpenBLAS (numpy's wheels), OpenMP and MKL read at load time.
_BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _warm_up() -> None:
    # Ctrl-C reaches the whole process group: the parent stops the crawl and
    # shuts the pool down; a worker's own KeyboardInterrupt traceback would
    # only bury the one-line "interrupted".
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One BLAS thread per worker, set before numpy loads OpenBLAS: a worker is
    # one core's worth of parsing by design, and the language model's load
    # ran a second BLAS thread that spun ~55 ms of CPU (0.118 s of CPU for a
    # 0.064 s load; 0.063 s with one) on the core the crawling process needs
    # while the worker starts. Parsing itself makes no call large enough for
    # OpenBLAS to use a second thread (bench/parse.py: the same with either).
    for name in _BLAS_THREADS:
        os.environ.setdefault(name, "1")
    from crawler.feeds import parse_feed  # noqa: F401 - import cost paid once per worker
    from crawler.normalize import detect_language

    detect_language("warm up the language model once per worker process")


# The pipes between the crawling process and its parse workers, widened from
# Linux's 64 KB to the unprivileged maximum (/proc/sys/fs/pipe-max-size, 1 MB
# by default). A parsed feed is often larger than 64 KB (the bench's ~100 KB
# feeds give ~150 KB of pickled Items), so with the default size a worker
# blocked on writing each result until the crawling process's result thread
# had read part of it, and that thread waits for the GIL while the saver
# holds it (up to the 5 ms switch interval per hand-over). The worker then
# parsed ~82 % of the time and the crawling process ran ~80 % (a timeline
# every 0.25 s over the bench's first crawl); with 1 MB pipes the worker
# writes a result and goes on (~92 %). docs/notes/crawl-profile.md, step 12.
PIPE_SIZE = 1 << 20
_SET_PIPE_SIZE = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only


def _widen_pipes(pool: ProcessPoolExecutor, size: int = PIPE_SIZE) -> None:
    """Give the pool's call and result pipes `size` bytes of buffer, where
    the platform allows it; a pipe left at its size only costs speed. The
    pipes are ProcessPoolExecutor's private queues (CPython 3.11's names),
    hence every lookup is guarded."""
    if _SET_PIPE_SIZE is None:
        return
    for name in ("_call_queue", "_result_queue"):
        reader = getattr(getattr(pool, name, None), "_reader", None)
        fileno = getattr(reader, "fileno", None)
        if fileno is None:
            continue
        try:
            fcntl.fcntl(fileno(), _SET_PIPE_SIZE, size)
        except OSError as e:  # EPERM above pipe-max-size, or the user's pipe quota
            log.debug("parse_pool status=pipe_not_widened error=%r", str(e))


_START_LOCK = threading.Lock()


class _WorkerProcess(SpawnProcess):
    """A spawned process that does not run the parent's main script first.

    multiprocessing decides what a spawned child imports as its main module
    from `sys.modules["__main__"]` when the process starts
    (`multiprocessing.spawn.get_preparation_data`, read synchronously in
    `start`): a module without `__spec__` or `__file__` (as in `python -c`)
    gives the child none. The main module is swapped for a bare one only
    for that call, under a lock; everything else of the start is as usual.
    """

    def start(self) -> None:
        with _START_LOCK:
            main = sys.modules["__main__"]
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                super().start()
            finally:
                sys.modules["__main__"] = main


class _WorkerContext(SpawnContext):
    Process = _WorkerProcess


class _ParsePool(ProcessPoolExecutor):
    """A ProcessPoolExecutor whose workers can be let go before it is shut
    down (`release`), and which still waits for them when it is.

    ProcessPoolExecutor.shutdown(wait=False) forgets its management thread
    and processes, so a later shutdown(wait=True) would no longer wait for
    them: `release` keeps them (CPython 3.11's private names, each lookup
    guarded; without them a release only skips the wait) for `shutdown` to
    join."""

    _released: tuple[Any, list[Any]] | None = None

    def release(self) -> None:
        """No job is submitted after this: the workers exit once theirs are done."""
        if self._released is None:
            processes = getattr(self, "_processes", None) or {}
            self._released = (
                getattr(self, "_executor_manager_thread", None),
                list(processes.values()),
            )
        self.shutdown(wait=False)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        super().shutdown(wait, cancel_futures=cancel_futures)
        if wait and self._released is not None:
            thread, processes = self._released
            if thread is not None:
                thread.join()
            for process in processes:
                process.join()


def release_workers(executor: Executor) -> None:
    """Let a parse pool's workers exit as soon as their jobs are done (a
    crawl whose every poll is parsed: the workers' exit, ~50 ms of
    interpreter teardown, then overlaps its last saves instead of following
    them, and their memory is handed back before the crawl ends).
    `parse_pool` still waits for them as it ends. Other executors: nothing."""
    if isinstance(executor, _ParsePool):
        executor.release()


@contextmanager
def parse_pool(workers: int | None = None) -> Iterator[Executor | None]:
    """A process pool for `parse_feed`, shut down on exit; None if it cannot start."""
    size = workers if workers is not None else default_workers()
    if size < 1:
        yield None
        return
    try:
        pool = _ParsePool(max_workers=size, mp_context=_WorkerContext(), initializer=_warm_up)
    except (OSError, ValueError, NotImplementedError) as e:
        log.warning("parse_pool status=unavailable error=%r", str(e))
        yield None
        return
    _widen_pipes(pool)
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
