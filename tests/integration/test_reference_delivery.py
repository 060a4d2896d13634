"""`${NAME}` at delivery (issue #16): rows stored before the rule existed, or
written around the parser, still never send newswatch's configuration or a
spliced variable anywhere. Both databases, a real local receiver."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from alerts.alert_records import Recipient
from storage.tables import OutboxRow
from tests.conftest import Database
from tests.integration.test_outbox import Clock, add_items, deliver, make_app, setup
from tests.support.httpserver import LocalHTTPServer

PASSWORD = "SMTPPASSWORD7c1e"


@pytest.mark.parametrize(
    "target,secret",
    [
        ("{hook}?smtp=${{NEWSWATCH_SMTP_URL}}", None),
        ("${{NEWSWATCH_SMTP_URL}}", None),
        ("${{newswatch_smtp_url}}", None),
        ("${{HOOK}}", "${{NEWSWATCH_SMTP_URL}}"),
        ("{hook}/${{LEAKY}}", None),
        ("${{HOOK}}", "x${{LEAKY}}"),
    ],
)
def test_delivery_refuses_forbidden_references(
    target: str, secret: str | None, db: Database, http_server: LocalHTTPServer
) -> None:
    hook = http_server.route("/collect", lambda req: (200, {}, b"ok"))
    smtp = f"smtp://user:{PASSWORD}@127.0.0.1:9"
    env = {
        "HOOK": hook,
        "LEAKY": PASSWORD,
        "NEWSWATCH_SMTP_URL": smtp,
        "newswatch_smtp_url": smtp,
    }
    app = make_app(db, Clock(), env=env)
    r = Recipient("webhook", target.format(hook=hook), secret and secret.format())
    add_items(app, setup(app, [r]), 2)
    report = deliver(app)
    assert report.sent == 0
    assert http_server.requests == []
    with app.session() as s:
        rows = list(s.scalars(select(OutboxRow)))
    assert rows and all(row.status != "sent" for row in rows)
    assert all(PASSWORD not in (row.last_error or "") for row in rows)
