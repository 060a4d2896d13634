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


# ---------------------------------------------------------------- sixth round (set E)
# One event, written by outlets that round, convert or count other things: none of
# these pairs may veto, and where one amount is written two ways it must agree.


@pytest.mark.parametrize(
    ("titles", "common"),
    [
        # Korean and Chinese compound numerals
        (
            [
                "HD한국조선해양, LNG운반선 4척 1조4천억원 수주",
                "HD KSOE wins 1.4 trillion won order for 4 LNG carriers",
                "韩国HD现代获1.4万亿韩元LNG船订单",
            ],
            "money-krw:1.4e+12",
        ),
        (
            ["국내 여행 3억2천만명", "国内出游3.2亿人次", "320 million trips"],
            "n:3.2e+08",
        ),
        (["미사일 1천500㎞ 비행", "ракета пролетела 1500 км", "flew 1,500 km"], "km:1500"),
        # abbreviated billions after a money sign
        (["LIG Nex1 wins $2.9b deal", "a $2.9 billion Qatar order", "29억 달러 수출"], None),
        # a capitalised multiplier in a headline
        (["LIG Nex1 Jumps After $2.9 Billion Qatar Order", "$2.9bn deal"], "money-usd:2.9e+09"),
    ],
)
def test_compound_and_abbreviated_numbers_agree(titles: list[str], common: str | None) -> None:
    sets = [quantities(t) for t in titles]
    shared = frozenset.intersection(*sets)
    assert shared, sets
    if common:
        assert common in shared
    items = [item(t, language=None) for t in titles]
    assert not any(conflicts(a, b) for a in items for b in items)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # amounts in two currencies: one contract, 4조원 ≈ $2.9 billion
        ("LIG넥스원, 카타르와 4조원 수출 계약", "LIG Nex1 wins $2.9 billion deal"),
        ("Китай: кредиты на 420 млрд юаней", "China's new loans $58 billion"),
        # approximate and exact counts of one thing
        (
            "韩国蔚珍郡发生山火 200余名居民紧急疏散",
            "Wildfire spreads in Uljin, 210 residents evacuated",
        ),
        ("Russia says it downed over 100 drones", "Минобороны: уничтожены 112 БПЛА"),
        ("물가 넉 달째 2%대", "Korea's consumer inflation at 2.1% in April"),
        ("러 전승절 열병식…20여 개국 정상 참석", "parade with leaders of 23 countries"),
        ("КНДР: ракета пролетела около 600 км", "North Korean missile flew 610 km"),
        # different things counted: a unit, a magnitude, a count
        ("안동 산불…헬기 9대 투입", "안동 산불 진화…산림 12㏊ 소실"),
        ("广东梅州暴雨致5人遇难", "梅州3小时降雨量达210毫米"),
        ("台湾花莲县海域发生6.4级地震", "Strong earthquake off Taiwan injures 2"),
        # one quake, three agencies' magnitudes
        ("台湾花莲县海域发生6.4级地震", "Magnitude 6.6 quake strikes off Taiwan"),
        ("Magnitude 6.6 quake strikes off Taiwan", "землетрясение магнитудой 6,2 у Тайваня"),
        ("대만 화롄 해역서 규모 6.6 지진", "6.2-magnitude quake hits Hualien, USGS says"),
        # ordinals, levels, anniversaries, durations and day ranges are not counts
        ("欧盟通过对俄第23轮制裁", "EU, 대러 제재 채택…'그림자 선단' 120척 추가"),
        ("胜利82周年阅兵式", "20 leaders attend parade"),
        ("이천 물류창고서 큰불…'대응 2단계' 발령", "韩国利川物流仓库起火 3人死亡"),
        ("산불 3시간 만에 진화", "wildfire: 40 homes burnt"),
        ("5월 1∼10일 수출 6.1% 증가", "S. Korea's exports up 6.1% in first 10 days of May"),
        ("韩国5月前10天出口同比增长6.1%", "수출 6.1% 증가"),
        # a number after an ellipsis (NFKC turns … into "...") is still read
        ("中 광둥성 메이저우 폭우…5명 사망", "广东梅州平远县暴雨致5人遇难"),
    ],
)
def test_one_event_told_with_other_numbers_does_not_veto(a: str, b: str) -> None:
    assert not conflicts(item(a, language=None), item(b, language=None)), (
        sorted(quantities(a)),
        sorted(quantities(b)),
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "HD한국조선해양, 컨테이너선 6척 1조3천억원 수주",
            "HD한국조선해양, LNG운반선 4척 1조4천억원 수주",
        ),
        ("Quake of magnitude 6.4 hits Hualien", "Magnitude 7.1 quake hits Hualien"),
        ("北 미사일 600㎞ 비행", "North Korean missile flew 1,500 km"),
        ("LIG Nex1 wins $2.9b deal", "LIG Nex1 wins $1.9 billion deal"),
        ("韩国蔚珍山火 210名居民疏散", "Wildfire in Uljin, 45 residents evacuated"),
        ("中 광둥성 폭우…5명 사망", "广东暴雨致12人遇难"),
    ],
)
def test_different_amounts_of_one_kind_still_veto(a: str, b: str) -> None:
    assert conflicts(item(a, language=None), item(b, language=None)), (
        sorted(quantities(a)),
        sorted(quantities(b)),
    )


def test_approximate_numbers_are_evidence_but_not_vetoes() -> None:
    assert quantities("over 100 drones") == {"~n:100"}
    assert quantities("200余名居民") == {"~n:200"}
    assert quantities("600여㎞ 비행") == {"~km:600"}
    assert item("over 100 drones downed").numbers == {"n:100"}
