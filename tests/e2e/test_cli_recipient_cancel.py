"""`watchlist import` of an edited file and `watchlist remove`, as a user runs
them: the alerts not yet delivered to what was removed are cancelled, said
so in one line, and listed as cancelled with the reason by `alerts` and the
web view's /alerts (secrets masked, one line per row)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from storage.views import SqlWebReader
from tests.conftest import Database
from tests.e2e.conftest import CLI
from tests.e2e.test_cli_alerts import SLACK, seed
from tests.support.webserver import ServedApp, fetch
from web.server import WebConfig, create_app

EMAIL_ONLY = """\
watchlists:
  - name: air-defence
    terms: [SAM]
    notify:
      - email: analyst@example.org
"""


def test_reimport_and_remove_cancel_and_list_the_cancelled(
    cli: CLI, db: Database, tmp_path: Path
) -> None:
    seed(db)  # one item: email alert pending, Slack alert failed
    path = tmp_path / "watchlists.yaml"
    path.write_text(EMAIL_ONLY, encoding="utf-8")

    r = cli("watchlist", "import", str(path))
    assert r.code == 0, r.err
    assert r.out.splitlines() == [
        "imported 1 watchlists: air-defence",
        "cancelled 1 alert not yet delivered to removed recipients",
    ]
    again = cli("watchlist", "import", str(path))  # nothing more to cancel: no second line
    assert again.out.splitlines() == ["imported 1 watchlists: air-defence"]
    assert cli("alerts", "retry").out.strip() == "0 failed alerts put back to pending"

    rows = [
        json.loads(x) for x in cli("alerts", "--status", "cancelled", "--json").out.split("\n") if x
    ]
    assert [(x["channel"], x["status"], x["last_error"]) for x in rows] == [
        ("slack", "cancelled", "recipient removed from the watchlist")
    ]
    assert (
        rows[0]["recipient"].startswith("https://hooks.slack.com/")
        and rows[0]["next_attempt"] is None
    )

    removed = cli("watchlist", "remove", "air-defence")
    assert removed.code == 0
    assert removed.out.splitlines() == [
        "removed air-defence",
        "cancelled 1 alert not yet delivered",
    ]

    table = cli("alerts", "--status", "cancelled")
    assert table.code == 0
    header, *lines = table.out.splitlines()
    assert header.split()[:2] == ["id", "status"] and header.rstrip().endswith("last error")
    assert len(lines) == 2  # one line per row, the title's CR LF included
    assert sorted(line.split()[1] for line in lines) == ["cancelled", "cancelled"]
    assert any("watchlist removed" in line and "analyst@example.org" in line for line in lines)
    assert any("recipient removed from the watchlist" in line for line in lines)
    assert "secretTOKEN" not in table.out and SLACK not in table.out
    assert cli("alerts", "--status", "pending", "--json").out == ""

    bad = cli("alerts", "--status", "canceled")
    assert bad.code == 2 and bad.err.strip().count("\n") == 0 and "cancelled" in bad.err

    served = ServedApp(
        create_app(
            SqlWebReader(db.factory),
            WebConfig(token=None, clock=lambda: datetime(2026, 11, 22, 3, tzinfo=UTC)),
        )
    ).start()
    try:
        body = fetch(served.url + "/alerts").body
    finally:
        served.stop()
    cancelled = body[body.index("<h2>Cancelled") :]
    assert '<span class="count">2</span>' in cancelled
    assert "recipient removed from the watchlist" in cancelled and "watchlist removed" in cancelled
    assert "secretTOKEN" not in body and "XXXX" not in body
    assert "No failed alerts." in body and "Nothing waiting." in body
