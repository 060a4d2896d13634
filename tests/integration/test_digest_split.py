"""Large digests (issue #16): split into messages that fit each channel's
limits, each part sent and recorded on its own, so one refused part (a 413)
fails only its own alerts. Both databases, real local receivers; stored
titles and summaries are capped."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from alerts.alert_records import Hit, Recipient, WatchlistMatch
from crawler.crawl_records import Item
from newswatch.app import App
from storage.items import MAX_SUMMARY_CHARS, MAX_TITLE_CHARS, store_items
from storage.matches import record_matches
from storage.tables import ItemRow, OutboxRow
from storage.watchlists import active_watchlists
from tests.conftest import Database
from tests.integration.test_outbox import T0, Clock, deliver, make_app, setup
from tests.support.httpserver import LocalHTTPServer, Request, Response
from tests.support.smtpserver import smtp_server

N = 260
WEBHOOK_LIMIT = 256 * 1024
# Hostile text, as a class: Slack's escaped characters (5× longer once escaped),
# multi-byte scripts, and plain bulk; titles longer than the stored cap.
FILLERS = ["<&>" * 700, "판치르" * 900, "x" * 3000, "\u202e&lt;" * 500]


def _title(i: int) -> str:
    mark = "POISON " if i == 7 else ""
    return f"{mark}item {i} SAM " + FILLERS[i % len(FILLERS)]


def add_big_items(app: App, sid: int, n: int) -> None:
    items = [
        Item(
            url=f"https://example.org/big/{i}",
            guid=str(i),
            title=_title(i),
            summary=FILLERS[(i + 1) % len(FILLERS)] * 10,
            text="the SAM system",
            published=T0 - timedelta(minutes=i % 50),
            language="en",
            content_hash=str(i),
        )
        for i in range(n)
    ]
    hit = Hit(rule="SAM", spelling="SAM", field="body", start=4, end=7)
    snippets = tuple(f"… {FILLERS[k % len(FILLERS)][:400]} SAM …" for k in range(3))
    with app.session() as s:
        store_items(s, sid, items, app.now())
        [active] = active_watchlists(s)
        for item_id in s.scalars(select(ItemRow.id)):
            found = WatchlistMatch("air-defence", ("SAM",), (hit,), snippets)
            record_matches(s, item_id, [(active, found)], app.now())


def _slack_receiver(bodies: list[dict[str, Any]]) -> Any:
    def handler(req: Request) -> Response:
        doc = json.loads(req.body)
        sections = [b["text"]["text"] for b in doc["blocks"] if b["type"] == "section"]
        ok = (
            len(doc["blocks"]) <= 50
            and all(len(t) <= 3000 for t in sections)
            and len(req.body.decode()) <= 40_000
            and len(doc["text"]) <= 3000
        )
        if ok:
            bodies.append(doc)
        return (200, {}, b"ok") if ok else (400, {}, b"invalid_blocks")

    return handler


def _webhook_receiver(bodies: list[dict[str, Any]]) -> Any:
    def handler(req: Request) -> Response:
        if len(req.body) > WEBHOOK_LIMIT:
            return 413, {}, b"too large"
        doc = json.loads(req.body)
        if any(m["item"]["title"].startswith("POISON") for m in doc["matches"]):
            return 413, {}, b"refused"  # one part refused: only its alerts fail
        bodies.append(doc)
        return 200, {}, b"ok"

    return handler


@pytest.mark.slow
def test_large_digest_goes_in_parts(db: Database, http_server: LocalHTTPServer) -> None:
    clock = Clock()
    slack: list[dict[str, Any]] = []
    hooks: list[dict[str, Any]] = []
    http_server.route("/services/T/B/X", _slack_receiver(slack))
    http_server.route("/hook", _webhook_receiver(hooks))
    with smtp_server() as (smtp, url):
        app = make_app(db, clock, smtp=url)
        sid = setup(
            app,
            [
                Recipient("slack", http_server.url("/services/T/B/X")),
                Recipient("webhook", http_server.url("/hook")),
                Recipient("email", "a@example.org"),
            ],
            digest="hourly",
        )
        add_big_items(app, sid, N)
        clock.at = T0.replace(hour=3, minute=0, second=1)
        report = deliver(app, limit=10_000)
    with app.session() as s:
        rows = list(s.scalars(select(OutboxRow)))
        titles = list(s.scalars(select(ItemRow.title)))
        summaries = list(s.scalars(select(ItemRow.summary)))
    assert max(map(len, titles)) <= MAX_TITLE_CHARS
    assert max(map(len, summaries)) <= MAX_SUMMARY_CHARS
    shown_slack = [b for doc in slack for b in doc["blocks"] if "item " in json.dumps(b)]
    assert len(slack) > 1 and len(shown_slack) == N  # every match shown once, none "… more"
    assert all("part" in doc["text"] for doc in slack)
    hook_urls = [m["item"]["url"] for doc in hooks for m in doc["matches"]]
    assert len(hook_urls) == len(set(hook_urls)) and len(hooks) >= 1
    failed = [r for r in rows if r.status == "failed"]
    assert failed and all(r.recipient_id == failed[0].recipient_id for r in failed)
    assert len(hook_urls) + len(failed) == N and "413" in (failed[0].last_error or "")
    assert len(smtp.messages) == 2  # 260 matches, 200 per email
    assert {m.message["Subject"].rsplit("(", 1)[1] for m in smtp.messages} == {
        "part 1 of 2)",
        "part 2 of 2)",
    }
    assert report.sent == 3 * N - len(failed) and report.failed == len(failed)
