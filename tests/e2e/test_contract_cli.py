"""CONTRACT.md clauses of "Commands", "Matching rules" and "`matches --json`"
that no other test checks through the CLI: the `--since` filters of `matches`
and `backfill`, one `matches --json` object per (item, watchlist), and
whole-word matching for Greek and inside-word matching for Kana."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import Database
from tests.e2e.conftest import CLI
from tests.support.httpserver import LocalHTTPServer

ENV = {"NEWSWATCH_ALLOW_PRIVATE_ADDRESSES": "127.0.0.1", "NEWSWATCH_PER_HOST_DELAY": "0"}

RSS = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Pantsir and BRICS</title><link>{base}/a/both</link>
  <description>The Pantsir (SAM) was shown at the BRICS summit.</description></item>
<item><title>Pantsir alone</title><link>{base}/a/one</link>
  <description>A Pantsir battery, nothing else.</description></item>
</channel></rss>"""

WATCHLISTS = """\
watchlists:
  - name: air
    terms: [Pantsir, SAM]
  - name: brics
    terms: [BRICS]
"""


def _crawl(cli: CLI, server: LocalHTTPServer, tmp_path: Path) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(WATCHLISTS, encoding="utf-8")
    assert cli("watchlist", "import", str(wl)).code == 0
    url = server.serve("/feed.xml", RSS.format(base=server.url("").rstrip("/")))
    assert cli("source", "add", url, "--kind", "feed", "--name", "wire").code == 0
    r = cli("crawl", env=ENV)
    assert r.code == 0, r.err


def _matches(cli: CLI, *args: str) -> list[tuple[str, str, list[str]]]:
    r = cli("matches", *args, "--json")
    assert r.code == 0, r.err
    return sorted(
        (m["watchlist"], m["item"]["url"].rsplit("/", 1)[1], m["terms"])
        for m in map(json.loads, r.out.splitlines())
    )


def test_one_object_per_item_and_watchlist(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    _crawl(cli, http_server, tmp_path)
    assert _matches(cli) == [
        ("air", "both", ["Pantsir", "SAM"]),  # two terms: one object
        ("air", "one", ["Pantsir"]),
        ("brics", "both", ["BRICS"]),  # a second watchlist: a second object
    ]
    assert _matches(cli, "--watchlist", "brics") == [("brics", "both", ["BRICS"])]


def test_matches_since_keeps_only_newer_matches(
    cli: CLI, db: Database, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    _crawl(cli, http_server, tmp_path)
    three_days_ago = datetime.now(UTC) - timedelta(days=3)
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE matches SET matched_at = :t WHERE item_id = "
                "(SELECT id FROM items WHERE url LIKE '%/a/one')"
            ),
            {"t": three_days_ago},
        )
    assert [x[1] for x in _matches(cli, "--since", "2d")] == ["both", "both"]
    assert len(_matches(cli, "--since", "4d")) == 3
    assert len(_matches(cli)) == 3  # no --since: everything


@pytest.mark.parametrize(
    ("since", "reached"), [(None, {"recent"}), ("60d", {"recent", "old"}), ("1d", {"recent"})]
)
def test_backfill_since_reaches_items_fetched_within_it(
    cli: CLI,
    db: Database,
    http_server: LocalHTTPServer,
    tmp_path: Path,
    since: str | None,
    reached: set[str],
) -> None:
    """`backfill --since` (default 30d) counts items by when they were fetched."""
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        + "".join(
            f"<item><title>Iskander {p}</title><link>{http_server.url('/a/' + p)}</link></item>"
            for p in ("recent", "old")
        )
        + "</channel></rss>"
    )
    url = http_server.serve("/feed.xml", body)
    assert cli("source", "add", url, "--kind", "feed", "--name", "wire").code == 0
    assert cli("crawl", env=ENV).code == 0
    with db.engine.begin() as conn:
        conn.execute(
            text("UPDATE items SET fetched_at = :t WHERE url LIKE '%/a/old'"),
            {"t": datetime.now(UTC) - timedelta(days=40)},
        )
    wl = tmp_path / "late.yaml"
    wl.write_text("watchlists:\n  - name: late\n    terms: [Iskander]\n", encoding="utf-8")
    assert cli("watchlist", "import", str(wl)).code == 0
    args = ["backfill", "--watchlist", "late", *(["--since", since] if since else [])]
    r = cli(*args)
    assert r.code == 0, r.err
    assert f"matched {len(reached)}, {len(reached)} new" in r.out, r.out
    assert {x[1] for x in _matches(cli, "--watchlist", "late")} == reached


@pytest.mark.parametrize(
    ("term", "text", "matched"),
    [
        # Greek: whole words, case-insensitive for a term not in capitals
        ("Πάντσιρ", "Το Πάντσιρ καταρρίφθηκε χθες.", True),
        ("Πάντσιρ", "ΤΟ ΠΆΝΤΣΙΡ ΚΑΤΑΡΡΊΦΘΗΚΕ", True),
        ("Πάντσιρ", "Αντιπάντσιρ σύστημα", False),
        ("Πάντσιρ", "Πάντσιρακι", False),
        ("ΝΑΤΟ", "Το ΝΑΤΟ συνεδρίασε", True),
        ("ΝΑΤΟ", "Το Νατο συνεδρίασε", False),  # in capitals: case-sensitive
        # Kana: inside words, whatever the spacing between its characters
        ("パーンツィリ", "北朝鮮がパーンツィリを配備した", True),
        ("パーンツィリ", "北朝鮮がパーン ツィリを配備した", True),
        ("パーンツィリ", "パーンを食べた", False),
    ],
)
def test_greek_whole_words_and_kana_inside_words(
    cli: CLI, tmp_path: Path, term: str, text: str, matched: bool
) -> None:
    wl = tmp_path / "w.yaml"
    wl.write_text(f"watchlists:\n  - name: w\n    terms: [{term}]\n", encoding="utf-8")
    assert cli("watchlist", "import", str(wl)).code == 0
    r = cli("match", "--watchlist", "w", text)
    assert r.code == 0, r.err
    assert r.out.startswith("w: matched" if matched else "w: no match"), r.out


def test_watchlist_filters_take_any_normal_form_and_removed_watchlists(
    cli: CLI, http_server: LocalHTTPServer, tmp_path: Path
) -> None:
    """Names are compared in NFC however they are typed; `watchlist remove`
    keeps matches (README), so `matches --watchlist` still lists them."""
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    wl = tmp_path / "c.yaml"
    wl.write_text(f"watchlists:\n  - name: {nfc}\n    terms: [BRICS]\n", encoding="utf-8")
    assert cli("watchlist", "import", str(wl)).code == 0
    _crawl(cli, http_server, tmp_path)
    expected = [(nfc, "both", ["BRICS"])]
    assert _matches(cli, "--watchlist", nfc) == expected
    assert _matches(cli, "--watchlist", nfd) == expected
    for name in (nfc, nfd):
        r = cli("stories", "--watchlist", name, "--json")
        assert r.code == 0 and len(r.out.splitlines()) == 1, (name, r)
    assert cli("watchlist", "remove", nfd).code == 0
    assert _matches(cli, "--watchlist", nfd) == expected  # kept, still listable
    r = cli("matches", "--watchlist", "never-existed")
    assert r.code == 1 and "no watchlist named 'never-existed'" in r.err
