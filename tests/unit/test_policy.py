"""scheduler.poll_policy: adaptive intervals, backoff, server lower bounds, jitter. Pure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from crawler.crawl_records import PollOutcome, Source
from scheduler.poll_policy import PollPolicy, next_interval, next_poll_at

POLICY = PollPolicy(min_interval=300, max_interval=86_400)


def src(every: int = 900, failures: int = 0, current: int | None = None) -> Source:
    return Source(
        id=1,
        name="s",
        url="https://example.org/f",
        kind="feed",
        every_seconds=every,
        consecutive_failures=failures,
        current_interval_seconds=current,
    )


def ok(**kw: float) -> PollOutcome:
    return PollOutcome(1, "ok", **kw)  # type: ignore[arg-type]


FAILED = PollOutcome(1, "failed", error="HTTP 500")


def next_for(
    source: Source, outcome: PollOutcome, new_items: int, policy: PollPolicy = POLICY
) -> int:
    """As the pipeline calls it: the current interval comes from the source."""
    return next_interval(source, outcome, new_items, policy, source.current_interval_seconds)


def test_failures_double_up_to_the_ceiling() -> None:
    got = [next_for(src(failures=n), FAILED, 0) for n in range(10)]
    assert got[:4] == [1800, 3600, 7200, 14400]
    assert got[-1] == 86_400 and got == sorted(got)


def test_success_after_failures_resets_the_backoff() -> None:
    assert next_for(src(failures=5, current=28_800), ok(), 0) <= 900 * 1.25 + 1


def test_publishing_often_polls_faster_and_quiet_sources_slower() -> None:
    busy = next_for(src(current=900), ok(), 3)
    quiet = next_for(src(current=900), ok(), 0)
    assert 300 <= busy < 900 < quiet


def test_adaptation_stays_within_min_and_four_times_every() -> None:
    interval: int | None = 900
    for _ in range(50):
        interval = next_for(src(current=interval), ok(), 5)
    assert interval == 300
    for _ in range(50):
        interval = next_for(src(current=interval), ok(), 0)
    assert interval == 3600


def test_an_explicit_short_every_is_honoured_below_min_interval() -> None:
    assert next_for(src(every=2, current=2), ok(), 1) == 2
    tight = PollPolicy(min_interval=1, max_interval=3)
    assert next_for(src(every=2, current=3), ok(), 0, tight) <= 3


def test_retry_after_max_age_and_ttl_are_lower_bounds_under_the_ceiling() -> None:
    assert next_for(src(), ok(min_interval_seconds=3600), 0) == 3600
    assert next_for(src(), ok(retry_after_seconds=7200), 0) == 7200
    assert next_for(src(failures=0), FAILED, 0) == 1800
    forever = ok(min_interval_seconds=365 * 86_400)
    assert next_for(src(), forever, 0) == 86_400


@given(
    every=st.integers(1, 10 * 86_400),
    failures=st.integers(0, 100),
    new=st.integers(0, 50),
    current=st.none() | st.integers(1, 10 * 86_400),
    status=st.sampled_from(["ok", "not_modified", "failed"]),
    bound=st.none() | st.floats(0, 10**9),
)
def test_interval_is_always_within_the_sources_range(
    every: int, failures: int, new: int, current: int | None, status: str, bound: float | None
) -> None:
    outcome = PollOutcome(1, status, min_interval_seconds=bound)  # type: ignore[arg-type]
    got = next_for(src(every, failures, current), outcome, new)
    assert min(POLICY.min_interval, every) <= got <= max(POLICY.max_interval, every)


def test_jitter_is_ten_percent_either_way() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rng = random.Random(7)
    deltas = [(next_poll_at(1000, now, POLICY, rng) - now) for _ in range(500)]
    assert min(deltas) >= timedelta(seconds=900) and max(deltas) <= timedelta(seconds=1100)
    assert max(deltas) - min(deltas) > timedelta(seconds=150)  # really spread
