"""The fast normalisation helpers give exactly what their plain regex forms gave."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from crawler import normalize
from crawler.normalize import collapse_whitespace, count_chars

_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")
WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u2029\u202f\u3000"


def reference_collapse(text: str) -> str:
    """collapse_whitespace as it was written before it was made fast."""
    text = text.replace("\x00", "")
    text = _SPACES.sub(" ", text.replace("\r", "\n").replace("\xa0", " "))
    return _NEWLINES.sub("\n", text).strip()


@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from([*WHITESPACE, "a", "b", "\x00", "\u200b", "한"])))
def test_collapse_whitespace_equals_the_regex_form_on_whitespace_soup(text: str) -> None:
    assert collapse_whitespace(text) == reference_collapse(text)


@settings(max_examples=300)
@given(st.text())
def test_collapse_whitespace_equals_the_regex_form_on_any_text(text: str) -> None:
    assert collapse_whitespace(text) == reference_collapse(text)


SCRIPTS = {
    "hangul": r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]",
    "kana": r"[\u3040-\u30ff\u31f0-\u31ff]",
    "han": r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]",
    "cyrillic": r"[\u0400-\u04ff]",
}
MIXED = st.text(
    alphabet=st.sampled_from(
        list("abc XYZ 123_.,;²½Ⅻ\n\t") + list("한국어カナ漢字Жжё") + ["\u00e9"]
    )
)


@settings(max_examples=400)
@given(st.one_of(MIXED, st.text()))
def test_script_counts_equal_counting_single_characters(text: str) -> None:
    for name, single in SCRIPTS.items():
        runs = getattr(normalize, f"_{name.upper()}")
        assert count_chars(runs, text) == len(re.findall(single, text)), name
    letters = len(text) - count_chars(normalize._NOT_LETTER, text)
    assert letters == len(re.findall(r"[^\W\d_]", text))
