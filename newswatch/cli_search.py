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
from storage.search import ItemFilter, get_item, iter_items_newest_first, matches_of_item


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


def search(
    ctx: typer.Context,
    query: Annotated[
        str, typer.Argument(help='Watchlist query: words, "phrases", AND OR NOT NEAR.')
    ],
    since: Annotated[
        str | None, typer.Option(help="Items fetched within this period, e.g. 7d.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="Only items of this source.")] = None,
    language: Annotated[
        str | None, typer.Option(help="Only items in this language (en, ko…).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Most results shown.")] = 50,
    json: Annotated[bool, typer.Option("--json", help="JSON Lines.", metavar="")] = False,
) -> None:
    """Stored items matching QUERY under the watchlist rules, newest first."""
    matcher = compile_query(query)
    where = ItemFilter(since=None, source=source, language=language)
    a = get_app(ctx)
    if since is not None:
        try:
            where = ItemFilter(a.now() - timedelta(seconds=parse_duration(since)), source, language)
        except ValueError as e:
            raise UsageProblem(f"--since: {e}") from e
    with a.session() as s:
        hits = list(found_items(matcher, iter_items_newest_first(s, where), limit))
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
