"""`newswatch crawl` end to end: local feeds → items → matches → delivered alerts."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from tests.e2e.conftest import CLI
from tests.support.httpserver import LocalHTTPServer, Request, Response

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>ISW</title><link>{base}/</link>
<item><title>Russian Offensive Campaign Assessment</title>
  <link>{base}/a/1?utm_source=rss&amp;utm_medium=feed</link><guid>isw-1</guid>
  <pubDate>Wed, 09 Jul 2025 13:00:00 GMT</pubDate>
  <description>&lt;p&gt;Russia moved &lt;b&gt;Pantsir&lt;/b&gt; systems
  toward the front.&lt;/p&gt;</description></item>
<item><title>북한, 판치르를 배치</title><link>{base}/a/2</link><guid>isw-2</guid>
  <description>북한이 지대공 미사일 판치르를 평양 인근에 배치했다.</description></item>
<item><title>Samuel Green on the same sample</title><link>{base}/a/3</link><guid>isw-3</guid>
  <description>Nothing to see: Samsung, SAMPLE, same.</description></item>
</channel></rss>"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>RAND</title><id>urn:rand</id>
<updated>2025-07-09T13:00:00Z</updated>
<entry><title>Same article, tracked link</title><id>urn:rand:1</id>
  <link href="{base}/a/1?utm_campaign=x#top"/><updated>2025-07-09T13:00:00Z</updated>
  <summary>Pantsir again</summary></entry>
<entry><title>SAM batteries sent to Iran</title><id>urn:rand:2</id>
  <link href="{base}/a/4"/><updated>2025-07-10T08:00:00Z</updated>
  <summary>Moscow sent surface-to-air missile (SAM) batteries to Iran.</summary></entry>
</feed>"""

WATCHLISTS = """\
watchlists:
  - name: air-defence
    terms:
      - term: Pantsir
        aliases: ["판치르", "Панцирь"]
      - term: SAM
        aliases: ["surface-to-air missile", "지대공 미사일"]
    notify:
      - webhook: {hook}
        secret: ${{HOOK_SECRET}}
"""


def feed(body: str, etag: str, content_type: str):  # type: ignore[no-untyped-def]
    def handler(req: Request) -> Response:
        if req.headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"Content-Type": content_type, "ETag": etag}, body.encode()

    return handler


def setup(cli: CLI, http_server: LocalHTTPServer, tmp_path: Path) -> list[dict[str, object]]:
    base = http_server.url("").rstrip("/")
    http_server.route("/isw.xml", feed(RSS.format(base=base), '"isw-v1"', "application/rss+xml"))
    http_server.route(
        "/rand.xml", feed(ATOM.format(base=base), '"rand-v1"', "application/atom+xml")
    )
    received: list[dict[str, object]] = []

    def hook(req: Request) -> Response:
        signed = req.headers.get("X-Newswatch-Timestamp", "").encode() + b"." + req.body
        expected = hmac.new(b"k3y", signed, hashlib.sha256).hexdigest()
        signature = req.headers.get("X-Newswatch-Signature", "")
        received.append({"ok": signature.endswith(expected), **json.loads(req.body)})
        return 200, {"Content-Type": "text/plain"}, b"ok"

    wl = tmp_path / "w.yaml"
    wl.write_text(WATCHLISTS.format(hook=http_server.route("/hook", hook)), encoding="utf-8")
    assert cli("watchlist", "import", str(wl)).code == 0
    for name in ("isw", "rand"):
        r = cli(
            "source",
            "add",
            http_server.url(f"/{name}.xml"),
            "--kind",
            "feed",
            "--name",
            name,
            "--alert-backlog",  # the pipeline is under test here, not the baseline
        )
        assert r.code == 0, r.err
    return received


ENV = {
    "NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1",
    "HOOK_SECRET": "k3y",
    "NEWSWATCH_PER_HOST_DELAY": "0",
}


def test_two_crawls_store_once_and_alert_once(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    received = setup(cli, http_server, tmp_path)
    first = cli("crawl", env=ENV)
    assert first.code == 0, first.err
    assert "2 polled" in first.out and "4 new items" in first.out, first.out
    second = cli("crawl", env=ENV)
    assert second.code == 0 and "2 not modified" in second.out and "0 new items" in second.out
    assert http_server.hits("/isw.xml")[-1].headers.get("If-None-Match") == '"isw-v1"'

    matches = [json.loads(x) for x in cli("matches", "--json").out.splitlines()]
    by_url = {m["item"]["url"]: m for m in matches}
    base = http_server.url("").rstrip("/")
    assert sorted(by_url) == [f"{base}/a/1", f"{base}/a/2", f"{base}/a/4"]
    assert by_url[f"{base}/a/2"]["terms"] == ["Pantsir", "SAM"]
    assert by_url[f"{base}/a/4"]["terms"] == ["SAM"]
    one = by_url[f"{base}/a/4"]
    assert set(one) == {"watchlist", "terms", "item", "snippets", "matched_at", "story"}
    assert isinstance(one["story"], int)
    assert set(one["item"]) == {"url", "title", "source", "published", "language"}
    assert one["item"]["published"] == "2025-07-10T08:00:00+00:00"
    assert any("surface-to-air missile (SAM)" in s for s in one["snippets"])

    assert sorted(r["item"]["url"] for r in received) == sorted(by_url)  # type: ignore[index]
    assert all(r["ok"] for r in received)
    sent = [json.loads(x) for x in cli("alerts", "--status", "sent", "--json").out.splitlines()]
    assert len(sent) == 3


def test_failing_source_is_named_and_others_still_run(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    setup(cli, http_server, tmp_path)
    cli("source", "add", http_server.url("/gone.xml"), "--kind", "feed", "--name", "gone")
    r = cli("crawl", env=ENV)
    assert r.code == 0
    assert "1 failed" in r.out and "4 new items" in r.out
    assert "gone" in r.err and "404" in r.err
    rows = {x["name"]: x for x in map(json.loads, cli("source", "list", "--json").out.splitlines())}
    assert rows["gone"]["consecutive_failures"] == 1 and "404" in rows["gone"]["last_error"]
    # the article both feeds carry is stored once, under whichever source came first
    assert rows["isw"]["items"] + rows["rand"]["items"] == 4 and rows["isw"]["last_error"] is None


def test_private_address_is_refused_by_default(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    setup(cli, http_server, tmp_path)
    r = cli("crawl", "--source", "isw")
    assert r.code == 3 and "1 failed" in r.out  # the only source polled failed: exit 3
    assert http_server.hits("/isw.xml") == []
    rows = {x["name"]: x for x in map(json.loads, cli("source", "list", "--json").out.splitlines())}
    assert "127.0.0.1" in rows["isw"]["last_error"]


def test_backfill_and_match(cli: CLI, http_server: LocalHTTPServer, tmp_path: Path) -> None:
    setup(cli, http_server, tmp_path)
    cli("crawl", env=ENV)
    brics = tmp_path / "b.yaml"
    brics.write_text("watchlists:\n  - name: late\n    terms: [Samuel, Iran]\n", encoding="utf-8")
    cli("watchlist", "import", str(brics))
    dry = cli("backfill", "--watchlist", "late", "--dry-run")
    assert dry.code == 0 and "would match 2, 2 new" in dry.out, dry.out
    assert cli("matches", "--watchlist", "late", "--json").out == ""
    real = cli("backfill", "--watchlist", "late")
    assert "matched 2, 2 new" in real.out
    again = cli("backfill", "--watchlist", "late")
    assert "matched 2, 0 new" in again.out
    assert len(cli("matches", "--watchlist", "late", "--json").out.splitlines()) == 2
    m = cli("match", "--watchlist", "air-defence", "Moscow sent SAMs; Samuel said the same")
    assert m.code == 0 and "matched SAM" in m.out
    none = cli("match", "--watchlist", "air-defence", "-", stdin="Samuel said the same")
    assert none.code == 0 and "no match" in none.out
    assert cli("match", "--watchlist", "nope", "x").code == 1
