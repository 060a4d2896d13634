"""`newswatch watchlist …`"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from alerts.alert_records import Query, Recipient, Watchlist
from alerts.secrets import mask_secret
from alerts.watchlist_files import (
    REF_RE,
    WatchlistFileError,
    dump_watchlists,
    parse_watchlists,
    reference_allowed,
)
from newswatch.cli_common import UsageProblem, echo, get_app, print_jsonl, print_table
from storage import watchlists as repo

app = typer.Typer(no_args_is_help=True)


def read_watchlist_file(path: Path) -> list[Watchlist]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UsageProblem(f"cannot read {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UsageProblem(f"{path}: not UTF-8 text") from e
    try:
        watchlists = parse_watchlists(text)
    except WatchlistFileError as e:
        raise UsageProblem(f"{path}: {e}") from e
    from alerts.duplicates import duplicate_spellings

    for w in watchlists:
        for warning in duplicate_spellings(w):
            echo(f"newswatch: warning: {path.name}: {warning}", file=sys.stderr)
    return watchlists


def check_references(path: Path, watchlists: list[Watchlist], allow: str) -> None:
    """Refuse at import a `${NAME}` the operator's NEWSWATCH_WATCHLIST_ENV does
    not permit (delivery refuses it too; saying so now beats a pending alert)."""
    for w in watchlists:
        for r in w.notify:
            for value in (r.target, r.secret or ""):
                m = REF_RE.fullmatch(value)
                if m and not reference_allowed(m.group(1), allow):
                    raise UsageProblem(
                        f"{path}: watchlist {w.name!r}: ${{{m.group(1)}}} is not permitted "
                        "by NEWSWATCH_WATCHLIST_ENV"
                    )


@app.command("import")
def import_(ctx: typer.Context, file: Path) -> None:
    """Create or replace the watchlists in FILE (YAML)."""
    watchlists = read_watchlist_file(file)
    a = get_app(ctx)
    check_references(file, watchlists, a.settings.watchlist_env)
    with a.session() as s:
        cancelled = repo.save_watchlists(s, watchlists, a.now())
    echo(f"imported {len(watchlists)} watchlists: {', '.join(w.name for w in watchlists)}")
    if cancelled:
        echo(f"cancelled {_alerts(cancelled)} not yet delivered to removed recipients")


@app.command("list")
def list_(
    ctx: typer.Context, json: Annotated[bool, typer.Option("--json", help="JSON Lines.")] = False
) -> None:
    """Watchlists with their number of rules and recipients."""
    a = get_app(ctx)
    with a.session() as s:
        found = [x.watchlist for x in repo.active_watchlists(s)]
    if json:
        print_jsonl(
            {
                "name": w.name,
                "terms": sum(1 for r in w.rules if not isinstance(r, Query)),
                "queries": sum(1 for r in w.rules if isinstance(r, Query)),
                "exclude": len(w.exclude),
                "languages": list(w.languages),
                "recipients": len(w.notify),
                "digest": w.digest,
                "stories": w.stories,
            }
            for w in found
        )
        return
    print_table(
        ["name", "rules", "exclude", "languages", "recipients", "digest"],
        [
            [
                w.name,
                str(len(w.rules)),
                str(len(w.exclude)),
                ",".join(w.languages) or "any",
                str(len(w.notify)),
                w.digest,
            ]
            for w in found
        ],
    )


def masked(w: Watchlist) -> Watchlist:
    """The watchlist with webhook URLs and secrets masked (emails are not secrets)."""

    def mask(r: Recipient) -> Recipient:
        target = (
            r.target if r.channel == "email" or r.target.startswith("${") else mask_secret(r.target)
        )
        secret = None if r.secret is None else (r.secret if r.secret.startswith("${") else "***")
        return Recipient(r.channel, target, secret)

    from dataclasses import replace

    return replace(w, notify=tuple(mask(r) for r in w.notify))


@app.command("show")
def show(ctx: typer.Context, name: str) -> None:
    """One watchlist as YAML, secrets masked."""
    a = get_app(ctx)
    with a.session() as s:
        w = repo.get_watchlist(s, name).watchlist
    sys.stdout.write(dump_watchlists([masked(w)]))


@app.command("export")
def export(ctx: typer.Context, name: Annotated[str | None, typer.Argument()] = None) -> None:
    """Watchlists as YAML, as imported (`${NAME}` references kept)."""
    a = get_app(ctx)
    with a.session() as s:
        found = [repo.get_watchlist(s, name)] if name else repo.active_watchlists(s)
    sys.stdout.write(dump_watchlists([x.watchlist for x in found]))


@app.command("remove")
def remove(ctx: typer.Context, name: str) -> None:
    """Stop matching NAME; its matches and sent alerts are kept, the others cancelled."""
    a = get_app(ctx)
    with a.session() as s:
        cancelled = repo.remove_watchlist(s, name, a.now())
    echo(f"removed {name}")
    if cancelled:
        echo(f"cancelled {_alerts(cancelled)} not yet delivered")


def _alerts(n: int) -> str:
    return f"{n} alert{'s' if n != 1 else ''}"


@app.command("test")
def test(file: Path) -> None:
    """Run the examples in FILE against its watchlists (no database needed)."""
    from alerts.matching.engine import run_examples

    watchlists = read_watchlist_file(file)
    failures = run_examples(watchlists)
    total = sum(len(w.examples_match) + len(w.examples_no_match) for w in watchlists)
    for f in failures:
        expect = "should match" if f.expected else "should not match"
        echo(f"FAIL {f.watchlist}: {expect}: {f.text!r}")
    echo(f"{total - len(failures)} passed, {len(failures)} failed")
    if failures:
        raise typer.Exit(1)
