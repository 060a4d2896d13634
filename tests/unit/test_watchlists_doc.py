"""docs/watchlists.md tells the truth: every example in its tables is run
through the matcher (a term table row: the term must match each text of the
second column and none of the third; a query table row likewise)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alerts.alert_records import Document, Query, Term, Watchlist
from alerts.matching.engine import compile_watchlists

DOC = Path(__file__).resolve().parents[2] / "docs" / "watchlists.md"
_CODE = re.compile(r"`([^`]+)`")


def _rows() -> list[tuple[str, str, str, bool]]:
    """(rule kind, rule, text, should match) for every example cell."""
    out = []
    kind = "term"
    for line in DOC.read_text(encoding="utf-8").splitlines():
        if line.startswith("| query |"):
            kind = "query"
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        rule = _CODE.findall(cells[0])[0]
        for col, should in ((1, True), (2, False)):
            if col >= len(cells):
                continue
            for text in _CODE.findall(cells[col]):
                if "…" not in text:
                    out.append((kind, rule, text.replace("\\n", "\n"), should))
    return out


ROWS = _rows()


def test_the_doc_has_examples() -> None:
    assert len(ROWS) >= 25 and {k for k, *_ in ROWS} == {"term", "query"}


@pytest.mark.parametrize(("kind", "rule", "text", "should"), ROWS)
def test_doc_example(kind: str, rule: str, text: str, should: bool) -> None:
    r = Term(rule) if kind == "term" else Query(rule)
    matcher = compile_watchlists([Watchlist("doc", (r,))], "aho")
    assert bool(matcher.match(Document(title=text))) is should
