"""Both automata (Hyperscan and pyahocorasick) behind the same Matcher.

`matching_backend` is imported, autouse, by every matching test module, so the
whole matching suite runs once per backend; here, besides, the two are
compared on generated watchlists and texts, and Hyperscan's own edge cases
(reports standing for a plural ending, scratch space per thread) are pinned.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

import alerts.matching.engine as matching
from alerts import AlertError
from alerts.alert_records import Document, Query, Term, Watchlist
from alerts.matching.backends import HYPERSCAN_AVAILABLE
from alerts.matching.engine import compile_watchlists
from alerts.matching.text_keys import (
    _CJK_SPACE_RE,
    WHITESPACE,
    _dehyphen,
    collapse_spaces,
    has_cjk,
    search_key,
)
from tests.support.markers import needs_hyperscan

BACKENDS = [pytest.param("hyperscan", marks=needs_hyperscan), "aho"]


@pytest.fixture(autouse=True, scope="module", params=BACKENDS)
def matching_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Makes `compile_watchlists()` use one backend for the tests of a module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(matching, "DEFAULT_BACKEND", request.param)
        yield request.param


def test_the_default_backend_is_the_one_asked_for(matching_backend: str) -> None:
    assert compile_watchlists([Watchlist("w", (Term("x"),))]).backend == matching_backend
    assert compile_watchlists([]).backend == ""


@needs_hyperscan
def test_auto_prefers_hyperscan() -> None:
    assert compile_watchlists([Watchlist("w", (Term("x"),))], backend="auto").backend == (
        "hyperscan"
    )


def test_without_hyperscan_auto_falls_back_and_asking_for_it_is_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on a platform with no Hyperscan wheel (simulated: the flag the import sets)."""
    import alerts.matching.backends

    monkeypatch.setattr(alerts.matching.backends, "HYPERSCAN_AVAILABLE", False)
    wl = [Watchlist("w", (Term("x"),))]
    assert compile_watchlists(wl, backend="auto").backend == "aho"
    with pytest.raises(AlertError, match="not installed"):
        compile_watchlists(wl, backend="hyperscan")


def _spans(terms: list[str], text: str) -> list[tuple[str, str, int, int]]:
    matcher = compile_watchlists([Watchlist("w", tuple(Term(t) for t in terms))])
    return [
        (h.rule, h.spelling, h.start, h.end)
        for m in matcher.match(Document(title="", body=text))
        for h in m.hits
    ]


def test_a_report_may_stand_for_a_plural_ending_and_overlaps() -> None:
    # Hyperscan reports "ss" + "s" + " " once; the key occurrences are [0:2] and [1:3].
    hits = [("ss", "ss", 0, 3), ("ss", "ss", 4, 6), ("ss", "ss", 7, 11)]
    assert _spans(["ss"], "sss ss sses") == hits
    assert _spans(["bus", "buses"], "two buses") == [
        ("bus", "bus", 4, 9),
        ("buses", "buses", 4, 9),
    ]


def test_context_bytes_never_hide_a_hit() -> None:
    # Greek, accented Latin and CJK neighbours reach the Python check; field edges count.
    text = "αsam sam× ésam sam系统 ×sam sam"
    assert [s[2:] for s in _spans(["sam"], text)] == [(5, 8), (15, 18), (22, 25), (26, 29)]


def test_one_matcher_in_many_threads() -> None:
    wl = Watchlist("w", (Term("Pantsir"), Term("판치르"), Query("SAM NEAR/2 Syria")))
    matcher = compile_watchlists([wl])
    doc = Document(title="Pantsir", body="판치르를 SAM in Syria " * 200)
    expected = matcher.match(doc)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: matcher.match(doc), range(40)))
    assert all(r == expected for r in results)


LATIN = st.text(alphabet="aeims", min_size=1, max_size=4)
CYRILLIC = st.text(alphabet="аис", min_size=1, max_size=3)
HANGUL = st.text(alphabet="판치르", min_size=1, max_size=3)
TERM = st.one_of(LATIN, CYRILLIC, HANGUL, LATIN.map(str.upper), LATIN.map(lambda s: s + "*"))
PIECE = st.one_of(TERM, st.sampled_from([" ", "-", "\n", "é", "α", "系", "'", ".", "  ", "×"]))


@given(
    terms=st.lists(TERM, min_size=1, max_size=6),
    text=st.lists(PIECE, max_size=25).map("".join),
)
def test_both_backends_give_the_same_matches(terms: list[str], text: str) -> None:
    """Hyperscan may skip only what the boundary rules reject: same hits as pyahocorasick."""
    watchlists = [
        Watchlist("terms", tuple(Term(t) for t in terms)),
        Watchlist("query", (Query(" OR ".join(f'"{t}"' for t in terms)),)),
    ]
    doc = Document(title=text[:7], body=text)
    got = {
        name: compile_watchlists(watchlists, backend=name).match(doc)
        for name in ("hyperscan", "aho")
        if name == "aho" or HYPERSCAN_AVAILABLE
    }
    assert got.get("hyperscan", got["aho"]) == got["aho"]


@given(st.text(alphabet=" \t\n\r\x85\u3000\u2028abc-가", max_size=40))
def test_collapse_spaces_is_split_and_join(text: str) -> None:
    assert collapse_spaces(text) == " ".join(text.split())


_KEY_WORDS = [
    "ab",
    "SAM",
    "1",
    "&",
    "’x’",
    "가나",
    "판치르를",
    "中",
    "导弹。",
    "。",
    "ア",
    "-",
    "\n",
]


@given(
    st.one_of(
        st.lists(st.sampled_from(_KEY_WORDS), max_size=120).map(" ".join),
        st.lists(st.sampled_from([*_KEY_WORDS, " ", "  "]), max_size=80).map("".join),
        st.text(alphabet=" \t\n-ab1.가中ア。\u3000", max_size=60),
    )
)
def test_search_key_drops_the_spaces_the_cjk_rule_drops(text: str) -> None:
    """search_key's split at kept spaces (few: CJK text) or substitution
    (many) gives the key of the plain rule: collapse, then drop every space
    next to a CJK character."""
    key = collapse_spaces(_dehyphen(text))
    expected = _CJK_SPACE_RE.sub("", key) if has_cjk(key) else key
    assert search_key(text) == expected


def test_whitespace_list_is_what_str_split_knows() -> None:
    import sys

    every = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    assert set(WHITESPACE) | {" "} == every
