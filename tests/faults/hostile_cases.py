"""The hostile-input table: one `Case` per hostile server behaviour or feed.

A case registers its routes on the local server and returns the URL of the
source to crawl. Its expectation is either an error (a substring of the
source's recorded `last_error`, any of several spellings) or a number of
stored items, plus an optional `check` over what was stored and delivered.
Adding a case is adding one `Case(...)` line to `CASES`.
"""

from __future__ import annotations

import gzip
import json
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tests.support.canary import gzip_bomb
from tests.support.httpserver import LocalHTTPServer, Request, Response, trickle

GiB = 1 << 30
MiB = 1 << 20


@dataclass
class Ctx:
    """What a case may use: the fixture server (127.0.0.1, allowed), the
    canary ports (127.0.0.2 and ::1, forbidden) and the HTTPS front."""

    server: LocalHTTPServer
    canary4: int
    canary6: int
    https_url: Callable[[str], str]
    https_routes: dict[str, Response]
    name: str = ""

    @property
    def base(self) -> str:
        return self.server.url("").rstrip("/")

    def link(self, n: int | str) -> str:
        """A unique article URL for this case (items are unique by URL across sources)."""
        return f"{self.base}/art/{self.name}/{n}"

    def route(self, response: Response | Callable[[Request], Response], suffix: str = "") -> str:
        return self.server.route(f"/c/{self.name}{suffix}", response)

    def redirect_to(self, location: str, status: int = 302) -> str:
        return self.route((status, {"Location": location}, b""))


@dataclass(frozen=True)
class Outcome:
    backend: str
    error: str | None
    failures: int
    items: list[dict[str, Any]]
    deliveries: Any  # the module's Deliveries (webhook, Slack, email as received)
    crawl_started: datetime
    server: LocalHTTPServer


@dataclass(frozen=True)
class Case:
    name: str
    setup: Callable[[Ctx], str]
    error: str | tuple[str, ...] | None = None
    items: int | None = None
    check: Callable[[Outcome], None] | None = None
    kind: str = "feed"
    marks: tuple[Any, ...] = field(default=())
    # The error is one acceptable outcome; storing nothing is the other (a
    # truncated body may read as "not a feed" or as a feed with no entry).
    may_pass_empty: bool = False

    @property
    def errors(self) -> tuple[str, ...]:
        if self.error is None:
            return ()
        return (self.error,) if isinstance(self.error, str) else self.error


# ------------------------------------------------------------------ builders


def rss(
    items: str, *, decl: str = '<?xml version="1.0" encoding="utf-8"?>', doctype: str = ""
) -> str:
    return f'{decl}{doctype}<rss version="2.0"><channel><title>t</title>{items}</channel></rss>'


def item(
    title: str, link: str | None, guid: str | None = None, desc: str = "", extra: str = ""
) -> str:
    parts = [f"<title>{title}</title>"]
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if guid is not None:
        parts.append(f"<guid>{guid}</guid>")
    if desc:
        parts.append(f"<description>{desc}</description>")
    return f"<item>{''.join(parts)}{extra}</item>"


XML = {"Content-Type": "application/rss+xml"}


def ok(body: str | bytes, headers: dict[str, str] | None = None) -> Response:
    data = body.encode() if isinstance(body, str) else body
    return 200, {**XML, **(headers or {})}, data


def feed(c: Ctx, *items_: str, **kw: str) -> str:
    return c.route(ok(rss("".join(items_), **kw)))


def one_item_feed(c: Ctx, title: str = "plain", desc: str = "") -> str:
    return feed(c, item(title, c.link(1), desc=desc))


# ------------------------------------------------------------------ streams


def zlib_bomb(total: int, wbits: int, block: int = MiB) -> Iterator[bytes]:
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = bytes(block)
    yield comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    piece = comp.compress(zeros) + comp.flush(zlib.Z_FULL_FLUSH)
    for _ in range(total // block - 1):
        yield piece


def brotli_bomb(total: int, block: int = MiB) -> Iterator[bytes]:
    import brotli

    comp = brotli.Compressor(quality=1)
    zeros = bytes(block)
    for _ in range(total // block):
        out = comp.process(zeros) + comp.flush()
        if out:
            yield out


def zeros(total: int, block: int = 256 * 1024) -> Iterator[bytes]:
    chunk = bytes(block)
    for _ in range(total // block):
        yield chunk


def endless() -> Iterator[bytes]:
    chunk = b"<item><title>x</title></item>" * 1000
    yield b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    while True:
        yield chunk


def hang(seconds: float) -> Callable[[Request], Response]:
    def handler(_req: Request) -> Response:
        time.sleep(seconds)
        return ok("<rss/>")

    return handler


# ------------------------------------------------------------------ checks


def no_hits(path_fragment: str) -> Callable[[Outcome], None]:
    def check(o: Outcome) -> None:
        assert not [r for r in o.server.requests if path_fragment in r.path]

    return check


def title_is(expected: str) -> Callable[[Outcome], None]:
    def check(o: Outcome) -> None:
        assert [i["title"] for i in o.items] == [expected]

    return check


def published_is_fetch_time(o: Outcome) -> None:
    for i in o.items:
        assert abs(i["published"] - o.crawl_started) < timedelta(minutes=5), i


def published_not_in_future(o: Outcome) -> None:
    """A date the parsers read oddly (feedparser reads `0001 … +1400` as 1400)
    may stay, but it is UTC and never later than the fetch."""
    for i in o.items:
        assert i["published"].utcoffset() == timedelta(0), i
        assert i["published"] < o.crawl_started + timedelta(minutes=5), i


def guid_is_url(o: Outcome) -> None:
    assert o.items and all(i["guid"] == i["url"] for i in o.items)


def text_shorter_than(n: int) -> Callable[[Outcome], None]:
    def check(o: Outcome) -> None:
        for i in o.items:
            assert len(i["title"]) + len(i["summary"]) + len(i["body"]) < n

    return check


def no_passwd(o: Outcome) -> None:
    for i in o.items:
        assert "root:" not in i["title"] + i["summary"] + i["body"]


def delivered(o: Outcome, name: str) -> dict[str, Any]:
    """This case's alert as each channel received it (exactly one each)."""
    return o.deliveries.for_case(name)


def email_headers_not_injected(o: Outcome) -> None:
    got = delivered(o, "crlf-bcc-title")
    msg = got["email"]
    assert got["email_rcpt"] == ["analyst@example.org"]
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert "\n" not in str(msg["Subject"]) and "\r" not in str(msg["Subject"])
    assert "Pantsir" in str(msg["Subject"])
    assert got["webhook"]["item"]["title"].startswith("Pantsir")


def slack_escaped(o: Outcome) -> None:
    got = delivered(o, "slack-control-title")
    texts = o.deliveries.slack_texts(got["slack"])
    joined = "\n".join(texts)
    assert "<!channel>" not in joined and "<!here>" not in joined
    assert "<http://evil.example|click>" not in joined
    assert "&lt;!channel&gt;" in joined
    assert "@here" not in joined or "<!here" not in joined


def html_escaped(o: Outcome) -> None:
    got = delivered(o, "html-script-title")
    html_part = got["email"].get_body(preferencelist=("html",)).get_content()
    assert "<script" not in html_part.lower() and "<img" not in html_part.lower()
    assert "&lt;script&gt;" in html_part
    texts = "\n".join(o.deliveries.slack_texts(got["slack"]))
    assert "<script" not in texts.lower()


def huge_title_bounded(o: Outcome) -> None:
    got = delivered(o, "megabyte-title")
    assert len(str(got["email"]["Subject"])) <= 250
    for block in got["slack"].get("blocks", []):
        text = (block.get("text") or {}).get("text", "")
        assert len(text) <= 3000
    assert len(got["slack"].get("text", "")) <= 3000


def matched_quickly(o: Outcome) -> None:
    got = delivered(o, "catastrophic-regex-text")
    assert got["webhook"]["terms"] == ["Pantsir"]


# ------------------------------------------------------------------ the table


def _downgrade(c: Ctx) -> str:
    target = feed(c, item("downgraded", c.link(1)))
    c.https_routes[f"/c/{c.name}"] = (301, {"Location": target}, b"")
    return c.https_url(f"/c/{c.name}")


def _loop(c: Ctx) -> str:
    a = c.server.url(f"/c/{c.name}")
    b = c.route((302, {"Location": a}, b""), "/b")
    return c.redirect_to(b)


def _chain(c: Ctx, hops: int = 10) -> str:
    nxt = c.route(ok(rss("")), "/end")
    for i in range(hops, 0, -1):
        nxt = c.route((302, {"Location": nxt}, b""), f"/{i}")
    return nxt


def _bomb_entities(levels: int = 9) -> str:
    ents = ['<!ENTITY lol "lol">']
    for n in range(2, levels + 2):
        prev = "lol" if n == 2 else f"lol{n - 1}"
        ents.append(f'<!ENTITY lol{n} "{("&" + prev + ";") * 10}">')
    return "<!DOCTYPE rss [" + "".join(ents) + "]>"


BIG = "A" * 100_000


def _korean(c: Ctx, declared: str) -> str:
    title = "북한, 평양 인근에 판치르 방공체계 배치"
    desc = "국방부는 북한이 러시아제 판치르 지대공 미사일 체계를 평양 인근에 배치했다고 밝혔다."
    body = rss(
        item(title, c.link(1), desc=desc), decl=f'<?xml version="1.0" encoding="{declared}"?>'
    )
    return c.route(
        (200, {"Content-Type": f"application/rss+xml; charset={declared}"}, body.encode("euc-kr"))
    )


def _russian(c: Ctx, declared: str, header: str) -> str:
    title = "Россия перебросила комплексы Панцирь к линии фронта"
    desc = "Министерство обороны сообщило о переброске зенитных ракетных комплексов."
    body = rss(
        item(title, c.link(1), desc=desc), decl=f'<?xml version="1.0" encoding="{declared}"?>'
    )
    ct = f"application/rss+xml; charset={header}"
    return c.route((200, {"Content-Type": ct}, body.encode("windows-1251")))


def _json(c: Ctx, body: bytes) -> str:
    return c.route((200, {"Content-Type": "application/feed+json"}, body))


JSONFEED = b'{"version":"https://jsonfeed.org/version/1.1","title":"x","items":'

DATE = "<pubDate>{}</pubDate>"

CASES: list[Case] = [
    # --- XML bombs and entities
    Case(
        "billion-laughs",
        lambda c: feed(c, item("&lol10;", c.link(1)), doctype=_bomb_entities()),
        items=1,
        check=text_shorter_than(2_000),
    ),
    Case(
        "big-internal-entity",
        lambda c: feed(
            c,
            item("big", c.link(1), desc="&big;" * 10_000),
            doctype=f'<!DOCTYPE rss [<!ENTITY big "{BIG}">]>',
        ),
        items=1,
        check=text_shorter_than(200_000),
    ),
    Case(
        "xxe-file",
        lambda c: feed(
            c,
            item("&xxe;", c.link(1)),
            doctype='<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        ),
        items=1,
        check=no_passwd,
    ),
    Case(
        "xxe-http-canary",
        lambda c: feed(
            c,
            item("&xxe;", c.link(1)),
            doctype=f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "http://127.0.0.2:{c.canary4}/x">]>',
        ),
        items=1,
    ),
    Case(
        "xxe-parameter-entity",
        lambda c: feed(
            c,
            item("pe", c.link(1)),
            doctype=f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://127.0.0.2:{c.canary4}/p"> %p;]>',
        ),
        items=1,
    ),
    # --- compression bombs
    Case(
        "gzip-bomb-1GiB",
        lambda c: c.route((200, {**XML, "Content-Encoding": "gzip"}, gzip_bomb(GiB))),
        error="larger than",
    ),
    Case(
        "deflate-bomb-zlib",
        lambda c: c.route((200, {**XML, "Content-Encoding": "deflate"}, zlib_bomb(GiB, 15))),
        error="larger than",
    ),
    Case(
        "deflate-bomb-raw",
        lambda c: c.route((200, {**XML, "Content-Encoding": "deflate"}, zlib_bomb(GiB, -15))),
        error="larger than",
    ),
    Case(
        "brotli-bomb",
        lambda c: c.route((200, {**XML, "Content-Encoding": "br"}, brotli_bomb(256 * MiB))),
        error="larger than",
    ),
    Case(
        "gzip-twice",
        lambda c: c.route(
            (
                200,
                {**XML, "Content-Encoding": "gzip, gzip"},
                gzip.compress(b"".join(gzip_bomb(64 * MiB))),
            )
        ),
        error=("larger than", "encoding"),
    ),
    Case(
        "gzip-label-plain-body",
        lambda c: c.route(
            (200, {**XML, "Content-Encoding": "gzip"}, rss(item("x", c.link(1))).encode())
        ),
        error=("corrupt compressed body",),
    ),
    Case(
        "unknown-content-encoding",
        lambda c: c.route(
            (200, {**XML, "Content-Encoding": "x-bogus"}, rss(item("x", c.link(1))).encode())
        ),
        error="encoding",
    ),
    # --- sizes and lying lengths
    Case(
        "huge-declared-50MB",
        lambda c: c.route((200, {**XML, "Content-Length": str(50 * MiB)}, zeros(50 * MiB))),
        error="Content-Length",
    ),
    Case("huge-chunked-50MB", lambda c: c.route((200, XML, zeros(50 * MiB))), error="larger than"),
    Case("endless-body", lambda c: c.route((200, XML, endless())), error="larger than"),
    Case(
        "content-length-too-small",
        lambda c: c.route(
            (200, {**XML, "Content-Length": "60"}, rss(item("x", c.link(1))).encode())
        ),
        error=("not a feed", "bad status line"),
        may_pass_empty=True,
    ),
    Case(
        "content-length-too-large",
        lambda c: c.route(
            (200, {**XML, "Content-Length": "100000"}, iter([rss(item("x", c.link(1))).encode()]))
        ),
        error=("payload", "content-length", "not enough data", "timed out"),
    ),
    # --- time
    Case(
        "slow-trickle",
        lambda c: c.route((200, XML, trickle(rss(item("x", c.link(1))).encode(), 0.05))),
        error="timed out",
    ),
    Case("never-answers", lambda c: c.route(hang(8)), error="timed out"),
    # --- redirects
    Case("redirect-loop", _loop, error="redirect loop"),
    Case(
        "redirect-self",
        lambda c: c.redirect_to(c.server.url(f"/c/{c.name}")),
        error="redirect loop",
    ),
    Case("redirect-chain-10", _chain, error="more than 5 redirects"),
    Case("redirect-no-location", lambda c: c.route((302, {}, b"")), error="no Location"),
    Case(
        "redirect-to-127.0.0.2",
        lambda c: c.redirect_to(f"http://127.0.0.2:{c.canary4}/"),
        error="refused address 127.0.0.2",
    ),
    Case(
        "redirect-decimal",
        lambda c: c.redirect_to(f"http://2130706434:{c.canary4}/"),
        error="non-canonical",
    ),
    Case(
        "redirect-octal",
        lambda c: c.redirect_to(f"http://0177.0.0.2:{c.canary4}/"),
        error="non-canonical",
    ),
    Case(
        "redirect-hex-dotted",
        lambda c: c.redirect_to(f"http://0x7f.0.0.2:{c.canary4}/"),
        error="non-canonical",
    ),
    Case(
        "redirect-hex-short",
        lambda c: c.redirect_to(f"http://0x7f.2:{c.canary4}/"),
        error="non-canonical",
    ),
    Case(
        "redirect-hex-single",
        lambda c: c.redirect_to(f"http://0x7f000002:{c.canary4}/"),
        error="non-canonical",
    ),
    Case(
        "redirect-127.2",
        lambda c: c.redirect_to(f"http://127.2:{c.canary4}/"),
        error="non-canonical",
    ),
    Case(
        "redirect-ipv4-mapped",
        lambda c: c.redirect_to(f"http://[::ffff:127.0.0.2]:{c.canary4}/"),
        error="refused address",
    ),
    Case(
        "redirect-ipv4-mapped-hex",
        lambda c: c.redirect_to(f"http://[::ffff:7f00:2]:{c.canary4}/"),
        error="refused address",
    ),
    Case(
        "redirect-ipv6-loopback",
        lambda c: c.redirect_to(f"http://[::1]:{c.canary6}/"),
        error="refused address",
    ),
    Case(
        "redirect-unspecified",
        lambda c: c.redirect_to(f"http://0.0.0.0:{c.server.port}/forbidden/unspecified"),
        error="refused address",
        check=no_hits("/forbidden/"),
    ),
    Case(
        "redirect-localhost-v6-only",
        lambda c: c.redirect_to(f"http://[0:0:0:0:0:0:0:1]:{c.canary6}/"),
        error="refused address",
    ),
    Case(
        "source-127.0.0.2", lambda c: f"http://127.0.0.2:{c.canary4}/feed", error="refused address"
    ),
    Case("source-decimal", lambda c: f"http://2130706434:{c.canary4}/feed", error="non-canonical"),
    Case(
        "source-ipv6-loopback", lambda c: f"http://[::1]:{c.canary6}/feed", error="refused address"
    ),
    Case(
        "source-unspecified",
        lambda c: f"http://0.0.0.0:{c.server.port}/forbidden/src",
        error="refused address",
        check=no_hits("/forbidden/"),
    ),
    Case("https-to-http-downgrade", _downgrade, error="from https to http"),
    # --- schemes
    Case("redirect-file", lambda c: c.redirect_to("file:///etc/passwd"), error="scheme file"),
    Case(
        "redirect-ftp",
        lambda c: c.redirect_to(f"ftp://127.0.0.2:{c.canary4}/feed"),
        error="scheme ftp",
    ),
    Case("redirect-data", lambda c: c.redirect_to("data:text/xml,<rss/>"), error="scheme data"),
    Case(
        "redirect-gopher",
        lambda c: c.redirect_to(f"gopher://127.0.0.2:{c.canary4}/_GET"),
        error="scheme gopher",
    ),
    Case("source-file", lambda _c: "file:///etc/passwd", error="scheme file"),
    Case("source-data", lambda _c: "data:application/rss+xml,<rss/>", error="scheme data"),
    Case("source-no-host", lambda _c: "http:///feed", error=("no host", "invalid")),
    # --- statuses and non-feeds
    Case("http-500", lambda c: c.route((500, {}, b"boom")), error="HTTP 500"),
    Case("http-404", lambda c: c.route((404, {}, b"gone")), error="HTTP 404"),
    Case(
        "http-429-retry-after",
        lambda c: c.route((429, {"Retry-After": "3600"}, b"")),
        error="HTTP 429",
    ),
    Case("random-bytes", lambda c: c.route(ok(bytes(range(256)) * 64)), error="not a feed"),
    Case("empty-body", lambda c: c.route(ok(b"")), error="not a feed"),
    Case(
        "html-not-feed",
        lambda c: c.route(
            (200, {"Content-Type": "text/html"}, b"<html><body><p>hello</p></body></html>")
        ),
        error="not a feed",
    ),
    Case(
        "truncated-xml",
        lambda c: c.route(
            ok(rss(item("Truncated one", c.link(1)) + item("Truncated two", c.link(2)))[:-16])
        ),
        items=2,
    ),
    Case(
        "nul-in-title",
        lambda c: c.route(ok(rss(item("a\x00b nul", c.link(1), "g\x00id")))),
        items=1,
        check=title_is("ab nul"),
    ),
    Case(
        "deep-json",
        lambda c: _json(c, JSONFEED + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        error="invalid JSON Feed",
    ),
    Case("json-items-not-list", lambda c: _json(c, JSONFEED + b'{"a": 1}}'), error="no items list"),
    Case(
        "json-lone-surrogate",
        lambda c: _json(
            c,
            JSONFEED
            + b'[{"id": "1", "url": "%s", "title": "bad \\ud800 title"}]}' % c.link(1).encode(),
        ),
        items=1,
        check=title_is("bad \ufffd title"),
    ),
    Case(
        "json-wrong-types",
        lambda c: _json(c, JSONFEED + b'[1, "a", null, {"id": 5, "url": 7}]}'),
        items=0,
    ),
    # --- encodings
    Case(
        "euc-kr-labelled-utf8",
        lambda c: _korean(c, "utf-8"),
        items=1,
        check=title_is("북한, 평양 인근에 판치르 방공체계 배치"),
    ),
    Case(
        "cp1251-labelled-latin1",
        lambda c: _russian(c, "iso-8859-1", "iso-8859-1"),
        items=1,
        check=title_is("Россия перебросила комплексы Панцирь к линии фронта"),
    ),
    Case(
        "cp1251-header-says-utf8",
        lambda c: _russian(c, "windows-1251", "utf-8"),
        items=1,
        check=title_is("Россия перебросила комплексы Панцирь к линии фронта"),
    ),
    Case(
        "invalid-utf8-bytes",
        lambda c: c.route(
            ok(
                rss(item("ok PLACEHOLDER bad", c.link(1)))
                .encode()
                .replace(b"PLACEHOLDER", b"\xff\xfe\xc3")
            )
        ),
        items=1,
    ),
    Case(
        "utf16-bom",
        lambda c: c.route(
            ok(
                rss(
                    item("Панцирь", c.link(1)), decl='<?xml version="1.0" encoding="utf-16"?>'
                ).encode("utf-16")
            )
        ),
        items=1,
        check=title_is("Панцирь"),
    ),
    # --- dates and GUIDs
    Case(
        "invalid-dates",
        lambda c: feed(
            c,
            item("d1", c.link(1), extra=DATE.format("yesterday-ish")),
            item("d2", c.link(2), extra=DATE.format("Mon, 99 Foo 2025 99:99:99 GMT")),
        ),
        items=2,
        check=published_is_fetch_time,
    ),
    Case(
        "far-future-dates",
        lambda c: feed(
            c,
            item("f1", c.link(1), extra=DATE.format("Fri, 31 Dec 9999 23:59:59 GMT")),
            item("f2", c.link(2), extra=DATE.format("Thu, 01 Jan 2200 00:00:00 GMT")),
        ),
        items=2,
        check=published_is_fetch_time,
    ),
    Case(
        "missing-guids",
        lambda c: feed(c, item("m1", c.link(1)), item("m2", c.link(2))),
        items=2,
        check=guid_is_url,
    ),
    Case(
        "duplicate-guids",
        lambda c: feed(c, item("g1", c.link(1), "same"), item("g2", c.link(2), "same")),
        items=2,
    ),
    Case(
        "duplicate-links",
        lambda c: feed(
            c,
            item("l1", c.link(1), "a"),
            item("l2", c.link(1), "b"),
            item("l3", c.link(1) + "?utm_source=x#frag", "c"),
        ),
        items=1,
    ),
    Case(
        "no-link-no-guid",
        lambda c: feed(
            c,
            item("nothing", None),
            item("opaque", None, extra='<guid isPermaLink="false">opaque-id</guid>'),
        ),
        items=0,
    ),
    Case(
        "non-http-item-links",
        lambda c: feed(
            c,
            item("js", "javascript:alert(1)"),
            item("file", "file:///etc/passwd"),
            item("data", "data:text/html,hi"),
        ),
        items=0,
    ),
    # --- titles that reach the alert channels
    Case(
        "crlf-bcc-title",
        lambda c: feed(c, item("Pantsir\r\nBcc: victim@example.org\r\nX-Injected: yes", c.link(1))),
        items=1,
        check=email_headers_not_injected,
    ),
    Case(
        "slack-control-title",
        lambda c: feed(
            c,
            item(
                "Pantsir &lt;!channel&gt; &lt;!here&gt; &lt;http://evil.example|click&gt;",
                c.link(1),
            ),
        ),
        items=1,
        check=slack_escaped,
    ),
    Case(
        "html-script-title",
        lambda c: feed(
            c,
            item(
                "&lt;script&gt;alert(1)&lt;/script&gt;Pantsir &lt;img src=x onerror=alert(2)&gt;",
                c.link(1),
                desc="&lt;script&gt;alert(3)&lt;/script&gt; Pantsir",
            ),
        ),
        items=1,
        check=html_escaped,
    ),
    Case(
        "megabyte-title",
        lambda c: feed(c, item("Pantsir " + "x" * MiB, c.link(1))),
        items=1,
        check=huge_title_bounded,
    ),
    Case(
        "bidi-override-title",
        lambda c: feed(c, item("Pantsir \u202egnp.exe\u202c", c.link(1))),
        items=1,
    ),
    Case(
        "catastrophic-regex-text",
        lambda c: feed(
            c,
            item(
                "Pantsir " + "a" * 100_000 + "!",
                c.link(1),
                desc="(a+)+$ " * 10_000 + "a" * 100_000 + "!",
            ),
        ),
        items=1,
        check=matched_quickly,
    ),
    # --- a listing page that links to forbidden places
    Case(
        "page-links-to-private",
        lambda c: c.route(
            (
                200,
                {"Content-Type": "text/html"},
                (
                    "<html><body>"
                    + f'<a href="http://127.0.0.2:{c.canary4}/a/1">a</a>'
                    + f'<a href="http://2130706434:{c.canary4}/a/2">b</a>'
                    + f'<a href="http://[::1]:{c.canary6}/a/3">c</a>'
                    + '<a href="file:///etc/passwd">d</a>'
                    + "</body></html>"
                ).encode(),
            )
        ),
        kind="page",
        items=0,
    ),
]

# --- whole-crawl failures: one source's hostile data used to abort every source
# (exit 70) or, under the daemon, be re-polled every tick (issue #16)

NIGHTMARE_DATES = (
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:00:00-23:59",
)


def _json_dates(c: Ctx) -> str:
    entries = [
        {"id": str(i), "url": c.link(i), "title": f"d{i}", f"date_{kind}": date}
        for i, date in enumerate(NIGHTMARE_DATES)
        for kind in ("published" if i % 2 else "modified",)
    ]
    return _json(c, JSONFEED + json.dumps(entries).encode() + b"}")


def _article(title: str) -> bytes:
    body = "".join(
        f"<p>{title}: the ministry reported the deployment in detail, paragraph {i}.</p>"
        for i in range(4)
    )
    return (
        f"<html lang='en'><head><title>{title}</title></head><body><main><article>"
        f"<h1>{title}</h1>{body}</article></main></body></html>"
    ).encode()


HTML = {"Content-Type": "text/html; charset=utf-8"}
BAD_HREFS = ("http://[::1", "//[x]/a", "http://[fe80::1%zz]/b", "http://[", "https://[::1]:x/")


def _listing(c: Ctx, *, head: str = "", extra: str = "") -> str:
    """A listing page whose one good article link sits among malformed IPv6 hrefs."""
    c.server.route(f"/art/{c.name}/1", (200, HTML, _article(f"Article of {c.name}")))
    bad = "".join(f'<a href="{h}">bad {i}</a>' for i, h in enumerate(BAD_HREFS))
    page = (
        f"<html><head><title>list</title>{head}</head><body><main>{bad}"
        f'<a href="{c.link(1)}">The one good article</a>{extra}</main></body></html>'
    )
    return c.route((200, HTML, page.encode()))


def _nines(n: int) -> Callable[[Ctx], str]:
    return lambda c: c.route(
        ok(rss(item(f"nines {n}", c.link(1))), {"Cache-Control": "max-age=" + "9" * n})
    )


CASES += [
    Case("json-date-overflow", _json_dates, items=4, check=published_is_fetch_time),
    Case(
        "rss-date-overflow",
        lambda c: feed(
            c,
            item("o1", c.link(1), extra=DATE.format("Mon, 01 Jan 0001 00:00:00 +1400")),
            item("o2", c.link(2), extra=DATE.format("Fri, 31 Dec 9999 23:59:59 -1400")),
            item("o3", c.link(3), extra=DATE.format("Sat, 01 Jan 0001 00:00:00 +2359")),
        ),
        items=3,
        check=published_not_in_future,
    ),
    Case("max-age-400-nines", _nines(400), items=1),
    Case("max-age-5000-nines", _nines(5000), items=1),
    Case(
        "max-age-and-ttl-nines",
        lambda c: c.route(
            ok(
                rss(f"<ttl>{'9' * 500}</ttl>" + item("ttl", c.link(1))),
                {"Cache-Control": "public, max-age=" + "9" * 999 + ", s-maxage=" + "9" * 999},
            )
        ),
        items=1,
    ),
    Case(
        "retry-after-superscript",
        lambda c: c.route((429, {"Retry-After": "²"}, b"")),
        error="HTTP 429",
    ),
    Case("page-malformed-ipv6-hrefs", _listing, kind="page", items=1),
    Case(
        "page-malformed-base",
        lambda c: _listing(c, head='<base href="http://[::1">'),
        kind="page",
        items=1,
    ),
    Case(
        "page-malformed-next",
        lambda c: _listing(c, extra='<a rel="next" href="http://[">next</a>'),
        kind="page",
        items=1,
    ),
    # An exception of a type no code knows, raised inside this source's poll
    # (NEWSWATCH_RAISE_AT, see scheduler.crash_points): the stand-in for any payload
    # nobody foresaw. It must fail this source alone, with backoff.
    Case(
        "injected-bug",
        lambda c: one_item_feed(c, "never stored"),
        error="internal error: InjectedBug",
    ),
]
INJECTED_BUG_CASE = "injected-bug"

PANTSIR_CASES = (
    "crlf-bcc-title",
    "slack-control-title",
    "html-script-title",
    "megabyte-title",
    "bidi-override-title",
    "catastrophic-regex-text",
)


def case_ids() -> list[str]:
    names = [c.name for c in CASES]
    dupes = [n for n in names if names.count(n) > 1]
    assert not dupes, dupes
    return names
