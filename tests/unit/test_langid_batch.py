"""The batched language model (crawler.langid_walk.WindowWalk, classify_many,
normalize.detect_languages, entries.build_items): the same feature counts,
in the same order, the same labels and languages as one text at a time, on
generated and hostile text (surrogates, C1, NUL, mixed scripts, any bytes,
long input)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from py3langid.langid import visit_counts

from crawler import langid_walk, normalize
from crawler.entries import EntryFields, build_item, build_items
from crawler.langid_walk import Counted, DfaWalk, WindowWalk, classify_many
from tests.support.feedgen import LANGS, paragraph, sentence

PIECES = [
    *"ab Zz.,!?-'\"\n\t0123456789",
    *["Жя", "ёЁ", "Љуб", "한국", "字漢", "カナ", "é", "ß", "ğ", "\u202e", "\u200b", "\ufeff"],
    *["\x00", "\x85", "\x9f", "\x1b", "\ud800", "\udfff", "\U0001f600", "&amp;", "<p>"],
    *["\u0627\u0644", "\u05d0", "Ελλ", "ṩ", "\u0301"],
]
TEXT = st.one_of(st.text(), st.lists(st.sampled_from(PIECES), max_size=80).map("".join))
DATA = st.one_of(
    TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.sampled_from([b"", b"a", bytes(7), b"\xff" * 9, bytes(range(256))]),
)


def prose(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        lang = LANGS[i % len(LANGS)]
        text = sentence(rng, lang) + "\n" + paragraph(rng, lang, rng.randint(1, 4))
        out.append(text[: rng.choice([12, 40, 200])])
    return out


@pytest.fixture(scope="module")
def walk() -> DfaWalk:
    walk = normalize._identifier("other")._walk
    assert isinstance(walk, DfaWalk)
    return walk


def same(a: Counted | None, b: Counted | None) -> bool:
    if a is None or b is None:
        return a is b
    return all(x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def library(walk: DfaWalk, data: bytes) -> list[tuple[int, int]] | None:
    found = visit_counts(walk._nextmove, walk._rowbase, walk._output, data)
    return None if found is None else list(found.items())


def as_pairs(counted: Counted | None) -> list[tuple[int, int]] | None:
    if counted is None:
        return None
    keys, visits = counted
    return list(zip(keys.tolist(), map(int, visits.tolist()), strict=True))


@settings(max_examples=300, deadline=None)
@given(st.lists(DATA, max_size=24))
@example([b"", b"x", b""])
@example(["Северная Корея развернула ЗРК".encode(), b"The ministry said so." * 3])
def test_the_windows_count_as_the_walk_text_by_text(walk: DfaWalk, datas: list[bytes]) -> None:
    """`_counts` itself (no way back to the per-text walk): every text's
    features and visits as `DfaWalk.arrays`, i.e. py3langid's visit_counts,
    on a fresh table and again on the one it filled."""
    windows = WindowWalk(walk)
    for _ in range(2):
        got = windows._counts(datas)
        assert len(got) == len(datas)
        for data, counted in zip(datas, got, strict=True):
            assert same(counted, walk.arrays(data)), data
            assert as_pairs(counted) == library(walk, data)


def test_the_windows_count_feed_prose_and_long_text(walk: DfaWalk) -> None:
    windows = WindowWalk(walk)
    texts = prose(3, 200)
    datas = [t.encode() for t in texts] + ["Ж".join(texts).encode(), "".join(texts).encode()]
    for counted, data in zip(windows._counts(datas), datas, strict=True):
        assert same(counted, walk.arrays(data))


def test_a_full_table_starts_again_and_a_batch_too_big_is_walked_per_text(
    walk: DfaWalk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(langid_walk, "MAX_WINDOW_STATES", 1024)
    windows = WindowWalk(walk)
    rng = random.Random(5)
    letters = "abcdefghijklmnopqrstuvwxyz   "
    noise = [  # random Latin letters: ~2,200 states
        "".join(rng.choice(letters) for _ in range(300)).encode() for _ in range(12)
    ]
    prose_data = [t.encode() for t in prose(4, 12)]
    for batch in (prose_data, noise, prose_data, noise[:2], prose_data):
        got = windows.counts_many(batch)
        assert all(same(c, walk.arrays(d)) for c, d in zip(got, batch, strict=True))
        assert windows.states <= 1024
    with pytest.raises(langid_walk._TableFull):
        windows._counts(noise)


def parity_walk() -> DfaWalk:
    """A DFA whose state is not decided by the last bytes: the parity of the
    "a"s so far (feature 5 when even, 7 when odd)."""
    nextmove = [0] * 512
    nextmove[ord("a")] = 1
    for byte in range(256):
        nextmove[256 + byte] = 0 if byte == ord("a") else 1
    return DfaWalk(nextmove, [0, 256], [5, 7])


def test_a_dfa_that_is_not_windowed_is_walked_per_text() -> None:
    walk = parity_walk()
    datas = [b"a" * 7 + b"b" * 3, b"ab" * 5, b"b", b"", b"aaaaaaab"] * 2
    windows = WindowWalk(walk)
    with pytest.raises(langid_walk._NotWindowed):
        windows._counts(datas)
    got = windows.counts_many(datas)
    assert [as_pairs(c) for c in got] == [library(walk, d) for d in datas]


def test_the_batch_is_used_from_min_batch_texts(walk: DfaWalk) -> None:
    datas = [t.encode() for t in prose(6, langid_walk.MIN_BATCH)]
    got = walk.counts_many(datas)
    assert walk._windows is not None and walk._windows.states > 0
    assert all(same(c, walk.arrays(d)) for c, d in zip(got, datas, strict=True))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, st.sampled_from(["cyrillic", "other"])), max_size=20))
@example([("Србија Љубљана Београд ћирилица џез", "cyrillic")] * 9)  # sr: an alias column
@example([("SERBIA ЉУБЉАНА", "cyrillic"), ("", "other"), ("\ud800" * 20, "other")] * 4)
def test_classify_many_labels_as_classify(requests: list[tuple[str, str]]) -> None:
    pairs = [(normalize._identifier(group), text) for text, group in requests]
    assert classify_many(pairs) == [str(ident.classify(text)[0]) for ident, text in pairs]
    for ident, text in pairs:
        counted = ident._walk.arrays(ident._encode(text))
        assert ident.label_of(counted) == ident.classify(text)[0]


def test_classify_many_labels_feed_prose_as_classify() -> None:
    texts = prose(8, 300)
    for group in ("cyrillic", "other"):
        pairs = [(normalize._identifier(group), t) for t in texts]
        assert classify_many(pairs) == [str(i.classify(t)[0]) for i, t in pairs]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(TEXT, st.sampled_from(prose(9, 40))), max_size=30))
def test_detect_languages_equals_detect_language(texts: list[str]) -> None:
    assert normalize.detect_languages(texts) == [normalize.detect_language(t) for t in texts]


FETCHED = datetime(2025, 7, 10, tzinfo=UTC)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["https://e.example/a", "/rel", "", "mailto:x@y"]),
            st.one_of(TEXT, st.sampled_from(prose(10, 20))),
            st.one_of(TEXT, st.sampled_from(prose(11, 20))),
            st.booleans(),
            st.sampled_from([None, "en", "ru"]),
        ),
        max_size=20,
    )
)
def test_build_items_equals_build_item(
    rows: list[tuple[str, str, str, bool, str | None]],
) -> None:
    entries = [
        EntryFields(
            base="https://e.example/feed",
            link=link or None,
            guid=None,
            title=(title, False),
            summary=("", False),
            body=(body, is_html),
            published=None,
            feed_language=lang,
        )
        for link, title, body, is_html, lang in rows
    ]
    assert build_items(entries, fetched_at=FETCHED) == [
        build_item(e, fetched_at=FETCHED) for e in entries
    ]


def bits(scores: np.ndarray) -> bytes:
    return np.ascontiguousarray(scores, dtype=np.float32).tobytes()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(TEXT, st.sampled_from(["cyrillic", "other"])), max_size=24))
def test_batched_scores_are_the_raw_scores_bit_for_bit(requests: list[tuple[str, str]]) -> None:
    """The rows of a batch's texts gathered and widened together, each text's
    product taken from a slice of them: the same float32 bits as
    `_raw_score` of each text alone (the walk, then log1p(visits) @
    table[features] + prior)."""
    idents = [normalize._identifier(group) for _, group in requests]
    datas = [ident._encode(text) for ident, (text, _) in zip(idents, requests, strict=True)]
    counted = idents[0]._walk.counts_many(datas) if idents else []
    got = langid_walk.raw_scores(idents, counted)
    for ident, data, scores in zip(idents, datas, got, strict=True):
        assert bits(scores) == bits(ident._raw_score(data))


def test_batched_scores_of_feed_prose_are_the_raw_scores_bit_for_bit() -> None:
    texts = prose(12, 400) + [t.upper() for t in prose(13, 100)]
    for group in ("cyrillic", "other"):
        idents = [normalize._identifier(group)] * len(texts)
        datas = [idents[0]._encode(t) for t in texts]
        got = langid_walk.raw_scores(idents, idents[0]._walk.counts_many(datas))
        assert [bits(s) for s in got] == [bits(idents[0]._raw_score(d)) for d in datas]
