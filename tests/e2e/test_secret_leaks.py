"""Secrets never reach output, logs or tracebacks when the database refuses a
statement (issue #16): statement parameters hold Slack URLs and HMAC secrets.

Each payload is a class member: text a driver cannot store (NUL, lone
surrogates) in a URL or a secret, and constraint violations whose Postgres
DETAIL line quotes the value. Run with and without --debug, on both databases.
"""

from __future__ import annotations

import logging
import traceback
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.db import DatabaseRefused, transaction
from storage.tables import RecipientRow, WatchlistRow
from tests.conftest import Database
from tests.e2e.conftest import CLI

TOKEN = "XOXSECRETTOKEN9f3a"
HMAC = "HMACSECRETd41d8c"


def _yaml(notify: str) -> str:
    return f"watchlists:\n  - name: leak\n    terms: [SAM]\n    notify:\n{notify}"


SLACK = "https://hooks.slack.com/services/T0/B0/" + TOKEN
PAYLOADS = {
    "nul-in-slack-url": f'      - slack: "{SLACK}\\0x"\n',
    "nul-in-secret": f'      - webhook: https://example.org/h\n        secret: "{HMAC}\\0"\n',
    "surrogate-in-secret": (
        f'      - webhook: https://example.org/h\n        secret: "{HMAC}\\ud800"\n'
    ),
    "surrogate-in-url": f'      - slack: "{SLACK}\\udfff"\n',
    "duplicate-target": (
        f"      - webhook: https://example.org/{TOKEN}\n        secret: {HMAC}a\n"
        f"      - webhook: https://example.org/{TOKEN}\n        secret: {HMAC}b\n"
    ),
    "c1-and-nul-mixed": f'      - slack: "{SLACK}\\x85\\0\\x1b[31m"\n',
}


def _leaks(text: str) -> list[str]:
    return [s for s in (TOKEN, HMAC) if s in text]


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
@pytest.mark.parametrize("payload", list(PAYLOADS), ids=list(PAYLOADS))
def test_watchlist_import_never_prints_a_secret(
    payload: str,
    debug: bool,
    cli: CLI,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    f = tmp_path / "w.yaml"
    f.write_text(_yaml(PAYLOADS[payload]), encoding="utf-8", errors="surrogatepass")
    args = ["--debug"] if debug else []
    shown = ""
    try:
        r = cli(*args, "watchlist", "import", str(f))
    except Exception as e:  # --debug re-raises: what Python would print
        shown = "".join(traceback.format_exception(e))
    else:
        shown = r.out + r.err
        assert r.code in (0, 1, 2), r.err  # refused with a message, or stored: never a crash
        if r.code == 1:
            assert r.err.count("\n") == 1 and r.err.startswith("newswatch: error:")
    assert _leaks(shown + caplog.text) == []


def _recipient_rows(db: Database, rows: list[tuple[str, str | None]]) -> BaseException | None:
    now = datetime(2026, 11, 30, tzinfo=UTC)
    try:
        with transaction(db.factory) as s:
            wl = WatchlistRow(name="w", created_at=now, updated_at=now)
            s.add(wl)
            s.flush()
            for i, (target, secret) in enumerate(rows):
                s.add(
                    RecipientRow(
                        watchlist_id=wl.id,
                        position=i,
                        channel="webhook",
                        target=target,
                        secret=secret,
                        active=True,
                    )
                )
    except DatabaseRefused as e:
        return e
    return None


@pytest.mark.parametrize(
    "rows",
    [
        [(SLACK + "\x00", None)],
        [("https://example.org/h", HMAC + "\x00")],
        [(SLACK + "\ud800", HMAC)],
        [("https://example.org/h", HMAC + "\udc80")],
        [(SLACK, HMAC + "1"), (SLACK, HMAC + "2")],  # unique: Postgres DETAIL quotes the key
    ],
    ids=["nul-target", "nul-secret", "surrogate-target", "surrogate-secret", "unique"],
)
def test_storage_errors_are_one_line_without_parameters(
    rows: list[tuple[str, str | None]], db: Database
) -> None:
    """Below the CLI: whatever the driver says, the StorageError and the whole
    traceback a log or --debug would show hold neither value."""
    raised = _recipient_rows(db, rows)
    if raised is None:  # SQLite stores NUL; nothing to leak
        assert db.backend == "sqlite" and any("\x00" in t + (k or "") for t, k in rows)
        return
    text = "".join(traceback.format_exception(raised))
    assert "\n" not in str(raised) and _leaks(text) == []
    assert str(raised).startswith("database refused the operation: ")


@pytest.mark.parametrize(
    "notify,allow,error",
    [
        ("      - slack: ${NEWSWATCH_SMTP_URL}\n", "", "own configuration"),
        ("      - webhook: ${newswatch_database_url}\n", "*", "own configuration"),
        ("      - webhook: https://x.example/?s=${NEWSWATCH_SMTP_URL}\n", "", "whole value"),
        ("      - webhook: https://x.example/h\n        secret: k${KEY}\n", "", "whole value"),
        ("      - slack: ${SLACK_HOOK}\n", "NW_*", "not permitted by NEWSWATCH_WATCHLIST_ENV"),
        ("      - webhook: https://x.example/h\n        secret: ${AWS_KEY}\n", "NW_A", "AWS_KEY"),
    ],
)
def test_import_refuses_forbidden_references(
    notify: str, allow: str, error: str, cli: CLI, tmp_path: Path
) -> None:
    f = tmp_path / "w.yaml"
    f.write_text(_yaml(notify), encoding="utf-8")
    r = cli("watchlist", "import", str(f), env={"NEWSWATCH_WATCHLIST_ENV": allow})
    assert r.code == 2 and error in r.err and r.err.count("\n") == 1
    assert cli("watchlist", "list", "--json").out == ""


def test_import_accepts_permitted_references(cli: CLI, tmp_path: Path) -> None:
    f = tmp_path / "w.yaml"
    notify = "      - slack: ${NW_SLACK}\n      - webhook: ${NW_HOOK}\n        secret: ${NW_KEY}\n"
    f.write_text(_yaml(notify), encoding="utf-8")
    r = cli("watchlist", "import", str(f), env={"NEWSWATCH_WATCHLIST_ENV": "NW_*"})
    assert r.code == 0, r.err
