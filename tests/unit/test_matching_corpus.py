"""Runs the fixture corpus (tests/fixtures/corpus/*.yaml): texts with expected matches."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from alerts.alert_records import Document, Query, Rule, Term, Watchlist
from alerts.matching.engine import compile_watchlists
from tests.unit.test_matching_backends import matching_backend  # noqa: F401 (autouse)

CORPUS = sorted((Path(__file__).parent.parent / "fixtures" / "corpus").glob("*.yaml"))


def _rule(raw: Any) -> Rule:
    if isinstance(raw, str):
        return Term(raw)
    if "query" in raw:
        return Query(raw["query"], raw.get("case_sensitive"))
    return Term(raw["term"], tuple(raw.get("aliases", ())), raw.get("case_sensitive"))


def _watchlist(raw: dict[str, Any]) -> Watchlist:
    return Watchlist(
        name=raw["name"],
        rules=tuple(_rule(r) for r in raw["terms"]),
        exclude=tuple(raw.get("exclude", ())),
        languages=tuple(raw.get("languages", ())),
    )


def _cases() -> list[Any]:
    params = []
    for path in CORPUS:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        watchlists = [_watchlist(w) for w in data["watchlists"]]
        for i, case in enumerate(data["cases"]):
            params.append(pytest.param(watchlists, case, id=f"{path.stem}-{i}-{case['text'][:30]}"))
    return params


def test_corpus_is_present() -> None:
    assert CORPUS, "no fixture corpus found"
    assert len(_cases()) >= 40


@pytest.mark.parametrize(("watchlists", "case"), _cases())
def test_corpus_case(watchlists: list[Watchlist], case: dict[str, Any]) -> None:
    matcher = compile_watchlists(watchlists)
    field = case.get("field", "body")
    fields = {"title": "", field: case["text"]}
    doc = Document(language=case.get("language"), **fields)
    got = {m.watchlist: list(m.terms) for m in matcher.match(doc)}
    for name, expected in case["expect"].items():
        assert got.get(name, []) == expected, f"{name}: {got.get(name)} for {case['text']!r}"
