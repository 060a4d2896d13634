"""`newswatch search` with its index, through the CLI: `--verbose` says how a
query runs, `--reindex` rebuilds the index, and results do not change with
either (the stored feed of tests/e2e/test_first_hour.py, both databases)."""

from __future__ import annotations

import pytest

from newswatch import cli_search
from storage.db import transaction
from storage.search_index import pending_count, reset_index
from tests.conftest import Database
from tests.e2e.conftest import CLI
from tests.e2e.test_first_hour import rows, stored
from tests.support.httpserver import LocalHTTPServer

QUERIES = {
    "Pantsir": ["/s/1"],
    "판치르": ["/s/2"],
    "지대공": ["/s/2"],
    "地对空导弹": ["/s/3"],
    "北": [],  # one Han character: scanned
    '"North Korea" NEAR/5 Pantsir': ["/s/1"],
    "Панцирь AND NOT черепах*": [],
    "Панцир*": ["/s/5"],
}


def found(cli: CLI, base: str, query: str) -> list[str]:
    return sorted(str(x["url"]).removeprefix(base) for x in rows(cli, "search", query))


def pending(db: Database) -> int:
    with transaction(db.factory) as s:
        return pending_count(s)


def test_results_are_the_same_pending_indexed_and_reindexed(
    cli: CLI, http_server: LocalHTTPServer, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = stored(cli, http_server)
    assert pending(db) == 5  # the crawl only lists its new items as pending
    r = cli("search", "Pantsir", "--verbose")  # few pending: indexed first
    assert r.code == 0 and "indexed 5 new items first" in r.err, r.err
    assert "not indexed" not in r.err and pending(db) == 0, r.err
    assert {q: found(cli, base, q) for q in QUERIES} == QUERIES
    with transaction(db.factory) as s:
        reset_index(s)  # as after migration 0011: every item pending
    monkeypatch.setattr(cli_search, "INDEX_FIRST", 4)  # more pending than a search indexes
    r = cli("search", "Pantsir", "--verbose")
    assert r.code == 0 and "5 items not indexed yet are scanned" in r.err, r.err
    assert "indexed 5" not in r.err and pending(db) == 5
    assert {q: found(cli, base, q) for q in QUERIES} == QUERIES  # scanned: same results
    r = cli("search", "--reindex")
    assert r.code == 0 and "search index rebuilt: 5 items" in r.err, r.err
    r = cli("search", "Pantsir", "-v")
    assert r.code == 0 and "index lookup" in r.err and "not indexed" not in r.err, r.err
    assert {q: found(cli, base, q) for q in QUERIES} == QUERIES


def test_a_lone_han_query_scans_and_indexes_nothing(
    cli: CLI, http_server: LocalHTTPServer, db: Database
) -> None:
    base = stored(cli, http_server)
    assert found(cli, base, "北") == [] and pending(db) == 5  # a scan needs no index


@pytest.mark.parametrize(
    ("query", "how"),
    [
        ("Pantsir", "index lookup"),
        ("방공", "index lookup"),
        ("北", "scanning every item"),
        ("北 OR Pantsir", "scanning every item"),
        ("北 AND Pantsir", "index lookup"),
    ],
)
def test_verbose_says_index_or_scan(
    cli: CLI, http_server: LocalHTTPServer, query: str, how: str
) -> None:
    stored(cli, http_server)
    r = cli("search", query, "--verbose")
    assert r.code == 0 and how in r.err, r.err


def test_search_without_query_or_reindex_is_refused(cli: CLI) -> None:
    r = cli("search")
    assert r.code == 2 and "give a query" in r.err and len(r.err.splitlines()) == 1
