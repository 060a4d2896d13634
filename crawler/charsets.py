"""Deciding the character encoding of a fetched document, pure.

Labels lie: servers default to ISO-8859-1 or UTF-8 whatever the file is,
and CMSs copy an XML declaration from a template. So a label is a hint that
must be confirmed:

1. a byte-order mark wins; without one, UTF-16 and UTF-32 show in the NUL
   bytes around the document's first character (`<` or white space), as in
   the XML spec's appendix F; this must come before the ASCII shortcut, since
   NUL bytes are ASCII;
2. each declared encoding (document first, then HTTP) is tried strictly; a
   UTF-8 decode that succeeds is accepted (valid UTF-8 with non-ASCII bytes
   is practically never anything else), another encoding is accepted only if
   the text does not look like mojibake (charset-normalizer's mess ratio);
3. undeclared UTF-8 is tried strictly;
4. charset-normalizer's detection decides;
5. failing all that, the first declared encoding that decodes, else UTF-8
   with replacement characters.

Single-byte encodings decode any byte string without error, which is why
step 2 needs the mess test: EUC-KR or windows-1251 read as ISO-8859-1
"succeeds" and produces garbage.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes
from charset_normalizer.md import mess_ratio

MAX_MESS = 0.05
MESS_SAMPLE = 65_536
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_DECL_ENCODING = re.compile(
    rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})["']"""
)
_META_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.I
)


# The first character of an XML document, when it is ASCII: `<` or white space.
_FIRST_CHARS = frozenset(b"< \t\r\n")
# Appendix F of the XML spec: which of the first four bytes are NUL when the
# document starts with an ASCII character, in each wide encoding, and where
# that character's byte is. UTF-16's pattern covers two characters.
_NUL_PATTERNS = (
    ((False, True, True, True), "utf-32-le", 0),
    ((True, True, True, False), "utf-32-be", 3),
    ((False, True, False, True), "utf-16-le", 0),
    ((True, False, True, False), "utf-16-be", 1),
)


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str
    how: str  # "bom", "nul-pattern", "declared", "utf-8", "detected", "fallback"


def codec_name(label: str | None) -> str | None:
    """Python's codec name for a charset label, or None if unknown."""
    if not label:
        return None
    try:
        return codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None


def xml_declared_encoding(body: bytes) -> str | None:
    match = _XML_DECL_ENCODING.match(body[:512].lstrip(codecs.BOM_UTF8))
    return match.group(1).decode("ascii") if match else None


def html_declared_encoding(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None


def wide_encoding(body: bytes) -> str | None:
    """UTF-16/32 (LE/BE) without a byte-order mark, told by the NUL bytes of the
    first characters; None for any other body.

    Only a first character an XML document can start with counts (`<` or
    white space), so binary junk or an ASCII document with a stray NUL is
    not taken for text in a wide encoding.
    """
    nuls = tuple(b == 0 for b in body[:4])
    for pattern, name, first in _NUL_PATTERNS:
        if nuls == pattern:
            return name if body[first] in _FIRST_CHARS else None
    return None


def narrow_head(body: bytes, size: int = 4096) -> bytes:
    """The first `size` bytes, as UTF-8 when they are UTF-16/32 (with or
    without a byte-order mark), else as they are: for byte-level sniffing
    (is it a feed?) that must not be fooled by NUL bytes between characters."""
    head = body[:size]
    wide = next((name for bom, name in _BOMS if head.startswith(bom)), None)
    if wide is None or wide == "utf-8":
        wide = wide_encoding(head)
    return head if wide is None else head.decode(wide, "ignore").encode("utf-8")


def decode_document(body: bytes, *, declared: tuple[str | None, ...]) -> Decoded:
    """Text of `body`; `declared` are labels in order of trust (document, then HTTP)."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom) :].decode(name, "replace"), name, "bom")
    wide = wide_encoding(body)
    if wide is not None:
        return Decoded(body.decode(wide, "replace"), wide, "nul-pattern")
    if body.isascii():
        return Decoded(body.decode("ascii"), "ascii", "declared")
    names = list(dict.fromkeys(n for n in map(codec_name, declared) if n))
    decodable: list[tuple[str, str]] = []
    for name in names:
        text = _strict(body, name)
        if text is None:
            continue
        decodable.append((name, text))
        if name == "utf-8" or mess_ratio(text[:MESS_SAMPLE], 1.0) <= MAX_MESS:
            return Decoded(text, name, "declared")
    if "utf-8" not in names:
        text = _strict(body, "utf-8")
        if text is not None:
            return Decoded(text, "utf-8", "utf-8")
    best = from_bytes(body).best()
    if best is not None and best.encoding:
        return Decoded(str(best), best.encoding, "detected")
    if decodable:
        return Decoded(decodable[0][1], decodable[0][0], "fallback")
    return Decoded(body.decode("utf-8", "replace"), "utf-8", "fallback")


def _strict(body: bytes, name: str) -> str | None:
    try:
        return body.decode(name)
    except (UnicodeDecodeError, LookupError):
        return None
