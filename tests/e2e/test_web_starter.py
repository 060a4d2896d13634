"""Issue #13's "Done when", end to end in Debian's Chromium, on SQLite and
PostgreSQL: after the starter setup (`make run`: the starter sources and
watchlists imported, one crawl), a person opening `/` of `newswatch web`
sees what matched grouped by story, filters it, opens a story, sees each
term's trend, and sees which sources fail and why.

The starter OPML is the real one with every feed address pointed at a
local server (no address outside 127.0.0.0/8 is contacted): three outlets
report one Pantsir deployment (en, ko, ru), three a BRICS summit (en, ru,
zh); RAND answers HTTP 500; the two page sources answer 404; the rest are
healthy empty feeds."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Database
from tests.e2e.conftest import CLI
from tests.integration.test_web_browser import ARGS, ARTIFACTS, CHROMIUM
from tests.support.env import clean_env
from tests.support.httpserver import LocalHTTPServer

pytestmark = pytest.mark.browser

ROOT = Path(__file__).parents[2]
ENV = {"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1", "NEWSWATCH_PER_HOST_DELAY": "0"}
NOW = datetime.now(UTC).replace(microsecond=0)

# starter source (OPML title) -> (language, [(path, title, description)])
FEEDS: dict[str, tuple[str, list[tuple[str, str, str]]]] = {
    "yonhap-en": ("en", [("/a/pantsir-en", "North Korea deploys Pantsir air defence near Pyongyang",
                          "North Korea has deployed Russian Pantsir systems near Pyongyang.")]),
    "yonhap-nk": ("ko", [("/a/pantsir-ko", "북한, 평양 인근에 판치르 방공체계 배치",
                          "북한이 평양 인근에 러시아제 판치르 방공체계를 배치했다.")]),
    "tass-ru": ("ru", [("/a/pantsir-ru", "КНДР развернула «Панцирь» под Пхеньяном",
                        "КНДР развернула зенитные комплексы «Панцирь» под Пхеньяном.")]),
    "tass-en": ("en", [("/a/brics-en", "BRICS leaders meet in Kazan for summit",
                        "BRICS leaders met in Kazan to discuss expansion.")]),
    "ria": ("ru", [("/a/brics-ru", "Лидеры БРИКС встретились в Казани на саммите",
                    "Лидеры БРИКС обсудили в Казани расширение объединения.")]),
    "zaobao-china": ("zh", [("/a/brics-zh", "金砖国家领导人在喀山举行峰会",
                             "金砖国家领导人在喀山讨论扩员问题。")]),
}  # fmt: skip
FAILING = {"rand": 500, "isw": 404, "csis": 404}


def _rss(name: str, lang: str, base: str, entries: list[tuple[str, str, str]]) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>{base}{path}</link><guid>{path}</guid>"
        f"<pubDate>{format_datetime(NOW - timedelta(hours=2 + k))}</pubDate>"
        f"<description>{text}</description></item>"
        for k, (path, title, text) in enumerate(entries)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{name}</title>'
        f"<link>{base}/</link><language>{lang}</language>{items}</channel></rss>"
    ).encode()


def _local_opml(base: str, out: Path) -> list[str]:
    """The starter OPML with each source's address at `base`/<its title>."""
    names: list[str] = []

    def local(m: re.Match[str]) -> str:
        line = m.group(0)
        title = re.search(r'title="([^"]+)"', line)
        assert title, line
        names.append(title.group(1))
        return re.sub(r'(xmlUrl|url)="https?://[^"]+"', rf'\1="{base}/{title.group(1)}"', line)

    text = (ROOT / "examples" / "sources.opml").read_text(encoding="utf-8")
    out.write_text(re.sub(r"<outline [^>]*(xmlUrl|url)=[^>]*/>", local, text), encoding="utf-8")
    assert "https://" not in out.read_text(encoding="utf-8").split("<body>")[1]
    return names


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def starter(cli: CLI, db: Database, http_server: LocalHTTPServer, tmp_path: Path) -> Iterator[str]:
    """`make run` on local feeds, then `newswatch web` (a subprocess): its URL."""
    base = http_server.url("").rstrip("/")
    opml = tmp_path / "sources.opml"
    names = _local_opml(base, opml)
    assert set(FEEDS) | set(FAILING) <= set(names)
    for name in names:
        if name in FAILING:
            http_server.serve(f"/{name}", b"down", "text/plain", status=FAILING[name])
        else:
            lang, entries = FEEDS.get(name, ("en", []))
            http_server.serve(f"/{name}", _rss(name, lang, base, entries), "application/rss+xml")
    assert cli("init").code == 0
    r = cli("source", "import", str(opml))
    assert r.code == 0, r.err
    r = cli("watchlist", "import", str(ROOT / "examples" / "watchlists.yaml"))
    assert r.code == 0, r.err
    # the default story encoder (`auto`: the multilingual model), as `make run` has it;
    # the crawl exits non-zero when a source fails: three do, on purpose
    cli("crawl", env={**ENV, "NEWSWATCH_STORY_ENCODER": "auto"})
    port = _free_port()
    exe = Path(sys.executable).parent / "newswatch"
    proc = subprocess.Popen(
        [str(exe), "web", "--port", str(port)],
        env=clean_env(NEWSWATCH_DATABASE_URL=db.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/sources", timeout=5)
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "newswatch web did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture
def page(starter: str) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        pg = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        pg.dialogs = []
        pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
        yield pg
        browser.close()


def _shot(pg: Any, db: Database, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{db.backend}-starter-{name}.png"), full_page=True)


def test_after_the_starter_setup_a_person_sees_it_all(
    page: Any, starter: str, db: Database
) -> None:
    # `/`: what matched, one row per story, each naming its outlets and terms
    page.goto(starter + "/")
    rows = page.locator("li.group")
    assert rows.count() >= 2
    links = [rows.nth(i).locator("h2 a").get_attribute("href") for i in range(rows.count())]
    assert all(re.fullmatch(r"/stories/\d+", h or "") for h in links), links
    shown = page.locator("main").inner_text()
    outlets = set(rows.locator(".outlet").all_inner_texts())
    assert {"yonhap-en", "yonhap-nk", "tass-ru", "tass-en", "ria", "zaobao-china"} <= outlets
    per_row = [rows.nth(i).locator(".outlet").count() for i in range(rows.count())]
    assert max(per_row) >= 2 and rows.count() < 6, per_row  # six items, grouped by event
    assert "Pantsir" in shown and "BRICS" in shown
    _shot(page, db, "index")

    # filters: the term "BRICS" keeps the summit's stories only
    page.get_by_label("Term").select_option("BRICS")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?*term=BRICS*")
    kept = page.locator("li.group")
    assert kept.count() >= 1
    assert all("BRICS" in t for t in kept.locator(".term").all_inner_texts())
    assert not {"yonhap-en", "yonhap-nk"} & set(kept.locator(".outlet").all_inner_texts())

    # a story: every item with its outlet, language and link
    kept.first.locator("h2 a").click()
    page.wait_for_url("**/stories/*")
    items = page.locator("article.item")
    assert items.count() >= 1
    item_outlets = set(items.locator(".outlet").all_inner_texts())
    assert item_outlets <= {"tass-en", "ria", "zaobao-china"} and item_outlets
    hrefs = [a.get_attribute("href") for a in items.get_by_role("link").all()]
    assert hrefs and all(h and h.startswith("http://127.0.0.1:") for h in hrefs)
    _shot(page, db, "story")

    # trends: a chart per term that matched, split by language
    page.goto(starter + "/trends")
    figures = page.locator("figure.trend")
    names = " ".join(figures.all_inner_texts())
    assert "Pantsir" in names and "BRICS" in names
    for term in ("Pantsir", "BRICS"):
        lines = figures.filter(has_text=term).first.locator("svg polyline")
        assert lines.count() >= 2  # two languages at least
        assert lines.first.evaluate("e => e.getTotalLength()") > 100
    _shot(page, db, "trends")

    # sources: the failing ones first, each with its reason
    page.goto(starter + "/sources")
    body = page.locator("table.sources tbody tr")
    first = [body.nth(i).locator("th").inner_text() for i in range(len(FAILING))]
    assert {f.split()[0] for f in first} == set(FAILING) or all(
        any(n in f for n in FAILING) for f in first
    ), first
    reasons = [body.nth(i).locator(".reason").inner_text() for i in range(len(FAILING))]
    assert all(("500" in r) or ("404" in r) for r in reasons), reasons
    starter_sources = (ROOT / "examples" / "sources.opml").read_text(encoding="utf-8")
    assert body.count() == len(re.findall(r' (?:xmlUrl|url)="https://', starter_sources))
    assert "failing" not in body.nth(len(FAILING)).inner_text()
    _shot(page, db, "sources")
    assert page.dialogs == []
