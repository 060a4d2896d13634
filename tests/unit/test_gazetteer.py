"""The built-in gazetteer: every spelling of an entry is the same concept, in
every script, through the real matcher; ambiguous words are not entries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.alert_records import Document
from alerts.gazetteer import _ENTRIES, anchor_concepts, gazetteer_matcher, gazetteer_watchlist

MATCHER = gazetteer_matcher()
SPELLINGS = [(label, alias) for label, aliases in _ENTRIES.items() for alias in (label, *aliases)]


def _concrete(alias: str) -> str:
    """A word the alias names: the `*` wildcard filled with a plausible ending."""
    return alias.replace("*", "а" if any("\u0400" <= c <= "\u04ff" for c in alias) else "s")


@pytest.mark.parametrize(("label", "alias"), SPELLINGS)
def test_each_spelling_is_its_entry(label: str, alias: str) -> None:
    doc = Document(title=f"Report: {_concrete(alias)} today", summary="")
    assert f"gazetteer/{label}" in anchor_concepts(MATCHER, doc)


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("U.S., China trade negotiators meet in Kuala Lumpur", "", {"Kuala Lumpur"}),
        ("中美经贸磋商在吉隆坡举行", "", {"Kuala Lumpur"}),
        ("США и Китай начали торговые переговоры в Куала-Лумпуре", "", {"Kuala Lumpur"}),
        ("미중, 쿠알라룸푸르서 무역협상 시작", "", {"Kuala Lumpur"}),
        ("Путин и Си Цзиньпин провели переговоры в Пекине", "", {"Putin", "Xi Jinping", "Beijing"}),
    ],
)
def test_one_place_in_four_scripts(title: str, summary: str, expected: set[str]) -> None:
    got = anchor_concepts(MATCHER, Document(title=title, summary=summary))
    assert got == {f"gazetteer/{x}" for x in expected}


@pytest.mark.parametrize(
    "text",
    [
        "북한, 대남 선전 강화",  # 선전 = propaganda here, not Shenzhen
        "Chip stocks rally as memory prices climb",
        "통일부, 개성 있는 디자인 공모",  # 개성 = character here, not Kaesong
        "",
        "<script>alert(1)</script>",
    ],
)
def test_no_entry_for_ordinary_or_hostile_text(text: str) -> None:
    assert anchor_concepts(MATCHER, Document(title=text, summary=text)) == frozenset()


@given(st.text(max_size=300))
def test_any_text_gives_only_known_entries(text: str) -> None:
    labels = {f"gazetteer/{label}" for label in _ENTRIES}
    assert anchor_concepts(MATCHER, Document(title=text, summary=text)) <= labels


def test_gazetteer_is_a_plain_watchlist_that_never_alerts() -> None:
    watchlist = gazetteer_watchlist()
    assert watchlist.notify == () and len(watchlist.rules) == len(_ENTRIES)


@pytest.mark.parametrize(("label", "alias"), SPELLINGS)
def test_a_wildcard_only_ends_an_alias(label: str, alias: str) -> None:
    """The matcher reads `*` as "any continuation of the last word" only; one
    inside a phrase would silently never match (each spelling is tested above
    with its wildcard filled, which caught exactly that)."""
    assert "*" not in alias[:-1]
