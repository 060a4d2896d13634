"""The Matcher's API and semantics: hits, offsets, snippets, subsets, examples."""

from __future__ import annotations

import pytest

from alerts.alert_records import Document, Hit, Query, Term, Watchlist
from alerts.matching.engine import (
    ExampleFailure,
    UnknownWatchlistError,
    compile_watchlists,
    highlight,
    normalize_text,
    run_examples,
)
from alerts.matching.query_parser import QuerySyntaxError
from tests.unit.test_matching_backends import matching_backend  # noqa: F401 (autouse)

AIR = Watchlist(
    "air-defence",
    (
        Term("Pantsir"),
        Term("SAM", aliases=("surface-to-air missile", "지대공 미사일", "地对空导弹", "ЗРК")),
        Query('Pantsir AND ("North Korea" OR DPRK)'),
    ),
    exclude=("BRICS Games",),
)
NAVY = Watchlist("navy", (Term("frigate"), Term("Pantsir-M")))


def _terms(text: str, *watchlists: Watchlist, **doc: str) -> dict[str, tuple[str, ...]]:
    matcher = compile_watchlists(watchlists or (AIR,))
    return {m.watchlist: m.terms for m in matcher.match(Document(title="", body=text, **doc))}


def test_labels_are_canonical_never_the_alias() -> None:
    assert _terms("Russia sent a ЗРК and a surface-to-air missile") == {"air-defence": ("SAM",)}


def test_terms_in_rule_order_and_query_label() -> None:
    got = _terms("DPRK showed a SAM and a Pantsir")
    assert got == {"air-defence": ("Pantsir", "SAM", 'Pantsir AND ("North Korea" OR DPRK)')}


def test_hits_carry_spelling_field_and_offsets_into_normalised_text() -> None:
    matcher = compile_watchlists([AIR])
    doc = Document(title="ＳＡＭ news", body="A  surface-to-air\nmissile was fired")
    (match,) = matcher.match(doc)
    assert Hit("SAM", "SAM", "title", 0, 3) in match.hits
    body = normalize_text(doc.body)
    hit = next(h for h in match.hits if h.field == "body")
    assert hit.spelling == "surface-to-air missile"
    assert body[hit.start : hit.end] == "surface-to-air\nmissile"


def test_offsets_survive_cjk_spacing_and_multibyte_text() -> None:
    matcher = compile_watchlists([Watchlist("k", (Term("상하이협력기구"), Term("Pantsir")))])
    text = "러시아는  상하이 협력 기구에서 Pantsir를 보여주었다"
    (match,) = matcher.match(Document(title="", body=text))
    found = {text[h.start : h.end] for h in match.hits}
    assert found == {"상하이 협력 기구", "Pantsir"}


def test_star_hit_covers_the_whole_word() -> None:
    matcher = compile_watchlists([Watchlist("r", (Term("Панцир*"),))])
    (match,) = matcher.match(Document(title="", body="у Панцирями"))
    assert (match.hits[0].start, match.hits[0].end) == (2, 11)


def test_phrase_does_not_span_two_fields() -> None:
    matcher = compile_watchlists([Watchlist("p", (Term("North Korea"),))])
    assert matcher.match(Document(title="Talks in the North", body="Korea said")) == []


def test_exclusion_in_any_field_vetoes_only_its_watchlist() -> None:
    matcher = compile_watchlists([AIR, Watchlist("other", (Term("SAM"),))])
    doc = Document(title="BRICS Games open", body="a SAM was seen")
    assert [m.watchlist for m in matcher.match(doc)] == ["other"]


def test_exclusion_alone_is_not_a_match() -> None:
    assert _terms("BRICS Games") == {}


def test_capitals_are_case_sensitive_per_spelling_and_overridable() -> None:
    wl = Watchlist("c", (Term("NATO", aliases=("North Atlantic Alliance",)),))
    assert _terms("nato and north atlantic alliance", wl) == {"c": ("NATO",)}
    assert list(compile_watchlists([wl]).match(Document(title="nato"))) == []
    forced = Watchlist("f", (Term("Nato", case_sensitive=True), Term("SAM", case_sensitive=False)))
    assert _terms("NATO sam", forced) == {"f": ("SAM",)}
    assert _terms("Nato", forced) == {"f": ("Nato",)}


def test_query_case_sensitive_flag_applies_to_atoms() -> None:
    wl = Watchlist("q", (Query("Bastion AND coast", case_sensitive=True),))
    assert _terms("Bastion on the coast", wl) == {"q": ("Bastion AND coast",)}
    assert _terms("bastion on the coast", wl) == {}


def test_near_counts_words_between_in_either_order() -> None:
    wl = Watchlist("n", (Query("Pantsir NEAR/2 Syria"),))
    assert _terms("Pantsir in northern Syria", wl) == {"n": ("Pantsir NEAR/2 Syria",)}
    assert _terms("Syria, and its Pantsir's radar", wl) == {"n": ("Pantsir NEAR/2 Syria",)}
    assert _terms("Pantsir is in the north of Syria", wl) == {}


def test_near_counts_cjk_characters_and_hangul_words() -> None:
    wl = Watchlist("n", (Query("판치르 NEAR/1 시리아"),))
    assert _terms("판치르를 시리아에", wl) == {"n": ("판치르 NEAR/1 시리아",)}
    assert _terms("판치르를 북부 지역 시리아에", wl) == {}
    zh = Watchlist("z", (Query("导弹 NEAR/2 叙利亚"),))
    assert _terms("导弹在叙利亚", zh) == {"z": ("导弹 NEAR/2 叙利亚",)}
    assert _terms("导弹部署在北部叙利亚", zh) == {}


def test_languages_filter() -> None:
    wl = Watchlist("l", (Term("Bastion"),), languages=("ru", "ko"))
    assert _terms("Bastion", wl, language="en") == {}
    assert _terms("Bastion", wl, language="ko") == {"l": ("Bastion",)}
    assert _terms("Bastion", wl) == {"l": ("Bastion",)}  # unknown language passes


def test_only_restricts_and_rejects_unknown_names() -> None:
    matcher = compile_watchlists([AIR, NAVY])
    doc = Document(title="A SAM on a frigate")
    assert [m.watchlist for m in matcher.match(doc)] == ["air-defence", "navy"]
    assert [m.watchlist for m in matcher.match(doc, only=["navy"])] == ["navy"]
    assert matcher.watchlist_names == ("air-defence", "navy")
    with pytest.raises(UnknownWatchlistError):
        matcher.match(doc, only=["nope"])


def test_nested_spellings_are_all_found() -> None:
    matcher = compile_watchlists([AIR, NAVY])
    (air, navy) = matcher.match(Document(title="The Pantsir-M entered service"))
    assert air.terms == ("Pantsir",)
    assert navy.terms == ("Pantsir-M",)


def test_snippets_are_short_cut_at_words_and_collapsed() -> None:
    filler = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 20
    body = (
        filler + "Russia moved a SAM\n\n battery   north. " + filler + "Second SAM here. " + filler
    )
    (match,) = compile_watchlists([AIR]).match(Document(title="", body=body))
    assert 1 <= len(match.snippets) <= 3
    assert len(match.snippets) == 2
    first = match.snippets[0]
    assert "a SAM battery north." in first
    assert first.startswith("…") and first.endswith("…")
    assert 100 <= len(first) <= 260
    assert first[1] != " " and "  " not in first
    words = set(filler.replace(".", " ").replace(",", " ").split()) | {"…"}
    assert first.split()[0].strip("…") in words


def test_snippets_at_most_three() -> None:
    # distinct passages: identical ones are shown once (test_matching_properties)
    body = " ".join(f"SAM report{n} " + "word " * 60 for n in range(6))
    (match,) = compile_watchlists([AIR]).match(Document(title="", body=body))
    assert len(match.snippets) == 3
    assert len(match.hits) == 6


def test_bad_query_names_the_watchlist() -> None:
    wl = Watchlist("broken", (Query("(Pantsir OR DPRK"),))
    with pytest.raises(QuerySyntaxError, match=r"broken.*unbalanced parenthesis at column 1"):
        compile_watchlists([wl])


def test_empty_matcher_and_empty_document() -> None:
    assert compile_watchlists([]).match(Document(title="SAM")) == []
    assert compile_watchlists([AIR]).match(Document(title="")) == []


def test_run_examples_reports_both_directions() -> None:
    wl = Watchlist(
        "air",
        (Term("SAM"),),
        examples_match=("a SAM site", "Samuel said"),
        examples_no_match=("the same", "two SAMs"),
    )
    assert run_examples([wl]) == [
        ExampleFailure("air", "Samuel said", expected=True),
        ExampleFailure("air", "two SAMs", expected=False, matched=("SAM",)),
    ]


def test_highlight_marks_hits() -> None:
    text = "a SAM and a Pantsir"
    (match,) = compile_watchlists([AIR]).match(Document(title=text))
    assert highlight(text, match.hits) == "a [SAM] and a [Pantsir]"
