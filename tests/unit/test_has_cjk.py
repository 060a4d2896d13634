"""`has_cjk`'s high-byte test decides exactly what the CJK regex decides."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.matching import text_keys
from alerts.matching.text_keys import CJK_CLASS, has_cjk

REGEX = re.compile(f"[{CJK_CLASS}]")


def regex_has_cjk(s: str) -> bool:
    """has_cjk as it was: the class searched over the whole text."""
    return REGEX.search(s) is not None


def _edges() -> list[str]:
    """Every character at or next to an end of a range of CJK_CLASS, and the
    first and last of each 256-unit row they sit in (where a row's high byte
    changes)."""
    points: set[int] = set()
    for lo, hi in re.findall(r"(.)-(.)", CJK_CLASS):
        for cp in (ord(lo), ord(hi)):
            points.update({cp - 1, cp, cp + 1, cp & ~0xFF, cp | 0xFF, (cp & ~0xFF) - 1})
    return [chr(cp) for cp in sorted(points) if 0 <= cp <= 0x10FFFF]


EDGES = _edges()


def test_every_character_is_judged_as_the_regex_judges_it() -> None:
    """Each code point alone, and each 256-unit row of them after a Latin head
    longer than the part the regex searches first (so the high bytes decide)."""
    head = "x" * (text_keys._CJK_HEAD + 1)
    for row in range(0, 0x110000, 0x100):
        chars = "".join(map(chr, range(row, row + 0x100)))
        assert has_cjk(head + chars) == regex_has_cjk(chars), hex(row)
        for ch in chars:
            assert has_cjk(head + ch) == regex_has_cjk(ch), hex(ord(ch))


LATIN_CYRILLIC = "abc XYZ 123 .,;«»–—“”…€Жжё\n\t\u00e9\u0301\u200b"
TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(EDGES),
        st.sampled_from(list(LATIN_CYRILLIC)),
        st.characters(blacklist_categories=()),  # surrogates and astral characters too
    )
)


@settings(max_examples=600)
@given(TEXT)
def test_has_cjk_equals_the_regex_on_any_text(text: str) -> None:
    assert has_cjk(text) == regex_has_cjk(text)


@settings(max_examples=400)
@given(
    st.text(alphabet=st.sampled_from(list(LATIN_CYRILLIC)), min_size=0, max_size=200),
    st.one_of(st.sampled_from(EDGES), st.just("")),
    st.text(alphabet=st.sampled_from(list(LATIN_CYRILLIC)), max_size=50),
)
def test_one_cjk_character_anywhere_in_latin_or_cyrillic_text(
    before: str, middle: str, after: str
) -> None:
    """Bench-like text: Latin or Cyrillic with at most one character near a
    CJK range, before, at or after the first _CJK_HEAD characters."""
    text = before + middle + after
    assert has_cjk(text) == regex_has_cjk(text)


def test_lone_surrogates_do_not_raise() -> None:
    head = "x" * 100
    for text in (head + "\ud800", head + "\udfff", head + "\ud840\udc00", "\ud83d" + head):
        assert has_cjk(text) == regex_has_cjk(text)


def test_a_cjk_character_at_every_position() -> None:
    """Around the end of the part the regex searches first in particular."""
    for cjk in ("한", "漢", "カ", "\U00020000"):
        for at in range(3 * text_keys._CJK_HEAD):
            for pad in ("", "Ж" * 5):
                assert has_cjk("é" * at + cjk + pad), (cjk, at, pad)
                assert not has_cjk("é" * at + pad + "“”")
