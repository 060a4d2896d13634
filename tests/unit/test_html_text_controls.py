"""html_to_text on character references that decode to control characters.

`&#8;` inside a block element made lxml raise ValueError (one such summary
failed its whole feed), and `&#x1b;` reached stored text as a raw ESC. Every
reference form (decimal, hex, upper/lower), in and out of block and inline
elements, must give text without C0/DEL controls and never raise.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from crawler.normalize import html_to_text

CONTROLS = [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]
FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def reference(code: int, form: str) -> str:
    return {"dec": f"&#{code};", "hex": f"&#x{code:x};", "HEX": f"&#X{code:X};"}[form]


fragments = st.builds(
    lambda code, form, tag, before, after: (
        f"{before}<{tag}>{reference(code, form)}{after}</{tag}>{reference(code, form)}"
        if tag
        else f"{before}{reference(code, form)}{after}"
    ),
    st.sampled_from(CONTROLS),
    st.sampled_from(["dec", "hex", "HEX"]),
    st.sampled_from(["", "p", "div", "b", "li", "h1", "span"]),
    st.text(alphabet="ab 판치르Панцирь", max_size=8),
    st.text(alphabet="xy 地对空", max_size=8),
)


@given(fragments)
def test_control_references_are_dropped_never_raised(fragment: str) -> None:
    text = html_to_text(fragment)
    assert not FORBIDDEN.search(text), (fragment, text)


def test_known_payloads() -> None:
    assert html_to_text("a &#8; b") == "a b"
    assert html_to_text("<p>&#8;</p>") == ""
    assert html_to_text("<i>&#x1b;[31mred</i>") == "[31mred"
    assert html_to_text("<p>a&#127;b</p><div>&#12;c</div>") == "ab\nc"
