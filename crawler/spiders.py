"""Sources of kind `spider`: a user's Scrapy spider, run in a child process per poll.

Why a subprocess: Twisted's reactor cannot be restarted in a process, and a
user's spider must not crash, block or bloat the daemon. The child
(crawler.spider_runner) runs the spider under Scrapy's engine with our
address policy, robots.txt and politeness; this side owns what must not
depend on the child behaving:

- a wall-clock limit (the run limit plus a grace period for Scrapy's own
  CLOSESPIDER_TIMEOUT to close cleanly), after which the child's whole
  process group is killed;
- caps on the output: bytes in total and per line (a longer line is dropped
  as junk), and lines kept from stderr;
- validation of every item (`to_item`): an http(s) `url` and a non-empty
  `title` are required, fields have length caps, dates are parsed. A bad
  item is counted as junk and never stored.
- a clean environment: no NEWSWATCH_* variables (database URL, SMTP
  password) and no proxy variables reach user code.

The result is a PollOutcome like any other poll's: "ok" with the items, or
"failed" with a one-line reason (the spider's last error, a refusal, the
kill) when it produced no valid item, or did not finish (killed, crashed:
its items are dropped, and the next run yields them again; storage keeps
each URL once). A spider that finished with items but also raised in some
callback keeps its items (they are real articles) and logs the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crawler import CrawlError
from crawler.crawl_records import Item, PollOutcome, Source
from crawler.entries import usable_date
from crawler.fetch import FetchPolicy
from crawler.guard import parse_url
from crawler.normalize import (
    canonical_url,
    collapse_whitespace,
    content_hash,
    detect_language,
    one_line,
)
from crawler.sitemaps import parse_w3c_date

log = logging.getLogger(__name__)

MAX_URL_CHARS = 2048
MAX_TITLE_CHARS = 1000
MAX_SUMMARY_CHARS = 20_000
MAX_TEXT_CHARS = 1_000_000
STDERR_LINES = 20
_ENV_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV")


@dataclass(frozen=True, slots=True)
class SpiderLimits:
    """Per-run limits (the integrator maps newswatch settings onto these)."""

    run_seconds: float = 300.0
    max_items: int = 500
    grace_seconds: float = 15.0
    max_line_bytes: int = 2_500_000
    max_output_bytes: int = 200_000_000
    memory_mb: int = 2048
    python: str = sys.executable


@dataclass
class SpiderRun:
    """What came back from one child (mutable while reading; see poll_spider)."""

    items: dict[str, Item] = field(default_factory=dict)
    junk: int = 0
    first_junk: str | None = None
    status: dict[str, Any] | None = None
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_LINES))
    killed: str | None = None
    returncode: int | None = None


# ------------------------------------------------------------- the pure parts


def to_item(data: object, now: datetime) -> Item | str:
    """A spider's item as an Item, or the one-line reason it is junk."""
    if not isinstance(data, Mapping):
        return "not an object"
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        return "no url"
    if len(url) > MAX_URL_CHARS:
        return "url too long"
    try:
        parse_url(url)
        url = canonical_url(url)
    except (CrawlError, ValueError) as e:
        return f"bad url: {e}"
    title = data.get("title")
    if not isinstance(title, str) or not collapse_whitespace(title):
        return "no title"
    fields = {"title": title, "summary": data.get("summary"), "text": data.get("text")}
    caps = {"title": MAX_TITLE_CHARS, "summary": MAX_SUMMARY_CHARS, "text": MAX_TEXT_CHARS}
    for name, value in fields.items():
        if value is not None and not isinstance(value, str):
            return f"{name} is not a string"
        if value is not None and len(value) > caps[name]:
            return f"{name} longer than {caps[name]} characters"
    title = one_line(title)
    summary = collapse_whitespace(str(fields["summary"] or ""))
    text = collapse_whitespace(str(fields["text"] or ""))
    published = _published(data.get("published"), now)
    return Item(
        url=url,
        guid=url,
        title=title,
        summary=summary,
        text=text,
        published=published or now,
        dated=published is not None,
        language=_language(data.get("language"))
        or detect_language(f"{title}\n{summary}\n{text[:600]}"),
        content_hash=content_hash(title, text or summary),
    )


def _published(value: object, now: datetime) -> datetime | None:
    """ISO 8601 (or a W3C date) in UTC; missing, unreadable or future → None."""
    parsed = parse_w3c_date(value) if isinstance(value, str) else None
    return usable_date(parsed, now)


def _language(value: object) -> str | None:
    if isinstance(value, str) and len(value) >= 2 and value[:2].isascii() and value[:2].isalpha():
        return value[:2].lower()
    return None


def outcome_of(source: Source, run: SpiderRun) -> PollOutcome:
    """The poll's outcome from what the child sent and how it ended."""
    items = tuple(run.items.values())
    reason = _failure(run)
    unfinished = run.killed is not None or run.status is None
    if reason is not None and (unfinished or not items):
        line = " ".join(reason.split())[:300]
        log.warning("polled status=failed source=%s kind=spider error=%s", source.name, line)
        return PollOutcome(source.id, "failed", error=line)
    if reason is not None:
        log.warning("spider status=partial source=%s error=%s", source.name, reason[:300])
    log.info(
        "polled status=ok source=%s kind=spider items=%d junk=%d",
        source.name,
        len(items),
        run.junk,
    )
    return PollOutcome(source.id, "ok", items=items)


def _failure(run: SpiderRun) -> str | None:
    """Why the run failed (None when it did not), most telling reason first."""
    status = run.status
    if run.killed:
        return run.killed
    if status is None:
        last = _last_error_line(run.stderr)
        code = run.returncode
        return f"spider exited with code {code}" + (f": {last}" if last else "")
    if not run.items and status.get("refused"):
        return str(status.get("last_refused") or "requests refused by the address policy")
    if status.get("errors"):
        last = status.get("last_error") or _last_error_line(run.stderr) or "see the log"
        return f"spider failed: {last}"
    if not run.items and run.junk:
        return f"spider yielded {run.junk} invalid items ({run.first_junk})"
    responses: dict[str, int] = status.get("responses") or {}
    if not run.items and not any(k.startswith("2") for k in responses):
        if status.get("robots_forbidden"):
            return f"robots.txt forbids the spider's requests ({status['robots_forbidden']})"
        shown = ", ".join(f"HTTP {k} x{n}" for k, n in sorted(responses.items()))
        return f"spider got no successful response ({shown or 'no response'})"
    return None


def _last_error_line(lines: deque[str]) -> str | None:
    for line in reversed(lines):
        if line.startswith(("error:", "ERROR", "refused:")) or "Error" in line:
            return line[:300]
    return lines[-1][:300] if lines else None


def runner_config(source: Source, policy: FetchPolicy, limits: SpiderLimits) -> dict[str, Any]:
    """The child's JSON config: the spider spec and our fetch policy and limits."""
    args = {}
    if source.url.lower().startswith(("http://", "https://")):
        args["url"] = source.url
    return {
        "spider": source.spider,
        "args": args,
        "allow": policy.address_policy.describe(),
        "user_agent": policy.user_agent,
        "delay": policy.per_host_delay,
        "per_host": policy.per_host_concurrency,
        "concurrency": policy.concurrency,
        "max_bytes": policy.max_bytes,
        "timeout": policy.timeout,
        "max_redirects": policy.max_redirects,
        "run_seconds": limits.run_seconds,
        "max_items": limits.max_items,
        "max_line_bytes": limits.max_line_bytes,
        "memory_mb": limits.memory_mb,
    }


def child_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for user code: the basics, no secrets, no proxies."""
    return {k: v for k, v in environ.items() if k in _ENV_KEEP}


# ------------------------------------------------------------------ the child


async def poll_spider(
    source: Source,
    policy: FetchPolicy,
    *,
    limits: SpiderLimits | None = None,
    now: datetime | None = None,
) -> PollOutcome:
    """Run the source's spider once in a child process; never raises CrawlError."""
    limits = limits or SpiderLimits()
    if not source.spider:
        return PollOutcome(source.id, "failed", error="spider source without --spider")
    run = SpiderRun()
    config = json.dumps(runner_config(source, policy, limits)).encode()
    proc = await asyncio.create_subprocess_exec(
        limits.python,
        "-m",
        "crawler.spider_runner",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        env=child_env(os.environ),
    )
    try:
        await _talk(proc, config, run, limits, now or datetime.now(UTC))
    finally:
        if proc.returncode is None:
            _kill(proc)
            await proc.wait()
        run.returncode = proc.returncode
    return outcome_of(source, run)


async def _talk(
    proc: asyncio.subprocess.Process,
    config: bytes,
    run: SpiderRun,
    limits: SpiderLimits,
    now: datetime,
) -> None:
    """Send the config, read items and stderr until exit, kill at the deadline."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    with contextlib.suppress(ConnectionError):
        proc.stdin.write(config)
        await proc.stdin.drain()
        proc.stdin.close()
    deadline = limits.run_seconds + limits.grace_seconds
    try:
        async with asyncio.timeout(deadline):
            await asyncio.gather(
                _read_items(proc, proc.stdout, run, limits, now),
                _read_stderr(proc.stderr, run),
            )
            await proc.wait()
    except TimeoutError:
        run.killed = f"spider did not finish within {deadline:g}s and was killed"
        _kill(proc)


async def _read_items(
    proc: asyncio.subprocess.Process,
    stream: asyncio.StreamReader,
    run: SpiderRun,
    limits: SpiderLimits,
    now: datetime,
) -> None:
    """JSON Lines from the child; overlong lines and bad records become junk."""
    buffer = bytearray()
    total = 0
    dropping = False
    while chunk := await stream.read(65536):
        total += len(chunk)
        if total > limits.max_output_bytes:
            run.killed = f"spider wrote more than {limits.max_output_bytes} bytes and was killed"
            _kill(proc)
            return
        buffer += chunk
        while (end := buffer.find(b"\n")) >= 0:
            line = bytes(buffer[:end])
            del buffer[: end + 1]
            if dropping:
                dropping = False
            else:
                _record(line, run, limits, now)
        if len(buffer) > limits.max_line_bytes:
            buffer.clear()
            dropping = True
            _junk(run, "line over the size cap")


def _record(line: bytes, run: SpiderRun, limits: SpiderLimits, now: datetime) -> None:
    try:
        record = json.loads(line)
    except ValueError:
        _junk(run, "not JSON")
        return
    if not isinstance(record, dict):
        _junk(run, "not an object")
    elif "status" in record and isinstance(record["status"], dict):
        run.status = record["status"]
    elif "junk" in record:
        _junk(run, str(record["junk"])[:200])
    elif len(run.items) >= limits.max_items:
        return
    else:
        item = to_item(record.get("item"), now)
        if isinstance(item, str):
            _junk(run, item)
        else:
            run.items.setdefault(item.url, item)


def _junk(run: SpiderRun, reason: str) -> None:
    run.junk += 1
    run.first_junk = run.first_junk or reason


async def _read_stderr(stream: asyncio.StreamReader, run: SpiderRun) -> None:
    """Keep the last lines (each cut to 300 characters) for the failure reason."""
    while True:
        try:
            line = await stream.readline()
        except ValueError:  # a line longer than the reader's limit (it was discarded)
            continue
        if not line:
            return
        text = " ".join(line.decode("utf-8", "replace").split())[:300]
        if text:
            run.stderr.append(text)


def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
