"""The gazetteer's own boundaries (fifth round): a Hangul name counts only at the
start of a Hangul word, Han spellings not inside their listed longer words; a
user's watchlist term still matches inside words (CONTRACT.md)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.alert_records import Document, Term, Watchlist
from alerts.gazetteer import _ENTRIES, _INSIDE, _NOT_IN, anchor_concepts, gazetteer_matcher
from alerts.matching.engine import compile_watchlists

MATCHER = gazetteer_matcher()


def _hangul(s: str) -> bool:
    return "\uac00" <= s[0] <= "\ud7a3"


# Hangul spellings of names (not the class nouns of _INSIDE), each with its entry.
NAMES = sorted(
    (label, alias)
    for label, aliases in _ENTRIES.items()
    if label not in _INSIDE
    for alias in aliases
    if _hangul(alias) and "*" not in alias
)
CLASSES = sorted(
    (label, alias)
    for label, aliases in _ENTRIES.items()
    if label in _INSIDE
    for alias in aliases
    if _hangul(alias)
)


def _concepts(title: str, summary: str = "") -> frozenset[str]:
    return anchor_concepts(MATCHER, Document(title=title, summary=summary))


@pytest.mark.parametrize(
    ("text", "absent"),
    [
        ("아시아태평양경제협력체(APEC) 정상회의 개막", "Pyongyang"),  # Pacific
        ("일본 미야기현 앞바다 지진…태평양 연안 쓰나미 주의보", "Pyongyang"),
        ("태평양함대 사령관 교체", "Pyongyang"),
        ("부대가 이동해 경계 강화", "East Sea"),  # 이동해 = "moving"
        ("국왕이 연설했다", "Wang Yi"),  # 국왕이 = "the king (subject)"
        ("반도체 부산물 가격 급등", "Busan"),  # 부산물 = "by-product"
        ("결정한은 아니다", "Bank of Korea"),
        ("东京都知事选举", "Kyoto"),  # Tokyo Metropolis
        ("中方对有关岛屿拥有主权", "Guam"),  # "the islands concerned"
        ("该舰能登陆作战", "Noto"),  # "can land"
        ("东京大田区发生火灾", "Daejeon"),  # Ōta ward
        ("日本南海海槽地震概率上调", "South China Sea"),  # Nankai Trough
        ("上海南站客流创新高", "Hainan"),  # Shanghai South station
        ("上海合作组织峰会在天津举行", "Shanghai"),  # the SCO, not the city
        ("상하이협력기구 국방장관회의", "Shanghai"),
        ("SCO: Shanghai Cooperation Organisation ministers meet", "Shanghai"),
        ("Форум Шанхайской организации сотрудничества", "Shanghai"),
    ],
)
def test_no_entry_inside_a_longer_word(text: str, absent: str) -> None:
    assert f"gazetteer/{absent}" not in _concepts(text)
    assert f"gazetteer/{absent}" not in _concepts("", text)  # in the lead too


@pytest.mark.parametrize(
    ("text", "present"),
    [
        ("북한, 평양에서 열병식", "Pyongyang"),  # particle at the end
        ("평양발 보도", "Pyongyang"),
        ("평양냉면 축제", "Pyongyang"),  # a compound that starts with the name: of the place
        ("北평양 순안서 탄도미사일 발사", "Pyongyang"),  # Han abbreviation before it
        ('"평양" 공동선언', "Pyongyang"),
        ("서울·평양 동시 발표", "Pyongyang"),
        ("서울대 연구팀", "Seoul"),
        ("인천공항 폐쇄", "Incheon"),
        ("동해상으로 발사", "East Sea"),
        ("왕이 외교부장, 방한", "Wang Yi"),
        ("부산에서 회의", "Busan"),
        ("东京都知事与京都市长会谈", "Kyoto"),  # one 京都 outside 东京都
        ("美军关岛基地", "Guam"),
        ("能登半岛地震", "Noto"),
        ("海南三亚", "Hainan"),
        ("南海局势", "South China Sea"),
    ],
)
def test_entry_at_a_word_start_or_in_its_own_word(text: str, present: str) -> None:
    assert f"gazetteer/{present}" in _concepts(text)


@pytest.mark.parametrize(
    ("text", "present"),
    [
        ("북한, 군사정찰위성 발사", "satellite"),
        ("핵항모 부산 입항", "aircraft carrier"),
        ("핵항공모함 칼빈슨호", "aircraft carrier"),
        ("원자력쇄빙선 진수", "icebreaker"),
        ("북, 전략순항미사일 발사", "cruise missile"),
        ("신형극초음속 미사일", "hypersonic"),
        ("전략핵잠수함 건조", "nuclear submarine"),
        ("재탈북 시도", "defector"),
    ],
)
def test_class_nouns_still_match_inside_compounds(text: str, present: str) -> None:
    assert f"gazetteer/{present}" in _concepts(text)


@pytest.mark.parametrize(("label", "alias"), NAMES)
def test_every_hangul_name_needs_a_word_start(label: str, alias: str) -> None:
    """Audit of every Hangul name: behind a Hangul syllable it is not the entry,
    behind a space, digit, Han abbreviation or quote it is (with a particle)."""
    concept = f"gazetteer/{label}"
    for prefix in ("태", "대", "북", "남"):
        assert concept not in _concepts(f"보도 {prefix}{alias}에서"), prefix
    for prefix in (" ", "5", "北", "'", "·", "("):
        assert concept in _concepts(f"보도{prefix}{alias}에서"), prefix


@pytest.mark.parametrize(("label", "alias"), CLASSES)
def test_every_class_noun_matches_inside(label: str, alias: str) -> None:
    assert f"gazetteer/{label}" in _concepts(f"신형{alias} 공개")


@pytest.mark.parametrize(
    ("spelling", "word"), [(s, w) for s, words in _NOT_IN.items() for w in words]
)
def test_every_listed_longer_word_is_not_the_entry(spelling: str, word: str) -> None:
    label = next(lb for lb, aliases in _ENTRIES.items() if spelling in (lb, *aliases))
    concept = f"gazetteer/{label}"
    free = spelling.replace("*", "я")  # a wildcard filled: Шанха* -> Шанхая
    assert concept not in _concepts(f"报道：{word}。")
    assert concept not in _concepts(f"报道：{word.upper()}。")  # case does not matter
    assert concept in _concepts(f"报道：{word}。{free}。")  # a second, free occurrence counts


@given(
    st.sampled_from(NAMES),
    st.text(alphabet=st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3), min_size=1),
    st.sampled_from(["", "에서", "의", "발", "은", "서"]),
)
def test_property_hangul_before_a_name_hides_it(
    entry: tuple[str, str], before: str, particle: str
) -> None:
    label, alias = entry
    text = f"{before}{alias}{particle}"
    # The whole text is one Hangul word, so its only word start is position 0:
    # the entry is found only when the generated prefix itself starts with it.
    if not any(text.startswith(a) for a in _ENTRIES[label]):
        assert f"gazetteer/{label}" not in _concepts(text)


@given(
    st.sampled_from(NAMES),
    st.sampled_from([" ", "\n", "1", "A", "北", "“", "-", "…"]),
    st.sampled_from(["", "에서", "의", "발", "은", "서", "시"]),
)
def test_property_a_name_at_a_word_start_is_found(
    entry: tuple[str, str], before: str, particle: str
) -> None:
    label, alias = entry
    assert f"gazetteer/{label}" in _concepts(f"속보{before}{alias}{particle} 소식")


@pytest.mark.parametrize(
    ("term", "text"),
    [("평양", "태평양 순방"), ("왕이", "국왕이 연설"), ("京都", "东京都知事"), ("부산", "부산물")],
)
def test_watchlist_terms_still_match_inside_words(term: str, text: str) -> None:
    """The gazetteer's boundaries are its own: a user's term keeps the contract."""
    matcher = compile_watchlists([Watchlist(name="w", rules=(Term(term),))], "aho")
    assert [m.terms for m in matcher.match(Document(title=text))] == [(term,)]
