"""alerts.pacing.Pacer on a hand-moved clock."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.pacing import Pacer


class Tick:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_slots_are_spaced_per_key_and_keys_do_not_wait_for_each_other() -> None:
    clock = Tick()
    p = Pacer(clock)
    a, b = Pacer.key("https://hooks.slack.com/services/A"), Pacer.key("https://x/B")
    assert [p.reserve(a, 1.0) for _ in range(3)] == [0.0, 1.0, 2.0]  # booked back to back
    assert p.reserve(b, 1.0) == 0.0
    clock.t += 5
    assert p.reserve(a, 1.0) == 0.0  # the past is not owed
    p.hold(a, 3.0)  # Retry-After: 3
    assert p.wait_for(a) == 3.0 and p.reserve(a, 1.0) == 3.0
    assert "slack" not in a and len(a) == 32  # the URL (a secret) is not kept


@given(st.lists(st.floats(0, 5), min_size=1, max_size=30), st.floats(0.01, 2))
def test_sends_never_closer_than_the_interval(gaps: list[float], interval: float) -> None:
    clock, key = Tick(), "k"
    p = Pacer(clock)
    sends = []
    for gap in gaps:
        clock.t += gap
        sends.append(clock.t + p.reserve(key, interval))
    assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(sends))


def test_429_and_503_with_retry_after_are_rate_limits_not_failures() -> None:
    """Only a peer that says when to come back paces us; the rest keep their class."""
    from alerts.channels import PermanentFailure, RateLimited, TemporaryFailure, classify_status
    from scheduler.deliver import MAX_RETRY_AFTER, MIN_RETRY_AFTER, pacing_wait

    for status in (429, 503):
        with pytest.raises(RateLimited) as limited:
            classify_status(status, 1.0, "Slack")
        assert limited.value.retry_after == 1.0 and "Retry-After 1 s" in str(limited.value)
    for status, retry_after in ((429, None), (503, None), (500, 3.0), (502, None), (408, 2.0)):
        with pytest.raises(TemporaryFailure) as temporary:
            classify_status(status, retry_after, "Slack")
        assert not isinstance(temporary.value, RateLimited), status
    for status in (400, 404, 410):
        with pytest.raises(PermanentFailure):
            classify_status(status, 5.0, "Slack")
    classify_status(200, 5.0, "Slack")
    assert [pacing_wait(s) for s in (0.0, 1.0, 7.5, 10**9)] == [
        MIN_RETRY_AFTER,
        1.0,
        7.5,
        MAX_RETRY_AFTER,
    ]
