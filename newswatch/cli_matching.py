"""`newswatch match`, `matches` and `backfill`."""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated

import typer

from alerts.alert_records import Document, WatchlistMatch
from newswatch.cli_common import (
    UsageProblem,
    echo,
    get_app,
    iso,
    one_line,
    print_jsonl,
    print_table,
    printable,
)
from newswatch.durations import parse_duration
from storage.matches import list_matches
from storage.watchlists import get_watchlist, watchlist_name


def _since(text: str | None) -> timedelta | None:
    if text is None:
        return None
    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as e:
        raise UsageProblem(f"--since: {e}") from e


def _highlight(text: str, spans: list[tuple[int, int]], tty: bool) -> str:
    """`text` made printable, the spans in bold yellow on a terminal (our own
    escapes are the only ones that reach it)."""
    if not tty or not spans:
        return printable(text)
    out, pos = [], 0
    for start, end in sorted(spans):
        if start < pos:
            continue
        out += [printable(text[pos:start]), "\x1b[1;33m", printable(text[start:end]), "\x1b[0m"]
        pos = end
    out.append(printable(text[pos:]))
    return "".join(out)


def print_match(m: WatchlistMatch, text: str, tty: bool) -> None:
    from alerts.matching.engine import normalize_text

    norm = normalize_text(text)
    echo(f"{m.watchlist}: matched {', '.join(m.terms)}")
    for h in m.hits[:20]:
        spelling = f" as {h.spelling!r}" if h.spelling != h.rule else ""
        around = norm[max(0, h.start - 60) : h.end + 60].replace("\n", " ")
        shift = min(60, h.start)
        print(  # _highlight made the text printable; the colour codes are ours
            f"  {printable(h.rule)}{spelling} at {h.start}-{h.end}: "
            f"…{_highlight(around, [(shift, shift + h.end - h.start)], tty)}…"
        )
    for snip in m.snippets:
        echo(f"  snippet: {snip}")


def match(
    ctx: typer.Context,
    watchlist: Annotated[str, typer.Option("--watchlist", "-w", help="Watchlist name.")],
    text: Annotated[str | None, typer.Argument(help="Text to test, or - for stdin.")] = None,
) -> None:
    """Which terms of a watchlist match TEXT (stdin with -)."""
    from alerts.matching.engine import compile_watchlists
    from scheduler.compiled_watchlists import ONE_SHOT_BACKEND

    if text is None or text == "-":
        text = sys.stdin.read()
    a = get_app(ctx)
    with a.session() as s:
        wl = get_watchlist(s, watchlist).watchlist
    found = compile_watchlists([wl], ONE_SHOT_BACKEND).match(Document(title="", body=text))
    if not found:
        echo(f"{watchlist}: no match")
        return
    print_match(found[0], text, sys.stdout.isatty())


def matches(
    ctx: typer.Context,
    watchlist: Annotated[str | None, typer.Option("--watchlist", "-w")] = None,
    since: Annotated[str | None, typer.Option(help="Only newer than this, e.g. 2d.")] = None,
    json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
) -> None:
    """Stored matches, newest first."""
    a = get_app(ctx)
    delta = _since(since)
    with a.session() as s:
        if watchlist is not None:  # removed ones too: their matches are kept
            watchlist = watchlist_name(s, watchlist)
        found = list_matches(s, watchlist=watchlist, since=a.now() - delta if delta else None)
        if json:
            from alerts.render import match_object

            print_jsonl(match_object(m) for m in found)
            return
        rows = [
            [
                iso(m.matched_at),
                m.watchlist,
                one_line(", ".join(m.terms), 40),  # a query rule's label is its whole text
                m.source_name,
                one_line(m.item_title, 70),
                m.item_url,
            ]
            for m in found
        ]
    print_table(["matched", "watchlist", "terms", "source", "title", "url"], rows)


def backfill(
    ctx: typer.Context,
    watchlist: Annotated[str, typer.Option("--watchlist", "-w", help="Watchlist name.")],
    since: Annotated[str, typer.Option(help="Items fetched within this period.")] = "30d",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count and show a sample.")
    ] = False,
) -> None:
    """Match stored items against a watchlist now and record new matches (and their alerts)."""
    from scheduler.backfill import backfill as run

    a = get_app(ctx)
    delta = _since(since)
    assert delta is not None
    report = run(a.backfill_context(), watchlist, since=a.now() - delta, dry_run=dry_run)
    verb = "would match" if dry_run else "matched"
    echo(
        f"{watchlist}: scanned {report.scanned} items, {verb} {report.matched}, "
        f"{report.new} new"
        + (f", {report.unalerted} matched before without alerts" if report.unalerted else "")
        + ("" if dry_run else f", {report.alerts} alerts queued")
    )
    for title, url in report.sample:
        echo(f"  {one_line(title, 80)}  {url}")


def register(app: typer.Typer) -> None:
    app.command("match")(match)
    app.command("matches")(matches)
    app.command("backfill")(backfill)
