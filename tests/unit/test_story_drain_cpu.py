"""The drain's CPU (issue #15, docs/notes/story-drain-cpu.md): what was made
cheaper must decide exactly as before."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.places import _TABLE, countries, countries_reference

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


# ---------------------------------------------------------------- countries: prefiltered


# Strings each expression matches whole (Hypothesis draws them from the
# expressions themselves), cased as drawn or upper-cased, joined with letters
# of every script and with letters that re folds apart from str.lower.
_SPELLINGS = st.one_of(
    *(
        st.from_regex(re.compile(p, re.IGNORECASE if k == 1 else 0), fullmatch=True)
        for pats in _TABLE.values()
        for k, p in enumerate(pats)
    )
)
_JOINS = st.sampled_from(
    [" ", "", "-", ", ", ".", "·", "가", "a", "Я", "中", "ᲀ", "ᲂ", "ı", "İ", "ſ", "Σ", "'s"]
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(_SPELLINGS, _SPELLINGS.map(str.upper), _SPELLINGS.map(str.lower), _JOINS),
        max_size=8,
    )
)
def test_countries_are_the_reference_scans(parts: list[str]) -> None:
    """Running only the expressions whose leading words occur names the same
    countries as running all of them, whatever the words, cases and joins."""
    text = "".join(parts)
    assert countries(text) == countries_reference(text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Москᲀа", "RU"),  # в written U+1C80: re.IGNORECASE folds it to в, str.lower does not
        ("ЯПОНИЯ", "JP"),
        ("북 미사일", "KP"),
        ("Stockholm", "SE"),
    ],
)
def test_countries_by_case_folding_and_short_words(text: str, code: str) -> None:
    assert code in countries(text)
    assert countries(text) == countries_reference(text)
