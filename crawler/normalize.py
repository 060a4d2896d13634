"""Pure normalisation: canonical URLs, HTML to plain text, content hashes, language.

No I/O and no clock. The canonical URL is the identity of an item across
sources, so `canonical_url` must be deterministic and idempotent
(`canonical_url(canonical_url(u)) == canonical_url(u)`).
"""

from __future__ import annotations

import hashlib
import re
import string
import threading
import unicodedata
from collections.abc import Sequence
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import lxml.etree
import lxml.html
from w3lib.url import canonicalize_url

from crawler.simple_html import simple_text

# Query parameters that identify a campaign or a click, never the content.
TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "ref_src",
        "ref_url",
        "igshid",
        "mkt_tok",
        "_hsenc",
        "_hsmi",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "__twitter_impression",
        "cmpid",
        "ito",
        "icid",
    }
)
TRACKING_PREFIXES = ("utm_",)
DEFAULT_PORTS = {"http": 80, "https": 443}


def join_url(base: str, href: str) -> str | None:
    """`href` resolved against `base`, or None when either is malformed.

    Every href of a fetched page is hostile: urljoin raises ValueError on a
    bracketed host that is not an IPv6 address (`http://[::1`, `//[x]/`),
    and one such link must cost that link, not the page or the crawl.
    """
    try:
        return urljoin(base, href.strip())
    except ValueError:
        return None


def canonical_url(url: str) -> str:
    """The identity of a URL: tracking parameters and fragment dropped, host normalised.

    Scheme and host are lower-cased, the host IDNA-encoded, default ports and
    the fragment dropped; the remaining query parameters are sorted (blank
    values kept) and percent-encoding normalised; the path keeps its case.
    Raises ValueError for a URL that cannot be parsed.
    """
    simple = simple_canonical_url(url)
    if simple is not None:
        return simple
    return _canonical_url(url)


# The common shape of an item link, for which canonical_url's answer can be
# written down without parsing twice and asking w3lib: http(s), a plain ASCII
# host, an optional port, a path of characters w3lib leaves alone (no ";"
# params) and no dot
# segment, a query of plain key=value pairs, any printable fragment.
_SIMPLE_URL = re.compile(
    r"(?i:(https?))://"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z][A-Za-z0-9-]{0,61}[A-Za-z0-9])"
    r"(?::([0-9]{1,5}))?"
    r"(/[A-Za-z0-9/_~!$'()*+,=:@.-]*)?"
    r"(?:\?((?:[A-Za-z0-9._~-]+(?:=[A-Za-z0-9._~-]*)?)?(?:&[A-Za-z0-9._~-]+(?:=[A-Za-z0-9._~-]*)?)*))?"
    r"(?:#[!-~]*)?"
)


def simple_canonical_url(url: str) -> str | None:
    """canonical_url of a URL of the common shape (`_SIMPLE_URL`, see
    tests/unit/test_normalize_fast.py), or None: ask the general path."""
    m = _SIMPLE_URL.fullmatch(url.strip())
    if m is None:
        return None
    scheme, host, port, path, query = m.groups()
    if (path and "/." in path) or "xn--" in host.lower():
        return None  # dot segments are resolved, IDNA labels checked by w3lib
    scheme = scheme.lower()
    netloc = host.lower()
    if port is not None:
        number = int(port)
        if number > 65535:
            return None
        if DEFAULT_PORTS[scheme] != number:
            netloc = f"{netloc}:{number}"
    out = f"{scheme}://{netloc}{path or '/'}"
    if query:
        pairs = sorted(
            (k, v)
            for k, _, v in (p.partition("=") for p in query.split("&") if p)
            if not _is_tracking(k)
        )
        if pairs:
            out += "?" + "&".join(f"{k}={v}" for k, v in pairs)
    return out


def _canonical_url(url: str) -> str:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _is_tracking(k)
    ]
    rebuilt = urlunsplit((scheme, parts.netloc, parts.path or "/", urlencode(query), ""))
    canon = urlsplit(canonicalize_url(rebuilt, keep_blank_values=True))
    host = (canon.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = canon.port  # raises ValueError for a port out of range
    netloc = host if port is None or DEFAULT_PORTS.get(scheme) == port else f"{host}:{port}"
    if canon.username is not None:
        userinfo = canon.username + (f":{canon.password}" if canon.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    return urlunsplit((scheme, netloc, canon.path or "/", canon.query, ""))


def _is_tracking(key: str) -> bool:
    lowered = key.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


# --- HTML to text ------------------------------------------------------------

_SKIPPED = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "math", "iframe", "object"}
)
_BLOCKS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "details",
        "dialog",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tbody",
        "thead",
        "tfoot",
        "tr",
        "td",
        "th",
        "ul",
        "body",
        "html",
        "caption",
        "title",
    ]
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_XML_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")  # by lxml's setters
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """Text every database can hold: NUL removed (PostgreSQL text cannot hold
    it) and lone surrogates, which no driver can encode (a JSON Feed may carry
    "\\ud800"), replaced by U+FFFD."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)


_MARKUP_HINT = re.compile(r"[<&]")
_parser_local = threading.local()


def _html_parser() -> lxml.html.HTMLParser:
    # lxml parsers are not thread-safe; one per thread keeps html_to_text usable there.
    parser: lxml.html.HTMLParser | None = getattr(_parser_local, "parser", None)
    if parser is None:
        parser = lxml.html.HTMLParser(
            encoding="utf-8", remove_comments=True, remove_pis=True, no_network=True
        )
        _parser_local.parser = parser
    return parser


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment or document.

    Scripts, styles and comments are dropped, entities decoded, block elements
    become line breaks, runs of spaces collapse to one and blank lines vanish.
    libxml2's recovering parser bounds the work on hostile input (nesting is
    capped, no network, no entity expansion beyond HTML's own).
    """
    # Printable lines hold no control character (nothing to remove) and none
    # of the characters the fast path declines (C1, surrogates, noncharacters,
    # U+FEFF): one C-level pass instead of two regex scans; a line with a
    # tab, CR or any of those takes the scans as before.
    printable = lines_printable(html)
    cleaned = html if printable else _CONTROL.sub("", html)
    if not _MARKUP_HINT.search(cleaned):
        return collapse_whitespace(cleaned)
    simple = simple_text(cleaned, printable=printable)  # most fragments: no tree needed
    if simple is not None:
        return collapse_whitespace(simple)
    return tree_text(cleaned)


def lines_printable(text: str) -> bool:
    """`all(map(str.isprintable, text.split("\\n")))` in one C pass: a line
    break read as a space (printable) instead of a split into lines."""
    return text.replace("\n", " ").isprintable()


def tree_text(cleaned: str) -> str:
    """html_to_text through lxml's tree: every fragment the fast path
    (crawler.simple_html) declines; also the reference its tests compare to.
    `cleaned` has had the control characters removed."""
    try:
        root = lxml.etree.fromstring(cleaned.encode("utf-8", "replace"), _html_parser())
    except (lxml.etree.ParserError, ValueError):
        return ""
    if root is None:
        return ""
    lxml.etree.strip_elements(root, *_SKIPPED, with_tail=False)
    for element in root.iter(*_BLOCKS):
        # Character references decode to control characters (`&#8;`, `&#x1b;`)
        # that lxml refuses to set back: strip them here, and in the result.
        # U+FFFE and U+FFFF (raw or referenced) are refused too: stripped here
        # only, where they used to raise ValueError and fail the whole feed.
        element.text = "\n" + _XML_REFUSED.sub("", element.text or "")
        element.tail = "\n" + _XML_REFUSED.sub("", element.tail or "")
    text = lxml.etree.tostring(root, method="text", encoding="unicode")
    return collapse_whitespace(_CONTROL.sub("", text))


def collapse_whitespace(text: str) -> str:
    """Spaces collapse to one, lines are stripped, blank lines dropped; the
    result is `storable`.

    Same result as the regex form `_NEWLINES.sub("\\n", _SPACES.sub(" ", t)).strip()`
    with \\r read as \\n (str.split() and the regex \\s agree on what whitespace
    is; tests/unit/test_normalize_fast.py checks it), ~5x faster on article-sized
    text: it runs on every title, summary and body, and again in content_hash.

    A line that `str.isprintable()` holds no whitespace but " " (every other
    character str.split() splits on is a control, separator or space
    character, none printable) and neither NUL nor a surrogate (so `storable`
    would not change it): when it also has no double, leading or trailing
    space it is already collapsed and is kept as it is, without splitting it
    into words and joining them again (most lines of most text).
    """
    out = []
    for line in filter(None, text.replace("\r", "\n").split("\n")):  # no empty line
        if line.isprintable():
            if "  " in line or line[:1] == " " or line[-1:] == " ":
                line = " ".join(line.split())
        else:
            line = " ".join(storable(line).split())
        if line:
            out.append(line)
    return "\n".join(out)


def one_line(text: str) -> str:
    """`collapse_whitespace` on one line (titles): storable, no line breaks."""
    return collapse_whitespace(text).replace("\n", " ")


def content_hash(title: str, text: str) -> str:
    """sha256 hex of the NFKC-normalised, whitespace-collapsed title and text.

    Two copies of one article that differ only in markup, spacing or Unicode
    compatibility forms hash the same.
    """
    norm = unicodedata.normalize("NFKC", f"{title}\n{text}")
    return hashlib.sha256(collapse_whitespace(norm).encode("utf-8")).hexdigest()


def collapsed_content_hash(title: str, text: str) -> str:
    """content_hash of a title and text that are already `collapse_whitespace`
    output (as an Item's are): when NFKC changes nothing (a quick check, true
    for most text) collapsing again would change nothing either, so both
    passes over the text are skipped."""
    joined = f"{title}\n{text}" if title and text else title or text
    if not unicodedata.is_normalized("NFKC", joined):
        return content_hash(title, text)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


# --- language ----------------------------------------------------------------

# Runs, not single characters: count_chars sums run lengths (same count, far
# fewer match objects than findall of single characters).
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]+")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]+")
_ANY_CJK = re.compile(  # the union of _HANGUL, _KANA and _HAN (tests)
    r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\u3040-\u30ff\u31f0-\u31ff"
    r"\u4e00-\u9fff\u3400-\u4dbf\uf900-\ufaff]"
)


# The high byte of a UTF-16 code unit (a character's, or a surrogate's: D8-DF)
# as the CJK scripts whose blocks have it: Hangul AC-D7 and 11 ("h"), Kana
# 30 ("k"), both 31 ("b"), Han 34-9F, F9 and FA ("c"), none (".").
def _script_mark(high: int) -> int:
    if high == 0x11 or 0xAC <= high <= 0xD7:
        return ord("h")
    if high in (0x30, 0x31):
        return ord("k" if high == 0x30 else "b")
    return ord("c" if 0x34 <= high <= 0x9F or high in (0xF9, 0xFA) else ".")


_SCRIPT_OF_HIGH = bytes(map(_script_mark, range(256)))
_CJK = (  # each script's pattern, and the marks of the high bytes it may have
    (_HANGUL, (b"h", b"b")),
    (_KANA, (b"k", b"b")),
    (_HAN, (b"c",)),
)
_ASCII_LETTERS = string.ascii_letters.encode("ascii")  # what [^\W\d_] matches in ASCII
_NOT_LETTER = re.compile(r"[\W\d_]+")  # the complement of a letter, [^\W\d_]
_CYRILLIC_LANGS = ("ru", "uk", "be", "bg", "sr", "mk", "kk")
_LATIN_LANGS = [
    "en",
    "fr",
    "de",
    "es",
    "it",
    "pt",
    "nl",
    "pl",
    "cs",
    "sk",
    "sl",
    "hr",
    "tr",
    "ro",
    "hu",
    "sv",
    "da",
    "no",
    "fi",
    "et",
    "lv",
    "lt",
    "id",
    "ms",
    "vi",
    "tl",
    "ca",
    "eu",
    "gl",
    "af",
]
_OTHER_LANGS = ("ar", "fa", "he", "el", "hi", "th", "ka", "hy", "ur")
MIN_LETTERS = 12
LANGUAGE_SAMPLE = 600  # plenty for language ID; the cost grows with the length
# What the statistical model reads, once the script has chosen its candidates:
# py3langid's cost is linear in the length (~170 µs per item at 600 characters,
# ~85 µs at 200), and among the few languages of one script 200 characters of
# prose decide as well as 600 (2,000/2,000 en/ru feed items either way, see
# docs/notes/crawl-profile.md); short titles already decide correctly.
MODEL_SAMPLE = 200
MIN_CJK = 2
_identifiers: dict[str, Any] = {}
_identifiers_lock = threading.Lock()


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the text's language, or None when there is too little text.

    Scripts decide first, because statistical models are unreliable on short
    CJK text: Hangul means ko, any Kana means ja, Han means zh. Otherwise
    py3langid decides among the languages of the dominant script only, on
    the first MODEL_SAMPLE characters.
    """
    decided = _by_script(text)
    if not isinstance(decided, _ModelAsked):
        return decided
    lang, _score = _identifier(decided.group).classify(decided.sample)
    return str(lang)


def detect_languages(texts: Sequence[str]) -> list[str | None]:
    """`[detect_language(t) for t in texts]`, the texts the model decides
    walked through its DFA together (`langid_walk.classify_many`): a feed's
    items at once cost ~a third of the walk one by one
    (docs/notes/crawl-profile.md, step 8)."""
    decided = [_by_script(text) for text in texts]
    asked = [(i, d) for i, d in enumerate(decided) if isinstance(d, _ModelAsked)]
    if asked:
        from crawler.langid_walk import classify_many

        labels = classify_many([(_identifier(d.group), d.sample) for _, d in asked])
        for (i, _), label in zip(asked, labels, strict=True):
            decided[i] = label
    return decided  # type: ignore[return-value]  # every _ModelAsked replaced


class _ModelAsked(NamedTuple):
    """The script left the choice to the model: of `group`, on `sample`."""

    group: str
    sample: str


def _by_script(text: str) -> str | _ModelAsked | None:
    """detect_language's answer where the scripts decide it, else what the
    model is to decide."""
    sample = text[:LANGUAGE_SAMPLE]
    ascii_only = sample.isascii()
    # The high byte of each UTF-16 code unit: a script's characters are there
    # only if its blocks' high bytes are (C passes over bytes: a script that is
    # absent costs no regex scan of the text; count_cyrillic reads them too).
    high = b"" if ascii_only else sample.encode("utf-16-be", "surrogatepass")[::2]
    marks = high.translate(_SCRIPT_OF_HIGH)
    if ascii_only or marks.count(b".") == len(marks):
        hangul = kana = han = 0
    else:
        hangul, kana, han = (
            _up_to_two(runs, sample) if any(m in marks for m in may) else 0 for runs, may in _CJK
        )
        if hangul == MIN_CJK and MIN_CJK in (kana, han):  # two scripts: count them
            hangul, kana, han = (count_chars(p, sample) for p in (_HANGUL, _KANA, _HAN))
        # else at most one script has MIN_CJK characters or more, and that one
        # decides below whatever its exact count (the others have 0 or 1)
    cjk = hangul + kana + han
    if cjk >= MIN_CJK:
        if hangul >= max(kana, han) / 2 and hangul >= MIN_CJK:
            return "ko"
        if kana >= MIN_CJK:
            return "ja"
        if han >= MIN_CJK:
            return "zh"
    if ascii_only:  # ASCII letters are [A-Za-z]: bytes.translate deletes them in C
        letters = len(sample) - len(sample.encode("ascii").translate(None, _ASCII_LETTERS))
        cyrillic = 0
    else:
        cyrillic = high.count(4)  # count_cyrillic(sample)
        letters = count_letters(sample, cyrillic > 0)
    if letters - cjk < MIN_LETTERS:
        return None
    group = "cyrillic" if cyrillic * 2 > letters else "other"
    return _ModelAsked(group, sample[:MODEL_SAMPLE])


def count_letters(text: str, cyrillic: bool = False) -> int:
    r"""`len(text) - count_chars(_NOT_LETTER, text)`: how many characters are
    letters (`[^\W\d_]`). Text that a single-byte code page holds whole
    (windows-1251 when it has Cyrillic, and windows-1252: Russian, Ukrainian,
    French, German... with their punctuation) is encoded to it, one byte per
    character, and its letter bytes deleted in C (~1.5 µs for 600 characters
    of Russian instead of ~8 for the regex's runs); other text takes the
    regex."""
    for codec, letter_bytes in _CODE_PAGES[not cyrillic :]:
        data = text.encode(codec, "ignore")  # drops what the code page lacks
        if len(data) == len(text):  # nothing dropped: one byte per character
            return len(data) - len(data.translate(None, letter_bytes))
    return len(text) - count_chars(_NOT_LETTER, text)


def _letter_bytes(codec: str) -> bytes:
    """The bytes of a single-byte code page whose character is a letter."""
    letter = re.compile(r"[^\W\d_]")
    out = bytearray()
    for byte in range(256):
        try:
            char = bytes([byte]).decode(codec)
        except UnicodeDecodeError:  # not a character of the code page: never encoded to
            continue
        if letter.fullmatch(char):
            out.append(byte)
    return bytes(out)


_CODE_PAGES = tuple((codec, _letter_bytes(codec)) for codec in ("cp1251", "cp1252"))


def count_cyrillic(text: str) -> int:
    """count_chars(_CYRILLIC, text) in C: U+0400-U+04FF are the UTF-16 code
    units whose high byte is 4 (a surrogate's is D8-DF), no match per run."""
    return text.encode("utf-16-be", "surrogatepass")[::2].count(4)


def _up_to_two(runs: re.Pattern[str], text: str) -> int:
    """min(count_chars(runs, text), 2), i.e. MIN_CJK: stops at the second character."""
    first = runs.search(text)
    if first is None:
        return 0
    if first.end() - first.start() > 1 or runs.search(text, first.end()) is not None:
        return 2
    return 1


def count_chars(runs: re.Pattern[str], text: str) -> int:
    """How many characters of `text` the run pattern `runs` (`[...]+`) covers."""
    return sum(map(len, runs.findall(text)))


def _identifier(group: str) -> Any:
    """One py3langid model loaded once per process, restricted per script
    group; both groups are made at once, and the full table is not kept
    (crawler.langid_walk.load_identifiers)."""
    with _identifiers_lock:
        if not _identifiers:
            from crawler.langid_walk import load_identifiers  # the model loads here

            _identifiers.update(
                load_identifiers(
                    {"cyrillic": _CYRILLIC_LANGS, "other": (*_LATIN_LANGS, *_OTHER_LANGS)}
                )
            )
        return _identifiers[group]
