"""Delivery faults: SMTP answers 451, Slack answers 429 (Retry-After) then 500s,
a webhook hangs past the timeout; then all three recover. Every alert is
delivered once, after recovery, in the order of its match time.

The outbox's backoff (30 s doubling, at least Retry-After) has no test knob,
so the test drives time through the database: between runs it makes pending
rows due (`next_attempt_at = now`), as the passing of the backoff would.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from storage.db import transaction
from storage.tables import OutboxRow, RecipientRow
from tests.conftest import Database
from tests.faults.conftest import base_env, run_newswatch
from tests.faults.corpus import corpus
from tests.support.httpserver import Request, Response

pytestmark = pytest.mark.faults

ITEMS = 4


class Flaky:
    """Answers from a script of (status, headers, delay) then 200 for ever."""

    def __init__(self, script: list[tuple[int, dict[str, str], float]]) -> None:
        self.script = list(script)
        self.accepted: list[str] = []
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, req: Request) -> Response:
        with self._lock:
            self.calls += 1
            step = self.script.pop(0) if self.script else (200, {}, 0.0)
        status, headers, delay = step
        if delay:  # a hung endpoint: the client gives up first, nothing is processed
            time.sleep(delay)
            return 503, {}, b"too late"
        if status == 200:
            body = json.loads(req.body)
            text = body["item"]["url"] if "item" in body else json.dumps(body)
            with self._lock:
                self.accepted.append(text)
        return status, {"Content-Type": "text/plain", **headers}, b"x"


def _make_due(db: Database) -> None:
    with transaction(db.factory) as s:
        s.execute(
            update(OutboxRow)
            .where(OutboxRow.status == "pending")
            .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_channels_fail_then_recover(db: Database) -> None:
    slack = Flaky([(429, {"Retry-After": "7200"}, 0.0), (500, {}, 0.0), (500, {}, 0.0)])
    hook = Flaky([(200, {}, 3.0), (200, {}, 3.0)])  # hangs past the 2 s timeout, twice
    with corpus(feeds=1) as c:
        from tests.support.smtpserver import smtp_server

        with smtp_server(fail_first=3) as (smtp, smtp_url):
            slack_url = c.server.route("/slack", slack)
            hook_url = c.server.route("/hook", hook)
            yaml = (
                "watchlists:\n  - name: air\n    terms: [Pantsir]\n    notify:\n"
                f"      - email: analyst@example.org\n      - slack: {slack_url}\n"
                f"      - webhook: {hook_url}\n"
            )
            from alerts.watchlists import parse_watchlists
            from storage.sources import add_source
            from storage.watchlists import save_watchlists

            now = datetime.now(UTC)
            with transaction(db.factory) as s:
                save_watchlists(s, parse_watchlists(yaml), now)
                add_source(
                    s, name="f", url=c.feeds[0].url, kind="feed", every_seconds=2,
                    links_css=None, now=now,
                )  # fmt: skip
            env = base_env(db.url, NEWSWATCH_SMTP_URL=smtp_url)
            order = []
            for n in range(1, ITEMS + 1):  # one item per crawl: distinct match times
                order.append(c.feeds[0].publish(f"i{n}", f"Pantsir report {n}"))
                r = run_newswatch(["crawl"], env, timeout=60)
                assert r.code == 0, r.err[-2000:]
                if n == 1:
                    with transaction(db.factory) as s:
                        due = s.scalar(
                            select(OutboxRow.next_attempt_at)
                            .join(RecipientRow, RecipientRow.id == OutboxRow.recipient_id)
                            .where(RecipientRow.channel == "slack")
                        )
                    assert due is not None and due > now + timedelta(seconds=7000)  # Retry-After
                _make_due(db)
            for _ in range(6):  # recovered: drain
                r = run_newswatch(["crawl"], env, timeout=60)
                assert r.code == 0
                _make_due(db)
                with transaction(db.factory) as s:
                    statuses = list(s.scalars(select(OutboxRow.status)))
                if set(statuses) == {"sent"}:
                    break
            assert statuses.count("sent") == 3 * ITEMS, statuses

            mails = []
            for m in smtp.messages:
                found = next(u for u in order if u in m.data.decode("utf-8", "replace"))
                mails.append(found)
            slack_items = [next(u for u in order if u in text) for text in slack.accepted]
            assert smtp.attempts > ITEMS and slack.calls > ITEMS and hook.calls > ITEMS
            assert sorted(mails) == sorted(order) and len(set(mails)) == ITEMS, mails
            assert sorted(slack_items) == sorted(order), slack_items
            assert sorted(hook.accepted) == sorted(order), hook.accepted
            # in the order of their match time, per channel
            assert mails == order, ("email", mails)
            assert slack_items == order, ("slack", slack_items)
            assert hook.accepted == order, ("webhook", hook.accepted)
