"""Sitemap and spider sources through the CLI (issue #14), on both databases.

A local think-tank site (tests.support.thinktank) on 127.0.0.1; the address
policy allows exactly that address. Sitemaps carry dates relative to the real
clock, since `newswatch crawl` polls with it (the window is 7 days).
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import Database
from tests.e2e.conftest import CLI, Explain, source_rows
from tests.support.canary import Canary
from tests.support.httpserver import LocalHTTPServer, Request, Response
from tests.support.thinktank import PUBLICATIONS, Publication, gz, serve_site, sitemap_index, urlset

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = f"{ROOT / 'examples' / 'spiders' / 'thinktank.py'}:PublicationsSpider"
ENV = {"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1", "NEWSWATCH_PER_HOST_DELAY": "0"}
WATCHLIST = """\
watchlists:
  - name: air-defence
    terms: [Pantsir]
    notify:
      - webhook: {hook}
"""


def watch(cli: CLI, server: LocalHTTPServer, tmp_path: Path) -> list[dict[str, object]]:
    """A watchlist on "Pantsir" (one publication of the site) with a local webhook."""
    received: list[dict[str, object]] = []

    def hook(req: Request) -> Response:
        received.append(json.loads(req.body))
        return 200, {"Content-Type": "text/plain"}, b"ok"

    wl = tmp_path / "w.yaml"
    wl.write_text(WATCHLIST.format(hook=server.route("/hook", hook)), encoding="utf-8")
    assert cli("watchlist", "import", str(wl)).code == 0
    return received


def sources(cli: CLI) -> dict[str, dict[str, object]]:
    rows = map(json.loads, cli("source", "list", "--json").out.splitlines())
    return {x["name"]: x for x in rows}


def recent(pubs: tuple[Publication, ...], days_ago: int) -> tuple[Publication, ...]:
    day = (datetime.now(UTC) - timedelta(days=days_ago)).date().isoformat()
    return tuple(Publication(p.slug, p.title, p.body, day) for p in pubs)


def publish_sitemaps(server: LocalHTTPServer, news: tuple[Publication, ...], lastmod: str) -> None:
    """/sitemap_index.xml → a gzip Google News sitemap and a plain lastmod one."""
    older = recent(PUBLICATIONS[3:4], 3)
    server.serve("/news.xml.gz", gz(urlset(server, news, news=True)), "application/gzip")
    server.serve("/older.xml", urlset(server, older, news=False))
    index = [(server.url("/news.xml.gz"), lastmod), (server.url("/older.xml"), older[0].date)]
    server.serve("/sitemap_index.xml", sitemap_index(index))


def article_hits(server: LocalHTTPServer) -> dict[str, int]:
    return {p.slug: len(server.hits(f"/publications/{p.slug}")) for p in PUBLICATIONS}


def test_sitemap_index_crawled_twice_fetches_only_new_articles(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    serve_site(http_server)
    received = watch(cli, http_server, tmp_path)
    first_news = recent(PUBLICATIONS[:3], 1)  # hq9, s400, pantsir
    publish_sitemaps(http_server, first_news, first_news[0].date)
    index = http_server.url("/sitemap_index.xml")
    # Dated by day (yesterday may be over 24 h ago): opt out of the first-poll baseline.
    r = cli("source", "add", index, "--kind", "sitemap", "--name", "site", "--alert-backlog")
    assert r.code == 0 and "(sitemap)" in r.out, r.err

    first = cli("crawl", env=ENV)
    assert first.code == 0, first.err
    assert "4 new items" in first.out and "1 new matches" in first.out, first.out
    assert article_hits(http_server) == {
        "hq9-strait": 1,
        "s400-belarus": 1,
        "pantsir-korea": 1,
        "baltic-cables": 1,
        "arctic-bases": 0,
    }

    news = (*first_news, *recent(PUBLICATIONS[4:5], 0))  # one new article in the news sitemap
    publish_sitemaps(http_server, news, news[-1].date)
    second = cli("crawl", env=ENV)
    assert second.code == 0 and "1 new items" in second.out and "0 new matches" in second.out
    assert set(article_hits(http_server).values()) == {1}  # each article fetched once, ever
    assert len(http_server.hits("/older.xml")) == 1  # its lastmod did not move

    row = sources(cli)["site"]
    assert (row["kind"], row["items"], row["last_error"]) == ("sitemap", 5, None)
    items = [json.loads(x) for x in cli("matches", "--json").out.splitlines()]
    assert [m["item"]["title"] for m in items] == ["Pantsir in North Korea (news)"]
    assert len(received) == 1


@pytest.mark.slow
def test_spider_source_with_pagination_stores_and_alerts_once(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    serve_site(http_server)
    received = watch(cli, http_server, tmp_path)
    start = http_server.url("/publications")
    r = cli(
        "source",
        "add",
        "pubs",
        "--kind",
        "spider",
        "--spider",
        EXAMPLE,
        "--url",
        start,
        "--alert-backlog",  # the site's publications are old: alert on them all
    )
    assert r.code == 0 and "(spider)" in r.out, r.err

    first = cli("crawl", env=ENV)
    assert first.code == 0 and "5 new items" in first.out and "1 new matches" in first.out, (
        first.out + first.err
    )
    assert len(http_server.hits("/publications?page=3")) == 1  # followed the pages
    second = cli("crawl", env=ENV)
    assert second.code == 0 and "0 new items" in second.out and "1 polled" in second.out

    row = sources(cli)["pubs"]
    assert (row["kind"], row["spider"], row["items"]) == ("spider", EXAMPLE, 5)
    assert row["url"] == start and row["last_error"] is None
    assert len(received) == 1


RAISING = """\
import scrapy

class Broken(scrapy.Spider):
    name = "broken"

    async def start(self):
        raise RuntimeError("the site changed its layout")
        yield
"""


@pytest.mark.slow
def test_raising_spider_fails_only_its_source(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    serve_site(http_server)
    publish_sitemaps(http_server, recent(PUBLICATIONS[:1], 1), "2025-01-01")
    (tmp_path / "broken.py").write_text(RAISING, encoding="utf-8")
    spec = f"{tmp_path / 'broken.py'}:Broken"
    assert cli("source", "add", "broken", "--kind", "spider", "--spider", spec).code == 0
    news = http_server.url("/news.xml.gz")
    assert cli("source", "add", news, "--kind", "sitemap", "--name", "site").code == 0

    r = cli("crawl", env=ENV)
    assert r.code == 0 and "1 failed" in r.out and "1 new items" in r.out, r.out + r.err
    rows = sources(cli)
    error = str(rows["broken"]["last_error"])
    assert "the site changed its layout" in error and "\n" not in error
    assert rows["broken"]["consecutive_failures"] == 1 and rows["broken"]["items"] == 0
    assert rows["site"]["last_error"] is None
    table = cli("source", "list").out
    assert "the site changed" in next(x for x in table.splitlines() if x.startswith("broken"))


def test_spider_fed_from_outside_is_never_polled(cli: CLI, http_server: LocalHTTPServer) -> None:
    r = cli("source", "add", "scrapy-project", "--kind", "spider")
    assert r.code == 0 and "fed from outside" in r.out, r.err
    http_server.serve("/f.xml", "<rss><channel><title>t</title></channel></rss>")
    assert cli("source", "add", http_server.url("/f.xml"), "--kind", "feed").code == 0
    r = cli("crawl", env=ENV)
    assert r.code == 0 and "crawled 1 sources" in r.out, r.out
    row = sources(cli)["scrapy-project"]
    assert (
        row["last_polled"] is None
        and row["spider"] is None
        and row["url"] == "spider:scrapy-project"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x", "--kind", "spider", "--spider", "no-class"], "must be module:Class"),
        (["x", "--kind", "spider", "--spider", "pkg.mod:"], "must be module:Class"),
        (["x", "--kind", "spider", "--spider", "pkg.mod:1x"], "must be module:Class"),
        (["x", "--kind", "spider", "--spider", "my-pkg.mod:S"], "is not a module name"),
        (["x", "--kind", "spider", "--spider", "/no/such/file.py:S"], "no spider file"),
        (
            ["https://a.org/f", "--kind", "feed", "--spider", "m:S"],
            "only for sources of kind spider",
        ),
        (["https://a.org/f", "--spider", "m:S"], "only for sources of kind spider"),
        (["https://a.org/f", "--kind", "sitemap", "--url", "https://b.org"], "--url is only"),
        (["x", "--kind", "spider", "--url", "ftp://b.org/"], "not an http(s) URL"),
        (["x", "--kind", "sitemap"], "not an http(s) URL"),
    ],
)
def test_bad_spider_or_sitemap_is_one_line_and_adds_nothing(
    cli: CLI, args: list[str], message: str
) -> None:
    r = cli("source", "add", *args)
    assert r.code != 0 and message in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert cli("source", "list", "--json").out == ""


def test_kind_and_spider_survive_opml_and_yaml(cli: CLI, tmp_path: Path) -> None:
    assert cli("source", "add", "https://a.org/sitemap.xml", "--kind", "sitemap").code == 0
    assert cli("source", "add", "s", "--kind", "spider", "--spider", "pkg.spiders:S").code == 0
    assert cli("source", "add", "outside", "--kind", "spider").code == 0
    before = {n: (x["kind"], x["url"], x["spider"]) for n, x in sources(cli).items()}
    for fmt in ("opml", "yaml"):
        exported = cli("source", "export", "--format", fmt).out
        path = tmp_path / f"s.{fmt}"
        path.write_text(exported, encoding="utf-8")
        for name in before:
            assert cli("source", "remove", name).code == 0
        r = cli("source", "import", str(path))
        assert r.code == 0 and "3 added" in r.out, r.err
        after = {n: (x["kind"], x["url"], x["spider"]) for n, x in sources(cli).items()}
        assert after == before, fmt


SPIDER_YAML = """\
sources:
  - name: pubs
    kind: spider
    spider: {spider}
  - name: project
    kind: spider
    spider: pkg.spiders:S
"""
SPIDER_OPML = """\
<opml version="2.0"><body>
<outline text="pubs" kind="spider" url="spider:pubs" spider="{spider}"/>
</body></opml>
"""


@pytest.mark.parametrize("relative", ["spiders/thinktank.py", "./spiders/../spiders/thinktank.py"])
@pytest.mark.parametrize("fmt", ["yaml", "opml"])
def test_relative_spider_files_resolve_from_the_importing_file(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, relative: str
) -> None:
    """A relative `file.py:Class` in an imported file is the file's neighbour,
    whatever the cwd; it is stored and shown absolute; module:Class stays."""
    conf, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    (conf / "spiders").mkdir(parents=True)
    elsewhere.mkdir()
    spider = conf / "spiders" / "thinktank.py"
    spider.write_bytes((ROOT / "examples" / "spiders" / "thinktank.py").read_bytes())
    template = SPIDER_YAML if fmt == "yaml" else SPIDER_OPML
    listing = conf / f"sources.{fmt}"
    listing.write_text(template.format(spider=f"{relative}:PublicationsSpider"), encoding="utf-8")
    monkeypatch.chdir(elsewhere)
    r = cli("source", "import", os.path.relpath(listing, elsewhere))
    assert r.code == 0, r.err
    stored = f"{spider}:PublicationsSpider"
    assert f"pubs: spider {stored}" in r.out
    rows = sources(cli)
    assert rows["pubs"]["spider"] == stored
    if fmt == "yaml":
        assert rows["project"]["spider"] == "pkg.spiders:S"
    # the same relative path on the command line is taken from the cwd
    monkeypatch.chdir(conf)
    r = cli(
        "source", "add", "again", "--kind", "spider", "--spider", f"{relative}:PublicationsSpider"
    )
    assert r.code == 0 and stored in r.out, r.err
    assert sources(cli)["again"]["spider"] == stored


def test_an_imported_spider_file_that_does_not_exist_adds_nothing(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listing = tmp_path / "conf" / "sources.yaml"
    listing.parent.mkdir()
    listing.write_text(SPIDER_YAML.format(spider="spiders/gone.py:S"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = cli("source", "import", str(listing))
    assert r.code != 0 and "source 'pubs'" in r.err and "no spider file" in r.err, r.err
    assert str(tmp_path / "conf" / "spiders" / "gone.py") in r.err
    assert len(r.err.strip().splitlines()) == 1
    assert cli("source", "list", "--json").out == ""


HOSTILE = ROOT / "tests" / "fixtures" / "spiders" / "hostile.py"
CANARY_SPELLINGS = ["localhost", "127.0.0.1", "2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]"]


@pytest.mark.slow
def test_spider_sitemap_and_redirects_at_a_canary_make_no_connection(
    cli: CLI, db: Database, explain: Explain
) -> None:
    """The site is on 127.0.0.3 and the allowlist is 127.0.0.3/32 alone: a
    canary on 127.0.0.1, aimed at by a spider's requests, sitemap <loc>s, a
    child sitemap and redirects, sees 0 connections through `newswatch crawl`."""
    site = LocalHTTPServer(host="127.0.0.3").start()
    canary = Canary().start()
    try:
        serve_site(site)
        at = [f"http://{host}:{canary.port}/admin" for host in CANARY_SPELLINGS]
        site.route("/hop", (302, {"Location": f"http://localhost:{canary.port}/admin"}, b""))
        site.route("/publications/moved", (301, {"Location": at[1]}, b""))
        today = datetime.now(UTC).date().isoformat()
        locs = [
            *at,
            site.url("/publications/moved"),
            site.url(f"/publications/{PUBLICATIONS[0].slug}"),
        ]
        rows = "".join(f"<url><loc>{u}</loc><lastmod>{today}</lastmod></url>" for u in locs)
        site.serve("/sitemap.xml", f"<urlset>{rows}</urlset>")
        site.serve(
            "/index.xml",
            sitemap_index(
                [
                    (f"http://127.0.0.1:{canary.port}/child.xml", None),
                    (site.url("/sitemap.xml"), None),
                ]
            ),
        )
        query = "&".join(f"target={quote(t, safe='')}" for t in [*at, site.url("/hop")])
        spec = f"{HOSTILE}:CanarySeeker"
        start = site.url(f"/start?{query}")
        assert (
            cli(
                "source", "add", "seeker", "--kind", "spider", "--spider", spec, "--url", start
            ).code
            == 0
        )
        index = site.url("/index.xml")
        assert cli("source", "add", index, "--kind", "sitemap", "--name", "site").code == 0

        r = cli("crawl", "-v", env={**ENV, "NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.3/32"})
        explain("diagnostics", r.out, r.err, source_rows(db))  # shown if it fails
        assert r.code == 0 and "1 failed" in r.out and "1 new items" in r.out, r.out + r.err
        assert canary.connections == 0
        assert site.hits("/hop") and site.hits("/publications/moved")  # reached, not followed
        rows_by_name = sources(cli)
        seeker = rows_by_name["seeker"]
        assert "refused" in str(seeker["last_error"]), seeker
        assert rows_by_name["site"]["items"] == 1
    finally:
        canary.stop()
        site.stop()


@pytest.mark.slow
def test_a_hanging_spider_is_killed_and_fails_only_its_source(
    cli: CLI, db: Database, explain: Explain, http_server: LocalHTTPServer
) -> None:
    serve_site(http_server)
    publish_sitemaps(http_server, recent(PUBLICATIONS[:1], 1), "2025-01-01")
    start = http_server.url("/publications")
    spec = f"{HOSTILE}:Hanging"
    assert (
        cli("source", "add", "stuck", "--kind", "spider", "--spider", spec, "--url", start).code
        == 0
    )
    news = http_server.url("/news.xml.gz")
    assert cli("source", "add", news, "--kind", "sitemap", "--name", "site").code == 0

    began = time.monotonic()
    r = cli("crawl", "-v", env={**ENV, "NEWSWATCH_SPIDER_RUN_SECONDS": "1"})
    explain("diagnostics", r.out, r.err, source_rows(db))  # shown if it fails
    assert r.code == 0 and "1 failed" in r.out and "1 new items" in r.out, r.out + r.err
    assert time.monotonic() - began < 1 + 15 + 30  # run limit + grace, and a loaded machine
    rows = sources(cli)
    error = str(rows["stuck"]["last_error"])
    assert "did not finish within 16s and was killed" in error and "\n" not in error
    assert (rows["stuck"]["consecutive_failures"], rows["stuck"]["items"]) == (1, 0)
    assert rows["site"]["last_error"] is None and rows["site"]["items"] == 1
