"""Issue #17, the pure parts: `--every` units, reschedule rule, interval
reasons, unknown variables, database URLs, table widths, digest labels,
article dates."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.articles import extract_article
from crawler.crawl_records import Source
from newswatch.cli_common import pad, width
from newswatch.config import normalize_database_url, smtp_url_problem, unknown_variables
from newswatch.durations import parse_every, parse_interval
from newswatch.intervals import effective_interval
from storage.source_edits import rescheduled_at

NOW = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)


@given(st.integers(min_value=0, max_value=10**30))
def test_a_bare_number_is_never_an_every(n: int) -> None:
    with pytest.raises(ValueError, match="give a unit"):
        parse_every(str(n))


@pytest.mark.parametrize("text", ["1m", "90s", "15m", "2h", "1d", "1h30m", " 15m "])
def test_every_with_a_unit_equals_the_file_parser(text: str) -> None:
    assert parse_every(text) == parse_interval(text)


def test_old_files_keep_numbers_as_seconds() -> None:
    assert parse_interval(900) == 900 and parse_interval("900") == 900


@given(
    st.none() | st.integers(min_value=-(10**7), max_value=10**7),
    st.integers(min_value=60, max_value=30 * 86_400),
)
def test_reschedule_is_never_later_than_one_new_interval(
    old_offset: int | None, every: int
) -> None:
    old = None if old_offset is None else NOW + timedelta(seconds=old_offset)
    at = rescheduled_at(old, NOW, every)
    assert at <= NOW + timedelta(seconds=every)
    if old is not None:
        assert at <= old


SRC = Source(id=1, name="s", url="https://e.org/f", kind="feed", every_seconds=60)


@pytest.mark.parametrize(
    ("changes", "seconds", "reason"),
    [
        ({}, 60, "as set"),
        ({"current_interval_seconds": 60}, 60, "as set"),
        ({"current_interval_seconds": 180}, 180, "adapted: quiet source"),
        ({"current_interval_seconds": 3600}, 3600, "server max-age / Retry-After"),
        (
            {"consecutive_failures": 1, "current_interval_seconds": 120},
            120,
            "backoff after 1 failure",
        ),
        (
            {"consecutive_failures": 3, "current_interval_seconds": 480},
            480,
            "backoff after 3 failures",
        ),
        ({"enabled": False}, None, "disabled"),
    ],
)
def test_interval_in_force_and_why(
    changes: dict[str, object], seconds: int | None, reason: str
) -> None:
    eff = effective_interval(replace(SRC, **changes), max_interval=86_400)  # type: ignore[arg-type]
    assert (eff.seconds, eff.reason) == (seconds, reason)


def test_unknown_variables_only_newswatch_ones() -> None:
    env = {
        "NEWSWATCH_SMPT_URL": "x",
        "NEWSWATCH_SMTP_URL": "y",
        "HOME": "/",
        "PATH": "/bin",
        "NEWSWATCH_TEST_BACKENDS": "sqlite",
        "NEWSWATCH_CONFIG": "c.toml",
    }
    assert unknown_variables(env) == [
        "unknown variable NEWSWATCH_SMPT_URL is ignored; did you mean NEWSWATCH_SMTP_URL?"
    ]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h:5433/db", "postgresql+psycopg://u:p@h:5433/db"),
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///nw.db", "sqlite:///nw.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_database_urls_accepted(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize(
    "url", ["nw.db", "", "   ", "mysql://u:pw@h/db", "oracle://x", "://x", "postgres:/h/db"]
)
def test_database_urls_refused_without_echoing_them(url: str) -> None:
    with pytest.raises(ValueError, match=r"sqlite:///path/to/file\.db") as e:
        normalize_database_url(url)
    assert "pw@" not in str(e.value)


@pytest.mark.parametrize(
    "url", ["smtp://", "http://h", "smtp://h:99999", "smtp://h:x", "h:25", "smtp://:25"]
)
def test_bad_smtp_urls(url: str) -> None:
    assert smtp_url_problem(url) is not None


@pytest.mark.parametrize("url", ["smtp://h", "smtps://u:p@h:465", "smtp://127.0.0.1:2525"])
def test_good_smtp_urls(url: str) -> None:
    assert smtp_url_problem(url) is None


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("abc", 3),
        ("판치르", 6),
        ("地对空导弹", 10),
        ("Панцирь", 7),
        ("e\u0301", 1),
        ("ｆｕｌｌ", 8),
    ],
)
def test_display_width(text: str, columns: int) -> None:
    assert width(text) == columns
    assert width(pad(text, 12)) == 12


def test_plain_table_columns_line_up_with_cjk(capsys: pytest.CaptureFixture[str]) -> None:
    from newswatch.cli_common import print_table

    print_table(["name", "url"], [["판치르", "u1"], ["地对空导弹", "u2"], ["abc", "u3"]])
    lines = capsys.readouterr().out.splitlines()
    starts = {width(line[: line.index("u")]) for line in lines[1:]}
    assert starts == {width(lines[0][: lines[0].index("url")])}


def test_digest_period_labels() -> None:
    from alerts.render import period_label

    assert period_label("2026-11-30T01") == "2026-11-30 01:00–02:00 UTC"
    assert period_label("2026-11-30T23") == "2026-11-30 23:00–00:00 UTC"
    assert period_label("2026-11-30") == "2026-11-30"


ARTICLE = (
    "<html><head>{meta}<title>T</title></head><body><article><h1>T</h1><p>"
    + "Word after word, a long enough article body. " * 10
    + "</p></article></body></html>"
)


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (
            '<meta property="article:published_time" content="2026-11-29T14:35:00+09:00">',
            datetime(2026, 11, 29, 5, 35, tzinfo=UTC),
        ),
        (
            '<meta property="article:published_time" content="2026-11-28T23:10:00Z">',
            datetime(2026, 11, 28, 23, 10, tzinfo=UTC),
        ),
        (
            '<meta property="article:published_time" content="2026-11-27">',
            datetime(2026, 11, 27, tzinfo=UTC),
        ),
    ],
)
def test_article_published_time_keeps_the_time(meta: str, expected: datetime) -> None:
    item = extract_article(ARTICLE.format(meta=meta), "https://e.org/a", fetched_at=NOW)
    assert item is not None and item.published == expected
