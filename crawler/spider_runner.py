"""The child side of a spider run: `python -m crawler.spider_runner`, config as JSON on stdin.

One process per run, because Twisted's reactor cannot restart in a process
and user code must not crash or bloat the daemon. The parent
(crawler.spiders) owns the limits that need a clock it trusts (the wall-clock
kill) and validates every item; this side applies newswatch's fetch policy
inside Scrapy's engine, at a priority a spider's `custom_settings` cannot
override:

- `AddressGuardMiddleware` runs crawler.guard.check_url on every request
  before it is sent (the spider's, robots.txt's, and each redirect hop, which
  Scrapy re-schedules through the whole middleware chain), and refuses an
  https → http redirect.
- `GuardedResolver` is the reactor's DNS resolver: a name that resolves only
  to refused addresses fails, so the address connected is the address
  checked. Proxies are off (a proxy would be the address connected).
- robots.txt obeyed; DOWNLOAD_DELAY and CONCURRENT_REQUESTS_PER_DOMAIN from
  the per-host politeness; DOWNLOAD_MAXSIZE from the response cap;
  CLOSESPIDER_TIMEOUT / CLOSESPIDER_ITEMCOUNT from the run limits; no
  telnet console, no file/data/ftp/s3 handlers.

Output: one JSON object per line on the original stdout, which is moved to a
private descriptor first so that a spider's print() (now on stderr) cannot
corrupt it. Items as `{"item": {...}}`, oversized ones as `{"junk": reason}`,
and last `{"status": {...}}` with the finish reason, error and refusal
counts and the last error line. Exit 2 when the spider cannot be loaded.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from crawler import CrawlError
from crawler.addresses import AddressPolicy
from crawler.guard import check_url, describe, literal_address, redact

MAX_CONFIG_BYTES = 1_000_000
POLICY_SETTING = "NEWSWATCH_ADDRESS_POLICY"


class SpiderLoadError(Exception):
    """The spec names no importable Scrapy spider class."""


@dataclass
class Refusals:
    """Requests refused in this process (by the middleware or the resolver)."""

    count: int = 0
    last: str | None = None

    def add(self, reason: str) -> None:
        self.count += 1
        self.last = reason[:300]
        print(f"refused: {self.last}", file=sys.stderr, flush=True)


REFUSALS = Refusals()
# Final responses to the spider's own requests (robots.txt excluded), by status.
RESPONSES: Counter[str] = Counter()


# ---------------------------------------------------------------- Scrapy hooks
# Imported lazily by Scrapy from their dotted paths, inside the child only.


class AddressGuardMiddleware:
    """Downloader middleware: every request is checked against the address policy."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    @classmethod
    def from_crawler(cls, crawler: Any) -> AddressGuardMiddleware:
        return cls(AddressPolicy.parse(crawler.settings.get(POLICY_SETTING, "false")))

    def process_request(self, request: Any, spider: Any = None) -> None:
        from scrapy.exceptions import IgnoreRequest

        try:
            check_url(request.url, self.policy)
        except CrawlError as e:
            REFUSALS.add(str(e))
            raise IgnoreRequest(str(e)) from None
        previous = request.meta.get("redirect_urls") or []
        if request.url.startswith("http:") and any(u.startswith("https:") for u in previous):
            reason = f"refused redirect from https to http: {redact(request.url)}"
            REFUSALS.add(reason)
            raise IgnoreRequest(reason)

    def process_response(self, request: Any, response: Any, spider: Any = None) -> Any:
        if not request.meta.get("dont_obey_robotstxt"):
            RESPONSES[str(response.status)] += 1
        return response


def _resolver_class() -> Any:
    from scrapy.resolver import CachingThreadedResolver
    from twisted.internet.error import DNSLookupError

    class GuardedResolver(CachingThreadedResolver):
        """Scrapy's caching resolver, refusing names that resolve to refused addresses."""

        policy = AddressPolicy()

        @classmethod
        def from_crawler(cls, crawler: Any, reactor: Any) -> Any:
            resolver = super().from_crawler(crawler, reactor)
            # `crawler` is the CrawlerProcess here: the resolver belongs to the reactor.
            resolver.policy = AddressPolicy.parse(crawler.settings.get(POLICY_SETTING, "false"))
            return resolver

        def getHostByName(self, name: str, timeout: Any = ()) -> Any:
            deferred = super().getHostByName(name, timeout)
            deferred.addCallback(self._check, name)
            return deferred

        def _check(self, address: str, name: str) -> str:
            found = literal_address(address)
            if found is None or not self.policy.permits(found[0]):
                reason = f"refused address {address} ({_why(address)}) for host {name}"
                REFUSALS.add(reason)
                raise DNSLookupError(reason)
            return address

    return GuardedResolver


def _why(address: str) -> str:
    found = literal_address(address)
    return describe(found[0]) if found else "not an address"


# Scrapy loads the resolver by dotted path; the class needs Scrapy imported.
def __getattr__(name: str) -> Any:
    if name == "GuardedResolver":
        return _resolver_class()
    raise AttributeError(name)


# ------------------------------------------------------------------- the run


def scrapy_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Scrapy settings from the parent's policy (applied at "cmdline" priority)."""
    return {
        POLICY_SETTING: config["allow"],
        "USER_AGENT": config["user_agent"],
        "ROBOTSTXT_OBEY": True,
        "DOWNLOAD_DELAY": config["delay"],
        "RANDOMIZE_DOWNLOAD_DELAY": False,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config["per_host"],
        "CONCURRENT_REQUESTS": config["concurrency"],
        "DOWNLOAD_MAXSIZE": config["max_bytes"],
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_TIMEOUT": config["timeout"],
        "REDIRECT_MAX_TIMES": config["max_redirects"],
        "CLOSESPIDER_TIMEOUT": config["run_seconds"],
        "CLOSESPIDER_ITEMCOUNT": config["max_items"],
        "TELNETCONSOLE_ENABLED": False,
        "HTTPPROXY_ENABLED": False,
        "DOWNLOAD_HANDLERS": {"file": None, "data": None, "ftp": None, "s3": None},
        "DOWNLOADER_MIDDLEWARES": {f"{__name__}.AddressGuardMiddleware": 50},
        "TWISTED_DNS_RESOLVER": f"{__name__}.GuardedResolver",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "%(levelname)s %(name)s: %(message)s",
    }


def load_spider(spec: str) -> type[Any]:
    """The class named by "package.module:Class" or "path/to/file.py:Class"."""
    from scrapy import Spider

    where, _, name = spec.rpartition(":")
    if not where or not name.isidentifier():
        raise SpiderLoadError(f"{spec!r} is not module:Class or file.py:Class")
    try:
        if where.endswith(".py"):
            path = Path(where).resolve()
            module_spec = importlib.util.spec_from_file_location(f"_nw_spider_{path.stem}", path)
            if module_spec is None or module_spec.loader is None or not path.is_file():
                raise SpiderLoadError(f"no spider file {where}")
            sys.path.insert(0, str(path.parent))
            module = importlib.util.module_from_spec(module_spec)
            module_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except SpiderLoadError:
        raise
    except Exception as e:  # user code: any error while importing it
        raise SpiderLoadError(f"cannot import {where}: {type(e).__name__}: {e}") from e
    cls = getattr(module, name, None)
    if not (isinstance(cls, type) and issubclass(cls, Spider)):
        raise SpiderLoadError(f"{spec} is not a scrapy.Spider subclass")
    return cls


@dataclass
class _Run:
    out: IO[bytes]
    max_line: int
    items: int = 0
    junk: int = 0
    errors: int = 0
    last_error: str | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str).encode("utf-8", "replace")
        if len(line) > self.max_line:
            self.junk += 1
            line = json.dumps({"junk": f"item of {len(line)} bytes over the cap"}).encode()
        self.out.write(line + b"\n")
        self.out.flush()

    def item_scraped(self, item: Any, **_: Any) -> None:
        from itemadapter import ItemAdapter

        try:
            data = ItemAdapter(item).asdict()
        except TypeError:
            self.junk += 1
            self.write({"junk": f"not an item: {type(item).__name__}"})
            return
        self.items += 1
        self.write({"item": data})

    def spider_error(self, failure: Any, **_: Any) -> None:
        self.errors += 1
        self.last_error = " ".join(f"{failure.type.__name__}: {failure.value}".split())[:300]

    def spider_closed(self, reason: str, **_: Any) -> None:
        self.reason = reason


def run(config: dict[str, Any], out: IO[bytes]) -> int:
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    try:
        spider_cls = load_spider(str(config["spider"]))
    except SpiderLoadError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    settings = Settings()
    settings.setdict(scrapy_settings(config), priority="cmdline")
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(spider_cls)
    state = _Run(out, int(config["max_line_bytes"]))
    crawler.signals.connect(state.item_scraped, signal=signals.item_scraped)
    crawler.signals.connect(state.spider_error, signal=signals.spider_error)
    crawler.signals.connect(state.spider_closed, signal=signals.spider_closed)
    process.crawl(crawler, **dict(config.get("args") or {}))
    process.start()
    stats = crawler.stats.get_stats() if crawler.stats else {}
    log_errors = int(stats.get("log_count/ERROR", 0))
    state.write(
        {
            "status": {
                "finish_reason": state.reason,
                "items": state.items,
                "junk": state.junk,
                "errors": max(state.errors, log_errors),
                "last_error": state.last_error,
                "refused": REFUSALS.count,
                "last_refused": REFUSALS.last,
                "requests": int(stats.get("downloader/request_count", 0)),
                "responses": dict(RESPONSES),
                "robots_forbidden": int(stats.get("robotstxt/forbidden", 0)),
            }
        }
    )
    return 0


def _limit_memory(megabytes: int) -> None:
    """An address-space cap: a runaway spider dies with MemoryError, not the host."""
    import resource

    if megabytes > 0:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main() -> int:
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # print() in user code goes to stderr, never into the item stream
    sys.stdout = sys.stderr
    config = json.loads(sys.stdin.buffer.read(MAX_CONFIG_BYTES))
    _limit_memory(int(config.get("memory_mb", 0)))
    try:
        return run(config, out)
    finally:
        out.close()


if __name__ == "__main__":
    sys.exit(main())
