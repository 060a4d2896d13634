"""Wiring of the web view: Settings in, an aiohttp application out.

The only place that reads the web view's settings (host, token, clock) and
builds its storage reader. `newswatch web` serves the result alone; the daemon
mounts it on its /healthz server.
"""

from __future__ import annotations

import logging

from aiohttp import web as aioweb

from newswatch.app import App
from storage.views import SqlWebReader
from web import WebError
from web.security import check_bind
from web.server import WebConfig, create_app

log = logging.getLogger("newswatch.web")


def build_web_app(app: App, host: str) -> aioweb.Application:
    """The web view for `app`'s database; WebError when `host` is not
    loopback and no NEWSWATCH_WEB_TOKEN is set."""
    secret = app.settings.web_token
    token = secret.get_secret_value() if secret is not None else None
    check_bind(host, token)
    return create_app(
        SqlWebReader(app.store.sessions), WebConfig(token=token or None, clock=app.now)
    )


def daemon_web_app(app: App) -> aioweb.Application | None:
    """The web view for the daemon's HTTP server, or None (logged) where it
    must not be served: the health probes stay up either way, since
    deployments bind them to 0.0.0.0 for the orchestrator."""
    try:
        return build_web_app(app, app.settings.http_host)
    except WebError as e:
        log.warning("web_view status=disabled reason=%r", str(e))
        return None
