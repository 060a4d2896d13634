"""`newswatch search QUERY` over stored items and `newswatch show ITEM`.

One engine: QUERY is compiled as a one-rule watchlist (a `query:` rule) by
the same matcher the crawl uses, so a search finds exactly what a watchlist
with that query would have alerted on: word boundaries, case rules,
CJK substrings, NEAR, NOT.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

import typer

from alerts.alert_records import Document, Query, Watchlist, WatchlistMatch
from alerts.matching.prefilter import Condition
from crawler.crawl_records import StoredItem
from newswatch.cli_common import (
    UsageProblem,
    echo,
    get_app,
    iso,
    one_line,
    print_jsonl,
    print_table,
)
from newswatch.durations import parse_duration
from storage import StorageError
from storage.search import (
    ItemFilter,
    get_item,
    iter_candidate_items,
    iter_items_newest_first,
    matches_of_item,
)
from storage.search_index import fts5_query, index_pending, pending_count, reset_index


def compile_query(text: str) -> object:
    """The QUERY as a Matcher of one watchlist, or UsageProblem saying why not."""
    from alerts import AlertError
    from alerts.matching.engine import compile_watchlists

    if not text.strip():
        raise UsageProblem("give a query, e.g. 'Pantsir AND (\"North Korea\" OR DPRK)'")
    try:
        return compile_watchlists([Watchlist("search", (Query(text),))], "aho")
    except AlertError as e:
        raise UsageProblem(f"query: {' '.join(str(e).split())}") from e


def document(x: StoredItem) -> Document:
    it = x.item
    return Document(title=it.title, summary=it.summary, body=it.text, language=it.language)


def found_items(
    matcher: object, batches: Iterator[list[StoredItem]], limit: int
) -> Iterator[tuple[StoredItem, WatchlistMatch]]:
    """Items the matcher confirms, newest first, at most `limit`."""
    from alerts.matching.engine import Matcher

    assert isinstance(matcher, Matcher)
    n = 0
    for batch in batches:
        for x in batch:
            found = matcher.match(document(x))
            if found:
                yield x, found[0]
                n += 1
                if n >= limit:
                    return


def search_plan(text: str) -> Condition | None:
    """The prefilter index condition of QUERY, or None when only a scan is sound."""
    from alerts.matching.prefilter import query_condition

    return query_condition(text)


def reindex(ctx: typer.Context) -> None:
    """Rebuild the search index: every item pending, then indexed in batches."""
    a = get_app(ctx)
    with a.session() as s:
        total = reset_index(s)
    done = 0
    while True:
        with a.session() as s:
            n = index_pending(s)
        if not n:
            break
        done += n
        if done % 50_000 < n:
            echo(f"indexed {done:,} of {total:,} items", file=sys.stderr)
    echo(f"search index rebuilt: {done:,} items", file=sys.stderr)


# A search indexes the pending items first when there are at most this many
# (one batch: a second or two); more are scanned (the daemon indexes them).
INDEX_FIRST = 1_000


def index_few_pending(ctx: typer.Context) -> int:
    """Index the pending items when few; how many. Any database refusal (e.g. a
    read-only user, a busy SQLite writer) leaves them pending: they are scanned."""
    a = get_app(ctx)
    try:
        with a.session() as s:
            if not 0 < pending_count(s) <= INDEX_FIRST:
                return 0
        with a.session() as s:
            return index_pending(s, INDEX_FIRST)
    except StorageError:
        return 0


def search(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(help='Watchlist query: words, "phrases", AND OR NOT NEAR.'),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Items fetched within this period, e.g. 7d.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only items of this source.")] = None,
    language: Annotated[
        str | None, typer.Option(help="Only items in this language (en, ko…).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Most results shown.")] = 50,
    json: Annotated[bool, typer.Option("--json", help="JSON Lines.", metavar="")] = False,
    reindex_all: Annotated[
        bool,
        typer.Option(
            "--reindex",
            help="Rebuild the search index of every stored item first (QUERY optional).",
            metavar="",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Say how the search ran (index or scan).", metavar=""),
    ] = False,
) -> None:
    """Stored items matching QUERY under the watchlist rules, newest first.

    A query with a word or phrase outside NOT that the index can express
    reads only the items the index names (then checks each with the matcher);
    any other query scans every item. The results are the same.
    """
    if reindex_all:
        reindex(ctx)
        if query is None:
            return
    if query is None:
        raise UsageProblem("give a query, e.g. 'Pantsir AND (\"North Korea\" OR DPRK)'")
    matcher = compile_query(query)
    plan = search_plan(query)
    where = ItemFilter(since=None, source=source, language=language)
    a = get_app(ctx)
    if since is not None:
        try:
            where = ItemFilter(a.now() - timedelta(seconds=parse_duration(since)), source, language)
        except ValueError as e:
            raise UsageProblem(f"--since: {e}") from e
    indexed = index_few_pending(ctx) if plan is not None else 0
    with a.session() as s:
        if plan is None:
            batches = iter_items_newest_first(s, where)
        else:
            batches = iter_candidate_items(s, where, plan)
        if verbose:
            if indexed:
                echo(f"search: indexed {indexed:,} new items first", file=sys.stderr)
            echo(describe_plan(plan, pending_count(s)), file=sys.stderr)
        hits = list(found_items(matcher, batches, limit))
    if json:
        print_jsonl(
            {
                "id": x.id,
                "url": x.item.url,
                "title": x.item.title,
                "source": x.source_name,
                "published": x.item.published,
                "language": x.item.language,
                "snippets": list(m.snippets),
            }
            for x, m in hits
        )
        return
    print_table(
        ["id", "published", "source", "title", "url"],
        [
            [
                str(x.id),
                iso(x.item.published),
                x.source_name,
                one_line(x.item.title, 70),
                x.item.url,
            ]
            for x, _ in hits
        ],
    )
    if not hits:
        echo("no stored item matches", file=sys.stderr)


def describe_plan(plan: Condition | None, pending: int) -> str:
    if plan is None:
        return (
            "search: scanning every item (no word or phrase outside NOT that the index "
            "can look up, e.g. a lone Han character, a symbol, or OR with such a term)"
        )
    line = f"search: index lookup {one_line(fts5_query(plan), 200)}, each candidate checked"
    if pending:
        line += (
            f"; {pending:,} items not indexed yet are scanned "
            "(the daemon indexes them, or `search --reindex`)"
        )
    return line


def show(
    ctx: typer.Context,
    item: Annotated[str, typer.Argument(help="Item id (from `search`) or URL.")],
) -> None:
    """One stored item: its fields, text and the watchlists it matched."""
    a = get_app(ctx)
    with a.session() as s:
        x = get_item(s, item)
        found = matches_of_item(s, x.id)
    it = x.item
    echo(f"id:        {x.id}")
    echo(f"title:     {one_line(it.title, 500)}")
    echo(f"url:       {it.url}")
    echo(f"source:    {x.source_name}")
    echo(f"published: {iso(it.published)} UTC   fetched: {iso(x.fetched_at)} UTC")
    echo(f"language:  {it.language or '-'}")
    for m in found:
        echo(f"match:     {m.watchlist}: {one_line(', '.join(m.terms), 120)} ({iso(m.matched_at)})")
    if not found:
        echo("match:     none")
    echo("")
    if it.summary:
        echo(one_line(it.summary, 2_000))
        echo("")
    for line in (it.text or "").splitlines():
        echo(line)


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("show")(show)
