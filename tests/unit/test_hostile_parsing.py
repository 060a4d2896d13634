"""Property tests: the pure pieces a hostile source reaches never raise
(issue #16, "one hostile source aborts the whole crawl").

Each test states a class of inputs (any href, any date with any offset, any
header value, any stored interval) rather than one payload.
"""

from __future__ import annotations

import json
import math
import random
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import urljoin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crawler.crawl_records import MAX_EVERY_SECONDS, MIN_EVERY_SECONDS, PollOutcome, Source
from crawler.detect import advertised_feed
from crawler.entries import FUTURE_TOLERANCE, sane_date
from crawler.feeds import parse_feed
from crawler.http_bodies import MAX_MAX_AGE, parse_max_age, parse_retry_after
from crawler.links import extract_links, find_next_page
from crawler.normalize import join_url
from newswatch.durations import parse_duration, parse_interval
from scheduler.poll_policy import PollPolicy, next_interval, next_poll_at

settings.register_profile("hostile", max_examples=150, deadline=None)
settings.load_profile("hostile")

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BASE = "https://example.org/news/"

# Hrefs that look like URLs with bracketed (IPv6) hosts, ports and escapes:
# the shapes urljoin raises on, mixed with anything at all.
HOSTY = st.builds(
    lambda scheme, host, port, path: f"{scheme}{host}{port}{path}",
    st.sampled_from(["http://", "https://", "//", "", "HTTP://"]),
    st.one_of(
        st.sampled_from(["[::1", "[", "]", "[x]", "[fe80::1%zz]", "[::1]", "[v1.x]", "a]b["]),
        st.text(alphabet="[]:%.0123456789abcdefx", max_size=12),
    ),
    st.sampled_from(["", ":", ":x", ":99999999", ":80"]),
    st.sampled_from(["", "/", "/a/1", "?q=[", "#[x]"]),
)
HREF = st.one_of(HOSTY, st.text(max_size=30))


@given(base=st.one_of(st.just(BASE), HOSTY), href=HREF)
def test_join_url_never_raises(base: str, href: str) -> None:
    joined = join_url(base, href)
    assert joined is None or isinstance(joined, str)


def _page(hrefs: list[str], base: str | None) -> str:
    head = "" if base is None else f'<base href="{_attr(base)}">'
    head += "".join(
        f'<link rel="alternate" type="application/rss+xml" href="{_attr(h)}">' for h in hrefs[:2]
    )
    links = "".join(f'<a href="{_attr(h)}">next</a>' for h in hrefs)
    return f"<html><head>{head}</head><body><main>{links}</main></body></html>"


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


@given(hrefs=st.lists(HREF, min_size=1, max_size=6), base=st.one_of(st.none(), HOSTY))
def test_listing_pages_with_any_hrefs_never_raise(hrefs: list[str], base: str | None) -> None:
    html = _page([*hrefs, "/news/2026/one-good-article"], base)
    links = extract_links(html, BASE)
    assert all(link.startswith(("http://", "https://")) for link in links)
    find_next_page(html, BASE)
    advertised_feed(html, BASE)


def test_one_malformed_href_costs_that_link_only() -> None:
    bad = ["http://[::1", "//[x]/a", "http://[", "//[1.2.3]/", "//[zz::]/", "//[::1"]
    for b in bad:
        with pytest.raises(ValueError):
            urljoin(BASE, b)  # the payload class: urljoin itself raises
    html = _page([*bad, "/news/2026/one-good-article"], None)
    assert extract_links(html, BASE) == ["https://example.org/news/2026/one-good-article"]
    for b in bad:  # as <base href>: the page URL is the base instead
        html = _page(["/news/2026/one-good-article"], b)
        assert extract_links(html, BASE) == ["https://example.org/news/2026/one-good-article"]
    assert advertised_feed(_page(bad, None), BASE) is None


OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda m: timezone(timedelta(minutes=m))
)
ANY_MOMENT = st.builds(
    lambda d, tz: d.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.one_of(st.none(), OFFSETS),
)
EDGES = [
    datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-14))),
    datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-23, minutes=-59))),
]


@given(value=st.one_of(ANY_MOMENT, st.sampled_from(EDGES)))
def test_sane_date_is_utc_and_never_in_the_future(value: datetime) -> None:
    got = sane_date(value, NOW)
    assert got.utcoffset() == timedelta(0)
    assert got <= NOW + FUTURE_TOLERANCE


@given(moments=st.lists(st.one_of(ANY_MOMENT, st.sampled_from(EDGES)), min_size=1, max_size=4))
def test_json_feed_with_any_dates_parses(moments: list[datetime]) -> None:
    items = [
        {
            "id": str(i),
            "url": f"https://example.org/a/{i}",
            "title": f"t{i}",
            "date_published": m.isoformat(),
            "date_modified": m.isoformat(),
        }
        for i, m in enumerate(moments)
    ]
    body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": items})
    parsed = parse_feed(body.encode(), url="https://example.org/f.json", headers={}, fetched_at=NOW)
    assert len(parsed.items) == len(moments)
    assert all(i.published <= NOW + FUTURE_TOLERANCE for i in parsed.items)


HEADER = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=0, max_value=5000).map(lambda n: "max-age=" + "9" * n),
    st.sampled_from(["max-age=\u0663", "max-age=1e999", "max-age=-1", "no-store, max-age=5"]),
)


@given(value=HEADER)
def test_cache_control_gives_a_finite_bounded_max_age(value: str) -> None:
    got = parse_max_age(value)
    assert got is None or (math.isfinite(got) and 0 <= got <= MAX_MAX_AGE)


@given(value=st.one_of(st.text(max_size=40), st.sampled_from(["\u00b2", "\u0663", "9" * 500])))
def test_retry_after_gives_a_finite_value_or_none(value: str) -> None:
    got = parse_retry_after(value, now=NOW)
    assert got is None or (math.isfinite(got) and got >= 0)


def _source(every: int, failures: int) -> Source:
    return Source(
        id=1, name="s", url=BASE, kind="feed", every_seconds=every, consecutive_failures=failures
    )


BOUND = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(0, 10**30))


@given(
    every=st.integers(min_value=1, max_value=10**15),
    failures=st.integers(min_value=0, max_value=10_000),
    failed=st.booleans(),
    retry_after=BOUND,
    min_interval=BOUND,
)
def test_any_stored_interval_and_server_bound_gives_a_valid_next_poll(
    every: int,
    failures: int,
    failed: bool,
    retry_after: float | None,
    min_interval: float | None,
) -> None:
    """Rows stored before `--every` was bounded, and whatever a server sends,
    must never overflow a datetime (it used to, in every later crawl)."""
    outcome = PollOutcome(
        1,
        "failed" if failed else "ok",
        retry_after_seconds=retry_after,
        min_interval_seconds=min_interval,
    )
    policy = PollPolicy()
    interval = next_interval(_source(every, failures), outcome, 0, policy)
    assert 1 <= interval <= max(policy.max_interval, MAX_EVERY_SECONDS)
    assert next_poll_at(interval, NOW, policy, random.Random(0)) > NOW


@given(text=st.one_of(st.text(max_size=50), st.from_regex(r"[0-9]{1,40}[smhdw]?", fullmatch=True)))
def test_interval_parser_returns_a_bounded_int_or_a_value_error(text: str) -> None:
    try:
        seconds = parse_interval(text)
    except ValueError as e:
        assert "\n" not in str(e)
        return
    assert MIN_EVERY_SECONDS <= seconds <= MAX_EVERY_SECONDS


@pytest.mark.parametrize("text", ["0", "000", "0s", "0h0m", "99999999999d", "9" * 5000, "²", "٣m"])
def test_duration_parser_refuses_zero_overflow_and_odd_digits(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
