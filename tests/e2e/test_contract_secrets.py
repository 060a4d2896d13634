"""CONTRACT.md, "Configuration": secrets (SMTP password, webhook URLs) are
never printed in full by any command or log line; "Watchlist file": `show`
masks secrets, `export` writes what was imported.

Webhook and Slack URLs written in the file itself (not as `${NAME}`), with
a failing delivery so that error paths print them too, through every
command that shows recipients or delivery errors, with `-v` logs in both
formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.conftest import CLI
from tests.support.httpserver import LocalHTTPServer
from tests.support.smtpserver import smtp_server

HOOK_TOKEN = "HOOKPATHTOKEN8c1d0e"
SLACK_TOKEN = "SLACKTOKENb7e2f4a9"
HMAC_KEY = "HMACKEYd3adb33f77"
SMTP_PASSWORD = "SMTPPASSWORDq9w8e7"
SECRETS = (HOOK_TOKEN, SLACK_TOKEN, HMAC_KEY, SMTP_PASSWORD)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_command_prints_a_secret(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path, log_format: str
) -> None:
    hook = http_server.serve(f"/hooks/{HOOK_TOKEN}", b"gone", "text/plain", status=500)
    slack = f"http://127.0.0.1:{http_server.port}/services/T0/B0/{SLACK_TOKEN}"
    http_server.serve(f"/services/T0/B0/{SLACK_TOKEN}", b"no", "text/plain", status=404)
    feed = http_server.serve(
        "/feed.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>Pantsir seen</title><link>{http_server.url('/a/1')}</link></item>"
        "</channel></rss>",
    )
    wl = tmp_path / "w.yaml"
    wl.write_text(
        "watchlists:\n  - name: air\n    terms: [Pantsir]\n    notify:\n"
        f"      - webhook: {hook}\n        secret: {HMAC_KEY}\n"
        f"      - slack: {slack}\n"
        "      - email: analyst@example.org\n",
        encoding="utf-8",
    )
    with smtp_server(auth=("desk", "wrong-on-purpose")) as (_, url):
        # the server knows another password: every send fails, and says so
        smtp_url = url.replace("wrong-on-purpose", SMTP_PASSWORD)
        env = {
            "NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1",
            "NEWSWATCH_PER_HOST_DELAY": "0",
            "NEWSWATCH_SMTP_URL": smtp_url,
            "NEWSWATCH_LOG_FORMAT": log_format,
            "NEWSWATCH_CRAWL_GRACE": "0",
        }
        shown = []
        for args in (
            ("watchlist", "import", str(wl)),
            ("watchlist", "show", "air"),
            ("watchlist", "list", "--json"),
            ("source", "add", feed, "--kind", "feed", "--name", "wire", "--alert-backlog"),
            ("crawl", "-v"),
            ("alerts",),
            ("alerts", "--json"),
            ("alerts", "--status", "failed", "--json"),
            ("check",),
            ("matches", "--json"),
        ):
            r = cli(*args, env=env)
            shown.append((args, r.out + r.err))
        exported = cli("watchlist", "export", "air", env=env)
    assert all(s in exported.out for s in (HOOK_TOKEN, SLACK_TOKEN, HMAC_KEY))  # as imported
    alerts = dict(shown)[("alerts", "--json")]
    assert alerts.count('"status": "failed"') + alerts.count('"status": "pending"') == 3, alerts
    leaks = [(args, s) for args, text in shown for s in SECRETS if s in text]
    assert leaks == []


@pytest.mark.parametrize(
    ("userinfo", "shown"),
    [("analyst:FEEDPASSWORDx1y2", "analyst:***@"), (":FEEDPASSWORDx1y2", ":***@")],
)
def test_a_feed_password_is_masked_in_listings_and_kept_by_export(
    cli: CLI, tmp_path: Path, userinfo: str, shown: str
) -> None:
    """A private feed's basic-auth password is a secret: `source add`, `source
    list` (table and JSON) and the crawl's error mask it; `export` writes the
    source as added, so that importing it back still polls."""
    url = f"http://{userinfo}@127.0.0.1:9/private/feed.xml"
    env = {"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1"}
    added = cli("source", "add", url, "--kind", "feed", "--name", "private", env=env)
    assert added.code == 0, added.err
    listed = cli("source", "list")
    as_json = cli("source", "list", "--json")
    crawled = cli("crawl", env=env)  # port 9: nothing listens, the poll fails
    for r in (added, listed, as_json, crawled, cli("source", "list", "--json")):
        assert "FEEDPASSWORD" not in r.out + r.err, r
    assert json.loads(as_json.out)["url"] == f"http://{shown}127.0.0.1:9/private/feed.xml"
    assert shown in listed.out
    for fmt in ("opml", "yaml"):
        assert "FEEDPASSWORDx1y2" in cli("source", "export", "--format", fmt).out
