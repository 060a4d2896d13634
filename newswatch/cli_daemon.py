"""`newswatch run`: the daemon, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import sys

import typer

from newswatch.cli_check import startup_checks
from newswatch.cli_common import echo, get_app


def run(ctx: typer.Context) -> None:
    """The daemon: poll sources on schedule, deliver alerts, send digests, prune, until
    SIGTERM/SIGINT. With NEWSWATCH_HTTP_PORT, serves /healthz and /metrics."""
    from newswatch.logs import setup_logging
    from newswatch.webapp import daemon_web_app
    from scheduler import SchedulerError
    from scheduler.daemon import run_daemon

    a = get_app(ctx)
    setup_logging(a.settings.log_format, verbose=True)
    startup_checks(ctx)
    # Skipped and coalesced ticks are by design (see scheduler.daemon): log only errors.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    try:
        code = run_daemon(a.daemon_context(web_app=lambda: daemon_web_app(a)))
    except SchedulerError as e:
        echo(f"newswatch: error: {' '.join(str(e).split())}", file=sys.stderr)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
