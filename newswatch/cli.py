"""The `newswatch` command: a thin shell over library functions.

Every expected error becomes one line on stderr and a non-zero exit; a
traceback is shown only with --debug.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from alerts import AlertError
from crawler import CrawlError
from newswatch import __version__
from newswatch.cli_common import UsageProblem, get_app
from newswatch.config import ConfigError
from storage import StorageError

app = typer.Typer(
    name="newswatch",
    help="Scheduled news monitoring with multilingual watchlists and durable alerts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"newswatch {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML configuration file (or NEWSWATCH_CONFIG).")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.", metavar="")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version.", metavar=""
        ),
    ] = False,
) -> None:
    state = ctx.ensure_object(dict)
    state["config"] = config
    state["debug"] = debug


@app.command()
def init(ctx: typer.Context) -> None:
    """Create or upgrade the database schema; safe to run again."""
    from storage.db import redact_url, upgrade

    a = get_app(ctx)
    upgrade(a.store.engine)
    print(f"schema ready at {redact_url(a.settings.database_url)}")


def _register() -> None:
    from newswatch import (
        cli_alerts,
        cli_check,
        cli_crawl,
        cli_daemon,
        cli_matching,
        cli_search,
        cli_sources,
        cli_stories,
        cli_watchlists,
        cli_web,
    )

    app.add_typer(cli_sources.app, name="source", help="Manage sources.")
    app.add_typer(cli_watchlists.app, name="watchlist", help="Manage watchlists.")
    app.add_typer(cli_stories.app, name="stories", help="Stories: one event across sources.")
    for module in (cli_matching, cli_crawl, cli_daemon, cli_alerts, cli_web, cli_check, cli_search):
        module.register(app)


_register()

EXPECTED = (ConfigError, StorageError, AlertError, CrawlError, UsageProblem)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    try:
        return _run(args, debug)
    except KeyboardInterrupt:
        print("newswatch: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        print(
            f"newswatch: internal error: {type(e).__name__}: {_describe(e)} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return 70


def _run(args: list[str], debug: bool) -> int:
    try:
        result = app(args=args, prog_name="newswatch", standalone_mode=False)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except typer.Abort:
        print("newswatch: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if hasattr(e, "format_message") and hasattr(e, "exit_code"):  # a usage error
            print(f"newswatch: error: {_one_line(e.format_message())}", file=sys.stderr)
            return int(e.exit_code)
        if not isinstance(e, EXPECTED):
            raise
        if debug:
            raise
        print(f"newswatch: error: {_one_line(e)}", file=sys.stderr)
        return 2 if isinstance(e, UsageProblem) else 1
    return int(result) if isinstance(result, int) else 0


def _describe(e: Exception) -> str:
    """One line for an unexpected error; a database error (raised outside
    `storage.db.transaction`) by the driver's first line only, since
    SQLAlchemy's own text holds the statement and the driver's DETAIL."""
    from storage.db import storage_error

    return _one_line(storage_error(e))


def _one_line(e: object) -> str:
    from newswatch.cli_common import printable

    text = printable(" ".join(str(e).split()))  # messages may quote feed text
    return text or type(e).__name__


def entry() -> None:
    """The console script: `main` in a process of its own (commands may then
    keep process-wide signal handlers installed until exit)."""
    from newswatch import cli_common

    cli_common.OWN_PROCESS = True
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()
