"""The two candidate finders behind `alerts.matching.engine`: Hyperscan, and pyahocorasick.

Both take the same input, the UTF-8 bytes of a field's lower-cased search key
(see `alerts.matching.text_keys.FieldText`), and return the same thing: *candidates*,
`(end, targets)` pairs where `end` is the byte offset just after an
occurrence of a spelling's key and `targets` every spelling with that key.
The Matcher confirms each candidate with the full boundary rules in Python,
so the results cannot depend on the backend, provided that:

- every occurrence that the rules would accept is a candidate (a backend may
  skip only occurrences the rules reject), and
- no occurrence is reported twice, and candidates come sorted by
  (end, longest key first), the order pyahocorasick's `iter()` gives.

pyahocorasick (`AhoBackend`) is portable and reports every occurrence of
every key. Hyperscan (`HyperscanBackend`, x86-64 Linux wheels) is used when
importable: its patterns are the escaped key bytes plus a one-byte *context*
on each side that must not be a byte that always belongs to a word character
(ASCII letters, digits, `_`, and the lead bytes of all-letter blocks such as
Cyrillic). Most rejected candidates (`sam` in `samuel`, a Russian stem inside
a longer word) thus never reach Python; the few left (a preceding Greek or
accented letter, for instance) are rejected by the Python check as before.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal, Protocol

import ahocorasick

from alerts import AlertError
from alerts.matching.screen import screen_for
from alerts.matching.text_keys import (
    blocks_boundary,
    fold_case,
    is_latin_or_digit,
    normalize_text,
    search_key,
)

try:  # Hyperscan has wheels for x86-64 Linux only: pyahocorasick is the fallback.
    import hyperscan

    HYPERSCAN_AVAILABLE = True
except ImportError:  # pragma: no cover - depends on the platform
    HYPERSCAN_AVAILABLE = False

LEFT, RIGHT, PLURAL, STAR = 1, 2, 4, 8
BackendName = Literal["auto", "hyperscan", "aho"]
Candidate = tuple[int, tuple["Target", ...]]

__all__ = [
    "HYPERSCAN_AVAILABLE",
    "LEFT",
    "PLURAL",
    "RIGHT",
    "STAR",
    "AhoBackend",
    "Backend",
    "BackendName",
    "Candidate",
    "HyperscanBackend",
    "Target",
    "break_even_bytes",
    "choose_backend",
    "make_backend",
    "spelling_key",
]


@dataclass(frozen=True, slots=True)
class Target:
    """One spelling of one owner (term rule, query atom or exclusion)."""

    kind: Literal["term", "atom", "exclude"]
    watchlist: int
    rule: int  # rule index, or exclusion index
    atom: str  # the query atom this spelling stands for ("" for terms/exclusions)
    spelling: str  # as written by the user
    length: int  # length of the search key in UTF-8 bytes
    exact: str | None  # the key with its case, when case-sensitive
    flags: int


class Backend(Protocol):
    """Finds candidates in one field's key; immutable once built."""

    name: str

    def candidates(self, key: str, data: bytes) -> list[Candidate]:
        """Candidates in `data` (= `key.encode()`), sorted by (end, longest first)."""
        ...

    def may_match(self, fields: Sequence[str]) -> bool:
        """False only when no field's search key can hold a candidate
        (`alerts.matching.screen`); True when the backend cannot tell."""
        ...


class AhoBackend:
    """One pyahocorasick automaton over the key bytes, seen as a latin-1 `str`.

    pyahocorasick looks up a node's children one by one, so a byte alphabet
    (fan-out <= 256, in practice a few dozen) is much faster than thousands of
    distinct Hangul and Han first characters.
    """

    name = "aho"

    def __init__(self, keys: dict[bytes, tuple[Target, ...]]) -> None:
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        for key, targets in keys.items():
            self._automaton.add_word(key.decode("latin-1"), targets)
        self._automaton.make_automaton()

    def candidates(self, key: str, data: bytes) -> list[Candidate]:
        text = key if len(key) == len(data) else data.decode("latin-1")
        return [(last + 1, targets) for last, targets in self._automaton.iter(text)]

    def may_match(self, fields: Sequence[str]) -> bool:
        return True  # no screen: the one-shot runs that choose this backend compile least


def _written_in_capitals(s: str) -> bool:
    upper = sum(1 for ch in s if ch.isupper())
    return upper >= 2 and not any(ch.islower() for ch in s)


def spelling_key(spelling: str, case_sensitive: bool | None) -> tuple[str, str | None, int]:
    """Lower-cased search key, case-sensitive key (or None) and boundary flags of a spelling.

    LEFT/RIGHT: the key starts/ends with a word character, so it needs a word
    boundary there; PLURAL: "s"/"es" may follow a last Latin letter or digit;
    STAR: a trailing `*` accepts any continuation of the last word.
    """
    text = normalize_text(spelling).strip()
    star = text.endswith("*")
    text = text.rstrip("*").rstrip()
    key = search_key(text).strip()
    if not any(_meaningful(c) for c in key):
        # Nothing left to search for, or only punctuation, separators and
        # invisible format characters (`-`, `**`, U+200B, U+200E, a soft
        # hyphen, a lone combining accent): such a key matches nothing or
        # everything. Letters, digits and symbols (`€`, `+`) are meaningful.
        raise AlertError(f"empty term or phrase (no letter, digit or symbol): {spelling!r}")
    sensitive = _written_in_capitals(text) if case_sensitive is None else case_sensitive
    flags = LEFT if blocks_boundary(key[0]) else 0
    if blocks_boundary(key[-1]):
        if star:
            flags |= STAR
        else:
            flags |= RIGHT | (PLURAL if is_latin_or_digit(key[-1]) else 0)
    return fold_case(key), key if sensitive else None, flags


def _meaningful(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNS"


def _word_leads() -> bytes:
    """Lead bytes of two-byte UTF-8 characters that are all word characters."""
    word = re.compile(r"\w")
    leads = [
        lead
        for lead in range(0xC2, 0xE0)
        if all(word.match(chr(((lead & 0x1F) << 6) | (c & 0x3F))) for c in range(0x80, 0xC0))
    ]
    return bytes(leads)


def _byte_class(values: Iterable[int], negate: bool = True) -> bytes:
    inner = b"".join(b"\\x%02x" % v for v in sorted(set(values)))
    return b"[^" + inner + b"]" if negate else b"[" + inner + b"]"


_ASCII_WORD = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_WORD_LEADS = _word_leads()
# The byte after a key: not the first byte of a character that is surely a word
# character. The character before it ends either in an ASCII non-word byte, or
# in a continuation byte not preceded by such a lead byte (CJK, accented, ...).
_RIGHT_CONTEXT = _byte_class([*_ASCII_WORD, *_WORD_LEADS])
_LEFT_CONTEXT = (
    b"(?:"
    + _byte_class([*_ASCII_WORD, *range(0x80, 0x100)])
    + b"|"
    + _byte_class(_WORD_LEADS)
    + b"[\\x80-\\xbf])"
)
_PAD = b" "  # around the scanned key, so that both contexts always exist


@dataclass(frozen=True, slots=True)
class _Pattern:
    key: bytes
    targets: tuple[Target, ...]
    right: bool  # the pattern ends with one byte of right context
    plural: bool  # ... possibly preceded by "s" or "es"


def _pattern(key: bytes, targets: tuple[Target, ...]) -> tuple[bytes, _Pattern]:
    """The Hyperscan expression for a key: the weakest context its targets allow."""
    left = all(t.flags & LEFT for t in targets)
    right = all(t.flags & RIGHT for t in targets)
    plural = right and all(t.flags & PLURAL for t in targets)
    body = b"".join(b"\\x%02x" % byte for byte in key)
    expression = (
        (_LEFT_CONTEXT if left else b"")
        + body
        + (b"(?:e?s)?" if plural else b"")
        + (_RIGHT_CONTEXT if right else b"")
    )
    return expression, _Pattern(key, targets, right, plural)


class HyperscanBackend:
    """One Hyperscan block-mode database of all keys, with boundary contexts.

    Start offsets are not asked for (no HS_FLAG_SOM_LEFTMOST): the key's end
    follows from the report's end and the pattern, and is checked against the
    key bytes. Scratch space is per thread (cloned on a thread's first scan),
    as Hyperscan forbids two concurrent scans with one scratch; the Matcher
    thus stays safe to share between threads.
    """

    name = "hyperscan"

    def __init__(self, keys: dict[bytes, tuple[Target, ...]]) -> None:
        if not HYPERSCAN_AVAILABLE:
            raise AlertError("the hyperscan backend is not installed on this platform")
        expressions, patterns = zip(*(_pattern(k, t) for k, t in keys.items()), strict=True)
        self._patterns: Sequence[_Pattern] = patterns
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(expressions=list(expressions), ids=list(range(len(patterns))), flags=0)
        self._prototype = hyperscan.Scratch(self._db)
        self._local = threading.local()
        self._screen = screen_for(list(keys))

    def may_match(self, fields: Sequence[str]) -> bool:
        return self._screen is None or self._screen.may_match(fields)

    def _scratch(self) -> Any:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._prototype.clone()
        return scratch

    def candidates(self, key: str, data: bytes) -> list[Candidate]:
        reports: list[tuple[int, int]] = []
        add = reports.append

        def on_match(pid: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            add((end, pid))

        padded = _PAD + data + _PAD
        self._db.scan(padded, match_event_handler=on_match, scratch=self._scratch())
        out: list[Candidate] = []
        for end, pid in reports:
            out.extend(self._ends(padded, end, self._patterns[pid]))
        out.sort(key=_canonical_order)
        return out

    @staticmethod
    def _ends(padded: bytes, end: int, pattern: _Pattern) -> Iterable[Candidate]:
        """Key occurrences that a report stands for (in unpadded offsets).

        A plural pattern's report may stand for a key followed by "", "s" or
        "es"; each is checked against the key bytes. One occurrence can only
        produce one report (the byte after it decides the ending), so none is
        reported twice.
        """
        if not pattern.right:
            yield end - 1, pattern.targets
            return
        stop = end - 1
        endings = (b"", b"s", b"es") if pattern.plural else (b"",)
        size = len(pattern.key)
        for ending in endings:
            key_end = stop - len(ending)
            if padded.startswith(ending, key_end) and padded.startswith(
                pattern.key, key_end - size
            ):
                yield key_end - 1, pattern.targets


def _canonical_order(candidate: Candidate) -> tuple[int, int]:
    return candidate[0], -candidate[1][0].length


def make_backend(
    keys: dict[bytes, tuple[Target, ...]], name: BackendName = "auto"
) -> Backend | None:
    """The requested backend over `keys` (None when there are none).

    "auto" is Hyperscan when importable, else pyahocorasick; "hyperscan"
    raises AlertError where it is not installed.
    """
    if not keys:
        return None
    factory: Callable[[dict[bytes, tuple[Target, ...]]], Backend]
    if name == "aho" or (name == "auto" and not HYPERSCAN_AVAILABLE):
        factory = AhoBackend
    else:
        factory = HyperscanBackend
    return factory(keys)


# Break-even volumes measured by bench/backfill.py (docs/notes/matching.md,
# "Break-even"): (terms, bytes of text from which Hyperscan's compile plus
# scan beats pyahocorasick's). Compiling costs Hyperscan ~0.65 ms per term
# (1.3 s at 1,000, 7.2 s at 10,000; pyahocorasick 0.01-0.13 s) and it scans
# 2-3x faster (62 vs 30 MB/s at 1,000 terms, 37 vs 12 at 10,000), so the
# volume grows with the terms, but slower than linearly.
BREAK_EVEN_POINTS: tuple[tuple[int, int], ...] = (
    (0, 0),
    (1_000, 77_000_000),
    (5_000, 117_000_000),
    (10_000, 129_000_000),
)


def break_even_bytes(terms: int) -> float:
    """Text volume from which Hyperscan pays off for `terms` spellings:
    BREAK_EVEN_POINTS interpolated linearly, extended along the last segment."""
    points = BREAK_EVEN_POINTS
    for (t0, b0), (t1, b1) in pairwise(points):
        if terms <= t1:
            return b0 + (b1 - b0) * (terms - t0) / (t1 - t0)
    (t0, b0), (t1, b1) = points[-2], points[-1]
    return b1 + (b1 - b0) * (terms - t1) / (t1 - t0)


def choose_backend(
    terms: int, expected_bytes: int, *, hyperscan_available: bool = HYPERSCAN_AVAILABLE
) -> BackendName:
    """The faster backend for a one-shot run that compiles `terms` spellings
    and then matches about `expected_bytes` of text (UTF-8 of every field).

    Hyperscan only when its compile time is paid back by its faster scan
    (`break_even_bytes`); below that, and wherever Hyperscan is not
    installed, pyahocorasick. Results are the same either way, so this only
    decides how long the command takes: `match` of one text against 10,000
    terms must not wait 7 s for a compile, and a backfill of 300 MB should.
    """
    if not hyperscan_available or terms <= 0:
        return "aho"
    return "hyperscan" if expected_bytes >= break_even_bytes(terms) else "aho"
