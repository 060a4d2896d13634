"""`newswatch alerts` and `newswatch alerts retry` as a user runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update

from alerts.alert_records import Hit, Recipient, Term, Watchlist, WatchlistMatch
from crawler.crawl_records import Item
from storage.db import make_engine, session_factory
from storage.items import store_items
from storage.matches import record_matches
from storage.sources import add_source
from storage.tables import OutboxRow, RecipientRow
from storage.watchlists import active_watchlists, save_watchlists
from tests.conftest import Database
from tests.e2e.conftest import CLI, run_subprocess

NOW = datetime(2026, 11, 22, 2, 10, tzinfo=UTC)
SLACK = "https://hooks.slack.com/services/T000/B000/XXXXsecretTOKEN"


def seed(db: Database) -> None:
    """One item matched by one watchlist with an email and a Slack recipient;
    the Slack alert has failed."""
    with db.session() as s, s.begin():
        src = add_source(
            s,
            name="isw",
            url="https://example.org/feed",
            kind="feed",
            every_seconds=900,
            links_css=None,
            now=NOW,
        )
        save_watchlists(
            s,
            [
                Watchlist(
                    "air-defence",
                    (Term("SAM"),),
                    notify=(Recipient("email", "analyst@example.org"), Recipient("slack", SLACK)),
                )
            ],
            NOW,
        )
        item = Item(
            url="https://example.org/1",
            guid="1",
            title="SAM\r\nbatteries moved",
            summary="",
            text="SAM",
            published=NOW,
            language="en",
            content_hash="h",
        )
        [item_id] = store_items(s, src.id, [item], NOW).values()
        [active] = active_watchlists(s)
        hit = Hit("SAM", "SAM", "body", 0, 3)
        record_matches(
            s, item_id, [(active, WatchlistMatch("air-defence", ("SAM",), (hit,), ("SAM",)))], NOW
        )
        slack_id = s.scalar(select(RecipientRow.id).where(RecipientRow.channel == "slack"))
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.recipient_id == slack_id)
            .values(
                status="failed",
                attempts=8,
                last_error="Slack (https://hooks.slack.com/…***OKEN) answered HTTP 404",
            )
        )


def test_alerts_list_and_retry(cli: CLI, db: Database) -> None:
    seed(db)
    r = cli("alerts", "--json")
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in r.out.splitlines()]
    assert sorted(x["status"] for x in rows) == ["failed", "pending"]
    assert "secretTOKEN" not in r.out and "XXXX" not in r.out
    slack = next(x for x in rows if x["channel"] == "slack")
    assert slack["recipient"].startswith("https://hooks.slack.com/")
    assert slack["attempts"] == 8 and "404" in slack["last_error"]
    assert slack["item"] == {"title": "SAM\r\nbatteries moved", "url": "https://example.org/1"}
    email = next(x for x in rows if x["channel"] == "email")
    assert email["recipient"] == "analyst@example.org" and email["next_attempt"]

    failed = cli("alerts", "--status", "failed", "--json")
    assert [json.loads(line)["channel"] for line in failed.out.splitlines()] == ["slack"]

    table = cli("alerts")
    assert table.code == 0 and "secretTOKEN" not in table.out
    header, *lines = table.out.splitlines()
    assert header.split()[:4] == ["id", "status", "watchlist", "channel"]
    assert len(lines) == 2 and any("SAM batteries moved" in line for line in lines)

    retried = cli("alerts", "retry")
    assert retried.code == 0 and retried.out.strip() == "1 failed alert put back to pending"
    assert cli("alerts", "--status", "failed", "--json").out == ""
    pending = [
        json.loads(x) for x in cli("alerts", "--status", "pending", "--json").out.split("\n") if x
    ]
    assert len(pending) == 2 and all(x["attempts"] == 0 for x in pending if x["channel"] == "slack")
    assert cli("alerts", "retry").out.strip() == "0 failed alerts put back to pending"


def test_bad_status_is_one_line(cli: CLI) -> None:
    cli("init")
    r = cli("alerts", "--status", "lost")
    assert r.code == 2 and r.err.strip().count("\n") == 0 and "--status" in r.err


def test_alerts_subprocess_on_sqlite_file(tmp_path: Path) -> None:
    env = {"NEWSWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'nw.db'}"}
    assert run_subprocess(["init"], env, cwd=tmp_path).code == 0
    engine = make_engine(env["NEWSWATCH_DATABASE_URL"])
    try:
        seed(Database("sqlite", env["NEWSWATCH_DATABASE_URL"], engine, session_factory(engine)))
    finally:
        engine.dispose()
    r = run_subprocess(["alerts", "--json"], env, cwd=tmp_path)
    assert r.code == 0, r.err
    assert len(r.out.splitlines()) == 2 and "secretTOKEN" not in r.out
    r = run_subprocess(["alerts", "retry"], env, cwd=tmp_path)
    assert r.code == 0 and r.out.startswith("1 failed alert")
