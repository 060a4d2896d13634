"""The fast path of `normalize.html_to_text`: simple fragments without lxml.

Most feed summaries and bodies are a handful of well-nested tags: `<p>`,
`<a href>`, `<b>`, lists, `<br>`, a `<script>` or an `<img>`, and a few
character references. For those, the text libxml2's recovering HTML parser
would give is decided by the tags alone: a block element's start and end are
line breaks, an inline element is nothing, a script or style is dropped with
its content, references are decoded. `simple_text` produces that text with
one C-level regex split and a loop over the tags (~3x cheaper than parsing,
walking and serialising a tree), and returns None for everything else,
which lxml then parses as before:

- any `<` that does not start a plain start or end tag (comments, DOCTYPE,
  processing instructions, CDATA, a stray `<`), a tag outside the short
  lists below, attributes with `<` or `&` in them, `<x/>` on a non-void tag;
- nesting that libxml2 would repair: an end tag that is not the innermost
  open element's, a block inside an inline or a paragraph, an element open
  twice, text or other tags directly inside `<ul>`/`<ol>`;
- in a script or style, an end tag of its own that `_TAG` does not match
  (`</script x>`, `</style/x>`: HTML5 ends the element there all the same),
  and in a script `<!--` (its `<!--<script>` escape keeps `</script>` as text);
- references other than `&name;` (HTML5 names), `&#n;`, `&#xh;` of a plain
  character, or a bare `&` (`AT&T` is text unless a legacy name such as
  `&copy` starts it), and characters that parsers treat specially (C1 controls,
  surrogates, noncharacters, U+FEFF).

Whitespace-only text is kept as it is: libxml2 2.14 keeps it in the body
(older releases dropped some as "ignorable"; tests/unit/test_simple_html.py
pins the difference that would make, `x<img> <b>y</b>` is "x y", and checks
`simple_text` against lxml on generated fragments).
"""

from __future__ import annotations

import html.entities
import re

# A plain end tag (`</name>`: its name is the first group) or start tag (the
# second group), then "/" or "" (the third): ASCII name, attributes without
# '<' or '&', nothing else. An end tag with attributes is not one: its '<'
# stays in the text, which declines the fragment (outside a script, where it
# is text), as the walk declined it when it was matched; one with a "/" is
# matched (it ends a script, and is declined anywhere else). The attributes
# are not captured: the walk never reads them.
_TAG = re.compile(
    r"<(?:/([A-Za-z][A-Za-z0-9]*)"
    r"|([A-Za-z][A-Za-z0-9]*)"
    r"(?:[ \t\n\r]+[A-Za-z_:][-A-Za-z0-9_:.]*"
    r"(?:[ \t\n\r]*=[ \t\n\r]*(?:\"[^\"<&]*\"|'[^'<&]*'|[^ \t\n\r\"'<>=`&]+))?)*)"
    r"[ \t\n\r]*(/?)>"
)
_INLINE = "a b i em strong span u s small code cite q abbr font del ins big tt strike kbd var dfn"
INLINE = frozenset(_INLINE.split(" "))
VOID_INLINE = frozenset({"img"})
FLOW = frozenset(["div", "li", "blockquote", "section", "article", "figure"])  # may hold blocks
# blocks of inline content only
PHRASE = frozenset(["p", "h1", "h2", "h3", "h4", "h5", "h6", "figcaption"])
LISTS = frozenset({"ul", "ol"})
RAW = frozenset({"script", "style"})  # dropped with their content
# What in a raw element's text (the parts between its start tag and the end
# tag `_TAG` matches) the walk cannot follow, as HTML5's tokenizer (libxml2
# 2.14's) reads it: `</name` starting an end tag `_TAG` does not match (with
# attributes, `/x`, `/ >`: it ends the element all the same), and in a script
# `<!--`, whose `<script>` escape makes a later `</script>` text.
_RAW_HAZARD = {
    "script": re.compile(r"</[Ss][Cc][Rr][Ii][Pp][Tt]|<!--"),
    "style": re.compile(r"</[Ss][Tt][Yy][Ll][Ee]"),
}
_REFERENCE = re.compile(
    r"&(?:#([0-9]{1,7});|#[xX]([0-9A-Fa-f]{1,6});|([A-Za-z][A-Za-z0-9]{0,31});"
    r"|([A-Za-z0-9]+)|(?=#))"
)
_SPECIAL = re.compile("[\x80-\x9f\ud800-\udfff\ufdd0-\ufdef\ufeff\ufffe\uffff]")
_NAMED = {k[:-1]: v for k, v in html.entities.html5.items() if k.endswith(";")}
# HTML's legacy references that need no ';' ("&copy2025" is "©2025").
_LEGACY = tuple(k for k in html.entities.html5 if not k.endswith(";"))
_BLANK = " \t\n\r"
MAX_DEPTH = 64  # deeper nesting is left to libxml2 (it caps depth its own way)


class _NotSimple(Exception):
    pass


def _reference(m: re.Match[str]) -> str:
    number, hexa, name, word = m.groups()
    if name is not None:
        value = _NAMED.get(name)
        if value is None:
            raise _NotSimple(name)
        return value
    if word is not None:  # "AT&T": text, unless a legacy name starts it
        if word.startswith(_LEGACY):
            raise _NotSimple(word)
        return m.group()
    if number is None and hexa is None:
        raise _NotSimple("malformed numeric reference")
    code = int(number) if number is not None else int(hexa, 16)
    if (
        (code < 0x20 and code not in (9, 10))
        or 0x7F <= code <= 0x9F
        or 0xD800 <= code <= 0xDFFF
        or 0xFDD0 <= code <= 0xFDEF
        or code & 0xFFFE == 0xFFFE
        or code == 0xFEFF
        or code > 0x10FFFF
    ):
        raise _NotSimple(code)
    return chr(code)


def simple_text(html: str, *, printable: bool = False) -> str | None:
    """The text of `html` as html_to_text's lxml path sees it, before
    whitespace is collapsed (block boundaries as "\\n"); None when the
    fragment is not simple (see the module docstring). `html` has had
    html_to_text's control characters removed. `printable`: the caller found
    every line of `html` `str.isprintable()`, so none of `_SPECIAL` is there
    (all are controls, surrogates, format characters or unassigned)."""
    if not printable and _SPECIAL.search(html) is not None:
        return None
    try:
        return _walk(_TAG.split(html))
    except _NotSimple:
        return None


def _walk(parts: list[str]) -> str | None:
    out: list[str] = []
    append = out.append
    stack: list[str] = []
    raw: str | None = None  # inside <script>/<style> until its end tag
    groups = iter(parts)
    # (text, then a tag's 3 groups) at a time; the last text has no tag after it
    # (not strict: zip stops there, and it is taken after the loop)
    tags = zip(groups, groups, groups, groups, strict=False)
    for text, end, name, slash in tags:
        if raw is not None:
            if "<" in text and _RAW_HAZARD[raw].search(text) is not None:
                return None
        elif text:
            if "<" in text:
                return None
            if "&" in text:
                text = _REFERENCE.sub(_reference, text)
            if stack and stack[-1] in LISTS and text.strip(_BLANK):
                return None
            append(text)
        if end is not None:  # an end tag
            end = end.lower()
            if raw is not None:
                if end == raw:
                    raw = None
                continue
            if slash or not stack or stack[-1] != end:
                return None
            stack.pop()
            if end not in INLINE:
                append("\n")
            continue
        if raw is not None:
            continue
        name = name.lower()
        top = stack[-1] if stack else None
        if len(stack) >= MAX_DEPTH:
            return None
        elif name in INLINE:
            if top in LISTS or name in stack or slash:
                return None
            stack.append(name)
        elif name in VOID_INLINE or name == "br":
            if top in LISTS:
                return None
            if name == "br":
                append("\n")
        elif name in RAW:
            if slash or top in LISTS:
                return None
            raw = name
        elif slash:
            return None
        elif name == "li":
            if top not in LISTS:
                return None
            stack.append(name)
            append("\n")
        elif name in FLOW or name in PHRASE or name in LISTS:
            if top is not None and top not in FLOW:
                return None
            stack.append(name)
            append("\n")
        else:
            return None
    if raw is not None:
        return None
    text = parts[-1]  # after the last tag (the whole fragment when it has none)
    if text:
        if "<" in text:
            return None
        if "&" in text:
            text = _REFERENCE.sub(_reference, text)
        if stack and stack[-1] in LISTS and text.strip(_BLANK):
            return None
        append(text)
    return "".join(out)
