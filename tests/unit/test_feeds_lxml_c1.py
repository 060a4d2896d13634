"""feeds_lxml's C1 check (`has_c1`) equals the regex search it replaces."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.feeds_lxml import _CP1252_RANGE, _repair, has_c1

NEAR_C1 = st.text(
    alphabet=st.sampled_from(
        [
            *["a", " ", "\x7f", "\x80", "\x85", "\x9f", "\xa0", "é", "ÿ", "Ā", "Ж", "한"],
            *["\ud800", "😀"],
            *["Ã", "©", "Ð", "\x96", "Â"],  # UTF-8 read as Latin-1: "Ã©" is "é", "Ð\x96" is "Ж"
        ]
    )
)


@settings(max_examples=500)
@given(st.one_of(NEAR_C1, st.text()))
def test_has_c1_equals_the_regex_search(text: str) -> None:
    # fails if the byte class misses an end (0x80 or 0x9f) or takes 0x7f / 0xa0
    assert has_c1(text) == (_CP1252_RANGE.search(text) is not None)


def _old_repair(out: str) -> str:
    import contextlib

    from crawler.feeds_lxml import _cp1252

    if out.isascii():
        return out
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        out = out.encode("iso-8859-1").decode("utf-8")
    return out.translate(_cp1252) if _CP1252_RANGE.search(out) else out


@settings(max_examples=300)
@given(st.one_of(NEAR_C1, st.text()))
def test_repair_equals_the_regex_form(text: str) -> None:
    # _repair now tests Latin-1 by the length of an "ignore" encoding instead of
    # catching UnicodeEncodeError; fails if a text outside Latin-1 is decoded
    # from its Latin-1 part
    assert _repair(text) == _old_repair(text)
    mojibake = text.encode("utf-8", "surrogatepass").decode("iso-8859-1")
    assert _repair(mojibake) == _old_repair(mojibake)
