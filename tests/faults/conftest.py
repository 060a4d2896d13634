"""Shared machinery of the fault-injection suite (`pytest -m faults`).

- `run_newswatch`: the real `newswatch` console script in a subprocess, with its
  exit status, output, wall time and peak RSS of the child and its descendants
  (their VmHWM, sampled while they run; see `_tree_peak_mb`).
- canaries: plain TCP listeners on 127.0.0.2 and [::1] that only count
  accepted connections. The suite allows exactly 127.0.0.1
  (NEWSWATCH_ALLOW_PRIVATE_ADDRESSES=127.0.0.1), so any connection a canary
  counts is an SSRF-guard failure; an autouse check asserts 0 after every test.
- `fresh_database`: the session databases of tests/conftest.py, emptied, for
  module-scoped fixtures (the `db` fixture is per test).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Database, _empty
from tests.support.canary import Canary
from tests.support.env import clean_env

NEWSWATCH = str(Path(sys.executable).parent / "newswatch")
MAX_RSS_MB = 512.0


@dataclass
class Proc:
    code: int
    out: str
    err: str
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float = 0.0  # user + system of the child and the children it reaped


def base_env(database_url: str, **extra: str) -> dict[str, str]:
    """A clean environment: no NEWSWATCH_* from the caller, loopback 127.0.0.1 only."""
    env = clean_env(
        NEWSWATCH_DATABASE_URL=database_url,
        NEWSWATCH_ALLOW_PRIVATE_ADDRESSES="127.0.0.1",
        NEWSWATCH_PER_HOST_DELAY="0",
        NEWSWATCH_PER_HOST_CONCURRENCY="64",
        NEWSWATCH_CONCURRENCY="128",
        NEWSWATCH_FETCH_TIMEOUT="2",
    )
    env.update(extra)
    return env


def start_newswatch(
    args: list[str], env: dict[str, str], log: Path | None = None
) -> subprocess.Popen[bytes]:
    out = open(log, "wb") if log else subprocess.PIPE  # noqa: SIM115 - closed by caller via proc
    return subprocess.Popen(
        [NEWSWATCH, *args], env=env, stdout=out, stderr=subprocess.PIPE if log is None else out
    )


def _descendants(pid: int) -> list[int]:
    """`pid` and every live process below it (from /proc/PID/task/TID/children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
    return found


def _tree_peak_mb(pid: int) -> float:
    """The largest VmHWM (peak resident set) among `pid` and its descendants, in MB.

    Not wait4's ru_maxrss: Linux folds the old mm's high-water mark into the
    process's maxrss at execve, so a child forked from a big pytest worker
    reported the worker's RSS (774 MB for a crawl that used under 300 MB).
    VmHWM belongs to the mm that execve created, so it counts our process only.
    """
    peak = 0
    for each in _descendants(pid):
        with contextlib.suppress(OSError), open(f"/proc/{each}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
                    break
    return peak / 1024.0


def reap_usage(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float, float]:
    """Wait for `proc` (killing it after `timeout`); return (status, peak RSS in
    MB, CPU seconds).

    The peak is sampled every 20 ms while the process lives; VmHWM is a
    high-water mark, so only growth in the last interval before exit is missed.
    The CPU time is wait4's (user + system of the child and of the children it
    waited for): unlike wall time it does not grow with the machine's load. A
    process Popen has reaped already (a caller's `poll()` saw it end) gives its
    status and 0.0 CPU seconds: wait4 has nothing left to report.
    """
    deadline = time.monotonic() + timeout
    peak = 0.0
    while True:
        peak = max(peak, _tree_peak_mb(proc.pid))
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if not pid and time.monotonic() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
        except ChildProcessError:
            # Popen reaped it already: `proc.poll()` or `send_signal` (which
            # polls first) after it had ended; its status is all that is left
            if proc.returncode is None:
                raise
            return proc.returncode, peak, 0.0
        if pid:
            break
        time.sleep(0.02)
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    return code, peak, usage.ru_utime + usage.ru_stime


def reap(proc: subprocess.Popen[bytes], timeout: float) -> tuple[int, float]:
    """`reap_usage` without the CPU time."""
    code, peak, _ = reap_usage(proc, timeout)
    return code, peak


def run_newswatch(args: list[str], env: dict[str, str], timeout: float = 120.0) -> Proc:
    """Run the CLI to completion; stdout/stderr are drained by threads-free temp files."""
    import tempfile

    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([NEWSWATCH, *args], env=env, stdout=out, stderr=err)
        code, rss, cpu = reap_usage(proc, timeout)
        out.seek(0)
        err.seek(0)
        return Proc(
            code,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            time.monotonic() - started,
            rss,
            cpu,
        )


def kill(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)


@pytest.fixture(scope="session")
def canaries() -> Iterator[list[Canary]]:
    started = [Canary("127.0.0.2").start()]
    with contextlib.suppress(OSError):  # no IPv6 loopback on this machine
        started.append(Canary("::1", socket.AF_INET6).start())
    yield started
    for c in started:
        c.stop()


@pytest.fixture(autouse=True)
def _no_canary_contact(canaries: list[Canary]) -> Iterator[None]:
    """After every test of the suite: no connection reached a forbidden address."""
    yield
    hit = {f"{c.host}:{c.port}": c.connections for c in canaries if c.connections}
    assert not hit, f"requests reached forbidden addresses: {hit}"


def fresh_database(databases: dict[str, Database], backend: str) -> Database:
    database = databases[backend]
    _empty(database)
    return database
