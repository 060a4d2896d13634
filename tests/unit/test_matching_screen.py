"""The screen before matching (alerts.matching.screen): it may only say "no"
where no field's search key holds any key, and it must say "no" often enough
to be worth its scan."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.alert_records import Document, Term, Watchlist
from alerts.matching.backends import AhoBackend, spelling_key
from alerts.matching.engine import compile_watchlists
from alerts.matching.screen import MAX_SCREEN_KEYS, Screen, folds_to, screen_for
from alerts.matching.text_keys import FieldText, fold_case
from tests.support.markers import needs_hyperscan

pytestmark = needs_hyperscan


def test_every_character_is_in_the_class_of_what_it_folds_to() -> None:
    """Over all of Unicode: the LOWER_EXCEPTIONS table is complete for this Python."""
    missing = []
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        folded = fold_case(c)
        if len(folded) == 1 and folded != c and c not in folds_to(folded):
            missing.append(f"U+{cp:04X}")
    assert missing == []
    # Σ lower-cases to σ or, at a word's end, ς: it is in both classes.
    assert "Σ" in folds_to("σ") and "Σ" in folds_to("ς")


# Alphabets rich in what the key transformation folds: case (with the Unicode
# exceptions), NFKC compatibility forms, separators of every kind, invisible
# characters, and CJK next to separators.
LETTERS = "aiksAIKSİıKΣσςθϴßẞåÅÅпаПАсС판치르系统ＳＡｍﬁ1４"
SEPARATORS = [" ", "  ", "\t", "\n", "\x85", "\u1680", "\u2028", "\u2029", "\u00a0", "\u3000"]
SEPARATORS += ["-", "\u2010", "\u2011", "\u00ad", "\u200b", "\ufeff", "\u0301", ".", "'"]
TERM = st.text(alphabet=LETTERS, min_size=1, max_size=4).flatmap(
    lambda w: st.one_of(st.just(w), st.sampled_from(SEPARATORS).map(lambda s: w[:1] + s + w[1:]))
)
PIECE = st.one_of(st.text(alphabet=LETTERS, min_size=1, max_size=4), st.sampled_from(SEPARATORS))


def _keys(terms: list[str]) -> list[bytes]:
    keys = []
    for t in terms:
        try:
            keys.append(spelling_key(t, None)[0].encode())
        except Exception:  # a spelling with no search key: the parser refuses it too
            continue
    return keys


def _written(data: st.DataObject, term: str) -> str:
    """`term` as a text might hold it: each character as any of LETTERS that
    folds alike (found by fold_case itself, not by the screen's classes), with
    separators (possibly invisible ones) drawn between them."""
    out = []
    for ch in term:
        alike = [c for c in LETTERS if fold_case(c) == fold_case(ch)]
        out.append(data.draw(st.sampled_from(alike or [ch])))
        out.append(data.draw(st.sampled_from(["", "", *SEPARATORS])))
    return "".join(out)


@settings(max_examples=400, deadline=None)  # two Hyperscan compiles an example
@given(terms=st.lists(TERM, min_size=1, max_size=5), data=st.data())
def test_the_screen_passes_every_text_whose_keys_hold_a_key(
    terms: list[str], data: st.DataObject
) -> None:
    """Stronger than the Matcher's results: any occurrence of any key in any
    field's search key (pyahocorasick reports them all, boundaries unchecked).
    The fields hold the terms written otherwise among random pieces."""
    keys = _keys(terms)
    if not keys:
        return
    written = st.sampled_from(terms).map(lambda t: _written(data, t))
    piece = st.one_of(PIECE, written)
    fields = [data.draw(st.lists(piece, max_size=8).map("".join)) for _ in range(3)]
    aho = AhoBackend({k: () for k in keys})
    found = any(
        aho.candidates(ft.key_ci, ft.data) for ft in (FieldText("body", text) for text in fields)
    )
    screens = [screen_for(keys), Screen([k.decode() for k in keys], prefix=2)]
    if found:  # whole keys, and keys cut to two characters (a long term's prefix)
        assert all(screen is not None and screen.may_match(fields) for screen in screens)


@pytest.mark.parametrize(
    "text",
    [
        "PANTSIR systems",
        "a pantsir",
        "ＰＡＮＴＳＩＲ",  # fullwidth, NFKC
        "Pant\u00adsir",  # soft hyphen
        "Панцирь-С1",
        "ПАНЦИРЬ",
        "지대공 미사일",  # the key has no space: CJK drops it
        "지대공\n\u2028미사일",
        "surface-to-air\u2010missile",
        "surface\u2028to\x85air\u1680missile",
        "surface \u00a0 to air missile",
        "s-400",
        "İSAM",
    ],
)
def test_spellings_written_otherwise_pass(text: str) -> None:
    keys = _keys(["Pantsir", "Панцирь", "지대공 미사일", "surface-to-air missile", "S-400", "sam"])
    screen = screen_for(keys)
    assert screen is not None and screen.may_match(["", text, ""])


@pytest.mark.parametrize(
    "text",
    [
        "Pant sir",  # a space inside a Latin word: not the key
        "Панцир",
        "지대공",
        "surface to air",
        "s 4 0 0",
        "nothing here at all",
        "",
        "ничего",
        "아무것도",
        "什么都没有",
    ],
)
def test_texts_without_any_key_are_screened_out(text: str) -> None:
    keys = _keys(["Pantsir", "Панцирь", "지대공 미사일", "surface-to-air missile", "S-400"])
    screen = screen_for(keys)
    assert screen is not None and not screen.may_match([text, text, text])


def test_fields_are_screened_apart() -> None:
    screen = screen_for(_keys(["north korea"]))
    assert screen is not None
    assert not screen.may_match(["north", "korea", ""])
    assert screen.may_match(["", "", "North\nKorea"])


def test_a_lone_surrogate_is_passed_to_the_matcher() -> None:
    screen = screen_for(_keys(["x"]))
    assert screen is not None and screen.may_match(["\ud800", "", ""])


def test_the_screen_compiles_on_its_first_item_only() -> None:
    matcher = compile_watchlists([Watchlist("w", (Term("Pantsir"),))], backend="hyperscan")
    screen = matcher._backend._screen  # type: ignore[union-attr]
    assert isinstance(screen, Screen)
    assert screen._db is None  # loading watchlists compiles no screen
    assert matcher.match(Document(title="nothing")) == []
    assert screen._db is not None
    assert [m.watchlist for m in matcher.match(Document(title="a Pantsir"))] == ["w"]


def test_no_screen_past_its_key_limit() -> None:
    assert screen_for([f"k{n}".encode() for n in range(MAX_SCREEN_KEYS)]) is not None
    assert screen_for([f"k{n}".encode() for n in range(MAX_SCREEN_KEYS + 1)]) is None
    assert screen_for([]) is None


@pytest.mark.parametrize(
    "term",
    [
        "가나다라마바사" * 42,  # 294 characters: whole, Hyperscan refused the pattern
        "surface to air " * 20,
        "панцирь-" * 37,
        "地对空导弹 " * 50,
    ],
)
def test_the_longest_terms_a_watchlist_may_hold_still_match(term: str) -> None:
    term = term.strip()[:300].strip(" -")
    matcher = compile_watchlists([Watchlist("w", (Term(term),))], backend="hyperscan")
    assert [m.watchlist for m in matcher.match(Document(title="x", body=f"({term})"))] == ["w"]
    assert matcher.match(Document(title="x", body=term[: len(term) // 2])) == []


def test_a_screen_hyperscan_refuses_passes_everything(caplog: pytest.LogCaptureFixture) -> None:
    screen = Screen(["x" * 5000], prefix=10_000)  # a whole 5,000-character pattern
    # at the logger's own level: an earlier CLI test may have left the root at ERROR
    with caplog.at_level("WARNING", logger="alerts.matching.screen"):
        assert screen.may_match(["nothing", "at", "all"])
        assert screen.may_match(["again"])
    assert [r.getMessage() for r in caplog.records].count(
        "matching screen status=off error='Pattern length exceeds limit.'"
    ) == 1
