"""A screen before matching: one Hyperscan scan of an item's plain text that
says when no spelling can occur in it, so that its search keys are never built.

Building the three fields' search keys (`text_keys.FieldText`: normalising,
folding spaces and hyphens, lower-casing, encoding) is ~80 % of matching an
item, and most items of a crawl match nothing (97 % of the bench's). The screen
runs over the fields' *normalised* text only (`normalize_text`, as FieldText
starts) and answers "maybe" or "no"; on "no" the Matcher returns at once.

It must never say "no" where the backend would find a candidate: its answer
is a superset by construction. A key occurrence in a field's search key is a
run of non-separator characters of the normalised text, each folding to the
key's character (`fold_case`), with separator runs where the key has a space
and possibly where the key has none between two characters of which one is
CJK (search_key drops spaces there). So each spelling's key becomes a
pattern of

- for each key character x, the class of every character that folds to x:
  x, its upper and title case, and the six characters whose lower case is x
  though they are neither (`LOWER_EXCEPTIONS`, checked over all of Unicode by
  a unit test), so `Σ` is in both `σ` and final `ς`'s classes;
- a key space: one or more separators; between two key characters one of
  which is CJK: any number of separators.

Separators are what search_key turns into a space (whitespace and the three
hyphens). The text is NFKC, where the other Unicode spaces are U+0020; the
few non-ASCII separators NFKC keeps (`_RARE_SEPARATORS`) are replaced by a
space before the scan, so the patterns need only an ASCII class (multi-byte
separator alternatives made them several times slower to compile).

Word boundaries, plurals, case-sensitive spellings and the fields apart are
left to the Matcher: they only narrow. The fields are joined by NUL, which
no separator class holds.

Compiling such patterns costs Hyperscan more than the backend's literals
(~80 ms for 20 spellings, ~0.76 s for 1,000; bench figures in
docs/notes/matching.md), so the screen is compiled on the first item a
Matcher screens, not when watchlists are loaded (a re-crawl of 304s matches
nothing and pays nothing), and only up to `MAX_SCREEN_KEYS` keys: with more
spellings most items hold a candidate anyway. A pattern covers only a key's
first `PREFIX_CHARS` characters: an occurrence of the key is one of its
prefix too, so the answer stays a superset, and a long term (up to 300
characters; a 280-character Korean one exceeded Hyperscan's pattern limit
whole) compiles as fast as a short one. Should Hyperscan refuse the screen
anyway, it is dropped with a warning and every item goes to the Matcher,
as without it: a term must never stop matching.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from alerts.matching.text_keys import _CJK_RE, WHITESPACE, normalize_text

try:  # as in alerts.matching.backends: x86-64 Linux wheels only
    import hyperscan

    _HYPERSCAN = True
except ImportError:  # pragma: no cover - depends on the platform
    _HYPERSCAN = False

log = logging.getLogger(__name__)

MAX_SCREEN_KEYS = 1_000
PREFIX_CHARS = 24

# Characters whose lower case (str.lower, or fold_case's İ -> i) is one
# character that is neither their upper nor their title case' lower twin.
LOWER_EXCEPTIONS = {
    "\u0130": "i",  # İ
    "\u03f4": "\u03b8",  # ϴ -> θ
    "\u1e9e": "\u00df",  # ẞ -> ß
    "\u2126": "\u03c9",  # Ω (ohm) -> ω
    "\u212a": "k",  # K (kelvin) -> k
    "\u212b": "\u00e5",  # Å (angstrom) -> å
}

_SEPARATORS = " " + WHITESPACE + "-\u2010\u2011"
_RARE_SEPARATORS = tuple(
    c for c in _SEPARATORS if not c.isascii() and unicodedata.normalize("NFKC", c) == c
)
_SEPARATOR_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in _SEPARATORS if c.isascii()) + "]"


def folds_to(x: str) -> str:
    """Every character whose folded (lower) case is `x`, `x` included."""
    found = {x}
    for variant in (x.upper(), x.title()):
        if len(variant) == 1:
            found.add(variant)
    found.update(c for c, lower in LOWER_EXCEPTIONS.items() if lower == x)
    return "".join(sorted(found))


def expression(key: str, prefix: int = PREFIX_CHARS) -> bytes:
    """The screen's pattern for a lower-cased search key: for its first
    `prefix` characters (see the module doc)."""
    parts: list[str] = []
    previous: str | None = None
    for ch in key[:prefix].rstrip(" "):
        if ch == " ":
            parts.append(_SEPARATOR_CLASS + "+")
            previous = None
            continue
        if previous is not None and (_CJK_RE.match(previous) or _CJK_RE.match(ch)):
            parts.append(_SEPARATOR_CLASS + "*")
        parts.append("[" + "".join(f"\\x{{{ord(c):x}}}" for c in folds_to(ch)) + "]")
        previous = ch
    return "".join(parts).encode()


def screened_text(fields: Iterable[str]) -> bytes | None:
    """The bytes the screen scans: the fields normalised, NUL-joined, rare
    separators made spaces; None when they are not valid UTF-8 (a lone
    surrogate), which the screen then passes."""
    text = "\x00".join(map(normalize_text, fields))
    for ch in _RARE_SEPARATORS:
        if ch in text:
            text = text.replace(ch, " ")
    try:
        return text.encode()
    except UnicodeEncodeError:
        return None


def _stop(*_: object) -> bool:
    return True  # one report is enough: stop the scan


class Screen:
    """The screen of one set of keys; safe to share between threads."""

    def __init__(self, keys: Sequence[str], prefix: int = PREFIX_CHARS) -> None:
        self._keys = tuple(keys)
        self._prefix = prefix
        self._lock = threading.Lock()
        self._db: Any = None
        self._prototype: Any = None
        self._refused = False
        self._local = threading.local()

    def _compiled(self) -> tuple[Any, Any] | None:
        """The database and a scratch prototype, compiled once; None when
        Hyperscan refused them (then the screen passes everything)."""
        with self._lock:
            if self._db is None and not self._refused:
                expressions = sorted({expression(k, self._prefix) for k in self._keys})
                flags = hyperscan.HS_FLAG_UTF8 | hyperscan.HS_FLAG_SINGLEMATCH
                db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
                try:
                    db.compile(
                        expressions=expressions,
                        ids=list(range(len(expressions))),
                        flags=[flags] * len(expressions),
                    )
                    self._prototype = hyperscan.Scratch(db)
                except hyperscan.error as e:
                    self._refused = True
                    log.warning("matching screen status=off error=%r", str(e))
                    return None
                self._db = db
            return None if self._refused else (self._db, self._prototype)

    def may_match(self, fields: Iterable[str]) -> bool:
        """False only when no key can occur in any of the fields' search keys."""
        if self._refused:
            return True
        data = screened_text(fields)
        if data is None:
            return True
        scratch = getattr(self._local, "scratch", None)
        db = self._db
        if db is None or scratch is None:
            compiled = self._compiled()
            if compiled is None:
                return True
            db, prototype = compiled
            scratch = self._local.scratch = prototype.clone()
        try:
            db.scan(data, match_event_handler=_stop, scratch=scratch)
        except hyperscan.ScanTerminated:
            return True
        return False


def screen_for(keys: Sequence[bytes]) -> Screen | None:
    """A screen over the backend's keys (UTF-8 of lower-cased search keys), or
    None without Hyperscan or past MAX_SCREEN_KEYS keys."""
    if not _HYPERSCAN or not keys or len(keys) > MAX_SCREEN_KEYS:
        return None
    return Screen([k.decode() for k in keys])
