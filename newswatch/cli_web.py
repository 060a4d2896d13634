"""`newswatch web [--port N]`: the read-only web view alone, from the database."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from newswatch.cli_common import get_app

DEFAULT_PORT = 8080


def web(
    ctx: typer.Context,
    port: Annotated[
        int | None,
        typer.Option(help="Port (default NEWSWATCH_HTTP_PORT, else 8080).", min=0, max=65535),
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default NEWSWATCH_HTTP_HOST, 127.0.0.1).")
    ] = None,
) -> None:
    """Serve the web view (matches, trends, sources, alerts) until Ctrl-C."""
    from aiohttp import web as aioweb

    from newswatch.webapp import build_web_app
    from storage.db import schema_ready
    from web import WebError

    a = get_app(ctx)
    bind = host or a.settings.http_host
    chosen = port if port is not None else (a.settings.http_port or DEFAULT_PORT)
    try:
        webapp = build_web_app(a, bind)
    except WebError as e:
        print(f"newswatch: error: {e}", file=sys.stderr)
        raise typer.Exit(1) from None
    if not schema_ready(a.store.engine):
        print("newswatch: error: no newswatch schema: run `newswatch init` first", file=sys.stderr)
        raise typer.Exit(1)
    print(f"newswatch web view on http://{bind}:{chosen}/ (Ctrl-C to stop)", flush=True)
    try:
        aioweb.run_app(webapp, host=bind, port=chosen, print=None, access_log=None)
    except OSError as e:  # the address is taken, or not ours
        print(f"newswatch: error: cannot listen on {bind}:{chosen}: {e.strerror}", file=sys.stderr)
        raise typer.Exit(1) from None


def register(app: typer.Typer) -> None:
    app.command("web")(web)
