"""Response bodies and the headers that describe them, pure.

`BodyDecoder` undoes Content-Encoding incrementally with the output of every
step bounded by the bytes still allowed, so a compression bomb costs at most
`max_bytes + 1` bytes of memory before it is refused, whatever the ratio.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

try:  # brotli is optional: without it we simply do not advertise "br".
    import brotli  # type: ignore[import-untyped,unused-ignore]

    HAVE_BROTLI = True
except ImportError:  # pragma: no cover - brotli is installed with aiohttp[speedups]
    HAVE_BROTLI = False

ACCEPT_ENCODING = "gzip, deflate, br" if HAVE_BROTLI else "gzip, deflate"
MAX_RETRY_AFTER = 7 * 86_400.0
_MAX_AGE = re.compile(r"(?:^|[,\s])max-age\s*=\s*\"?([0-9]+)", re.IGNORECASE)
# A server may send any number of digits: `max-age=` and 400 nines is
# infinity as a float. Anything beyond a year means "rarely"; the poll policy
# caps it further.
MAX_MAX_AGE = 365 * 86_400.0

# One step: (input chunk, most output bytes wanted) -> output.
_Step = Callable[[bytes, int], bytes]


class BadEncoding(Exception):
    """Unknown Content-Encoding or corrupt compressed data."""


class BodyDecoder:
    """Incremental Content-Encoding decoder with a hard cap on decoded bytes."""

    def __init__(self, content_encoding: str | None, max_bytes: int) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        # Codings are listed in the order applied, so they are undone in reverse.
        self._steps = [_step(c) for c in reversed(codings) if c != "identity"]
        self._max = max_bytes
        self._size = 0

    @property
    def exceeded(self) -> bool:
        """True once more than `max_bytes` came out (the output stops at max + 1)."""
        return self._size > self._max

    def feed(self, chunk: bytes) -> bytes:
        """Decoded bytes for one raw chunk, never past `max_bytes + 1` in total."""
        data = chunk
        for step in self._steps:
            try:
                data = step(data, self._max - self._size + 1)
            except (zlib.error, ValueError) as e:
                raise BadEncoding("corrupt compressed body") from e
            except Exception as e:
                if HAVE_BROTLI and isinstance(e, brotli.error):
                    raise BadEncoding("corrupt compressed body") from e
                raise
        data = data[: self._max - self._size + 1]
        self._size += len(data)
        return data


def _step(coding: str) -> _Step:
    if coding in ("gzip", "x-gzip"):
        return _zlib_step(zlib.decompressobj(16 + zlib.MAX_WBITS))
    if coding == "deflate":
        return _deflate_step()
    if coding == "br" and HAVE_BROTLI:
        return _brotli_step(brotli.Decompressor())
    raise BadEncoding(f"unsupported content encoding {coding}")


def _zlib_step(decoder: zlib._Decompress) -> _Step:
    def step(data: bytes, limit: int) -> bytes:
        if decoder.eof:
            return b""
        # At most `limit` bytes come out; the rest of the input stays in
        # unconsumed_tail, and a full `limit` already means "too large".
        return decoder.decompress(data, limit)

    return step


def _deflate_step() -> _Step:
    # "deflate" should be zlib-wrapped, but some servers send raw deflate.
    inner: list[_Step] = []

    def step(data: bytes, limit: int) -> bytes:
        if not inner:
            if not data:
                return b""
            wbits = zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS
            inner.append(_zlib_step(zlib.decompressobj(wbits)))
        return inner[0](data, limit)

    return step


def _brotli_step(decoder: brotli.Decompressor) -> _Step:
    def step(data: bytes, limit: int) -> bytes:
        if decoder.is_finished():
            return b""
        return bytes(decoder.process(data, output_buffer_limit=limit))

    return step


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), capped."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # "²".isdigit() is true, float("²") fails
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(delta, 0.0), MAX_RETRY_AFTER)


def parse_max_age(cache_control: str | None) -> float | None:
    """max-age in seconds from Cache-Control, None if absent or no-store."""
    if not cache_control or "no-store" in cache_control.lower():
        return None
    match = _MAX_AGE.search(cache_control)
    return min(float(match.group(1)), MAX_MAX_AGE) if match else None


def content_type_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header, lower-cased."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'").lower() or None
    return None
