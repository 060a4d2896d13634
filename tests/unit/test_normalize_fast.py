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


ANY_CHAR = st.text(alphabet=st.characters(blacklist_categories=()))  # surrogates too


@settings(max_examples=400)
@given(st.one_of(MIXED, ANY_CHAR))
def test_capped_and_code_unit_counts_equal_the_regex_counts(text: str) -> None:
    """detect_language's cheap counts: the CJK scripts' counts capped at
    MIN_CJK, and Cyrillic as UTF-16 code units with high byte 4."""
    for runs in (normalize._HANGUL, normalize._KANA, normalize._HAN):
        assert normalize._up_to_two(runs, text) == min(count_chars(runs, text), 2)
    assert normalize.count_cyrillic(text) == count_chars(normalize._CYRILLIC, text)


def exact_script(sample: str) -> str | None:
    """detect_language's script decision with exact counts (the code before the caps)."""
    hangul, kana, han = (
        count_chars(p, sample) for p in (normalize._HANGUL, normalize._KANA, normalize._HAN)
    )
    if hangul + kana + han >= 2:
        if hangul >= max(kana, han) / 2 and hangul >= 2:
            return "ko"
        if kana >= 2:
            return "ja"
        if han >= 2:
            return "zh"
    return None


# Scripts in every proportion: which one decides depends on exact counts only
# when two of them reach MIN_CJK.
CJK_MIX = st.lists(
    st.sampled_from(["한", "한국어", "カ", "カナカナ", "字", "漢字漢字", " ", "ab"]), max_size=40
).map("".join)


@settings(max_examples=600)
@given(CJK_MIX)
def test_detect_language_decides_scripts_as_with_exact_counts(text: str) -> None:
    expected = exact_script(text[: normalize.LANGUAGE_SAMPLE])
    if expected is not None:
        assert normalize.detect_language(text) == expected
    else:
        assert normalize.detect_language(text) not in ("ko", "ja", "zh")


# --- canonical_url: the common-shape fast path equals the general path --------

URL_PIECES = st.sampled_from(
    [*"aZ09-._~!$'()*+,;=:@/%?&#é \t", "utm_source", "FBCLID", "xn--", "/./", "/../", "%7e"]
)


@st.composite
def item_urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS", "Http", "ftp"]))
    labels = draw(
        st.lists(
            st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,8}", fullmatch=True), min_size=1, max_size=4
        )
    )
    host = ".".join(labels) + draw(st.sampled_from(["", "", ".", "-"]))
    port = draw(st.sampled_from(["", "", ":80", ":443", ":8080", ":0443", ":99999", ":"]))
    path = "".join(draw(st.lists(URL_PIECES, max_size=10)))
    query = "&".join(
        draw(
            st.lists(
                st.tuples(
                    st.sampled_from(["a", "b", "id", "utm_medium", "Gclid", "", "x.y", "k~"]),
                    st.sampled_from(["", "=", "=1", "=v-2", "=a=b", "=%20", "=x+y"]),
                ).map("".join),
                max_size=5,
            )
        )
    )
    tail = draw(st.sampled_from(["", "", "?", "#", "#frag", "#a b", "#\u00e9"]))
    q = f"?{query}" if query or draw(st.booleans()) else ""
    return f"{draw(st.sampled_from(['', ' ']))}{scheme}://{host}{port}/{path}{q}{tail}"


def _outcome(fn: object, *args: str) -> str:
    try:
        return str(fn(*args))  # type: ignore[operator]
    except ValueError as e:
        return f"ValueError: {type(e).__name__}"


@settings(max_examples=1500, deadline=None)
@given(item_urls())
def test_canonical_url_fast_path_equals_the_general_path(url: str) -> None:
    assert _outcome(normalize.canonical_url, url) == _outcome(normalize._canonical_url, url)


@settings(max_examples=1500, deadline=None)
@given(item_urls(), st.sampled_from(["https://feeds.example/rss", "http://127.0.0.1:8080/f/1"]))
def test_item_url_fast_path_equals_urljoin_then_canonical(link: str, base: str) -> None:
    from urllib.parse import urljoin, urlsplit

    from crawler.entries import _item_url

    try:
        absolute = urljoin(base, link.strip())
        slow = (
            normalize._canonical_url(absolute)
            if urlsplit(absolute).scheme in ("http", "https")
            else None
        )
    except ValueError:
        slow = None
    assert _item_url(base, link) == slow


@settings(max_examples=1500, deadline=None)
@given(st.from_regex(normalize._SIMPLE_URL, fullmatch=True), st.sampled_from(["", " ", "\n"]))
def test_canonical_url_fast_path_equals_the_general_path_on_its_own_shape(
    url: str, pad: str
) -> None:
    """URLs the fast path's pattern accepts (the other strategy mostly
    generates ones it declines): same answer as w3lib's path, or declined."""
    url = pad + url + pad
    general = _outcome(normalize._canonical_url, url)
    assert _outcome(normalize.canonical_url, url) == general
    from crawler.entries import _item_url

    expected = None if general.startswith("ValueError") else general
    assert _item_url("https://feeds.example/rss", url) == expected


def test_canonical_url_fast_path_takes_the_common_links() -> None:
    for url in (
        "https://site3.example/news/3/4?utm_source=rss&utm_medium=feed",
        "https://www.rand.org/pubs/RR123.html?id=7&b=2#comments",
        "HTTP://WWW.Example.COM:80/News/Story?utm_source=rss&id=5#c",
    ):
        assert normalize.simple_canonical_url(url) == normalize._canonical_url(url)


@settings(max_examples=800, deadline=None)
@given(st.text(), st.text(alphabet=st.sampled_from([*WHITESPACE, "a", "Ａ", "ﬁ", "한", "\u0301"])))
def test_collapsed_content_hash_equals_content_hash(a: str, b: str) -> None:
    title, text = collapse_whitespace(a), collapse_whitespace(b)
    assert normalize.collapsed_content_hash(title, text) == normalize.content_hash(title, text)
    assert normalize.collapsed_content_hash(text, "") == normalize.content_hash(text, "")
    assert normalize.collapsed_content_hash("", title) == normalize.content_hash("", title)


LINES = st.text(
    alphabet=st.sampled_from(
        [*WHITESPACE, "a", "<", "&", "é", "Ж", "한", "\x00", "\x1b", "\x85", "\ud800", "\ufeff"]
    )
)


@settings(max_examples=500)
@given(st.one_of(LINES, st.text()))
def test_lines_printable_equals_every_line_printable(text: str) -> None:
    # html_to_text's check; fails when line breaks count as unprintable (text.isprintable())
    assert normalize.lines_printable(text) == all(map(str.isprintable, text.split("\n")))


@settings(max_examples=300)
@given(st.lists(st.sampled_from(["", " ", "  ", "\n", "\r", "a b", " x ", "\xa0", "\x00"])))
def test_collapse_whitespace_drops_blank_lines_as_the_regex_form(pieces: list[str]) -> None:
    text = "".join(pieces)  # runs of empty and whitespace-only lines, skipped before the loop
    assert collapse_whitespace(text) == reference_collapse(text)


# Both code pages' letters and non-letters, what neither holds, and the
# characters whose class is easy to get wrong (², ª, µ, ƒ: letters to the
# regex; №, ½ in windows-1251's or -1252's upper half; C1, surrogates).
CODE_PAGE_EDGES = st.lists(
    st.sampled_from(
        [
            *"aZ _09.,-",
            *"ЖжЁёЂђЉљЎўЈјҐґЇїЄєІіѢѣӘәҚқ",
            *"éÿßŒœŠšŸƒªºµ²³¹½¼¾№«»—–…€™",
            *["\x80", "\x81", "\x98", "\x9f", "\xa0", "\xad", "\u0301", "\u0483"],
            *["\ud800", "\udfff", "\U0001f600", "한", "字", "ي", "\u2028"],
        ]
    ),
    max_size=80,
).map("".join)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(st.text(), CODE_PAGE_EDGES), st.booleans())
def test_count_letters_equals_the_regex_count(text: str, cyrillic: bool) -> None:
    expected = len(text) - count_chars(normalize._NOT_LETTER, text)
    assert normalize.count_letters(text, cyrillic) == expected


def test_count_letters_takes_the_code_pages_on_russian_and_french() -> None:
    """The byte path is taken (the regex is not asked) on the text it is for."""
    calls = []

    def counting(runs: re.Pattern[str], text: str) -> int:
        calls.append(text)
        return count_chars(runs, text)

    texts = ["Северная Корея — 12 ракет, «пуск» №3", "L'été à Paris: ½ des élèves, 3 €"]
    expected = [len(t) - count_chars(normalize._NOT_LETTER, t) for t in texts]
    original = normalize.count_chars
    normalize.count_chars = counting  # type: ignore[assignment]
    try:
        assert [normalize.count_letters(t, t[0] == "С") for t in texts] == expected
    finally:
        normalize.count_chars = original  # type: ignore[assignment]
    assert calls == []


def test_the_high_byte_marks_cover_every_cjk_character() -> None:
    """_by_script skips a script's scan when none of its marks is among the
    high bytes' marks: every character of each script (all of the BMP and
    the surrogates, checked one by one; others are surrogate pairs) has one
    of its script's marks, and only CJK characters have any mark."""
    for code in range(0x10000):
        char = chr(code)
        high = char.encode("utf-16-be", "surrogatepass")[::2]
        marks = high.translate(normalize._SCRIPT_OF_HIGH)
        for runs, may in normalize._CJK:
            if runs.match(char):
                assert any(m in marks for m in may), (hex(code), runs.pattern)
        if normalize._ANY_CJK.match(char) is None:
            continue
        assert marks != b".", hex(code)
    pair = "\U0001f600".encode("utf-16-be")[::2].translate(normalize._SCRIPT_OF_HIGH)
    assert pair == b".."
