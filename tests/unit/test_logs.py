"""Log records are built from structure, never by parsing text (issue #16).

Whatever an argument holds (a hostile reason phrase, feed title or URL with
spaces, `=`, quotes, newlines, ESC, C1 controls), it is exactly one field's
value in JSON and one quoted token in text: it can create, cut short or change
no other key.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given
from hypothesis import strategies as st

from newswatch.logs import JsonFormatter, TextFormatter, quote

HOSTILE = [
    "Not Found level=debug source=evil logger=root status=ok",
    'x" status="ok',
    "a\nnewswatch 2026-01-01 ERROR root forged status=ok",
    "\x1b[31mred\x1b]8;;http://evil.example\x07link\x1b]8;;\x07",
    "\x85next-line\u2028sep\x9b31m",
    "",
    "=",
    " leading and trailing ",
    "\\",
    '{"level": "debug"}',
]
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=60))


@contextmanager
def capturing() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    logger = logging.getLogger("crawler.testlogs")
    json_out, text_out = io.StringIO(), io.StringIO()
    handlers = []
    for out, fmt in ((json_out, JsonFormatter()), (text_out, TextFormatter())):
        h = logging.StreamHandler(out)
        h.setFormatter(fmt)
        logger.addHandler(h)
        handlers.append(h)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield logger, json_out, text_out
    finally:
        for h in handlers:
            logger.removeHandler(h)
        logger.propagate = True


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO, io.StringIO]]:
    with capturing() as c:
        yield c


def _logfmt(message: str) -> dict[str, str]:
    """A strict parser of our text lines' `key=value` part (value bare or a JSON string)."""
    fields: dict[str, str] = {}
    pos = 0
    token = re.compile(r'\s*([A-Za-z_]\w*)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
    _, _, rest = message.partition(" ")
    while pos < len(rest):
        m = token.match(rest, pos)
        assert m, f"unparsable at {pos}: {rest!r}"
        value = m.group(2)
        fields[m.group(1)] = json.loads(value) if value.startswith('"') else value
        pos = m.end()
    return fields


def _take(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


@given(reason=TEXT, source=TEXT)
def test_hostile_arguments_stay_one_field(reason: str, source: str) -> None:
    with capturing() as (logger, json_out, text_out):
        logger.warning("polled status=failed source=%s http=%d reason=%r", source, 404, reason)
    lines = _take(json_out).splitlines()
    assert len(lines) == 1
    doc = json.loads(lines[0])
    assert set(doc) == {
        "ts",
        "level",
        "logger",
        "event",
        "message",
        "status",
        "source",
        "http",
        "reason",
    }
    assert doc["source"] == source and doc["reason"] == reason and doc["http"] == 404
    assert (doc["level"], doc["logger"], doc["event"], doc["status"]) == (
        "warning",
        "crawler.testlogs",
        "polled",
        "failed",
    )
    text = _take(text_out)
    assert text.count("\n") == 1 and text.isprintable() is False  # only the final newline
    assert text[:-1].isprintable()
    message = text[:-1].split(" crawler.testlogs ", 1)[1]
    assert doc["message"] == message
    assert _logfmt(message) == {
        "status": "failed",
        "source": source,
        "http": "404",
        "reason": reason,
    }


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_round_trips(value: str) -> None:
    q = quote(value)
    assert q.isprintable() and (q.startswith('"') or " " not in q)
    assert (json.loads(q) if q.startswith('"') else q) == value


def test_reserved_keys_cannot_be_overwritten(
    capture: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, json_out, _ = capture
    logger.error("odd level=%s ts=%s", "debug", "0", extra={"fields": {"logger": "x", "n": 1}})
    doc = json.loads(_take(json_out))
    assert doc["level"] == "error" and doc["logger"] == "crawler.testlogs" and doc["ts"] != "0"
    assert doc["field_level"] == "debug" and doc["field_logger"] == "x" and doc["n"] == 1


def test_traceback_lines_cannot_pass_for_records(
    capture: tuple[logging.Logger, io.StringIO, io.StringIO],
) -> None:
    logger, json_out, text_out = capture
    try:
        raise ValueError("boom\n2026-01-01 00:00:00,000 ERROR root forged status=ok\x1b[2J")
    except ValueError:
        logger.exception("job_failed status=error")
    lines = _take(text_out).splitlines()
    assert all(line.startswith("  ") for line in lines[1:]) and len(lines) > 2
    assert all(line.isprintable() for line in lines)
    doc = json.loads(_take(json_out))
    assert "forged" in doc["exc"] and doc["status"] == "error"


@pytest.mark.parametrize(
    "outcome,event", [("sent", "alert_sent"), ("x y", "log"), ("A", "log"), ("a=b", "log")]
)
def test_event_from_a_filled_first_word(outcome: str, event: str) -> None:
    with capturing() as (logger, json_out, _):
        logger.info("alert_%s status=%s", outcome, outcome)
        doc = json.loads(_take(json_out))
    assert doc["event"] == event and doc["status"] == outcome


def test_an_empty_bare_argument_adds_nothing() -> None:
    with capturing() as (logger, json_out, text_out):
        logger.info("polled source=%s%s", "a b", "")
        doc = json.loads(_take(json_out))
    assert doc["message"] == 'polled source="a b"' and doc["source"] == "a b"
    assert _take(text_out).rstrip("\n").endswith('polled source="a b"')
