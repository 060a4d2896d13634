"""Countries named in a headline (alerts/places.py) and the story engine's country veto."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.alert_records import Document
from alerts.gazetteer import _ENTRIES, anchor_concepts, gazetteer_matcher
from alerts.matching.engine import Matcher
from alerts.places import COUNTRIES, GAZETTEER_COUNTRY, countries, countries_of_concepts
from alerts.stories import VETOES, StoryParams, assign, conflicts, event_kinds, features
from tests.unit.test_stories import E0, item, story

T0 = datetime(2027, 1, 10, tzinfo=UTC)
PLAIN = StoryParams(threshold=0.75, concept_weight=0.25)


# ---------------------------------------------------------------- one country, four scripts


@pytest.mark.parametrize(
    ("code", "spellings"),
    [
        (
            "JP",
            [
                "Japan",
                "Japanese jets",
                "일본 정부",
                "日 가고시마",
                "日本樱岛",
                "Япония",
                "японский",
            ],
        ),
        ("RU", ["Russia", "Russian strikes", "러시아", "러, 키이우에", "俄罗斯", "俄乌", "России"]),
        (
            "US",
            [
                "the US",
                "U.S. Navy",
                "미국",
                "美 B-1B 폭격기",
                "美国",
                "中美",
                "США",
                "американский",
            ],
        ),
        ("CN", ["China", "Chinese", "중국", "中 해경", "中国海警", "Китай", "КНР"]),
        (
            "KP",
            [
                "North Korea",
                "N. Korea's",
                "DPRK",
                "북한",
                "北 화성",
                "朝鲜",
                "КНДР",
                "Северная Корея",
            ],
        ),
        ("KR", ["South Korea", "S. Korea", "Korea's exports", "한국", "韩国", "Южная Корея"]),
        ("UA", ["Ukraine", "Ukrainian drones", "우크라이나", "乌克兰", "Украина", "ВСУ"]),
        ("PH", ["Philippines", "Philippine Navy", "필리핀", "菲律宾", "Филиппины"]),
        ("TW", ["Taiwan", "대만", "台湾", "Тайвань"]),
        ("GB", ["Britain", "UK sanctions", "영국", "英 정부", "英国", "Великобритания"]),
        ("IN", ["India", "Indian Army", "인도 정부", "印度", "Индия", "индийский"]),
        ("MN", ["Mongolia", "몽골", "蒙古国", "Монголия"]),
    ],
)
def test_each_script_names_the_country(code: str, spellings: list[str]) -> None:
    for text in spellings:
        assert code in countries(f"{text} 123"), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("美元汇率走低", set()),  # dollar, not the US
        ("3月11日中国海警", {"CN"}),  # 日中 is a date then China, not Japan
        ("5日韩国", {"KR"}),  # 日韩: a date then Korea
        ("KAI, FA-50M 첫 2대 인도", set()),  # 인도 = delivery
        ("内蒙古出现沙尘暴", set()),  # Inner Mongolia is not Mongolia
        ("내몽골서 황사 발원", set()),
        ("Indian Ocean storm", set()),
        ("USD and EUR rates", set()),
        ("Korean Peninsula tension", set()),
        ("무엇이란 말인가", set()),  # 이란 as a particle
        ("the Koreas talk", set()),
    ],
)
def test_false_friends_are_not_countries(text: str, expected: set[str]) -> None:
    assert countries(text) == expected


def test_korean_and_chinese_abbreviations_count_only_in_their_script() -> None:
    assert countries("日本語") == frozenset({"JP"})
    assert countries("美 국무부") == frozenset({"US"})
    assert "US" not in countries("美丽乡村")  # Chinese 美 alone is "beautiful"
    assert "KP" not in countries("北京")  # Chinese 北 is north (Beijing is CN)
    assert countries("北京") == frozenset({"CN"})


@given(st.text(max_size=120))
@settings(max_examples=200, deadline=None)
def test_any_text_gives_known_codes_and_a_name_added_is_found(text: str) -> None:
    got = countries(text)
    assert got <= COUNTRIES
    assert "JP" in countries(f"{text} . Japan . ")
    assert "RU" in countries(f"{text} . Россия . ")


def test_every_gazetteer_country_label_exists_and_maps_to_a_known_code() -> None:
    assert set(GAZETTEER_COUNTRY) <= set(_ENTRIES)
    assert set(GAZETTEER_COUNTRY.values()) <= COUNTRIES | {"CH", "BE"}


@pytest.mark.parametrize(
    ("text", "language", "code"),
    [
        ("Путин и Моди подписали соглашения", "ru", "IN"),
        ("台积电亚利桑那二厂量产", "zh", "US"),
        ("부산항 물동량 최대", "ko", "KR"),
        ("Lee Jae-myung meets Xi Jinping", "en", "CN"),
    ],
)
def test_gazetteer_entries_name_their_country(text: str, language: str, code: str) -> None:
    concepts = anchor_concepts(_gazetteer(), Document(title=text, language=language))
    assert code in countries_of_concepts(concepts)
    f = features(text, "", "", vector=E0, published=T0, concepts=concepts, language=language)
    assert code in f.countries


# ---------------------------------------------------------------- the veto


@cache
def _gazetteer() -> Matcher:
    return gazetteer_matcher()


def _anchors(text: str) -> frozenset[str]:
    return anchor_concepts(_gazetteer(), Document(title=text))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Sakurajima volcano erupts in Japan", "Вулкан Шивелуч на Камчатке выбросил пепел"),
        ("Wildfire in Korea forces 1,500 to evacuate", "日本爱媛县山火"),
        ("Typhoon hits the Philippines", "태풍, 日 오키나와 강타"),
        ("Turkey tests its S-400 systems", "India receives S-400 batch"),
        ("Chinese coast guard ships near Vietnam", "Береговая охрана Филиппин"),
    ],
)
def test_items_naming_disjoint_countries_never_join(a: str, b: str) -> None:
    """Same vector, same concepts: two countries and none in common keep two incidents apart."""
    x, y = (
        item(a, concepts=("w/c", *_anchors(a))),
        item(b, concepts=("w/c", *_anchors(b)), language=None),
    )
    assert x.countries and y.countries and not x.countries & y.countries
    assert conflicts(x, y) and conflicts(y, x)
    assert assign(y, [story(1, x)], PLAIN).story_id is None


@pytest.mark.parametrize(
    ("a", "la", "b", "lb"),
    [
        ("South Korea finalizes order for 20 F-35As", "en", "방사청, F-35A 20대 추가 도입", "ko"),
        ("Russia delivers S-400 to India", "en", "Россия передала Индии С-400", "ru"),
        ("China's factory PMI rises", "en", "国家统计局：制造业采购经理指数上升", "zh"),
        ("Strike on Kyiv kills four", "en", "러, 키이우에 대규모 공습", "ko"),
        ("Quake shakes buildings", "en", "日本で地震", "ja"),  # one side names no country
    ],
)
def test_a_shared_country_or_an_unnamed_one_does_not_veto(a: str, la: str, b: str, lb: str) -> None:
    x, y = item(a, language=la), item(b, language=lb)
    assert not conflicts(x, y)
    assert assign(y, [story(1, x)], PLAIN).story_id == 1


def test_a_national_headline_naming_no_country_is_about_its_own() -> None:
    """The home country counts only when the title's script is the declared language's."""
    ko = item("방사청, F-35A 20대 추가 도입", lead="미국 정부와 계약했다.", language="ko")
    assert ko.countries == {"KR", "US"}
    assert item("방사청, F-35A 20대 추가 도입", language="ru", lead="미국 정부와").countries == {
        "US"
    }
    # Naming no country at all, it stays without one (and cannot veto).
    assert item("방사청, F-35A 20대 추가 도입", language="ko").countries == frozenset()
    assert item("日 가고시마 화산 분화", language="ko").countries == {"JP"}
    assert item("Fire at a warehouse", language="en").countries == frozenset()


@given(
    st.lists(st.sampled_from(sorted(COUNTRIES)), max_size=3),
    st.lists(st.sampled_from(sorted(COUNTRIES)), max_size=3),
)
@settings(max_examples=100, deadline=None)
def test_country_veto_is_symmetric_and_exactly_disjointness(xs: list[str], ys: list[str]) -> None:
    from dataclasses import replace

    x = replace(item("x"), countries=frozenset(xs))
    y = replace(item("y"), countries=frozenset(ys))
    expected = bool(xs and ys and not set(xs) & set(ys))
    assert conflicts(x, y) == conflicts(y, x) == expected


# ---------------------------------------------------------------- kinds of incident


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Sakurajima volcano erupts", "Magnitude 6.1 earthquake hits Kagoshima"),
        ("제주 해상서 어선 전복", "제주 산불 확산"),
        ("Passenger train derails", "Хакеры похитили криптовалюту"),
        ("EU adopts sanctions package", "EU budget talks"),
        ("台风登陆冲绳", "冲绳附近发生地震"),
        ("TSMC fourth-quarter profit jumps 57%", "TSMC plans record capital spending"),
        ("삼성전자 4분기 영업이익 최대", "삼성전자 올해 설비투자 확대"),
        ("Japan, South Korea leaders hold summit in Nara", "한일 외교장관 서울서 회담"),
        ("中日韩峰会在东京举行", "Главы МИД Японии и Китая провели встречу"),
    ],
)
def test_titles_naming_different_kinds_of_incident_never_join(a: str, b: str) -> None:
    x, y = item(a, concepts=("w/c",), language=None), item(b, concepts=("w/c",), language=None)
    assert x.kinds and y.kinds and not x.kinds & y.kinds
    assert conflicts(x, y) and conflicts(y, x)
    assert assign(y, [story(1, x)], PLAIN).story_id is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Sakurajima volcano erupts", "日本樱岛火山喷发"),
        ("Wildfire in Uiseong", "의성 산불 확산"),
        ("Fishing boat capsizes off Jeju", "제주 해상서 어선 전복"),
        ("Typhoon nears Okinawa", "Тайфун приближается к Окинаве"),
        ("Quake rattles Taiwan", "Tsunami warning after tremor"),  # one side names no kind
        ("TSMC profit jumps 57%", "台积电第四季度净利润同比增长57%"),
        ("Lee, Xi hold summit in Shenzhen", "이재명·시진핑 정상회담"),
        ("Foreign ministers meet in Tokyo", "한중일 외교장관 도쿄서 회의"),
    ],
)
def test_one_kind_in_two_scripts_does_not_veto(a: str, b: str) -> None:
    x, y = item(a, language=None), item(b, language=None)
    assert not conflicts(x, y)


@given(st.text(max_size=80), st.text(max_size=80))
@settings(max_examples=150, deadline=None)
def test_every_veto_is_symmetric_and_switchable(a: str, b: str) -> None:
    x, y = item(a, language=None), item(b, language=None)
    assert conflicts(x, y) == conflicts(y, x)
    assert not conflicts(x, x)
    assert not conflicts(x, y, frozenset())
    for veto in VETOES:  # each veto alone never vetoes more than all of them
        assert not conflicts(x, y, frozenset({veto})) or conflicts(x, y)
    assert event_kinds(a) == event_kinds(a.upper().lower())
