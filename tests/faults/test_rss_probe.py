"""The fault suite's memory probe measures the process it ran, not its parent.

wait4's ru_maxrss carries the parent's high-water mark across execve, so a
crawl forked from a large pytest worker reported the worker's size; the probe
reads VmHWM of the child and its descendants instead. These checks keep it
able to fail: a probe that returned 0 would pass every memory bound.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.faults.conftest import reap

pytestmark = pytest.mark.faults

ALLOCATE = (
    "b = bytearray({mb} * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); "
    "import time; time.sleep(0.3)"
)


def _run(code: str) -> float:
    proc = subprocess.Popen([sys.executable, "-c", code])
    status, peak = reap(proc, timeout=60)
    assert status == 0
    return peak


def test_probe_sees_the_child_allocation() -> None:
    small = _run("import time; time.sleep(0.3)")
    large = _run(ALLOCATE.format(mb=200))
    assert small < 100, small
    assert large > small + 180, (small, large)


def test_probe_sees_a_grandchild() -> None:
    inner = ALLOCATE.format(mb=150)
    outer = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {inner!r}], check=True)"
    assert _run(outer) > 140


def test_probe_ignores_the_parent_size() -> None:
    ballast = bytearray(300 * 1024 * 1024)
    ballast[::4096] = b"x" * len(ballast[::4096])
    assert _run("import time; time.sleep(0.3)") < 100
    del ballast


@pytest.mark.parametrize("code", [0, 3, -9])
@pytest.mark.parametrize("how", ["poll", "send_signal"])
def test_reap_gives_the_status_of_a_process_popen_reaped(code: int, how: str) -> None:
    """A caller that asked `proc.poll()` (or `send_signal`, which polls first)
    after the process ended leaves wait4 nothing to reap: `reap` gives the
    status Popen read (test_crash_recovery's random kills, when a crawl
    ended before its kill)."""
    script = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)" if code < 0 else ""
    proc = subprocess.Popen([sys.executable, "-c", script or f"raise SystemExit({code})"])
    while proc.poll() is None:  # reaped here, by Popen
        pass
    if how == "send_signal":
        proc.send_signal(9)  # a no-op now: Popen knows it has ended
    status, _ = reap(proc, timeout=10)
    assert status == code
