"""Screenshots of the web view for the docs: docs/web-index.png (the list by
story), docs/web-story.png (one story: three outlets, three languages) and
docs/web-trends.png, from the tests' hand-made data with its stories plus
four weeks of generated history, in Debian's Chromium.

    .venv/bin/python docs/screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright

from storage.db import make_engine, session_factory, upgrade
from storage.views import SqlWebReader
from tests.integration.test_web_browser import ARGS, CHROMIUM
from tests.support.webdata import scenario
from tests.support.webserver import ServedApp
from web.server import WebConfig, create_app

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="docs")
    out = Path(ap.parse_args().out)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/shots.db")
        upgrade(engine)
        made = scenario(engine, NOW, history=400, stories=True)
        story = (made.stories or {})["pantsir"]
        reader = SqlWebReader(session_factory(engine))
        served = ServedApp(create_app(reader, WebConfig(clock=lambda: NOW))).start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                page.goto(served.url + "/?since=1d")
                page.screenshot(path=str(out / "web-index.png"))
                page.goto(f"{served.url}/stories/{story}")
                page.screenshot(path=str(out / "web-story.png"))
                page.goto(served.url + "/trends")
                page.screenshot(path=str(out / "web-trends.png"))
                browser.close()
        finally:
            served.stop()
            engine.dispose()
    print(f"wrote {out}/web-index.png, web-story.png and web-trends.png")


if __name__ == "__main__":
    main()
