"""CONTRACT.md, "Install and run", and the README's quick start: one command
(`make run`) sets up and runs the main job on the embedded default (a SQLite
file `newswatch.db` in the working directory), from the starter files
`examples/sources.opml` and `examples/watchlists.yaml`, which load cleanly
(no error, no warning) and whose `examples:` pass `watchlist test`.

The recipe is read from the Makefile itself, so the test follows it; each of
its commands runs through the real `newswatch` console script, with the
starter OPML's addresses pointed at a local server (nothing outside
127.0.0.0/8 is contacted)."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import CLI, run_subprocess
from tests.support.httpserver import LocalHTTPServer

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"


def test_starter_files_load_cleanly(cli: CLI) -> None:
    for args in (
        ("init",),
        ("source", "import", str(EXAMPLES / "sources.opml")),
        ("watchlist", "test", str(EXAMPLES / "watchlists.yaml")),
        ("watchlist", "import", str(EXAMPLES / "watchlists.yaml")),
    ):
        r = cli(*args)
        assert (r.code, r.err) == (0, ""), (args, r.err)
    sources = [json.loads(x) for x in cli("source", "list", "--json").out.splitlines()]
    assert len(sources) >= 10 and all(s["url"].startswith("https://") for s in sources)
    assert {s["kind"] for s in sources} <= {"feed", "page"}
    names = [json.loads(x)["name"] for x in cli("watchlist", "list", "--json").out.splitlines()]
    assert names == ["air-defence", "brics"]
    again = cli("source", "import", str(EXAMPLES / "sources.opml"))  # `make run` twice
    assert (again.code, again.err) == (0, "") and f"0 added, {len(sources)} updated" in again.out


def _run_recipe() -> list[list[str]]:
    """The commands of the Makefile's `run` target, as argument lists."""
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    block = re.search(r"^run:.*\n((?:\t.*\n)+)", text, re.M)
    assert block, "no run target in the Makefile"
    lines = [line.strip() for line in block.group(1).splitlines()]
    assert all(line.startswith("$(BIN)/newswatch ") for line in lines), lines
    return [line.split()[1:] for line in lines]


def _localised_examples(base: str, server: LocalHTTPServer, into: Path) -> int:
    """examples/ copied into `into` with each source's address at the local
    server; every feed carries one recent item that the starter watchlists match."""
    shutil.copytree(EXAMPLES, into / "examples")
    opml = into / "examples" / "sources.opml"
    now = datetime.now(UTC)
    count = 0

    def local(m: re.Match[str]) -> str:
        nonlocal count
        line = m.group(0)
        title = re.search(r'title="([^"]+)"', line)
        assert title, line
        name = title.group(1)
        count += 1
        if 'kind="page"' in line:
            server.serve(f"/{name}", f'<html><body><h3><a href="/{name}/a">{name}</a></h3>'
                         "</body></html>", "text/html")  # fmt: skip
            server.serve(
                f"/{name}/a",
                f"<html><head><title>Pantsir near Pyongyang ({name})</title></head><body>"
                f"<article><h1>Pantsir near Pyongyang ({name})</h1><p>North Korea fielded "
                "the Pantsir system near Pyongyang, officials said on Monday.</p></article>"
                "</body></html>",
                "text/html",
            )
        else:
            server.serve(
                f"/{name}",
                '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item>'
                f"<title>BRICS summit opens ({name})</title><link>{base}/{name}/1</link>"
                f"<pubDate>{format_datetime(now - timedelta(hours=1))}</pubDate>"
                "<description>Leaders of BRICS met in Kazan.</description></item>"
                "</channel></rss>",
                "application/rss+xml",
            )
        return re.sub(r'(xmlUrl|url)="https?://[^"]+"', rf'\1="{base}/{name}"', line)

    text = opml.read_text(encoding="utf-8")
    opml.write_text(re.sub(r"<outline [^>]*(xmlUrl|url)=[^>]*/>", local, text), encoding="utf-8")
    return count


@pytest.mark.slow  # six console-script runs: ~8 s idle on 2 cores, ~25 s loaded
def test_make_run_recipe_on_the_default_sqlite_file(
    http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    base = http_server.url("").rstrip("/")
    count = _localised_examples(base, http_server, tmp_path)
    env = {"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1", "NEWSWATCH_PER_HOST_DELAY": "0"}
    for args in _run_recipe():
        r = run_subprocess(args, env, cwd=tmp_path)
        assert r.code == 0, (args, r.out, r.err)
        if args[0] != "crawl":  # the crawl may say which alerts wait for configuration
            assert r.err == "", (args, r.err)
    assert (tmp_path / "newswatch.db").is_file()
    assert f"{count} polled" in r.out and "0 failed" in r.out, r.out
    # the README's next commands
    listed = run_subprocess(["source", "list", "--json"], env, cwd=tmp_path)
    rows = [json.loads(x) for x in listed.out.splitlines()]
    assert len(rows) == count and all(x["last_error"] is None for x in rows), rows
    matched = run_subprocess(["matches", "--since", "2d", "--json"], env, cwd=tmp_path)
    found = {json.loads(x)["watchlist"] for x in matched.out.splitlines()}
    assert found == {"air-defence", "brics"}, matched.out


def test_ci_runs_the_readme_test_command() -> None:
    """README: one command sets up and passes the tests (`make test-all`),
    and `.ci/run` calls that command."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tests_section = readme.split("## Tests (one command)", 1)[1].split("\n## ", 1)[0]
    command = re.search(r"```sh\n(.+)\n```", tests_section)
    assert command and command.group(1).strip() == "make test-all"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^make test-all\b", ci, re.M)
    assert re.search(r"^test-all:", (ROOT / "Makefile").read_text(encoding="utf-8"), re.M)
