"""bench/crawl.py's concurrent peak (`TotalRss`) counts this process and its
live children at the same moment, and not a child that has not exec'd yet
(it shares this process's pages).

Each test runs in a fresh interpreter of its own (`in_clean_process`): the
test process may have children of its own already (a pytest-xdist worker
keeps multiprocessing's resource tracker), which TotalRss rightly counts."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def _bench() -> Any:
    path = Path(__file__).parents[2] / "bench" / "crawl.py"
    spec = importlib.util.spec_from_file_location("bench_crawl", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wait_for(check: Any) -> None:
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def in_clean_process(test: Any) -> None:
    """Run `test` (a function of this module) in a new interpreter with no
    children but the ones it starts; fail with its traceback if it fails."""
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('t', {str(Path(__file__))!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        f"m.{test.__name__}()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=Path(__file__).parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_live_childs_memory_is_added_to_ours() -> None:
    in_clean_process(live_child)


def test_a_child_before_exec_is_not_counted() -> None:
    in_clean_process(child_before_exec)


def live_child() -> None:
    bench = _bench()
    total = bench.TotalRss(every=0.01)
    total.start("alone")
    total.phase("with child")
    code = "import sys; b = bytearray(80 << 20); print('ready', flush=True); sys.stdin.read()"
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        _wait_for(lambda: total.peaks["with child"][2] > 80 << 10)
    finally:
        child.communicate("", timeout=30)
    total.stop()
    whole, own, kids = total.peaks["with child"]
    own_before = total.peaks["alone"][1]
    assert whole == own + kids
    assert total.peaks["alone"] == (own_before + 0, own_before, 0)  # before the child
    assert own == pytest.approx(own_before, rel=0.5)


def child_before_exec() -> None:
    """A forked child that has not exec'd runs in our pages (same command
    line): counting its RSS would count them twice."""
    bench = _bench()
    total = bench.TotalRss()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child only waits
        os.close(write)
        os.read(read, 1)
        os._exit(0)
    os.close(read)
    try:
        assert bench._status_kb(pid, "VmRSS:") > 0
        total.sample()
        assert total.peaks[""][2] == 0
    finally:
        os.write(write, b"x")
        os.close(write)
        os.waitpid(pid, 0)


def test_a_process_tree_is_sampled_from_outside() -> None:
    in_clean_process(tree_from_outside)


def tree_from_outside() -> None:
    """How bench/crawl.py samples a crawl: from the process that started it.
    The root's and its child's memory are counted, in the phase the shared
    value names, and nothing while it names no phase ("")."""
    bench = _bench()
    code = (
        "import subprocess, sys\n"
        "kid = subprocess.Popen([sys.executable, '-c', "
        "\"import sys; b = bytearray(80 << 20); print('ready', flush=True); sys.stdin.read()\"], "
        "stdout=subprocess.PIPE, text=True)\n"
        "print(kid.stdout.readline().strip(), flush=True)\n"
        "sys.stdin.read()\n"
    )
    root = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    phase = [""]
    total = bench.TotalRss(every=0.01, root=root.pid, phase=lambda: phase[0])
    peaks = bench.ChildPeaks(root=root.pid)
    try:
        assert root.stdout is not None
        assert root.stdout.readline().strip() == "ready"
        total.start()
        time.sleep(0.1)
        assert total.peaks == {}  # no phase: nothing recorded
        phase[0] = "crawl"
        _wait_for(lambda: "crawl" in total.peaks and total.peaks["crawl"][2] > 80 << 10)
        # the root's child, as a parse worker is the crawling process's
        _wait_for(lambda: peaks.largest() > 80 << 10)
    finally:
        root.communicate("", timeout=30)
    total.stop()
    peaks.stop()
    whole, own, kids = total.peaks["crawl"]
    assert whole == own + kids
    assert 0 < own < 80 << 10  # the root's own memory, not the child's
    assert set(total.peaks) == {"crawl"}
