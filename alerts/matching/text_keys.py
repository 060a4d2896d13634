"""Text preparation for matching: normalisation, search keys, offsets, boundaries.

Pure helpers used by `alerts.matching.engine`. The idea: matching runs over a *search
key* derived from the normalised text, in which

- every whitespace character and hyphen becomes a space and runs of them
  collapse to one space (so phrases match across hyphens and line breaks);
- spaces next to a Hangul, Han or Kana character are removed (so
  `상하이협력기구` matches `상하이 협력 기구`);
- a lower-cased twin of the key has exactly the same length (per-character
  lower-casing; the few characters whose lower case is longer, like `İ`, take
  the first character of it).

Spellings go through the very same transformation, so a plain substring
search over the key finds every candidate; word boundaries are then checked
at the candidates only. Key offsets are mapped back to the normalised text
(`normalize_text`) lazily, only for fields that have a hit.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import cache

from alerts.alert_records import Field

# Hangul (jamo, compatibility jamo, syllables), Han (radicals, ideographs and
# extensions, iteration marks) and Kana. Characters of these scripts match
# inside words and ignore spacing.
CJK_CLASS = (
    "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3038-\u303b\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\U00020000-\U0003134f"
    "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
)
HANGUL_CLASS = "\u1100-\u11ff\u3130-\u318f\ua960-\ua97f\uac00-\ud7af\ud7b0-\ud7ff"
_CJK_RE = re.compile(f"[{CJK_CLASS}]")
_WORD_RE = re.compile(f"[^\\W{CJK_CLASS}]")

# Characters dropped by normalize_text: invisible, and they split words.
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u2060\ufeff"))

# Hyphens count as spaces; whitespace is what str.split() / regex \s know.
_HYPHENS = "\u2010\u2011"
_SPACE_RUN_RE = re.compile(r"\s+")
# After collapsing, every separator is one plain space: drop those touching
# CJK. (Written to start with a literal space so the regex engine skips fast.)
_CJK_SPACE_RE = re.compile(f" (?:(?=[{CJK_CLASS}])|(?<=[{CJK_CLASS}] ))")
# A space that _CJK_SPACE_RE keeps (no CJK on either side): every other space
# goes. Korean and Chinese text has few (around Latin words and digits), so
# splitting the key at them and removing every space of each piece with
# `str.replace` (C speed) gives the same key as the substitution, which costs
# one regex match per removed space (~25 µs on a Korean bench body). Text with
# more than _FEW_KEPT - 1 kept spaces takes the substitution.
_KEPT_SPACE_RE = re.compile(f" (?![{CJK_CLASS}])(?<![{CJK_CLASS}] )")
_FEW_KEPT = 32

# Characters whose lower case is longer than one character (İ -> i̇).
_LONG_LOWER = {0x130: "i"}

# Words for NEAR/n: a run of letters/digits (apostrophes inside, as in
# Pantsir's), a run of Hangul (Korean spaces its words), or one Han/Kana char.
_TOKEN_RE = re.compile(
    f"[{HANGUL_CLASS}]+|[{CJK_CLASS}]|[^\\W{CJK_CLASS}]+(?:['’][^\\W{CJK_CLASS}]+)*"
)


def normalize_text(s: str) -> str:
    """NFKC, minus invisible characters (soft hyphen, zero-width space, BOM).

    Every offset in a `Hit` refers to this form of the field text.
    """
    if not unicodedata.is_normalized("NFKC", s):
        s = unicodedata.normalize("NFKC", s)
    if "\u00ad" in s or "\u200b" in s or "\u2060" in s or "\ufeff" in s:
        s = s.translate(_INVISIBLE)
    return s


def fold_case(s: str) -> str:
    """Lower-case `s` keeping its length, so offsets stay aligned."""
    lowered = s.lower()
    if len(lowered) == len(s):
        return lowered
    return s.translate(_LONG_LOWER).lower()


def _utf16_high_bytes(cls: str) -> bytes:
    """The high bytes of the UTF-16 code units of every character in the
    regex class `cls` (single characters and `a-b` ranges, nothing escaped);
    a character past U+FFFF counts with its high surrogate."""
    found: set[int] = set()
    i = 0
    while i < len(cls):
        if i + 2 < len(cls) and cls[i + 1] == "-":
            lo, hi, i = ord(cls[i]), ord(cls[i + 2]), i + 3
        else:
            lo = hi = ord(cls[i])
            i += 1
        if lo <= 0xFFFF:
            found.update(range(lo >> 8, (min(hi, 0xFFFF) >> 8) + 1))
        if hi > 0xFFFF:
            first, last = (0xD800 + ((max(c, 0x10000) - 0x10000) >> 10) for c in (lo, hi))
            found.update(range(first >> 8, (last >> 8) + 1))
    return bytes(sorted(found))


# Bytes that are no high byte of a CJK character's UTF-16 code unit: deleted,
# they leave nothing when the text has no CJK character (see has_cjk).
_NOT_CJK_HIGH = bytes(sorted(set(range(256)) - set(_utf16_high_bytes(CJK_CLASS))))


# Characters searched by the regex alone before the high-byte test.
_CJK_HEAD = 64


def has_cjk(s: str) -> bool:
    """Whether `s` holds a Hangul, Han or Kana character (CJK_CLASS).

    The regex alone tests each character against the class (~13 µs on a
    2 KB English or Russian body, where it finds nothing). First, in C: the
    high bytes of the text's UTF-16 code units (every other byte), minus
    those no CJK character has; if none is left, no character can be CJK.
    Latin, Cyrillic and general punctuation (U+20xx) drop out; text with a
    character in a CJK block's 256-unit rows takes the regex, which decides.
    The first _CJK_HEAD characters are searched first: Korean or Chinese
    text is decided there, without the test.
    """
    if _CJK_RE.search(s, 0, _CJK_HEAD) is not None:  # CJK text shows it at once
        return True
    if len(s) <= _CJK_HEAD:
        return False
    if not s.encode("utf-16-le", "surrogatepass")[1::2].translate(None, _NOT_CJK_HIGH):
        return False
    return _CJK_RE.search(s, _CJK_HEAD) is not None


@cache
@cache
def blocks_boundary(ch: str) -> bool:
    """True if `ch` continues a Latin/Cyrillic/Greek word (so no word boundary).

    Letters, digits and underscore do (regex `\\w`); Hangul, Han and Kana
    do not, so a Latin term next to CJK text (`SAM을`, `SAM系统`) is whole.
    """
    return _WORD_RE.match(ch) is not None


@cache
def is_latin_or_digit(ch: str) -> bool:
    return ch.isdigit() or (ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN"))


def _dehyphen(s: str) -> str:
    s = s.replace("-", " ")
    if "\u2010" in s or "\u2011" in s:
        s = s.replace("\u2010", " ").replace("\u2011", " ")
    return s


# Every character that str.split() splits on except the space itself (the
# Unicode White_Space set; a unit test checks it against str.isspace()).
WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004"
    "\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def collapse_spaces(s: str) -> str:
    """`" ".join(s.split())`, faster on typical text.

    Every whitespace character but the space is non-printable (Cc, Zs, Zl,
    Zp), so once line breaks are spaces, one `isprintable()` pass tells
    whether only runs of spaces are left, which C-speed `replace` collapses
    without building a list of every word.
    """
    if "\n" in s:
        s = s.replace("\n", " ")
    if not s.isprintable():
        return " ".join(s.split())
    while "  " in s:
        s = s.replace("    ", " ").replace("  ", " ")
    return s.strip(" ")


def search_key(normalized: str) -> str:
    """The spacing-folded key of already-normalised text (case kept)."""
    key = collapse_spaces(_dehyphen(normalized))
    if not key.isascii() and has_cjk(key):
        pieces = _KEPT_SPACE_RE.split(key, maxsplit=_FEW_KEPT)
        if len(pieces) <= _FEW_KEPT:  # split at every kept space
            return " ".join([piece.replace(" ", "") for piece in pieces])
        key = _CJK_SPACE_RE.sub("", key)
    return key


@dataclass(frozen=True, slots=True)
class _Shift:
    """Offsets through one regex substitution: out position -> in position."""

    outs: tuple[int, ...]  # output positions from which `deltas[i]` applies
    deltas: tuple[int, ...]

    @classmethod
    def of(cls, pattern: re.Pattern[str], text: str, collapse: bool) -> _Shift:
        """Each match becomes one space (`collapse`, except at either end) or nothing."""
        outs: list[int] = [0]
        deltas: list[int] = [0]
        removed = 0
        for m in pattern.finditer(text):
            kept = 1 if collapse and m.start() > 0 and m.end() < len(text) else 0
            removed += m.end() - m.start() - kept
            outs.append(m.end() - removed)
            deltas.append(removed)
        return cls(tuple(outs), tuple(deltas))

    def __call__(self, pos: int) -> int:
        return pos + self.deltas[bisect_right(self.outs, pos) - 1]


class OffsetMap:
    """Maps offsets in a search key back to the normalised text it came from."""

    __slots__ = ("_shifts",)

    def __init__(self, normalized: str) -> None:
        dehyphened = _dehyphen(normalized)
        self._shifts = [_Shift.of(_SPACE_RUN_RE, dehyphened, collapse=True)]
        spaced = " ".join(dehyphened.split())
        if has_cjk(spaced):
            self._shifts.insert(0, _Shift.of(_CJK_SPACE_RE, spaced, collapse=False))

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Key span [start, end) of non-space characters -> normalised-text span."""
        first, last = start, end - 1
        for shift in self._shifts:
            first, last = shift(first), shift(last)
        return first, last + 1


class WordIndex:
    """Word positions in normalised text, for NEAR/n distances."""

    __slots__ = ("_starts",)

    def __init__(self, normalized: str) -> None:
        self._starts = [m.start() for m in _TOKEN_RE.finditer(normalized)]

    def words(self, start: int, end: int) -> tuple[int, int]:
        """Indices of the first and last word touched by the span [start, end)."""
        return bisect_right(self._starts, start) - 1, bisect_right(self._starts, end - 1) - 1


_SENTENCE_END_RE = re.compile(r"[.!?。！？…][\"'”’)\]]*\s+|[。！？]")
_SPACE_RE = re.compile(r"\s+")
_WS_CLASS_RE = re.compile(r"\s")


def snippet(text: str, start: int, end: int, width: int = 200) -> tuple[str, int, int]:
    """About `width` characters of `text` around [start, end), whitespace collapsed.

    The window is cut at a sentence start or end when one lies in it, else at
    a word boundary (text without spaces, as Chinese, is cut where it falls);
    "…" marks each side that was cut. Returns the snippet and the window.
    """
    room = max(0, width - (end - start))
    lo = max(0, start - room // 2)
    hi = min(len(text), end + room - (start - lo))
    lo = max(0, min(lo, start - (room - (hi - end))))
    if lo > 0:
        lo = _cut_left(text, lo, start)
    if hi < len(text):
        hi = _cut_right(text, end, hi)
    body = _SPACE_RE.sub(" ", text[lo:hi]).strip()
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else ""), lo, hi


def _cut_left(text: str, lo: int, start: int) -> int:
    m = _SENTENCE_END_RE.search(text, lo, start)
    if m is not None:
        return m.end()
    m = _WS_CLASS_RE.search(text, lo, start)
    return m.end() if m is not None else lo


def _cut_right(text: str, end: int, hi: int) -> int:
    last_sentence = None
    for m in _SENTENCE_END_RE.finditer(text, end, hi):
        last_sentence = m
    if last_sentence is not None:
        return last_sentence.start() + len(last_sentence.group().rstrip())
    cut = max(text.rfind(" ", end, hi), text.rfind("\n", end, hi))
    return cut if cut > 0 else hi


class FieldText:
    """One field: normalised text, its search keys, and lazy offset helpers.

    Candidates are found in `data`, the UTF-8 bytes of the lower-cased key
    (bytes keep both automata small and fast, see `alerts.matching.backends`); byte
    offsets become key offsets only for candidates, incrementally from the
    last one converted, and key offsets become text offsets only for hits.
    """

    __slots__ = ("_mark", "_offsets", "_words", "data", "key", "key_ci", "name", "text")

    def __init__(self, name: Field, raw: str) -> None:
        self.name = name
        self.text = normalize_text(raw)
        self.key = search_key(self.text)
        self.key_ci = fold_case(self.key)
        self.data = self.key_ci.encode()
        self._offsets: OffsetMap | None = None
        self._words: WordIndex | None = None
        self._mark = (0, 0)  # a known (byte offset, char offset) pair

    def chars(self, byte: int) -> int:
        """Char offset in the key of a byte offset in `data` (at a char boundary)."""
        if len(self.data) == len(self.key_ci):
            return byte
        mark_byte, mark_char = self._mark
        if byte >= mark_byte:
            char = mark_char + len(self.data[mark_byte:byte].decode())
            self._mark = (byte, char)
            return char
        return mark_char - len(self.data[byte:mark_byte].decode())

    def char_before(self, i: int) -> str:
        """The character that ends just before byte offset `i` of `data`."""
        data = self.data
        if data[i - 1] < 0x80:
            return chr(data[i - 1])
        j = i - 1
        while j > 0 and data[j] & 0xC0 == 0x80:
            j -= 1
        return data[j:i].decode()

    def char_at(self, i: int) -> str:
        """The character that starts at byte offset `i` of `data`."""
        lead = self.data[i]
        if lead < 0x80:
            return chr(lead)
        size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
        return self.data[i : i + size].decode()

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Key span -> normalised-text span (see `OffsetMap.span`).

        The key only ever drops characters (and swaps hyphens or whitespace
        for a space, one for one), so a key as long as the text is aligned.
        """
        if len(self.key) == len(self.text):
            return start, end
        if self._offsets is None:
            self._offsets = OffsetMap(self.text)
        return self._offsets.span(start, end)

    def words(self, start: int, end: int) -> tuple[int, int]:
        """Text span -> first and last word index (see `WordIndex.words`)."""
        if self._words is None:
            self._words = WordIndex(self.text)
        return self._words.words(start, end)
