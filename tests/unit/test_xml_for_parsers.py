"""feeds.xml_for_parsers: the bytes the feed parsers get are those of the
re-encoding it shortcuts, on any head (BOM, declaration, DOCTYPE, comments,
leading Unicode whitespace) and any body (valid UTF-8 or not)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from crawler.charsets import Decoded, decode_document, xml_declared_encoding
from crawler.feeds import _XML_DECL, strip_doctype, xml_for_parsers
from crawler.http_bodies import content_type_charset


def reference(decoded: Decoded) -> bytes:
    """What parse_feed built before the shortcut: strip, cut the declaration, encode."""
    text = _XML_DECL.sub("", strip_doctype(decoded.text), count=1)
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + text.lstrip()).encode("utf-8")


HEADS = [
    "",
    "\ufeff",
    " ",
    "\n\t",
    "\u3000",
    "\x85",
    "\u2028",
    '<?xml version="1.0"?>',
    '<?xml version="1.0" encoding="utf-8"?>',
    '<?xml version="1.0" encoding="UTF8"?>\n',
    "<?xml version='1.0' encoding='us-ascii'?>",
    '<?xml version="1.0" encoding="iso-8859-1"?>',
    '<?xml version="1.0" encoding="windows-1251"?>',
    "<!-- é comment -->",
    "<!DOCTYPE rss>",
    '<!DOCTYPE rss [<!ENTITY a "Ж">]>',
    "<?xml-stylesheet href='a.xsl'?>",
    "<!ENTITY x 'y'>",
]
BODIES = ["<rss>", "<p>", "Жж", "é", "한", "😀", " ", "\n", "&a;", "</rss>", "\u3000"]


@st.composite
def feed_bytes(draw: st.DrawFn) -> tuple[bytes, str]:
    head = "".join(draw(st.lists(st.sampled_from(HEADS), max_size=5)))
    body = "".join(draw(st.lists(st.sampled_from(BODIES), max_size=12)))
    raw = (head + body).encode("utf-8")
    if draw(st.booleans()):  # a byte that is not UTF-8, or a BOM of another kind
        at = draw(st.integers(0, len(raw)))
        raw = (
            raw[:at]
            + draw(st.sampled_from([b"\xff", b"\xe9", b"\xc3", b"\xef\xbb\xbf"]))
            + raw[at:]
        )
    charset = draw(st.sampled_from(["", "utf-8", "windows-1251", "iso-8859-1", "ascii"]))
    return raw, f"application/xml; charset={charset}" if charset else "application/xml"


@settings(max_examples=600)
@given(feed_bytes())
@example((b'<?xml version="1.0" encoding="utf-8"?>\n<rss>\xd0\x96</rss>', ""))
@example(("\u3000<rss>Ж</rss>".encode(), ""))
@example((b"\xef\xbb\xbf<rss/>", ""))
def test_xml_for_parsers_equals_encoding_the_stripped_text(case: tuple[bytes, str]) -> None:
    body, ctype = case
    decoded = decode_document(
        body, declared=(xml_declared_encoding(body), content_type_charset(ctype))
    )
    try:
        expected = reference(decoded)
    except Exception as e:  # a broken DOCTYPE: both refuse it the same way
        try:
            xml_for_parsers(body, decoded)
        except type(e) as raised:
            assert str(raised) == str(e)
            return
        raise AssertionError("xml_for_parsers accepted what the reference refused") from e
    assert xml_for_parsers(body, decoded) == expected
