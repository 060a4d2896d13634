"""`newswatch check`: configuration, database, SMTP, recipients and
watchlists, one line each; exit 1 when any check fails. `run` calls
`startup_checks` to print the same lines before it starts."""

from __future__ import annotations

import os

import typer

from newswatch.checks import Verdict, run_all
from newswatch.cli_common import echo, get_app
from newswatch.config import ConfigError, load_settings


def check(ctx: typer.Context) -> None:
    """Check the configuration, the database, SMTP (no mail sent), recipients and
    watchlists; one line each, exit 1 if any fails."""
    state = ctx.ensure_object(dict)
    try:
        state.setdefault("settings", load_settings(state.get("config")))
    except ConfigError as e:
        echo(f"FAIL configuration: {' '.join(str(e).split())}")
        raise typer.Exit(1) from None
    verdicts, _ = _verdicts(ctx, smtp_timeout=10.0)
    for v in verdicts:
        echo(v.line())
    if any(v.status == "fail" for v in verdicts):
        raise typer.Exit(1)


def _verdicts(
    ctx: typer.Context, *, smtp_timeout: float, database_check: bool = True
) -> tuple[list[Verdict], bool]:
    from storage.watchlists import active_watchlists

    a = get_app(ctx)

    def stored() -> list[object]:
        with a.session() as s:
            return [x.watchlist for x in active_watchlists(s)]

    return run_all(a.settings, os.environ, a.store.engine, stored, a.env, smtp_timeout=smtp_timeout)


def startup_checks(ctx: typer.Context) -> None:
    """What `run` logs before it starts (after logging is set up, so in the
    configured format): one `startup_check` record per warning or failure.
    The daemon still starts. Nothing is logged when the daemon is about to
    stop with its own one line (another daemon holds the SQLite file, the
    schema is missing) or to log an outage (the database is unreachable)."""
    import logging

    from scheduler import DaemonAlreadyRunning
    from scheduler.lock import acquire
    from storage.db import sqlite_file

    log = logging.getLogger("newswatch.check")
    try:  # a second daemon on one SQLite file: the daemon's one line says it all
        held = acquire(sqlite_file(get_app(ctx).settings.database_url))
    except DaemonAlreadyRunning:
        return
    else:
        if held is not None:
            held.release()
    verdicts, ready = _verdicts(ctx, smtp_timeout=5.0, database_check=False)
    if not ready:  # no schema (the daemon exits saying so) or an outage it logs itself
        return
    for v in verdicts:
        if v.status != "ok":
            log.warning("startup_check status=%s check=%s message=%r", v.status, v.check, v.message)


def register(app: typer.Typer) -> None:
    app.command("check")(check)
