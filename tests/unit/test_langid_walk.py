"""crawler.langid_walk: the C-loop DFA walk gives py3langid's own feature counts,
in the same order, so every classification is the same (bit for bit)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from py3langid.langid import MODEL_FILE, LanguageIdentifier, visit_counts

from crawler import langid_walk, normalize
from crawler.langid_walk import DfaWalk, load_identifier, load_identifiers
from tests.support.feedgen import LANGS, paragraph, sentence


@pytest.fixture(scope="module")
def models() -> tuple[LanguageIdentifier, LanguageIdentifier]:
    """(the library's identifier, ours): two loads of the same model file."""
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False), load_identifier()


def counted(walk: DfaWalk, data: bytes) -> list[tuple[int, int]] | None:
    found = walk.visits(data)
    return None if found is None else list(found.items())


def reference(lib: LanguageIdentifier, data: bytes) -> list[tuple[int, int]] | None:
    found = visit_counts(lib.tk_nextmove, lib._rowbase, lib.tk_output, data)
    return None if found is None else list(found.items())


PIECES = [
    *"ab Zz.,!?-'\"\n\t0123456789",
    *["Жя", "ёЁ", "한국", "字漢", "カナ", "é", "ß", "ğ", "\u202e", "\u200b", "\ufeff", "\x00"],
    *["\x1b", "\ud7ff", "\U0001f600", "&amp;", "<p>", "]]>", "\u0627\u0644", "\u05d0"],
]
TEXT = st.one_of(st.text(), st.lists(st.sampled_from(PIECES), max_size=60).map("".join))


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_walk_equals_visit_counts_on_any_bytes(
    models: tuple[LanguageIdentifier, LanguageIdentifier], data: bytes
) -> None:
    lib, ours = models
    assert counted(ours._walk, data) == reference(lib, data)


@settings(max_examples=400, deadline=None)
@given(TEXT)
def test_walk_equals_visit_counts_on_text(
    models: tuple[LanguageIdentifier, LanguageIdentifier], text: str
) -> None:
    lib, ours = models
    data = lib._encode(text)
    assert counted(ours._walk, data) == reference(lib, data)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from([None, ["en", "fr", "de", "es"], ["ru", "uk", "bg"]]))
def test_classify_is_the_same_bit_for_bit(
    models: tuple[LanguageIdentifier, LanguageIdentifier], text: str, langs: list[str] | None
) -> None:
    lib, ours = (copy.copy(m) for m in models)
    lib.set_languages(langs)
    ours.set_languages(langs)
    assert ours.classify(text) == lib.classify(text)
    assert ours.rank(text) == lib.rank(text)


def test_classify_is_the_same_on_feed_prose(
    models: tuple[LanguageIdentifier, LanguageIdentifier],
) -> None:
    import random

    lib, ours = models
    rng = random.Random(7)
    for i in range(400):
        lang = LANGS[i % len(LANGS)]
        text = sentence(rng, lang) + "\n" + paragraph(rng, lang, rng.randint(1, 6))
        for sample in (text[:200], text[:40], text.upper()[:200]):
            assert ours.classify(sample) == lib.classify(sample), sample


GROUPS = {"latin": ["en", "fr", "de", "es", "pl"], "cyrillic": ["ru", "uk", "bg", "sr"]}


@pytest.fixture(scope="module", params=["model file", "cache"])
def grouped(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LanguageIdentifier]]:
    """The groups read from the model file (writing the cache), then from the cache."""
    cache = tmp_path_factory.getbasetemp() / "langid-cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_CACHE_HOME", str(cache))
        if request.param == "cache":
            load_identifiers(GROUPS)  # made by an earlier process
        yield load_identifiers(GROUPS)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from(sorted(GROUPS)))
def test_grouped_identifiers_classify_as_the_restricted_full_model(
    models: tuple[LanguageIdentifier, LanguageIdentifier],
    grouped: dict[str, LanguageIdentifier],
    text: str,
    group: str,
) -> None:
    lib = copy.copy(models[0])
    lib.set_languages(GROUPS[group])
    assert grouped[group].classify(text) == lib.classify(text)
    assert grouped[group].rank(text) == lib.rank(text)


def test_grouped_identifiers_keep_no_full_table(grouped: dict[str, LanguageIdentifier]) -> None:
    """The 142-language table is not referenced once the groups are cut out
    of it; the groups share one walk (one DFA, one cache)."""
    walks = {id(ident._walk) for ident in grouped.values()}
    assert len(walks) == 1
    for name, ident in grouped.items():
        for table in (ident.nb_ptc, ident._full_model[0]):
            assert table.shape[1] == len(ident.nb_classes)  # aliases: "sr" is two columns
            assert table.flags["C_CONTIGUOUS"]
        assert set(ident.nb_classes) == set(GROUPS[name])


def test_the_cache_is_written_and_read_by_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = load_identifiers(GROUPS)
    (where,) = (tmp_path / "newswatch").iterdir()
    assert sorted(p.name for p in where.iterdir() if not p.name.startswith("tables-")) == [
        "nextmove.npy",
        "output.npy",
        "row.npy",
    ]
    again = load_identifiers(GROUPS)
    for ident in (*first.values(), *again.values()):
        assert isinstance(ident.tk_nextmove, langid_walk._FileArray)  # read as the walk needs it
    text = "Северная Корея развернула комплекс Панцирь"
    assert again["cyrillic"].rank(text) == first["cyrillic"].rank(text)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "remove"])
@pytest.mark.parametrize("name", ["nextmove.npy", "output.npy", "row.npy", "tables"])
def test_a_damaged_cache_is_made_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    models: tuple[LanguageIdentifier, LanguageIdentifier],
    damage: str,
    name: str,
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    load_identifiers(GROUPS)
    (where,) = (tmp_path / "newswatch").iterdir()
    (path,) = [p for p in where.iterdir() if p.name.startswith(name)]
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x93NUMPY not really" * 10)
    else:
        path.unlink()
    grouped = load_identifiers(GROUPS)
    lib = copy.copy(models[0])
    lib.set_languages(GROUPS["latin"])
    text = "North Korea fielded the Pantsir system near the border"
    assert grouped["latin"].rank(text) == lib.rank(text)
    assert isinstance(grouped["latin"].tk_nextmove, langid_walk._FileArray)  # written again


@pytest.mark.parametrize("at", [0.0, 0.5, 1.0])
def test_a_cache_with_a_move_to_no_state_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at: float
) -> None:
    """A DFA file of the right size whose bytes were changed in place (a move
    to a state that does not exist) is not used: it would raise in the walk
    of some later text. It is written again, as the model file gives it."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    load_identifiers(GROUPS)
    (where,) = (tmp_path / "newswatch").iterdir()
    path = where / "nextmove.npy"
    good = path.read_bytes()
    count = len(langid_walk._FileArray(path))
    offset = len(good) - 4 * count + 4 * min(count - 1, int(count * at))
    path.write_bytes(good[:offset] + b"\xff\xff\xff\x7f" + good[offset + 4 :])
    grouped = load_identifiers(GROUPS)
    assert path.read_bytes() == good
    assert isinstance(grouped["latin"].tk_nextmove, langid_walk._FileArray)


def test_without_a_writable_cache_the_model_file_is_read(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    models: tuple[LanguageIdentifier, LanguageIdentifier],
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    grouped = load_identifiers(GROUPS)
    assert isinstance(grouped["latin"].tk_nextmove, np.ndarray)  # in memory, as before
    lib = copy.copy(models[0])
    lib.set_languages(GROUPS["cyrillic"])
    text = "Северная Корея развернула комплекс"
    assert grouped["cyrillic"].rank(text) == lib.rank(text)


def test_the_crawlers_identifiers_are_grouped() -> None:
    other, cyrillic = normalize._identifier("other"), normalize._identifier("cyrillic")
    assert set(other.nb_classes) == {*normalize._LATIN_LANGS, *normalize._OTHER_LANGS}
    assert set(cyrillic.nb_classes) == set(normalize._CYRILLIC_LANGS)
    assert other.nb_ptc.shape[1] == len(other.nb_classes) < 142


def test_cache_is_bounded_and_stays_right(
    models: tuple[LanguageIdentifier, LanguageIdentifier], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_EDGES transitions or MAX_STATES states the walk stops caching
    and keeps answering right."""
    lib, _ = models
    data = bytes(range(256)) * 3 + "Северная Корея развернула комплекс".encode()
    monkeypatch.setattr(langid_walk, "MAX_EDGES", 50)
    walk = DfaWalk(lib.tk_nextmove, lib._rowbase, lib.tk_output)
    assert counted(walk, data) == reference(lib, data)
    assert walk.edges == 50
    assert counted(walk, data) == reference(lib, data)
    monkeypatch.setattr(langid_walk, "MAX_EDGES", 10_000)
    monkeypatch.setattr(langid_walk, "MAX_STATES", 20)
    walk = DfaWalk(lib.tk_nextmove, lib._rowbase, lib.tk_output)
    for _ in range(2):
        assert counted(walk, data) == reference(lib, data)
        assert len(walk._states) == 20


def test_detect_language_uses_the_fast_walk() -> None:
    ident = normalize._identifier("other")
    assert isinstance(ident._walk, DfaWalk)
    assert normalize._identifier("cyrillic")._walk is ident._walk  # one cache per process


def old_detect_language(text: str) -> str | None:
    """detect_language before the one-scan CJK check and the ASCII letter count."""
    sample = text[: normalize.LANGUAGE_SAMPLE]
    count = normalize.count_chars
    if sample.isascii():
        hangul = kana = han = 0
    else:
        hangul, kana, han = (
            count(p, sample) for p in (normalize._HANGUL, normalize._KANA, normalize._HAN)
        )
    cjk = hangul + kana + han
    if cjk >= normalize.MIN_CJK:
        if hangul >= max(kana, han) / 2 and hangul >= normalize.MIN_CJK:
            return "ko"
        if kana >= normalize.MIN_CJK:
            return "ja"
        if han >= normalize.MIN_CJK:
            return "zh"
    letters = len(sample) - count(normalize._NOT_LETTER, sample)
    if letters - cjk < normalize.MIN_LETTERS:
        return None
    cyrillic = 0 if sample.isascii() else count(normalize._CYRILLIC, sample)
    group = "cyrillic" if cyrillic * 2 > letters else "other"
    lang, _score = normalize._identifier(group).classify(sample[: normalize.MODEL_SAMPLE])
    return str(lang)


SCRIPTS = st.lists(
    st.sampled_from(
        [
            *"abcXYZ_09 .,\n\t²½Ⅻ",
            "한국",
            "カナ",
            "漢字",
            "Жжё",
            "é",
            "ß",
            "\u0627",
            "\u202e",
            "\x00",
        ]
    ),
    max_size=120,
).map("".join)


# around the MIN_LETTERS / MIN_CJK boundaries: a dozen characters, cases, scripts
NEAR_BOUNDARY = st.lists(
    st.sampled_from([*"aBcDxYZ", "한", "カ", "字", "Ж", "ё", " ", "1", "_", "²"]),
    min_size=6,
    max_size=22,
).map("".join)


@settings(max_examples=800, deadline=None)
@given(
    st.one_of(
        NEAR_BOUNDARY, SCRIPTS, TEXT, st.text(), st.text(alphabet="aZ _1.").map(lambda s: s * 9)
    )
)
@example("한abcdefghijk")  # one CJK character first: the letters left are one short
@example("ABCDEFGHIJKL")  # twelve capitals: just enough letters
def test_detect_language_equals_the_old_code(text: str) -> None:
    assert normalize.detect_language(text) == old_detect_language(text)


def test_the_file_array_reads_what_numpy_wrote(tmp_path: Path) -> None:
    values = np.array([0, 1, 255, 2**32 - 1, 104_583], dtype="<u4")
    path = tmp_path / "a.npy"
    np.save(path, values)
    array = langid_walk._FileArray(path)
    assert len(array) == 5 and [array[i] for i in range(5)] == values.tolist()
    with pytest.raises(IndexError):
        array[5]
    with pytest.raises(IndexError):
        array[-1]
    np.save(path, values.astype("<u2"))
    with pytest.raises(ValueError):
        langid_walk._FileArray(path)  # not uint32: refused, the cache is made again
