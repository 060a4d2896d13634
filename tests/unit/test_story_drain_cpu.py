"""The drain's CPU (issue #15, docs/notes/story-drain-cpu.md): what was made
cheaper must decide exactly as before."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_BLAS_THREADS = """
from datetime import timedelta
from threadpoolctl import threadpool_info
from alerts.embedding import HashingEncoder
from scheduler.story_assignment import StoryAssigner

def blas() -> int:
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

before = blas()
StoryAssigner(lambda: HashingEncoder(), timedelta(hours=72)).index()
print(before, blas())
"""


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="BLAS runs on one thread here anyway")
def test_the_assigners_index_runs_blas_on_one_thread() -> None:
    """The index's products on one BLAS thread (OpenBLAS defaults to one per
    core: a second thread spun on a busy machine, ~4x the CPU per product)."""
    env = {k: v for k, v in os.environ.items() if "NUM_THREADS" not in k}
    out = subprocess.run(
        [sys.executable, "-c", _BLAS_THREADS], capture_output=True, text=True, env=env, check=True
    ).stdout.split()
    assert int(out[0]) > 1  # the default this changes
    assert int(out[1]) == 1
