"""crawler.normalize: canonical URLs, HTML to text, content hashes, language."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.normalize import canonical_url, content_hash, detect_language, html_to_text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "HTTP://WWW.Example.COM:80/News/Story?utm_source=rss&utm_medium=x&id=5#comments",
            "http://www.example.com/News/Story?id=5",
        ),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://ex.org/a?z=1&a=2&fbclid=F&gclid=G", "https://ex.org/a?a=2&z=1"),
        ("https://ex.org/a?mc_cid=1&mc_eid=2&yclid=3&_ga=4&ref_src=twsrc", "https://ex.org/a"),
        ("https://ex.org/a?b=&a=1", "https://ex.org/a?a=1&b="),
        ("https://Bücher.example/ä?q=ü", "https://xn--bcher-kva.example/%C3%A4?q=%C3%BC"),
        ("https://ex.org/a%2fb?q=%7e", "https://ex.org/a%2Fb?q=~"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


def test_canonical_url_keeps_path_case_and_same_article_once() -> None:
    a = canonical_url("https://www.rand.org/pubs/RR123.html?utm_campaign=x")
    b = canonical_url("https://WWW.RAND.ORG/pubs/RR123.html#top")
    assert a == b == "https://www.rand.org/pubs/RR123.html"


def test_canonical_url_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        canonical_url("http://[::1")


@given(
    st.builds(
        lambda host, path, keys: (
            f"https://{host}.example/{path}?" + "&".join(f"{k}={i}" for i, k in enumerate(keys))
        ),
        st.from_regex(r"[a-zA-Z][a-zA-Z0-9-]{0,10}", fullmatch=True),
        st.text(alphabet="abcXYZ-_/é%20", max_size=20),
        st.lists(st.sampled_from(["a", "b", "utm_x", "fbclid", "id", "Q"]), max_size=5),
    )
)
def test_canonical_url_is_idempotent(url: str) -> None:
    once = canonical_url(url)
    assert canonical_url(once) == once
    assert "utm_" not in once and "fbclid" not in once


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Hello &amp; <b>world</b></p>", "Hello & world"),
        ("<div>One</div><div>Two<br>Three</div>", "One\nTwo\nThree"),
        ("<script>alert(1)</script><style>p{}</style>Text<!-- hidden -->", "Text"),
        ("a &lt; b &gt; c &#8217; &eacute;", "a < b > c ’ é"),
        ("plain   text\n\n\n with   spaces", "plain text\nwith spaces"),
        ("<p>unclosed <b>bold <i>both", "unclosed bold both"),
        ('<?xml version="1.0" encoding="utf-8"?><p>x</p>', "x"),
        ("\x00nul\x08 bytes", "nul bytes"),
        ("", ""),
        ("<", "<"),
        ("<ul><li>one</li><li>two</li></ul>", "one\ntwo"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def test_html_to_text_is_fast_on_hostile_input() -> None:
    hostile = ["<div>" * 200_000, "&amp;" * 500_000, "<p>x</p>" * 100_000, "<" * 1_000_000]
    start = time.perf_counter()
    for html in hostile:
        html_to_text(html)
    assert time.perf_counter() - start < 5


@given(st.text(max_size=300))
def test_html_to_text_never_raises(text: str) -> None:
    assert isinstance(html_to_text(text), str)


def test_content_hash_ignores_markup_spacing_and_compat_forms() -> None:
    a = content_hash("Pantsir", "North  Korea\nfielded it")
    b = content_hash("Pantsir", "North Korea \n fielded it")
    c = content_hash("Ｐａｎｔｓｉｒ", "North Korea\nfielded it")  # fullwidth letters
    assert a == b == c
    assert a != content_hash("Pantsir", "South Korea\nfielded it")
    assert len(a) == 64


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("북한, 판치르 배치", "ko"),
        ("北朝鮮がパーンツィリを配備", "ja"),
        ("朝鲜部署铠甲防空系统", "zh"),
        ("Северная Корея развернула комплекс Панцирь", "ru"),
        ("Україна отримала нові системи ППО від партнерів", "uk"),
        ("North Korea fielded the Pantsir system near Pyongyang", "en"),
        ("La Corée du Nord a déployé le système Pantsir", "fr"),
        ("Nordkorea hat das Flugabwehrsystem Panzir stationiert", "de"),
    ],
)
def test_detect_language(text: str, lang: str) -> None:
    assert detect_language(text) == lang


@pytest.mark.parametrize("text", ["", "hi", "12345 67890", "OK!", "한"])
def test_detect_language_none_for_too_little_text(text: str) -> None:
    assert detect_language(text) is None


EN = "The ministry said that forces moved air defence systems near the border today. "
FR = "Le ministère a déclaré que les forces avaient déplacé des systèmes près de la frontière. "
DE = "Das Ministerium erklärte, die Streitkräfte hätten Systeme an die Grenze verlegt. "


@pytest.mark.parametrize(("head", "tail", "lang"), [(EN, FR, "en"), (FR, DE, "fr"), (DE, EN, "de")])
def test_detect_language_model_reads_only_the_head(head: str, tail: str, lang: str) -> None:
    """The model's cost is linear in its input, so it reads MODEL_SAMPLE
    characters: a long tail in another language does not change the answer."""
    from crawler.normalize import MODEL_SAMPLE

    text = (head * 5)[:MODEL_SAMPLE] + tail * 10
    assert detect_language(text) == lang
    assert detect_language(head * 5) == lang
