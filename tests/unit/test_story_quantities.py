"""Quantities that tell incidents apart, written differently by outlets of one event."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.stories import conflicts, quantities
from tests.unit.test_stories import item


@pytest.mark.parametrize(
    "titles",
    [
        # one range of percentages, three notations
        [
            "Fed cuts rates to 3.25%-3.50%",
            "미 연준, 기준금리 인하…3.25∼3.50%",
            "美联储降息至3.25%-3.50%",
        ],
        # basis points and percentage points are percentages
        [
            "Fed cuts by 25 bps",
            "美联储降息25个基点",
            "ФРС снизила ставку на 0,25 п.п.",
            "금리 0.25%p 인하",
        ],
        # trillions in four scripts
        [
            "Samsung Q4 profit hits 21 trillion won",
            "삼성전자 4분기 영업이익 21조원",
            "三星电子第四季度营业利润达21万亿韩元",
            "Прибыль Samsung составила 21 трлн вон",
        ],
        ["Japan enacts 118 trillion yen budget", "日 118조엔 예산 통과", "日本通过118万亿日元预算"],
    ],
)
def test_one_quantity_in_every_notation_agrees_and_does_not_veto(titles: list[str]) -> None:
    sets = [quantities(t) for t in titles]
    assert all(sets), sets
    common = frozenset.intersection(*sets)
    assert common, sets
    items = [item(t, language=None) for t in titles]
    assert not any(conflicts(a, b) for a in items for b in items)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Fed cuts by 25 bps", "Fed cuts by 50 bps"),
        ("삼성전자 영업이익 21조원", "삼성전자 영업이익 12조원"),
        ("Japan enacts 118 trillion yen budget", "日本通过115万亿日元预算"),
        ("금리 0.25%p 인하", "Rate cut of 0.5 percentage point"),
    ],
)
def test_different_amounts_in_any_notation_still_veto(a: str, b: str) -> None:
    assert not quantities(a) & quantities(b)
    assert conflicts(item(a, language=None), item(b, language=None))


@given(st.integers(1, 9999), st.integers(0, 99))
@settings(max_examples=100, deadline=None)
def test_basis_points_are_hundredths_of_a_percent(bp: int, pct: int) -> None:
    assert f"pct:{bp / 100:g}" in quantities(f"cut by {bp} bps")
    assert quantities(f"{pct}%-{pct + 1}%") >= {f"pct:{pct:g}", f"pct:{pct + 1:g}"}
