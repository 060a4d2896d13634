"""Deciding the character encoding of a fetched document, pure.

Labels lie: servers default to ISO-8859-1 or UTF-8 whatever the file is,
and CMSs copy an XML declaration from a template. So a label is a hint that
must be confirmed:

1. a byte-order mark wins;
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


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str
    how: str  # "bom", "declared", "utf-8", "detected", "fallback"


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


def decode_document(body: bytes, *, declared: tuple[str | None, ...]) -> Decoded:
    """Text of `body`; `declared` are labels in order of trust (document, then HTTP)."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom) :].decode(name, "replace"), name, "bom")
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
