"""The place veto (fifth round): two items naming incident sites of one country,
none in common, and one class of incident are two incidents; a capital, a
region or another country's site beside a site is not a veto."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.alert_records import Document
from alerts.gazetteer import _ENTRIES, anchor_concepts, gazetteer_matcher
from alerts.matching.engine import Matcher
from alerts.places import GAZETTEER_COUNTRY, SITES, sites_of_concepts
from alerts.stories import (
    VETOES,
    ItemFeatures,
    StoryIndex,
    StoryParams,
    assign,
    conflicts,
    incident_classes,
)
from tests.unit.test_stories import item, story

PLAIN = StoryParams(threshold=0.75, concept_weight=0.25)
PLACES = frozenset({"places"})


@cache
def _gazetteer() -> Matcher:
    return gazetteer_matcher()


def _item(title: str, lead: str = "", language: str | None = None) -> ItemFeatures:
    """An item with the real gazetteer's concepts, the same vector as every other."""
    anchors = anchor_concepts(_gazetteer(), Document(title=title, summary=lead))
    return item(title, lead=lead, concepts=("w/c", *anchors), language=language)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Drones hit Ryazan oil refinery, sparking fire",
         "General Staff confirms strike on Lukoil refinery in Volgograd"),
        ("우크라, 러 랴잔 정유공장 드론 공격…대형 화재", "俄伏尔加格勒炼油厂遭无人机袭击起火"),
        ("Обломки БПЛА упали на НПЗ в Рязани", "Drone strike sets Volgograd refinery ablaze"),
        ("Russian drone attack on Odesa port", "乌克兰哈尔科夫遭制导炸弹袭击"),
        ("北, 신포 해상서 SLBM 발사", "North Korea fires missiles from Sunan airfield"),
        ("Fire at hotel construction site in Busan kills 6", "인천 물류창고 화재…6명 사망"),
        ("Взрыв на НПЗ в Туапсе", "Explosion at Syzran refinery after drone attack"),
    ],
)  # fmt: skip
def test_sites_of_one_country_and_one_class_never_join(a: str, b: str) -> None:
    """Same vector, same watchlist concept, same country, same class: only the city differs."""
    x, y = _item(a), _item(b)
    assert x.sites and y.sites and not x.sites & y.sites
    assert x.countries & y.countries  # the country veto cannot tell them apart
    assert conflicts(x, y, PLACES) and conflicts(y, x, PLACES)
    assert assign(y, [story(1, x)], PLAIN).story_id is None
    # Without the place veto they would join: the veto is what separates them.
    others = VETOES - PLACES
    assert not conflicts(x, y, others)
    assert assign(y, [story(1, x)], replace(PLAIN, vetoes=others)).story_id == 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        # a reporting capital beside the launch site
        ("Seoul says North Korea fired a ballistic missile",
         "North Korea fires missile from Sunan"),
        ("北, 평양 순안서 ICBM 발사", "Пхеньян запустил МБР с аэродрома Сунан"),
        # where it fell (a region of another country) beside where it flew from
        ("North Korean missile falls in waters off Hokkaido", "北 순안서 탄도미사일 발사"),
        # one site, named in two scripts
        ("Drone attack on Ryazan refinery", "Пожар на НПЗ в Рязани после атаки"),
        # a lead naming both sites shares one
        ("Drones hit Volgograd refinery",
         "Пожар на НПЗ в Волгограде"),
        # sites of two countries (the country veto's business, not this one's)
        ("Drone strike on Busan port", "Drone strike on Osaka port"),
        # one class each, none shared: a fire and a summit
        ("Fire at Busan hotel kills 6", "Leaders meet in Incheon"),
        # a region and a city of one country
        ("Quake off Hokkaido", "Quake shakes Osaka"),
    ],
)  # fmt: skip
def test_capitals_regions_shared_or_foreign_sites_do_not_veto(a: str, b: str) -> None:
    x, y = _item(a), _item(b)
    assert not conflicts(x, y, PLACES) and not conflicts(y, x, PLACES)


def test_a_lead_naming_the_other_site_links_them() -> None:
    x = _item("Drones hit Ryazan refinery", "It follows a strike on a Volgograd refinery.")
    y = _item("Volgograd refinery ablaze after drone strike")
    assert x.sites == {"RU/Ryazan", "RU/Volgograd"} and y.sites == {"RU/Volgograd"}
    assert not conflicts(x, y, PLACES)


@pytest.mark.parametrize(
    ("text", "classes"),
    [
        ("Drones hit Ryazan oil refinery, sparking large fire", {"strike", "fire"}),
        ("러 볼고그라드 정유공장, 우크라 드론 공격에 화재", {"strike", "fire"}),
        ("俄伏尔加格勒炼油厂遭无人机袭击起火", {"strike", "fire"}),
        ("Бочаров: обломки беспилотника вызвали пожар на НПЗ", {"strike", "fire"}),
        ("Kim Jong Un inspects construction of a submarine", {"visit", "construction"}),
        ("김정은, 서부전선 포병부대 사격경기 참관", {"visit", "drill"}),
        ("Chip stocks rally", set()),
    ],
)
def test_incident_classes_in_four_scripts(text: str, classes: set[str]) -> None:
    assert incident_classes(text) == classes


def test_sites_are_gazetteer_places_with_a_country_and_no_capital_or_region() -> None:
    assert set(SITES) <= set(_ENTRIES) and set(SITES) <= set(GAZETTEER_COUNTRY)
    capitals = ("Seoul", "Pyongyang", "Tokyo", "Beijing", "Moscow", "Kyiv", "Washington")
    regions = ("Hokkaido", "Okinawa", "Kamchatka", "Hainan", "Gyeonggi", "Texas")
    for not_a_site in (*capitals, *regions, "Putin", "KCNA", "East Sea"):
        assert not_a_site not in SITES
    assert sites_of_concepts({"gazetteer/Ryazan", "gazetteer/Seoul", "w/Ryazan"}) == {"RU/Ryazan"}


@given(
    st.sets(st.sampled_from(sorted(SITES)), max_size=3),
    st.sets(st.sampled_from(sorted(SITES)), max_size=3),
    st.sets(st.sampled_from(["strike", "fire", "launch"]), max_size=2),
    st.sets(st.sampled_from(["strike", "fire", "launch"]), max_size=2),
)
@settings(max_examples=200, deadline=None)
def test_property_place_veto_is_exactly_same_country_disjoint_sites_and_a_shared_class(
    xs: set[str], ys: set[str], ca: set[str], cb: set[str]
) -> None:
    x = replace(item("x"), sites=frozenset(f"{SITES[s]}/{s}" for s in xs), incidents=frozenset(ca))
    y = replace(item("y"), sites=frozenset(f"{SITES[s]}/{s}" for s in ys), incidents=frozenset(cb))
    same_country = {SITES[s] for s in xs} & {SITES[s] for s in ys}
    expected = bool(same_country and not xs & ys and ca & cb)
    assert conflicts(x, y, PLACES) == conflicts(y, x, PLACES) == expected
    assert not conflicts(x, x, PLACES)


def test_the_index_keeps_the_two_refinery_strikes_apart() -> None:
    """The real StoryIndex, identical vectors: the items of each city form one story."""
    t0 = datetime(2027, 3, 14, 2, tzinfo=UTC)
    titles = [
        ("Drones hit Ryazan oil refinery, sparking large fire", 0),
        ("우크라, 러 랴잔 정유공장 드론 공격…대형 화재", 3),
        ("General Staff confirms strike on Lukoil refinery in Volgograd", 48),
        ("俄伏尔加格勒炼油厂遭无人机袭击起火", 52),
        ("乌无人机袭击俄梁赞炼油厂 引发火灾", 4),
    ]
    feats = [replace(_item(t), published=t0 + timedelta(hours=h)) for t, h in titles]
    feats.sort(key=lambda f: f.published)
    ids = count(1)
    for vetoes, expected in ((VETOES, 2), (VETOES - PLACES, 1)):
        index = StoryIndex(replace(PLAIN, vetoes=vetoes), timedelta(hours=72))
        out = index.assign_batch(feats, lambda _: next(ids))
        assert len({sid for sid, _ in out}) == expected
        by_city = {f.sites: sid for f, (sid, _) in zip(feats, out, strict=True)}
        assert len(by_city) == 2


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Kim Jong Un inspects construction of nuclear-powered submarine",
         "Kim Jong Un oversees firing drill of artillery units"),
        ("김정은, 핵동력 전략유도탄잠수함 건조 현장 시찰",
         "김정은, 서부전선 포병부대 사격경기 참관"),
        ("金正恩视察核动力战略导弹潜艇建造情况", "金正恩观摩西部前线炮兵射击比赛"),
        ("Ким Чен Ын проинспектировал строительство атомной подводной лодки",
         "Ким Чен Ын наблюдал за стрельбами артиллерии"),
    ],
)  # fmt: skip
def test_one_leader_at_a_shipyard_and_at_a_firing_drill_never_join(a: str, b: str) -> None:
    x, y = _item(a), _item(b)
    assert x.kinds == {"construction"} and y.kinds == {"drill"}
    assert conflicts(x, y, frozenset({"kinds"})) and conflicts(y, x)
    assert assign(y, [story(1, x)], PLAIN).story_id is None
