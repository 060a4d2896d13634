"""The web view's aiohttp application: `create_app(reader, config)`.

Invariants:
- every response carries the strict headers of `SECURITY_HEADERS` (set in
  `on_response_prepare`, so errors and static files get them too);
- with a token configured, every page and API call is refused (401) unless the
  request carries the bearer token or the login cookie; only the login form,
  the stylesheet and the daemon's own probes are public;
- the Referrer-Policy is `same-origin`: outlets a link points to learn nothing
  of this site's URLs (links also carry rel=noreferrer), while the browser
  still sends a real Origin on our own login POST (`no-referrer` makes it
  `null`, which would void the Origin check);
- no GET handler writes: the reader has no write method, and the one POST
  (login) changes nothing but the client's cookie.
"""

from __future__ import annotations

import functools
import gc
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from storage import StorageError
from storage.views import WebReader
from web import format as fmt
from web import pages, security

log = logging.getLogger("newswatch.web")
HERE = Path(__file__).parent
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
PUBLIC = ("/login", "/static/", "/healthz", "/metrics")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class WebConfig:
    """What the web view needs from the settings, and nothing else."""

    token: str | None = None
    clock: Callable[[], datetime] = _utcnow


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        feed=fmt.feed_text,
        plain=fmt.plain,
        link=fmt.link,
        snippet=fmt.snippet,
        when=fmt.when,
        duration=fmt.duration,
        mask=fmt.mask_target,
    )
    env.globals["group_href"] = pages.group_href
    return env


async def _secure_headers(_request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type in ("text/html", "application/json"):
        response.headers.setdefault("Cache-Control", "no-store")


def _is_public(path: str) -> bool:
    return any(path == p or (p.endswith("/") and path.startswith(p)) for p in PUBLIC)


def _auth(config: WebConfig) -> Any:
    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if _is_public(request.path) or security.authorized(
            config.token,
            request.headers.get("Authorization"),
            request.cookies.get(security.COOKIE),
        ):
            return await handler(request)
        if request.path.startswith("/api/"):
            return web.json_response(
                {"error": "a bearer token is required"},
                status=401,
                headers={"WWW-Authenticate": 'Bearer realm="newswatch"'},
            )
        return pages.render(request, "login.html", status=401, next=request.path_qs, error=None)

    return auth


@web.middleware
async def _server_timing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`Server-Timing: app;dur=…` (ms): the server time of each page, as the
    browser's developer tools and bench/web.py read it."""
    start = time.perf_counter()
    response = await handler(request)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - start) * 1000:.1f}"
    return response


@web.middleware
async def _database_down(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A database outage is a 503 with one plain line; the detail (which may
    name the host) goes to the log only."""
    try:
        return await handler(request)
    except StorageError as e:
        log.warning("web_read status=failed path=%s error=%r", request.path, str(e))
        message = "the database is not answering; try again shortly"
        if request.path.startswith("/api/"):
            return web.json_response({"error": message}, status=503)
        return pages.render(request, "missing.html", status=503, message=message.capitalize())


@functools.cache
def freeze_heap() -> None:
    """Once per process: move every object alive when the server starts
    (modules, SQLAlchemy's and Jinja's machinery, the app) out of the cyclic
    garbage collector's sight (`gc.freeze`). A page allocates thousands of
    rows and dicts; each full collection then scanned the whole heap again,
    ~45 ms of CPU for the ~90,000 objects of a served web view, landing on
    whichever request crossed the threshold (a 500-story API page: median
    33 ms of CPU, slowest of 15 81 ms; frozen: 35 ms). Objects alive at
    startup mostly live as long as the process; one that dies later is
    still freed by its reference count, only a cycle of them is kept."""
    gc.collect()
    gc.freeze()


async def _freeze_heap(_app: web.Application) -> None:
    freeze_heap()


def create_app(reader: WebReader, config: WebConfig) -> web.Application:
    """The web view as an aiohttp application. The daemon mounts it as the
    root of its HTTP server (adding /healthz and /metrics); `newswatch web`
    serves it alone."""
    app = web.Application(
        middlewares=[_server_timing, _auth(config), _database_down], client_max_size=64 * 1024
    )
    app[pages.CONTEXT] = pages.Context(reader, config.clock, config.token, templates())
    app.on_response_prepare.append(_secure_headers)
    app.on_startup.append(_freeze_heap)
    app.on_cleanup.append(pages.close_threads)
    pages.add_routes(app)
    app.router.add_static("/static", HERE / "static", append_version=False)
    return app
