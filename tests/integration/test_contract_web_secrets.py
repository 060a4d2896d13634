"""CONTRACT.md, "Web view": secrets are never shown. A private feed's
basic-auth password in a source URL is a secret: the sources page shows the
URL masked and does not link it (the page would carry the password), over
real SQLite and PostgreSQL through a real local socket."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from storage.db import transaction
from storage.sources import add_source
from storage.views import SqlWebReader
from tests.conftest import Database
from tests.support.webserver import ServedApp, fetch
from web.server import WebConfig, create_app

NOW = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
PASSWORD = "FEEDPASSWORDw3b9"


@pytest.fixture
def site(db: Database) -> Iterator[ServedApp]:
    with transaction(db.factory) as s:
        for name, url in (
            ("private", f"https://desk:{PASSWORD}@feeds.example.org/private.xml"),
            ("public", "https://www.example.org/rss.xml"),
        ):
            add_source(
                s, name=name, url=url, kind="feed", every_seconds=900, links_css=None, now=NOW
            )
    served = ServedApp(
        create_app(SqlWebReader(db.factory), WebConfig(token=None, clock=lambda: NOW))
    ).start()
    yield served
    served.stop()


def test_the_sources_page_never_shows_a_feed_password(site: ServedApp) -> None:
    body = fetch(site.url + "/sources").body
    assert PASSWORD not in body
    assert "https://desk:***@feeds.example.org/private.xml" in body
    assert 'href="https://www.example.org/rss.xml"' in body  # other sources stay links
