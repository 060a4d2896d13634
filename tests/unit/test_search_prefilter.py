"""The search prefilter is sound: whenever the matcher accepts a document for
a query, the document's index terms satisfy the query's index condition.

Documents and queries are drawn from one vocabulary in four languages
(English, Russian, Korean, Chinese) with case, width, hyphen, spacing,
plural, particle and invisible-character variants, so that matches are
frequent; the integration test (tests/integration/test_search_index.py)
checks the same on stored items through SQLite FTS5 and PostgreSQL.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import AlertError
from alerts.alert_records import Document, Query, Watchlist
from alerts.matching.engine import compile_watchlists
from alerts.matching.prefilter import (
    AllOf,
    AnyOf,
    Token,
    document_terms,
    holds_on,
    query_condition,
)

BASE_WORDS = [
    "Pantsir",
    "pantsirs",
    "SAM",
    "sams",
    "F-35",
    "F\u201135s",
    "Korea",
    "Korea's",
    "north",
    "defence",
    "air_defence",
    "Панцирь",
    "панциря",
    "ПАНЦИРЬ",
    "оборона",
    "οδός",
    "ΟΔΟΣ",
    "방공",
    "방공망",
    "판치르를",
    "판 치르",
    "북한",
    "미사일",
    "防空",
    "地对空导弹",
    "导 弹",
    "系统",
    "中",
    "ｼｽﾃﾑ",
    "€5",
    "İstanbul",
]
FULLWIDTH = {
    c: chr(ord(c) + 0xFEE0)
    for c in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
}


def _variant(word: str, how: str) -> str:
    if how == "upper":
        return word.upper()
    if how == "lower":
        return word.lower()
    if how == "title":
        return word.title()
    if how == "wide":
        return "".join(FULLWIDTH.get(c, c) for c in word)
    if how == "shy" and len(word) > 2:
        return word[:2] + "\u00ad" + word[2:]
    if how == "spaced" and len(word) > 2:
        return word[:1] + " " + word[1:]
    return word


VARIANT = st.sampled_from(["same", "upper", "lower", "title", "wide", "shy", "spaced", "same"])
WORD = st.builds(_variant, st.sampled_from(BASE_WORDS), VARIANT)
SEP = st.sampled_from(
    [" ", " ", "\n", "-", ", ", "을 ", "를", "的", "s ", "es ", "'s ", " (", ") "]
)
NOISE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Co", "Cn")), max_size=8
)


@st.composite
def field_text(draw: st.DrawFn) -> str:
    parts: list[str] = []
    for _ in range(draw(st.integers(0, 12))):
        parts.append(draw(st.one_of(WORD, WORD, WORD, NOISE)))
        parts.append(draw(SEP))
    return "".join(parts)


DOCUMENT = st.tuples(field_text(), field_text(), field_text())


def _atom(word: str, star: bool) -> str:
    word = word.replace('"', "")
    if any(ch.isspace() for ch in word):
        return f'"{word}"'
    return word + "*" if star and word[-1:].isalnum() else word


ATOM = st.builds(_atom, WORD, st.booleans())
PHRASE = st.builds(lambda a, b: f'"{a} {b}"', WORD, WORD)
POSITIONAL = st.one_of(ATOM, PHRASE, st.builds(lambda a, b: f"({a} OR {b})", ATOM, ATOM))


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"({a} OR {b})", children, children),
        st.builds(lambda a, b: f"{a} {b}", children, children),
        st.builds(lambda a, b: f"{a} AND NOT {b}", children, children),
        st.builds(lambda a, n, b: f"{a} NEAR/{n} {b}", POSITIONAL, st.integers(0, 4), POSITIONAL),
    )


QUERY = st.recursive(st.one_of(ATOM, PHRASE), _combine, max_leaves=5)


def _matches(query: str, fields: tuple[str, str, str]) -> bool | None:
    try:
        matcher = compile_watchlists([Watchlist("q", (Query(query),))], "aho")
    except AlertError:
        return None
    title, summary, body = fields
    return bool(matcher.match(Document(title=title, summary=summary, body=body)))


@settings(max_examples=600, deadline=None)
@given(query=QUERY, fields=DOCUMENT)
def test_every_match_satisfies_the_index_condition(
    query: str, fields: tuple[str, str, str]
) -> None:
    matched = _matches(query, fields)
    if not matched:
        return
    condition = query_condition(query)
    if condition is None:
        return
    assert holds_on(condition, frozenset(document_terms(fields))), (condition, fields)


@settings(max_examples=300, deadline=None)
@given(word=WORD, cut=st.integers(0, 4), before=SEP, after=SEP, filler=field_text())
def test_a_word_in_a_document_satisfies_its_condition(
    word: str, cut: int, before: str, after: str, filler: str
) -> None:
    """The same, with the document built to contain the query word, or a
    `*` prefix of it when `cut` > 0 (many matches)."""
    query = _atom(word, star=False) if not cut else _atom(word[: max(1, len(word) - cut)], True)
    fields = ("", filler, filler + before + word + after)
    if not _matches(query, fields):
        return  # a separator glued to the word ("Панцирьs") may rightly prevent a match
    condition = query_condition(query)
    if condition is not None:
        assert holds_on(condition, frozenset(document_terms(fields)))


def test_korean_two_syllable_word_is_one_bigram() -> None:
    assert query_condition("방공") == Token("방공")
    assert "방공" in document_terms(("", "", "북한의 방공망을 두고"))


def test_spacing_inside_hangul_is_folded_on_both_sides() -> None:
    assert query_condition('"판 치르"') == AllOf((Token("판치"), Token("치르")))
    assert {"판치", "치르"} <= set(document_terms(("판치 르를", "", "")))


def test_word_rules_become_token_lookups() -> None:
    plural = AnyOf((Token("pantsir"), Token("pantsirs"), Token("pantsires")))
    assert query_condition("Pantsir") == plural
    assert query_condition("Панцир*") == Token("панцир", prefix=True)
    assert query_condition("Pantsir AND NOT Syria") == plural
    assert query_condition("(Pantsir OR 방공) NEAR/3 Ｓｙｒｉａ") == AllOf(
        (
            AnyOf((*plural.operands, Token("방공"))),
            AnyOf((Token("syria"), Token("syrias"), Token("syriaes"))),
        )
    )


def test_queries_the_index_cannot_narrow_are_scanned() -> None:
    assert query_condition("中") is None  # one Han character: no bigram
    assert query_condition("中 OR Pantsir") is None
    assert query_condition("€") is None
    assert query_condition("中 Pantsir") is not None  # the AND keeps Pantsir


def test_long_tokens_are_cut_on_both_sides() -> None:
    word = "x" * 100
    assert query_condition(word + "*") == Token("x" * 64)
    assert sorted(document_terms(("", "", f"a {word}s b"))) == ["a", "b", "x" * 64]
