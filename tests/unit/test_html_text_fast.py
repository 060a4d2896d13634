"""The printable-line shortcuts of html_to_text and collapse_whitespace give
exactly what the full scans gave, on hostile input too.

`html_to_text` skips its control-character removal and the fast path's
special-character scan when every line is `str.isprintable()`;
`collapse_whitespace` keeps a printable line with single inner spaces as it
is. Both rest on facts about Unicode that the first test checks for every
code point of this Python's Unicode database, and the properties compare
the new functions with the old code (kept here) and with lxml's tree.
"""

from __future__ import annotations

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler import normalize, simple_html
from crawler.normalize import collapse_whitespace, html_to_text, tree_text
from crawler.simple_html import simple_text

_MARKUP_HINT = re.compile(r"[<&]")
_SPECIAL = simple_html._SPECIAL


def old_collapse(text: str) -> str:
    """collapse_whitespace before the printable-line shortcut."""
    lines = normalize.storable(text).replace("\r", "\n").split("\n")
    return "\n".join(filter(None, (" ".join(line.split()) for line in lines)))


def old_html_to_text(html: str) -> str:
    """html_to_text before the printable-line shortcut: both regex scans, always."""
    cleaned = normalize._CONTROL.sub("", html)
    if not _MARKUP_HINT.search(cleaned):
        return old_collapse(cleaned)
    if _SPECIAL.search(cleaned) is None:
        simple = simple_text(cleaned, printable=True)  # the scan was done just above
        if simple is not None:
            return old_collapse(simple)
    return tree_text(cleaned)


def lxml_text(html: str) -> str:
    """The full, hostile-safe path for anything with markup: lxml's tree."""
    cleaned = normalize._CONTROL.sub("", html)
    if not _MARKUP_HINT.search(cleaned):
        return old_collapse(cleaned)
    return tree_text(cleaned)


def test_printable_means_no_control_special_or_split_whitespace() -> None:
    """Every code point: printable implies none of what the skipped scans look for."""
    wrong = [
        hex(c)
        for c in range(0x110000)
        if chr(c).isprintable()
        and (
            (chr(c).isspace() and c != 0x20)
            or normalize._CONTROL.match(chr(c))
            or _SPECIAL.match(chr(c))
            or normalize._UNSTORABLE.match(chr(c))
        )
    ]
    assert wrong == []


HOSTILE = [
    *"ab Жя한字 .,;!-'\"=/",
    *["\t", "\n", "\r", "\r\n", "  ", "\x0b", "\x0c", "\x1c", "\x85", "\xa0", "\u3000", "\u2028"],
    *["\x00", "\x01", "\x08", "\x1b", "\x7f", "\x80", "\x9f", "\ud800", "\udfff", "\ufeff"],
    *["\u202e", "\u202d", "\u2066", "\u2069", "\u200b", "\u200f", "\ufdd0", "\uffff", "\ue000"],
    *["\U0001f600", "\U000e0001", "\U0010ffff", "\u0301", "\u0627"],
    *["&amp;", "&lt;", "&#8217;", "&#x202e;", "&#0;", "&#8;", "&#x1b;", "&nbsp;", "&", "&copy"],
    *["&#xD800;", "&#150;", "&bogus;", "AT&T", "&#", "&#x;"],
    *["<p>", "</p>", "<b>", "</b>", "<div>", "</div>", "<ul><li>", "</li></ul>", "<br>", "<br/>"],
    *["<a href='/x'>", "</a>", "<script>", "</script>", "<style>", "</style>", "<img src=x>"],
    *["<![CDATA[", "]]>", "<!-- c -->", "<!--", "<?pi x?>", "<!DOCTYPE html>", "<", ">"],
    *["<table><tr><td>", "</td></tr></table>", "<pre>", "</pre>", "<p dir=rtl>", "<bdo dir=rtl>"],
]
TEXT = st.lists(st.sampled_from(HOSTILE), max_size=40).map("".join)
NESTED = st.integers(1, 200).map(lambda n: "<div><b>" * n + "x &amp; y" + "</b></div>" * n)
HUGE = st.tuples(st.sampled_from(HOSTILE), st.integers(1_000, 60_000)).map(lambda p: p[0] * p[1])
SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


SPACED = st.lists(st.sampled_from(["a", "Ж", " ", "  ", "\n", "\t", "\xa0", "\x00"])).map("".join)


@SETTINGS
@given(st.one_of(SPACED, TEXT, st.text()))
def test_collapse_whitespace_equals_the_old_code(text: str) -> None:
    assert collapse_whitespace(text) == old_collapse(text)


@SETTINGS
@given(st.one_of(TEXT, st.text(), NESTED))
def test_html_to_text_equals_the_old_code(html: str) -> None:
    assert html_to_text(html) == old_html_to_text(html)


@SETTINGS
@given(st.one_of(TEXT, NESTED))
def test_html_to_text_equals_the_lxml_tree(html: str) -> None:
    assert html_to_text(html) == lxml_text(html)


@settings(max_examples=40, deadline=None)
@given(st.one_of(HUGE, st.lists(TEXT, min_size=1, max_size=5).map(lambda xs: "".join(xs) * 2_000)))
def test_huge_inputs_equal_the_old_code(html: str) -> None:
    assert html_to_text(html) == old_html_to_text(html)
    assert collapse_whitespace(html) == old_collapse(html)


def test_the_shortcut_is_taken_on_plain_feed_markup() -> None:
    html = "<p>The ministry said &amp; more.</p>\n<p>Second <b>bold</b> line.</p>"
    assert all(map(str.isprintable, html.split("\n")))
    assert html_to_text(html) == "The ministry said & more.\nSecond bold line."


def test_noncharacters_in_blocks_are_dropped_never_raised() -> None:
    """U+FFFE/U+FFFF in block text made lxml's setter raise ValueError (and the
    whole feed fail); they are dropped there now. Elsewhere they stay as before."""
    assert html_to_text("<p>a\ufffeb</p>") == "ab"
    assert html_to_text("<p>a</p>\uffff") == "a"
    assert html_to_text("<p>a&#xffff;b</p>") == "ab"
    assert html_to_text("<b>\uffff</b>") == "\uffff"
