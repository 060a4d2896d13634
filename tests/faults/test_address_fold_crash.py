"""kill -9 of `newswatch crawl` between the send of a grouped alert (several
watchlists, one address, one item) and its mark, on SQLite and PostgreSQL.

The guarantee stays the one of docs/reliability.md: the message whose send
completed and whose mark did not is sent again, once, whole (naming every
watchlist, an email with the same Message-ID); nothing is lost, and no row of
the group goes out as a message of its own.
"""

from __future__ import annotations

import signal
from collections import Counter

import pytest
from sqlalchemy import select, update

from alerts.alert_records import Recipient
from storage.tables import OutboxRow, SourceRow
from tests.conftest import Database
from tests.faults.conftest import base_env, run_newswatch
from tests.integration.test_address_fold import EMAIL, collect, define, post
from tests.integration.test_outbox import Clock, make_app
from tests.support.httpserver import LocalHTTPServer
from tests.support.smtpserver import smtp_server

pytestmark = pytest.mark.faults


@pytest.mark.parametrize("point", ["after_send", "after_send:2"])
def test_a_kill_between_send_and_mark_repeats_the_whole_message_at_most_once(
    db: Database, http_server: LocalHTTPServer, point: str
) -> None:
    hooks = collect(http_server, "/hook")
    with smtp_server() as (smtp, url):
        app = make_app(db, Clock(), smtp=url)
        notify = [Recipient("email", EMAIL), Recipient("webhook", http_server.url("/hook"))]
        define(app, ("air-defence", "each", notify), ("brics", "each", notify))
        post(app, "isw", 1, ["air-defence", "brics"], title="Pantsir at BRICS")
        with app.session() as s:  # the crawls only deliver: nothing to fetch, no DNS
            s.execute(update(SourceRow).values(enabled=False))
        env = base_env(db.url, NEWSWATCH_SMTP_URL=url, NEWSWATCH_CRASH_AT=point)
        crashed = run_newswatch(["crawl"], env, timeout=60)
        assert crashed.code == -signal.SIGKILL, crashed.err[-2000:]
        env.pop("NEWSWATCH_CRASH_AT")
        clean = run_newswatch(["crawl"], env, timeout=60)
        assert clean.code == 0, clean.err[-2000:]
        emails = [m.message for m in smtp.messages]
    with app.session() as s:
        assert Counter(s.scalars(select(OutboxRow.status))) == Counter(sent=4)
    assert 1 <= len(emails) <= 2 and 1 <= len(hooks) <= 2
    assert len(emails) + len(hooks) <= 3  # one message's mark was lost, at most
    assert len({m["Message-ID"] for m in emails}) == 1  # a repeat is recognisable
    for m in emails:
        assert m["Subject"] == "[newswatch] air-defence, brics: Pantsir at BRICS"
    for b in hooks:
        assert b["watchlists"] == ["air-defence", "brics"]
