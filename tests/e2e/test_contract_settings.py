"""CONTRACT.md, "Configuration": the variables the contract's table names that
no other test sets through the CLI (NEWSWATCH_MAIL_FROM, NEWSWATCH_USER_AGENT,
NEWSWATCH_FETCH_TIMEOUT, NEWSWATCH_MAX_RESPONSE_BYTES, NEWSWATCH_CONFIG) and
their defaults; and "Commands": a traceback only with `--debug`.

Each through `newswatch` against a local HTTP server and a local SMTP server,
on both databases (the console-script cases on a SQLite file of their own)."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest

from newswatch import PROJECT_URL, __version__
from tests.conftest import Database
from tests.e2e.conftest import CLI, run_subprocess
from tests.support.httpserver import LocalHTTPServer, Request, Response
from tests.support.smtpserver import smtp_server

LOCAL = {"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1", "NEWSWATCH_PER_HOST_DELAY": "0"}


def _rss(server: LocalHTTPServer, padding: int = 0) -> str:
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
        f"<title>Pantsir near Pyongyang</title><link>{server.url('/a/1')}</link>"
        f"<description>North Korea fielded the Pantsir system.{' ' * padding}</description>"
        "</item></channel></rss>"
    )


def _watchlist(cli: CLI, tmp_path: Path, notify: str) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(f"watchlists:\n  - name: air\n    terms: [Pantsir]\n    notify:\n{notify}")
    assert cli("watchlist", "import", str(wl)).code == 0


def _source(cli: CLI, url: str) -> None:
    r = cli("source", "add", url, "--kind", "feed", "--name", "wire", "--alert-backlog")
    assert r.code == 0, r.err


@pytest.mark.parametrize("mail_from", ["alerts@newsroom.example", None], ids=["set", "default"])
def test_mail_from_is_the_sender_and_defaults_to_the_hostname(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path, mail_from: str | None
) -> None:
    _watchlist(cli, tmp_path, "      - email: analyst@example.org\n")
    _source(cli, http_server.serve("/feed.xml", _rss(http_server)))
    expected = mail_from or f"newswatch@{socket.gethostname()}"
    with smtp_server() as (handler, smtp_url):
        env = {**LOCAL, "NEWSWATCH_SMTP_URL": smtp_url}
        if mail_from:
            env["NEWSWATCH_MAIL_FROM"] = mail_from
        r = cli("crawl", env=env)
        assert r.code == 0, r.err
    [received] = handler.messages
    assert received.mail_from == expected
    assert received.message["From"] == expected
    assert received.rcpt_tos == ["analyst@example.org"]


@pytest.mark.parametrize("agent", ["analyst-desk/2.1 (+mailto:desk@example.org)", None])
def test_user_agent_is_sent_on_every_request(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path, agent: str | None
) -> None:
    """Feed fetches and webhook POSTs alike carry NEWSWATCH_USER_AGENT, by
    default `newswatch/<version> (+project URL)`."""

    def hook(req: Request) -> Response:
        return 200, {}, b"ok"

    _watchlist(cli, tmp_path, f"      - webhook: {http_server.route('/hook', hook)}\n")
    _source(cli, http_server.serve("/feed.xml", _rss(http_server)))
    env = {**LOCAL, **({"NEWSWATCH_USER_AGENT": agent} if agent else {})}
    assert cli("crawl", env=env).code == 0
    expected = agent or f"newswatch/{__version__} (+{PROJECT_URL})"
    sent = [(r.path, r.headers.get("User-Agent")) for r in http_server.requests]
    assert {p for p, _ in sent} >= {"/feed.xml", "/hook"}, sent
    assert all(ua == expected for _, ua in sent), sent


def test_fetch_timeout_bounds_one_fetch(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    def slow(req: Request) -> Response:
        time.sleep(3)
        return 200, {}, b"late"

    http_server.route("/slow.xml", slow)
    _source(cli, http_server.url("/slow.xml"))
    start = time.monotonic()
    r = cli("crawl", env={**LOCAL, "NEWSWATCH_FETCH_TIMEOUT": "0.5"})
    took = time.monotonic() - start
    assert r.code == 3 and "wire" in r.err and "timed out" in r.err, r.err
    assert took < 2.5, took
    [row] = [json.loads(x) for x in cli("source", "list", "--json").out.splitlines()]
    assert "timed out" in row["last_error"]


@pytest.mark.parametrize(("limit", "fails"), [(2_000, True), (20_000, False)])
def test_max_response_bytes_refuses_a_larger_body(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path, limit: int, fails: bool
) -> None:
    body = _rss(http_server, padding=5_000)
    assert 2_000 < len(body.encode()) < 20_000
    _source(cli, http_server.serve("/feed.xml", body))
    r = cli("crawl", env={**LOCAL, "NEWSWATCH_MAX_RESPONSE_BYTES": str(limit)})
    [row] = [json.loads(x) for x in cli("source", "list", "--json").out.splitlines()]
    if fails:
        assert r.code == 3 and row["items"] == 0 and row["last_error"], (r.err, row)
        assert str(limit) in row["last_error"] or "large" in row["last_error"], row
    else:
        assert r.code == 0 and row["items"] == 1 and row["last_error"] is None, (r.err, row)


def test_config_file_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """NEWSWATCH_CONFIG names the TOML file (keys: the variable names without
    NEWSWATCH_, lower case); the environment wins over the file."""
    from newswatch.cli import main

    for key in [k for k in os.environ if k.startswith("NEWSWATCH_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    from_file = tmp_path / "from-file.db"
    cfg = tmp_path / "nw.toml"
    cfg.write_text(f'database_url = "sqlite:///{from_file}"\nlog_format = "json"\n')
    monkeypatch.setenv("NEWSWATCH_CONFIG", str(cfg))
    assert main(["init"]) == 0
    assert from_file.exists() and not (tmp_path / "newswatch.db").exists()
    from_env = tmp_path / "from-env.db"
    monkeypatch.setenv("NEWSWATCH_DATABASE_URL", f"sqlite:///{from_env}")
    assert main(["init"]) == 0 and from_env.exists()
    monkeypatch.delenv("NEWSWATCH_DATABASE_URL")
    monkeypatch.setenv("NEWSWATCH_CONFIG", str(tmp_path / "no.toml"))
    capsys.readouterr()
    assert main(["init"]) == 1
    err = capsys.readouterr().err
    assert "not found" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow  # two console-script runs: ~3 s idle, ~11 s on a loaded 2-core machine
def test_a_traceback_only_with_debug(db: Database) -> None:
    """The console script: one line without `--debug`, Python's traceback with it."""
    env = {"NEWSWATCH_DATABASE_URL": db.url}
    plain = run_subprocess(["source", "remove", "nope"], env)
    assert plain.code == 1 and plain.out == ""
    assert plain.err.strip() == "newswatch: error: no source named 'nope'"
    debug = run_subprocess(["--debug", "source", "remove", "nope"], env)
    assert debug.code != 0 and "Traceback (most recent call last)" in debug.err
    assert "no source named 'nope'" in debug.err
