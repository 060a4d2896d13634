"""Jinja filters: feed text in, safe HTML out.

Feed text is hostile. Autoescape covers markup; these filters cover the rest:
bidirectional controls (an RTL override in a title must not reorder the page
around it), links (only http(s) becomes an href) and highlighted snippets.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime

from markupsafe import Markup, escape

from alerts.render import highlight_html, safe_link
from alerts.secrets import mask_url_password

# Bidi embeddings, overrides and isolates, other invisible format characters,
# C0/C1 controls (tab and newline excepted), and what XML 1.0 refuses beyond
# those (lone surrogates, U+FFFE, U+FFFF: the SVG charts are parsed as XML,
# and HTML calls them parse errors): one class, one pass.
_HIDDEN = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\x00-\x08\x0b-\x1f\x7f-\x9f"
    "\ud800-\udfff\ufffe\uffff]"
)


def plain(text: str | None) -> str:
    """Feed text with bidi and control characters made visible as U+FFFD."""
    if not text:
        return ""
    return _HIDDEN.sub("\ufffd", unicodedata.normalize("NFC", text))


# Markup is built with f-strings around `escape(...)`, not `Markup.format`:
# the same escaping (markupsafe's `escape`, which `format` applies to each
# argument), without `string.Formatter`'s pure-Python parsing, which was
# most of the CPU of a page of 400 alerts (12 ms).


def feed_text(text: str | None) -> Markup:
    """Escaped feed text in a <bdi>, so its direction cannot leak out."""
    return Markup(f"<bdi>{escape(plain(text))}</bdi>")  # noqa: S704 - escaped


def link(url: str | None, label: str | None = None) -> Markup:
    """An <a> for http(s) URLs only; anything else (javascript:, data:) as text.
    A URL with a password in it (a private feed's basic auth) is shown masked
    and not linked: the page would carry the password."""
    masked = mask_url_password(url or "")
    shown = feed_text(label if label is not None else masked)
    href = safe_link(url or "") if masked == (url or "") else None
    if href is None:
        return shown
    return Markup(  # noqa: S704 - the href escaped, `shown` is Markup already
        f'<a href="{escape(href)}" rel="noopener noreferrer nofollow" target="_blank">{shown}</a>'
    )


def snippet(text: str, highlights: Sequence[str]) -> Markup:
    """The snippet escaped, each found spelling in <mark>."""
    marked = highlight_html(plain(text), [plain(h) for h in highlights])  # escapes the text
    return Markup(f"<bdi>{marked}</bdi>")  # noqa: S704 - escaped by highlight_html


def when(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if dt else "–"


def duration(seconds: int | None) -> str:
    """An interval as the CLI writes one: `15m`, `1h30m`, `1h15m1s` (an
    adaptive interval is any number of seconds), never `4501s`."""
    if not seconds:
        return "–"
    parts, rest = [], seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


def mask_target(channel: str, target: str) -> str:
    """A recipient as the page may show it: email addresses and `${NAME}`
    references as written; Slack and webhook URLs (secrets: the token is in
    the path) reduced to scheme and host."""
    if channel == "email" or target.startswith("${"):
        return target
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?#@]*@)?([^/?#:]+)", target)
    return f"{m.group(1)}://{m.group(3)}/…" if m else "***"


def text_escape(value: object) -> Markup:
    return escape(str(value))
