"""The web view's pure parts: security decisions, feed-text filters, the chart."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from web import WebError
from web.chart import line_chart, nice_max
from web.format import feed_text, link, mask_target, plain, snippet
from web.params import BadParameter, match_filter, parse_since, trend_days
from web.security import (
    authorized,
    bearer,
    check_bind,
    is_loopback,
    local_path,
    same_origin,
    session_value,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"])
def test_loopback_hosts_start_without_token(host: str) -> None:
    assert is_loopback(host)
    check_bind(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "example.org", ""])
def test_other_hosts_need_a_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(WebError, match="NEWSWATCH_WEB_TOKEN"):
        check_bind(host, None)
    check_bind(host, "s3cret-token")


def test_authorization_by_bearer_or_cookie() -> None:
    token = "correct horse battery staple"
    assert authorized(None, None, None)  # no token configured: open (loopback only)
    assert authorized(token, f"Bearer {token}", None)
    assert authorized(token, f"bearer   {token}", None)
    assert authorized(token, None, session_value(token))
    for header in [None, "", "Bearer", f"Basic {token}", f"Bearer {token}x", "Bearer wrong"]:
        assert not authorized(token, header, None), header
    for cookie in [None, "", token, session_value(token + "x"), "é\udcff"]:
        assert not authorized(token, None, cookie), cookie


def test_the_cookie_is_not_the_token() -> None:
    assert session_value("abc") != "abc" and "abc" not in session_value("abc")
    assert bearer("Bearer  x ") == "x" and bearer("Token x") is None


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)",
     "", None, "evil"],
)  # fmt: skip
def test_login_redirects_only_to_local_paths(target: str | None) -> None:
    assert local_path(target) == "/"


def test_local_paths_are_kept() -> None:
    assert local_path("/trends?days=90") == "/trends?days=90"


def test_origin_check() -> None:
    assert same_origin(None, "127.0.0.1:8080")
    assert same_origin("http://127.0.0.1:8080", "127.0.0.1:8080")
    for origin in ["http://evil.example", "null", "http://127.0.0.1:9999", "file://x"]:
        assert not same_origin(origin, "127.0.0.1:8080"), origin


HOSTILE_MARKUP = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(1)>',
    "</bdi></title><script>x()</script>",
    "&lt;script&gt;",
]


@pytest.mark.parametrize("text", HOSTILE_MARKUP)
def test_feed_text_is_escaped(text: str) -> None:
    out = str(feed_text(text))
    assert "<script" not in out and "<img" not in out and "<svg" not in out
    assert out.startswith("<bdi>") and out.endswith("</bdi>") and out.count("<bdi>") == 1


@pytest.mark.parametrize(
    "control",
    [
        "\u202e",
        "\u202d",
        "\u2066",
        "\u2067",
        "\u200f",
        "\x1b",
        "\ufffe",
        "\uffff",
        "\ud800",
        "\udfff",
    ],
)
def test_bidi_control_and_non_xml_characters_become_visible(control: str) -> None:
    out = plain(f"abc{control}def")
    assert control not in out and "\ufffd" in out


# XML 1.0's Char production: what an SVG chart (parsed as XML) may hold.
XML_CHAR = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")


@given(st.text(st.characters(exclude_categories=())))
def test_plain_text_is_always_xml_characters(text: str) -> None:
    assert XML_CHAR.fullmatch(plain(text))


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "data:text/html,x",
     "vbscript:x", "file:///etc/passwd", '"><script>', 'https://a.example/"onmouseover="x', ""],
)  # fmt: skip
def test_only_http_links_become_hrefs(url: str) -> None:
    out = str(link(url))
    assert "<a " not in out and "href" not in out


def test_http_links_are_links_without_referrer() -> None:
    out = str(link("https://news.example/a?b=1&c=2", "<b>T</b>"))
    assert out.startswith('<a href="https://news.example/a?b=1&amp;c=2"')
    assert "noreferrer" in out and "&lt;b&gt;T&lt;/b&gt;" in out


def test_snippet_marks_hits_and_escapes_the_rest() -> None:
    out = str(snippet("<i>x</i> Pantsir and pantsir", ["Pantsir", "<i>"]))
    assert out.count("<mark>") == 3 and "<i>" not in out and "&lt;i&gt;" in out


def test_recipient_urls_are_masked() -> None:
    secret = "https://hooks.slack.com/services/T0/B0/abcdefsecret"
    assert mask_target("slack", secret) == "https://hooks.slack.com/…"
    assert mask_target("webhook", "https://user:pw@h.example/p?k=SECRET") == "https://h.example/…"
    assert mask_target("webhook", "not a url") == "***"
    assert mask_target("email", "a@example.org") == "a@example.org"
    assert mask_target("slack", "${SLACK_URL}") == "${SLACK_URL}"


@given(st.integers(min_value=0, max_value=10**9))
def test_nice_max_is_a_round_bound(value: int) -> None:
    top = nice_max(value)
    assert top >= max(value, 1)
    assert top < max(value, 1) * 10 or top == 1
    assert str(top).lstrip("125").strip("0") == ""


@given(
    st.dictionaries(st.text(max_size=20), st.lists(st.integers(0, 500), min_size=30, max_size=30),
                    max_size=6),
    st.text(max_size=40),
)  # fmt: skip
def test_chart_is_well_formed_svg_whatever_the_labels(
    series: dict[str, list[int]], title: str
) -> None:
    days = [NOW + timedelta(days=d) for d in range(30)]
    svg = str(line_chart(title, days, series))
    root = ET.fromstring(svg)  # well-formed XML: control characters in labels are replaced
    ns = "{http://www.w3.org/2000/svg}"
    lines = root.findall(f"{ns}polyline")
    assert len(lines) == len(series)
    for line, values in zip(lines, series.values(), strict=True):
        points = line.get("points", "").split()
        assert len(points) == 30
        ys = [float(p.split(",")[1]) for p in points]
        if max(values) > 0:  # the highest day is drawn highest (smallest y)
            assert min(ys) == ys[values.index(max(values))]
    assert root.find(f"{ns}script") is None and "<script" not in svg


def test_params() -> None:
    assert parse_since("2d", NOW) == NOW - timedelta(days=2)
    assert parse_since("2026-11-20", NOW) == datetime(2026, 11, 20, tzinfo=UTC)
    for bad in ["yesterday", "2x", "-1d", "2026-13-01"]:
        with pytest.raises(BadParameter, match="since"):
            parse_since(bad, NOW)
    f = match_filter({"watchlist": " a ", "term": "", "since": "1h"}, NOW)
    assert f.watchlist == "a" and f.term is None and f.since == NOW - timedelta(hours=1)
    with pytest.raises(BadParameter):
        match_filter({"term": "x" * 201}, NOW)
    assert trend_days({}) == 30 and trend_days({"days": "90"}) == 90
    with pytest.raises(BadParameter):
        trend_days({"days": "7"})


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "–"), (0, "–"), (59, "59s"), (60, "1m"), (900, "15m"), (3600, "1h"), (5400, "1h30m"),
     (4501, "1h15m1s"), (2251, "37m31s"), (86400, "1d"), (90061, "1d1h1m1s")],
)  # fmt: skip
def test_intervals_read_as_the_cli_writes_them(seconds: int | None, shown: str) -> None:
    from web.format import duration

    assert duration(seconds) == shown
