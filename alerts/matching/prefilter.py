"""Index terms of a document and the index condition of a query: a sound prefilter.

Pure. `newswatch search` narrows stored items with an inverted index before
the matcher (`alerts.matching.engine`) confirms each candidate, so the index
may return extra items but must never miss one the matcher accepts.

The matcher looks for a spelling's lower-cased search key as a substring of
a field's lower-cased search key (`text_keys`), then checks boundaries. So
both sides are cut the same way from those keys:

- *word tokens*: maximal runs of word characters (`blocks_boundary`: letters,
  digits, `_`, not Hangul/Han/Kana), cut to `MAX_TOKEN` characters;
- *CJK bigrams*: each pair of adjacent Hangul/Han/Kana characters (the key
  has no space next to CJK, so `방공 체계` gives `방공`, `공체`, `체계`).

A document's terms are the union over title, summary and body. A spelling
requires: each of its word runs as a whole token (every run starts at a word
boundary: either a non-word character of the spelling precedes it, or the
LEFT rule), the last run as an exact token, with `s`/`es` when the plural
rule allows it, or as a token prefix after `*`; and each bigram of its CJK
runs. What cannot be expressed (a lone Han character, a run whose start is
not a boundary, symbols) adds no requirement. A query's condition follows its
tree: AND and NEAR need all operands, OR any, NOT nothing. `None` means the
index cannot narrow the query (e.g. `中 OR Pantsir`): search scans.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from operator import add

from alerts.matching.backends import LEFT, PLURAL, RIGHT, STAR, spelling_key
from alerts.matching.query_parser import And, Atom, Near, Not, QueryNode, parse_query
from alerts.matching.text_keys import CJK_CLASS, fold_case, normalize_text, search_key

__all__ = [
    "MAX_TOKEN",
    "AllOf",
    "AnyOf",
    "Condition",
    "Token",
    "document_terms",
    "holds_on",
    "query_condition",
]

MAX_TOKEN = 64  # longer word tokens are indexed (and looked up) by their first 64 characters

_WORD_RUN_RE = re.compile(f"[^\\W{CJK_CLASS}]+")
_CJK_RUN_RE = re.compile(f"[{CJK_CLASS}]{{2,}}")


@dataclass(frozen=True, slots=True)
class Token:
    """An index term, or with `prefix` every term that starts with it."""

    text: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class AllOf:
    operands: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    operands: tuple[Condition, ...]


Condition = Token | AllOf | AnyOf


def field_key(raw: str) -> str:
    """The lower-cased search key the matcher scans (`FieldText.key_ci`)."""
    return fold_case(search_key(normalize_text(raw)))


def key_terms(key_ci: str, out: set[str]) -> None:
    """Add the index terms of one lower-cased search key to `out`.

    (C-level loops only: `map` and set updates, no Python frame per term.)
    """
    words = set(_WORD_RUN_RE.findall(key_ci))
    if words and max(map(len, words)) > MAX_TOKEN:
        words = {w[:MAX_TOKEN] for w in words}
    out |= words
    if not key_ci.isascii():
        for run in _CJK_RUN_RE.findall(key_ci):
            out.update(map(add, run, run[1:]))


def document_terms(fields: Iterable[str]) -> list[str]:
    """The index terms of a document's fields (title, summary, body), once each."""
    out: set[str] = set()
    for raw in fields:
        if raw:
            key_terms(field_key(raw), out)
    return list(out)


def query_condition(query: str, case_sensitive: bool | None = None) -> Condition | None:
    """What an item's terms must satisfy for `query` to match it; None: anything."""
    return _node(parse_query(query), case_sensitive)


def spelling_condition(spelling: str, case_sensitive: bool | None = None) -> Condition | None:
    """What an item's terms must satisfy to contain `spelling` (see the module doc)."""
    key, _exact, flags = spelling_key(spelling, case_sensitive)
    parts: list[Condition] = []
    for m in _WORD_RUN_RE.finditer(key):
        run, start, end = m.group(), m.start(), m.end()
        if start == 0 and not flags & LEFT:
            continue  # could be the end of a longer token: no suffix lookups
        if end < len(key):
            parts.append(Token(run[:MAX_TOKEN]))
        elif flags & STAR or not flags & RIGHT:
            parts.append(Token(run[:MAX_TOKEN], prefix=len(run) < MAX_TOKEN))
        elif flags & PLURAL:
            forms = dict.fromkeys(f[:MAX_TOKEN] for f in (run, run + "s", run + "es"))
            parts.append(_any([Token(f) for f in forms]))
        else:
            parts.append(Token(run[:MAX_TOKEN]))
    for run in _CJK_RUN_RE.findall(key):
        parts.extend(Token(run[i : i + 2]) for i in range(len(run) - 1))
    return _all(parts)


def _node(node: QueryNode, case: bool | None) -> Condition | None:
    if isinstance(node, Atom):
        return spelling_condition(node.text, case)
    if isinstance(node, Not):
        return None
    if isinstance(node, Near):
        return _all([c for c in (_node(node.left, case), _node(node.right, case)) if c])
    if isinstance(node, And):
        return _all([c for c in (_node(x, case) for x in node.operands) if c])
    operands = [_node(x, case) for x in node.operands]
    if any(c is None for c in operands):
        return None
    return _any([c for c in operands if c is not None])


def _dedupe(parts: list[Condition]) -> tuple[Condition, ...]:
    return tuple(dict.fromkeys(parts))


def _all(parts: list[Condition]) -> Condition | None:
    flat: list[Condition] = []
    for p in parts:
        flat.extend(p.operands if isinstance(p, AllOf) else (p,))
    unique = _dedupe(flat)
    if not unique:
        return None
    return unique[0] if len(unique) == 1 else AllOf(unique)


def _any(parts: list[Condition]) -> Condition:
    flat: list[Condition] = []
    for p in parts:
        flat.extend(p.operands if isinstance(p, AnyOf) else (p,))
    unique = _dedupe(flat)
    return unique[0] if len(unique) == 1 else AnyOf(unique)


def holds_on(condition: Condition, terms: set[str] | frozenset[str]) -> bool:
    """Whether a document with these index terms satisfies `condition` (tests, memory)."""
    if isinstance(condition, Token):
        if condition.prefix:
            return any(t.startswith(condition.text) for t in terms)
        return condition.text in terms
    if isinstance(condition, AllOf):
        return all(holds_on(c, terms) for c in condition.operands)
    return any(holds_on(c, terms) for c in condition.operands)
