"""Property tests (Hypothesis) for the matching rules."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.alert_records import Document, Term, Watchlist
from alerts.matching.engine import compile_watchlists, normalize_text
from tests.unit.test_matching_backends import matching_backend  # noqa: F401 (autouse)

settings.register_profile("matching", max_examples=60, deadline=None)
settings.load_profile("matching")

LATIN_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=8)
CYRILLIC_WORD = st.text(alphabet="абвгдежзиклмнопрстуфхцчшщыэюя", min_size=3, max_size=8)
HANGUL_WORD = st.text(
    alphabet=st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3), min_size=2, max_size=4
)
WORD = st.one_of(LATIN_WORD, CYRILLIC_WORD)
# Arbitrary text, including CJK, punctuation, whitespace and full-width forms.
TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Co", "Cn")), max_size=60
)
BOUNDARY = st.sampled_from([" ", "\n", ", ", ". ", " (", ") ", '"', " — ", "을 ", "系统"])


def _found(terms: list[str], text: str) -> set[str]:
    matcher = compile_watchlists([Watchlist("w", tuple(Term(t) for t in terms))])
    return {t for m in matcher.match(Document(title="", body=text)) for t in m.terms}


def _boundary_safe(text: str, edge: str) -> str:
    """`text` made to end (edge='end') or start (edge='start') with a non-word char."""
    return text + " " if edge == "end" else " " + text


@given(term=WORD, before=TEXT, after=TEXT, left=BOUNDARY, right=BOUNDARY)
def test_term_at_word_boundaries_is_found(
    term: str, before: str, after: str, left: str, right: str
) -> None:
    text = _boundary_safe(before, "end") + left + term + right + _boundary_safe(after, "start")
    assert _found([term], text) == {term}


@given(term=WORD, prefix=LATIN_WORD, suffix=st.sampled_from(["x", "ed", "ing", "uel", "a"]))
def test_term_inside_a_longer_word_is_not_found(term: str, prefix: str, suffix: str) -> None:
    assert _found([term], f"the {prefix}{term} and {term}{suffix} too") == set()


@given(term=HANGUL_WORD, before=HANGUL_WORD, after=HANGUL_WORD)
def test_hangul_term_is_found_inside_words_whatever_the_spacing(
    term: str, before: str, after: str
) -> None:
    spaced = " ".join(term)
    assert _found([term], before + spaced + after) == {term}


@given(
    terms=st.lists(st.one_of(WORD, HANGUL_WORD), min_size=2, max_size=6, unique=True),
    text=st.lists(st.one_of(WORD, HANGUL_WORD, BOUNDARY), max_size=30),
    data=st.data(),
)
def test_results_do_not_depend_on_term_order(
    terms: list[str], text: list[str], data: st.DataObject
) -> None:
    body = " ".join(text + terms[:2])
    shuffled = data.draw(st.permutations(terms))
    assert _found(terms, body) == _found(list(shuffled), body)


@given(term=WORD, text=st.lists(st.one_of(WORD, BOUNDARY), max_size=20))
def test_lower_case_terms_ignore_case(term: str, text: list[str]) -> None:
    body = " ".join([*text, term.upper(), *text])
    assert _found([term], body) == {term}
    assert _found([term], body.lower()) == {term}


@given(term=st.text(alphabet="ABCDEFGHJKLMNPRSTUVWXYZ", min_size=2, max_size=5))
def test_capital_terms_are_case_sensitive(term: str) -> None:
    assert _found([term], f"about {term} today") == {term}
    assert _found([term], f"about {term.lower()} today") == set()


@given(term=LATIN_WORD, text=st.lists(st.one_of(WORD, BOUNDARY), max_size=20))
def test_full_width_text_matches_like_ascii(term: str, text: list[str]) -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in term)
    body = " ".join([*text, full_width, *text])
    assert normalize_text(full_width) == term
    assert _found([term], body) == {term}
    assert _found([full_width], " ".join([*text, term])) == {full_width}


@given(text=TEXT)
def test_offsets_point_at_the_normalised_text(text: str) -> None:
    matcher = compile_watchlists([Watchlist("w", (Term("target phrase"), Term("标靶")))])
    body = text + " target-phrase 标 靶 " + text
    (match,) = matcher.match(Document(title="", body=body))
    normalised = normalize_text(body)
    spans = {normalised[h.start : h.end].replace("-", " ").replace(" ", "") for h in match.hits}
    assert spans <= {"targetphrase", "标靶"}
    assert spans


SENTENCE = st.lists(LATIN_WORD, min_size=1, max_size=12).map(" ".join)
PASSAGE = st.lists(
    st.one_of(SENTENCE, SENTENCE.map(lambda s: s + " Pantsir " + s)), min_size=1, max_size=8
).map(lambda sentences: ". ".join(sentences) + ".")


def _passage(snippet: str) -> str:
    return " ".join(snippet.strip("…").split()).casefold()


@given(
    summary=PASSAGE,
    before=st.one_of(st.just(""), PASSAGE),
    after=st.one_of(st.just(""), PASSAGE),
    title=st.one_of(st.just(""), PASSAGE),
)
def test_no_two_snippets_of_a_match_share_a_passage(
    summary: str, before: str, after: str, title: str
) -> None:
    """Feeds repeat the summary in the body (issue #17, part 2): whatever
    surrounds the repeat, no snippet is, or lies inside, another."""
    body = " ".join(x for x in (before, summary, after) if x)
    matcher = compile_watchlists([Watchlist("w", (Term("Pantsir"),))])
    for m in matcher.match(Document(title=title, summary=summary, body=body)):
        cores = [_passage(s) for s in m.snippets]
        assert m.snippets
        for i, a in enumerate(cores):
            for b in cores[i + 1 :]:
                assert a not in b and b not in a, m.snippets


def test_summary_repeated_in_the_body_is_shown_once() -> None:
    text = "Officials said a Pantsir battery moved north overnight."
    matcher = compile_watchlists([Watchlist("w", (Term("Pantsir"),))])
    (m,) = matcher.match(Document(title="", summary=text, body=text))
    assert m.snippets == (text,)
