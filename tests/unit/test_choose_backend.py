"""choose_backend: which automaton a one-shot command compiles, by volume."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alerts.matching.backends import BREAK_EVEN_POINTS, break_even_bytes, choose_backend

MB = 1_000_000


def test_small_volumes_take_aho() -> None:
    assert choose_backend(10_000, 0, hyperscan_available=True) == "aho"
    assert choose_backend(10_000, 3 * MB, hyperscan_available=True) == "aho"  # one crawl's text
    assert choose_backend(1_000, 10 * MB, hyperscan_available=True) == "aho"


def test_large_volumes_take_hyperscan() -> None:
    assert choose_backend(10_000, 5_000 * MB, hyperscan_available=True) == "hyperscan"
    assert choose_backend(100, 300 * MB, hyperscan_available=True) == "hyperscan"
    assert choose_backend(10_000, 300 * MB, hyperscan_available=True) == "hyperscan"  # backfill


def test_the_measured_points_are_the_edges() -> None:
    for terms, edge in BREAK_EVEN_POINTS[1:]:
        assert break_even_bytes(terms) == edge
        assert choose_backend(terms, edge - 1, hyperscan_available=True) == "aho"
        assert choose_backend(terms, edge, hyperscan_available=True) == "hyperscan"


def test_between_and_beyond_the_points() -> None:
    assert 77 * MB < break_even_bytes(3_000) < 117 * MB
    assert break_even_bytes(20_000) > break_even_bytes(10_000)
    assert 0 < break_even_bytes(100) < 10 * MB


@given(st.integers(-5, 50_000), st.integers(0, 10**12))
def test_never_hyperscan_where_it_is_missing_or_nothing_to_compile(terms: int, volume: int) -> None:
    assert choose_backend(terms, volume, hyperscan_available=False) == "aho"
    assert choose_backend(min(terms, 0), volume, hyperscan_available=True) == "aho"


@given(st.integers(1, 50_000), st.integers(0, 10**12), st.integers(0, 10**12))
def test_monotone_in_volume_and_terms(terms: int, volume: int, more: int) -> None:
    """More text never switches back to aho; more terms never switch to Hyperscan."""
    if choose_backend(terms, volume, hyperscan_available=True) == "hyperscan":
        assert choose_backend(terms, volume + more, hyperscan_available=True) == "hyperscan"
        assert choose_backend(max(1, terms - more), volume, hyperscan_available=True) == "hyperscan"
    else:
        assert choose_backend(terms + more, volume, hyperscan_available=True) == "aho"
