"""Hostile input files, intervals and names through the CLI (issue #16), on
SQLite and PostgreSQL.

Each class of input is several payloads. Every one must give exit 2 and a
one-line error naming the problem (never exit 70, never a traceback), in
bounded time and memory, and leave the database as it was.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import CLI

GOOD_WATCHLIST = "watchlists:\n  - name: keep\n    terms: [Pantsir]\n"
GOOD_SOURCES = "sources:\n  - name: keep\n    url: https://example.org/feed\n"


def _nested_aliases(levels: int = 9) -> str:
    lines = ["watchlists:", "  - name: w0", "    terms: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    for n in range(1, levels):
        lines += [f"  - name: w{n}", f"    terms: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]"]
    return "\n".join(lines) + "\n"


def _reused_alias_list(terms: int = 20_000, aliases: int = 2_000) -> str:
    """One anchored list of `aliases` aliases reused by `terms` terms: 40 M aliases."""
    names = ", ".join(f"a{i}" for i in range(aliases))
    head = f"watchlists:\n  - name: w\n    terms:\n      - {{term: t0, aliases: &all [{names}]}}\n"
    return head + "".join(f"      - {{term: t{i}, aliases: *all}}\n" for i in range(1, terms))


def _nested_sources(levels: int = 9) -> str:
    lines = ["x0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    for n in range(1, levels):
        lines.append(f"x{n}: &a{n} [" + ", ".join([f"*a{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\nsources: []\n"


DEEP = 20_000

WATCHLIST_FILES: list[tuple[str, str, str]] = [
    # anchors and aliases, in every shape
    ("alias-nested", _nested_aliases(), "anchors and aliases"),
    ("alias-reused-list", _reused_alias_list(), "anchors and aliases"),
    (
        "alias-merge-key",
        "base: &b {terms: [x]}\nwatchlists:\n  - <<: *b\n    name: a\n",
        "anchors and aliases",
    ),
    ("anchor-scalar", "watchlists:\n  - name: &n a\n    terms: [x]\n", "anchors and aliases"),
    # nesting
    ("deep-flow-lists", "watchlists: " + "[" * DEEP + "]" * DEEP + "\n", "nested more than"),
    (
        "deep-flow-maps",
        "watchlists: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n",
        "nested more than",
    ),
    (
        "deep-block",
        "watchlists:\n" + "".join("  " * i + "- \n" for i in range(1, 80)),
        "nested more than",
    ),
    # characters no database stores
    ("nul-in-term", 'watchlists:\n  - name: a\n    terms: ["a\\0b"]\n', "U+0000"),
    ("bell-in-name", 'watchlists:\n  - name: "a\\ab"\n    terms: [x]\n', "U+0007"),
    ("lone-surrogate", 'watchlists:\n  - name: a\n    terms: ["a\\ud800"]\n', "U+D800"),
    ("lone-low-surrogate", 'watchlists:\n  - name: a\n    exclude: ["\\udfff"]\n', "U+DFFF"),
    # types
    ("list-for-name", "watchlists:\n  - name: [a, b]\n    terms: [x]\n", "needs a 'name'"),
    ("map-for-term", "watchlists:\n  - name: a\n    terms: [{x: 1}]\n", "exactly one of"),
    ("list-in-term", "watchlists:\n  - name: a\n    terms: [[x, y]]\n", "a term is text"),
    (
        "map-for-aliases",
        "watchlists:\n  - name: a\n    terms: [{term: x, aliases: {b: c}}]\n",
        "list",
    ),
    (
        "list-for-digest",
        "watchlists:\n  - name: a\n    terms: [x]\n    digest: [daily]\n",
        "digest",
    ),
    (
        "map-for-languages",
        "watchlists:\n  - name: a\n    terms: [x]\n    languages: {en: 1}\n",
        "list",
    ),
    (
        "int-for-email",
        "watchlists:\n  - name: a\n    terms: [x]\n    notify: [{email: 5}]\n",
        "email",
    ),
    ("date-for-name", "watchlists:\n  - name: 2025-01-01\n    terms: [x]\n", "needs a 'name'"),
    # terms that normalise to nothing (each would stop every crawl)
    ("term-dash", "watchlists:\n  - name: a\n    terms: ['-']\n", "no letter"),
    ("term-stars", "watchlists:\n  - name: a\n    terms: ['**']\n", "no letter"),
    ("term-zwsp", 'watchlists:\n  - name: a\n    terms: ["\\u200b"]\n', "no letter"),
    ("term-soft-hyphen", 'watchlists:\n  - name: a\n    terms: ["\\u00ad"]\n', "no letter"),
    ("term-bom", 'watchlists:\n  - name: a\n    terms: ["\\ufeff"]\n', "no letter"),
    ("query-atom-dash", "watchlists:\n  - name: a\n    terms: [{query: 'x AND -'}]\n", "no letter"),
    # size
    ("too-large", "watchlists:\n  - name: a\n    terms: [x]\n" + "#" * (9 << 20) + "\n", "larger"),
]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    return path


def _refused(cli: CLI, args: list[str], message: str) -> None:
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = cli(*args)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert r.code == 2, (r.code, r.err[-500:])
    assert message.lower() in r.err.lower(), r.err
    assert "Traceback" not in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert time.monotonic() - started < 10
    assert grown_mb < 200, grown_mb


@pytest.mark.parametrize(
    ("name", "text", "message"), WATCHLIST_FILES, ids=[w[0] for w in WATCHLIST_FILES]
)
def test_hostile_watchlist_file(
    cli: CLI, tmp_path: Path, name: str, text: str, message: str
) -> None:
    assert cli("watchlist", "import", str(_write(tmp_path, "ok.yaml", GOOD_WATCHLIST))).code == 0
    before = cli("watchlist", "export").out
    _refused(cli, ["watchlist", "import", str(_write(tmp_path, f"{name}.yaml", text))], message)
    _refused(cli, ["watchlist", "test", str(tmp_path / f"{name}.yaml")], message)
    assert cli("watchlist", "export").out == before


SOURCE_FILES: list[tuple[str, str, str]] = [
    ("alias-nested", _nested_sources(), "anchors and aliases"),
    (
        "alias-url",
        "sources:\n  - {name: a, url: &u 'https://a.org/f'}\n  - {name: b, url: *u}\n",
        "anchors and aliases",
    ),
    ("deep-flow", "sources: " + "[" * DEEP + "]" * DEEP + "\n", "nested more than"),
    ("deep-map", "sources: " + "{a: " * DEEP + "1" + "}" * DEEP + "\n", "nested more than"),
    ("nul-in-name", 'sources:\n  - name: "a\\0"\n    url: https://a.org/f\n', "U+0000"),
    ("surrogate-in-url", 'sources:\n  - url: "https://a.org/\\ud800"\n', "U+D800"),
    ("list-for-name", "sources:\n  - name: [a]\n    url: https://a.org/f\n", "name must be text"),
    ("list-for-url", "sources:\n  - url: [https://a.org/f]\n", "url must be text"),
    (
        "map-for-links",
        "sources:\n  - url: https://a.org/\n    links: {a: b}\n",
        "links must be text",
    ),
    (
        "list-for-kind",
        "sources:\n  - url: https://a.org/f\n    kind: [feed]\n",
        "kind must be text",
    ),
    ("bool-for-every", "sources:\n  - url: https://a.org/f\n    every: true\n", "every must be"),
    (
        "float-for-every",
        "sources:\n  - url: https://a.org/f\n    every: 1.5e+300\n",
        "every must be",
    ),
    ("inf-for-every", "sources:\n  - url: https://a.org/f\n    every: .inf\n", "every must be"),
    ("bad-date-name", "sources:\n  - url: https://a.org/f\n    name: 2025-02-30\n", "out of range"),
    ("every-zero", "sources:\n  - url: https://a.org/f\n    every: 0\n", "zero"),
    ("every-000", "sources:\n  - url: https://a.org/f\n    every: '000'\n", "zero"),
    ("every-huge", "sources:\n  - url: https://a.org/f\n    every: 99999999999d\n", "100 years"),
    ("every-31d", "sources:\n  - url: https://a.org/f\n    every: 31d\n", "between 1m and 30d"),
    (
        "every-digits",
        "sources:\n  - url: https://a.org/f\n    every: " + "9" * 5000 + "\n",
        "out of range",
    ),
    ("rtl-name", 'sources:\n  - name: "feed\\u202egnp"\n    url: https://a.org/f\n', "U+202E"),
    ("isolate-name", 'sources:\n  - name: "a\\u2066b"\n    url: https://a.org/f\n', "U+2066"),
    ("lrm-name", 'sources:\n  - name: "a\\u200eb"\n    url: https://a.org/f\n', "U+200E"),
    ("bom-name", 'sources:\n  - name: "\\ufeffa"\n    url: https://a.org/f\n', "U+FEFF"),
    ("too-large", "sources: []\n" + "#" * (9 << 20) + "\n", "larger"),
]


@pytest.mark.parametrize(
    ("name", "text", "message"), SOURCE_FILES, ids=[s[0] for s in SOURCE_FILES]
)
def test_hostile_sources_yaml(cli: CLI, tmp_path: Path, name: str, text: str, message: str) -> None:
    assert cli("source", "import", str(_write(tmp_path, "ok.yaml", GOOD_SOURCES))).code == 0
    before = cli("source", "export", "--format", "yaml").out
    _refused(cli, ["source", "import", str(_write(tmp_path, f"{name}.yaml", text))], message)
    assert cli("source", "export", "--format", "yaml").out == before


def _lol_doctype(levels: int = 10) -> str:
    ents = ['<!ENTITY lol "lol">']
    for n in range(2, levels + 2):
        prev = "lol" if n == 2 else f"lol{n - 1}"
        ents.append(f'<!ENTITY lol{n} "{("&" + prev + ";") * 10}">')
    return "<!DOCTYPE opml [" + "".join(ents) + "]>"


def _opml(outline: str, doctype: str = "") -> str:
    return f'<?xml version="1.0"?>{doctype}<opml version="2.0"><body>{outline}</body></opml>'


OPML_FILES: list[tuple[str, str, str]] = [
    (
        "billion-laughs",
        _opml('<outline text="&lol11;" xmlUrl="https://a.org/f"/>', _lol_doctype()),
        "OPML",
    ),
    (
        "one-entity",
        _opml(
            '<outline text="&x;" xmlUrl="https://a.org/f"/>',
            '<!DOCTYPE opml [<!ENTITY x "y">]>',
        ),
        "DOCTYPE",
    ),
    (
        "external-entity",
        _opml(
            '<outline text="&x;" xmlUrl="https://a.org/f"/>',
            '<!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        ),
        "OPML",
    ),
    ("deep", _opml("<outline>" * DEEP + "</outline>" * DEEP), "not well-formed"),
    ("every-zero", _opml('<outline xmlUrl="https://a.org/f" every="0"/>'), "zero"),
    ("every-000", _opml('<outline xmlUrl="https://a.org/f" every="000"/>'), "zero"),
    ("every-huge", _opml('<outline xmlUrl="https://a.org/f" every="99999999999d"/>'), "100 years"),
    ("every-30s", _opml('<outline xmlUrl="https://a.org/f" every="30s"/>'), "between 1m"),
    ("rtl-name", _opml('<outline text="a&#x202E;b" xmlUrl="https://a.org/f"/>'), "U+202E"),
    ("bidi-isolate", _opml('<outline text="a&#x2067;b" xmlUrl="https://a.org/f"/>'), "U+2067"),
    ("control-name", _opml('<outline text="a&#x7;b" xmlUrl="https://a.org/f"/>'), "OPML"),
]


@pytest.mark.parametrize(("name", "text", "message"), OPML_FILES, ids=[o[0] for o in OPML_FILES])
def test_hostile_opml(cli: CLI, tmp_path: Path, name: str, text: str, message: str) -> None:
    assert cli("source", "import", str(_write(tmp_path, "ok.yaml", GOOD_SOURCES))).code == 0
    before = cli("source", "export", "--format", "yaml").out
    _refused(cli, ["source", "import", str(_write(tmp_path, f"{name}.opml", text))], message)
    assert cli("source", "export", "--format", "yaml").out == before


@pytest.mark.parametrize(
    ("every", "message"),
    [
        ("0", "give a unit"),  # a bare number is refused whatever it is (issue #17)
        ("000", "give a unit"),
        ("0m", "zero"),
        ("99999999999d", "100 years"),
        ("9" * 30, "give a unit"),
        ("9" * 30 + "s", "100 years"),
        ("59s", "between 1m and 30d"),
        ("31d", "between 1m and 30d"),
        ("5w", "between 1m and 30d"),
        ("-5m", "not a duration"),
    ],
)
def test_every_is_bounded_in_source_add(cli: CLI, every: str, message: str) -> None:
    _refused(
        cli,
        ["source", "add", "https://a.org/f", "--kind", "feed", "--every", every],
        message,
    )
    assert cli("source", "list", "--json").out == ""


def test_every_bounds_are_inclusive(cli: CLI) -> None:
    for name, every in (("min", "1m"), ("max", "30d"), ("plain", "60s")):
        r = cli("source", "add", f"https://a.org/{name}", "--kind", "feed", "--name", name,
                "--every", every)  # fmt: skip
        assert r.code == 0, r.err
    rows = {
        j["name"]: j["every"]
        for j in map(json.loads, cli("source", "list", "--json").out.splitlines())
    }
    assert rows == {"min": "1m", "max": "4w2d", "plain": "1m"}


@pytest.mark.parametrize(
    "bad",
    ["feed\u202egnp.exe", "a\u2066b\u2069", "a\u200fb", "a\u200bb", "a\x00b", "a\x1bb", "a\u2028b"],
    ids=["rlo", "isolate", "rlm", "zwsp", "nul", "esc", "line-separator"],
)
def test_source_name_refuses_control_and_bidi(cli: CLI, bad: str) -> None:
    _refused(cli, ["source", "add", "https://a.org/f", "--kind", "feed", "--name", bad], "U+")
    assert cli("source", "list", "--json").out == ""


def test_source_names_are_one_in_nfc_and_nfd(cli: CLI, tmp_path: Path) -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    assert cli("source", "add", "https://a.org/f", "--kind", "feed", "--name", nfd).code == 0
    again = cli("source", "add", "https://a.org/g", "--kind", "feed", "--name", nfc)
    assert again.code != 0 and "already exists" in again.err
    names = [json.loads(x)["name"] for x in cli("source", "list", "--json").out.splitlines()]
    assert names == [nfc]
    yaml_file = _write(tmp_path, "s.yaml", f"sources:\n  - name: {nfd}\n    url: https://a.org/h\n")
    assert "1 updated" in cli("source", "import", str(yaml_file)).out
    assert cli("crawl", "--source", nfd).err.count("no source named") == 0
    assert cli("source", "remove", nfd).code == 0
    assert cli("source", "list", "--json").out == ""


def test_watchlist_names_are_one_in_nfc_and_nfd(cli: CLI, tmp_path: Path) -> None:
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    text = f"watchlists:\n  - name: {nfd}\n    terms: [Pantsir]\n"
    assert cli("watchlist", "import", str(_write(tmp_path, "w.yaml", text))).code == 0
    text = f"watchlists:\n  - name: {nfc}\n    terms: [SAM]\n"
    assert cli("watchlist", "import", str(_write(tmp_path, "w2.yaml", text))).code == 0
    names = [json.loads(x)["name"] for x in cli("watchlist", "list", "--json").out.splitlines()]
    assert names == [nfc]
    assert "SAM" in cli("watchlist", "show", nfd).out
    assert cli("watchlist", "remove", nfd).code == 0


@pytest.mark.parametrize("href", ["http://[::1", "//[x]/feed", "http://[", "//[zz::]/rss"])
def test_source_add_survives_a_malformed_advertised_feed(cli: CLI, href: str) -> None:
    """`source add` without --kind used to exit 70 on such a <link rel=alternate>."""
    from tests.support.httpserver import LocalHTTPServer

    server = LocalHTTPServer().start()
    try:
        page = (
            '<html><head><link rel="alternate" type="application/rss+xml" '
            f'href="{href}"></head><body><p>news</p></body></html>'
        )
        url = server.route("/news", (200, {"Content-Type": "text/html"}, page.encode()))
        r = cli(
            "source",
            "add",
            url,
            "--name",
            "n",
            env={"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1"},
        )
        assert r.code == 0, r.err
        assert "added n (page)" in r.out, r.out
    finally:
        server.stop()


@pytest.mark.parametrize("css", ["a[", "!!", "ul >", "a::attr(", "x" * 1001])
def test_links_selector_is_checked_when_added_or_imported(
    cli: CLI, tmp_path: Path, css: str
) -> None:
    _refused(cli, ["source", "add", "https://a.org/", "--kind", "page", "--links", css], "links")
    text = f"sources:\n  - url: https://a.org/\n    kind: page\n    links: {json.dumps(css)}\n"
    _refused(cli, ["source", "import", str(_write(tmp_path, "s.yaml", text))], "links")
    assert cli("source", "list", "--json").out == ""
    good = "sources:\n  - url: https://a.org/\n    kind: page\n    links: 'ul.pubs a::attr(href)'\n"
    assert cli("source", "import", str(_write(tmp_path, "g.yaml", good))).code == 0
