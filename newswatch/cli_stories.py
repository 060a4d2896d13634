"""`newswatch stories` (list) and `newswatch stories rebuild`."""

from __future__ import annotations

from typing import Annotated

import typer

from newswatch.cli_common import (
    UsageProblem,
    echo,
    get_app,
    iso,
    one_line,
    print_jsonl,
    print_table,
)
from newswatch.cli_matching import _since
from storage.stories import list_stories
from storage.watchlists import watchlist_name

app = typer.Typer(no_args_is_help=False, invoke_without_command=True)


@app.callback()
def stories(
    ctx: typer.Context,
    watchlist: Annotated[str | None, typer.Option("--watchlist", "-w")] = None,
    since: Annotated[str | None, typer.Option(help="Seen (last) within this, e.g. 2d.")] = None,
    json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many stories.")] = 100,
) -> None:
    """Stories (items of one event across sources and languages), newest first."""
    if ctx.invoked_subcommand is not None:
        return
    if limit < 1:
        raise UsageProblem("--limit: give a number of stories, 1 or more")
    a = get_app(ctx)
    delta = _since(since)
    with a.session() as s:
        if watchlist is not None:
            watchlist = watchlist_name(s, watchlist)  # an unknown name is a one-line error
        found = list_stories(
            s, watchlist=watchlist, since=a.now() - delta if delta else None, limit=limit
        )
    if json:
        print_jsonl(v.as_json() for v in found)
        return
    rows = [
        [
            str(v.id),
            iso(v.first_seen),
            one_line(v.title, 60),
            ",".join(v.languages),
            one_line(",".join(v.sources), 40),
            str(len(v.items)),
        ]
        for v in found
    ]
    print_table(["id", "first seen", "title", "languages", "sources", "items"], rows)


@app.command("rebuild")
def rebuild(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="Items published within this period.")] = "30d",
) -> None:
    """Give every stored item without a story one, oldest first, in batches."""
    from scheduler.story_assignment import assign_unassigned

    a = get_app(ctx)
    delta = _since(since)
    assert delta is not None
    done = assign_unassigned(a.story_assigner(), a.store, a.now, since=a.now() - delta)
    echo(f"assigned {done} items to stories")
