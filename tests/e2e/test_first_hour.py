"""Issue #17, the first hour of a new analyst: intervals that mean what they
say, exit codes cron can see, settings checked up front, the archive
searchable. Each case of the issue through the CLI, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Database
from tests.e2e.conftest import CLI, Explain, source_rows
from tests.support.httpserver import LocalHTTPServer
from tests.support.smtpserver import smtp_server

PRIVATE = {"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1", "NEWSWATCH_PER_HOST_DELAY": "0"}

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>{base}/</link>
<item><title>Pantsir near Pyongyang</title><link>{base}/a/1</link><guid>1</guid>
  <description>North Korea fielded the Pantsir system.</description></item>
<item><title>판치르 배치</title><link>{base}/a/2</link><guid>2</guid>
  <description>북한이 지대공 미사일 판치르를 배치했다.</description></item>
<item><title>Weather</title><link>{base}/a/3</link><guid>3</guid>
  <description>Rain in Seoul, nothing else.</description></item>
</channel></rss>"""


def rows(cli: CLI, *args: str) -> list[dict[str, object]]:
    r = cli(*args, "--json")
    assert r.code == 0, r.err
    return [json.loads(x) for x in r.out.splitlines()]


def sources(cli: CLI) -> dict[str, dict[str, object]]:
    return {str(x["name"]): x for x in rows(cli, "source", "list")}


# -- 3. intervals ---------------------------------------------------------------


@pytest.mark.parametrize("bare", ["15", "90", "1", "0", "99999999999999"])
def test_every_without_unit_is_refused_with_a_suggestion(cli: CLI, bare: str) -> None:
    r = cli("source", "add", "https://example.org/feed", "--kind", "feed", "--every", bare)
    assert r.code == 2
    assert f"--every {bare}: give a unit" in r.err and len(r.err.splitlines()) == 1
    assert sources(cli) == {}


def test_every_with_unit_is_kept_and_shown_with_its_reason(cli: CLI) -> None:
    for name, every in (("a", "15m"), ("b", "1m"), ("c", "90s"), ("d", "1h30m")):
        r = cli(
            "source",
            "add",
            f"https://example.org/{name}",
            "--kind",
            "feed",
            "--name",
            name,
            "--every",
            every,
        )
        assert r.code == 0, r.err
    got = sources(cli)
    assert {k: v["every"] for k, v in got.items()} == {
        "a": "15m",
        "b": "1m",
        "c": "1m30s",
        "d": "1h30m",
    }
    assert {v["interval"] for v in got.values()} == {"15m", "1m", "1m30s", "1h30m"}
    assert {v["interval_reason"] for v in got.values()} == {"as set"}
    table = cli("source", "list").out
    assert "in force" in table and "why" in table and "next poll" in table


def test_edit_every_reschedules_and_renames(cli: CLI) -> None:
    cli("source", "add", "https://example.org/f", "--kind", "feed", "--name", "f", "--every", "1d")
    before = datetime.now(UTC)
    r = cli("source", "edit", "f", "--every", "10m", "--name", "g", "--links", "a.story")
    assert r.code == 0, r.err
    got = sources(cli)
    assert list(got) == ["g"]
    g = got["g"]
    assert g["every"] == "10m" and g["links"] == "a.story" and g["interval"] == "10m"
    next_poll = datetime.fromisoformat(str(g["next_poll"]))
    assert next_poll <= before + timedelta(minutes=10, seconds=5)
    # a longer interval never pushes an already due poll further away
    assert cli("source", "edit", "g", "--every", "2d").code == 0
    assert datetime.fromisoformat(str(sources(cli)["g"]["next_poll"])) == next_poll


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "--every", "5m"), "no source named 'nope'"),
        (("f",), "nothing to change"),
        (("f", "--every", "5"), "give a unit"),
        (("f", "--every", "10s"), "must be between"),
        (("f", "--name", "taken"), "already exists"),
        (("f", "--links", "a[["), "selector"),
    ],
)
def test_edit_refuses_bad_input_and_changes_nothing(
    cli: CLI, args: tuple[str, ...], message: str
) -> None:
    cli("source", "add", "https://example.org/f", "--kind", "feed", "--name", "f", "--every", "1h")
    cli("source", "add", "https://example.org/t", "--kind", "feed", "--name", "taken")
    before = sources(cli)
    r = cli("source", "edit", *args)
    assert r.code != 0 and message in r.err, r.err
    assert sources(cli) == before


def test_disable_and_enable(cli: CLI, http_server: LocalHTTPServer) -> None:
    body = RSS.format(base="http://x").encode()
    url = http_server.route(
        "/f.xml", lambda req: (200, {"Content-Type": "application/rss+xml"}, body)
    )
    cli("source", "add", url, "--kind", "feed", "--name", "f")
    assert cli("source", "disable", "f").code == 0
    f = sources(cli)["f"]
    assert f["enabled"] is False and f["interval_reason"] == "disabled"
    r = cli("crawl", env=PRIVATE)
    assert "crawled 0 sources" in r.out and http_server.hits("/f.xml") == []
    assert cli("source", "enable", "f").code == 0
    assert sources(cli)["f"]["enabled"] is True
    r = cli("crawl", env=PRIVATE)
    assert r.code == 0 and "1 polled" in r.out, r.out + r.err
    assert cli("source", "disable", "missing").code == 1


def test_backoff_is_the_reason_after_failures(
    cli: CLI, db: Database, explain: Explain, http_server: LocalHTTPServer
) -> None:
    """Two crawls, two failures. Each crawl must have polled and recorded its
    failure (exit 3, every polled source failed): a crawl stopped before that
    (an unreachable database, e.g. PostgreSQL out of connections while other
    suites share it, exits 1) leaves one failure, and its own message is the
    one to read, not the reason's."""
    cli("source", "add", http_server.url("/gone.xml"), "--kind", "feed", "--name", "gone")
    for n in (1, 2):
        r = cli("crawl", "-v", env=PRIVATE)
        explain("diagnostics", n, r.out, r.err, source_rows(db))  # shown if it fails
        assert r.code == 3 and "1 failed" in r.out, r.out + r.err
        assert len(http_server.hits("/gone.xml")) == n
    assert sources(cli)["gone"]["interval_reason"] == "backoff after 2 failures"


# -- 4. exit codes of crawl --------------------------------------------------------


def test_crawl_exits_3_when_every_source_failed(cli: CLI, http_server: LocalHTTPServer) -> None:
    for name in ("a", "b"):
        cli("source", "add", http_server.url(f"/{name}.xml"), "--kind", "feed", "--name", name)
    r = cli("crawl", env=PRIVATE)
    assert r.code == 3, r.out + r.err
    assert "2 failed" in r.out and "all 2 polled sources failed" in r.err


def test_crawl_exits_0_when_some_sources_failed(cli: CLI, http_server: LocalHTTPServer) -> None:
    base = http_server.url("").rstrip("/")
    ok = http_server.route(
        "/ok.xml",
        lambda req: (200, {"Content-Type": "application/rss+xml"}, RSS.format(base=base).encode()),
    )
    cli("source", "add", ok, "--kind", "feed", "--name", "ok")
    cli("source", "add", http_server.url("/gone.xml"), "--kind", "feed", "--name", "gone")
    r = cli("crawl", env=PRIVATE)
    assert r.code == 0 and "1 failed" in r.out, r.out + r.err


def test_crawl_exits_0_with_no_sources_and_1_for_a_missing_one(cli: CLI) -> None:
    assert cli("crawl").code == 0
    r = cli("crawl", "--source", "missing")
    assert r.code == 1 and "no source named 'missing'" in r.err


# -- 5. settings checked up front ------------------------------------------------------


def test_check_passes_on_a_good_setup(cli: CLI, tmp_path: Path) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(
        "watchlists:\n  - name: w\n    terms: [Pantsir]\n"
        "    notify:\n      - email: a@example.org\n      - slack: ${HOOK}\n",
        encoding="utf-8",
    )
    assert cli("watchlist", "import", str(wl)).code == 0
    with smtp_server() as (handler, url):
        r = cli("check", env={"NEWSWATCH_SMTP_URL": url, "HOOK": "https://hooks.slack.com/T/B/x"})
        assert handler.messages == []  # no mail sent
    assert r.code == 0, r.out + r.err
    lines = r.out.splitlines()
    assert [line.split()[0] for line in lines] == ["OK"] * 5, r.out
    assert [line.split()[1] for line in lines] == [
        "configuration:",
        "database:",
        "smtp:",
        "recipients:",
        "watchlists:",
    ]


@pytest.mark.parametrize(
    ("target", "env", "message"),
    [
        ("${UNSET_HOOK}", {}, "UNSET_HOOK is not set"),
        ("${HOOK}", {"HOOK": "https://evil.example.net/hook"}, "refused"),
        ("https://attacker.example.com/services/x", {}, "refused"),
    ],
)
def test_check_fails_on_a_recipient_delivery_would_refuse(
    cli: CLI, tmp_path: Path, target: str, env: dict[str, str], message: str
) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(
        f"watchlists:\n  - name: w\n    terms: [x]\n    notify:\n      - slack: {target}\n",
        encoding="utf-8",
    )
    assert cli("watchlist", "import", str(wl)).code == 0
    r = cli("check", env=env)
    assert r.code == 1
    failed = [line for line in r.out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1 and failed[0].startswith("FAIL recipients: w: slack:")
    assert message in failed[0]
    assert "evil.example.net/hook" not in r.out  # a URL is shown masked


def test_check_smtp_unreachable_and_password_never_shown(cli: CLI) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = cli("check", env={"NEWSWATCH_SMTP_URL": f"smtp://u:hunter2pass@127.0.0.1:{port}"})
    assert r.code == 1
    assert any(x.startswith("FAIL smtp:") for x in r.out.splitlines()), r.out
    assert "hunter2pass" not in r.out + r.err


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("NEWSWATCH_SMPT_URL", "NEWSWATCH_SMTP_URL"),
        ("NEWSWATCH_DATABASE_ULR", "NEWSWATCH_DATABASE_URL"),
        ("NEWSWATCH_FETCH_TIMOUT", "NEWSWATCH_FETCH_TIMEOUT"),
    ],
)
def test_mistyped_variable_is_warned_with_did_you_mean(
    cli: CLI, name: str, suggestion: str
) -> None:
    r = cli("check", env={name: "x"})
    assert r.code == 0, r.out  # a warning, not a failure
    assert (
        f"WARN configuration: unknown variable {name} is ignored; did you mean {suggestion}?"
        in (r.out)
    )


def test_unknown_variable_without_a_close_name(cli: CLI) -> None:
    r = cli("check", env={"NEWSWATCH_ZZZ_QQQ": "x"})
    assert "unknown variable NEWSWATCH_ZZZ_QQQ is ignored" in r.out and "did you mean" not in r.out


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nw.db", "not a database URL (a file? sqlite:///nw.db)"),
        ("", "not a database URL"),
        ("mysql://u:secretpw@h/db", "unsupported database 'mysql'"),
        ("://nothing", "not a database URL"),
    ],
)
def test_bad_database_url_says_what_a_valid_one_looks_like(
    cli: CLI, value: str, message: str
) -> None:
    r = cli("source", "list", env={"NEWSWATCH_DATABASE_URL": value})
    assert r.code == 1 and message in r.err, r.err
    assert "postgresql+psycopg://user@host/db" in r.err and "secretpw" not in r.err
    assert len(r.err.splitlines()) == 1


@pytest.mark.parametrize(
    "value", ["smtp://", "http://mail.example.org", "smtp://host:notaport", "mail.example.org"]
)
def test_bad_smtp_url_fails_at_start_not_at_delivery(cli: CLI, value: str) -> None:
    r = cli("source", "list", env={"NEWSWATCH_SMTP_URL": value})
    assert r.code == 1 and r.err.startswith("newswatch: error: NEWSWATCH_SMTP_URL:"), r.err


def test_postgres_scheme_is_accepted_as_postgresql() -> None:
    from newswatch.config import load_settings

    for scheme in ("postgres", "postgresql", "POSTGRES"):
        s = load_settings(env={"NEWSWATCH_DATABASE_URL": f"{scheme}://u@h/db"})
        assert s.database_url == "postgresql+psycopg://u@h/db"


def test_uninitialised_database_says_run_init(tmp_path: Path) -> None:
    from tests.e2e.conftest import run_subprocess

    env = {"NEWSWATCH_DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}
    for args in (["source", "list"], ["matches"], ["crawl"]):
        r = run_subprocess(args, env)
        assert r.code == 1 and "run `newswatch init`" in r.err, (args, r.err)
        assert "no such table" not in r.err
    r = run_subprocess(["check"], env)
    assert r.code == 1 and "FAIL database:" in r.out and "run `newswatch init`" in r.out


# -- 9. search and show --------------------------------------------------------------

SEARCH_RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>t</title><link>{base}/</link>
<item><title>Pantsir near Pyongyang</title><link>{base}/s/1</link><guid>1</guid>
  <description>North Korea fielded the Pantsir system near the capital.</description></item>
<item><title>판치르 배치</title><link>{base}/s/2</link><guid>2</guid>
  <description>북한이 지대공 미사일 판치르를 평양 인근에 배치했다.</description></item>
<item><title>俄罗斯向伊朗运送地对空导弹</title><link>{base}/s/3</link><guid>3</guid>
  <description>莫斯科向伊朗运送了地对空导弹。</description></item>
<item><title>Samuel Green on the same sample</title><link>{base}/s/4</link><guid>4</guid>
  <description>Nothing to see: Samsung, SAMPLE, same. Pantsirnaya is not here.</description></item>
<item><title>Панцирь черепахи</title><link>{base}/s/5</link><guid>5</guid>
  <description>Панцирь защищает черепаху.</description></item>
</channel></rss>"""


def stored(cli: CLI, http_server: LocalHTTPServer) -> str:
    base = http_server.url("").rstrip("/")
    body = SEARCH_RSS.format(base=base).encode()
    url = http_server.route(
        "/s.xml", lambda req: (200, {"Content-Type": "application/rss+xml"}, body)
    )
    assert cli("source", "add", url, "--kind", "feed", "--name", "s").code == 0
    r = cli("crawl", env=PRIVATE)
    assert r.code == 0 and "5 new items" in r.out, r.out + r.err
    return base


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Pantsir", ["/s/1"]),  # word boundary: not "Pantsirnaya"
        ("판치르", ["/s/2"]),  # Korean substring inside a word (particle attached)
        ("地对空导弹", ["/s/3"]),  # Chinese without spaces
        ('"North Korea" NEAR/5 Pantsir', ["/s/1"]),
        ("Pantsir OR 판치르", ["/s/1", "/s/2"]),
        ("Панцирь AND NOT черепах*", []),
        ("SAM", []),  # capitals-only: case-sensitive, so not Samsung/SAMPLE/same
        ("nothing-here-at-all", []),
    ],
)
def test_search_uses_the_watchlist_rules(
    cli: CLI, http_server: LocalHTTPServer, query: str, expected: list[str]
) -> None:
    base = stored(cli, http_server)
    got = rows(cli, "search", query)
    assert sorted(str(x["url"]).removeprefix(base) for x in got) == expected, got


def test_search_filters_and_limit(cli: CLI, http_server: LocalHTTPServer) -> None:
    stored(cli, http_server)
    assert len(rows(cli, "search", "Pantsir OR 판치르 OR 地对空导弹", "--limit", "2")) == 2
    assert rows(cli, "search", "Pantsir", "--source", "other") == []
    assert len(rows(cli, "search", "Pantsir", "--source", "s", "--since", "1h")) == 1
    assert len(rows(cli, "search", "판치르", "--language", "ko")) == 1
    assert rows(cli, "search", "판치르", "--language", "en") == []


@pytest.mark.parametrize("query", ["", "AND", '"unclosed', "(a OR b", "NEAR/5"])
def test_search_refuses_a_bad_query_in_one_line(cli: CLI, query: str) -> None:
    r = cli("search", query)
    assert r.code == 2 and len(r.err.splitlines()) == 1, r.err


def test_show_prints_text_and_matches(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text("watchlists:\n  - name: air\n    terms: [Pantsir]\n", encoding="utf-8")
    assert cli("watchlist", "import", str(wl)).code == 0
    base = stored(cli, http_server)
    item_id = str(rows(cli, "search", "Pantsir")[0]["id"])
    for ref in (item_id, f"{base}/s/1"):
        r = cli("show", ref)
        assert r.code == 0, r.err
        assert "Pantsir near Pyongyang" in r.out and "match:     air: Pantsir" in r.out
        assert "fielded the Pantsir system" in r.out
    r = cli("show", "999999")
    assert r.code == 1 and "no stored item" in r.err


# -- 8. small things ---------------------------------------------------------------


def test_help_shows_no_bool_metavar_for_flags(cli: CLI) -> None:
    r = cli("--help")
    assert r.code == 0
    for flag in ("--debug", "--version"):
        line = next(x for x in r.out.splitlines() if flag in x)
        assert "<bool>" not in line, line


@pytest.mark.parametrize("since", ["0", "0s", "0d", "0h0m"])
def test_matches_since_zero_is_refused_not_everything(cli: CLI, since: str) -> None:
    r = cli("matches", "--since", since)
    assert r.code == 2 and "is zero" in r.err


# -- 6. duplicate terms ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("terms", "duplicate"),
    [
        (
            "[SAM, {term: ЗРК, aliases: [SAM]}]",
            "'SAM' of term 'ЗРК' duplicates 'SAM' of term 'SAM'",
        ),
        ("[Pantsir, pantsir]", "'pantsir' of term 'pantsir' duplicates"),
        ("[{term: 판치르, aliases: [판치르]}]", "'판치르' of term '판치르' duplicates"),
        ("[ＳＡＭ, SAM]", "'SAM' of term 'SAM' duplicates 'ＳＡＭ'"),
    ],
)
def test_duplicate_terms_are_warned_and_still_imported(
    cli: CLI, tmp_path: Path, terms: str, duplicate: str
) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(f"watchlists:\n  - name: w\n    terms: {terms}\n", encoding="utf-8")
    for args in (("watchlist", "test", str(wl)), ("watchlist", "import", str(wl))):
        r = cli(*args)
        assert r.code == 0, r.err
        assert "warning: w.yaml: watchlist 'w':" in r.err and duplicate in r.err, r.err


@pytest.mark.parametrize(
    "terms", ["[SAM, sam]", "[Pantsir, Pantsyr]", "[SAM, Sam]", "[Панцир*, Панцирь]"]
)
def test_distinct_spellings_are_not_warned(cli: CLI, tmp_path: Path, terms: str) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(f"watchlists:\n  - name: w\n    terms: {terms}\n", encoding="utf-8")
    r = cli("watchlist", "test", str(wl))
    assert r.code == 0 and "warning" not in r.err, r.err


# -- 7. OPML from real readers -------------------------------------------------------

FEEDLY = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0"><head><title>Feedly export</title></head><body>
  <outline text="Defence" title="Defence">
    <outline type="rss" text="News" title="News" xmlUrl="https://a.example/rss" htmlUrl="https://a.example"/>
    <outline text="Korea" title="Korea">
      <outline type="rss" text="News" title="News" xmlUrl="https://b.example/rss"/>
    </outline>
  </outline>
  <outline text="국방" title="국방">
    <outline type="rss" text="News" title="News" xmlUrl="https://c.example/rss"/>
    <outline type="rss" text="News (2)" title="News (2)" xmlUrl="https://d.example/rss"/>
  </outline>
  <outline type="rss" text="Loose" title="Loose" xmlUrl="https://e.example/rss"/>
</body></opml>"""


def test_feedly_export_with_same_titles_and_folders(cli: CLI, tmp_path: Path) -> None:
    f = tmp_path / "feedly.opml"
    f.write_text(FEEDLY, encoding="utf-8")
    r = cli("source", "import", str(f))
    assert r.code == 0, r.err
    assert "5 added" in r.out
    assert r.err.count("warning: feedly.opml: a second source named 'News'") == 2, r.err
    got = sources(cli)
    assert {n: (v["url"], v["tags"]) for n, v in got.items()} == {
        "News": ("https://a.example/rss", ["Defence"]),
        "News (3)": ("https://b.example/rss", ["Defence", "Korea"]),
        "News (4)": ("https://c.example/rss", ["국방"]),
        "News (2)": ("https://d.example/rss", ["국방"]),
        "Loose": ("https://e.example/rss", []),
    }
    assert sorted(x["name"] for x in rows(cli, "source", "list", "--tag", "defence")) == [
        "News",
        "News (3)",
    ]
    assert [x["name"] for x in rows(cli, "source", "list", "--tag", "Korea")] == ["News (3)"]
    assert rows(cli, "source", "list", "--tag", "nothing") == []
    # the tags survive an export and a re-import, in both formats
    for fmt in ("yaml", "opml"):
        out = cli("source", "export", "--format", fmt).out
        again = tmp_path / f"again.{fmt}"
        again.write_text(out, encoding="utf-8")
        r = cli("source", "import", str(again))
        assert r.code == 0 and "5 updated" in r.out and "warning" not in r.err, r.out + r.err
        assert {n: v["tags"] for n, v in sources(cli).items()} == {
            n: v["tags"] for n, v in got.items()
        }


def test_a_url_under_a_second_name_is_warned(cli: CLI, tmp_path: Path) -> None:
    assert cli("source", "add", "https://a.example/rss", "--kind", "feed", "--name", "a").code == 0
    r = cli("source", "add", "https://a.example/rss", "--kind", "feed", "--name", "b")
    assert r.code == 0 and "https://a.example/rss is already a source as 'a'" in r.err, r.err
    f = tmp_path / "s.yaml"
    f.write_text("sources:\n  - {name: c, url: 'https://a.example/rss'}\n", encoding="utf-8")
    r = cli("source", "import", str(f))
    assert r.code == 0 and "already a source as 'a'" in r.err
    r = cli("source", "import", str(f))  # the same name again: an update, no warning
    assert "polls it twice" in r.err  # c is new-named vs a and b, still a repeat of their URL


def test_old_files_with_seconds_still_import(cli: CLI, tmp_path: Path) -> None:
    f = tmp_path / "old.yaml"
    f.write_text("sources:\n  - {name: o, url: 'https://o.example/rss', every: 900}\n", "utf-8")
    assert cli("source", "import", str(f)).code == 0
    assert sources(cli)["o"]["every"] == "15m"
    g = tmp_path / "old.opml"
    g.write_text(
        '<opml version="2.0"><body><outline text="p" xmlUrl="https://p.example/rss" every="600"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    assert cli("source", "import", str(g)).code == 0
    assert sources(cli)["p"]["every"] == "10m"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_run_logs_the_checks_at_start_and_still_starts(
    cli: CLI, log_format: str, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.support.env import clean_env

    url = os.environ["NEWSWATCH_DATABASE_URL"]  # set by the cli fixture
    env = clean_env(NEWSWATCH_DATABASE_URL=url, NEWSWATCH_SMPT_URL="smtp://x",
                    NEWSWATCH_LOG_FORMAT=log_format)  # fmt: skip
    exe = str(Path(sys.executable).parent / "newswatch")
    log = tmp_path / "log"
    with log.open("w") as out:
        p = subprocess.Popen([exe, "run"], env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while "daemon_started" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 0, log.read_text()
    text = log.read_text()
    assert "daemon_started" in text, text
    found = [line for line in text.splitlines() if "startup_check" in line]
    assert any("configuration" in x and "did you mean NEWSWATCH_SMTP_URL" in x for x in found)
    assert any("smtp" in x and "NEWSWATCH_SMTP_URL is not set" in x for x in found), found
    if log_format == "json":
        import json

        assert all(json.loads(x)["event"] == "startup_check" for x in found)


# -- 6. case_sensitive per alias --------------------------------------------------------

PER_ALIAS = """\
watchlists:
  - name: w
    terms:
      - term: Pantsir
        aliases:
          - Pantsyr
          - {alias: Панцирь, case_sensitive: true}
          - 판치르
    examples:
      match: ["Панцирь прикрыл аэродром", "PANTSIR", "pantsyr"]
      no_match: ["панцирь черепахи", "ПАНЦИРЬ"]
"""


def test_case_sensitive_per_alias_survives_storage_and_export(cli: CLI, tmp_path: Path) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(PER_ALIAS, encoding="utf-8")
    r = cli("watchlist", "test", str(wl))
    assert r.code == 0 and "5 passed, 0 failed" in r.out, r.out + r.err
    assert cli("watchlist", "import", str(wl)).code == 0  # runs the examples too
    assert "no match" in cli("match", "-w", "w", "панцирь черепахи").out
    assert "matched Pantsir" in cli("match", "-w", "w", "Панцирь прикрыл аэродром").out
    exported = cli("watchlist", "export", "w").out
    assert "alias: Панцирь" in exported and "case_sensitive: true" in exported, exported
    again = tmp_path / "again.yaml"
    again.write_text(exported, encoding="utf-8")
    r = cli("watchlist", "test", str(again))
    assert r.code == 0 and "5 passed" in r.out, r.out + r.err


@pytest.mark.parametrize(
    "aliases",
    [
        "[{alias: X, case_sensitive: maybe}]",
        "[{case_sensitive: true}]",
        "[{alias: X, case: true}]",
        "[{alias: '', case_sensitive: true}]",
    ],
)
def test_bad_alias_entries_are_refused(cli: CLI, tmp_path: Path, aliases: str) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(
        f"watchlists:\n  - name: w\n    terms:\n      - term: T\n        aliases: {aliases}\n",
        encoding="utf-8",
    )
    r = cli("watchlist", "test", str(wl))
    assert r.code == 2 and len(r.err.splitlines()) == 1 and "aliases" in r.err, r.err
