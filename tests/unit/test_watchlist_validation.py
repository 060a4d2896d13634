"""Watchlist files are validated with the matcher's own rules (issue #16).

A file that imports compiles; a term that normalises to nothing (or only to
punctuation, separators and invisible characters) is refused at import with
its line; a watchlist stored before that rule existed is skipped at compile
time, alone, and the others still match.
"""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts import AlertError
from alerts.alert_records import Document, Query, Term, Watchlist
from alerts.matching.engine import check_rule, compile_watchlists
from alerts.watchlist_files import (
    MAX_ALIASES_PER_TERM,
    MAX_SPELLINGS_PER_WATCHLIST,
    WatchlistFileError,
    dump_watchlists,
    parse_watchlists,
)

# Characters with nothing to search for: punctuation, separators, format
# characters (zero-width space, soft hyphen, BOM, bidi marks) and spaces.
EMPTYISH = st.characters(categories=("Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Zs", "Cf"))
NOTHING_TERMS = [
    "-",
    "**",
    "*",
    "\u200b",
    "\u00ad",
    "\ufeff",
    "\u200e\u200f",
    "\u2066\u2069",
    "\u202e",
    "...",
    "— –",
    "_",
    "\u0301",
]


def _file(term: object, key: str = "terms") -> str:
    entry: dict[str, object] = {"name": "w", "terms": ["ok"]}
    if key == "terms":
        entry["terms"] = [term]
    elif key == "alias":
        entry["terms"] = [{"term": "ok", "aliases": [term]}]
    elif key == "query":
        entry["terms"] = [{"query": f'ok AND "{term}"'}]
    else:
        entry["exclude"] = [term]
    return yaml.safe_dump({"watchlists": [entry]}, allow_unicode=True)


@pytest.mark.parametrize("where", ["terms", "alias", "query", "exclude"])
@pytest.mark.parametrize("term", NOTHING_TERMS, ids=[repr(t) for t in NOTHING_TERMS])
def test_term_that_normalises_to_nothing_is_refused_at_import(term: str, where: str) -> None:
    with pytest.raises(WatchlistFileError, match=r"^line \d+: .*(empty|no letter)"):
        parse_watchlists(_file(term, where))


@settings(max_examples=200, deadline=None)
@given(term=st.text(alphabet=EMPTYISH, min_size=1, max_size=12))
def test_any_punctuation_format_or_space_term_is_refused(term: str) -> None:
    with pytest.raises(WatchlistFileError):
        parse_watchlists(_file(term))
    with pytest.raises(AlertError):
        check_rule(Term(term))


SPELLING = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=20
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    terms=st.lists(SPELLING, min_size=1, max_size=4),
    aliases=st.lists(SPELLING, max_size=3),
    exclude=st.lists(SPELLING, max_size=2),
    query=SPELLING,
)
def test_every_file_that_imports_compiles_and_round_trips(
    terms: list[str], aliases: list[str], exclude: list[str], query: str
) -> None:
    entry = {
        "name": "w",
        "terms": [*terms, {"term": "anchor", "aliases": aliases}, {"query": query}],
        "exclude": exclude,
    }
    text = yaml.safe_dump({"watchlists": [entry]}, allow_unicode=True)
    try:
        parsed = parse_watchlists(text)
    except WatchlistFileError as e:
        assert "\n" not in str(e) and str(e).startswith("line ")
        return
    matcher = compile_watchlists(parsed, "aho")  # must not raise
    matcher.match(Document(title=" ".join(terms), body=query))
    assert parse_watchlists(dump_watchlists(parsed)) == parsed


def test_stored_invalid_watchlist_is_skipped_and_the_others_match() -> None:
    """Watchlists stored before import refused such terms: each fails alone."""
    good = Watchlist("good", (Term("Pantsir"),))
    bad = [
        Watchlist("dash", (Term("-"),)),
        Watchlist("zwsp", (Term("Pantsir"), Term("\u200b"))),
        Watchlist("alias", (Term("SAM", ("**",)),)),
        Watchlist("query", (Query('Pantsir AND "\u00ad"'),)),
        Watchlist("broken-query", (Query("(Pantsir"),)),
        Watchlist("exclude", (Term("Pantsir"),), exclude=("\ufeff",)),
    ]
    for backend in ("aho", "auto"):
        matcher = compile_watchlists([*bad[:3], good, *bad[3:]], backend, skip_invalid=True)
        assert matcher.watchlist_names == ("good",)
        assert [name for name, _ in matcher.skipped] == [w.name for w in bad]
        assert all("\n" not in reason for _, reason in matcher.skipped)
        found = matcher.match(Document(title="Pantsir deployed", body="SAM"))
        assert [m.watchlist for m in found] == ["good"]
    with pytest.raises(AlertError):
        compile_watchlists([good, bad[0]], "aho")  # without skip_invalid: the caller decides


def test_caps_on_aliases_and_spellings() -> None:
    many = [{"term": "x", "aliases": [f"a{i}" for i in range(MAX_ALIASES_PER_TERM + 1)]}]
    text = yaml.safe_dump({"watchlists": [{"name": "w", "terms": many}]})
    with pytest.raises(WatchlistFileError, match="more than 200 aliases"):
        parse_watchlists(text)
    per_term = MAX_ALIASES_PER_TERM
    terms = [
        {"term": f"t{i}", "aliases": [f"t{i}a{j}" for j in range(per_term)]}
        for i in range(MAX_SPELLINGS_PER_WATCHLIST // per_term + 1)
    ]
    text = yaml.safe_dump({"watchlists": [{"name": "w", "terms": terms}]})
    with pytest.raises(WatchlistFileError, match="more than 50000 terms, aliases"):
        parse_watchlists(text)


def test_names_are_nfc_and_refuse_format_characters() -> None:
    nfd = "cafe\u0301"
    assert parse_watchlists(_file("ok").replace("name: w", f"name: {nfd}"))[0].name == "café"
    for bad in ("a\u202eb", "a\u2066b", "a\u200eb", "a\u200bb", "a\x07b"):
        text = yaml.safe_dump({"watchlists": [{"name": bad, "terms": ["ok"]}]})
        with pytest.raises(WatchlistFileError):
            parse_watchlists(text)
