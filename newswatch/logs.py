"""Structured logging on the stdlib: key=value text on a terminal, JSON on demand.

Call sites write `log.info("event status=ok source=%s items=%d", name, n)`.
A record's fields come from that *template* (written by us, trusted) paired
with its *arguments* (feed text, URLs, reason phrases: hostile): each
`key=%x` placeholder names one field whose value is the matching argument.
The formatters never parse the interpolated message, so no argument can
create, cut short or overwrite a field, whatever spaces, `=`, quotes or
control characters it holds (issue #16). Callers may add fields with
`extra={"fields": {...}}`.

Text lines quote a value (JSON string syntax) when it is empty or holds a
space, `=`, a quote, a backslash or any non-printable character, so each
line is one record and parses back to the same fields. Secrets never reach a
log line: callers mask them (config.mask_secret).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# One printf conversion: flags, width, precision, type (as logging's % supports).
_SPEC = r"%[-#0 +]*(?:\d+|\*)?(?:\.(?:\d+|\*))?[diouxXeEfFgGcrsa%]"
_TOKEN = re.compile(rf"(?:(?<![\w.])([A-Za-z_]\w*)=)?({_SPEC})")
_LITERAL = re.compile(r"(?<!\S)([A-Za-z_]\w*)=([^\s%]+)(?!\S)")
_EVENT = re.compile(r"[a-z][a-z0-9_]*")
RESERVED = frozenset({"ts", "level", "logger", "event", "message", "exc"})
OWN_PACKAGES = ("alerts", "crawler", "newswatch", "scheduler", "storage")


@dataclass(frozen=True, slots=True)
class Event:
    """A record as data: its event name, its fields in order, and the message
    with every argument rendered safely (quoted where needed)."""

    name: str
    fields: dict[str, Any]
    message: str


def quote(value: str) -> str:
    """`value` as one logfmt token: bare if plain, else a JSON string whose
    non-printable characters are all escapes (C0, DEL, C1, line separators)."""
    if value and value.isprintable() and not any(c in value for c in ' ="\\'):
        return value
    return dumps(value)


def dumps(value: Any) -> str:
    """JSON with non-ASCII text kept readable but every non-printable character
    escaped (C1 controls, U+2028, unassigned code points): a JSON line read
    with `splitlines` or shown on a terminal stays one line, as written."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _json_escape(c) for c in text)


def _json_escape(c: str) -> str:
    return json.dumps(c)[1:-1]  # ensure_ascii: \uXXXX, or a surrogate pair


def _escape(text: str) -> str:
    """Non-printable characters as escapes, the rest unchanged."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else quote(c)[1:-1] for c in text)


def _field_value(spec: str, arg: Any) -> Any:
    """What JSON shows for one argument: numbers stay numbers; `%r` of a
    string is the string itself (the repr only quoted it for the text line)."""
    if isinstance(arg, bool) or arg is None:
        return arg
    if isinstance(arg, int | float) and spec[-1] in "sdifgeEFGu":
        return arg
    if isinstance(arg, str):
        return arg
    return (spec % (arg,)) if spec[-1] not in "rsa" else str(arg)


def structure(record: logging.LogRecord) -> Event:
    """Pair the template's `key=%x` placeholders with the record's arguments."""
    template = str(record.msg)
    args = record.args if isinstance(record.args, tuple) else ()
    fields: dict[str, Any] = {m.group(1): m.group(2) for m in _LITERAL.finditer(template)}
    pieces: list[str] = []
    pos = 0
    queue = list(args)
    for m in _TOKEN.finditer(template):
        key, spec = m.group(1), m.group(2)
        pieces.append(template[pos : m.start(2)])
        pos = m.end()
        if spec == "%%":
            pieces.append("%")
            continue
        if not queue:  # a malformed call: show the template as it is
            pieces.append(spec)
            continue
        arg = queue.pop(0)
        try:
            rendered = arg if isinstance(arg, str) and spec[-1] in "rsa" else spec % (arg,)
        except (TypeError, ValueError):
            rendered = repr(arg)
        pieces.append(quote(rendered) if key or rendered else "")
        if key:
            fields[key if key not in RESERVED else f"field_{key}"] = _field_value(spec, arg)
    pieces.append(template[pos:])
    for key, value in (getattr(record, "fields", None) or {}).items():
        fields[key if key not in RESERVED else f"field_{key}"] = value
    message = "".join(pieces)
    # The event is the message's first word (`alert_%s` filled in by us), and
    # only when it is a plain lower-case name from our own packages.
    first = message.split(" ", 1)[0]
    own = record.name.split(".", 1)[0] in OWN_PACKAGES
    name = first if own and _EVENT.fullmatch(first) else "log"
    if not isinstance(record.args, tuple) and record.args:  # a mapping: plain %-format
        message = quote(record.getMessage())
    return Event(name, fields, message)


class JsonFormatter(logging.Formatter):
    """One JSON object per line from the record's structure; the base keys
    (ts, level, logger, event, message, exc) can never be set by a field."""

    def format(self, record: logging.LogRecord) -> str:
        event = structure(record)
        out: dict[str, Any] = dict(event.fields)
        out.update(
            ts=datetime.fromtimestamp(record.created, UTC).isoformat(),
            level=record.levelname.lower(),
            logger=record.name,
            event=event.name,
            message=event.message,
        )
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return dumps(out)


class TextFormatter(logging.Formatter):
    """`<time> <LEVEL> <logger> <event key=value …>`, values quoted as needed;
    a traceback follows on its own lines."""

    def format(self, record: logging.LogRecord) -> str:
        event = structure(record)
        extra = "".join(
            f" {k}={quote(str(v))}" for k, v in (getattr(record, "fields", None) or {}).items()
        )
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {event.message}{extra}"
        if record.exc_info:  # indented, controls escaped: no line of it passes for a record
            trace = self.formatException(record.exc_info).splitlines()
            line += "".join("\n  " + _escape(t) for t in trace)
        return line


def setup_logging(fmt: str, *, verbose: bool, quiet: bool = False) -> None:
    """Route logs to stderr. `quiet` keeps only errors: for one-shot commands
    whose own summary already names every failed source."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.ERROR if quiet else logging.WARNING)
    for noisy in ("trafilatura", "htmldate", "courlan", "charset_normalizer", "aiohttp"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
