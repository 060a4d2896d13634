"""The admin CLI as a user runs it: init, source and watchlist commands, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Database
from tests.e2e.conftest import CLI, run_subprocess

WATCHLISTS = """\
watchlists:
  - name: air-defence
    terms:
      - Pantsir
      - term: SAM
        aliases: ["surface-to-air missile", "지대공 미사일", "地对空导弹", "ЗРК"]
        case_sensitive: true
      - query: 'Pantsir AND ("North Korea" OR DPRK)'
    exclude: ["BRICS Games"]
    languages: [en, ko, zh, ru]
    notify:
      - email: analyst@example.org
      - slack: ${SLACK_HOOK}
      - webhook: https://example.org/newswatch
        secret: s3cr3t-value-here
    digest: none
    stories: fold
    examples:
      match: ["North Korea fielded the Pantsir system"]
      no_match: ["Samuel Green said the same"]
  - name: brics
    terms: [BRICS, "브릭스", "金砖国家", "БРИКС"]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_init_is_idempotent(cli: CLI) -> None:
    first = cli("init")
    second = cli("init")
    assert first.code == 0 and second.code == 0
    assert "schema ready" in second.out


def test_source_add_list_remove(cli: CLI) -> None:
    r = cli(
        "source",
        "add",
        "https://www.understandingwar.org/rss.xml",
        "--kind",
        "feed",
        "--name",
        "isw",
        "--every",
        "30m",
    )
    assert r.code == 0, r.err
    r = cli(
        "source",
        "add",
        "https://www.csis.org/analysis",
        "--kind",
        "page",
        "--name",
        "csis",
        "--links",
        "article h3 a",
    )
    assert r.code == 0, r.err
    rows = [json.loads(line) for line in cli("source", "list", "--json").out.splitlines()]
    assert [(x["name"], x["kind"], x["every"], x["links"]) for x in rows] == [
        ("csis", "page", "15m", "article h3 a"),
        ("isw", "feed", "30m", None),
    ]
    table = cli("source", "list").out
    assert "last success" in table and "isw" in table
    assert cli("source", "remove", "isw").code == 0
    assert [json.loads(x)["name"] for x in cli("source", "list", "--json").out.splitlines()] == [
        "csis"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["source", "add", "ftp://example.org/feed"], "not an http(s) URL"),
        (["source", "add", "file:///etc/passwd"], "not an http(s) URL"),
        (["source", "add", "https://"], "has no host"),
        (
            ["source", "add", "https://x.org/f", "--kind", "video"],
            "must be one of feed, page, sitemap, spider",
        ),
        (["source", "add", "https://x.org/f", "--every", "soon"], "not a duration"),
        (["source", "remove", "nope"], "no source named 'nope'"),
        (["watchlist", "show", "nope"], "no watchlist named 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(cli: CLI, args: list[str], message: str) -> None:
    r = cli(*args)
    assert r.code != 0
    assert message in r.err
    assert len(r.err.strip().splitlines()) == 1 and "Traceback" not in r.err
    assert cli("source", "list", "--json").out == ""


def test_duplicate_source_name_is_refused(cli: CLI) -> None:
    assert cli("source", "add", "https://a.org/feed", "--kind", "feed", "--name", "a").code == 0
    r = cli("source", "add", "https://b.org/feed", "--kind", "feed", "--name", "a")
    assert r.code == 1 and "already exists" in r.err
    assert [json.loads(x)["url"] for x in cli("source", "list", "--json").out.splitlines()] == [
        "https://a.org/feed"
    ]


def test_source_opml_and_yaml_round_trip(cli: CLI, tmp_path: Path) -> None:
    cli("source", "add", "https://a.org/rss", "--kind", "feed", "--name", "a", "--every", "1h")
    cli("source", "add", "https://b.org/news", "--kind", "page", "--name", "b", "--links", "h2 a")
    before = cli("source", "list", "--json").out
    opml = write(tmp_path, "s.opml", cli("source", "export").out)
    yml = write(tmp_path, "s.yaml", cli("source", "export", "--format", "yaml").out)
    for path in (opml, yml):
        cli("source", "remove", "a")
        cli("source", "remove", "b")
        r = cli("source", "import", str(path))
        assert r.code == 0, r.err
        after = cli("source", "list", "--json").out
        keep = ("name", "url", "kind", "every", "links")
        assert [{k: json.loads(x)[k] for k in keep} for x in after.splitlines()] == [
            {k: json.loads(x)[k] for k in keep} for x in before.splitlines()
        ]


def test_import_foreign_opml_as_feeds(cli: CLI, tmp_path: Path) -> None:
    opml = write(
        tmp_path,
        "reader.opml",
        """<?xml version="1.0"?>
<opml version="2.0"><head><title>x</title></head><body>
<outline text="Think tanks">
  <outline text="38 North" type="rss" xmlUrl="https://www.38north.org/feed/" htmlUrl="https://www.38north.org"/>
</outline></body></opml>""",
    )
    assert cli("source", "import", str(opml)).code == 0
    rows = [json.loads(x) for x in cli("source", "list", "--json").out.splitlines()]
    assert [(r["name"], r["kind"], r["url"]) for r in rows] == [
        ("38 North", "feed", "https://www.38north.org/feed/")
    ]


def test_bad_opml_changes_nothing(cli: CLI, tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "bad.opml",
        """<opml version="2.0"><body>
<outline text="ok" xmlUrl="https://ok.org/feed"/>
<outline text="bad" xmlUrl="javascript:alert(1)"/></body></opml>""",
    )
    r = cli("source", "import", str(bad))
    assert r.code == 2 and "not an http(s) URL" in r.err
    assert cli("source", "list", "--json").out == ""


def test_watchlist_import_export_round_trip(cli: CLI, tmp_path: Path) -> None:
    path = write(tmp_path, "w.yaml", WATCHLISTS)
    r = cli("watchlist", "import", str(path))
    assert r.code == 0, r.err
    exported = cli("watchlist", "export").out
    assert "${SLACK_HOOK}" in exported and "s3cr3t-value-here" in exported
    assert exported.count("stories: fold") == 1 and exported.count("stories: each") == 1
    again = write(tmp_path, "again.yaml", exported)
    assert cli("watchlist", "import", str(again)).code == 0
    assert cli("watchlist", "export").out == exported
    from alerts.watchlist_files import parse_watchlists

    assert parse_watchlists(exported) == parse_watchlists(WATCHLISTS)


def test_watchlist_list_show_remove(cli: CLI, tmp_path: Path) -> None:
    cli("watchlist", "import", str(write(tmp_path, "w.yaml", WATCHLISTS)))
    rows = [json.loads(x) for x in cli("watchlist", "list", "--json").out.splitlines()]
    assert [(r["name"], r["terms"], r["queries"], r["recipients"]) for r in rows] == [
        ("air-defence", 2, 1, 3),
        ("brics", 4, 0, 0),
    ]
    shown = cli("watchlist", "show", "air-defence").out
    assert (
        "s3cr3t-value-here" not in shown and "Pantsir" in shown and "analyst@example.org" in shown
    )
    assert cli("watchlist", "remove", "brics").code == 0
    assert [json.loads(x)["name"] for x in cli("watchlist", "list", "--json").out.splitlines()] == [
        "air-defence"
    ]
    assert "brics" in cli("watchlist", "remove", "brics").err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("watchlists:\n  - name: a\n    terms: [x\n", "line 4"),
        ("watchlists:\n  - name: a\n    terms: [x]\n    colour: red\n", "unknown key 'colour'"),
        ("watchlists:\n  - name: a\n    terms: ['']\n", "empty term"),
        (
            "watchlists:\n  - name: a\n    terms: [x]\n  - name: a\n    terms: [y]\n",
            "duplicate watchlist name 'a'",
        ),
        (
            "watchlists:\n  - name: a\n    terms:\n      - query: '(Pantsir AND SAM'\n",
            "invalid query",
        ),
        (
            "watchlists:\n  - name: a\n    terms: [x]\n    notify:\n      - slack: ftp://x\n",
            "http(s) URL",
        ),
        ("watchlists:\n  - name: a\n    terms: [x]\n    digest: weekly\n", "digest must be"),
        ("watchlists:\n  - name: a\n    terms: [x]\n    languages: [English]\n", "ISO 639"),
        ("nothing: here\n", "'watchlists' list"),
    ],
)
def test_bad_watchlist_file(cli: CLI, tmp_path: Path, text: str, message: str) -> None:
    cli("watchlist", "import", str(write(tmp_path, "ok.yaml", WATCHLISTS)))
    before = cli("watchlist", "export").out
    r = cli("watchlist", "import", str(write(tmp_path, "bad.yaml", text)))
    assert r.code == 2, r
    assert message in r.err and len(r.err.strip().splitlines()) == 1
    assert cli("watchlist", "export").out == before


def test_reimport_keeps_recipient_ids(cli: CLI, db: Database, tmp_path: Path) -> None:
    from sqlalchemy import select

    from storage.tables import RecipientRow

    cli("watchlist", "import", str(write(tmp_path, "w.yaml", WATCHLISTS)))
    with db.session() as s:
        before = {(r.channel, r.target): r.id for r in s.scalars(select(RecipientRow))}
    cli("watchlist", "import", str(write(tmp_path, "w2.yaml", WATCHLISTS)))
    with db.session() as s:
        after = {(r.channel, r.target): r.id for r in s.scalars(select(RecipientRow))}
    assert before == after and len(after) == 3


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    r = run_subprocess(
        ["source", "list"],
        {"NEWSWATCH_DATABASE_URL": "postgresql+psycopg://u:hunter2@127.0.0.1:9/x"},
    )
    assert r.code == 1
    assert "database unavailable" in r.err and "hunter2" not in r.err
    assert len(r.err.strip().splitlines()) == 1


def test_console_script_default_sqlite_in_working_directory(tmp_path: Path) -> None:
    r = run_subprocess(["init"], {}, cwd=tmp_path)
    assert r.code == 0, r.err
    assert (tmp_path / "newswatch.db").exists()
    r = run_subprocess(["source", "add", "https://a.org/feed", "--kind", "feed"], {}, cwd=tmp_path)
    assert r.code == 0 and "added a.org" in r.out


def test_config_file(tmp_path: Path) -> None:
    db = tmp_path / "from-config.db"
    cfg = write(tmp_path, "nw.toml", f'database_url = "sqlite:///{db}"\n')
    r = run_subprocess(["--config", str(cfg), "init"], {}, cwd=tmp_path)
    assert r.code == 0, r.err
    assert db.exists() and not (tmp_path / "newswatch.db").exists()
    bad = write(tmp_path, "bad.toml", "fetch_timeout = 'soon'\n")
    r = run_subprocess(["--config", str(bad), "init"], {}, cwd=tmp_path)
    assert r.code == 1 and "NEWSWATCH_FETCH_TIMEOUT" in r.err


def test_source_add_detects_the_kind(cli: CLI, http_server: object) -> None:
    """Without --kind: a feed stays a feed; a page advertising a feed is stored
    as that feed; any other page is a listing page; an unreachable URL is
    added with its kind left to the first poll."""
    from tests.support.httpserver import LocalHTTPServer

    assert isinstance(http_server, LocalHTTPServer)
    feed = http_server.serve(
        "/rss.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        "<item><title>a</title><link>https://example.org/a</link></item></channel></rss>",
        content_type="text/xml",
    )
    home = http_server.serve(
        "/home",
        '<html><head><link rel="alternate" type="application/rss+xml" href="/rss.xml">'
        "</head><body>hi</body></html>",
        content_type="text/html",
    )
    listing = http_server.serve(
        "/analysis",
        '<html><body><h3><a href="/analysis/1">One</a></h3></body></html>',
        content_type="text/html",
    )
    env = {"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1"}
    for name, url in (("feed", feed), ("home", home), ("listing", listing)):
        r = cli("source", "add", url, "--name", name, env=env)
        assert r.code == 0, r.err
    gone = cli("source", "add", "http://127.0.0.1:9/nothing", "--name", "gone", env=env)
    assert gone.code == 0 and "could not detect the kind now" in gone.err
    rows = {x["name"]: x for x in map(json.loads, cli("source", "list", "--json").out.splitlines())}
    assert (rows["feed"]["kind"], rows["feed"]["url"]) == ("feed", feed)
    assert (rows["home"]["kind"], rows["home"]["url"]) == ("feed", feed)
    assert (rows["listing"]["kind"], rows["listing"]["url"]) == ("page", listing)
    assert rows["gone"]["kind"] is None
