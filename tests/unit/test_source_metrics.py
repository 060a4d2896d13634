"""Per-source health on /metrics (issue #17, part 8): computed at scrape
time from the saved polls, any source name escaped, the series capped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from crawler.crawl_records import Source
from scheduler.metrics import MAX_SOURCE_SERIES, Metrics

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
HOSTILE = ['quote " name', "back\\slash", "new\nline", "}{=,", "кириллица 新闻", ""]


def scrape(m: Metrics) -> dict[tuple[str, str], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            if s.name.startswith("newswatch_source_"):
                out[(s.name, s.labels.get("source", ""))] = s.value
    return out


def source(name: str, *, failures: int = 0, success: datetime | None = None) -> Source:
    return Source(
        1,
        name,
        "https://x.example/f",
        "feed",
        900,
        consecutive_failures=failures,
        last_success_at=success,
    )


def test_age_and_failures_per_source_whatever_its_name() -> None:
    m = Metrics()
    now = [T0]
    m.sources.clock = lambda: now[0]
    for name in HOSTILE:
        m.sources.polled(source(name), failed=False, deferred=False, now=T0)
    m.sources.polled(
        source("down", failures=2, success=T0 - timedelta(hours=1)),
        failed=True,
        deferred=False,
        now=T0,
    )
    m.sources.polled(source("never"), failed=True, deferred=False, now=T0)
    m.sources.polled(source("waiting"), failed=False, deferred=True, now=T0)
    now[0] = T0 + timedelta(seconds=90)
    got = scrape(m)
    for name in HOSTILE:
        assert got[("newswatch_source_seconds_since_success", name)] == 90
        assert got[("newswatch_source_consecutive_failures", name)] == 0
    assert got[("newswatch_source_seconds_since_success", "down")] == 3690
    assert got[("newswatch_source_consecutive_failures", "down")] == 3
    assert ("newswatch_source_seconds_since_success", "never") not in got
    assert got[("newswatch_source_consecutive_failures", "never")] == 1
    assert not any(label == "waiting" for _, label in got)


def test_series_are_capped_and_the_rest_counted() -> None:
    m = Metrics()
    for n in range(MAX_SOURCE_SERIES + 5):
        m.sources.polled(source(f"s{n}"), failed=False, deferred=False, now=T0)
    m.sources.polled(source("s0", success=T0), failed=True, deferred=False, now=T0)  # updated
    got = scrape(m)
    ages = [k for k in got if k[0] == "newswatch_source_seconds_since_success"]
    assert len(ages) == MAX_SOURCE_SERIES
    assert got[("newswatch_source_consecutive_failures", "s0")] == 1
    assert got[("newswatch_source_series_dropped", "")] == 5
