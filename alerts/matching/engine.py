"""Pure matching engine: compile watchlists once, match documents fast.

Every spelling of every watchlist (term, alias, query word or phrase,
exclusion) goes into ONE automaton built over search keys (see
`alerts.matching.text_keys`): Hyperscan when it is installed, else pyahocorasick (see
`alerts.matching.backends`; both give the same results). Matching a field is one pass
of the automaton over its lower-cased key, reporting every occurrence, nested
ones included, and only those candidates are checked for word boundaries,
capitals and endings. The cost therefore grows with the text and the number
of candidates, not with the number of terms.

Rules (CONTRACT.md, "Watchlist file"):

- A spelling whose first (last) character is a letter or digit of a
  non-CJK script needs a word boundary before (after) it; Hangul, Han and Kana
  characters never need one and never break one, so `SAM을` matches SAM and
  `판치르를` matches 판치르. Cyrillic and Greek letters are word characters.
- After a last character that is a Latin letter or a digit, `s` or `es` may
  follow (SAMs, F-35s); possessive `'s`/`’s` needs nothing since the
  apostrophe is a boundary. A trailing `*` accepts any continuation of the
  word (Панцир* matches Панциря); the hit then covers the whole word.
- A spelling with two or more capital letters and no small letter is
  case-sensitive, judged per spelling; the rule's `case_sensitive` overrides.
- A watchlist whose exclusion occurs in any field does not match the item.
- `languages`: an item whose language is known and not listed (primary
  subtag compared, so en-GB passes for `en`) does not match; an item of
  unknown language passes, since a missed alert costs more than a spare one.
- A query is evaluated only for items where at least one of its words or
  phrases occurs (which is also why a NOT-only query is refused).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from alerts import AlertError
from alerts.alert_records import Document, Field, Hit, Query, Term, Watchlist, WatchlistMatch
from alerts.matching.backends import (
    LEFT,
    PLURAL,
    RIGHT,
    STAR,
    Backend,
    BackendName,
    Target,
    choose_backend,
    make_backend,
    spelling_key,
)
from alerts.matching.query_eval import Occurrence, holds
from alerts.matching.query_parser import (
    QueryNode,
    QuerySyntaxError,
    parse_query,
    positive_atoms,
    query_atoms,
)
from alerts.matching.text_keys import FieldText, blocks_boundary, normalize_text, snippet

__all__ = [
    "DEFAULT_BACKEND",
    "ExampleFailure",
    "InvalidWatchlistError",
    "Matcher",
    "UnknownWatchlistError",
    "check_phrase",
    "check_rule",
    "compile_watchlists",
    "highlight",
    "normalize_text",
    "run_examples",
]

_FIELDS: tuple[Field, ...] = ("title", "summary", "body")
_MAX_SNIPPETS = 3


class UnknownWatchlistError(AlertError):
    """`only=` named a watchlist that was not compiled."""


class InvalidWatchlistError(AlertError):
    """A watchlist that cannot be compiled; the message names it and the spelling."""


@dataclass(frozen=True, slots=True)
class ExampleFailure:
    """An example of a watchlist file that did not behave as its author said.

    `expected` is True for a "should match" example that did not match, False
    for a "should not match" example that did; `matched` then names the rules
    that fired.
    """

    watchlist: str
    text: str
    expected: bool
    matched: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    labels: tuple[str, ...]  # rule labels, by rule index
    queries: dict[int, QueryNode]
    positives: dict[int, frozenset[str]]  # rule index -> atoms outside NOT
    languages: frozenset[str]


@dataclass(slots=True)
class _Found:
    """Confirmed hits of one watchlist in one document, before assembly."""

    excluded: bool = False
    terms: list[tuple[Target, int, int, int]] = field(default_factory=list)
    atoms: list[tuple[Target, int, int, int]] = field(default_factory=list)


Kind = Literal["term", "atom", "exclude"]


class _Builder:
    """Collects targets per search key (UTF-8 bytes of the lower-cased key)."""

    def __init__(self) -> None:
        self.targets: dict[bytes, list[Target]] = {}

    def add(
        self, kind: Kind, at: tuple[int, int], spelling: str, case: bool | None, atom: str = ""
    ) -> None:
        key, exact, flags = spelling_key(spelling, case)
        data = key.encode()
        target = Target(kind, at[0], at[1], atom, spelling, len(data), exact, flags)
        bucket = self.targets.setdefault(data, [])
        if target not in bucket:
            bucket.append(target)

    def backend(self, name: BackendName, expected_bytes: int | None = None) -> Backend | None:
        if name == "auto" and expected_bytes is not None:
            name = choose_backend(len(self.targets), expected_bytes)
        return make_backend({k: tuple(t) for k, t in self.targets.items()}, name)


# The automaton used when compile_watchlists() is not told: "auto" picks
# Hyperscan where it is installed. Tests set it to run everything on each one.
DEFAULT_BACKEND: BackendName = "auto"


def compile_watchlists(
    watchlists: Sequence[Watchlist],
    backend: BackendName | None = None,
    *,
    skip_invalid: bool = False,
    expected_bytes: int | None = None,
) -> Matcher:
    """Compile every watchlist into one `Matcher`; bad queries raise QuerySyntaxError.

    With `skip_invalid`, a watchlist that does not compile (a term with no
    search key, stored before the file parser refused it) is left out, named
    with its reason in `Matcher.skipped`, and the others still match: one
    watchlist must never stop the crawl. `backend` picks the automaton:
    "auto" (Hyperscan when installed, else pyahocorasick), "hyperscan"
    (AlertError where not installed) or "aho";
    the results are the same with each. None means `DEFAULT_BACKEND`.
    `expected_bytes`, the text a one-shot run expects to match, turns "auto"
    into `choose_backend(distinct keys, expected_bytes)`: pyahocorasick
    unless Hyperscan's longer compile pays for itself on that volume.
    """
    builder = _Builder()
    compiled: list[_Compiled] = []
    skipped: list[tuple[str, str]] = []
    for wl in watchlists:
        try:
            one = _compile_one(builder, len(compiled), wl)
        except AlertError as e:
            if not skip_invalid:
                raise
            skipped.append((wl.name, str(e)))
            continue
        compiled.append(one)
    automaton = builder.backend(backend or DEFAULT_BACKEND, expected_bytes)
    return Matcher(tuple(compiled), automaton, tuple(skipped))


def _compile_one(builder: _Builder, wi: int, wl: Watchlist) -> _Compiled:
    """Add one watchlist's spellings to `builder`, all or none of them.

    Every spelling goes through `spelling_key` (via `check_rule`), the same
    function the file parser validates with, so a watchlist that imported
    compiles; one stored before a rule existed fails here, alone.
    """
    queries: dict[int, QueryNode] = {}
    adds: list[tuple[Kind, tuple[int, int], str, bool | None, str]] = []
    for ri, rule in enumerate(wl.rules):
        if isinstance(rule, Term):
            for spelling, case in rule.spellings():
                adds.append(("term", (wi, ri), spelling, case, ""))
            continue
        queries[ri] = _parse(wl.name, rule)
        for atom in query_atoms(queries[ri]):
            adds.append(("atom", (wi, ri), atom, rule.case_sensitive, atom))
    for xi, phrase in enumerate(wl.exclude):
        adds.append(("exclude", (wi, xi), phrase, None, ""))
    for _kind, _at, spelling, case, _atom in adds:
        try:
            spelling_key(spelling, case)
        except AlertError as e:
            raise InvalidWatchlistError(f"watchlist {wl.name!r}: {e}") from e
    for kind, at, spelling, case, atom in adds:
        builder.add(kind, at, spelling, case, atom)
    return _Compiled(
        name=wl.name,
        labels=tuple(r.label for r in wl.rules),
        queries=queries,
        positives={ri: frozenset(positive_atoms(q)) for ri, q in queries.items()},
        languages=frozenset(_primary(lang) for lang in wl.languages),
    )


def check_rule(rule: Term | Query) -> None:
    """Raise AlertError unless `rule` compiles: each spelling (term, alias,
    query word or phrase) has a non-empty search key and each query parses.

    The file parser calls this per rule (with line numbers); compiling calls
    the very same `spelling_key`, so "valid" means one thing in both places.
    """
    spellings = (
        rule.spellings()
        if isinstance(rule, Term)
        else [(atom, rule.case_sensitive) for atom in query_atoms(parse_query(rule.query))]
    )
    for spelling, case in spellings:
        spelling_key(spelling, case)


def check_phrase(phrase: str) -> None:
    """Raise AlertError unless an `exclude` phrase compiles (see check_rule)."""
    spelling_key(phrase, None)


def _parse(watchlist: str, rule: Query) -> QueryNode:
    try:
        return parse_query(rule.query)
    except QuerySyntaxError as e:
        raise QuerySyntaxError(
            f"watchlist {watchlist!r}, query {rule.query!r}: {e}", e.column
        ) from e


def _primary(language: str) -> str:
    return language.strip().lower().replace("_", "-").split("-")[0]


class Matcher:
    """Compiled watchlists. Immutable and safe to share between threads.

    (Hyperscan's scratch space is per thread, see `alerts.matching.backends`.)
    """

    def __init__(
        self,
        compiled: tuple[_Compiled, ...],
        backend: Backend | None,
        skipped: tuple[tuple[str, str], ...] = (),
    ):
        self._compiled = compiled
        self._backend = backend
        self.skipped = skipped  # (watchlist name, reason) of those left out

    @property
    def backend(self) -> str:
        """Which automaton finds candidates: "hyperscan", "aho" ("" when empty)."""
        return "" if self._backend is None else self._backend.name

    @property
    def watchlist_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self._compiled)

    def match(self, doc: Document, only: Collection[str] | None = None) -> list[WatchlistMatch]:
        """One `WatchlistMatch` per matching watchlist, in watchlist order.

        `only` restricts matching to the watchlists of those names.
        """
        return self._match(doc, None if only is None else self._indices(only))

    def _match(self, doc: Document, allowed: frozenset[int] | None) -> list[WatchlistMatch]:
        texts = [getattr(doc, name) for name in _FIELDS]
        if self._backend is None or not self._backend.may_match(texts):
            return []  # no candidate, so no result (alerts.matching.screen)
        fields = [FieldText(name, text) for name, text in zip(_FIELDS, texts, strict=True)]
        found = self._scan(fields, allowed)
        language = _primary(doc.language) if doc.language else None
        results = []
        for wi in sorted(found):
            compiled = self._compiled[wi]
            if found[wi].excluded:
                continue
            if language and compiled.languages and language not in compiled.languages:
                continue
            result = _assemble(compiled, found[wi], fields)
            if result is not None:
                results.append(result)
        return results

    def _indices(self, only: Collection[str]) -> frozenset[int]:
        names = set(only)
        unknown = names - set(self.watchlist_names)
        if unknown:
            raise UnknownWatchlistError(f"unknown watchlist: {', '.join(sorted(unknown))}")
        return frozenset(i for i, c in enumerate(self._compiled) if c.name in names)

    def _scan(self, fields: list[FieldText], allowed: frozenset[int] | None) -> dict[int, _Found]:
        """Run the automaton over every field; keep the candidates that pass the checks."""
        found: dict[int, _Found] = {}
        if self._backend is None:
            return found
        for fi, ft in enumerate(fields):
            if not ft.data:
                continue
            for end, targets in self._backend.candidates(ft.key_ci, ft.data):
                for target in targets:
                    if allowed is not None and target.watchlist not in allowed:
                        continue
                    span = _confirm(target, ft, end)
                    if span is not None:
                        _record(found, target, fi, span)
        return found


def _confirm(target: Target, ft: FieldText, end: int) -> tuple[int, int] | None:
    """The key (char) span of a real hit ending at byte `end`, or None if a rule forbids it."""
    data = ft.data
    start = end - target.length
    flags = target.flags
    if flags & LEFT and start > 0 and blocks_boundary(ft.char_before(start)):
        return None
    if flags & RIGHT and end < len(data) and blocks_boundary(ft.char_at(end)):
        if not flags & PLURAL:
            return None
        ending = 2 if data.startswith(b"es", end) else 1 if data[end] == 0x73 else 0  # "s"
        end += ending
        if not ending or (end < len(data) and blocks_boundary(ft.char_at(end))):
            return None
    first, last = ft.chars(start), ft.chars(end)
    if target.exact is not None and ft.key[first : first + len(target.exact)] != target.exact:
        return None
    if flags & STAR:
        while last < len(ft.key_ci) and blocks_boundary(ft.key_ci[last]):
            last += 1
    return first, last


def _record(found: dict[int, _Found], target: Target, fi: int, span: tuple[int, int]) -> None:
    entry = found.get(target.watchlist)
    if entry is None:
        entry = found[target.watchlist] = _Found()
    if target.kind == "exclude":
        entry.excluded = True
    elif target.kind == "term":
        entry.terms.append((target, fi, span[0], span[1]))
    else:
        entry.atoms.append((target, fi, span[0], span[1]))


def _assemble(compiled: _Compiled, found: _Found, fields: list[FieldText]) -> WatchlistMatch | None:
    """Turn confirmed candidates into the watchlist's match, or None if no rule holds."""
    by_rule: dict[int, list[Hit]] = {}
    for target, fi, start, end in found.terms:
        by_rule.setdefault(target.rule, []).append(_hit(compiled, target, fields[fi], start, end))
    occurrences: dict[int, dict[str, list[Occurrence]]] = {}
    atom_hits: dict[int, list[Hit]] = {}
    for target, fi, start, end in found.atoms:
        hit = _hit(compiled, target, fields[fi], start, end)
        first, last = fields[fi].words(hit.start, hit.end)
        occurrences.setdefault(target.rule, {}).setdefault(target.atom, []).append(
            (fi, first, last)
        )
        if target.atom in compiled.positives[target.rule]:
            atom_hits.setdefault(target.rule, []).append(hit)
    for ri, atoms in occurrences.items():
        if holds(compiled.queries[ri], atoms) and ri in atom_hits:
            by_rule[ri] = atom_hits[ri]
    if not by_rule:
        return None
    order = {name: i for i, name in enumerate(_FIELDS)}
    hits = sorted(
        (h for ri in sorted(by_rule) for h in _drop_nested(by_rule[ri])),
        key=lambda h: (order[h.field], h.start, -h.end),
    )
    terms = tuple(dict.fromkeys(compiled.labels[ri] for ri in sorted(by_rule)))
    return WatchlistMatch(compiled.name, terms, tuple(hits), _snippets(hits, fields))


def _hit(compiled: _Compiled, target: Target, ft: FieldText, start: int, end: int) -> Hit:
    first, last = ft.span(start, end)
    return Hit(compiled.labels[target.rule], target.spelling, ft.name, first, last)


def _drop_nested(hits: list[Hit]) -> list[Hit]:
    """Of one rule's hits that overlap in a field, keep the longest (then earliest)."""
    kept: list[Hit] = []
    for hit in sorted(hits, key=lambda h: (h.field, h.start, -h.end)):
        if kept and kept[-1].field == hit.field and hit.start < kept[-1].end:
            continue
        kept.append(hit)
    return kept


def _snippets(hits: Sequence[Hit], fields: list[FieldText]) -> tuple[str, ...]:
    """Up to three snippets, each around a hit not already shown by an earlier one.

    Invariant: no two snippets share a passage. A feed often puts the same
    text in summary and body, so the same hit turns up in two fields: a
    snippet is dropped when it contains, or lies in, one already chosen, or
    when the hit's own context (a few words either side) is already shown.
    """
    texts = {ft.name: ft.text for ft in fields}
    out: list[str] = []
    cores: list[str] = []
    shown: list[tuple[Field, int, int]] = []
    for hit in hits:
        if any(f == hit.field and lo <= hit.start and hit.end <= hi for f, lo, hi in shown):
            continue
        text, lo, hi = snippet(texts[hit.field], hit.start, hit.end)
        core, context = _passage(text), _passage(_context(texts[hit.field], hit))
        shown.append((hit.field, lo, hi))
        if any(core in c or c in core or context in c for c in cores):
            continue
        out.append(text)
        cores.append(core)
        if len(out) == _MAX_SNIPPETS:
            break
    return tuple(out)


_CONTEXT = 30  # characters either side of a hit that identify its passage


def _context(text: str, hit: Hit) -> str:
    return text[max(0, hit.start - _CONTEXT) : hit.end + _CONTEXT]


def _passage(text: str) -> str:
    """A snippet's text as compared for repeats: no ellipses, case or spacing."""
    return " ".join(text.strip("…").split()).casefold()


def run_examples(
    watchlists: Sequence[Watchlist], backend: BackendName | None = "aho"
) -> list[ExampleFailure]:
    """Check each watchlist's own examples (`examples: match / no_match`).

    Each example is matched as the body of an item of unknown language,
    against its own watchlist only. A few short texts: the backend that
    compiles fastest is the default (both give the same results).
    """
    matcher = compile_watchlists(watchlists, backend)
    failures: list[ExampleFailure] = []
    for wi, wl in enumerate(watchlists):
        only = frozenset({wi})
        for text, expected in _examples(wl):
            matches = matcher._match(Document(title="", body=text), only)
            if bool(matches) != expected:
                fired = matches[0].terms if matches else ()
                failures.append(ExampleFailure(wl.name, text, expected, fired))
    return failures


def _examples(wl: Watchlist) -> Iterable[tuple[str, bool]]:
    yield from ((text, True) for text in wl.examples_match)
    yield from ((text, False) for text in wl.examples_no_match)


def highlight(text: str, hits: Iterable[Hit], before: str = "[", after: str = "]") -> str:
    """`text` (normalised, one field) with each hit wrapped in `before`/`after`."""
    out: list[str] = []
    pos = 0
    for hit in sorted(hits, key=lambda h: (h.start, -h.end)):
        if hit.start < pos:
            continue
        out += [text[pos : hit.start], before, text[hit.start : hit.end], after]
        pos = hit.end
    out.append(text[pos:])
    return "".join(out)
