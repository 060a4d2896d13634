"""The web view in a real headless Chromium (Debian's package, driven by
Playwright), on SQLite and PostgreSQL: what a person sees and can do.

Screenshots of every page go to tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from storage.db import transaction
from storage.source_edits import set_tags
from storage.views import SqlWebReader
from tests.conftest import Database
from tests.support.webdata import HOSTILE_TITLES, Scenario, scenario
from tests.support.webserver import ServedApp
from web.server import WebConfig, create_app

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("NEWSWATCH_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[1] / "artifacts"
NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
TOKEN = "browser-test-token-77"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for this module. Module scope, not session: Playwright's
    sync API keeps an event loop running in this thread while it is open, and
    later tests that call asyncio.run() in the same worker would fail."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def world(db: Database) -> Scenario:
    return scenario(db.engine, NOW)


def _served(db: Database, token: str | None) -> Iterator[ServedApp]:
    reader = SqlWebReader(db.factory)
    served = ServedApp(create_app(reader, WebConfig(token=token, clock=lambda: NOW))).start()
    yield served
    served.stop()


@pytest.fixture
def site(db: Database, world: Scenario) -> Iterator[ServedApp]:
    yield from _served(db, None)


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh context per test; every dialog is recorded (and dismissed)."""
    scheme = getattr(request, "param", "light")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    pg = context.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    context.close()


def shot(pg: Any, db: Database, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    pg.screenshot(path=str(ARTIFACTS / f"{db.backend}-{name}.png"), full_page=True)


def headlines(pg: Any) -> list[str]:
    return [t.strip() for t in pg.locator("li.group h2").all_inner_texts()]


def test_filter_the_list_and_open_a_story(
    page: Any, site: ServedApp, world: Scenario, db: Database
) -> None:
    page.goto(site.url + "/")
    assert len(headlines(page)) == 14
    assert headlines(page)[0] == world.titles["pantsir_en"]
    shot(page, db, "index")
    page.get_by_label("Language").select_option("ko")
    page.get_by_label("Term").select_option("Pantsir")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?*language=ko*")
    assert headlines(page) == [world.titles["pantsir_ko"]]
    row = page.locator("li.group").first
    assert row.locator(".outlet").inner_text() == "yonhap"
    assert row.locator(".lang").inner_text() == "ko"
    assert "Pantsir" in row.locator(".term").inner_text()
    shot(page, db, "index-filtered")
    page.get_by_role("link", name=world.titles["pantsir_ko"]).click()
    page.wait_for_url("**/items/2")
    article = page.locator("article.item")
    assert article.locator(".outlet").inner_text() == "yonhap"
    assert article.locator("mark").first.inner_text() == "판치르"
    assert article.get_by_role("link").get_attribute("href") == "https://news2.example/a/2"
    shot(page, db, "story")


def test_trends_draw_a_chart_per_term(page: Any, site: ServedApp, db: Database) -> None:
    page.goto(site.url + "/trends")
    figures = page.locator("figure.trend")
    assert figures.count() == 3
    pantsir = figures.filter(has_text="Pantsir")
    lines = pantsir.locator("svg polyline")
    assert lines.count() == 3  # en, ko, ru
    box = pantsir.locator("svg").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    stroke = lines.first.evaluate("e => getComputedStyle(e).stroke")
    assert stroke not in ("none", "")
    assert lines.first.evaluate("e => e.getTotalLength()") > 100
    assert pantsir.locator(".legend li").all_inner_texts() == ["en: 9", "ko: 1", "ru: 1"]
    shot(page, db, "trends")
    page.get_by_role("link", name="90 days").click()
    page.wait_for_url("**/trends?days=90")
    assert page.locator("figure.trend svg").count() == 3


@pytest.mark.parametrize("page", ["dark"], indirect=True)
def test_dark_mode_is_dark_and_readable(page: Any, site: ServedApp, db: Database) -> None:
    page.goto(site.url + "/trends")
    bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    fg = page.evaluate("getComputedStyle(document.body).color")
    assert _luma(bg) < 0.2 < 0.7 < _luma(fg), (bg, fg)
    shot(page, db, "trends-dark")
    page.goto(site.url + "/")
    shot(page, db, "index-dark")


def _luma(css: str) -> float:
    r, g, b = (int(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_hostile_titles_stay_text(page: Any, site: ServedApp, db: Database) -> None:
    page.goto(site.url + "/")
    for i in range(100, 108):
        page.goto(f"{site.url}/items/{i}")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("img, iframe, script, svg[onload], a[href^='javascript']").count() == 0
        assert (
            page.locator("main a[href^='data:'], main [onerror], main [onmouseover]").count() == 0
        )
    page.goto(site.url + "/?term=Pantsir")
    shown = "\n".join(headlines(page))
    for title in HOSTILE_TITLES:
        visible = title.replace("\u202e", "\ufffd").replace("\u202c", "\ufffd")
        assert visible in shown, title
    assert page.dialogs == []
    shot(page, db, "hostile")


def test_sources_failing_first_and_alerts(
    page: Any, site: ServedApp, world: Scenario, db: Database
) -> None:
    page.goto(site.url + "/sources")
    first = page.locator("table.sources tbody tr").first
    assert world.failing_source in first.locator("th").inner_text()
    assert first.locator(".bad").inner_text() == "failing ×3"
    assert first.locator(".reason").inner_text() == world.failing_error
    shot(page, db, "sources")
    page.goto(site.url + "/alerts")
    assert page.get_by_role("heading", name="Failed").is_visible()
    assert page.get_by_text("slack: HTTP 404 no_service").is_visible()
    assert "hooks.slack.com/services" not in page.content()
    shot(page, db, "alerts")


def test_keyboard_reaches_the_links(page: Any, site: ServedApp, world: Scenario) -> None:
    page.goto(site.url + "/")
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.getAttribute('href') || ''"))
        if reached[-1] == "/items/1":
            break
    assert reached[0] == "#main"
    assert {"/", "/trends", "/sources", "/alerts"} <= set(reached)
    assert reached[-1] == "/items/1"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    page.keyboard.press("Enter")
    page.wait_for_url("**/items/1")
    assert page.locator("h1").inner_text() == world.titles["pantsir_en"]


def test_phone_width_has_no_sideways_scroll(browser: Any, site: ServedApp, db: Database) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        pg = context.new_page()
        for name, path in [("index", "/"), ("sources", "/sources"), ("trends", "/trends"),
                           ("alerts", "/alerts")]:  # fmt: skip
            pg.goto(site.url + path)
            overflow = pg.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, overflow)
            shot(pg, db, f"phone-{name}")
    finally:
        context.close()


def test_without_the_token_a_401_then_login(browser: Any, db: Database, world: Scenario) -> None:
    served = next(gen := _served(db, TOKEN))
    context = browser.new_context()
    try:
        pg = context.new_page()
        response = pg.goto(served.url + "/sources")
        assert response is not None and response.status == 401
        assert pg.locator("table").count() == 0
        api = pg.request.get(served.url + "/api/matches")
        assert api.status == 401
        shot(pg, db, "login")
        pg.get_by_label("Token").fill("wrong")
        pg.get_by_role("button", name="Log in").click()
        assert pg.get_by_role("alert").inner_text() == "wrong token"
        pg.get_by_label("Token").fill(TOKEN)
        pg.get_by_role("button", name="Log in").click()
        pg.wait_for_url("**/sources")
        assert world.failing_source in pg.locator("table.sources").inner_text()
        (cookie,) = context.cookies()
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        assert cookie["value"] != TOKEN
        assert pg.request.get(served.url + "/api/matches").status == 200
    finally:
        context.close()
        next(gen, None)


# ---------------------------------------------------------------- by story


@pytest.fixture
def storied(db: Database) -> Iterator[tuple[ServedApp, Scenario]]:
    """The scenario with its stories assigned (storage.stories), and a tag on tass."""
    made = scenario(db.engine, NOW, stories=True)
    with transaction(db.factory) as session:
        set_tags(session, "tass", ("russia",))
    for served in _served(db, None):
        yield served, made


def _story(made: Scenario, label: str) -> int:
    assert made.stories is not None
    return made.stories[label]


def test_a_story_of_three_outlets_is_one_row_and_opens_to_all_three(
    page: Any, storied: tuple[ServedApp, Scenario], db: Database
) -> None:
    site, made = storied
    page.goto(site.url + "/")
    href = f"/stories/{_story(made, 'pantsir')}"
    rows = page.locator("li.group").filter(has=page.locator(f"a[href='{href}']"))
    assert rows.count() == 1
    row = rows.first
    assert sorted(row.locator(".outlet").all_inner_texts()) == ["isw", "tass", "yonhap"]
    assert sorted(row.locator(".lang").all_inner_texts()) == ["en", "ko", "ru"]
    assert row.locator(".en-title").inner_text() == made.titles["pantsir_en"]
    # no other row repeats one of the story's items
    for key in ("pantsir_en", "pantsir_ru"):
        assert made.titles[key] not in headlines(page)[1:]
    assert page.locator("li.group a[href='/items/4']").count() == 1  # no story yet: its own row
    shot(page, db, "stories-index")
    row.get_by_role("link", name=made.titles["pantsir_ko"]).click()
    page.wait_for_url(f"**{href}")
    articles = page.locator("article.item")
    assert articles.count() == 3
    assert sorted(articles.locator(".outlet").all_inner_texts()) == ["isw", "tass", "yonhap"]
    assert sorted(articles.locator("mark").all_inner_texts()) == ["Pantsir", "Панцирь", "판치르"]
    links = [a.get_attribute("href") for a in articles.locator(".link a").all()]
    assert sorted(links) == [f"https://news{i}.example/a/{i}" for i in (1, 2, 3)]
    shot(page, db, "stories-story")


def test_story_filters_in_the_form(page: Any, storied: tuple[ServedApp, Scenario]) -> None:
    site, made = storied
    page.goto(site.url + "/")
    page.get_by_label("Language").select_option("ru")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?*language=ru*")
    assert [h.split("\n")[0] for h in headlines(page)] == [made.titles["pantsir_ko"]]
    page.goto(site.url + "/")
    page.get_by_label("Source tag").select_option("russia")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?*tag=russia*")
    assert [h.split("\n")[0] for h in headlines(page)] == [made.titles["pantsir_ko"]]
    page.get_by_label("Term").select_option("BRICS")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**/?*term=BRICS*")
    assert page.locator("li.group").count() == 0 and page.get_by_text("Nothing matched").count()
    page.goto(site.url + "/?term=BRICS")
    assert [h.split("\n")[0] for h in headlines(page)] == [made.titles["brics_ko"]]


def test_hostile_story_titles_stay_text(
    page: Any, storied: tuple[ServedApp, Scenario], db: Database
) -> None:
    site, made = storied
    for j in range(100, 108):
        page.goto(f"{site.url}/stories/{_story(made, f'hostile-{j}')}")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.locator("img, iframe, script, svg[onload], a[href^='javascript']").count() == 0
        assert (
            page.locator("main [onerror], main [onmouseover], main a[href^='data:']").count() == 0
        )
    page.goto(site.url + "/")
    shown = "\n".join(headlines(page))
    for title in HOSTILE_TITLES:
        assert title.replace("\u202e", "\ufffd").replace("\u202c", "\ufffd") in shown, title
    assert page.dialogs == []


def test_keyboard_reaches_a_story(page: Any, storied: tuple[ServedApp, Scenario]) -> None:
    site, made = storied
    href = f"/stories/{_story(made, 'pantsir')}"
    page.goto(site.url + "/")
    reached = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.getAttribute('href') || ''"))
        if reached[-1] == href:
            break
    assert reached[-1] == href
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{href}")
    assert page.locator("h1").inner_text() == made.titles["pantsir_ko"]
    assert page.locator("article.item").count() == 3
